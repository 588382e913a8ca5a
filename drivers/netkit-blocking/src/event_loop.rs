//! The event loop: polling, the groups (servers and client sets), timers, commands.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use std::{fmt, mem};

use netkit_socket::{Event, Socket as PlainSocket, Transmit};
use netkit_sys::{bind_listener, start_connect};
use netkit_tls::{Machine, TlsSession, TlsSocket};
use slab::Slab;
use socket2::{Domain, Socket as RawSocket, Type};

use crate::socket::Socket;
use crate::sys::{Event as PollEvent, Events, Poller};
use crate::{ConnectOptions, Error, Handler, ListenOptions, SocketConfig};
use netkit_sys::resolve::resolve;

/// Size of the loop's shared read buffer.
const READ_BUF: usize = 64 * 1024;
/// Connections accepted per listener readiness event, so accepting cannot starve I/O.
const ACCEPTS_PER_EVENT: usize = 128;
/// Rounds of (deliver events, flush) per socket per turn.
const PUMP_ROUNDS: usize = 32;
/// The slot part of a poller key that names a group's listener.
const LISTENER_SLOT: u32 = u32::MAX;

fn key(group: usize, slot: u32) -> usize {
    (group << 32) | slot as usize
}

fn split_key(key: usize) -> (usize, u32) {
    (key >> 32, key as u32)
}

/// A listening server in an [`EventLoop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Server {
    group: usize,
    generation: u64,
}

/// A set of client sockets sharing one handler, made by [`EventLoop::connect`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientGroup {
    group: usize,
    generation: u64,
}

enum Command {
    Stop {
        group: usize,
        generation: u64,
        force: bool,
    },
    StopAll {
        force: bool,
    },
    Reload {
        group: usize,
        generation: u64,
        handler: Box<dyn Any + Send>,
    },
    Post(Box<dyn FnOnce(&mut EventLoop) + Send>),
}

struct Shared {
    poller: Poller,
    commands: Mutex<Vec<Command>>,
}

/// A `Send + Clone` handle to an [`EventLoop`] for other threads (signal handlers,
/// tests): stop servers, reload handlers. Commands run at the loop's next turn.
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").finish_non_exhaustive()
    }
}

impl LoopHandle {
    fn send(&self, cmd: Command) {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cmd);
        let _ = self.shared.poller.notify();
    }

    /// Stops a server: `force` also closes every live connection.
    pub fn stop(&self, server: Server, force: bool) {
        self.send(Command::Stop {
            group: server.group,
            generation: server.generation,
            force,
        });
    }

    /// Stops every server and (with `force`) closes every connection of the loop.
    pub fn stop_all(&self, force: bool) {
        self.send(Command::StopAll { force });
    }

    /// Swaps the handler of a server for all its live connections.
    pub fn reload<H: Handler + Send>(&self, server: Server, handler: H) {
        self.send(Command::Reload {
            group: server.group,
            generation: server.generation,
            handler: Box::new(handler),
        });
    }

    /// Runs `f` on the loop's thread at its next turn, with the loop itself (for
    /// example to write to a client through [`EventLoop::with_client`]).
    pub fn post(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) {
        self.send(Command::Post(Box::new(f)));
    }

    /// Wakes the loop.
    pub fn wake(&self) {
        let _ = self.shared.poller.notify();
    }
}

/// What a group's methods need from the loop during one turn.
struct Cx<'a> {
    poller: &'a Poller,
    buf: &'a mut [u8],
    now: Instant,
    timers: &'a mut BinaryHeap<Reverse<(Instant, usize)>>,
    group: usize,
}

