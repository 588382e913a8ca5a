//! The loop's DNS service: the sockets and the timer of the loop's resolver.
//! Every decision is netkit-dns's (and netkit-sys's `Resolver`); this only
//! carries out its outputs: one UDP socket per query (a fresh port from the
//! kernel, connected to the server so ICMP errors come back), a TCP
//! connection for a truncated answer, the retransmit timer. It wakes whoever
//! waits for a finished request: a connecting socket's group (by its poller
//! key, through the loop's soon list) or a callback of the loop's DNS API.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Instant;

use netkit_dns::RequestId;
use netkit_dns::resolver::{Output, QueryId};
use netkit_sys::Resolver;
use netkit_sys::net::{Endpoint, connect_result, start_connect};
use netkit_sys::sys::errno::errno_name;
use netkit_sys::sys::poller::{Event as Readiness, Poller};
use socket2::{Domain, Protocol, Socket as RawSocket, Type};

use crate::source::{TimerHeap, key};

/// The source index that names the DNS service's fds and timer.
pub(crate) const DNS_SOURCE: usize = u32::MAX as usize - 1;
/// Tokens with this bit name a query's TCP connection.
const TCP: u32 = 1 << 31;
/// The token of the retransmit timer.
const TIMER: u32 = u32::MAX;
/// Datagrams read per readiness event of one socket.
const READS_PER_EVENT: usize = 16;

#[derive(Debug)]
struct Udp {
    sock: std::net::UdpSocket,
    token: u32,
    /// The server it is connected to.
    peer: Option<SocketAddr>,
}

#[derive(Debug)]
struct Tcp {
    sock: RawSocket,
    to: SocketAddr,
    connecting: bool,
    /// Bytes still to write.
    out: Vec<u8>,
    interest: (bool, bool),
}

/// The sockets and waiters of the loop's resolver.
#[derive(Debug, Default)]
pub(crate) struct DnsIo {
    udp: HashMap<QueryId, Udp>,
    tcp: HashMap<QueryId, Tcp>,
    tokens: HashMap<u32, QueryId>,
    next_token: u32,
    timer_armed: Option<Instant>,
    /// Poller keys to wake (through the soon list) when a request finishes.
    pub(crate) waiters: HashMap<RequestId, u64>,
}

impl DnsIo {
    fn token_of(&mut self, q: QueryId) -> u32 {
        if let Some(u) = self.udp.get(&q) {
            return u.token;
        }
        loop {
            self.next_token = (self.next_token + 1) & !TCP;
            if self.next_token != 0 && !self.tokens.contains_key(&self.next_token) {
                break;
            }
        }
        self.tokens.insert(self.next_token, q);
        self.next_token
    }

    /// Carries out what the resolver asks for, until it asks nothing; arms
    /// the retransmit timer. Returns the requests that finished meanwhile.
    pub(crate) fn pump(
        &mut self,
        poller: &Poller,
        timers: &mut TimerHeap,
        resolver: &mut Resolver,
        now: Instant,
    ) -> Vec<RequestId> {
        let mut finished = Vec::new();
        loop {
            finished.extend(resolver.pump(now));
            let mut did = false;
            while let Some(out) = resolver.dns().poll_output() {
                did = true;
                match out {
                    Output::Udp { query, to, payload } => {
                        let payload = payload.to_vec();
                        if let Err(e) = self.send_udp(poller, query, to, &payload) {
                            let code = errno_name(&e);
                            resolver.dns().handle_udp_error(now, query, code);
                        }
                    }
                    Output::TcpConnect { query, to } => {
                        if let Err(code) = self.connect_tcp(poller, query, to) {
                            resolver.dns().handle_tcp_error(now, query, code);
                        }
                    }
                    Output::TcpSend { query, bytes } => {
                        let bytes = bytes.to_vec();
                        if let Some(t) = self.tcp.get_mut(&query) {
                            t.out.extend_from_slice(&bytes);
                        }
                        if let Err(code) = self.write_tcp(poller, query) {
                            resolver.dns().handle_tcp_error(now, query, code);
                        }
                    }
                    Output::TcpClose { query } => self.close_tcp(poller, query),
                    Output::Close { query } => self.close(poller, query),
                }
            }
            if !did {
                break;
            }
        }
        if let Some(t) = resolver.dns().poll_timeout() {
            if self.timer_armed.is_none_or(|a| t < a) {
                self.timer_armed = Some(t);
                timers.push(std::cmp::Reverse((t, key(DNS_SOURCE, TIMER))));
            }
        }
        finished
    }

