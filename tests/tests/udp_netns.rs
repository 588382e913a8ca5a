//! Multicast and source-specific multicast across two network namespaces
//! joined by a veth pair, IPv4 and IPv6, created and removed by the test (root only;
//! skipped loudly elsewhere, a failure under CI). The sender's namespace
//! has two addresses (two sources); `nk-mcast` runs the blocking loop's UDP
//! sockets inside the namespaces.
//!
//! Absence is shown without waiting: one receiving socket is joined to the
//! group under test and to a marker group, and a datagram to the marker
//! follows each one that must not arrive. Both travel the same path into
//! the same socket's queue, in order, so the marker's line coming first
//! means the other was never delivered.

use std::process::Command;
use std::time::Duration;

use netkit_tests::bin;
use netkit_tests::peer::{Peer, in_ci, run_bounded};

const LIMIT: Duration = Duration::from_secs(20);
const SENDER: &str = "10.77.0.1";
const OTHER_SOURCE: &str = "10.77.0.3";
const RECEIVER: &str = "10.77.0.2";
const MARK: &str = "239.7.7.9";
const SENDER6: &str = "fd77::1";
const OTHER_SOURCE6: &str = "fd77::3";
const RECEIVER6: &str = "fd77::2";
const MARK6: &str = "ff15::7:9";

/// Two namespaces and a veth pair between them; removed on drop.
struct Netns {
    a: String,
    b: String,
    /// The veth ends: in `a`, in `b`.
    va: String,
    vb: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let (code, _, err) = run_bounded(Command::new("ip").args(args), b"", LIMIT);
    if code == 0 {
        Ok(())
    } else {
        Err(format!("ip {}: {err}", args.join(" ")))
    }
}

impl Netns {
    /// `None` (loudly) when namespaces cannot be made here; under CI that
    /// is a failure.
    fn new(tag: &str) -> Option<Self> {
        let id = format!("{}{tag}", std::process::id());
        let ns = Self {
            a: format!("nka{id}"),
            b: format!("nkb{id}"),
            va: format!("nkva{id}"),
            vb: format!("nkvb{id}"),
        };
        let (va, vb) = (&ns.va, &ns.vb);
        let setup = || -> Result<(), String> {
            ip(&["netns", "add", &ns.a])?;
            ip(&["netns", "add", &ns.b])?;
            ip(&["link", "add", va, "type", "veth", "peer", "name", vb])?;
            ip(&["link", "set", va, "netns", &ns.a])?;
            ip(&["link", "set", vb, "netns", &ns.b])?;
            for (n, dev, addrs, v6) in [
                (
                    &ns.a,
                    va,
                    &[SENDER, OTHER_SOURCE][..],
                    &[SENDER6, OTHER_SOURCE6][..],
                ),
                (&ns.b, vb, &[RECEIVER][..], &[RECEIVER6][..]),
            ] {
                for a in addrs {
                    ip(&["-n", n, "addr", "add", &format!("{a}/24"), "dev", dev])?;
                }
                // IPv6 beside, without duplicate address detection (an
                // address is usable, and a source, at once).
                for a in v6 {
                    ip(&[
                        "-n",
                        n,
                        "addr",
                        "add",
                        &format!("{a}/64"),
                        "dev",
                        dev,
                        "nodad",
                    ])?;
                }
                ip(&["-n", n, "link", "set", dev, "up"])?;
                ip(&["-n", n, "link", "set", "lo", "up"])?;
            }
            Ok(())
        };
        match setup() {
            Ok(()) => Some(ns),
            Err(e) if in_ci() => panic!("network namespaces are needed under CI: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: cannot make network namespaces here (root needed): {e}");
                None
            }
        }
    }

    /// `nk-mcast recv` in namespace `ns`, once it has joined.
    fn recv(&self, ns: &str, iface: &str, port: u16, args: &[&str]) -> Peer {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(bin("nk-mcast"))
            .args(["recv", &port.to_string(), iface])
            .args(args);
        let p = Peer::spawn("nk-mcast recv", cmd).expect("spawn");
        assert_eq!(
            p.next_line(LIMIT).as_deref(),
            Some("ready"),
            "{}",
            p.stderr()
        );
        p
    }

    /// `nk-mcast send` from `from` in the sender's namespace.
    fn send(&self, from: &str, to: &str, ttl: u32, lo: bool, data: &[&str]) {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.a])
            .arg(bin("nk-mcast"))
            .args([
                "send",
                from,
                to,
                &ttl.to_string(),
                if lo { "1" } else { "0" },
            ])
            .args(data);
        let (code, _, err) = run_bounded(&mut cmd, b"", LIMIT);
        assert_eq!(code, 0, "nk-mcast send: {err}");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and the pair.
        for n in [&self.a, &self.b] {
            let _ = ip(&["netns", "del", n]);
        }
    }
}

