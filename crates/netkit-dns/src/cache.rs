//! The DNS cache, with Bun's semantics and counters.
//!
//! Entries are keyed by (name, record type). An entry lives for the cache's
//! TTL (30 s by default, Bun's; `NETKIT_DNS_TTL_SECONDS` in the drivers). A
//! `resolve*` result is served only within its records' own TTL too; a
//! `lookup` (getaddrinfo-style) is served for the cache's TTL, as Bun does. A
//! negative answer (NXDOMAIN, NODATA) is kept for its RFC 2308 TTL (the SOA's),
//! capped at the cache's TTL; any other failure for one second, so a dead
//! server is not asked again by every caller at once. At most 255 entries (by
//! default): inserting into a full cache evicts the least recently used.
//! [`Stats`] are Bun's six `getCacheStats()` counters.
//!
//! A hit borrows the cached answer: no allocation on the hot path (a name with
//! upper-case letters or a trailing dot is normalized on the stack).

use std::collections::HashMap;

use foldhash::fast::FixedState;
use std::time::{Duration, Instant};

use crate::Error;
use crate::message::NameKey;
use crate::message::{Answer, Rtype};

/// How long a failure other than a negative answer is kept.
const FAILURE_TTL: Duration = Duration::from_secs(1);

/// Cache limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// How long an entry lives (Bun's default: 30 s).
    pub ttl: Duration,
    /// The most entries (Bun's: 255).
    pub max_entries: usize,
    /// Seeds the hash of the cache's maps. Randomness comes from the
    /// driver, like time: a driver that resolves names an attacker may
    /// choose should pass a random seed, so no one can pick names that
    /// collide. The default is a fixed 0.
    pub hash_seed: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(30),
            max_entries: 255,
            hash_seed: 0,
        }
    }
}

/// Bun's `dns.getCacheStats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests answered from a finished entry.
    pub cache_hits_completed: u64,
    /// Requests that joined a query already in flight.
    pub cache_hits_inflight: u64,
    /// Requests that started a query.
    pub cache_misses: u64,
    /// Entries now.
    pub size: u64,
    /// Requests that started a query and failed (one per failed query:
    /// requests that joined it share its failure, as in Bun).
    pub errors: u64,
    /// Every request.
    pub total_count: u64,
}

/// What a request should be served: whether a `resolve*` (capped by the
/// records' TTL) or a `lookup` (the cache's TTL only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// node's `resolve*`: within the records' own TTL.
    Resolve,
    /// getaddrinfo-style `lookup`: within the cache's TTL.
    Lookup,
}

#[derive(Debug, Clone)]
struct Entry {
    result: Result<Answer, Error>,
    fetched: Instant,
    /// Seconds the records (or the negative answer) may be used.
    record_ttl: u32,
    /// When the entry is dropped whatever the use.
    expires: Instant,
    last_used: u64,
}

/// The cache. See the [module docs](self).
#[derive(Debug)]
pub struct Cache {
    config: CacheConfig,
    /// One map per record type, keyed by the normalized name, so a lookup
    /// borrows the name instead of building a key.
    maps: [HashMap<Box<str>, Entry, FixedState>; Rtype::ALL.len()],
    len: usize,
    tick: u64,
    /// No entry expires before this (a lower bound; `None`: nothing cached yet).
    soonest: Option<Instant>,
    stats: Stats,
}

/// The live entry for `name`/`rtype` (marked used at `tick`), if any.
fn live<'a>(
    maps: &'a mut [HashMap<Box<str>, Entry, FixedState>; Rtype::ALL.len()],
    ttl: Duration,
    tick: u64,
    key: &str,
    (now, rtype, usage): (Instant, Rtype, Use),
) -> Option<Result<&'a Answer, &'a Error>> {
    let e = maps[slot(rtype)].get_mut(key)?;
    let limit = match usage {
        Use::Resolve => ttl.min(Duration::from_secs(u64::from(e.record_ttl))),
        Use::Lookup => ttl.min(match e.result {
            Ok(_) => ttl,
            Err(_) => Duration::from_secs(u64::from(e.record_ttl)),
        }),
    };
    if now >= e.fetched + limit || now >= e.expires {
        return None;
    }
    e.last_used = tick;
    Some(e.result.as_ref())
}

