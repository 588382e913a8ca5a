//! The client machine: requests, the pool, connections and their stacks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netkit_http1::{
    BodyEncoder, Event as H1, Fields, Framing, Head, Limits, RequestKind, ResponseDecoder,
};
use url::Url;

use crate::Error;
use crate::decode::{ACCEPT_ENCODING, Decoder};
use crate::layers::{Connect, Layer, Stack};
use crate::proxy::{Proxy, ProxyConfig, host_of};

/// A request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// In memory, framed with `Content-Length`; replayable, so a 307/308
    /// redirect or a retry sends it again.
    Bytes(Vec<u8>),
    /// Written by the driver as it reads it from a file, reader or stream:
    /// after [`Event::BodyWanted`], [`Client::write_body`] while
    /// [`Client::body_room`] allows, then [`Client::finish_body`]. Framed
    /// with `Content-Length` when the length is known, else chunked.
    Stream {
        /// The length, when known (a file's size).
        length: Option<u64>,
        /// The driver can start it again from its first byte (a file: it
        /// seeks), so a 307/308 redirect or a retry after some of it was
        /// taken sends it again; the driver sees [`Client::body_offset`]
        /// back at 0 on the next [`Event::BodyWanted`]. Not rewindable
        /// (a pipe, a stream): such a redirect is an error, and a retry
        /// happens only before any of it was taken.
        rewindable: bool,
    },
}

impl From<Vec<u8>> for Body {
    fn from(b: Vec<u8>) -> Self {
        Self::Bytes(b)
    }
}

impl From<&[u8]> for Body {
    fn from(b: &[u8]) -> Self {
        Self::Bytes(b.to_vec())
    }
}

/// A request.
#[derive(Debug, Clone)]
pub struct Request {
    /// Any method token (GET by default).
    pub method: String,
    /// `http://` or `https://`.
    pub url: Url,
    /// Headers in order. `Host` and the framing are set by the client
    /// (a `Host` given here wins; `Content-Length` and `Transfer-Encoding`
    /// given here are dropped: the body decides them).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body, or none.
    pub body: Option<Body>,
    /// A limit for the whole request, redirects included.
    pub timeout: Option<Duration>,
    /// Redirects followed at most (20 by default); 0 returns a 3xx itself.
    pub max_redirects: u32,
    /// Send `Accept-Encoding` and decode the body (on by default).
    pub decompress: bool,
    /// Send over this Unix socket instead of TCP.
    pub unix: Option<String>,
    /// TLS settings for this request (the client's by default).
    pub tls: Option<Arc<netkit_tls::ClientConfig>>,
    /// The proxy, overriding the client's selection (`Some(None)`: none).
    pub proxy: Option<Option<Proxy>>,
    /// Emit [`Event::Trace`] lines (curl's `-v`).
    pub verbose: bool,
}

impl Request {
    /// A GET of `url`.
    #[must_use]
    pub fn get(url: Url) -> Self {
        Self::new("GET", url)
    }

    /// A request with `method` to `url`, defaults elsewhere.
    #[must_use]
    pub fn new(method: &str, url: Url) -> Self {
        Self {
            method: method.to_owned(),
            url,
            headers: Vec::new(),
            body: None,
            timeout: None,
            max_redirects: 20,
            decompress: true,
            unix: None,
            tls: None,
            proxy: None,
            verbose: false,
        }
    }

    /// Adds a header (repeated names are kept, in order).
    #[must_use]
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.to_owned(), value.as_ref().to_vec()));
        self
    }

    /// Sets the body (bytes; a streamed one goes through the driver's
    /// `fetch_upload`).
    #[must_use]
    pub fn body(mut self, body: impl Into<Body>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// A limit for the whole request, redirects included.
    #[must_use]
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Redirects followed at most (0: a 3xx is the response).
    #[must_use]
    pub fn max_redirects(mut self, n: u32) -> Self {
        self.max_redirects = n;
        self
    }

    /// Whether to send `Accept-Encoding` and decode the body.
    #[must_use]
    pub fn decompress(mut self, on: bool) -> Self {
        self.decompress = on;
        self
    }

    /// Sends over this Unix socket instead of TCP.
    #[must_use]
    pub fn unix(mut self, path: impl Into<String>) -> Self {
        self.unix = Some(path.into());
        self
    }

    /// TLS settings for this request (`ca`, `reject_unauthorized`: build
    /// them with the driver's `tls::client_config`).
    #[must_use]
    pub fn tls(mut self, config: Arc<netkit_tls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// This proxy (`None`: none), whatever the client's selection says.
    #[must_use]
    pub fn proxy(mut self, proxy: Option<Proxy>) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Emits the curl-style trace as events.
    #[must_use]
    pub fn verbose(mut self, on: bool) -> Self {
        self.verbose = on;
        self
    }

    fn idempotent(&self) -> bool {
        matches!(
            self.method.as_str(),
            "GET" | "HEAD" | "PUT" | "DELETE" | "OPTIONS" | "TRACE"
        )
    }
}

/// The client's settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Proxy selection (from the environment, by the driver).
    pub proxies: ProxyConfig,
    /// TLS for https origins and proxies.
    pub tls: Arc<netkit_tls::ClientConfig>,
    /// Simultaneous connections at most (Bun's 256); requests past it wait.
    pub max_connections: usize,
    /// How long an idle connection is kept (shortened to 1 s under the
    /// server's `Keep-Alive: timeout=`).
    pub idle_timeout: Duration,
    /// Response head limits.
    pub limits: Limits,
    /// `User-Agent` sent when the request has none.
    pub user_agent: String,
}

