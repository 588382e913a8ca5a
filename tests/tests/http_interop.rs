//! `netkit fetch` against real peers: nginx (HTTP, HTTPS with the test PKI,
//! a Unix socket, an 8 MiB file, gzip) and tinyproxy (forwarding, CONNECT,
//! Basic auth), with curl as the reference client for bodies.

use std::process::Command;
use std::time::Duration;

use netkit_tests::bin;
use netkit_tests::http::{Nginx, Tinyproxy, text_file};
use netkit_tests::peer::run_bounded;
use netkit_tests::pki::Pki;

const LIMIT: Duration = Duration::from_secs(60);

/// `netkit fetch ARGS` with only `env` as proxy-related environment:
/// (exit code, stdout, stderr).
fn fetch(args: &[&str], env: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("fetch").args(args);
    for k in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "no_proxy",
        "NO_PROXY",
        "REQUEST_METHOD",
        "NETKIT_MAX_HTTP_REQUESTS",
        "BUN_CONFIG_MAX_HTTP_REQUESTS",
        "NETKIT_VERBOSE_FETCH",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let (code, out, err) = run_bounded(&mut cmd, b"", LIMIT);
    (code, out, err.trim().to_owned())
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let (code, out, err) = fetch(args, env);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn fails(args: &[&str], env: &[(&str, &str)], want: &str) {
    let (code, _, err) = fetch(args, env);
    assert_eq!(code, 1, "{args:?}: {err}");
    assert!(
        err.starts_with(&format!("netkit: error: {want}")),
        "{args:?}: {err:?} does not start with {want:?}"
    );
}

fn curl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("curl")
        .arg("-s")
        .args(args)
        .output()
        .expect("curl");
    assert!(out.status.success(), "curl {args:?}");
    out.stdout
}

#[test]
fn plain_https_and_unix_bodies_match_curl() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let ca = pki.ca.to_str().unwrap();
    let http = format!("http://{}/big.txt", ng.http);
    assert_eq!(ok(&[&http], &[]), text_file(8 << 20));
    assert_eq!(ok(&[&http], &[]), curl(&["--compressed", &http]));
    let https = format!("https://localhost:{}/big.txt", ng.https.port());
    assert_eq!(ok(&["--cacert", ca, &https], &[]), text_file(8 << 20));
    let small = format!("https://127.0.0.1:{}/small.txt", ng.https.port());
    assert_eq!(ok(&["--cacert", ca, &small], &[]), b"small\n");
    let unix = ng.unix.to_str().unwrap();
    assert_eq!(
        ok(&["--unix", unix, "http://localhost/hello"], &[]),
        b"hello\n"
    );
    fails(
        &["--unix", "/nonexistent/netkit.sock", "http://localhost/"],
        &[],
        "ENOENT: ",
    );
}

#[test]
fn certificates_are_verified() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let url = format!("https://localhost:{}/hello", ng.https.port());
    fails(&[&url], &[], "tls: invalid peer certificate: ");
    assert_eq!(ok(&["-k", &url], &[]), b"hello\n");
    let other = pki.untrusted_ca.to_str().unwrap();
    fails(
        &["--cacert", other, &url],
        &[],
        "tls: invalid peer certificate: ",
    );
    fails(
        &["--cacert", "/nonexistent.pem", &url],
        &[],
        "tls: cannot read PEM file",
    );
}

#[test]
fn gzip_is_asked_for_and_decoded() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let url = format!("http://{}/big.txt", ng.http);
    let (code, out, err) = fetch(&["-v", &url], &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, text_file(8 << 20));
    assert!(err.contains("> Accept-Encoding: gzip"), "{err}");
    assert!(err.contains("< Content-Encoding: gzip"), "{err}");
}