/// A server or a client set: one handler and its connections, type-erased so that a
/// loop can hold groups of different handler types.
trait Group {
    fn ready(&mut self, cx: &mut Cx<'_>, slot: u32, ev: PollEvent);
    fn pump_slot(&mut self, cx: &mut Cx<'_>, slot: u32);
    fn timer(&mut self, cx: &mut Cx<'_>, slot: u32, at: Instant);
    fn stop(&mut self, cx: &mut Cx<'_>, force: bool);
    fn reload(&mut self, handler: Box<dyn Any>) -> Result<(), Box<dyn Any>>;
    fn is_done(&self) -> bool;
    fn is_referenced(&self) -> bool;
    fn set_referenced(&mut self, r: bool);
    fn local_addr(&self) -> Option<SocketAddr>;
    fn connections(&self) -> usize;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn shutdown(&mut self, poller: &Poller);
}

/// One connection: its socket, its state machine and the user's data.
pub(crate) struct Conn<D> {
    pub(crate) sock: RawSocket,
    pub(crate) sm: Machine,
    pub(crate) data: D,
    pub(crate) peer: Option<SocketAddr>,
    /// Registered interest (read, write); `None` when not in the poller.
    registered: Option<(bool, bool)>,
    connecting: bool,
    /// Remaining addresses to try if this connect fails.
    fallback: Vec<SocketAddr>,
    /// The address being connected to (for error messages).
    target: Option<SocketAddr>,
    no_delay: bool,
    /// Deadline of this connection's earliest entry in the timer heap.
    timer_armed: Option<Instant>,
}

struct GroupImpl<H: Handler> {
    handler: H,
    listener: Option<RawSocket>,
    local_addr: Option<SocketAddr>,
    conns: Slab<Conn<H::Data>>,
    socket_config: SocketConfig,
    no_delay: bool,
    new_data: Option<fn() -> H::Data>,
    referenced: bool,
    /// Serve TLS with this configuration.
    tls: Option<netkit_tls::ServerConfig>,
}

/// A Bun-style event loop: servers and clients with handler callbacks, on one thread.
pub struct EventLoop {
    shared: Arc<Shared>,
    groups: Slab<(u64, Box<dyn Group>)>,
    next_generation: u64,
    events: Events,
    buf: Box<[u8]>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    soon: Vec<usize>,
}

impl fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLoop")
            .field("groups", &self.groups.len())
            .field("timers", &self.timers.len())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    /// A new loop with its own poller.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            shared: Arc::new(Shared {
                poller: Poller::new()?,
                commands: Mutex::new(Vec::new()),
            }),
            groups: Slab::new(),
            next_generation: 1,
            events: Events::new(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            timers: BinaryHeap::new(),
            soon: Vec::new(),
        })
    }

    /// A handle for other threads.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle {
            shared: self.shared.clone(),
        }
    }

    fn add_group(&mut self, group: Box<dyn Group>) -> (usize, u64) {
        let generation = self.next_generation;
        self.next_generation += 1;
        (self.groups.insert((generation, group)), generation)
    }

    fn group_mut(&mut self, group: usize, generation: u64) -> Option<&mut Box<dyn Group>> {
        match self.groups.get_mut(group) {
            Some((g, grp)) if *g == generation => Some(grp),
            _ => None,
        }
    }

    /// Starts a server (`Bun.listen`). Each accepted socket starts with
    /// `H::Data::default()`; set it in `open`.
    pub fn listen<H>(&mut self, opts: ListenOptions, handler: H) -> Result<Server, Error>
    where
        H: Handler,
        H::Data: Default,
    {
        let listener = bind_listener(&opts)?;
        let local_addr = listener.local_addr().ok().and_then(|a| a.as_socket());
        let group = GroupImpl {
            handler,
            listener: None,
            local_addr,
            conns: Slab::new(),
            socket_config: opts.socket.clone(),
            no_delay: opts.no_delay,
            new_data: Some(H::Data::default),
            referenced: true,
            tls: opts.tls.clone(),
        };
        let (idx, generation) = self.add_group(Box::new(group));
        self.shared
            .poller
            .add(&listener, key(idx, LISTENER_SLOT), true, false)
            .map_err(|e| Error::from_io(&e, "listen"))?;
        if let Some((_, g)) = self.groups.get_mut(idx) {
            if let Some(g) = g.as_any_mut().downcast_mut::<GroupImpl<H>>() {
                g.listener = Some(listener);
            }
        }
        Ok(Server {
            group: idx,
            generation,
        })
    }

    /// Connects a client (`Bun.connect`) with its own handler and initial data.
    /// Failure to resolve or connect is reported to `connect_error`, never as an
    /// `Err` here; `Err` is only for a handler group that could not be created.
    pub fn connect<H: Handler>(
        &mut self,
        opts: ConnectOptions,
        handler: H,
        data: H::Data,
    ) -> Result<ClientGroup, Error> {
        let group = GroupImpl {
            handler,
            listener: None,
            local_addr: None,
            conns: Slab::new(),
            socket_config: opts.socket.clone(),
            no_delay: opts.no_delay,
            new_data: None,
            referenced: true,
            tls: None,
        };
        let (idx, generation) = self.add_group(Box::new(group));
        let g = ClientGroup {
            group: idx,
            generation,
        };
        self.connect_in::<H>(g, opts, data)?;
        Ok(g)
    }

    /// Connects another socket that shares `group`'s handler.
    pub fn connect_in<H: Handler>(
        &mut self,
        group: ClientGroup,
        opts: ConnectOptions,
        data: H::Data,
    ) -> Result<(), Error> {
        let now = Instant::now();
        let grp = match self.groups.get_mut(group.group) {
            Some((g, grp)) if *g == group.generation => grp,
            _ => return Err(Error::Closed),
        };
        let Some(g) = grp.as_any_mut().downcast_mut::<GroupImpl<H>>() else {
            return Err(Error::Closed);
        };
        let mut sm = match &opts.tls {
            None => Machine::Plain(PlainSocket::connecting(now, opts.socket.clone())),
            Some(tls) => {
                let name = tls.server_name.as_deref().unwrap_or(&opts.hostname);
                let mut plain = PlainSocket::connecting(now, opts.socket.clone());
                match TlsSession::client(&tls.config, name) {
                    Ok(sess) => {
                        Machine::Tls(Box::new(TlsSocket::new(now, opts.socket.clone(), sess)))
                    }
                    Err(e) => {
                        plain.handle_connect_error(Error::Tls(e.to_string()));
                        Machine::Plain(plain)
                    }
                }
            }
        };
        if sm.is_closed() {
            // A bad server name: fail like a connect error, without connecting.
            let slot = g.conns.insert(Conn {
                sock: RawSocket::new(Domain::IPV4, Type::STREAM, None)
                    .map_err(|e| Error::from_io(&e, "socket"))?,
                sm,
                data,
                peer: None,
                registered: None,
                connecting: false,
                fallback: Vec::new(),
                target: None,
                no_delay: opts.no_delay,
                timer_armed: None,
            });
            self.soon.push(key(group.group, slot as u32));
            return Ok(());
        }
        if opts.timeout.is_some() {
            sm.set_timeout(now, opts.timeout);
        }
        let mut target = None;
        let (sock, fallback) = match resolve(&opts.hostname, opts.port) {
            Ok(mut addrs) => {
                addrs.reverse();
                let first = addrs.pop().unwrap_or_else(|| unreachable_addr(opts.port));
                target = Some(first);
                match start_connect(first) {
                    Ok(s) => (Some(s), addrs),
                    Err(e) => {
                        sm.handle_connect_error(e);
                        (None, addrs)
                    }
                }
            }
            Err(e) => {
                sm.handle_connect_error(e);
                (None, Vec::new())
            }
        };
        // A socket that failed before it existed still needs a Conn to report
        // through; give it a placeholder socket that is never registered.
        let sock = match sock {
            Some(s) => s,
            None => RawSocket::new(Domain::IPV4, Type::STREAM, None)
                .map_err(|e| Error::from_io(&e, "socket"))?,
        };
        let failed = sm.is_closed();
        let slot = g.conns.insert(Conn {
            sock,
            sm,
            data,
            peer: None,
            registered: None,
            connecting: !failed,
            fallback,
            target,
            no_delay: opts.no_delay,
            timer_armed: None,
        });
        let k = key(group.group, slot as u32);
        if failed {
            self.soon.push(k);
        } else {
            let conn = &mut g.conns[slot];
            self.shared
                .poller
                .add(&conn.sock, k, false, true)
                .map_err(|e| Error::from_io(&e, "connect"))?;
            conn.registered = Some((false, true));
            if let Some(t) = conn.sm.poll_timeout() {
                conn.timer_armed = Some(t);
                self.timers.push(Reverse((t, k)));
            }
        }
        Ok(())
    }

    /// Runs `f` with a client group's handler and its first live socket, outside any
    /// callback (Bun's "hold the socket and write to it later"); then performs the
    /// I/O `f` asked for. `None` if the group is gone or `H` is not its handler type.
    pub fn with_client<H: Handler, R>(
        &mut self,
        group: ClientGroup,
        f: impl FnOnce(&mut H, &mut Socket<'_, H::Data>) -> R,
    ) -> Option<R> {
        let (generation, grp) = self.groups.get_mut(group.group)?;
        if *generation != group.generation {
            return None;
        }
        let g = grp.as_any_mut().downcast_mut::<GroupImpl<H>>()?;
        let slot = g.conns.iter().next().map(|(i, _)| i)?;
        let now = Instant::now();
        let conn = g.conns.get_mut(slot)?;
        let r = f(&mut g.handler, &mut conn.handle(now));
        let mut cx = Cx {
            poller: &self.shared.poller,
            buf: &mut self.buf,
            now,
            timers: &mut self.timers,
            group: group.group,
        };
        g.pump(&mut cx, slot as u32);
        Some(r)
    }

    /// The address a server is bound to (the real port after `port: 0`).
    pub fn local_addr(&self, server: Server) -> Option<SocketAddr> {
        match self.groups.get(server.group) {
            Some((g, grp)) if *g == server.generation => grp.local_addr(),
            _ => None,
        }
    }

    /// Live connections of a server.
    pub fn connections(&self, server: Server) -> usize {
        match self.groups.get(server.group) {
            Some((g, grp)) if *g == server.generation => grp.connections(),
            _ => 0,
        }
    }

    /// Stops a server (Bun's `server.stop(force)`): closes the listener; with
    /// `force`, also closes every connection (their `close` handlers run). Without
    /// it, connections finish on their own. A second stop is a no-op.
    pub fn stop(&mut self, server: Server, force: bool) {
        self.with_cx(server.group, server.generation, |grp, cx| {
            grp.stop(cx, force)
        });
    }

    /// Swaps the handler of a live server for all its connections at once (Bun's
    /// `server.reload`). Fails if `handler` is not the server's handler type or the
    /// server is gone.
    pub fn reload<H: Handler>(&mut self, server: Server, handler: H) -> Result<(), Error> {
        let grp = self
            .group_mut(server.group, server.generation)
            .ok_or(Error::Closed)?;
        grp.reload(Box::new(handler)).map_err(|_| Error::Closed)
    }

    /// Lets [`run`](Self::run) return while this server is still listening.
    pub fn unref(&mut self, server: Server) {
        if let Some(g) = self.group_mut(server.group, server.generation) {
            g.set_referenced(false);
        }
    }

    /// Makes [`run`](Self::run) wait for this server again.
    pub fn ref_(&mut self, server: Server) {
        if let Some(g) = self.group_mut(server.group, server.generation) {
            g.set_referenced(true);
        }
    }

    /// Whether a referenced server or client group is still alive (an unref'd
    /// server's connections do not keep the loop running, as in Bun).
    pub fn is_alive(&self) -> bool {
        self.groups
            .iter()
            .any(|(_, (_, g))| g.is_referenced() && !g.is_done())
            || !self.soon.is_empty()
    }

    /// Runs until no referenced server or client group is left.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            // Work that needs no waiting (failed connects, posted commands) may be
            // all that is left: do it before deciding to block.
            self.run_commands();
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

    fn with_cx(
        &mut self,
        group: usize,
        generation: u64,
        f: impl FnOnce(&mut dyn Group, &mut Cx<'_>),
    ) {
        let Some((g, grp)) = self.groups.get_mut(group) else {
            return;
        };
        if *g != generation {
            return;
        }
        let mut cx = Cx {
            poller: &self.shared.poller,
            buf: &mut self.buf,
            now: Instant::now(),
            timers: &mut self.timers,
            group,
        };
        f(grp.as_mut(), &mut cx);
    }

    /// One turn: wait for readiness (at most `timeout`, or until the next timer),
    /// dispatch I/O, fire timers, run commands.
    pub fn turn(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.run_commands();
        self.run_soon();
        let mut wait = timeout;
        if let Some(Reverse((t, _))) = self.timers.peek() {
            let d = t.saturating_duration_since(Instant::now());
            wait = Some(wait.map_or(d, |w| w.min(d)));
        }
        if !self.soon.is_empty() {
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
        for ev in events.iter() {
            self.at_key(ev.key, now, |grp, cx, slot| grp.ready(cx, slot, ev));
        }
        self.events = events;
        self.fire_timers(now);
        self.run_commands();
        self.reap();
        Ok(())
    }

    fn run_soon(&mut self) {
        let soon = mem::take(&mut self.soon);
        let now = Instant::now();
        for k in soon {
            self.at_key(k, now, |grp, cx, slot| grp.pump_slot(cx, slot));
        }
        self.reap();
    }

    /// Runs `f` on the group and slot a poller key names, if the group still exists.
    fn at_key(&mut self, k: usize, now: Instant, f: impl FnOnce(&mut dyn Group, &mut Cx<'_>, u32)) {
        let (group, slot) = split_key(k);
        let Some((_, grp)) = self.groups.get_mut(group) else {
            return;
        };
        let mut cx = Cx {
            poller: &self.shared.poller,
            buf: &mut self.buf,
            now,
            timers: &mut self.timers,
            group,
        };
        f(grp.as_mut(), &mut cx, slot);
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, k))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            self.at_key(k, now, |grp, cx, slot| grp.timer(cx, slot, t));
        }
    }

    fn run_commands(&mut self) {
        let cmds = mem::take(
            &mut *self
                .shared
                .commands
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for cmd in cmds {
            match cmd {
                Command::Stop {
                    group,
                    generation,
                    force,
                } => self.with_cx(group, generation, |g, cx| g.stop(cx, force)),
                Command::StopAll { force } => {
                    let ids: Vec<(usize, u64)> =
                        self.groups.iter().map(|(i, (g, _))| (i, *g)).collect();
                    for (i, g) in ids {
                        self.with_cx(i, g, |grp, cx| grp.stop(cx, force));
                    }
                }
                Command::Reload {
                    group,
                    generation,
                    handler,
                } => {
                    if let Some(g) = self.group_mut(group, generation) {
                        let _ = g.reload(handler);
                    }
                }
                Command::Post(f) => f(self),
            }
        }
        self.reap();
    }

    /// Drops groups with no listener and no connections.
    fn reap(&mut self) {
        let done: Vec<usize> = self
            .groups
            .iter()
            .filter(|(_, (_, g))| g.is_done())
            .map(|(i, _)| i)
            .collect();
        for i in done {
            let (_, mut g) = self.groups.remove(i);
            g.shutdown(&self.shared.poller);
        }
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        for (_, (_, g)) in self.groups.iter_mut() {
            g.shutdown(&self.shared.poller);
        }
    }
}

fn unreachable_addr(port: u16) -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], port))
}

