//! In-memory client ↔ server tests with a PKI made at test time and a fake clock.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, date_time_ymd};
use rustls::time_provider::TimeProvider;
use rustls_pki_types::UnixTime;

use super::*;

/// A fixed wall clock: 2030-01-01.
#[derive(Debug)]
pub(crate) struct FixedTime(pub(crate) u64);

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(self.0)))
    }
}

pub(crate) const Y2030: u64 = 1_893_456_000;

fn clock() -> Option<Arc<dyn TimeProvider>> {
    Some(Arc::new(FixedTime(Y2030)))
}

struct Pki {
    ca: Pem,
    localhost: (Pem, Pem),
    other: (Pem, Pem),
    expired: (Pem, Pem),
    self_signed: (Pem, Pem),
    ed25519: (Pem, Pem),
}

fn leaf(
    names: &[&str],
    issuer: &CertifiedIssuer<'_, KeyPair>,
    alg: &'static rcgen::SignatureAlgorithm,
    expired: bool,
) -> (Pem, Pem) {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        params.not_before = date_time_ymd(2019, 1, 1);
        params.not_after = date_time_ymd(2020, 1, 1);
    }
    let cert = params.signed_by(&key, issuer).unwrap();
    (
        Pem::new("leaf.pem", cert.pem()),
        Pem::new("leaf.key", key.serialize_pem()),
    )
}

fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "netkit test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let p256 = &rcgen::PKCS_ECDSA_P256_SHA256;
    let ss_key = KeyPair::generate().unwrap();
    let ss = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .self_signed(&ss_key)
        .unwrap();
    Pki {
        ca: Pem::new("ca.pem", ca.pem()),
        localhost: leaf(&["localhost", "127.0.0.1", "::1"], &ca, p256, false),
        other: leaf(&["other.test"], &ca, p256, false),
        expired: leaf(&["localhost"], &ca, p256, true),
        self_signed: (
            Pem::new("self.pem", ss.pem()),
            Pem::new("self.key", ss_key.serialize_pem()),
        ),
        ed25519: leaf(&["localhost"], &ca, &rcgen::PKCS_ED25519, false),
    }
}

fn server(id: &(Pem, Pem)) -> ServerConfig {
    let mut o = ServerOptions::new(id.0.clone(), id.1.clone());
    o.time = clock();
    server_config(&o).unwrap()
}

fn client(ca: &Pem) -> ClientConfig {
    client_config(&ClientOptions {
        ca: Some(ca.clone()),
        time: clock(),
        ..ClientOptions::default()
    })
    .unwrap()
}

/// Moves bytes both ways until neither side has anything to send, feeding each
/// side in chunks of at most `chunk` bytes. Returns the first error of each side.
fn pump(c: &mut TlsSession, s: &mut TlsSession, chunk: usize) -> (Option<Error>, Option<Error>) {
    let (mut ce, mut se) = (None, None);
    for _ in 0..1000 {
        let mut wire = Vec::new();
        c.drain_transmit(&mut wire);
        let c_sent = !wire.is_empty();
        if se.is_none() {
            se = feed(s, &wire, chunk).err();
        }
        let mut back = Vec::new();
        s.drain_transmit(&mut back);
        let s_sent = !back.is_empty();
        if ce.is_none() {
            ce = feed(c, &back, chunk).err();
        }
        if !c_sent && !s_sent {
            break;
        }
    }
    (ce, se)
}

/// Feeds `bytes` in chunks (the session takes all of each).
fn feed(t: &mut TlsSession, bytes: &[u8], chunk: usize) -> Result<(), Error> {
    for piece in bytes.chunks(chunk.clamp(1, bytes.len().max(1))) {
        t.handle_input(piece)?;
    }
    Ok(())
}

fn read_all(t: &mut TlsSession) -> Vec<u8> {
    let mut out = Vec::new();
    while t
        .read_plaintext_with(|b| out.extend_from_slice(b))
        .is_some()
    {}
    out
}

fn events(t: &mut TlsSession) -> Vec<TlsEvent> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