impl ClientConfig {
    /// Defaults around a TLS configuration.
    #[must_use]
    pub fn new(tls: Arc<netkit_tls::ClientConfig>) -> Self {
        Self {
            proxies: ProxyConfig::none(),
            tls,
            max_connections: 256,
            idle_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            user_agent: concat!("netkit/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }

    /// Defaults around `tls` with what the environment says, looked up
    /// through `env` (the driver passes `std::env::var`): proxies
    /// ([`ProxyConfig::from_env`]) and the cap on connections,
    /// `NETKIT_MAX_HTTP_REQUESTS` then Bun's `BUN_CONFIG_MAX_HTTP_REQUESTS`
    /// (a positive number, at most 65,535; anything else is skipped).
    pub fn from_env(
        tls: Arc<netkit_tls::ClientConfig>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let mut c = Self::new(tls);
        c.proxies = ProxyConfig::from_env(&env)?;
        c.max_connections = ["NETKIT_MAX_HTTP_REQUESTS", "BUN_CONFIG_MAX_HTTP_REQUESTS"]
            .iter()
            .find_map(|k| env(k)?.trim().parse::<usize>().ok().filter(|n| *n > 0))
            .map_or(256, |n| n.min(65_535));
        Ok(c)
    }
}

/// A request's handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReqId(pub u64);

/// A connection's handle, shared with the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// Where a connection goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// TCP to a host (name or address literal, resolved by the driver).
    Tcp {
        /// Host name or address (no brackets).
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix domain socket.
    Unix {
        /// Its path.
        path: String,
    },
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a transport; report with `handle_connected` or `handle_error`.
    Connect {
        /// The connection.
        conn: ConnId,
        /// Where to.
        target: Target,
    },
    /// Bytes wait in [`Client::transmit`] for this connection.
    Send {
        /// The connection.
        conn: ConnId,
    },
    /// Close the transport (the machine has forgotten it).
    Close {
        /// The connection.
        conn: ConnId,
    },
}

/// A response head, after redirects.
#[derive(Debug, Clone)]
pub struct Response {
    /// The URL that answered (the last one after redirects).
    pub url: Url,
    /// Redirects followed.
    pub redirects: u32,
    /// The status line and headers as received.
    pub head: Head,
}

/// What [`Client::handle_input_lent`] hands out: an event, or body bytes
/// lent from the input.
#[derive(Debug)]
pub enum Delivery<'a> {
    /// An event, as [`Client::poll_event`] would return it.
    Event(Event),
    /// Body bytes, in order with the request's events; valid for the call.
    Data {
        /// The request.
        req: ReqId,
        /// The bytes.
        data: &'a [u8],
    },
}

impl Delivery<'_> {
    /// As an owned [`Event`] (lent bytes copied into [`Event::Data`]).
    #[must_use]
    pub fn into_event(self) -> Event {
        match self {
            Self::Event(e) => e,
            Self::Data { req, data } => Event::Data {
                req,
                data: data.to_vec(),
            },
        }
    }
}

/// Where body bytes are lent to, when they are.
type Lend<'s, 'f> = Option<&'s mut (dyn FnMut(Delivery<'_>) + 'f)>;

/// What happened to a request.
#[derive(Debug)]
pub enum Event {
    /// The final response head.
    Head {
        /// The request.
        req: ReqId,
        /// The response.
        response: Response,
    },
    /// The request's streamed body ([`Body::Stream`]) may be written now:
    /// [`Client::write_body`] while [`Client::body_room`] is above 0, then
    /// [`Client::finish_body`]. It comes again when the room, used up,
    /// opens again.
    BodyWanted {
        /// The request.
        req: ReqId,
    },
    /// Body bytes (decoded), in order.
    Data {
        /// The request.
        req: ReqId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The body is complete.
    End {
        /// The request.
        req: ReqId,
        /// Trailer fields, if the body had some.
        trailers: Option<Fields>,
    },
    /// The request failed (the last event for it).
    Failed {
        /// The request.
        req: ReqId,
        /// Why.
        error: Error,
    },
    /// A line of the verbose trace, without its `* `, `> `, `< ` prefix.
    Trace {
        /// The request.
        req: ReqId,
        /// `'*'`, `'>'` or `'<'`.
        kind: char,
        /// The line.
        line: String,
    },
}

/// The route key of the pool: what must match for a connection to be reused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Route {
    tls: bool,
    host: String,
    port: u16,
    proxy: Option<Proxy>,
    unix: Option<String>,
    /// The TLS configuration's identity (its `Arc`'s address).
    tls_config: usize,
}

impl Route {
    /// Whether requests go to a forward proxy in absolute form.
    fn forward(&self) -> bool {
        self.proxy.is_some() && !self.tls
    }
}

#[derive(Debug)]
struct Req {
    request: Request,
    route: Route,
    tls: Arc<netkit_tls::ClientConfig>,
    deadline: Option<Instant>,
    redirects: u32,
    retried: bool,
    /// Retrying: only a fresh connection will do.
    fresh_only: bool,
    conn: Option<ConnId>,
    /// The response being read is a redirect to follow: its body is dropped.
    follow: Option<Request>,
    decoder: Option<Decoder>,
    /// `Expect: 100-continue`: the body, held until the server's 100 (or
    /// [`CONTINUE_WAIT`] without an answer).
    held_body: Option<(ConnId, Vec<u8>, Instant)>,
    /// A streamed body on its way out.
    outgoing: Option<Outgoing>,
    /// Streamed body bytes taken, on any connection (none: a retry may
    /// start it again).
    streamed: u64,
}

/// A streamed request body being written on a connection.
#[derive(Debug)]
struct Outgoing {
    conn: ConnId,
    encoder: BodyEncoder,
    /// `Expect: 100-continue`: not wanted before the server's 100 or this
    /// instant.
    held_until: Option<Instant>,
    /// The window was seen full (by `handle_sent`): [`Event::BodyWanted`]
    /// follows once the connection's unsent bytes fall to [`BODY_LOW_WATER`].
    paused: bool,
}

/// The most a driver reads from a streamed body at once.
pub const BODY_PIECE: usize = 64 << 10;

/// Unsent bytes a connection may hold from a streamed body; past this,
/// [`Client::body_room`] is 0 until the transport takes them.
const BODY_WINDOW: usize = 256 << 10;
/// The room opens again (a new [`Event::BodyWanted`]) at this many unsent bytes.
const BODY_LOW_WATER: usize = 64 << 10;

/// How long a body waits for `100 Continue` before it is sent anyway (curl's 1 s).
const CONTINUE_WAIT: Duration = Duration::from_secs(1);

