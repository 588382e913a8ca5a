//! A multicast peer on the blocking loop's UDP sockets, for the namespace
//! tests (run inside a namespace with `ip netns exec`):
//!
//! - `nk-mcast recv PORT IFACE [GROUP | SOURCE@GROUP]... [--leave TAG=GROUP]`
//!   binds `0.0.0.0:PORT` (`[::]:PORT` when IFACE is not an IPv4 address:
//!   an IPv6 interface name), joins every group on IFACE
//!   (`SOURCE@GROUP`: source-specific), prints `ready`, then `FROM DATA` per
//!   datagram; a datagram `TAG` drops membership of `GROUP` (printed
//!   `left GROUP` after it is done).
//! - `nk-mcast send FROM GROUP:PORT TTL LOOP DATA...` binds `FROM:0`, sends
//!   on FROM's interface with multicast TTL and loopback (0/1) as given, one
//!   datagram per DATA, in order, then exits. For IPv6, FROM is
//!   `ADDRESS%IFACE`: bound to ADDRESS, sending on `::%IFACE`.

use std::io::Write;
use std::net::SocketAddr;

use netkit_blocking::EventLoop;
use netkit_blocking::udp::{UdpHandler, UdpOptions, UdpSocket};

struct Recv {
    iface: String,
    leave: Option<(String, String)>,
}

impl UdpHandler for Recv {
    fn data(&mut self, s: &mut UdpSocket<'_>, data: &[u8], from: SocketAddr, _t: bool) {
        let text = String::from_utf8_lossy(data).into_owned();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {text}", from.ip());
        if let Some((tag, group)) = &self.leave {
            if *tag == text {
                s.drop_membership(group, Some(&self.iface))
                    .expect("dropMembership");
                let _ = writeln!(out, "left {group}");
            }
        }
        let _ = out.flush();
    }

    fn error(&mut self, _s: &mut UdpSocket<'_>, e: &netkit_sys::Error) {
        eprintln!("nk-mcast: {e}");
    }
}

struct Quiet;
impl UdpHandler for Quiet {
    fn data(&mut self, _: &mut UdpSocket<'_>, _: &[u8], _: SocketAddr, _: bool) {}
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut lp = EventLoop::new().expect("a loop");
    match args.first().map(String::as_str) {
        Some("recv") => {
            let port: u16 = args[1].parse().expect("PORT");
            let iface = args[2].clone();
            let mut groups = Vec::new();
            let mut leave = None;
            let mut rest = args[3..].iter();
            while let Some(a) = rest.next() {
                if a == "--leave" {
                    let v = rest.next().expect("TAG=GROUP");
                    let (t, g) = v.split_once('=').expect("TAG=GROUP");
                    leave = Some((t.to_owned(), g.to_owned()));
                } else {
                    groups.push(a.clone());
                }
            }
            let any = if iface.parse::<std::net::Ipv4Addr>().is_ok() {
                "0.0.0.0"
            } else {
                "::"
            };
            let id = lp
                .udp(
                    UdpOptions::new(any, port),
                    Recv {
                        iface: iface.clone(),
                        leave,
                    },
                )
                .expect("bind");
            lp.with_udp::<Recv, _>(id, |_, s| {
                for g in &groups {
                    match g.split_once('@') {
                        Some((src, grp)) => s
                            .add_source_specific_membership(src, grp, Some(&iface))
                            .expect("addSourceSpecificMembership"),
                        None => s.add_membership(g, Some(&iface)).expect("addMembership"),
                    }
                }
            });
            println!("ready");
            let _ = std::io::stdout().flush();
            lp.run().expect("run");
        }
        Some("send") => {
            let (from, iface) = match args[1].split_once('%') {
                Some((addr, name)) => (addr.to_owned(), format!("::%{name}")),
                None => (args[1].clone(), args[1].clone()),
            };
            let to: SocketAddr = args[2].parse().expect("GROUP:PORT");
            let ttl: u32 = args[3].parse().expect("TTL");
            let lo = args[4] == "1";
            let id = lp
                .udp(UdpOptions::new(from.clone(), 0), Quiet)
                .expect("bind");
            lp.with_udp::<Quiet, _>(id, |_, s| {
                s.set_multicast_interface(&iface)
                    .expect("setMulticastInterface");
                s.set_multicast_ttl(ttl).expect("setMulticastTTL");
                s.set_multicast_loopback(lo).expect("setMulticastLoopback");
                for d in &args[5..] {
                    // One at a time, each accepted before the next, so they
                    // leave in order.
                    assert!(s.send_to(d.as_bytes(), to).expect("send"), "no room");
                }
                s.close();
            });
        }
        _ => {
            eprintln!(
                "usage: nk-mcast recv PORT IFACE GROUP... | send FROM GROUP:PORT TTL LOOP DATA..."
            );
            std::process::exit(2);
        }
    }
}
