//! The client machine in memory: the driver's side played by hand, the
//! server's bytes written out.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::UnixTime;
use rustls::time_provider::TimeProvider;

use crate::proxy::{Proxy, ProxyConfig};
use crate::*;

#[derive(Debug)]
struct FixedTime;

impl TimeProvider for FixedTime {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::since_unix_epoch(Duration::from_secs(
            1_790_000_000,
        )))
    }
}

fn tls() -> Arc<netkit_tls::ClientConfig> {
    Arc::new(
        netkit_tls::client_config(&netkit_tls::ClientOptions {
            time: Some(Arc::new(FixedTime)),
            ..Default::default()
        })
        .unwrap(),
    )
}

struct H {
    c: Client,
    now: Instant,
}

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Wanted,
    Head(u16),
    Data(Vec<u8>),
    End,
    Failed(String),
}

impl H {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(f: impl FnOnce(&mut ClientConfig)) -> Self {
        let mut cfg = ClientConfig::new(tls());
        f(&mut cfg);
        Self {
            c: Client::new(cfg),
            now: netkit_test_clock::origin(),
        }
    }

    fn get(&mut self, url: &str) -> ReqId {
        self.send(Request::get(Url::parse(url).unwrap()))
    }

    fn send(&mut self, r: Request) -> ReqId {
        self.c.request(self.now, r).unwrap()
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.c.poll_action()).collect()
    }

    /// Connects every requested connection; returns their ids.
    fn connect_all(&mut self) -> Vec<ConnId> {
        let mut ids = Vec::new();
        for a in self.actions() {
            if let Action::Connect { conn, .. } = a {
                ids.push(conn);
            }
        }
        for &c in &ids {
            self.c.handle_connected(self.now, c, Some("127.0.0.1:80"));
        }
        ids
    }

    fn sent(&mut self, conn: ConnId) -> String {
        let b = self.c.transmit(conn).to_vec();
        self.c.handle_sent(conn, b.len());
        String::from_utf8_lossy(&b).into_owned()
    }

    fn reply(&mut self, conn: ConnId, bytes: &[u8]) {
        self.c.handle_input(self.now, conn, bytes);
    }

    fn events(&mut self) -> Vec<(ReqId, Ev)> {
        evs(std::iter::from_fn(|| self.c.poll_event()))
    }
}

