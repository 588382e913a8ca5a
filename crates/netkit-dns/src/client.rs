//! The whole resolver, sans-IO: the query engine behind the cache, with
//! concurrent requests for one name sharing one query, and a getaddrinfo-style
//! `lookup` (hosts file, then A and AAAA in parallel through the search list,
//! ordered for Happy Eyeballs).
//!
//! A driver holds one [`Dns`] per process (or loop) and moves bytes for it as
//! for the [`Resolver`] it wraps; requests ask [`Dns::cached`] first (a hit
//! borrows, no allocation) and then [`Dns::resolve`] or [`Dns::lookup`], whose
//! outcomes come back as [`Event`]s. After every call, the driver drains
//! [`Dns::poll_event`] (which may start follow-up queries: a lookup's next
//! search candidate), then [`Dns::poll_output`].

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::cache::{Cache, CacheConfig, Stats, Use};
use crate::hosts::Hosts;
use crate::message::{Answer, NameKey, RecordData, Rtype, parse_name};
use crate::resolver::{Config, Done, Output, QueryId, Resolver};
use crate::{Error, ResolvConf};

/// One request of the application's (a `resolve` or a `lookup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Which addresses a lookup wants (node's `family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Family {
    /// IPv4 and IPv6.
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// An outcome for the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A `resolve` finished.
    Resolved {
        /// The request.
        request: RequestId,
        /// The answer (cloned from the cache entry it filled), or the error.
        result: Result<Answer, Error>,
    },
    /// A `lookup` finished: the addresses in connect order, or the error.
    LookedUp {
        /// The request.
        request: RequestId,
        /// The addresses.
        result: Result<Vec<IpAddr>, Error>,
    },
}

/// How the whole resolver is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Servers, timeout, attempts, rotation.
    pub engine: Config,
    /// The cache's TTL and size.
    pub cache: CacheConfig,
    /// Search domains for `lookup` (not `resolve`, as in node).
    pub search: Vec<String>,
    /// resolv.conf's `ndots`.
    pub ndots: u8,
}

impl DnsConfig {
    /// From resolv.conf, with the default cache.
    #[must_use]
    pub fn from_resolv_conf(c: &ResolvConf) -> Self {
        Self {
            engine: Config::from(c),
            cache: CacheConfig::default(),
            search: c.search.clone(),
            ndots: c.ndots,
        }
    }
}

/// Who waits for a query's outcome.
#[derive(Debug, Clone, Copy)]
enum Waiter {
    Resolve(RequestId),
    /// A lookup waits for its A or AAAA part.
    Lookup(RequestId),
}

#[derive(Debug)]
struct Inflight {
    waiters: Vec<Waiter>,
}

/// A lookup's progress through its candidate names.
#[derive(Debug)]
struct LookupState {
    candidates: Vec<String>,
    next: usize,
    family: Family,
    prefer_v6: bool,
    /// The parts still awaited for the current candidate.
    waiting: u8,
    v4: Vec<IpAddr>,
    v6: Vec<IpAddr>,
    /// The first error of the current candidate that is not "no such name".
    error: Option<Error>,
    /// Counted in the stats yet (once per request, at its first candidate),
    /// and whether as a miss (a failed miss counts as an error).
    counted: Option<Class>,
}

/// How one request counts in Bun's stats: answered by a finished entry,
/// by joining a query in flight, or by starting one. A request with parts
/// (a lookup's A and AAAA) counts once, as the most expensive of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Class {
    Hit,
    Inflight,
    Miss,
}

/// The resolver. See the [module docs](self).
#[derive(Debug)]
pub struct Dns {
    engine: Resolver,
    cache: Cache,
    search: Vec<String>,
    ndots: u8,
    inflight: HashMap<(String, Rtype), Inflight>,
    by_query: HashMap<QueryId, (String, Rtype)>,
    lookups: HashMap<RequestId, LookupState>,
    events: VecDeque<Event>,
    next_request: u64,
}

