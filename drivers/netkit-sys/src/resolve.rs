//! Host-name resolution for the drivers: IP literals, then the hosts file.
//!
//! `localhost` and names in the hosts file resolve; any other name is `ENOTFOUND`
//! until the DNS resolver issue plugs `netkit-dns` in here. The hosts file is
//! `$NETKIT_HOSTS` or `/etc/hosts`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use netkit_dns::hosts::Hosts;

use crate::Error;

/// Parses an IP literal, accepting IPv6 with or without brackets (and a `%scope`
/// suffix, which is dropped).
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let h = h.split('%').next().unwrap_or(h);
    h.parse().ok()
}

/// Resolves `host` to socket addresses, IP literal or hosts-file name.
pub fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
    if let Some(ip) = parse_ip(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let path = std::env::var_os("NETKIT_HOSTS").unwrap_or_else(|| "/etc/hosts".into());
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let mut addrs: Vec<SocketAddr> = Hosts::parse(&text)
        .lookup(host)
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    if addrs.is_empty() && host.trim_end_matches('.').eq_ignore_ascii_case("localhost") {
        addrs = vec![
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port),
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), port),
        ];
    }
    if addrs.is_empty() {
        return Err(Error::Os {
            code: "ENOTFOUND",
            errno: None,
            message: format!("getaddrinfo {host}"),
        });
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_localhost() {
        assert_eq!(parse_ip("[::1]"), Some(Ipv6Addr::LOCALHOST.into()));
        assert_eq!(parse_ip("::1"), Some(Ipv6Addr::LOCALHOST.into()));
        assert_eq!(parse_ip("127.0.0.1"), Some(Ipv4Addr::LOCALHOST.into()));
        assert_eq!(parse_ip("fe80::1%lo"), Some("fe80::1".parse().unwrap()));
        assert_eq!(parse_ip("example.com"), None);
        assert!(!resolve("localhost", 80).unwrap().is_empty());
        let err = resolve("no-such-host.invalid", 80).unwrap_err();
        assert_eq!(err.code(), "ENOTFOUND");
    }
}
