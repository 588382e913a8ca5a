//! A test echo server on either driver in a process of its own, for tests
//! that change process-wide limits (`ulimit -n`): `netkit-echo blocking|smol`
//! prints `listening on ADDR` and echoes until killed.

use std::time::Duration;

use netkit_tests::servers::{Behavior, Driver, TestServer};

fn main() {
    let driver = match std::env::args().nth(1).as_deref() {
        Some("smol") => Driver::Smol,
        _ => Driver::Blocking,
    };
    let srv = TestServer::start(driver, Behavior::default());
    println!("listening on {}", srv.addr());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
