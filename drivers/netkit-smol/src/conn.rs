//! One connection's task: reads into the thread's shared buffer, runs the
//! connection's [`Machine`], hands events to the handler, writes what the
//! machine offers, and waits for readiness, its deadline or a stop signal.
//! The transport is a `socket2` socket of either domain (TCP or Unix), so one
//! driver serves both.

use std::cell::RefCell;
use std::future::Future;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::Poll;
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::future;
use netkit_socket::Transmit;
use netkit_socket::linger::Linger;
use netkit_sys::os_error;
use netkit_tls::{Machine, SocketEvent as Event};
use socket2::Socket as RawSocket;

use crate::{Handler, Socket};

/// Size of each thread's shared read buffer.
const READ_BUF: usize = 64 * 1024;

thread_local! {
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_BUF].into_boxed_slice());
}

/// The current handler of a server, swappable by `reload` for live connections.
pub(crate) struct HandlerCell<H> {
    current: RwLock<Arc<H>>,
    pub(crate) version: AtomicU64,
}

impl<H> HandlerCell<H> {
    pub(crate) fn new(h: H) -> Self {
        Self {
            current: RwLock::new(Arc::new(h)),
            version: AtomicU64::new(0),
        }
    }
    pub(crate) fn load(&self) -> (u64, Arc<H>) {
        let v = self.version.load(Ordering::Acquire);
        let h = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        (v, h)
    }
    pub(crate) fn store(&self, h: H) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(h);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
}

/// What the connections of one server share, behind one `Arc` (an idle
/// connection's task holds one pointer for all of it): the current handler,
/// the signal of `stop(true)`, and the accept gate's "a connection closed". A
/// client connection has one of its own, with no signals.
pub(crate) struct Shared<H> {
    pub(crate) handlers: HandlerCell<H>,
    /// Closed by `stop(true)`: every connection closes.
    pub(crate) stop: Option<async_channel::Receiver<()>>,
    /// Signalled (coalesced) when a connection closes.
    pub(crate) closed: Option<async_channel::Sender<()>>,
}

impl<H> Shared<H> {
    /// A client connection's: its handler, no signals.
    pub(crate) fn client(handler: H) -> Self {
        Self {
            handlers: HandlerCell::new(handler),
            stop: None,
            closed: None,
        }
    }
}

/// Hands queued events to the handler; returns `true` once the socket is closed.
pub(crate) fn deliver<H: Handler>(
    h: &H,
    stream: Option<&Async<RawSocket>>,
    sm: &mut Machine,
    data: &mut H::Data,
    peer: Option<SocketAddr>,
) -> bool {
    while let Some(ev) = sm.poll_event() {
        let now = Instant::now();
        let mut s = Socket::new(sm, data, stream.map(|s| s.get_ref()), peer, now);
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
fn flush(stream: &Async<RawSocket>, sm: &mut Machine, now: Instant) -> bool {
    loop {
        match sm.poll_transmit(now) {
            Transmit::Idle => return false,
            Transmit::Bytes(b) => match stream.get_ref().send(b) {
                Ok(n) => sm.handle_sent(now, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    sm.handle_error(os_error(&e, "write"));
                    return false;
                }
            },
            Transmit::Shutdown => match stream.get_ref().shutdown(Shutdown::Write) {
                Ok(()) => sm.handle_shutdown(now),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => sm.handle_shutdown(now),
                Err(e) => {
                    sm.handle_error(os_error(&e, "shutdown"));
                    return false;
                }
            },
        }
    }
}

/// A lingering close (see [`netkit_socket::linger`]): the parting bytes,
/// FIN, then the peer's late bytes read and discarded until its EOF or the
/// deadline, so that closing sends no reset that could destroy the alert.
pub(crate) async fn linger(stream: &Async<RawSocket>, mut l: Linger) {
    loop {
        let now = Instant::now();
        l.handle_timeout(now);
        let mut blocked = false;
        loop {
            match l.poll_transmit() {
                Transmit::Idle => break,
                Transmit::Bytes(b) => match stream.get_ref().send(b) {
                    Ok(n) => l.handle_sent(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        blocked = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => l.handle_error(),
                },
                Transmit::Shutdown => match stream.get_ref().shutdown(Shutdown::Write) {
                    Ok(()) => l.handle_shutdown(),
                    Err(_) => l.handle_error(),
                },
            }
        }
        READ_BUFFER.with(|buf| {
            let mut buf = buf.borrow_mut();
            while l.wants_read() {
                match stream.get_ref().read(&mut buf) {
                    Ok(0) => l.handle_eof(),
                    Ok(n) => l.handle_input(now, n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => l.handle_error(),
                }
            }
        });
        let Some(deadline) = l.poll_timeout() else {
            return;
        };
        let ready = async {
            if blocked {
                let _ = future::or(stream.readable(), stream.writable()).await;
            } else {
                let _ = stream.readable().await;
            }
        };
        future::or(ready, async {
            Timer::at(deadline).await;
        })
        .await;
    }
}

enum Wake {
    Readable,
    Writable,
    Timer,
    Stop,
}

/// Runs one connection until it closes; then signals `shared.closed` (a
/// server's accept gate learns that a descriptor is free).
pub(crate) async fn drive<H: Handler>(
    stream: Async<RawSocket>,
    mut sm: Machine,
    mut data: H::Data,
    shared: Arc<Shared<H>>,
    peer: Option<SocketAddr>,
) {
    let handlers = &shared.handlers;
    let (mut version, mut h) = handlers.load();
    let mut readable = false;
    let mut timer = Timer::never();
    let mut timer_at = None;
    let mut stop_wait = shared.stop.as_ref().map(|rx| Box::pin(rx.recv()));
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
                                Socket::new(sm, &mut data, Some(stream.get_ref()), peer, now);
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
                Err(e) => sm.handle_error(os_error(&e, "read")),
            }
        }
        let mut blocked;
        loop {
            if sm.wants_plaintext() {
                // Plaintext the TLS layer held while reading was paused.
                READ_BUFFER.with(|buf| {
                    let mut buf = buf.borrow_mut();
                    sm.deliver_plaintext(now, &mut buf, |sm, bytes| {
                        let mut s = Socket::new(sm, &mut data, Some(stream.get_ref()), peer, now);
                        h.data(&mut s, bytes);
                    });
                });
            }
            if deliver(&*h, Some(&stream), &mut sm, &mut data, peer) {
                if sm.reset_on_close() {
                    let _ = stream.get_ref().set_linger(Some(Duration::ZERO));
                } else if let Some(l) = sm.linger(Instant::now()) {
                    // Boxed: the connection's own future stays small.
                    Box::pin(linger(&stream, l)).await;
                }
                drop(stream);
                if let Some(tx) = &shared.closed {
                    // Coalesced: one waiting signal is enough.
                    let _ = tx.try_send(());
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
