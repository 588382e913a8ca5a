//! The query engine, sans-IO: sends queries to name servers, retries across
//! them, falls back to TCP for truncated answers, and accepts only answers to
//! what it asked.
//!
//! For each query the driver opens one UDP socket with a fresh random port,
//! and hands in a random ID (randomness comes from the driver, like time).
//! The engine tells it what to send where ([`Output::Udp`], with the
//! destination: connect the socket to it so ICMP errors come back), when to
//! open a TCP connection ([`Output::TcpConnect`]) and send on it, and each
//! query's outcome ([`Resolver::poll_done`]), after which its sockets close. A datagram
//! counts only when it comes from a server this query was sent to and carries
//! its ID and its exact question; anything else is ignored, so an answer
//! cannot be spoofed by guessing fewer than all three.
//!
//! Tries: `attempts` rounds over the server list, each try waiting `timeout`
//! (resolv.conf's `options timeout:N attempts:N`; `rotate` starts each query
//! at the next server). A timeout, SERVFAIL, REFUSED, FORMERR, NOTIMP or a
//! refused connection moves on to the next server at once; NXDOMAIN and
//! NODATA are answers. When every try failed, the outcome is the most telling
//! failure seen: a server's answer code, else a refused connection, else an
//! undecodable answer (`EBADRESP`), else `ETIMEOUT`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::message::{Answer, Rtype, Verdict, encode_query, read_response};
use crate::{Error, ResolvConf};

/// The largest TCP DNS message (its 2-byte length prefix).
const MAX_TCP_MESSAGE: usize = u16::MAX as usize;

/// How the engine queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Name servers, tried in order (or rotated).
    pub servers: Vec<SocketAddr>,
    /// How long one try waits for an answer.
    pub timeout: Duration,
    /// Tries per server (rounds over the list).
    pub attempts: u8,
    /// Start each query at the next server, round robin.
    pub rotate: bool,
}

impl From<&ResolvConf> for Config {
    fn from(c: &ResolvConf) -> Self {
        Self {
            servers: c.nameservers.clone(),
            timeout: c.timeout,
            attempts: c.attempts,
            rotate: c.rotate,
        }
    }
}

/// One query, named so the driver can report what its sockets did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// An outcome: the answer, or the error with the TTL a negative answer may be
/// cached for (0 when it should not be).
pub type Outcome = Result<Answer, (Error, u32)>;

/// What the driver should do next.
#[derive(Debug)]
#[must_use]
pub enum Output<'a> {
    /// Send `payload` as one datagram from the query's UDP socket (made at its
    /// first send, with a fresh random port) to `to`, connecting the socket to
    /// `to` first. A failure to send is reported with
    /// [`Resolver::handle_udp_error`].
    Udp {
        /// The query.
        query: QueryId,
        /// The server.
        to: SocketAddr,
        /// The datagram.
        payload: &'a [u8],
    },
    /// Open a TCP connection to `to` for the query (its answer was
    /// truncated); report [`Resolver::handle_tcp_connected`] or
    /// [`Resolver::handle_tcp_error`].
    TcpConnect {
        /// The query.
        query: QueryId,
        /// The server.
        to: SocketAddr,
    },
    /// Write `bytes` (the length-prefixed query) on the query's TCP
    /// connection, all of them.
    TcpSend {
        /// The query.
        query: QueryId,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// The query's TCP connection is no longer needed.
    TcpClose {
        /// The query.
        query: QueryId,
    },
    /// The query ended (its outcome is in [`Resolver::poll_done`]): close
    /// its UDP socket too.
    Close {
        /// The query.
        query: QueryId,
    },
}

/// A query's outcome ([`Resolver::poll_done`]); its sockets may close.
/// Nothing more comes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    /// The query.
    pub query: QueryId,
    /// The name asked for.
    pub name: String,
    /// The type asked for.
    pub rtype: Rtype,
    /// The answer, or the error.
    pub result: Outcome,
}

