//! Bun's socket semantics over TLS: a [`netkit_socket::Socket`] counted in
//! plaintext, layered on a [`TlsSession`], with the same driving vocabulary.
//!
//! Transport bytes go in with [`TlsSocket::handle_input`]; plaintext comes out
//! with [`TlsSocket::read_plaintext`]; [`TlsSocket::poll_transmit`] offers
//! ciphertext. Because it is transport-agnostic, a `TlsSocket` can run over any
//! byte stream, including another TLS session (a proxy tunnel inside TLS).

use std::time::{Duration, Instant};

use netkit_socket::{Config, Socket, Transmit};

use crate::{Error, SocketError as SockError, SocketEvent as Event, TlsEvent, TlsSession};

/// The most ciphertext generated ahead of the kernel; plaintext stays in the
/// socket's buffer (bounded by its high-water mark) until this drains.
const CIPHER_AHEAD: usize = 64 * 1024;

fn tls_err(e: &Error) -> SockError {
    SockError::Tls(e.clone())
}

/// A TLS connection with Bun's socket semantics. `Open` fires when the handshake
/// is done; a handshake failure is a `ConnectError` (the socket never opened),
/// also on the server side.
#[derive(Debug)]
pub struct TlsSocket {
    sm: Socket<Error>,
    tls: TlsSession,
    /// The transport is connected (TCP established).
    transport_up: bool,
    /// close_notify queued for our `end()`.
    notify_sent: bool,
    /// The transport's FIN has been sent.
    fin_sent: bool,
    /// The peer's end of stream (close_notify, or the transport's EOF with its
    /// verdict), applied once every plaintext byte before it was delivered.
    eof_pending: Option<Result<(), Error>>,
}

impl TlsSocket {
    /// A TLS socket over a transport connection that is being established
    /// (client) or already accepted (server: call
    /// [`handle_connected`](Self::handle_connected) at once).
    #[must_use]
    pub fn new(now: Instant, config: Config, tls: TlsSession) -> Self {
        Self {
            sm: Socket::connecting(now, config),
            tls,
            transport_up: false,
            notify_sent: false,
            fin_sent: false,
            eof_pending: None,
        }
    }

    /// The transport connected: the handshake starts.
    pub fn handle_connected(&mut self, now: Instant) {
        self.transport_up = true;
        self.pump_out(now);
    }

    /// The transport failed to connect.
    pub fn handle_connect_error(&mut self, err: SockError) {
        self.sm.handle_connect_error(err);
    }

