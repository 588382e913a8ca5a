//! `TlsSocket` pairs in memory: Bun's socket semantics over TLS.

use std::sync::Arc;
use std::time::Instant;

use netkit_socket::{Config, Transmit};

use crate::SocketEvent as Event;
use proptest::prelude::*;

use crate::{ClientOptions, Pem, ServerOptions, TlsSession, TlsSocket};

/// The tests' time zero (no test advances time; certificate validity uses the
/// fixed wall clock of `tests::FixedTime`).
fn t0() -> Instant {
    netkit_test_clock::origin()
}

fn pair(alpn_mismatch: bool) -> (TlsSocket, TlsSocket) {
    let id = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = Pem::new("cert.pem", id.cert.pem());
    let key = Pem::new("key.pem", id.signing_key.serialize_pem());
    let mut so = ServerOptions::new(cert.clone(), key);
    so.time = Some(Arc::new(crate::tests::FixedTime(crate::tests::Y2030)));
    if alpn_mismatch {
        so.alpn = vec![b"h2".to_vec()];
    }
    let scfg = crate::server_config(&so).unwrap();
    let ccfg = crate::client_config(&ClientOptions {
        ca: Some(cert),
        alpn: if alpn_mismatch {
            vec![b"x".to_vec()]
        } else {
            vec![]
        },
        time: Some(Arc::new(crate::tests::FixedTime(crate::tests::Y2030))),
        ..ClientOptions::default()
    })
    .unwrap();
    let now = t0();
    let config = Config::default();
    let mut c = TlsSocket::new(
        now,
        config.clone(),
        TlsSession::client(&ccfg, "localhost").unwrap(),
    );
    let mut s = TlsSocket::new(now, config, TlsSession::server(&scfg).unwrap());
    c.handle_connected(now);
    s.handle_connected(now);
    (c, s)
}

/// What one side saw.
#[derive(Default, Debug)]
struct Seen {
    data: Vec<u8>,
    events: Vec<Event>,
    fin: bool,
}

/// One direction: `a` transmits to `b` (in pieces of `chunk`), `b` delivers
/// plaintext and events. Returns whether anything happened.
fn step(
    a: &mut TlsSocket,
    b: &mut TlsSocket,
    sa: &mut Seen,
    sb: &mut Seen,
    chunk: usize,
    buf: &mut [u8],
) -> bool {
    let now = t0();
    let mut progress = false;
    loop {
        match a.poll_transmit(now) {
            Transmit::Bytes(bytes) => {
                let n = bytes.len().min(chunk);
                let piece = bytes[..n].to_vec();
                a.handle_sent(now, n);
                b.handle_input(now, &piece);
                progress = true;
            }
            Transmit::Shutdown => {
                a.handle_shutdown(now);
                sa.fin = true;
                b.handle_eof(now);
                progress = true;
            }
            Transmit::Idle => break,
        }
    }
    loop {
        let n = b.read_plaintext(now, buf);
        if n == 0 {
            break;
        }
        sb.data.extend_from_slice(&buf[..n]);
        progress = true;
    }
    while let Some(ev) = b.poll_event() {
        sb.events.push(ev);
        progress = true;
    }
    while let Some(ev) = a.poll_event() {
        sa.events.push(ev);
        progress = true;
    }
    progress
}

/// Moves bytes both ways until quiet; a side's FIN becomes the other's EOF.
fn run(c: &mut TlsSocket, s: &mut TlsSocket, cs: &mut Seen, ss: &mut Seen, chunk: usize) {
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..10_000 {
        let p1 = step(c, s, cs, ss, chunk, &mut buf);
        let p2 = step(s, c, ss, cs, chunk, &mut buf);
        assert_not_stuck(c, "client");
        assert_not_stuck(s, "server");
        if !p1 && !p2 {
            return;
        }
    }
    panic!("no quiescence");
}

#[test]
fn open_after_handshake_then_echo_and_clean_close() {
    let now = t0();
    let (mut c, mut s) = pair(false);
    let (mut cs, mut ss) = (Seen::default(), Seen::default());
    // Writes before the handshake are held, then sent.
    assert_eq!(c.write(now, b"early").unwrap(), 5);
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    assert_eq!(cs.events, [Event::Open]);
    assert_eq!(ss.events, [Event::Open]);
    assert_eq!(ss.data, b"early");
    s.write(now, b"reply").unwrap();
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    assert_eq!(cs.data, b"reply");
    // Client ends: close_notify + FIN; the server sees End, ends too; both close.
    c.end(now).unwrap();
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    assert_eq!(ss.events, [Event::Open, Event::End, Event::Close(None)]);
    assert_eq!(cs.events, [Event::Open, Event::End, Event::Close(None)]);
    assert!(cs.fin && ss.fin);
}

