//! `TlsStream` on both drivers: against `openssl s_server`, against our own
//! accept side, and TLS inside TLS, through a `socat` TLS tunnel to an inner
//! `openssl s_server` and in process, with each layer verified against its own CA.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, future};
use netkit_tests::peer::Peer;
use netkit_tests::pki::{Identity, Pki};
use netkit_tls::{Authorization, ClientConfig, ClientOptions, Pem, ServerConfig, ServerOptions};

const LIMIT: Duration = Duration::from_secs(20);

type Blocking<S> = netkit_blocking::TlsStream<S>;
type Async<S> = netkit_smol::TlsStream<S>;

fn pem(path: &Path) -> Pem {
    Pem::new(path.display().to_string(), std::fs::read(path).unwrap())
}

/// A client configuration trusting only `pki`'s CA.
fn client_config(pki: &Pki, alpn: &[&[u8]]) -> ClientConfig {
    netkit_sys::tls::client_config(&ClientOptions {
        ca: Some(pem(&pki.ca)),
        alpn: alpn.iter().map(|p| p.to_vec()).collect(),
        ..ClientOptions::default()
    })
    .unwrap()
}

fn server_config(id: &Identity, alpn: &[&[u8]]) -> ServerConfig {
    let mut opts = ServerOptions::new(pem(&id.cert), pem(&id.key));
    opts.alpn = alpn.iter().map(|p| p.to_vec()).collect();
    netkit_sys::tls::server_config(&opts).unwrap()
}

/// The DER of the (single) certificate in a PEM file.
fn der(path: &Path) -> Vec<u8> {
    pem(path).certificates().unwrap()[0].to_vec()
}

fn peer_leaf(s: &netkit_tls::TlsSession) -> Vec<u8> {
    s.peer_certificates().expect("peer certificates")[0].to_vec()
}

fn tcp(port: u16) -> TcpStream {
    let t = TcpStream::connect(("127.0.0.1", port)).unwrap();
    t.set_read_timeout(Some(LIMIT)).unwrap();
    t.set_write_timeout(Some(LIMIT)).unwrap();
    t
}

/// Runs a future with the test's time limit.
fn block_on<T>(f: impl Future<Output = T>) -> T {
    smol::block_on(future::or(f, async {
        smol::Timer::after(LIMIT).await;
        panic!("timed out after {LIMIT:?}")
    }))
}

/// A `socat` TLS terminator (see [`netkit_tests::peer::socat_tls`]).
fn socat_tunnel(id: &Identity, to: u16) -> (Peer, u16) {
    netkit_tests::peer::socat_tls(id, to, LIMIT)
}

/// Reads until `want` bytes arrived.
fn read_n(r: &mut impl Read, want: usize) -> Vec<u8> {
    let mut got = vec![0u8; want];
    r.read_exact(&mut got).unwrap();
    got
}

async fn read_n_async(r: &mut (impl AsyncRead + Unpin), want: usize) -> Vec<u8> {
    let mut got = vec![0u8; want];
    r.read_exact(&mut got).await.unwrap();
    got
}

/// Lines for `s_server -rev` and what it answers.
const LINES: [(&[u8], &[u8]); 3] = [
    (b"olleh\n", b"hello\n"),
    (b"lennut eht hguorht\n", b"through the tunnel\n"),
    (b"x\n", b"x\n"),
];

/// 2,000 lines in one write (120 KB: several TLS records each way) and what
/// `s_server -rev` answers.
fn many_lines() -> (Vec<u8>, Vec<u8>) {
    let (mut lines, mut revs) = (Vec::new(), Vec::new());
    for i in 0..2000u32 {
        let mut line: Vec<u8> =
            format!("{i:05} abcdefghijklmnopqrstuvwxyz 0123456789 {i:05}").into();
        lines.extend_from_slice(&line);
        line.reverse();
        revs.extend_from_slice(&line);
        lines.push(b'\n');
        revs.push(b'\n');
    }
    (lines, revs)
}

/// Asserts equality without printing kilobytes.
fn same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes, want {}; first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

