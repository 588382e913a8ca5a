//! TCP socket semantics over loopback, the same scenarios on both drivers.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use netkit_tests::servers::{Behavior, Driver, TestServer};

const LIMIT: Duration = Duration::from_secs(20);

fn client(s: &TestServer) -> TcpStream {
    let c = TcpStream::connect(s.addr()).expect("connect");
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c.set_nodelay(true).unwrap();
    c
}

fn read_exact(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    c.read_exact(&mut buf).expect("read reply");
    buf
}

fn read_to_end(c: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    c.read_to_end(&mut out).expect("read to EOF");
    out
}

fn echo(d: Driver) {
    let s = TestServer::start(d, Behavior::default());
    let mut c = client(&s);
    for msg in [&b"hello"[..], b"", b"x", &[7u8; 10_000]] {
        if msg.is_empty() {
            continue;
        }
        c.write_all(msg).unwrap();
        assert_eq!(read_exact(&mut c, msg.len()), msg);
    }
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut c), b"");
    assert!(s.wait(LIMIT, |s| s.live() == 0));
    assert_eq!(s.events_of(1), ["open", "end", "close"]);
}

fn thousand_clients(d: Driver) {
    let s = TestServer::start(d, Behavior::default());
    let mut clients: Vec<TcpStream> = (0..1000).map(|_| client(&s)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.write_all(format!("client {i:04}").as_bytes()).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        assert_eq!(read_exact(c, 11), format!("client {i:04}").as_bytes());
    }
    assert!(s.wait(LIMIT, |s| s.live() == 1000));
    drop(clients);
    assert!(s.wait(LIMIT, |s| s.live() == 0), "live: {}", s.live());
}

/// A client sends 64 MiB while reading nothing: the server stops reading once its
/// bounded buffer is full, `drain` fires when the client reads, and every byte comes
/// back in order.
fn backpressure_64mib(d: Driver) {
    const TOTAL: usize = 64 * 1024 * 1024;
    const HIGH: usize = 256 * 1024;
    let s = TestServer::start(
        d,
        Behavior {
            high_water: Some(HIGH),
            ..Behavior::default()
        },
    );
    let c = client(&s);
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        netkit_tests::write_pattern(&mut w, TOTAL).unwrap();
        w.shutdown(Shutdown::Write).unwrap();
    });
    // Reading nothing for a while: the server must stall, not buffer 64 MiB.
    std::thread::sleep(Duration::from_millis(500));
    let stalled_at = s.bytes_in();
    assert!(
        stalled_at < TOTAL as u64,
        "server read everything without backpressure"
    );
    let got = netkit_tests::read_pattern(&mut { c });
    writer.join().unwrap();
    assert_eq!(got, TOTAL);
    // Bounded: the write buffer plus at most one read chunk held back.
    assert!(
        s.max_held() <= HIGH + 64 * 1024,
        "held {} bytes for one connection",
        s.max_held()
    );
    assert!(
        s.events_of(1).iter().any(|e| e == "drain"),
        "drain never fired"
    );
}

/// Client ends first: the server gets `end`, still owes and sends the reply, then closes.
fn half_close_client_first(d: Driver) {
    let s = TestServer::start(d, Behavior::default());
    let mut c = client(&s);
    c.write_all(b"last").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut c), b"last");
    assert!(s.wait(LIMIT, |s| s.live() == 0));
    assert_eq!(s.events_of(1), ["open", "end", "close"]);
}

/// Server ends first: the client sees EOF but may still send; the server still
/// receives until the client ends too.
fn half_close_server_first(d: Driver) {
    let s = TestServer::start(
        d,
        Behavior {
            end_after_reply: true,
            ..Behavior::default()
        },
    );
    let mut c = client(&s);
    c.write_all(b"bye").unwrap();
    assert_eq!(read_to_end(&mut c), b"bye", "reply then FIN");
    let before = s.bytes_in();
    c.write_all(b"still here").unwrap();
    assert!(
        s.wait(LIMIT, |s| s.bytes_in() == before + 10),
        "server stopped reading after its own end"
    );
    c.shutdown(Shutdown::Write).unwrap();
    assert!(s.wait(LIMIT, |s| s.live() == 0));
    assert_eq!(s.events_of(1), ["open", "end", "close"]);
}