    /// Transport bytes arrived. They are all taken (the session keeps what it
    /// cannot process yet; [`wants_read`](Self::wants_read) turns false until
    /// the reader catches up). Read the plaintext with
    /// [`read_plaintext`](Self::read_plaintext).
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.sm.is_closed() {
            return;
        }
        if let Err(e) = self.tls.handle_input(bytes) {
            return self.fail(&e);
        }
        self.tls_events(now);
        self.pump_out(now);
    }

    /// Applies what the TLS session reported. Reading and writing step it too
    /// (a record is decrypted when it is read), so this follows every call.
    fn tls_events(&mut self, now: Instant) {
        while let Some(ev) = self.tls.poll_event() {
            match ev {
                TlsEvent::HandshakeDone => self.sm.handle_connected(now),
                TlsEvent::PeerClosed => {
                    self.eof_pending.get_or_insert(Ok(()));
                }
            }
        }
    }

    /// The session failed: `Error` then `Close` (or `ConnectError` during the
    /// handshake). The alert rustls queued stays in the session for the
    /// driver's parting send.
    fn fail(&mut self, e: &Error) {
        self.sm.handle_error(tls_err(e));
    }

    /// Copies received plaintext into `buf` for the application's `data` handler
    /// (one TLS record's worth at most); returns the count (0: nothing to
    /// deliver now). Call until 0 after every `handle_input`, unless reading is
    /// paused. A 0 also applies what comes after the plaintext: the peer's end
    /// of stream, or the session's failure (`Error`, then `Close`).
    #[must_use]
    pub fn read_plaintext(&mut self, now: Instant, buf: &mut [u8]) -> usize {
        if !self.sm.wants_read() {
            return 0;
        }
        let n = self.tls.read_plaintext(buf);
        self.tls_events(now);
        if n > 0 {
            return if self.sm.handle_input(now, &buf[..n]).is_ok() {
                n
            } else {
                0
            };
        }
        if let Some(e) = self.tls.error().cloned() {
            self.fail(&e);
            return 0;
        }
        // Reading may have produced TLS bytes (a key update).
        self.pump_out(now);
        self.apply_eof(now);
        0
    }

    /// Applies the peer's end of stream once no plaintext is left before it.
    fn apply_eof(&mut self, now: Instant) {
        if self.tls.has_plaintext() {
            return;
        }
        match self.eof_pending.take() {
            Some(Ok(())) => self.sm.handle_eof(now),
            Some(Err(e)) => self.sm.handle_error(tls_err(&e)),
            None => {}
        }
    }

    /// The transport reached EOF: a clean close after the peer's close_notify,
    /// else an error (truncation, or EOF during the handshake).
    pub fn handle_eof(&mut self, now: Instant) {
        if self.tls.is_handshaking() {
            // Nothing to deliver before it: fail now.
            if let Err(e) = self.tls.handle_eof() {
                self.sm.handle_error(tls_err(&e));
            }
            return;
        }
        let verdict = self.tls.handle_eof();
        // A close_notify already seen wins over the transport's verdict.
        self.eof_pending.get_or_insert(verdict);
        if !self.sm.wants_read() {
            // Paused: plaintext may still wait; `read_plaintext` applies it after.
            return;
        }
        self.apply_eof(now);
    }

    /// A transport I/O failure.
    pub fn handle_error(&mut self, err: SockError) {
        self.sm.handle_error(err);
    }

    /// Moves plaintext from the socket's buffer into TLS records and handles the
    /// socket's shutdown request as close_notify.
    fn pump_out(&mut self, now: Instant) {
        if !self.transport_up {
            return;
        }
        loop {
            let room = CIPHER_AHEAD.saturating_sub(self.tls.poll_transmit().len());
            if room == 0 {
                break;
            }
            match self.sm.poll_transmit() {
                Transmit::Bytes(b) => match self.tls.write(&b[..b.len().min(room)]) {
                    Ok(0) => break,
                    Ok(n) => self.sm.handle_sent(now, n),
                    Err(e) => {
                        // The session failed (now, or during an earlier read):
                        // nothing more can be encrypted.
                        self.fail(&e);
                        return;
                    }
                },
                Transmit::Shutdown => {
                    if !self.notify_sent {
                        self.notify_sent = true;
                        self.tls.close();
                    }
                    break;
                }
                Transmit::Idle => break,
            }
        }
        // Writing may step the session past the peer's close_notify.
        self.tls_events(now);
    }

    /// Ciphertext to send, or the transport's shutdown once close_notify is out.
    pub fn poll_transmit(&mut self, now: Instant) -> Transmit<'_> {
        self.pump_out(now);
        let out = self.tls.poll_transmit();
        if !out.is_empty() {
            return Transmit::Bytes(out);
        }
        if self.notify_sent && !self.fin_sent && !self.sm.is_closed() {
            return Transmit::Shutdown;
        }
        Transmit::Idle
    }

    /// The transport took `n` bytes of what [`poll_transmit`](Self::poll_transmit) offered.
    pub fn handle_sent(&mut self, now: Instant, n: usize) {
        self.tls.handle_sent(n);
        self.pump_out(now);
    }

    /// The transport's sending side was shut after close_notify.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.fin_sent = true;
        self.sm.handle_shutdown(now);
    }

    /// See [`Socket::handle_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        self.sm.handle_timeout(now);
    }

    /// See [`Socket::poll_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sm.poll_timeout()
    }

    /// See [`Socket::poll_event`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.sm.poll_event()
    }

    /// Whether events are queued.
    #[must_use]
    pub fn has_events(&self) -> bool {
        self.sm.has_events()
    }

    /// Queues plaintext (counted against the high-water mark, as on a plain socket).
    pub fn write(&mut self, now: Instant, bytes: &[u8]) -> Result<usize, SockError> {
        let n = self.sm.write(now, bytes)?;
        self.pump_out(now);
        Ok(n)
    }

    /// See [`Socket::end`]: flush, close_notify, then FIN.
    pub fn end(&mut self, now: Instant) -> Result<(), SockError> {
        self.sm.end(now)?;
        self.pump_out(now);
        Ok(())
    }

    /// Closes now (no close_notify).
    pub fn close(&mut self) {
        self.sm.close();
    }

    /// Closes now with a reset.
    pub fn terminate(&mut self) {
        self.sm.terminate();
    }

    /// Stops delivering plaintext (and, once rustls's buffer is full, reading).
    pub fn pause(&mut self) {
        self.sm.pause();
    }

    /// Delivers plaintext again.
    pub fn resume(&mut self) {
        self.sm.resume();
    }

    /// See [`Socket::set_timeout`].
    pub fn set_timeout(&mut self, now: Instant, timeout: Option<Duration>) {
        self.sm.set_timeout(now, timeout);
    }

    /// Whether the driver should read from the transport: not while ciphertext
    /// is held back or delivery is paused with plaintext waiting.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        !self.sm.is_closed()
            && !self.sm.peer_ended()
            && self.tls.wants_input()
            && (self.sm.wants_read() || self.tls.is_handshaking())
    }

    /// Whether the application takes plaintext now (not paused, not closed): the
    /// driver should call [`read_plaintext`](Self::read_plaintext), which also
    /// decrypts records held back earlier, even while
    /// [`wants_read`](Self::wants_read) is false.
    #[must_use]
    pub fn wants_plaintext(&self) -> bool {
        self.sm.wants_read()
    }

    /// Whether plaintext (or a record not yet decrypted, or the peer's end of
    /// stream) waits for [`read_plaintext`](Self::read_plaintext).
    #[must_use]
    pub fn has_plaintext(&self) -> bool {
        self.tls.has_plaintext() || self.eof_pending.is_some()
    }

    /// Whether there is something to transmit.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.tls.wants_transmit()
            || (self.notify_sent && !self.fin_sent && !self.sm.is_closed())
            || (self.transport_up && self.sm.wants_write())
    }

    /// Plaintext accepted and not yet encrypted.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.sm.buffered()
    }

    /// Whether the socket is closed.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.sm.is_closed()
    }

    /// Whether `end()` was called.
    #[must_use]
    pub fn is_ending(&self) -> bool {
        self.sm.is_ending()
    }

    /// Whether the driver should reset instead of FIN on close.
    #[must_use]
    pub fn reset_on_close(&self) -> bool {
        self.sm.reset_on_close()
    }

    /// Plaintext bytes the application wrote that went into TLS records.
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.sm.bytes_written()
    }

    /// The TLS session (ALPN, authorization, peer certificates...).
    #[must_use]
    pub fn session(&self) -> &TlsSession {
        &self.tls
    }

    /// The plaintext socket state.
    #[must_use]
    pub fn socket(&self) -> &Socket<Error> {
        &self.sm
    }
}
