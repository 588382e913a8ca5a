//! One TLS session as a byte pump: TLS records in, plaintext out; plaintext in,
//! records out.
//!
//! Built on rustls's unbuffered API: the session owns its buffers (ciphertext
//! received, TLS bytes to send) and frees them once they are empty, so an idle
//! session holds rustls's connection state and nothing else. A record is
//! decrypted only when the reader is ready for it, one record ahead at most.

use std::collections::VecDeque;
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::client::danger::ServerCertVerifier;
use rustls::server::UnbufferedServerConnection;
use rustls::server::danger::ClientCertVerifier;
use rustls::time_provider::TimeProvider;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::{CommonState, HandshakeKind};
use rustls_pki_types::{ServerName, UnixTime};

use crate::Error;
use crate::config::{ClientConfig, ServerConfig, server_name};
use crate::hello;

/// Ciphertext held while plaintext waits for the reader; past it,
/// [`TlsSession::wants_input`] turns false (backpressure) until the reader
/// reads. While rustls needs more bytes to go on, input is always wanted:
/// rustls itself bounds a handshake message (64 KiB) and a record (16 KiB).
const INPUT_AHEAD: usize = 64 * 1024;

/// A TLS record header: type, version, length.
const RECORD_HEADER: usize = 5;

/// Plaintext accepted before the handshake is done (sent when it is).
const EARLY_LIMIT: usize = 64 * 1024;

/// Room reserved per TLS record on top of its plaintext (header, content type,
/// AEAD tag, TLS 1.2 explicit nonce); rustls asks for more if this is short.
const RECORD_OVERHEAD: usize = 64;
const MAX_FRAGMENT: usize = 16 * 1024;

/// Something the application should hear about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TlsEvent {
    /// The handshake finished; plaintext may flow both ways.
    HandshakeDone,
    /// The peer sent `close_notify`: it will send no more plaintext.
    PeerClosed,
}

/// How the peer's certificate verified (Bun's `socket.authorized` and
/// `authorizationError`), known once the handshake is done.
#[derive(Debug, Clone, PartialEq)]
pub enum Authorization {
    /// The chain verified against the trusted roots, for the expected name.
    Authorized,
    /// The peer sent no certificate (a server that did not require one).
    NoCertificate,
    /// The chain did not verify; the session went on because verification was
    /// disabled (`reject_unauthorized: false`).
    Unauthorized(Error),
}

enum Verify {
    Server {
        verifier: Arc<dyn ServerCertVerifier>,
        name: ServerName<'static>,
    },
    Client(Option<Arc<dyn ClientCertVerifier>>),
}

enum Conn {
    Client(UnbufferedClientConnection),
    Server(UnbufferedServerConnection),
}

/// Where rustls's state machine stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Handled a state that needs nothing from us: step again.
    Again,
    /// A decrypted record waits for the reader.
    Record,
    /// Handshake done, nothing pending: application data may be written.
    Idle,
    /// More ciphertext is needed (during the handshake).
    Blocked,
    /// Both sides sent close_notify.
    Closed,
}

/// TLS bytes to send: `buf[head..end]`; `buf[end..]` is initialized spare room,
/// so encoding into it does not zero memory again.
#[derive(Default)]
struct Outgoing {
    buf: Vec<u8>,
    head: usize,
    end: usize,
}

impl Outgoing {
    fn pending(&self) -> &[u8] {
        &self.buf[self.head..self.end]
    }

    fn len(&self) -> usize {
        self.end - self.head
    }

