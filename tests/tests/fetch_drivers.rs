//! The fetch client on both drivers, in-process: the same requests give the
//! same responses; the pool's limits hold; cancelling releases the
//! connection; a stale pooled connection is retried.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_lite::{AsyncReadExt, future};
use netkit_blocking::EventLoop;
use netkit_fetch::{ClientConfig, Event, Request, Url};
use netkit_smol::Runtime;
use netkit_tests::http::{Nginx, RawServer, text_file};
use netkit_tests::pki::Pki;

const LIMIT: Duration = Duration::from_secs(30);

fn config(pki: &Pki) -> ClientConfig {
    netkit_tests::http::client_config(pki)
}

fn get(url: &str) -> Request {
    Request::get(Url::parse(url).unwrap())
}

/// A response's status and body.
type Fetched = (u16, Vec<u8>);

/// Fetches every URL on the blocking loop, all in flight at once:
/// (status, body) per URL, and connections opened.
fn blocking(cfg: ClientConfig, reqs: Vec<Request>) -> (Vec<Fetched>, u64) {
    let mut lp = EventLoop::new().unwrap();
    let client = lp.http_client(cfg).unwrap();
    let results: Rc<RefCell<Vec<Option<Fetched>>>> = Rc::new(RefCell::new(vec![None; reqs.len()]));
    for (i, r) in reqs.into_iter().enumerate() {
        let res = results.clone();
        let mut status = 0;
        let mut body = Vec::new();
        lp.fetch(client, r, move |e| match e {
            Event::Head { response, .. } => status = response.head.status(),
            Event::Data { data, .. } => body.extend(data),
            Event::End { .. } => res.borrow_mut()[i] = Some((status, std::mem::take(&mut body))),
            Event::Failed { error, .. } => panic!("{error}"),
            Event::Trace { .. } | Event::BodyWanted { .. } => {}
        })
        .unwrap();
    }
    let done = lp
        .run_until(LIMIT, || results.borrow().iter().all(Option::is_some))
        .unwrap();
    assert!(done, "blocking fetches timed out");
    let opened = lp.http_connections(client).0;
    let out = results.borrow_mut().drain(..).map(Option::unwrap).collect();
    (out, opened)
}

fn smol_all(cfg: ClientConfig, reqs: Vec<Request>) -> (Vec<Fetched>, u64) {
    let client = Runtime::new().http_client(cfg);
    let out = smol::block_on(future::or(
        async {
            let futs: Vec<_> = reqs
                .into_iter()
                .map(|r| {
                    let c = client.clone();
                    smol::spawn(async move {
                        let resp = c.fetch(r).await.unwrap();
                        let status = resp.status();
                        (status, resp.bytes().await.unwrap())
                    })
                })
                .collect();
            let mut out = Vec::new();
            for f in futs {
                out.push(f.await);
            }
            out
        },
        async {
            smol::Timer::after(LIMIT).await;
            panic!("smol fetches timed out")
        },
    ));
    (out, client.connections().0)
}

#[test]
fn both_drivers_fetch_the_same_responses() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let urls = [
        format!("http://{}/hello", ng.http),
        format!("http://{}/big.txt", ng.http),
        format!("https://localhost:{}/small.txt", ng.https.port()),
        format!("http://{}/missing", ng.http),
        format!("http://{}/redirect", ng.http),
    ];
    let reqs = || urls.iter().map(|u| get(u)).collect::<Vec<_>>();
    let mut unix = get("http://localhost/hello");
    unix.unix = Some(ng.unix.to_str().unwrap().to_owned());
    let (b, _) = blocking(
        config(&pki),
        reqs().into_iter().chain([unix.clone()]).collect(),
    );
    let (s, _) = smol_all(config(&pki), reqs().into_iter().chain([unix]).collect());
    assert_eq!(b, s);
    assert_eq!(b[0], (200, b"hello\n".to_vec()));
    assert_eq!(b[1], (200, text_file(8 << 20)));
    assert_eq!(b[2], (200, b"small\n".to_vec()));
    assert_eq!(b[3].0, 404);
    assert_eq!(b[4], (200, b"small\n".to_vec()));
    assert_eq!(b[5], (200, b"hello\n".to_vec()));
}

#[test]
fn sixty_four_in_flight_open_at_most_sixty_four() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let reqs = || {
        (0..64)
            .map(|i| get(&format!("http://{}/hello?{i}", ng.http)))
            .collect::<Vec<_>>()
    };
    let (b, opened) = blocking(config(&pki), reqs());
    assert!(b.iter().all(|r| r.1 == b"hello\n"));
    assert!(opened <= 64, "blocking opened {opened}");
    let (s, opened) = smol_all(config(&pki), reqs());
    assert!(s.iter().all(|r| r.1 == b"hello\n"));
    assert!(opened <= 64, "smol opened {opened}");
    let mut cfg = config(&pki);
    cfg.max_connections = 4;
    let (_, opened) = smol_all(cfg, reqs());
    assert!(opened <= 4, "smol opened {opened} under a cap of 4");
}

