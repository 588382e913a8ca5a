//! UDP batch syscalls: `sendmmsg`, `sendmsg` with a `UDP_SEGMENT` control
//! message (GSO), and `recvmmsg`, each with a plain fallback, and the GSO
//! probe (a real two-segment send to ourselves: some sandboxes accept the
//! option and then refuse or ignore the send). Linux only; elsewhere every
//! call is the plain one.
#![allow(
    unsafe_code,
    reason = "sendmmsg, recvmmsg and control messages have no safe std or socket2 wrappers; each block states its contract"
)]

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// One datagram received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Its length (of the bytes that fit the buffer).
    pub len: usize,
    /// Who sent it.
    pub from: Option<SocketAddr>,
    /// It was longer than the buffer (the rest is lost, as the kernel does).
    pub truncated: bool,
}

/// Which kernel path carried a send, for reports (`netkit udp send -v`,
/// `cargo xtask demo`); the values index a tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// One `sendmsg` with `UDP_SEGMENT`.
    Gso = 0,
    /// `sendmmsg`.
    Mmsg = 1,
    /// One `send_to` per datagram.
    Plain = 2,
}

impl Path {
    /// The path that carries `batch` of a plan here: GSO for a GSO batch,
    /// else `sendmmsg`, or plain sends once the kernel refused it.
    #[must_use]
    pub fn of(batch: &netkit_udp::plan::Batch) -> Self {
        match batch {
            netkit_udp::plan::Batch::Gso { .. } => Self::Gso,
            netkit_udp::plan::Batch::Many { .. } if mmsg_works() => Self::Mmsg,
            netkit_udp::plan::Batch::Many { .. } => Self::Plain,
        }
    }
}

/// Set once `sendmmsg`/`recvmmsg` answered ENOSYS or EPERM (seccomp):
/// every later call goes the plain way.
static NO_MMSG: AtomicBool = AtomicBool::new(false);

/// Whether `sendmmsg`/`recvmmsg` are in use (false once the kernel refused
/// them and every call went the plain way).
#[must_use]
pub fn mmsg_works() -> bool {
    !NO_MMSG.load(Ordering::Relaxed)
}

fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::EPERM))
}

/// Whether a GSO send works here: probed once, by sending two 2-byte
/// segments in one call from one loopback socket to another and seeing both
/// arrive.
#[must_use]
pub fn gso_works() -> bool {
    static GSO: OnceLock<bool> = OnceLock::new();
    *GSO.get_or_init(probe_gso)
}

fn probe_gso() -> bool {
    round_trip(false, b"abcd", 2, &[b"ab", b"cd"])
}

/// One GSO send of `data` in `segment`-byte segments from one loopback
/// socket to another (with `UDP_GRO` on at the receiver when `gro`): true
/// when the reads, split at their segment size, are exactly `want`.
fn round_trip(gro: bool, data: &[u8], segment: u16, want: &[&[u8]]) -> bool {
    let (Ok(a), Ok(b)) = (
        UdpSocket::bind("127.0.0.1:0"),
        UdpSocket::bind("127.0.0.1:0"),
    ) else {
        return false;
    };
    let Ok(to) = b.local_addr() else {
        return false;
    };
    if (gro && !set_gro(&b))
        || send_gso(&a, data, segment, Some(to)).ok() != Some(data.len())
        || b.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .is_err()
    {
        return false;
    }
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < want.len() {
        match recv_gro(&b, &mut buf) {
            Ok(r) if !r.truncated => {
                got.extend(netkit_udp::recv::split(&buf[..r.len], r.segment).map(<[u8]>::to_vec));
            }
            _ => return false,
        }
    }
    got.iter().map(Vec::as_slice).eq(want.iter().copied())
}