/// Where a query is.
#[derive(Debug)]
enum Stage {
    /// Waiting for a UDP answer.
    Udp,
    /// Connecting over TCP.
    TcpConnecting,
    /// TCP connected: reading the length-prefixed answer.
    TcpReading { buf: Vec<u8> },
}

#[derive(Debug)]
struct Pending {
    id: QueryId,
    name: String,
    rtype: Rtype,
    wire_id: u16,
    /// The query framed for TCP: 2-byte length, then the message (the UDP
    /// datagram is `framed[2..]`).
    framed: Vec<u8>,
    /// Index into the server list of the first try.
    first: usize,
    /// Tries made so far (the current one included).
    tries: usize,
    /// Servers this query was sent to (answers from them are accepted).
    asked: Vec<SocketAddr>,
    stage: Stage,
    deadline: Instant,
    /// The most telling failure seen so far, with its negative TTL.
    failure: Option<(Error, u32)>,
}

#[derive(Debug)]
enum Act {
    Udp(QueryId, SocketAddr),
    TcpConnect(QueryId, SocketAddr),
    TcpSend(QueryId),
    TcpClose(QueryId),
    Close(QueryId),
}

/// The query engine. See the [module docs](self).
#[derive(Debug)]
pub struct Resolver {
    config: Config,
    queries: Vec<Pending>,
    acts: VecDeque<Act>,
    done: VecDeque<Done>,
    next_id: u64,
    /// The next first server (with `rotate`).
    next_first: usize,
}

/// How telling a failure is, to keep the best one when every try failed.
fn weight(e: &Error) -> u8 {
    match e {
        Error::ServFail { .. }
        | Error::Refused { .. }
        | Error::FormErr { .. }
        | Error::NotImp { .. } => 4,
        Error::ConnRefused { .. } => 3,
        Error::BadResponse { .. } => 2,
        _ => 1,
    }
}

impl Resolver {
    /// An engine asking these servers.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config,
            queries: Vec::new(),
            acts: VecDeque::new(),
            done: VecDeque::new(),
            next_id: 0,
            next_first: 0,
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Starts a query for `name` (one name, no search list) and `rtype`, with
    /// the wire ID `wire_id` (random, from the driver). Fails at once for a
    /// malformed name (`EBADNAME`) or when no server is configured.
    pub fn query(
        &mut self,
        now: Instant,
        name: &str,
        rtype: Rtype,
        wire_id: u16,
    ) -> Result<QueryId, Error> {
        if self.config.servers.is_empty() {
            return Err(Error::NoServers);
        }
        let msg = encode_query(wire_id, name, rtype)?;
        let mut framed = Vec::with_capacity(msg.len() + 2);
        framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
        framed.extend_from_slice(&msg);
        let id = QueryId(self.next_id);
        self.next_id += 1;
        let first = if self.config.rotate {
            let f = self.next_first % self.config.servers.len();
            self.next_first = self.next_first.wrapping_add(1);
            f
        } else {
            0
        };
        let server = self.config.servers[first];
        self.queries.push(Pending {
            id,
            name: name.strip_suffix('.').unwrap_or(name).to_string(),
            rtype,
            wire_id,
            framed,
            first,
            tries: 1,
            asked: vec![server],
            stage: Stage::Udp,
            deadline: now + self.config.timeout,
            failure: None,
        });
        self.acts.push_back(Act::Udp(id, server));
        Ok(id)
    }

    fn find(&mut self, q: QueryId) -> Option<usize> {
        self.queries.iter().position(|p| p.id == q)
    }

    fn total_tries(&self) -> usize {
        self.config.servers.len() * usize::from(self.config.attempts.max(1))
    }