/// `127.0.0.1:80` or `[::1]:80`.
pub(crate) fn fmt_addr(addr: SocketAddr) -> String {
    addr.to_string()
}

impl<H: Handler> GroupImpl<H> {
    fn accept(&mut self, cx: &mut Cx<'_>) {
        let Some(new_data) = self.new_data else {
            return;
        };
        let Some(listener) = self.listener.take() else {
            return;
        };
        self.accept_from(cx, &listener, new_data);
        self.listener = Some(listener);
    }

    fn accept_from(&mut self, cx: &mut Cx<'_>, listener: &RawSocket, new_data: fn() -> H::Data) {
        for _ in 0..ACCEPTS_PER_EVENT {
            let (sock, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // ECONNABORTED and friends concern one connection; EMFILE stops this
                // round (the listener stays readable and is retried next turn).
                Err(_) => break,
            };
            if sock.set_nonblocking(true).is_err() {
                continue;
            }
            if self.no_delay {
                let _ = sock.set_tcp_nodelay(true);
            }
            let entry = self.conns.vacant_entry();
            let slot = entry.key() as u32;
            let k = key(cx.group, slot);
            if cx.poller.add(&sock, k, true, false).is_err() {
                continue;
            }
            let sm = match &self.tls {
                None => Machine::Plain(PlainSocket::accepted(cx.now, self.socket_config.clone())),
                Some(cfg) => {
                    let Ok(sess) = TlsSession::server(cfg) else {
                        let _ = cx.poller.delete(&sock);
                        continue;
                    };
                    let mut t = TlsSocket::new(cx.now, self.socket_config.clone(), sess);
                    t.handle_connected(cx.now);
                    Machine::Tls(Box::new(t))
                }
            };
            entry.insert(Conn {
                sock,
                sm,
                data: new_data(),
                peer: peer.as_socket(),
                registered: Some((true, false)),
                connecting: false,
                fallback: Vec::new(),
                target: None,
                no_delay: self.no_delay,
                timer_armed: None,
            });
            self.pump(cx, slot);
        }
    }