#[derive(Debug)]
struct Conn {
    route: Route,
    stack: Stack,
    connected: bool,
    req: Option<ReqId>,
    http: Option<ResponseDecoder>,
    /// Plaintext from the stack not yet consumed by the decoder.
    app: Vec<u8>,
    /// Requests this connection has carried before the current one.
    used: u32,
    idle_until: Option<Instant>,
    send_queued: bool,
    /// Trace lines waiting for a request to be told.
    trace: Vec<String>,
    /// The current response's trailers, until its end.
    trailers: Option<Fields>,
    /// The exchange left the connection unusable (a held body never sent).
    no_reuse: bool,
}

/// The client machine. See the [crate docs](crate).
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    next_id: u64,
    reqs: HashMap<ReqId, Req>,
    queue: VecDeque<ReqId>,
    conns: HashMap<ConnId, Conn>,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    /// Connections opened in total (for tests and benchmarks).
    opened: u64,
}

impl Client {
    /// A client with no connection yet.
    #[must_use]
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            next_id: 0,
            reqs: HashMap::new(),
            queue: VecDeque::new(),
            conns: HashMap::new(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            opened: 0,
        }
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Connections opened since the client was made.
    #[must_use]
    pub fn connections_opened(&self) -> u64 {
        self.opened
    }

    /// Connections open now (connecting, busy or idle).
    #[must_use]
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Requests not yet finished.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.reqs.len()
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Starts a request. A URL that cannot be fetched (scheme, `unix` with a
    /// proxy, a header that would split the head) is refused at once.
    pub fn request(&mut self, now: Instant, request: Request) -> Result<ReqId, Error> {
        let tls = request
            .tls
            .clone()
            .unwrap_or_else(|| self.config.tls.clone());
        let route = self.route(&request, &tls)?;
        check_headers(&request)?;
        let id = ReqId(self.id());
        let deadline = request.timeout.map(|t| now + t);
        self.reqs.insert(
            id,
            Req {
                request,
                route,
                tls,
                deadline,
                redirects: 0,
                retried: false,
                fresh_only: false,
                conn: None,
                follow: None,
                decoder: None,
                held_body: None,
                outgoing: None,
                streamed: 0,
            },
        );
        self.queue.push_back(id);
        self.schedule(now);
        Ok(id)
    }

    fn route(&self, r: &Request, tls: &Arc<netkit_tls::ClientConfig>) -> Result<Route, Error> {
        let secure = match r.url.scheme() {
            "http" => false,
            "https" => true,
            s => return Err(Error::Url(format!("unsupported URL scheme {s:?}"))),
        };
        let host = host_of(&r.url).ok_or_else(|| Error::Url(format!("no host in {}", r.url)))?;
        let port = r.url.port_or_known_default().unwrap_or(80);
        // A request's own proxy cannot go with a Unix socket (Bun refuses
        // both options); the environment's proxies do not apply to one.
        if r.unix.is_some() && matches!(r.proxy, Some(Some(_))) {
            return Err(Error::Proxy(
                "a Unix socket and a proxy cannot be combined".into(),
            ));
        }
        let proxy = match &r.proxy {
            Some(p) => p.clone(),
            None if r.unix.is_some() => None,
            None => self.config.proxies.select(&r.url).cloned(),
        };
        Ok(Route {
            tls: secure,
            host,
            port,
            proxy: if r.unix.is_some() { None } else { proxy },
            unix: r.unix.clone(),
            tls_config: Arc::as_ptr(tls) as usize,
        })
    }

    /// Cancels a request: a queued one is dropped; an active one closes its
    /// connection (the exchange is incomplete). No event follows.
    pub fn cancel(&mut self, now: Instant, req: ReqId) {
        if let Some(r) = self.reqs.remove(&req) {
            self.queue.retain(|q| *q != req);
            if let Some(c) = r.conn {
                self.close_conn(c);
            }
            self.schedule(now);
        }
    }

    /// The next thing for the driver to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The bytes waiting for `conn`'s transport.
    #[must_use]
    pub fn transmit(&self, conn: ConnId) -> &[u8] {
        self.conns.get(&conn).map_or(&[], |c| c.stack.transmit())
    }

    /// The transport took `n` bytes of [`transmit`](Self::transmit).
    pub fn handle_sent(&mut self, conn: ConnId, n: usize) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let before = c.stack.transmit().len();
        c.stack.handle_sent(n);
        c.send_queued = false;
        let unsent = c.stack.transmit().len();
        let Some(req) = c.req else { return };
        if let Some(o) = self.reqs.get_mut(&req).and_then(|r| r.outgoing.as_mut()) {
            // A full window shut the room, whatever filled it (body writes,
            // or plaintext a TLS layer held during its handshake and the
            // peer's input flushed): a driver's pump is waiting. Nothing
            // but this call takes bytes away, so it always sees the window
            // full before it drains.
            if before >= BODY_WINDOW {
                o.paused = true;
            }
            if o.paused && o.conn == conn && unsent <= BODY_LOW_WATER {
                o.paused = false;
                self.events.push_back(Event::BodyWanted { req });
            }
        }
    }

    /// How many bytes of `req`'s streamed body [`write_body`](Self::write_body)
    /// takes now (0: wait for the next [`Event::BodyWanted`], or the body is
    /// not wanted: not started, held for `100 Continue`, finished, or
    /// answered already).
    #[must_use]
    pub fn body_room(&self, req: ReqId) -> usize {
        let Some(o) = self.reqs.get(&req).and_then(|r| r.outgoing.as_ref()) else {
            return 0;
        };
        if o.held_until.is_some() || o.encoder.is_finished() {
            return 0;
        }
        let unsent = self
            .conns
            .get(&o.conn)
            .map_or(0, |c| c.stack.transmit().len());
        BODY_WINDOW.saturating_sub(unsent)
    }

    /// Bytes of `req`'s streamed body taken on its current attempt: 0 on an
    /// [`Event::BodyWanted`] after a redirect or retry of a rewindable body
    /// means start again from the first byte.
    #[must_use]
    pub fn body_offset(&self, req: ReqId) -> u64 {
        self.reqs
            .get(&req)
            .and_then(|r| r.outgoing.as_ref())
            .map_or(0, |o| o.encoder.sent())
    }

