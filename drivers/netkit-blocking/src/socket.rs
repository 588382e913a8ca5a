//! The socket handle given to handlers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use std::{fmt, io};

use crate::Error;
use crate::event_loop::Conn;

/// One connection, as seen from inside a [`Handler`](crate::Handler) callback.
///
/// Methods act on the connection's `netkit-socket` state machine; the loop performs
/// the I/O when the callback returns.
pub struct Socket<'a, D> {
    pub(crate) conn: &'a mut Conn<D>,
    pub(crate) now: Instant,
}

impl<D> fmt::Debug for Socket<'_, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("remote_addr", &self.conn.peer)
            .field("state", &self.conn.sm)
            .finish_non_exhaustive()
    }
}

impl<D> Socket<'_, D> {
    /// Queues bytes and returns how many were accepted; fewer than `bytes.len()` is
    /// backpressure: keep the rest and write it after `drain`. `Err` is Bun's `-1`
    /// (the socket is ended or closed).
    pub fn write(&mut self, bytes: &[u8]) -> Result<usize, Error> {
        let mut sent = 0;
        if self.conn.sm.can_write_through(bytes.len()) {
            // Large write, nothing queued: straight to the kernel, no copy.
            match self.conn.sock.send(bytes) {
                Ok(n) => {
                    self.conn.sm.handle_sent_direct(self.now, n);
                    sent = n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let err = Error::from_io(&e, "write");
                    self.conn.sm.handle_error(err.clone());
                    return Err(err);
                }
            }
        }
        if sent == bytes.len() {
            return Ok(sent);
        }
        Ok(sent + self.conn.sm.write(self.now, &bytes[sent..])?)
    }

    /// Ends the sending side once buffered bytes are flushed (FIN). The socket closes
    /// when the peer has ended too.
    pub fn end(&mut self) {
        let _ = self.conn.sm.end(self.now);
    }

    /// Closes now, dropping unsent bytes. `close` is called on the handler.
    pub fn close(&mut self) {
        self.conn.sm.close();
    }

    /// Closes now with a reset (RST).
    pub fn terminate(&mut self) {
        self.conn.sm.terminate();
    }

    /// Stops reading from this socket (read backpressure).
    pub fn pause(&mut self) {
        self.conn.sm.pause();
    }

    /// Reads again after [`pause`](Self::pause).
    pub fn resume(&mut self) {
        self.conn.sm.resume();
    }

    /// Arms (`Some`) or disarms (`None`) the idle timer (Bun's `socket.timeout`).
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.conn.sm.set_timeout(self.now, timeout);
    }

    /// The socket's user data.
    pub fn data(&self) -> &D {
        &self.conn.data
    }

    /// The socket's user data, mutably.
    pub fn data_mut(&mut self) -> &mut D {
        &mut self.conn.data
    }

    /// The peer's address, once known.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.conn.peer
    }

    /// The local address.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.conn.sock.local_addr().ok().and_then(|a| a.as_socket())
    }

    /// Bytes accepted by `write` and not yet taken by the kernel.
    pub fn buffered(&self) -> usize {
        self.conn.sm.buffered()
    }

    /// Whether the socket is closed.
    pub fn is_closed(&self) -> bool {
        self.conn.sm.is_closed()
    }

    /// Whether this side has ended (or will, once flushed).
    pub fn is_ending(&self) -> bool {
        self.conn.sm.is_ending()
    }

    /// Total bytes the kernel took from this socket.
    pub fn bytes_written(&self) -> u64 {
        self.conn.sm.bytes_written()
    }

    /// The loop's current time (taken once per loop turn).
    pub fn now(&self) -> Instant {
        self.now
    }
}
