//! `bench-udp`: the UDP benchmark behind `cargo xtask bench udp`.
//!
//! One receiver thread (pinned to the last allowed CPU, `recvmmsg` in
//! batches of 64) counts 1,200-byte datagrams; one sender thread (pinned to
//! the first) runs each candidate flat out for a window: std `send_to` one
//! at a time, netkit's sendMany plan through `sendmmsg` (GSO off), netkit's
//! plan through GSO, quinn-udp with and without segmentation; then the
//! `netkit udp send --repeat` process; then Bun's `sendMany`.
//!
//! The receive side, for each receiver (netkit `recvmmsg` without GRO,
//! netkit GRO one buffer per call as both drivers read, netkit GRO 32
//! buffers per `recvmmsg`, quinn-udp's receive with GRO into 32 buffers as
//! quinn uses it, and into one buffer), twice:
//! - live: netkit's GSO sender flat out on the other CPU. On loopback the
//!   sender's CPU also delivers, and every receiver keeps up with it, so
//!   this rate is the sender's; what is lost is reported.
//! - draining: one thread fills the queue (the sends deliver before they
//!   return), then reads it empty, timing only the reads: the receiver's
//!   own throughput, which the target judges.
//!
//! Candidates alternate round by round; medians are reported with ratios,
//! datagrams/s and CPU ns per datagram, and what the kernel offered
//! (GSO and GRO yes/no).

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use netkit_bench::{allowed_cpus, cpu_set_of, median, set_affinity};
use netkit_sys::sys::udp;
use netkit_udp::Packet;
use netkit_udp::plan::{Batch, Limits, plan};
use serde_json::json;

const SIZE: usize = 1200;
/// Datagrams handed to the kernel per round of a batching candidate.
const BURST: usize = 64;

#[derive(Debug, Parser)]
#[command(about = "netkit's UDP benchmark (cargo xtask bench udp)")]
struct Args {
    /// Smoke run: 0.5 s windows, one round.
    #[arg(long)]
    quick: bool,
    /// Window per candidate and round, in seconds (default 2).
    #[arg(long)]
    seconds: Option<f64>,
    /// Rounds (default 5: the paired ratios against Bun move ±10% between rounds).
    #[arg(long)]
    rounds: Option<usize>,
    /// The `netkit` binary (default: beside this one).
    #[arg(long)]
    netkit: Option<PathBuf>,
    /// Bun to use (default: TARGET/bun, installed with npm when missing).
    #[arg(long)]
    bun: Option<PathBuf>,
    /// Do not install Bun; skip it when missing.
    #[arg(long)]
    no_bun_install: bool,
    /// Only the receive side (skips the senders and Bun).
    #[arg(long)]
    receive_only: bool,
    /// JSON output file.
    #[arg(long, default_value = "target/bench/udp.json")]
    out: PathBuf,
}

/// The sender's CPU time so far (this thread only).
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Std,
    Mmsg,
    Gso,
    QuinnGso,
    QuinnPlain,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::Std => "std send_to",
            Self::Mmsg => "netkit sendmmsg",
            Self::Gso => "netkit GSO",
            Self::QuinnGso => "quinn-udp GSO",
            Self::QuinnPlain => "quinn-udp plain",
        }
    }
}

struct Run {
    delivered: f64,
    cpu_ns: f64,
}

impl Run {
    /// `got` datagrams in `elapsed`, costing `cpu`.
    fn of(got: u64, elapsed: Duration, cpu: Duration) -> Self {
        Self {
            delivered: got as f64 / elapsed.as_secs_f64(),
            cpu_ns: cpu.as_nanos() as f64 / got.max(1) as f64,
        }
    }
}

/// Every one of `got` datagrams `kind` handed on was whole.
fn check_whole(kind: Rx, got: u64, bytes: u64) {
    assert_eq!(
        bytes,
        got * SIZE as u64,
        "{}: every datagram whole",
        kind.name()
    );
}

