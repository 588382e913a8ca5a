//! `netkit udp listen` and `netkit udp send` (shared/CLI.md) over loopback,
//! black-box: every datagram printed as `From ADDR:PORT: MESSAGE` in order,
//! `--ack`, `sent N` as the batch calls counted it, IP literals only,
//! IPv6, and signals.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use netkit_tests::bin;
use netkit_tests::peer::{Peer, run_bounded};

const LIMIT: Duration = Duration::from_secs(20);

/// `netkit udp listen` on a free port of `host`, once it is bound.
fn listen(host: &str, ack: bool) -> (Peer, SocketAddr) {
    let port = netkit_tests::free_udp_port();
    let mut cmd = Command::new(bin("netkit"));
    cmd.args(["udp", "listen", "--host", host, "--port", &port.to_string()]);
    if ack {
        cmd.arg("--ack");
    }
    let peer = Peer::spawn("netkit udp listen", cmd).expect("spawn");
    let end = Instant::now() + LIMIT;
    while !peer.stderr().contains("listening on") {
        assert!(Instant::now() < end, "never listened: {}", peer.stderr());
        std::thread::sleep(Duration::from_millis(10));
    }
    let ip: std::net::IpAddr = host.trim_matches(['[', ']']).parse().unwrap();
    (peer, SocketAddr::new(ip, port))
}

fn send(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("udp").arg("send").args(args);
    let (code, out, err) = run_bounded(&mut cmd, b"", LIMIT);
    (code, String::from_utf8_lossy(&out).into_owned(), err)
}

/// The next `n` stdout lines of the listener.
fn lines(peer: &Peer, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            peer.next_line(LIMIT)
                .unwrap_or_else(|| panic!("line {i} of {n} never came: {}", peer.stderr()))
        })
        .collect()
}

#[test]
fn send_many_and_listen() {
    let (l, addr) = listen("127.0.0.1", false);
    let target = addr.to_string();
    // Equal sizes (one GSO send where the kernel has it), an empty datagram,
    // and a longer one: every datagram arrives, in order, as sent.
    let (code, out, err) = send(&[&target, "aaaa", "bbbb", "cccc", "", "a longer one"]);
    assert_eq!((code, out.as_str()), (0, "sent 5\n"), "{err}");
    let got = lines(&l, 5);
    let from = got[0]
        .strip_prefix("From ")
        .and_then(|r| r.split_once(": "))
        .map(|(a, _)| a.to_owned())
        .expect("From ADDR:PORT: MESSAGE");
    let sender: SocketAddr = from.parse().expect("ADDR:PORT");
    assert_eq!(sender.ip().to_string(), "127.0.0.1");
    let want: Vec<String> = ["aaaa", "bbbb", "cccc", "", "a longer one"]
        .iter()
        .map(|m| format!("From {from}: {m}"))
        .collect();
    assert_eq!(got, want);
    // --repeat: the list again and again, counted.
    let (code, out, err) = send(&["--repeat", "3", &target, "x", "yy"]);
    assert_eq!((code, out.as_str()), (0, "sent 6\n"), "{err}");
    let got = lines(&l, 6);
    let msgs: Vec<&str> = got.iter().map(|g| g.rsplit(": ").next().unwrap()).collect();
    assert_eq!(msgs, ["x", "yy", "x", "yy", "x", "yy"]);
    // A long run: every datagram is counted as the kernel took it.
    let (code, out, err) = send(&["--repeat", "2000", &target, "p", "q"]);
    assert_eq!((code, out.as_str()), (0, "sent 4000\n"), "{err}");
}

#[test]
fn ack_answers_each_datagram() {
    let (_l, addr) = listen("127.0.0.1", true);
    let me = UdpSocket::bind("127.0.0.1:0").unwrap();
    me.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0u8; 16];
    for msg in ["one", "two"] {
        me.send_to(msg.as_bytes(), addr).unwrap();
        let (n, from) = me.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ack"[..], addr));
    }
}

#[test]
fn ipv6_literals() {
    if !netkit_sys::sys::caps::caps().ipv6_loopback {
        eprintln!("SKIPPED: no IPv6 loopback here");
        return;
    }
    let (l, addr) = listen("::1", false);
    let (code, out, err) = send(&[&addr.to_string(), "over v6"]);
    assert_eq!((code, out.as_str()), (0, "sent 1\n"), "{err}");
    let got = lines(&l, 1);
    assert!(
        got[0].starts_with("From [::1]:") && got[0].ends_with(": over v6"),
        "{got:?}"
    );
}

