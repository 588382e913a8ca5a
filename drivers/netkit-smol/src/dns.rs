//! The runtime's DNS service, driven by whoever waits: no task of its own.
//! A request's future, when polled, carries out the resolver's outputs (one
//! UDP socket per query with a fresh port, connected to its server; TCP for a
//! truncated answer), reads the sockets that are ready and runs the
//! retransmit timer, all under one lock. The sockets and the timer hold one
//! waker of the service's (a relay, so re-registering never wakes anybody,
//! which async-io does to a waker it replaces) that passes a wake-up on to
//! the driver: the last future to poll. When the driver finishes or is
//! dropped, another waiter becomes the driver and is woken. So an
//! answer is read by a task that waits for it, on whatever executor that is,
//! with no hop to another thread (a service task on smol's executor cost
//! three: cold `resolve4` p50 was 2.3x hickory's, now about 0.9x; `cargo
//! xtask bench dns`). Every decision is netkit-dns's.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use async_io::{Async, Timer};
use netkit_dns::resolver::{Output, QueryId};
use netkit_dns::{Answer, RequestId};
use netkit_sys::net::{Endpoint, connect_result, start_connect};
use netkit_sys::sys::errno::errno_name;
use netkit_sys::{Error, Resolver};

/// A finished request.
pub(crate) enum Outcome {
    Lookup(Result<Vec<IpAddr>, Error>),
    Resolve(Result<Answer, netkit_dns::Error>),
}

/// A request somebody waits for.
struct Slot {
    /// The host of a lookup (its errors name it); `None` for a resolve.
    host: Option<String>,
    waker: Option<Waker>,
    done: Option<Outcome>,
}

/// The waker the sockets and the timer hold: it wakes the driver.
#[derive(Default)]
struct Relay {
    driver: Mutex<Option<Waker>>,
}

impl Relay {
    fn set(&self, w: Option<&Waker>) {
        let mut d = self.driver.lock().unwrap_or_else(|e| e.into_inner());
        match (&mut *d, w) {
            (Some(old), Some(w)) if old.will_wake(w) => {}
            (d, w) => *d = w.cloned(),
        }
    }
}

impl Wake for Relay {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let d = self.driver.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = &*d {
            w.wake_by_ref();
        }
    }
}

/// The resolver, its sockets and timer, and the waiters, behind one lock.
pub(crate) struct State {
    pub(crate) resolver: Resolver,
    slots: HashMap<RequestId, Slot>,
    io: Sockets,
    timer: Timer,
    /// Where `timer` is set (re-setting an async-io timer wakes its reactor:
    /// done only when the deadline moves).
    timer_at: Option<Instant>,
    relay: Arc<Relay>,
    /// `relay` as a waker (one value: async-io sees the same waker each time).
    relay_waker: Waker,
    /// The request the relay wakes.
    driver: Option<RequestId>,
    /// The read buffer (64 KiB, a TCP answer's most), made on first use.
    buf: Vec<u8>,
}

impl State {
    pub(crate) fn new(resolver: Resolver) -> Self {
        let relay = Arc::new(Relay::default());
        Self {
            resolver,
            slots: HashMap::new(),
            io: Sockets::default(),
            timer: Timer::never(),
            timer_at: None,
            relay_waker: Waker::from(relay.clone()),
            relay,
            driver: None,
            buf: Vec::new(),
        }
    }

    /// Hands finished requests to their slots and wakes their waiters
    /// (except `me`, who is running).
    fn deliver(&mut self, finished: Vec<RequestId>, me: RequestId) {
        for r in finished {
            let Some(slot) = self.slots.get_mut(&r) else {
                self.resolver.forget(r);
                continue;
            };
            let out = match &slot.host {
                Some(host) => self.resolver.take_lookup(r, host).map(Outcome::Lookup),
                None => self.resolver.take_resolve(r).map(Outcome::Resolve),
            };
            if let Some(out) = out {
                slot.done = Some(out);
                if r != me {
                    if let Some(w) = slot.waker.take() {
                        w.wake();
                    }
                }
            }
        }
    }

