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