/// `-v` and `NETKIT_VERBOSE_FETCH=curl` print curl's layout on stderr (the
/// same request and status lines as `curl -v`); without them, and off a
/// terminal, stderr stays empty, even for an 8 MiB body (no progress bar).
#[test]
fn the_trace_is_curls_and_stderr_is_quiet_otherwise() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let big = format!("http://{}/big.txt", ng.http);
    let (code, out, err) = fetch(&[&big], &[]);
    assert_eq!((code, out.len()), (0, 8 << 20), "{err}");
    assert_eq!(err, "", "nothing on stderr off a terminal");
    let small = format!("http://{}/small.txt", ng.http);
    let (code, _, err) = fetch(&[&small], &[("NETKIT_VERBOSE_FETCH", "curl")]);
    assert_eq!(code, 0, "{err}");
    let (code, _, v) = fetch(&["-v", &small], &[]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        err,
        v.replace('\r', ""),
        "the variable turns on the same trace as -v"
    );
    for l in v.lines() {
        assert!(
            l.starts_with("* ")
                || l.starts_with("> ")
                || l.starts_with("< ")
                || l == ">"
                || l == "<",
            "{l:?} in\n{v}"
        );
    }
    let c = Command::new("curl")
        .args(["-sv", "-o", "/dev/null", &small])
        .output()
        .unwrap();
    let c = String::from_utf8_lossy(&c.stderr).replace('\r', "");
    for want in ["> GET /small.txt HTTP/1.1", "< HTTP/1.1 200 OK"] {
        assert!(c.lines().any(|l| l == want), "curl: {c}");
        assert!(
            v.lines().any(|l| l.trim_end() == want),
            "{want:?} missing from\n{v}"
        );
    }
    let host = format!("> Host: {}", ng.http);
    assert!(
        v.lines().any(|l| l.trim_end() == host),
        "{host:?} missing from\n{v}"
    );
    let (_, _, quiet) = fetch(&[&small], &[("NETKIT_VERBOSE_FETCH", "no")]);
    assert_eq!(quiet, "", "only `curl` turns the trace on");
}

#[test]
fn include_writes_the_head_as_received() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let url = format!("http://{}/headers", ng.http);
    let out = String::from_utf8(ok(&["-i", &url], &[])).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    let many: Vec<&str> = head.lines().filter(|l| l.starts_with("X-Many:")).collect();
    assert_eq!(many, ["X-Many: a", "X-Many: b"]);
    assert_eq!(body, "h\n");
    // curl sees the same header lines (Date aside).
    let c = String::from_utf8(curl(&["-i", &url])).unwrap();
    let names = |s: &str| -> Vec<String> {
        s.lines()
            .take_while(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':').map(|(n, _)| n.to_owned()))
            .collect()
    };
    assert_eq!(names(head), names(c.split("\r\n\r\n").next().unwrap()));
}

#[test]
fn methods_bodies_and_fail() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let url = format!("http://{}/method", ng.http);
    assert_eq!(ok(&[&url], &[]), b"GET\n");
    assert_eq!(ok(&["-d", "x=1", &url], &[]), b"POST\n");
    assert_eq!(ok(&["-X", "PUT", "-d", "x", &url], &[]), b"PUT\n");
    assert_eq!(ok(&["-X", "DELETE", &url], &[]), b"DELETE\n");
    // nginx answers a `return` location without reading the body, so the
    // held body is dropped and the connection closed; a second URL still works.
    assert_eq!(
        ok(
            &["-H", "Expect: 100-continue", "-d", "x=1", &url, &url],
            &[]
        ),
        b"POST\nPOST\n"
    );
    assert_eq!(ok(&["-X", "HEAD", &url], &[]), b"");
    let missing = format!("http://{}/missing", ng.http);
    assert_eq!(ok(&[&missing], &[]), b"no such thing\n");
    let (code, out, _) = fetch(&["--fail", &missing], &[]);
    assert_eq!((code, out.len()), (22, 0));
    let (code, _, err) = fetch(&["-H", "X-Bad: a\rb", &url], &[]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn redirects_are_followed_and_bounded() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let url = |p: &str| format!("http://{}{p}", ng.http);
    assert_eq!(ok(&[&url("/redirect")], &[]), b"small\n");
    assert_eq!(ok(&[&url("/redirect-abs")], &[]), b"small\n");
    let out =
        String::from_utf8(ok(&["-i", "--max-redirects", "0", &url("/redirect")], &[])).unwrap();
    assert!(out.starts_with("HTTP/1.1 302 "), "{out}");
    fails(&[&url("/loop")], &[], "http: too many redirects (21)");
    fails(
        &["--max-redirects", "3", &url("/loop")],
        &[],
        "http: too many redirects (4)",
    );
}

