//! `fetch` on async-io: netkit-fetch's [`Client`] shared by the tasks that
//! carry its connections.
//!
//! Each connection is a task (on smol's executor) that runs the connect
//! plan through the [`Runtime`], then moves bytes between its socket and
//! the machine under one lock; a request is a future that waits for its
//! events. No HTTP decision is made here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::future;
use futures_lite::{AsyncRead, AsyncReadExt, AsyncSeekExt};
use netkit_fetch::{
    Action, BODY_PIECE, Body, Client, ClientConfig, ConnId, Event, Head, ReqId, Request, Target,
};

use crate::{ConnectOptions, Error, Runtime};

/// What a connection task is told.
enum Cmd {
    Send,
    Close,
}

/// Body bytes a request may hold unread by its caller before its
/// connection stops reading (TCP flow control then slows the server).
const BODY_HIGH_WATER: usize = 1 << 20;
/// Reading resumes once the caller has taken the held body below this.
const BODY_LOW_WATER: usize = 256 << 10;

#[derive(Default)]
struct ReqSlot {
    events: VecDeque<Event>,
    waker: Option<Waker>,
    /// Body bytes queued in `events`.
    buffered: usize,
    /// The connection task waiting for `buffered` to fall.
    reader: Option<Waker>,
}

pub(crate) struct Shared {
    client: Client,
    conns: HashMap<ConnId, async_channel::Sender<Cmd>>,
    reqs: HashMap<ReqId, ReqSlot>,
    /// Wakes the deadline task when the next deadline may have moved.
    tick: async_channel::Sender<()>,
}

/// A pool's state, shared by its clients, connection tasks and deadline task.
pub(crate) type Pool = Arc<Mutex<Shared>>;