    /// Writes the next piece of `req`'s streamed body (any length; past
    /// [`body_room`](Self::body_room) it is still taken, but the room stays
    /// shut until the transport catches up). `Ok(false)`: the body is no
    /// longer wanted (the server answered first, or the request ended):
    /// stop sending. More bytes than the declared length fail the request
    /// (and are `Err`).
    pub fn write_body(&mut self, now: Instant, req: ReqId, data: &[u8]) -> Result<bool, Error> {
        self.body_step(now, req, |enc, out| enc.write(data, out))
    }

    /// Ends `req`'s streamed body (the last chunk when chunked). Fewer bytes
    /// than the declared length fail the request (and are `Err`).
    /// `Ok(false)`: the body was no longer wanted.
    pub fn finish_body(&mut self, now: Instant, req: ReqId) -> Result<bool, Error> {
        self.body_step(now, req, BodyEncoder::finish)
    }

    /// What a driver read from `req`'s streamed body, handed in as read:
    /// `Ok(piece)` (empty: the end; the body is finished) or `Err(why)`
    /// (the request fails as in [`fail_body`](Self::fail_body)). `true`:
    /// read on while [`body_room`](Self::body_room) allows; `false`: stop
    /// (finished, failed, or no longer wanted). The one loop both drivers
    /// run: `while room > 0 { read up to min(room, BODY_PIECE); if
    /// !body_read(..) { break } }`.
    pub fn body_read(&mut self, now: Instant, req: ReqId, read: Result<&[u8], String>) -> bool {
        match read {
            Ok([]) => {
                let _ = self.finish_body(now, req);
                false
            }
            Ok(piece) => matches!(self.write_body(now, req, piece), Ok(true)),
            Err(why) => {
                self.fail_body(now, req, &why);
                false
            }
        }
    }

    /// The driver could not read `req`'s streamed body: the request fails
    /// with `http: request body: {message}` and its connection closes.
    pub fn fail_body(&mut self, now: Instant, req: ReqId, message: &str) {
        if self.reqs.contains_key(&req) {
            self.fail(req, Error::Body(message.to_owned()));
            self.schedule(now);
        }
    }

    fn body_step(
        &mut self,
        now: Instant,
        req: ReqId,
        f: impl FnOnce(&mut BodyEncoder, &mut Vec<u8>) -> Result<(), netkit_http1::Error>,
    ) -> Result<bool, Error> {
        let Some(r) = self.reqs.get_mut(&req) else {
            return Ok(false);
        };
        let Some(o) = r.outgoing.as_mut() else {
            return Ok(false);
        };
        let Some(c) = self.conns.get_mut(&o.conn) else {
            return Ok(false);
        };
        let mut framed = Vec::new();
        let before = o.encoder.sent();
        if let Err(e) = f(&mut o.encoder, &mut framed) {
            let e = Error::Http(e);
            self.fail(req, e.clone());
            self.schedule(now);
            return Err(e);
        }
        r.streamed += o.encoder.sent() - before;
        let conn = o.conn;
        if let Err(e) = c.stack.write(&framed) {
            self.conn_failed(conn, e);
            self.schedule(now);
            return Ok(false);
        }
        self.queue_send(conn);
        Ok(true)
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let reqs = self.reqs.values().flat_map(|r| {
            [
                r.deadline,
                r.held_body.as_ref().map(|(_, _, at)| *at),
                r.outgoing.as_ref().and_then(|o| o.held_until),
            ]
            .into_iter()
            .flatten()
        });
        let idle = self.conns.values().filter_map(|c| c.idle_until);
        reqs.chain(idle).min()
    }

    /// Time passed: requests past their deadline fail, idle connections
    /// past their expiry close.
    pub fn handle_timeout(&mut self, now: Instant) {
        let late: Vec<ReqId> = self
            .reqs
            .iter()
            .filter(|(_, r)| r.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let t = self.reqs[&id].request.timeout.unwrap_or_default();
            self.fail(id, Error::Timeout(t));
        }
        let due: Vec<ReqId> = self
            .reqs
            .iter()
            .filter(|(_, r)| {
                r.held_body.as_ref().is_some_and(|(_, _, at)| *at <= now)
                    || r.outgoing
                        .as_ref()
                        .and_then(|o| o.held_until)
                        .is_some_and(|at| at <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.send_held_body(id);
        }
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.idle_until.is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for c in idle {
            self.close_conn(c);
        }
        self.schedule(now);
    }

    /// The transport of `conn` is open.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId, peer: Option<&str>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.connected = true;
        let line = match (&c.route.unix, peer) {
            (Some(path), _) => format!("Connected to {path} (Unix socket)"),
            (None, Some(p)) => format!("Connected to {} ({p})", hop_name(&c.route)),
            (None, None) => format!("Connected to {}", hop_name(&c.route)),
        };
        c.trace.push(line);
        self.idle(now, conn);
        self.schedule(now);
    }

    /// The transport of `conn` failed (to connect, or later). The machine
    /// forgets the connection; no `Close` follows.
    pub fn handle_error(&mut self, now: Instant, conn: ConnId, error: Error) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        match c.req {
            Some(req) => {
                let fresh_failure = c.http.as_ref().is_none_or(|h| !h.received_any());
                self.fail_or_retry(req, c.used > 0 && fresh_failure, error);
            }
            // A connection opened for the route failed before any request
            // took it: the oldest request waiting for that route fails.
            None if !c.connected => {
                let waiting = self
                    .queue
                    .iter()
                    .find(|q| self.reqs.get(q).is_some_and(|r| r.route == c.route))
                    .copied();
                if let Some(req) = waiting {
                    self.fail(req, error);
                }
            }
            None => {}
        }
        self.schedule(now);
    }

    /// The request `conn` carries now, if any (a driver that holds body
    /// data for its caller uses it to stop reading `conn` while that
    /// caller is behind).
    #[must_use]
    pub fn request_on(&self, conn: ConnId) -> Option<ReqId> {
        self.conns.get(&conn)?.req
    }