    fn finish_connect(&mut self, cx: &mut Cx<'_>, slot: u32, ev: PollEvent) {
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let failed = match conn.sock.take_error() {
            Ok(Some(e)) => Some(e),
            Err(e) => Some(e),
            Ok(None) if ev.error => Some(io::Error::from(io::ErrorKind::ConnectionRefused)),
            Ok(None) => match conn.sock.peer_addr() {
                Ok(a) => {
                    conn.peer = a.as_socket();
                    None
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                    // Spurious wakeup: still connecting.
                    return;
                }
                Err(e) => Some(e),
            },
        };
        match failed {
            None => {
                conn.connecting = false;
                if conn.no_delay {
                    let _ = conn.sock.set_tcp_nodelay(true);
                }
                conn.sm.handle_connected(cx.now);
            }
            Some(e) => {
                let _ = cx.poller.delete(&conn.sock);
                conn.registered = None;
                if let Some(next) = conn.fallback.pop() {
                    conn.target = Some(next);
                    match start_connect(next) {
                        Ok(s) => {
                            conn.sock = s;
                            let k = key(cx.group, slot);
                            if cx.poller.add(&conn.sock, k, false, true).is_ok() {
                                conn.registered = Some((false, true));
                                return;
                            }
                        }
                        Err(err) => {
                            conn.connecting = false;
                            conn.sm.handle_connect_error(err);
                        }
                    }
                } else {
                    conn.connecting = false;
                    let ctx = match conn.target {
                        Some(t) => format!("connect {}", fmt_addr(t)),
                        None => "connect".to_string(),
                    };
                    conn.sm.handle_connect_error(Error::from_io(&e, ctx));
                }
            }
        }
        self.pump(cx, slot);
    }

