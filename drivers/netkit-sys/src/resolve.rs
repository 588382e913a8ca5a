//! The resolver both drivers run: the connect plan's resolution step and
//! node's `dns` API, over one [`Dns`] (netkit-dns's sans-IO resolver and its
//! cache) per loop or runtime.
//!
//! What it decides is netkit-dns's; what is here is what a driver must add and
//! both drivers share: the settings read from the environment and the files
//! (`NETKIT_RESOLV_CONF` or `/etc/resolv.conf`, `NETKIT_HOSTS` or
//! `/etc/hosts`, `NETKIT_DNS_TTL_SECONDS` or Bun's
//! `BUN_CONFIG_DNS_TIME_TO_LIVE_SECONDS`), the hosts file re-read when it
//! changes (its size or mtime, checked at most once a second), random query
//! IDs from the OS, whether IPv6 comes first (a global IPv6 route), and a
//! mailbox of finished requests for the driver to hand back to whoever asked.
//! The sockets are each driver's own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use netkit_dns::cache::{Cache, CacheConfig};
use netkit_dns::hosts::Hosts;
use netkit_dns::resolver::Config as EngineConfig;
use netkit_dns::{Answer, Dns, DnsConfig, Event, Family, RequestId, ResolvConf, Rtype};

use crate::Error;

pub use netkit_socket::connect::parse_ip;

/// How often the hosts file's metadata is checked for a change.
const RECHECK: Duration = Duration::from_secs(1);

/// The hosts file, parsed, re-read when it changes.
#[derive(Debug)]
pub struct HostsFile {
    path: PathBuf,
    hosts: Hosts,
    /// (length, modification time) when it was read.
    stamp: Option<(u64, SystemTime)>,
    checked: Option<Instant>,
}

impl HostsFile {
    /// The hosts file at `path` (read on first use).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            hosts: Hosts::default(),
            stamp: None,
            checked: None,
        }
    }

    /// `$NETKIT_HOSTS`, else `/etc/hosts`.
    #[must_use]
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("NETKIT_HOSTS").unwrap_or_else(|| "/etc/hosts".into()))
    }

    /// The parsed file, re-read first if it changed (checked at most once a
    /// second). A missing or unreadable file is an empty one.
    pub fn hosts(&mut self, now: Instant) -> &Hosts {
        if self
            .checked
            .is_none_or(|t| now.duration_since(t) >= RECHECK)
        {
            self.checked = Some(now);
            let stamp = std::fs::metadata(&self.path)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            if stamp != self.stamp {
                self.stamp = stamp;
                let text = std::fs::read_to_string(&self.path).unwrap_or_default();
                self.hosts = Hosts::parse(&text);
            }
        }
        &self.hosts
    }
}

/// How the resolver is set up: resolv.conf, with overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// The parsed resolv.conf.
    pub resolv_conf: ResolvConf,
    /// Servers to ask instead of resolv.conf's (`--dns-server`, curl's
    /// `--dns-servers`).
    pub servers: Option<Vec<SocketAddr>>,
    /// The cache's TTL and size.
    pub cache: CacheConfig,
    /// IPv6 answers first in a lookup (the machine has a native global IPv6
    /// source address: `caps().prefer_ipv6`).
    pub prefer_v6: bool,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self::from_env()
    }
}

/// The cache TTL the environment sets: `NETKIT_DNS_TTL_SECONDS`, else Bun's
/// `BUN_CONFIG_DNS_TIME_TO_LIVE_SECONDS`, else 30 s.
pub fn env_cache_ttl() -> Duration {
    cache_ttl_from(|k| std::env::var(k).ok())
}

/// [`env_cache_ttl`] from any environment lookup: the first of the two
/// variables that holds a whole number of seconds (0 turns the cache off).
pub fn cache_ttl_from(get: impl Fn(&str) -> Option<String>) -> Duration {
    [
        "NETKIT_DNS_TTL_SECONDS",
        "BUN_CONFIG_DNS_TIME_TO_LIVE_SECONDS",
    ]
    .iter()
    .find_map(|k| get(k)?.trim().parse::<u64>().ok())
    .map_or(Duration::from_secs(30), Duration::from_secs)
}

