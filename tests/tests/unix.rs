//! Unix domain sockets (Bun's `unix` option): both drivers' servers with the
//! same handler model, backpressure, half-close and TLS as over TCP; the CLI's
//! `listen --unix` / `connect --unix`; real peers: curl `--unix-socket` (plain
//! and TLS), socat, openssl `s_client -unix` / `s_server -unix`.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use netkit_tests::bin;
use netkit_tests::peer::{Peer, TempDir, have, run_bounded};
use netkit_tests::pki::Pki;
use netkit_tests::servers::{Behavior, Driver, TestServer};
use netkit_tls::rustls::{ClientConnection, StreamOwned};
use netkit_tls::{ClientOptions, Pem, ServerOptions};

const LIMIT: Duration = Duration::from_secs(20);

fn pem(path: &Path) -> Pem {
    Pem::new(path.display().to_string(), std::fs::read(path).unwrap())
}

fn unix_server(d: Driver, dir: &TempDir, behavior: Behavior) -> (TestServer, PathBuf) {
    let path = dir.path().join("srv.sock");
    let srv = TestServer::start(
        d,
        Behavior {
            unix: Some(path.clone()),
            ..behavior
        },
    );
    (srv, path)
}

fn client(path: &Path) -> UnixStream {
    let c = UnixStream::connect(path).expect("connect");
    c.set_read_timeout(Some(LIMIT)).unwrap();
    c
}

fn wait_gone(path: &Path) -> bool {
    let end = Instant::now() + LIMIT;
    while path.exists() {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Echo, then the client's half-close: the server ends too (no half-open by
/// default), and stopping the server removes its socket file.
fn echo_half_close_and_cleanup(d: Driver) {
    let dir = TempDir::new("nk-unix").unwrap();
    let (srv, path) = unix_server(d, &dir, Behavior::default());
    assert_eq!(
        srv.endpoint(),
        &netkit_sys::net::Endpoint::Unix(path.clone())
    );
    let mut c = client(&path);
    c.write_all(b"over unix").unwrap();
    let mut buf = [0u8; 9];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"over unix");
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert!(srv.wait(LIMIT, |s| s.live() == 0));
    assert_eq!(srv.events_of(1), ["open", "end", "close"]);
    assert!(path.exists());
    drop(srv);
    assert!(wait_gone(&path), "the server left its socket file behind");
}

/// 16 MiB sent while the client reads nothing: the server holds a bounded
/// amount, `drain` fires once the client reads, and every byte comes back.
fn backpressure(d: Driver) {
    const TOTAL: usize = 16 * 1024 * 1024;
    const HIGH: usize = 256 * 1024;
    let dir = TempDir::new("nk-unix").unwrap();
    let (srv, path) = unix_server(
        d,
        &dir,
        Behavior {
            high_water: Some(HIGH),
            ..Behavior::default()
        },
    );
    let c = client(&path);
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        netkit_tests::write_pattern(&mut w, TOTAL).unwrap();
        w.shutdown(std::net::Shutdown::Write).unwrap();
    });
    // Let the server stall before reading anything.
    assert!(srv.wait(LIMIT, |s| s.bytes_in() > 0));
    std::thread::sleep(Duration::from_millis(200));
    let got = netkit_tests::read_pattern(&mut { c });
    writer.join().unwrap();
    assert_eq!(got, TOTAL);
    assert!(
        srv.max_held() <= HIGH + 64 * 1024 + 64 * 1024,
        "held {}",
        srv.max_held()
    );
    assert!(srv.events_of(1).iter().any(|e| e == "drain"));
}

/// TLS over a Unix socket: a rustls client verifying `localhost`.
fn tls_echo(d: Driver) {
    let pki = Pki::new();
    let dir = TempDir::new("nk-unix").unwrap();
    let server = netkit_sys::tls::server_config(&ServerOptions::new(
        pem(&pki.localhost.cert),
        pem(&pki.localhost.key),
    ))
    .unwrap();
    let (srv, path) = unix_server(
        d,
        &dir,
        Behavior {
            tls: Some(server),
            ..Behavior::default()
        },
    );
    let config = netkit_sys::tls::client_config(&ClientOptions {
        ca: Some(pem(&pki.ca)),
        ..ClientOptions::default()
    })
    .unwrap();
    let conn =
        ClientConnection::new(config.rustls().clone(), "localhost".try_into().unwrap()).unwrap();
    let mut c = StreamOwned::new(conn, client(&path));
    c.write_all(b"tls over unix").unwrap();
    let mut buf = [0u8; 13];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"tls over unix");
    drop(c);
    assert!(srv.wait(LIMIT, |s| s.live() == 0));
}