    /// Spare room of at least `want` bytes.
    fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.buf.len() < self.end + want {
            self.buf.resize(self.end + want, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Appends what `f` writes into spare room; `f` reports the size it needs
    /// when the room is short, and is then called once more with that much.
    fn append<E>(
        &mut self,
        guess: usize,
        mut f: impl FnMut(&mut [u8]) -> Result<usize, E>,
        needed: impl Fn(&E) -> Option<usize>,
    ) -> Result<usize, E> {
        let n = match f(self.spare(guess)) {
            Ok(n) => n,
            Err(e) => match needed(&e) {
                Some(size) => f(self.spare(size))?,
                None => return Err(e),
            },
        };
        self.end += n;
        Ok(n)
    }

    fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.end);
        if self.head == self.end {
            // Nothing left to send: an idle session holds no buffer.
            *self = Self::default();
        }
    }
}

/// Everything a step of rustls's state machine may touch besides the connection
/// and its input.
#[derive(Default)]
struct Io {
    out: Outgoing,
    /// Plaintext written before the handshake was done.
    early: Vec<u8>,
    close_wanted: bool,
    notify_queued: bool,
    peer_closed: bool,
}

/// Takes each decrypted record; returns whether it wants another one.
type Sink<'a> = dyn FnMut(&[u8]) -> bool + 'a;

/// What one call wants done at the states that allow it.
struct Job<'a> {
    /// Takes each decrypted record; returns whether it wants another one.
    sink: Option<&'a mut Sink<'a>>,
    /// Plaintext to encrypt once application data may be written.
    plain: &'a [u8],
    wrote: bool,
}

impl Job<'_> {
    fn none() -> Job<'static> {
        Job {
            sink: None,
            plain: &[],
            wrote: false,
        }
    }
}

