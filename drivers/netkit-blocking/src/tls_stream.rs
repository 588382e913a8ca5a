//! A blocking TLS stream over any `Read + Write` transport, including another
//! [`TlsStream`] (TLS inside TLS, as through a proxy tunnel).
//!
//! The stream only moves bytes: every protocol decision (the handshake, what to
//! send, when a close is clean) is the [`TlsSession`]'s.

use std::io::{self, Read, Write};

use netkit_tls::{Authorization, ClientConfig, ServerConfig, TlsSession};

use crate::Error;

/// Transport bytes read per `read` call on the transport: one full TLS record
/// with its header and tag.
const READ_CHUNK: usize = 16 * 1024 + 256;

/// Plaintext handed to the session per [`TlsStream::write`] call, so one call
/// never holds more than this much ciphertext.
const WRITE_CHUNK: usize = 64 * 1024;

/// A TLS connection as a blocking `Read + Write` stream over a transport `S`:
/// a `TcpStream`, a Unix socket, or another `TlsStream` (a tunnel).
///
/// The constructors run the handshake. [`read`](Read::read) returns `Ok(0)`
/// once the peer sent `close_notify` and every byte before it was read; a
/// transport EOF without it is an [`io::ErrorKind::UnexpectedEof`] error carrying
/// [`netkit_tls::Error::Truncated`]. [`shutdown`](Self::shutdown) sends our
/// `close_notify`. TLS failures are `io::Error`s whose inner error is the
/// [`netkit_tls::Error`] (`downcast` it to act on it).
///
/// Timeouts are the transport's (`TcpStream::set_read_timeout`); a read or write
/// that times out (or meets `WouldBlock`) can be retried, while a handshake that
/// times out fails: the constructors expect a blocking transport.
///
/// # Examples
///
/// TLS inside TLS: a tunnel to a proxy, then a session to the origin through it.
///
/// ```no_run
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use netkit_blocking::TlsStream;
///
/// let config = netkit_tls::client_config(&netkit_tls::ClientOptions::default())?;
/// let tcp = TcpStream::connect("proxy.example:443")?;
/// let tunnel = TlsStream::connect(&config, "proxy.example", tcp)?;
/// let mut origin = TlsStream::connect(&config, "origin.example", tunnel)?;
/// origin.write_all(b"GET / HTTP/1.1\r\nHost: origin.example\r\n\r\n")?;
/// let mut reply = Vec::new();
/// origin.read_to_end(&mut reply)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TlsStream<S: Read + Write> {
    transport: S,
    session: TlsSession,
    /// Transport bytes the session did not take yet (fed again before reading
    /// more). Empty, with no allocation, in the steady state.
    pending_in: Vec<u8>,
    /// The transport reported EOF.
    eof: bool,
}