/// A fetch client on a [`Runtime`]: its pool, shared by every clone.
#[derive(Clone)]
pub struct HttpClient {
    shared: Pool,
    runtime: Runtime,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

fn lock(s: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl HttpClient {
    /// A client on `runtime` (whose resolver it uses).
    #[must_use]
    pub fn new(runtime: &Runtime, config: ClientConfig) -> Self {
        Self {
            shared: new_pool(runtime, config),
            runtime: runtime.clone(),
        }
    }

    /// Sends `request` and waits for the response head (redirects followed).
    /// The body is read from the returned [`Response`].
    pub async fn fetch(&self, request: Request) -> Result<Response, netkit_fetch::Error> {
        self.fetch_with(request, None).await
    }

    /// [`fetch`](Self::fetch) with a body read as it is sent (its
    /// `request.body` is replaced by the upload's): the upload is read only
    /// while the connection has room, so a large file never sits in memory
    /// whole.
    pub async fn fetch_upload(
        &self,
        request: Request,
        upload: Upload,
    ) -> Result<Response, netkit_fetch::Error> {
        self.fetch_with(request, Some(upload)).await
    }

    async fn fetch_with(
        &self,
        mut request: Request,
        mut upload: Option<Upload>,
    ) -> Result<Response, netkit_fetch::Error> {
        match &upload {
            Some(up) => request.body = Some(up.body()),
            None if matches!(request.body, Some(Body::Stream { .. })) => {
                return Err(netkit_fetch::Error::Body(
                    "a streamed body is sent with an Upload (fetch_upload)".into(),
                ));
            }
            None => {}
        }
        let req = {
            let mut s = lock(&self.shared);
            let req = s.client.request(Instant::now(), request)?;
            s.reqs.insert(req, ReqSlot::default());
            self.carry_out(&mut s);
            req
        };
        let mut guard = Guard {
            client: self.clone(),
            req,
            done: false,
        };
        let mut traces = Vec::new();
        loop {
            match guard.next().await {
                Some(Event::Head { response, .. }) => {
                    return Ok(Response {
                        head: response.head,
                        url: response.url,
                        traces,
                        guard,
                        buf: Vec::new(),
                        pos: 0,
                    });
                }
                Some(Event::Failed { error, .. }) => {
                    guard.done = true;
                    return Err(error);
                }
                Some(Event::Trace { kind, line, .. }) => traces.push((kind, line)),
                Some(Event::BodyWanted { .. }) => {
                    if let Some(up) = &mut upload {
                        self.pump_upload(req, up).await;
                    }
                }
                Some(_) | None => {}
            }
        }
    }

    /// Reads from `upload` into the machine while it has room for `req`'s
    /// body (the lock is not held while reading). The upload is kept until
    /// the head arrives, even when the machine stops wanting it: a redirect
    /// may want it again, from its start.
    async fn pump_upload(&self, req: ReqId, upload: &mut Upload) {
        let at_start = lock(&self.shared).client.body_offset(req) == 0;
        if at_start {
            if let Err(e) = upload.rewind().await {
                let mut s = lock(&self.shared);
                s.client
                    .fail_body(Instant::now(), req, &format!("rewind: {e}"));
                self.carry_out(&mut s);
                return;
            }
        }
        let mut buf = Vec::new();
        loop {
            let room = lock(&self.shared).client.body_room(req);
            if room == 0 {
                return;
            }
            buf.resize(room.min(BODY_PIECE), 0);
            let read = upload.read(&mut buf).await;
            let mut s = lock(&self.shared);
            let read = read.map_err(|e| format!("read: {e}"));
            let more = s
                .client
                .body_read(Instant::now(), req, read.map(|n| &buf[..n]));
            self.carry_out(&mut s);
            if !more {
                return;
            }
        }
    }

    /// Connections opened in total, and open now.
    #[must_use]
    pub fn connections(&self) -> (u64, usize) {
        let s = lock(&self.shared);
        (s.client.connections_opened(), s.client.connections())
    }

    /// Carries out the machine's actions and routes its events (under the lock).
    fn carry_out(&self, s: &mut Shared) {
        while let Some(a) = s.client.poll_action() {
            match a {
                Action::Connect { conn, target } => {
                    let (tx, rx) = async_channel::unbounded();
                    s.conns.insert(conn, tx);
                    let this = self.clone();
                    smol::spawn(async move { this.run_conn(conn, target, rx).await }).detach();
                }
                Action::Send { conn } => {
                    if let Some(tx) = s.conns.get(&conn) {
                        let _ = tx.try_send(Cmd::Send);
                    }
                }
                Action::Close { conn } => {
                    if let Some(tx) = s.conns.remove(&conn) {
                        let _ = tx.try_send(Cmd::Close);
                    }
                }
            }
        }
        while let Some(ev) = s.client.poll_event() {
            let req = match &ev {
                Event::BodyWanted { req }
                | Event::Head { req, .. }
                | Event::Data { req, .. }
                | Event::End { req, .. }
                | Event::Failed { req, .. }
                | Event::Trace { req, .. } => *req,
            };
            if let Some(slot) = s.reqs.get_mut(&req) {
                if let Event::Data { data, .. } = &ev {
                    slot.buffered += data.len();
                }
                slot.events.push_back(ev);
                if let Some(w) = slot.waker.take() {
                    w.wake();
                }
            }
        }
        let _ = s.tick.try_send(());
    }

    /// `conn`'s transport failed: the machine forgets it.
    fn transport_failed(&self, conn: ConnId, e: &Error) {
        let mut s = lock(&self.shared);
        s.conns.remove(&conn);
        s.client
            .handle_error(Instant::now(), conn, netkit_fetch::Error::from(e));
        self.carry_out(&mut s);
    }

    /// Waits while the request on `conn` holds more than
    /// [`BODY_HIGH_WATER`] body bytes its caller has not taken: the socket
    /// is not read meanwhile, so a 256 MiB body never sits in memory whole.
    async fn room(&self, conn: ConnId) {
        future::poll_fn(|cx| {
            let mut s = lock(&self.shared);
            let Some(req) = s.client.request_on(conn) else {
                return Poll::Ready(());
            };
            match s.reqs.get_mut(&req) {
                Some(slot) if slot.buffered > BODY_HIGH_WATER => {
                    slot.reader = Some(cx.waker().clone());
                    Poll::Pending
                }
                _ => Poll::Ready(()),
            }
        })
        .await;
    }

    /// One connection's task.
    async fn run_conn(&self, conn: ConnId, target: Target, cmds: async_channel::Receiver<Cmd>) {
        let opts = match target {
            Target::Tcp { host, port } => ConnectOptions::new(host, port),
            Target::Unix { path } => ConnectOptions::unix(path),
        };
        let sock = match self.runtime.connect_socket(&opts).await {
            Ok((sock, to)) => {
                let mut s = lock(&self.shared);
                s.client
                    .handle_connected(Instant::now(), conn, Some(&to.to_string()));
                self.carry_out(&mut s);
                sock
            }
            Err(e) => {
                self.transport_failed(conn, &e);
                return;
            }
        };
        let mut buf = vec![0u8; 64 * 1024];
        let mut out = Vec::new();
        loop {
            let step = future::or(
                async {
                    self.room(conn).await;
                    Step::Read(
                        sock.read_with(|s| {
                            let mut r: &socket2::Socket = s;
                            std::io::Read::read(&mut r, &mut buf)
                        })
                        .await,
                    )
                },
                async { Step::Cmd(cmds.recv().await.ok()) },
            )
            .await;
            match step {
                Step::Read(Ok(n)) => {
                    let mut s = lock(&self.shared);
                    if n == 0 {
                        s.client.handle_eof(Instant::now(), conn);
                    } else {
                        s.client.handle_input(Instant::now(), conn, &buf[..n]);
                    }
                    self.carry_out(&mut s);
                    if n == 0 {
                        s.conns.remove(&conn);
                        return;
                    }
                }
                Step::Read(Err(e)) => {
                    self.transport_failed(conn, &netkit_sys::os_error(&e, "read"));
                    return;
                }
                Step::Cmd(Some(Cmd::Send)) => {
                    out.clear();
                    {
                        let mut s = lock(&self.shared);
                        out.extend_from_slice(s.client.transmit(conn));
                        s.client.handle_sent(conn, out.len());
                        // The room an upload waits for may have opened.
                        self.carry_out(&mut s);
                    }
                    if let Err(e) = write_all(&sock, &out).await {
                        self.transport_failed(conn, &netkit_sys::os_error(&e, "write"));
                        return;
                    }
                }
                Step::Cmd(Some(Cmd::Close) | None) => return,
            }
        }
    }
}

async fn write_all(sock: &Async<socket2::Socket>, mut b: &[u8]) -> std::io::Result<()> {
    while !b.is_empty() {
        let n = sock
            .write_with(|s| {
                let mut w: &socket2::Socket = s;
                std::io::Write::write(&mut w, b)
            })
            .await?;
        b = &b[n..];
    }
    Ok(())
}

enum Step {
    Read(std::io::Result<usize>),
    Cmd(Option<Cmd>),
}

/// A pool on `runtime` and its deadline task (which holds neither the
/// pool nor the runtime alive).
fn new_pool(runtime: &Runtime, config: ClientConfig) -> Pool {
    let (tick, ticks) = async_channel::unbounded();
    let shared = Arc::new(Mutex::new(Shared {
        client: Client::new(config),
        conns: HashMap::new(),
        reqs: HashMap::new(),
        tick,
    }));
    let weak = Arc::downgrade(&shared);
    smol::spawn(deadlines(weak, ticks, runtime.downgrade())).detach();
    shared
}

/// Fires the machine's deadlines (request timeouts, idle expiry).
async fn deadlines(
    shared: std::sync::Weak<Mutex<Shared>>,
    ticks: async_channel::Receiver<()>,
    runtime: crate::runtime::WeakRuntime,
) {
    loop {
        let next = match shared.upgrade() {
            Some(s) => lock(&s).client.poll_timeout(),
            None => return,
        };
        let woke = match next {
            Some(at) => {
                future::or(async { ticks.recv().await.is_ok() }, async {
                    Timer::at(at).await;
                    true
                })
                .await
            }
            None => ticks.recv().await.is_ok(),
        };
        if !woke {
            return;
        }
        let (Some(s), Some(runtime)) = (shared.upgrade(), runtime.upgrade()) else {
            return;
        };
        let client = HttpClient {
            shared: s.clone(),
            runtime,
        };
        let mut g = lock(&s);
        g.client.handle_timeout(Instant::now());
        client.carry_out(&mut g);
        while ticks.try_recv().is_ok() {}
    }
}

/// Cancels its request when dropped before the end (the connection closes
/// unless the exchange was complete).
struct Guard {
    client: HttpClient,
    req: ReqId,
    done: bool,
}

impl Guard {
    async fn next(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        let req = self.req;
        future::poll_fn(|cx| {
            let mut s = lock(&self.client.shared);
            let Some(slot) = s.reqs.get_mut(&req) else {
                return Poll::Ready(None);
            };
            match slot.events.pop_front() {
                Some(ev) => {
                    if let Event::Data { data, .. } = &ev {
                        slot.buffered -= data.len();
                        if slot.buffered <= BODY_LOW_WATER {
                            if let Some(w) = slot.reader.take() {
                                w.wake();
                            }
                        }
                    }
                    if matches!(ev, Event::End { .. } | Event::Failed { .. }) {
                        s.reqs.remove(&req);
                    }
                    Poll::Ready(Some(ev))
                }
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let mut s = lock(&self.client.shared);
        if s.reqs.remove(&self.req).is_some() && !self.done {
            s.client.cancel(Instant::now(), self.req);
            self.client.carry_out(&mut s);
        }
    }
}

/// A request body read as it is sent: a file or any `AsyncRead`.
pub struct Upload {
    source: UploadSource,
    length: Option<u64>,
    /// Bytes read from `source` so far.
    pos: u64,
}

enum UploadSource {
    File(smol::fs::File),
    Reader(Box<dyn AsyncRead + Send + Unpin>),
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("length", &self.length)
            .field("file", &matches!(self.source, UploadSource::File(_)))
            .finish_non_exhaustive()
    }
}

impl Upload {
    /// A file, sent with `Content-Length` (its size now), and sent again
    /// from its start when a 307/308 redirect or a retry asks.
    pub async fn file(path: impl AsRef<std::path::Path>) -> std::io::Result<Self> {
        let f = smol::fs::File::open(path.as_ref()).await?;
        let length = f.metadata().await?.len();
        Ok(Self {
            source: UploadSource::File(f),
            length: Some(length),
            pos: 0,
        })
    }

    /// Any `AsyncRead`, sent chunked (or with `Content-Length` when
    /// `length` is given: a reader that ends short or runs long fails the
    /// request). It is read once: a redirect that must resend it fails.
    pub fn reader(reader: impl AsyncRead + Send + Unpin + 'static, length: Option<u64>) -> Self {
        Self {
            source: UploadSource::Reader(Box::new(reader)),
            length,
            pos: 0,
        }
    }

    fn body(&self) -> Body {
        Body::Stream {
            length: self.length,
            rewindable: matches!(self.source, UploadSource::File(_)),
        }
    }

    async fn rewind(&mut self) -> std::io::Result<()> {
        if self.pos > 0 {
            match &mut self.source {
                UploadSource::File(f) => {
                    f.seek(std::io::SeekFrom::Start(0)).await?;
                }
                UploadSource::Reader(_) => {
                    return Err(std::io::Error::other("a reader cannot be read again"));
                }
            }
            self.pos = 0;
        }
        Ok(())
    }

    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = match &mut self.source {
            UploadSource::File(f) => f.read(buf).await?,
            UploadSource::Reader(r) => r.read(buf).await?,
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// A response: the head at once, the body as it arrives.
pub struct Response {
    head: Head,
    url: netkit_fetch::Url,
    traces: Vec<(char, String)>,
    guard: Guard,
    buf: Vec<u8>,
    pos: usize,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.head.status())
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    /// The head: headers in order, repeated ones kept.
    #[must_use]
    pub fn head(&self) -> &Head {
        &self.head
    }

    /// The URL that answered (after redirects).
    #[must_use]
    pub fn url(&self) -> &netkit_fetch::Url {
        &self.url
    }

    /// Trace lines so far (with `verbose` requests).
    #[must_use]
    pub fn traces(&self) -> &[(char, String)] {
        &self.traces
    }

    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Option<Result<Vec<u8>, netkit_fetch::Error>> {
        if self.pos < self.buf.len() {
            let b = self.buf.split_off(self.pos);
            self.buf.clear();
            self.pos = 0;
            return Some(Ok(b));
        }
        loop {
            match self.guard.next().await? {
                Event::Data { data, .. } => return Some(Ok(data)),
                Event::End { .. } => {
                    self.guard.done = true;
                    return None;
                }
                Event::Failed { error, .. } => {
                    self.guard.done = true;
                    return Some(Err(error));
                }
                Event::Trace { kind, line, .. } => self.traces.push((kind, line)),
                Event::Head { .. } | Event::BodyWanted { .. } => {}
            }
        }
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Vec<u8>, netkit_fetch::Error> {
        let mut all = Vec::new();
        while let Some(c) = self.chunk().await {
            all.extend_from_slice(&c?);
        }
        Ok(all)
    }

    /// The whole body as JSON (feature `serde`), as `Response.json()`.
    #[cfg(feature = "serde")]
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, netkit_fetch::Error> {
        let b = self.bytes().await?;
        serde_json::from_slice(&b).map_err(|e| netkit_fetch::Error::Json(e.to_string()))
    }

    /// The whole body as text (invalid UTF-8 replaced, as `Response.text()`).
    pub async fn text(self) -> Result<String, netkit_fetch::Error> {
        Ok(String::from_utf8_lossy(&self.bytes().await?).into_owned())
    }
}

impl AsyncRead for Response {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        while this.pos == this.buf.len() {
            // The future holds no state of its own: events wait in the
            // request's queue, so dropping it when pending loses nothing.
            let polled = {
                let fut = this.chunk();
                futures_lite::pin!(fut);
                fut.poll(cx)
            };
            match polled {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(Ok(0)),
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Err(std::io::Error::other(e)));
                }
                Poll::Ready(Some(Ok(b))) => {
                    this.buf = b;
                    this.pos = 0;
                }
            }
        }
        let n = out.len().min(this.buf.len() - this.pos);
        out[..n].copy_from_slice(&this.buf[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(n))
    }
}

impl Runtime {
    /// A fetch client on this runtime with a pool of its own and `config`
    /// (each call makes a new pool; keep one and clone it). Most code wants
    /// [`fetch`](Self::fetch), on the runtime's own pool.
    #[must_use]
    pub fn http_client(&self, config: ClientConfig) -> HttpClient {
        HttpClient::new(self, config)
    }

    /// The runtime's own fetch client: one pool per runtime, made on first
    /// use with the environment's settings (proxies, the connection cap)
    /// and the system's trust roots, shared by every call. A pooled
    /// connection holds the runtime until it closes (at the latest its idle
    /// expiry).
    pub fn fetch_client(&self) -> Result<HttpClient, netkit_fetch::Error> {
        // Settings that cannot be read are an error each time, not a pool.
        let shared = self.http_pool(|| {
            let tls = netkit_sys::tls::client_config(&netkit_tls::ClientOptions::default())?;
            let config = ClientConfig::from_env(Arc::new(tls), |k| std::env::var(k).ok())?;
            Ok::<_, netkit_fetch::Error>(new_pool(self, config))
        })?;
        Ok(HttpClient {
            shared,
            runtime: self.clone(),
        })
    }

    /// Bun's `fetch` on the runtime's own pool ([`fetch_client`](Self::fetch_client)).
    pub async fn fetch(&self, request: Request) -> Result<Response, netkit_fetch::Error> {
        self.fetch_client()?.fetch(request).await
    }

    /// [`fetch`](Self::fetch) with a body read as it is sent.
    pub async fn fetch_upload(
        &self,
        request: Request,
        upload: Upload,
    ) -> Result<Response, netkit_fetch::Error> {
        self.fetch_client()?.fetch_upload(request, upload).await
    }
}

/// `fetch` on [`Runtime::global`]'s pool.
pub async fn fetch(request: Request) -> Result<Response, netkit_fetch::Error> {
    Runtime::global().fetch(request).await
}
