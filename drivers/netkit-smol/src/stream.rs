//! Plain async streams for code that prefers `AsyncRead`/`AsyncWrite` to handlers.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::Async;
use futures_lite::{AsyncRead, AsyncWrite};

use crate::{ConnectOptions, Error, ListenOptions};

/// A TCP stream on the `async-io` reactor, usable from any executor.
#[derive(Debug)]
pub struct TcpStream {
    inner: Async<StdStream>,
}

impl TcpStream {
    /// Resolves `host` (IP literal or hosts file) and connects, trying each address.
    /// Nagle is disabled.
    pub async fn connect(host: &str, port: u16) -> Result<Self, Error> {
        Self::connect_with(&ConnectOptions::new(host, port)).await
    }

    /// Connects with explicit options: the connect plan (Happy Eyeballs over
    /// the host's addresses, `connect_timeout` for the whole connect), on the
    /// process's [`Runtime`](crate::Runtime). Nagle is disabled unless
    /// `no_delay` is false. `opts.unix` is refused: this is a TCP stream.
    pub async fn connect_with(opts: &ConnectOptions) -> Result<Self, Error> {
        if opts.unix.is_some() {
            return Err(Error::os("EINVAL", "TcpStream::connect_with a Unix path"));
        }
        let (sock, _) = crate::Runtime::global().connect_socket(opts).await?;
        let sock = sock
            .into_inner()
            .map_err(|e| netkit_sys::os_error(&e, "connect"))?;
        let inner =
            Async::new(StdStream::from(sock)).map_err(|e| netkit_sys::os_error(&e, "connect"))?;
        Ok(Self { inner })
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Shuts the sending side (FIN), keeping the read side open.
    pub fn shutdown_write(&self) -> io::Result<()> {
        self.inner.get_ref().shutdown(Shutdown::Write)
    }

    /// The underlying `Async<std::net::TcpStream>`.
    pub fn into_inner(self) -> Async<StdStream> {
        self.inner
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// A TCP listener on the `async-io` reactor.
#[derive(Debug)]
pub struct TcpListener {
    inner: Async<StdListener>,
}

impl TcpListener {
    /// Binds with netkit's listen options (`SO_REUSEADDR`, optional
    /// `SO_REUSEPORT`; TCP only).
    pub fn bind(opts: &ListenOptions) -> Result<Self, Error> {
        if opts.unix.is_some() {
            return Err(Error::os("EINVAL", "TcpListener::bind a Unix path"));
        }
        let sock = netkit_sys::net::bind_listener(opts, &mut netkit_sys::Resolver::default())?;
        let std = StdListener::from(
            sock.socket()
                .try_clone()
                .map_err(|e| netkit_sys::os_error(&e, "listen"))?,
        );
        let inner = Async::new(std).map_err(|e| netkit_sys::os_error(&e, "listen"))?;
        Ok(Self { inner })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.get_ref().local_addr()
    }

    /// Accepts one connection (Nagle disabled).
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (inner, addr) = self.inner.accept().await?;
        let _ = inner.get_ref().set_nodelay(true);
        Ok((TcpStream { inner }, addr))
    }
}