/// Joins (`join`) or leaves the IPv6 source-specific group `group` from
/// `source` on interface `ifindex` (0: the kernel picks one by route), with
/// MLDv2's `MCAST_JOIN_SOURCE_GROUP` / `MCAST_LEAVE_SOURCE_GROUP` on an IPv6
/// socket (socket2 has IPv4 SSM only). Not Linux: `ENOSYS`.
#[cfg(target_os = "linux")]
pub fn source_group_v6(
    sock: &UdpSocket,
    join: bool,
    source: std::net::Ipv6Addr,
    group: std::net::Ipv6Addr,
    ifindex: u32,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    fn storage(ip: std::net::Ipv6Addr) -> libc::sockaddr_storage {
        // SAFETY: sockaddr_storage is plain C data; all-zero is valid.
        let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: sockaddr_storage is large and aligned enough for a
        // sockaddr_in6 (that is its purpose); the zeroed bytes are a valid
        // sockaddr_in6 that we fill in.
        let a = unsafe { &mut *std::ptr::from_mut(&mut st).cast::<libc::sockaddr_in6>() };
        a.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        a.sin6_addr.s6_addr = ip.octets();
        st
    }
    let req = libc::group_source_req {
        gsr_interface: ifindex,
        gsr_group: storage(group),
        gsr_source: storage(source),
    };
    let name = if join {
        libc::MCAST_JOIN_SOURCE_GROUP
    } else {
        libc::MCAST_LEAVE_SOURCE_GROUP
    };
    // SAFETY: `req` is a live, initialised group_source_req and the length
    // passed is its size; the kernel only reads it.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IPV6,
            name,
            std::ptr::from_ref(&req).cast(),
            size_of::<libc::group_source_req>() as libc::socklen_t,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Without MLDv2 source joins here: `ENOSYS`.
#[cfg(not(target_os = "linux"))]
pub fn source_group_v6(
    _sock: &UdpSocket,
    _join: bool,
    _source: std::net::Ipv6Addr,
    _group: std::net::Ipv6Addr,
    _ifindex: u32,
) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// The index of the network interface named `name` (`if_nametoindex`);
/// `ENODEV` when there is none, `EINVAL` for a name with a NUL byte.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated string alive for the call; the
    // function only reads it.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(i)
    }
}

