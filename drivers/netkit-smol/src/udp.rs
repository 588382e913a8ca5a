//! UDP sockets on `async-io` (Bun's `udpSocket`), the async counterpart of
//! the blocking loop's: the same options ([`UdpOptions`]), the same
//! `sendMany` decoding, plan and accounting (netkit-udp's `Sender` over the
//! shim's `carry_out`), the same socket options and error messages
//! (`netkit_sys::udp`).
//!
//! Sends never wait: [`send_to`](UdpSocket::send_to), [`send`](UdpSocket::send)
//! and [`send_many`](UdpSocket::send_many) return what the kernel accepted
//! now (Bun's count); after a short count, [`writable`](UdpSocket::writable)
//! is Bun's `drain` (it resolves when the socket can send again), and
//! [`send_many_all`](UdpSocket::send_many_all) does both until every
//! datagram is sent. Receives wait ([`recv_from`](UdpSocket::recv_from), or
//! [`recv_many`](UdpSocket::recv_many): a bounded batch through `recvmmsg`).
//! Every method takes `&self`, so one socket can be shared (an `Arc`)
//! between a sending and a receiving task. Dropping it closes it.
//!
//! ```no_run
//! use netkit_smol::udp::{UdpOptions, UdpSocket};
//!
//! let served: Result<(), netkit_smol::Error> = smol::block_on(async {
//!     let sock = UdpSocket::bind(UdpOptions::new("127.0.0.1", 9000)).await?;
//!     let mut buf = vec![0u8; 2048];
//!     loop {
//!         let (n, from, _truncated) = sock.recv_from(&mut buf).await?;
//!         if !sock.send_to(&buf[..n], from)? {
//!             sock.writable().await?; // backpressure: the drain
//!         }
//!     }
//! });
//! ```

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use async_io::Async;
use netkit_sys::sys::udp as shim;
use netkit_sys::udp as ops;
use netkit_sys::{Error, os_error};
use netkit_udp::Packet;
pub use netkit_udp::args::Arg;
use netkit_udp::send::Sender;

pub use netkit_sys::sys::udp::Received;
pub use netkit_sys::udp::UdpOptions;

use crate::Runtime;

/// A UDP socket, bound (and perhaps connected), on the `async-io` reactor.
pub struct UdpSocket {
    io: Async<std::net::UdpSocket>,
    connected: Option<SocketAddr>,
    /// Bun's accounting of the last send: whether a drain is owed.
    sender: Mutex<Sender>,
    /// With `UDP_GRO` on (where the kernel has it): the last coalesced
    /// buffer, handed out one datagram per receive.
    gro: Option<Mutex<Coalesced>>,
}

/// A GRO buffer being handed out: `buf[pos..len]` are the datagrams left
/// (while `left`; an empty datagram is one too), cut as
/// `netkit_udp::recv::split` cuts them.
struct Coalesced {
    buf: Vec<u8>,
    len: usize,
    pos: usize,
    left: bool,
    segment: usize,
    from: Option<SocketAddr>,
    truncated: bool,
}

impl Coalesced {
    /// Copies the next datagram into `out`: (length copied, sender,
    /// truncated); `None` when none is left.
    fn next_into(&mut self, out: &mut [u8]) -> Option<(usize, Option<SocketAddr>, bool)> {
        if !self.left {
            return None;
        }
        // The datagrams left start at `pos`, so the next is split's first.
        let piece = netkit_udp::recv::split(&self.buf[self.pos..self.len], self.segment).next()?;
        let end = self.pos + piece.len();
        let n = piece.len().min(out.len());
        out[..n].copy_from_slice(&piece[..n]);
        self.pos = end;
        self.left = end < self.len;
        // Only a buffer's last datagram can have lost its tail in the kernel.
        let cut = piece.len() > out.len() || (self.truncated && end == self.len);
        Some((n, self.from, cut))
    }