/// The addresses of an answer, of the type asked.
fn addresses(a: &Answer) -> impl Iterator<Item = IpAddr> + '_ {
    a.records.iter().filter_map(|r| match r.data {
        RecordData::A(ip) => Some(IpAddr::V4(ip)),
        RecordData::Aaaa(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Dns {
    /// A resolver with an empty cache.
    #[must_use]
    pub fn new(config: DnsConfig) -> Self {
        Self {
            engine: Resolver::new(config.engine),
            cache: Cache::new(config.cache),
            search: config.search,
            ndots: config.ndots,
            inflight: HashMap::new(),
            by_query: HashMap::new(),
            lookups: HashMap::new(),
            events: VecDeque::new(),
            next_request: 0,
        }
    }

    fn request(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }

    /// The cached result for `name`/`rtype`, if a live one is cached (counted
    /// as a completed hit). Borrows it: no allocation.
    pub fn cached(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
    ) -> Option<Result<&Answer, &Error>> {
        self.cache.get(now, name, rtype, Use::Resolve)
    }

    /// How long ago the cached entry for `name`/`rtype` was fetched (for
    /// reporting remaining TTLs).
    #[must_use]
    pub fn cached_age(
        &self,
        now: Instant,
        name: &str,
        rtype: Rtype,
    ) -> Option<std::time::Duration> {
        self.cache.age(now, name, rtype)
    }

    /// Starts resolving `name`/`rtype` (after a [`cached`](Self::cached)
    /// miss): joins a query in flight for the same name and type, or starts
    /// one with the wire ID `id` (random, from the driver). The outcome comes
    /// as [`Event::Resolved`].
    pub fn resolve(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
        id: u16,
    ) -> Result<RequestId, Error> {
        let r = self.request();
        let class = self.want(now, name, rtype, id, Waiter::Resolve(r))?;
        self.count(class);
        Ok(r)
    }

    fn count(&mut self, class: Class) {
        match class {
            Class::Hit => self.cache.count_hit(),
            Class::Inflight => self.cache.count_inflight_hit(),
            Class::Miss => self.cache.count_miss(),
        }
    }

    /// Adds a waiter for `name`/`rtype`: joins the query in flight
    /// ([`Class::Inflight`]) or starts one ([`Class::Miss`]). Counts nothing:
    /// the caller counts its request once.
    fn want(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
        id: u16,
        waiter: Waiter,
    ) -> Result<Class, Error> {
        parse_name(name)?;
        let key = (normalize(name), rtype);
        if let Some(f) = self.inflight.get_mut(&key) {
            f.waiters.push(waiter);
            return Ok(Class::Inflight);
        }
        let q = self.engine.query(now, &key.0, rtype, id)?;
        self.by_query.insert(q, key.clone());
        self.inflight.insert(
            key,
            Inflight {
                waiters: vec![waiter],
            },
        );
        Ok(Class::Miss)
    }

    /// Starts a getaddrinfo-style lookup of `name`: an IP literal is itself;
    /// a name listed in `hosts` is answered from it; otherwise A and AAAA (as
    /// `family` asks) through the search list, both in parallel, through the
    /// cache. Addresses come IPv4 first, unless `prefer_v6` (the driver found
    /// a native global IPv6 source address, as RFC 6724 sorting needs). `ids` gives a fresh random wire ID per query.
    /// Returns the addresses at once when no query is needed, else the request
    /// whose [`Event::LookedUp`] will come.
    pub fn lookup(
        &mut self,
        now: Instant,
        name: &str,
        family: Family,
        prefer_v6: bool,
        hosts: &Hosts,
        ids: &mut dyn FnMut() -> u16,
    ) -> Result<Result<Vec<IpAddr>, RequestId>, Error> {
        if let Some(ip) = netkit_socket::connect::parse_ip(name) {
            return Ok(Ok(vec![ip]));
        }
        let key = NameKey::new(name);
        if let Some(key) = &key {
            let listed: Vec<IpAddr> = hosts
                .listed(key)
                .iter()
                .copied()
                .filter(|ip| match family {
                    Family::Any => true,
                    Family::V4 => ip.is_ipv4(),
                    Family::V6 => ip.is_ipv6(),
                })
                .collect();
            if !listed.is_empty() {
                return Ok(Ok(order(listed, prefer_v6)));
            }
            if let Some(addrs) = self.lookup_cached(now, name, key, family, prefer_v6) {
                return Ok(Ok(addrs));
            }
        }
        parse_name(name)?;
        let candidates = ResolvConf {
            search: self.search.clone(),
            ndots: self.ndots,
            ..ResolvConf::default()
        }
        .candidates(name);
        let r = self.request();
        self.lookups.insert(
            r,
            LookupState {
                candidates,
                next: 0,
                family,
                prefer_v6,
                waiting: 0,
                v4: Vec::new(),
                v6: Vec::new(),
                error: None,
                counted: None,
            },
        );
        self.advance_lookup(now, r, ids);
        // Answered from the cache already?
        if let Some(pos) = self
            .events
            .iter()
            .position(|e| matches!(e, Event::LookedUp { request, .. } if *request == r))
        {
            if let Some(Event::LookedUp { result, .. }) = self.events.remove(pos) {
                return result.map(Ok);
            }
        }
        Ok(Err(r))
    }

    /// A lookup answered by the cache alone, without the request machinery
    /// (the common case, kept cheap): the name is asked as-is first (absolute,
    /// enough dots, or no search list), no part it needs is missing, stale or
    /// a failure other than "no such name/records", and some address is
    /// there. The request counts as one completed hit, as in the general path.
    fn lookup_cached(
        &mut self,
        now: Instant,
        name: &str,
        key: &NameKey<'_>,
        family: Family,
        prefer_v6: bool,
    ) -> Option<Vec<IpAddr>> {
        let dots = name.bytes().filter(|b| *b == b'.').count();
        if !(name.ends_with('.') || self.search.is_empty() || dots >= usize::from(self.ndots)) {
            return None;
        }
        let types: &[Rtype] = match (family, prefer_v6) {
            (Family::Any, false) => &[Rtype::A, Rtype::Aaaa],
            (Family::Any, true) => &[Rtype::Aaaa, Rtype::A],
            (Family::V4, _) => &[Rtype::A],
            (Family::V6, _) => &[Rtype::Aaaa],
        };
        let mut out = Vec::with_capacity(4);
        for &t in types {
            match self.cache.probe_key(now, key, t, Use::Lookup)? {
                Ok(a) => out.extend(addresses(a)),
                Err(Error::NotFound { .. } | Error::NoData { .. }) => {}
                Err(_) => return None,
            }
        }
        if out.is_empty() {
            return None;
        }
        self.cache.count_hit();
        Some(out)
    }

    /// Starts the lookup's next candidate (parts from the cache are applied at
    /// once), or finishes it.
    fn advance_lookup(&mut self, now: Instant, r: RequestId, ids: &mut dyn FnMut() -> u16) {
        loop {
            let Some(l) = self.lookups.get_mut(&r) else {
                return;
            };
            if l.waiting > 0 {
                return;
            }
            if !l.v4.is_empty() || !l.v6.is_empty() {
                let (mut v4, mut v6) = (std::mem::take(&mut l.v4), std::mem::take(&mut l.v6));
                let prefer_v6 = l.prefer_v6;
                self.lookups.remove(&r);
                let all = if prefer_v6 {
                    v6.append(&mut v4);
                    v6
                } else {
                    v4.append(&mut v6);
                    v4
                };
                self.events.push_back(Event::LookedUp {
                    request: r,
                    result: Ok(all),
                });
                return;
            }
            if let Some(e) = l.error.take() {
                let missed = l.counted == Some(Class::Miss);
                self.lookups.remove(&r);
                if missed {
                    self.cache.count_error();
                }
                self.events.push_back(Event::LookedUp {
                    request: r,
                    result: Err(e),
                });
                return;
            }
            let Some(name) = l.candidates.get(l.next).cloned() else {
                let first = l.candidates.first().cloned().unwrap_or_default();
                let missed = l.counted == Some(Class::Miss);
                self.lookups.remove(&r);
                if missed {
                    self.cache.count_error();
                }
                self.events.push_back(Event::LookedUp {
                    request: r,
                    result: Err(Error::NotFound {
                        op: "getaddrinfo".into(),
                        name: first,
                    }),
                });
                return;
            };
            l.next += 1;
            let first_round = l.counted.is_none();
            let types: &[Rtype] = match l.family {
                Family::Any => &[Rtype::A, Rtype::Aaaa],
                Family::V4 => &[Rtype::A],
                Family::V6 => &[Rtype::Aaaa],
            };
            let mut class = Class::Hit;
            for &t in types {
                let cached = self.cache.probe(now, &name, t, Use::Lookup).map(|c| {
                    c.map(|a| addresses(a).collect::<Vec<_>>())
                        .map_err(Clone::clone)
                });
                match cached {
                    Some(part) => self.apply_part(r, t, part),
                    None => {
                        if let Some(l) = self.lookups.get_mut(&r) {
                            l.waiting += 1;
                        }
                        match self.want(now, &name, t, ids(), Waiter::Lookup(r)) {
                            Ok(c) => class = class.max(c),
                            Err(e) => {
                                class = Class::Miss;
                                if let Some(l) = self.lookups.get_mut(&r) {
                                    l.waiting -= 1;
                                }
                                self.apply_part(r, t, Err(e));
                            }
                        }
                    }
                }
            }
            if first_round {
                // One request, counted once, by its first candidate.
                self.count(class);
                if let Some(l) = self.lookups.get_mut(&r) {
                    l.counted = Some(class);
                }
            }
        }
    }

    /// One part (A or AAAA) of a lookup's current candidate is in.
    fn apply_part(&mut self, r: RequestId, t: Rtype, part: Result<Vec<IpAddr>, Error>) {
        let Some(l) = self.lookups.get_mut(&r) else {
            return;
        };
        match part {
            Ok(ips) if t == Rtype::A => l.v4.extend(ips),
            Ok(ips) => l.v6.extend(ips),
            // No such name, or no such records: try the next candidate.
            Err(Error::NotFound { .. } | Error::NoData { .. }) => {}
            Err(e) => {
                if l.error.is_none() {
                    l.error = Some(match e {
                        Error::Timeout { name, .. } => Error::Timeout {
                            op: "getaddrinfo".into(),
                            name,
                        },
                        other => other,
                    });
                }
            }
        }
    }

    /// Drops the cache entries of `name` whose address then failed to connect
    /// (Bun evicts them).
    pub fn evict(&mut self, name: &str) {
        for t in [Rtype::A, Rtype::Aaaa] {
            self.cache.remove(name, t);
        }
    }

    /// Bun's six counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.cache.stats()
    }

    /// Exchanges this resolver's cache with `other` (a move, O(1)). A driver
    /// whose resolvers share one cache (one per process, as Bun's) lends it
    /// to a resolver for the length of a call and takes it back after; the
    /// resolver itself holds no reference to anything shared.
    pub fn swap_cache(&mut self, other: &mut Cache) {
        std::mem::swap(&mut self.cache, other);
    }

    /// The next thing to do on the wire (see [`Resolver::poll_output`]).
    pub fn poll_output(&mut self) -> Option<Output<'_>> {
        self.engine.poll_output()
    }

    /// The next outcome for the application. Poll after every call until
    /// `None`. `ids` gives fresh wire IDs for the follow-up queries a lookup
    /// may start (its next search candidate).
    pub fn poll_event(&mut self, now: Instant, ids: &mut dyn FnMut() -> u16) -> Option<Event> {
        while let Some(done) = self.engine.poll_done() {
            self.complete(now, done, ids);
        }
        self.events.pop_front()
    }

    /// A query finished: fill the cache, wake every waiter.
    fn complete(&mut self, now: Instant, done: Done, ids: &mut dyn FnMut() -> u16) {
        let Some(key) = self.by_query.remove(&done.query) else {
            return;
        };
        let Some(f) = self.inflight.remove(&key) else {
            return;
        };
        self.cache.insert(now, &key.0, key.1, done.result.clone());
        let result = done.result.map_err(|(e, _)| e);
        // The request that started the query owns its failure (Bun counts
        // an error per failed query, not per waiter); a lookup counts its
        // own when it ends.
        if result.is_err() && matches!(f.waiters.first(), Some(Waiter::Resolve(_))) {
            self.cache.count_error();
        }
        let mut lookups = Vec::new();
        for w in f.waiters {
            match w {
                Waiter::Resolve(request) => self.events.push_back(Event::Resolved {
                    request,
                    result: result.clone(),
                }),
                Waiter::Lookup(r) => {
                    if let Some(l) = self.lookups.get_mut(&r) {
                        l.waiting = l.waiting.saturating_sub(1);
                    }
                    let part = result
                        .as_ref()
                        .map(|a| addresses(a).collect())
                        .map_err(Clone::clone);
                    self.apply_part(r, key.1, part);
                    lookups.push(r);
                }
            }
        }
        for r in lookups {
            self.advance_lookup(now, r, ids);
        }
    }

    /// See [`Resolver::handle_udp`].
    pub fn handle_udp(&mut self, now: Instant, q: QueryId, from: SocketAddr, bytes: &[u8]) {
        self.engine.handle_udp(now, q, from, bytes);
    }

    /// See [`Resolver::handle_udp_error`].
    pub fn handle_udp_error(&mut self, now: Instant, q: QueryId, code: &str) {
        self.engine.handle_udp_error(now, q, code);
    }

    /// See [`Resolver::handle_tcp_connected`].
    pub fn handle_tcp_connected(&mut self, now: Instant, q: QueryId) {
        self.engine.handle_tcp_connected(now, q);
    }

    /// See [`Resolver::handle_tcp_input`].
    pub fn handle_tcp_input(&mut self, now: Instant, q: QueryId, bytes: &[u8]) {
        self.engine.handle_tcp_input(now, q, bytes);
    }

    /// See [`Resolver::handle_tcp_error`].
    pub fn handle_tcp_error(&mut self, now: Instant, q: QueryId, code: &str) {
        self.engine.handle_tcp_error(now, q, code);
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.engine.poll_timeout()
    }

    /// See [`Resolver::handle_timeout`]. Idempotent.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.engine.handle_timeout(now);
    }

    /// Queries in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.engine.in_flight()
    }
}