#[test]
fn handshake_and_data_both_ways() {
    let pki = pki();
    let mut c = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
    let mut s = TlsSession::server(&server(&pki.localhost)).unwrap();
    assert!(c.is_handshaking());
    c.write(b"ping").unwrap();
    assert_eq!(pump(&mut c, &mut s, usize::MAX), (None, None));
    assert_eq!(events(&mut c), [TlsEvent::HandshakeDone]);
    assert_eq!(events(&mut s), [TlsEvent::HandshakeDone]);
    assert_eq!(s.sni(), Some("localhost"));
    assert_eq!(c.authorization(), Some(&Authorization::Authorized));
    assert_eq!(s.authorization(), Some(&Authorization::NoCertificate));
    assert_eq!(read_all(&mut s), b"ping");
    s.write(b"pong").unwrap();
    pump(&mut c, &mut s, usize::MAX);
    assert_eq!(read_all(&mut c), b"pong");
    assert_eq!(c.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
}

#[test]
fn ip_address_sans_verify_and_send_no_sni() {
    let pki = pki();
    for name in ["127.0.0.1", "::1", "[::1]"] {
        let mut c = TlsSession::client(&client(&pki.ca), name).unwrap();
        let mut s = TlsSession::server(&server(&pki.localhost)).unwrap();
        assert_eq!(pump(&mut c, &mut s, usize::MAX), (None, None), "{name}");
        assert_eq!(s.sni(), None, "no SNI for an IP address");
        assert_eq!(c.authorization(), Some(&Authorization::Authorized));
    }
}

#[test]
fn ed25519_server_key() {
    let pki = pki();
    let mut c = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
    let mut s = TlsSession::server(&server(&pki.ed25519)).unwrap();
    assert_eq!(pump(&mut c, &mut s, usize::MAX), (None, None));
}

fn client_error(pki: &Pki, id: &(Pem, Pem), name: &str) -> Error {
    let mut c = TlsSession::client(&client(&pki.ca), name).unwrap();
    let mut s = TlsSession::server(&server(id)).unwrap();
    let (ce, _) = pump(&mut c, &mut s, usize::MAX);
    ce.expect("the client must refuse")
}

#[test]
fn verification_failures_name_their_cause() {
    let pki = pki();
    let e = client_error(&pki, &pki.self_signed, "localhost");
    assert_eq!(e.to_string(), "invalid peer certificate: UnknownIssuer");
    assert!(e.is_certificate_error());
    let e = client_error(&pki, &pki.expired, "localhost");
    assert!(e.to_string().contains("expired"), "{e}");
    let e = client_error(&pki, &pki.other, "localhost");
    assert!(e.to_string().contains("not valid for name"), "{e}");
    // Default roots (no `ca`): our test CA is unknown.
    let cfg = client_config(&ClientOptions {
        time: clock(),
        ..ClientOptions::default()
    })
    .unwrap();
    let mut c = TlsSession::client(&cfg, "localhost").unwrap();
    let mut s = TlsSession::server(&server(&pki.localhost)).unwrap();
    let (ce, _) = pump(&mut c, &mut s, usize::MAX);
    assert_eq!(
        ce.unwrap().to_string(),
        "invalid peer certificate: UnknownIssuer"
    );
}

#[test]
fn reject_unauthorized_false_accepts_and_reports() {
    let pki = pki();
    let cfg = client_config(&ClientOptions {
        ca: Some(pki.ca.clone()),
        reject_unauthorized: false,
        time: clock(),
        ..ClientOptions::default()
    })
    .unwrap();
    for (id, expect) in [
        (&pki.self_signed, Some("UnknownIssuer")),
        (&pki.expired, Some("expired")),
        (&pki.localhost, None),
    ] {
        let mut c = TlsSession::client(&cfg, "localhost").unwrap();
        let mut s = TlsSession::server(&server(id)).unwrap();
        c.write(b"x").unwrap();
        assert_eq!(pump(&mut c, &mut s, usize::MAX), (None, None));
        assert_eq!(read_all(&mut s), b"x");
        match (c.authorization().unwrap(), expect) {
            (Authorization::Authorized, None) => {}
            (Authorization::Unauthorized(e), Some(word)) => {
                assert!(e.to_string().contains(word), "{e}")
            }
            (other, _) => panic!("{other:?} for {expect:?}"),
        }
    }
}

#[test]
fn alpn_agreement_and_mismatch() {
    let pki = pki();
    let mut so = ServerOptions::new(pki.localhost.0.clone(), pki.localhost.1.clone());
    so.alpn = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    so.time = clock();
    let scfg = server_config(&so).unwrap();
    let co = |alpn: Vec<&[u8]>| {
        client_config(&ClientOptions {
            ca: Some(pki.ca.clone()),
            alpn: alpn.into_iter().map(<[u8]>::to_vec).collect(),
            time: clock(),
            ..ClientOptions::default()
        })
        .unwrap()
    };
    let mut c = TlsSession::client(&co(vec![b"http/1.1"]), "localhost").unwrap();
    let mut s = TlsSession::server(&scfg).unwrap();
    assert_eq!(pump(&mut c, &mut s, usize::MAX), (None, None));
    assert_eq!(c.alpn_protocol(), Some(&b"http/1.1"[..]));
    assert_eq!(s.alpn_protocol(), Some(&b"http/1.1"[..]));
    // No ALPN from the client is fine.
    let mut c = TlsSession::client(&co(vec![]), "localhost").unwrap();
    let mut s = TlsSession::server(&scfg).unwrap();
    assert_eq!(pump(&mut c, &mut s, usize::MAX), (None, None));
    assert_eq!(s.alpn_protocol(), None);
    // A mismatch is refused with no_application_protocol.
    let mut c = TlsSession::client(&co(vec![b"spdy/1"]), "localhost").unwrap();
    let mut s = TlsSession::server(&scfg).unwrap();
    let (ce, se) = pump(&mut c, &mut s, usize::MAX);
    assert!(se.unwrap().to_string().contains("protocol"));
    assert!(
        ce.unwrap().to_string().contains("NoApplicationProtocol"),
        "client sees the alert"
    );
}

fn mtls_server(pki: &Pki, reject: bool) -> ServerConfig {
    let mut so = ServerOptions::new(pki.localhost.0.clone(), pki.localhost.1.clone());
    so.ca = Some(pki.ca.clone());
    so.request_cert = true;
    so.reject_unauthorized = reject;
    so.time = clock();
    server_config(&so).unwrap()
}

#[test]
fn mutual_tls() {
    let pki = pki();
    let with_id = |id: Option<&(Pem, Pem)>| {
        client_config(&ClientOptions {
            ca: Some(pki.ca.clone()),
            identity: id.cloned(),
            time: clock(),
            ..ClientOptions::default()
        })
        .unwrap()
    };
    // A valid client certificate.
    let mut c = TlsSession::client(&with_id(Some(&pki.other)), "localhost").unwrap();
    let mut s = TlsSession::server(&mtls_server(&pki, true)).unwrap();
    assert_eq!(pump(&mut c, &mut s, usize::MAX), (None, None));
    assert_eq!(s.authorization(), Some(&Authorization::Authorized));
    // No certificate: refused when required...
    let mut c = TlsSession::client(&with_id(None), "localhost").unwrap();
    let mut s = TlsSession::server(&mtls_server(&pki, true)).unwrap();
    c.write(b"x").unwrap();
    let (_, se) = pump(&mut c, &mut s, usize::MAX);
    assert!(
        se.is_some(),
        "server must refuse a client without a certificate"
    );
    // ...accepted and reported when not.
    let mut c = TlsSession::client(&with_id(Some(&pki.self_signed)), "localhost").unwrap();
    let mut s = TlsSession::server(&mtls_server(&pki, false)).unwrap();
    assert_eq!(pump(&mut c, &mut s, usize::MAX), (None, None));
    assert!(matches!(
        s.authorization(),
        Some(Authorization::Unauthorized(_))
    ));
}

#[test]
fn client_rejecting_the_server_never_sends_its_certificate() {
    let pki = pki();
    let cfg = client_config(&ClientOptions {
        ca: Some(pki.ca.clone()),
        identity: Some(pki.other.clone()),
        time: clock(),
        ..ClientOptions::default()
    })
    .unwrap();
    let mut c = TlsSession::client(&cfg, "localhost").unwrap();
    let mut s = TlsSession::server(&{
        let mut so = ServerOptions::new(pki.self_signed.0.clone(), pki.self_signed.1.clone());
        so.ca = Some(pki.ca.clone());
        so.request_cert = true;
        so.time = clock();
        server_config(&so).unwrap()
    })
    .unwrap();
    let (ce, _) = pump(&mut c, &mut s, usize::MAX);
    assert!(ce.is_some());
    assert!(s.peer_certificates().is_none(), "client certificate leaked");
}

#[test]
fn clean_close_vs_truncation() {
    let pki = pki();
    let mut c = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
    let mut s = TlsSession::server(&server(&pki.localhost)).unwrap();
    pump(&mut c, &mut s, usize::MAX);
    s.write(b"last").unwrap();
    s.close();
    assert_eq!(s.write(b"more"), Err(Error::Closed));
    pump(&mut c, &mut s, usize::MAX);
    assert_eq!(read_all(&mut c), b"last");
    assert!(events(&mut c).contains(&TlsEvent::PeerClosed));
    assert_eq!(c.handle_eof(), Ok(()));
    // The server never got close_notify from the client: truncation.
    assert_eq!(s.handle_eof(), Err(Error::Truncated));
    // EOF during the handshake.
    let mut c2 = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
    assert_eq!(c2.handle_eof(), Err(Error::HandshakeEof));
}

#[test]
fn garbage_instead_of_client_hello() {
    let pki = pki();
    let mut s = TlsSession::server(&server(&pki.localhost)).unwrap();
    let e = s
        .handle_input(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    // The alert is still sendable.
    let mut out = Vec::new();
    s.drain_transmit(&mut out);
    assert!(!out.is_empty());
}

#[test]
fn large_records_and_many_records_per_read() {
    let pki = pki();
    let mut c = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
    let mut s = TlsSession::server(&server(&pki.localhost)).unwrap();
    pump(&mut c, &mut s, usize::MAX);
    // 40 KiB in one write: several 16 KiB records in one read.
    let big: Vec<u8> = (0..40 * 1024).map(|i| (i % 253) as u8).collect();
    assert_eq!(c.write(&big).unwrap(), big.len());
    let mut wire = Vec::new();
    c.drain_transmit(&mut wire);
    s.handle_input(&wire).unwrap();
    assert_eq!(read_all(&mut s), big);
    // Many tiny records in one read.
    for i in 0..100u8 {
        c.write(&[i]).unwrap();
    }
    let mut wire = Vec::new();
    c.drain_transmit(&mut wire);
    s.handle_input(&wire).unwrap();
    assert_eq!(read_all(&mut s), (0..100u8).collect::<Vec<_>>());
}

#[test]
fn plaintext_backpressure_is_not_an_error() {
    let pki = pki();
    let mut c = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
    let mut s = TlsSession::server(&server(&pki.localhost)).unwrap();
    pump(&mut c, &mut s, usize::MAX);
    let mut wire = Vec::new();
    for _ in 0..16 {
        c.write(&[7u8; 16 * 1024]).unwrap();
        c.drain_transmit(&mut wire);
    }
    // Without reading plaintext, the server stops wanting bytes at some point
    // (it still takes what it is given: the layer contract).
    let mut taken = 0;
    while taken < wire.len() && s.wants_input() {
        let n = (wire.len() - taken).min(16 * 1024);
        s.handle_input(&wire[taken..taken + n]).unwrap();
        taken += n;
    }
    assert!(taken < wire.len(), "no backpressure");
    // 64 KiB of read-ahead, the record decrypted for the reader, one input.
    assert!(taken <= 64 * 1024 + 2 * 16 * 1024, "held {taken}");
    let mut total = read_all(&mut s).len();
    assert!(s.wants_input());
    while taken < wire.len() {
        let n = (wire.len() - taken).min(16 * 1024);
        s.handle_input(&wire[taken..taken + n]).unwrap();
        taken += n;
        total += read_all(&mut s).len();
    }
    assert_eq!(total, 16 * 16 * 1024);
}

#[test]
fn bad_pem_inputs() {
    let pki = pki();
    let check = |e: Error, want: &str| {
        let s = e.to_string();
        assert!(s.contains(want), "{s:?} should contain {want:?}");
    };
    let empty = Pem::new("empty.pem", "");
    check(
        empty.certificates().unwrap_err(),
        "empty.pem: the file is empty",
    );
    check(empty.private_key().unwrap_err(), "the file is empty");
    // A certificate where the key should be.
    check(
        pki.localhost.0.private_key().unwrap_err(),
        "no PRIVATE KEY section found",
    );
    check(
        pki.localhost.1.certificates().unwrap_err(),
        "no CERTIFICATE section found",
    );
    let enc = Pem::new(
        "enc.key",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
    );
    check(enc.private_key().unwrap_err(), "encrypted");
    let broken = Pem::new(
        "broken.pem",
        "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
    );
    check(broken.certificates().unwrap_err(), "broken.pem");
    // A key that does not match its certificate.
    let mut so = ServerOptions::new(pki.localhost.0.clone(), pki.other.1.clone());
    so.time = clock();
    check(server_config(&so).unwrap_err(), "does not match");
    // Oversized input is refused before parsing.
    let huge = Pem::new("huge.pem", vec![b'A'; MAX_PEM_BYTES + 1]);
    check(huge.certificates().unwrap_err(), "limit");
    // request_cert without ca.
    let mut so = ServerOptions::new(pki.localhost.0.clone(), pki.localhost.1.clone());
    so.request_cert = true;
    so.time = clock();
    check(server_config(&so).unwrap_err(), "request_cert needs `ca`");
    // No wall clock: the crate reads none of its own.
    let so = ServerOptions::new(pki.localhost.0.clone(), pki.localhost.1.clone());
    check(server_config(&so).unwrap_err(), "no wall clock");
    assert!(TlsSession::client(&client(&pki.ca), "bad name!").is_err());
}

#[test]
fn session_resumption_on_by_default() {
    let pki = pki();
    let ccfg = client(&pki.ca);
    let scfg = server(&pki.localhost);
    for round in 0..2 {
        let mut c = TlsSession::client(&ccfg, "localhost").unwrap();
        let mut s = TlsSession::server(&scfg).unwrap();
        c.write(b"r").unwrap();
        pump(&mut c, &mut s, usize::MAX);
        s.write(b"ok").unwrap();
        pump(&mut c, &mut s, usize::MAX);
        let kind = c.rustls().handshake_kind();
        if round == 1 {
            assert_eq!(kind, Some(rustls::HandshakeKind::Resumed));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Feeding the handshake and data in random-size pieces (down to 1 byte)
    /// gives the same plaintext and events as feeding it whole.
    #[test]
    fn any_split_gives_the_same_result(chunk in 1usize..300, len in 0usize..5000) {
        let pki = PKI.with(|p| p.clone());
        let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut c = TlsSession::client(&client(&pki.0), "localhost").unwrap();
        let mut s = TlsSession::server(&server(&pki.1)).unwrap();
        c.write(&data).unwrap();
        let (ce, se) = pump(&mut c, &mut s, chunk);
        prop_assert!(ce.is_none() && se.is_none());
        prop_assert_eq!(events(&mut s), vec![TlsEvent::HandshakeDone]);
        let mut got = read_all(&mut s);
        // Backpressure may have left bytes unread: pump again until done.
        for _ in 0..100 {
            if got.len() == data.len() { break; }
            pump(&mut c, &mut s, chunk);
            got.extend(read_all(&mut s));
        }
        prop_assert_eq!(got, data);
    }
}

thread_local! {
    /// One PKI per test thread for the property test (key generation is slow).
    static PKI: (Pem, (Pem, Pem)) = {
        let p = pki();
        (p.ca, p.localhost)
    };
}

/// PEM of self-signed CA certificates, unrelated to the test chain, whose DER
/// adds up to at least `min_der_bytes`: appended to a real chain, they grow its
/// Certificate message without changing what verifies.
fn padding_certificates(min_der_bytes: usize) -> String {
    let key = KeyPair::generate().unwrap();
    let (mut pem, mut der, mut n) = (String::new(), 0, 0);
    while der < min_der_bytes {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("padding CA {n}"));
        let cert = params.self_signed(&key).unwrap();
        der += cert.der().len();
        pem.push_str(&cert.pem());
        n += 1;
    }
    pem
}

/// A server chain whose Certificate message is over rustls's 64 KiB limit on a
/// handshake message. rustls does not measure the chain when it is configured,
/// so `server_config` accepts it; the client then fails the handshake with a
/// clean error naming the oversized message, whatever the input split. rustls
/// queues no alert for this error (the deframer returns it bare), so the
/// server sees only the transport close: a handshake EOF. Just under the limit
/// (60 KiB of padding) the handshake completes: a message that large never
/// stalls input.
#[test]
fn certificate_chain_over_the_handshake_message_limit() {
    let pki = pki();
    let leaf = String::from_utf8(pki.localhost.0.data.clone()).unwrap();
    for (padding, refused) in [(60 * 1024, false), (80 * 1024, true)] {
        let chain = Pem::new("chain.pem", leaf.clone() + &padding_certificates(padding));
        let mut so = ServerOptions::new(chain, pki.localhost.1.clone());
        so.time = clock();
        let scfg = server_config(&so).expect("an oversized chain is not a config error");
        for chunk in [usize::MAX, 1000, 17] {
            let mut c = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
            let mut s = TlsSession::server(&scfg).unwrap();
            c.write(b"x").unwrap();
            let (ce, se) = pump(&mut c, &mut s, chunk);
            if !refused {
                assert_eq!((ce, se), (None, None), "{padding} B, chunks of {chunk}");
                assert_eq!(read_all(&mut s), b"x");
                continue;
            }
            let ce = ce.expect("the client must refuse");
            assert_eq!(
                ce.to_string(),
                "received corrupt message of type HandshakePayloadTooLarge",
                "chunks of {chunk}"
            );
            assert!(!ce.is_certificate_error());
            assert!(c.is_handshaking(), "never opened");
            assert_eq!(se, None, "rustls sends no alert for this error");
            assert!(s.is_handshaking(), "never opened");
            assert!(read_all(&mut s).is_empty());
            assert_eq!(s.handle_eof(), Err(Error::HandshakeEof));
        }
    }
}

#[test]
fn a_client_refusing_the_server_sends_an_alert() {
    let pki = pki();
    let mut c = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
    let mut s = TlsSession::server(&{
        let mut so = ServerOptions::new(pki.self_signed.0.clone(), pki.self_signed.1.clone());
        so.time = clock();
        server_config(&so).unwrap()
    })
    .unwrap();
    let mut wire = Vec::new();
    c.drain_transmit(&mut wire);
    s.handle_input(&wire).unwrap();
    wire.clear();
    s.drain_transmit(&mut wire);
    let err = c.handle_input(&wire).unwrap_err();
    assert!(err.is_certificate_error(), "{err}");
    // The alert is what the client still has to send; the server hears why.
    assert!(c.wants_transmit(), "no alert queued");
    wire.clear();
    c.drain_transmit(&mut wire);
    let got = s.handle_input(&wire).unwrap_err();
    assert!(got.to_string().contains("alert"), "{got}");
}

/// A record that fails authentication behind a valid one: the reader gets the
/// valid record first, then the session fails (kept for `error()`), and a
/// write after that fails with the same error.
#[test]
fn a_bad_record_fails_the_session_only_when_read() {
    let pki = pki();
    let mut c = TlsSession::client(&client(&pki.ca), "localhost").unwrap();
    let mut s = TlsSession::server(&server(&pki.localhost)).unwrap();
    pump(&mut c, &mut s, usize::MAX);
    let mut wire = Vec::new();
    c.write(b"valid").unwrap();
    c.drain_transmit(&mut wire);
    let mut bad = Vec::new();
    c.write(b"corrupted").unwrap();
    c.drain_transmit(&mut bad);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    wire.extend_from_slice(&bad);
    s.handle_input(&wire).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(s.read_plaintext(&mut buf), 5);
    // Not decrypted yet: a write goes through.
    assert_eq!(s.write(b"answer").unwrap(), 6);
    assert!(s.error().is_none());
    assert_eq!(s.read_plaintext(&mut buf), 0);
    assert!(
        matches!(s.error(), Some(Error::Protocol(_))),
        "{:?}",
        s.error()
    );
    assert!(!s.wants_input());
    assert!(matches!(s.write(b"too late"), Err(Error::Protocol(_))));
    assert!(s.handle_input(b"more").is_err());
    // The answer, then the alert, are still to be sent.
    let mut out = Vec::new();
    s.drain_transmit(&mut out);
    c.handle_input(&out).unwrap();
    assert_eq!(read_all(&mut c), b"answer");
    let e = c.error().expect("the alert fails the client");
    assert!(e.to_string().contains("BadRecordMac"), "{e}");
}
