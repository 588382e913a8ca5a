//! The socket handle both drivers give their handlers: Bun's socket methods over
//! the connection's [`Machine`], with the driver's socket for write-through.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netkit_tls::Machine;

use crate::Error;
use crate::sys::errno::os_error;

/// One connection, as seen from inside a handler callback, on either driver.
///
/// Methods act on the connection's state machine (plain or TLS); the driver
/// performs the I/O when the callback returns. Byte counts are plaintext.
pub struct Socket<'a, D> {
    sm: &'a mut Machine,
    data: &'a mut D,
    /// The connection's socket (`None` for a client that never connected).
    io: Option<&'a socket2::Socket>,
    peer: Option<SocketAddr>,
    now: Instant,
}

impl<D> fmt::Debug for Socket<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("remote_addr", &self.peer)
            .field("state", &self.sm)
            .finish_non_exhaustive()
    }
}

impl<'a, D> Socket<'a, D> {
    /// The handle a driver builds for one callback.
    pub fn new(
        sm: &'a mut Machine,
        data: &'a mut D,
        io: Option<&'a socket2::Socket>,
        peer: Option<SocketAddr>,
        now: Instant,
    ) -> Self {
        Self {
            sm,
            data,
            io,
            peer,
            now,
        }
    }

    /// Queues bytes and returns how many were accepted; fewer than `bytes.len()` is
    /// backpressure: keep the rest and write it after `drain`. `Err` is Bun's `-1`
    /// (the socket is ended or closed).
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let io = self.io;
        self.sm.write_through(self.now, bytes, |b| match io {
            None => Ok(0),
            Some(sock) => match sock.send(b) {
                Ok(n) => Ok(n),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    Ok(0)
                }
                Err(e) => Err(os_error(&e, "write")),
            },
        })
    }

    /// Ends the sending side once buffered bytes are flushed (FIN). The socket closes
    /// when the peer has ended too.
    pub fn end(&mut self) {
        let _ = self.sm.end(self.now);
    }

    /// Closes now, dropping unsent bytes. `close` is called on the handler.
    pub fn close(&mut self) {
        self.sm.close();
    }

    /// Closes now with a reset (RST).
    pub fn terminate(&mut self) {
        self.sm.terminate();
    }

    /// Stops reading from this socket (read backpressure).
    pub fn pause(&mut self) {
        self.sm.pause();
    }

    /// Reads again after [`pause`](Self::pause).
    pub fn resume(&mut self) {
        self.sm.resume();
    }

    /// Arms (`Some`) or disarms (`None`) the idle timer (Bun's `socket.timeout`).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.sm.set_timeout(self.now, timeout);
    }

    /// The socket's user data.
    #[must_use]
    pub fn data(&self) -> &D {
        self.data
    }

    /// The socket's user data, mutably.
    pub fn data_mut(&mut self) -> &mut D {
        self.data
    }

    /// The peer's address, once known (`None` over a Unix socket).
    #[must_use]
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// The local address (`None` over a Unix socket).
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.io?.local_addr().ok()?.as_socket()
    }

    /// Bytes accepted by `write` and not yet taken by the kernel.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.sm.buffered()
    }

    /// Whether the socket is closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.sm.is_closed()
    }

    /// Whether this side has ended (or will, once flushed).
    #[must_use]
    pub fn is_ending(&self) -> bool {
        self.sm.is_ending()
    }

    /// Total bytes the kernel took from this socket.
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.sm.bytes_written()
    }

    /// The TLS session (ALPN, authorization, peer certificates), for TLS sockets.
    #[must_use]
    pub fn tls(&self) -> Option<&netkit_tls::TlsSession> {
        self.sm.tls().map(|t| t.session())
    }

    /// The loop's current time (taken once per loop turn).
    #[must_use]
    pub fn now(&self) -> Instant {
        self.now
    }
}
