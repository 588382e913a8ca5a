//! What both drivers' UDP sockets (Bun's `udpSocket`) share above the
//! syscall shim: the options ([`UdpOptions`]), binding and connecting, the
//! `sendMany` list decoded and carried out (netkit-udp's plan and `Sender`
//! over [`sys::udp::carry_out`](crate::sys::udp::carry_out)), and every
//! socket option with Bun's validation and error messages (`EINVAL:
//! addMembership: ...`), as safe functions over a `&std::net::UdpSocket`.
//! A driver adds only its own readiness (the loop's registration, or
//! `async-io`) and its closed state.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use netkit_udp::Packet;
use netkit_udp::args::{Arg, Family, decode_connected, decode_unconnected, for_socket};
use netkit_udp::plan::{Limits, plan};
use netkit_udp::send::Sender;

use crate::sys::udp as shim;
use crate::{Error, os_error};

/// Where a UDP socket binds, and whom it is connected to.
#[derive(Debug, Clone)]
pub struct UdpOptions {
    /// The address to bind: an IP literal or a name (resolved once, through
    /// the driver's resolver).
    pub hostname: String,
    /// The port (0: any).
    pub port: u16,
    /// Connect to this host and port (a name is resolved once); a connected
    /// socket sends without a destination and hears only that peer.
    pub connect: Option<(String, u16)>,
}

impl UdpOptions {
    /// Binds `hostname:port`, unconnected.
    #[must_use]
    pub fn new(hostname: impl Into<String>, port: u16) -> Self {
        Self {
            hostname: hostname.into(),
            port,
            connect: None,
        }
    }

    /// These options, connected to `host:port`.
    #[must_use]
    pub fn connect(mut self, host: impl Into<String>, port: u16) -> Self {
        self.connect = Some((host.into(), port));
        self
    }
}

/// The family of the socket's bound address.
#[must_use]
pub fn family_of(sock: &UdpSocket) -> Family {
    match sock.local_addr() {
        Ok(SocketAddr::V6(_)) => Family::V6,
        _ => Family::V4,
    }
}

/// The address to bind among a bind host's addresses: the first
/// (`ENOTFOUND` when there is none).
pub fn pick_bind(host: &str, addrs: &[IpAddr]) -> Result<IpAddr, Error> {
    crate::resolve::first_address(host, addrs)
}

/// The peer to connect to among a connect host's addresses, for a socket
/// bound to `bind`: the first of the socket's family (an IPv6 socket takes
/// an IPv4 address, mapped, when the host has no IPv6 one); `ENOTFOUND`
/// when there is none, `EAFNOSUPPORT` when only the other family is there.
pub fn pick_peer(bind: IpAddr, host: &str, addrs: &[IpAddr]) -> Result<IpAddr, Error> {
    let same = addrs.iter().find(|a| a.is_ipv4() == bind.is_ipv4());
    match (same, addrs.first()) {
        (Some(a), _) => Ok(*a),
        (None, Some(a)) if bind.is_ipv6() => Ok(*a),
        (None, Some(_)) => Err(Error::os(
            "EAFNOSUPPORT",
            format!("connect {host}: no IPv4 address for an IPv4 socket"),
        )),
        (None, None) => crate::resolve::first_address(host, addrs),
    }
}

/// Binds `ip:opts.port` and, when `opts` connect, connects to `peer` at
/// their port (an IPv4 peer of an IPv6 socket as a mapped address);
/// non-blocking. The names were resolved by the caller. Returns the socket
/// and the peer it is connected to.
pub fn bind(
    opts: &UdpOptions,
    ip: IpAddr,
    peer: Option<IpAddr>,
) -> Result<(UdpSocket, Option<SocketAddr>), Error> {
    let at = SocketAddr::new(ip, opts.port);
    let sock = UdpSocket::bind(at).map_err(|e| os_error(&e, format!("bind {at}")))?;
    let connected = match (&opts.connect, peer) {
        (Some((_, port)), Some(peer_ip)) => {
            let mut peer = SocketAddr::new(peer_ip, *port);
            if let (IpAddr::V6(_), SocketAddr::V4(v4)) = (ip, peer) {
                peer = SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), *port);
            }
            sock.connect(peer)
                .map_err(|e| os_error(&e, format!("connect {peer}")))?;
            Some(peer)
        }
        _ => None,
    };
    sock.set_nonblocking(true)
        .map_err(|e| os_error(&e, "bind"))?;
    Ok((sock, connected))
}

