//! netkit's async driver on `async-io`: Bun-style socket handlers on smol, and
//! plain `AsyncRead`/`AsyncWrite` streams for code that prefers those.
//!
//! Every connection runs the same [`netkit_socket::Socket`] state machine as the
//! blocking driver, in one task per connection, so backpressure, `drain`,
//! half-close and idle timeouts behave identically. Reads go through a buffer
//! shared by all tasks of a thread, so an idle connection holds no read buffer.
//! The futures are executor-agnostic (`async-io` reactor); [`Server::run`] runs
//! connection tasks inside its own future (one thread) and [`Server::run_with`]
//! hands them to your executor (for example smol's multi-threaded one).
//! [`TlsStream`] is an `AsyncRead`/`AsyncWrite` TLS stream over any transport,
//! another `TlsStream` included (TLS inside TLS, for proxy tunnels).
//!
//! # Examples
//!
//! ```
//! use netkit_smol::{Handler, ListenOptions, Server, Socket, TcpStream};
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = ();
//!     fn data(&self, s: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         let _ = s.write(bytes);
//!     }
//! }
//!
//! smol::block_on(async {
//!     let server = Server::bind(ListenOptions::new("127.0.0.1", 0), Echo)?;
//!     let addr = server.local_addr();
//!     let handle = server.handle();
//!     smol::spawn(server.run()).detach();
//!
//!     let mut stream = TcpStream::connect("127.0.0.1", addr.port()).await?;
//!     stream.write_all(b"ping").await?;
//!     let mut buf = [0u8; 4];
//!     stream.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"ping");
//!     handle.stop(true);
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod stream;
mod tls_stream;

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::future;
use netkit_socket::{Event, Socket as PlainSocket, Transmit};
use netkit_tls::{Machine, TlsSession, TlsSocket};

pub use netkit_sys::{ClientTls, ConnectOptions, Error, ListenOptions, SocketConfig, resolve};
pub use stream::{TcpListener, TcpStream};
pub use tls_stream::TlsStream;

/// Size of each thread's shared read buffer.
const READ_BUF: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}