impl DnsSettings {
    /// From the environment: `NETKIT_RESOLV_CONF` (default
    /// `/etc/resolv.conf`; a missing file is an empty one), the cache TTL
    /// ([`env_cache_ttl`]), and IPv6 first when getaddrinfo would put it
    /// first (`caps().prefer_ipv6`).
    #[must_use]
    pub fn from_env() -> Self {
        let path =
            std::env::var_os("NETKIT_RESOLV_CONF").unwrap_or_else(|| "/etc/resolv.conf".into());
        let text = std::fs::read_to_string(path).unwrap_or_default();
        Self {
            resolv_conf: ResolvConf::parse(&text),
            servers: None,
            cache: CacheConfig {
                ttl: env_cache_ttl(),
                hash_seed: random_seed(),
                ..CacheConfig::default()
            },
            prefer_v6: crate::sys::caps::caps().prefer_ipv6,
        }
    }

    /// The servers asked: the override, else resolv.conf's, else 127.0.0.1
    /// (glibc's default when resolv.conf names none).
    #[must_use]
    pub fn servers(&self) -> Vec<SocketAddr> {
        match &self.servers {
            Some(s) => s.clone(),
            None if self.resolv_conf.nameservers.is_empty() => {
                vec![SocketAddr::from(([127, 0, 0, 1], 53))]
            }
            None => self.resolv_conf.nameservers.clone(),
        }
    }

    /// The sans-IO resolver's configuration.
    #[must_use]
    pub fn dns_config(&self) -> DnsConfig {
        let mut c = DnsConfig::from_resolv_conf(&self.resolv_conf);
        c.engine = EngineConfig {
            servers: self.servers(),
            ..c.engine
        };
        c.cache = self.cache;
        c
    }
}

/// Parses `IP[:PORT]` (IPv6 as `[::1]:53` or bare `::1`), port 53 by default.
#[must_use]
pub fn parse_server(s: &str) -> Option<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Some(a);
    }
    parse_ip(s).map(|ip| SocketAddr::new(ip, 53))
}

/// A request's answer, now or later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<T, E = Error> {
    /// Answered at once (an IP literal, the hosts file, the cache).
    Ready(Result<T, E>),
    /// Asked: the answer comes through [`Resolver::take_lookup`] once the
    /// driver saw this request finish.
    Pending(RequestId),
}

/// A random seed for the cache's hash maps (names a program resolves may
/// come from a peer; a random seed keeps them from being chosen to collide).
#[must_use]
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_ok() {
        u64::from_ne_bytes(b)
    } else {
        std::process::id().into()
    }
}

/// A random query ID from the OS's generator (spoofing resistance rests on
/// it); a counter's value if the OS has none to give.
pub fn random_id() -> u16 {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_ok() {
        return u16::from_ne_bytes(b);
    }
    static FALLBACK: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0x5a5a);
    FALLBACK.fetch_add(0x9e37, std::sync::atomic::Ordering::Relaxed)
}

/// A DNS failure as a socket error for a connect (`ENOTFOUND: getaddrinfo
/// host`, as node's `net.connect` words it; other codes keep theirs).
#[must_use]
pub fn connect_error(e: &netkit_dns::Error, host: &str) -> Error {
    let code = match e.code() {
        "ENODATA" | "ENOTFOUND" => "ENOTFOUND",
        other => other,
    };
    Error::os(code, format!("getaddrinfo {host}"))
}

/// The resolver a loop or runtime owns. See the [module docs](self).
#[derive(Debug)]
pub struct Resolver {
    hosts: HostsFile,
    dns: Dns,
    /// The cache this resolver shares with others (lent to `dns` for each
    /// call), or `None` for a cache of its own.
    shared: Option<SharedCache>,
    prefer_v6: bool,
    lookups: HashMap<RequestId, Result<Vec<IpAddr>, netkit_dns::Error>>,
    resolves: HashMap<RequestId, Result<Answer, netkit_dns::Error>>,
}

/// A DNS cache several resolvers share (each loop's, each runtime's).
pub type SharedCache = Arc<Mutex<Cache>>;

