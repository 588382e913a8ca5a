//! Bun's `sendMany` argument list, decoded and checked.
//!
//! Destinations are IP literals only (Bun's `send` does no DNS, for
//! latency): a host name is an error naming its index. An IPv6 literal may
//! carry a numeric `%scope`.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::Packet;

/// One entry of the list, as the caller's value types give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg<'a> {
    /// A payload.
    Data(&'a [u8]),
    /// A port (any integer: range-checked here).
    Port(i64),
    /// An address (an IP literal is required).
    Addr(&'a str),
}

/// The socket's address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// An IPv4 socket: IPv4 destinations only.
    V4,
    /// An IPv6 socket: IPv6 destinations, and IPv4 ones as v4-mapped
    /// addresses (a dual-stack socket).
    V6,
}

/// A bad list, with the index of the offending entry. It displays as the
/// message (`sendMany: entry 2: ...`); [`code`](Error::code) is node's errno
/// name for all of them, `EINVAL`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An unconnected list's length is not a multiple of 3.
    #[error("sendMany: the list has {0} entries, not a multiple of 3 (data, port, address)")]
    Length(usize),
    /// Not a payload where one belongs.
    #[error("sendMany: entry {0} should be the data")]
    NotData(usize),
    /// Not a port, or out of range.
    #[error("sendMany: entry {index}: invalid port {port}")]
    Port {
        /// Where.
        index: usize,
        /// What was given.
        port: i64,
    },
    /// Not a port where one belongs.
    #[error("sendMany: entry {0} should be the port")]
    NotPort(usize),
    /// Not an IP literal (a host name, or junk).
    #[error("sendMany: entry {index}: invalid address {addr:?} (an IP literal is required)")]
    Addr {
        /// Where.
        index: usize,
        /// What was given.
        addr: String,
    },
    /// An IPv6 destination on an IPv4 socket.
    #[error("sendMany: entry {index}: {addr} is IPv6, the socket IPv4")]
    Family {
        /// Where.
        index: usize,
        /// The address.
        addr: IpAddr,
    },
    /// A destination given to a connected socket's list.
    #[error("sendMany: entry {0}: a connected socket takes no destination")]
    Connected(usize),
}

impl Error {
    /// node's errno name: `EINVAL` (a bad argument list).
    #[must_use]
    pub fn code(&self) -> &'static str {
        "EINVAL"
    }
}

/// An IP literal as Bun's `send` takes it: IPv4, or IPv6 with an optional
/// numeric `%scope`, with or without brackets. `None` for a host name.
#[must_use]
pub fn parse_ip(s: &str) -> Option<(IpAddr, u32)> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some((ip, 0));
    }
    let (ip, scope) = s.split_once('%')?;
    let ip: Ipv6Addr = ip.parse().ok()?;
    let scope: u32 = scope.parse().ok()?;
    Some((IpAddr::V6(ip), scope))
}

/// `ip:port` for a socket of `family` (an IPv4 address on an IPv6 socket
/// becomes v4-mapped).
fn destination(ip: IpAddr, scope: u32, port: u16, family: Family) -> Option<SocketAddr> {
    match (ip, family) {
        (IpAddr::V4(v4), Family::V4) => Some(SocketAddr::new(v4.into(), port)),
        (IpAddr::V4(v4), Family::V6) => Some(SocketAddr::V6(SocketAddrV6::new(
            v4.to_ipv6_mapped(),
            port,
            0,
            0,
        ))),
        (IpAddr::V6(v6), Family::V6) => Some(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope))),
        (IpAddr::V6(_), Family::V4) => None,
    }
}

/// Where a socket of `family` sends a datagram for `to` (an IPv4 address
/// on an IPv6 socket becomes v4-mapped; `None`: an IPv6 address on an IPv4
/// socket). For a destination the caller already holds as an address.
#[must_use]
pub fn for_socket(to: SocketAddr, family: Family) -> Option<SocketAddr> {
    let scope = match to {
        SocketAddr::V6(a) => a.scope_id(),
        SocketAddr::V4(_) => 0,
    };
    destination(to.ip(), scope, to.port(), family)
}

/// An unconnected socket's list: `[data, port, addr]` triples.
pub fn decode_unconnected<'a>(args: &[Arg<'a>], family: Family) -> Result<Vec<Packet<'a>>, Error> {
    if args.len() % 3 != 0 {
        return Err(Error::Length(args.len()));
    }
    let mut out = Vec::with_capacity(args.len() / 3);
    for (i, triple) in args.chunks_exact(3).enumerate() {
        let base = i * 3;
        let Arg::Data(data) = triple[0] else {
            return Err(Error::NotData(base));
        };
        let port = match triple[1] {
            Arg::Port(p) => u16::try_from(p)
                .ok()
                .filter(|p| *p != 0)
                .ok_or(Error::Port {
                    index: base + 1,
                    port: p,
                })?,
            _ => return Err(Error::NotPort(base + 1)),
        };
        let (ip, scope) = match triple[2] {
            Arg::Addr(a) => parse_ip(a).ok_or_else(|| Error::Addr {
                index: base + 2,
                addr: a.to_owned(),
            })?,
            _ => {
                return Err(Error::Addr {
                    index: base + 2,
                    addr: String::new(),
                });
            }
        };
        let to = destination(ip, scope, port, family).ok_or(Error::Family {
            index: base + 2,
            addr: ip,
        })?;
        out.push(Packet { data, to: Some(to) });
    }
    Ok(out)
}

