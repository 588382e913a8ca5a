//! `fetch` on the blocking loop: netkit-fetch's [`Client`] as a loop source.
//!
//! The client's connections are a client group of this loop (so connects run
//! the connect plan and the loop's resolver, and Unix sockets come free);
//! its handler feeds transport bytes and events to the machine, and the
//! source carries out what the machine asks after each readiness event,
//! timer or soon turn. No HTTP decision is made here.

use std::any::Any;
use std::collections::HashMap;
use std::io;
use std::time::Instant;

use netkit_fetch::{
    Action, BODY_PIECE, Body, Client, ClientConfig, ConnId, Delivery, Event, ReqId, Request, Target,
};

use crate::event_loop::SourceId;
use crate::group::Group;
use crate::source::{Cx, Readiness, Source};
use crate::{ConnectOptions, Error, EventLoop, Handler, Socket};

/// The timer token of the client's own deadline (the group's tokens are
/// connection slots, attempts have bit 31 set and the listener is MAX).
const DEADLINE: u32 = u32::MAX - 1;

/// A callback that receives a request's events, body bytes lent.
type Sink = Box<dyn FnMut(Delivery<'_>)>;

/// A request body read as it is sent (a file, any reader): the
/// machine's [`Body::Stream`] with what the loop reads it from. It is read
/// on the loop's thread when the connection has room, so a reader should
/// not block long (a file, a cursor; a slow producer belongs on a thread
/// feeding a pipe, or on the smol driver).
pub struct Upload {
    source: UploadSource,
    length: Option<u64>,
    /// Bytes read from `source` so far.
    pos: u64,
}

enum UploadSource {
    File(std::fs::File),
    Reader(Box<dyn io::Read>),
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
    pub fn file(path: impl AsRef<std::path::Path>) -> io::Result<Self> {
        let f = std::fs::File::open(path)?;
        let length = f.metadata()?.len();
        Ok(Self {
            source: UploadSource::File(f),
            length: Some(length),
            pos: 0,
        })
    }

    /// Any reader, sent chunked (or with `Content-Length` when `length`
    /// is given: a reader that ends short or runs long fails the request).
    /// It is read once: a redirect that must resend it fails.
    pub fn reader(reader: impl io::Read + 'static, length: Option<u64>) -> Self {
        Self {
            source: UploadSource::Reader(Box::new(reader)),
            length,
            pos: 0,
        }
    }

    /// The machine's view of it.
    fn body(&self) -> Body {
        Body::Stream {
            length: self.length,
            rewindable: matches!(self.source, UploadSource::File(_)),
        }
    }

    /// Back to the first byte (a redirect or retry of a file).
    fn rewind(&mut self) -> io::Result<()> {
        if self.pos > 0 {
            if let UploadSource::File(f) = &mut self.source {
                io::Seek::seek(f, io::SeekFrom::Start(0))?;
            } else {
                return Err(io::Error::other("a reader cannot be read again"));
            }
            self.pos = 0;
        }
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = loop {
            let r = match &mut self.source {
                UploadSource::File(f) => io::Read::read(f, buf),
                UploadSource::Reader(r) => r.read(buf),
            };
            match r {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads from `upload` into `client` while the machine has room for
/// `req`'s body. The upload is kept until the request ends, even when the
/// machine stops wanting it: a redirect may want it again, from its start.
fn pump_upload(
    client: &mut Client,
    now: Instant,
    req: ReqId,
    upload: &mut Upload,
    buf: &mut Vec<u8>,
) {
    if client.body_offset(req) == 0 {
        if let Err(e) = upload.rewind() {
            client.fail_body(now, req, &format!("rewind: {e}"));
            return;
        }
    }
    loop {
        let room = client.body_room(req);
        if room == 0 {
            return;
        }
        buf.resize(room.min(BODY_PIECE), 0);
        let read = upload.read(buf).map_err(|e| format!("read: {e}"));
        if !client.body_read(now, req, read.map(|n| &buf[..n])) {
            return;
        }
    }
}

/// Hands one delivery to its request's sink (the last event drops the sink
/// and the upload); `BodyWanted`, which no sink sees, is noted in `wanted`.
fn hand_out(
    sinks: &mut HashMap<ReqId, Sink>,
    uploads: &mut HashMap<ReqId, Upload>,
    wanted: &mut Vec<ReqId>,
    d: Delivery<'_>,
) {
    let (req, last) = match &d {
        Delivery::Event(Event::BodyWanted { req }) => {
            wanted.push(*req);
            return;
        }
        Delivery::Data { req, .. }
        | Delivery::Event(
            Event::Head { req, .. } | Event::Data { req, .. } | Event::Trace { req, .. },
        ) => (*req, false),
        Delivery::Event(Event::End { req, .. } | Event::Failed { req, .. }) => (*req, true),
    };
    if let Some(sink) = sinks.get_mut(&req) {
        sink(d);
    }
    if last {
        sinks.remove(&req);
        uploads.remove(&req);
    }
}

/// The handler of the client's connections: every callback goes to the
/// machine.
pub(crate) struct FetchHandler {
    client: Client,
    slots: HashMap<ConnId, (u32, u64)>,
    sinks: HashMap<ReqId, Sink>,
    uploads: HashMap<ReqId, Upload>,
    /// Requests whose upload the machine wants read (`BodyWanted` met while
    /// the machine was busy with input).
    wanted: Vec<ReqId>,
    /// Connections whose socket drained: their leftover bytes go out.
    drained: Vec<ConnId>,
    /// The buffer uploads are read into.
    scratch: Vec<u8>,
}

impl Handler for FetchHandler {
    type Data = ConnId;

    fn open(&mut self, s: &mut Socket<'_, ConnId>) {
        let peer = s.remote_addr().map(|a| a.to_string());
        self.client
            .handle_connected(s.now(), *s.data(), peer.as_deref());
    }

    fn data(&mut self, s: &mut Socket<'_, ConnId>, bytes: &[u8]) {
        let Self {
            client,
            sinks,
            uploads,
            wanted,
            ..
        } = self;
        // Body bytes go to their sink straight from the read buffer.
        client.handle_input_lent(s.now(), *s.data(), bytes, &mut |d| {
            hand_out(sinks, uploads, wanted, d);
        });
    }

    fn drain(&mut self, s: &mut Socket<'_, ConnId>) {
        self.drained.push(*s.data());
    }

    fn end(&mut self, s: &mut Socket<'_, ConnId>) {
        self.client.handle_eof(s.now(), *s.data());
    }

    fn close(&mut self, s: &mut Socket<'_, ConnId>, error: Option<&Error>) {
        let id = *s.data();
        self.slots.remove(&id);
        match error {
            Some(e) => self
                .client
                .handle_error(s.now(), id, netkit_fetch::Error::from(e)),
            None => self.client.handle_eof(s.now(), id),
        }
    }

    fn connect_error(&mut self, s: &mut Socket<'_, ConnId>, error: &Error) {
        let id = *s.data();
        self.slots.remove(&id);
        self.client
            .handle_error(s.now(), id, netkit_fetch::Error::from(error));
    }
}

/// The loop source that runs a [`Client`].
pub(crate) struct HttpSource {
    group: Group<FetchHandler>,
    armed: Option<Instant>,
}

impl HttpSource {
    /// Carries out the machine's actions and hands out its events until it
    /// has none (an upload's bytes make more actions), then arms its
    /// deadline.
    fn drive(&mut self, cx: &mut Cx<'_>) {
        while self.actions(cx) {}
        let h = &mut self.group.handler;
        if let Some(at) = h.client.poll_timeout() {
            if self.armed != Some(at) {
                self.armed = Some(at);
                cx.arm(at, DEADLINE);
            }
        }
    }

    /// One round of actions, then the events; `true` if an upload wrote
    /// body bytes (so there are actions again).
    fn actions(&mut self, cx: &mut Cx<'_>) -> bool {
        loop {
            let h = &mut self.group.handler;
            for conn in std::mem::take(&mut h.drained) {
                self.send(cx, conn);
            }
            let Some(action) = self.group.handler.client.poll_action() else {
                break;
            };
            match action {
                Action::Connect { conn, target } => {
                    let opts = match target {
                        Target::Tcp { host, port } => ConnectOptions::new(host, port),
                        Target::Unix { path } => ConnectOptions::unix(path),
                    };
                    let slot = self.group.connect(cx, opts, conn);
                    self.group.handler.slots.insert(conn, slot);
                }
                Action::Send { conn } => self.send(cx, conn),
                Action::Close { conn } => {
                    if let Some((slot, serial)) = self.group.handler.slots.remove(&conn) {
                        if let Some(c) = self.group.conns.get_mut(slot as usize) {
                            if c.serial == serial {
                                c.handle(cx.now).close();
                                self.group.pump(cx, slot);
                            }
                        }
                    }
                }
            }
        }
        let h = &mut self.group.handler;
        while let Some(ev) = h.client.poll_event() {
            hand_out(
                &mut h.sinks,
                &mut h.uploads,
                &mut h.wanted,
                Delivery::Event(ev),
            );
        }
        let mut wrote = false;
        for req in std::mem::take(&mut h.wanted) {
            if let Some(up) = h.uploads.get_mut(&req) {
                wrote = true;
                pump_upload(&mut h.client, cx.now, req, up, &mut h.scratch);
            }
        }
        wrote
    }

    /// Writes what the machine has for `conn` to its socket.
    fn send(&mut self, cx: &mut Cx<'_>, conn: ConnId) {
        let g = &mut self.group;
        let Some(&(slot, serial)) = g.handler.slots.get(&conn) else {
            return;
        };
        let Some(c) = g.conns.get_mut(slot as usize) else {
            return;
        };
        if c.serial != serial {
            return;
        }
        let bytes = g.handler.client.transmit(conn);
        if bytes.is_empty() {
            return;
        }
        let n = c.handle(cx.now).write(bytes).unwrap_or(0);
        g.handler.client.handle_sent(conn, n);
        g.pump(cx, slot);
    }
}

impl Source for HttpSource {
    fn ready(&mut self, cx: &mut Cx<'_>, token: u32, ev: Readiness) {
        self.group.ready(cx, token, ev);
        self.drive(cx);
    }

    fn timer(&mut self, cx: &mut Cx<'_>, token: u32, at: Instant) {
        if token == DEADLINE {
            if self.armed == Some(at) {
                self.armed = None;
                self.group.handler.client.handle_timeout(cx.now);
            }
        } else {
            self.group.timer(cx, token, at);
        }
        self.drive(cx);
    }

    fn soon(&mut self, cx: &mut Cx<'_>, token: u32) {
        self.group.soon(cx, token);
        self.drive(cx);
    }

    fn stop(&mut self, cx: &mut Cx<'_>, force: bool) {
        self.group.stop(cx, force);
    }

    /// The pool lives as long as the loop.
    fn is_done(&self) -> bool {
        false
    }

    /// Requests in flight keep the loop running; idle pooled connections
    /// do not (as in Bun).
    fn keeps_alive(&self) -> bool {
        self.group.handler.client.in_flight() > 0
    }

    fn shutdown(&mut self, cx: &mut Cx<'_>) {
        self.group.shutdown(cx);
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A fetch client on a loop: its pool and requests in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpClient(SourceId);

impl EventLoop {
    /// Adds a fetch client (its pool lives as long as the loop).
    pub fn http_client(&mut self, config: ClientConfig) -> io::Result<HttpClient> {
        let handler = FetchHandler {
            client: Client::new(config),
            slots: HashMap::new(),
            sinks: HashMap::new(),
            uploads: HashMap::new(),
            wanted: Vec::new(),
            drained: Vec::new(),
            scratch: Vec::new(),
        };
        let source = HttpSource {
            group: Group::clients(handler),
            armed: None,
        };
        self.add_source(source, |_, _| Ok(())).map(HttpClient)
    }

    /// Starts a request; `on_event` receives its events on this loop (the
    /// last is `End` or `Failed`). A request that cannot be made fails here.
    pub fn fetch(
        &mut self,
        client: HttpClient,
        request: Request,
        mut on_event: impl FnMut(Event) + 'static,
    ) -> Result<ReqId, netkit_fetch::Error> {
        let sink = move |d: Delivery<'_>| on_event(d.into_event());
        self.start_fetch(client, request, None, Box::new(sink))
    }

    /// [`fetch`](Self::fetch) (with an optional upload, as
    /// [`fetch_upload`](Self::fetch_upload)) whose body bytes are lent to
    /// `on_delivery` straight from the loop's read buffer, never copied: a
    /// sink that writes them on (a file, a socket) saves a copy per byte.
    pub fn fetch_lent(
        &mut self,
        client: HttpClient,
        request: Request,
        upload: Option<Upload>,
        on_delivery: impl FnMut(Delivery<'_>) + 'static,
    ) -> Result<ReqId, netkit_fetch::Error> {
        self.start_fetch(client, request, upload, Box::new(on_delivery))
    }

    /// [`fetch`](Self::fetch) with a body read as it is sent (its
    /// `request.body` is replaced by the upload's).
    pub fn fetch_upload(
        &mut self,
        client: HttpClient,
        request: Request,
        upload: Upload,
        mut on_event: impl FnMut(Event) + 'static,
    ) -> Result<ReqId, netkit_fetch::Error> {
        let sink = move |d: Delivery<'_>| on_event(d.into_event());
        self.start_fetch(client, request, Some(upload), Box::new(sink))
    }

    fn start_fetch(
        &mut self,
        client: HttpClient,
        mut request: Request,
        upload: Option<Upload>,
        on_event: Sink,
    ) -> Result<ReqId, netkit_fetch::Error> {
        match &upload {
            Some(up) => request.body = Some(up.body()),
            None if matches!(request.body, Some(Body::Stream { .. })) => {
                return Err(netkit_fetch::Error::Body(
                    "a streamed body is sent with an Upload (fetch_upload)".into(),
                ));
            }
            None => {}
        }
        self.with_source::<HttpSource, _>(client.0, |s, cx| {
            let h = &mut s.group.handler;
            let req = h.client.request(cx.now, request)?;
            h.sinks.insert(req, on_event);
            if let Some(up) = upload {
                h.uploads.insert(req, up);
            }
            s.drive(cx);
            Ok(req)
        })
        .unwrap_or(Err(netkit_fetch::Error::Cancelled))
    }

    /// Cancels a request: its connection closes unless its exchange is
    /// complete; no further event.
    pub fn cancel_fetch(&mut self, client: HttpClient, req: ReqId) {
        self.with_source::<HttpSource, _>(client.0, |s, cx| {
            s.group.handler.sinks.remove(&req);
            s.group.handler.uploads.remove(&req);
            s.group.handler.client.cancel(cx.now, req);
            s.drive(cx);
        });
    }

    /// Connections the client opened in total, and has open now.
    pub fn http_connections(&mut self, client: HttpClient) -> (u64, usize) {
        self.with_source::<HttpSource, _>(client.0, |s, _| {
            let c = &s.group.handler.client;
            (c.connections_opened(), c.connections())
        })
        .unwrap_or_default()
    }
}

/// A response read whole (see [`fetch`]).
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL that answered (after redirects).
    pub url: netkit_fetch::Url,
    /// Status line and headers as received.
    pub head: netkit_fetch::Head,
    /// The body, decoded.
    pub body: Vec<u8>,
}

impl Fetched {
    /// The status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    /// The body as text (invalid UTF-8 replaced).
    #[must_use]
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (feature `serde`).
    #[cfg(feature = "serde")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, netkit_fetch::Error> {
        serde_json::from_slice(&self.body).map_err(|e| netkit_fetch::Error::Json(e.to_string()))
    }
}

/// Fetches `request` on a loop of its own and returns the whole response:
/// the plain blocking call for scripts. [`open`] streams the body instead;
/// code on a loop uses [`EventLoop::fetch`].
pub fn fetch(config: ClientConfig, request: Request) -> Result<Fetched, netkit_fetch::Error> {
    read_whole(open(config, request)?)
}

/// [`fetch`] with a body read as it is sent.
pub fn fetch_upload(
    config: ClientConfig,
    request: Request,
    upload: Upload,
) -> Result<Fetched, netkit_fetch::Error> {
    read_whole(open_upload(config, request, upload)?)
}

fn read_whole(mut s: Streaming) -> Result<Fetched, netkit_fetch::Error> {
    let mut body = Vec::new();
    io::Read::read_to_end(&mut s, &mut body).map_err(|e| {
        match e.downcast::<netkit_fetch::Error>() {
            Ok(fe) => fe,
            Err(e) => netkit_fetch::Error::Io {
                code: "EIO".into(),
                message: e.to_string(),
            },
        }
    })?;
    Ok(Fetched {
        url: s.url,
        head: s.head,
        body,
    })
}

/// A response whose body is read as it arrives (see [`open`]): a loop of
/// its own runs inside `read`, so a large body never sits in memory whole.
pub struct Streaming {
    lp: EventLoop,
    queue: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<Event>>>,
    url: netkit_fetch::Url,
    head: netkit_fetch::Head,
    buf: Vec<u8>,
    pos: usize,
    done: bool,
}

impl std::fmt::Debug for Streaming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("status", &self.head.status())
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

impl Streaming {
    /// The status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.head.status()
    }

    /// Status line and headers as received.
    #[must_use]
    pub fn head(&self) -> &netkit_fetch::Head {
        &self.head
    }

    /// The URL that answered (after redirects).
    #[must_use]
    pub fn url(&self) -> &netkit_fetch::Url {
        &self.url
    }

    /// The next event of the request, running the loop until there is one.
    fn next_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            if let Some(e) = self.queue.borrow_mut().pop_front() {
                return Ok(Some(e));
            }
            if self.done {
                return Ok(None);
            }
            self.lp.turn(None)?;
        }
    }
}

impl io::Read for Streaming {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.next_event()? {
                Some(Event::Data { data, .. }) => {
                    self.buf = data;
                    self.pos = 0;
                }
                Some(Event::End { .. }) | None => {
                    self.done = true;
                    return Ok(0);
                }
                Some(Event::Failed { error, .. }) => {
                    self.done = true;
                    return Err(io::Error::other(error));
                }
                Some(_) => {}
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Sends `request` on a loop of its own and returns once the response head
/// is in; the body is read from the result (`io::Read`), as it arrives.
pub fn open(config: ClientConfig, request: Request) -> Result<Streaming, netkit_fetch::Error> {
    open_with(config, request, None)
}

/// [`open`] with a body read as it is sent.
pub fn open_upload(
    config: ClientConfig,
    request: Request,
    upload: Upload,
) -> Result<Streaming, netkit_fetch::Error> {
    open_with(config, request, Some(upload))
}

fn open_with(
    config: ClientConfig,
    request: Request,
    upload: Option<Upload>,
) -> Result<Streaming, netkit_fetch::Error> {
    let io = |e: io::Error| netkit_fetch::Error::Io {
        code: "EIO".into(),
        message: e.to_string(),
    };
    let mut lp = EventLoop::new().map_err(io)?;
    let client = lp.http_client(config).map_err(io)?;
    let queue: std::rc::Rc<std::cell::RefCell<std::collections::VecDeque<Event>>> =
        std::rc::Rc::default();
    let q = queue.clone();
    lp.start_fetch(
        client,
        request,
        upload,
        Box::new(move |d: Delivery<'_>| q.borrow_mut().push_back(d.into_event())),
    )?;
    loop {
        let ev = queue.borrow_mut().pop_front();
        match ev {
            Some(Event::Head { response, .. }) => {
                return Ok(Streaming {
                    lp,
                    queue,
                    url: response.url,
                    head: response.head,
                    buf: Vec::new(),
                    pos: 0,
                    done: false,
                });
            }
            Some(Event::Failed { error, .. }) => return Err(error),
            Some(_) => {}
            None => lp.turn(None).map_err(io)?,
        }
    }
}