#[test]
fn one_connection_for_sequential_requests_and_the_cap_holds() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let a = format!("http://{}/hello?seq", ng.http);
    let out = ok(&[&a, &a, &a], &[]);
    assert_eq!(out, b"hello\nhello\nhello\n");
    assert_eq!(ng.connections_for("/hello?seq"), 1, "{:?}", ng.log());

    let urls: Vec<String> = (0..16)
        .map(|i| format!("http://{}/hello?cap{i}", ng.http))
        .collect();
    let mut args: Vec<&str> = vec!["--parallel", "8"];
    args.extend(urls.iter().map(String::as_str));
    let out = ok(&args, &[("NETKIT_MAX_HTTP_REQUESTS", "4")]);
    assert_eq!(out, b"hello\n".repeat(16));
    let n = ng.connections_for("/hello?cap");
    assert!((1..=4).contains(&n), "{n} connections under a cap of 4");

    let urls: Vec<String> = (0..16)
        .map(|i| format!("http://{}/hello?par{i}", ng.http))
        .collect();
    let mut args: Vec<&str> = vec!["--parallel", "4"];
    args.extend(urls.iter().map(String::as_str));
    ok(&args, &[]);
    let n = ng.connections_for("/hello?par");
    assert!((1..=4).contains(&n), "{n} connections for 4 in flight");
}

#[test]
fn through_tinyproxy_forwarding_and_connect() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let Some(tp) = Tinyproxy::start(None) else {
        return;
    };
    let proxy = format!("http://{}", tp.addr);
    let http = format!("http://{}/hello", ng.http);
    assert_eq!(ok(&[&http], &[("http_proxy", &proxy)]), b"hello\n");
    assert_eq!(ok(&[&http], &[("HTTP_PROXY", &proxy)]), b"hello\n");
    assert_eq!(ok(&["--proxy", &proxy, &http], &[]), b"hello\n");
    assert!(tp.log().contains("/hello"), "{}", tp.log());
    let https = format!("https://localhost:{}/small.txt", ng.https.port());
    let ca = pki.ca.to_str().unwrap();
    let (code, out, err) = fetch(&["-v", "--cacert", ca, &https], &[("https_proxy", &proxy)]);
    assert_eq!((code, out.as_slice()), (0, &b"small\n"[..]), "{err}");
    assert!(err.contains("CONNECT tunnel"), "{err}");
    assert_eq!(
        ok(&["--cacert", ca, &https], &[("ALL_PROXY", &proxy)]),
        b"small\n"
    );
}

#[test]
fn proxy_environment_matrix() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let closed = netkit_tests::closed_tcp_port();
    let dead = format!("http://127.0.0.1:{}", closed.port);
    let refused = format!(
        "ECONNREFUSED: connect {}",
        dead.trim_start_matches("http://")
    );
    let http = format!("http://{}/hello", ng.http);
    fails(&[&http], &[("http_proxy", &dead)], &refused);
    fails(&[&http], &[("ALL_PROXY", &dead)], &refused);
    // Lowercase wins over uppercase; empty counts as unset.
    assert_eq!(
        ok(&[&http], &[("http_proxy", ""), ("HTTP_PROXY", "")]),
        b"hello\n"
    );
    fails(
        &[&http],
        &[("http_proxy", "''"), ("HTTP_PROXY", &dead)],
        &refused,
    );
    // CGI: uppercase HTTP_PROXY is ignored.
    assert_eq!(
        ok(
            &[&http],
            &[("HTTP_PROXY", &dead), ("REQUEST_METHOD", "GET")]
        ),
        b"hello\n"
    );
    for np in [
        "127.0.0.1",
        "127.0.0.0/8",
        "*",
        &format!("127.0.0.1:{}", ng.http.port()),
        "localhost,127.0.0.1",
    ] {
        assert_eq!(
            ok(&[&http], &[("http_proxy", &dead), ("no_proxy", np)]),
            b"hello\n",
            "{np}"
        );
    }
    fails(
        &[&http],
        &[("http_proxy", &dead), ("NO_PROXY", "127.0.0.1:1")],
        &refused,
    );
    let by_name = format!("http://localhost:{}/hello", ng.http.port());
    assert_eq!(
        ok(
            &[&by_name],
            &[("http_proxy", &dead), ("NO_PROXY", ".localhost")]
        ),
        b"hello\n"
    );
    fails(
        &[&by_name],
        &[("http_proxy", &dead), ("NO_PROXY", "127.0.0.0/8")],
        &refused,
    );
    assert_eq!(
        ok(&["--noproxy", "*", &http], &[("http_proxy", &dead)]),
        b"hello\n"
    );
    fails(&["--proxy", &dead, &http], &[], &refused);
    fails(
        &["--proxy", "socks5://127.0.0.1:1", &http],
        &[],
        "proxy: unsupported proxy scheme",
    );
    fails(&["--proxy", &dead, "--unix", "/x", &http], &[], "proxy: ");
}