    /// Moves query `i` on to its next try, or ends it when none is left.
    fn next_try(&mut self, now: Instant, i: usize) {
        if matches!(
            self.queries[i].stage,
            Stage::TcpConnecting | Stage::TcpReading { .. }
        ) {
            self.acts.push_back(Act::TcpClose(self.queries[i].id));
        }
        if self.queries[i].tries >= self.total_tries() {
            let p = self.queries.swap_remove(i);
            self.acts.push_back(Act::Close(p.id));
            let result = Err(p.failure.unwrap_or_else(|| {
                (
                    Error::Timeout {
                        op: p.rtype.op().to_string(),
                        name: p.name.clone(),
                    },
                    0,
                )
            }));
            self.done.push_back(Done {
                query: p.id,
                name: p.name,
                rtype: p.rtype,
                result,
            });
            return;
        }
        let n = self.config.servers.len();
        let p = &mut self.queries[i];
        let server = self.config.servers[(p.first + p.tries) % n];
        p.tries += 1;
        p.stage = Stage::Udp;
        p.deadline = now + self.config.timeout;
        if !p.asked.contains(&server) {
            p.asked.push(server);
        }
        self.acts.push_back(Act::Udp(p.id, server));
    }

    /// Records a failure of the current try (keeping the most telling one).
    fn note(&mut self, i: usize, e: Error, ttl: u32) {
        let p = &mut self.queries[i];
        if p.failure
            .as_ref()
            .is_none_or(|(f, _)| weight(&e) >= weight(f))
        {
            p.failure = Some((e, ttl));
        }
    }

    fn finish(&mut self, i: usize, result: Outcome) {
        let p = self.queries.swap_remove(i);
        if !matches!(p.stage, Stage::Udp) {
            self.acts.push_back(Act::TcpClose(p.id));
        }
        self.acts.push_back(Act::Close(p.id));
        self.done.push_back(Done {
            query: p.id,
            name: p.name,
            rtype: p.rtype,
            result,
        });
    }

    /// Applies a verdict on a message received for query `i` from `from`
    /// (`None`: over TCP).
    fn verdict(&mut self, now: Instant, i: usize, v: Verdict, from: Option<SocketAddr>) {
        let over_tcp = from.is_none();
        match v {
            Verdict::Ignore(why) => {
                // Over TCP the connection is ours alone: a bad message there is
                // the server's. Over UDP, an undecodable datagram with our ID
                // may be the server's or a spoofer's: remember it, keep waiting.
                if over_tcp || why == "undecodable" {
                    let p = &self.queries[i];
                    let e = Error::BadResponse {
                        op: p.rtype.op().to_string(),
                        name: p.name.clone(),
                        problem: why.to_string(),
                    };
                    self.note(i, e, 0);
                    if over_tcp {
                        self.next_try(now, i);
                    }
                }
            }
            Verdict::Truncated if over_tcp => {
                let p = &self.queries[i];
                let e = Error::BadResponse {
                    op: p.rtype.op().to_string(),
                    name: p.name.clone(),
                    problem: "truncated over TCP".into(),
                };
                self.note(i, e, 0);
                self.next_try(now, i);
            }
            Verdict::Truncated => {
                let p = &mut self.queries[i];
                // The same server, over TCP.
                let to = from.unwrap_or(self.config.servers[0]);
                p.stage = Stage::TcpConnecting;
                p.deadline = now + self.config.timeout;
                self.acts.push_back(Act::TcpConnect(p.id, to));
            }
            Verdict::Answer(Ok(a)) => self.finish(i, Ok(a)),
            Verdict::Answer(Err((e, ttl))) if e.is_retryable() => {
                self.note(i, e, ttl);
                self.next_try(now, i);
            }
            Verdict::Answer(Err(e)) => self.finish(i, Err(e)),
        }
    }

    /// A datagram arrived on query `q`'s socket from `from`.
    pub fn handle_udp(&mut self, now: Instant, q: QueryId, from: SocketAddr, bytes: &[u8]) {
        let Some(i) = self.find(q) else { return };
        let p = &self.queries[i];
        if !matches!(p.stage, Stage::Udp) || !p.asked.contains(&from) {
            return; // not from a server we asked: ignored
        }
        let v = read_response(bytes, p.wire_id, &p.name, p.rtype);
        self.verdict(now, i, v, Some(from));
    }

