//! `TlsSocket` pairs in memory: Bun's socket semantics over TLS.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use netkit_socket::{Config, Event, Transmit};
use proptest::prelude::*;

use crate::{ClientOptions, Pem, ServerOptions, TlsSession, TlsSocket};

/// The tests' fake clock origin: the only clock read here (an `Instant` cannot
/// be made otherwise). No test advances time; certificate validity uses the
/// fixed wall clock of `tests::FixedTime`.
fn t0() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now) // sans-io: test clock origin
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
    let mut wire = Vec::new();
    while let Transmit::Bytes(b) = c.poll_transmit(now) {
        wire.extend_from_slice(b);
        let n = b.len();
        c.handle_sent(now, n);
    }
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