/// The next line of `p`, or a failure naming what was awaited.
fn line(p: &Peer, what: &str) -> String {
    p.next_line(LIMIT)
        .unwrap_or_else(|| panic!("{what} never came: {}", p.stderr()))
}

#[test]
fn join_leave_ttl_and_loopback_across_namespaces() {
    let Some(ns) = Netns::new("a") else { return };
    let port = 47_001;
    let group = "239.7.7.7";
    let to = format!("{group}:{port}");
    let mark = format!("{MARK}:{port}");
    // The far receiver, and one on the sender's host (for loopback).
    let far = ns.recv(
        &ns.b,
        RECEIVER,
        port,
        &[group, MARK, "--leave", &format!("leave={group}")],
    );
    let near = ns.recv(&ns.a, SENDER, port, &[group, MARK]);

    // Joined: a TTL-1 datagram crosses the link, and loopback on shows it
    // to the sender's host too.
    ns.send(SENDER, &to, 1, true, &["one"]);
    assert_eq!(line(&far, "one"), format!("{SENDER} one"));
    assert_eq!(line(&near, "one (looped back)"), format!("{SENDER} one"));

    // Loopback off: the far side hears it; the sender's host does not (its
    // next line is the marker sent after, with loopback on).
    ns.send(SENDER, &to, 1, false, &["quiet"]);
    ns.send(SENDER, &mark, 1, true, &["m1"]);
    assert_eq!(line(&far, "quiet"), format!("{SENDER} quiet"));
    assert_eq!(line(&far, "m1"), format!("{SENDER} m1"));
    assert_eq!(
        line(&near, "m1"),
        format!("{SENDER} m1"),
        "looped back with loopback off"
    );

    // TTL 0: the datagram stays on the sender's host.
    ns.send(SENDER, &to, 0, true, &["local"]);
    ns.send(SENDER, &mark, 1, true, &["m2"]);
    assert_eq!(line(&near, "local"), format!("{SENDER} local"));
    assert_eq!(line(&near, "m2"), format!("{SENDER} m2"));
    assert_eq!(
        line(&far, "m2"),
        format!("{SENDER} m2"),
        "a TTL-0 datagram left the host"
    );

    // Leave: the far receiver drops the group; what follows to it is not
    // delivered (the marker group still is).
    ns.send(SENDER, &to, 1, true, &["leave"]);
    assert_eq!(line(&far, "leave"), format!("{SENDER} leave"));
    assert_eq!(line(&far, "left"), format!("left {group}"));
    ns.send(SENDER, &to, 1, true, &["after"]);
    ns.send(SENDER, &mark, 1, true, &["m3"]);
    assert_eq!(
        line(&far, "m3"),
        format!("{SENDER} m3"),
        "delivered after dropMembership"
    );
    // The sender's host still saw it: it was sent.
    for want in ["leave", "after", "m3"] {
        assert_eq!(line(&near, want), format!("{SENDER} {want}"));
    }
}

#[test]
fn source_specific_membership_hears_only_its_source() {
    let Some(ns) = Netns::new("s") else { return };
    let port = 47_002;
    let group = "232.7.7.7";
    let to = format!("{group}:{port}");
    let far = ns.recv(&ns.b, RECEIVER, port, &[&format!("{SENDER}@{group}"), MARK]);
    // From the other source first: not delivered; then from the joined one.
    ns.send(OTHER_SOURCE, &to, 1, false, &["other"]);
    ns.send(SENDER, &to, 1, false, &["joined"]);
    assert_eq!(
        line(&far, "joined"),
        format!("{SENDER} joined"),
        "a datagram from a source not joined was delivered"
    );
    // The marker group (any source) hears the other source: it was sent
    // and reached the link.
    ns.send(OTHER_SOURCE, &format!("{MARK}:{port}"), 1, false, &["m"]);
    assert_eq!(line(&far, "m"), format!("{OTHER_SOURCE} m"));
}

