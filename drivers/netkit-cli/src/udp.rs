//! `netkit udp listen` and `netkit udp send` (shared/CLI.md): datagrams with
//! Bun's `udpSocket` rules. The list is decoded and planned by `netkit-udp`
//! (GSO runs, `sendmmsg` batches); the kernel calls are netkit-sys's shim.

use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::{Args, Subcommand};
use netkit_sys::os_error;
use netkit_sys::sys::udp;
use netkit_udp::Packet;
use netkit_udp::args::{Arg, Family, decode_unconnected};
use netkit_udp::plan::{Batch, Limits, plan};
use netkit_udp::send::Sender;

use crate::Failure;

/// Datagrams received per readiness (a flood cannot starve the signal check).
const RECV_BATCH: usize = 32;
/// The largest datagram (a UDP payload over IPv6).
const MAX_DATAGRAM: usize = 65_535;

#[derive(Debug, Args)]
pub(crate) struct UdpArgs {
    #[command(subcommand)]
    cmd: UdpCmd,
}

#[derive(Debug, Subcommand)]
enum UdpCmd {
    /// Print every datagram received (`From ADDR:PORT: MESSAGE`).
    Listen {
        /// Address to bind (an IP literal or a hosts-file name).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port to bind (0: any).
        #[arg(long)]
        port: u16,
        /// Answer each datagram with `ack`.
        #[arg(long)]
        ack: bool,
    },
    /// Send the messages in one batch (sendMany) to IP:PORT; prints `sent N`.
    Send {
        /// Send the message list this many times over.
        #[arg(long, default_value_t = 1)]
        repeat: u64,
        /// Say on stderr which kernel calls carried the datagrams (GSO,
        /// sendmmsg or plain sends).
        #[arg(short, long)]
        verbose: bool,
        /// The destination: an IP literal and a port (`[IPv6]:PORT`).
        target: String,
        /// The datagrams, one per message (an empty one is a 0-byte datagram).
        #[arg(required = true, allow_hyphen_values = true)]
        messages: Vec<String>,
    },
}

pub(crate) fn run(args: UdpArgs) -> Result<ExitCode, Failure> {
    match args.cmd {
        UdpCmd::Listen { host, port, ack } => listen(&host, port, ack),
        UdpCmd::Send {
            repeat,
            verbose,
            target,
            messages,
        } => send(&target, &messages, repeat, verbose),
    }
}

/// The bind address: an IP literal, or a name the hosts file knows.
fn bind_addr(host: &str, port: u16) -> Result<SocketAddr, Failure> {
    if let Some((ip, _)) = netkit_udp::args::parse_ip(host) {
        return Ok(SocketAddr::new(ip, port));
    }
    let ip = netkit_sys::Resolver::default()
        .lookup_now(std::time::Instant::now(), host)
        .map_err(|e| Failure(e.to_string()))?;
    Ok(SocketAddr::new(ip, port))
}

fn listen(host: &str, port: u16, ack: bool) -> Result<ExitCode, Failure> {
    let addr = bind_addr(host, port)?;
    let sock = UdpSocket::bind(addr)
        .map_err(|e| Failure(os_error(&e, format!("bind {addr}")).to_string()))?;
    // Wake up now and then to notice a signal (SIGINT/SIGTERM: exit 0).
    sock.set_read_timeout(Some(Duration::from_millis(100)))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let local = sock.local_addr()?;
    // A diagnostic: stdout carries only the datagrams.
    eprintln!("listening on {local}");
    let mut bufs = vec![vec![0u8; MAX_DATAGRAM]; RECV_BATCH];
    let mut got = Vec::with_capacity(RECV_BATCH);
    let mut out = io::stdout().lock();
    while !stop.load(Ordering::Relaxed) {
        match udp::recv_many(&sock, &mut bufs, &mut got) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            // An ICMP error for an earlier `ack` surfaces here: not ours to die of.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(Failure(os_error(&e, format!("recv {local}")).to_string())),
        }
        for (r, buf) in got.iter().zip(&bufs) {
            let from = r.from.map_or_else(|| "?".to_owned(), |a| a.to_string());
            out.write_all(b"From ")?;
            out.write_all(from.as_bytes())?;
            out.write_all(b": ")?;
            out.write_all(String::from_utf8_lossy(&buf[..r.len]).as_bytes())?;
            out.write_all(b"\n")?;
            if ack {
                if let Some(to) = r.from {
                    let _ = sock.send_to(b"ack", to);
                }
            }
        }
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `IP:PORT` with an IP literal, as Bun's `send` requires (no DNS).
fn target(s: &str) -> Result<SocketAddr, Failure> {
    let bad = || {
        Failure(format!(
            "EINVAL: udp send: invalid address {s:?} (an IP literal and a port are required, e.g. 127.0.0.1:9000 or [::1]:9000)"
        ))
    };
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0).ok_or_else(bad)?;
    if !host.starts_with('[') && host.contains(':') {
        return Err(bad()); // an IPv6 address needs its brackets before a port
    }
    let (ip, scope) = netkit_udp::args::parse_ip(host).ok_or_else(bad)?;
    Ok(match ip {
        IpAddr::V6(v6) => SocketAddr::V6(std::net::SocketAddrV6::new(v6, port, 0, scope)),
        v4 => SocketAddr::new(v4, port),
    })
}