fn slot(rtype: Rtype) -> usize {
    Rtype::ALL.iter().position(|t| *t == rtype).unwrap_or(0)
}

impl Cache {
    /// An empty cache.
    #[must_use]
    pub fn new(config: CacheConfig) -> Self {
        Self {
            maps: std::array::from_fn(|_| {
                HashMap::with_hasher(FixedState::with_seed(config.hash_seed))
            }),
            config,
            len: 0,
            tick: 0,
            soonest: None,
            stats: Stats::default(),
        }
    }

    /// The limits.
    #[must_use]
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// A live entry for `name`/`rtype` for this use, counted as a completed
    /// hit; `None` (not counted) when there is none. The answer's records are
    /// the cached ones: a caller that reports TTLs subtracts
    /// [`age`](Self::age).
    pub fn get(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
        usage: Use,
    ) -> Option<Result<&Answer, &Error>> {
        let key = NameKey::new(name)?;
        self.tick += 1;
        let (ttl, tick) = (self.config.ttl, self.tick);
        let hit = live(&mut self.maps, ttl, tick, key.as_str(), (now, rtype, usage))?;
        self.stats.cache_hits_completed += 1;
        self.stats.total_count += 1;
        Some(hit)
    }

    /// [`get`](Self::get) without counting: for a caller that counts with
    /// [`count_hit`](Self::count_hit) once it knows the entry answers it. A
    /// live entry is still marked used.
    pub fn probe(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
        usage: Use,
    ) -> Option<Result<&Answer, &Error>> {
        self.probe_key(now, &NameKey::new(name)?, rtype, usage)
    }

    /// [`probe`](Self::probe) by a normalized name.
    pub(crate) fn probe_key(
        &mut self,
        now: Instant,
        key: &NameKey<'_>,
        rtype: Rtype,
        usage: Use,
    ) -> Option<Result<&Answer, &Error>> {
        self.tick += 1;
        let (ttl, tick) = (self.config.ttl, self.tick);
        live(&mut self.maps, ttl, tick, key.as_str(), (now, rtype, usage))
    }

    /// Counts a request answered by a [`probe`](Self::probe)d entry.
    pub fn count_hit(&mut self) {
        self.stats.cache_hits_completed += 1;
        self.stats.total_count += 1;
    }

    /// How long ago the entry for `name`/`rtype` was fetched.
    #[must_use]
    pub fn age(&self, now: Instant, name: &str, rtype: Rtype) -> Option<Duration> {
        let key = NameKey::new(name)?;
        let e = self.maps[slot(rtype)].get(key.as_str())?;
        Some(now.saturating_duration_since(e.fetched))
    }

    /// Stores a query's outcome (`ttl`: the negative TTL for an error).
    /// Counts nothing: the resolver counts the request that failed
    /// ([`count_error`](Self::count_error)).
    pub fn insert(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
        result: Result<Answer, (Error, u32)>,
    ) {
        let Some(key) = NameKey::new(name) else {
            return;
        };
        let (result, record_ttl, life) = match result {
            Ok(a) => {
                let ttl = a.ttl;
                (Ok(a), ttl, self.config.ttl)
            }
            Err((e, neg)) => {
                let life = match e {
                    Error::NotFound { .. } | Error::NoData { .. } => {
                        Duration::from_secs(u64::from(neg)).min(self.config.ttl)
                    }
                    _ => FAILURE_TTL.min(self.config.ttl),
                };
                (Err(e), life.as_secs() as u32, life)
            }
        };
        if life.is_zero() || self.config.max_entries == 0 {
            return;
        }
        self.tick += 1;
        let entry = Entry {
            result,
            fetched: now,
            record_ttl,
            expires: now + life,
            last_used: self.tick,
        };
        let map = &mut self.maps[slot(rtype)];
        if let Some(old) = map.get_mut(key.as_str()) {
            self.soonest = Some(self.soonest.map_or(entry.expires, |t| t.min(entry.expires)));
            *old = entry;
            return;
        }
        if self.len >= self.config.max_entries {
            self.evict(now);
        }
        self.soonest = Some(self.soonest.map_or(entry.expires, |t| t.min(entry.expires)));
        self.maps[slot(rtype)].insert(key.as_str().into(), entry);
        self.len += 1;
        self.stats.size = self.len as u64;
    }

