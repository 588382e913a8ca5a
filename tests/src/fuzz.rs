//! Fuzz target bodies. `fuzz/` calls these under libFuzzer; the `fuzz_corpus`
//! test replays every seed through them on stable, so a fuzz-found regression
//! fails CI even without cargo-fuzz.

use std::time::{Duration, Instant};

use std::sync::OnceLock;

use netkit_dns::hosts::Hosts;
use netkit_socket::{Config, Error, Event, Socket, Transmit};
use netkit_tls::{ClientConfig, ClientOptions, Pem, ServerConfig, ServerOptions, TlsSession};

/// Interprets `data` as a sequence of operations on one socket and checks, after
/// every step: the buffer stays under the high-water mark; `drain` follows a
/// short write and is never missed; `close`/`connectError` happen at most once and
/// last; the wire carries exactly the accepted bytes in order (a prefix of them
/// once the socket was closed early).
pub fn socket_ops(data: &[u8]) {
    let mut it = data.iter().copied();
    let mut next = move || it.next();
    let high = 1 + next().map_or(64, usize::from) * 4;
    let low = (high - 1) * next().map_or(0, usize::from) / 255;
    let connecting = next().is_some_and(|b| b & 1 == 1);
    let half_open = next().is_some_and(|b| b & 1 == 1);
    let config = Config {
        high_water: high,
        low_water: low,
        allow_half_open: half_open,
        retain_capacity: 64,
        write_through: usize::MAX,
    };
    let start = Instant::now();
    let mut now = start;
    let mut s = if connecting {
        Socket::connecting(now, config)
    } else {
        Socket::accepted(now, config)
    };
    let effective_low = low.min(high - 1);
    let mut accepted = Vec::new();
    let mut wire = Vec::new();
    let mut log: Vec<Event> = Vec::new();
    let mut short = false;
    let mut counter = 0u8;
    while let Some(op) = next() {
        let arg = next().unwrap_or(0);
        match op % 12 {
            0 | 1 => {
                let len = usize::from(arg) * 3;
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        counter = counter.wrapping_add(1);
                        counter
                    })
                    .collect();
                match s.write(now, &bytes) {
                    Ok(n) => {
                        assert!(n <= bytes.len());
                        accepted.extend_from_slice(&bytes[..n]);
                        if n < bytes.len() {
                            short = true;
                        }
                    }
                    Err(_) => assert!(s.is_closed() || s.is_ending()),
                }
            }
            2 | 3 => match s.poll_transmit() {
                Transmit::Bytes(b) => {
                    assert!(!b.is_empty());
                    let n = usize::from(arg).min(b.len());
                    wire.extend_from_slice(&b[..n]);
                    s.handle_sent(now, n);
                }
                Transmit::Shutdown => s.handle_shutdown(now),
                Transmit::Idle => {}
            },
            4 => {
                let _ = s.handle_input(now, &[arg; 3]);
            }
            5 => {
                now += Duration::from_millis(u64::from(arg) * 10);
                s.handle_timeout(now);
            }
            6 => s.set_timeout(
                now,
                (arg > 0).then(|| Duration::from_millis(u64::from(arg))),
            ),
            7 => {
                if arg & 1 == 0 {
                    s.pause()
                } else {
                    s.resume()
                }
            }
            8 => {
                let _ = s.end(now);
            }
            9 => s.handle_eof(now),
            10 => match arg % 4 {
                0 => s.close(),
                1 => s.terminate(),
                2 => s.handle_error(Error::Closed),
                _ => s.handle_connected(now),
            },
            _ => s.handle_connect_error(Error::Closed),
        }
        while let Some(ev) = s.poll_event() {
            assert!(
                !log.iter()
                    .any(|e| matches!(e, Event::Close(_) | Event::ConnectError(_))),
                "event {ev:?} after close: {log:?}"
            );
            if ev == Event::Drain {
                assert!(short, "drain without a short write");
                short = false;
                assert!(s.buffered() <= effective_low);
            }
            if let Event::ConnectError(_) = ev {
                assert!(log.is_empty(), "connectError after {log:?}");
            }
            if ev == Event::Open {
                assert!(!log.contains(&Event::Open));
            }
            log.push(ev);
        }
        assert!(s.buffered() <= high);
        if short && !s.is_closed() {
            assert!(s.buffered() > effective_low, "drain went missing");
        }
    }
    let closed = s.is_closed();
    loop {
        match s.poll_transmit() {
            Transmit::Bytes(b) => {
                let n = b.len();
                wire.extend_from_slice(b);
                s.handle_sent(now, n);
            }
            Transmit::Shutdown => s.handle_shutdown(now),
            Transmit::Idle => break,
        }
    }
    if closed || s.is_closed() || !s.is_open() {
        assert!(accepted.starts_with(&wire));
    } else {
        assert_eq!(wire, accepted);
    }
}