/// The process's DNS cache, made on first use with the environment's
/// settings (`NETKIT_DNS_TTL_SECONDS`...): every [`Resolver::default`]
/// shares it, as every user of Bun's `fetch` and `dns` shares Bun's.
#[must_use]
pub fn process_cache() -> SharedCache {
    static CACHE: OnceLock<SharedCache> = OnceLock::new();
    CACHE
        .get_or_init(|| Arc::new(Mutex::new(Cache::new(DnsSettings::from_env().cache))))
        .clone()
}

impl Default for Resolver {
    /// The environment's resolver, sharing the [process's cache](process_cache).
    fn default() -> Self {
        Self::new(HostsFile::from_env(), DnsSettings::from_env()).sharing(process_cache())
    }
}

impl Resolver {
    /// A resolver over this hosts file and these settings.
    #[must_use]
    pub fn new(hosts: HostsFile, settings: DnsSettings) -> Self {
        Self {
            hosts,
            prefer_v6: settings.prefer_v6,
            dns: Dns::new(settings.dns_config()),
            shared: None,
            lookups: HashMap::new(),
            resolves: HashMap::new(),
        }
    }

    /// This resolver with `cache` (shared with other resolvers) in place of
    /// a cache of its own.
    #[must_use]
    pub fn sharing(mut self, cache: SharedCache) -> Self {
        self.shared = Some(cache);
        self
    }

    /// Runs `f` with the shared cache lent to the resolver (under its lock),
    /// or with the resolver's own.
    fn cached<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> R {
        let Some(shared) = self.shared.clone() else {
            return f(self);
        };
        let mut cache = shared.lock().unwrap_or_else(PoisonError::into_inner);
        self.dns.swap_cache(&mut cache);
        let r = f(self);
        self.dns.swap_cache(&mut cache);
        r
    }

    /// A resolver over this hosts file, with the settings of the environment.
    #[must_use]
    pub fn with_hosts(hosts: HostsFile) -> Self {
        Self::new(hosts, DnsSettings::from_env())
    }

    /// The addresses of `host` for a connect (getaddrinfo-style: an IP
    /// literal, the hosts file, `localhost`, then DNS through the cache), now
    /// or later.
    pub fn lookup(&mut self, now: Instant, host: &str) -> Resolution<Vec<IpAddr>> {
        self.lookup_family(now, host, Family::Any)
    }