/// Runs `kind` for `window`; returns delivered datagrams/s and sender CPU ns per sent datagram.
fn run(kind: Kind, to: SocketAddr, window: Duration, received: &AtomicU64) -> Run {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let payload = vec![0x5a_u8; SIZE];
    let packets: Vec<Packet<'_>> = (0..BURST)
        .map(|_| Packet {
            data: &payload,
            to: Some(to),
        })
        .collect();
    let gso = kind == Kind::Gso;
    let batches = plan(
        &packets,
        &Limits {
            gso,
            ..Limits::default()
        },
    );
    let joined: Vec<u8> = payload.repeat(BURST);
    let list: Vec<(&[u8], Option<SocketAddr>)> = packets.iter().map(|p| (p.data, p.to)).collect();
    let quinn = quinn_udp::UdpSocketState::new((&sock).into()).expect("quinn-udp state");
    let quinn_segments = quinn.max_gso_segments().clamp(1, 65_000 / SIZE);
    let before = received.load(Ordering::Relaxed);
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < window {
        match kind {
            Kind::Std => {
                for _ in 0..BURST {
                    if sock.send_to(&payload, to).is_ok() {
                        sent += 1;
                    }
                }
            }
            Kind::Mmsg | Kind::Gso => {
                for b in &batches {
                    let r = b.range();
                    let n = match b {
                        Batch::Gso { segment, .. } => {
                            let bytes = &joined[r.start * SIZE..r.end * SIZE];
                            udp::send_gso(&sock, bytes, *segment as u16, Some(to))
                                .map(|_| r.len())
                                .unwrap_or(0)
                        }
                        Batch::Many { .. } => udp::send_many(&sock, &list[r]).unwrap_or(0),
                    };
                    sent += n as u64;
                }
            }
            Kind::QuinnGso => {
                let mut left = BURST;
                while left > 0 {
                    let n = left.min(quinn_segments);
                    let t = quinn_udp::Transmit {
                        destination: to,
                        ecn: None,
                        contents: &joined[..n * SIZE],
                        segment_size: (n > 1).then_some(SIZE),
                        src_ip: None,
                    };
                    if quinn.send((&sock).into(), &t).is_ok() {
                        sent += n as u64;
                    }
                    left -= n;
                }
            }
            Kind::QuinnPlain => {
                for _ in 0..BURST {
                    let t = quinn_udp::Transmit {
                        destination: to,
                        ecn: None,
                        contents: &payload,
                        segment_size: None,
                        src_ip: None,
                    };
                    if quinn.send((&sock).into(), &t).is_ok() {
                        sent += 1;
                    }
                }
            }
        }
    }
    let elapsed = t0.elapsed();
    let cpu = thread_cpu() - cpu0;
    // Let the receiver drain what is queued.
    std::thread::sleep(Duration::from_millis(50));
    let got = received.load(Ordering::Relaxed) - before;
    Run {
        delivered: got as f64 / elapsed.as_secs_f64(),
        cpu_ns: cpu.as_nanos() as f64 / sent.max(1) as f64,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rx {
    Mmsg,
    Gro,
    GroBatch,
    Quinn,
    Quinn1,
}

impl Rx {
    fn name(self) -> &'static str {
        match self {
            Self::Mmsg => "netkit recvmmsg",
            Self::Gro => "netkit GRO (loop)",
            Self::GroBatch => "netkit GRO x32",
            Self::Quinn => "quinn-udp (GRO)",
            Self::Quinn1 => "quinn-udp 1 buffer",
        }
    }
}

/// One receiver's buffers and state; `read` is one call of `kind`'s
/// receive, returning the datagrams and bytes it handed on (every
/// candidate touches each datagram as a slice, as netkit's split does).
struct Receiver {
    kind: Rx,
    quinn: Option<quinn_udp::UdpSocketState>,
    small: Vec<Vec<u8>>,
    big: Vec<Vec<u8>>,
    out: Vec<udp::Received>,
    gro_out: Vec<udp::GroReceived>,
    meta: Vec<quinn_udp::RecvMeta>,
}

impl Receiver {
    fn new(kind: Rx, rx: &UdpSocket) -> Self {
        let quinn = match kind {
            Rx::Quinn | Rx::Quinn1 => {
                Some(quinn_udp::UdpSocketState::new(rx.into()).expect("quinn-udp state"))
            }
            Rx::Gro | Rx::GroBatch => {
                udp::enable_gro(rx);
                None
            }
            Rx::Mmsg => None,
        };
        Self {
            kind,
            quinn,
            small: vec![vec![0u8; 2048]; 64],
            big: vec![vec![0u8; 65_536]; 32],
            out: Vec::with_capacity(64),
            gro_out: Vec::with_capacity(32),
            meta: vec![quinn_udp::RecvMeta::default(); 32],
        }
    }

    fn read(&mut self, rx: &UdpSocket) -> std::io::Result<(u64, u64)> {
        let (mut got, mut bytes) = (0u64, 0u64);
        let mut take = |d: &[u8]| {
            got += 1;
            bytes += d.len() as u64;
        };
        match self.kind {
            Rx::Mmsg => {
                let n = udp::recv_many(rx, &mut self.small, &mut self.out)?;
                for (r, b) in self.out.iter().zip(&self.small).take(n) {
                    take(&b[..r.len]);
                }
            }
            Rx::Gro => {
                let r = udp::recv_gro(rx, &mut self.big[0])?;
                netkit_udp::recv::split(&self.big[0][..r.len], r.segment).for_each(take);
            }
            Rx::GroBatch => {
                let n = udp::recv_many_gro(rx, &mut self.big, &mut self.gro_out)?;
                for (r, b) in self.gro_out.iter().zip(&self.big).take(n) {
                    netkit_udp::recv::split(&b[..r.len], r.segment).for_each(&mut take);
                }
            }
            Rx::Quinn | Rx::Quinn1 => {
                let q = self.quinn.as_ref().expect("state");
                // On the stack, as quinn-udp's own callers keep theirs.
                let mut bufs = self.big.iter_mut();
                let mut slices: [std::io::IoSliceMut<'_>; 32] = std::array::from_fn(|_| {
                    std::io::IoSliceMut::new(bufs.next().expect("32 buffers"))
                });
                let count = if self.kind == Rx::Quinn1 { 1 } else { 32 };
                let n = q.recv(rx.into(), &mut slices[..count], &mut self.meta[..count])?;
                for (m, s) in self.meta[..n].iter().zip(&slices) {
                    s[..m.len].chunks(m.stride.max(1)).for_each(&mut take);
                }
            }
        }
        Ok((got, bytes))
    }
}

