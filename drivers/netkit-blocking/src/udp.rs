//! UDP sockets on the loop (Bun's `udpSocket`): a socket is a loop
//! [`Source`] with a handler of its own (`data`, `drain`, `error`). Sends go
//! through netkit-udp (the `sendMany` list decoded and planned, Bun's
//! accounting in its `Sender`) and the shared shim (`sendmmsg`, GSO);
//! receives read a bounded number of datagrams per readiness event into the
//! loop's buffer, so a flood cannot starve the loop's other sockets and
//! timers.
//!
//! ```no_run
//! use netkit_blocking::EventLoop;
//! use netkit_blocking::udp::{UdpHandler, UdpOptions, UdpSocket};
//!
//! struct Echo;
//! impl UdpHandler for Echo {
//!     fn data(&mut self, s: &mut UdpSocket<'_>, data: &[u8], from: std::net::SocketAddr, _truncated: bool) {
//!         let _ = s.send_to(data, from); // false: backpressure, `drain` follows
//!     }
//! }
//! let mut lp = EventLoop::new()?;
//! let id = lp.udp(UdpOptions::new("127.0.0.1", 0), Echo)?;
//! println!("{:?}", lp.udp_local_addr::<Echo>(id));
//! lp.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::any::Any;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use netkit_sys::sys::udp;
use netkit_sys::udp as ops;
pub use netkit_sys::udp::UdpOptions;
use netkit_sys::{Error, os_error};
use netkit_udp::Packet;
use netkit_udp::args::Arg;
use netkit_udp::send::{Event, Sender};

use crate::source::{Cx, Readiness, Source};

/// Datagrams delivered per readiness event (Bun reads 32); a GRO buffer
/// being delivered is finished first, so at most 32 plus one buffer's.
const READS_PER_EVENT: usize = 32;
const SOCK: u32 = 0;

