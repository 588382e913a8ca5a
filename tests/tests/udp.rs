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
        // Its peer answers; then the peer stops hearing it: the ICMP port
        // unreachable surfaces as an error, and the socket stays open.
        peer.send_to(b"back", from).unwrap();
        let came = lp
            .run_until(LIMIT, || !log.borrow().data.is_empty())
            .unwrap();
        assert!(came, "no answer in {LIMIT:?}: {:?}", log.borrow().errors);
        assert_eq!(log.borrow().data[0].0, b"back");
        netkit_tests::make_deaf(&peer);
        let _ = lp.with_udp::<Rec, _>(id, |_, s| s.send(b"anyone?"));
        let came = lp
            .run_until(LIMIT, || !log.borrow().errors.is_empty())
            .unwrap();
        assert!(came, "no ICMP error in {LIMIT:?}");
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

    /// A flood cannot starve the loop: a sender thread keeps the socket's
    /// queue full, faster than a handler that works 20 µs per datagram can
    /// drain it, so reading until EAGAIN would never return; reading a
    /// bounded number per readiness lets a 5 ms timer tick all along while
    /// datagrams are delivered.
    #[test]
    fn a_flood_cannot_starve_the_loops_timers() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::Instant;

        struct Slow(Rc<RefCell<usize>>);
        impl UdpHandler for Slow {
            fn data(&mut self, _: &mut NkSocket<'_>, _: &[u8], _: SocketAddr, _: bool) {
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(20) {
                    std::hint::spin_loop();
                }
                *self.0.borrow_mut() += 1;
            }
        }
        fn tick(lp: &mut EventLoop, seen: Rc<RefCell<Vec<usize>>>, got: Rc<RefCell<usize>>) {
            lp.set_timer(Instant::now() + Duration::from_millis(5), move |lp| {
                seen.borrow_mut().push(*got.borrow());
                tick(lp, seen, got);
            });
        }

        let mut lp = EventLoop::new().unwrap();
        let got = Rc::new(RefCell::new(0usize));
        let id = lp
            .udp(UdpOptions::new("127.0.0.1", 0), Slow(got.clone()))
            .unwrap();
        let to = lp.udp_local_addr::<Slow>(id).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flood = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let a = UdpSocket::bind("127.0.0.1:0").unwrap();
                let d = [7u8; 1200];
                let mut sent = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if a.send_to(&d, to).is_ok() {
                        sent += 1;
                    }
                }
                sent
            })
        };
        // The flood first: the queue is full before the timer starts.
        let t0 = Instant::now();
        while *got.borrow() == 0 && t0.elapsed() < LIMIT {
            lp.turn(Some(Duration::from_millis(10))).unwrap();
        }
        let seen = Rc::new(RefCell::new(Vec::new()));
        tick(&mut lp, seen.clone(), got.clone());
        let r = lp.run_until(LIMIT, || seen.borrow().len() >= 20);
        stop.store(true, Ordering::Relaxed);
        let sent = flood.join().unwrap();
        r.unwrap();
        let seen = seen.borrow();
        assert!(seen.len() >= 20, "the timer starved: {} ticks", seen.len());
        // Delivery went on while the timer ticked. (Not between every two
        // ticks: on a loaded machine the sender thread may wait longer than
        // a tick for a CPU, and the queue run dry meanwhile.)
        assert!(
            seen.last() > seen.first(),
            "no datagram was delivered while the timer ticked: {seen:?}"
        );
        eprintln!(
            "{} datagrams sent, {} delivered, ticks at {seen:?}",
            sent,
            *got.borrow()
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

mod smol_udp {
    //! netkit_smol::udp::UdpSocket over loopback: echo, sendMany in both
    //! forms with Bun's exact count, IPv4 and IPv6, a connected socket and
    //! its ICMP errors, backpressure and the drain, options.

    use std::net::{SocketAddr, UdpSocket};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures_lite::future;
    use netkit_smol::udp::{Arg, UdpOptions, UdpSocket as NkSocket};

    const LIMIT: Duration = Duration::from_secs(20);

    /// `f` bounded by LIMIT (a hang fails the test instead of stalling it).
    pub(super) fn run<T>(f: impl Future<Output = T>) -> T {
        smol::block_on(future::or(f, async {
            smol::Timer::after(LIMIT).await;
            panic!("timed out after {LIMIT:?}")
        }))
    }

    /// A GSO batch (equal segments, a shorter tail) and then an empty
    /// datagram to a smol socket: with GRO on, the kernel may coalesce the
    /// batch, and `recv_from` and `recv_many` still hand out each datagram
    /// on its own, in order.
    #[test]
    fn coalesced_datagrams_come_out_one_by_one() {
        use netkit_sys::sys::udp;
        run(async {
            let s = NkSocket::bind(UdpOptions::new("127.0.0.1", 0))
                .await
                .unwrap();
            let to = s.local_addr().unwrap();
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let want: Vec<Vec<u8>> = (0..25u8)
                .map(|i| vec![i; if i == 24 { 5 } else { 1200 }])
                .collect();
            for _ in 0..2 {
                if udp::gso_works() {
                    let data = want.concat();
                    udp::send_gso(&a, &data, 1200, Some(to)).unwrap();
                } else {
                    for w in &want {
                        a.send_to(w, to).unwrap();
                    }
                }
                a.send_to(b"", to).unwrap();
            }
            let mut expect = want.clone();
            expect.push(Vec::new());
            let mut buf = vec![0u8; 2048];
            let mut got = Vec::new();
            while got.len() < expect.len() {
                let (n, from, cut) = s.recv_from(&mut buf).await.unwrap();
                assert_eq!((from, cut), (a.local_addr().unwrap(), false));
                got.push(buf[..n].to_vec());
            }
            assert_eq!(got, expect, "through recv_from");
            let mut bufs = vec![vec![0u8; 2048]; 8];
            let mut out = Vec::new();
            let mut got = Vec::new();
            while got.len() < expect.len() {
                let n = s.recv_many(&mut bufs, &mut out).await.unwrap();
                for (r, b) in out.iter().zip(&bufs).take(n) {
                    assert!(!r.truncated);
                    got.push(b[..r.len].to_vec());
                }
            }
            assert_eq!(got, expect, "through recv_many");
        });
    }

    fn hosts() -> Vec<&'static str> {
        let mut h = vec!["127.0.0.1"];
        if netkit_sys::sys::caps::caps().ipv6_loopback {
            h.push("::1");
        } else {
            eprintln!("SKIPPED (IPv6 half): no IPv6 loopback here");
        }
        h
    }

    fn peer(host: &str) -> UdpSocket {
        let p = UdpSocket::bind(SocketAddr::new(host.parse().unwrap(), 0)).unwrap();
        p.set_read_timeout(Some(LIMIT)).unwrap();
        p
    }

    fn recv(p: &UdpSocket) -> (Vec<u8>, SocketAddr) {
        let mut buf = [0u8; 2048];
        let (n, from) = p.recv_from(&mut buf).unwrap();
        (buf[..n].to_vec(), from)
    }

    #[test]
    fn echo_and_send_many_in_both_forms() {
        for host in hosts() {
            run(async {
                let s = NkSocket::bind(UdpOptions::new(host, 0)).await.unwrap();
                let addr = s.local_addr().unwrap();
                assert_eq!(addr.ip().to_string(), host);
                let p = peer(host);
                let to = p.local_addr().unwrap();
                // Echo: recv_from, then send_to the sender.
                p.send_to(b"ping", addr).unwrap();
                let mut buf = vec![0u8; 64];
                let (n, from, truncated) = s.recv_from(&mut buf).await.unwrap();
                assert_eq!((&buf[..n], from, truncated), (&b"ping"[..], to, false));
                assert_eq!(s.send_to(&buf[..n], from), Ok(true));
                assert_eq!(recv(&p), (b"ping".to_vec(), addr));
                // sendMany unconnected: equal sizes (GSO where the kernel
                // has it), an empty datagram, a longer one; Bun's count.
                let ip = to.ip().to_string();
                let port = i64::from(to.port());
                let mut list = Vec::new();
                for d in [&b"aa"[..], b"bb", b"", b"longer"] {
                    list.extend([Arg::Data(d), Arg::Port(port), Arg::Addr(&ip)]);
                }
                assert_eq!(s.send_many(&list), Ok(4));
                for want in [&b"aa"[..], b"bb", b"", b"longer"] {
                    assert_eq!(recv(&p), (want.to_vec(), addr));
                }
                // A name where an IP literal is required, an odd list: EINVAL.
                let bad = [Arg::Data(b"x"), Arg::Port(port), Arg::Addr("localhost")];
                let e = s.send_many(&bad).unwrap_err().to_string();
                assert!(e.starts_with("EINVAL: sendMany: entry 2"), "{e}");
                assert!(s.send_many(&[Arg::Data(b"x"), Arg::Port(port)]).is_err());
                // A receive batch: three datagrams, one recv_many (or more).
                for d in [&b"r1"[..], b"r2", b"r3"] {
                    p.send_to(d, addr).unwrap();
                }
                let mut bufs = vec![vec![0u8; 64]; 8];
                let mut out = Vec::new();
                let mut got = Vec::new();
                while got.len() < 3 {
                    s.recv_many(&mut bufs, &mut out).await.unwrap();
                    for (r, b) in out.iter().zip(&bufs) {
                        assert_eq!(r.from, Some(to));
                        got.push(b[..r.len].to_vec());
                    }
                }
                assert_eq!(got, [b"r1".to_vec(), b"r2".to_vec(), b"r3".to_vec()]);
                // sendMany connected: data only; a destination is refused.
                let c = NkSocket::bind(UdpOptions::new(host, 0).connect(ip.clone(), to.port()))
                    .await
                    .unwrap();
                assert_eq!(c.remote_addr(), Some(to));
                let list = [Arg::Data(b"c1"), Arg::Data(b"c2"), Arg::Data(b"c3")];
                assert_eq!(c.send_many(&list), Ok(3));
                for want in [&b"c1"[..], b"c2", b"c3"] {
                    assert_eq!(recv(&p).0, want);
                }
                assert!(c.send_to(b"x", to).is_err());
                assert!(
                    c.send_many(&[Arg::Data(b"x"), Arg::Port(port), Arg::Addr(&ip)])
                        .is_err()
                );
            });
        }
    }

    #[test]
    fn a_connected_socket_and_its_icmp_errors() {
        for host in hosts() {
            run(async {
                let p = peer(host);
                let to = p.local_addr().unwrap();
                let s = NkSocket::bind(UdpOptions::new(host, 0).connect(host, to.port()))
                    .await
                    .unwrap();
                assert_eq!(s.send(b"hello"), Ok(true));
                let (got, from) = recv(&p);
                assert_eq!(
                    (got.as_slice(), from),
                    (&b"hello"[..], s.local_addr().unwrap())
                );
                p.send_to(b"back", from).unwrap();
                let mut buf = [0u8; 16];
                let (n, _, _) = s.recv_from(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"back");
                // The peer stops hearing it: the ICMP port unreachable
                // surfaces as ECONNREFUSED on a later call, and the socket
                // stays usable (the peer hears it again).
                netkit_tests::make_deaf(&p);
                let _ = s.send(b"anyone?");
                let e = s.recv_from(&mut buf).await.unwrap_err().to_string();
                assert!(e.starts_with("ECONNREFUSED"), "{e}");
                p.connect(from).unwrap();
                assert_eq!(s.send(b"again"), Ok(true));
                assert_eq!(recv(&p).0, b"again");
            });
        }
    }

    /// A tiny send buffer and a receiver draining in another thread: every
    /// datagram the counts claim arrives, once, in order; when the kernel
    /// pushes back (a short count), `writable` resolves and the rest goes.
    /// The sender keeps at most a window ahead of what the receiver has read
    /// (UDP has no flow control: a receive buffer overrun would drop).
    #[test]
    fn backpressure_loses_nothing_the_count_claims() {
        const N: usize = 20_000;
        const WINDOW: usize = 64;
        let rx = peer("127.0.0.1");
        let to = rx.local_addr().unwrap();
        let read = Arc::new(AtomicUsize::new(0));
        let r = read.clone();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::with_capacity(N);
            let mut buf = [0u8; 2048];
            while seen.len() < N {
                let Ok(n) = rx.recv(&mut buf) else { break };
                assert_eq!(n, 1200);
                seen.push(u32::from_be_bytes(buf[..4].try_into().unwrap()));
                r.store(seen.len(), Ordering::Release);
            }
            seen
        });
        let payloads: Vec<Vec<u8>> = (0..N as u32)
            .map(|i| {
                let mut v = i.to_be_bytes().to_vec();
                v.resize(1200, 0);
                v
            })
            .collect();
        let (short, calls) = run(async {
            let opts = UdpOptions::new("127.0.0.1", 0).connect("127.0.0.1", to.port());
            let s = NkSocket::bind(opts).await.unwrap();
            socket2::SockRef::from(s.get_ref())
                .set_send_buffer_size(1)
                .unwrap();
            let (mut short, mut calls, mut i) = (0, 0, 0);
            while i < N {
                // A bounded wait for the reader to be within a window.
                let end = std::time::Instant::now() + LIMIT;
                while i - read.load(Ordering::Acquire) >= WINDOW {
                    assert!(std::time::Instant::now() < end, "the reader stalled");
                    std::thread::yield_now();
                }
                let list: Vec<Arg<'_>> = payloads[i..(i + WINDOW / 2).min(N)]
                    .iter()
                    .map(|d| Arg::Data(d))
                    .collect();
                let n = s.send_many(&list).unwrap();
                calls += 1;
                assert!(n <= list.len());
                i += n;
                if n < list.len() {
                    short += 1;
                    s.writable().await.unwrap();
                }
            }
            // And the convenience: all of a list, waiting as needed.
            (short, calls)
        });
        let seen = reader.join().unwrap();
        assert_eq!(seen.len(), N, "every datagram counted arrived");
        assert!(
            seen.iter().enumerate().all(|(i, v)| *v as usize == i),
            "in order, once"
        );
        eprintln!("backpressure: {short} short sendMany counts in {calls} calls");
    }

    /// `send_many_all` sends a list longer than the kernel takes at once,
    /// and the options of step one behave as on the blocking loop.
    #[test]
    fn send_many_all_and_options() {
        run(async {
            let p = peer("127.0.0.1");
            let to = p.local_addr().unwrap();
            let s = NkSocket::bind(UdpOptions::new("127.0.0.1", 0))
                .await
                .unwrap();
            let ip = to.ip().to_string();
            let port = i64::from(to.port());
            let mut list = Vec::new();
            for _ in 0..100 {
                list.extend([Arg::Data(b"m"), Arg::Port(port), Arg::Addr(&ip)]);
            }
            assert_eq!(s.send_many_all(&list).await, Ok(100));
            for _ in 0..100 {
                assert_eq!(recv(&p).0, b"m");
            }
            s.writable().await.unwrap();
            s.set_broadcast(true).unwrap();
            s.set_ttl(5).unwrap();
            s.set_multicast_ttl(2).unwrap();
            s.set_multicast_loopback(false).unwrap();
            s.set_multicast_interface("127.0.0.1").unwrap();
            s.add_membership("239.255.0.77", Some("127.0.0.1")).unwrap();
            s.drop_membership("239.255.0.77", Some("127.0.0.1"))
                .unwrap();
            let e = |r: Result<(), netkit_sys::Error>| r.unwrap_err().to_string();
            assert_eq!(
                e(s.add_membership("10.0.0.1", None)),
                "EINVAL: addMembership: \"10.0.0.1\" is not a multicast group"
            );
            assert_eq!(
                e(s.add_source_specific_membership("::1", "232.1.1.1", None)),
                "EINVAL: addSourceSpecificMembership: the source ::1 is IPv6, the group 232.1.1.1 IPv4"
            );
            assert_eq!(
                e(s.add_source_specific_membership("::1", "ff3e::1", None)),
                "EINVAL: addSourceSpecificMembership: an IPv6 group on an IPv4 socket"
            );
            // Leaving what was never joined: the kernel's error, named.
            let left = e(s.drop_source_specific_membership("127.0.0.1", "232.1.1.1", None));
            assert!(
                left.starts_with('E') && left.contains(": dropSourceSpecificMembership"),
                "{left}"
            );
            // One socket shared by a receiving and a sending task.
            let s = Arc::new(s);
            let me = s.local_addr().unwrap();
            let rx = {
                let s = s.clone();
                smol::spawn(async move {
                    let mut buf = [0u8; 16];
                    let (n, from, _) = s.recv_from(&mut buf).await.unwrap();
                    (buf[..n].to_vec(), from)
                })
            };
            p.send_to(b"shared", me).unwrap();
            assert_eq!(rx.await, (b"shared".to_vec(), to));
            assert_eq!(s.send_to(b"too", to), Ok(true));
            assert_eq!(recv(&p).0, b"too");
        });
    }
}