    /// Reads the next buffer from `sock` (non-blocking).
    fn fill(&mut self, sock: &std::net::UdpSocket) -> std::io::Result<()> {
        let r = shim::recv_gro(sock, &mut self.buf)?;
        (self.len, self.pos, self.segment) = (r.len, 0, r.segment);
        self.left = true;
        (self.from, self.truncated) = (r.from, r.truncated);
        Ok(())
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr())
            .field("remote_addr", &self.connected)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Binds a UDP socket (Bun's `udpSocket`): the bind host and a
    /// `connect` host may be names, resolved once through this runtime's
    /// resolver (the hosts file, then DNS); a name nobody knows is
    /// `ENOTFOUND`.
    pub async fn udp(&self, opts: UdpOptions) -> Result<UdpSocket, Error> {
        let ip = ops::pick_bind(&opts.hostname, &self.lookup(&opts.hostname).await?)?;
        let peer = match &opts.connect {
            Some((host, _)) => Some(ops::pick_peer(ip, host, &self.lookup(host).await?)?),
            None => None,
        };
        let (sock, connected) = ops::bind(&opts, ip, peer)?;
        let gro = shim::enable_gro(&sock).then(|| {
            Mutex::new(Coalesced {
                buf: vec![0; 64 * 1024],
                len: 0,
                pos: 0,
                left: false,
                segment: 0,
                from: None,
                truncated: false,
            })
        });
        let io = Async::new(sock).map_err(|e| os_error(&e, "bind"))?;
        Ok(UdpSocket {
            io,
            connected,
            sender: Mutex::new(Sender::new()),
            gro,
        })
    }
}

impl UdpSocket {
    /// [`Runtime::udp`] on the process's runtime.
    pub async fn bind(opts: UdpOptions) -> Result<Self, Error> {
        Runtime::global().udp(opts).await
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, Sender> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one datagram to `to` (Bun's `send(data, port, addr)`; an
    /// unconnected socket, an IP destination). `Ok(false)`: no room now;
    /// await [`writable`](Self::writable) and send again.
    pub fn send_to(&self, data: &[u8], to: SocketAddr) -> Result<bool, Error> {
        let p = ops::packet_to(self.io.get_ref(), self.connected.is_some(), data, to)?;
        Ok(self.send_packets(&[p])? == 1)
    }

    /// Sends one datagram on a connected socket. `Ok(false)`: backpressure.
    pub fn send(&self, data: &[u8]) -> Result<bool, Error> {
        Ok(self.send_many(&[Arg::Data(data)])? == 1)
    }

    /// Bun's `sendMany`: `[data, port, addr, ...]` unconnected (IP
    /// literals), `[data, ...]` connected. Returns how many datagrams the
    /// kernel accepted now (GSO, `sendmmsg`, or plain sends); fewer than
    /// given is backpressure: await [`writable`](Self::writable), then send
    /// the rest (from that index).
    pub fn send_many(&self, list: &[Arg<'_>]) -> Result<usize, Error> {
        let packets = ops::decode(self.io.get_ref(), self.connected.is_some(), list)?;
        self.send_packets(&packets)
    }

    fn send_packets(&self, packets: &[Packet<'_>]) -> Result<usize, Error> {
        ops::send_packets(self.io.get_ref(), &mut self.sender(), packets)
    }

    /// Bun's `drain`: resolves once the socket can send again after a send
    /// reported backpressure (at once when none did).
    pub async fn writable(&self) -> Result<(), Error> {
        if !self.sender().wants_write() {
            return Ok(());
        }
        self.io.writable().await.map_err(|e| os_error(&e, "send"))?;
        let mut s = self.sender();
        s.handle_writable();
        while s.poll_event().is_some() {}
        Ok(())
    }

    /// Sends the whole `sendMany` list, waiting for [`writable`](Self::writable)
    /// whenever the kernel has no room; returns the datagrams sent (all of
    /// them), or the first error.
    pub async fn send_many_all(&self, list: &[Arg<'_>]) -> Result<usize, Error> {
        let packets = ops::decode(self.io.get_ref(), self.connected.is_some(), list)?;
        let mut sent = 0;
        while sent < packets.len() {
            sent += self.send_packets(&packets[sent..])?;
            if sent < packets.len() {
                self.writable().await?;
            }
        }
        Ok(sent)
    }

    /// Receives one datagram into `buf`: its length (of what fit), who sent
    /// it, and whether it was longer than `buf` (its tail is lost). An ICMP
    /// error on a connected socket (its peer's port closed) is
    /// `ECONNREFUSED` here, and the socket stays usable.
    pub async fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddr, bool), Error> {
        if let Some(gro) = &self.gro {
            // One datagram of the coalesced buffer per call; a new buffer
            // is read when it is used up.
            return loop {
                let got = self
                    .io
                    .read_with(|s| {
                        let mut g = gro.lock().unwrap_or_else(PoisonError::into_inner);
                        if !g.left {
                            g.fill(s)?;
                        }
                        Ok(g.next_into(buf))
                    })
                    .await
                    .map_err(|e| os_error(&e, "recv"))?;
                if let Some((n, Some(from), cut)) = got {
                    break Ok((n, from, cut));
                }
            };
        }
        loop {
            let r = self
                .io
                .read_with(|s| shim::recv_one(s, buf))
                .await
                .map_err(|e| os_error(&e, "recv"))?;
            // A datagram without a sender address (not seen on IP sockets)
            // is skipped, as the blocking loop does.
            if let Some(from) = r.from {
                return Ok((r.len, from, r.truncated));
            }
        }
    }

    /// Receives up to `bufs.len()` datagrams (at most 1,024) in one
    /// `recvmmsg` call once at least one is queued: `out[i]` says what
    /// landed in `bufs[i]`. Returns how many; bounded per call, so a flood
    /// cannot hold the task.
    pub async fn recv_many(
        &self,
        bufs: &mut [Vec<u8>],
        out: &mut Vec<Received>,
    ) -> Result<usize, Error> {
        if bufs.is_empty() {
            out.clear();
            return Ok(0);
        }
        if let Some(gro) = &self.gro {
            // The first datagram waits; the rest are what is already
            // coalesced or queued.
            out.clear();
            let (len, from, truncated) = self.recv_from(&mut bufs[0]).await?;
            out.push(Received {
                len,
                from: Some(from),
                truncated,
            });
            let mut g = gro.lock().unwrap_or_else(PoisonError::into_inner);
            for b in &mut bufs[1..] {
                if !g.left && g.fill(self.io.get_ref()).is_err() {
                    break;
                }
                match g.next_into(b) {
                    Some((len, from, truncated)) => out.push(Received {
                        len,
                        from,
                        truncated,
                    }),
                    None => break,
                }
            }
            return Ok(out.len());
        }
        self.io
            .read_with(|s| shim::recv_many(s, bufs, out))
            .await
            .map_err(|e| os_error(&e, "recv"))
    }

    /// The std socket underneath (non-blocking), for options netkit does
    /// not wrap (through `socket2::SockRef`).
    #[must_use]
    pub fn get_ref(&self) -> &std::net::UdpSocket {
        self.io.get_ref()
    }

    /// The address the socket is bound to.
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.io.get_ref().local_addr().ok()
    }

    /// The peer of a connected socket.
    #[must_use]
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.connected
    }

    /// node's `setSendBufferSize` (`SO_SNDBUF`).
    pub fn set_send_buffer_size(&self, bytes: usize) -> Result<(), Error> {
        ops::set_send_buffer_size(self.io.get_ref(), bytes)
    }

    /// node's `setRecvBufferSize` (`SO_RCVBUF`).
    pub fn set_recv_buffer_size(&self, bytes: usize) -> Result<(), Error> {
        ops::set_recv_buffer_size(self.io.get_ref(), bytes)
    }

    /// `setBroadcast`.
    pub fn set_broadcast(&self, on: bool) -> Result<(), Error> {
        ops::set_broadcast(self.io.get_ref(), on)
    }

    /// `setTTL` (unicast hop limit).
    pub fn set_ttl(&self, ttl: u32) -> Result<(), Error> {
        ops::set_ttl(self.io.get_ref(), ttl)
    }

    /// `setMulticastTTL`.
    pub fn set_multicast_ttl(&self, ttl: u32) -> Result<(), Error> {
        ops::set_multicast_ttl(self.io.get_ref(), ttl)
    }

    /// `setMulticastLoopback`.
    pub fn set_multicast_loopback(&self, on: bool) -> Result<(), Error> {
        ops::set_multicast_loopback(self.io.get_ref(), on)
    }

    /// `setMulticastInterface` (see [`ops::set_multicast_interface`]).
    pub fn set_multicast_interface(&self, iface: &str) -> Result<(), Error> {
        ops::set_multicast_interface(self.io.get_ref(), iface)
    }

    /// `addMembership(group, iface?)` (see [`ops::add_membership`]).
    pub fn add_membership(&self, group: &str, iface: Option<&str>) -> Result<(), Error> {
        ops::add_membership(self.io.get_ref(), group, iface)
    }

    /// `dropMembership(group, iface?)`.
    pub fn drop_membership(&self, group: &str, iface: Option<&str>) -> Result<(), Error> {
        ops::drop_membership(self.io.get_ref(), group, iface)
    }

    /// `addSourceSpecificMembership(source, group, iface?)`, IPv4 or IPv6
    /// (see [`ops::add_source_specific_membership`]).
    pub fn add_source_specific_membership(
        &self,
        source: &str,
        group: &str,
        iface: Option<&str>,
    ) -> Result<(), Error> {
        ops::add_source_specific_membership(self.io.get_ref(), source, group, iface)
    }

    /// `dropSourceSpecificMembership(source, group, iface?)`.
    pub fn drop_source_specific_membership(
        &self,
        source: &str,
        group: &str,
        iface: Option<&str>,
    ) -> Result<(), Error> {
        ops::drop_source_specific_membership(self.io.get_ref(), source, group, iface)
    }
}