    /// Delivers queued events to the handler and flushes, until stable; then
    /// updates the poller interest and the timer, or removes a closed connection.
    fn pump(&mut self, cx: &mut Cx<'_>, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let mut closed = false;
        for _ in 0..PUMP_ROUNDS {
            if conn.sm.wants_plaintext() {
                // Plaintext the TLS layer held while reading was paused.
                let handler = &mut self.handler;
                let (data, sock, peer) = (&mut conn.data, &conn.sock, conn.peer);
                conn.sm.deliver_plaintext(cx.now, cx.buf, |sm, bytes| {
                    let mut s = Socket::new(sm, &mut *data, sock, peer, cx.now);
                    handler.data(&mut s, bytes);
                });
            }
            while let Some(ev) = conn.sm.poll_event() {
                let mut s = conn.handle(cx.now);
                match ev {
                    Event::Open => self.handler.open(&mut s),
                    Event::Drain => self.handler.drain(&mut s),
                    Event::End => self.handler.end(&mut s),
                    Event::Timeout => self.handler.timeout(&mut s),
                    Event::Error(e) => self.handler.error(&mut s, &e),
                    Event::ConnectError(e) => {
                        self.handler.connect_error(&mut s, &e);
                        closed = true;
                    }
                    Event::Close(e) => {
                        self.handler.close(&mut s, e.as_ref());
                        closed = true;
                    }
                }
                if closed {
                    break;
                }
            }
            if closed {
                break;
            }
            if !conn.connecting {
                flush(conn, cx.now);
            }
            if !conn.sm.has_events() && !conn.sm.plaintext_due() {
                break;
            }
        }
        if closed {
            let conn = self.conns.remove(slot as usize);
            let parting = conn.sm.parting_bytes();
            if !parting.is_empty() {
                let _ = conn.sock.send(parting);
            }
            close_conn(cx.poller, conn);
            return;
        }
        let want = if conn.connecting {
            (false, true)
        } else {
            (conn.sm.wants_read(), conn.sm.wants_write())
        };
        let k = key(cx.group, slot);
        update_interest(cx.poller, conn, k, want);
        if let Some(t) = conn.sm.poll_timeout() {
            if conn.timer_armed.is_none_or(|a| t < a) {
                conn.timer_armed = Some(t);
                cx.timers.push(Reverse((t, k)));
            }
        }
    }

