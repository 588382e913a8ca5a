//! Servers and client sets: one handler and its connections (TCP or Unix,
//! plain or TLS), as a loop [`Source`]. Accepting follows the accept gate,
//! connecting follows the connect plan, and every connection runs its
//! [`Machine`]; this file only moves bytes and events between them and the
//! kernel.

use std::any::Any;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use netkit_socket::Transmit;
use netkit_socket::accept::AcceptGate;
use netkit_socket::connect::{Action, AttemptId, ConnectPlan};
use netkit_socket::linger::Linger;
use netkit_sys::net::{Endpoint, Listener, connect_result, start_connect};
use netkit_sys::os_error;
use netkit_sys::resolve::Resolution;
use netkit_tls::{Machine, SocketEvent as Event};
use slab::Slab;
use socket2::Socket as RawSocket;

use crate::source::{Cx, Readiness, Source};
use crate::{ConnectOptions, Error, Handler, Socket, SocketConfig};

/// Connections accepted per listener readiness event, so accepting cannot starve I/O.
const ACCEPTS_PER_EVENT: usize = 128;
/// Rounds of (deliver events, flush) per socket per turn.
const PUMP_ROUNDS: usize = 32;
/// The token of a group's listener (readiness and the accept gate's timer).
pub(crate) const LISTENER: u32 = u32::MAX;
/// Tokens with this bit name a connect attempt (the rest is its index).
const ATTEMPT: u32 = 1 << 31;
/// Tokens with this bit (and not [`ATTEMPT`]) name a lingering close.
const LINGER: u32 = 1 << 30;

/// A connection's connect in progress: the plan, its attempts' indexes, and
/// the resolver's request it waits for.
struct Connecting {
    plan: ConnectPlan<netkit_tls::Error>,
    opts: ConnectOptions,
    attempts: Vec<(AttemptId, usize)>,
    /// A DNS lookup in flight, for this host.
    resolving: Option<(netkit_dns::RequestId, String)>,
}

/// One connection: its socket, its state machine and the user's data.
pub(crate) struct Conn<D> {
    /// The socket once connected (a client has none while it connects).
    pub(crate) sock: Option<RawSocket>,
    pub(crate) sm: Machine,
    pub(crate) data: D,
    pub(crate) peer: Option<SocketAddr>,
    /// Names this connection among the slot's successive occupants.
    pub(crate) serial: u64,
    /// Registered interest (read, write); `None` when not in the poller.
    registered: Option<(bool, bool)>,
    connecting: Option<Box<Connecting>>,
    /// Deadline of this connection's earliest entry in the timer heap.
    timer_armed: Option<Instant>,
}

/// A closed connection's socket that still sends its parting bytes and
/// waits for the peer's EOF (see [`netkit_socket::linger`]).
struct Lingering {
    sock: RawSocket,
    linger: Linger,
    registered: Option<(bool, bool)>,
    timer_armed: bool,
}

/// A connect attempt's socket.
struct Attempt {
    conn: u32,
    id: AttemptId,
    sock: RawSocket,
    to: Endpoint,
}

pub(crate) struct Group<H: Handler> {
    pub(crate) handler: H,
    pub(crate) listener: Option<Listener>,
    /// Where the listener listened (kept after it stops).
    local: Option<Endpoint>,
    listener_registered: bool,
    gate: AcceptGate,
    pub(crate) conns: Slab<Conn<H::Data>>,
    attempts: Slab<Attempt>,
    lingering: Slab<Lingering>,
    socket_config: SocketConfig,
    new_data: Option<fn() -> H::Data>,
    tls: Option<netkit_tls::ServerConfig>,
    next_serial: u64,
}

impl<H: Handler> Group<H> {
    /// A server's group: accepted sockets start with `new_data()`.
    pub(crate) fn server(
        handler: H,
        listener: Listener,
        opts: &crate::ListenOptions,
        new_data: fn() -> H::Data,
    ) -> Self {
        Self {
            handler,
            local: Some(listener.local().clone()),
            listener: Some(listener),
            listener_registered: false,
            gate: AcceptGate::new(),
            conns: Slab::new(),
            attempts: Slab::new(),
            lingering: Slab::new(),
            socket_config: opts.socket.clone(),
            new_data: Some(new_data),
            tls: opts.tls.clone(),
            next_serial: 0,
        }
    }