/// The error of a chain from a CA the client does not trust. Every test PKI's
/// CA has the same subject, so webpki finds "the" issuer and reports its
/// signature as bad rather than the issuer as unknown.
fn unknown_ca(e: &impl std::fmt::Display) {
    let e = e.to_string();
    assert!(
        e == "tls: invalid peer certificate: UnknownIssuer"
            || e == "tls: invalid peer certificate: BadSignature",
        "{e}"
    );
}

// ---- against openssl s_server ----

#[test]
fn blocking_against_openssl_s_server() {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let cfg = client_config(&pki, &[]);
    for version in ["-tls1_3", "-tls1_2"] {
        blocking_s_server_exchange(&pki, &cfg, version);
    }
}

fn blocking_s_server_exchange(pki: &Pki, cfg: &ClientConfig, version: &str) {
    let (srv, port) = s_server(&pki.localhost, &[version]);
    let mut s = Blocking::connect(cfg, "localhost", tcp(port)).unwrap();
    let want_version = if version == "-tls1_3" {
        "TLSv1_3"
    } else {
        "TLSv1_2"
    };
    assert_eq!(
        format!("{:?}", s.session().protocol_version().unwrap()),
        want_version
    );
    assert_eq!(s.authorization(), Some(&Authorization::Authorized));
    assert_eq!(peer_leaf(s.session()), der(&pki.localhost.cert));
    for (line, want) in LINES {
        s.write_all(line).unwrap();
        assert_eq!(read_n(&mut s, want.len()), want, "{}", srv.stderr());
    }
    let (lines, revs) = many_lines();
    s.write_all(&lines).unwrap();
    same(&read_n(&mut s, revs.len()), &revs, "reversed lines");
    // Our close_notify; s_server answers with its own: a clean EOF.
    s.shutdown().unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .unwrap_or_else(|e| panic!("clean close: {e}; {}", srv.stderr()));
    assert!(rest.is_empty());
    assert!(
        matches!(s.write(b"more"), Err(e) if e.kind() == io::ErrorKind::BrokenPipe),
        "no writing after shutdown"
    );
}

#[test]
fn smol_against_openssl_s_server() {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let cfg = client_config(&pki, &[]);
    for version in ["-tls1_3", "-tls1_2"] {
        let (srv, port) = s_server(&pki.localhost, &[version]);
        block_on(smol_s_server_exchange(&pki, &cfg, port, &srv));
    }
}

async fn smol_s_server_exchange(pki: &Pki, cfg: &ClientConfig, port: u16, srv: &Peer) {
    let t = netkit_smol::TcpStream::connect("127.0.0.1", port)
        .await
        .unwrap();
    let mut s = Async::connect(cfg, "localhost", t).await.unwrap();
    assert_eq!(s.authorization(), Some(&Authorization::Authorized));
    assert_eq!(peer_leaf(s.session()), der(&pki.localhost.cert));
    for (line, want) in LINES {
        s.write_all(line).await.unwrap();
        assert_eq!(read_n_async(&mut s, want.len()).await, want);
    }
    let (lines, revs) = many_lines();
    s.write_all(&lines).await.unwrap();
    same(
        &read_n_async(&mut s, revs.len()).await,
        &revs,
        "reversed lines",
    );
    // close_notify, then FIN; s_server answers with its own close_notify.
    s.close().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)
        .await
        .unwrap_or_else(|e| panic!("clean close: {e}; {}", srv.stderr()));
    assert!(rest.is_empty());
}

// ---- against our own accept side ----

/// Echoes until the peer's close_notify, then closes cleanly.
fn blocking_echo<S: Read + Write>(mut s: Blocking<S>) -> Blocking<S> {
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).unwrap();
    }
    s.shutdown().unwrap();
    s
}

async fn smol_echo<S: AsyncRead + AsyncWrite + Unpin>(mut s: Async<S>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await.unwrap();
    }
    s.close().await.unwrap();
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