    /// Carries out the resolver's outputs, reads what the sockets have and
    /// runs the timer until nothing moves; every socket and the timer are
    /// left registered with the relay.
    fn drive(&mut self, me: RequestId) {
        let relay = self.relay_waker.clone();
        let mut cx = Context::from_waker(&relay);
        let cx = &mut cx;
        let mut ready = Vec::new();
        loop {
            let now = Instant::now();
            let mut moved = false;
            let finished = self.resolver.pump(now);
            moved |= !finished.is_empty();
            self.deliver(finished, me);
            while let Some(out) = self.resolver.dns().poll_output() {
                moved = true;
                self.io.carry_out(out);
            }
            for (q, e) in self.io.failures.drain(..) {
                moved = true;
                match e {
                    Failure::Udp(code) => self.resolver.dns().handle_udp_error(now, q, code),
                    Failure::Tcp(code) => self.resolver.dns().handle_tcp_error(now, q, code),
                }
            }
            ready.clear();
            self.io.poll_ready(cx, &mut ready);
            if !ready.is_empty() && self.buf.is_empty() {
                self.buf = vec![0; 64 * 1024];
            }
            for &(q, r) in &ready {
                moved = true;
                self.io.handle(&mut self.resolver, &mut self.buf, now, q, r);
            }
            match self.resolver.dns().poll_timeout() {
                Some(t) if t <= now => {
                    moved = true;
                    self.resolver.dns().handle_timeout(now);
                }
                Some(t) => {
                    if self.timer_at != Some(t) {
                        self.timer_at = Some(t);
                        self.timer.set_at(t);
                    }
                    if Pin::new(&mut self.timer).poll(cx).is_ready() {
                        moved = true;
                        self.resolver.dns().handle_timeout(Instant::now());
                    }
                }
                None => {}
            }
            if !moved {
                return;
            }
        }
    }

    /// `r` no longer waits: if it was the driver, another waiter becomes the
    /// driver and is woken (a wake-up may have gone to `r`).
    fn leave(&mut self, r: RequestId) {
        self.slots.remove(&r);
        if self.driver == Some(r) {
            let next = self
                .slots
                .iter()
                .find_map(|(id, s)| Some((*id, s.waker.clone()?)));
            self.driver = next.as_ref().map(|(id, _)| *id);
            self.relay.set(next.as_ref().map(|(_, w)| w));
            if let Some((_, w)) = next {
                w.wake();
            }
        }
    }
}

/// The DNS service of one runtime.
pub(crate) struct DnsService {
    state: Mutex<State>,
}