/// A connected socket's list: payloads only.
pub fn decode_connected<'a>(args: &[Arg<'a>]) -> Result<Vec<Packet<'a>>, Error> {
    args.iter()
        .enumerate()
        .map(|(i, a)| match a {
            Arg::Data(data) => Ok(Packet { data, to: None }),
            _ => Err(Error::Connected(i)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_and_every_error() {
        let ok = [
            Arg::Data(b"a"),
            Arg::Port(53),
            Arg::Addr("127.0.0.1"),
            Arg::Data(b""),
            Arg::Port(65535),
            Arg::Addr("[::1]"),
        ];
        assert_eq!(
            decode_unconnected(&ok, Family::V4),
            Err(Error::Family {
                index: 5,
                addr: "::1".parse().unwrap()
            })
        );
        let v6 = decode_unconnected(&ok, Family::V6).unwrap();
        assert_eq!(
            v6[0].to,
            Some("[::ffff:127.0.0.1]:53".parse().unwrap()),
            "v4-mapped on a v6 socket"
        );
        assert_eq!(v6[1].to, Some("[::1]:65535".parse().unwrap()));
        assert_eq!(v6[1].data, b"", "an empty payload is a 0-byte datagram");
        let cases: &[(&[Arg<'_>], Error)] = &[
            (&[Arg::Data(b"a"), Arg::Port(1)], Error::Length(2)),
            (
                &[Arg::Port(1), Arg::Port(1), Arg::Addr("1.2.3.4")],
                Error::NotData(0),
            ),
            (
                &[Arg::Data(b"a"), Arg::Port(0), Arg::Addr("1.2.3.4")],
                Error::Port { index: 1, port: 0 },
            ),
            (
                &[Arg::Data(b"a"), Arg::Port(65536), Arg::Addr("1.2.3.4")],
                Error::Port {
                    index: 1,
                    port: 65536,
                },
            ),
            (
                &[Arg::Data(b"a"), Arg::Port(-1), Arg::Addr("1.2.3.4")],
                Error::Port { index: 1, port: -1 },
            ),
            (
                &[Arg::Data(b"a"), Arg::Addr("x"), Arg::Addr("1.2.3.4")],
                Error::NotPort(1),
            ),
            (
                &[Arg::Data(b"a"), Arg::Port(1), Arg::Addr("localhost")],
                Error::Addr {
                    index: 2,
                    addr: "localhost".into(),
                },
            ),
            (
                &[Arg::Data(b"a"), Arg::Port(1), Arg::Data(b"1.2.3.4")],
                Error::Addr {
                    index: 2,
                    addr: String::new(),
                },
            ),
        ];
        for (list, want) in cases {
            assert_eq!(
                decode_unconnected(list, Family::V6).as_ref(),
                Err(want),
                "{list:?}"
            );
        }
        assert_eq!(
            decode_connected(&[Arg::Data(b"x"), Arg::Data(b"y")])
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            decode_connected(&[Arg::Data(b"x"), Arg::Port(1)]),
            Err(Error::Connected(1))
        );
    }

    #[test]
    fn addresses_for_a_socket() {
        let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let v6: SocketAddr = "[fe80::1%3]:9".parse().unwrap();
        assert_eq!(for_socket(v4, Family::V4), Some(v4));
        assert_eq!(
            for_socket(v4, Family::V6),
            Some("[::ffff:127.0.0.1]:9".parse().unwrap())
        );
        assert_eq!(for_socket(v6, Family::V6), Some(v6), "the scope is kept");
        assert_eq!(for_socket(v6, Family::V4), None);
    }

    #[test]
    fn ip_literals_with_scopes() {
        assert_eq!(parse_ip("fe80::1%2"), Some(("fe80::1".parse().unwrap(), 2)));
        assert_eq!(
            parse_ip("[fe80::1%3]"),
            Some(("fe80::1".parse().unwrap(), 3))
        );
        assert_eq!(parse_ip("10.0.0.1%2"), None, "no scope on IPv4");
        assert_eq!(
            parse_ip("fe80::1%eth0"),
            None,
            "interface names need the OS"
        );
        assert_eq!(parse_ip("example.com"), None);
        let to = decode_unconnected(
            &[Arg::Data(b"a"), Arg::Port(5), Arg::Addr("fe80::1%7")],
            Family::V6,
        )
        .unwrap();
        match to[0].to {
            Some(SocketAddr::V6(a)) => assert_eq!(a.scope_id(), 7),
            other => panic!("{other:?}"),
        }
    }
}