/// Parses arbitrary text as a hosts file and looks names up: never panics; every
/// address a lookup returns is listed for that name.
pub fn hosts(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (file, name) = text.split_once('\0').unwrap_or((&text, "localhost"));
    let h = Hosts::parse(file);
    let found: Vec<_> = h.lookup(name).collect();
    assert!(found.len() <= h.len());
    for ip in found {
        assert!(h.reverse(ip).is_some());
    }
}

/// One self-signed identity for the TLS fuzz targets (key generation is slow).
fn tls_configs() -> &'static (ClientConfig, ServerConfig) {
    static CFG: OnceLock<(ClientConfig, ServerConfig)> = OnceLock::new();
    CFG.get_or_init(|| {
        let id =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("test certificate");
        let cert = Pem::new("fuzz.pem", id.cert.pem());
        let key = Pem::new("fuzz.key", id.signing_key.serialize_pem());
        let server = netkit_sys::tls::server_config(&ServerOptions::new(cert.clone(), key))
            .expect("server config");
        let client = netkit_sys::tls::client_config(&ClientOptions {
            ca: Some(cert),
            ..ClientOptions::default()
        })
        .expect("client config");
        (client, server)
    })
}

/// Feeds `bytes` to `t` in pieces of `chunk`, reading plaintext and transmitting
/// as a driver would (reading only while the session wants input); stops at
/// the first error. Never panics.
fn drive_tls(t: &mut TlsSession, bytes: &[u8], chunk: usize) {
    let mut out = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        while !t.wants_input() {
            // Backpressure: read plaintext, then go on.
            if t.read_plaintext_with(|b| b.len()).is_none() {
                return;
            }
        }
        if t.handle_input(piece).is_err() {
            out.clear();
            t.drain_transmit(&mut out);
            return;
        }
        while t.read_plaintext_with(|b| b.len()).is_some() {}
        while t.poll_event().is_some() {}
        out.clear();
        t.drain_transmit(&mut out);
        if t.error().is_some() {
            return;
        }
    }
    let _ = t.handle_eof();
}

/// Arbitrary bytes to a TLS server session, then (the same bytes) to a client
/// session as if they were the server's reply. The first byte picks the split.
pub fn tls_sessions(data: &[u8]) {
    let (client, server) = tls_configs();
    let (chunk, rest) = data
        .split_first()
        .map_or((1, data), |(c, r)| (usize::from(*c) + 1, r));
    let mut s = TlsSession::server(server).expect("server session");
    drive_tls(&mut s, rest, chunk);
    let mut c = TlsSession::client(client, "localhost").expect("client session");
    let mut hello = Vec::new();
    c.drain_transmit(&mut hello);
    drive_tls(&mut c, rest, chunk);
}

/// A real ClientHello, for seeding the TLS corpus.
pub fn client_hello() -> Vec<u8> {
    let (client, _) = tls_configs();
    let mut c = TlsSession::client(client, "localhost").expect("client session");
    let mut hello = Vec::new();
    c.drain_transmit(&mut hello);
    hello
}

