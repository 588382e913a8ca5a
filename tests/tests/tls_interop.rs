//! TLS against real peers: `netkit listen --tls-*` with `openssl s_client` and
//! `curl`, `netkit connect --tls` with `openssl s_server`, and the error lines.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use netkit_tests::peer::Peer;
use netkit_tests::pki::{Identity, Pki};
use netkit_tests::{bin, free_port, parse_listening};

const LIMIT: Duration = Duration::from_secs(20);

fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        // .ci/run installs them; a developer machine without them says so loudly.
        eprintln!("SKIPPED: `{tool}` is not installed (apt-get install openssl curl)");
    }
    ok
}

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

fn run(cmd: &mut Command, stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let w = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    w.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn connect(args: &[&str], port: u16, stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("connect")
        .args(&args[..1])
        .arg(port.to_string())
        .args(&args[1..]);
    run(&mut cmd, stdin)
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
        let (code, out, err) = run(&mut cmd, b"");
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

#[test]
fn openssl_s_client_against_netkit_listen() {
    if !have("openssl") {
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
    if !have("curl") {
        return;
    }
    let pki = Pki::new();
    let (_srv, addr) = tls_listen(&pki.localhost);
    let mut cmd = Command::new("curl");
    cmd.args(["-sv", "--max-time", "5", "--cacert"])
        .arg(&pki.ca)
        .arg(format!("https://localhost:{}/", addr.port()));
    let (_, out, err) = run(&mut cmd, b"");
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

fn s_server(id: &Identity, extra: &[&str]) -> (Peer, u16) {
    let port = free_port();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-accept", &port.to_string(), "-rev", "-cert"])
        .arg(&id.cert)
        .arg("-key")
        .arg(&id.key)
        .args(extra);
    let p = Peer::spawn("openssl s_server", cmd).expect("spawn s_server");
    p.wait_line(LIMIT, |l| l.contains("ACCEPT"))
        .unwrap_or_else(|| panic!("s_server did not start: {}", p.stderr()));
    (p, port)
}

#[test]
fn netkit_connect_against_openssl_s_server() {
    if !have("openssl") {
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
    if !have("openssl") {
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
