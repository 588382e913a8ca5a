//! The decisions of a TLS stream over a byte transport, shared by both drivers'
//! `TlsStream` (blocking `Read + Write`, async `AsyncRead + AsyncWrite`): what
//! to do next during the handshake, what a read returns (plaintext, a clean
//! close, the session's failure, or "read the transport"), and how TLS errors
//! look as `io::Error`s. A driver's stream only moves bytes.

use std::io;

use crate::{Error, TlsSession};

/// Transport bytes a stream reads per call on its transport: one full TLS
/// record with its header and tag.
pub const READ_CHUNK: usize = 16 * 1024 + 256;

/// TLS bytes a stream holds for its transport before a write waits for it to
/// take them; also the most plaintext encrypted per write.
pub const CIPHER_AHEAD: usize = 64 * 1024;

/// What a stream must do next to finish the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum HandshakeStep {
    /// Send [`TlsStreamCore::poll_transmit`] to the transport (our flight goes
    /// out before we wait for the peer's answer to it).
    Send,
    /// Read the transport once and hand the bytes (or the EOF, as an empty
    /// slice) to [`TlsStreamCore::handle_input`].
    Receive,
    /// The handshake is done and our last flight is out: flush the transport.
    Done,
}

/// What a read on the stream returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum ReadStep {
    /// This much plaintext was copied into the caller's buffer.
    Plaintext(usize),
    /// The peer sent `close_notify` and every byte before it was read: `Ok(0)`.
    Closed,
    /// Send what [`TlsStreamCore::poll_transmit`] holds (best effort: a failure
    /// is the writer's to report), then read the transport once into
    /// [`TlsStreamCore::handle_input`], and read again.
    NeedInput,
}

/// A TLS session driven as a stream: the shared core of the drivers'
/// `TlsStream` types.
#[derive(Debug)]
pub struct TlsStreamCore {
    session: TlsSession,
    /// The transport reported EOF.
    eof: bool,
}

impl TlsStreamCore {
    /// A stream over a fresh client or server session.
    #[must_use]
    pub fn new(session: TlsSession) -> Self {
        Self {
            session,
            eof: false,
        }
    }

    /// The next handshake step, or the handshake's failure.
    pub fn handshake_step(&mut self) -> Result<HandshakeStep, Error> {
        // Events are reflected in the session's state, which is what is consulted.
        while self.session.poll_event().is_some() {}
        if let Some(e) = self.session.error() {
            return Err(e.clone());
        }
        if self.session.wants_transmit() {
            Ok(HandshakeStep::Send)
        } else if self.session.is_handshaking() {
            Ok(HandshakeStep::Receive)
        } else {
            Ok(HandshakeStep::Done)
        }
    }

    /// Transport bytes arrived; an empty slice is the transport's EOF, which
    /// fails unless the peer sent `close_notify` (a truncation, or EOF during
    /// the handshake). The session takes every byte (the layer contract).
    pub fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        if bytes.is_empty() {
            self.eof = true;
            return self.session.handle_eof();
        }
        self.session.handle_input(bytes)
    }

    /// Whether the transport reported EOF.
    #[must_use]
    pub fn transport_eof(&self) -> bool {
        self.eof
    }

    /// Reads plaintext into `buf`: what the session holds, else the session's
    /// failure, else a clean close, else a request for transport input.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<ReadStep, Error> {
        if buf.is_empty() {
            return Ok(ReadStep::Plaintext(0));
        }
        let n = self.session.read_plaintext(buf);
        while self.session.poll_event().is_some() {}
        if n > 0 {
            return Ok(ReadStep::Plaintext(n));
        }
        if let Some(e) = self.session.error() {
            return Err(e.clone());
        }
        if self.session.peer_closed() {
            return Ok(ReadStep::Closed);
        }
        if self.eof {
            // EOF was reported and held no close_notify: the session's verdict.
            self.session.handle_eof()?;
            return Ok(ReadStep::Closed);
        }
        Ok(ReadStep::NeedInput)
    }

    /// Encrypts plaintext: at most as much as fits under [`CIPHER_AHEAD`] of
    /// TLS bytes held for the transport (at least one byte, so a caller that
    /// waits for room always makes progress). Returns the count accepted.
    pub fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let room = CIPHER_AHEAD.saturating_sub(self.session.poll_transmit().len());
        self.session.write(&buf[..buf.len().min(room.max(1))])
    }

    /// Whether a write should wait for the transport to take TLS bytes first.
    #[must_use]
    pub fn write_blocked(&self) -> bool {
        self.session.poll_transmit().len() >= CIPHER_AHEAD
    }

    /// TLS bytes to send, borrowed (the layer contract).
    #[must_use]
    pub fn poll_transmit(&self) -> &[u8] {
        self.session.poll_transmit()
    }

    /// The transport took `n` bytes of [`poll_transmit`](Self::poll_transmit).
    pub fn handle_sent(&mut self, n: usize) {
        self.session.handle_sent(n);
    }

    /// Queues `close_notify`; no more plaintext may be written. Idempotent.
    pub fn close(&mut self) {
        self.session.close();
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> &TlsSession {
        &self.session
    }

    /// The session, taken back.
    #[must_use]
    pub fn into_session(self) -> TlsSession {
        self.session
    }
}

/// A TLS error as an `io::Error` of a kind that says what happened, with the
/// [`Error`] inside (`downcast` it to act on it): a truncation or an EOF during
/// the handshake is `UnexpectedEof`, a write after close `BrokenPipe`, anything
/// else `InvalidData`.
#[must_use]
pub fn io_error(e: Error) -> io::Error {
    let kind = match e {
        Error::Truncated | Error::HandshakeEof => io::ErrorKind::UnexpectedEof,
        Error::Closed => io::ErrorKind::BrokenPipe,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

/// The TLS error inside an `io::Error` made by [`io_error`] (a lower TLS layer
/// of a tunnel, say), if there is one.
#[must_use]
pub fn tls_error_of(e: &io::Error) -> Option<&Error> {
    e.get_ref()?.downcast_ref::<Error>()
}