mod names {
    //! The bind host and a connected socket's host as names, resolved once
    //! through the driver's resolver (DNS included: nsd serves `test.`), on
    //! both drivers; a name nobody knows is ENOTFOUND.

    use std::cell::RefCell;
    use std::net::{SocketAddr, UdpSocket};
    use std::rc::Rc;
    use std::time::Duration;

    use netkit_blocking::EventLoop;
    use netkit_blocking::udp::{UdpHandler, UdpOptions, UdpSocket as NkSocket};
    use netkit_sys::resolve::{DnsSettings, HostsFile};
    use netkit_tests::dns::Nsd;
    use netkit_tests::servers::Driver;

    const LIMIT: Duration = Duration::from_secs(20);

    struct Quiet;
    impl UdpHandler for Quiet {
        fn data(&mut self, _: &mut NkSocket<'_>, _: &[u8], _: SocketAddr, _: bool) {}
    }

    /// A resolver that asks only nsd (no hosts file, no resolv.conf).
    fn resolver(nsd: &Nsd) -> netkit_sys::Resolver {
        let settings = DnsSettings {
            resolv_conf: netkit_dns::ResolvConf::default(),
            servers: Some(vec![nsd.addr]),
            cache: netkit_dns::cache::CacheConfig::default(),
            prefer_v6: false,
        };
        netkit_sys::Resolver::new(HostsFile::new("/nonexistent"), settings)
    }