#[test]
fn proxy_credentials_and_refusals() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let Some(tp) = Tinyproxy::start(Some(("us", "p_ss-w.d"))) else {
        return;
    };
    let http = format!("http://{}/hello", ng.http);
    let https = format!("https://localhost:{}/hello", ng.https.port());
    let ca = pki.ca.to_str().unwrap();
    let bare = format!("http://{}", tp.addr);
    fails(
        &["--proxy", &bare, "--cacert", ca, &https],
        &[],
        "proxy: CONNECT refused: 407",
    );
    fails(&["--proxy", &bare, &http], &[], "proxy: 407");
    // tinyproxy takes only [A-Za-z0-9_.-] in a password: percent-encoded
    // here all the same, to check the decoding against a real peer (the
    // reserved characters are checked against a raw server).
    let creds = format!("http://us:p%5Fss%2Dw.d@{}", tp.addr);
    assert_eq!(
        ok(&["--proxy", &creds, "--cacert", ca, &https], &[]),
        b"hello\n"
    );
    assert_eq!(ok(&["--proxy", &creds, &http], &[]), b"hello\n");
    let wrong = format!("http://us:nope@{}", tp.addr);
    // tinyproxy answers wrong credentials with 401 (and none with 407).
    fails(
        &["--proxy", &wrong, "--cacert", ca, &https],
        &[],
        "proxy: CONNECT refused: 401 Unauthorized",
    );
}

#[test]
fn through_an_https_proxy_tls_inside_tls() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let Some(tp) = Tinyproxy::start(None) else {
        return;
    };
    if !netkit_tests::peer::have("socat", "-V") {
        return;
    }
    // TLS to the proxy (socat in front of tinyproxy), then the origin's TLS
    // inside the CONNECT tunnel.
    let (_socat, port) = netkit_tests::peer::socat_tls(&pki.localhost, tp.addr.port(), LIMIT);
    let proxy = format!("https://localhost:{port}");
    let ca = pki.ca.to_str().unwrap();
    let https = format!("https://localhost:{}/big.txt", ng.https.port());
    let (code, out, err) = fetch(&["-v", "--cacert", ca, &https], &[("HTTPS_PROXY", &proxy)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, text_file(8 << 20));
    assert_eq!(err.matches("TLS handshake done").count(), 2, "{err}");
    // An http URL through the https proxy: absolute form inside TLS.
    let http = format!("http://{}/hello", ng.http);
    assert_eq!(
        ok(&["--cacert", ca, "--proxy", &proxy, &http], &[]),
        b"hello\n"
    );
    // The proxy's certificate is verified too.
    fails(
        &["--proxy", &proxy, &http],
        &[],
        "tls: invalid peer certificate: ",
    );
}

#[test]
fn a_body_ended_by_close_notify_over_tls() {
    // openssl s_server -WWW answers HTTP/1.0 with a close-delimited body,
    // ends it with close_notify and waits for the client to close.
    let pki = Pki::new();
    if !netkit_tests::peer::have("openssl", "version") {
        return;
    }
    let dir = netkit_tests::peer::TempDir::new("nk-www").unwrap();
    std::fs::write(dir.path().join("f.txt"), text_file(300_000)).unwrap();
    let port = netkit_tests::free_port();
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir.path())
        .args(["s_server", "-WWW", "-accept", &port.to_string(), "-cert"])
        .arg(&pki.localhost.cert)
        .arg("-key")
        .arg(&pki.localhost.key);
    let p = netkit_tests::peer::Peer::spawn("openssl s_server", cmd).unwrap();
    p.wait_line(LIMIT, |l| l.contains("ACCEPT"))
        .unwrap_or_else(|| panic!("s_server did not start: {}", p.stderr()));
    let url = format!("https://localhost:{port}/f.txt");
    let ca = pki.ca.to_str().unwrap();
    assert_eq!(ok(&["--cacert", ca, &url], &[]), text_file(300_000));
}