#[test]
fn blocking_client_and_server() {
    let pki = Pki::new();
    let scfg = server_config(&pki.localhost, &[b"netkit/1"]);
    let (l, addr) = listener();
    let server = std::thread::spawn(move || {
        let (t, _) = l.accept().unwrap();
        t.set_read_timeout(Some(LIMIT)).unwrap();
        let s = Blocking::accept(&scfg, t).unwrap();
        assert_eq!(s.session().sni(), Some("localhost"));
        assert_eq!(s.alpn_protocol(), Some(&b"netkit/1"[..]));
        assert_eq!(s.authorization(), Some(&Authorization::NoCertificate));
        blocking_echo(s);
    });
    let cfg = client_config(&pki, &[b"other", b"netkit/1"]);
    let mut c = Blocking::connect(&cfg, "localhost", tcp(addr.port())).unwrap();
    assert_eq!(c.alpn_protocol(), Some(&b"netkit/1"[..]));
    assert_eq!(c.authorization(), Some(&Authorization::Authorized));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // Write and read from two threads' worth of work on one stream: write in
    // pieces small enough that the echo never fills both directions' buffers.
    let mut echoed = Vec::new();
    for piece in big.chunks(32 * 1024) {
        c.write_all(piece).unwrap();
        echoed.extend(read_n(&mut c, piece.len()));
    }
    same(&echoed, &big, "echo");
    c.shutdown().unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("clean close");
    assert!(rest.is_empty());
    server.join().unwrap();
}

#[test]
fn smol_client_and_server() {
    let pki = Pki::new();
    let scfg = server_config(&pki.localhost, &[b"netkit/1"]);
    let cfg = client_config(&pki, &[b"netkit/1"]);
    block_on(async {
        let l = netkit_smol::TcpListener::bind(&netkit_smol::ListenOptions::new("127.0.0.1", 0))
            .unwrap();
        let port = l.local_addr().unwrap().port();
        let server = smol::spawn(async move {
            let (t, _) = l.accept().await.unwrap();
            let s = Async::accept(&scfg, t).await.unwrap();
            assert_eq!(s.alpn_protocol(), Some(&b"netkit/1"[..]));
            smol_echo(s).await;
        });
        let t = netkit_smol::TcpStream::connect("127.0.0.1", port)
            .await
            .unwrap();
        let mut c = Async::connect(&cfg, "localhost", t).await.unwrap();
        assert_eq!(c.alpn_protocol(), Some(&b"netkit/1"[..]));
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut echoed = Vec::new();
        for piece in big.chunks(32 * 1024) {
            c.write_all(piece).await.unwrap();
            c.flush().await.unwrap();
            echoed.extend(read_n_async(&mut c, piece.len()).await);
        }
        same(&echoed, &big, "echo");
        c.close().await.unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).await.expect("clean close");
        assert!(rest.is_empty());
        server.await;
    });
}

/// The peer's TCP FIN without close_notify: data before it is read, then an
/// `UnexpectedEof` error worded as netkit_tls::Error::Truncated.
#[test]
fn truncation_is_an_unexpected_eof_on_both_drivers() {
    let pki = Pki::new();
    let scfg = server_config(&pki.localhost, &[]);
    let cfg = client_config(&pki, &[]);
    let truncated = netkit_tls::Error::Truncated.to_string();
    let check = |e: io::Error| {
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert_eq!(e.to_string(), truncated);
        let inner = e
            .get_ref()
            .and_then(|i| i.downcast_ref::<netkit_tls::Error>());
        assert_eq!(inner, Some(&netkit_tls::Error::Truncated));
    };

    let (l, addr) = listener();
    let scfg2 = scfg.clone();
    let server = std::thread::spawn(move || {
        let (t, _) = l.accept().unwrap();
        let mut s = Blocking::accept(&scfg2, t).unwrap();
        s.write_all(b"last words").unwrap();
        // FIN without close_notify.
        s.get_ref().shutdown(std::net::Shutdown::Write).unwrap();
        let mut buf = [0u8; 16];
        let _ = s.read(&mut buf); // until the client hangs up
    });
    let mut c = Blocking::connect(&cfg, "localhost", tcp(addr.port())).unwrap();
    assert_eq!(read_n(&mut c, 10), b"last words");
    check(c.read(&mut [0u8; 16]).unwrap_err());
    // The verdict stays.
    check(c.read(&mut [0u8; 16]).unwrap_err());
    drop(c);
    server.join().unwrap();

    block_on(async {
        let l = netkit_smol::TcpListener::bind(&netkit_smol::ListenOptions::new("127.0.0.1", 0))
            .unwrap();
        let port = l.local_addr().unwrap().port();
        let server = smol::spawn(async move {
            let (t, _) = l.accept().await.unwrap();
            let mut s = Async::accept(&scfg, t).await.unwrap();
            s.write_all(b"last words").await.unwrap();
            s.flush().await.unwrap();
            s.get_ref().shutdown_write().unwrap();
            let mut buf = [0u8; 16];
            let _ = s.read(&mut buf).await;
        });
        let t = netkit_smol::TcpStream::connect("127.0.0.1", port)
            .await
            .unwrap();
        let mut c = Async::connect(&cfg, "localhost", t).await.unwrap();
        assert_eq!(read_n_async(&mut c, 10).await, b"last words");
        check(c.read(&mut [0u8; 16]).await.unwrap_err());
        drop(c);
        server.await;
    });
}

