//! TLS against real peers: `netkit listen --tls-*` with `openssl s_client` and
//! `curl`, `netkit connect --tls` with `openssl s_server`, and the error lines;
//! mutual TLS between openssl and each driver's in-process server and client;
//! a server chain over rustls's 64 KiB handshake-message limit.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netkit_sys::Error as SocketError;
use netkit_tests::peer::{Peer, run_bounded};
use netkit_tests::pki::{Identity, Pki, padding_certificates};
use netkit_tests::servers::{Behavior, Driver, TestServer};
use netkit_tests::{bin, parse_listening};
use netkit_tls::{ClientOptions, Pem, ServerOptions};

const LIMIT: Duration = Duration::from_secs(20);

fn tls_listen(id: &Identity) -> (Peer, SocketAddr) {
    let mut cmd = Command::new(bin("netkit"));
    cmd.args(["listen", "--port", "0", "--echo", "--tls-cert"])
        .arg(&id.cert)
        .arg("--tls-key")
        .arg(&id.key);
    let p = Peer::spawn("netkit listen --tls", cmd).expect("spawn");
    let line = p
        .next_line(LIMIT)
        .unwrap_or_else(|| panic!("no first line: {}", p.stderr()));
    let addr = parse_listening(&line).expect("listening line");
    (p, addr)
}

fn connect(args: &[&str], port: u16, stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("connect")
        .args(&args[..1])
        .arg(port.to_string())
        .args(&args[1..]);
    run_bounded(&mut cmd, stdin, LIMIT)
}

#[test]
fn netkit_to_netkit() {
    let pki = Pki::new();
    let (_srv, addr) = tls_listen(&pki.localhost);
    let ca = pki.ca.to_str().unwrap();
    for host in ["localhost", "127.0.0.1", "::1"] {
        if host == "::1" {
            continue; // the listener is on 127.0.0.1
        }
        let (code, out, err) = connect(&[host, "--tls", "--cacert", ca], addr.port(), b"secret");
        assert_eq!(code, 0, "{host}: {err}");
        assert_eq!(out, b"Echo: secret");
    }
    // -k skips verification.
    let (code, out, err) = connect(&["127.0.0.1", "-k"], addr.port(), b"k");
    assert_eq!((code, out.as_slice()), (0, &b"Echo: k"[..]), "{err}");
}