    fn send_udp(
        &mut self,
        poller: &Poller,
        query: QueryId,
        to: SocketAddr,
        payload: &[u8],
    ) -> io::Result<()> {
        if !self.udp.contains_key(&query) {
            let token = self.token_of(query);
            let sock = RawSocket::new(Domain::for_address(to), Type::DGRAM, Some(Protocol::UDP))?;
            sock.set_nonblocking(true)?;
            let any: SocketAddr = if to.is_ipv6() {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
            };
            // Port 0: the kernel picks a random ephemeral port per socket.
            sock.bind(&any.into())?;
            let sock = std::net::UdpSocket::from(sock);
            poller.add(&sock, key(DNS_SOURCE, token) as usize, true, false)?;
            self.udp.insert(
                query,
                Udp {
                    sock,
                    token,
                    peer: None,
                },
            );
        }
        let u = self.udp.get_mut(&query).ok_or(io::ErrorKind::NotFound)?;
        if u.peer != Some(to) {
            u.sock.connect(to)?;
            u.peer = Some(to);
        }
        match u.sock.send(payload) {
            Ok(_) => Ok(()),
            // The retransmit timer sends it again.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn connect_tcp(
        &mut self,
        poller: &Poller,
        query: QueryId,
        to: SocketAddr,
    ) -> Result<(), &'static str> {
        let token = self.token_of(query);
        let sock = start_connect(&Endpoint::Inet(to)).map_err(|e| e.code())?;
        poller
            .add(&sock, key(DNS_SOURCE, token | TCP) as usize, false, true)
            .map_err(|e| errno_name(&e))?;
        self.tcp.insert(
            query,
            Tcp {
                sock,
                to,
                connecting: true,
                out: Vec::new(),
                interest: (false, true),
            },
        );
        Ok(())
    }

    fn write_tcp(&mut self, poller: &Poller, query: QueryId) -> Result<(), &'static str> {
        let Some(token) = self.udp.get(&query).map(|u| u.token) else {
            return Ok(());
        };
        let Some(t) = self.tcp.get_mut(&query) else {
            return Ok(());
        };
        while !t.out.is_empty() && !t.connecting {
            match (&t.sock).write(&t.out) {
                Ok(n) => {
                    t.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(errno_name(&e)),
            }
        }
        let want = (!t.connecting, t.connecting || !t.out.is_empty());
        if want != t.interest {
            poller
                .modify(
                    &t.sock,
                    key(DNS_SOURCE, token | TCP) as usize,
                    want.0,
                    want.1,
                )
                .map_err(|e| errno_name(&e))?;
            t.interest = want;
        }
        Ok(())
    }

    fn close_tcp(&mut self, poller: &Poller, query: QueryId) {
        if let Some(t) = self.tcp.remove(&query) {
            let _ = poller.delete(&t.sock);
        }
    }

    fn close(&mut self, poller: &Poller, query: QueryId) {
        self.close_tcp(poller, query);
        if let Some(u) = self.udp.remove(&query) {
            let _ = poller.delete(&u.sock);
            self.tokens.remove(&u.token);
        }
    }

    /// A DNS fd is ready (`token` names it).
    pub(crate) fn ready(
        &mut self,
        poller: &Poller,
        resolver: &mut Resolver,
        buf: &mut [u8],
        now: Instant,
        token: u32,
        ev: Readiness,
    ) {
        let Some(&query) = self.tokens.get(&(token & !TCP)) else {
            return;
        };
        if token & TCP == 0 {
            let Some(u) = self.udp.get(&query) else {
                return;
            };
            for _ in 0..READS_PER_EVENT {
                match u.sock.recv_from(buf) {
                    Ok((n, from)) => {
                        resolver.dns().handle_udp(now, query, from, &buf[..n]);
                        if !self.udp.contains_key(&query) {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        resolver.dns().handle_udp_error(now, query, errno_name(&e));
                        return;
                    }
                }
            }
            return;
        }
        let Some(t) = self.tcp.get_mut(&query) else {
            return;
        };
        if t.connecting {
            match connect_result(&t.sock, &Endpoint::Inet(t.to), ev.error) {
                Ok(false) => {}
                Ok(true) => {
                    t.connecting = false;
                    resolver.dns().handle_tcp_connected(now, query);
                }
                Err(e) => resolver.dns().handle_tcp_error(now, query, e.code()),
            }
            return;
        }
        if ev.writable {
            if let Err(code) = self.write_tcp(poller, query) {
                resolver.dns().handle_tcp_error(now, query, code);
                return;
            }
        }
        if ev.readable {
            let Some(t) = self.tcp.get(&query) else {
                return;
            };
            match (&t.sock).read(buf) {
                Ok(0) => resolver.dns().handle_tcp_error(now, query, "ECONNRESET"),
                Ok(n) => resolver.dns().handle_tcp_input(now, query, &buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => resolver.dns().handle_tcp_error(now, query, errno_name(&e)),
            }
        }
    }

    /// The retransmit timer fired (for `at`: stale entries are ignored).
    pub(crate) fn timer(&mut self, resolver: &mut Resolver, now: Instant, at: Instant) {
        if self.timer_armed != Some(at) {
            return;
        }
        self.timer_armed = None;
        resolver.dns().handle_timeout(now);
    }

    /// Whether queries are in flight.
    pub(crate) fn busy(&self) -> bool {
        !self.udp.is_empty()
    }
}
