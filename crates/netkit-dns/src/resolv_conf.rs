//! `resolv.conf` parsing, from text handed in (resolv.conf(5), as glibc reads
//! it): `nameserver` (IPv4 or IPv6, at most 3, as glibc), `search` and
//! `domain` (the last of them wins), and `options` `ndots:N` (capped at 15),
//! `timeout:N` (seconds, capped at 30), `attempts:N` (capped at 5), `rotate`,
//! `edns0`. Unknown keywords and options are ignored; a malformed value leaves
//! the default. Never fails.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// What resolv.conf configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// Name servers, in file order (port 53).
    pub nameservers: Vec<SocketAddr>,
    /// Search domains (without trailing dots).
    pub search: Vec<String>,
    /// A name with at least this many dots is tried as absolute first.
    pub ndots: u8,
    /// Time to wait for one server's answer before trying the next.
    pub timeout: Duration,
    /// Rounds over the server list.
    pub attempts: u8,
    /// Start each query at the next server (round robin) instead of the first.
    pub rotate: bool,
    /// Whether `options edns0` was given (netkit always sends EDNS0; kept for
    /// callers that want to know).
    pub edns0: bool,
}

impl Default for ResolvConf {
    /// glibc's defaults: no servers (glibc then uses 127.0.0.1), ndots 1,
    /// timeout 5 s, 2 attempts.
    fn default() -> Self {
        Self {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
            edns0: false,
        }
    }
}

/// glibc keeps at most this many name servers.
pub const MAX_NAMESERVERS: usize = 3;
/// glibc keeps at most this many search domains.
const MAX_SEARCH: usize = 6;

impl ResolvConf {
    /// Parses the text of a resolv.conf. Never fails: malformed lines are skipped.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut c = Self::default();
        for line in text.lines() {
            // Comments start with `#` or `;` at the start of a line (and glibc
            // also accepts them after a value).
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_ascii_whitespace();
            let Some(key) = words.next() else { continue };
            match key {
                "nameserver" => {
                    let Some(addr) = words.next() else { continue };
                    // A scoped IPv6 address keeps its address without the scope.
                    let addr = addr.split('%').next().unwrap_or(addr);
                    if let Ok(ip) = addr.parse::<IpAddr>() {
                        if c.nameservers.len() < MAX_NAMESERVERS {
                            c.nameservers.push(SocketAddr::new(ip, 53));
                        }
                    }
                }
                "search" | "domain" => {
                    c.search = words
                        .take(MAX_SEARCH)
                        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
                        .filter(|d| !d.is_empty())
                        .collect();
                    if key == "domain" {
                        c.search.truncate(1);
                    }
                }
                "options" => {
                    for opt in words {
                        let (name, value) = opt.split_once(':').unwrap_or((opt, ""));
                        let n = value.parse::<u32>().ok();
                        match (name, n) {
                            ("ndots", Some(n)) => c.ndots = n.min(15) as u8,
                            ("timeout", Some(n)) => {
                                c.timeout = Duration::from_secs(u64::from(n.clamp(1, 30)));
                            }
                            ("attempts", Some(n)) => c.attempts = n.clamp(1, 5) as u8,
                            ("rotate", _) => c.rotate = true,
                            ("edns0", _) => c.edns0 = true,
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        c
    }

    /// The names to try for `name`, in order (resolv.conf(5)'s search rules):
    /// a name ending in a dot is only itself; a name with at least `ndots` dots
    /// is tried as is first, then with each search domain; otherwise with each
    /// search domain first, then as is.
    #[must_use]
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(abs) = name.strip_suffix('.') {
            return vec![abs.to_string()];
        }
        let with = |d: &String| format!("{name}.{d}");
        let dots = name.bytes().filter(|b| *b == b'.').count();
        let mut out = Vec::with_capacity(self.search.len() + 1);
        if dots >= usize::from(self.ndots) {
            out.push(name.to_string());
            out.extend(self.search.iter().map(with));
        } else {
            out.extend(self.search.iter().map(with));
            out.push(name.to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_typical_file() {
        let c = ResolvConf::parse(
            "# generated\n\
             nameserver 10.0.0.2\n\
             nameserver fe80::1%eth0   # a comment\n\
             nameserver not-an-ip\n\
             domain old.example\n\
             search corp.example. example.com\n\
             options ndots:2 timeout:3 attempts:4 rotate edns0 bogus:1 ndots:x\n\
             ; another comment\n\
             sortlist 10.0.0.0\n",
        );
        assert_eq!(
            c.nameservers,
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(c.search, ["corp.example", "example.com"]);
        assert_eq!(c.ndots, 2);
        assert_eq!(c.timeout, Duration::from_secs(3));
        assert_eq!(c.attempts, 4);
        assert!(c.rotate && c.edns0);
    }

    #[test]
    fn limits_and_defaults() {
        let c = ResolvConf::parse(
            "nameserver 1.1.1.1\nnameserver 1.1.1.2\nnameserver 1.1.1.3\nnameserver 1.1.1.4\n\
             options ndots:99 timeout:0 attempts:100\n",
        );
        assert_eq!(c.nameservers.len(), 3, "glibc keeps three");
        assert_eq!((c.ndots, c.attempts), (15, 5));
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(ResolvConf::parse(""), ResolvConf::default());
    }

    #[test]
    fn search_candidates() {
        let c = ResolvConf::parse("search a.test b.test\noptions ndots:1\n");
        assert_eq!(c.candidates("host"), ["host.a.test", "host.b.test", "host"]);
        assert_eq!(
            c.candidates("www.x"),
            ["www.x", "www.x.a.test", "www.x.b.test"]
        );
        assert_eq!(c.candidates("abs.example."), ["abs.example"]);
    }

    proptest! {
        #[test]
        fn never_panics_and_respects_limits(text in "\\PC{0,400}") {
            let c = ResolvConf::parse(&text);
            prop_assert!(c.nameservers.len() <= MAX_NAMESERVERS);
            prop_assert!(c.search.len() <= MAX_SEARCH);
            prop_assert!(c.ndots <= 15 && (1..=5).contains(&c.attempts));
        }
    }
}
