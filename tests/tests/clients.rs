//! Client sockets (`connect`) on both drivers against plain std::net peers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netkit_blocking as blocking;
use netkit_smol as nsmol;
use netkit_socket::Error;
use netkit_sys::SocketIo;

fn closed_port() -> u16 {
    // Bind then drop: nothing listens there now.
    netkit_tests::free_port()
}

/// What a client saw, in order; shared by both drivers' handlers.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, e: String) {
        self.0.lock().unwrap().push(e);
    }

    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    /// Sends the request and ends our side at once.
    fn open<I: SocketIo>(&self, s: &mut netkit_sys::Socket<'_, (), I>) {
        self.push("open".into());
        let _ = s.write(b"request");
        s.end();
    }
}

struct Rec(Log);

impl blocking::Handler for Rec {
    type Data = ();
    fn open(&mut self, s: &mut blocking::Socket<'_, ()>) {
        self.0.open(s);
    }
    fn data(&mut self, _s: &mut blocking::Socket<'_, ()>, b: &[u8]) {
        self.0.push(format!("data:{}", String::from_utf8_lossy(b)));
    }
    fn end(&mut self, _s: &mut blocking::Socket<'_, ()>) {
        self.0.push("end".into());
    }
    fn close(&mut self, _s: &mut blocking::Socket<'_, ()>, e: Option<&Error>) {
        self.0.push(format!("close:{}", e.is_some()));
    }
    fn connect_error(&mut self, _s: &mut blocking::Socket<'_, ()>, e: &Error) {
        self.0.push(format!("connect_error:{}", e.code()));
    }
}

/// A peer that reads the request to EOF, answers "answer to " + request, and
/// closes. Returns its port and its thread.
fn answering_peer() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        s.write_all(b"answer to ").unwrap();
        s.write_all(&req).unwrap();
    });
    (port, peer)
}

/// The half-close exchange as the client saw it: `open`, the whole answer,
/// then `end` and a clean `close`.
fn assert_half_close(log: &[String]) {
    assert_eq!(log.first().map(String::as_str), Some("open"));
    let data: String = log.iter().filter_map(|e| e.strip_prefix("data:")).collect();
    assert_eq!(data, "answer to request");
    assert_eq!(&log[log.len() - 2..], ["end", "close:false"]);
}

#[test]
fn blocking_connect_refused() {
    let log = Log::default();
    let mut lp = blocking::EventLoop::new().unwrap();
    lp.connect(
        blocking::ConnectOptions::new("127.0.0.1", closed_port()),
        Rec(log.clone()),
        (),
    )
    .unwrap();
    lp.run().unwrap();
    assert_eq!(log.events(), ["connect_error:ECONNREFUSED"]);
}

#[test]
fn blocking_connect_unknown_host() {
    let log = Log::default();
    let mut lp = blocking::EventLoop::new().unwrap();
    lp.connect(
        blocking::ConnectOptions::new("no-such-host.invalid", 80),
        Rec(log.clone()),
        (),
    )
    .unwrap();
    lp.run().unwrap();
    assert_eq!(log.events(), ["connect_error:ENOTFOUND"]);
}

/// The client ends its side after the request; the peer reads to EOF, answers,
/// closes; the client sees the answer, `end`, then `close`.
#[test]
fn blocking_client_half_close() {
    let (port, peer) = answering_peer();
    let log = Log::default();
    let mut lp = blocking::EventLoop::new().unwrap();
    lp.connect(
        blocking::ConnectOptions::new("localhost", port),
        Rec(log.clone()),
        (),
    )
    .unwrap();
    lp.run().unwrap();
    peer.join().unwrap();
    assert_half_close(&log.events());
}

struct SRec(Log);

impl nsmol::Handler for SRec {
    type Data = ();
    fn open(&self, s: &mut nsmol::Socket<'_, ()>) {
        self.0.open(s);
    }
    fn data(&self, _s: &mut nsmol::Socket<'_, ()>, b: &[u8]) {
        self.0.push(format!("data:{}", String::from_utf8_lossy(b)));
    }
    fn end(&self, _s: &mut nsmol::Socket<'_, ()>) {
        self.0.push("end".into());
    }
    fn close(&self, _s: &mut nsmol::Socket<'_, ()>, e: Option<&Error>) {
        self.0.push(format!("close:{}", e.is_some()));
    }
    fn connect_error(&self, _s: &mut nsmol::Socket<'_, ()>, e: &Error) {
        self.0.push(format!("connect_error:{}", e.code()));
    }
}

#[test]
fn smol_connect_refused() {
    let log = Log::default();
    let r = smol::block_on(nsmol::connect(
        nsmol::ConnectOptions::new("127.0.0.1", closed_port()),
        SRec(log.clone()),
        (),
    ));
    assert_eq!(r.unwrap_err().code(), "ECONNREFUSED");
    assert_eq!(log.events(), ["connect_error:ECONNREFUSED"]);
}

#[test]
fn smol_client_half_close() {
    let (port, peer) = answering_peer();
    let log = Log::default();
    smol::block_on(nsmol::connect(
        nsmol::ConnectOptions::new("127.0.0.1", port),
        SRec(log.clone()),
        (),
    ))
    .unwrap();
    peer.join().unwrap();
    assert_half_close(&log.events());
}

#[test]
fn smol_plain_streams() {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    smol::block_on(async {
        let l = nsmol::TcpListener::bind(&nsmol::ListenOptions::new("::1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let server = smol::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let mut c = nsmol::TcpStream::connect("[::1]", port).await.unwrap();
        c.write_all(b"over v6").await.unwrap();
        c.shutdown_write().unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"over v6");
        server.await;
    });
}

#[test]
fn connect_with_timeout_fails_once() {
    // Loopback refuses at once, before the timer: either way a connect failure
    // is the only event, never `open` then `timeout`.
    let log = Log::default();
    let mut lp = blocking::EventLoop::new().unwrap();
    let mut opts = blocking::ConnectOptions::new("127.0.0.1", closed_port());
    opts.timeout = Some(Duration::from_millis(200));
    lp.connect(opts, Rec(log.clone()), ()).unwrap();
    lp.run().unwrap();
    let log = log.events();
    assert_eq!(log.len(), 1);
    assert!(log[0].starts_with("connect_error:"), "{log:?}");
}