    /// Transport bytes for `conn`.
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, bytes: &[u8]) {
        self.input(now, conn, bytes, None);
    }

    /// [`handle_input`](Self::handle_input) handing everything out through
    /// `out` instead of [`poll_event`](Self::poll_event): the events queued
    /// before, then those of these bytes, in order. Body bytes that need no
    /// content decoding come as [`Delivery::Data`], lent from `bytes` (or
    /// from the connection's plaintext) without a copy; decoded bytes come
    /// as [`Event::Data`].
    pub fn handle_input_lent(
        &mut self,
        now: Instant,
        conn: ConnId,
        bytes: &[u8],
        out: &mut dyn FnMut(Delivery<'_>),
    ) {
        self.input(now, conn, bytes, Some(&mut *out));
        self.lend_events(out);
    }

    /// Hands every queued event to `out`.
    fn lend_events(&mut self, out: &mut dyn FnMut(Delivery<'_>)) {
        while let Some(ev) = self.events.pop_front() {
            out(Delivery::Event(ev));
        }
    }

    fn input(&mut self, now: Instant, conn: ConnId, bytes: &[u8], mut lend: Lend<'_, '_>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.req.is_none() {
            // Bytes on an idle connection: it cannot be trusted again.
            self.close_conn(conn);
            self.schedule(now);
            return;
        }
        if c.stack.is_plain() && c.app.is_empty() {
            // Plain HTTP with nothing pending: decode the transport's bytes
            // where they are, and keep only what is left.
            let used = self.read_http_from(now, conn, bytes, lend.as_deref_mut());
            if let Some(c) = self.conns.get_mut(&conn) {
                if used < bytes.len() {
                    c.app.extend_from_slice(&bytes[used..]);
                }
            }
            self.schedule(now);
            return;
        }
        let r = c.stack.input(bytes, &mut c.app);
        for l in c.stack.announcements() {
            c.trace.push(l);
        }
        self.flush_trace(conn);
        self.queue_send(conn);
        match r {
            Ok(ended) => {
                self.read_http(now, conn, lend);
                if ended {
                    if let Some(req) = self.conns.get(&conn).and_then(|c| c.req) {
                        self.http_eof(now, conn, req);
                    }
                }
            }
            Err(e) => self.conn_failed(conn, e),
        }
        self.schedule(now);
    }

    /// The transport of `conn` reached EOF.
    pub fn handle_eof(&mut self, now: Instant, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(req) = c.req else {
            self.close_conn(conn);
            self.schedule(now);
            return;
        };
        match c.stack.eof() {
            // HTTP's framing decides whether the body is whole; many
            // servers close without close_notify.
            Ok(()) | Err(Error::Tls(netkit_tls::Error::Truncated)) => {}
            Err(e) => {
                self.conn_failed(conn, e);
                self.schedule(now);
                return;
            }
        }
        self.http_eof(now, conn, req);
        self.schedule(now);
    }

    /// The plaintext under HTTP ended (transport EOF, or the peer's
    /// close_notify): a close-delimited body ends, anything else unfinished
    /// is an error (or, on a reused connection with no response byte, the
    /// stale-connection retry).
    fn http_eof(&mut self, now: Instant, conn: ConnId, req: ReqId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let used = c.used;
        let fin = c.http.as_mut().map(ResponseDecoder::finish);
        match fin {
            Some(Ok(Some(H1::End))) => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.http = None;
                }
                self.response_end(now, conn, req, None, false);
            }
            Some(Ok(_)) => self.close_conn(conn),
            Some(Err(e)) => {
                let stale = e.is_no_response() && used > 0;
                self.conns.remove(&conn);
                self.actions.push_back(Action::Close { conn });
                self.fail_or_retry(req, stale, Error::Http(e));
            }
            None => {
                self.conns.remove(&conn);
                self.actions.push_back(Action::Close { conn });
                self.fail_or_retry(req, used > 0, Error::Http(netkit_http1::Error::NoResponse));
            }
        }
    }

    fn conn_failed(&mut self, conn: ConnId, error: Error) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.actions.push_back(Action::Close { conn });
        if let Some(req) = c.req {
            self.fail(req, error);
        }
    }

    /// Fails `req`, or (once, for an idempotent request on a reused
    /// connection that failed before any response byte) queues it again for
    /// a fresh connection.
    fn fail_or_retry(&mut self, req: ReqId, stale: bool, error: Error) {
        let Some(r) = self.reqs.get_mut(&req) else {
            return;
        };
        let replayable = r.streamed == 0
            || matches!(
                r.request.body,
                Some(Body::Stream {
                    rewindable: true,
                    ..
                })
            );
        if stale && !r.retried && r.request.idempotent() && replayable {
            r.retried = true;
            r.fresh_only = true;
            r.conn = None;
            r.decoder = None;
            r.follow = None;
            r.held_body = None;
            r.outgoing = None;
            self.trace(
                req,
                '*',
                "reused connection closed before a response: retrying on a new one".into(),
            );
            self.queue.push_front(req);
            return;
        }
        self.fail(req, error);
    }

    fn fail(&mut self, req: ReqId, error: Error) {
        let Some(r) = self.reqs.remove(&req) else {
            return;
        };
        self.queue.retain(|q| *q != req);
        if let Some(c) = r.conn {
            self.close_conn(c);
        }
        self.events.push_back(Event::Failed { req, error });
    }

    fn close_conn(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.remove(&conn) {
            self.actions.push_back(Action::Close { conn });
            if let Some(req) = c.req {
                if let Some(r) = self.reqs.get_mut(&req) {
                    r.conn = None;
                }
            }
        }
    }

    fn queue_send(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            if !c.send_queued && !c.stack.transmit().is_empty() {
                c.send_queued = true;
                self.actions.push_back(Action::Send { conn });
            }
        }
    }

    fn trace(&mut self, req: ReqId, kind: char, line: String) {
        if self.reqs.get(&req).is_some_and(|r| r.request.verbose) {
            self.events.push_back(Event::Trace { req, kind, line });
        }
    }

    fn flush_trace(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(req) = c.req else {
            return;
        };
        for line in std::mem::take(&mut c.trace) {
            self.trace(req, '*', line);
        }
    }

    fn idle(&mut self, now: Instant, conn: ConnId) {
        let t = self.config.idle_timeout;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.req = None;
            c.http = None;
            c.idle_until = Some(now + t);
        }
    }

    /// Gives waiting requests connections: an idle one of their route, else
    /// a new one if the route has fewer connections on the way than
    /// requests waiting and the cap allows (closing an idle connection of
    /// another route to make room).
    fn schedule(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.queue.len() {
            let req = self.queue[i];
            let Some(r) = self.reqs.get(&req) else {
                self.queue.remove(i);
                continue;
            };
            let idle = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.route == r.route
                        && c.connected
                        && c.req.is_none()
                        && (!r.fresh_only || c.used == 0)
                })
                .map(|(id, _)| *id)
                .min();
            if let Some(conn) = idle {
                self.queue.remove(i);
                self.start(now, req, conn);
                continue;
            }
            let route = r.route.clone();
            let tls = r.tls.clone();
            let opening = self
                .conns
                .values()
                .filter(|c| c.route == route && !c.connected)
                .count();
            let waiting = self
                .queue
                .iter()
                .take(i + 1)
                .filter(|q| self.reqs.get(q).is_some_and(|r| r.route == route))
                .count();
            if opening < waiting {
                if self.conns.len() >= self.config.max_connections {
                    let spare = self
                        .conns
                        .iter()
                        .filter(|(_, c)| c.req.is_none() && c.connected)
                        .map(|(id, _)| *id)
                        .min();
                    match spare {
                        Some(s) => self.close_conn(s),
                        None => break,
                    }
                }
                if let Err(e) = self.open(&route, &tls) {
                    self.queue.remove(i);
                    self.fail(req, e);
                    continue;
                }
            }
            i += 1;
        }
    }

    fn open(&mut self, route: &Route, tls: &Arc<netkit_tls::ClientConfig>) -> Result<(), Error> {
        let mut layers = Vec::new();
        let (target, hop_tls) = match (&route.unix, &route.proxy) {
            (Some(path), _) => (Target::Unix { path: path.clone() }, false),
            (None, Some(p)) => (
                Target::Tcp {
                    host: p.host.clone(),
                    port: p.port,
                },
                p.tls,
            ),
            (None, None) => (
                Target::Tcp {
                    host: route.host.clone(),
                    port: route.port,
                },
                false,
            ),
        };
        if let Some(p) = &route.proxy {
            if hop_tls {
                layers.push(Layer::tls(tls, &p.host)?);
            }
            if route.tls {
                let authority = authority(&route.host, route.port);
                let auth: Vec<(&str, &[u8])> = p
                    .authorization
                    .iter()
                    .map(|a| ("Proxy-Authorization", a.as_bytes()))
                    .collect();
                layers.push(Layer::Connect(Box::new(Connect::new(&authority, &auth)?)));
            }
        }
        if route.tls {
            layers.push(Layer::tls(tls, &route.host)?);
        }
        let id = ConnId(self.id());
        let mut trace = Vec::new();
        if let Some(p) = &route.proxy {
            trace.push(format!("Using proxy {}:{}", p.host, p.port));
            if route.tls {
                trace.push(format!(
                    "CONNECT tunnel to {}",
                    authority(&route.host, route.port)
                ));
            }
        }
        self.conns.insert(
            id,
            Conn {
                route: route.clone(),
                stack: Stack::new(layers)?,
                connected: false,
                req: None,
                http: None,
                app: Vec::new(),
                used: 0,
                idle_until: None,
                send_queued: false,
                trace,
                trailers: None,
                no_reuse: false,
            },
        );
        self.opened += 1;
        self.actions.push_back(Action::Connect { conn: id, target });
        Ok(())
    }

    /// Puts `req` on the connected, idle `conn` and writes it.
    fn start(&mut self, now: Instant, req: ReqId, conn: ConnId) {
        let Some(r) = self.reqs.get_mut(&req) else {
            return;
        };
        r.conn = Some(conn);
        let (head, body) = match encode(&r.request, &r.route, &self.config) {
            Ok(x) => x,
            Err(e) => {
                self.fail(req, e);
                return;
            }
        };
        let expect_continue = r.request.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("expect") && v.eq_ignore_ascii_case(b"100-continue")
        });
        let expect = !body.is_empty() && expect_continue;
        let mut wanted = false;
        if let Some(Body::Stream { length, .. }) = r.request.body {
            let framing = length.map_or(Framing::Chunked, Framing::Length);
            let held_until = expect_continue.then_some(now + CONTINUE_WAIT);
            wanted = held_until.is_none();
            r.outgoing = Some(Outgoing {
                conn,
                encoder: BodyEncoder::new(framing),
                held_until,
                paused: false,
            });
        }
        let body = if expect {
            r.held_body = Some((conn, body, now + CONTINUE_WAIT));
            Vec::new()
        } else {
            body
        };
        let verbose = r.request.verbose;
        let kind = match r.request.method.as_str() {
            "HEAD" => RequestKind::Head,
            _ => RequestKind::Other,
        };
        let limits = self.config.limits;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.req.is_none() && c.idle_until.is_some() && c.http.is_none() && c.used > 0 {
            c.trace.push(format!(
                "Re-using existing connection to {}",
                hop_name(&c.route)
            ));
        }
        c.req = Some(req);
        c.idle_until = None;
        c.http = Some(ResponseDecoder::new(kind, limits));
        c.app.clear();
        let w = c.stack.write(&head).and_then(|()| c.stack.write(&body));
        self.flush_trace(conn);
        if verbose {
            let text = String::from_utf8_lossy(&head).into_owned();
            for line in text.split("\r\n").take_while(|l| !l.is_empty()) {
                self.trace(req, '>', line.to_owned());
            }
            self.trace(req, '>', String::new());
        }
        if let Err(e) = w {
            self.conn_failed(conn, e);
            return;
        }
        self.queue_send(conn);
        if wanted {
            self.events.push_back(Event::BodyWanted { req });
        }
    }

    /// Sends the body `req` held for `100 Continue` (a streamed one is
    /// wanted from now on).
    fn send_held_body(&mut self, req: ReqId) {
        if let Some(o) = self.reqs.get_mut(&req).and_then(|r| r.outgoing.as_mut()) {
            if o.held_until.take().is_some() {
                self.events.push_back(Event::BodyWanted { req });
            }
        }
        let Some((conn, body, _)) = self.reqs.get_mut(&req).and_then(|r| r.held_body.take()) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Err(e) = c.stack.write(&body) {
            self.conn_failed(conn, e);
            return;
        }
        self.queue_send(conn);
    }

    /// Decodes what the connection's plaintext holds.
    fn read_http(&mut self, now: Instant, conn: ConnId, lend: Lend<'_, '_>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut app = std::mem::take(&mut c.app);
        let used = self.read_http_from(now, conn, &app, lend);
        if let Some(c) = self.conns.get_mut(&conn) {
            app.drain(..used);
            c.app = app;
        }
    }

    /// Decodes `input` for `conn`'s response; returns the bytes consumed.
    /// Body data goes out as events straight from `input`, or lent.
    fn read_http_from(
        &mut self,
        now: Instant,
        conn: ConnId,
        input: &[u8],
        mut lend: Lend<'_, '_>,
    ) -> usize {
        let mut pos = 0;
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return pos;
            };
            let (Some(req), Some(http)) = (c.req, c.http.as_mut()) else {
                return pos;
            };
            let (n, ev) = match http.decode(&input[pos..]) {
                Ok(x) => x,
                Err(e) => {
                    self.conn_failed(conn, Error::Http(e));
                    return pos;
                }
            };
            pos += n;
            let Some(ev) = ev else {
                return pos;
            };
            match ev {
                H1::Informational(h) => {
                    self.trace_head(req, &h);
                    if h.status() == 100 {
                        self.send_held_body(req);
                    }
                }
                H1::Head(h) => {
                    self.trace_head(req, &h);
                    if let Err(e) = self.response_head(req, h) {
                        self.fail(req, e);
                        return pos;
                    }
                }
                H1::Data(d) => {
                    if let Err(e) = self.body(req, d, lend.as_deref_mut()) {
                        self.fail(req, e);
                        return pos;
                    }
                }
                H1::Trailers(f) => {
                    if let Some(c) = self.conns.get_mut(&conn) {
                        c.trailers = Some(f);
                    }
                }
                H1::End => {
                    let left = pos < input.len();
                    let trailers = self.take_trailers(conn);
                    self.response_end(now, conn, req, trailers, left);
                    return pos;
                }
            }
        }
    }

    fn take_trailers(&mut self, conn: ConnId) -> Option<Fields> {
        self.conns.get_mut(&conn).and_then(|c| c.trailers.take())
    }

    fn trace_head(&mut self, req: ReqId, h: &Head) {
        if !self.reqs.get(&req).is_some_and(|r| r.request.verbose) {
            return;
        }
        let text = String::from_utf8_lossy(h.raw()).into_owned();
        for line in text.lines().map(|l| l.trim_end_matches('\r')) {
            if line.is_empty() {
                continue;
            }
            self.trace(req, '<', line.to_owned());
        }
        self.trace(req, '<', String::new());
    }

    /// The final head: a redirect to follow, a forward proxy's 407, or the
    /// response to deliver.
    fn response_head(&mut self, req: ReqId, head: Head) -> Result<(), Error> {
        let Some(r) = self.reqs.get_mut(&req) else {
            return Ok(());
        };
        // A final answer before the held body went out: the body is never
        // sent, and the connection cannot carry another request (the server
        // may still expect the body's bytes).
        if let Some((conn, _, _)) = r.held_body.take() {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.no_reuse = true;
            }
        }
        // Likewise a streamed body not written to its end: the rest is no
        // longer wanted.
        if let Some(o) = r.outgoing.take() {
            if !o.encoder.is_finished() {
                if let Some(c) = self.conns.get_mut(&o.conn) {
                    c.no_reuse = true;
                }
            }
        }
        let Some(r) = self.reqs.get_mut(&req) else {
            return Ok(());
        };
        let status = head.status();
        if status == 407 && r.route.forward() {
            return Err(Error::Proxy(format!("{} {}", status, head.reason())));
        }
        let location = head.headers().get("location");
        if matches!(status, 301 | 302 | 303 | 307 | 308) && r.request.max_redirects > 0 {
            if let Some(loc) = location {
                if r.redirects >= r.request.max_redirects {
                    return Err(Error::TooManyRedirects(r.redirects + 1));
                }
                let loc = String::from_utf8_lossy(loc).trim().to_owned();
                let next = r.request.url.join(&loc).map_err(|e| {
                    Error::Url(format!("redirect to an invalid Location {loc:?}: {e}"))
                })?;
                r.follow = Some(redirect(&r.request, status, next)?);
                return Ok(());
            }
        }
        if r.request.decompress && r.request.method != "HEAD" && status != 204 && status != 304 {
            if let Some(enc) = head.headers().get("content-encoding") {
                r.decoder = Decoder::for_encoding(enc)?;
            }
        }
        let response = Response {
            url: r.request.url.clone(),
            redirects: r.redirects,
            head,
        };
        self.events.push_back(Event::Head { req, response });
        Ok(())
    }

    fn body(&mut self, req: ReqId, d: &[u8], lend: Lend<'_, '_>) -> Result<(), Error> {
        let Some(r) = self.reqs.get_mut(&req) else {
            return Ok(());
        };
        if r.follow.is_some() {
            return Ok(());
        }
        let data = match (&mut r.decoder, lend) {
            (Some(dec), _) => {
                let mut out = Vec::new();
                dec.write(d, &mut out)?;
                out
            }
            (None, Some(out)) => {
                // What came before goes first.
                self.lend_events(out);
                if !d.is_empty() {
                    out(Delivery::Data { req, data: d });
                }
                return Ok(());
            }
            (None, None) => d.to_vec(),
        };
        if !data.is_empty() {
            self.events.push_back(Event::Data { req, data });
        }
        Ok(())
    }

    /// The response is complete: the connection goes back to the pool (or
    /// closes), and the request ends or follows its redirect.
    fn response_end(
        &mut self,
        now: Instant,
        conn: ConnId,
        req: ReqId,
        trailers: Option<Fields>,
        left: bool,
    ) {
        let reuse = self
            .conns
            .get(&conn)
            .filter(|c| !c.no_reuse)
            .and_then(|c| c.http.as_ref())
            .and_then(ResponseDecoder::reuse);
        match reuse {
            Some(ka) if !left => {
                let idle = ka.timeout.map_or(self.config.idle_timeout, |t| {
                    self.config
                        .idle_timeout
                        .min(t.saturating_sub(Duration::from_secs(1)))
                });
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.used += 1;
                    c.req = None;
                    c.http = None;
                    c.idle_until = Some(now + idle);
                }
                self.trace(req, '*', format!("Connection #{} left intact", conn.0));
            }
            _ => {
                self.trace(req, '*', format!("Closing connection #{}", conn.0));
                self.close_conn(conn);
            }
        }
        let Some(r) = self.reqs.get_mut(&req) else {
            return;
        };
        r.conn = None;
        if let Some(next) = r.follow.take() {
            r.redirects += 1;
            let tls = r.tls.clone();
            let line = format!("Following redirect to {}", next.url);
            match self.route(&next, &tls) {
                Ok(route) => {
                    let r = self.reqs.get_mut(&req).expect("present");
                    r.route = route;
                    r.request = next;
                    r.fresh_only = false;
                    r.retried = false;
                    self.trace(req, '*', line);
                    self.queue.push_back(req);
                }
                Err(e) => self.fail(req, e),
            }
            return;
        }
        let mut tail = Vec::new();
        if let Some(dec) = r.decoder.take() {
            if let Err(e) = dec.finish(&mut tail) {
                self.fail(req, e);
                return;
            }
        }
        self.reqs.remove(&req);
        if !tail.is_empty() {
            self.events.push_back(Event::Data { req, data: tail });
        }
        self.events.push_back(Event::End { req, trailers });
    }
}

