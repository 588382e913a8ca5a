//! A blocking TLS stream over any `Read + Write` transport, including another
//! [`TlsStream`] (TLS inside TLS, as through a proxy tunnel).
//!
//! The stream only moves bytes: every protocol decision (the handshake, what to
//! send, when a close is clean) is the [`TlsSession`]'s.

use std::io::{self, Read, Write};

use netkit_tls::stream::{HandshakeStep, READ_CHUNK, ReadStep, TlsStreamCore, io_error};
use netkit_tls::{Authorization, ClientConfig, ServerConfig, TlsSession};

use crate::Error;

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
/// let config = netkit_sys::tls::client_config(&netkit_tls::ClientOptions::default())?;
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
    core: TlsStreamCore,
}

/// A transport failure during the handshake as the driver's error: a TLS error
/// from a lower TLS layer keeps its words, an OS error its code.
fn handshake_err(e: io::Error) -> Error {
    match netkit_tls::stream::tls_error_of(&e) {
        Some(tls) => Error::Tls(tls.clone()),
        None => netkit_sys::os_error(&e, ""),
    }
}

impl<S: Read + Write> TlsStream<S> {
    /// Connects as a client to `server_name` (the SNI and the name verified; an
    /// IP address is verified but not sent) over `transport`, running the
    /// handshake. A verification failure is [`Error::Tls`], typed.
    pub fn connect(config: &ClientConfig, server_name: &str, transport: S) -> Result<Self, Error> {
        let session = TlsSession::client(config, server_name).map_err(Error::Tls)?;
        Self::handshake(session, transport)
    }

    /// Accepts a client over `transport` (already connected), running the
    /// handshake.
    pub fn accept(config: &ServerConfig, transport: S) -> Result<Self, Error> {
        let session = TlsSession::server(config).map_err(Error::Tls)?;
        Self::handshake(session, transport)
    }

    /// Runs the handshake of a session made by the caller over `transport`.
    /// On a TLS failure the alert is sent (best effort) before the error returns.
    pub fn handshake(session: TlsSession, transport: S) -> Result<Self, Error> {
        let mut s = Self {
            transport,
            core: TlsStreamCore::new(session),
        };
        let failed = loop {
            let step = match s.core.handshake_step() {
                Ok(step) => step,
                Err(e) => break io_error(e),
            };
            let r = match step {
                HandshakeStep::Send => s.send_pending(),
                HandshakeStep::Receive => s.fill(),
                HandshakeStep::Done => match s.transport.flush() {
                    Ok(()) => return Ok(s),
                    Err(e) => break e,
                },
            };
            if let Err(e) = r {
                break e;
            }
        };
        // The alert rustls queued, if any; the error stands either way.
        let _ = s.send_pending();
        Err(handshake_err(failed))
    }

    /// Reads the transport once and hands the bytes (or its EOF) to the session.
    fn fill(&mut self) -> io::Result<()> {
        let mut buf = [0u8; READ_CHUNK];
        let n = loop {
            match self.transport.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => break r?,
            }
        };
        self.core.handle_input(&buf[..n]).map_err(io_error)
    }

    /// Writes the session's TLS bytes to the transport until none are left.
    fn send_pending(&mut self) -> io::Result<()> {
        loop {
            let out = self.core.poll_transmit();
            if out.is_empty() {
                return Ok(());
            }
            match self.transport.write(out) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.core.handle_sent(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `close_notify` and flushes: the peer's reads end cleanly. Writing
    /// afterwards fails with `BrokenPipe`; reading goes on until the peer's own
    /// `close_notify`. The transport stays open: shut or drop it afterwards
    /// (for a tunnel, call the inner stream's `shutdown` through
    /// [`get_mut`](Self::get_mut)).
    pub fn shutdown(&mut self) -> io::Result<()> {
        self.core.close();
        self.flush()
    }

    /// The TLS session: ALPN, authorization, peer certificates, version.
    pub fn session(&self) -> &TlsSession {
        self.core.session()
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.core.session().alpn_protocol()
    }

    /// How the peer's certificate verified (always known after the handshake).
    pub fn authorization(&self) -> Option<&Authorization> {
        self.core.session().authorization()
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
        (self.transport, self.core.into_session())
    }
}

impl<S: Read + Write> Read for TlsStream<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let step = self.core.read(buf);
            // TLS bytes reading produced (a key update, an alert) or an earlier
            // write left behind. An error here is the writer's to report.
            let _ = self.send_pending();
            match step.map_err(io_error)? {
                ReadStep::Plaintext(n) => return Ok(n),
                ReadStep::Closed => return Ok(0),
                ReadStep::NeedInput => self.fill()?,
            }
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
        let n = self.core.write(buf).map_err(io_error)?;
        let _ = self.send_pending();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send_pending()?;
        self.transport.flush()
    }
}