    /// Makes room for one entry: drops every expired entry, else the least
    /// recently used.
    fn evict(&mut self, now: Instant) {
        let mut removed = 0;
        // Sweep only when some entry may have expired (a full cache of live
        // entries, the steady state under load, goes straight to the LRU).
        if self.soonest.is_some_and(|t| t <= now) {
            let mut soonest = None::<Instant>;
            for m in &mut self.maps {
                let before = m.len();
                m.retain(|_, e| e.expires > now);
                removed += before - m.len();
                for e in m.values() {
                    soonest = Some(soonest.map_or(e.expires, |t| t.min(e.expires)));
                }
            }
            self.soonest = soonest;
        }
        self.len -= removed;
        if removed == 0 {
            let oldest = self
                .maps
                .iter()
                .enumerate()
                .flat_map(|(i, m)| m.iter().map(move |(k, e)| (e.last_used, i, k)))
                .min_by_key(|(used, _, _)| *used)
                .map(|(_, i, k)| (i, k.clone()));
            if let Some((i, k)) = oldest {
                self.maps[i].remove(&k);
                self.len -= 1;
            }
        }
        self.stats.size = self.len as u64;
    }

    /// Drops the entry for `name`/`rtype` (Bun evicts an address that then
    /// failed to connect).
    pub fn remove(&mut self, name: &str, rtype: Rtype) {
        if let Some(key) = NameKey::new(name) {
            if self.maps[slot(rtype)].remove(key.as_str()).is_some() {
                self.len -= 1;
                self.stats.size = self.len as u64;
            }
        }
    }

    /// Counts a request that joined a query in flight.
    pub fn count_inflight_hit(&mut self) {
        self.stats.cache_hits_inflight += 1;
        self.stats.total_count += 1;
    }

    /// Counts a request (one that started a query) that failed.
    pub fn count_error(&mut self) {
        self.stats.errors += 1;
    }

    /// Counts a request that started a query.
    pub fn count_miss(&mut self) {
        self.stats.cache_misses += 1;
        self.stats.total_count += 1;
    }

    /// Bun's six counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Entries now (expired ones included until they are evicted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache holds no entry.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Record, RecordData};
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn t0() -> Instant {
        netkit_test_clock::origin()
    }

    fn answer(ttl: u32) -> Answer {
        Answer {
            records: vec![Record {
                ttl,
                data: RecordData::A(Ipv4Addr::new(192, 0, 2, 1)),
            }],
            ttl,
            canonical: None,
        }
    }

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn expiry_by_use() {
        let mut c = Cache::new(CacheConfig::default());
        c.insert(t0(), "Host.Test.", Rtype::A, Ok(answer(5)));
        assert!(
            c.get(t0() + s(4), "host.test", Rtype::A, Use::Resolve)
                .is_some()
        );
        assert!(
            c.get(t0() + s(5), "HOST.test", Rtype::A, Use::Resolve)
                .is_none(),
            "record TTL"
        );
        assert!(
            c.get(t0() + s(29), "host.test", Rtype::A, Use::Lookup)
                .is_some(),
            "Bun's 30 s"
        );
        assert!(
            c.get(t0() + s(30), "host.test", Rtype::A, Use::Lookup)
                .is_none()
        );
        assert!(
            c.get(t0(), "host.test", Rtype::Aaaa, Use::Lookup).is_none(),
            "per type"
        );
        assert_eq!(c.age(t0() + s(3), "host.test", Rtype::A), Some(s(3)));
        // A long record TTL is capped by the cache's.
        c.insert(t0(), "long.test", Rtype::A, Ok(answer(86400)));
        assert!(
            c.get(t0() + s(30), "long.test", Rtype::A, Use::Resolve)
                .is_none()
        );
    }

