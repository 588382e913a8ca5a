//! A test echo server on either driver in a process of its own, for tests
//! that change process-wide limits (`ulimit -n`) or count the server's
//! descriptors: `netkit-echo blocking|smol [CERT.pem KEY.pem]` prints
//! `listening on ADDR` and echoes (over TLS with a certificate) until killed.

use std::time::Duration;

use netkit_tests::servers::{Behavior, Driver, TestServer};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let driver = match args.first().map(String::as_str) {
        Some("smol") => Driver::Smol,
        _ => Driver::Blocking,
    };
    let tls = match (args.get(1), args.get(2)) {
        (Some(cert), Some(key)) => {
            let pem = |p: &str| netkit_tls::Pem::new(p, std::fs::read(p).expect("read a PEM file"));
            let opts = netkit_tls::ServerOptions::new(pem(cert), pem(key));
            Some(netkit_sys::tls::server_config(&opts).expect("TLS configuration"))
        }
        _ => None,
    };
    let srv = TestServer::start(
        driver,
        Behavior {
            tls,
            ..Behavior::default()
        },
    );
    println!("listening on {}", srv.addr());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