#[test]
fn dropping_a_response_mid_body_releases_its_connection() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let client = Runtime::new().http_client(config(&pki));
    smol::block_on(async {
        let mut r = client
            .fetch(get(&format!("http://{}/big.txt", ng.http)))
            .await
            .unwrap();
        let mut first = [0u8; 1000];
        r.read_exact(&mut first).await.unwrap();
        assert_eq!(&first[..], &text_file(1000)[..]);
        drop(r);
        // The incomplete exchange's connection is closed, not pooled.
        let deadline = std::time::Instant::now() + LIMIT;
        while client.connections().1 != 0 {
            assert!(std::time::Instant::now() < deadline, "connection kept");
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        let body = client
            .fetch(get(&format!("http://{}/hello", ng.http)))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(body, "hello\n");
        assert_eq!(client.connections().0, 2);
    });
}

/// A caller that does not read its body stops the connection from reading:
/// a 64 MiB body is held back by TCP flow control, not pulled into memory,
/// and all of it arrives, in order, once the caller reads.
#[test]
fn an_unread_smol_body_is_not_pulled_into_memory() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    const TOTAL: usize = 64 << 20;
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/big", l.local_addr().unwrap());
    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    let server = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut buf = [0u8; 4096];
        let _ = c.read(&mut buf).unwrap();
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {TOTAL}\r\n\r\n");
        c.write_all(head.as_bytes()).unwrap();
        let chunk: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        while sent < TOTAL {
            if c.write_all(&chunk).is_err() {
                return;
            }
            sent += chunk.len();
            w.store(sent, Ordering::SeqCst);
        }
    });
    let pki = Pki::new();
    let client = Runtime::new().http_client(config(&pki));
    smol::block_on(async {
        let mut r = client.fetch(get(&url)).await.unwrap();
        // Not reading: the server can only fill the held body and the
        // kernel's socket buffers.
        smol::Timer::after(Duration::from_millis(500)).await;
        let held = written.load(Ordering::SeqCst);
        assert!(held < 24 << 20, "{held} bytes pulled in while nobody read");
        let mut got = 0usize;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(
                    *b,
                    ((got + i) % (64 * 1024) % 251) as u8,
                    "byte {}",
                    got + i
                );
            }
            got += n;
        }
        assert_eq!(got, TOTAL);
    });
    server.join().unwrap();
}

#[test]
fn a_stale_connection_is_retried_on_smol_too() {
    let s = RawServer::stale_after_one();
    let pki = Pki::new();
    let client = Runtime::new().http_client(config(&pki));
    smol::block_on(async {
        let a = client
            .fetch(get(&s.url("/1")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let b = client
            .fetch(get(&s.url("/2")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!((a.as_slice(), b.as_slice()), (&b"ok"[..], &b"ok2"[..]));
    });
    assert_eq!(s.accepted(), 2);
}

/// The embedding proof: the sans-IO client over tokio's `TcpStream`
/// (tests/examples/tokio_fetch.rs, under 150 lines), built with the tests.
#[test]
fn the_client_runs_on_tokio() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let exe = netkit_tests::target_dir().join("debug/examples/tokio_fetch");
    let exe = if exe.exists() {
        exe
    } else {
        let st = std::process::Command::new(env!("CARGO"))
            .current_dir(netkit_tests::workspace_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "netkit-tests",
                "--example",
                "tokio_fetch",
            ])
            .status()
            .unwrap();
        assert!(st.success());
        exe
    };
    let out = std::process::Command::new(&exe)
        .arg(format!("http://{}/hello", ng.http))
        .arg(format!("http://{}/redirect", ng.http))
        .arg(format!("http://{}/big.txt", ng.http))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = b"hello\nsmall\n".to_vec();
    want.extend(text_file(8 << 20));
    assert_eq!(out.stdout.len(), want.len());
    assert!(out.stdout == want, "the bodies differ");
}

#[test]
fn the_plain_blocking_fetch_for_scripts() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let r =
        netkit_blocking::fetch::fetch(config(&pki), get(&format!("http://{}/redirect", ng.http)))
            .unwrap();
    assert_eq!((r.status(), r.text().as_str()), (200, "small\n"));
    assert!(r.url.path().ends_with("/small.txt"));
    let closed = netkit_tests::closed_tcp_port();
    let e = netkit_blocking::fetch::fetch(
        config(&pki),
        get(&format!("http://127.0.0.1:{}/", closed.port)),
    )
    .unwrap_err();
    assert_eq!(e.kind(), "ECONNREFUSED");
}

#[test]
fn a_blocking_body_streams_through_read() {
    use std::io::Read;
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let mut r =
        netkit_blocking::fetch::open(config(&pki), get(&format!("http://{}/big.txt", ng.http)))
            .unwrap();
    assert_eq!(r.status(), 200);
    let mut buf = vec![0u8; 100_000];
    let mut got = Vec::new();
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got.len(), 8 << 20);
    assert!(got == text_file(8 << 20));
    // A truncated body is a read error, never a short body.
    let s = RawServer::start(|_, _| {
        netkit_tests::http::Reply::Close(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello".to_vec(),
        )
    });
    let mut r = netkit_blocking::fetch::open(config(&pki), get(&s.url("/"))).unwrap();
    let mut all = Vec::new();
    let e = r.read_to_end(&mut all).unwrap_err();
    assert!(e.to_string().contains("got 5 of 100"), "{e}");
    let e = netkit_blocking::fetch::fetch(config(&pki), get(&s.url("/"))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "http: response truncated: got 5 of 100 body bytes"
    );
}