/// A path that exists is EADDRINUSE, and the file is left alone.
fn an_existing_path_is_eaddrinuse(d: Driver) {
    let dir = TempDir::new("nk-unix").unwrap();
    let path = dir.path().join("taken");
    std::fs::write(&path, "not a socket").unwrap();
    let want = format!("EADDRINUSE: listen {}", path.display());
    let err = match d {
        Driver::Blocking => {
            let mut lp = netkit_blocking::EventLoop::new().unwrap();
            lp.listen(
                netkit_blocking::ListenOptions::unix(&path),
                Arc::new(NoHandler),
            )
            .unwrap_err()
        }
        Driver::Smol => {
            netkit_smol::Server::bind(netkit_smol::ListenOptions::unix(&path), NoHandler)
                .unwrap_err()
        }
    };
    assert_eq!(err.to_string(), want);
    assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
}

struct NoHandler;

impl netkit_sys::SharedHandler for NoHandler {
    type Data = ();
    fn data(&self, _s: &mut netkit_sys::Socket<'_, ()>, _b: &[u8]) {}
}

/// curl as the real peer over the Unix socket, plain and TLS.
fn curl_unix_socket(d: Driver) {
    if !have("curl", "--version") {
        return;
    }
    let dir = TempDir::new("nk-unix").unwrap();
    let (_srv, path) = unix_server(
        d,
        &dir,
        Behavior {
            http_body: Some("unix ok"),
            ..Behavior::default()
        },
    );
    let (code, out, err) = run_bounded(
        Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(&path)
            .arg("http://localhost/"),
        b"",
        LIMIT,
    );
    assert_eq!((code, out.as_slice()), (0, &b"unix ok"[..]), "{err}");

    let pki = Pki::new();
    let tls = netkit_sys::tls::server_config(&ServerOptions::new(
        pem(&pki.localhost.cert),
        pem(&pki.localhost.key),
    ))
    .unwrap();
    let tdir = TempDir::new("nk-unix").unwrap();
    let (_tsrv, tpath) = unix_server(
        d,
        &tdir,
        Behavior {
            http_body: Some("tls unix ok"),
            tls: Some(tls),
            ..Behavior::default()
        },
    );
    let (code, out, err) = run_bounded(
        Command::new("curl")
            .args(["-sS", "--unix-socket"])
            .arg(&tpath)
            .arg("--cacert")
            .arg(&pki.ca)
            .arg("https://localhost/"),
        b"",
        LIMIT,
    );
    assert_eq!((code, out.as_slice()), (0, &b"tls unix ok"[..]), "{err}");
}

netkit_tests::both_drivers!(
    echo_half_close_and_cleanup,
    backpressure,
    tls_echo,
    an_existing_path_is_eaddrinuse,
    curl_unix_socket,
);

// ---- the CLI ----

/// `netkit listen --unix PATH ARGS`, once it announced itself.
fn cli_listen(path: &Path, extra: &[&str]) -> Peer {
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("listen").arg("--unix").arg(path).args(extra);
    let p = Peer::spawn("netkit listen --unix", cmd).expect("spawn");
    let line = p
        .next_line(LIMIT)
        .unwrap_or_else(|| panic!("no first line: {}", p.stderr()));
    assert_eq!(line, format!("listening on {}", path.display()));
    p
}

/// Waits until `peer` (socat with `fork`, so a probe costs it nothing)
/// accepts on `path`. The socket file appears at bind, before listen: a
/// connect in between is refused, so the file is no sign of readiness.
fn listening(peer: &Peer, path: &Path) {
    peer.wait_ready(LIMIT, || UnixStream::connect(path).is_ok());
}

fn cli_connect(args: &[&str], path: &Path, stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("connect").arg("--unix").arg(path).args(args);
    run_bounded(&mut cmd, stdin, LIMIT)
}

#[test]
fn cli_listen_and_connect_over_unix() {
    let dir = TempDir::new("nk-unix").unwrap();
    let path = dir.path().join("cli.sock");
    let mut srv = cli_listen(&path, &["--echo"]);
    let (code, out, err) = cli_connect(&[], &path, b"hello unix");
    assert_eq!(
        (code, out.as_slice()),
        (0, &b"Echo: hello unix"[..]),
        "{err}"
    );
    // A second server on the same path: EADDRINUSE, the first one untouched.
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("listen").arg("--unix").arg(&path);
    let (code, _, err) = run_bounded(&mut cmd, b"", LIMIT);
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!("netkit: error: EADDRINUSE: listen {}", path.display())
    );
    let (code, out, _) = cli_connect(&[], &path, b"still");
    assert_eq!((code, out.as_slice()), (0, &b"Echo: still"[..]));
    // SIGTERM: exit 0 and the socket file is gone.
    srv.signal(libc::SIGTERM);
    let st = srv.wait_exit(LIMIT).expect("exit after SIGTERM");
    assert!(st.success(), "{st:?}");
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn cli_unix_errors() {
    let dir = TempDir::new("nk-unix").unwrap();
    let missing = dir.path().join("missing.sock");
    let (code, _, err) = cli_connect(&[], &missing, b"");
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!("netkit: error: ENOENT: connect {}", missing.display())
    );
    let stale = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let (code, _, err) = cli_connect(&[], &stale, b"");
    assert_eq!(code, 1);
    assert_eq!(
        err.trim(),
        format!("netkit: error: ECONNREFUSED: connect {}", stale.display())
    );
    // A regular file that exists: EADDRINUSE, never unlinked.
    let file = dir.path().join("file");
    std::fs::write(&file, "keep me").unwrap();
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("listen").arg("--unix").arg(&file);
    let (code, _, err) = run_bounded(&mut cmd, b"", LIMIT);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("EADDRINUSE"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    // --unix with a host or port is a usage error.
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("connect")
        .arg("--unix")
        .arg(&file)
        .args(["127.0.0.1", "80"]);
    let (code, _, _) = run_bounded(&mut cmd, b"", LIMIT);
    assert_eq!(code, 2);
}

/// socat as the peer both ways.
#[test]
fn cli_unix_with_socat() {
    if !have("socat", "-V") {
        return;
    }
    let dir = TempDir::new("nk-unix").unwrap();
    // socat as a client of `netkit listen --unix --echo`.
    let path = dir.path().join("echo.sock");
    let _srv = cli_listen(&path, &["--echo"]);
    let (code, out, err) = run_bounded(
        Command::new("socat")
            .arg("-")
            .arg(format!("UNIX-CONNECT:{}", path.display())),
        b"from socat",
        LIMIT,
    );
    assert_eq!(
        (code, out.as_slice()),
        (0, &b"Echo: from socat"[..]),
        "{err}"
    );
    // socat as the server of `netkit connect --unix` (it echoes with cat).
    let spath = dir.path().join("socat.sock");
    let mut cmd = Command::new("socat");
    cmd.arg(format!("UNIX-LISTEN:{},fork", spath.display()))
        .arg("EXEC:cat");
    let socat = Peer::spawn("socat UNIX-LISTEN", cmd).expect("spawn socat");
    listening(&socat, &spath);
    let (code, out, err) = cli_connect(&[], &spath, b"round trip");
    assert_eq!((code, out.as_slice()), (0, &b"round trip"[..]), "{err}");
}

/// TLS over Unix against openssl: `s_client -unix` to `netkit listen --unix
/// --tls-*`, and `netkit connect --unix --tls` to `s_server -unix`
/// (verifying `localhost` by default, or `--servername`).
#[test]
fn cli_tls_over_unix_with_openssl() {
    if !have("openssl", "version") {
        return;
    }
    let pki = Pki::new();
    let dir = TempDir::new("nk-unix").unwrap();
    let path = dir.path().join("tls.sock");
    let _srv = cli_listen(
        &path,
        &[
            "--echo",
            "--tls-cert",
            pki.localhost.cert.to_str().unwrap(),
            "--tls-key",
            pki.localhost.key.to_str().unwrap(),
        ],
    );
    let mut cmd = Command::new("openssl");
    cmd.args(["s_client", "-unix"])
        .arg(&path)
        .args(["-servername", "localhost", "-verify_return_error", "-quiet"])
        .arg("-CAfile")
        .arg(&pki.ca);
    let mut client = Peer::spawn("openssl s_client -unix", cmd).expect("spawn");
    let mut stdin = client.take_stdin().unwrap();
    stdin.write_all(b"tls unix\n").unwrap();
    stdin.flush().unwrap();
    let line = client.wait_line(LIMIT, |l| !l.is_empty());
    assert_eq!(
        line.as_deref(),
        Some("Echo: tls unix"),
        "{}",
        client.stderr()
    );
    drop(stdin);

    // OpenSSL 3.0's `s_server -unix` fails at start ("BIO routines:
    // addr_strings"), so socat carries the Unix socket to s_server on TCP:
    // the TLS session is still netkit's against openssl's, end to end.
    if !have("socat", "-V") {
        return;
    }
    let (_server, port) =
        netkit_tests::peer::openssl_s_server(&pki.localhost.cert, &pki.localhost.key, &[], LIMIT);
    let spath = dir.path().join("s_server.sock");
    let mut cmd = Command::new("socat");
    cmd.arg(format!("UNIX-LISTEN:{},fork", spath.display()))
        .arg(format!("TCP:127.0.0.1:{port}"));
    let relay = Peer::spawn("socat UNIX-LISTEN to s_server", cmd).expect("spawn socat");
    listening(&relay, &spath);
    let ca = pki.ca.to_str().unwrap();
    let (code, out, err) = cli_connect(&["--tls", "--cacert", ca], &spath, b"olleh\n");
    assert_eq!(code, 0, "{err}");
    assert!(String::from_utf8_lossy(&out).contains("hello"), "{out:?}");
    // The name verified is --servername when given: a wrong one fails (the
    // relay serves one connection per fork, s_server one at a time).
    let (code, _, err) = cli_connect(
        &["--tls", "--cacert", ca, "--servername", "other.test"],
        &spath,
        b"x\n",
    );
    assert_eq!(code, 1);
    assert!(err.starts_with("netkit: error: tls: "), "{err}");
}
