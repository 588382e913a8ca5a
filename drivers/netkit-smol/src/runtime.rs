//! The runtime value: what a process's netkit connections share (the resolver
//! and its cache today; the DNS resolver and the HTTP connection pool as they
//! land), and the connect plan run as a future.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, OnceLock, Weak};
use std::task::Poll;
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::future;
use netkit_socket::connect::{Action, AttemptId};
use netkit_sys::net::{Endpoint, connect_result, start_connect};
use netkit_sys::{ConnectOptions, Error, Resolver, os_error};
use socket2::Socket as RawSocket;

use crate::conn::{Shared, deliver, drive};
use crate::dns::{DnsService, Outcome};
use crate::{Handler, ListenOptions, Server};
use netkit_dns::{Answer, Family, Rtype};
use netkit_sys::resolve::Resolution;

struct Inner {
    dns: Arc<DnsService>,
    /// The runtime's own fetch pool ([`Runtime::fetch`]), made on first use.
    http: OnceLock<crate::fetch::Pool>,
}

/// What the netkit connections of a process share: the resolver (hosts file
/// read once, re-read when it changes; the DNS resolver and its cache) and
/// the HTTP connection pool of [`Runtime::fetch`]. Cheap to clone; one per
/// process is usual ([`Runtime::global`], which the free functions use).
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A runtime of its own (its own resolver state).
    pub fn new() -> Self {
        Self::with_resolver(Resolver::default())
    }

    /// A runtime answering resolution requests with `resolver`.
    pub fn with_resolver(resolver: Resolver) -> Self {
        Self {
            inner: Arc::new(Inner {
                dns: Arc::new(DnsService::new(resolver)),
                http: OnceLock::new(),
            }),
        }
    }

    /// A handle that does not keep the runtime alive (the pool's deadline
    /// task holds one, so a runtime that owns its pool is not kept by it).
    pub(crate) fn downgrade(&self) -> WeakRuntime {
        WeakRuntime(Arc::downgrade(&self.inner))
    }

    /// The runtime's own pool, made on first use by `make` (a failure
    /// leaves none, so the next call tries again).
    pub(crate) fn http_pool<E>(
        &self,
        make: impl FnOnce() -> Result<crate::fetch::Pool, E>,
    ) -> Result<crate::fetch::Pool, E> {
        if let Some(p) = self.inner.http.get() {
            return Ok(p.clone());
        }
        let made = make()?;
        // A racing first call may have won: its pool is the one.
        Ok(self.inner.http.get_or_init(|| made).clone())
    }

    /// The process's shared runtime.
    pub fn global() -> &'static Self {
        static GLOBAL: OnceLock<Runtime> = OnceLock::new();
        GLOBAL.get_or_init(Self::new)
    }

    /// The addresses of `host` (the connect plan's resolution step; node's
    /// `dns.lookup`): an IP literal, the hosts file, then DNS through the
    /// cache, in connect order.
    pub async fn lookup(&self, host: &str) -> Result<Vec<IpAddr>, Error> {
        self.lookup_family(host, Family::Any).await
    }

    /// [`lookup`](Self::lookup) for one family.
    pub async fn lookup_family(&self, host: &str, family: Family) -> Result<Vec<IpAddr>, Error> {
        let pending = {
            let mut st = self.inner.dns.lock();
            match st.resolver.lookup_family(Instant::now(), host, family) {
                Resolution::Ready(r) => return r,
                Resolution::Pending(req) => {
                    self.inner.dns.wait(&mut st, req, Some(host.to_string()))
                }
            }
        };
        match pending.await {
            Outcome::Lookup(r) => r,
            Outcome::Resolve(_) => Err(Error::os("ECANCELED", format!("getaddrinfo {host}"))),
        }
    }

    /// node's `dns.resolve*`: the records of `name` of type `rtype` (never
    /// the hosts file), from the cache or the servers.
    pub async fn resolve(&self, name: &str, rtype: Rtype) -> Result<Answer, netkit_dns::Error> {
        let pending = {
            let mut st = self.inner.dns.lock();
            match st.resolver.resolve(Instant::now(), name, rtype) {
                Resolution::Ready(r) => return r,
                Resolution::Pending(req) => self.inner.dns.wait(&mut st, req, None),
            }
        };
        match pending.await {
            Outcome::Resolve(r) => r,
            Outcome::Lookup(_) => Err(netkit_dns::Error::Timeout {
                op: rtype.op().into(),
                name: name.into(),
            }),
        }
    }

    /// node's `dns.reverse`: the host names of `ip` (its PTR records).
    /// Errors name `getHostByAddr IP`.
    pub async fn reverse(&self, ip: IpAddr) -> Result<Vec<String>, netkit_dns::Error> {
        self.resolve(&netkit_dns::reverse_name(ip), Rtype::Ptr)
            .await
            .map(|a| netkit_dns::ptr_names(&a))
            .map_err(|e| netkit_dns::reverse_error(e, ip))
    }

    /// Warms the DNS cache for `host` (Bun's `dns.prefetch`; Bun's `port`
    /// argument has no part here: the cache holds addresses by name): the lookup runs
    /// as a detached task on smol's executor, nobody waits for it.
    pub fn prefetch(&self, host: &str) {
        let pending = {
            let mut st = self.inner.dns.lock();
            match st.resolver.lookup(Instant::now(), host) {
                Resolution::Ready(_) => return,
                Resolution::Pending(req) => {
                    self.inner.dns.wait(&mut st, req, Some(host.to_string()))
                }
            }
        };
        smol::spawn(pending).detach();
    }

    /// Bun's six DNS cache counters (`dns.getCacheStats()`).
    pub fn dns_stats(&self) -> netkit_dns::cache::Stats {
        self.inner.dns.lock().resolver.stats()
    }

    /// Binds a server (Bun's `Bun.listen`), TCP or Unix; call
    /// [`Server::run`] to serve.
    pub fn bind<H: Handler>(&self, opts: ListenOptions, handler: H) -> Result<Server<H>, Error>
    where
        H::Data: Default,
    {
        let listener = {
            let mut st = self.inner.dns.lock();
            netkit_sys::net::bind_listener(&opts, &mut st.resolver)?
        };
        crate::server::Unbound::new(listener, opts).map(|s| s.with_handler(handler))
    }

    /// Connects a client (Bun's `Bun.connect`) and runs it to completion:
    /// returns when the socket has closed, or with the error after
    /// `connect_error` ran.
    pub async fn connect<H: Handler>(
        &self,
        opts: ConnectOptions,
        handler: H,
        data: H::Data,
    ) -> Result<(), Error> {
        let shared = Arc::new(Shared::client(handler));
        let now = Instant::now();
        let mut data = data;
        let mut sm = match opts.machine(now) {
            Ok(sm) => sm,
            Err(e) => {
                // A TLS session that cannot be made: a connect error, no connect.
                let err = Error::Tls(e);
                let mut sm = netkit_tls::Machine::Plain(netkit_socket::Socket::connecting(
                    now,
                    opts.socket.clone(),
                ));
                sm.handle_connect_error(err.clone());
                let (_, h) = shared.handlers.load();
                deliver(&*h, None, &mut sm, &mut data, None);
                return Err(err);
            }
        };
        let (sock, to) = match self.connect_socket(&opts).await {
            Ok(x) => x,
            Err(e) => {
                sm.handle_connect_error(e.clone());
                let (_, h) = shared.handlers.load();
                deliver(&*h, None, &mut sm, &mut data, None);
                return Err(e);
            }
        };
        sm.handle_connected(Instant::now());
        drive(sock, sm, data, shared, to.inet()).await;
        Ok(())
    }

    /// Runs the connect plan for `opts` (Happy Eyeballs over the host's
    /// addresses, or the Unix path) and returns the connected socket and what
    /// it is connected to.
    pub async fn connect_socket(
        &self,
        opts: &ConnectOptions,
    ) -> Result<(Async<RawSocket>, Endpoint), Error> {
        let mut plan = opts.plan(Instant::now());
        let mut attempts: Vec<(AttemptId, Async<RawSocket>, Endpoint)> = Vec::new();
        let mut timer = Timer::never();
        loop {
            while let Some(action) = plan.poll_action() {
                let now = Instant::now();
                match action {
                    Action::Resolve { host } => {
                        let answer = self.lookup(&host).await;
                        plan.handle_resolved(Instant::now(), answer);
                    }
                    Action::Attempt { id, addr } => {
                        let to = opts.endpoint(addr);
                        let started = start_connect(&to).and_then(|s| {
                            Async::new(s).map_err(|e| os_error(&e, format!("connect {to}")))
                        });
                        match started {
                            Ok(s) => attempts.push((id, s, to)),
                            Err(e) => plan.handle_failed(now, id, e),
                        }
                    }
                    Action::Cancel { id } => attempts.retain(|(a, _, _)| *a != id),
                    Action::Connected { id, .. } => {
                        let i = attempts
                            .iter()
                            .position(|(a, _, _)| *a == id)
                            .ok_or(Error::Closed)?;
                        let (_, sock, to) = attempts.swap_remove(i);
                        if opts.no_delay && opts.unix.is_none() {
                            let _ = sock.get_ref().set_tcp_nodelay(true);
                        }
                        return Ok((sock, to));
                    }
                    Action::Failed(e) => {
                        // Every address failed: drop them from the DNS cache,
                        // so the next connect asks again (Bun does).
                        if plan.host_was_resolved() {
                            self.inner.dns.lock().resolver.evict(plan.host());
                        }
                        return Err(e);
                    }
                }
            }
            match plan.poll_timeout() {
                Some(t) => timer.set_at(t),
                None => timer = Timer::never(),
            }
            // The first attempt to become writable (connected or failed), or the
            // plan's next deadline.
            let woke = future::poll_fn(|cx| {
                for (i, (_, s, _)) in attempts.iter().enumerate() {
                    if s.poll_writable(cx).is_ready() {
                        return Poll::Ready(Some(i));
                    }
                }
                if Pin::new(&mut timer).poll(cx).is_ready() {
                    return Poll::Ready(None);
                }
                Poll::Pending
            })
            .await;
            let now = Instant::now();
            match woke {
                None => plan.handle_timeout(now),
                Some(i) => {
                    let (id, s, to) = &attempts[i];
                    match connect_result(s.get_ref(), to, false) {
                        Ok(true) => plan.handle_connected(now, *id),
                        Ok(false) => {}
                        Err(e) => {
                            let id = *id;
                            attempts.swap_remove(i);
                            plan.handle_failed(now, id, e);
                        }
                    }
                }
            }
        }
    }
}

/// A [`Runtime`] that may be gone.
#[derive(Clone)]
pub(crate) struct WeakRuntime(Weak<Inner>);

impl WeakRuntime {
    pub(crate) fn upgrade(&self) -> Option<Runtime> {
        self.0.upgrade().map(|inner| Runtime { inner })
    }
}
