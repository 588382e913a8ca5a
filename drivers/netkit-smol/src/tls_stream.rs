//! An async TLS stream over any `AsyncRead + AsyncWrite` transport, including
//! another [`TlsStream`] (TLS inside TLS, as through a proxy tunnel).
//!
//! The stream only moves bytes: every protocol decision (the handshake, what to
//! send, when a close is clean) is the [`TlsSession`]'s.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite, future};
use netkit_tls::stream::{HandshakeStep, READ_CHUNK, ReadStep, TlsStreamCore, io_error};
use netkit_tls::{Authorization, ClientConfig, ServerConfig, TlsSession};

use crate::Error;

/// A TLS connection as an `AsyncRead + AsyncWrite` stream over a transport `S`:
/// a [`TcpStream`](crate::TcpStream), or another `TlsStream` (a tunnel).
///
/// The constructors run the handshake. Reading returns `Ok(0)` once the peer sent
/// `close_notify` and every byte before it was read; a transport EOF without it
/// is an [`io::ErrorKind::UnexpectedEof`] error carrying
/// [`netkit_tls::Error::Truncated`]. `poll_close` (`AsyncWriteExt::close`) sends
/// our `close_notify`, then closes the transport (for a tunnel: the tunnel's
/// `close_notify`, then the TCP FIN). TLS failures are `io::Error`s whose inner
/// error is the [`netkit_tls::Error`].
///
/// `poll_write` accepts plaintext once it is encrypted and may leave TLS bytes
/// for the transport: flush (or close) to be sure they left.
///
/// # Examples
///
/// TLS inside TLS: a tunnel to a proxy, then a session to the origin through it.
///
/// ```no_run
/// use futures_lite::{AsyncReadExt, AsyncWriteExt};
/// use netkit_smol::{TcpStream, TlsStream};
///
/// smol::block_on(async {
///     let config = netkit_sys::tls::client_config(&netkit_tls::ClientOptions::default())?;
///     let tcp = TcpStream::connect("proxy.example", 443).await?;
///     let tunnel = TlsStream::connect(&config, "proxy.example", tcp).await?;
///     let mut origin = TlsStream::connect(&config, "origin.example", tunnel).await?;
///     origin.write_all(b"GET / HTTP/1.1\r\nHost: origin.example\r\n\r\n").await?;
///     let mut reply = Vec::new();
///     origin.read_to_end(&mut reply).await?;
///     origin.close().await?;
///     Ok::<(), Box<dyn std::error::Error>>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct TlsStream<S: AsyncRead + AsyncWrite + Unpin> {
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

impl<S: AsyncRead + AsyncWrite + Unpin> TlsStream<S> {
    /// Connects as a client to `server_name` (the SNI and the name verified; an
    /// IP address is verified but not sent) over `transport`, running the
    /// handshake. A verification failure is [`Error::Tls`], typed.
    pub async fn connect(
        config: &ClientConfig,
        server_name: &str,
        transport: S,
    ) -> Result<Self, Error> {
        let session = TlsSession::client(config, server_name).map_err(Error::Tls)?;
        Self::handshake(session, transport).await
    }

    /// Accepts a client over `transport` (already connected), running the
    /// handshake.
    pub async fn accept(config: &ServerConfig, transport: S) -> Result<Self, Error> {
        let session = TlsSession::server(config).map_err(Error::Tls)?;
        Self::handshake(session, transport).await
    }

    /// Runs the handshake of a session made by the caller over `transport`.
    /// On a TLS failure the alert is sent (best effort) before the error returns.
    pub async fn handshake(session: TlsSession, transport: S) -> Result<Self, Error> {
        let mut s = Self {
            transport,
            core: TlsStreamCore::new(session),
        };
        if let Err(e) = future::poll_fn(|cx| s.poll_handshake(cx)).await {
            // The alert rustls queued, if any; the error stands either way.
            let _ = future::poll_fn(|cx| s.poll_send_pending(cx)).await;
            return Err(handshake_err(e));
        }
        Ok(s)
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            match self.core.handshake_step().map_err(io_error)? {
                HandshakeStep::Send => ready!(self.poll_send_pending(cx))?,
                HandshakeStep::Receive => ready!(self.poll_fill(cx))?,
                HandshakeStep::Done => return Pin::new(&mut self.transport).poll_flush(cx),
            }
        }
    }

    /// Reads the transport once and hands the bytes (or its EOF) to the session.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut buf = [0u8; READ_CHUNK];
        let n = ready!(Pin::new(&mut self.transport).poll_read(cx, &mut buf))?;
        Poll::Ready(self.core.handle_input(&buf[..n]).map_err(io_error))
    }

    /// Writes the session's TLS bytes to the transport until none are left.
    fn poll_send_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let out = self.core.poll_transmit();
            if out.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let n = ready!(Pin::new(&mut self.transport).poll_write(cx, out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.core.handle_sent(n);
        }
    }

    /// Sends TLS bytes, then flushes the transport.
    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_pending(cx))?;
        Pin::new(&mut self.transport).poll_flush(cx)
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

    /// The transport, mutably. Reading or writing it directly corrupts the TLS
    /// stream.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.transport
    }

    /// The transport, dropping the session (without `close_notify`: close the
    /// stream instead for a clean close).
    pub fn into_inner(self) -> S {
        self.transport
    }

    /// The transport and the session.
    pub fn into_parts(self) -> (S, TlsSession) {
        (self.transport, self.core.into_session())
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let step = this.core.read(buf);
            // TLS bytes reading produced (a key update, an alert) or an earlier
            // write left behind, without waiting for them: a failure or a full
            // transport is the writer's to see.
            let _ = this.poll_send_pending(cx);
            match step.map_err(io_error)? {
                ReadStep::Plaintext(n) => return Poll::Ready(Ok(n)),
                ReadStep::Closed => return Poll::Ready(Ok(0)),
                ReadStep::NeedInput => ready!(this.poll_fill(cx))?,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    /// Encrypts up to 64 KiB of `buf`. Waits only while 64 KiB of TLS bytes are
    /// already held for the transport. Once the session accepted the plaintext, a
    /// transport failure is not reported by this call (the count stands) but by
    /// the next write, flush or close.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        // Earlier TLS bytes first; past the limit, wait for the transport.
        match this.poll_send_pending(cx) {
            Poll::Ready(r) => r?,
            Poll::Pending if this.core.write_blocked() => return Poll::Pending,
            Poll::Pending => {}
        }
        let n = this.core.write(buf).map_err(io_error)?;
        let _ = this.poll_send_pending(cx);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_all(cx)
    }

    /// Sends `close_notify` (once), flushes, then closes the transport.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.core.close();
        ready!(this.poll_flush_all(cx))?;
        Pin::new(&mut this.transport).poll_close(cx)
    }
}