fn insufficient_encode(e: &EncodeError) -> Option<usize> {
    match e {
        EncodeError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

fn insufficient_encrypt(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

/// Room for `len` bytes of plaintext once encrypted.
fn sealed_size(len: usize) -> usize {
    len + (len / MAX_FRAGMENT + 1) * RECORD_OVERHEAD
}

/// Handles the state one `process_tls_records` call returned. Returns the bytes
/// to discard from the input and where the machine stopped.
fn step<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    io: &mut Io,
    job: &mut Job<'_>,
) -> (usize, Result<Next, rustls::Error>) {
    let UnbufferedStatus { mut discard, state } = status;
    let state = match state {
        Ok(state) => state,
        Err(e) => return (discard, Err(e)),
    };
    let next = match state {
        ConnectionState::ReadTraffic(mut read) => {
            let Some(sink) = job.sink.as_deref_mut() else {
                return (discard, Ok(Next::Record));
            };
            match read.next_record() {
                Some(Ok(record)) => {
                    discard += record.discard;
                    if !sink(record.payload) {
                        job.sink = None;
                    }
                    Next::Again
                }
                Some(Err(e)) => return (discard, Err(e)),
                None => Next::Again,
            }
        }
        ConnectionState::EncodeTlsData(mut enc) => {
            // rustls hands over whole records; unreachable `AlreadyEncoded` aside,
            // the only failure is a short buffer, which `append` grows.
            if io
                .out
                .append(2048, |b| enc.encode(b), insufficient_encode)
                .is_err()
            {
                return (discard, Err(rustls::Error::EncryptError));
            }
            Next::Again
        }
        ConnectionState::TransmitTlsData(tx) => {
            // Encoded bytes sit in `io.out` until the transport takes them; rustls
            // only needs to know they will not be sent twice.
            tx.done();
            Next::Again
        }
        ConnectionState::WriteTraffic(mut w) => {
            let mut encrypt = |io: &mut Io, plain: &[u8]| {
                io.out
                    .append(
                        sealed_size(plain.len()),
                        |b| w.encrypt(plain, b),
                        insufficient_encrypt,
                    )
                    .map_err(|_| rustls::Error::EncryptError)
            };
            if !io.early.is_empty() {
                let early = std::mem::take(&mut io.early);
                if let Err(e) = encrypt(io, &early) {
                    return (discard, Err(e));
                }
            }
            if !job.wrote && !job.plain.is_empty() && !io.notify_queued {
                if let Err(e) = encrypt(io, job.plain) {
                    return (discard, Err(e));
                }
                job.wrote = true;
            }
            if io.close_wanted && !io.notify_queued {
                io.notify_queued = true;
                if io
                    .out
                    .append(64, |b| w.queue_close_notify(b), insufficient_encrypt)
                    .is_err()
                {
                    return (discard, Err(rustls::Error::EncryptError));
                }
            }
            Next::Idle
        }
        ConnectionState::PeerClosed => {
            io.peer_closed = true;
            Next::Again
        }
        ConnectionState::Closed => Next::Closed,
        // BlockedHandshake; early data is never enabled, so `ReadEarlyData` cannot
        // occur, and the enum is non-exhaustive.
        _ => Next::Blocked,
    };
    (discard, Ok(next))
}

/// A TLS session, client or server, driven by hand.
///
/// The loop that drives it: feed TLS bytes from the network to
/// [`handle_input`](Self::handle_input) (it may take fewer when plaintext is not
/// being read: that is backpressure), read plaintext with
/// [`read_plaintext`](Self::read_plaintext), drain [`poll_event`](Self::poll_event),
/// write plaintext with [`write`](Self::write), and send what
/// [`poll_transmit`](Self::poll_transmit) produces. Report the transport's EOF with
/// [`handle_eof`](Self::handle_eof) to tell a clean close from a truncation.
pub struct TlsSession {
    conn: Conn,
    /// Ciphertext rustls has not consumed yet (an incomplete record, or records
    /// behind one the reader has not read). Freed when empty.
    incoming: Vec<u8>,
    /// Bytes at the front of `incoming` rustls already consumed: moved out only
    /// when more input arrives, not once per record.
    in_head: usize,
    /// Bytes of `incoming[in_head..]` shown to rustls so far, always whole
    /// records. Records are shown one at a time, as the reader asks for them,
    /// so a write never makes rustls decrypt (and possibly fail on) a record the
    /// reader has not asked for: plaintext before a bad record is delivered and
    /// answered before the error.
    fed: usize,
    /// An incomplete record follows `fed` and is shown too (rustls checks its
    /// header, then waits for the rest). Cleared when more input arrives.
    tail_shown: bool,
    io: Io,
    /// Where the state machine stopped last.
    next: Next,
    /// The part of a record the reader's buffer could not take.
    leftover: Vec<u8>,
    leftover_head: usize,
    events: VecDeque<TlsEvent>,
    handshake_reported: bool,
    peer_close_reported: bool,
    failed: Option<Error>,
    verify: Verify,
    time: Arc<dyn TimeProvider>,
    /// rustls verified the peer during the handshake: no second verification.
    verified_in_handshake: bool,
    authorization: Option<Authorization>,
    /// Server sessions: the SNI the client sent, once its ClientHello was seen.
    sni: Option<String>,
    sni_checked: bool,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.is_handshaking())
            .field("peer_closed", &self.io.peer_closed)
            .field("closed", &self.io.close_wanted)
            .field("incoming", &(self.incoming.len() - self.in_head))
            .field("outgoing", &self.io.out.len())
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    /// A client session to `name` (a DNS name or an IP address; it is the SNI,
    /// except for IP addresses, and the name verified).
    pub fn client(config: &ClientConfig, name: &str) -> Result<Self, Error> {
        let name = server_name(name)?;
        let conn = UnbufferedClientConnection::new(config.rustls.clone(), name.clone())?;
        let mut s = Self::new(
            Conn::Client(conn),
            Verify::Server {
                verifier: config.verifier.clone(),
                name,
            },
            config.time.clone(),
            config.verified_in_handshake,
        );
        // The ClientHello goes out at once.
        s.advance(&mut Job::none(), false)?;
        Ok(s)
    }

    /// A server session.
    pub fn server(config: &ServerConfig) -> Result<Self, Error> {
        let conn = UnbufferedServerConnection::new(config.rustls.clone())?;
        Ok(Self::new(
            Conn::Server(conn),
            Verify::Client(config.client_verifier.clone()),
            config.time.clone(),
            config.verified_in_handshake,
        ))
    }

    fn new(
        conn: Conn,
        verify: Verify,
        time: Arc<dyn TimeProvider>,
        verified_in_handshake: bool,
    ) -> Self {
        let is_client = matches!(conn, Conn::Client(_));
        Self {
            conn,
            incoming: Vec::new(),
            in_head: 0,
            fed: 0,
            tail_shown: false,
            io: Io::default(),
            next: Next::Blocked,
            leftover: Vec::new(),
            leftover_head: 0,
            events: VecDeque::new(),
            handshake_reported: false,
            peer_close_reported: false,
            failed: None,
            verify,
            time,
            verified_in_handshake,
            authorization: None,
            sni: None,
            sni_checked: is_client,
        }
    }

    fn common(&self) -> &CommonState {
        match &self.conn {
            Conn::Client(c) => c,
            Conn::Server(s) => s,
        }
    }

    /// One call into rustls on the input shown to it so far, with its discard
    /// applied.
    fn process_once(&mut self, job: &mut Job<'_>) -> Result<Next, rustls::Error> {
        let end = if self.tail_shown {
            self.incoming.len()
        } else {
            self.in_head + self.fed
        };
        let view = &mut self.incoming[self.in_head..end];
        let (discard, next) = match &mut self.conn {
            Conn::Client(c) => step(c.process_tls_records(view), &mut self.io, job),
            Conn::Server(s) => step(s.process_tls_records(view), &mut self.io, job),
        };
        self.discard(discard);
        next
    }

    fn discard(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.in_head += n;
        self.fed = self.fed.saturating_sub(n);
        if self.in_head >= self.incoming.len() {
            self.incoming = Vec::new();
            self.in_head = 0;
            self.fed = 0;
            self.tail_shown = false;
        }
    }

    /// Ciphertext received and not yet consumed by rustls.
    fn held(&self) -> usize {
        self.incoming.len() - self.in_head
    }

    /// The length of the complete record at the front of `bytes`, if there is one.
    fn whole_record(bytes: &[u8]) -> Option<usize> {
        let header = bytes.get(..RECORD_HEADER)?;
        let len = RECORD_HEADER + usize::from(u16::from_be_bytes([header[3], header[4]]));
        (len <= bytes.len()).then_some(len)
    }

    /// Shows rustls the next record (or, when the next one is incomplete, the
    /// rest of the input, so a bad header fails at once). Returns whether there
    /// was anything new to show.
    fn feed_record(&mut self) -> bool {
        let unseen = &self.incoming[self.in_head + self.fed..];
        if let Some(len) = Self::whole_record(unseen) {
            self.fed += len;
            self.tail_shown = false;
            true
        } else if !unseen.is_empty() && !self.tail_shown {
            self.tail_shown = true;
            true
        } else {
            false
        }
    }

    /// Whether a complete record waits that rustls has not been shown.
    fn has_unseen_record(&self) -> bool {
        Self::whole_record(&self.incoming[self.in_head + self.fed..]).is_some()
    }

    /// Steps rustls until it needs something from outside (input, a reader, or
    /// nothing at all), doing `job` on the way; reports events. With `feed`,
    /// records not yet shown to rustls are shown one by one while it can take
    /// them (never past a decrypted record waiting for the reader).
    fn advance(&mut self, job: &mut Job<'_>, feed: bool) -> Result<Next, Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let next = loop {
            match self.process_once(job) {
                Ok(Next::Again) => continue,
                Ok(Next::Blocked | Next::Idle) if feed && self.feed_record() => continue,
                Ok(next) => break next,
                Err(e) => return Err(self.fail(e)),
            }
        };
        self.next = next;
        if !self.handshake_reported && !self.common().is_handshaking() {
            self.handshake_reported = true;
            self.authorization = Some(self.authorize());
            self.events.push_back(TlsEvent::HandshakeDone);
        }
        if self.io.peer_closed && !self.peer_close_reported {
            self.peer_close_reported = true;
            self.events.push_back(TlsEvent::PeerClosed);
        }
        Ok(next)
    }

    /// Records a fatal error and queues the alert rustls prepared for it.
    fn fail(&mut self, e: rustls::Error) -> Error {
        // Only while rustls has records queued: it hands those out (as
        // `EncodeTlsData`, which `step` encodes) before it looks at the input
        // again, which would repeat the error.
        for _ in 0..8 {
            if !self.common().wants_write() {
                break;
            }
            if !matches!(self.process_once(&mut Job::none()), Ok(Next::Again)) {
                break;
            }
        }
        self.incoming = Vec::new();
        self.in_head = 0;
        self.fed = 0;
        self.tail_shown = false;
        self.next = Next::Closed;
        let err = Error::Protocol(e);
        self.failed = Some(err.clone());
        err
    }

    /// Whether more input is useful now: always while rustls needs more to go
    /// on, and up to 64 KiB ahead while plaintext waits for the reader. The
    /// caller stops reading from the transport while this is false
    /// (backpressure); [`handle_input`](Self::handle_input) still takes what it
    /// is given.
    #[must_use]
    pub fn wants_input(&self) -> bool {
        self.failed.is_none()
            && !self.io.peer_closed
            && (!self.has_plaintext() || self.held() < INPUT_AHEAD)
    }

    /// TLS bytes arrived from the peer. All of them are taken (the layer
    /// contract: what cannot be processed yet is kept here, and
    /// [`wants_input`](Self::wants_input) tells the caller when to stop reading).
    /// Handshake records are processed at once; application records are
    /// decrypted as the reader asks for them. A protocol error is fatal: send
    /// what [`poll_transmit`](Self::poll_transmit) still has (the alert), then
    /// close.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.io.peer_closed || bytes.is_empty() {
            // Nothing may follow close_notify: discard it.
            return Ok(());
        }
        if self.in_head > 0 {
            self.incoming.drain(..self.in_head);
            self.in_head = 0;
        }
        self.incoming.extend_from_slice(bytes);
        // The incomplete record shown so far may be whole now: show records
        // again one at a time.
        self.tail_shown = false;
        if !self.sni_checked {
            match hello::sni(&self.incoming) {
                hello::Sni::Incomplete => {}
                hello::Sni::Found(name) => {
                    self.sni = Some(name);
                    self.sni_checked = true;
                }
                hello::Sni::None => self.sni_checked = true,
            }
        }
        if self.next != Next::Record {
            self.advance(&mut Job::none(), true)?;
        }
        Ok(())
    }

    /// Runs the real verifier on the peer's chain, so that a session with
    /// verification disabled still reports whether the peer would have passed.
    fn authorize(&self) -> Authorization {
        let Some(chain) = self.common().peer_certificates() else {
            return Authorization::NoCertificate;
        };
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Authorization::NoCertificate;
        };
        if self.verified_in_handshake {
            return Authorization::Authorized;
        }
        let now = self
            .time
            .current_time()
            .unwrap_or_else(|| UnixTime::since_unix_epoch(std::time::Duration::ZERO));
        let result = match &self.verify {
            Verify::Server { verifier, name } => verifier
                .verify_server_cert(leaf, intermediates, name, &[], now)
                .map(|_| ()),
            Verify::Client(Some(verifier)) => verifier
                .verify_client_cert(leaf, intermediates, now)
                .map(|_| ()),
            Verify::Client(None) => return Authorization::NoCertificate,
        };
        match result {
            Ok(()) => Authorization::Authorized,
            Err(e) => Authorization::Unauthorized(Error::Protocol(e)),
        }
    }

    /// Calls `f` with the next chunk of received plaintext (one TLS record's
    /// worth at most) and returns `f`'s result; `None` when no plaintext waits.
    /// The chunk is consumed. A failure met while decrypting is kept and
    /// reported by [`error`](Self::error) and the next call that can fail.
    pub fn read_plaintext_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if self.leftover_head < self.leftover.len() {
            let r = f(&self.leftover[self.leftover_head..]);
            self.leftover = Vec::new();
            self.leftover_head = 0;
            return Some(r);
        }
        if !self.seek_record() {
            return None;
        }
        let mut f = Some(f);
        let mut out = None;
        let mut sink = |p: &[u8]| {
            if let Some(f) = f.take() {
                out = Some(f(p));
            }
            false
        };
        let mut job = Job {
            sink: Some(&mut sink),
            plain: &[],
            wrote: false,
        };
        // An error here is kept and reported by the next call that can fail.
        let _ = self.advance(&mut job, false);
        out
    }

    /// Shows rustls records until one holds plaintext for the reader (or none
    /// is left); returns whether one does.
    fn seek_record(&mut self) -> bool {
        while self.next != Next::Record && self.failed.is_none() && self.has_unseen_record() {
            if self.advance(&mut Job::none(), true).is_err() {
                return false;
            }
        }
        self.next == Next::Record
    }

    /// Whether received plaintext is waiting to be read (or a record that may
    /// hold some, not yet decrypted).
    #[must_use]
    pub fn has_plaintext(&self) -> bool {
        self.leftover_head < self.leftover.len()
            || self.next == Next::Record
            || (self.failed.is_none() && self.has_unseen_record())
    }

    /// Copies received plaintext into `buf`: at most one TLS record's worth, so
    /// the application answers each record before the next one is decrypted
    /// (and possibly fails). Returns the count (0 when none waits). A record
    /// that does not fit is split: its rest is returned by the next call. A
    /// failure met while decrypting is kept and reported by
    /// [`error`](Self::error) and the next call that can fail.
    #[must_use]
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> usize {
        if buf.is_empty() {
            return 0;
        }
        if self.leftover_head < self.leftover.len() {
            let rest = &self.leftover[self.leftover_head..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            self.leftover_head += n;
            if self.leftover_head == self.leftover.len() {
                self.leftover = Vec::new();
                self.leftover_head = 0;
            }
            return n;
        }
        if !self.seek_record() {
            return 0;
        }
        let mut filled = 0;
        let mut leftover = std::mem::take(&mut self.leftover);
        let mut sink = |p: &[u8]| {
            let n = p.len().min(buf.len());
            buf[..n].copy_from_slice(&p[..n]);
            filled = n;
            leftover.extend_from_slice(&p[n..]);
            false
        };
        let mut job = Job {
            sink: Some(&mut sink),
            plain: &[],
            wrote: false,
        };
        // An error here is kept and reported by the next call that can fail.
        let _ = self.advance(&mut job, false);
        self.leftover = leftover;
        filled
    }

    /// The next event. Poll after every [`handle_input`](Self::handle_input).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<TlsEvent> {
        self.events.pop_front()
    }

    /// Encrypts plaintext for the peer; returns how much was accepted: all of it
    /// once the handshake is done, up to 64 KiB before (sent when it is done).
    pub fn write(&mut self, plaintext: &[u8]) -> Result<usize, Error> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.io.close_wanted {
            return Err(Error::Closed);
        }
        if plaintext.is_empty() {
            return Ok(0);
        }
        if !self.handshake_reported {
            let n = plaintext
                .len()
                .min(EARLY_LIMIT.saturating_sub(self.io.early.len()));
            self.io.early.extend_from_slice(&plaintext[..n]);
            return Ok(n);
        }
        if self.step_aside(plaintext)? {
            Ok(plaintext.len())
        } else {
            Err(Error::Closed)
        }
    }

    /// Steps rustls to the state that writes, moving any decrypted record that
    /// stands in the way aside for the reader (order is kept: the reader takes
    /// what was moved aside first); encrypts `plain` there. Returns whether
    /// `plain` was encrypted.
    fn step_aside(&mut self, plain: &[u8]) -> Result<bool, Error> {
        let mut leftover = std::mem::take(&mut self.leftover);
        let mut sink = |p: &[u8]| {
            leftover.extend_from_slice(p);
            true
        };
        let mut job = Job {
            sink: Some(&mut sink),
            plain,
            wrote: false,
        };
        // No new record is shown to rustls: a write never decrypts ahead.
        let r = self.advance(&mut job, false);
        let wrote = job.wrote;
        self.leftover = leftover;
        r.map(|_| wrote)
    }

    /// Whether there are TLS bytes to send.
    #[must_use]
    pub fn wants_transmit(&self) -> bool {
        self.io.out.len() > 0
    }

    /// The TLS bytes to send next, borrowed (the layer contract): send what the
    /// transport takes, then report it with [`handle_sent`](Self::handle_sent).
    /// Empty when there is nothing to send. Poll after every call.
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        self.io.out.pending()
    }

    /// The transport took `n` bytes of [`poll_transmit`](Self::poll_transmit).
    pub fn handle_sent(&mut self, n: usize) {
        self.io.out.consume(n);
    }

    /// Appends everything [`poll_transmit`](Self::poll_transmit) offers to
    /// `out` and marks it sent; returns the count. A convenience for sessions
    /// talking in memory (tests, tunnels built by hand).
    pub fn drain_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let n = self.io.out.len();
        out.extend_from_slice(self.io.out.pending());
        self.io.out.consume(n);
        n
    }

    /// Sends `close_notify` (via [`poll_transmit`](Self::poll_transmit)) once the
    /// handshake is done; no more plaintext may be written. Idempotent.
    pub fn close(&mut self) {
        if !self.io.close_wanted {
            self.io.close_wanted = true;
            if self.handshake_reported {
                // An error is kept and reported by the next call that can fail.
                let _ = self.step_aside(&[]);
            }
        }
    }

    /// The transport reached EOF. `Ok` for a clean close (after the peer's
    /// `close_notify`); [`Error::Truncated`] or [`Error::HandshakeEof`] otherwise.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        if self.io.peer_closed {
            Ok(())
        } else if self.is_handshaking() {
            Err(Error::HandshakeEof)
        } else {
            Err(Error::Truncated)
        }
    }

    /// The fatal error this session failed with, if it did. Calls that can fail
    /// return it; reads report it here.
    #[must_use]
    pub fn error(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// Whether the handshake is still in progress.
    #[must_use]
    pub fn is_handshaking(&self) -> bool {
        self.common().is_handshaking()
    }

    /// Whether the peer sent `close_notify`.
    #[must_use]
    pub fn peer_closed(&self) -> bool {
        self.io.peer_closed
    }

    /// The negotiated ALPN protocol.
    #[must_use]
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.common().alpn_protocol()
    }

    /// The negotiated protocol version (`TLSv1_3`...).
    #[must_use]
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.common().protocol_version()
    }

    /// Whether the handshake was full or resumed; `None` while handshaking.
    #[must_use]
    pub fn handshake_kind(&self) -> Option<HandshakeKind> {
        self.common().handshake_kind()
    }

    /// The SNI name a client sent (server sessions).
    #[must_use]
    pub fn sni(&self) -> Option<&str> {
        self.sni.as_deref()
    }

    /// How the peer's certificate verified; `None` until the handshake is done.
    #[must_use]
    pub fn authorization(&self) -> Option<&Authorization> {
        self.authorization.as_ref()
    }

    /// The peer's certificate chain, leaf first.
    #[must_use]
    pub fn peer_certificates(&self) -> Option<&[rustls_pki_types::CertificateDer<'static>]> {
        self.common().peer_certificates()
    }

    /// rustls's view of the session, for what this wrapper does not expose.
    #[must_use]
    pub fn rustls(&self) -> &CommonState {
        self.common()
    }
}