#[test]
fn only_ip_literals_and_good_arguments() {
    for bad in [
        "localhost:9000",
        "example.test:53",
        "127.0.0.1",
        "127.0.0.1:0",
        "::1:9000",
        "[::1]",
        "1.2.3.4:99999",
    ] {
        let (code, out, err) = send(&[bad, "x"]);
        assert_eq!(code, 1, "{bad}: {err}");
        assert!(out.is_empty());
        assert!(
            err.starts_with("netkit: error: EINVAL: udp send: invalid address"),
            "{bad}: {err}"
        );
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // No message at all, or an unknown option: usage, exit 2.
    assert_eq!(send(&["127.0.0.1:9"]).0, 2);
    assert_eq!(send(&["--bogus", "127.0.0.1:9", "x"]).0, 2);
    // A port already bound: EADDRINUSE.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut cmd = Command::new(bin("netkit"));
    cmd.args(["udp", "listen", "--port", &port]);
    let (code, _, err) = run_bounded(&mut cmd, b"", LIMIT);
    assert_eq!(code, 1);
    assert!(
        err.starts_with(&format!("netkit: error: EADDRINUSE: bind 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn signals_stop_the_listener_within_a_second() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let (mut l, _) = listen("127.0.0.1", false);
        let t = Instant::now();
        l.signal(sig);
        let status = l.wait_exit(Duration::from_secs(5)).expect("exited");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "took {:?}",
            t.elapsed()
        );
        assert_eq!(status.code(), Some(0), "signal {sig}");
    }
}

mod blocking_udp {
    //! The blocking loop's UDP sockets (netkit_blocking::udp), in process.

    use std::cell::RefCell;
    use std::net::{SocketAddr, UdpSocket};
    use std::rc::Rc;
    use std::time::Duration;

    use netkit_blocking::EventLoop;
    use netkit_blocking::udp::{UdpHandler, UdpOptions, UdpSocket as NkSocket};
    use netkit_udp::args::Arg;

    const LIMIT: Duration = Duration::from_secs(20);

    #[derive(Default)]
    struct Log {
        data: Vec<(Vec<u8>, SocketAddr)>,
        errors: Vec<String>,
        drains: usize,
    }

    struct Rec {
        log: Rc<RefCell<Log>>,
        echo: bool,
    }

    impl UdpHandler for Rec {
        fn data(&mut self, s: &mut NkSocket<'_>, data: &[u8], from: SocketAddr, truncated: bool) {
            assert!(!truncated);
            self.log.borrow_mut().data.push((data.to_vec(), from));
            if self.echo {
                assert_eq!(s.send_to(data, from), Ok(true));
            }
        }
        fn drain(&mut self, _s: &mut NkSocket<'_>) {
            self.log.borrow_mut().drains += 1;
        }
        fn error(&mut self, _s: &mut NkSocket<'_>, e: &netkit_sys::Error) {
            self.log.borrow_mut().errors.push(e.to_string());
        }
    }

    fn socket(
        lp: &mut EventLoop,
        opts: UdpOptions,
        echo: bool,
    ) -> (netkit_blocking::UdpId, Rc<RefCell<Log>>) {
        let log = Rc::new(RefCell::new(Log::default()));
        let id = lp
            .udp(
                opts,
                Rec {
                    log: log.clone(),
                    echo,
                },
            )
            .unwrap();
        (id, log)
    }

    #[test]
    fn echo_and_send_many_in_order() {
        let mut lp = EventLoop::new().unwrap();
        let (id, log) = socket(&mut lp, UdpOptions::new("127.0.0.1", 0), true);
        let addr = lp.udp_local_addr::<Rec>(id).unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        peer.send_to(b"ping", addr).unwrap();
        lp.run_until(LIMIT, || !log.borrow().data.is_empty())
            .unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"ping"[..], addr), "echoed");
        // sendMany from outside a callback: two equal sizes (GSO where the
        // kernel has it), an empty datagram, a longer one: all, in order.
        let to = peer.local_addr().unwrap();
        let ip = to.ip().to_string();
        let port = i64::from(to.port());
        let list = [
            Arg::Data(b"aa"),
            Arg::Port(port),
            Arg::Addr(&ip),
            Arg::Data(b"bb"),
            Arg::Port(port),
            Arg::Addr(&ip),
            Arg::Data(b""),
            Arg::Port(port),
            Arg::Addr(&ip),
            Arg::Data(b"longer"),
            Arg::Port(port),
            Arg::Addr(&ip),
        ];
        let n = lp
            .with_udp::<Rec, _>(id, |_, s| s.send_many(&list))
            .unwrap()
            .unwrap();
        assert_eq!(n, 4);
        for want in [&b"aa"[..], b"bb", b"", b"longer"] {
            let (n, _) = peer.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], want);
        }
        // Bad lists are errors of the call, naming the entry.
        let bad = [Arg::Data(b"x"), Arg::Port(port), Arg::Addr("localhost")];
        let e = lp
            .with_udp::<Rec, _>(id, |_, s| s.send_many(&bad))
            .unwrap()
            .unwrap_err();
        assert!(
            e.to_string().starts_with("EINVAL: sendMany: entry 2"),
            "{e}"
        );
        let odd = [Arg::Data(b"x"), Arg::Port(port)];
        assert!(
            lp.with_udp::<Rec, _>(id, |_, s| s.send_many(&odd))
                .unwrap()
                .is_err()
        );
        assert_eq!(log.borrow().drains, 0, "no drain without backpressure");
        // Close: options and sends are EBADF on a closed socket, then it is gone.
        lp.with_udp::<Rec, _>(id, |_, s| {
            s.close();
            assert!(
                s.set_broadcast(true)
                    .unwrap_err()
                    .to_string()
                    .starts_with("EBADF")
            );
            assert!(
                s.send_to(b"x", to)
                    .unwrap_err()
                    .to_string()
                    .starts_with("EBADF")
            );
        });
        assert!(lp.with_udp::<Rec, _>(id, |_, _| ()).is_none());
    }

    #[test]
    fn a_connected_socket_and_its_icmp_errors() {
        let mut lp = EventLoop::new().unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let to = peer.local_addr().unwrap();
        let mut opts = UdpOptions::new("127.0.0.1", 0);
        opts.connect = Some(("localhost".into(), to.port()));
        let (id, log) = socket(&mut lp, opts, false);
        assert_eq!(
            lp.with_udp::<Rec, _>(id, |_, s| s.send(b"hello")).unwrap(),
            Ok(true)
        );
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"hello");
        // A destination on a connected socket is refused.
        let list = [Arg::Data(b"x"), Arg::Port(1), Arg::Addr("127.0.0.1")];
        assert!(
            lp.with_udp::<Rec, _>(id, |_, s| s.send_many(&list))
                .unwrap()
                .is_err()
        );
        // Its peer answers; then the peer goes away: the ICMP port
        // unreachable surfaces as an error, and the socket stays open.
        peer.send_to(b"back", from).unwrap();
        lp.run_until(LIMIT, || !log.borrow().data.is_empty())
            .unwrap();
        assert_eq!(log.borrow().data[0].0, b"back");
        drop(peer);
        let _ = lp.with_udp::<Rec, _>(id, |_, s| s.send(b"anyone?"));
        lp.run_until(LIMIT, || !log.borrow().errors.is_empty())
            .unwrap();
        assert!(
            log.borrow().errors[0].starts_with("ECONNREFUSED"),
            "{:?}",
            log.borrow().errors
        );
        assert!(lp.with_udp::<Rec, _>(id, |_, s| s.is_closed()) == Some(false));
        // Options on an open socket.
        lp.with_udp::<Rec, _>(id, |_, s| {
            s.set_broadcast(true).unwrap();
            s.set_ttl(5).unwrap();
            s.set_multicast_ttl(2).unwrap();
            s.set_multicast_loopback(false).unwrap();
            s.set_send_buffer_size(64 << 10).unwrap();
            s.set_recv_buffer_size(64 << 10).unwrap();
            assert!(
                s.add_membership("10.0.0.1", None)
                    .unwrap_err()
                    .to_string()
                    .starts_with("EINVAL")
            );
        });
    }

    /// A receiver with room for a whole batch (so nothing is dropped at
    /// its end), reading with a timeout.
    fn roomy_receiver() -> UdpSocket {
        let r = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&r)
            .set_recv_buffer_size(8 << 20)
            .unwrap();
        r.set_read_timeout(Some(LIMIT)).unwrap();
        r
    }

    /// Equal-size datagrams to one destination go as one GSO send where the
    /// kernel has it; the same datagrams sent one by one take the plain
    /// path. The receiver sees exactly the same datagrams, in order.
    #[test]
    fn gso_and_plain_sends_deliver_identical_datagrams() {
        let mut lp = EventLoop::new().unwrap();
        let (id, _log) = socket(&mut lp, UdpOptions::new("127.0.0.1", 0), false);
        let peer = roomy_receiver();
        let to = peer.local_addr().unwrap();
        let (ip, port) = (to.ip().to_string(), i64::from(to.port()));
        let grams: Vec<Vec<u8>> = (0..40u8)
            .map(|i| {
                (0..1200u32)
                    .map(|j| i.wrapping_mul(31).wrapping_add(j as u8))
                    .collect()
            })
            .collect();
        let mut list = Vec::new();
        for g in &grams {
            list.extend([Arg::Data(g), Arg::Port(port), Arg::Addr(&ip)]);
        }
        eprintln!("GSO on this kernel: {}", netkit_sys::sys::udp::gso_works());
        let batched = lp
            .with_udp::<Rec, _>(id, |_, s| s.send_many(&list))
            .unwrap()
            .unwrap();
        assert_eq!(batched, grams.len());
        for g in &grams {
            assert_eq!(
                lp.with_udp::<Rec, _>(id, |_, s| s.send_to(g, to)).unwrap(),
                Ok(true)
            );
        }
        let mut buf = vec![0u8; 65_536];
        let mut got = Vec::new();
        while got.len() < 2 * grams.len() {
            let (n, _) = peer.recv_from(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        assert!(
            got[..grams.len()] == grams[..],
            "the batched datagrams differ"
        );
        assert!(
            got[grams.len()..] == grams[..],
            "the plain datagrams differ"
        );
    }

    /// Sending to a broadcast address needs `setBroadcast(true)`
    /// (SO_BROADCAST): EACCES without it.
    #[test]
    fn broadcast_needs_permission() {
        let mut lp = EventLoop::new().unwrap();
        let (id, _log) = socket(&mut lp, UdpOptions::new("127.0.0.1", 0), false);
        let peer = roomy_receiver();
        let to: SocketAddr = format!("127.255.255.255:{}", peer.local_addr().unwrap().port())
            .parse()
            .unwrap();
        let e = lp
            .with_udp::<Rec, _>(id, |_, s| s.send_to(b"all", to))
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().starts_with("EACCES"), "{e}");
        lp.with_udp::<Rec, _>(id, |_, s| s.set_broadcast(true).unwrap());
        assert_eq!(
            lp.with_udp::<Rec, _>(id, |_, s| s.send_to(b"all", to))
                .unwrap(),
            Ok(true)
        );
    }

    /// A GSO batch (equal segments and a shorter tail) to a loop socket:
    /// with GRO the kernel may hand it over as one buffer, and the handler
    /// still gets each datagram on its own, in order, from its sender.
    #[test]
    fn coalesced_datagrams_reach_the_handler_one_by_one() {
        use netkit_sys::sys::udp;
        let mut lp = EventLoop::new().unwrap();
        let (id, log) = socket(&mut lp, UdpOptions::new("127.0.0.1", 0), false);
        let to = lp.udp_local_addr::<Rec>(id).unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        eprintln!("GSO {} GRO {}", udp::gso_works(), udp::gro_works());
        let want: Vec<Vec<u8>> = (0..30u8)
            .map(|i| vec![i; if i == 29 { 17 } else { 1200 }])
            .collect();
        if udp::gso_works() {
            let data = want.concat();
            assert_eq!(
                udp::send_gso(&a, &data, 1200, Some(to)).unwrap(),
                data.len()
            );
        } else {
            for w in &want {
                a.send_to(w, to).unwrap();
            }
        }
        lp.run_until(LIMIT, || log.borrow().data.len() >= want.len())
            .unwrap();
        let log = log.borrow();
        let got: Vec<Vec<u8>> = log.data.iter().map(|(d, _)| d.clone()).collect();
        assert_eq!(got, want);
        assert!(log.data.iter().all(|(_, f)| *f == a.local_addr().unwrap()));
    }
}