    /// Opens `opts` on driver `d`, sends `msg` on the connected socket, and
    /// returns (local address, remote address), or the open's error.
    fn open_and_send(
        d: Driver,
        nsd: &Nsd,
        opts: UdpOptions,
        msg: &'static [u8],
    ) -> Result<(SocketAddr, Option<SocketAddr>), String> {
        match d {
            Driver::Blocking => {
                let mut lp = EventLoop::new().unwrap();
                *lp.resolver() = resolver(nsd);
                // At once, a name that needs a query is ENOTFOUND...
                let now = lp.udp(opts.clone(), Quiet).map(|_| ());
                assert_eq!(
                    now.unwrap_err().code(),
                    "ENOTFOUND",
                    "udp() answers without a query"
                );
                // ...resolving first, it binds when the answers arrive.
                let slot = Rc::new(RefCell::new(None));
                let s = slot.clone();
                lp.udp_resolving(opts, Quiet, move |_, r| *s.borrow_mut() = Some(r));
                lp.run_until(LIMIT, || slot.borrow().is_some()).unwrap();
                let id = slot
                    .borrow_mut()
                    .take()
                    .unwrap()
                    .map_err(|e| e.to_string())?;
                lp.with_udp::<Quiet, _>(id, |_, s| {
                    assert_eq!(s.send(msg), Ok(true));
                    (s.local_addr().unwrap(), s.remote_addr())
                })
                .ok_or_else(|| "closed".to_owned())
            }
            Driver::Smol => {
                let rt = netkit_smol::Runtime::with_resolver(resolver(nsd));
                super::smol_udp::run(async {
                    // The one options type both drivers take.
                    let s = rt.udp(opts).await.map_err(|e| e.to_string())?;
                    assert_eq!(s.send(msg), Ok(true));
                    Ok((s.local_addr().unwrap(), s.remote_addr()))
                })
            }
        }
    }