fn idle_timeout(d: Driver) {
    let s = TestServer::start(
        d,
        Behavior {
            timeout: Some(Duration::from_millis(300)),
            ..Behavior::default()
        },
    );
    let mut c = client(&s);
    // Activity re-arms the timer: keep talking for longer than the timeout.
    let start = Instant::now();
    for _ in 0..6 {
        c.write_all(b"ping").unwrap();
        assert_eq!(read_exact(&mut c, 4), b"ping");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(start.elapsed() > Duration::from_millis(500));
    assert!(
        !s.events_of(1).iter().any(|e| e == "timeout"),
        "fired despite activity"
    );
    // Then go idle: the handler closes on timeout.
    assert_eq!(read_to_end(&mut c), b"");
    assert!(s.wait(LIMIT, |s| s.live() == 0));
    assert_eq!(s.events_of(1), ["open", "timeout", "close"]);
}

fn stop_keeps_connections(d: Driver) {
    let s = TestServer::start(d, Behavior::default());
    let mut c = client(&s);
    c.write_all(b"a").unwrap();
    assert_eq!(read_exact(&mut c, 1), b"a");
    s.stop(false);
    s.stop(false); // a second stop is a no-op
    // The stop reaches the server's loop asynchronously: wait for the
    // listener to go (bounded), not for a fixed time.
    let end = Instant::now() + LIMIT;
    while TcpStream::connect(s.addr()).is_ok() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        TcpStream::connect(s.addr()).is_err(),
        "still accepting after stop"
    );
    c.write_all(b"b").unwrap();
    assert_eq!(read_exact(&mut c, 1), b"b", "live connection kept serving");
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut c), b"");
    assert!(s.wait(LIMIT, |s| s.live() == 0));
}

fn stop_force_closes_connections(d: Driver) {
    let s = TestServer::start(d, Behavior::default());
    let mut a = client(&s);
    let mut b = client(&s);
    a.write_all(b"1").unwrap();
    b.write_all(b"2").unwrap();
    read_exact(&mut a, 1);
    read_exact(&mut b, 1);
    s.stop(true);
    assert_eq!(read_to_end(&mut a), b"");
    assert_eq!(read_to_end(&mut b), b"");
    assert!(s.wait(LIMIT, |s| s.live() == 0));
    for id in [1, 2] {
        assert_eq!(s.events_of(id).last().map(String::as_str), Some("close"));
    }
}

fn reload_live(d: Driver) {
    let s = TestServer::start(d, Behavior::default());
    let mut c = client(&s);
    c.write_all(b"one").unwrap();
    assert_eq!(read_exact(&mut c, 3), b"one");
    s.reload("v2:");
    let end = Instant::now() + LIMIT;
    // The reload command is asynchronous: retry until the new handler answers.
    loop {
        c.write_all(b"two").unwrap();
        let first = read_exact(&mut c, 3);
        if first == b"v2:" {
            assert_eq!(read_exact(&mut c, 3), b"two");
            break;
        }
        assert_eq!(first, b"two");
        assert!(Instant::now() < end, "reload never took effect");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut fresh = client(&s);
    fresh.write_all(b"new").unwrap();
    assert_eq!(read_exact(&mut fresh, 6), b"v2:new");
}

/// The client resets while the server is writing: `error`, then `close`, nothing else.
fn reset_mid_write(d: Driver) {
    let s = TestServer::start(
        d,
        Behavior {
            flood: true,
            high_water: Some(64 * 1024),
            ..Behavior::default()
        },
    );
    let mut c = client(&s);
    c.write_all(b"go").unwrap();
    let _ = read_exact(&mut c, 1024);
    std::thread::sleep(Duration::from_millis(50));
    // SO_LINGER 0 then close: RST instead of FIN.
    let sock = socket2::SockRef::from(&c);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    drop(c);
    assert!(s.wait(LIMIT, |s| s.live() == 0));
    let ev = s.events_of(1);
    let tail: Vec<&str> = ev
        .iter()
        .map(String::as_str)
        .filter(|e| *e != "drain")
        .collect();
    assert_eq!(tail.len(), 3, "events: {ev:?}");
    assert_eq!(tail[0], "open");
    assert!(
        tail[1] == "error:ECONNRESET" || tail[1] == "error:EPIPE",
        "events: {ev:?}"
    );
    assert_eq!(tail[2], "close:err");
}

netkit_tests::both_drivers!(
    echo,
    thousand_clients,
    backpressure_64mib,
    half_close_client_first,
    half_close_server_first,
    idle_timeout,
    stop_keeps_connections,
    stop_force_closes_connections,
    reload_live,
    reset_mid_write,
);