/// The receive side, live: netkit's GSO sender flat out (on the sender
/// CPU) to a fresh socket read by `kind` (on the receiver CPU) for
/// `window`; returns datagrams received/s, the receiver's CPU ns per
/// datagram, and the share of sent datagrams lost. While nothing is lost
/// the rate is the sender's: it shows how much each receiver's wakeups and
/// memory traffic slow the sender, not the receiver's own throughput.
fn run_rx(
    kind: Rx,
    window: Duration,
    send_cpu: Option<usize>,
    recv_cpu: Option<usize>,
) -> (Run, f64) {
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = rx.local_addr().expect("addr");
    let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(8 << 20);
    // As an event loop reads: non-blocking, waiting for readiness when the
    // queue is empty, then reading until it is.
    rx.set_nonblocking(true).expect("non-blocking");
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            if let Some(c) = send_cpu {
                let _ = set_affinity(&cpu_set_of(c));
            }
            let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
            let mut send = gso_sender(to);
            let mut sent = 0u64;
            while !stop.load(Ordering::Relaxed) {
                sent += send(&sock);
            }
            sent
        })
    };
    if let Some(c) = recv_cpu {
        let _ = set_affinity(&cpu_set_of(c));
    }
    let mut r = Receiver::new(kind, &rx);
    let (mut got, mut bytes) = (0u64, 0u64);
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    while t0.elapsed() < window {
        match r.read(&rx) {
            Ok((g, b)) => {
                got += g;
                bytes += b;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => wait_readable(&rx),
            Err(_) => {}
        }
    }
    let elapsed = t0.elapsed();
    let cpu = thread_cpu() - cpu0;
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap_or(0);
    // What is still queued was not lost.
    let mut total = got;
    while let Ok((g, b)) = r.read(&rx) {
        total += g;
        bytes += b;
    }
    check_whole(kind, total, bytes);
    (
        Run::of(got, elapsed, cpu),
        sent.saturating_sub(total) as f64 / sent.max(1) as f64,
    )
}