/// A transport that flips one bit of what it reads once armed: any `Read +
/// Write` type carries a `TlsStream`.
struct Tamper {
    inner: TcpStream,
    armed: bool,
}

impl Read for Tamper {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.armed && n > 10 {
            buf[n - 10] ^= 1;
            self.armed = false;
        }
        Ok(n)
    }
}

impl Write for Tamper {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A corrupted record is an `InvalidData` error carrying the TLS error, and
/// the alert reaches the peer, whose read fails with it.
#[test]
fn corrupted_record_is_invalid_data_and_alerts_the_peer() {
    let pki = Pki::new();
    let scfg = server_config(&pki.localhost, &[]);
    let cfg = client_config(&pki, &[]);
    let (l, addr) = listener();
    let server = std::thread::spawn(move || {
        let (t, _) = l.accept().unwrap();
        t.set_read_timeout(Some(LIMIT)).unwrap();
        let mut s = Blocking::accept(&scfg, t).unwrap();
        s.write_all(&[7u8; 1000]).unwrap();
        s.read(&mut [0u8; 16]).unwrap_err()
    });
    let tamper = Tamper {
        inner: tcp(addr.port()),
        armed: false,
    };
    let mut c = Blocking::connect(&cfg, "localhost", tamper).unwrap();
    c.get_mut().armed = true;
    let e = c.read(&mut [0u8; 2000]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    assert!(
        matches!(
            e.get_ref()
                .and_then(|i| i.downcast_ref::<netkit_tls::Error>()),
            Some(netkit_tls::Error::Protocol(_))
        ),
        "{e}"
    );
    // The failure is sticky.
    assert_eq!(
        c.read(&mut [0u8; 16]).unwrap_err().to_string(),
        e.to_string()
    );
    let server_err = server.join().unwrap();
    assert_eq!(server_err.kind(), io::ErrorKind::InvalidData);
    assert!(
        server_err.to_string().contains("received fatal alert"),
        "{server_err}"
    );
}

#[test]
fn verification_failure_is_a_tls_error_on_both_drivers() {
    let pki = Pki::new();
    let other_ca = Pki::new();
    let scfg = server_config(&pki.localhost, &[]);
    let cfg = client_config(&other_ca, &[]);
    let (l, addr) = listener();
    let scfg2 = scfg.clone();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (t, _) = l.accept().unwrap();
            t.set_read_timeout(Some(LIMIT)).unwrap();
            let e = Blocking::accept(&scfg2, t).unwrap_err();
            // The client's alert names the problem.
            assert!(e.to_string().starts_with("tls: "), "{e}");
        }
    });
    let e = Blocking::connect(&cfg, "localhost", tcp(addr.port())).unwrap_err();
    unknown_ca(&e);
    let e = block_on(async {
        let t = netkit_smol::TcpStream::connect("127.0.0.1", addr.port())
            .await
            .unwrap();
        Async::connect(&cfg, "localhost", t).await.unwrap_err()
    });
    unknown_ca(&e);
    server.join().unwrap();
}

// ---- TLS inside TLS ----

/// Real peers: `socat` terminates the tunnel's TLS (PKI A, `localhost`) and
/// forwards to `openssl s_server` (PKI B, `other.test`); the client runs
/// `TlsStream<TlsStream<TcpStream>>`, each layer trusting only its own CA.
struct RealTunnel {
    tunnel_pki: Pki,
    origin_pki: Pki,
    _origin: Peer,
    _socat: Peer,
    port: u16,
}