/// Random outcomes and timings against `ConnectPlan`'s invariants: every
/// address attempted at most once, in interleaved order; at most one outcome
/// (`Connected` or `Failed`), last; a cancel names a running attempt; a
/// `Failed` after a refusal names the refusal.
pub fn connect_plan(data: &[u8]) {
    use netkit_socket::connect::{Action, AttemptId, ConnectConfig, ConnectPlan, interleave};
    use std::net::{IpAddr, SocketAddr};
    type Error = netkit_socket::Error;

    let mut it = data.iter().copied();
    let mut next = move || it.next();
    let n = 1 + usize::from(next().unwrap_or(1) % 6);
    let families = next().unwrap_or(0);
    let addrs: Vec<SocketAddr> = (0..n)
        .map(|i| {
            let port = 80;
            if families >> (i % 8) & 1 == 0 {
                SocketAddr::new(IpAddr::from([10, 0, 0, i as u8]), port)
            } else {
                SocketAddr::new(IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, i as u16]), port)
            }
        })
        .collect();
    let timeout = next()
        .filter(|b| b & 1 == 1)
        .map(|b| Duration::from_millis(u64::from(b) * 8));
    let resolve = next().is_some_and(|b| b & 1 == 1);
    let start = Instant::now();
    let mut now = start;
    let config = ConnectConfig {
        timeout,
        ..ConnectConfig::default()
    };
    let mut plan: ConnectPlan = if resolve {
        ConnectPlan::new(now, "host.test", 80, config)
    } else {
        ConnectPlan::to_addrs(now, &addrs, config)
    };
    let mut log: Vec<Action> = Vec::new();
    let mut running: Vec<AttemptId> = Vec::new();
    let mut refused = false;
    let drain = |plan: &mut ConnectPlan, log: &mut Vec<Action>, running: &mut Vec<AttemptId>| {
        while let Some(a) = plan.poll_action() {
            assert!(
                !log.iter()
                    .any(|x| matches!(x, Action::Connected { .. } | Action::Failed(_))),
                "an action after the outcome: {a:?}"
            );
            match &a {
                Action::Attempt { id, .. } => running.push(*id),
                Action::Cancel { id } => {
                    let i = running
                        .iter()
                        .position(|r| r == id)
                        .expect("cancel of a running attempt");
                    running.remove(i);
                }
                Action::Connected { id, .. } => {
                    assert!(running.contains(id), "a winner that was not running");
                }
                _ => {}
            }
            log.push(a);
        }
    };
    drain(&mut plan, &mut log, &mut running);
    while let Some(op) = next() {
        let arg = next().unwrap_or(0);
        now += Duration::from_millis(u64::from(arg) * 4);
        match op % 5 {
            0 => plan.handle_timeout(now),
            1 => {
                let ips = addrs.iter().map(|a| a.ip()).collect();
                plan.handle_resolved(
                    now,
                    if arg & 1 == 0 {
                        Ok(ips)
                    } else {
                        Ok(Vec::new())
                    },
                );
            }
            2 => {
                if let Some(id) = running
                    .get(usize::from(arg) % running.len().max(1))
                    .copied()
                {
                    plan.handle_connected(now, id);
                }
            }
            _ => {
                let id = running
                    .get(usize::from(arg) % running.len().max(1))
                    .copied();
                if let Some(id) = id {
                    let code = if arg & 1 == 0 {
                        "ECONNREFUSED"
                    } else {
                        "EHOSTUNREACH"
                    };
                    refused |= code == "ECONNREFUSED";
                    running.retain(|r| *r != id);
                    plan.handle_failed(now, id, Error::os(code, "connect"));
                }
            }
        }
        drain(&mut plan, &mut log, &mut running);
        assert_eq!(
            plan.is_done(),
            log.iter()
                .any(|x| matches!(x, Action::Connected { .. } | Action::Failed(_)))
        );
        if plan.is_done() {
            assert_eq!(plan.poll_timeout(), None);
        }
    }
    let tried: Vec<SocketAddr> = log
        .iter()
        .filter_map(|a| match a {
            Action::Attempt { addr, .. } => Some(*addr),
            _ => None,
        })
        .collect();
    let order: Vec<SocketAddr> = interleave(&addrs).into_iter().take(tried.len()).collect();
    assert_eq!(tried, order, "attempts out of order or repeated");
    if let Some(Action::Failed(e)) = log.last() {
        if refused && e.code() != "ETIMEDOUT" {
            assert_eq!(e.code(), "ECONNREFUSED", "the most useful error: {e}");
        }
    }
}