#[test]
fn ipv6_join_leave_and_source_specific_membership_across_namespaces() {
    let Some(ns) = Netns::new("6") else { return };
    let port = 47_003;
    let group = "ff15::7:7";
    let ssm = "ff35::7:7";
    let to = format!("[{group}]:{port}");
    let to_ssm = format!("[{ssm}]:{port}");
    let mark = format!("[{MARK6}]:{port}");
    // Joins on the receiver's veth by name; an MLDv2 source filter for the
    // SSM group.
    let far = ns.recv(
        &ns.b,
        &ns.vb,
        port,
        &[
            group,
            &format!("{SENDER6}@{ssm}"),
            MARK6,
            "--leave",
            &format!("leave={group}"),
        ],
    );
    let from = format!("{SENDER6}%{}", ns.va);
    let other = format!("{OTHER_SOURCE6}%{}", ns.va);

    // Joined: delivered across the link, from the sender's address.
    ns.send(&from, &to, 1, false, &["one"]);
    assert_eq!(line(&far, "one"), format!("{SENDER6} one"));

    // SSM: the other source first, not delivered; then the joined one.
    ns.send(&other, &to_ssm, 1, false, &["other"]);
    ns.send(&from, &to_ssm, 1, false, &["joined"]);
    assert_eq!(
        line(&far, "joined"),
        format!("{SENDER6} joined"),
        "a datagram from a source not joined was delivered"
    );
    // The other source reaches the link (the any-source marker hears it).
    ns.send(&other, &mark, 1, false, &["m1"]);
    assert_eq!(line(&far, "m1"), format!("{OTHER_SOURCE6} m1"));

    // Leave: nothing to the group after `dropMembership`; the marker still.
    ns.send(&from, &to, 1, false, &["leave"]);
    assert_eq!(line(&far, "leave"), format!("{SENDER6} leave"));
    assert_eq!(line(&far, "left"), format!("left {group}"));
    ns.send(&from, &to, 1, false, &["after"]);
    ns.send(&from, &mark, 1, false, &["m2"]);
    assert_eq!(
        line(&far, "m2"),
        format!("{SENDER6} m2"),
        "delivered after dropMembership"
    );
}

/// Partial sends for real: in a namespace whose `lo` sends through a slow
/// token bucket, datagrams wait in the qdisc charged to the sender's tiny
/// `SO_SNDBUF`, so `send_many` takes only part of a batch and `drain`
/// follows. Every datagram the counts claimed arrives exactly once, in
/// order, and the partial path was taken.
#[test]
fn partial_sends_lose_nothing_the_count_claimed() {
    let n = format!("nkf{}", std::process::id());
    let setup = || -> Result<(), String> {
        ip(&["netns", "add", &n])?;
        ip(&["-n", &n, "link", "set", "lo", "up"])?;
        let (code, _, err) = run_bounded(
            Command::new("ip").args([
                "netns", "exec", &n, "tc", "qdisc", "add", "dev", "lo", "root", "tbf", "rate",
                "8mbit", "burst", "4kb", "limit", "4mb",
            ]),
            b"",
            LIMIT,
        );
        if code == 0 {
            Ok(())
        } else {
            Err(format!("tc qdisc add tbf: {err}"))
        }
    };
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = ip(&["netns", "del", &self.0]);
        }
    }
    let r = setup();
    let _gone = Gone(n.clone());
    if let Err(e) = r {
        assert!(
            !in_ci(),
            "a namespace with a tbf qdisc is needed under CI: {e}"
        );
        eprintln!("SKIPPED: cannot make a namespace with a qdisc here (root needed): {e}");
        return;
    }
    // Both drivers: the blocking loop's `drain` handler, smol's
    // `writable().await`.
    for driver in ["blocking", "smol"] {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &n])
            .arg(bin("nk-udp-flood"))
            .args(["3000", driver]);
        let (code, out, err) = run_bounded(&mut cmd, b"", Duration::from_secs(90));
        let out = String::from_utf8_lossy(&out);
        assert_eq!(code, 0, "{driver}: {out}{err}");
        let field = |name: &str| -> usize {
            let w: Vec<&str> = out.split_whitespace().collect();
            let i = w.iter().position(|x| *x == name).expect(name);
            w[i + 1].parse().expect("a number")
        };
        assert_eq!(
            (field("sent"), field("received")),
            (3000, 3000),
            "{driver}: {out}"
        );
        assert!(
            field("partial") > 0,
            "{driver}: the kernel never refused part of a batch: {out}"
        );
        assert!(field("drains") >= field("partial"), "{driver}: {out}");
    }
}