impl DnsService {
    pub(crate) fn new(resolver: Resolver) -> Self {
        Self {
            state: Mutex::new(State::new(resolver)),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The future of request `r`, just started under `state` (this service's
    /// lock): a lookup of `host`, or a resolve (`None`).
    pub(crate) fn wait(
        self: &Arc<Self>,
        state: &mut State,
        r: RequestId,
        host: Option<String>,
    ) -> Pending {
        state.slots.insert(
            r,
            Slot {
                host,
                waker: None,
                done: None,
            },
        );
        Pending {
            service: self.clone(),
            request: r,
            finished: false,
        }
    }
}

/// A request's outcome, driving the service while it waits.
pub(crate) struct Pending {
    service: Arc<DnsService>,
    request: RequestId,
    finished: bool,
}

impl Future for Pending {
    type Output = Outcome;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let this = self.get_mut();
        let r = this.request;
        let mut guard = this.service.lock();
        let st = &mut *guard;
        let Some(slot) = st.slots.get_mut(&r) else {
            this.finished = true;
            return Poll::Ready(Outcome::Lookup(Err(Error::os(
                "ECANCELED",
                "DNS request lost".to_string(),
            ))));
        };
        if slot.done.is_none() {
            match &mut slot.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                w => *w = Some(cx.waker().clone()),
            }
            st.driver = Some(r);
            st.relay.set(Some(cx.waker()));
            st.drive(r);
        }
        match st.slots.get_mut(&r).and_then(|s| s.done.take()) {
            Some(out) => {
                this.finished = true;
                st.leave(r);
                Poll::Ready(out)
            }
            None => Poll::Pending,
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            let mut st = self.service.lock();
            st.resolver.forget(self.request);
            st.leave(self.request);
        }
    }
}

enum Failure {
    Udp(&'static str),
    Tcp(&'static str),
}

#[derive(Clone, Copy)]
enum Ready {
    Udp,
    TcpConnected,
    TcpReadable,
}

struct Tcp {
    stream: Async<TcpStream>,
    to: SocketAddr,
    connecting: bool,
    out: Vec<u8>,
}

#[derive(Default)]
struct Sockets {
    udp: HashMap<QueryId, (Async<UdpSocket>, Option<SocketAddr>)>,
    tcp: HashMap<QueryId, Tcp>,
    failures: Vec<(QueryId, Failure)>,
}

impl Sockets {
    fn carry_out(&mut self, out: Output<'_>) {
        match out {
            Output::Udp { query, to, payload } => {
                if let Err(e) = self.send_udp(query, to, payload) {
                    self.failures.push((query, Failure::Udp(errno_name(&e))));
                }
            }
            Output::TcpConnect { query, to } => {
                let started = start_connect(&Endpoint::Inet(to))
                    .map_err(|e| e.code())
                    .and_then(|s| Async::new(TcpStream::from(s)).map_err(|e| errno_name(&e)));
                match started {
                    Ok(stream) => {
                        self.tcp.insert(
                            query,
                            Tcp {
                                stream,
                                to,
                                connecting: true,
                                out: Vec::new(),
                            },
                        );
                    }
                    Err(code) => self.failures.push((query, Failure::Tcp(code))),
                }
            }
            Output::TcpSend { query, bytes } => {
                if let Some(t) = self.tcp.get_mut(&query) {
                    t.out.extend_from_slice(bytes);
                    // Small (a query): the kernel takes it whole.
                    match t.stream.get_ref().write_nonblocking(&t.out) {
                        Ok(n) => {
                            t.out.drain(..n);
                        }
                        Err(e) => self.failures.push((query, Failure::Tcp(errno_name(&e)))),
                    }
                }
            }
            Output::TcpClose { query } => {
                self.tcp.remove(&query);
            }
            Output::Close { query } => {
                self.tcp.remove(&query);
                self.udp.remove(&query);
            }
        }
    }

    fn send_udp(&mut self, query: QueryId, to: SocketAddr, payload: &[u8]) -> io::Result<()> {
        let (sock, peer) = match self.udp.entry(query) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let any: SocketAddr = if to.is_ipv6() {
                    (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
                } else {
                    (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
                };
                // Port 0: the kernel picks a random ephemeral port per socket.
                e.insert((Async::<UdpSocket>::bind(any)?, None))
            }
        };
        if *peer != Some(to) {
            sock.get_ref().connect(to)?;
            *peer = Some(to);
        }
        match sock.get_ref().send(payload) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The sockets that are ready, in `ready`; interest registered in the
    /// others with `cx`.
    fn poll_ready(&self, cx: &mut Context<'_>, ready: &mut Vec<(QueryId, Ready)>) {
        for (q, (s, _)) in &self.udp {
            if s.poll_readable(cx).is_ready() {
                ready.push((*q, Ready::Udp));
            }
        }
        for (q, t) in &self.tcp {
            if t.connecting {
                if t.stream.poll_writable(cx).is_ready() {
                    ready.push((*q, Ready::TcpConnected));
                }
            } else if t.stream.poll_readable(cx).is_ready() {
                ready.push((*q, Ready::TcpReadable));
            }
        }
    }

    fn handle(
        &mut self,
        resolver: &mut Resolver,
        buf: &mut [u8],
        now: Instant,
        q: QueryId,
        ready: Ready,
    ) {
        match ready {
            Ready::Udp => {
                let Some((s, _)) = self.udp.get(&q) else {
                    return;
                };
                for _ in 0..16 {
                    match s.get_ref().recv_from(buf) {
                        Ok((n, from)) => resolver.dns().handle_udp(now, q, from, &buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            resolver.dns().handle_udp_error(now, q, errno_name(&e));
                            break;
                        }
                    }
                }
            }
            Ready::TcpConnected => {
                let Some(t) = self.tcp.get_mut(&q) else {
                    return;
                };
                let sock = socket2::SockRef::from(t.stream.get_ref());
                match connect_result(&sock, &Endpoint::Inet(t.to), false) {
                    Ok(true) => {
                        t.connecting = false;
                        resolver.dns().handle_tcp_connected(now, q);
                    }
                    Ok(false) => {}
                    Err(e) => resolver.dns().handle_tcp_error(now, q, e.code()),
                }
            }
            Ready::TcpReadable => {
                use std::io::Read;
                let Some(t) = self.tcp.get_mut(&q) else {
                    return;
                };
                match t.stream.get_ref().read(buf) {
                    Ok(0) => resolver.dns().handle_tcp_error(now, q, "ECONNRESET"),
                    Ok(n) => resolver.dns().handle_tcp_input(now, q, &buf[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) => {}
                    Err(e) => resolver.dns().handle_tcp_error(now, q, errno_name(&e)),
                }
            }
        }
    }
}

/// Writes without waiting (a query is small; the kernel takes it whole).
trait WriteNonblocking {
    fn write_nonblocking(&self, bytes: &[u8]) -> io::Result<usize>;
}

impl WriteNonblocking for TcpStream {
    fn write_nonblocking(&self, bytes: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        let mut s = self;
        s.write(bytes)
    }
}
