//! The loop itself: the poller, the sources it drives, the timer heap (for
//! sources and for the loop's own timers), and the turn.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::{fmt, mem};

use netkit_dns::{Answer, Family, RequestId, Rtype};
use netkit_sys::Resolver;
use netkit_sys::net::Endpoint;
use netkit_sys::net::bind_listener;
use netkit_sys::resolve::Resolution;
use netkit_sys::sys::poller::{Events, Poller};
use slab::Slab;

use crate::dns::{DNS_SOURCE, DnsIo};
use crate::group::Group;
use crate::handle::{Command, LoopHandle, Shared};
use crate::source::{Cx, Source, TimerHeap, key, split_key};
use crate::{ConnectOptions, Error, Handler, ListenOptions, Socket};

/// Size of the loop's shared read buffer.
const READ_BUF: usize = 64 * 1024;
/// The source index that names the loop's own timers in the heap.
const LOOP_TIMERS: usize = u32::MAX as usize;

/// A listening server in an [`EventLoop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Server {
    pub(crate) source: usize,
    pub(crate) generation: u64,
}

/// A set of client connections sharing one handler, made by [`EventLoop::connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientGroup {
    source: usize,
    generation: u64,
}

/// One client connection, to address it after `connect` returned
/// ([`EventLoop::with_socket`]). Stale once it closed: calls then do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Connection {
    group: ClientGroup,
    slot: u32,
    serial: u64,
}

impl Connection {
    /// The client group it belongs to (for [`EventLoop::connect_in`]).
    pub fn group(&self) -> ClientGroup {
        self.group
    }
}

/// A loop service added with [`EventLoop::add_source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId {
    source: usize,
    generation: u64,
}

/// A UDP socket on the loop, from [`EventLoop::udp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpId(SourceId);

/// A timer of the loop's own, from [`EventLoop::set_timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId {
    slot: usize,
    at: Instant,
}

type TimerFn = Box<dyn FnOnce(&mut EventLoop)>;

/// A `lookup` callback of the loop's DNS API.
type LookupFn = Box<dyn FnOnce(&mut EventLoop, Result<Vec<IpAddr>, Error>)>;
/// A `resolve` callback of the loop's DNS API.
type ResolveFn = Box<dyn FnOnce(&mut EventLoop, Result<Answer, netkit_dns::Error>)>;

/// A callback of the loop's DNS API, waiting for its request.
enum DnsCallback {
    Lookup(String, LookupFn),
    Resolve(ResolveFn),
}

struct Entry {
    generation: u64,
    referenced: bool,
    source: Box<dyn Source>,
}

