//! In-process test servers on both drivers, sharing one handler logic that
//! records every event, so the same scenario runs against either driver.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use netkit_blocking as blocking;
use netkit_smol as nsmol;
use netkit_sys::net::Endpoint;
use netkit_sys::{Error, SharedHandler};

/// How the test server behaves.
#[derive(Debug, Clone, Default)]
pub struct Behavior {
    /// Idle timeout armed in `open`; on expiry the server records it and closes.
    pub timeout: Option<Duration>,
    /// Write high-water mark per connection (default: netkit-socket's).
    pub high_water: Option<usize>,
    /// On the first data, write a byte pattern until backpressure, forever (for
    /// reset-mid-write tests).
    pub flood: bool,
    /// After answering a chunk, end the sending side (server-first half-close).
    pub end_after_reply: bool,
    /// Serve TLS.
    pub tls: Option<netkit_tls::ServerConfig>,
    /// Also record TLS details: in `open`, how the peer's certificate verified
    /// (`auth:authorized`, `auth:no-certificate` or `auth:unauthorized:DETAIL`);
    /// after `connect_error:CODE`, the error's text (`detail:TEXT`).
    pub record_tls: bool,
    /// Listen on this Unix socket path instead of 127.0.0.1.
    pub unix: Option<std::path::PathBuf>,
    /// Answer like an HTTP/1.1 server (for curl): once the request head is in,
    /// reply `200 OK` with this body and `Connection: close`, then end.
    pub http_body: Option<&'static str>,
}

/// Per-connection state.
#[derive(Debug, Default)]
pub struct ConnState {
    id: u64,
    pending: Vec<u8>,
    flooding: bool,
    request: Vec<u8>,
}

/// What every server of a test records.
#[derive(Debug, Default)]
pub struct Record {
    log: Mutex<Vec<(u64, String)>>,
    next_id: AtomicU64,
    max_held: AtomicUsize,
    bytes_in: AtomicU64,
}

impl Record {
    fn push(&self, id: u64, ev: impl Into<String>) {
        if let Ok(mut l) = self.log.lock() {
            l.push((id, ev.into()));
        }
    }
}

/// Both drivers' `Socket` is this one handle.
type Sock<'a> = netkit_sys::Socket<'a, ConnState>;

const FLOOD: [u8; 16384] = [0xAB; 16384];

/// The handler, written once for both drivers (netkit-sys's `SharedHandler`:
/// smol runs it as is, the blocking loop inside an `Arc`).
#[derive(Debug, Clone)]
struct Logic {
    rec: Arc<Record>,
    behavior: Behavior,
    tag: &'static str,
}

impl Logic {
    fn flood(&self, s: &mut Sock<'_>) {
        loop {
            match s.write(&FLOOD) {
                Ok(n) if n == FLOOD.len() => {}
                _ => return,
            }
        }
    }

    fn connect_failed(&self, e: &Error) {
        self.rec.push(0, format!("connect_error:{}", e.code()));
        if self.behavior.record_tls {
            self.rec.push(0, format!("detail:{e}"));
        }
    }
}

impl SharedHandler for Logic {
    type Data = ConnState;

    fn open(&self, s: &mut Sock<'_>) {
        let id = self.rec.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        s.data_mut().id = id;
        self.rec.push(id, "open");
        if self.behavior.record_tls {
            let auth = match s.tls().and_then(|t| t.authorization()) {
                None => "auth:none".to_string(),
                Some(netkit_tls::Authorization::Authorized) => "auth:authorized".to_string(),
                Some(netkit_tls::Authorization::NoCertificate) => "auth:no-certificate".to_string(),
                Some(netkit_tls::Authorization::Unauthorized(e)) => {
                    format!("auth:unauthorized:{e}")
                }
            };
            self.rec.push(id, auth);
        }
        if self.behavior.timeout.is_some() {
            s.set_timeout(self.behavior.timeout);
        }
    }

    fn data(&self, s: &mut Sock<'_>, bytes: &[u8]) {
        self.rec
            .bytes_in
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if self.behavior.flood {
            s.data_mut().flooding = true;
            self.flood(s);
            return;
        }
        if let Some(body) = self.behavior.http_body {
            s.data_mut().request.extend_from_slice(bytes);
            if s.data().request.windows(4).any(|w| w == b"\r\n\r\n") {
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write(reply.as_bytes());
                s.end();
            }
            return;
        }
        for part in [self.tag.as_bytes(), bytes] {
            if !s.data_mut().pending.is_empty() {
                s.data_mut().pending.extend_from_slice(part);
                continue;
            }
            if let Ok(n) = s.write(part) {
                if n < part.len() {
                    s.data_mut().pending.extend_from_slice(&part[n..]);
                }
            }
        }
        let held = s.buffered() + s.data_mut().pending.len();
        self.rec.max_held.fetch_max(held, Ordering::Relaxed);
        if !s.data_mut().pending.is_empty() {
            s.pause();
        }
        if self.behavior.end_after_reply {
            s.end();
        }
    }

    fn drain(&self, s: &mut Sock<'_>) {
        let id = s.data_mut().id;
        self.rec.push(id, "drain");
        if s.data_mut().flooding {
            self.flood(s);
            return;
        }
        let held = std::mem::take(&mut s.data_mut().pending);
        if let Ok(n) = s.write(&held) {
            s.data_mut().pending.extend_from_slice(&held[n..]);
        }
        if s.data_mut().pending.is_empty() {
            s.resume();
        }
    }