    fn connected_to_a_name(d: Driver) {
        let Some(nsd) = Nsd::start() else {
            eprintln!("SKIPPED: no nsd here");
            return;
        };
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(LIMIT)).unwrap();
        let to = peer.local_addr().unwrap();
        // ns.test and echo.test are 127.0.0.1, known only to nsd.
        let opts = UdpOptions::new("ns.test", 0).connect("echo.test", to.port());
        let (local, remote) = open_and_send(d, &nsd, opts, b"via nsd").unwrap();
        assert_eq!(local.ip().to_string(), "127.0.0.1");
        assert_eq!(remote, Some(to));
        let mut buf = [0u8; 16];
        let (n, from) = peer.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"via nsd"[..], local));
    }

    fn unknown_names_are_enotfound(d: Driver) {
        let Some(nsd) = Nsd::start() else {
            eprintln!("SKIPPED: no nsd here");
            return;
        };
        let e = open_and_send(d, &nsd, UdpOptions::new("nope.test", 0), b"x").unwrap_err();
        assert_eq!(e, "ENOTFOUND: getaddrinfo nope.test");
        let opts = UdpOptions::new("127.0.0.1", 0).connect("nope.test", 9);
        let e = open_and_send(d, &nsd, opts, b"x").unwrap_err();
        assert_eq!(e, "ENOTFOUND: getaddrinfo nope.test");
    }

    netkit_tests::both_drivers!(connected_to_a_name, unknown_names_are_enotfound);
}