    /// [`lookup`](Self::lookup) for one family (node's `family` option).
    pub fn lookup_family(
        &mut self,
        now: Instant,
        host: &str,
        family: Family,
    ) -> Resolution<Vec<IpAddr>> {
        if host.trim_end_matches('.').eq_ignore_ascii_case("localhost")
            && self.hosts.hosts(now).lookup(host).next().is_none()
        {
            let all: [IpAddr; 2] = [[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
            let v: Vec<IpAddr> = all
                .into_iter()
                .filter(|ip| match family {
                    Family::Any => true,
                    Family::V4 => ip.is_ipv4(),
                    Family::V6 => ip.is_ipv6(),
                })
                .collect();
            return Resolution::Ready(Ok(v));
        }
        let looked = self.cached(|me| {
            let hosts = me.hosts.hosts(now);
            let mut ids = random_id;
            me.dns
                .lookup(now, host, family, me.prefer_v6, hosts, &mut ids)
        });
        match looked {
            Ok(Ok(addrs)) => Resolution::Ready(Ok(addrs)),
            Ok(Err(r)) => Resolution::Pending(r),
            Err(e) => Resolution::Ready(Err(connect_error(&e, host))),
        }
    }

    /// The first address of `host` answerable without a query (an IP
    /// literal, the hosts file, `localhost`, the DNS cache), for what must
    /// bind or connect at once (a listener, a UDP socket); a name that
    /// needs a query is `ENOTFOUND` (nothing is left in flight).
    pub fn lookup_now(&mut self, now: Instant, host: &str) -> Result<IpAddr, Error> {
        first_address(host, &self.lookup_all_now(now, host)?)
    }

    /// Every address of `host` answerable without a query, as
    /// [`lookup_now`](Self::lookup_now) looks; none (and nothing left in
    /// flight) for a name that needs one.
    pub fn lookup_all_now(&mut self, now: Instant, host: &str) -> Result<Vec<IpAddr>, Error> {
        match self.lookup(now, host) {
            Resolution::Ready(r) => r,
            Resolution::Pending(r) => {
                self.forget(r);
                Ok(Vec::new())
            }
        }
    }

    /// node's `resolve*`: the records of `name` (never the hosts file), from
    /// the cache when a live entry is there, else asked.
    pub fn resolve(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
    ) -> Resolution<Answer, netkit_dns::Error> {
        self.cached(|me| me.resolve_here(now, name, rtype))
    }

    fn resolve_here(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
    ) -> Resolution<Answer, netkit_dns::Error> {
        if let Some(hit) = self.dns.cached(now, name, rtype) {
            let hit = hit.cloned().map_err(Clone::clone);
            // node's `{ ttl: true }` on a cached answer: what is left of each TTL.
            let age = self
                .dns
                .cached_age(now, name, rtype)
                .map_or(0, |a| u32::try_from(a.as_secs()).unwrap_or(u32::MAX));
            return Resolution::Ready(hit.map(|mut a| {
                a.ttl = a.ttl.saturating_sub(age);
                for r in &mut a.records {
                    r.ttl = r.ttl.saturating_sub(age);
                }
                a
            }));
        }
        match self.dns.resolve(now, name, rtype, random_id()) {
            Ok(r) => Resolution::Pending(r),
            Err(e) => Resolution::Ready(Err(e)),
        }
    }

    /// Moves finished requests into the mailbox; returns them, for the driver
    /// to wake whoever asked. Call after every event on the DNS sockets and
    /// timers (it may start follow-up queries: poll the DNS output after it).
    pub fn pump(&mut self, now: Instant) -> Vec<RequestId> {
        self.cached(|me| {
            let mut done = Vec::new();
            let mut ids = random_id;
            while let Some(ev) = me.dns.poll_event(now, &mut ids) {
                match ev {
                    Event::Resolved { request, result } => {
                        me.resolves.insert(request, result);
                        done.push(request);
                    }
                    Event::LookedUp { request, result } => {
                        me.lookups.insert(request, result);
                        done.push(request);
                    }
                }
            }
            done
        })
    }

    /// A finished lookup's addresses (taken out of the mailbox).
    pub fn take_lookup(&mut self, r: RequestId, host: &str) -> Option<Result<Vec<IpAddr>, Error>> {
        self.lookups
            .remove(&r)
            .map(|res| res.map_err(|e| connect_error(&e, host)))
    }

    /// A finished resolve's answer (taken out of the mailbox).
    pub fn take_resolve(&mut self, r: RequestId) -> Option<Result<Answer, netkit_dns::Error>> {
        self.resolves.remove(&r)
    }

    /// Forgets a request nobody waits for any more.
    pub fn forget(&mut self, r: RequestId) {
        self.lookups.remove(&r);
        self.resolves.remove(&r);
    }

    /// Warms the cache for `host` (Bun's `dns.prefetch`).
    pub fn prefetch(&mut self, now: Instant, host: &str) -> Option<RequestId> {
        match self.lookup(now, host) {
            Resolution::Pending(r) => Some(r),
            Resolution::Ready(_) => None,
        }
    }

    /// Drops the cached addresses of `host` after one of them failed to
    /// connect (Bun does).
    pub fn evict(&mut self, host: &str) {
        self.cached(|me| me.dns.evict(host));
    }

    /// The sans-IO resolver, for the driver's I/O pump (its engine: the
    /// cache is reached through this resolver's own methods, which lend it
    /// the shared one).
    pub fn dns(&mut self) -> &mut Dns {
        &mut self.dns
    }

    /// Bun's six cache counters (the shared cache's, when shared: every
    /// resolver sharing it counts there).
    #[must_use]
    pub fn stats(&self) -> netkit_dns::cache::Stats {
        match &self.shared {
            Some(c) => c.lock().unwrap_or_else(PoisonError::into_inner).stats(),
            None => self.dns.stats(),
        }
    }
}

/// The first of `host`'s addresses; `ENOTFOUND` (node's `getaddrinfo HOST`)
/// when there is none.
pub fn first_address(host: &str, addrs: &[IpAddr]) -> Result<IpAddr, Error> {
    addrs
        .first()
        .copied()
        .ok_or_else(|| Error::os("ENOTFOUND", format!("getaddrinfo {host}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> DnsSettings {
        DnsSettings {
            resolv_conf: ResolvConf::parse("nameserver 127.0.0.1\n"),
            servers: None,
            cache: CacheConfig::default(),
            prefer_v6: false,
        }
    }

    #[test]
    fn the_cache_ttl_comes_from_netkit_then_buns_variable() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let s = Duration::from_secs;
        assert_eq!(cache_ttl_from(env(&[])), s(30));
        assert_eq!(
            cache_ttl_from(env(&[("NETKIT_DNS_TTL_SECONDS", "5")])),
            s(5)
        );
        assert_eq!(
            cache_ttl_from(env(&[("BUN_CONFIG_DNS_TIME_TO_LIVE_SECONDS", " 7 ")])),
            s(7)
        );
        assert_eq!(
            cache_ttl_from(env(&[
                ("NETKIT_DNS_TTL_SECONDS", "0"),
                ("BUN_CONFIG_DNS_TIME_TO_LIVE_SECONDS", "7")
            ])),
            s(0),
            "netkit's name first; 0 turns the cache off"
        );
        assert_eq!(
            cache_ttl_from(env(&[
                ("NETKIT_DNS_TTL_SECONDS", "soon"),
                ("BUN_CONFIG_DNS_TIME_TO_LIVE_SECONDS", "7")
            ])),
            s(7),
            "a value that is not seconds is skipped"
        );
        assert_eq!(
            cache_ttl_from(env(&[("NETKIT_DNS_TTL_SECONDS", "-1")])),
            s(30)
        );
    }

    #[test]
    fn literals_localhost_and_the_file_re_read_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("netkit-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, "10.1.2.3 a.test\n").unwrap();
        let mut r = Resolver::new(HostsFile::new(&path), settings());
        let t = Instant::now();
        let ready = |r: Resolution<Vec<IpAddr>>| match r {
            Resolution::Ready(x) => x,
            Resolution::Pending(_) => panic!("asked DNS"),
        };
        assert_eq!(
            ready(r.lookup(t, "[::1]")).unwrap(),
            vec![IpAddr::from(std::net::Ipv6Addr::LOCALHOST)]
        );
        assert_eq!(
            ready(r.lookup(t, "a.test")).unwrap(),
            vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(ready(r.lookup(t, "localhost")).unwrap().len(), 2);
        // Not in the file: DNS is asked.
        assert!(matches!(r.lookup(t, "b.test"), Resolution::Pending(_)));
        std::fs::write(&path, "10.9.9.9 b.test a.test\n").unwrap();
        assert!(
            matches!(r.lookup(t, "b.test"), Resolution::Pending(_)),
            "checked at most once a second"
        );
        let later = t + RECHECK;
        assert_eq!(
            ready(r.lookup(later, "a.test")).unwrap(),
            vec!["10.9.9.9".parse::<IpAddr>().unwrap()]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn servers_and_settings() {
        assert_eq!(
            parse_server("10.0.0.1"),
            Some("10.0.0.1:53".parse().unwrap())
        );
        assert_eq!(
            parse_server("10.0.0.1:5353"),
            Some("10.0.0.1:5353".parse().unwrap())
        );
        assert_eq!(
            parse_server("[::1]:5353"),
            Some("[::1]:5353".parse().unwrap())
        );
        assert_eq!(parse_server("::1"), Some("[::1]:53".parse().unwrap()));
        assert_eq!(parse_server("nope"), None);
        let mut s = settings();
        s.resolv_conf = ResolvConf::default();
        assert_eq!(s.servers(), vec!["127.0.0.1:53".parse().unwrap()]);
        s.servers = Some(vec!["10.0.0.9:53".parse().unwrap()]);
        assert_eq!(
            s.dns_config().engine.servers,
            vec!["10.0.0.9:53".parse().unwrap()]
        );
        let e = netkit_dns::Error::NoData {
            op: "queryA".into(),
            name: "x".into(),
        };
        assert_eq!(
            connect_error(&e, "x").to_string(),
            "ENOTFOUND: getaddrinfo x"
        );
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| random_id()).collect();
        assert!(ids.len() > 50, "random IDs");
    }
}