#[test]
fn close_notify_with_data_ends_the_socket_before_any_fin() {
    let now = t0();
    let (mut c, mut s) = pair(false);
    let (mut cs, mut ss) = (Seen::default(), Seen::default());
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    // Data and close_notify arrive in one read; the FIN has not arrived.
    c.write(now, b"last words").unwrap();
    c.end(now).unwrap();
    let wire = wire_of(&mut c);
    s.handle_input(now, &wire);
    let mut buf = vec![0u8; 1024];
    let mut got = Vec::new();
    loop {
        let n = s.read_plaintext(now, &mut buf);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"last words");
    let evs: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(evs, [Event::End]);
    // The server's own end answers with close_notify, then FIN.
    assert!(matches!(s.poll_transmit(now), Transmit::Bytes(_)));
}

#[test]
fn truncation_is_an_error_then_close() {
    let now = t0();
    let (mut c, mut s) = pair(false);
    let (mut cs, mut ss) = (Seen::default(), Seen::default());
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    // TCP EOF without close_notify.
    s.handle_eof(now);
    let evs: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        matches!(&evs[..], [Event::Error(e), Event::Close(Some(_))] if e.to_string().contains("close_notify")),
        "{evs:?}"
    );
}

#[test]
fn handshake_failure_is_a_connect_error_on_both_sides() {
    let (mut c, mut s) = pair(true);
    let (mut cs, mut ss) = (Seen::default(), Seen::default());
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    assert!(
        matches!(&ss.events[..], [Event::ConnectError(e)] if e.to_string().starts_with("tls: ")),
        "{:?}",
        ss.events
    );
    assert!(
        matches!(&cs.events[..], [Event::ConnectError(_)]),
        "{:?}",
        cs.events
    );
}

#[test]
fn garbage_from_a_client_fails_only_that_socket() {
    let now = t0();
    let (_, mut s) = pair(false);
    s.handle_input(now, b"\x00\x01garbage that is not TLS at all\r\n");
    let evs: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(matches!(&evs[..], [Event::ConnectError(_)]), "{evs:?}");
}

#[test]
fn paused_reading_holds_back_ciphertext() {
    let now = t0();
    let (mut c, mut s) = pair(false);
    let (mut cs, mut ss) = (Seen::default(), Seen::default());
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    s.pause();
    let big = vec![9u8; 200 * 1024];
    let mut sent = 0;
    while sent < big.len() {
        let n = c.write(now, &big[sent..]).unwrap();
        sent += n;
        while let Transmit::Bytes(b) = c.poll_transmit(now) {
            let b = b.to_vec();
            c.handle_sent(now, b.len());
            s.handle_input(now, &b);
        }
    }
    assert!(!s.wants_read(), "server should stop reading while paused");
    let mut buf = vec![0u8; 64 * 1024];
    assert_eq!(
        s.read_plaintext(now, &mut buf),
        0,
        "nothing delivered while paused"
    );
    s.resume();
    let mut got = 0;
    loop {
        let n = s.read_plaintext(now, &mut buf);
        if n == 0 {
            break;
        }
        got += n;
    }
    assert_eq!(got, big.len(), "everything arrives after resume");
}

/// Everything `a` has to send, marked sent.
fn wire_of(a: &mut TlsSocket) -> Vec<u8> {
    let now = t0();
    let mut wire = Vec::new();
    while let Transmit::Bytes(b) = a.poll_transmit(now) {
        wire.extend_from_slice(b);
        let n = b.len();
        a.handle_sent(now, n);
    }
    wire
}

/// Delivers what `s` holds as a driver does: read until 0, echo each chunk
/// back with `Echo: `, then drain events. Returns (plaintext, events).
fn echo_all(s: &mut TlsSocket) -> (Vec<u8>, Vec<Event>) {
    let now = t0();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = Vec::new();
    loop {
        let n = s.read_plaintext(now, &mut buf);
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let mut reply = b"Echo: ".to_vec();
        reply.extend_from_slice(&buf[..n]);
        let _ = s.write(now, &reply);
    }
    (got, std::iter::from_fn(|| s.poll_event()).collect())
}

