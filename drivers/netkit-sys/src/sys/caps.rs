//! What this machine can do, probed once at run time by real use rather than
//! by a setsockopt that a sandbox may accept and ignore.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::OnceLock;

/// Capabilities the drivers (and the protocols above them) adapt to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Caps {
    /// The kernel routes to a global IPv6 address (an RFC 6724-style hint:
    /// prefer IPv6 answers only when this holds). Probed by connecting a UDP
    /// socket to a global address, which consults the routing table and sends
    /// nothing.
    pub global_ipv6_route: bool,
    /// The same for IPv4.
    pub global_ipv4_route: bool,
    /// IPv6 answers sort before IPv4 ones, as getaddrinfo's RFC 6724 rules
    /// put them on this machine: the source address the kernel picks for a
    /// global IPv6 destination is native global unicast. A ULA or
    /// link-local-only host (a default route via `fd00::1` is common in
    /// containers) or a 6to4/Teredo one sorts IPv4 first: the source's label
    /// does not match a global destination's, while IPv4's does.
    pub prefer_ipv6: bool,
    /// IPv6 sockets can be made and bound on the loopback interface.
    pub ipv6_loopback: bool,
    /// Two listeners can share a port with `SO_REUSEPORT` (really bound).
    pub reuse_port: bool,
}

/// The machine's capabilities, probed on the first call.
pub fn caps() -> Caps {
    static CAPS: OnceLock<Caps> = OnceLock::new();
    *CAPS.get_or_init(probe)
}

fn routes_to(target: SocketAddr) -> bool {
    let any: SocketAddr = if target.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    UdpSocket::bind(any).and_then(|s| s.connect(target)).is_ok()
}

/// The source address the kernel picks for `target` (nothing is sent).
fn source_for(target: SocketAddr) -> Option<SocketAddr> {
    let any: SocketAddr = if target.is_ipv6() {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any).ok()?;
    s.connect(target).ok()?;
    s.local_addr().ok()
}

/// Native global unicast in RFC 6724's default policy table: in 2000::/3,
/// outside 6to4 (2002::/16) and Teredo (2001::/32), which have labels of
/// their own.
fn native_global_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    (s[0] & 0xe000) == 0x2000 && s[0] != 0x2002 && !(s[0] == 0x2001 && s[1] == 0)
}

fn reuse_port_works() -> bool {
    let make = |port: u16| -> std::io::Result<socket2::Socket> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        s.set_reuse_port(true)?;
        s.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
        s.listen(1)?;
        Ok(s)
    };
    let Ok(first) = make(0) else { return false };
    let Some(port) = first.local_addr().ok().and_then(|a| a.as_socket()) else {
        return false;
    };
    make(port.port()).is_ok()
}

fn probe() -> Caps {
    Caps {
        // Well-known anycast resolvers; nothing is sent to them.
        global_ipv6_route: routes_to("[2001:4860:4860::8888]:53".parse().expect("literal")),
        global_ipv4_route: routes_to("8.8.8.8:53".parse().expect("literal")),
        prefer_ipv6: matches!(
            source_for("[2001:4860:4860::8888]:53".parse().expect("literal")),
            Some(SocketAddr::V6(a)) if native_global_v6(*a.ip())
        ),
        ipv6_loopback: UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok(),
        reuse_port: reuse_port_works(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn probes_answer_and_agree_with_themselves() {
        let c = super::caps();
        assert_eq!(c, super::caps());
        // Linux has had SO_REUSEPORT since 3.9.
        assert!(c.reuse_port);
        assert!(!c.prefer_ipv6 || c.global_ipv6_route);
    }

    #[test]
    fn only_native_global_sources_prefer_ipv6() {
        let native = |s: &str| super::native_global_v6(s.parse().expect("address"));
        assert!(native("2a00:1450:4001::1"));
        assert!(native("2001:db8::5"));
        assert!(!native("fd00::2"), "ULA");
        assert!(!native("fe80::1"), "link-local");
        assert!(!native("2002:c000:204::1"), "6to4");
        assert!(!native("2001:0:53aa:64c::1"), "Teredo");
        assert!(!native("::1"));
        assert!(!native("::ffff:192.0.2.1"));
    }
}
