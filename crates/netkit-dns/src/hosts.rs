//! `/etc/hosts` parsing and lookup.
//!
//! Format (hosts(5)): one entry per line, an IP address then one or more names,
//! separated by blanks; `#` starts a comment. Lines that do not start with a valid
//! address are skipped, as glibc does. Names match case-insensitively, and one
//! trailing dot on the query is ignored. Addresses keep file order.

use std::collections::HashMap;
use std::net::IpAddr;

use foldhash::fast::FixedState;

use crate::message::NameKey;

/// Most bytes of a name kept from the file; longer names are skipped (DNS caps names at 253).
const MAX_NAME: usize = 253;

/// A parsed hosts file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hosts {
    entries: Vec<(String, IpAddr)>,
    /// Name to its addresses, in file order, without duplicates (a lookup
    /// is one hash probe, not a scan of the file). The seed is fixed: the
    /// names come from the machine's own hosts file, not from a peer.
    index: HashMap<String, Vec<IpAddr>, FixedState>,
}

impl Hosts {
    /// Parses the text of a hosts file. Never fails: malformed lines are skipped.
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut entries = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut fields = line.split_ascii_whitespace();
            let Some(addr) = fields.next() else { continue };
            // A scoped IPv6 address (`fe80::1%eth0`) is kept without its scope.
            let addr = addr.split('%').next().unwrap_or(addr);
            let Ok(ip) = addr.parse::<IpAddr>() else {
                continue;
            };
            for name in fields {
                let name = name.strip_suffix('.').unwrap_or(name);
                if !name.is_empty() && name.len() <= MAX_NAME {
                    entries.push((name.to_ascii_lowercase(), ip));
                }
            }
        }
        let mut index: HashMap<String, Vec<IpAddr>, FixedState> = HashMap::default();
        for (name, ip) in &entries {
            let ips = index.entry(name.clone()).or_default();
            if !ips.contains(ip) {
                ips.push(*ip);
            }
        }
        Self { entries, index }
    }

    /// The addresses listed for `name`, in file order, without duplicates.
    pub fn lookup<'a>(&'a self, name: &str) -> impl Iterator<Item = IpAddr> + 'a {
        match NameKey::new(name) {
            Some(key) => self.listed(&key),
            None => &[],
        }
        .iter()
        .copied()
    }

    /// The addresses listed for a normalized name.
    pub(crate) fn listed(&self, key: &NameKey<'_>) -> &[IpAddr] {
        self.index.get(key.as_str()).map_or(&[], Vec::as_slice)
    }

    /// The first name listed for `ip` (for reverse lookups).
    #[must_use]
    pub fn reverse(&self, ip: IpAddr) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, a)| *a == ip)
            .map(|(n, _)| n.as_str())
    }

    /// Number of (name, address) pairs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file listed nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(text: &str, name: &str, expected: &[&str]) {
        let got: Vec<String> = Hosts::parse(text)
            .lookup(name)
            .map(|a| a.to_string())
            .collect();
        assert_eq!(got, expected, "lookup {name:?} in {text:?}");
    }

    #[test]
    fn lookups() {
        let etc = "# comment\n127.0.0.1\tlocalhost\n::1 localhost ip6-localhost\n\
                   10.0.0.1 a.test b.test # trailing\nnot-an-ip c.test\n\n   \n\
                   fe80::1%eth0 scoped\n127.0.0.1 localhost\n";
        check(etc, "localhost", &["127.0.0.1", "::1"]);
        check(etc, "LocalHost.", &["127.0.0.1", "::1"]);
        check(etc, "b.test", &["10.0.0.1"]);
        check(etc, "c.test", &[]);
        check(etc, "scoped", &["fe80::1"]);
        check(etc, "trailing", &[]);
        check("", "localhost", &[]);
        assert_eq!(
            Hosts::parse(etc).reverse("10.0.0.1".parse().unwrap()),
            Some("a.test")
        );
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*", name in "\\PC*") {
            let h = Hosts::parse(&text);
            let _ = h.lookup(&name).count();
        }

        #[test]
        fn finds_every_listed_name(
            names in proptest::collection::vec("[a-z][a-z0-9.-]{0,20}", 1..10),
            octet in 0u8..=255,
        ) {
            let text: String = names.iter().map(|n| format!("10.0.0.{octet} {n}\n")).collect();
            let h = Hosts::parse(&text);
            for n in &names {
                let ip: IpAddr = format!("10.0.0.{octet}").parse().unwrap();
                prop_assert_eq!(h.lookup(n).collect::<Vec<_>>(), vec![ip]);
            }
        }
    }
}
