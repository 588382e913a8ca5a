//! One type for a driver's connection state: a plain socket or a TLS socket, with
//! the same methods, so a driver handles both with one code path.

use std::time::{Duration, Instant};

use netkit_socket::{Config, Socket, Transmit};

use crate::{
    ClientConfig, ServerConfig, SocketError as Error, SocketEvent as Event, TlsSession, TlsSocket,
};

/// A connection's state machine: plain TCP or TLS.
#[derive(Debug)]
pub enum Machine {
    /// Plain TCP: plaintext is the transport's bytes.
    Plain(Socket<crate::Error>),
    /// TLS over the transport.
    Tls(Box<TlsSocket>),
}

macro_rules! delegate {
    ($(#[$m:meta])* fn $name:ident(&self $(, $a:ident: $t:ty)*) -> $r:ty) => {
        $(#[$m])*
        pub fn $name(&self $(, $a: $t)*) -> $r {
            match self {
                Self::Plain(s) => s.$name($($a),*),
                Self::Tls(s) => s.$name($($a),*),
            }
        }
    };
    ($(#[$m:meta])* fn $name:ident(&mut self $(, $a:ident: $t:ty)*) -> $r:ty) => {
        $(#[$m])*
        pub fn $name(&mut self $(, $a: $t)*) -> $r {
            match self {
                Self::Plain(s) => s.$name($($a),*),
                Self::Tls(s) => s.$name($($a),*),
            }
        }
    };
}

impl Machine {
    /// A client connection whose transport is being established: TLS when
    /// `tls` names a configuration and the server name (SNI, and the name
    /// verified), else plain. Report the transport's outcome with
    /// [`handle_connected`](Self::handle_connected) or
    /// [`handle_connect_error`](Self::handle_connect_error). Fails only when
    /// the TLS session cannot be made (a server name that is neither a DNS name
    /// nor an IP address).
    pub fn client(
        now: Instant,
        config: Config,
        tls: Option<(&ClientConfig, &str)>,
    ) -> Result<Self, crate::Error> {
        Ok(match tls {
            None => Self::Plain(Socket::connecting(now, config)),
            Some((cfg, name)) => Self::Tls(Box::new(TlsSocket::new(
                now,
                config,
                TlsSession::client(cfg, name)?,
            ))),
        })
    }

    /// A connection a listener accepted: open at once when plain (its `Open` is
    /// queued), handshaking when `tls` is given.
    pub fn accepted(
        now: Instant,
        config: Config,
        tls: Option<&ServerConfig>,
    ) -> Result<Self, crate::Error> {
        Ok(match tls {
            None => Self::Plain(Socket::accepted(now, config)),
            Some(cfg) => {
                let mut t = TlsSocket::new(now, config, TlsSession::server(cfg)?);
                t.handle_connected(now);
                Self::Tls(Box::new(t))
            }
        })
    }

    /// Transport bytes arrived in `buf[..n]`. `deliver` is called with each
    /// plaintext chunk for the application's `data` handler: the same bytes for
    /// plain TCP; for TLS, decrypted plaintext copied into `buf` (its ciphertext has
    /// been taken by then, so the buffer is reused).
    pub fn handle_input_with(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        n: usize,
        mut deliver: impl FnMut(&mut Self, &[u8]),
    ) {
        match self {
            Self::Plain(s) => {
                if s.handle_input(now, &buf[..n]).is_ok() {
                    deliver(self, &buf[..n]);
                }
            }
            Self::Tls(t) => {
                t.handle_input(now, &buf[..n]);
                self.deliver_plaintext(now, buf, deliver);
            }
        }
    }

    /// Delivers plaintext the TLS layer holds (after `resume`, say); a no-op for
    /// plain TCP.
    pub fn deliver_plaintext(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        mut deliver: impl FnMut(&mut Self, &[u8]),
    ) {
        loop {
            let m = match self {
                Self::Tls(t) => t.read_plaintext(now, buf),
                Self::Plain(_) => 0,
            };
            if m == 0 {
                return;
            }
            deliver(self, &buf[..m]);
        }
    }

    /// What to put on the wire next.
    pub fn poll_transmit(&mut self, now: Instant) -> Transmit<'_> {
        match self {
            Self::Plain(s) => s.poll_transmit(),
            Self::Tls(s) => s.poll_transmit(now),
        }
    }

    /// Whether a write may go straight to the kernel (plain TCP only).
    #[must_use]
    pub fn can_write_through(&self, len: usize) -> bool {
        match self {
            Self::Plain(s) => s.can_write_through(len),
            Self::Tls(_) => false,
        }
    }

    /// Whether plaintext held by the TLS layer should be delivered now (see
    /// [`TlsSocket::wants_plaintext`]); always false for plain TCP, whose bytes
    /// are delivered as they are read.
    #[must_use]
    pub fn wants_plaintext(&self) -> bool {
        match self {
            Self::Tls(t) => t.wants_plaintext(),
            Self::Plain(_) => false,
        }
    }

    /// Whether the TLS layer should deliver plaintext it holds right now: reading
    /// is not paused and plaintext (or ciphertext held back) is waiting. A driver
    /// keeps delivering while this holds, since no readiness event will come for
    /// bytes already read.
    #[must_use]
    pub fn plaintext_due(&mut self) -> bool {
        match self {
            Self::Tls(t) => t.wants_plaintext() && t.has_plaintext(),
            Self::Plain(_) => false,
        }
    }

    /// What a closed connection still owes the peer, for the driver to send once,
    /// best effort, before it closes the transport: the alert of a failed TLS
    /// handshake or session (so the peer learns why, e.g. "unknown ca"), or
    /// records not yet sent. Empty for plain TCP and for a reset.
    #[must_use]
    pub fn parting_bytes(&self) -> &[u8] {
        match self {
            Self::Tls(t) if t.is_closed() && !t.reset_on_close() => t.session().poll_transmit(),
            _ => &[],
        }
    }

    /// How a closed connection ends: `None` to close the transport now,
    /// or a [`Linger`] when it owes its peer [`parting_bytes`](Self::parting_bytes)
    /// (sent, then FIN, then the peer's late bytes read and discarded until
    /// its EOF or a deadline), so that a reset cannot destroy the alert
    /// before the peer reads it.
    ///
    /// [`Linger`]: netkit_socket::linger::Linger
    #[must_use]
    pub fn linger(&self, now: Instant) -> Option<netkit_socket::linger::Linger> {
        let parting = self.parting_bytes();
        (!parting.is_empty()).then(|| netkit_socket::linger::Linger::new(now, parting))
    }

    /// Whether the transport's bytes are plaintext (no TLS).
    #[must_use]
    pub fn is_plain(&self) -> bool {
        matches!(self, Self::Plain(_))
    }

    /// The TLS socket, if this is one.
    #[must_use]
    pub fn tls(&self) -> Option<&TlsSocket> {
        match self {
            Self::Tls(t) => Some(t),
            Self::Plain(_) => None,
        }
    }

    /// The transport reached EOF (see [`TlsSocket::handle_eof`] for TLS).
    pub fn handle_eof(&mut self, now: Instant) {
        match self {
            Self::Plain(s) => s.handle_eof(now),
            Self::Tls(s) => s.handle_eof(now),
        }
    }

    delegate!(/// See [`Socket::handle_connected`].
        fn handle_connected(&mut self, now: Instant) -> ());
    delegate!(/// See [`Socket::handle_connect_error`].
        fn handle_connect_error(&mut self, err: Error) -> ());
    delegate!(/// See [`Socket::handle_error`].
        fn handle_error(&mut self, err: Error) -> ());
    delegate!(/// See [`Socket::handle_sent`].
        fn handle_sent(&mut self, now: Instant, n: usize) -> ());
    delegate!(/// See [`Socket::handle_shutdown`].
        fn handle_shutdown(&mut self, now: Instant) -> ());
    delegate!(/// See [`Socket::handle_timeout`].
        fn handle_timeout(&mut self, now: Instant) -> ());
    delegate!(/// See [`Socket::poll_timeout`].
        #[must_use]
        fn poll_timeout(&self) -> Option<Instant>);
    delegate!(/// See [`Socket::poll_event`].
        #[must_use]
        fn poll_event(&mut self) -> Option<Event>);
    delegate!(/// See [`Socket::has_events`].
        #[must_use]
        fn has_events(&self) -> bool);
    delegate!(/// See [`Socket::write`] (plaintext).
        fn write(&mut self, now: Instant, bytes: &[u8]) -> Result<usize, Error>);
    delegate!(/// See [`Socket::end`].
        fn end(&mut self, now: Instant) -> Result<(), Error>);
    delegate!(/// See [`Socket::close`].
        fn close(&mut self) -> ());
    delegate!(/// See [`Socket::terminate`].
        fn terminate(&mut self) -> ());
    delegate!(/// See [`Socket::pause`].
        fn pause(&mut self) -> ());
    delegate!(/// See [`Socket::resume`].
        fn resume(&mut self) -> ());
    delegate!(/// See [`Socket::set_timeout`].
        fn set_timeout(&mut self, now: Instant, timeout: Option<Duration>) -> ());
    delegate!(/// See [`Socket::wants_read`].
        #[must_use]
        fn wants_read(&self) -> bool);
    delegate!(/// See [`Socket::wants_write`].
        #[must_use]
        fn wants_write(&self) -> bool);
    delegate!(/// See [`Socket::buffered`].
        #[must_use]
        fn buffered(&self) -> usize);
    delegate!(/// See [`Socket::is_closed`].
        #[must_use]
        fn is_closed(&self) -> bool);
    delegate!(/// See [`Socket::is_ending`].
        #[must_use]
        fn is_ending(&self) -> bool);
    delegate!(/// See [`Socket::reset_on_close`].
        #[must_use]
        fn reset_on_close(&self) -> bool);
    delegate!(/// See [`Socket::bytes_written`].
        #[must_use]
        fn bytes_written(&self) -> u64);

    /// The application's `write`, with write-through: a large write made while
    /// nothing is buffered goes to `send` (the kernel) directly, with no copy; the
    /// rest is buffered as [`write`](Self::write) does. Returns the count accepted
    /// (fewer than `bytes.len()` is backpressure). `send` returns what the
    /// kernel took (0 when it would block) or the failure, which fails the
    /// socket and is returned.
    pub fn write_through(
        &mut self,
        now: Instant,
        bytes: &[u8],
        send: impl FnOnce(&[u8]) -> Result<usize, Error>,
    ) -> Result<usize, Error> {
        let mut sent = 0;
        if self.can_write_through(bytes.len()) {
            match send(bytes) {
                Ok(n) => {
                    self.handle_sent_direct(now, n);
                    sent = n;
                }
                Err(err) => {
                    self.handle_error(err.clone());
                    return Err(err);
                }
            }
        }
        if sent == bytes.len() {
            return Ok(sent);
        }
        Ok(sent + self.write(now, &bytes[sent..])?)
    }

    /// Records a write the driver put straight on the wire (plain TCP only).
    pub fn handle_sent_direct(&mut self, now: Instant, n: usize) {
        if let Self::Plain(s) = self {
            s.handle_sent_direct(now, n);
        }
    }
}