/// Events as the tests compare them: a request's adjacent data joined,
/// traces left out.
fn evs(events: impl IntoIterator<Item = Event>) -> Vec<(ReqId, Ev)> {
    let mut out: Vec<(ReqId, Ev)> = Vec::new();
    for e in events {
        let (req, ev) = match e {
            Event::Head { req, response } => (req, Ev::Head(response.head.status())),
            Event::Data { req, data } => {
                if let Some((r, Ev::Data(d))) = out.last_mut() {
                    if *r == req {
                        d.extend(data);
                        continue;
                    }
                }
                (req, Ev::Data(data))
            }
            Event::End { req, .. } => (req, Ev::End),
            Event::Failed { req, error } => (req, Ev::Failed(error.to_string())),
            Event::BodyWanted { req } => (req, Ev::Wanted),
            Event::Trace { .. } => continue,
        };
        out.push((req, ev));
    }
    out
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

fn ok_events(req: ReqId) -> Vec<(ReqId, Ev)> {
    vec![
        (req, Ev::Head(200)),
        (req, Ev::Data(b"ok".to_vec())),
        (req, Ev::End),
    ]
}

#[test]
fn get_writes_origin_form_and_reads_the_response() {
    let mut h = H::new();
    let r = h.get("http://example.test:8080/a/b?c=d#frag");
    let acts = h.actions();
    assert_eq!(
        acts,
        [Action::Connect {
            conn: ConnId(2),
            target: Target::Tcp {
                host: "example.test".into(),
                port: 8080
            }
        }]
    );
    h.c.handle_connected(h.now, ConnId(2), None);
    assert_eq!(h.actions(), [Action::Send { conn: ConnId(2) }]);
    let req = h.sent(ConnId(2));
    assert!(
        req.starts_with("GET /a/b?c=d HTTP/1.1\r\nHost: example.test:8080\r\nUser-Agent: netkit/"),
        "{req}"
    );
    assert!(req.contains("\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br, zstd\r\n\r\n"));
    h.reply(ConnId(2), OK);
    assert_eq!(h.events(), ok_events(r));
    assert_eq!(h.c.in_flight(), 0);
}

#[test]
fn sequential_requests_reuse_one_connection() {
    let mut h = H::new();
    for i in 0..3 {
        let r = h.get("http://example.test/");
        let conns = h.connect_all();
        assert_eq!(conns.len(), usize::from(i == 0), "request {i}");
        h.reply(ConnId(2), OK);
        assert_eq!(h.events(), ok_events(r));
    }
    assert_eq!(h.c.connections_opened(), 1);
}

#[test]
fn a_stale_pooled_connection_is_retried_once_on_a_new_one() {
    let mut h = H::new();
    let r = h.get("http://example.test/");
    h.connect_all();
    h.reply(ConnId(2), OK);
    h.events();
    let r2 = h.get("http://example.test/");
    assert!(h.actions().contains(&Action::Send { conn: ConnId(2) }));
    // The server had closed it: EOF before any byte.
    h.c.handle_eof(h.now, ConnId(2));
    let acts = h.actions();
    assert!(
        acts.contains(&Action::Close { conn: ConnId(2) }),
        "{acts:?}"
    );
    let fresh = acts
        .iter()
        .find_map(|a| match a {
            Action::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .expect("a new connection");
    h.c.handle_connected(h.now, fresh, None);
    assert!(h.sent(fresh).starts_with("GET / HTTP/1.1"));
    h.reply(fresh, OK);
    assert_eq!(h.events(), ok_events(r2));
    let _ = r;
}

#[test]
fn a_post_on_a_stale_connection_is_not_retried() {
    let mut h = H::new();
    h.get("http://example.test/");
    h.connect_all();
    h.reply(ConnId(2), OK);
    h.events();
    let mut post = Request::new("POST", Url::parse("http://example.test/").unwrap());
    post.body = Some(b"x".to_vec().into());
    let r = h.send(post);
    h.c.handle_eof(h.now, ConnId(2));
    assert_eq!(
        h.events(),
        [(
            r,
            Ev::Failed("http: connection closed before any response byte".into())
        )]
    );
}

#[test]
fn bytes_on_an_idle_connection_close_it() {
    let mut h = H::new();
    h.get("http://example.test/");
    h.connect_all();
    h.reply(ConnId(2), OK);
    h.actions();
    h.reply(ConnId(2), b"junk");
    assert_eq!(h.actions(), [Action::Close { conn: ConnId(2) }]);
    assert_eq!(h.c.connections(), 0);
}

#[test]
fn bytes_after_the_response_poison_the_connection() {
    let mut h = H::new();
    let r = h.get("http://example.test/");
    h.connect_all();
    h.reply(
        ConnId(2),
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA",
    );
    assert_eq!(h.events(), ok_events(r));
    assert!(h.actions().contains(&Action::Close { conn: ConnId(2) }));
}

#[test]
fn connections_never_outnumber_requests_or_the_cap() {
    let mut h = H::with(|c| c.max_connections = 4);
    let reqs: Vec<ReqId> = (0..10).map(|_| h.get("http://example.test/")).collect();
    let conns = h.connect_all();
    assert_eq!(conns.len(), 4);
    let mut done = 0;
    while done < reqs.len() {
        for &c in &conns {
            if !h.c.transmit(c).is_empty() {
                h.sent(c);
                h.reply(c, OK);
            }
        }
        let evs = h.events();
        done += evs.iter().filter(|(_, e)| *e == Ev::End).count();
        assert!(h.connect_all().is_empty(), "no connection beyond the cap");
    }
    assert_eq!(h.c.connections_opened(), 4);

    // 64 requests with no cap to speak of: at most 64 connections.
    let mut h = H::new();
    for _ in 0..64 {
        h.get("http://example.test/");
    }
    assert_eq!(h.connect_all().len(), 64);
}

#[test]
fn a_connection_freed_while_another_opens_takes_the_waiting_request() {
    let mut h = H::new();
    let a = h.get("http://example.test/");
    let c1 = h.connect_all();
    let b = h.get("http://example.test/");
    // b opened a second connection, which is still connecting.
    let acts = h.actions();
    let c2 = acts
        .iter()
        .find_map(|x| match x {
            Action::Connect { conn, .. } => Some(*conn),
            _ => None,
        })
        .unwrap();
    h.reply(c1[0], OK);
    // c1 is idle now: b goes there at once.
    h.sent(c1[0]);
    h.reply(c1[0], OK);
    let evs = h.events();
    assert_eq!(evs[..3], ok_events(a)[..]);
    assert_eq!(evs[3..], ok_events(b)[..]);
    // c2 connects later and idles.
    h.c.handle_connected(h.now, c2, None);
    assert_eq!(h.c.in_flight(), 0);
}

#[test]
fn connect_failure_fails_the_waiting_request() {
    let mut h = H::new();
    let r = h.get("http://127.0.0.1:9/");
    let conn = match h.actions().remove(0) {
        Action::Connect { conn, .. } => conn,
        a => panic!("{a:?}"),
    };
    h.c.handle_error(
        h.now,
        conn,
        Error::Io {
            code: "ECONNREFUSED".into(),
            message: "connect 127.0.0.1:9".into(),
        },
    );
    assert_eq!(
        h.events(),
        [(r, Ev::Failed("ECONNREFUSED: connect 127.0.0.1:9".into()))]
    );
}

#[test]
fn redirects_change_method_and_drop_credentials_across_origins() {
    let mut h = H::new();
    let mut post = Request::new("POST", Url::parse("http://a.test/form").unwrap());
    post.body = Some(b"data".to_vec().into());
    post.headers
        .push(("Authorization".into(), b"secret".to_vec()));
    post.headers.push(("X-Keep".into(), b"1".to_vec()));
    let r = h.send(post);
    let c = h.connect_all()[0];
    assert!(h.sent(c).ends_with("\r\n\r\ndata"));
    h.reply(
        c,
        b"HTTP/1.1 302 Found\r\nLocation: /next\r\nContent-Length: 3\r\n\r\nbye",
    );
    assert_eq!(h.events(), []);
    let s = h.sent(c);
    assert!(s.starts_with("GET /next HTTP/1.1\r\n"), "{s}");
    assert!(s.contains("Authorization: secret") && !s.contains("Content-Length"));
    h.reply(c, b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://b.test/x\r\nContent-Length: 0\r\n\r\n");
    let c2 = h.connect_all()[0];
    let s = h.sent(c2);
    assert!(s.starts_with("GET /x HTTP/1.1\r\nHost: b.test\r\n"), "{s}");
    assert!(!s.contains("Authorization") && s.contains("X-Keep: 1"));
    h.reply(c2, OK);
    assert_eq!(h.events(), ok_events(r));

    // 307 keeps POST and its body.
    let mut post = Request::new("POST", Url::parse("http://a.test/").unwrap());
    post.body = Some(b"again".to_vec().into());
    h.send(post);
    h.sent(c);
    h.reply(
        c,
        b"HTTP/1.1 308 Permanent Redirect\r\nLocation: /y\r\nContent-Length: 0\r\n\r\n",
    );
    let s = h.sent(c);
    assert!(
        s.starts_with("POST /y HTTP/1.1") && s.ends_with("\r\n\r\nagain"),
        "{s}"
    );
}

#[test]
fn too_many_redirects_and_none_at_all() {
    let mut h = H::new();
    let mut req = Request::get(Url::parse("http://a.test/").unwrap());
    req.max_redirects = 2;
    let r = h.send(req);
    let c = h.connect_all()[0];
    for _ in 0..3 {
        h.sent(c);
        h.reply(
            c,
            b"HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n",
        );
    }
    assert_eq!(
        h.events(),
        [(r, Ev::Failed("http: too many redirects (3)".into()))]
    );

    let mut req = Request::get(Url::parse("http://a.test/").unwrap());
    req.max_redirects = 0;
    let r = h.send(req);
    let c = h.connect_all()[0];
    h.sent(c);
    h.reply(
        c,
        b"HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(h.events(), [(r, Ev::Head(301)), (r, Ev::End)]);
}

#[test]
fn forward_proxy_gets_absolute_form_and_credentials() {
    let proxies = ProxyConfig::from_env(|k| {
        (k == "http_proxy").then(|| "http://u%20s:p@proxy.test:3128".to_owned())
    })
    .unwrap();
    let mut h = H::with(|c| c.proxies = proxies);
    let r = h.get("http://origin.test/p?q#f");
    let acts = h.actions();
    assert_eq!(
        acts[0],
        Action::Connect {
            conn: ConnId(2),
            target: Target::Tcp {
                host: "proxy.test".into(),
                port: 3128
            }
        }
    );
    h.c.handle_connected(h.now, ConnId(2), None);
    let s = h.sent(ConnId(2));
    assert!(
        s.starts_with("GET http://origin.test/p?q HTTP/1.1\r\nHost: origin.test\r\n"),
        "{s}"
    );
    assert!(s.contains("Proxy-Authorization: Basic dSBzOnA=\r\n"), "{s}");
    h.reply(
        ConnId(2),
        b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(
        h.events(),
        [(
            r,
            Ev::Failed("proxy: 407 Proxy Authentication Required".into())
        )]
    );
}

#[test]
fn https_through_a_proxy_starts_with_connect_and_a_refusal_is_typed() {
    let mut h = H::new();
    let mut req = Request::get(Url::parse("https://origin.test:8443/").unwrap());
    req.proxy = Some(Some(Proxy::parse("http://proxy.test:3128").unwrap()));
    let r = h.send(req);
    let c = h.connect_all()[0];
    let s = h.sent(c);
    assert_eq!(
        s,
        "CONNECT origin.test:8443 HTTP/1.1\r\nHost: origin.test:8443\r\n\r\n"
    );
    h.reply(c, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        h.events(),
        [(
            r,
            Ev::Failed("proxy: CONNECT refused: 403 Forbidden".into())
        )]
    );

    // A 200 opens the tunnel and the origin's ClientHello follows.
    let mut req = Request::get(Url::parse("https://origin.test/").unwrap());
    req.proxy = Some(Some(Proxy::parse("http://proxy.test:3128").unwrap()));
    h.send(req);
    let c = h.connect_all()[0];
    h.sent(c);
    h.reply(c, b"HTTP/1.1 200 Connection established\r\n\r\n");
    let hello = h.c.transmit(c).to_vec();
    assert_eq!(hello.first(), Some(&0x16), "a TLS handshake record");
}

/// A GET over `/tmp/s` opens exactly a Unix transport to it.
fn connects_over_unix(h: &mut H) {
    let mut req = Request::get(Url::parse("http://x/").unwrap());
    req.unix = Some("/tmp/s".into());
    h.send(req);
    assert_eq!(
        h.actions(),
        [Action::Connect {
            conn: ConnId(2),
            target: Target::Unix {
                path: "/tmp/s".into()
            }
        }]
    );
}

#[test]
fn unix_and_proxy_cannot_combine() {
    let mut h = H::new();
    let mut req = Request::get(Url::parse("http://x/").unwrap());
    req.unix = Some("/tmp/s".into());
    req.proxy = Some(Some(Proxy::parse("http://p:1").unwrap()));
    assert!(matches!(h.c.request(h.now, req), Err(Error::Proxy(_))));
    connects_over_unix(&mut h);
}

/// The environment's proxies do not apply to a request over a Unix socket
/// (only a request's own proxy conflicts with one).
#[test]
fn a_unix_request_ignores_the_environments_proxy() {
    let proxies =
        ProxyConfig::from_env(|k| (k == "http_proxy").then(|| "http://proxy.test:3128".into()))
            .unwrap();
    let mut h = H::with(|c| c.proxies = proxies);
    connects_over_unix(&mut h);
}

#[test]
fn bad_requests_are_refused_at_once() {
    let mut h = H::new();
    let mut req = Request::get(Url::parse("http://x/").unwrap());
    req.headers.push(("X".into(), b"a\r\nInjected: 1".to_vec()));
    assert!(matches!(h.c.request(h.now, req), Err(Error::Http(_))));
    let req = Request::get(Url::parse("ftp://x/").unwrap());
    assert!(matches!(h.c.request(h.now, req), Err(Error::Url(_))));
}

#[test]
fn the_whole_request_times_out() {
    let mut h = H::new();
    let mut req = Request::get(Url::parse("http://x/").unwrap());
    req.timeout = Some(Duration::from_millis(1500));
    let r = h.send(req);
    let c = h.connect_all()[0];
    h.reply(c, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(
        h.c.poll_timeout(),
        Some(h.now + Duration::from_millis(1500))
    );
    h.now += Duration::from_secs(2);
    h.c.handle_timeout(h.now);
    let evs = h.events();
    assert_eq!(
        evs.last(),
        Some(&(
            r,
            Ev::Failed("ETIMEDOUT: request timed out after 1.5s".into())
        ))
    );
    assert!(h.actions().contains(&Action::Close { conn: c }));
}

#[test]
fn idle_connections_expire_before_the_servers_timeout() {
    let mut h = H::new();
    h.get("http://x/");
    let c = h.connect_all()[0];
    h.reply(
        c,
        b"HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(h.c.poll_timeout(), Some(h.now + Duration::from_secs(4)));
    h.now += Duration::from_secs(4);
    h.c.handle_timeout(h.now);
    assert!(h.actions().contains(&Action::Close { conn: c }));
}

#[test]
fn truncated_and_gzip_bodies() {
    let mut h = H::new();
    let r = h.get("http://x/");
    let c = h.connect_all()[0];
    h.reply(c, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello");
    h.c.handle_eof(h.now, c);
    let evs = h.events();
    assert_eq!(
        evs.last(),
        Some(&(
            r,
            Ev::Failed("http: response truncated: got 5 of 100 body bytes".into())
        ))
    );

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"hello, compressed world").unwrap();
    let gz = gz.finish().unwrap();
    let r = h.get("http://x/");
    let c = h.connect_all()[0];
    let mut resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    resp.extend(&gz);
    h.reply(c, &resp);
    assert_eq!(
        h.events(),
        [
            (r, Ev::Head(200)),
            (r, Ev::Data(b"hello, compressed world".to_vec())),
            (r, Ev::End)
        ]
    );
}

fn expecting(body: &[u8]) -> Request {
    let mut r = Request::new("PUT", Url::parse("http://x/up").unwrap());
    r.headers.push(("Expect".into(), b"100-continue".to_vec()));
    r.body = Some(body.into());
    r
}

#[test]
fn expect_continue_holds_the_body_until_100() {
    let mut h = H::new();
    let r = h.send(expecting(b"payload"));
    let c = h.connect_all()[0];
    let head = h.sent(c);
    assert!(
        head.contains("Expect: 100-continue\r\n") && head.ends_with("\r\n\r\n"),
        "{head}"
    );
    assert!(!head.contains("payload"));
    h.reply(c, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(h.sent(c), "payload");
    h.reply(c, OK);
    assert_eq!(h.events(), ok_events(r));
    assert_eq!(h.c.connections(), 1, "the connection is pooled");
}

#[test]
fn expect_continue_sends_the_body_after_a_second_of_silence() {
    let mut h = H::new();
    h.send(expecting(b"payload"));
    let c = h.connect_all()[0];
    h.sent(c);
    assert_eq!(h.c.poll_timeout(), Some(h.now + Duration::from_secs(1)));
    h.now += Duration::from_secs(1);
    h.c.handle_timeout(h.now);
    assert!(h.actions().contains(&Action::Send { conn: c }));
    assert_eq!(h.sent(c), "payload");
}

#[test]
fn a_final_answer_before_100_drops_the_body_and_the_connection() {
    let mut h = H::new();
    let r = h.send(expecting(b"payload"));
    let c = h.connect_all()[0];
    h.sent(c);
    h.reply(
        c,
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(h.events(), [(r, Ev::Head(413)), (r, Ev::End)]);
    assert!(h.actions().contains(&Action::Close { conn: c }));
    assert_eq!(h.c.transmit(c), b"", "the body never went out");
}

fn streaming(method: &str, length: Option<u64>) -> Request {
    let mut r = Request::new(method, Url::parse("http://x/up").unwrap());
    r.body = Some(Body::Stream {
        length,
        rewindable: false,
    });
    r
}

#[test]
fn a_rewindable_body_follows_a_307_from_its_first_byte() {
    let mut h = H::new();
    let mut req = streaming("PUT", Some(3));
    req.body = Some(Body::Stream {
        length: Some(3),
        rewindable: true,
    });
    let r = h.send(req);
    let c = h.connect_all()[0];
    h.sent(c);
    h.c.write_body(h.now, r, b"abc").unwrap();
    assert_eq!(h.c.body_offset(r), 3);
    h.c.finish_body(h.now, r).unwrap();
    h.sent(c);
    h.reply(
        c,
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(h.events(), [(r, Ev::Wanted), (r, Ev::Wanted)]);
    assert_eq!(h.c.body_offset(r), 0, "from the first byte again");
    let head = h.sent(c);
    assert!(
        head.starts_with("PUT /b HTTP/1.1\r\n") && head.contains("Content-Length: 3\r\n"),
        "{head}"
    );
    h.c.write_body(h.now, r, b"abc").unwrap();
    h.c.finish_body(h.now, r).unwrap();
    assert_eq!(h.sent(c), "abc");
    h.reply(c, OK);
    assert_eq!(h.events(), ok_events(r));
}

#[test]
fn a_streamed_body_with_a_length_is_written_as_it_comes() {
    let mut h = H::new();
    let r = h.send(streaming("PUT", Some(10)));
    let c = h.connect_all()[0];
    assert_eq!(h.events(), [(r, Ev::Wanted)]);
    let head = h.sent(c);
    assert!(head.contains("Content-Length: 10\r\n"), "{head}");
    assert!(!head.contains("chunked"), "{head}");
    assert!(h.c.body_room(r) > 0);
    assert!(h.c.write_body(h.now, r, b"hello").unwrap());
    assert!(h.c.write_body(h.now, r, b"").unwrap());
    assert!(h.c.write_body(h.now, r, b"world").unwrap());
    assert!(h.c.finish_body(h.now, r).unwrap());
    assert_eq!(h.c.body_room(r), 0, "a finished body takes nothing more");
    assert_eq!(h.sent(c), "helloworld");
    h.reply(c, OK);
    assert_eq!(h.events(), ok_events(r));
    assert_eq!(h.c.connections(), 1, "the connection is pooled");
}

#[test]
fn a_streamed_body_of_unknown_length_is_chunked() {
    let mut h = H::new();
    let r = h.send(streaming("POST", None));
    let c = h.connect_all()[0];
    let head = h.sent(c);
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(!head.contains("Content-Length"), "{head}");
    h.c.write_body(h.now, r, b"abc").unwrap();
    h.c.write_body(h.now, r, &[b'x'; 17]).unwrap();
    h.c.finish_body(h.now, r).unwrap();
    assert_eq!(
        h.sent(c),
        format!("3\r\nabc\r\n11\r\n{}\r\n0\r\n\r\n", "x".repeat(17))
    );
}

#[test]
fn the_body_room_shuts_at_the_window_and_opens_below_the_low_mark() {
    let mut h = H::new();
    let r = h.send(streaming("PUT", None));
    let c = h.connect_all()[0];
    h.events();
    let piece = vec![7u8; 32 << 10];
    let mut written = 0;
    while h.c.body_room(r) > 0 {
        assert!(h.c.write_body(h.now, r, &piece).unwrap());
        written += 1;
        assert!(written < 100, "the room never shut");
    }
    assert!(h.events().is_empty());
    // The transport takes a little: still above the low mark, no event.
    h.c.handle_sent(c, 1000);
    assert!(h.events().is_empty());
    // It takes everything: the room opens, once.
    let rest = h.c.transmit(c).len();
    h.c.handle_sent(c, rest);
    assert_eq!(h.events(), [(r, Ev::Wanted)]);
    assert!(h.c.body_room(r) > 0);
    h.c.handle_sent(c, 0);
    assert!(h.events().is_empty());
}

#[test]
fn a_streamed_body_must_match_its_length() {
    let mut h = H::new();
    let r = h.send(streaming("PUT", Some(3)));
    h.connect_all();
    h.events();
    let e = h.c.write_body(h.now, r, b"four").unwrap_err();
    assert_eq!(e.kind(), "http");
    let ev = h.events();
    assert!(
        matches!(&ev[..], [(_, Ev::Failed(m))] if m.contains("Content-Length")),
        "{ev:?}"
    );
    assert_eq!(h.c.connections(), 0, "its connection closed");

    let r = h.send(streaming("PUT", Some(3)));
    h.connect_all();
    h.events();
    h.c.write_body(h.now, r, b"ab").unwrap();
    assert!(h.c.finish_body(h.now, r).is_err());
    assert!(matches!(&h.events()[..], [(_, Ev::Failed(_))]));
}

#[test]
fn an_early_answer_stops_a_streamed_body_and_the_connection() {
    let mut h = H::new();
    let r = h.send(streaming("PUT", None));
    let c = h.connect_all()[0];
    h.sent(c);
    h.c.write_body(h.now, r, b"part").unwrap();
    h.reply(
        c,
        b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n",
    );
    assert!(
        !h.c.write_body(h.now, r, b"more").unwrap(),
        "not wanted any more"
    );
    assert!(!h.c.finish_body(h.now, r).unwrap());
    assert_eq!(
        h.events(),
        [(r, Ev::Wanted), (r, Ev::Head(413)), (r, Ev::End)]
    );
    assert!(
        h.actions().contains(&Action::Close { conn: c }),
        "never reused"
    );
}

#[test]
fn a_redirect_that_must_resend_a_streamed_body_fails() {
    let mut h = H::new();
    let r = h.send(streaming("PUT", Some(1)));
    let c = h.connect_all()[0];
    h.sent(c);
    h.c.write_body(h.now, r, b"x").unwrap();
    h.c.finish_body(h.now, r).unwrap();
    h.reply(
        c,
        b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",
    );
    let ev = h.events();
    assert!(
        matches!(&ev[..], [(_, Ev::Wanted), (_, Ev::Failed(m))] if m.starts_with("http: request body: a 307 redirect")),
        "{ev:?}"
    );
    // 303 turns it into a GET without a body: followed.
    let r = h.send(streaming("POST", None));
    let c = h.connect_all()[0];
    h.sent(c);
    h.c.finish_body(h.now, r).unwrap();
    h.sent(c);
    h.reply(
        c,
        b"HTTP/1.1 303 See Other\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n",
    );
    let get = h.sent(c);
    assert!(
        get.starts_with("GET /b HTTP/1.1\r\n") && !get.contains("chunked"),
        "{get}"
    );
    h.reply(c, OK);
    let ev = h.events();
    assert_eq!(ev.last(), Some(&(r, Ev::End)), "{ev:?}");
}

#[test]
fn a_streamed_body_waits_for_100_continue() {
    let mut h = H::new();
    let mut req = streaming("PUT", Some(2));
    req.headers
        .push(("Expect".into(), b"100-continue".to_vec()));
    let r = h.send(req);
    let c = h.connect_all()[0];
    h.sent(c);
    assert!(h.events().is_empty());
    assert_eq!(h.c.body_room(r), 0, "held");
    h.reply(c, b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(h.events(), [(r, Ev::Wanted)]);
    h.c.write_body(h.now, r, b"ok").unwrap();
    h.c.finish_body(h.now, r).unwrap();
    assert_eq!(h.sent(c), "ok");
}

#[test]
fn a_stale_connection_is_retried_only_before_the_body_was_taken() {
    let mut h = H::new();
    let r = h.get("http://x/up");
    let c = h.connect_all()[0];
    h.sent(c);
    h.reply(c, OK);
    h.events();
    // Not taken yet: the reused connection's EOF retries on a new one.
    let r2 = h.send(streaming("PUT", Some(1)));
    assert_ne!(r, r2);
    h.sent(c);
    h.c.handle_eof(h.now, c);
    let fresh = h.connect_all();
    assert_eq!(fresh.len(), 1, "retried on a new connection");
    assert_eq!(h.events(), [(r2, Ev::Wanted), (r2, Ev::Wanted)]);
    h.c.write_body(h.now, r2, b"x").unwrap();
    h.c.finish_body(h.now, r2).unwrap();
    h.sent(fresh[0]);
    h.reply(fresh[0], OK);
    h.events();
    // Taken: the same failure fails the request.
    let r3 = h.send(streaming("PUT", Some(1)));
    h.sent(fresh[0]);
    h.c.write_body(h.now, r3, b"x").unwrap();
    h.c.handle_eof(h.now, fresh[0]);
    assert!(matches!(
        &h.events()[..],
        [(_, Ev::Wanted), (_, Ev::Failed(_))]
    ));
}

#[test]
fn a_body_that_cannot_be_read_fails_its_request() {
    let mut h = H::new();
    let r = h.send(streaming("PUT", None));
    h.connect_all();
    h.events();
    h.c.fail_body(h.now, r, "read /x: EIO");
    assert_eq!(
        h.events(),
        [(r, Ev::Failed("http: request body: read /x: EIO".into()))]
    );
    assert_eq!(h.c.connections(), 0);
}

#[test]
fn the_environment_sets_the_cap_and_the_proxies() {
    let tls = H::new().c.config().tls.clone();
    let cfg = |vars: &[(&str, &str)]| {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ClientConfig::from_env(tls.clone(), |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    };
    assert_eq!(cfg(&[]).unwrap().max_connections, 256);
    let c = cfg(&[
        ("NETKIT_MAX_HTTP_REQUESTS", "4"),
        ("BUN_CONFIG_MAX_HTTP_REQUESTS", "9"),
    ]);
    assert_eq!(c.unwrap().max_connections, 4, "netkit's name first");
    let c = cfg(&[
        ("NETKIT_MAX_HTTP_REQUESTS", "0"),
        ("BUN_CONFIG_MAX_HTTP_REQUESTS", " 9 "),
    ]);
    assert_eq!(
        c.unwrap().max_connections,
        9,
        "0 is skipped, Bun's name next"
    );
    assert_eq!(
        cfg(&[("BUN_CONFIG_MAX_HTTP_REQUESTS", "x")])
            .unwrap()
            .max_connections,
        256
    );
    assert_eq!(
        cfg(&[("NETKIT_MAX_HTTP_REQUESTS", "999999")])
            .unwrap()
            .max_connections,
        65_535
    );
    let c = cfg(&[("http_proxy", "http://p:3128")]).unwrap();
    assert!(
        c.proxies
            .select(&Url::parse("http://a/").unwrap())
            .is_some()
    );
    assert!(cfg(&[("http_proxy", "ftp://p")]).is_err());
}

#[test]
fn cancelling_mid_body_closes_and_cancelling_a_queued_request_opens_nothing() {
    let mut h = H::with(|c| c.max_connections = 1);
    let a = h.get("http://x/a");
    let b = h.get("http://x/b");
    let c = h.connect_all();
    assert_eq!(c.len(), 1, "the cap holds b back");
    h.sent(c[0]);
    h.reply(c[0], b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf");
    h.events();
    h.actions();
    h.c.cancel(h.now, b);
    h.c.cancel(h.now, a);
    assert_eq!(
        h.actions(),
        [Action::Close { conn: c[0] }],
        "no connect for b"
    );
    assert!(h.events().is_empty(), "no event after a cancel");
    assert_eq!((h.c.connections(), h.c.in_flight()), (0, 0));
    // A complete exchange is pooled, and cancelling afterwards is a no-op.
    let r = h.get("http://x/c");
    let c = h.connect_all()[0];
    h.sent(c);
    h.reply(c, OK);
    assert_eq!(h.events(), ok_events(r));
    h.actions();
    h.c.cancel(h.now, r);
    assert!(h.actions().is_empty());
    assert_eq!(h.c.connections(), 1);
}

/// What a server reads as the body: `wire` after the request head, decoded
/// by its framing (chunked or `Content-Length`).
fn body_on_the_wire(wire: &[u8]) -> Vec<u8> {
    let at = wire
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&wire[..at]);
    if !head.contains("Transfer-Encoding: chunked") {
        return wire[at..].to_vec();
    }
    // A response head over the same framing lets netkit-http1's decoder
    // read the chunks.
    let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    resp.extend_from_slice(&wire[at..]);
    let mut d =
        netkit_http1::ResponseDecoder::new(netkit_http1::RequestKind::Other, Default::default());
    let (mut pos, mut out, mut ended) = (0, Vec::new(), false);
    while pos < resp.len() {
        let (n, ev) = d.decode(&resp[pos..]).unwrap();
        pos += n;
        match ev {
            Some(netkit_http1::Event::Data(b)) => out.extend_from_slice(b),
            Some(netkit_http1::Event::End) => ended = true,
            Some(_) => {}
            None if n == 0 => break,
            None => {}
        }
    }
    assert!(ended, "the chunked body never ended");
    out
}

proptest::proptest! {
    /// Any pieces, written only while the room allows and taken by the
    /// transport in any amounts, reach the server whole and in order, under
    /// either framing.
    #[test]
    fn a_streamed_body_arrives_whole_in_any_pieces(
        shapes in proptest::collection::vec((0usize..60_000, proptest::num::u8::ANY), 0..16),
        takes in proptest::collection::vec(1usize..300_000, 1..20),
        chunked in proptest::bool::ANY,
    ) {
        // Each piece a run of bytes counting up from its seed (cheap to
        // make, and a misplaced byte shows).
        let pieces: Vec<Vec<u8>> = shapes
            .iter()
            .map(|&(len, seed)| (0..len).map(|i| seed.wrapping_add(i as u8)).collect())
            .collect();
        let total: usize = pieces.iter().map(Vec::len).sum();
        let mut h = H::new();
        let length = (!chunked).then_some(total as u64);
        let r = h.send(streaming("PUT", length));
        let c = h.connect_all()[0];
        let mut wire = Vec::new();
        let mut take = takes.iter().cycle();
        let mut next = pieces.iter();
        let mut finished = false;
        while !finished || !h.c.transmit(c).is_empty() {
            if !finished && h.c.body_room(r) > 0 {
                match next.next() {
                    Some(p) => proptest::prop_assert!(h.c.write_body(h.now, r, p).unwrap()),
                    None => {
                        proptest::prop_assert!(h.c.finish_body(h.now, r).unwrap());
                        finished = true;
                    }
                }
                continue;
            }
            let t = h.c.transmit(c);
            let n = (*take.next().unwrap()).min(t.len());
            wire.extend_from_slice(&t[..n]);
            h.c.handle_sent(c, n);
        }
        let sent = body_on_the_wire(&wire);
        proptest::prop_assert_eq!(sent, pieces.concat());
    }
}

#[test]
fn the_builder_sets_what_it_names() {
    let tls = H::new().c.config().tls.clone();
    let r = Request::new("POST", Url::parse("http://x/").unwrap())
        .header("X-A", "1")
        .header("X-A", b"2")
        .body(&b"data"[..])
        .timeout(Duration::from_secs(3))
        .max_redirects(0)
        .decompress(false)
        .unix("/run/s.sock")
        .tls(tls.clone())
        .proxy(None)
        .verbose(true);
    assert_eq!(
        r.headers,
        [
            ("X-A".to_owned(), b"1".to_vec()),
            ("X-A".to_owned(), b"2".to_vec())
        ]
    );
    assert_eq!(r.body, Some(Body::Bytes(b"data".to_vec())));
    assert_eq!(r.timeout, Some(Duration::from_secs(3)));
    assert_eq!((r.max_redirects, r.decompress, r.verbose), (0, false, true));
    assert_eq!(r.unix.as_deref(), Some("/run/s.sock"));
    assert!(r.tls.is_some_and(|t| Arc::ptr_eq(&t, &tls)));
    assert_eq!(r.proxy, Some(None));
}

/// One response to `GET /`, plain or gzip, framed by length or chunks.
fn response_bytes(body: &[u8], gzip: bool, chunked: bool) -> Vec<u8> {
    let payload = if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(body).unwrap();
        gz.finish().unwrap()
    } else {
        body.to_vec()
    };
    let mut r = b"HTTP/1.1 200 OK\r\n".to_vec();
    if gzip {
        r.extend_from_slice(b"Content-Encoding: gzip\r\n");
    }
    if chunked {
        r.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for c in payload.chunks(7) {
            r.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            r.extend_from_slice(c);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
    } else {
        r.extend_from_slice(format!("Content-Length: {}\r\n\r\n", payload.len()).as_bytes());
        r.extend_from_slice(&payload);
    }
    r
}

#[test]
fn lent_input_hands_out_the_queued_events_first_and_leaves_none() {
    let mut h = H::new();
    let first = h.get("http://example.test/");
    let c = h.connect_all()[0];
    h.sent(c);
    // A head in one read (queued, as `handle_input` does), the body in
    // the lent read after it.
    h.reply(c, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    let mut got = Vec::new();
    h.c.handle_input_lent(h.now, c, b"hello", &mut |d| {
        got.push(match d {
            Delivery::Data { req, data } => format!("lent {} {:?}", req.0, data),
            Delivery::Event(e) => format!("event {e:?}").chars().take(18).collect(),
        });
    });
    assert!(h.c.poll_event().is_none(), "everything was handed out");
    assert_eq!(
        got,
        [
            "event Head { req: ".to_owned(),
            format!("lent {} {:?}", first.0, b"hello"),
            "event End { req: R".to_owned(),
        ]
    );
}

proptest::proptest! {
    /// Fed in any pieces, the lent deliveries are the events `poll_event`
    /// gives for the whole input; without content coding every body byte
    /// is lent, with gzip none is.
    #[test]
    fn lent_deliveries_match_the_events_in_any_pieces(
        body in proptest::collection::vec(proptest::num::u8::ANY, 0..3_000),
        cuts in proptest::collection::vec(1usize..400, 1..30),
        gzip in proptest::bool::ANY,
        chunked in proptest::bool::ANY,
    ) {
        let bytes = response_bytes(&body, gzip, chunked);
        let mut whole = H::new();
        whole.get("http://example.test/");
        let c = whole.connect_all()[0];
        whole.sent(c);
        whole.reply(c, &bytes);
        let expected = whole.events();

        let mut h = H::new();
        h.get("http://example.test/");
        let c = h.connect_all()[0];
        h.sent(c);
        let (mut pos, mut cut) = (0, cuts.iter().cycle());
        let mut owned: Vec<Event> = Vec::new();
        let mut lent_bytes = 0usize;
        let mut lent = 0usize;
        while pos < bytes.len() {
            let end = (pos + cut.next().unwrap()).min(bytes.len());
            h.c.handle_input_lent(h.now, c, &bytes[pos..end], &mut |d| {
                if let Delivery::Data { data, .. } = &d {
                    lent += 1;
                    lent_bytes += data.len();
                }
                owned.push(d.into_event());
            });
            pos = end;
        }
        proptest::prop_assert!(h.c.poll_event().is_none());
        proptest::prop_assert_eq!(evs(owned), expected);
        if gzip {
            proptest::prop_assert_eq!(lent, 0);
        } else {
            proptest::prop_assert_eq!(lent_bytes, body.len());
        }
    }
}