/// `host:port`, bracketing IPv6.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn hop_name(route: &Route) -> String {
    match &route.proxy {
        Some(p) => format!("{} port {}", p.host, p.port),
        None => format!("{} port {}", route.host, route.port),
    }
}

fn check_headers(r: &Request) -> Result<(), Error> {
    for (n, v) in &r.headers {
        netkit_http1::check_header(n, v)?;
    }
    if !netkit_http1::is_token(&r.method) {
        return Err(netkit_http1::Error::InvalidMethod(r.method.clone()).into());
    }
    Ok(())
}

/// The request's head and body bytes for its route.
fn encode(r: &Request, route: &Route, config: &ClientConfig) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let url = &r.url;
    let target = if route.forward() {
        let mut u = url.clone();
        u.set_fragment(None);
        u.to_string()
    } else {
        let mut t = url.path().to_owned();
        if let Some(q) = url.query() {
            t.push('?');
            t.push_str(q);
        }
        t
    };
    let default_port = url.port_or_known_default() == Some(route.port) && url.port().is_none();
    let host = match url.host_str() {
        Some(h) if default_port => h.to_owned(),
        Some(h) => format!("{h}:{}", route.port),
        None => String::new(),
    };
    let has = |name: &str| r.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut headers: Vec<(&str, &[u8])> = Vec::with_capacity(r.headers.len() + 6);
    if !has("host") {
        headers.push(("Host", host.as_bytes()));
    }
    for (n, v) in &r.headers {
        if n.eq_ignore_ascii_case("content-length") || n.eq_ignore_ascii_case("transfer-encoding") {
            continue;
        }
        headers.push((n, v));
    }
    if !has("user-agent") {
        headers.push(("User-Agent", config.user_agent.as_bytes()));
    }
    if !has("accept") {
        headers.push(("Accept", b"*/*"));
    }
    if r.decompress && !has("accept-encoding") {
        headers.push(("Accept-Encoding", ACCEPT_ENCODING.as_bytes()));
    }
    let auth;
    if route.forward() {
        if let Some(a) = route.proxy.as_ref().and_then(|p| p.authorization.as_ref()) {
            if !has("proxy-authorization") {
                auth = a.clone();
                headers.push(("Proxy-Authorization", auth.as_bytes()));
            }
        }
    }
    let framing = match &r.body {
        Some(Body::Bytes(b)) => Framing::Length(b.len() as u64),
        Some(Body::Stream {
            length: Some(n), ..
        }) => Framing::Length(*n),
        Some(Body::Stream { length: None, .. }) => Framing::Chunked,
        None if matches!(r.method.as_str(), "POST" | "PUT" | "PATCH") => Framing::Length(0),
        None => Framing::None,
    };
    let mut head = Vec::new();
    netkit_http1::encode_head(&mut head, &r.method, &target, &headers, framing)?;
    let body = match &r.body {
        Some(Body::Bytes(b)) => b.clone(),
        _ => Vec::new(),
    };
    Ok((head, body))
}