    fn end(&self, s: &mut Sock<'_>) {
        let id = s.data_mut().id;
        self.rec.push(id, "end");
    }

    fn timeout(&self, s: &mut Sock<'_>) {
        let id = s.data_mut().id;
        self.rec.push(id, "timeout");
        s.close();
    }

    fn error(&self, s: &mut Sock<'_>, e: &Error) {
        let id = s.data_mut().id;
        self.rec.push(id, format!("error:{}", e.code()));
    }

    fn connect_error(&self, _s: &mut Sock<'_>, e: &Error) {
        self.connect_failed(e);
    }

    fn close(&self, s: &mut Sock<'_>, e: Option<&Error>) {
        let id = s.data_mut().id;
        self.rec
            .push(id, if e.is_some() { "close:err" } else { "close" });
    }
}

/// Which driver a test server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `netkit-blocking`'s event loop.
    Blocking,
    /// `netkit-smol` on smol's global executor.
    Smol,
}

enum Ctl {
    Blocking(blocking::LoopHandle, blocking::Server),
    Smol(nsmol::ServerHandle<Logic>),
}

/// A running test server: an echo that prefixes replies with its tag ("" at
/// first, another after `reload`), recording every handler event.
pub struct TestServer {
    endpoint: Endpoint,
    rec: Arc<Record>,
    behavior: Behavior,
    ctl: Ctl,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Starts a server on 127.0.0.1, port picked by the kernel (or on
    /// `behavior.unix`).
    pub fn start(driver: Driver, behavior: Behavior) -> Self {
        let rec = Arc::new(Record::default());
        let logic = Logic {
            rec: rec.clone(),
            behavior: behavior.clone(),
            tag: "",
        };
        let mut opts = match &behavior.unix {
            Some(path) => blocking::ListenOptions::unix(path),
            None => blocking::ListenOptions::new("127.0.0.1", 0),
        };
        if let Some(h) = behavior.high_water {
            opts.socket.high_water = h;
            opts.socket.low_water = h / 4;
        }
        opts.tls = behavior.tls.clone();
        match driver {
            Driver::Blocking => {
                let (tx, rx) = mpsc::channel();
                let thread = std::thread::spawn(move || {
                    let mut lp = blocking::EventLoop::new().expect("event loop");
                    let server = lp.listen(opts, Arc::new(logic)).expect("listen");
                    let endpoint = lp.local_endpoint(server).expect("endpoint");
                    tx.send((lp.handle(), server, endpoint)).expect("send");
                    lp.run().expect("run");
                });
                let (h, server, endpoint) = rx.recv().expect("server started");
                Self {
                    endpoint,
                    rec,
                    behavior,
                    ctl: Ctl::Blocking(h, server),
                    thread: Some(thread),
                }
            }
            Driver::Smol => {
                let server = nsmol::Server::bind(opts, logic).expect("bind");
                let endpoint = server.local_endpoint().clone();
                let handle = server.handle();
                let thread = std::thread::spawn(move || smol::block_on(server.run()));
                Self {
                    endpoint,
                    rec,
                    behavior,
                    ctl: Ctl::Smol(handle),
                    thread: Some(thread),
                }
            }
        }
    }

    /// The listening TCP address.
    ///
    /// # Panics
    ///
    /// For a Unix server.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint.inet().expect("a TCP server")
    }

    /// Where the server listens.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `stop(force)`.
    pub fn stop(&self, force: bool) {
        match &self.ctl {
            Ctl::Blocking(h, s) => h.stop(*s, force),
            Ctl::Smol(h) => h.stop(force),
        }
    }

    /// Reloads the handler with a new reply tag.
    pub fn reload(&self, tag: &'static str) {
        let logic = Logic {
            rec: self.rec.clone(),
            behavior: self.behavior.clone(),
            tag,
        };
        match &self.ctl {
            Ctl::Blocking(h, s) => h.reload(*s, Arc::new(logic)),
            Ctl::Smol(h) => h.reload(logic),
        }
    }

    /// Every recorded (connection id, event).
    pub fn events(&self) -> Vec<(u64, String)> {
        self.rec.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The events of one connection.
    pub fn events_of(&self, id: u64) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, e)| e)
            .collect()
    }

    /// Connections opened and not yet closed.
    pub fn live(&self) -> usize {
        let ev = self.events();
        let opens = ev.iter().filter(|(_, e)| e == "open").count();
        let closes = ev.iter().filter(|(_, e)| e.starts_with("close")).count();
        opens - closes
    }

    /// Waits (bounded) until `cond` holds on this server.
    pub fn wait(&self, limit: Duration, cond: impl Fn(&Self) -> bool) -> bool {
        let end = std::time::Instant::now() + limit;
        while std::time::Instant::now() < end {
            if cond(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        cond(self)
    }

    /// The most bytes ever held for one connection (write buffer + held reply).
    pub fn max_held(&self) -> usize {
        self.rec.max_held.load(Ordering::Relaxed)
    }

    /// Total bytes received.
    pub fn bytes_in(&self) -> u64 {
        self.rec.bytes_in.load(Ordering::Relaxed)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes each named test `fn name(d: Driver)` into two `#[test]`s, in modules
/// `blocking` and `smol`. The test file must have `Driver` in scope.
#[macro_export]
macro_rules! both_drivers {
    ($($name:ident),* $(,)?) => {
        mod blocking {
            $(#[test] fn $name() { super::$name(super::Driver::Blocking) })*
        }
        mod smol {
            $(#[test] fn $name() { super::$name(super::Driver::Smol) })*
        }
    };
}