    fn read(&mut self, cx: &mut Cx<'_>, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if !conn.sm.wants_read() {
            return;
        }
        match (&conn.sock).read(cx.buf) {
            Ok(0) => conn.sm.handle_eof(cx.now),
            Ok(n) => {
                let handler = &mut self.handler;
                let (data, sock, peer) = (&mut conn.data, &conn.sock, conn.peer);
                conn.sm.handle_input_with(cx.now, cx.buf, n, |sm, bytes| {
                    let mut s = Socket::new(sm, &mut *data, sock, peer, cx.now);
                    handler.data(&mut s, bytes);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let ctx = format!("read {}", conn.target_hint_peer());
                conn.sm.handle_error(Error::from_io(&e, ctx));
            }
        }
    }
}

impl<D> Conn<D> {
    /// The handler-facing view of this connection.
    pub(crate) fn handle(&mut self, now: Instant) -> Socket<'_, D> {
        Socket::new(&mut self.sm, &mut self.data, &self.sock, self.peer, now)
    }

    fn target_hint_peer(&self) -> String {
        self.peer.map(fmt_addr).unwrap_or_default()
    }
}

/// Writes what the state machine offers until it is idle or the kernel would block.
fn flush<D>(conn: &mut Conn<D>, now: Instant) {
    loop {
        match conn.sm.poll_transmit(now) {
            Transmit::Idle => return,
            Transmit::Bytes(b) => match conn.sock.send(b) {
                Ok(n) => conn.sm.handle_sent(now, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let ctx = format!("write {}", conn.target_hint_peer());
                    conn.sm.handle_error(Error::from_io(&e, ctx));
                    return;
                }
            },
            Transmit::Shutdown => match conn.sock.shutdown(Shutdown::Write) {
                Ok(()) => conn.sm.handle_shutdown(now),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => conn.sm.handle_shutdown(now),
                Err(e) => {
                    conn.sm.handle_error(Error::from_io(&e, "shutdown"));
                    return;
                }
            },
        }
    }
}