    /// Query `q`'s UDP socket failed (`code`: node's errno name, usually
    /// `ECONNREFUSED` from an ICMP port unreachable): the next try starts now.
    pub fn handle_udp_error(&mut self, now: Instant, q: QueryId, code: &str) {
        let Some(i) = self.find(q) else { return };
        if !matches!(self.queries[i].stage, Stage::Udp) {
            return;
        }
        self.socket_failed(now, i, code);
    }

    fn socket_failed(&mut self, now: Instant, i: usize, code: &str) {
        let p = &self.queries[i];
        let (op, name) = (p.rtype.op().to_string(), p.name.clone());
        let e = if code == "ECONNREFUSED" {
            Error::ConnRefused { op, name }
        } else {
            Error::Timeout { op, name }
        };
        self.note(i, e, 0);
        self.next_try(now, i);
    }

    /// Query `q`'s TCP connection is up: the query is sent on it.
    pub fn handle_tcp_connected(&mut self, now: Instant, q: QueryId) {
        let Some(i) = self.find(q) else { return };
        let p = &mut self.queries[i];
        if !matches!(p.stage, Stage::TcpConnecting) {
            return;
        }
        p.stage = Stage::TcpReading { buf: Vec::new() };
        p.deadline = now + self.config.timeout;
        self.acts.push_back(Act::TcpSend(q));
    }

    /// Bytes arrived on query `q`'s TCP connection.
    pub fn handle_tcp_input(&mut self, now: Instant, q: QueryId, bytes: &[u8]) {
        let Some(i) = self.find(q) else { return };
        let p = &mut self.queries[i];
        let Stage::TcpReading { buf } = &mut p.stage else {
            return;
        };
        // Never more than one length-prefixed message: the rest is junk.
        let want = if buf.len() >= 2 {
            2 + usize::from(u16::from_be_bytes([buf[0], buf[1]]))
        } else {
            2 + MAX_TCP_MESSAGE
        };
        let take = bytes.len().min(want.saturating_sub(buf.len()));
        buf.extend_from_slice(&bytes[..take]);
        if buf.len() < 2 {
            return;
        }
        let len = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
        if buf.len() < 2 + len {
            return;
        }
        let v = read_response(&buf[2..2 + len], p.wire_id, &p.name, p.rtype);
        self.verdict(now, i, v, None);
    }

    /// Query `q`'s TCP connection failed or ended before the answer was
    /// whole (`code`: node's errno name, `ECONNRESET` for an early EOF).
    pub fn handle_tcp_error(&mut self, now: Instant, q: QueryId, code: &str) {
        let Some(i) = self.find(q) else { return };
        if matches!(self.queries[i].stage, Stage::Udp) {
            return;
        }
        self.socket_failed(now, i, code);
    }

    /// Abandons a query: nothing more comes for it (its sockets may close).
    pub fn cancel(&mut self, q: QueryId) {
        if let Some(i) = self.find(q) {
            let p = self.queries.swap_remove(i);
            if !matches!(p.stage, Stage::Udp) {
                self.acts.push_back(Act::TcpClose(q));
            }
            self.acts.push_back(Act::Close(q));
        }
    }