fn real_tunnel() -> Option<RealTunnel> {
    if !netkit_tests::peer::have("openssl", "version") || !netkit_tests::peer::have("socat", "-V") {
        return None;
    }
    let tunnel_pki = Pki::new();
    let origin_pki = Pki::new();
    let (origin, origin_port) = s_server(&origin_pki.other, &[]);
    let (socat, port) = socat_tunnel(&tunnel_pki.localhost, origin_port);
    Some(RealTunnel {
        tunnel_pki,
        origin_pki,
        _origin: origin,
        _socat: socat,
        port,
    })
}

impl RealTunnel {
    fn configs(&self) -> (ClientConfig, ClientConfig) {
        (
            client_config(&self.tunnel_pki, &[]),
            client_config(&self.origin_pki, &[]),
        )
    }

    /// Each layer saw the certificate of its own peer.
    fn check_layers(&self, tunnel: &netkit_tls::TlsSession, origin: &netkit_tls::TlsSession) {
        assert_eq!(tunnel.authorization(), Some(&Authorization::Authorized));
        assert_eq!(origin.authorization(), Some(&Authorization::Authorized));
        assert_eq!(peer_leaf(tunnel), der(&self.tunnel_pki.localhost.cert));
        assert_eq!(peer_leaf(origin), der(&self.origin_pki.other.cert));
    }
}

#[test]
fn blocking_tls_in_tls_through_socat_to_openssl() {
    let Some(rt) = real_tunnel() else { return };
    let (tunnel_cfg, origin_cfg) = rt.configs();
    let tunnel = Blocking::connect(&tunnel_cfg, "localhost", tcp(rt.port)).unwrap();
    let mut s = Blocking::connect(&origin_cfg, "other.test", tunnel).unwrap();
    rt.check_layers(s.get_ref().session(), s.session());
    for (line, want) in LINES {
        s.write_all(line).unwrap();
        assert_eq!(read_n(&mut s, want.len()), want);
    }
    let (lines, revs) = many_lines();
    s.write_all(&lines).unwrap();
    same(&read_n(&mut s, revs.len()), &revs, "reversed lines");
    // The origin's close_notify answers ours; then the tunnel closes cleanly too
    // (socat sends close_notify once the origin hung up).
    s.shutdown().unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("origin: clean close");
    assert!(rest.is_empty());
    let mut tunnel = s.into_inner();
    tunnel.shutdown().unwrap();
    tunnel.read_to_end(&mut rest).expect("tunnel: clean close");
    assert!(rest.is_empty());
}

#[test]
fn smol_tls_in_tls_through_socat_to_openssl() {
    let Some(rt) = real_tunnel() else { return };
    let (tunnel_cfg, origin_cfg) = rt.configs();
    block_on(async {
        let t = netkit_smol::TcpStream::connect("127.0.0.1", rt.port)
            .await
            .unwrap();
        let tunnel = Async::connect(&tunnel_cfg, "localhost", t).await.unwrap();
        let mut s = Async::connect(&origin_cfg, "other.test", tunnel)
            .await
            .unwrap();
        rt.check_layers(s.get_ref().session(), s.session());
        for (line, want) in LINES {
            s.write_all(line).await.unwrap();
            assert_eq!(read_n_async(&mut s, want.len()).await, want);
        }
        let (lines, revs) = many_lines();
        s.write_all(&lines).await.unwrap();
        same(
            &read_n_async(&mut s, revs.len()).await,
            &revs,
            "reversed lines",
        );
        // close: the origin's close_notify, then the tunnel's, then FIN.
        s.close().await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.expect("origin: clean close");
        assert!(rest.is_empty());
        let mut tunnel = s.into_inner();
        tunnel
            .read_to_end(&mut rest)
            .await
            .expect("tunnel: clean close");
        assert!(rest.is_empty());
    });
}

#[test]
fn tls_in_tls_to_a_real_tunnel_checks_each_layer_against_its_own_ca() {
    let Some(rt) = real_tunnel() else { return };
    let (tunnel_cfg, origin_cfg) = rt.configs();
    // The origin's CA does not vouch for the tunnel...
    let e = Blocking::connect(&origin_cfg, "localhost", tcp(rt.port)).unwrap_err();
    unknown_ca(&e);
    // ...nor the tunnel's for the origin, whose name is checked too.
    let tunnel = Blocking::connect(&tunnel_cfg, "localhost", tcp(rt.port)).unwrap();
    let e = Blocking::connect(&tunnel_cfg, "other.test", tunnel).unwrap_err();
    unknown_ca(&e);
    let tunnel = Blocking::connect(&tunnel_cfg, "localhost", tcp(rt.port)).unwrap();
    let e = Blocking::connect(&origin_cfg, "localhost", tunnel).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("tls: invalid peer certificate: certificate not valid for name"),
        "{e}"
    );
}