fn update_interest<D>(poller: &Poller, conn: &mut Conn<D>, k: usize, want: (bool, bool)) {
    if conn.registered == Some(want) {
        return;
    }
    if want == (false, false) {
        // Out of the poller entirely: level-triggered HUP/ERR would otherwise spin.
        if conn.registered.is_some() {
            let _ = poller.delete(&conn.sock);
            conn.registered = None;
        }
        return;
    }
    let ok = match conn.registered {
        Some(_) => poller.modify(&conn.sock, k, want.0, want.1).is_ok(),
        None => poller.add(&conn.sock, k, want.0, want.1).is_ok(),
    };
    if ok {
        conn.registered = Some(want);
    } else {
        conn.sm
            .handle_error(Error::from_io(&io::Error::last_os_error(), "poll"));
    }
}

fn close_conn<D>(poller: &Poller, conn: Conn<D>) {
    if conn.registered.is_some() {
        let _ = poller.delete(&conn.sock);
    }
    if conn.sm.reset_on_close() {
        let _ = conn.sock.set_linger(Some(Duration::ZERO));
    }
    drop(conn);
}

impl<H: Handler> Group for GroupImpl<H> {
    fn ready(&mut self, cx: &mut Cx<'_>, slot: u32, ev: PollEvent) {
        if slot == LISTENER_SLOT {
            self.accept(cx);
            return;
        }
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if conn.connecting {
            if ev.writable || ev.readable {
                self.finish_connect(cx, slot, ev);
            }
            return;
        }
        if ev.readable {
            self.read(cx, slot);
        }
        if let Some(conn) = self.conns.get_mut(slot as usize) {
            if ev.writable {
                flush(conn, cx.now);
            }
        }
        self.pump(cx, slot);
    }