/// IPv4 first, or IPv6 first when preferred; order within a family kept.
fn order(addrs: Vec<IpAddr>, prefer_v6: bool) -> Vec<IpAddr> {
    let (mut v6, mut v4): (Vec<IpAddr>, Vec<IpAddr>) = addrs.into_iter().partition(IpAddr::is_ipv6);
    if prefer_v6 {
        v6.append(&mut v4);
        v6
    } else {
        v4.append(&mut v6);
        v4
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::tests::{rec, response, soa};
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, AAAA};
    use std::time::Duration;

    fn t0() -> Instant {
        netkit_test_clock::origin()
    }

    /// A zone entry: a name, its IPv4 address, its IPv6 address.
    type Zone<'a> = (&'a str, Option<[u8; 4]>, Option<&'a str>);

    fn dns(search: &[&str]) -> Dns {
        Dns::new(DnsConfig {
            engine: Config {
                servers: vec!["10.0.0.1:53".parse().unwrap()],
                timeout: Duration::from_secs(2),
                attempts: 1,
                rotate: false,
            },
            cache: CacheConfig::default(),
            search: search.iter().map(|s| s.to_string()).collect(),
            ndots: 1,
        })
    }

    /// A canned server: answers every datagram the engine sends, from `zone`
    /// (name → A, AAAA), NXDOMAIN otherwise, as a driver would (events are
    /// drained between rounds and kept for `events`). Returns how many queries
    /// it saw.
    fn serve(d: &mut Dns, zone: &[Zone<'_>]) -> usize {
        let mut seen = 0;
        loop {
            let mut ids = || 7u16;
            let mut kept = Vec::new();
            while let Some(e) = d.poll_event(t0(), &mut ids) {
                kept.push(e);
            }
            d.events.extend(kept);
            let mut sent = Vec::new();
            while let Some(o) = d.poll_output() {
                if let Output::Udp { query, to, payload } = o {
                    sent.push((query, to, payload.to_vec()));
                }
            }
            if sent.is_empty() {
                return seen;
            }
            for (q, to, payload) in sent {
                seen += 1;
                let m = Message::from_vec(&payload).unwrap();
                let qn = m.queries[0].name().to_ascii();
                let qt = m.queries[0].query_type();
                let found = zone.iter().find(|(n, _, _)| format!("{n}.") == qn);
                let answers = match (found, qt) {
                    (Some((n, Some(v4), _)), hickory_proto::rr::RecordType::A) => {
                        vec![rec(
                            &format!("{n}."),
                            300,
                            RData::A(A::from(std::net::Ipv4Addr::from(*v4))),
                        )]
                    }
                    (Some((n, _, Some(v6))), hickory_proto::rr::RecordType::AAAA) => {
                        vec![rec(
                            &format!("{n}."),
                            300,
                            RData::AAAA(AAAA::from(v6.parse::<std::net::Ipv6Addr>().unwrap())),
                        )]
                    }
                    _ => vec![],
                };
                let rcode = if found.is_some() {
                    ResponseCode::NoError
                } else {
                    ResponseCode::NXDomain
                };
                let r = response(&payload, rcode, answers, vec![soa("test.", 60, 60)]);
                d.handle_udp(t0(), q, to, &r);
            }
        }
    }

    fn events(d: &mut Dns) -> Vec<Event> {
        let mut ids = || 7u16;
        let mut all: Vec<Event> = Vec::new();
        while let Some(e) = d.poll_event(t0(), &mut ids) {
            all.push(e);
        }
        all
    }

    #[test]
    fn concurrent_requests_share_one_query_then_hit_the_cache() {
        let mut d = dns(&[]);
        assert!(d.cached(t0(), "a.test", Rtype::A).is_none());
        let reqs: Vec<RequestId> = (0..64)
            .map(|_| d.resolve(t0(), "a.test", Rtype::A, 1).unwrap())
            .collect();
        let seen = serve(&mut d, &[("a.test", Some([192, 0, 2, 1]), None)]);
        assert_eq!(seen, 1, "64 requests, one query");
        let evs = events(&mut d);
        assert_eq!(evs.len(), 64);
        assert!(
            evs.iter().zip(&reqs).all(
                |(e, r)| matches!(e, Event::Resolved { request, result: Ok(_) } if request == r)
            )
        );
        assert!(matches!(d.cached(t0(), "A.TEST.", Rtype::A), Some(Ok(_))));
        let st = d.stats();
        assert_eq!(
            (
                st.cache_misses,
                st.cache_hits_inflight,
                st.cache_hits_completed,
                st.size
            ),
            (1, 63, 1, 1)
        );
        assert_eq!(st.total_count, 65);
    }

    #[test]
    fn lookup_orders_families_and_walks_the_search_list() {
        let mut d = dns(&["corp.test"]);
        let hosts = Hosts::parse("10.9.9.9 pinned.test\n");
        let mut ids = || 3u16;
        // Hosts file and literals: no query.
        assert_eq!(
            d.lookup(t0(), "pinned.test", Family::Any, false, &hosts, &mut ids),
            Ok(Ok(vec!["10.9.9.9".parse().unwrap()]))
        );
        assert_eq!(
            d.lookup(t0(), "[::1]", Family::Any, false, &hosts, &mut ids),
            Ok(Ok(vec!["::1".parse().unwrap()]))
        );
        // `www` (0 dots < ndots 1): www.corp.test first (found).
        let zone = [("www.corp.test", Some([10, 0, 0, 5]), Some("fd00::5"))];
        let Ok(Err(r)) = d.lookup(t0(), "www", Family::Any, true, &hosts, &mut ids) else {
            panic!()
        };
        serve(&mut d, &zone);
        assert_eq!(
            events(&mut d),
            [Event::LookedUp {
                request: r,
                result: Ok(vec![
                    "fd00::5".parse().unwrap(),
                    "10.0.0.5".parse().unwrap()
                ])
            }]
        );
        // Now cached: answered at once, IPv4 first without the preference.
        assert_eq!(
            d.lookup(t0(), "www", Family::Any, false, &hosts, &mut ids),
            Ok(Ok(vec![
                "10.0.0.5".parse().unwrap(),
                "fd00::5".parse().unwrap()
            ]))
        );
        // Only IPv4.
        assert_eq!(
            d.lookup(t0(), "www", Family::V4, true, &hosts, &mut ids),
            Ok(Ok(vec!["10.0.0.5".parse().unwrap()]))
        );
        // A name found nowhere: ENOTFOUND after every candidate.
        let Ok(Err(r)) = d.lookup(t0(), "nowhere", Family::Any, false, &hosts, &mut ids) else {
            panic!()
        };
        let seen = serve(&mut d, &zone);
        assert_eq!(
            seen, 4,
            "A and AAAA for nowhere.corp.test, then for nowhere"
        );
        assert_eq!(
            events(&mut d),
            [Event::LookedUp {
                request: r,
                result: Err(Error::NotFound {
                    op: "getaddrinfo".into(),
                    name: "nowhere.corp.test".into()
                })
            }]
        );
    }

    #[test]
    fn a_dead_server_is_a_lookup_error_not_a_hang() {
        let mut d = dns(&[]);
        let mut ids = || 3u16;
        let Ok(Err(r)) = d.lookup(
            t0(),
            "a.test",
            Family::Any,
            false,
            &Hosts::default(),
            &mut ids,
        ) else {
            panic!()
        };
        while d.poll_output().is_some() {}
        d.handle_timeout(t0() + Duration::from_secs(2));
        let evs = events(&mut d);
        assert!(
            matches!(&evs[..], [Event::LookedUp { request, result: Err(e) }] if *request == r && e.code() == "ETIMEOUT"),
            "{evs:?}"
        );
        let st = d.stats();
        assert_eq!(
            (st.cache_misses, st.errors, st.total_count),
            (1, 1, 1),
            "one request, one miss, one error, though both parts failed"
        );
    }

    /// Bun's counters count requests: a lookup (A and AAAA) is one request;
    /// the first of concurrent requests misses and the rest join it in
    /// flight; a failed query is one error however many requests shared it.
    #[test]
    fn stats_count_requests_as_bun_does() {
        let mut d = dns(&[]);
        let hosts = Hosts::default();
        let mut ids = || 9u16;
        for _ in 0..4 {
            let Ok(Err(_)) = d.lookup(t0(), "a.test", Family::Any, false, &hosts, &mut ids) else {
                panic!()
            };
        }
        assert_eq!(serve(&mut d, &[("a.test", Some([192, 0, 2, 1]), None)]), 2);
        assert_eq!(events(&mut d).len(), 4);
        let st = d.stats();
        assert_eq!(
            (
                st.cache_misses,
                st.cache_hits_inflight,
                st.cache_hits_completed,
                st.total_count,
                st.errors
            ),
            (1, 3, 0, 4, 0)
        );
        for _ in 0..3 {
            d.resolve(t0(), "dead.test", Rtype::Mx, 2).unwrap();
        }
        while d.poll_output().is_some() {}
        d.handle_timeout(t0() + Duration::from_secs(2));
        let evs = events(&mut d);
        assert_eq!(evs.len(), 3, "{evs:?}");
        assert!(
            evs.iter()
                .all(|e| matches!(e, Event::Resolved { result: Err(_), .. }))
        );
        let st = d.stats();
        assert_eq!(
            (
                st.cache_misses,
                st.cache_hits_inflight,
                st.total_count,
                st.errors
            ),
            (2, 5, 7, 1)
        );
        assert_eq!(
            st.total_count,
            st.cache_hits_completed + st.cache_hits_inflight + st.cache_misses
        );
    }

    #[test]
    fn evicting_a_name_forgets_its_addresses() {
        let mut d = dns(&[]);
        d.resolve(t0(), "a.test", Rtype::A, 1).unwrap();
        serve(&mut d, &[("a.test", Some([192, 0, 2, 1]), None)]);
        let _ = events(&mut d);
        assert!(d.cached(t0(), "a.test", Rtype::A).is_some());
        d.evict("a.test");
        assert!(d.cached(t0(), "a.test", Rtype::A).is_none());
    }

    #[test]
    fn a_cached_lookup_counts_one_hit_and_asks_nothing() {
        let mut d = dns(&["corp.test"]);
        let hosts = Hosts::default();
        let mut ids = || 5u16;
        let zone = [("v4only.test", Some([192, 0, 2, 7]), None)];
        let Ok(Err(_)) = d.lookup(t0(), "v4only.test", Family::Any, true, &hosts, &mut ids) else {
            panic!()
        };
        assert_eq!(serve(&mut d, &zone), 2);
        let _ = events(&mut d);
        let before = d.stats();
        // AAAA is cached as "no records": the answer is the A part alone.
        assert_eq!(
            d.lookup(t0(), "V4ONLY.test.", Family::Any, true, &hosts, &mut ids),
            Ok(Ok(vec!["192.0.2.7".parse().unwrap()]))
        );
        let after = d.stats();
        assert_eq!(
            after.cache_hits_completed - before.cache_hits_completed,
            1,
            "one request, though A and AAAA both answered it (Bun counts requests)"
        );
        assert_eq!(after.total_count - before.total_count, 1);
        assert_eq!(d.in_flight(), 0);
        assert!(d.poll_output().is_none());
    }

    proptest::proptest! {
        /// Whatever the zone, search list, name form, family and preference, a
        /// lookup repeated while the cache is warm answers exactly as the first
        /// did and sends nothing (the cache-only path agrees with the general one).
        #[test]
        fn a_repeated_lookup_answers_as_the_first(
            has_v4 in proptest::bool::ANY,
            has_v6 in proptest::bool::ANY,
            in_search in proptest::bool::ANY,
            search in proptest::bool::ANY,
            form in 0u8..3,
            family in 0u8..3,
            prefer_v6 in proptest::bool::ANY,
        ) {
            let mut d = dns(if search { &["corp.test"] } else { &[] });
            let hosts = Hosts::default();
            let mut ids = || 9u16;
            let zname = if in_search { "host.corp.test" } else { "host" };
            let v6 = "fd00::9";
            let zone = [(zname, has_v4.then_some([10, 0, 0, 9]), has_v6.then_some(v6))];
            let name = match form {
                0 => "host",
                1 => "host.",
                _ => "HOST.corp.test",
            };
            let family = [Family::Any, Family::V4, Family::V6][usize::from(family)];
            let first = match d.lookup(t0(), name, family, prefer_v6, &hosts, &mut ids) {
                Ok(Err(r)) => {
                    serve(&mut d, &zone);
                    let evs = events(&mut d);
                    match &evs[..] {
                        [Event::LookedUp { request, result }] if *request == r => result.clone(),
                        other => panic!("{other:?}"),
                    }
                }
                Ok(Ok(v)) => Ok(v),
                Err(e) => Err(e),
            };
            let again = d.lookup(t0(), name, family, prefer_v6, &hosts, &mut ids);
            let again = match again {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(r)) => {
                    // Only a failure may be asked again (errors are not all cached).
                    proptest::prop_assert!(first.is_err());
                    serve(&mut d, &zone);
                    let evs = events(&mut d);
                    match &evs[..] {
                        [Event::LookedUp { request, result }] if *request == r => result.clone(),
                        other => panic!("{other:?}"),
                    }
                }
                Err(e) => Err(e),
            };
            proptest::prop_assert_eq!(first, again);
        }
    }
}