/// Random accept outcomes, closes and timers against `AcceptGate`: it accepts
/// exactly when it has no deadline; a shortage pauses it for 50 ms to 1 s; a
/// close or the deadline resumes it; other failures never pause it.
pub fn accept_gate(data: &[u8]) {
    use netkit_socket::accept::{AcceptGate, is_resource_shortage};
    const CODES: [&str; 8] = [
        "EMFILE",
        "ENFILE",
        "ENOBUFS",
        "ENOMEM",
        "ECONNABORTED",
        "EPROTO",
        "EPERM",
        "EINTR",
    ];
    let mut g = AcceptGate::new();
    let start = Instant::now();
    let mut now = start;
    let mut it = data.chunks(2);
    while let Some(&[op, arg]) = it.next() {
        now += Duration::from_millis(u64::from(arg) * 8);
        match op % 4 {
            0 => {
                let code = CODES[usize::from(arg) % CODES.len()];
                let was = g.wants_accept();
                g.handle_error(now, code);
                if is_resource_shortage(code) {
                    let t = g.poll_timeout().expect("a shortage pauses");
                    assert!(
                        t >= now + Duration::from_millis(50) && t <= now + Duration::from_secs(1)
                    );
                } else {
                    assert_eq!(g.wants_accept(), was, "{code} changed the gate");
                }
            }
            1 => {
                g.handle_closed();
                assert!(g.wants_accept());
            }
            2 => g.handle_accepted(),
            _ => {
                g.handle_timeout(now);
                if let Some(t) = g.poll_timeout() {
                    assert!(t > now);
                }
            }
        }
        assert_eq!(g.wants_accept(), g.poll_timeout().is_none());
    }
}

/// Arbitrary bytes as the response to a fixed query, for every record type:
/// never panics; a verdict that accepts the bytes as ours only ever comes with
/// our ID.
pub fn dns_message(data: &[u8]) {
    use netkit_dns::message::{Rtype, Verdict, read_response};
    for t in Rtype::ALL {
        let v = read_response(data, 0x1234, "fuzz.test", t);
        if !matches!(v, Verdict::Ignore(_)) {
            assert_eq!(data.get(..2), Some(&[0x12, 0x34][..]));
        }
    }
    // The same bytes as a name.
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = netkit_dns::message::parse_name(s);
    }
}