    fn pump_slot(&mut self, cx: &mut Cx<'_>, slot: u32) {
        self.pump(cx, slot);
    }

    fn timer(&mut self, cx: &mut Cx<'_>, slot: u32, at: Instant) {
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        if conn.timer_armed != Some(at) {
            return; // a stale entry: a newer one is in the heap
        }
        conn.timer_armed = None;
        conn.sm.handle_timeout(cx.now);
        self.pump(cx, slot);
    }

    fn stop(&mut self, cx: &mut Cx<'_>, force: bool) {
        if let Some(l) = self.listener.take() {
            let _ = cx.poller.delete(&l);
        }
        if force {
            let slots: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
            for s in slots {
                if let Some(c) = self.conns.get_mut(s) {
                    c.sm.close();
                    if c.connecting {
                        c.connecting = false;
                    }
                }
                self.pump(cx, s as u32);
            }
        }
    }

    fn reload(&mut self, handler: Box<dyn Any>) -> Result<(), Box<dyn Any>> {
        self.handler = *handler.downcast::<H>()?;
        Ok(())
    }

    fn is_done(&self) -> bool {
        self.listener.is_none() && self.conns.is_empty()
    }

    fn is_referenced(&self) -> bool {
        self.referenced
    }

    fn set_referenced(&mut self, r: bool) {
        self.referenced = r;
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    fn connections(&self) -> usize {
        self.conns.len()
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn shutdown(&mut self, poller: &Poller) {
        if let Some(l) = self.listener.take() {
            let _ = poller.delete(&l);
        }
        for conn in self.conns.drain() {
            close_conn(poller, conn);
        }
    }
}