/// A set of socket handlers, implemented once per server or client (Bun's
/// `socket: { open, data, drain, ... }`). Methods take `&self` because a server's
/// connections run on many tasks, possibly on many threads; keep per-connection
/// state in [`Handler::Data`].
pub trait Handler: Send + Sync + 'static {
    /// Each socket's user data (Bun's `socket.data`).
    type Data: Send + 'static;

    /// The connection is established.
    fn open(&self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// Bytes arrived (a thread-shared buffer: copy what you keep).
    fn data(&self, socket: &mut Socket<'_, Self::Data>, bytes: &[u8]);
    /// A short write has since drained below the low-water mark.
    fn drain(&self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// The peer ended its sending side.
    fn end(&self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// The socket closed; always the last call.
    fn close(&self, socket: &mut Socket<'_, Self::Data>, error: Option<&Error>) {
        let _ = (socket, error);
    }
    /// An I/O error; `close` follows.
    fn error(&self, socket: &mut Socket<'_, Self::Data>, error: &Error) {
        let _ = (socket, error);
    }
    /// The idle timer expired; the socket stays open unless the handler closes it.
    fn timeout(&self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// The connect failed; nothing else is called for this socket.
    fn connect_error(&self, socket: &mut Socket<'_, Self::Data>, error: &Error) {
        let _ = (socket, error);
    }
}

/// The driver's side of [`Socket`]: the connection's stream (`None` only for a
/// client whose connect failed, which never writes).
#[derive(Debug, Clone, Copy)]
pub struct SmolIo<'a>(Option<&'a Async<StdStream>>);

impl netkit_sys::SocketIo for SmolIo<'_> {
    fn send(&self, bytes: &[u8]) -> io::Result<usize> {
        match self.0 {
            Some(stream) => stream.get_ref().write(bytes),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
    fn local_addr(&self) -> Option<SocketAddr> {
        self.0?.get_ref().local_addr().ok()
    }
}

/// One connection, as seen from inside a [`Handler`] callback (see
/// [`netkit_sys::Socket`] for its methods). I/O happens when the callback returns.
pub type Socket<'a, D> = netkit_sys::Socket<'a, D, SmolIo<'a>>;

/// The current handler of a server, swappable by `reload` for live connections.
struct HandlerCell<H> {
    current: RwLock<Arc<H>>,
    version: AtomicU64,
}

impl<H> HandlerCell<H> {
    fn new(h: H) -> Self {
        Self {
            current: RwLock::new(Arc::new(h)),
            version: AtomicU64::new(0),
        }
    }
    fn load(&self) -> (u64, Arc<H>) {
        let v = self.version.load(Ordering::Acquire);
        let h = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (v, h)
    }
    fn store(&self, h: H) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(h);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

struct ServerShared<H> {
    handlers: Arc<HandlerCell<H>>,
    /// Closed when the server stops listening.
    stop_listen: (async_channel::Sender<()>, async_channel::Receiver<()>),
    /// Closed by `stop(true)`: every connection closes.
    stop_conns: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

/// A handle to a running [`Server`]: stop it, reload its handler.
pub struct ServerHandle<H> {
    shared: Arc<ServerShared<H>>,
}

impl<H> Clone for ServerHandle<H> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<H> fmt::Debug for ServerHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl<H: Handler> ServerHandle<H> {
    /// Stops listening; `force` also closes every live connection. Idempotent.
    pub fn stop(&self, force: bool) {
        self.shared.stop_listen.0.close();
        if force {
            self.shared.stop_conns.0.close();
        }
    }

    /// Swaps the handler for all live connections at once (Bun's `server.reload`).
    pub fn reload(&self, handler: H) {
        self.shared.handlers.store(handler);
    }
}

/// A listening server (Bun's `Bun.listen`). Call [`run`](Self::run) to serve.
pub struct Server<H: Handler> {
    listener: Async<StdListener>,
    local_addr: SocketAddr,
    config: SocketConfig,
    no_delay: bool,
    tls: Option<netkit_tls::ServerConfig>,
    shared: Arc<ServerShared<H>>,
}

impl<H: Handler> fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

/// A boxed connection task, for [`Server::run_with`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

impl<H: Handler> Server<H>
where
    H::Data: Default,
{
    /// Binds the listener now (so errors such as `EADDRINUSE` come back here).
    pub fn bind(opts: ListenOptions, handler: H) -> Result<Self, Error> {
        let sock = netkit_sys::bind_listener(&opts)?;
        let local_addr = sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or(Error::Closed)?;
        let std: StdListener = sock.into();
        let listener =
            Async::new(std).map_err(|e| Error::from_io(&e, format!("listen {local_addr}")))?;
        Ok(Self {
            listener,
            local_addr,
            config: opts.socket,
            no_delay: opts.no_delay,
            tls: opts.tls,
            shared: Arc::new(ServerShared {
                handlers: Arc::new(HandlerCell::new(handler)),
                stop_listen: async_channel::bounded(1),
                stop_conns: async_channel::bounded(1),
            }),
        })
    }

    /// The bound address (the real port after `port: 0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A handle to stop or reload the server from anywhere.
    pub fn handle(&self) -> ServerHandle<H> {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts until stopped, running every connection as a task of an executor
    /// driven by this future itself (one thread: no cross-thread wake-ups, and the
    /// `async-io` reactor runs on the same thread under `block_on`). After
    /// `stop(false)` it keeps serving live connections and returns once they have
    /// all closed; after `stop(true)`, once they have closed.
    pub async fn run(self) {
        let ex = Arc::new(smol::Executor::new());
        let (live_tx, live_rx) = async_channel::bounded::<()>(1);
        // The accept loop is a task too: the future given to `Executor::run` is
        // polled on every wake-up of any task, so it must be a passive wait.
        let spawner = ex.clone();
        let accept_live = live_tx.clone();
        ex.spawn(async move {
            // One allocation per connection: the task holds the connection's future.
            self.accept_loop(move |c| {
                let live = live_tx.clone();
                spawner
                    .spawn(async move {
                        c.serve().await;
                        drop(live);
                    })
                    .detach();
            })
            .await;
            drop(accept_live);
        })
        .detach();
        // Resolves when every task (accept loop and connections) has dropped its sender.
        ex.run(async {
            let _ = live_rx.recv().await;
        })
        .await;
    }

    /// Accepts until stopped, handing each connection's task to `spawn`.
    pub async fn run_with(self, spawn: impl Fn(Task)) {
        self.accept_loop(|c| spawn(Box::pin(c.serve()))).await;
    }

    async fn accept_loop(self, spawn: impl Fn(Accepted<H>)) {
        let stop = self.shared.stop_listen.1.clone();
        loop {
            let accepted = future::or(async { Some(self.listener.accept().await) }, async {
                let _ = stop.recv().await;
                None
            })
            .await;
            match accepted {
                None => return,
                Some(Ok((stream, peer))) => {
                    if self.no_delay {
                        let _ = stream.get_ref().set_nodelay(true);
                    }
                    spawn(Accepted {
                        stream,
                        peer,
                        sm: match &self.tls {
                            None => Machine::Plain(PlainSocket::accepted(
                                Instant::now(),
                                self.config.clone(),
                            )),
                            Some(cfg) => {
                                let Ok(sess) = TlsSession::server(cfg) else {
                                    continue;
                                };
                                let now = Instant::now();
                                let mut t = TlsSocket::new(now, self.config.clone(), sess);
                                t.handle_connected(now);
                                Machine::Tls(Box::new(t))
                            }
                        },
                        shared: self.shared.clone(),
                    });
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(_)) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    Timer::after(Duration::from_millis(10)).await;
                }
            }
        }
    }
}

/// An accepted connection, ready to be served by its own task.
struct Accepted<H: Handler> {
    stream: Async<StdStream>,
    peer: SocketAddr,
    sm: Machine,
    shared: Arc<ServerShared<H>>,
}

impl<H: Handler> Accepted<H>
where
    H::Data: Default,
{
    /// The connection's future; everything it needs is moved into `drive`, so the
    /// task stores each field once.
    fn serve(self) -> impl Future<Output = ()> + Send + 'static {
        drive(
            self.stream,
            self.sm,
            H::Data::default(),
            self.shared.handlers.clone(),
            Some(self.shared.stop_conns.1.clone()),
            Some(self.peer),
        )
    }
}

/// Connects a client (Bun's `Bun.connect`) and runs it to completion: returns when
/// the socket has closed, or with the error after `connect_error` ran.
pub async fn connect<H: Handler>(
    opts: ConnectOptions,
    handler: H,
    data: H::Data,
) -> Result<(), Error> {
    let handlers = Arc::new(HandlerCell::new(handler));
    let now = Instant::now();
    let mut sm = Machine::Plain(PlainSocket::connecting(now, opts.socket.clone()));
    if let Some(tls) = &opts.tls {
        let name = tls.server_name.as_deref().unwrap_or(&opts.hostname);
        match TlsSession::client(&tls.config, name) {
            Ok(sess) => {
                sm = Machine::Tls(Box::new(TlsSocket::new(now, opts.socket.clone(), sess)));
            }
            Err(e) => {
                let err = Error::Tls(e.to_string());
                sm.handle_connect_error(err.clone());
                let (_, h) = handlers.load();
                let mut data = data;
                deliver(&*h, None, &mut sm, &mut data, None);
                return Err(err);
            }
        }
    }
    sm.set_timeout(now, opts.timeout);
    let mut data = data;
    let stream = match connect_any(&opts).await {
        Ok(s) => s,
        Err(e) => {
            sm.handle_connect_error(e.clone());
            let (_, h) = handlers.load();
            deliver(&*h, None, &mut sm, &mut data, None);
            return Err(e);
        }
    };
    if opts.no_delay {
        let _ = stream.get_ref().set_nodelay(true);
    }
    let peer = stream.get_ref().peer_addr().ok();
    sm.handle_connected(Instant::now());
    drive(stream, sm, data, handlers, None, peer).await;
    Ok(())
}

/// Resolves and connects to the first address that accepts.
pub(crate) async fn connect_any(opts: &ConnectOptions) -> Result<Async<StdStream>, Error> {
    let addrs = resolve::resolve(&opts.hostname, opts.port)?;
    let mut last = Error::Closed;
    for addr in addrs {
        let attempt = Async::<StdStream>::connect(addr);
        let r = match opts.timeout {
            Some(t) => {
                future::or(attempt, async {
                    Timer::after(t).await;
                    Err(io::Error::from(io::ErrorKind::TimedOut))
                })
                .await
            }
            None => attempt.await,
        };
        match r {
            Ok(s) => return Ok(s),
            Err(e) => last = Error::from_io(&e, format!("connect {addr}")),
        }
    }
    Err(last)
}

/// Hands queued events to the handler; returns `true` once the socket is closed.
fn deliver<H: Handler>(
    h: &H,
    stream: Option<&Async<StdStream>>,
    sm: &mut Machine,
    data: &mut H::Data,
    peer: Option<SocketAddr>,
) -> bool {
    while let Some(ev) = sm.poll_event() {
        let now = Instant::now();
        let mut s = Socket::new(sm, data, SmolIo(stream), peer, now);
        match ev {
            Event::Open => h.open(&mut s),
            Event::Drain => h.drain(&mut s),
            Event::End => h.end(&mut s),
            Event::Timeout => h.timeout(&mut s),
            Event::Error(e) => h.error(&mut s, &e),
            Event::ConnectError(e) => {
                h.connect_error(&mut s, &e);
                return true;
            }
            Event::Close(e) => {
                h.close(&mut s, e.as_ref());
                return true;
            }
        }
    }
    false
}

/// Writes what the machine offers; returns `true` if the kernel would block.
fn flush(stream: &Async<StdStream>, sm: &mut Machine, now: Instant) -> bool {
    loop {
        match sm.poll_transmit(now) {
            Transmit::Idle => return false,
            Transmit::Bytes(b) => match stream.get_ref().write(b) {
                Ok(n) => sm.handle_sent(now, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    sm.handle_error(Error::from_io(&e, "write"));
                    return false;
                }
            },
            Transmit::Shutdown => match stream.get_ref().shutdown(Shutdown::Write) {
                Ok(()) => sm.handle_shutdown(now),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => sm.handle_shutdown(now),
                Err(e) => {
                    sm.handle_error(Error::from_io(&e, "shutdown"));
                    return false;
                }
            },
        }
    }
}

enum Wake {
    Readable,
    Writable,
    Timer,
    Stop,
}

/// Runs one connection until it closes.
async fn drive<H: Handler>(
    stream: Async<StdStream>,
    mut sm: Machine,
    mut data: H::Data,
    handlers: Arc<HandlerCell<H>>,
    stop: Option<async_channel::Receiver<()>>,
    peer: Option<SocketAddr>,
) {
    let (mut version, mut h) = handlers.load();
    let mut readable = false;
    let mut timer = Timer::never();
    let mut timer_at = None;
    let mut stop_wait = stop.as_ref().map(|rx| Box::pin(rx.recv()));
    loop {
        if handlers.version.load(Ordering::Acquire) != version {
            (version, h) = handlers.load();
        }
        let now = Instant::now();
        if readable && sm.wants_read() {
            readable = false;
            let r = READ_BUFFER.with(|buf| {
                let mut buf = buf.borrow_mut();
                match stream.get_ref().read(&mut buf) {
                    Ok(0) => {
                        sm.handle_eof(now);
                        Ok(())
                    }
                    Ok(n) => {
                        sm.handle_input_with(now, &mut buf, n, |sm, bytes| {
                            let mut s =
                                Socket::new(sm, &mut data, SmolIo(Some(&stream)), peer, now);
                            h.data(&mut s, bytes);
                        });
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            });
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => readable = true,
                Err(e) => sm.handle_error(Error::from_io(&e, "read")),
            }
        }
        let mut blocked;
        loop {
            if sm.wants_plaintext() {
                // Plaintext the TLS layer held while reading was paused.
                READ_BUFFER.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    sm.deliver_plaintext(now, &mut buf, |sm, bytes| {
                        let mut s = Socket::new(sm, &mut data, SmolIo(Some(&stream)), peer, now);
                        h.data(&mut s, bytes);
                    });
                });
            }
            if deliver(&*h, Some(&stream), &mut sm, &mut data, peer) {
                let parting = sm.parting_bytes();
                if !parting.is_empty() {
                    let _ = stream.get_ref().write(parting);
                }
                if sm.reset_on_close() {
                    let _ =
                        socket2::SockRef::from(stream.get_ref()).set_linger(Some(Duration::ZERO));
                }
                return;
            }
            blocked = flush(&stream, &mut sm, now);
            if !sm.has_events() && !sm.plaintext_due() {
                break;
            }
        }
        let want_read = sm.wants_read();
        let deadline = sm.poll_timeout();
        if deadline != timer_at {
            // One timer per connection, re-armed only when the deadline moves.
            match deadline {
                Some(t) => timer.set_at(t),
                None => timer = Timer::never(),
            }
            timer_at = deadline;
        }
        // One small hand-written wait instead of nested `or`s: it keeps the task
        // small (idle connections wait here) and the stop listener registered once.
        let wake = future::poll_fn(|cx| {
            if let Some(f) = stop_wait.as_mut() {
                if f.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Wake::Stop);
                }
            }
            if want_read && stream.poll_readable(cx).is_ready() {
                return Poll::Ready(Wake::Readable);
            }
            if blocked && stream.poll_writable(cx).is_ready() {
                return Poll::Ready(Wake::Writable);
            }
            if timer_at.is_some() && Pin::new(&mut timer).poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
            Poll::Pending
        })
        .await;
        match wake {
            Wake::Readable => readable = true,
            Wake::Writable => {}
            Wake::Timer => sm.handle_timeout(Instant::now()),
            Wake::Stop => {
                stop_wait = None;
                sm.close();
            }
        }
    }
}