#[test]
fn verification_errors() {
    let pki = Pki::new();
    let ca = pki.ca.to_str().unwrap();
    let cases: [(&Identity, &[&str], &str); 4] = [
        (
            &pki.self_signed,
            &["localhost", "--tls", "--cacert", ca],
            "tls: invalid peer certificate: UnknownIssuer",
        ),
        (
            &pki.localhost,
            &["localhost", "--tls"],
            "tls: invalid peer certificate: UnknownIssuer",
        ),
        (
            &pki.expired,
            &["localhost", "--tls", "--cacert", ca],
            "tls: invalid peer certificate: certificate expired",
        ),
        (
            &pki.localhost,
            &[
                "127.0.0.1",
                "--tls",
                "--cacert",
                ca,
                "--servername",
                "other.test",
            ],
            "tls: invalid peer certificate: certificate not valid for name",
        ),
    ];
    for (id, args, want) in cases {
        let (_srv, addr) = tls_listen(id);
        let (code, out, err) = connect(args, addr.port(), b"x");
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(out.is_empty());
        assert!(
            err.starts_with(&format!("netkit: error: {want}")),
            "{args:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}

#[test]
fn tls_client_to_a_plain_server_is_a_tls_error() {
    let mut cmd = Command::new(bin("netkit"));
    cmd.args(["listen", "--port", "0", "--echo"]);
    let p = Peer::spawn("netkit listen", cmd).unwrap();
    let addr = parse_listening(&p.next_line(LIMIT).unwrap()).unwrap();
    let (code, _, err) = connect(&["127.0.0.1", "--tls"], addr.port(), b"");
    assert_eq!(code, 1);
    assert!(err.starts_with("netkit: error: tls: "), "{err}");
}

#[test]
fn bad_pem_files() {
    let pki = Pki::new();
    let empty = pki.dir().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let key = pki.localhost.key.to_str().unwrap();
    let cert = pki.localhost.cert.to_str().unwrap();
    let dir = pki.dir().to_str().unwrap();
    let cases: [(&str, &str, &str); 4] = [
        (dir, key, "tls: cannot read PEM file"),
        (empty.to_str().unwrap(), key, "the file is empty"),
        (cert, cert, "no PRIVATE KEY section found"),
        (cert, pki.other.key.to_str().unwrap(), "does not match"),
    ];
    for (c, k, want) in cases {
        let mut cmd = Command::new(bin("netkit"));
        cmd.args(["listen", "--port", "0", "--tls-cert", c, "--tls-key", k]);
        let (code, out, err) = run_bounded(&mut cmd, b"", LIMIT);
        assert_eq!(code, 1, "{c} {k}: {err}");
        assert!(out.is_empty());
        assert!(
            err.starts_with("netkit: error: tls: ") && err.contains(want),
            "{err}"
        );
    }
}

#[test]
fn garbage_instead_of_a_client_hello_ends_only_that_connection() {
    let pki = Pki::new();
    let (_srv, addr) = tls_listen(&pki.localhost);
    let mut g = TcpStream::connect(addr).unwrap();
    g.set_read_timeout(Some(LIMIT)).unwrap();
    g.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    let _ = g.read_to_end(&mut rest); // an alert, then EOF
    let ca = pki.ca.to_str().unwrap();
    let (code, out, err) = connect(&["localhost", "--cacert", ca], addr.port(), b"still up");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, b"Echo: still up");
}

/// Open descriptors of a process.
fn fds_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// `netkit listen --echo --tls-*` and a client that sends a valid record then
/// a corrupted one in one segment: the echo of the valid record comes back,
/// then the alert, then EOF, and the server's descriptor count returns to its
/// baseline (the connection used to stay open with no interest, forever).
#[test]
fn a_bad_record_after_valid_data_closes_the_cli_connection() {
    let pki = Pki::new();
    let (srv, addr) = tls_listen(&pki.localhost);
    let baseline = fds_of(srv.pid());
    let config = netkit_sys::tls::client_config(&ClientOptions {
        ca: Some(pem(&pki.ca)),
        ..ClientOptions::default()
    })
    .unwrap();
    for _ in 0..3 {
        let out = netkit_tests::tls_client::valid_then_corrupt_record(
            addr,
            &config,
            "localhost",
            b"valid",
            LIMIT,
        );
        assert_eq!(out.plaintext, b"Echo: valid", "{out:?}");
        let e = out.error.as_ref().expect("the server's alert");
        assert!(e.to_string().contains("BadRecordMac"), "{e}");
        assert!(out.closed, "{out:?}");
    }
    let end = std::time::Instant::now() + LIMIT;
    while fds_of(srv.pid()) != baseline && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fds_of(srv.pid()), baseline, "descriptors left open");
}

/// A server that sends a valid record then a corrupted one: `netkit connect`
/// prints the valid data, then fails with the error line (exit 1), and does not
/// hang.
#[test]
fn netkit_connect_fails_on_a_bad_record_after_valid_data() {
    let pki = Pki::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = netkit_sys::tls::server_config(&ServerOptions::new(
        pem(&pki.localhost.cert),
        pem(&pki.localhost.key),
    ))
    .unwrap();
    let t = netkit_tests::tls_client::corrupting_server(listener, server, b"valid\n", LIMIT);
    let ca = pki.ca.to_str().unwrap();
    let (code, out, err) = connect(&["localhost", "--cacert", ca], port, b"");
    assert_eq!(String::from_utf8_lossy(&out), "valid\n");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("netkit: error: tls: ") && err.contains("decrypt"),
        "{err}"
    );
    t.join().unwrap();
}

