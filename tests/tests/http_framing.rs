//! `netkit fetch` against a server of crafted bytes: one test per framing
//! and bad-input rule of SEMANTICS.md, each checking the exact output or
//! error line.

use std::process::Command;
use std::time::Duration;

use netkit_tests::bin;
use netkit_tests::http::{RawServer, Reply};
use netkit_tests::peer::run_bounded;

fn fetch(args: &[&str]) -> (i32, Vec<u8>, String) {
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("fetch").args(args);
    for k in ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"] {
        cmd.env_remove(k);
    }
    let (code, out, err) = run_bounded(&mut cmd, b"", Duration::from_secs(60));
    (code, out, err.trim().to_owned())
}

/// A server that answers every request with `bytes`, then closes.
fn once(bytes: &[u8]) -> RawServer {
    let b = bytes.to_vec();
    RawServer::start(move |_, _| Reply::Close(b.clone()))
}

fn body_of(bytes: &[u8]) -> Vec<u8> {
    let s = once(bytes);
    let (code, out, err) = fetch(&[&s.url("/")]);
    assert_eq!(code, 0, "{err}");
    out
}

fn error_of(bytes: &[u8]) -> String {
    let s = once(bytes);
    let (code, out, err) = fetch(&[&s.url("/")]);
    assert_eq!(code, 1, "stdout {out:?}");
    err
}