/// The request a redirect leads to (RFC 9110 §15.4 as browsers and curl do
/// it): 301/302/303 turn POST (303: anything but HEAD) into GET without a
/// body; 307/308 keep method and body. Credentials and cookies are dropped
/// when the origin changes.
fn redirect(r: &Request, status: u16, url: Url) -> Result<Request, Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Url(format!(
            "redirect to unsupported scheme {:?}",
            url.scheme()
        )));
    }
    let mut next = r.clone();
    let to_get = match status {
        301 | 302 => r.method == "POST",
        303 => r.method != "HEAD" && r.method != "GET",
        _ => false,
    };
    if !to_get
        && matches!(
            r.body,
            Some(Body::Stream {
                rewindable: false,
                ..
            })
        )
    {
        return Err(Error::Body(format!(
            "a {status} redirect must send the body again, and a streamed body is read once"
        )));
    }
    if to_get {
        next.method = "GET".into();
        next.body = None;
        next.headers.retain(|(n, _)| {
            !n.eq_ignore_ascii_case("content-type") && !n.eq_ignore_ascii_case("content-encoding")
        });
    }
    if url.origin() != r.url.origin() {
        next.headers.retain(|(n, _)| {
            !["authorization", "cookie", "proxy-authorization", "host"]
                .iter()
                .any(|d| n.eq_ignore_ascii_case(d))
        });
    }
    next.url = url;
    Ok(next)
}
