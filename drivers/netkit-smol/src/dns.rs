//! The runtime's DNS service: one task that owns the sockets and the timer of
//! the runtime's resolver and carries out its outputs (one UDP socket per
//! query with a fresh port, connected to its server; TCP for a truncated
//! answer; the retransmit timer). Every decision is netkit-dns's. Requests
//! wait on a channel; the resolver, the waiters and the wake-up of the task
//! share one lock, so a request is never finished before its waiter is known.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::future;
use netkit_dns::resolver::{Output, QueryId};
use netkit_dns::{Answer, RequestId};
use netkit_sys::net::{Endpoint, connect_result, start_connect};
use netkit_sys::sys::errno::errno_name;
use netkit_sys::{Error, Resolver};

/// Who waits for a request.
pub(crate) enum Waiter {
    Lookup(String, async_channel::Sender<Result<Vec<IpAddr>, Error>>),
    Resolve(async_channel::Sender<Result<Answer, netkit_dns::Error>>),
}

/// The resolver and its waiters, behind one lock.
pub(crate) struct State {
    pub(crate) resolver: Resolver,
    pub(crate) waiters: HashMap<RequestId, Waiter>,
    /// Whether the task runs.
    running: bool,
}

impl State {
    pub(crate) fn new(resolver: Resolver) -> Self {
        Self {
            resolver,
            waiters: HashMap::new(),
            running: false,
        }
    }

    /// Hands finished requests to their waiters.
    fn deliver(&mut self, finished: Vec<RequestId>) {
        for r in finished {
            match self.waiters.remove(&r) {
                Some(Waiter::Lookup(host, tx)) => {
                    if let Some(res) = self.resolver.take_lookup(r, &host) {
                        let _ = tx.try_send(res);
                    }
                }
                Some(Waiter::Resolve(tx)) => {
                    if let Some(res) = self.resolver.take_resolve(r) {
                        let _ = tx.try_send(res);
                    }
                }
                None => self.resolver.forget(r),
            }
        }
    }
}

/// The DNS service of one runtime.
pub(crate) struct DnsService {
    pub(crate) state: Mutex<State>,
    /// Wakes the task: a request was made.
    wake: (async_channel::Sender<()>, async_channel::Receiver<()>),
}

impl DnsService {
    pub(crate) fn new(resolver: Resolver) -> Self {
        Self {
            state: Mutex::new(State::new(resolver)),
            wake: async_channel::bounded(1),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `waiter` for `r` (under the lock just used to start it) and
    /// makes sure the task runs and looks.
    pub(crate) fn wait(self: &Arc<Self>, state: &mut State, r: RequestId, waiter: Waiter) {
        state.waiters.insert(r, waiter);
        if !state.running {
            state.running = true;
            let me = self.clone();
            smol::spawn(async move { me.run().await }).detach();
        }
        let _ = self.wake.0.try_send(());
    }

    /// The task: carries out the resolver's outputs, then waits for a
    /// socket, the timer or a new request; ends when nothing is in flight and
    /// nobody waits.
    async fn run(self: Arc<Self>) {
        let mut io = Sockets::default();
        let mut timer = Timer::never();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let deadline = {
                let mut st = self.lock();
                let now = Instant::now();
                loop {
                    let finished = st.resolver.pump(now);
                    st.deliver(finished);
                    let mut did = false;
                    while let Some(out) = st.resolver.dns().poll_output() {
                        did = true;
                        io.carry_out(out, now);
                    }
                    for (q, e) in io.failures.drain(..) {
                        match e {
                            Failure::Udp(code) => st.resolver.dns().handle_udp_error(now, q, code),
                            Failure::Tcp(code) => st.resolver.dns().handle_tcp_error(now, q, code),
                        }
                        did = true;
                    }
                    if !did {
                        break;
                    }
                }
                if st.waiters.is_empty() && st.resolver.dns().in_flight() == 0 {
                    st.running = false;
                    return;
                }
                st.resolver.dns().poll_timeout()
            };
            match deadline {
                Some(t) => timer.set_at(t),
                None => timer = Timer::never(),
            }
            let woke = future::poll_fn(|cx| {
                if let Some(ev) = io.poll_ready(cx) {
                    return Poll::Ready(Some(ev));
                }
                if Pin::new(&mut timer).poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                if self.wake.1.try_recv().is_ok() {
                    return Poll::Ready(None);
                }
                let mut recv = std::pin::pin!(self.wake.1.recv());
                if recv.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            let mut st = self.lock();
            if let Some((q, ready)) = woke {
                io.handle(&mut st.resolver, &mut buf, now, q, ready);
            }
            st.resolver.dns().handle_timeout(now);
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
    fn carry_out(&mut self, out: Output<'_>, _now: Instant) {
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

    /// The first socket that is ready, registering interest in all of them.
    fn poll_ready(&self, cx: &mut std::task::Context<'_>) -> Option<(QueryId, Ready)> {
        for (q, (s, _)) in &self.udp {
            if s.poll_readable(cx).is_ready() {
                return Some((*q, Ready::Udp));
            }
        }
        for (q, t) in &self.tcp {
            if t.connecting {
                if t.stream.poll_writable(cx).is_ready() {
                    return Some((*q, Ready::TcpConnected));
                }
            } else if t.stream.poll_readable(cx).is_ready() {
                return Some((*q, Ready::TcpReadable));
            }
        }
        None
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