#[test]
fn json_bodies_on_both_drivers() {
    let s = RawServer::start(|_, _| {
        netkit_tests::http::Reply::Keep(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 24\r\n\r\n{\"a\":[1,2],\"b\":\"three\"}\n"
                .to_vec(),
        )
    });
    let pki = Pki::new();
    let want = serde_json::json!({"a": [1, 2], "b": "three"});
    let r = netkit_blocking::fetch::fetch(config(&pki), get(&s.url("/"))).unwrap();
    assert_eq!(r.json::<serde_json::Value>().unwrap(), want);
    let client = Runtime::new().http_client(config(&pki));
    let v: serde_json::Value = smol::block_on(async {
        client
            .fetch(get(&s.url("/")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(v, want);
    let e = r.json::<Vec<u8>>().unwrap_err();
    assert!(
        e.to_string().starts_with("http: invalid JSON body: "),
        "{e}"
    );
}

/// `Runtime::fetch` uses one pool per runtime, made on first use: three
/// sequential requests on it (and on the free `fetch`, the global
/// runtime's) ride one connection each, as nginx counts them.
#[test]
fn the_runtime_owns_its_pool() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let rt = Runtime::new();
    smol::block_on(async {
        for _ in 0..3 {
            let r = rt
                .fetch(get(&format!("http://{}/hello?rt", ng.http)))
                .await
                .unwrap();
            assert_eq!(r.text().await.unwrap(), "hello\n");
        }
        for _ in 0..3 {
            let r = netkit_smol::fetch::fetch(get(&format!("http://{}/hello?global", ng.http)))
                .await
                .unwrap();
            assert_eq!(r.text().await.unwrap(), "hello\n");
        }
    });
    assert_eq!(rt.fetch_client().unwrap().connections().0, 1);
    assert_eq!(ng.connections_for("/hello?rt"), 1, "{:?}", ng.log());
    assert_eq!(ng.connections_for("/hello?global"), 1, "{:?}", ng.log());
}

/// `cancel_fetch` mid-body closes the connection (the exchange is not
/// complete, so it is never pooled) and delivers nothing more; a cancelled
/// request still queued under the cap opens nothing.
#[test]
fn cancelling_on_the_blocking_loop_releases_the_connection() {
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else { return };
    let mut cfg = config(&pki);
    cfg.max_connections = 1;
    let mut lp = EventLoop::new().unwrap();
    let client = lp.http_client(cfg).unwrap();
    let got = Rc::new(RefCell::new(0usize));
    let after = Rc::new(RefCell::new(false));
    let (g, a) = (got.clone(), after.clone());
    let big = lp
        .fetch(
            client,
            get(&format!("http://{}/big.txt", ng.http)),
            move |e| match e {
                Event::Data { data, .. } => *g.borrow_mut() += data.len(),
                Event::End { .. } | Event::Failed { .. } => *a.borrow_mut() = true,
                _ => {}
            },
        )
        .unwrap();
    let queued_events = Rc::new(RefCell::new(0usize));
    let q = queued_events.clone();
    let queued = lp
        .fetch(
            client,
            get(&format!("http://{}/hello?queued", ng.http)),
            move |_| {
                *q.borrow_mut() += 1;
            },
        )
        .unwrap();
    // The queued one goes before it ever had a connection.
    lp.cancel_fetch(client, queued);
    assert!(
        lp.run_until(LIMIT, || *got.borrow() > 0).unwrap(),
        "no body came"
    );
    lp.cancel_fetch(client, big);
    assert_eq!(
        lp.http_connections(client).1,
        0,
        "the connection closed at once"
    );
    let seen = *got.borrow();
    // A fresh request works, on a new connection, and nothing more came for
    // the cancelled ones.
    let done = Rc::new(RefCell::new(None));
    let d = done.clone();
    lp.fetch(
        client,
        get(&format!("http://{}/hello?after", ng.http)),
        move |e| {
            if let Event::End { .. } = e {
                *d.borrow_mut() = Some(true);
            }
        },
    )
    .unwrap();
    assert!(lp.run_until(LIMIT, || done.borrow().is_some()).unwrap());
    assert_eq!(*got.borrow(), seen, "data after the cancel");
    assert!(!*after.borrow(), "an end or failure after the cancel");
    assert_eq!(*queued_events.borrow(), 0);
    assert_eq!(lp.http_connections(client).0, 2);
    assert_eq!(ng.connections_for("/hello?queued"), 0);
}
