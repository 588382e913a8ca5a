//! Multi-core serving: N blocking loops on `SO_REUSEPORT` listeners sharing a port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use netkit_blocking::{Handler, ListenOptions, Socket, multi};

#[derive(Clone)]
struct Echo;

impl Handler for Echo {
    type Data = ();
    fn data(&mut self, s: &mut Socket<'_, ()>, bytes: &[u8]) {
        let _ = s.write(bytes);
    }
}

#[test]
fn several_loops_share_one_port() {
    let server = multi::serve(3, ListenOptions::new("127.0.0.1", 0), || Echo).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let mut clients: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(format!("{i:05}").as_bytes()).unwrap();
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, format!("{i:05}").as_bytes());
    }
    server.stop(true);
    server.join().unwrap();
    // Every loop closed its connections.
    for c in clients.iter_mut() {
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap(), 0);
    }
}
