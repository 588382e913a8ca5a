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