/// A UDP socket's handler (one per socket).
pub trait UdpHandler: 'static {
    /// A datagram arrived from `from` (`truncated`: it was larger than the
    /// loop's read buffer and lost its tail).
    fn data(&mut self, socket: &mut UdpSocket<'_>, data: &[u8], from: SocketAddr, truncated: bool);
    /// The socket can send again after a send reported backpressure.
    fn drain(&mut self, _socket: &mut UdpSocket<'_>) {}
    /// An error that did not close the socket (an ICMP error on a connected
    /// socket surfaces here as `ECONNREFUSED`).
    fn error(&mut self, _socket: &mut UdpSocket<'_>, _error: &Error) {}
}

/// The handler-facing socket: sends, options, close.
#[derive(Debug)]
pub struct UdpSocket<'a> {
    sock: &'a std::net::UdpSocket,
    sender: &'a mut Sender,
    connected: Option<SocketAddr>,
    closed: &'a mut bool,
}

impl UdpSocket<'_> {
    /// Sends one datagram to `to` (Bun's `send`; an unconnected socket).
    /// `Ok(false)`: no room now; `drain` follows.
    pub fn send_to(&mut self, data: &[u8], to: SocketAddr) -> Result<bool, Error> {
        let p = ops::packet_to(self.sock, self.connected.is_some(), data, to)?;
        Ok(self.send_packets(&[p])? == 1)
    }

    /// Sends one datagram on a connected socket. `Ok(false)`: backpressure.
    pub fn send(&mut self, data: &[u8]) -> Result<bool, Error> {
        Ok(self.send_many(&[Arg::Data(data)])? == 1)
    }

    /// Bun's `sendMany`: `[data, port, addr, ...]` unconnected, `[data, ...]`
    /// connected. Returns how many datagrams the kernel accepted; fewer
    /// than given is backpressure, and `drain` follows (re-send the rest
    /// from that index then).
    pub fn send_many(&mut self, list: &[Arg<'_>]) -> Result<usize, Error> {
        self.open("send")?;
        let packets = ops::decode(self.sock, self.connected.is_some(), list)?;
        self.send_packets(&packets)
    }

    /// Plans `packets` and carries the plan out (Bun's count).
    fn send_packets(&mut self, packets: &[Packet<'_>]) -> Result<usize, Error> {
        self.open("send")?;
        ops::send_packets(self.sock, self.sender, packets)
    }

    /// The address the socket is bound to.
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.sock.local_addr().ok()
    }

    /// The peer of a connected socket.
    #[must_use]
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.connected
    }

    fn open(&self, what: &str) -> Result<(), Error> {
        if *self.closed {
            return Err(Error::os("EBADF", format!("{what}: the socket is closed")));
        }
        Ok(())
    }

    /// node's `setSendBufferSize` (`SO_SNDBUF`).
    pub fn set_send_buffer_size(&self, bytes: usize) -> Result<(), Error> {
        self.open("setSendBufferSize")?;
        ops::set_send_buffer_size(self.sock, bytes)
    }

    /// node's `setRecvBufferSize` (`SO_RCVBUF`).
    pub fn set_recv_buffer_size(&self, bytes: usize) -> Result<(), Error> {
        self.open("setRecvBufferSize")?;
        ops::set_recv_buffer_size(self.sock, bytes)
    }

    /// `setBroadcast`.
    pub fn set_broadcast(&self, on: bool) -> Result<(), Error> {
        self.open("setBroadcast")?;
        ops::set_broadcast(self.sock, on)
    }

    /// `setTTL` (unicast hop limit).
    pub fn set_ttl(&self, ttl: u32) -> Result<(), Error> {
        self.open("setTTL")?;
        ops::set_ttl(self.sock, ttl)
    }

    /// `setMulticastTTL`.
    pub fn set_multicast_ttl(&self, ttl: u32) -> Result<(), Error> {
        self.open("setMulticastTTL")?;
        ops::set_multicast_ttl(self.sock, ttl)
    }

    /// `setMulticastLoopback`.
    pub fn set_multicast_loopback(&self, on: bool) -> Result<(), Error> {
        self.open("setMulticastLoopback")?;
        ops::set_multicast_loopback(self.sock, on)
    }

    /// `setMulticastInterface` (see [`ops::set_multicast_interface`]).
    pub fn set_multicast_interface(&self, iface: &str) -> Result<(), Error> {
        self.open("setMulticastInterface")?;
        ops::set_multicast_interface(self.sock, iface)
    }

    /// `addMembership(group, iface?)` (see [`ops::add_membership`]).
    pub fn add_membership(&self, group: &str, iface: Option<&str>) -> Result<(), Error> {
        self.open("addMembership")?;
        ops::add_membership(self.sock, group, iface)
    }

    /// `dropMembership(group, iface?)`.
    pub fn drop_membership(&self, group: &str, iface: Option<&str>) -> Result<(), Error> {
        self.open("dropMembership")?;
        ops::drop_membership(self.sock, group, iface)
    }

    /// `addSourceSpecificMembership(source, group, iface?)` (see
    /// [`ops::add_source_specific_membership`]).
    pub fn add_source_specific_membership(
        &self,
        source: &str,
        group: &str,
        iface: Option<&str>,
    ) -> Result<(), Error> {
        self.open("addSourceSpecificMembership")?;
        ops::add_source_specific_membership(self.sock, source, group, iface)
    }

    /// `dropSourceSpecificMembership(source, group, iface?)`.
    pub fn drop_source_specific_membership(
        &self,
        source: &str,
        group: &str,
        iface: Option<&str>,
    ) -> Result<(), Error> {
        self.open("dropSourceSpecificMembership")?;
        ops::drop_source_specific_membership(self.sock, source, group, iface)
    }

    /// Closes the socket (after this call returns).
    pub fn close(&mut self) {
        *self.closed = true;
    }

    /// Whether it is closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        *self.closed
    }
}

pub(crate) struct UdpSource<H: UdpHandler> {
    pub(crate) handler: H,
    sock: Option<std::net::UdpSocket>,
    sender: Sender,
    connected: Option<SocketAddr>,
    registered: Option<(bool, bool)>,
    closed: bool,
    /// The kernel may coalesce datagrams (`UDP_GRO`): reads go through
    /// `recv_gro` and are split back.
    gro: bool,
}

impl<H: UdpHandler> UdpSource<H> {
    /// Binds `ip:opts.port` (and connects to `peer` at `opts.connect`'s
    /// port), non-blocking; the names were resolved by the caller.
    pub(crate) fn bind(
        opts: &UdpOptions,
        ip: IpAddr,
        peer: Option<IpAddr>,
        handler: H,
    ) -> Result<Self, Error> {
        let (sock, connected) = ops::bind(opts, ip, peer)?;
        let gro = udp::enable_gro(&sock);
        Ok(Self {
            handler,
            sock: Some(sock),
            sender: Sender::new(),
            connected,
            registered: None,
            closed: false,
            gro,
        })
    }