/// Sends `packets` (payload, destination; `None` on a connected socket) in
/// one `sendmmsg` call (at most 1,024); returns how many the kernel took.
/// Without `sendmmsg`, one `send_to` each (stopping at the first that would
/// block, after at least one was sent).
pub fn send_many(sock: &UdpSocket, packets: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize> {
    if packets.is_empty() {
        return Ok(0);
    }
    if !NO_MMSG.load(Ordering::Relaxed) {
        match sendmmsg(sock, packets) {
            Err(e) if is_missing(&e) => NO_MMSG.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
    send_plain(sock, packets)
}

fn send_plain(sock: &UdpSocket, packets: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize> {
    for (i, (data, to)) in packets.iter().enumerate() {
        let r = match to {
            Some(to) => sock.send_to(data, to),
            None => sock.send(data),
        };
        match r {
            Ok(_) => {}
            Err(e) if i > 0 && e.kind() == io::ErrorKind::WouldBlock => return Ok(i),
            Err(e) => return Err(e),
        }
    }
    Ok(packets.len())
}

#[cfg(target_os = "linux")]
fn sendmmsg(sock: &UdpSocket, packets: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let n = packets.len().min(1024);
    let addrs: Vec<Option<socket2::SockAddr>> = packets[..n]
        .iter()
        .map(|(_, to)| to.map(socket2::SockAddr::from))
        .collect();
    let mut iovs: Vec<libc::iovec> = packets[..n]
        .iter()
        .map(|(data, _)| libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(n);
    for (i, addr) in addrs.iter().enumerate() {
        // SAFETY: mmsghdr is plain C data; all-zero is a valid value (null
        // pointers, zero lengths and flags).
        let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
        // SAFETY: `i < n == iovs.len()`: the pointer stays inside `iovs`,
        // which outlives the call and is not moved meanwhile.
        m.msg_hdr.msg_iov = unsafe { iovs.as_mut_ptr().add(i) };
        m.msg_hdr.msg_iovlen = 1;
        if let Some(a) = addr {
            m.msg_hdr.msg_name = a.as_ptr().cast_mut().cast();
            m.msg_hdr.msg_namelen = a.len();
        }
        msgs.push(m);
    }
    // SAFETY: `msgs` holds `n` initialised headers whose iovecs and names
    // point into `iovs`, `addrs` and the callers' payloads, all alive and
    // unmoved until the call returns; the kernel only reads them (and writes
    // each `msg_len`).
    let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), n as libc::c_uint, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

#[cfg(not(target_os = "linux"))]
fn sendmmsg(_sock: &UdpSocket, _packets: &[(&[u8], Option<SocketAddr>)]) -> io::Result<usize> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Sends `data` as datagrams of `segment` bytes (the last may be shorter)
/// in one GSO call; returns the bytes the kernel took (all of them, or an
/// error). Callers check [`gso_works`] first.
#[cfg(target_os = "linux")]
pub fn send_gso(
    sock: &UdpSocket,
    data: &[u8],
    segment: u16,
    to: Option<SocketAddr>,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let addr = to.map(socket2::SockAddr::from);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    // Room for one control message of a u16, 8-byte aligned.
    let mut control = [0u64; 4];
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(size_of::<u16>() as u32) } as usize;
    debug_assert!(space <= size_of_val(&control));
    // SAFETY: msghdr is plain C data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if let Some(a) = &addr {
        msg.msg_name = a.as_ptr().cast_mut().cast();
        msg.msg_namelen = a.len();
    }
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `control`, at least `space` bytes and
    // aligned for cmsghdr, so the first header fits; CMSG_DATA of it has
    // room for the u16 (CMSG_LEN(2) <= space), written unaligned.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_UDP;
        (*c).cmsg_type = libc::UDP_SEGMENT;
        (*c).cmsg_len = libc::CMSG_LEN(size_of::<u16>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), segment);
    }
    // SAFETY: every pointer in `msg` (iov, name, control) refers to live,
    // unmoved memory for the length of the call; the kernel only reads it.
    let r = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// Without GSO: an error, so that [`gso_works`] is false.
#[cfg(not(target_os = "linux"))]
pub fn send_gso(
    _sock: &UdpSocket,
    _data: &[u8],
    _segment: u16,
    _to: Option<SocketAddr>,
) -> io::Result<usize> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Carries out the plan `sender` was started with over `packets` on `sock`
/// until it is done or the kernel has no room (then `sender` owes a drain).
/// `gso` holds each batch's payloads concatenated, built ahead by a caller
/// that sends the same plan again and again (`None`: built here). Returns
/// the datagrams accepted; an error of the call before any was accepted is
/// `Err` (after some, the count stands and the error is the rest's).
pub fn carry_out(
    sock: &UdpSocket,
    packets: &[netkit_udp::Packet<'_>],
    sender: &mut netkit_udp::send::Sender,
    gso: Option<&[Option<Vec<u8>>]>,
) -> io::Result<usize> {
    use netkit_udp::plan::Batch;
    use netkit_udp::send::{Outcome, is_backpressure};
    let mut i = 0;
    while let Some(b) = sender.poll_batch() {
        let r = match b {
            Batch::Gso { count, segment, .. } => {
                let to = packets[b.range().start].to;
                let seg = u16::try_from(segment).unwrap_or(u16::MAX);
                match gso.and_then(|g| g.get(i)).and_then(Option::as_ref) {
                    Some(data) => send_gso(sock, data, seg, to),
                    None => {
                        let data: Vec<u8> = packets[b.range()]
                            .iter()
                            .flat_map(|p| p.data)
                            .copied()
                            .collect();
                        send_gso(sock, &data, seg, to)
                    }
                }
                .map(|_| count)
            }
            Batch::Many { .. } => {
                let list: Vec<(&[u8], Option<SocketAddr>)> =
                    packets[b.range()].iter().map(|p| (p.data, p.to)).collect();
                send_many(sock, &list)
            }
        };
        let outcome = match r {
            Ok(n) => Outcome::Sent(n),
            Err(e)
                if is_backpressure(super::errno::errno_name(&e))
                    || e.kind() == io::ErrorKind::Interrupted =>
            {
                Outcome::Full
            }
            Err(e) if sender.accepted() == 0 => return Err(e),
            Err(_) => return Ok(sender.accepted()),
        };
        sender.handle_outcome(outcome);
        i += 1;
    }
    Ok(sender.accepted())
}

/// Receives up to `bufs.len()` datagrams in one `recvmmsg` call (the socket's
/// blocking mode and timeout apply to the first; the rest are taken only if
/// already queued). Without `recvmmsg`, one `recv_from`.
pub fn recv_many(
    sock: &UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut Vec<Received>,
) -> io::Result<usize> {
    out.clear();
    if bufs.is_empty() {
        return Ok(0);
    }
    if !NO_MMSG.load(Ordering::Relaxed) {
        match recvmmsg(sock, bufs, out) {
            Err(e) if is_missing(&e) => NO_MMSG.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
    let (n, from) = sock.recv_from(&mut bufs[0])?;
    out.push(Received {
        len: n,
        from: Some(from),
        // recv_from cannot tell; recvmmsg's MSG_TRUNC can.
        truncated: false,
    });
    Ok(1)
}

/// `recvmmsg` without GRO: the GRO form (a socket without `UDP_GRO` never
/// gets its control message), each buffer one datagram.
#[cfg(target_os = "linux")]
fn recvmmsg(sock: &UdpSocket, bufs: &mut [Vec<u8>], out: &mut Vec<Received>) -> io::Result<usize> {
    let mut got = Vec::with_capacity(bufs.len().min(1024));
    let n = recvmmsg_gro(sock, bufs, &mut got)?;
    out.extend(got.into_iter().map(|r| Received {
        len: r.len,
        from: r.from,
        truncated: r.truncated,
    }));
    Ok(n)
}

#[cfg(not(target_os = "linux"))]
fn recvmmsg(
    _sock: &UdpSocket,
    _bufs: &mut [Vec<u8>],
    _out: &mut Vec<Received>,
) -> io::Result<usize> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Receives one datagram into `buf`, telling truncation (Linux's
/// `MSG_TRUNC` reports the datagram's real length); elsewhere a plain
/// `recv_from`, which cannot tell.
pub fn recv_one(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<Received> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: sockaddr_storage is plain C data; all-zero is valid.
        let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: `buf` is valid for `buf.len()` bytes of writes and `name`
        // for `len`; the kernel writes at most that much into each.
        let r = unsafe {
            libc::recvfrom(
                sock.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                std::ptr::from_mut(&mut name).cast(),
                &mut len,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = r as usize;
        Ok(Received {
            len: n.min(buf.len()),
            from: to_socket_addr(&name),
            truncated: n > buf.len(),
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (n, from) = sock.recv_from(buf)?;
        Ok(Received {
            len: n,
            from: Some(from),
            truncated: false,
        })
    }
}

#[cfg(target_os = "linux")]
fn to_socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in;
            // sockaddr_storage is large and aligned enough for it.
            let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)).into(),
                u16::from_be(a.sin_port),
            ))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// One receive that may hold several datagrams coalesced by GRO.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroReceived {
    /// The bytes received (one datagram, or several of `segment` bytes
    /// each but the last).
    pub len: usize,
    /// Who sent them.
    pub from: Option<SocketAddr>,
    /// The `UDP_GRO` segment size when the kernel coalesced (0: one
    /// datagram); split with `netkit_udp::recv::split`.
    pub segment: usize,
    /// The buffer was too small (the rest is lost).
    pub truncated: bool,
}

/// Asks the kernel to coalesce datagrams from one sender (`UDP_GRO`);
/// `true` when the socket now may receive coalesced buffers, which must
/// then be read with [`recv_gro`]. Only when [`gro_works`].
pub fn enable_gro(sock: &UdpSocket) -> bool {
    gro_works() && set_gro(sock)
}

#[cfg(target_os = "linux")]
fn set_gro(sock: &UdpSocket) -> bool {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed; the kernel only
    // reads it.
    let r = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_GRO,
            std::ptr::from_ref(&on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    r == 0
}

#[cfg(not(target_os = "linux"))]
fn set_gro(_sock: &UdpSocket) -> bool {
    false
}

/// Whether GRO receive works here: probed once by a real round trip (a
/// receiver with `UDP_GRO` on gets a three-segment GSO send as one buffer
/// with its segment size, or as three datagrams; both are correct reads,
/// and anything else turns GRO off).
#[must_use]
pub fn gro_works() -> bool {
    static GRO: OnceLock<bool> = OnceLock::new();
    *GRO.get_or_init(probe_gro)
}

fn probe_gro() -> bool {
    gso_works() && round_trip(true, b"aabbc", 2, &[b"aa", b"bb", b"c"])
}

/// Receives one buffer into `buf` with `recvmsg`, reading the `UDP_GRO`
/// control message: one datagram, or several coalesced by GRO.
#[cfg(target_os = "linux")]
pub fn recv_gro(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<GroReceived> {
    use std::os::fd::AsRawFd;
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: sockaddr_storage is plain C data; all-zero is valid.
    let mut name: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // Room for a control message of an int, 8-byte aligned.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain C data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_name = std::ptr::from_mut(&mut name).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: every pointer in `msg` refers to live, unmoved memory of the
    // stated length for the length of the call; the kernel writes at most
    // that much into each.
    let r = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut segment = 0usize;
    // SAFETY: the kernel filled `msg.msg_control` with `msg_controllen`
    // bytes of well-formed control messages; CMSG_FIRSTHDR/CMSG_NXTHDR stay
    // inside them, and a UDP_GRO message carries an int, read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                segment = usize::try_from(v).unwrap_or(0);
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    let len = r as usize;
    Ok(GroReceived {
        len: len.min(buf.len()),
        from: to_socket_addr(&name),
        segment: if segment >= len { 0 } else { segment },
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
    })
}

/// Receives up to `bufs.len()` buffers (each one datagram, or several
/// coalesced by GRO) in one `recvmmsg` call, each with its `UDP_GRO`
/// segment size; the socket's blocking mode applies to the first only
/// (`MSG_WAITFORONE`). Without `recvmmsg`, one [`recv_gro`].
pub fn recv_many_gro(
    sock: &UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut Vec<GroReceived>,
) -> io::Result<usize> {
    out.clear();
    if bufs.is_empty() {
        return Ok(0);
    }
    if !NO_MMSG.load(Ordering::Relaxed) {
        match recvmmsg_gro(sock, bufs, out) {
            Err(e) if is_missing(&e) => NO_MMSG.store(true, Ordering::Relaxed),
            other => return other,
        }
    }
    out.push(recv_gro(sock, &mut bufs[0])?);
    Ok(1)
}

#[cfg(target_os = "linux")]
fn recvmmsg_gro(
    sock: &UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut Vec<GroReceived>,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let n = bufs.len().min(1024);
    let mut iovs: Vec<libc::iovec> = bufs[..n]
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: sockaddr_storage is plain C data; all-zero is valid.
    let mut names: Vec<libc::sockaddr_storage> = vec![unsafe { std::mem::zeroed() }; n];
    // Room for one int control message per buffer, 8-byte aligned.
    let mut controls: Vec<[u64; 4]> = vec![[0; 4]; n];
    let mut msgs: Vec<libc::mmsghdr> = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: plain C data, all-zero valid.
        let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
        // SAFETY: `i < n`, inside `iovs`, `names` and `controls`, which
        // outlive the call unmoved.
        unsafe {
            m.msg_hdr.msg_iov = iovs.as_mut_ptr().add(i);
            m.msg_hdr.msg_name = names.as_mut_ptr().add(i).cast();
            m.msg_hdr.msg_control = controls.as_mut_ptr().add(i).cast();
        }
        m.msg_hdr.msg_iovlen = 1;
        m.msg_hdr.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        m.msg_hdr.msg_controllen = size_of::<[u64; 4]>() as _;
        msgs.push(m);
    }
    // SAFETY: `n` initialised headers, each with one iovec over a live
    // buffer, a name buffer and a control buffer of their stated sizes;
    // the kernel writes at most that much into each.
    let r = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            n as libc::c_uint,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let r = r as usize;
    for (m, name) in msgs.iter().zip(&names).take(r) {
        let mut segment = 0usize;
        // SAFETY: the kernel filled this header's control buffer with
        // `msg_controllen` bytes of well-formed control messages;
        // CMSG_FIRSTHDR/CMSG_NXTHDR stay inside them, and a UDP_GRO message
        // carries an int, read unaligned.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&m.msg_hdr);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_UDP && (*c).cmsg_type == libc::UDP_GRO {
                    let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    segment = usize::try_from(v).unwrap_or(0);
                }
                c = libc::CMSG_NXTHDR(&m.msg_hdr, c);
            }
        }
        let len = m.msg_len as usize;
        out.push(GroReceived {
            len,
            from: to_socket_addr(name),
            segment: if segment >= len { 0 } else { segment },
            truncated: m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0,
        });
    }
    Ok(r)
}

#[cfg(not(target_os = "linux"))]
fn recvmmsg_gro(
    _sock: &UdpSocket,
    _bufs: &mut [Vec<u8>],
    _out: &mut Vec<GroReceived>,
) -> io::Result<usize> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

/// Without GRO: one plain receive.
#[cfg(not(target_os = "linux"))]
pub fn recv_gro(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<GroReceived> {
    let r = recv_one(sock, buf)?;
    Ok(GroReceived {
        len: r.len,
        from: r.from,
        segment: 0,
        truncated: r.truncated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GSO batch of equal segments and a shorter tail, received by a
    /// socket with GRO on, comes back as exactly those datagrams.
    #[test]
    fn gro_gives_back_the_datagrams_sent() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let on = enable_gro(&b);
        eprintln!("GSO {} GRO {}", gso_works(), gro_works());
        let want: Vec<Vec<u8>> = (0..20u8)
            .map(|i| vec![i; if i == 19 { 700 } else { 1200 }])
            .collect();
        let data: Vec<u8> = want.concat();
        if gso_works() {
            assert_eq!(send_gso(&a, &data, 1200, Some(to)).unwrap(), data.len());
        } else {
            for w in &want {
                a.send_to(w, to).unwrap();
            }
        }
        let mut buf = vec![0u8; 65_536];
        let mut got = Vec::new();
        let mut reads = 0;
        while got.len() < want.len() {
            let r = recv_gro(&b, &mut buf).unwrap();
            assert!(!r.truncated);
            assert_eq!(r.from, Some(a.local_addr().unwrap()));
            got.extend(netkit_udp::recv::split(&buf[..r.len], r.segment).map(<[u8]>::to_vec));
            reads += 1;
        }
        assert_eq!(got, want);
        if on {
            assert!(reads < want.len(), "GRO on, yet one read per datagram");
        }
        // The same through recvmmsg: two batches, in order.
        let data: Vec<u8> = want.concat();
        for _ in 0..2 {
            if gso_works() {
                send_gso(&a, &data, 1200, Some(to)).unwrap();
            } else {
                for w in &want {
                    a.send_to(w, to).unwrap();
                }
            }
        }
        let mut bufs = vec![vec![0u8; 65_536]; 8];
        let mut meta = Vec::new();
        let mut got = Vec::new();
        while got.len() < 2 * want.len() {
            let n = recv_many_gro(&b, &mut bufs, &mut meta).unwrap();
            for (r, buf) in meta.iter().zip(&bufs).take(n) {
                assert!(!r.truncated);
                got.extend(netkit_udp::recv::split(&buf[..r.len], r.segment).map(<[u8]>::to_vec));
            }
        }
        assert_eq!(got, [want.clone(), want].concat());
    }

    #[test]
    fn batches_arrive_whole_and_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        b.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let list: Vec<(&[u8], Option<SocketAddr>)> =
            vec![(b"one", Some(to)), (b"", Some(to)), (b"three", Some(to))];
        assert_eq!(send_many(&a, &list).unwrap(), 3);
        if gso_works() {
            assert_eq!(send_gso(&a, b"xxyyz", 2, Some(to)).unwrap(), 5);
        } else {
            send_many(
                &a,
                &[(b"xx", Some(to)), (b"yy", Some(to)), (b"z", Some(to))],
            )
            .unwrap();
        }
        let mut bufs = vec![vec![0u8; 64]; 8];
        let mut got = Vec::new();
        let mut seen = Vec::new();
        while seen.len() < 6 {
            recv_many(&b, &mut bufs, &mut got).unwrap();
            for (r, buf) in got.iter().zip(&bufs) {
                assert_eq!(r.from, Some(a.local_addr().unwrap()));
                assert!(!r.truncated);
                seen.push(buf[..r.len].to_vec());
            }
        }
        let want: [&[u8]; 6] = [b"one", b"", b"three", b"xx", b"yy", b"z"];
        assert_eq!(seen, want.map(<[u8]>::to_vec));
        // A datagram longer than its buffer is flagged.
        a.send_to(&[1u8; 100], to).unwrap();
        let mut small = vec![vec![0u8; 10]];
        recv_many(&b, &mut small, &mut got).unwrap();
        assert_eq!((got[0].len, got[0].truncated), (10, true));
    }
}