/// The socket owes nothing and waits for nothing: it is closed, or it has a
/// reason to be polled again (it wants input, or has events or plaintext due),
/// or the application paused it.
fn assert_not_stuck(s: &TlsSocket, ctx: &str) {
    let live = s.wants_read()
        || s.has_events()
        || (s.wants_plaintext() && s.has_plaintext())
        || !s.wants_plaintext();
    assert!(
        s.is_closed() || live,
        "{ctx}: no interest and no event: {s:?}"
    );
}

/// Records as the client would send them: `valid` as one record, then a record
/// whose ciphertext was altered.
fn valid_then_corrupt(c: &mut TlsSocket, valid: &[u8]) -> Vec<u8> {
    let now = t0();
    c.write(now, valid).unwrap();
    let mut wire = wire_of(c);
    c.write(now, b"this record is corrupted on the way")
        .unwrap();
    let mut bad = wire_of(c);
    let last = bad.len() - 1;
    bad[last] ^= 0x55; // the AEAD tag no longer matches
    wire.extend_from_slice(&bad);
    wire
}

/// A record that fails authentication right after a valid one, in the same
/// input: the valid plaintext is delivered and answered, then the socket fails
/// (`Error`, `Close`) and the alert follows the answer on the wire. (Python's
/// ssl server and Bun do the same.) Every split of the input gives that.
#[test]
fn a_bad_record_after_valid_data_delivers_the_data_then_fails() {
    let now = t0();
    for split in [usize::MAX, 1, 7, 100] {
        let (mut c, mut s) = pair(false);
        let (mut cs, mut ss) = (Seen::default(), Seen::default());
        run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
        let wire = valid_then_corrupt(&mut c, b"hello");
        let (mut got, mut evs) = (Vec::new(), Vec::new());
        for piece in wire.chunks(split.min(wire.len())) {
            if s.is_closed() {
                break;
            }
            s.handle_input(now, piece);
            let (g, e) = echo_all(&mut s);
            got.extend(g);
            evs.extend(e);
            assert_not_stuck(&s, "after a piece");
        }
        assert_eq!(got, b"hello", "split {split}");
        assert!(
            matches!(&evs[..], [Event::Error(e), Event::Close(Some(_))] if e.to_string().contains("decrypt")),
            "split {split}: {evs:?}"
        );
        assert!(s.is_closed());
        // What the server still owes the client: the echo, then the alert.
        let parting = s.session().poll_transmit().to_vec();
        c.handle_input(now, &parting);
        let (echo, evs) = echo_all(&mut c);
        assert_eq!(echo, b"Echo: hello", "split {split}");
        assert!(
            matches!(&evs[..], [Event::Error(e), Event::Close(Some(_))] if e.to_string().contains("BadRecordMac")),
            "split {split}: {evs:?}"
        );
    }
}

/// A fatal alert right after data, in one input: the data is delivered, then
/// the socket fails with the alert.
#[test]
fn a_fatal_alert_after_data_delivers_the_data_then_fails() {
    let now = t0();
    let (mut c, mut s) = pair(false);
    let (mut cs, mut ss) = (Seen::default(), Seen::default());
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    c.write(now, b"before the alert").unwrap();
    let mut wire = wire_of(&mut c);
    // The client fails (garbage from the server) and sends its fatal alert.
    c.handle_input(now, b"\x17\x03\x03\x00\x05hello");
    assert!(c.is_closed());
    wire.extend_from_slice(c.session().poll_transmit());
    s.handle_input(now, &wire);
    let (got, evs) = echo_all(&mut s);
    assert_eq!(got, b"before the alert");
    assert!(
        matches!(&evs[..], [Event::Error(e), Event::Close(Some(_))] if e.to_string().contains("alert")),
        "{evs:?}"
    );
    assert_not_stuck(&s, "after the alert");
}