#[test]
fn openssl_s_client_against_netkit_listen() {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let (_srv, addr) = tls_listen(&pki.localhost);
    for version in ["-tls1_3", "-tls1_2"] {
        let mut cmd = Command::new("openssl");
        cmd.args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-servername",
            "localhost",
        ])
        .args([
            "-verify_return_error",
            "-quiet",
            "-no_ign_eof",
            version,
            "-CAfile",
        ])
        .arg(&pki.ca);
        let mut client = Peer::spawn("openssl s_client", cmd).expect("spawn s_client");
        let mut stdin = client.take_stdin().expect("stdin");
        stdin.write_all(b"from openssl\n").unwrap();
        stdin.flush().unwrap();
        let line = client.wait_line(LIMIT, |l| !l.is_empty());
        assert_eq!(
            line.as_deref(),
            Some("Echo: from openssl"),
            "{version}: {}",
            client.stderr()
        );
        // Closing stdin makes s_client send close_notify; netkit answers with its
        // own before closing, so s_client sees no unexpected EOF.
        drop(stdin);
        let st = client.wait_exit(LIMIT).expect("s_client exits");
        assert!(st.success(), "{version}: {}", client.stderr());
        assert!(
            !client.stderr().contains("unexpected eof"),
            "{}",
            client.stderr()
        );
    }
}

#[test]
fn curl_handshakes_with_netkit_listen() {
    if !netkit_tests::peer::have("curl", "version") {
        return;
    }
    let pki = Pki::new();
    let (_srv, addr) = tls_listen(&pki.localhost);
    let mut cmd = Command::new("curl");
    cmd.args(["-sv", "--max-time", "5", "--cacert"])
        .arg(&pki.ca)
        .arg(format!("https://localhost:{}/", addr.port()));
    let (_, out, err) = run_bounded(&mut cmd, b"", LIMIT);
    // The echo server is not HTTP: curl gets "Echo: GET / ..." back, after a
    // verified handshake.
    assert!(err.contains("SSL connection using TLSv1.3"), "{err}");
    assert!(String::from_utf8_lossy(&out).is_empty() || !err.contains("certificate problem"));
    assert!(
        err.contains("Echo: GET")
            || err.contains("Unsupported HTTP")
            || err.contains("Received HTTP/0.9"),
        "{err}"
    );
}

#[test]
fn netkit_connect_against_openssl_s_server() {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let ca = pki.ca.to_str().unwrap();
    for extra in [&["-tls1_3"][..], &["-tls1_2"]] {
        let (_srv, port) = s_server(&pki.localhost, extra);
        // -rev answers each line reversed; s_server closes when we end.
        let (code, out, err) = connect(&["localhost", "--tls", "--cacert", ca], port, b"olleh\n");
        assert!(
            String::from_utf8_lossy(&out).contains("hello"),
            "{extra:?}: {err} {out:?}"
        );
        assert!(
            code == 0 || err.contains("close_notify"),
            "{extra:?}: {code} {err}"
        );
    }
}

#[test]
fn mutual_tls_against_openssl_s_server_requires_a_client_certificate() {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let ca = pki.ca.to_str().unwrap();
    let (_srv, port) = s_server(
        &pki.localhost,
        &["-Verify", "1", "-verify_return_error", "-CAfile", ca],
    );
    // netkit connect has no client-certificate flag: the server refuses us.
    let (code, _, err) = connect(&["localhost", "--tls", "--cacert", ca], port, b"x\n");
    assert_eq!(code, 1, "{err}");
    assert!(err.starts_with("netkit: error: tls: "), "{err}");
}

// --- mTLS and oversized chains (issue 3) -------------------------------------

fn pem(path: &std::path::Path) -> Pem {
    Pem::new(
        path.display().to_string(),
        std::fs::read(path).expect("read PEM"),
    )
}