/// One GSO call of 48 datagrams (at most 64 KiB per call) to `to`, or a
/// `sendmmsg` of them where GSO does not work.
fn gso_sender(to: SocketAddr) -> impl FnMut(&UdpSocket) -> u64 {
    let segments = 48;
    let joined = vec![0x5a_u8; SIZE * segments];
    let gso = udp::gso_works();
    move |sock| {
        if gso {
            udp::send_gso(sock, &joined, SIZE as u16, Some(to)).map_or(0, |n| (n / SIZE) as u64)
        } else {
            let list: Vec<(&[u8], Option<SocketAddr>)> =
                (0..segments).map(|_| (&joined[..SIZE], Some(to))).collect();
            udp::send_many(sock, &list).map_or(0, |n| n as u64)
        }
    }
}

/// Datagram sends that fill the receive queue before each drain: 100 GSO
/// calls, 4,800 datagrams, under the 8 MiB receive buffer.
const FILL: usize = 100;

/// The receive side, draining: one thread fills the socket's queue (on
/// loopback the send delivers before it returns), then reads it empty
/// with `kind`, timing only the reads; repeated for `window` of reading.
/// This is the receiver's own throughput, with no sleeps and no sender
/// running beside it. Returns datagrams/s of reading and CPU ns per
/// datagram.
fn run_drain(kind: Rx, window: Duration, cpu: Option<usize>) -> Run {
    if let Some(c) = cpu {
        let _ = set_affinity(&cpu_set_of(c));
    }
    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = rx.local_addr().expect("addr");
    let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(8 << 20);
    rx.set_nonblocking(true).expect("non-blocking");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut send = gso_sender(to);
    let mut r = Receiver::new(kind, &rx);
    let (mut got, mut bytes) = (0u64, 0u64);
    let (mut reading, mut cpu_used) = (Duration::ZERO, Duration::ZERO);
    while reading < window {
        for _ in 0..FILL {
            let _ = send(&tx);
        }
        let cpu0 = thread_cpu();
        let t0 = Instant::now();
        loop {
            match r.read(&rx) {
                Ok((g, b)) => {
                    got += g;
                    bytes += b;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {}
            }
        }
        reading += t0.elapsed();
        cpu_used += thread_cpu() - cpu0;
    }
    check_whole(kind, got, bytes);
    Run::of(got, reading, cpu_used)
}

/// Waits (at most 50 ms) until `sock` is readable, as a loop's poller does.
fn wait_readable(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: sock.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd, and its count.
    unsafe { libc::poll(&mut p, 1, 50) };
}

/// A sender process run to its end: datagrams the receiver counted per
/// second of its whole run (its start included).
fn run_process(mut cmd: Command, what: &str, received: &AtomicU64) -> Option<f64> {
    let before = received.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let out = cmd.output().ok()?;
    let elapsed = t0.elapsed();
    // Let the receiver drain what is queued.
    std::thread::sleep(Duration::from_millis(50));
    if !out.status.success() {
        eprintln!(
            "bench-udp: {what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let got = received.load(Ordering::Relaxed) - before;
    Some(got as f64 / elapsed.as_secs_f64())
}

/// Bun's `sendMany` (tests/bench/bun/udp_send.mjs) flat out for `window`.
fn run_bun(bun: &PathBuf, to: SocketAddr, window: Duration, received: &AtomicU64) -> Option<f64> {
    let mut c = Command::new(bun);
    c.arg(netkit_tests::workspace_root().join("tests/bench/bun/udp_send.mjs"))
        .arg(to.port().to_string())
        .arg(window.as_secs_f64().to_string());
    run_process(c, "bun udp_send.mjs", received)
}

/// `netkit udp send --repeat N`, about `window` worth.
fn run_cli(
    netkit: &PathBuf,
    to: SocketAddr,
    window: Duration,
    received: &AtomicU64,
) -> Option<f64> {
    let msg = "z".repeat(SIZE);
    // About `window` worth at the sendmmsg rate measured here (~1M/s), in rounds of 64.
    let repeat = ((window.as_secs_f64() * 1_000_000.0) as u64 / BURST as u64).max(1);
    let mut c = Command::new(netkit);
    c.args([
        "udp",
        "send",
        "--repeat",
        &repeat.to_string(),
        &to.to_string(),
    ])
    .args(std::iter::repeat_n(msg.as_str(), BURST));
    run_process(c, "netkit udp send", received)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let window =
        Duration::from_secs_f64(args.seconds.unwrap_or(if args.quick { 0.5 } else { 2.0 }));
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 5 }).max(1);
    let netkit = args.netkit.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("netkit")))
            .unwrap_or_else(|| PathBuf::from("netkit"))
    });
    let cpus = allowed_cpus();
    let (send_cpu, recv_cpu) = (cpus.first().copied(), cpus.last().copied());

    let rx = UdpSocket::bind("127.0.0.1:0").expect("bind the receiver");
    let to = rx.local_addr().expect("addr");
    let _ = socket2::SockRef::from(&rx).set_recv_buffer_size(8 << 20);
    rx.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (received, stop) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            if let Some(c) = recv_cpu {
                let _ = set_affinity(&cpu_set_of(c));
            }
            let mut bufs = vec![vec![0u8; 2048]; 64];
            let mut got = Vec::with_capacity(64);
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = udp::recv_many(&rx, &mut bufs, &mut got) {
                    received.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        })
    };
    if let Some(c) = send_cpu {
        let _ = set_affinity(&cpu_set_of(c));
    }
    let gso = udp::gso_works();
    let quinn_gso = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        quinn_udp::UdpSocketState::new((&s).into()).map_or(1, |q| q.max_gso_segments())
    };
    println!(
        "netkit UDP benchmark: {SIZE}-byte datagrams to one loopback receiver, {:.1} s windows, {rounds} round(s), median",
        window.as_secs_f64()
    );
    println!(
        "kernel: GSO {} (netkit's probe), quinn-udp max GSO segments {quinn_gso}; sendmmsg {}; sender CPU {send_cpu:?}, receiver CPU {recv_cpu:?}",
        if gso { "yes" } else { "no" },
        if udp::mmsg_works() { "yes" } else { "no" }
    );
    let kinds = [
        Kind::Std,
        Kind::Mmsg,
        Kind::Gso,
        Kind::QuinnGso,
        Kind::QuinnPlain,
    ];
    let mut results: Vec<Vec<Run>> = kinds.iter().map(|_| Vec::new()).collect();
    let mut cli = Vec::new();
    let bun = match netkit_bench::proc::find_bun(args.bun.as_deref(), args.no_bun_install) {
        Ok((b, v, _)) => {
            println!("Bun {v}: {}", b.display());
            Some(b)
        }
        Err(e) => {
            println!("Bun: skipped ({e})");
            None
        }
    };
    let mut bun_runs = Vec::new();
    let mut bun_paired = Vec::new();
    for round in 0..if args.receive_only { 0 } else { rounds } {
        for (i, k) in kinds.iter().enumerate() {
            let r = run(*k, to, window, &received);
            eprintln!(
                "bench-udp: round {}/{rounds}: {:<16} {:>10.0} delivered/s {:>7.0} CPU ns/datagram",
                round + 1,
                k.name(),
                r.delivered,
                r.cpu_ns
            );
            results[i].push(r);
        }
        if let Some(r) = run_cli(&netkit, to, window, &received) {
            eprintln!(
                "bench-udp: round {}/{rounds}: netkit udp send  {r:>10.0} delivered/s",
                round + 1
            );
            cli.push(r);
        }
        if let Some(b) = &bun {
            if let Some(r) = run_bun(b, to, window, &received) {
                eprintln!(
                    "bench-udp: round {}/{rounds}: bun sendMany      {r:>10.0} delivered/s",
                    round + 1
                );
                bun_runs.push(r);
                // Paired with this round's GSO run: the machine's speed
                // drifts between rounds more than within one.
                let gso = kinds.iter().position(|k| *k == Kind::Gso);
                if let Some(g) = gso.and_then(|i| results[i].last()) {
                    bun_paired.push(g.delivered / r.max(1.0));
                }
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = receiver.join();
    // The receive side: one sender (netkit GSO, flat out), receivers alternating.
    let rx_kinds = [Rx::Mmsg, Rx::Gro, Rx::GroBatch, Rx::Quinn, Rx::Quinn1];
    let mut rx_results: Vec<Vec<Run>> = rx_kinds.iter().map(|_| Vec::new()).collect();
    let mut drain_results: Vec<Vec<Run>> = rx_kinds.iter().map(|_| Vec::new()).collect();
    let mut losses: Vec<Vec<f64>> = rx_kinds.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for (i, k) in rx_kinds.iter().enumerate() {
            let (r, lost) = run_rx(*k, window, send_cpu, recv_cpu);
            eprintln!(
                "bench-udp: round {}/{rounds}: receive {:<16} {:>10.0} received/s {:>7.0} CPU ns/datagram, {:.2}% lost",
                round + 1,
                k.name(),
                r.delivered,
                r.cpu_ns,
                lost * 100.0
            );
            losses[i].push(lost);
            rx_results[i].push(r);
            let d = run_drain(*k, window / 2, recv_cpu);
            eprintln!(
                "bench-udp: round {}/{rounds}: drain   {:<16} {:>10.0} read/s     {:>7.0} CPU ns/datagram",
                round + 1,
                k.name(),
                d.delivered,
                d.cpu_ns
            );
            drain_results[i].push(d);
        }
    }
    let med = |xs: Vec<f64>| median(&xs).unwrap_or(0.0);
    let rows: Vec<(Kind, f64, f64)> = kinds
        .iter()
        .zip(&results)
        .map(|(k, rs)| {
            (
                *k,
                med(rs.iter().map(|r| r.delivered).collect()),
                med(rs.iter().map(|r| r.cpu_ns).collect()),
            )
        })
        .collect();
    let of = |k: Kind| rows.iter().find(|r| r.0 == k).map_or(0.0, |r| r.1);
    let std_rate = of(Kind::Std);
    println!(
        "\n{:<18} {:>14} {:>10} {:>16}",
        "candidate", "delivered/s", "vs std", "sender CPU ns/dg"
    );
    for (k, rate, cpu) in &rows {
        println!(
            "{:<18} {rate:>14.0} {:>9.2}x {cpu:>16.0}",
            k.name(),
            rate / std_rate.max(1.0)
        );
    }
    let cli_rate = med(cli.clone());
    println!(
        "{:<18} {cli_rate:>14.0} {:>9.2}x {:>16}",
        "netkit udp send",
        cli_rate / std_rate.max(1.0),
        "(whole process)"
    );
    let bun_rate = med(bun_runs.clone());
    if bun.is_some() {
        println!(
            "{:<18} {bun_rate:>14.0} {:>9.2}x {:>16}",
            "bun sendMany",
            bun_rate / std_rate.max(1.0),
            "(whole process)"
        );
    }
    println!(
        "\nreceive side (GRO {} by netkit's probe)",
        if udp::gro_works() { "yes" } else { "no" }
    );
    let rx_table = |title: &str, results: &[Vec<Run>]| -> Vec<(Rx, f64, f64)> {
        let rows: Vec<(Rx, f64, f64)> = rx_kinds
            .iter()
            .zip(results)
            .map(|(k, rs)| {
                (
                    *k,
                    med(rs.iter().map(|r| r.delivered).collect()),
                    med(rs.iter().map(|r| r.cpu_ns).collect()),
                )
            })
            .collect();
        let quinn = rows.iter().find(|r| r.0 == Rx::Quinn).map_or(0.0, |r| r.1);
        println!(
            "{title:<18} {:>14} {:>12} {:>18}",
            "datagrams/s", "vs quinn", "receiver CPU ns/dg"
        );
        for (k, rate, cpu) in &rows {
            println!(
                "{:<18} {rate:>14.0} {:>11.2}x {cpu:>18.0}",
                k.name(),
                rate / quinn.max(1.0)
            );
        }
        rows
    };
    let rx_rows = rx_table("live (GSO sender)", &rx_results);
    let worst_loss = losses.iter().flatten().fold(0.0_f64, |a, b| a.max(*b));
    println!(
        "lost by the live receivers (median per receiver, %): {}; the worst round {:.2}%",
        rx_kinds
            .iter()
            .zip(&losses)
            .map(|(k, l)| format!("{} {:.2}", k.name(), med(l.clone()) * 100.0))
            .collect::<Vec<_>>()
            .join(", "),
        worst_loss * 100.0
    );
    let drain_rows = rx_table("draining a queue", &drain_results);
    // The best netkit receiver and the best quinn-udp one, in one table.
    let best = |rows: &[(Rx, f64, f64)]| {
        let of = |k: Rx| rows.iter().find(|r| r.0 == k).map_or(0.0, |r| r.1);
        (
            of(Rx::Gro).max(of(Rx::Mmsg)).max(of(Rx::GroBatch)),
            of(Rx::Quinn).max(of(Rx::Quinn1)),
        )
    };
    let (best_rx, quinn_rx) = best(&rx_rows);
    let (best_drain, quinn_drain) = best(&drain_rows);
    let (g, q, m) = (of(Kind::Gso), of(Kind::QuinnGso), of(Kind::Mmsg));
    if bun.is_some() {
        println!(
            "netkit sendMany (GSO) vs Bun sendMany: {:.2}x; netkit udp send vs Bun (both whole processes): {:.2}x",
            g / bun_rate.max(1.0),
            cli_rate / bun_rate.max(1.0)
        );
    }
    println!("\n== targets ==");
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!(
        "{}  netkit GSO >= 2.5x std send_to: {:.2}x",
        verdict(g >= 2.5 * std_rate),
        g / std_rate.max(1.0)
    );
    println!(
        "{}  netkit GSO >= 0.95x quinn-udp GSO: {:.2}x",
        verdict(g >= 0.95 * q),
        g / q.max(1.0)
    );
    if bun.is_some() {
        let paired = med(bun_paired.clone());
        println!(
            "{}  netkit GSO >= 2.8x Bun sendMany (median of the rounds' paired ratios {:?}): {paired:.2}x",
            verdict(paired >= 2.8),
            bun_paired
                .iter()
                .map(|r| (r * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        );
    }
    println!(
        "{}  netkit udp send within 5% of the library (best of its paths): {:.2}x",
        verdict(cli_rate >= 0.95 * g.max(m)),
        cli_rate / g.max(m).max(1.0)
    );
    println!(
        "{}  netkit receive, draining (best of recvmmsg, GRO, GRO x32) >= 1.0x quinn-udp (best of 32 buffers, 1 buffer): {:.2}x",
        verdict(best_drain >= quinn_drain),
        best_drain / quinn_drain.max(1.0)
    );
    println!(
        "info  netkit receive, live (best of recvmmsg, GRO, GRO x32) vs quinn-udp (best of 32 buffers, 1 buffer): {:.2}x; {}",
        best_rx / quinn_rx.max(1.0),
        if worst_loss < 0.01 {
            "every receiver kept up (under 1% lost), so this is the sender's rate beside each receiver"
        } else {
            "some receiver fell behind the sender"
        }
    );
    let report = json!({
        "gro": udp::gro_works(),
        "receive": rx_rows.iter().map(|(k, r, c)| json!({"receiver": k.name(), "received_per_s": r, "cpu_ns": c})).collect::<Vec<_>>(),
        "drain": drain_rows.iter().map(|(k, r, c)| json!({"receiver": k.name(), "read_per_s": r, "cpu_ns": c})).collect::<Vec<_>>(),
        "size": SIZE,
        "gso": gso,
        "rows": rows.iter().map(|(k, r, c)| json!({"candidate": k.name(), "delivered_per_s": r, "cpu_ns": c})).collect::<Vec<_>>(),
        "cli_delivered_per_s": cli_rate,
        "bun_delivered_per_s": bun.is_some().then_some(bun_rate),
    });
    if let Some(d) = args.out.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let _ = std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&report).unwrap_or_default(),
    );
    println!("\nwrote {}", args.out.display());
    ExitCode::SUCCESS
}