    /// The next thing to do on the wire; poll after every call until `None`
    /// (and [`poll_done`](Self::poll_done) for outcomes).
    pub fn poll_output(&mut self) -> Option<Output<'_>> {
        loop {
            let act = self.acts.pop_front()?;
            let live = |q: QueryId, qs: &[Pending]| qs.iter().position(|p| p.id == q);
            match act {
                Act::Udp(q, to) => {
                    let Some(i) = live(q, &self.queries) else {
                        continue;
                    };
                    return Some(Output::Udp {
                        query: q,
                        to,
                        payload: &self.queries[i].framed[2..],
                    });
                }
                Act::TcpConnect(q, to) => {
                    if live(q, &self.queries).is_some() {
                        return Some(Output::TcpConnect { query: q, to });
                    }
                }
                Act::TcpSend(q) => {
                    let Some(i) = live(q, &self.queries) else {
                        continue;
                    };
                    return Some(Output::TcpSend {
                        query: q,
                        bytes: &self.queries[i].framed,
                    });
                }
                Act::TcpClose(q) => return Some(Output::TcpClose { query: q }),
                Act::Close(q) => return Some(Output::Close { query: q }),
            }
        }
    }

    /// The next finished query; poll after every call until `None`.
    #[must_use]
    pub fn poll_done(&mut self) -> Option<Done> {
        self.done.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queries.iter().map(|p| p.deadline).min()
    }

    /// Moves every query whose try timed out to its next try. Idempotent: an
    /// early or spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.queries.len() {
            if self.queries[i].deadline <= now {
                let before = self.queries.len();
                let p = &self.queries[i];
                let e = Error::Timeout {
                    op: p.rtype.op().to_string(),
                    name: p.name.clone(),
                };
                self.note(i, e, 0);
                self.next_try(now, i);
                if self.queries.len() < before {
                    continue; // swap_remove moved another query to `i`
                }
            }
            i += 1;
        }
    }

    /// Queries in flight.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.queries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordData;
    use crate::message::tests::{rec, response, soa};
    use hickory_proto::op::ResponseCode;
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::A;
    use std::net::Ipv4Addr;

    fn t0() -> Instant {
        netkit_test_clock::origin()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn engine(servers: &[&str], attempts: u8) -> Resolver {
        Resolver::new(Config {
            servers: servers.iter().map(|s| sa(s)).collect(),
            timeout: Duration::from_secs(2),
            attempts,
            rotate: false,
        })
    }

    /// Drains the outputs, copying what is borrowed.
    #[derive(Debug, PartialEq)]
    enum Out {
        Udp(QueryId, SocketAddr, Vec<u8>),
        TcpConnect(QueryId, SocketAddr),
        TcpSend(QueryId, Vec<u8>),
        TcpClose(QueryId),
        Done(QueryId, Result<Vec<RecordData>, (String, u32)>),
    }

    fn outs(r: &mut Resolver) -> Vec<Out> {
        let mut v = Vec::new();
        while let Some(o) = r.poll_output() {
            v.push(match o {
                Output::Udp { query, to, payload } => Out::Udp(query, to, payload.to_vec()),
                Output::TcpConnect { query, to } => Out::TcpConnect(query, to),
                Output::TcpSend { query, bytes } => Out::TcpSend(query, bytes.to_vec()),
                Output::TcpClose { query } => Out::TcpClose(query),
                Output::Close { .. } => continue,
            });
        }
        while let Some(Done { query, result, .. }) = r.poll_done() {
            v.push(Out::Done(
                query,
                result
                    .map(|a| a.records.into_iter().map(|r| r.data).collect())
                    .map_err(|(e, ttl)| (e.to_string(), ttl)),
            ));
        }
        v
    }

    fn a_answer(query: &[u8], ip: [u8; 4]) -> Vec<u8> {
        response(
            query,
            ResponseCode::NoError,
            vec![rec(
                "a.test.",
                60,
                RData::A(A::new(ip[0], ip[1], ip[2], ip[3])),
            )],
            vec![],
        )
    }

    #[test]
    fn an_answer_over_udp() {
        let mut r = engine(&["10.0.0.1:53"], 2);
        let q = r.query(t0(), "a.test", Rtype::A, 77).unwrap();
        let o = outs(&mut r);
        let [Out::Udp(_, to, dgram)] = &o[..] else {
            panic!("{o:?}")
        };
        assert_eq!(*to, sa("10.0.0.1:53"));
        // Spoofs first: wrong source, wrong ID, wrong question. All ignored.
        r.handle_udp(t0(), q, sa("10.0.0.9:53"), &a_answer(dgram, [6, 6, 6, 6]));
        let mut wrong_id = a_answer(dgram, [6, 6, 6, 6]);
        wrong_id[1] ^= 1;
        r.handle_udp(t0(), q, sa("10.0.0.1:53"), &wrong_id);
        let other = encode_query(77, "b.test", Rtype::A).unwrap();
        r.handle_udp(t0(), q, sa("10.0.0.1:53"), &a_answer(&other, [6, 6, 6, 6]));
        assert_eq!(outs(&mut r), []);
        r.handle_udp(t0(), q, sa("10.0.0.1:53"), &a_answer(dgram, [192, 0, 2, 1]));
        assert_eq!(
            outs(&mut r),
            [Out::Done(
                q,
                Ok(vec![RecordData::A(Ipv4Addr::new(192, 0, 2, 1))])
            )]
        );
        assert_eq!(r.in_flight(), 0);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn timeouts_and_failures_move_across_servers_then_end() {
        let mut r = engine(&["10.0.0.1:53", "10.0.0.2:53"], 2);
        let q = r.query(t0(), "a.test", Rtype::A, 1).unwrap();
        let _ = outs(&mut r);
        let two = Duration::from_secs(2);
        assert_eq!(r.poll_timeout(), Some(t0() + two));
        r.handle_timeout(t0() + two);
        assert!(matches!(&outs(&mut r)[..], [Out::Udp(_, to, _)] if *to == sa("10.0.0.2:53")));
        // The second server refuses the connection: the next round starts at once.
        r.handle_udp_error(t0() + two, q, "ECONNREFUSED");
        assert!(matches!(&outs(&mut r)[..], [Out::Udp(_, to, _)] if *to == sa("10.0.0.1:53")));
        // SERVFAIL from the first: on to the last try.
        let dgram = encode_query(1, "a.test", Rtype::A).unwrap();
        let sf = response(&dgram, ResponseCode::ServFail, vec![], vec![]);
        r.handle_udp(t0() + two, q, sa("10.0.0.1:53"), &sf);
        let _ = outs(&mut r);
        r.handle_timeout(t0() + 2 * two);
        assert_eq!(
            outs(&mut r),
            [Out::Done(q, Err(("ESERVFAIL: queryA a.test".into(), 0)))],
            "the most telling failure"
        );
    }

    #[test]
    fn every_try_timing_out_is_etimeout_and_refusals_econnrefused() {
        let mut r = engine(&["10.0.0.1:53"], 3);
        let q = r.query(t0(), "a.test", Rtype::A, 1).unwrap();
        let mut t = t0();
        for _ in 0..3 {
            let _ = outs(&mut r);
            t += Duration::from_secs(2);
            r.handle_timeout(t);
        }
        assert_eq!(
            outs(&mut r),
            [Out::Done(q, Err(("ETIMEOUT: queryA a.test".into(), 0)))]
        );
        let q = r.query(t0(), "a.test", Rtype::A, 1).unwrap();
        for _ in 0..3 {
            let _ = outs(&mut r);
            r.handle_udp_error(t0(), q, "ECONNREFUSED");
        }
        assert_eq!(
            outs(&mut r),
            [Out::Done(q, Err(("ECONNREFUSED: queryA a.test".into(), 0)))]
        );
    }

    #[test]
    fn nxdomain_is_an_answer_not_a_retry() {
        let mut r = engine(&["10.0.0.1:53", "10.0.0.2:53"], 2);
        let q = r.query(t0(), "nx.test", Rtype::A, 5).unwrap();
        let o = outs(&mut r);
        let [Out::Udp(_, _, dgram)] = &o[..] else {
            panic!()
        };
        let nx = response(
            dgram,
            ResponseCode::NXDomain,
            vec![],
            vec![soa("test.", 300, 60)],
        );
        r.handle_udp(t0(), q, sa("10.0.0.1:53"), &nx);
        assert_eq!(
            outs(&mut r),
            [Out::Done(q, Err(("ENOTFOUND: queryA nx.test".into(), 60)))]
        );
    }

    #[test]
    fn truncation_falls_back_to_tcp_at_any_split() {
        for split in [1usize, 2, 3, 10, 1000] {
            let mut r = engine(&["10.0.0.1:53"], 1);
            let q = r.query(t0(), "a.test", Rtype::A, 9).unwrap();
            let o = outs(&mut r);
            let [Out::Udp(_, _, dgram)] = &o[..] else {
                panic!()
            };
            let mut tc = a_answer(dgram, [1, 1, 1, 1]);
            tc[2] |= 0x02;
            r.handle_udp(t0(), q, sa("10.0.0.1:53"), &tc);
            assert_eq!(outs(&mut r), [Out::TcpConnect(q, sa("10.0.0.1:53"))]);
            r.handle_tcp_connected(t0(), q);
            let o = outs(&mut r);
            let [Out::TcpSend(_, framed)] = &o[..] else {
                panic!()
            };
            assert_eq!(&framed[2..], &dgram[..]);
            let full = a_answer(dgram, [192, 0, 2, 7]);
            let mut wire = (full.len() as u16).to_be_bytes().to_vec();
            wire.extend_from_slice(&full);
            wire.extend_from_slice(b"junk after the message");
            for piece in wire.chunks(split) {
                r.handle_tcp_input(t0(), q, piece);
            }
            assert_eq!(
                outs(&mut r),
                [
                    Out::TcpClose(q),
                    Out::Done(q, Ok(vec![RecordData::A(Ipv4Addr::new(192, 0, 2, 7))]))
                ],
                "split {split}"
            );
        }
    }

    #[test]
    fn a_tcp_failure_is_the_next_try() {
        let mut r = engine(&["10.0.0.1:53", "10.0.0.2:53"], 1);
        let q = r.query(t0(), "a.test", Rtype::A, 9).unwrap();
        let o = outs(&mut r);
        let [Out::Udp(_, _, dgram)] = &o[..] else {
            panic!()
        };
        let mut tc = a_answer(dgram, [1, 1, 1, 1]);
        tc[2] |= 0x02;
        r.handle_udp(t0(), q, sa("10.0.0.1:53"), &tc);
        let _ = outs(&mut r);
        r.handle_tcp_error(t0(), q, "ECONNREFUSED");
        let o = outs(&mut r);
        assert!(
            matches!(&o[..], [Out::TcpClose(_), Out::Udp(_, to, _)] if *to == sa("10.0.0.2:53")),
            "{o:?}"
        );
    }

    #[test]
    fn bad_names_and_no_servers_fail_at_once() {
        let mut r = engine(&["10.0.0.1:53"], 1);
        assert_eq!(
            r.query(t0(), &"x".repeat(64), Rtype::A, 1)
                .unwrap_err()
                .code(),
            "EBADNAME"
        );
        let mut none = engine(&[], 1);
        assert_eq!(
            none.query(t0(), "a.test", Rtype::A, 1).unwrap_err().code(),
            "ECONNREFUSED"
        );
    }

    #[test]
    fn rotate_starts_each_query_at_the_next_server() {
        let mut r = Resolver::new(Config {
            servers: vec![sa("10.0.0.1:53"), sa("10.0.0.2:53")],
            timeout: Duration::from_secs(1),
            attempts: 1,
            rotate: true,
        });
        let firsts: Vec<SocketAddr> = (0..4)
            .map(|_| {
                r.query(t0(), "a.test", Rtype::A, 1).unwrap();
                match &outs(&mut r)[..] {
                    [Out::Udp(_, to, _)] => *to,
                    o => panic!("{o:?}"),
                }
            })
            .collect();
        assert_eq!(
            firsts,
            [
                sa("10.0.0.1:53"),
                sa("10.0.0.2:53"),
                sa("10.0.0.1:53"),
                sa("10.0.0.2:53")
            ]
        );
    }
}
