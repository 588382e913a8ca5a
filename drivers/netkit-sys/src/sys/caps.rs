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
    }
}