#[test]
fn truncated_content_length_is_an_error() {
    assert_eq!(
        error_of(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"),
        "netkit: error: http: response truncated: got 5 of 100 body bytes"
    );
}

#[test]
fn truncated_chunked_body_is_an_error() {
    assert_eq!(
        error_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        "netkit: error: http: response truncated: chunked body closed after 5 bytes, before its last chunk"
    );
}

#[test]
fn missing_crlf_after_chunk_data_is_an_error() {
    assert_eq!(
        error_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n"),
        "netkit: error: http: missing CRLF after chunk data"
    );
}

#[test]
fn chunk_size_overflow_is_an_error() {
    assert_eq!(
        error_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n"),
        "netkit: error: http: chunk size overflows 64 bits"
    );
}

#[test]
fn conflicting_content_lengths_are_an_error() {
    assert_eq!(
        error_of(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        "netkit: error: http: conflicting Content-Length values: \"5, 6\""
    );
}

#[test]
fn malformed_content_length_is_an_error() {
    for bad in ["+5", "0x5", "5 5", "123456789012345678901"] {
        let r = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\nhello");
        assert_eq!(
            error_of(r.as_bytes()),
            format!("netkit: error: http: invalid Content-Length: {bad:?}")
        );
    }
}

#[test]
fn identical_content_length_list_is_accepted() {
    assert_eq!(
        body_of(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"),
        b"hello"
    );
}

#[test]
fn transfer_encoding_wins_over_content_length() {
    assert_eq!(
        body_of(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
        b"hi"
    );
}

#[test]
fn close_delimited_body_is_read_to_the_end() {
    assert_eq!(body_of(b"HTTP/1.1 200 OK\r\n\r\nall of it"), b"all of it");
}

#[test]
fn chunked_trailers_and_extensions() {
    assert_eq!(
        body_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"),
        b"abc"
    );
}

#[test]
fn bare_lf_is_accepted() {
    assert_eq!(body_of(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi"), b"hi");
}

#[test]
fn obs_fold_is_rejected() {
    assert_eq!(
        error_of(b"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"),
        "netkit: error: http: malformed response head: invalid header name"
    );
}

#[test]
fn oversized_head_is_an_error() {
    let mut r = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
    r.extend(vec![b'a'; 70 * 1024]);
    r.extend(b"\r\n\r\n");
    assert_eq!(
        error_of(&r),
        "netkit: error: http: response head larger than 65536 bytes"
    );
}

#[test]
fn too_many_headers_is_an_error() {
    let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
    for i in 0..101 {
        r.extend(format!("X-{i}: v\r\n").bytes());
    }
    r.extend(b"Content-Length: 0\r\n\r\n");
    assert_eq!(
        error_of(&r),
        "netkit: error: http: more than 100 response header fields"
    );
}

#[test]
fn not_http_is_an_error() {
    assert_eq!(
        error_of(b"SSH-2.0-OpenSSH_9.2\r\n\r\n"),
        "netkit: error: http: malformed response head: not HTTP/1.x"
    );
}

#[test]
fn close_before_any_byte_is_an_error() {
    assert_eq!(
        error_of(b""),
        "netkit: error: http: connection closed before any response byte"
    );
}

#[test]
fn close_inside_the_head_is_an_error() {
    assert_eq!(
        error_of(b"HTTP/1.1 200 OK\r\nContent-Len"),
        "netkit: error: http: response truncated: connection closed in the response head"
    );
}

#[test]
fn informational_responses_are_skipped() {
    assert_eq!(
        body_of(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        b"ok"
    );
}

#[test]
fn head_and_204_and_304_have_no_body() {
    let s = once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    let (code, out, err) = fetch(&["-X", "HEAD", "-i", &s.url("/")]);
    assert_eq!(
        (code, out.as_slice()),
        (0, &b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"[..]),
        "{err}"
    );
    for st in ["204 No Content", "304 Not Modified"] {
        let r = format!("HTTP/1.1 {st}\r\nContent-Length: 5\r\n\r\n");
        let s = RawServer::start(move |_, _| Reply::Keep(r.clone().into_bytes()));
        let (code, out, err) = fetch(&[&s.url("/")]);
        assert_eq!((code, out.len()), (0, 0), "{st}: {err}");
    }
}

#[test]
fn bytes_after_the_end_poison_the_connection() {
    // The first answer carries junk after its body: the second request must
    // go on a new connection.
    let s = RawServer::start(|conn, _| {
        Reply::Keep(if conn == 0 {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok2".to_vec()
        })
    });
    let (code, out, err) = fetch(&[&s.url("/a"), &s.url("/b")]);
    assert_eq!((code, out.as_slice()), (0, &b"okok2"[..]), "{err}");
    assert_eq!(s.accepted(), 2);
}

#[test]
fn keep_alive_connection_is_reused() {
    let s = RawServer::start(|_, _| {
        Reply::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
    });
    let (code, out, err) = fetch(&[&s.url("/1"), &s.url("/2"), &s.url("/3")]);
    assert_eq!((code, out.as_slice()), (0, &b"okokok"[..]), "{err}");
    assert_eq!(s.accepted(), 1);
}

#[test]
fn http10_closes_unless_keep_alive() {
    let s = RawServer::start(|_, _| {
        Reply::Keep(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec())
    });
    let (code, _, err) = fetch(&[&s.url("/1"), &s.url("/2")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.accepted(), 2);
    let s = RawServer::start(|_, _| {
        Reply::Keep(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        )
    });
    let (code, _, err) = fetch(&[&s.url("/1"), &s.url("/2")]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.accepted(), 1);
}

#[test]
fn a_stale_keep_alive_connection_is_retried_on_a_new_one() {
    // Connection 0 answers once, then closes at the second request without
    // a byte (the server dropped its idle connection): the client retries.
    let s = RawServer::stale_after_one();
    let (code, out, err) = fetch(&["-v", &s.url("/1"), &s.url("/2")]);
    assert_eq!((code, out.as_slice()), (0, &b"okok2"[..]), "{err}");
    assert!(err.contains("retrying on a new one"), "{err}");
    assert_eq!(s.accepted(), 2);
}

#[test]
fn a_post_is_not_retried_on_a_stale_connection() {
    let s = RawServer::stale_after_one();
    let (code, out, err) = fetch(&["-d", "x", &s.url("/1"), &s.url("/2")]);
    assert_eq!(code, 1);
    assert_eq!(out, b"ok", "the first body stays written");
    assert_eq!(
        err,
        "netkit: error: http: connection closed before any response byte"
    );
}

#[test]
fn the_timeout_covers_the_whole_request() {
    // Headers, then silence.
    let s = RawServer::start(|_, _| {
        Reply::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec())
    });
    let (code, out, err) = fetch(&["--timeout", "0.5", &s.url("/")]);
    assert_eq!(code, 1, "{out:?}");
    assert_eq!(
        err,
        "netkit: error: ETIMEDOUT: request timed out after 0.5s"
    );
}

#[test]
fn proxy_credentials_with_reserved_characters_are_decoded() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut c, _) = l.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = c.read(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        *s2.lock().unwrap() = String::from_utf8_lossy(&buf).into_owned();
        let _ = c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    });
    let proxy = format!("http://a%40b%3Ac:p%3A%2F%40%25w@{addr}");
    let (code, out, err) = fetch(&["--proxy", &proxy, "http://origin.test:8080/x?y"]);
    assert_eq!((code, out.as_slice()), (0, &b"ok"[..]), "{err}");
    let req = seen.lock().unwrap().clone();
    assert!(
        req.starts_with("GET http://origin.test:8080/x?y HTTP/1.1\r\n"),
        "{req}"
    );
    // base64("a@b:c:p:/@%w")
    let want = "Proxy-Authorization: Basic YUBiOmM6cDovQCV3\r\n";
    assert!(req.contains(want), "{req}");
}

#[test]
fn transfer_encoding_without_chunked_last_reads_to_the_close() {
    // RFC 9112 §6.3: a response whose final coding is not chunked is read
    // until the connection closes (the Content-Length is ignored).
    assert_eq!(
        body_of(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nhello, all of it"),
        b"hello, all of it"
    );
}

#[test]
fn transfer_encoding_with_content_length_never_reuses_the_connection() {
    let s = RawServer::start(|_, _| {
        Reply::Keep(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n2\r\nok\r\n0\r\n\r\n"
                .to_vec(),
        )
    });
    let (code, out, err) = fetch(&[&s.url("/1"), &s.url("/2")]);
    assert_eq!((code, out.as_slice()), (0, &b"okok"[..]), "{err}");
    assert_eq!(
        s.accepted(),
        2,
        "a smuggling-shaped answer poisons its connection"
    );
}

#[test]
fn a_close_token_among_others_closes() {
    let s = RawServer::start(|_, _| {
        Reply::Keep(
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nok"
                .to_vec(),
        )
    });
    let (code, out, err) = fetch(&[&s.url("/1"), &s.url("/2")]);
    assert_eq!((code, out.as_slice()), (0, &b"okok"[..]), "{err}");
    assert_eq!(s.accepted(), 2);
}

#[test]
fn an_undecodable_body_is_an_error_not_a_short_body() {
    let (code, out, err) = {
        let s = once(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 12\r\n\r\nnot gzip at!",
        );
        fetch(&[&s.url("/")])
    };
    assert_eq!(code, 1, "stdout {out:?}");
    assert!(err.starts_with("netkit: error: http: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_reset_before_the_answer_is_econnreset() {
    // The server takes the connection and closes it with the request unread:
    // the kernel answers with a reset.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        let mut peek = [0u8; 1];
        // Wait until the request is there, then drop it unread.
        let _ = c.peek(&mut peek);
        drop(c);
    });
    let (code, out, err) = fetch(&[&url]);
    t.join().unwrap();
    assert_eq!(code, 1, "stdout {out:?}");
    assert!(err.starts_with("netkit: error: ECONNRESET: "), "{err}");
}

#[test]
fn bodies_come_in_url_order_whatever_finishes_first() {
    // /slow answers after /fast has finished: with --parallel 2 the output is
    // still in the order the URLs were given.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut conns = Vec::new();
        for _ in 0..2 {
            let (mut c, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap();
            let slow = String::from_utf8_lossy(&buf[..n]).starts_with("GET /slow");
            conns.push((slow, c));
        }
        conns.sort_by_key(|(slow, _)| *slow);
        for (slow, c) in &mut conns {
            let body: &[u8] = if *slow { b"first-url" } else { b"second-url" };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            c.write_all(head.as_bytes()).unwrap();
            c.write_all(body).unwrap();
            c.flush().unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (code, out, err) = fetch(&[
        "--parallel",
        "2",
        &format!("{base}/slow"),
        &format!("{base}/fast"),
    ]);
    t.join().unwrap();
    assert_eq!(
        (code, out.as_slice()),
        (0, &b"first-urlsecond-url"[..]),
        "{err}"
    );
}

#[test]
fn output_file_and_data_file() {
    use std::io::{Read, Write};
    let dir = netkit_tests::peer::TempDir::new("nk-fetch-files").unwrap();
    let body = dir.path().join("body.bin");
    std::fs::write(&body, b"from a file \x00\xff").unwrap();
    // A server that keeps the request it got.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/up", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        while !req.ends_with(b"\x00\xff") {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "{}", String::from_utf8_lossy(&req));
            req.extend_from_slice(&buf[..n]);
        }
        c.write_all(
            b"HTTP/1.1 201 Created\r\nContent-Length: 7\r\nConnection: close\r\n\r\ncreated",
        )
        .unwrap();
        req
    });
    let out_path = dir.path().join("out.txt");
    let (code, out, err) = fetch(&[
        "--data-file",
        body.to_str().unwrap(),
        "-o",
        out_path.to_str().unwrap(),
        &url,
    ]);
    let req = t.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "the body went to the file");
    assert_eq!(std::fs::read(&out_path).unwrap(), b"created");
    let req = String::from_utf8_lossy(&req);
    assert!(
        req.starts_with("POST /up HTTP/1.1\r\n"),
        "POST by default with a body: {req}"
    );
    assert!(
        req.contains("\r\ncontent-length: 14\r\n") || req.contains("\r\nContent-Length: 14\r\n"),
        "{req}"
    );
    let (code, _, err) = fetch(&["--data-file", "/nonexistent/body", &url]);
    assert_eq!(code, 1);
    assert!(err.starts_with("netkit: error: ENOENT: "), "{err}");
}

#[test]
fn a_proxy_that_closes_mid_connect_is_a_proxy_error() {
    // Closed before any answer, and closed inside the answer's head.
    for reply in [&b""[..], b"HTTP/1.1 200 Conn"] {
        let p = once(reply);
        let proxy = p.url("");
        let (code, out, err) = fetch(&[
            "--proxy",
            proxy.trim_end_matches('/'),
            "https://origin.test/",
        ]);
        assert_eq!(code, 1, "stdout {out:?}");
        assert!(
            err.starts_with("netkit: error: proxy: "),
            "{reply:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
    }
}