/// A Bun-style event loop: servers, clients, timers and services with handler
/// callbacks, on one thread.
pub struct EventLoop {
    shared: Arc<Shared>,
    sources: Slab<Entry>,
    next_generation: u64,
    events: Events,
    buf: Box<[u8]>,
    timers: TimerHeap,
    /// The loop's own timers: deadline and callback.
    callbacks: Slab<(Instant, TimerFn)>,
    soon: Vec<u64>,
    resolver: Resolver,
    dns: DnsIo,
    dns_callbacks: HashMap<RequestId, DnsCallback>,
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("sources", &self.sources.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// A new loop with its own poller and resolver (the hosts file is read
    /// once, and again only when it changes).
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            shared: Arc::new(Shared {
                poller: Poller::new()?,
                commands: Mutex::new(Vec::new()),
            }),
            sources: Slab::new(),
            next_generation: 1,
            events: Events::new(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            timers: TimerHeap::new(),
            callbacks: Slab::new(),
            soon: Vec::new(),
            resolver: Resolver::default(),
            dns: DnsIo::default(),
            dns_callbacks: HashMap::new(),
        })
    }

    /// A handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            shared: self.shared.clone(),
        }
    }

    /// The loop's resolver: the connect plan's resolution step and the DNS
    /// API below. Replace it (`*lp.resolver() = Resolver::new(..)`) to ask
    /// other servers or read another hosts file.
    pub fn resolver(&mut self) -> &mut Resolver {
        &mut self.resolver
    }

    /// node's `dns.lookup`: the addresses of `host` (IP literal, hosts file,
    /// then DNS through the cache), in connect order; `f` runs with them on
    /// the loop (at once when no query is needed).
    pub fn lookup(
        &mut self,
        host: &str,
        family: Family,
        f: impl FnOnce(&mut Self, Result<Vec<IpAddr>, Error>) + 'static,
    ) {
        match self.resolver.lookup_family(Instant::now(), host, family) {
            Resolution::Ready(r) => f(self, r),
            Resolution::Pending(req) => {
                self.dns_callbacks
                    .insert(req, DnsCallback::Lookup(host.to_string(), Box::new(f)));
            }
        }
    }

    /// node's `dns.resolve*`: the records of `name` of type `rtype` (never the
    /// hosts file), from the cache or the servers; `f` runs with them on the
    /// loop.
    pub fn resolve(
        &mut self,
        name: &str,
        rtype: Rtype,
        f: impl FnOnce(&mut Self, Result<Answer, netkit_dns::Error>) + 'static,
    ) {
        match self.resolver.resolve(Instant::now(), name, rtype) {
            Resolution::Ready(r) => f(self, r),
            Resolution::Pending(req) => {
                self.dns_callbacks
                    .insert(req, DnsCallback::Resolve(Box::new(f)));
            }
        }
    }

    /// node's `dns.reverse`: the host names of `ip` (its PTR records); `f`
    /// runs with them on the loop. Errors name `getHostByAddr IP`.
    pub fn reverse(
        &mut self,
        ip: IpAddr,
        f: impl FnOnce(&mut Self, Result<Vec<String>, netkit_dns::Error>) + 'static,
    ) {
        self.resolve(&netkit_dns::reverse_name(ip), Rtype::Ptr, move |lp, r| {
            f(
                lp,
                r.map(|a| netkit_dns::ptr_names(&a))
                    .map_err(|e| netkit_dns::reverse_error(e, ip)),
            );
        });
    }

    /// Warms the DNS cache for `host` (Bun's `dns.prefetch`; Bun's `port`
    /// argument has no part here: the cache holds addresses by name).
    pub fn prefetch(&mut self, host: &str) {
        self.lookup(host, Family::Any, |_, _| {});
    }

    /// Bun's six DNS cache counters (`dns.getCacheStats()`).
    pub fn dns_stats(&self) -> netkit_dns::cache::Stats {
        self.resolver.stats()
    }

    /// Carries out the resolver's outputs and hands finished requests to
    /// whoever waits: a connecting socket's group (through the soon list) or
    /// a callback.
    fn pump_dns(&mut self, now: Instant) {
        let finished = self.dns.pump(
            &self.shared.poller,
            &mut self.timers,
            &mut self.resolver,
            now,
        );
        for r in finished {
            if let Some(k) = self.dns.waiters.remove(&r) {
                self.soon.push(k);
                continue;
            }
            match self.dns_callbacks.remove(&r) {
                Some(DnsCallback::Lookup(host, f)) => {
                    if let Some(res) = self.resolver.take_lookup(r, &host) {
                        f(self, res);
                    }
                }
                Some(DnsCallback::Resolve(f)) => {
                    if let Some(res) = self.resolver.take_resolve(r) {
                        f(self, res);
                    }
                }
                None => self.resolver.forget(r),
            }
        }
    }

    /// Adds a service the loop drives until it [is done](Source::is_done).
    /// `init` runs at once with the source's context, to register its fds and
    /// arm its timers.
    pub fn add_source<S: Source>(
        &mut self,
        source: S,
        init: impl FnOnce(&mut S, &mut Cx<'_>) -> io::Result<()>,
    ) -> io::Result<SourceId> {
        let generation = self.next_generation;
        self.next_generation += 1;
        let idx = self.sources.insert(Entry {
            generation,
            referenced: true,
            source: Box::new(source),
        });
        let r = self.with_cx(idx, Instant::now(), |src, cx| {
            match src.as_any_mut().downcast_mut::<S>() {
                Some(s) => init(s, cx),
                None => Ok(()),
            }
        });
        match r {
            Some(Ok(())) => Ok(SourceId {
                source: idx,
                generation,
            }),
            Some(Err(e)) => {
                let mut entry = self.sources.remove(idx);
                let now = Instant::now();
                self.cx_for(idx, now, |cx| entry.source.shutdown(cx));
                Err(e)
            }
            None => Err(io::Error::other("source vanished")),
        }
    }

    /// Binds a UDP socket (Bun's `udpSocket`) driven by `handler` on this
    /// loop, at once. The bind address (and a `connect` host) may be an IP
    /// literal or a name the hosts file or the DNS cache answers without a
    /// query; a name that needs a query is `ENOTFOUND` here: for those, use
    /// [`udp_resolving`](Self::udp_resolving).
    pub fn udp<H: crate::udp::UdpHandler>(
        &mut self,
        opts: crate::udp::UdpOptions,
        handler: H,
    ) -> Result<UdpId, Error> {
        let now = Instant::now();
        let ip = self.resolver.lookup_now(now, &opts.hostname)?;
        let peer = match &opts.connect {
            Some((host, _)) => Some(netkit_sys::udp::pick_peer(
                ip,
                host,
                &self.resolver.lookup_all_now(now, host)?,
            )?),
            None => None,
        };
        self.udp_at(&opts, ip, peer, handler)
    }

    /// Binds a UDP socket like [`udp`](Self::udp), resolving the bind host
    /// and the `connect` host through the loop's resolver first, DNS
    /// included (once each, asynchronously: the loop runs meanwhile). `done`
    /// runs on the loop with the socket's id once it is bound (the handler
    /// hears its datagrams from then on), or with the error: `ENOTFOUND` for
    /// a name nobody knows, a bind or connect error, and `handler` dropped.
    pub fn udp_resolving<H: crate::udp::UdpHandler>(
        &mut self,
        opts: crate::udp::UdpOptions,
        handler: H,
        done: impl FnOnce(&mut Self, Result<UdpId, Error>) + 'static,
    ) {
        let host = opts.hostname.clone();
        self.lookup(&host.clone(), Family::Any, move |lp, r| {
            let ip = match r.and_then(|a| netkit_sys::udp::pick_bind(&host, &a)) {
                Ok(ip) => ip,
                Err(e) => return done(lp, Err(e)),
            };
            let Some((peer_host, _)) = opts.connect.clone() else {
                let r = lp.udp_at(&opts, ip, None, handler);
                return done(lp, r);
            };
            lp.lookup(&peer_host.clone(), Family::Any, move |lp, r| {
                let r = r
                    .and_then(|a| netkit_sys::udp::pick_peer(ip, &peer_host, &a))
                    .and_then(|peer| lp.udp_at(&opts, ip, Some(peer), handler));
                done(lp, r);
            });
        });
    }

    fn udp_at<H: crate::udp::UdpHandler>(
        &mut self,
        opts: &crate::udp::UdpOptions,
        ip: IpAddr,
        peer: Option<IpAddr>,
        handler: H,
    ) -> Result<UdpId, Error> {
        let source = crate::udp::UdpSource::bind(opts, ip, peer, handler)?;
        let id = self
            .add_source(source, |s, cx| s.start(cx))
            .map_err(|e| netkit_sys::os_error(&e, "udp"))?;
        Ok(UdpId(id))
    }

    /// Runs `f` with a UDP socket's handler and socket (to send from
    /// outside a callback); `None` once it is closed.
    pub fn with_udp<H: crate::udp::UdpHandler, R>(
        &mut self,
        id: UdpId,
        f: impl FnOnce(&mut H, &mut crate::udp::UdpSocket<'_>) -> R,
    ) -> Option<R> {
        self.with_source::<crate::udp::UdpSource<H>, _>(id.0, |s, cx| s.with(cx, f))
            .flatten()
    }

    /// Where a UDP socket is bound.
    pub fn udp_local_addr<H: crate::udp::UdpHandler>(&mut self, id: UdpId) -> Option<SocketAddr> {
        self.with_source::<crate::udp::UdpSource<H>, _>(id.0, |s, _| s.local_addr())
            .flatten()
    }

    /// Runs `f` with a source added by [`add_source`](Self::add_source) and its
    /// context; `None` if it is gone or not an `S`.
    pub fn with_source<S: Source, R>(
        &mut self,
        id: SourceId,
        f: impl FnOnce(&mut S, &mut Cx<'_>) -> R,
    ) -> Option<R> {
        if self.sources.get(id.source)?.generation != id.generation {
            return None;
        }
        self.with_cx(id.source, Instant::now(), |src, cx| {
            src.as_any_mut().downcast_mut::<S>().map(|s| f(s, cx))
        })
        .flatten()
    }

    /// Calls `f` on this loop at `at` (or later), unless cancelled. Pending
    /// timers keep [`run`](Self::run) going.
    pub fn set_timer(&mut self, at: Instant, f: impl FnOnce(&mut Self) + 'static) -> TimerId {
        let slot = self.callbacks.insert((at, Box::new(f)));
        self.timers
            .push(Reverse((at, key(LOOP_TIMERS, slot as u32))));
        TimerId { slot, at }
    }

    /// Cancels a timer; returns whether it was still pending.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        match self.callbacks.get(id.slot) {
            Some((at, _)) if *at == id.at => {
                drop(self.callbacks.remove(id.slot));
                true
            }
            _ => false,
        }
    }

    fn add_group<H: Handler>(&mut self, group: Group<H>) -> (usize, u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let idx = self.sources.insert(Entry {
            generation,
            referenced: true,
            source: Box::new(group),
        });
        (idx, generation)
    }

    fn group_mut<H: Handler>(&mut self, source: usize, generation: u64) -> Option<&mut Group<H>> {
        match self.sources.get_mut(source) {
            Some(e) if e.generation == generation => {
                e.source.as_any_mut().downcast_mut::<Group<H>>()
            }
            _ => None,
        }
    }

    /// Starts a server (`Bun.listen`), TCP or Unix (`opts.unix`). Each accepted
    /// socket starts with `H::Data::default()`; set it in `open`.
    pub fn listen<H>(&mut self, opts: ListenOptions, handler: H) -> Result<Server, Error>
    where
        H: Handler,
        H::Data: Default,
    {
        let listener = bind_listener(&opts, &mut self.resolver)?;
        let (idx, generation) =
            self.add_group(Group::server(handler, listener, &opts, H::Data::default));
        let r = self.with_cx(idx, Instant::now(), |src, cx| {
            match src.as_any_mut().downcast_mut::<Group<H>>() {
                Some(g) => g.watch_listener(cx),
                None => Ok(()),
            }
        });
        if let Some(Err(e)) = r {
            self.sources.remove(idx);
            return Err(netkit_sys::os_error(&e, "listen"));
        }
        Ok(Server {
            source: idx,
            generation,
        })
    }

    /// Connects a client (`Bun.connect`) with its own handler and initial data.
    /// Failure to resolve or connect is reported to `connect_error`, never as an
    /// `Err` here (the handler runs on a later turn, never inside this call).
    pub fn connect<H: Handler>(
        &mut self,
        opts: ConnectOptions,
        handler: H,
        data: H::Data,
    ) -> Result<Connection, Error> {
        let (idx, generation) = self.add_group(Group::clients(handler));
        let group = ClientGroup {
            source: idx,
            generation,
        };
        self.connect_in::<H>(group, opts, data)
    }

    /// Connects another socket that shares `group`'s handler.
    pub fn connect_in<H: Handler>(
        &mut self,
        group: ClientGroup,
        opts: ConnectOptions,
        data: H::Data,
    ) -> Result<Connection, Error> {
        let now = Instant::now();
        if self
            .group_mut::<H>(group.source, group.generation)
            .is_none()
        {
            return Err(Error::Closed);
        }
        let (slot, serial) = self
            .with_cx(group.source, now, |src, cx| {
                src.as_any_mut()
                    .downcast_mut::<Group<H>>()
                    .map(|g| g.connect(cx, opts, data))
            })
            .flatten()
            .ok_or(Error::Closed)?;
        Ok(Connection {
            group,
            slot,
            serial,
        })
    }

    /// Runs `f` with the handler and the socket of one client connection,
    /// outside any callback (Bun's "hold the socket and write to it later"),
    /// then performs the I/O `f` asked for. `None` if the connection is gone or
    /// `H` is not its handler type.
    pub fn with_socket<H: Handler, R>(
        &mut self,
        conn: Connection,
        f: impl FnOnce(&mut H, &mut Socket<'_, H::Data>) -> R,
    ) -> Option<R> {
        let now = Instant::now();
        let ClientGroup { source, generation } = conn.group;
        if self.sources.get(source)?.generation != generation {
            return None;
        }
        self.with_cx(source, now, |src, cx| {
            let g = src.as_any_mut().downcast_mut::<Group<H>>()?;
            let c = g.conns.get_mut(conn.slot as usize)?;
            if c.serial != conn.serial {
                return None;
            }
            let r = f(&mut g.handler, &mut c.handle(now));
            g.pump(cx, conn.slot);
            Some(r)
        })
        .flatten()
    }

    /// The TCP address a server is bound to (the real port after `port: 0`);
    /// `None` for a Unix server (see [`local_endpoint`](Self::local_endpoint)).
    pub fn local_addr(&self, server: Server) -> Option<SocketAddr> {
        self.local_endpoint(server)?.inet()
    }

    /// Where a server listens: a TCP address or a Unix path.
    pub fn local_endpoint(&self, server: Server) -> Option<Endpoint> {
        let e = self.sources.get(server.source)?;
        if e.generation != server.generation {
            return None;
        }
        e.source.local_endpoint()
    }

    /// Live connections of a server.
    pub fn connections(&self, server: Server) -> usize {
        match self.sources.get(server.source) {
            Some(e) if e.generation == server.generation => e.source.connections(),
            _ => 0,
        }
    }

    /// Stops a server (Bun's `server.stop(force)`): closes the listener (a Unix
    /// server removes its socket file); with `force`, also closes every
    /// connection (their `close` handlers run). Without it, connections finish
    /// on their own. A second stop is a no-op.
    pub fn stop(&mut self, server: Server, force: bool) {
        self.stop_source(server.source, server.generation, force);
    }

    fn stop_source(&mut self, source: usize, generation: u64, force: bool) {
        if self
            .sources
            .get(source)
            .is_some_and(|e| e.generation == generation)
        {
            self.with_cx(source, Instant::now(), |src, cx| src.stop(cx, force));
        }
    }

    /// Swaps the handler of a live server for all its connections at once (Bun's
    /// `server.reload`). Fails if `handler` is not the server's handler type or the
    /// server is gone.
    pub fn reload<H: Handler>(&mut self, server: Server, handler: H) -> Result<(), Error> {
        let g = self
            .group_mut::<H>(server.source, server.generation)
            .ok_or(Error::Closed)?;
        g.handler = handler;
        Ok(())
    }

    fn set_referenced(&mut self, source: usize, generation: u64, r: bool) {
        if let Some(e) = self.sources.get_mut(source) {
            if e.generation == generation {
                e.referenced = r;
            }
        }
    }

    /// Lets [`run`](Self::run) return while this server is still listening.
    pub fn unref(&mut self, server: Server) {
        self.set_referenced(server.source, server.generation, false);
    }

    /// Makes [`run`](Self::run) wait for this server again.
    pub fn ref_(&mut self, server: Server) {
        self.set_referenced(server.source, server.generation, true);
    }

    /// Lets [`run`](Self::run) return while this source is still active.
    pub fn unref_source(&mut self, id: SourceId) {
        self.set_referenced(id.source, id.generation, false);
    }

    /// Whether a referenced server, client group or service is still alive, or
    /// a timer is pending (an unref'd server's connections do not keep the loop
    /// running, as in Bun).
    pub fn is_alive(&self) -> bool {
        self.sources
            .iter()
            .any(|(_, e)| e.referenced && e.source.keeps_alive())
            || !self.soon.is_empty()
            || !self.callbacks.is_empty()
            || !self.dns_callbacks.is_empty()
    }

    /// Runs until no referenced server, client group, service or timer is left.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            // Work that needs no waiting (failed connects, posted commands) may be
            // all that is left: do it before deciding to block.
            self.run_commands();
            self.pump_dns(Instant::now());
            self.run_soon();
            if !self.is_alive() {
                return Ok(());
            }
            self.turn(None)?;
        }
    }

    /// Runs until `cond` holds or `limit` passes; returns whether `cond` held.
    pub fn run_until(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut() -> bool,
    ) -> io::Result<bool> {
        let end = Instant::now() + limit;
        loop {
            if cond() {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= end {
                return Ok(false);
            }
            self.turn(Some(end - now))?;
        }
    }

    /// Runs `f` with the context of source `idx` (it is taken out of the slab
    /// meanwhile, so `f` may not reach the loop); `None` if there is no such source.
    fn with_cx<R>(
        &mut self,
        idx: usize,
        now: Instant,
        f: impl FnOnce(&mut dyn Source, &mut Cx<'_>) -> R,
    ) -> Option<R> {
        let entry = self.sources.get_mut(idx)?;
        let mut cx = Cx {
            poller: &self.shared.poller,
            timers: &mut self.timers,
            soon: &mut self.soon,
            resolver: &mut self.resolver,
            dns_waiters: &mut self.dns.waiters,
            source: idx,
            buf: &mut self.buf,
            now,
        };
        Some(f(entry.source.as_mut(), &mut cx))
    }

    /// A context for source `idx` without the source itself.
    fn cx_for<R>(&mut self, idx: usize, now: Instant, f: impl FnOnce(&mut Cx<'_>) -> R) -> R {
        let mut cx = Cx {
            poller: &self.shared.poller,
            timers: &mut self.timers,
            soon: &mut self.soon,
            resolver: &mut self.resolver,
            dns_waiters: &mut self.dns.waiters,
            source: idx,
            buf: &mut self.buf,
            now,
        };
        f(&mut cx)
    }

    /// One turn: wait for readiness (at most `timeout`, or until the next timer),
    /// dispatch I/O, fire timers, run commands.
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        // A turn that ran work before waiting does not block: that work may
        // have called back the caller, who must see it before sleeping.
        let had_soon = !self.soon.is_empty();
        self.run_commands();
        self.pump_dns(Instant::now());
        self.run_soon();
        let mut wait = timeout;
        if let Some(Reverse((t, _))) = self.timers.peek() {
            let d = t.saturating_duration_since(Instant::now());
            wait = Some(wait.map_or(d, |w| w.min(d)));
        }
        if had_soon || !self.soon.is_empty() {
            wait = Some(Duration::ZERO);
        }
        self.events.clear();
        match self.shared.poller.wait(&mut self.events, wait) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let events = mem::replace(&mut self.events, Events::new_empty());
        let mut dns_touched = false;
        for ev in events.iter() {
            let (source, token) = split_key(ev.key as u64);
            if source == DNS_SOURCE {
                self.dns.ready(
                    &self.shared.poller,
                    &mut self.resolver,
                    &mut self.buf,
                    now,
                    token,
                    ev,
                );
                dns_touched = true;
                continue;
            }
            self.with_cx(source, now, |src, cx| src.ready(cx, token, ev));
        }
        self.events = events;
        self.fire_timers(now);
        if dns_touched || self.dns.busy() {
            self.pump_dns(now);
        }
        self.run_commands();
        self.reap();
        Ok(())
    }

    fn run_soon(&mut self) {
        let soon = mem::take(&mut self.soon);
        let now = Instant::now();
        for k in soon {
            let (source, token) = split_key(k);
            self.with_cx(source, now, |src, cx| src.soon(cx, token));
        }
        self.reap();
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, k))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let (source, token) = split_key(k);
            if source == DNS_SOURCE {
                self.dns.timer(&mut self.resolver, now, t);
            } else if source == LOOP_TIMERS {
                let slot = token as usize;
                if self.callbacks.get(slot).is_some_and(|(at, _)| *at == t) {
                    let (_, f) = self.callbacks.remove(slot);
                    f(self);
                }
            } else {
                self.with_cx(source, now, |src, cx| src.timer(cx, token, t));
            }
        }
    }

    fn run_commands(&mut self) {
        for cmd in self.shared.take_commands() {
            match cmd {
                Command::Stop {
                    source,
                    generation,
                    force,
                } => self.stop_source(source, generation, force),
                Command::StopAll { force } => {
                    let ids: Vec<(usize, u64)> = self
                        .sources
                        .iter()
                        .map(|(i, e)| (i, e.generation))
                        .collect();
                    for (i, g) in ids {
                        self.stop_source(i, g, force);
                    }
                }
                Command::Reload {
                    source,
                    generation,
                    handler,
                } => {
                    if let Some(e) = self.sources.get_mut(source) {
                        if e.generation == generation {
                            let _ = e.source.reload(handler);
                        }
                    }
                }
                Command::Post(f) => f(self),
            }
        }
        self.reap();
    }

    /// Drops sources that are done.
    fn reap(&mut self) {
        let done: Vec<usize> = self
            .sources
            .iter()
            .filter(|(_, e)| e.source.is_done())
            .map(|(i, _)| i)
            .collect();
        let now = Instant::now();
        for i in done {
            let mut e = self.sources.remove(i);
            self.cx_for(i, now, |cx| e.source.shutdown(cx));
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        let now = Instant::now();
        let ids: Vec<usize> = self.sources.iter().map(|(i, _)| i).collect();
        for i in ids {
            let mut e = self.sources.remove(i);
            self.cx_for(i, now, |cx| e.source.shutdown(cx));
        }
    }
}
