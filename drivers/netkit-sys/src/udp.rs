//! What both drivers' UDP sockets (Bun's `udpSocket`) share above the
//! syscall shim: the options ([`UdpOptions`]), binding and connecting, the
//! `sendMany` list decoded and carried out (netkit-udp's plan and `Sender`
//! over [`sys::udp::carry_out`](crate::sys::udp::carry_out)), and every
//! socket option with Bun's validation and error messages (`EINVAL:
//! addMembership: ...`), as safe functions over a `&std::net::UdpSocket`.
//! A driver adds only its own readiness (the loop's registration, or
//! `async-io`) and its closed state.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

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
    .map_err(|e| {
        Error::os(
            "EINVAL",
            e.to_string().trim_start_matches("EINVAL: ").to_owned(),
        )
    })
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

/// `setMulticastInterface`: an IPv4 interface address.
pub fn set_multicast_interface(sock: &UdpSocket, iface: &str) -> Result<(), Error> {
    let a = ipv4(iface, "setMulticastInterface")?;
    opt(
        "setMulticastInterface",
        socket2::SockRef::from(sock).set_multicast_if_v4(&a),
    )
}

/// `addMembership(group, iface?)` (IPv4 groups; the interface address
/// defaults to any).
pub fn add_membership(sock: &UdpSocket, group: &str, iface: Option<&str>) -> Result<(), Error> {
    const WHAT: &str = "addMembership";
    match parse_group(group, iface, WHAT)? {
        (IpAddr::V4(g), i) => opt(WHAT, sock.join_multicast_v4(&g, &i)),
        (IpAddr::V6(g), _) => opt(WHAT, sock.join_multicast_v6(&g, 0)),
    }
}

/// `dropMembership(group, iface?)`.
pub fn drop_membership(sock: &UdpSocket, group: &str, iface: Option<&str>) -> Result<(), Error> {
    const WHAT: &str = "dropMembership";
    match parse_group(group, iface, WHAT)? {
        (IpAddr::V4(g), i) => opt(WHAT, sock.leave_multicast_v4(&g, &i)),
        (IpAddr::V6(g), _) => opt(WHAT, sock.leave_multicast_v6(&g, 0)),
    }
}

/// `addSourceSpecificMembership(source, group, iface?)` (IPv4).
pub fn add_source_specific_membership(
    sock: &UdpSocket,
    source: &str,
    group: &str,
    iface: Option<&str>,
) -> Result<(), Error> {
    const WHAT: &str = "addSourceSpecificMembership";
    let (s, g, i) = parse_ssm(source, group, iface, WHAT)?;
    opt(WHAT, socket2::SockRef::from(sock).join_ssm_v4(&s, &g, &i))
}

/// `dropSourceSpecificMembership(source, group, iface?)`.
pub fn drop_source_specific_membership(
    sock: &UdpSocket,
    source: &str,
    group: &str,
    iface: Option<&str>,
) -> Result<(), Error> {
    const WHAT: &str = "dropSourceSpecificMembership";
    let (s, g, i) = parse_ssm(source, group, iface, WHAT)?;
    opt(WHAT, socket2::SockRef::from(sock).leave_ssm_v4(&s, &g, &i))
}

fn parse_group(group: &str, iface: Option<&str>, what: &str) -> Result<(IpAddr, Ipv4Addr), Error> {
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
    let i = iface.map_or(Ok(Ipv4Addr::UNSPECIFIED), |s| ipv4(s, what))?;
    Ok((g, i))
}

fn parse_ssm(
    source: &str,
    group: &str,
    iface: Option<&str>,
    what: &str,
) -> Result<(Ipv4Addr, Ipv4Addr, Ipv4Addr), Error> {
    let s = ipv4(source, what)?;
    let (g, i) = parse_group(group, iface, what)?;
    let IpAddr::V4(g) = g else {
        return Err(Error::os("EINVAL", format!("{what}: IPv4 groups only")));
    };
    Ok((s, g, i))
}
