//! The connect plan's resolution step, answered by the drivers.
//!
//! Today a [`Resolver`] answers from the hosts file (`$NETKIT_HOSTS` or
//! `/etc/hosts`), read once and re-read only when it changes (its size or
//! modification time, checked at most once a second), never on every connect;
//! other names are `ENOTFOUND`. The DNS issue's resolver answers the same
//! requests later, asynchronously, without changing the plan.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use netkit_dns::hosts::Hosts;

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

/// Answers the connect plan's resolution requests (one per loop or runtime).
#[derive(Debug)]
pub struct Resolver {
    hosts: HostsFile,
}

impl Default for Resolver {
    fn default() -> Self {
        Self::new(HostsFile::from_env())
    }
}

impl Resolver {
    /// A resolver over this hosts file.
    pub fn new(hosts: HostsFile) -> Self {
        Self { hosts }
    }

    /// The addresses of `host`: an IP literal as itself, a hosts-file name in
    /// file order, `localhost` as 127.0.0.1 and ::1 when the file does not
    /// list it; `ENOTFOUND` otherwise (until the DNS resolver answers).
    pub fn lookup(&mut self, now: Instant, host: &str) -> Result<Vec<IpAddr>, Error> {
        if let Some(ip) = parse_ip(host) {
            return Ok(vec![ip]);
        }
        let mut addrs: Vec<IpAddr> = self.hosts.hosts(now).lookup(host).collect();
        if addrs.is_empty() && host.trim_end_matches('.').eq_ignore_ascii_case("localhost") {
            addrs = vec![Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()];
        }
        if addrs.is_empty() {
            return Err(Error::os("ENOTFOUND", format!("getaddrinfo {host}")));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_localhost_and_the_file_re_read_when_it_changes() {
        let dir = std::env::temp_dir().join(format!("netkit-hosts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("hosts");
        std::fs::write(&path, "10.1.2.3 a.test\n").unwrap();
        let mut r = Resolver::new(HostsFile::new(&path));
        let t = Instant::now();
        assert_eq!(
            r.lookup(t, "[::1]").unwrap(),
            vec![IpAddr::from(Ipv6Addr::LOCALHOST)]
        );
        assert_eq!(
            r.lookup(t, "a.test").unwrap(),
            vec!["10.1.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(r.lookup(t, "localhost").unwrap().len(), 2);
        let e = r.lookup(t, "b.test").unwrap_err();
        assert_eq!(e.to_string(), "ENOTFOUND: getaddrinfo b.test");
        // Changed: seen at the next check, not before.
        std::fs::write(&path, "10.9.9.9 b.test a.test\n").unwrap();
        assert!(
            r.lookup(t, "b.test").is_err(),
            "checked at most once a second"
        );
        let later = t + RECHECK;
        assert_eq!(
            r.lookup(later, "a.test").unwrap(),
            vec!["10.9.9.9".parse::<IpAddr>().unwrap()]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