/// A server configuration for `pki.localhost` asking clients for a certificate
/// chaining to `pki.ca` (Bun's `requestCert`, `rejectUnauthorized`).
fn mtls_server_config(pki: &Pki, reject_unauthorized: bool) -> netkit_tls::ServerConfig {
    let mut opts = ServerOptions::new(pem(&pki.localhost.cert), pem(&pki.localhost.key));
    opts.ca = Some(pem(&pki.ca));
    opts.request_cert = true;
    opts.reject_unauthorized = reject_unauthorized;
    netkit_sys::tls::server_config(&opts).expect("mTLS server config")
}

/// `openssl s_client` to `addr`, verifying the server against `pki.ca`, with
/// `identity` as its client certificate if any.
fn s_client(addr: SocketAddr, pki: &Pki, version: &str, identity: Option<&Identity>) -> Peer {
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-connect", &addr.to_string()])
        .args(["-servername", "localhost", "-verify_return_error"])
        .args(["-quiet", "-no_ign_eof", version, "-CAfile"])
        .arg(&pki.ca);
    if let Some(id) = identity {
        cmd.arg("-cert").arg(&id.cert).arg("-key").arg(&id.key);
    }
    Peer::spawn("openssl s_client", cmd).expect("spawn s_client")
}

/// Sends a line through `s_client` and returns the first non-empty line that
/// comes back (`None` if the connection ends without one), then closes stdin
/// and waits (bounded) for s_client to exit.
fn s_client_echo(mut client: Peer, line: &str) -> (Option<String>, String) {
    let mut stdin = client.take_stdin().expect("stdin");
    // A refused client may already be gone: a failed write is part of the outcome.
    let _ = stdin.write_all(format!("{line}\n").as_bytes());
    let _ = stdin.flush();
    let reply = client.wait_line(LIMIT, |l| !l.is_empty());
    drop(stdin);
    assert!(
        client.wait_exit(LIMIT).is_some(),
        "s_client did not exit: {}",
        client.stderr()
    );
    (reply, client.stderr())
}