    #[test]
    fn errors_are_kept_briefly() {
        let mut c = Cache::new(CacheConfig::default());
        let nx = Error::NotFound {
            op: "queryA".into(),
            name: "nx.test".into(),
        };
        c.insert(t0(), "nx.test", Rtype::A, Err((nx.clone(), 10)));
        assert_eq!(
            c.get(t0() + s(9), "nx.test", Rtype::A, Use::Lookup),
            Some(Err(&nx))
        );
        assert!(
            c.get(t0() + s(10), "nx.test", Rtype::A, Use::Lookup)
                .is_none()
        );
        let to = Error::Timeout {
            op: "queryA".into(),
            name: "slow.test".into(),
        };
        c.insert(t0(), "slow.test", Rtype::A, Err((to, 0)));
        assert!(c.get(t0(), "slow.test", Rtype::A, Use::Resolve).is_some());
        assert!(
            c.get(t0() + s(1), "slow.test", Rtype::A, Use::Resolve)
                .is_none()
        );
        // A negative answer without a SOA is not kept at all.
        c.insert(t0(), "nosoa.test", Rtype::A, Err((nx, 0)));
        assert!(c.get(t0(), "nosoa.test", Rtype::A, Use::Lookup).is_none());
        assert_eq!(c.stats().errors, 0, "storing counts nothing");
        c.count_error();
        assert_eq!(c.stats().errors, 1);
    }

    #[test]
    fn lru_at_the_limit_and_stats() {
        let mut c = Cache::new(CacheConfig::default());
        for i in 0..255 {
            c.insert(t0(), &format!("h{i}.test"), Rtype::A, Ok(answer(60)));
        }
        assert_eq!(c.len(), 255);
        // Use h0 so that h1 is the least recently used.
        assert!(c.get(t0(), "h0.test", Rtype::A, Use::Lookup).is_some());
        c.insert(t0(), "new.test", Rtype::A, Ok(answer(60)));
        assert_eq!(c.len(), 255);
        assert!(
            c.get(t0(), "h1.test", Rtype::A, Use::Lookup).is_none(),
            "LRU evicted"
        );
        assert!(c.get(t0(), "h0.test", Rtype::A, Use::Lookup).is_some());
        c.remove("h0.test", Rtype::A);
        c.count_miss();
        c.count_inflight_hit();
        let st = c.stats();
        assert_eq!(st.size, 254);
        assert_eq!(st.cache_hits_completed, 2);
        assert_eq!(
            st.total_count,
            st.cache_hits_completed + st.cache_hits_inflight + st.cache_misses
        );
    }

    proptest! {
        /// Whatever the operations: the size never passes the limit, `size` is
        /// the count of entries, and the request counters add up.
        #[test]
        fn invariants(ops in proptest::collection::vec((0u8..4, 0u8..40, 0u32..100, 0u64..50), 0..300),
                      max in 1usize..20) {
            let mut c = Cache::new(CacheConfig { ttl: s(30), max_entries: max, hash_seed: 7 });
            let mut now = t0();
            for (op, name, ttl, dt) in ops {
                now += Duration::from_millis(dt * 100);
                let n = format!("n{name}.test");
                let expired = |c: &Cache| c.maps.iter().flat_map(|m| m.values()).any(|e| e.expires <= now);
                match op {
                    0 => {
                        let sweep = expired(&c)
                            && c.len() >= max
                            && !c.maps[slot(Rtype::A)].contains_key(n.as_str());
                        c.insert(now, &n, Rtype::A, Ok(answer(ttl)));
                        // Making room drops the expired entries before any live one.
                        prop_assert!(!(sweep && expired(&c)));
                    }
                    1 => { let _ = c.get(now, &n, Rtype::A, Use::Lookup); }
                    2 => c.remove(&n, Rtype::A),
                    _ => c.count_miss(),
                }
                prop_assert!(c.len() <= max);
                let actual: usize = c.maps.iter().map(|m| m.len()).sum();
                prop_assert_eq!(actual, c.len());
                prop_assert!(c.maps.iter().flat_map(|m| m.values()).all(|e| c.soonest.is_some_and(|t| t <= e.expires)));
                let st = c.stats();
                prop_assert_eq!(st.size as usize, c.len());
                prop_assert_eq!(st.total_count, st.cache_hits_completed + st.cache_hits_inflight + st.cache_misses);
            }
        }
    }
}
