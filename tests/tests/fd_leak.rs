//! File-descriptor leak check, alone in its binary: fd counts are per process, so
//! no other test may run beside it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use netkit_tests::fd_count;
use netkit_tests::servers::{Behavior, Driver, TestServer};

const LIMIT: Duration = Duration::from_secs(20);

fn client(s: &TestServer) -> TcpStream {
    let c = TcpStream::connect(s.addr()).expect("connect");
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c
}

fn read_exact(c: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    c.read_exact(&mut buf).expect("read reply");
    buf
}

/// 10,000 connect/close cycles leave the fd count where it was.
fn no_fd_leak(d: Driver) {
    let s = TestServer::start(d, Behavior::default());
    // Warm up lazily created fds (executor threads, reactor).
    drop(client(&s));
    assert!(s.wait(LIMIT, |s| s.live() == 0));
    // `close` is recorded just before the driver closes the fd: let it settle.
    std::thread::sleep(Duration::from_millis(200));
    let before = fd_count();
    for i in 0..10_000 {
        let mut c = client(&s);
        if i % 100 == 0 {
            c.write_all(b"x").unwrap();
            read_exact(&mut c, 1);
        }
        drop(c);
        // Keep the number in flight bounded so the test measures leaks, not backlog.
        if i % 500 == 499 {
            assert!(s.wait(LIMIT, |s| s.live() == 0));
        }
    }
    assert!(s.wait(LIMIT, |s| s.live() == 0), "live: {}", s.live());
    let settled = s.wait(LIMIT, |_| fd_count() == before);
    let after = fd_count();
    assert!(settled, "fds before {before}, after {after}");
}

#[test]
fn no_fd_leak_on_either_driver() {
    // One test, run in sequence: parallel tests would change the count.
    no_fd_leak(Driver::Blocking);
    no_fd_leak(Driver::Smol);
}