/// Both layers on our side too: a `TlsStream<TlsStream<TcpStream>>` server (a
/// tunnel terminator serving the origin itself) against each driver's client.
#[test]
fn tls_in_tls_with_our_accept_side_on_both_drivers() {
    let tunnel_pki = Pki::new();
    let origin_pki = Pki::new();
    let tunnel_scfg = server_config(&tunnel_pki.localhost, &[]);
    let origin_scfg = server_config(&origin_pki.other, &[b"inner"]);
    let tunnel_cfg = client_config(&tunnel_pki, &[]);
    let origin_cfg = client_config(&origin_pki, &[b"inner"]);
    let (l, addr) = listener();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (t, _) = l.accept().unwrap();
            t.set_read_timeout(Some(LIMIT)).unwrap();
            let tunnel = Blocking::accept(&tunnel_scfg, t).unwrap();
            assert_eq!(tunnel.session().sni(), Some("localhost"));
            let origin = Blocking::accept(&origin_scfg, tunnel).unwrap();
            assert_eq!(origin.session().sni(), Some("other.test"));
            assert_eq!(origin.alpn_protocol(), Some(&b"inner"[..]));
            let mut tunnel = blocking_echo(origin).into_inner();
            // The client closes the tunnel after the origin.
            let mut rest = Vec::new();
            tunnel.read_to_end(&mut rest).unwrap();
            tunnel.shutdown().unwrap();
        }
    });
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();

    let tunnel = Blocking::connect(&tunnel_cfg, "localhost", tcp(addr.port())).unwrap();
    let mut s = Blocking::connect(&origin_cfg, "other.test", tunnel).unwrap();
    assert_eq!(s.alpn_protocol(), Some(&b"inner"[..]));
    assert_eq!(s.get_ref().alpn_protocol(), None);
    assert_eq!(
        peer_leaf(s.get_ref().session()),
        der(&tunnel_pki.localhost.cert)
    );
    assert_eq!(peer_leaf(s.session()), der(&origin_pki.other.cert));
    let mut echoed = Vec::new();
    for piece in big.chunks(16 * 1024) {
        s.write_all(piece).unwrap();
        echoed.extend(read_n(&mut s, piece.len()));
    }
    same(&echoed, &big, "echo");
    s.shutdown().unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).expect("origin: clean close");
    let mut tunnel = s.into_inner();
    tunnel.shutdown().unwrap();
    tunnel.read_to_end(&mut rest).expect("tunnel: clean close");
    assert!(rest.is_empty());

    block_on(async {
        let t = netkit_smol::TcpStream::connect("127.0.0.1", addr.port())
            .await
            .unwrap();
        let tunnel = Async::connect(&tunnel_cfg, "localhost", t).await.unwrap();
        let mut s = Async::connect(&origin_cfg, "other.test", tunnel)
            .await
            .unwrap();
        assert_eq!(s.alpn_protocol(), Some(&b"inner"[..]));
        assert_eq!(peer_leaf(s.session()), der(&origin_pki.other.cert));
        let mut echoed = Vec::new();
        for piece in big.chunks(16 * 1024) {
            s.write_all(piece).await.unwrap();
            s.flush().await.unwrap();
            echoed.extend(read_n_async(&mut s, piece.len()).await);
        }
        same(&echoed, &big, "echo");
        // One close: the origin's close_notify, the tunnel's, then FIN.
        s.close().await.unwrap();
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.expect("origin: clean close");
        let mut tunnel = s.into_inner();
        tunnel
            .read_to_end(&mut rest)
            .await
            .expect("tunnel: clean close");
        assert!(rest.is_empty());
    });
    server.join().unwrap();
}

fn s_server(id: &Identity, extra: &[&str]) -> (Peer, u16) {
    netkit_tests::peer::openssl_s_server(&id.cert, &id.key, extra, LIMIT)
}