    /// A client set (no listener).
    pub(crate) fn clients(handler: H) -> Self {
        Self {
            handler,
            listener: None,
            local: None,
            listener_registered: false,
            gate: AcceptGate::new(),
            conns: Slab::new(),
            attempts: Slab::new(),
            lingering: Slab::new(),
            socket_config: SocketConfig::default(),
            new_data: None,
            tls: None,
            next_serial: 0,
        }
    }

    /// Watches the listener for connections (when the gate allows).
    pub(crate) fn watch_listener(&mut self, cx: &mut Cx<'_>) -> io::Result<()> {
        let Some(l) = &self.listener else {
            return Ok(());
        };
        let want = self.gate.wants_accept();
        if want != self.listener_registered {
            if want {
                cx.register(l.socket(), LISTENER, true, false)?;
            } else {
                let _ = cx.deregister(l.socket());
            }
            self.listener_registered = want;
        }
        Ok(())
    }

    fn insert(&mut self, conn: impl FnOnce(u64) -> Conn<H::Data>) -> (u32, u64) {
        self.next_serial += 1;
        let serial = self.next_serial;
        (self.conns.insert(conn(serial)) as u32, serial)
    }

    /// Starts a client connection: its plan runs at once (an IP literal or a
    /// hosts-file name connects in this call; a failure is reported through
    /// `connect_error` on the loop's next turn, never as an `Err` here).
    pub(crate) fn connect(
        &mut self,
        cx: &mut Cx<'_>,
        opts: ConnectOptions,
        data: H::Data,
    ) -> (u32, u64) {
        let now = cx.now;
        let (sm, connecting) = match opts.machine(now) {
            Ok(sm) => {
                let plan = opts.plan(now);
                (
                    sm,
                    Some(Box::new(Connecting {
                        plan,
                        opts,
                        attempts: Vec::new(),
                        resolving: None,
                    })),
                )
            }
            Err(e) => {
                // A TLS session that cannot be made (a bad server name): fail
                // like a connect error, without connecting.
                let mut sm =
                    Machine::Plain(netkit_socket::Socket::connecting(now, opts.socket.clone()));
                sm.handle_connect_error(Error::Tls(e));
                (sm, None)
            }
        };
        let (slot, serial) = self.insert(|serial| Conn {
            sock: None,
            sm,
            data,
            peer: None,
            serial,
            registered: None,
            connecting,
            timer_armed: None,
        });
        self.drive_plan(cx, slot);
        // Events (a connect error) are delivered soon, outside the caller's frame.
        cx.soon(slot);
        (slot, serial)
    }