/// The whole resolver fed arbitrary events: the first bytes pick a request
/// (resolve or lookup), then chunks become UDP datagrams (from a server or
/// not), TCP bytes at arbitrary splits, socket errors and timeouts. Checks:
/// no panic; every request ends at most once; nothing is in flight once every
/// request ended; the stats add up.
pub fn dns_resolver(data: &[u8]) {
    use netkit_dns::cache::CacheConfig;
    use netkit_dns::hosts::Hosts;
    use netkit_dns::resolver::{Config, Output, QueryId};
    use netkit_dns::{Dns, DnsConfig, Event, Family, Rtype};
    use std::collections::HashSet;
    use std::net::SocketAddr;

    let server: SocketAddr = "10.0.0.1:53".parse().expect("literal");
    let mut d = Dns::new(DnsConfig {
        engine: Config {
            servers: vec![server, "10.0.0.2:53".parse().expect("literal")],
            timeout: Duration::from_secs(1),
            attempts: 2,
            rotate: data.first().is_some_and(|b| b & 1 == 1),
        },
        cache: CacheConfig::default(),
        search: vec!["corp.test".into()],
        ndots: 1,
    });
    let start = Instant::now();
    let mut now = start;
    let mut ids = {
        let mut n = 0u16;
        move || {
            n = n.wrapping_add(1);
            n
        }
    };
    let mut open: HashSet<u64> = HashSet::new();
    let mut ended: HashSet<u64> = HashSet::new();
    let mut queries: Vec<QueryId> = Vec::new();
    let mut closed: Vec<QueryId> = Vec::new();
    let mut it = data.iter().copied().skip(1);
    let t = Rtype::ALL[usize::from(it.next().unwrap_or(0)) % Rtype::ALL.len()];
    match it.next().unwrap_or(0) % 2 {
        0 => {
            if let Ok(r) = d.resolve(now, "a.test", t, ids()) {
                open.insert(r.0);
            }
        }
        _ => match d.lookup(now, "www", Family::Any, false, &Hosts::default(), &mut ids) {
            Ok(Err(r)) => {
                open.insert(r.0);
            }
            _ => return,
        },
    }
    let rest: Vec<u8> = it.collect();
    let mut chunks = rest.chunks(48);
    loop {
        while let Some(e) = d.poll_event(now, &mut ids) {
            let r = match e {
                Event::Resolved { request, .. } | Event::LookedUp { request, .. } => request.0,
            };
            assert!(open.remove(&r), "request {r} ended twice or was never made");
            ended.insert(r);
        }
        while let Some(o) = d.poll_output() {
            match o {
                Output::Udp { query, .. } | Output::TcpConnect { query, .. } => {
                    assert!(!closed.contains(&query), "output for a closed query");
                    if !queries.contains(&query) {
                        queries.push(query);
                    }
                }
                Output::Close { query } => {
                    assert!(!closed.contains(&query), "closed twice");
                    closed.push(query);
                }
                Output::TcpSend { .. } | Output::TcpClose { .. } => {}
            }
        }
        let Some(chunk) = chunks.next() else { break };
        let (op, body) = chunk.split_first().unwrap_or((&0, &[]));
        let q = queries
            .get(usize::from(*op >> 3) % queries.len().max(1))
            .copied()
            .unwrap_or(QueryId(0));
        match op % 8 {
            0..=2 => d.handle_udp(now, q, server, body),
            3 => d.handle_udp(now, q, "10.6.6.6:53".parse().expect("literal"), body),
            4 => d.handle_tcp_connected(now, q),
            5 => d.handle_tcp_input(now, q, body),
            6 => d.handle_udp_error(now, q, "ECONNREFUSED"),
            _ => {
                now += Duration::from_millis(u64::from(body.first().copied().unwrap_or(0)) * 20);
                d.handle_timeout(now);
            }
        }
    }
    // Time runs out: every request ends.
    for _ in 0..16 {
        now += Duration::from_secs(2);
        d.handle_timeout(now);
        while let Some(e) = d.poll_event(now, &mut ids) {
            let r = match e {
                Event::Resolved { request, .. } | Event::LookedUp { request, .. } => request.0,
            };
            assert!(open.remove(&r), "request {r} ended twice");
        }
        while let Some(o) = d.poll_output() {
            if let Output::Close { query } = o {
                assert!(!closed.contains(&query), "closed twice");
                closed.push(query);
            }
        }
    }
    assert!(open.is_empty(), "requests never ended: {open:?}");
    queries.sort();
    closed.sort();
    assert_eq!(
        queries, closed,
        "every query's sockets are closed once (data {data:?})"
    );
    assert_eq!(d.in_flight(), 0);
    let st = d.stats();
    assert_eq!(
        st.total_count,
        st.cache_hits_completed + st.cache_hits_inflight + st.cache_misses
    );
}

/// Seeds for the DNS targets, as (`target/file`, bytes): real responses.
pub fn dns_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
    use hickory_proto::rr::rdata::{A, CNAME};
    use hickory_proto::rr::{Name, RData, Record};
    use netkit_dns::message::{Rtype, encode_query};

    let answer = |id: u16, qname: &str, t: Rtype, records: Vec<Record>, tc: bool| {
        let q = Message::from_vec(&encode_query(id, qname, t).expect("query")).expect("decode");
        let mut m = Message::new(id, MessageType::Response, OpCode::Query);
        m.metadata.response_code = ResponseCode::NoError;
        m.metadata.truncation = tc;
        m.add_queries(q.queries.clone());
        m.add_answers(records);
        m.to_vec().expect("encode")
    };
    let name = |s: &str| Name::from_ascii(s).expect("name");
    let a = |n: &str| Record::from_rdata(name(n), 60, RData::A(A::new(192, 0, 2, 1)));
    let cname = |n: &str, to: &str| Record::from_rdata(name(n), 60, RData::CNAME(CNAME(name(to))));
    let msg = answer(
        0x1234,
        "fuzz.test",
        Rtype::A,
        vec![cname("fuzz.test.", "real.test."), a("real.test.")],
        false,
    );
    // Resolver: no rotate, type A, resolve; then a UDP datagram from the
    // server (op 0), and a truncated one then TCP (ops 4, 5).
    let mut udp = vec![0u8, 0, 0, 0];
    udp.extend(answer(1, "a.test", Rtype::A, vec![a("a.test.")], false));
    let mut tcp = vec![0u8, 0, 0, 0];
    let tc = answer(1, "a.test", Rtype::A, vec![], true);
    tcp.extend(&tc);
    tcp.resize(4 + 48, 0);
    tcp.push(4);
    tcp.resize(4 + 96, 0);
    let full = answer(1, "a.test", Rtype::A, vec![a("a.test.")], false);
    let mut framed = (full.len() as u16).to_be_bytes().to_vec();
    framed.extend(&full);
    for piece in framed.chunks(47) {
        tcp.push(5);
        tcp.extend(piece);
    }
    vec![
        ("dns_message/seed-cname-chain", msg),
        ("dns_resolver/seed-udp-answer", udp),
        ("dns_resolver/seed-tc-then-tcp", tcp),
    ]
}