    pub(crate) fn local_addr(&self) -> Option<SocketAddr> {
        self.sock.as_ref()?.local_addr().ok()
    }

    /// Runs `f` with the handler and the handler-facing socket, then applies
    /// what it asked (close, write interest).
    pub(crate) fn with<R>(
        &mut self,
        cx: &mut Cx<'_>,
        f: impl FnOnce(&mut H, &mut UdpSocket<'_>) -> R,
    ) -> Option<R> {
        let sock = self.sock.as_ref()?;
        let mut s = UdpSocket {
            sock,
            sender: &mut self.sender,
            connected: self.connected,
            closed: &mut self.closed,
        };
        let r = f(&mut self.handler, &mut s);
        self.settle(cx);
        Some(r)
    }

    fn settle(&mut self, cx: &mut Cx<'_>) {
        if self.closed {
            if let Some(s) = self.sock.take() {
                if self.registered.is_some() {
                    let _ = cx.deregister(&s);
                }
            }
            return;
        }
        let Some(sock) = &self.sock else { return };
        let want = (true, self.sender.wants_write());
        if self.registered != Some(want) {
            let r = match self.registered {
                Some(_) => cx.reregister(sock, SOCK, want.0, want.1),
                None => cx.register(sock, SOCK, want.0, want.1),
            };
            if r.is_ok() {
                self.registered = Some(want);
            }
        }
    }

    pub(crate) fn start(&mut self, cx: &mut Cx<'_>) -> io::Result<()> {
        self.settle(cx);
        match self.registered {
            Some(_) => Ok(()),
            None => Err(io::Error::other("could not register the UDP socket")),
        }
    }
}

impl<H: UdpHandler> Source for UdpSource<H> {
    fn ready(&mut self, cx: &mut Cx<'_>, _token: u32, ev: Readiness) {
        if ev.writable {
            self.sender.handle_writable();
            while let Some(Event::Drain) = self.sender.poll_event() {
                self.with(cx, |h, s| h.drain(s));
            }
        }
        if !ev.readable {
            self.settle(cx);
            return;
        }
        // The loop's buffer, lent out of `cx` while the handler (which may
        // send, through `cx`) reads a datagram in place: no copy.
        let buf = std::mem::take(&mut cx.buf);
        let mut delivered = 0;
        while delivered < READS_PER_EVENT {
            let Some(sock) = self.sock.as_ref() else {
                break;
            };
            let read = if self.gro {
                udp::recv_gro(sock, buf)
            } else {
                udp::recv_one(sock, buf).map(|r| udp::GroReceived {
                    len: r.len,
                    from: r.from,
                    segment: 0,
                    truncated: r.truncated,
                })
            };
            match read {
                Ok(r) => {
                    let Some(from) = r.from else { continue };
                    let mut pieces = netkit_udp::recv::split(&buf[..r.len], r.segment).peekable();
                    while let Some(data) = pieces.next() {
                        // Only the last datagram of a buffer can be cut.
                        let truncated = r.truncated && pieces.peek().is_none();
                        self.with(cx, |h, s| h.data(s, data, from, truncated));
                        delivered += 1;
                        if self.closed {
                            break;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // An ICMP error (a connected socket's ECONNREFUSED): the
                    // socket stays open.
                    let err = os_error(&e, "recv");
                    self.with(cx, |h, s| h.error(s, &err));
                    delivered += 1;
                }
            }
            if self.closed {
                break;
            }
        }
        cx.buf = buf;
        self.settle(cx);
    }

    fn timer(&mut self, _cx: &mut Cx<'_>, _token: u32, _at: Instant) {}

    fn soon(&mut self, _cx: &mut Cx<'_>, _token: u32) {}

    fn stop(&mut self, cx: &mut Cx<'_>, _force: bool) {
        self.closed = true;
        self.settle(cx);
    }

    fn is_done(&self) -> bool {
        self.sock.is_none()
    }

    fn shutdown(&mut self, cx: &mut Cx<'_>) {
        self.stop(cx, true);
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