/// The session fails while the application still holds the socket: the next
/// write is refused, `Error` and `Close` come exactly once, and nothing else.
#[test]
fn a_write_after_the_session_failed_is_refused() {
    let now = t0();
    let (mut c, mut s) = pair(false);
    let (mut cs, mut ss) = (Seen::default(), Seen::default());
    run(&mut c, &mut s, &mut cs, &mut ss, usize::MAX);
    let wire = valid_then_corrupt(&mut c, b"x");
    s.handle_input(now, &wire);
    let mut buf = [0u8; 1024];
    assert_eq!(s.read_plaintext(now, &mut buf), 1);
    // The next read meets the bad record: the socket fails.
    assert_eq!(s.read_plaintext(now, &mut buf), 0);
    assert!(s.write(now, b"too late").is_err());
    let evs: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(
        matches!(&evs[..], [Event::Error(_), Event::Close(Some(_))]),
        "{evs:?}"
    );
    assert!(s.write(now, b"later still").is_err());
    assert_eq!(s.poll_event(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Any split of the transport bytes and any write sizes deliver the same
    /// plaintext, in order, both ways.
    #[test]
    fn any_split_same_plaintext(chunk in 1usize..2000, sizes in proptest::collection::vec(0usize..5000, 1..8)) {
        let now = t0();
        let (mut c, mut s) = pair(false);
        let (mut cs, mut ss) = (Seen::default(), Seen::default());
        let mut want = Vec::new();
        let mut k = 0u8;
        for n in sizes {
            let chunk_data: Vec<u8> = (0..n).map(|_| { k = k.wrapping_add(1); k }).collect();
            let mut off = 0;
            while off < chunk_data.len() {
                off += c.write(now, &chunk_data[off..]).unwrap();
                run(&mut c, &mut s, &mut cs, &mut ss, chunk);
            }
            want.extend_from_slice(&chunk_data);
            run(&mut c, &mut s, &mut cs, &mut ss, chunk);
        }
        prop_assert_eq!(&ss.data, &want);
        prop_assert_eq!(&ss.events, &vec![Event::Open]);
    }
}

/// TLS inside TLS in memory: a `TlsSocket` whose transport is a client
/// `TlsSession` (a proxy tunnel), against a `TlsSocket` server behind the
/// tunnel's server session. Each layer has its own name and certificate; data
/// flows both ways at any split of the outer ciphertext, and one `end()` closes
/// both layers cleanly (close_notify inside, then the tunnel's close_notify as the
/// inner transport's FIN).
#[test]
fn tls_socket_inside_a_tls_session() {
    fn identity(name: &str) -> (Pem, Pem) {
        let id = rcgen::generate_simple_self_signed(vec![name.into()]).unwrap();
        (
            Pem::new(format!("{name}.pem"), id.cert.pem()),
            Pem::new(format!("{name}.key"), id.signing_key.serialize_pem()),
        )
    }
    fn configs(id: &(Pem, Pem)) -> (crate::ServerConfig, crate::ClientConfig) {
        let time = || -> Option<Arc<dyn rustls::time_provider::TimeProvider>> {
            Some(Arc::new(crate::tests::FixedTime(crate::tests::Y2030)))
        };
        let mut so = ServerOptions::new(id.0.clone(), id.1.clone());
        so.time = time();
        let co = ClientOptions {
            ca: Some(id.0.clone()),
            time: time(),
            ..ClientOptions::default()
        };
        (
            crate::server_config(&so).unwrap(),
            crate::client_config(&co).unwrap(),
        )
    }
    /// Moves the plaintext a socket transmits into the session that carries it;
    /// the socket's FIN becomes the session's close_notify.
    fn socket_to_session(sock: &mut TlsSocket, sess: &mut TlsSession) -> bool {
        let now = t0();
        let mut progress = false;
        loop {
            match sock.poll_transmit(now) {
                Transmit::Bytes(b) => {
                    let n = sess.write(b).unwrap();
                    sock.handle_sent(now, n);
                }
                Transmit::Shutdown => {
                    sess.close();
                    sock.handle_shutdown(now);
                }
                Transmit::Idle => return progress,
            }
            progress = true;
        }
    }
    /// Moves a session's TLS bytes to its peer session in pieces of `chunk`, as
    /// far as the peer takes them (it stops while its plaintext is not read).
    fn session_to_session(a: &mut TlsSession, b: &mut TlsSession, chunk: usize) -> bool {
        let mut progress = false;
        while a.wants_transmit() && b.wants_input() {
            let n = a.poll_transmit().len().min(chunk);
            b.handle_input(&a.poll_transmit()[..n]).unwrap();
            a.handle_sent(n);
            progress = true;
        }
        progress
    }
    /// Moves the plaintext a session received into the socket it carries; its
    /// peer's close_notify becomes the socket's transport EOF (once).
    fn session_to_socket(
        sess: &mut TlsSession,
        sock: &mut TlsSocket,
        eof_given: &mut bool,
        seen: &mut Seen,
        buf: &mut [u8],
    ) -> bool {
        let now = t0();
        let mut progress = false;
        while sess.poll_event().is_some() {}
        loop {
            let n = sess.read_plaintext(buf);
            if n == 0 {
                break;
            }
            sock.handle_input(now, &buf[..n]);
            progress = true;
        }
        if sess.peer_closed() && !*eof_given {
            *eof_given = true;
            sock.handle_eof(now);
            progress = true;
        }
        loop {
            let n = sock.read_plaintext(now, buf);
            if n == 0 {
                break;
            }
            seen.data.extend_from_slice(&buf[..n]);
            progress = true;
        }
        while let Some(ev) = sock.poll_event() {
            seen.events.push(ev);
            progress = true;
        }
        progress
    }

    struct World {
        tc: TlsSession,
        ts: TlsSession,
        ec: TlsSocket,
        es: TlsSocket,
        cs: Seen,
        ss: Seen,
        c_eof: bool,
        s_eof: bool,
        chunk: usize,
    }
    impl World {
        fn run(&mut self) {
            let mut buf = vec![0u8; 64 * 1024];
            for _ in 0..100_000 {
                let mut p = socket_to_session(&mut self.ec, &mut self.tc);
                p |= session_to_session(&mut self.tc, &mut self.ts, self.chunk);
                p |= session_to_socket(
                    &mut self.ts,
                    &mut self.es,
                    &mut self.s_eof,
                    &mut self.ss,
                    &mut buf,
                );
                p |= socket_to_session(&mut self.es, &mut self.ts);
                p |= session_to_session(&mut self.ts, &mut self.tc, self.chunk);
                p |= session_to_socket(
                    &mut self.tc,
                    &mut self.ec,
                    &mut self.c_eof,
                    &mut self.cs,
                    &mut buf,
                );
                if !p {
                    return;
                }
            }
            panic!("no quiescence");
        }
    }

    for chunk in [usize::MAX, 1000, 7] {
        let now = t0();
        let tunnel_id = identity("tunnel.test");
        let origin_id = identity("localhost");
        let (tunnel_server, tunnel_client) = configs(&tunnel_id);
        let (origin_server, origin_client) = configs(&origin_id);
        let tc = TlsSession::client(&tunnel_client, "tunnel.test").unwrap();
        let ts = TlsSession::server(&tunnel_server).unwrap();
        let config = Config::default();
        let mut ec = TlsSocket::new(
            now,
            config.clone(),
            TlsSession::client(&origin_client, "localhost").unwrap(),
        );
        let mut es = TlsSocket::new(now, config, TlsSession::server(&origin_server).unwrap());
        // The tunnel is up (a proxy's CONNECT answered): both inner sides start.
        ec.handle_connected(now);
        es.handle_connected(now);
        let mut w = World {
            tc,
            ts,
            ec,
            es,
            cs: Seen::default(),
            ss: Seen::default(),
            c_eof: false,
            s_eof: false,
            chunk,
        };

        let up: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut off = 0;
        while off < up.len() {
            off += w.ec.write(now, &up[off..]).unwrap();
            w.run();
        }
        assert_eq!(w.cs.events, [Event::Open], "chunk {chunk}");
        assert_eq!(w.ss.events, [Event::Open], "chunk {chunk}");
        assert!(
            w.ss.data == up,
            "chunk {chunk}: upstream data {} of {}",
            w.ss.data.len(),
            up.len()
        );
        // Each layer saw its own name and certificate.
        assert_eq!(w.ts.sni(), Some("tunnel.test"));
        assert_eq!(w.es.session().sni(), Some("localhost"));
        let leaf = |s: &TlsSession| s.peer_certificates().unwrap()[0].to_vec();
        assert_eq!(leaf(&w.tc), tunnel_id.0.certificates().unwrap()[0].to_vec());
        assert_eq!(
            leaf(w.ec.session()),
            origin_id.0.certificates().unwrap()[0].to_vec()
        );
        assert_eq!(
            w.ec.session().authorization(),
            Some(&crate::Authorization::Authorized)
        );

        let down = b"the origin answers through the tunnel".repeat(1000);
        let mut off = 0;
        while off < down.len() {
            off += w.es.write(now, &down[off..]).unwrap();
            w.run();
        }
        assert!(w.cs.data == down, "chunk {chunk}: downstream data");

        // One end(): inner close_notify, the tunnel's close_notify (the inner
        // FIN), the server's End and its own end, back the same way.
        w.ec.end(now).unwrap();
        w.run();
        assert_eq!(
            w.ss.events,
            [Event::Open, Event::End, Event::Close(None)],
            "chunk {chunk}"
        );
        assert_eq!(
            w.cs.events,
            [Event::Open, Event::End, Event::Close(None)],
            "chunk {chunk}"
        );
        assert!(w.tc.peer_closed() && w.ts.peer_closed());
        assert_eq!(w.tc.handle_eof(), Ok(()));
        assert_eq!(w.ts.handle_eof(), Ok(()));
    }
}