/// A TLS error as an `io::Error` of a kind that says what happened, with the
/// [`netkit_tls::Error`] inside.
fn tls_io(e: netkit_tls::Error) -> io::Error {
    let kind = match e {
        netkit_tls::Error::Truncated | netkit_tls::Error::HandshakeEof => {
            io::ErrorKind::UnexpectedEof
        }
        netkit_tls::Error::Closed => io::ErrorKind::BrokenPipe,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

/// A transport failure during the handshake as the driver's error: a TLS error
/// from a lower TLS layer keeps its words, an OS error its code.
fn handshake_err(e: io::Error) -> Error {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<netkit_tls::Error>())
    {
        Some(tls) => Error::Tls(tls.to_string()),
        None => Error::from(e),
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// Connects as a client to `server_name` (the SNI and the name verified; an
    /// IP address is verified but not sent) over `transport`, running the
    /// handshake. A verification failure is [`Error::Tls`] in rustls's words.
    pub fn connect(config: &ClientConfig, server_name: &str, transport: S) -> Result<Self, Error> {
        let session =
            TlsSession::client(config, server_name).map_err(|e| Error::Tls(e.to_string()))?;
        Self::handshake(session, transport)
    }

    /// Accepts a client over `transport` (already connected), running the
    /// handshake.
    pub fn accept(config: &ServerConfig, transport: S) -> Result<Self, Error> {
        let session = TlsSession::server(config).map_err(|e| Error::Tls(e.to_string()))?;
        Self::handshake(session, transport)
    }

    /// Runs the handshake of a session made by the caller over `transport`.
    /// On a TLS failure the alert is sent (best effort) before the error returns.
    pub fn handshake(session: TlsSession, transport: S) -> Result<Self, Error> {
        let mut s = Self {
            transport,
            session,
            pending_in: Vec::new(),
            eof: false,
        };
        while s.session.is_handshaking() {
            s.send_pending().map_err(handshake_err)?;
            match s.fill() {
                Ok(()) => {}
                Err(e) => {
                    // The alert rustls queued, if any; the error stands either way.
                    let _ = s.send_pending();
                    return Err(handshake_err(e));
                }
            }
        }
        // Our last flight (the client's Finished, the server's tickets).
        s.send_pending().map_err(handshake_err)?;
        s.transport.flush().map_err(handshake_err)?;
        s.drain_events();
        Ok(s)
    }

    /// Hands transport bytes to the session: what it held back first, else one
    /// read from the transport (EOF gives the session's verdict).
    fn fill(&mut self) -> io::Result<()> {
        if !self.pending_in.is_empty() {
            let held = std::mem::take(&mut self.pending_in);
            return self.feed(&held);
        }
        if self.eof {
            return self.session.handle_eof().map_err(tls_io);
        }
        let mut buf = [0u8; READ_CHUNK];
        let n = loop {
            match self.transport.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        if n == 0 {
            self.eof = true;
            return self.session.handle_eof().map_err(tls_io);
        }
        self.feed(&buf[..n])
    }

    fn feed(&mut self, bytes: &[u8]) -> io::Result<()> {
        let n = self.session.handle_input(bytes).map_err(tls_io)?;
        if n == 0 {
            // Only called when the session has no plaintext waiting, when it
            // always takes input: not taking any would loop forever.
            return Err(io::Error::other("TLS session took no input"));
        }
        self.pending_in.extend_from_slice(&bytes[n..]);
        Ok(())
    }

    /// Writes the session's TLS bytes to the transport until none are left.
    fn send_pending(&mut self) -> io::Result<()> {
        while self.session.wants_transmit() {
            match self.transport.write(self.session.transmit()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.session.handle_sent(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The session's events are reflected in its state (`is_handshaking`,
    /// `peer_closed`), which is what the stream consults; drop them.
    fn drain_events(&mut self) {
        while self.session.poll_event().is_some() {}
    }

    /// Sends `close_notify` and flushes: the peer's reads end cleanly. Writing
    /// afterwards fails with `BrokenPipe`; reading goes on until the peer's own
    /// `close_notify`. The transport stays open: shut or drop it afterwards
    /// (for a tunnel, call the inner stream's `shutdown` through
    /// [`get_mut`](Self::get_mut)).
    pub fn shutdown(&mut self) -> io::Result<()> {
        self.session.close();
        self.flush()
    }

    /// The TLS session: ALPN, authorization, peer certificates, version.
    pub fn session(&self) -> &TlsSession {
        &self.session
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.session.alpn_protocol()
    }

    /// How the peer's certificate verified (always known after the handshake).
    pub fn authorization(&self) -> Option<&Authorization> {
        self.session.authorization()
    }

    /// The transport.
    pub fn get_ref(&self) -> &S {
        &self.transport
    }

    /// The transport, mutably (to set timeouts, say). Reading or writing it
    /// directly corrupts the TLS stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.transport
    }

    /// The transport, dropping the session (without `close_notify`: call
    /// [`shutdown`](Self::shutdown) first for a clean close).
    pub fn into_inner(self) -> S {
        self.transport
    }

    /// The transport and the session.
    pub fn into_parts(self) -> (S, TlsSession) {
        (self.transport, self.session)
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.session.read_plaintext(buf);
            self.drain_events();
            if n > 0 {
                return Ok(n);
            }
            // A failure while decrypting is kept by the session.
            if let Some(e) = self.session.error().cloned() {
                let _ = self.send_pending();
                return Err(tls_io(e));
            }
            // TLS bytes reading produced (a key update, an alert) or an earlier
            // write left behind. An error here is the writer's to report.
            let _ = self.send_pending();
            if self.session.peer_closed() {
                return Ok(0);
            }
            self.fill()?;
        }
    }
}

impl<S: Read + Write> Write for TlsStream<S> {
    /// Encrypts up to 64 KiB of `buf` and sends it. Once the session accepted the
    /// plaintext, a transport failure is not reported by this call (the count
    /// stands) but by the next write or flush.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.send_pending()?;
        let n = self
            .session
            .write(&buf[..buf.len().min(WRITE_CHUNK)])
            .map_err(tls_io)?;
        let _ = self.send_pending();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()?;
        self.transport.flush()
    }
}