/// A response decoder's run over `pieces`, summarised: (status codes of
/// heads, body bytes, trailer count, ended, bytes left, reusable) or the error.
type HttpRun = Result<(Vec<u16>, Vec<u8>, usize, bool, usize, bool), netkit_http1::Error>;

fn http_run(kind: netkit_http1::RequestKind, pieces: &mut dyn Iterator<Item = &[u8]>) -> HttpRun {
    use netkit_http1::{Event, Limits, ResponseDecoder};
    let limits = Limits {
        max_head: 4096,
        max_headers: 16,
    };
    let mut d = ResponseDecoder::new(kind, limits);
    let (mut heads, mut body, mut trailers, mut ended) = (Vec::new(), Vec::new(), 0, false);
    let mut buf = Vec::new();
    for p in pieces {
        buf.extend_from_slice(p);
        while !ended {
            let (n, e) = d.decode(&buf)?;
            assert!(n <= buf.len());
            let Some(e) = e else {
                assert!(
                    buf.len() - n <= limits.max_head || d.has_head(),
                    "unbounded head"
                );
                buf.drain(..n);
                break;
            };
            match e {
                Event::Informational(h) => {
                    assert!(
                        heads.is_empty() || heads.last().is_some_and(|s| (100..200).contains(s))
                    );
                    heads.push(h.status());
                }
                Event::Head(h) => heads.push(h.status()),
                Event::Data(b) => {
                    assert!(!b.is_empty() && d.has_head());
                    body.extend_from_slice(b);
                }
                Event::Trailers(f) => {
                    assert!(!f.is_empty() && f.len() <= limits.max_headers);
                    trailers += 1;
                }
                Event::End => ended = true,
            }
            buf.drain(..n);
        }
    }
    if !ended {
        ended = d.finish()?.is_some();
    }
    assert_eq!(d.is_done(), ended);
    Ok((heads, body, trailers, ended, buf.len(), d.reuse().is_some()))
}

/// Arbitrary bytes as a response (the first byte picks the request kind and
/// a piece size): never a panic; every allocation bounded; fed whole or in
/// pieces, the same outcome.
pub fn http_response(data: &[u8]) {
    use netkit_http1::RequestKind;
    let Some((&ctl, input)) = data.split_first() else {
        return;
    };
    let kind = [RequestKind::Other, RequestKind::Head, RequestKind::Connect][usize::from(ctl % 3)];
    let piece = 1 + usize::from(ctl / 3) % 16;
    let whole = http_run(kind, &mut std::iter::once(input));
    let split = http_run(kind, &mut input.chunks(piece));
    assert_eq!(whole, split);
    if let Ok((heads, body, ..)) = &whole {
        assert!(body.len() <= input.len() && heads.len() <= input.len());
    }
}

/// Arbitrary bytes as a chunked body (after a fixed head), whole and in
/// pieces: the same outcome, never a panic.
pub fn http_chunked(data: &[u8]) {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    let mut input = b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    input[0] = ctl.wrapping_mul(3);
    input.extend_from_slice(body);
    http_response(&input);
}