/// The one datagram of Bun's `send(data, port, addr)` on an unconnected
/// socket (`EINVAL` on a connected one, or for a destination of the other
/// family).
pub fn packet_to<'a>(
    sock: &UdpSocket,
    connected: bool,
    data: &'a [u8],
    to: SocketAddr,
) -> Result<Packet<'a>, Error> {
    if connected {
        return Err(Error::os(
            "EINVAL",
            "send: a connected socket takes no destination",
        ));
    }
    let dest = for_socket(to, family_of(sock))
        .ok_or_else(|| Error::os("EINVAL", format!("send: {to} is IPv6, the socket IPv4")))?;
    Ok(Packet {
        data,
        to: Some(dest),
    })
}

/// Bun's `sendMany` list decoded for this socket: `[data, port, addr, ...]`
/// unconnected, `[data, ...]` connected; `EINVAL` naming the bad entry.
pub fn decode<'a>(
    sock: &UdpSocket,
    connected: bool,
    list: &[Arg<'a>],
) -> Result<Vec<Packet<'a>>, Error> {
    if connected {
        decode_connected(list)
    } else {
        decode_unconnected(list, family_of(sock))
    }
    .map_err(|e| Error::os(e.code(), e.to_string()))
}

/// Plans `packets` (GSO where [`gso_works`](shim::gso_works)) and carries
/// the plan out on `sock` now, never blocking: Bun's count of what the
/// kernel accepted. Fewer than given: `sender` owes a drain once the socket
/// is writable ([`Sender::wants_write`]).
pub fn send_packets(
    sock: &UdpSocket,
    sender: &mut Sender,
    packets: &[Packet<'_>],
) -> Result<usize, Error> {
    let limits = Limits {
        gso: shim::gso_works(),
        ..Limits::default()
    };
    sender.start(plan(packets, &limits));
    shim::carry_out(sock, packets, sender, None).map_err(|e| os_error(&e, "send"))
}

fn opt(what: &str, r: io::Result<()>) -> Result<(), Error> {
    r.map_err(|e| os_error(&e, what.to_owned()))
}

fn ipv4(s: &str, what: &str) -> Result<Ipv4Addr, Error> {
    s.parse()
        .map_err(|_| Error::os("EINVAL", format!("{what}: {s:?} is not an IPv4 address")))
}

/// node's `setSendBufferSize` (`SO_SNDBUF`; the kernel doubles it for
/// its bookkeeping and enforces a floor).
pub fn set_send_buffer_size(sock: &UdpSocket, bytes: usize) -> Result<(), Error> {
    opt(
        "setSendBufferSize",
        socket2::SockRef::from(sock).set_send_buffer_size(bytes),
    )
}

/// node's `setRecvBufferSize` (`SO_RCVBUF`).
pub fn set_recv_buffer_size(sock: &UdpSocket, bytes: usize) -> Result<(), Error> {
    opt(
        "setRecvBufferSize",
        socket2::SockRef::from(sock).set_recv_buffer_size(bytes),
    )
}

/// `setBroadcast`.
pub fn set_broadcast(sock: &UdpSocket, on: bool) -> Result<(), Error> {
    opt("setBroadcast", sock.set_broadcast(on))
}

/// `setTTL` (the unicast hop limit).
pub fn set_ttl(sock: &UdpSocket, ttl: u32) -> Result<(), Error> {
    let s = socket2::SockRef::from(sock);
    let r = match family_of(sock) {
        Family::V4 => s.set_ttl_v4(ttl),
        Family::V6 => s.set_unicast_hops_v6(ttl),
    };
    opt("setTTL", r)
}

/// `setMulticastTTL`.
pub fn set_multicast_ttl(sock: &UdpSocket, ttl: u32) -> Result<(), Error> {
    let s = socket2::SockRef::from(sock);
    let r = match family_of(sock) {
        Family::V4 => s.set_multicast_ttl_v4(ttl),
        Family::V6 => s.set_multicast_hops_v6(ttl),
    };
    opt("setMulticastTTL", r)
}

/// `setMulticastLoopback`.
pub fn set_multicast_loopback(sock: &UdpSocket, on: bool) -> Result<(), Error> {
    let s = socket2::SockRef::from(sock);
    let r = match family_of(sock) {
        Family::V4 => s.set_multicast_loop_v4(on),
        Family::V6 => s.set_multicast_loop_v6(on),
    };
    opt("setMulticastLoopback", r)
}

/// `setMulticastInterface`: on an IPv4 socket an interface address, on an
/// IPv6 socket an interface (an index, a name, or node's `::%name` /
/// `::%index` form; `::` alone is the default interface).
pub fn set_multicast_interface(sock: &UdpSocket, iface: &str) -> Result<(), Error> {
    const WHAT: &str = "setMulticastInterface";
    let s = socket2::SockRef::from(sock);
    match family_of(sock) {
        Family::V4 => opt(WHAT, s.set_multicast_if_v4(&ipv4(iface, WHAT)?)),
        Family::V6 => opt(WHAT, s.set_multicast_if_v6(if_index_v6(iface, WHAT)?)),
    }
}

/// `addMembership(group, iface?)`: an IPv4 group with an interface address
/// (default any), or an IPv6 group with an interface as
/// [`set_multicast_interface`] takes it (default: by route).
pub fn add_membership(sock: &UdpSocket, group: &str, iface: Option<&str>) -> Result<(), Error> {
    const WHAT: &str = "addMembership";
    match parse_group(group, iface, WHAT)? {
        Iface::V4(g, i) => opt(WHAT, sock.join_multicast_v4(&g, &i)),
        Iface::V6(g, i) => opt(WHAT, sock.join_multicast_v6(&g, i)),
    }
}

/// `dropMembership(group, iface?)`.
pub fn drop_membership(sock: &UdpSocket, group: &str, iface: Option<&str>) -> Result<(), Error> {
    const WHAT: &str = "dropMembership";
    match parse_group(group, iface, WHAT)? {
        Iface::V4(g, i) => opt(WHAT, sock.leave_multicast_v4(&g, &i)),
        Iface::V6(g, i) => opt(WHAT, sock.leave_multicast_v6(&g, i)),
    }
}

/// `addSourceSpecificMembership(source, group, iface?)`: IPv4 (IGMPv3), or
/// IPv6 (MLDv2) on an IPv6 socket; source and group of one family
/// (`EINVAL` otherwise).
pub fn add_source_specific_membership(
    sock: &UdpSocket,
    source: &str,
    group: &str,
    iface: Option<&str>,
) -> Result<(), Error> {
    ssm(
        sock,
        true,
        source,
        group,
        iface,
        "addSourceSpecificMembership",
    )
}

/// `dropSourceSpecificMembership(source, group, iface?)`.
pub fn drop_source_specific_membership(
    sock: &UdpSocket,
    source: &str,
    group: &str,
    iface: Option<&str>,
) -> Result<(), Error> {
    ssm(
        sock,
        false,
        source,
        group,
        iface,
        "dropSourceSpecificMembership",
    )
}

/// A group with the interface to join it on.
enum Iface {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, u32),
}