    /// Carries out what a connection's plan asks for until it waits.
    fn drive_plan(&mut self, cx: &mut Cx<'_>, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(c) = conn.connecting.as_mut() else {
            return;
        };
        while let Some(action) = c.plan.poll_action() {
            match action {
                Action::Resolve { host } => {
                    let now = cx.now;
                    match cx.resolver().lookup(now, &host) {
                        Resolution::Ready(answer) => c.plan.handle_resolved(now, answer),
                        Resolution::Pending(r) => {
                            // Asked: `soon` takes the answer when it comes.
                            cx.wake_on_dns(r, slot);
                            c.resolving = Some((r, host));
                        }
                    }
                }
                Action::Attempt { id, addr } => {
                    let to = c.opts.endpoint(addr);
                    match start_connect(&to) {
                        Ok(sock) => {
                            let entry = self.attempts.vacant_entry();
                            let token = ATTEMPT | entry.key() as u32;
                            match cx.register(&sock, token, false, true) {
                                Ok(()) => {
                                    c.attempts.push((id, entry.key()));
                                    entry.insert(Attempt {
                                        conn: slot,
                                        id,
                                        sock,
                                        to,
                                    });
                                }
                                Err(e) => c.plan.handle_failed(cx.now, id, os_error(&e, "poll")),
                            }
                        }
                        Err(e) => c.plan.handle_failed(cx.now, id, e),
                    }
                }
                Action::Cancel { id } => {
                    if let Some(i) = c.attempts.iter().position(|(a, _)| *a == id) {
                        let (_, idx) = c.attempts.remove(i);
                        let a = self.attempts.remove(idx);
                        let _ = cx.deregister(&a.sock);
                    }
                }
                Action::Connected { id, addr } => {
                    let Some(i) = c.attempts.iter().position(|(a, _)| *a == id) else {
                        continue;
                    };
                    let (_, idx) = c.attempts.remove(i);
                    let a = self.attempts.remove(idx);
                    let _ = cx.deregister(&a.sock);
                    if c.opts.no_delay && c.opts.unix.is_none() {
                        let _ = a.sock.set_tcp_nodelay(true);
                    }
                    conn.peer = a.to.inet().or(Some(addr).filter(|_| c.opts.unix.is_none()));
                    conn.sock = Some(a.sock);
                    conn.sm.handle_connected(cx.now);
                }
                Action::Failed(e) => {
                    // Every address of the host failed: drop them from the DNS
                    // cache, so the next connect asks again (Bun does).
                    if c.plan.host_was_resolved() {
                        let host = c.plan.host().to_string();
                        cx.resolver().evict(&host);
                    }
                    conn.sm.handle_connect_error(e)
                }
            }
        }
        if c.plan.is_done() {
            for (_, idx) in c.attempts.drain(..) {
                let a = self.attempts.remove(idx);
                let _ = cx.deregister(&a.sock);
            }
            conn.connecting = None;
        }
    }

    fn accept(&mut self, cx: &mut Cx<'_>) {
        let Some(new_data) = self.new_data else {
            return;
        };
        for _ in 0..ACCEPTS_PER_EVENT {
            let Some(listener) = &self.listener else {
                return;
            };
            let (sock, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // One connection's failure, or the process's shortage
                    // (EMFILE...): the gate decides; the listener is unwatched
                    // while it is closed.
                    self.gate
                        .handle_error(cx.now, netkit_sys::sys::errno::errno_name(&e));
                    if !self.gate.wants_accept() {
                        if let Some(t) = self.gate.poll_timeout() {
                            cx.arm(t, LISTENER);
                        }
                        let _ = self.watch_listener(cx);
                        return;
                    }
                    continue;
                }
            };
            self.gate.handle_accepted();
            let Ok(sm) = Machine::accepted(cx.now, self.socket_config.clone(), self.tls.as_ref())
            else {
                continue;
            };
            let (slot, _) = self.insert(|serial| Conn {
                sock: Some(sock),
                sm,
                data: new_data(),
                peer,
                serial,
                registered: None,
                connecting: None,
                timer_armed: None,
            });
            self.pump(cx, slot);
        }
    }

    fn attempt_ready(&mut self, cx: &mut Cx<'_>, idx: usize, ev: Readiness) {
        let Some(a) = self.attempts.get(idx) else {
            return;
        };
        let (slot, id) = (a.conn, a.id);
        let outcome = connect_result(&a.sock, &a.to, ev.error);
        let Some(c) = self
            .conns
            .get_mut(slot as usize)
            .and_then(|c| c.connecting.as_mut())
        else {
            return;
        };
        match outcome {
            Ok(false) => return, // spurious: still connecting
            Ok(true) => c.plan.handle_connected(cx.now, id),
            Err(e) => {
                if let Some(i) = c.attempts.iter().position(|(x, _)| *x == id) {
                    c.attempts.remove(i);
                    let a = self.attempts.remove(idx);
                    let _ = cx.deregister(&a.sock);
                }
                c.plan.handle_failed(cx.now, id, e);
            }
        }
        self.drive_plan(cx, slot);
        self.pump(cx, slot);
    }

    /// Delivers queued events to the handler and flushes, until stable; then
    /// updates the poller interest and the timer, or removes a closed connection.
    pub(crate) fn pump(&mut self, cx: &mut Cx<'_>, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let mut closed = false;
        for _ in 0..PUMP_ROUNDS {
            if conn.sm.wants_plaintext() {
                // Plaintext the TLS layer held while reading was paused.
                let handler = &mut self.handler;
                let (data, sock, peer) = (&mut conn.data, conn.sock.as_ref(), conn.peer);
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
            if conn.connecting.is_none() {
                flush(conn, cx.now);
            }
            if !conn.sm.has_events() && !conn.sm.plaintext_due() {
                break;
            }
        }
        if closed {
            let conn = self.conns.remove(slot as usize);
            if let Some(c) = &conn.connecting {
                for (_, idx) in &c.attempts {
                    let a = self.attempts.remove(*idx);
                    let _ = cx.deregister(&a.sock);
                }
                if let Some((r, _)) = &c.resolving {
                    cx.dns_waiters.remove(r);
                    cx.resolver().forget(*r);
                }
            }
            match close_conn(cx, conn) {
                Some(l) => self.start_linger(cx, l),
                None => self.descriptor_freed(cx),
            }
            return;
        }
        let want = if conn.connecting.is_some() {
            (false, false)
        } else {
            (conn.sm.wants_read(), conn.sm.wants_write())
        };
        update_interest(cx, conn, slot, want);
        let deadline = match (
            conn.sm.poll_timeout(),
            conn.connecting.as_ref().and_then(|c| c.plan.poll_timeout()),
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(t) = deadline {
            if conn.timer_armed.is_none_or(|a| t < a) {
                conn.timer_armed = Some(t);
                cx.arm(t, slot);
            }
        }
    }

    fn read(&mut self, cx: &mut Cx<'_>, slot: u32) {
        let Some(conn) = self.conns.get_mut(slot as usize) else {
            return;
        };
        let Some(sock) = conn.sock.as_ref() else {
            return;
        };
        if !conn.sm.wants_read() {
            return;
        }
        match (&*sock).read(cx.buf) {
            Ok(0) => conn.sm.handle_eof(cx.now),
            Ok(n) => {
                let handler = &mut self.handler;
                let (data, peer) = (&mut conn.data, conn.peer);
                let sock = conn.sock.as_ref();
                conn.sm.handle_input_with(cx.now, cx.buf, n, |sm, bytes| {
                    let mut s = Socket::new(sm, &mut *data, sock, peer, cx.now);
                    handler.data(&mut s, bytes);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let ctx = format!("read {}", conn.peer_hint());
                conn.sm.handle_error(os_error(&e, ctx));
            }
        }
    }

    /// A descriptor is free: a listener paused at its fd limit resumes.
    fn descriptor_freed(&mut self, cx: &mut Cx<'_>) {
        if !self.gate.wants_accept() {
            self.gate.handle_closed();
            let _ = self.watch_listener(cx);
        }
    }

    fn start_linger(&mut self, cx: &mut Cx<'_>, (sock, linger): (RawSocket, Linger)) {
        let idx = self.lingering.insert(Lingering {
            sock,
            linger,
            registered: None,
            timer_armed: false,
        });
        self.drive_linger(cx, idx);
    }

    /// Runs a lingering close: sends, shuts, reads and discards; closes the
    /// socket once the linger is done.
    fn drive_linger(&mut self, cx: &mut Cx<'_>, idx: usize) {
        let Some(x) = self.lingering.get_mut(idx) else {
            return;
        };
        x.linger.handle_timeout(cx.now);
        part(&x.sock, &mut x.linger);
        while x.linger.wants_read() {
            match (&x.sock).read(cx.buf) {
                Ok(0) => x.linger.handle_eof(),
                Ok(n) => x.linger.handle_input(cx.now, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => x.linger.handle_error(),
            }
        }
        if x.linger.is_done() {
            let x = self.lingering.remove(idx);
            if x.registered.is_some() {
                let _ = cx.deregister(&x.sock);
            }
            drop(x);
            self.descriptor_freed(cx);
            return;
        }
        let want = (true, x.linger.wants_write());
        let token = LINGER | idx as u32;
        if x.registered != Some(want) {
            let r = match x.registered {
                Some(_) => cx.reregister(&x.sock, token, want.0, want.1),
                None => cx.register(&x.sock, token, want.0, want.1),
            };
            match r {
                Ok(()) => x.registered = Some(want),
                Err(_) => {
                    x.linger.handle_error();
                    return self.drive_linger(cx, idx);
                }
            }
        }
        if !x.timer_armed {
            if let Some(at) = x.linger.poll_timeout() {
                cx.arm(at, token);
                x.timer_armed = true;
            }
        }
    }

    /// Closes every connection now (their `close` handlers run).
    fn close_all(&mut self, cx: &mut Cx<'_>) {
        let slots: Vec<usize> = self.conns.iter().map(|(i, _)| i).collect();
        for s in slots {
            if let Some(c) = self.conns.get_mut(s) {
                if c.connecting.take().is_some() {
                    // Its attempts are dropped with it below.
                }
                c.sm.close();
            }
            self.pump(cx, s as u32);
        }
        for a in self.attempts.drain() {
            let _ = cx.deregister(&a.sock);
        }
    }
}

impl<D> Conn<D> {
    /// The handler-facing view of this connection.
    pub(crate) fn handle(&mut self, now: Instant) -> Socket<'_, D> {
        Socket::new(
            &mut self.sm,
            &mut self.data,
            self.sock.as_ref(),
            self.peer,
            now,
        )
    }

    fn peer_hint(&self) -> String {
        self.peer.map(|p| p.to_string()).unwrap_or_default()
    }
}

/// Writes what the state machine offers until it is idle or the kernel would block.
fn flush<D>(conn: &mut Conn<D>, now: Instant) {
    let Some(sock) = conn.sock.as_ref() else {
        return;
    };
    loop {
        match conn.sm.poll_transmit(now) {
            Transmit::Idle => return,
            Transmit::Bytes(b) => match sock.send(b) {
                Ok(n) => conn.sm.handle_sent(now, n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let ctx = format!(
                        "write {}",
                        conn.peer.map(|p| p.to_string()).unwrap_or_default()
                    );
                    conn.sm.handle_error(os_error(&e, ctx));
                    return;
                }
            },
            Transmit::Shutdown => match sock.shutdown(Shutdown::Write) {
                Ok(()) => conn.sm.handle_shutdown(now),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => conn.sm.handle_shutdown(now),
                Err(e) => {
                    conn.sm.handle_error(os_error(&e, "shutdown"));
                    return;
                }
            },
        }
    }
}

fn update_interest<D>(cx: &mut Cx<'_>, conn: &mut Conn<D>, slot: u32, want: (bool, bool)) {
    let Some(sock) = conn.sock.as_ref() else {
        return;
    };
    if conn.registered == Some(want) {
        return;
    }
    if want == (false, false) {
        // Out of the poller entirely: level-triggered HUP/ERR would otherwise spin.
        if conn.registered.is_some() {
            let _ = cx.deregister(sock);
            conn.registered = None;
        }
        return;
    }
    let r = match conn.registered {
        Some(_) => cx.reregister(sock, slot, want.0, want.1),
        None => cx.register(sock, slot, want.0, want.1),
    };
    match r {
        Ok(()) => conn.registered = Some(want),
        Err(e) => conn.sm.handle_error(os_error(&e, "poll")),
    }
}

/// Takes a closed connection's socket out of the poller. It closes now (with
/// a reset when asked), or, when the connection still owes its peer bytes (a
/// TLS alert), comes back with its [`Linger`] for a lingering close.
fn close_conn<D>(cx: &mut Cx<'_>, conn: Conn<D>) -> Option<(RawSocket, Linger)> {
    let sock = conn.sock?;
    if conn.registered.is_some() {
        let _ = cx.deregister(&sock);
    }
    if conn.sm.reset_on_close() {
        let _ = sock.set_linger(Some(Duration::ZERO));
        return None;
    }
    conn.sm.linger(cx.now).map(|l| (sock, l))
}

/// Sends a lingering close's parting bytes and then its FIN, as far as the
/// kernel takes them now.
fn part(sock: &RawSocket, l: &mut Linger) {
    loop {
        match l.poll_transmit() {
            Transmit::Idle => return,
            Transmit::Bytes(b) => match sock.send(b) {
                Ok(n) => l.handle_sent(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => l.handle_error(),
            },
            Transmit::Shutdown => match sock.shutdown(Shutdown::Write) {
                Ok(()) => l.handle_shutdown(),
                Err(_) => l.handle_error(),
            },
        }
    }
}

impl<H: Handler> Source for Group<H> {
    fn ready(&mut self, cx: &mut Cx<'_>, token: u32, ev: Readiness) {
        if token == LISTENER {
            self.accept(cx);
            return;
        }
        if token & ATTEMPT != 0 {
            self.attempt_ready(cx, (token & !ATTEMPT) as usize, ev);
            return;
        }
        if token & LINGER != 0 {
            self.drive_linger(cx, (token & !LINGER) as usize);
            return;
        }
        if ev.readable {
            self.read(cx, token);
        }
        if ev.writable {
            if let Some(conn) = self.conns.get_mut(token as usize) {
                flush(conn, cx.now);
            }
        }
        self.pump(cx, token);
    }

    fn timer(&mut self, cx: &mut Cx<'_>, token: u32, at: Instant) {
        if token == LISTENER {
            self.gate.handle_timeout(cx.now);
            let _ = self.watch_listener(cx);
            return;
        }
        if token & LINGER != 0 {
            let idx = (token & !LINGER) as usize;
            if let Some(x) = self.lingering.get_mut(idx) {
                x.timer_armed = false;
            }
            self.drive_linger(cx, idx);
            return;
        }
        let Some(conn) = self.conns.get_mut(token as usize) else {
            return;
        };
        if conn.timer_armed != Some(at) {
            return; // a stale entry: a newer one is in the heap
        }
        conn.timer_armed = None;
        conn.sm.handle_timeout(cx.now);
        if let Some(c) = conn.connecting.as_mut() {
            c.plan.handle_timeout(cx.now);
        }
        self.drive_plan(cx, token);
        self.pump(cx, token);
    }

    fn soon(&mut self, cx: &mut Cx<'_>, token: u32) {
        // A DNS answer this connection waited for?
        if let Some(c) = self
            .conns
            .get_mut(token as usize)
            .and_then(|c| c.connecting.as_mut())
        {
            if let Some((r, host)) = c.resolving.take() {
                match cx.resolver().take_lookup(r, &host) {
                    Some(answer) => c.plan.handle_resolved(cx.now, answer),
                    None => c.resolving = Some((r, host)),
                }
                self.drive_plan(cx, token);
            }
        }
        self.pump(cx, token);
    }

    fn stop(&mut self, cx: &mut Cx<'_>, force: bool) {
        if let Some(l) = self.listener.take() {
            if self.listener_registered {
                let _ = cx.deregister(l.socket());
            }
            self.listener_registered = false;
        }
        if force {
            self.close_all(cx);
        }
    }

    fn is_done(&self) -> bool {
        self.listener.is_none() && self.conns.is_empty()
    }

    fn shutdown(&mut self, cx: &mut Cx<'_>) {
        if let Some(l) = self.listener.take() {
            if self.listener_registered {
                let _ = cx.deregister(l.socket());
            }
        }
        // The loop is going away: parting bytes are sent once, as far as the
        // kernel takes them, and nothing lingers.
        for conn in self.conns.drain() {
            if let Some((sock, mut l)) = close_conn(cx, conn) {
                part(&sock, &mut l);
            }
        }
        for x in self.lingering.drain() {
            if x.registered.is_some() {
                let _ = cx.deregister(&x.sock);
            }
        }
        for a in self.attempts.drain() {
            let _ = cx.deregister(&a.sock);
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn local_endpoint(&self) -> Option<Endpoint> {
        self.local.clone()
    }

    fn connections(&self) -> usize {
        self.conns.len()
    }

    fn reload(&mut self, handler: Box<dyn Any + Send>) -> bool {
        match (handler as Box<dyn Any>).downcast::<H>() {
            Ok(h) => {
                self.handler = *h;
                true
            }
            Err(_) => false,
        }
    }
}