/// Arbitrary proxy environments, NO_PROXY lists and URLs: never a panic; `*`
/// bypasses everything; a domain entry never matches a name that merely
/// ends with it (`badexample.com` for `example.com`); the selected proxy is
/// the one configured for the scheme.
pub fn proxy_select(data: &[u8]) {
    use netkit_fetch::Url;
    use netkit_fetch::proxy::{NoProxy, ProxyConfig};
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\n');
    let mut next = || parts.next().unwrap_or("").to_owned();
    let (http, https, all, no, url) = (next(), next(), next(), next(), next());
    let env = |k: &str| -> Option<String> {
        match k {
            "http_proxy" => Some(http.clone()),
            "HTTPS_PROXY" => Some(https.clone()),
            "all_proxy" => Some(all.clone()),
            "NO_PROXY" => Some(no.clone()),
            _ => None,
        }
    };
    let n = NoProxy::parse(&no);
    if let Ok(u) = Url::parse(&url) {
        if let Ok(c) = ProxyConfig::from_env(env) {
            let _ = c.select(&u);
        }
        let host = u
            .host_str()
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_ascii_lowercase();
        let port = u.port_or_known_default().unwrap_or(0);
        let star = NoProxy::parse(&format!("{no},*"));
        assert!(star.matches(&host, port));
        let m = n.matches(&host, port);
        // Adding an entry never removes a match.
        assert!(!m || NoProxy::parse(&format!("{no},unrelated.invalid")).matches(&host, port));
    }
    let d = NoProxy::parse("example.com");
    let probe = format!(
        "bad{}",
        url.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(20)
            .collect::<String>()
    );
    assert!(!d.matches(&format!("{probe}example.com"), 80));
    assert!(d.matches(&format!("{probe}.example.com"), 80));
}

/// Arbitrary bytes as a `sendMany` list (entries cut at `\0`: a tag byte
/// `d`ata, `p`ort or `a`ddress, then its text), decoded for both families
/// and planned under limits taken from the first bytes; then the same bytes
/// as a GRO buffer split at a segment size. Checks: decoding never panics
/// and names an index inside the list; a plan carries every packet once, in
/// order, within its limits; the split rebuilds the buffer.
pub fn udp_batch(data: &[u8]) {
    use netkit_udp::args::{Arg, Error, Family, decode_connected, decode_unconnected};
    use netkit_udp::plan::{Batch, Limits, plan};
    let (head, rest) = data.split_at(data.len().min(4));
    let b = |i: usize| head.get(i).copied().unwrap_or(0);
    let limits = Limits {
        gso: b(0) & 1 == 1,
        max_segments: 1 + usize::from(b(1) % 64),
        max_batch: 1 + usize::from(b(2)),
        ..Limits::default()
    };
    let entries: Vec<&[u8]> = rest.split(|c| *c == 0).collect();
    let texts: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .collect();
    let args: Vec<Arg<'_>> = entries
        .iter()
        .zip(&texts)
        .map(|(e, t)| match e.first() {
            Some(b'p') => Arg::Port(t[1..].trim().parse().unwrap_or(-1)),
            Some(b'a') => Arg::Addr(&t[1..]),
            _ => Arg::Data(e.get(1..).unwrap_or(&[])),
        })
        .collect();
    for family in [Family::V4, Family::V6] {
        match decode_unconnected(&args, family) {
            Ok(packets) => {
                assert_eq!(packets.len() * 3, args.len());
                let mut next = 0;
                for batch in plan(&packets, &limits) {
                    let r = batch.range();
                    assert_eq!(r.start, next);
                    assert!(!r.is_empty() && r.end <= packets.len());
                    if let Batch::Gso { count, segment, .. } = batch {
                        assert!(count >= 2 && count <= limits.max_segments);
                        assert!(
                            packets[r.clone()]
                                .iter()
                                .all(|p| p.to == packets[r.start].to && p.data.len() <= segment)
                        );
                    }
                    next = r.end;
                }
                assert_eq!(next, packets.len());
            }
            Err(
                Error::NotData(i)
                | Error::NotPort(i)
                | Error::Connected(i)
                | Error::Port { index: i, .. }
                | Error::Addr { index: i, .. }
                | Error::Family { index: i, .. },
            ) => assert!(i < args.len()),
            Err(Error::Length(n)) => assert_eq!(n, args.len()),
            Err(e) => panic!("an error without its place: {e}"),
        }
    }
    let _ = decode_connected(&args);
    let segment = usize::from(b(3));
    let pieces: Vec<&[u8]> = netkit_udp::recv::split(rest, segment).collect();
    assert_eq!(pieces.concat(), rest);
}