/// An IPv6 interface: `None`, empty or an unscoped address (`::`) is 0 (by
/// route); a number is an index; a name (or the part after `%`) goes
/// through `if_nametoindex`.
fn if_index_v6(iface: &str, what: &str) -> Result<u32, Error> {
    let name = match iface.rsplit_once('%') {
        Some((_, scope)) => scope,
        None if iface.is_empty() || iface.parse::<Ipv6Addr>().is_ok() => return Ok(0),
        None => iface,
    };
    if let Ok(i) = name.parse::<u32>() {
        return Ok(i);
    }
    shim::if_index(name).map_err(|e| {
        let code = match e.raw_os_error() {
            Some(libc::EINVAL) => "EINVAL",
            _ => "ENODEV",
        };
        Error::os(
            code,
            format!("{what}: {iface:?} is not a network interface"),
        )
    })
}

fn parse_group(group: &str, iface: Option<&str>, what: &str) -> Result<Iface, Error> {
    let g: IpAddr = group
        .parse()
        .ok()
        .filter(IpAddr::is_multicast)
        .ok_or_else(|| {
            Error::os(
                "EINVAL",
                format!("{what}: {group:?} is not a multicast group"),
            )
        })?;
    match g {
        IpAddr::V4(g) => Ok(Iface::V4(
            g,
            iface.map_or(Ok(Ipv4Addr::UNSPECIFIED), |s| ipv4(s, what))?,
        )),
        IpAddr::V6(g) => Ok(Iface::V6(g, iface.map_or(Ok(0), |s| if_index_v6(s, what))?)),
    }
}

