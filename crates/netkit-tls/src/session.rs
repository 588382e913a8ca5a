//! One TLS session as a byte pump: TLS records in, plaintext out; plaintext in,
//! records out.

use std::collections::VecDeque;
use std::io::{BufRead, Read, Write};
use std::sync::Arc;

use rustls::client::danger::ServerCertVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::time_provider::TimeProvider;
use rustls::{ClientConnection, Connection, ServerConnection};
use rustls_pki_types::{ServerName, UnixTime};

use crate::Error;
use crate::config::{ClientConfig, ServerConfig, server_name};

/// Decrypted plaintext held before `handle_input` stops taking ciphertext and
/// lets the caller read (rustls itself refuses input past its 64 KiB limit).
const PLAINTEXT_AHEAD: usize = 32 * 1024;

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
    conn: Connection,
    events: VecDeque<TlsEvent>,
    handshake_reported: bool,
    peer_closed: bool,
    closed: bool,
    verify: Verify,
    time: Arc<dyn TimeProvider>,
    /// rustls verified the peer during the handshake: no second verification.
    verified_in_handshake: bool,
    authorization: Option<Authorization>,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("peer_closed", &self.peer_closed)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl TlsSession {
    /// A client session to `name` (a DNS name or an IP address; it is the SNI,
    /// except for IP addresses, and the name verified).
    pub fn client(config: &ClientConfig, name: &str) -> Result<Self, Error> {
        let name = server_name(name)?;
        let conn = ClientConnection::new(config.rustls.clone(), name.clone())?;
        Ok(Self::new(
            conn.into(),
            Verify::Server {
                verifier: config.verifier.clone(),
                name,
            },
            config.time.clone(),
            config.verified_in_handshake,
        ))
    }

    /// A server session.
    pub fn server(config: &ServerConfig) -> Result<Self, Error> {
        let conn = ServerConnection::new(config.rustls.clone())?;
        Ok(Self::new(
            conn.into(),
            Verify::Client(config.client_verifier.clone()),
            config.time.clone(),
            config.verified_in_handshake,
        ))
    }

    fn new(
        conn: Connection,
        verify: Verify,
        time: Arc<dyn TimeProvider>,
        verified_in_handshake: bool,
    ) -> Self {
        Self {
            conn,
            events: VecDeque::new(),
            handshake_reported: false,
            peer_closed: false,
            closed: false,
            verify,
            time,
            verified_in_handshake,
            authorization: None,
        }
    }

    /// TLS bytes arrived from the peer. Returns how many were taken: fewer than
    /// `bytes.len()` when unread plaintext has reached rustls's limit (read some,
    /// then hand in the rest). A protocol error is fatal: send what
    /// [`poll_transmit`](Self::poll_transmit) still has (the alert), then close.
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let mut rest = bytes;
        // Not gated on rustls's `wants_read()`: during the handshake it is false
        // while records wait to be sent, but input may still be taken; the only
        // real limit is unread plaintext, which `read_tls` enforces itself.
        while !rest.is_empty() {
            if self.peer_closed {
                // Nothing may follow close_notify: discard it.
                return Ok(bytes.len());
            }
            let n = match self.conn.read_tls(&mut rest) {
                Ok(n) => n,
                // Only "received plaintext buffer full" can fail on a slice:
                // backpressure, not an error.
                Err(_) => break,
            };
            if n == 0 {
                break;
            }
            if self.process()? >= PLAINTEXT_AHEAD {
                // Let the caller read before decrypting more: fewer, larger
                // buffers held, and no trip into rustls's "buffer full" error path.
                break;
            }
        }
        Ok(bytes.len() - rest.len())
    }

    /// Processes what was read; returns the plaintext bytes waiting to be read.
    fn process(&mut self) -> Result<usize, Error> {
        let state = self.conn.process_new_packets()?;
        if !self.handshake_reported && !self.conn.is_handshaking() {
            self.handshake_reported = true;
            self.authorization = Some(self.authorize());
            self.events.push_back(TlsEvent::HandshakeDone);
        }
        if state.peer_has_closed() && !self.peer_closed {
            self.peer_closed = true;
            self.events.push_back(TlsEvent::PeerClosed);
        }
        Ok(state.plaintext_bytes_to_read())
    }

    /// Runs the real verifier on the peer's chain, so that a session with
    /// verification disabled still reports whether the peer would have passed.
    fn authorize(&self) -> Authorization {
        let Some(chain) = self.conn.peer_certificates() else {
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

    /// Calls `f` with the next chunk of received plaintext (a slice of rustls's
    /// buffer: no copy), consumes it, and returns `f`'s result; `None` when no
    /// plaintext is waiting.
    pub fn read_plaintext_with<R>(&mut self, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let mut reader = self.conn.reader();
        let buf = reader.fill_buf().ok()?;
        if buf.is_empty() {
            return None;
        }
        let n = buf.len();
        let r = f(buf);
        reader.consume(n);
        Some(r)
    }

    /// Whether received plaintext is waiting to be read.
    pub fn has_plaintext(&mut self) -> bool {
        self.conn
            .process_new_packets()
            .is_ok_and(|s| s.plaintext_bytes_to_read() > 0)
    }

    /// Copies received plaintext into `buf`; returns the count (0 when none waits).
    pub fn read_plaintext(&mut self, buf: &mut [u8]) -> usize {
        self.conn.reader().read(buf).unwrap_or(0)
    }

    /// The next event. Poll after every [`handle_input`](Self::handle_input).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<TlsEvent> {
        self.events.pop_front()
    }

    /// Queues plaintext for the peer; returns how much was accepted (rustls
    /// buffers up to its limit, also before the handshake is done).
    pub fn write(&mut self, plaintext: &[u8]) -> Result<usize, Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        Ok(self.conn.writer().write(plaintext).unwrap_or(0))
    }

    /// Whether there are TLS bytes to send.
    #[must_use]
    pub fn wants_transmit(&self) -> bool {
        self.conn.wants_write()
    }

    /// Appends the TLS bytes to send to `out`; returns how many were appended.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> usize {
        let before = out.len();
        while self.conn.wants_write() {
            match self.conn.write_tls(out) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        out.len() - before
    }

    /// Sends `close_notify` (via [`poll_transmit`](Self::poll_transmit)); no more
    /// plaintext may be written. Idempotent.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.conn.send_close_notify();
        }
    }

    /// The transport reached EOF. `Ok` for a clean close (after the peer's
    /// `close_notify`); [`Error::Truncated`] or [`Error::HandshakeEof`] otherwise.
    pub fn handle_eof(&mut self) -> Result<(), Error> {
        if self.peer_closed {
            Ok(())
        } else if self.conn.is_handshaking() {
            Err(Error::HandshakeEof)
        } else {
            Err(Error::Truncated)
        }
    }

    /// Whether the handshake is still in progress.
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the peer sent `close_notify`.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The negotiated protocol version (`TLSv1_3`...).
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The SNI name a client sent (server sessions).
    pub fn sni(&self) -> Option<&str> {
        match &self.conn {
            Connection::Server(s) => s.server_name(),
            Connection::Client(_) => None,
        }
    }

    /// How the peer's certificate verified; `None` until the handshake is done.
    pub fn authorization(&self) -> Option<&Authorization> {
        self.authorization.as_ref()
    }

    /// The peer's certificate chain, leaf first.
    pub fn peer_certificates(&self) -> Option<&[rustls_pki_types::CertificateDer<'static>]> {
        self.conn.peer_certificates()
    }

    /// The underlying rustls connection, for what this wrapper does not expose.
    pub fn rustls(&self) -> &Connection {
        &self.conn
    }
}