fn send(to: &str, messages: &[String], repeat: u64, verbose: bool) -> Result<ExitCode, Failure> {
    let to = target(to)?;
    let (family, any) = match to {
        SocketAddr::V4(_) => (Family::V4, SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 0)),
        SocketAddr::V6(_) => (Family::V6, SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 0)),
    };
    let sock = UdpSocket::bind(any)
        .map_err(|e| Failure(os_error(&e, format!("bind {any}")).to_string()))?;
    // The sendMany list, decoded and planned as the library does it.
    let (ip, port) = (to.ip().to_string(), i64::from(to.port()));
    let mut list = Vec::with_capacity(messages.len() * 3);
    for m in messages {
        list.extend([Arg::Data(m.as_bytes()), Arg::Port(port), Arg::Addr(&ip)]);
    }
    let packets = decode_unconnected(&list, family).map_err(|e| Failure(e.to_string()))?;
    let limits = Limits {
        gso: udp::gso_works(),
        ..Limits::default()
    };
    let batches = plan(&packets, &limits);
    // GSO buffers are built once and reused for every repeat.
    let gso_bufs = gso_buffers(&packets, &batches);
    let mut sent: u64 = 0;
    // Datagrams per kernel path, indexed by `udp::Path` (GSO, sendmmsg, plain).
    let mut paths = [0u64; 3];
    let mut sender = Sender::new();
    for _ in 0..repeat {
        // Bun's caller: send the list; after backpressure and its drain,
        // send the rest again from the count the kernel accepted.
        let mut from = 0;
        let mut replanned: Option<(Vec<Batch>, GsoBuffers)> = None;
        loop {
            let (plan_now, bufs) = match &replanned {
                Some((b, g)) => (b.as_slice(), g.as_slice()),
                None => (batches.as_slice(), gso_bufs.as_slice()),
            };
            let rest = &packets[from..];
            sender.start(plan_now.to_vec());
            let n = udp::carry_out(&sock, rest, &mut sender, Some(bufs))
                .map_err(|e| Failure(os_error(&e, format!("send {to}")).to_string()))?;
            // Which path carried them: the plan's batches, in order, up to n.
            let mut left = n;
            for b in plan_now {
                let k = b.range().len().min(left);
                paths[udp::Path::of(b) as usize] += k as u64;
                left -= k;
            }
            from += sender.accepted();
            sent += sender.accepted() as u64;
            if !sender.wants_write() {
                break;
            }
            // The kernel's queue is full: wait for room (ENOBUFS has no
            // readiness to wait on), then the drain, then the rest.
            std::thread::sleep(Duration::from_millis(1));
            sender.handle_writable();
            while sender.poll_event().is_some() {}
            let rest = &packets[from..];
            let b = plan(rest, &limits);
            let g = gso_buffers(rest, &b);
            replanned = Some((b, g));
        }
    }
    if verbose {
        eprintln!(
            "* {sent} datagrams in {} kernel calls per round: {} by GSO (UDP_SEGMENT{}), {} by sendmmsg, {} by plain sends",
            batches.len(),
            paths[0],
            if limits.gso {
                ""
            } else {
                ": not available here"
            },
            paths[1],
            paths[2]
        );
    }
    println!("sent {sent}");
    Ok(ExitCode::SUCCESS)
}

/// Per batch of a plan: a GSO batch's payloads concatenated, `None` for the others.
type GsoBuffers = Vec<Option<Vec<u8>>>;

/// Each GSO batch's payloads, concatenated (the kernel cuts them again).
fn gso_buffers(packets: &[Packet<'_>], batches: &[Batch]) -> GsoBuffers {
    batches
        .iter()
        .map(|b| match b {
            Batch::Gso { .. } => Some(
                packets[b.range()]
                    .iter()
                    .flat_map(|p| p.data)
                    .copied()
                    .collect(),
            ),
            Batch::Many { .. } => None,
        })
        .collect()
}