fn ssm(
    sock: &UdpSocket,
    join: bool,
    source: &str,
    group: &str,
    iface: Option<&str>,
    what: &str,
) -> Result<(), Error> {
    let s: IpAddr = source
        .parse()
        .map_err(|_| Error::os("EINVAL", format!("{what}: {source:?} is not an IP address")))?;
    let mismatch = |s: &str, g: &str| {
        Error::os(
            "EINVAL",
            format!("{what}: the source {source} is {s}, the group {group} {g}"),
        )
    };
    match (s, parse_group(group, iface, what)?) {
        (IpAddr::V4(s), Iface::V4(g, i)) => {
            let sock = socket2::SockRef::from(sock);
            let r = if join {
                sock.join_ssm_v4(&s, &g, &i)
            } else {
                sock.leave_ssm_v4(&s, &g, &i)
            };
            opt(what, r)
        }
        (IpAddr::V6(s), Iface::V6(g, i)) => {
            if family_of(sock) == Family::V4 {
                return Err(Error::os(
                    "EINVAL",
                    format!("{what}: an IPv6 group on an IPv4 socket"),
                ));
            }
            opt(what, shim::source_group_v6(sock, join, s, g, i))
        }
        (IpAddr::V4(_), Iface::V6(..)) => Err(mismatch("IPv4", "IPv6")),
        (IpAddr::V6(_), Iface::V4(..)) => Err(mismatch("IPv6", "IPv4")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(), Error>) -> String {
        match r {
            Ok(()) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    /// What loopback allows: IPv6 joins (any-source and source-specific)
    /// on `lo` by name, index or `::%lo`, left again; a leave of what is not
    /// joined is the kernel's EINVAL. (Delivery needs a multicast route,
    /// which `lo` lacks: the namespace tests cover it.)
    #[test]
    fn ipv6_joins_and_source_specific_joins_on_loopback() {
        if !crate::sys::caps::caps().ipv6_loopback {
            eprintln!("SKIPPED: no IPv6 loopback here");
            return;
        }
        for bind in ["[::1]:0", "[::]:0"] {
            let s = UdpSocket::bind(bind).unwrap();
            let lo = shim::if_index("lo").unwrap().to_string();
            for iface in [Some("lo"), Some(lo.as_str()), Some("::%lo")] {
                assert_eq!(
                    code(add_source_specific_membership(
                        &s,
                        "::1",
                        "ff3e::4321",
                        iface
                    )),
                    "ok",
                    "{bind} {iface:?}"
                );
                assert_eq!(
                    code(drop_source_specific_membership(
                        &s,
                        "::1",
                        "ff3e::4321",
                        iface
                    )),
                    "ok"
                );
                assert_eq!(code(add_membership(&s, "ff02::4321", iface)), "ok");
                assert_eq!(code(drop_membership(&s, "ff02::4321", iface)), "ok");
            }
            assert_eq!(
                code(drop_source_specific_membership(
                    &s,
                    "::1",
                    "ff3e::4321",
                    Some("lo")
                )),
                "EINVAL: dropSourceSpecificMembership"
            );
            for iface in ["lo", "::%1", "1", "::"] {
                assert_eq!(code(set_multicast_interface(&s, iface)), "ok", "{iface}");
            }
        }
    }

    #[test]
    fn bad_groups_sources_and_interfaces_are_errors() {
        let v4 = UdpSocket::bind("127.0.0.1:0").unwrap();
        const SSM: &str = "addSourceSpecificMembership";
        assert_eq!(
            code(add_source_specific_membership(
                &v4,
                "127.0.0.1",
                "ff3e::1",
                None
            )),
            format!("EINVAL: {SSM}: the source 127.0.0.1 is IPv4, the group ff3e::1 IPv6")
        );
        assert_eq!(
            code(add_source_specific_membership(
                &v4,
                "::1",
                "232.1.1.1",
                None
            )),
            format!("EINVAL: {SSM}: the source ::1 is IPv6, the group 232.1.1.1 IPv4")
        );
        assert_eq!(
            code(add_source_specific_membership(&v4, "::1", "ff3e::1", None)),
            format!("EINVAL: {SSM}: an IPv6 group on an IPv4 socket")
        );
        assert_eq!(
            code(add_source_specific_membership(
                &v4,
                "a.test",
                "232.1.1.1",
                None
            )),
            format!("EINVAL: {SSM}: \"a.test\" is not an IP address")
        );
        assert_eq!(
            code(add_source_specific_membership(
                &v4,
                "127.0.0.1",
                "10.0.0.1",
                None
            )),
            format!("EINVAL: {SSM}: \"10.0.0.1\" is not a multicast group")
        );
        assert_eq!(
            code(add_membership(&v4, "239.1.1.1", Some("lo"))),
            "EINVAL: addMembership: \"lo\" is not an IPv4 address"
        );
        assert_eq!(
            code(set_multicast_interface(&v4, "::1")),
            "EINVAL: setMulticastInterface: \"::1\" is not an IPv4 address"
        );
        if crate::sys::caps::caps().ipv6_loopback {
            let v6 = UdpSocket::bind("[::1]:0").unwrap();
            assert_eq!(
                code(set_multicast_interface(&v6, "nonesuch0")),
                "ENODEV: setMulticastInterface: \"nonesuch0\" is not a network interface"
            );
            assert_eq!(
                code(add_membership(&v6, "ff02::1", Some("::%nonesuch0"))),
                "ENODEV: addMembership: \"::%nonesuch0\" is not a network interface"
            );
            assert_eq!(
                code(add_source_specific_membership(
                    &v6,
                    "::1",
                    "ff3e::1",
                    Some("a\0b")
                )),
                format!("EINVAL: {SSM}: \"a\\0b\" is not a network interface")
            );
        }
    }
}