/// Waits (bounded) for `peer`'s stderr to contain `text`: a reader thread
/// collects it, so it may lag behind what the peer did.
fn stderr_shows(peer: &Peer, text: &str) -> bool {
    let end = std::time::Instant::now() + LIMIT;
    while !peer.stderr().contains(text) {
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

fn connect_errors(srv: &TestServer) -> usize {
    srv.events()
        .iter()
        .filter(|(_, e)| e.starts_with("connect_error"))
        .count()
}

/// Our server with `requestCert` + `rejectUnauthorized` (mandatory client
/// certificates), against openssl s_client over TLS 1.3 and 1.2: no client
/// certificate and a certificate from an untrusted CA are both refused during
/// the handshake (a `connect_error`, never an `open`), and the server goes on
/// to serve a client whose certificate chains to the trusted CA.
fn mtls_server_requires_a_trusted_client_certificate(d: Driver) {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let srv = TestServer::start(
        d,
        Behavior {
            tls: Some(mtls_server_config(&pki, true)),
            record_tls: true,
            ..Behavior::default()
        },
    );
    let details = |s: &TestServer| -> Vec<String> {
        s.events()
            .into_iter()
            .filter_map(|(_, e)| e.strip_prefix("detail:").map(str::to_string))
            .collect()
    };
    let mut refused = 0;
    for version in ["-tls1_3", "-tls1_2"] {
        for (what, id, why) in [
            ("no certificate", None, "tls: peer sent no certificates"),
            (
                "untrusted CA",
                Some(&pki.untrusted_client),
                "tls: invalid peer certificate: UnknownIssuer",
            ),
        ] {
            let (reply, err) = s_client_echo(s_client(srv.addr(), &pki, version, id), "nope");
            assert_eq!(reply, None, "{version} {what}: echoed: {err}");
            refused += 1;
            assert!(
                srv.wait(LIMIT, |s| details(s).len() == refused),
                "{version} {what}: {:?}",
                srv.events()
            );
            assert_eq!(details(&srv)[refused - 1], why, "{version} {what}");
        }
        // The server went on serving: a trusted client gets its echo.
        let (reply, err) = s_client_echo(
            s_client(srv.addr(), &pki, version, Some(&pki.client)),
            "with a certificate",
        );
        assert_eq!(
            reply.as_deref(),
            Some("with a certificate"),
            "{version}: {err}"
        );
    }
    assert!(srv.wait(LIMIT, |s| s.live() == 0), "{:?}", srv.events());
    let events = srv.events();
    let of = |e: &str| events.iter().filter(|(_, x)| x == e).count();
    assert_eq!(of("connect_error:ERR_TLS"), 4, "{events:?}");
    for conn in [1, 2] {
        assert_eq!(
            srv.events_of(conn)[..2],
            ["open", "auth:authorized"],
            "{events:?}"
        );
    }
    assert_eq!(of("open"), 2, "only the trusted clients opened: {events:?}");
}

/// A failed handshake tells the peer why, as OpenSSL-based Bun does: the
/// session queues rustls's fatal alert (certificate_required, unknown_ca on a
/// server; unknown_ca from a client refusing the server) and the drivers send
/// it (`Machine::parting_bytes`) before closing, so the peer does not see a bare
/// EOF or reset.
#[test]
fn failed_handshakes_send_their_alert() {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    for d in [Driver::Blocking, Driver::Smol] {
        let srv = TestServer::start(
            d,
            Behavior {
                tls: Some(mtls_server_config(&pki, true)),
                ..Behavior::default()
            },
        );
        for version in ["-tls1_3", "-tls1_2"] {
            for (id, alert) in [
                (None, "alert certificate required"),
                (Some(&pki.untrusted_client), "alert unknown ca"),
            ] {
                let (_, err) = s_client_echo(s_client(srv.addr(), &pki, version, id), "nope");
                assert!(err.contains(alert), "{d:?} {version}: {err}");
            }
        }
    }
    // Our client refusing the server's certificate (netkit connect).
    let (srv, port) = s_server(&pki.self_signed, &[]);
    let ca = pki.ca.to_str().unwrap();
    let (code, _, err) = connect(&["localhost", "--tls", "--cacert", ca], port, b"x\n");
    assert_eq!(code, 1, "{err}");
    assert!(
        stderr_shows(&srv, "alert unknown ca"),
        "s_server: {}",
        srv.stderr()
    );
}

/// `requestCert` without `rejectUnauthorized`: every s_client gets through, and
/// the handler sees how each one's certificate verified (Bun's `authorized` /
/// `authorizationError`).
fn mtls_server_without_reject_reports_authorization(d: Driver) {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let srv = TestServer::start(
        d,
        Behavior {
            tls: Some(mtls_server_config(&pki, false)),
            record_tls: true,
            ..Behavior::default()
        },
    );
    let cases = [
        (Some(&pki.client), "auth:authorized"),
        (None, "auth:no-certificate"),
        (
            Some(&pki.untrusted_client),
            "auth:unauthorized:invalid peer certificate: UnknownIssuer",
        ),
    ];
    for (i, (id, want)) in cases.into_iter().enumerate() {
        let (reply, err) = s_client_echo(s_client(srv.addr(), &pki, "-tls1_3", id), "hi");
        assert_eq!(reply.as_deref(), Some("hi"), "{want}: {err}");
        let conn = i as u64 + 1;
        assert!(
            srv.wait(LIMIT, |s| s.events_of(conn).len() >= 2),
            "{:?}",
            srv.events()
        );
        assert_eq!(
            srv.events_of(conn)[..2],
            ["open", want],
            "{:?}",
            srv.events()
        );
    }
    assert_eq!(connect_errors(&srv), 0, "{:?}", srv.events());
}

netkit_tests::both_drivers!(
    mtls_server_requires_a_trusted_client_certificate,
    mtls_server_without_reject_reports_authorization,
    mtls_client_against_openssl_s_server,
);

/// A TLS client handler for either driver: sends `olleh` on open (s_server
/// `-rev` answers `hello`), closes once that came back, logs every event.
#[derive(Clone)]
struct RevClient {
    log: Arc<Mutex<Vec<String>>>,
    got: Arc<Mutex<Vec<u8>>>,
}

impl RevClient {
    fn new() -> Self {
        Self {
            log: Arc::default(),
            got: Arc::default(),
        }
    }

    fn push(&self, e: String) {
        self.log.lock().unwrap().push(e);
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn done(&self) -> bool {
        self.log()
            .iter()
            .any(|e| e.starts_with("close") || e.starts_with("connect_error"))
    }

    /// Whether the reply is complete (then the caller closes).
    fn received(&self, b: &[u8]) -> bool {
        let mut got = self.got.lock().unwrap();
        got.extend_from_slice(b);
        let complete = got.ends_with(b"hello\n");
        if complete {
            self.push(format!("data:{}", String::from_utf8_lossy(&got)));
        }
        complete
    }
}

/// Written once: smol runs it as is, the blocking loop inside an `Arc`.
impl netkit_sys::SharedHandler for RevClient {
    type Data = ();
    fn open(&self, s: &mut netkit_sys::Socket<'_, ()>) {
        self.push("open".into());
        let _ = s.write(b"olleh\n");
    }
    fn data(&self, s: &mut netkit_sys::Socket<'_, ()>, b: &[u8]) {
        if self.received(b) {
            s.close();
        }
    }
    fn timeout(&self, s: &mut netkit_sys::Socket<'_, ()>) {
        self.push("timeout".into());
        s.close();
    }
    fn error(&self, _s: &mut netkit_sys::Socket<'_, ()>, e: &SocketError) {
        self.push(format!("error:{e}"));
    }
    fn close(&self, _s: &mut netkit_sys::Socket<'_, ()>, e: Option<&SocketError>) {
        self.push(format!("close:{}", e.is_some()));
    }
    fn connect_error(&self, _s: &mut netkit_sys::Socket<'_, ()>, e: &SocketError) {
        self.push(format!("connect_error:{e}"));
    }
}

/// Connects a `RevClient` to `localhost:port` over TLS on driver `d`, trusting
/// `pki.ca` and presenting `identity`; returns its event log once it is done.
fn rev_client(d: Driver, port: u16, pki: &Pki, identity: Option<&Identity>) -> Vec<String> {
    let config = netkit_sys::tls::client_config(&ClientOptions {
        ca: Some(pem(&pki.ca)),
        identity: identity.map(|id| (pem(&id.cert), pem(&id.key))),
        ..ClientOptions::default()
    })
    .expect("client config");
    let mut opts = netkit_blocking::ConnectOptions::new("localhost", port);
    // An idle limit instead of a hang if the peer never answers.
    opts.timeout = Some(LIMIT);
    opts.tls = Some(netkit_blocking::ClientTls {
        config,
        server_name: None,
    });
    let client = RevClient::new();
    match d {
        Driver::Blocking => {
            let mut lp = netkit_blocking::EventLoop::new().expect("event loop");
            lp.connect(opts, Arc::new(client.clone()), ())
                .expect("connect");
            let done = lp.run_until(LIMIT * 2, || client.done()).expect("run");
            assert!(done, "the client never finished: {:?}", client.log());
        }
        Driver::Smol => {
            let _ = ::smol::block_on(netkit_smol::connect(opts, client.clone(), ()));
        }
    }
    client.log()
}

/// Our client with a certificate (`ClientOptions.identity`) against
/// `openssl s_server -Verify 1 -verify_return_error`, over TLS 1.3 and 1.2: the
/// handshake succeeds, s_server verified our certificate (its verify callback
/// names our client certificate), and data flows both ways. A certificate from
/// a CA s_server does not trust is refused with `unknown_ca`: a `connect_error`
/// in TLS 1.2; in TLS 1.3 the client's handshake is over before the server
/// judges its certificate, so `open` comes first, then the error (as in node).
fn mtls_client_against_openssl_s_server(d: Driver) {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let ca = pki.ca.to_str().unwrap();
    let verify = ["-Verify", "1", "-verify_return_error", "-CAfile", ca];
    for version in ["-tls1_3", "-tls1_2"] {
        let (srv, port) = s_server(&pki.localhost, &[&verify[..], &[version]].concat());
        let log = rev_client(d, port, &pki, Some(&pki.client));
        assert_eq!(
            log,
            ["open", "data:hello\n", "close:false"],
            "{version}: s_server: {}",
            srv.stderr()
        );
        assert!(
            stderr_shows(&srv, "depth=0 CN = netkit test client"),
            "{version}: s_server did not verify our certificate: {}",
            srv.stderr()
        );
        drop(srv);

        let (srv, port) = s_server(&pki.localhost, &[&verify[..], &[version]].concat());
        let log = rev_client(d, port, &pki, Some(&pki.untrusted_client));
        let alert = "tls: received fatal alert: UnknownCA";
        let want = match version {
            "-tls1_3" => vec![
                "open".to_string(),
                format!("error:{alert}"),
                "close:true".into(),
            ],
            _ => vec![format!("connect_error:{alert}")],
        };
        assert_eq!(log, want, "{version}: s_server: {}", srv.stderr());
    }
}

/// A server whose Certificate message is over rustls's 64 KiB limit on a
/// handshake message: openssl s_server sending the real chain plus 80 KiB of
/// unrelated CA certificates (`-cert_chain`). `netkit connect --tls` fails with
/// exit status 1 and one `netkit: error: tls: ` line naming the oversized
/// message: no panic, no hang. The same server with 2 KiB of padding, and with
/// 60 KiB (a Certificate message just under the limit, which must not stall
/// the session's input either), is accepted, so the size is what is refused.
#[test]
fn netkit_connect_refuses_a_certificate_chain_over_the_handshake_limit() {
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let ca = pki.ca.to_str().unwrap();
    for (padding, refused) in [(2 * 1024, false), (60 * 1024, false), (80 * 1024, true)] {
        let (pem, count) = padding_certificates(padding);
        let chain = pki.dir().join(format!("padding-{padding}.pem"));
        std::fs::write(&chain, pem).unwrap();
        for version in ["-tls1_3", "-tls1_2"] {
            let (srv, port) = s_server(
                &pki.localhost,
                &["-cert_chain", chain.to_str().unwrap(), version],
            );
            let mut cmd = Command::new(bin("netkit"));
            cmd.args([
                "connect",
                "localhost",
                &port.to_string(),
                "--tls",
                "--cacert",
                ca,
            ]);
            let (code, out, err) = run_bounded(&mut cmd, b"olleh\n", LIMIT);
            let what = format!("{version}, {count} padding certificates");
            if !refused {
                assert!(
                    String::from_utf8_lossy(&out).contains("hello"),
                    "{what}: {err} {out:?}, s_server: {}",
                    srv.stderr()
                );
                continue;
            }
            assert_eq!(code, 1, "{what}: {err}");
            assert!(out.is_empty(), "{what}: {out:?}");
            assert_eq!(
                err,
                "netkit: error: tls: received corrupt message of type HandshakePayloadTooLarge\n",
                "{what}"
            );
        }
    }
}

fn s_server(id: &Identity, extra: &[&str]) -> (Peer, u16) {
    netkit_tests::peer::openssl_s_server(&id.cert, &id.key, extra, LIMIT)
}
