//! Bun's TCP socket semantics as a sans-IO state machine.
//!
//! A [`Socket`] is one connection's state: its write buffer with a high-water mark
//! (backpressure), `drain`, half-close, the idle timer and the event order. It never
//! touches a socket, a clock or a thread: the driver hands it what the kernel did
//! (`handle_*`), asks it what to do next ([`Socket::poll_transmit`],
//! [`Socket::poll_event`], [`Socket::poll_timeout`]) and passes time in as an
//! [`Instant`]. Both netkit drivers run this same machine, so they behave identically.
//!
//! # Examples
//!
//! Driving a socket by hand, as a driver would:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use netkit_socket::{Config, Event, Socket, Transmit};
//!
//! let now = Instant::now();
//! let mut s: Socket = Socket::accepted(now, Config { high_water: 8, low_water: 0, ..Config::default() });
//! assert_eq!(s.poll_event(), Some(Event::Open));
//!
//! // The application writes 12 bytes; 8 fit under the high-water mark.
//! assert_eq!(s.write(now, b"hello world!").unwrap(), 8);
//!
//! // The kernel takes 5 bytes, then 3.
//! assert_eq!(s.poll_transmit(), Transmit::Bytes(b"hello wo"));
//! s.handle_sent(now, 5);
//! assert_eq!(s.poll_event(), None); // still above the low-water mark
//! s.handle_sent(now, 3);
//! assert_eq!(s.poll_event(), Some(Event::Drain)); // the short write is answered once
//!
//! // Peer EOF: `end`, then (no half-open by default) our FIN, then `close`.
//! s.handle_eof(now);
//! assert_eq!(s.poll_event(), Some(Event::End));
//! assert_eq!(s.poll_transmit(), Transmit::Shutdown);
//! s.handle_shutdown(now);
//! assert_eq!(s.poll_event(), Some(Event::Close(None)));
//! assert!(s.is_closed());
//!
//! // Idle timeouts are driven by the caller's clock.
//! let mut s: Socket = Socket::accepted(now, Config::default());
//! s.set_timeout(now, Some(Duration::from_secs(5)));
//! assert_eq!(s.poll_timeout(), Some(now + Duration::from_secs(5)));
//! ```

pub mod accept;
pub mod connect;
mod error;
pub mod linger;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::{Duration, Instant};

pub use error::Error;

/// Per-socket limits and behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Most bytes the socket buffers for the kernel; `write` accepts only up to this
    /// (the CLI's "a connection that stops reading holds at most 1 MiB").
    pub high_water: usize,
    /// After a short write, `drain` is emitted once the buffer is at or below this
    /// (clamped below `high_water`).
    pub low_water: usize,
    /// Keep the write side open after the peer's EOF (node's `allowHalfOpen`).
    /// When `false` (the default), the peer's EOF makes the socket `end()` itself.
    pub allow_half_open: bool,
    /// An empty write buffer keeps at most this much capacity, so idle
    /// connections hold no buffer memory while small echo-style writes do not
    /// allocate in the steady state.
    pub retain_capacity: usize,
    /// Writes of at least this many bytes made while nothing is buffered may go
    /// straight to the kernel ([`Socket::can_write_through`]), skipping a copy;
    /// smaller writes coalesce in the buffer into one syscall per event-loop tick.
    pub write_through: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            high_water: 1024 * 1024,
            low_water: 256 * 1024,
            allow_half_open: false,
            retain_capacity: 512,
            write_through: 4096,
        }
    }
}

/// Something the application's handler should hear about. `T` is the TLS
/// layer's error type (see [`Error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<T = Infallible> {
    /// The connection is established (Bun's `open`).
    Open,
    /// A short write happened and the buffer has since fallen to the low-water mark.
    Drain,
    /// The peer shut its sending side (EOF).
    End,
    /// The idle timer expired. The socket is not closed; the handler decides.
    Timeout,
    /// An I/O failure on an open socket; `Close(Some(..))` follows.
    Error(Error<T>),
    /// The connection attempt failed; nothing else is ever emitted for this socket.
    ConnectError(Error<T>),
    /// The socket is closed (with the error that closed it, if any). Always last,
    /// exactly once per socket that was not a `ConnectError`. The driver drops the
    /// file descriptor after delivering it.
    Close(Option<Error<T>>),
}

/// What the driver should do on the wire next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Transmit<'a> {
    /// Nothing to send now.
    Idle,
    /// Send these bytes, then report how many the kernel took with [`Socket::handle_sent`].
    Bytes(&'a [u8]),
    /// Everything is flushed: shut the sending side (FIN), then call [`Socket::handle_shutdown`].
    Shutdown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteSide {
    Open,
    /// `end()` was called: flush, then shut down.
    Ending,
    /// FIN sent.
    Shut,
}

/// One TCP connection's Bun semantics. See the [crate docs](crate) for the driving loop.
///
/// `T` is the error type of a TLS layer over the socket, carried by its events
/// ([`Error::Tls`]); a plain socket has none.
#[derive(Debug)]
pub struct Socket<T = Infallible> {
    config: Config,
    phase: Phase,
    read_open: bool,
    write_side: WriteSide,
    paused: bool,
    reset_on_close: bool,
    /// The peer ended without `allow_half_open`: end our side once the handler has
    /// seen `End` (so it can still write a last reply).
    auto_end: bool,
    /// `End` has been handed out by `poll_event`.
    end_seen: bool,
    /// Buffered bytes are `buf[head..]`.
    buf: Vec<u8>,
    head: usize,
    /// A short write happened and `drain` has not yet answered it.
    drain_armed: bool,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    events: VecDeque<Event<T>>,
    bytes_read: u64,
    bytes_written: u64,
}

impl<T: Clone + PartialEq> Socket<T> {
    fn new(phase: Phase, config: Config) -> Self {
        Self {
            config,
            phase,
            read_open: true,
            write_side: WriteSide::Open,
            paused: false,
            reset_on_close: false,
            auto_end: false,
            end_seen: false,
            buf: Vec::new(),
            head: 0,
            drain_armed: false,
            timeout: None,
            deadline: None,
            events: VecDeque::new(),
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    /// A socket accepted by a listener: already open, with [`Event::Open`] queued.
    pub fn accepted(_now: Instant, config: Config) -> Self {
        let mut s = Self::new(Phase::Open, config);
        s.events.push_back(Event::Open);
        s
    }

    /// A client socket whose connect is in progress. Report the outcome with
    /// [`handle_connected`](Self::handle_connected) or
    /// [`handle_connect_error`](Self::handle_connect_error) (the connect plan,
    /// [`connect::ConnectPlan`], decides which and when, including the connect
    /// timeout). Writes before the connection is established are buffered; the
    /// idle timer starts when the socket opens.
    #[must_use]
    pub fn connecting(_now: Instant, config: Config) -> Self {
        Self::new(Phase::Connecting, config)
    }

    /// The connect succeeded: queues [`Event::Open`].
    pub fn handle_connected(&mut self, now: Instant) {
        if self.phase == Phase::Connecting {
            self.phase = Phase::Open;
            self.events.push_back(Event::Open);
            self.touch(now);
        }
    }

    /// The connect failed: queues [`Event::ConnectError`]; the socket is closed and
    /// emits nothing else (no `open`, no `close`).
    pub fn handle_connect_error(&mut self, err: Error<T>) {
        if self.phase == Phase::Connecting {
            self.phase = Phase::Closed;
            self.release_buffer();
            self.events.push_back(Event::ConnectError(err));
        }
    }

    /// Bytes arrived from the peer. `Ok` means the driver should deliver the same
    /// slice to the application's `data` handler (data is not copied or queued here);
    /// it re-arms the idle timer. Input after the peer's EOF or on a closed socket is
    /// refused with an error and must not be delivered.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) -> Result<(), Error<T>> {
        match self.phase {
            Phase::Closed => return Err(Error::Closed),
            Phase::Connecting => self.handle_connected(now),
            Phase::Open => {}
        }
        if !self.read_open {
            return Err(Error::Closed);
        }
        self.bytes_read += bytes.len() as u64;
        self.touch(now);
        Ok(())
    }

    /// The peer shut its sending side. Queues [`Event::End`]; without
    /// `allow_half_open` the socket then ends its own side (flush, FIN, close) as
    /// soon as `End` has been handed out, so the handler may still write a reply.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.phase != Phase::Open || !self.read_open {
            return;
        }
        self.read_open = false;
        self.events.push_back(Event::End);
        if self.write_side == WriteSide::Shut {
            self.finish(None);
        } else if !self.config.allow_half_open {
            self.auto_end = true;
        }
    }

    /// An I/O failure (read, write or shutdown). On an open socket this queues
    /// [`Event::Error`] then [`Event::Close`]; on a connecting socket it is a
    /// [`Event::ConnectError`]. Buffered bytes are dropped.
    pub fn handle_error(&mut self, err: Error<T>) {
        match self.phase {
            Phase::Connecting => self.handle_connect_error(err),
            Phase::Open => {
                self.events.push_back(Event::Error(err.clone()));
                self.finish(Some(err));
            }
            Phase::Closed => {}
        }
    }

    /// What to put on the wire next. Call after every application call and every
    /// `handle_*`, until it returns [`Transmit::Idle`] or the kernel would block.
    pub fn poll_transmit(&self) -> Transmit<'_> {
        if self.phase != Phase::Open {
            return Transmit::Idle;
        }
        if self.head < self.buf.len() {
            return Transmit::Bytes(&self.buf[self.head..]);
        }
        if self.shutdown_due() {
            return Transmit::Shutdown;
        }
        Transmit::Idle
    }

    fn shutdown_due(&self) -> bool {
        self.write_side == WriteSide::Ending
            || (self.write_side == WriteSide::Open && self.auto_end && self.end_seen)
    }

    /// The kernel took `n` bytes of what [`poll_transmit`](Self::poll_transmit) offered.
    /// May queue [`Event::Drain`].
    pub fn handle_sent(&mut self, now: Instant, n: usize) {
        let n = n.min(self.buf.len() - self.head);
        if n == 0 {
            return;
        }
        self.head += n;
        self.bytes_written += n as u64;
        self.touch(now);
        if self.head == self.buf.len() {
            self.buf.clear();
            self.head = 0;
            if self.buf.capacity() > self.config.retain_capacity {
                self.buf = Vec::new();
            }
        }
        if self.drain_armed && self.buffered() <= self.low_water() {
            self.drain_armed = false;
            self.events.push_back(Event::Drain);
        }
    }

    /// The driver shut the sending side after [`Transmit::Shutdown`]. Closes the
    /// socket if the peer has already ended.
    pub fn handle_shutdown(&mut self, _now: Instant) {
        if self.phase == Phase::Open && self.shutdown_due() {
            self.write_side = WriteSide::Shut;
            if !self.read_open {
                self.finish(None);
            }
        }
    }

    /// Processes the idle timer: queues [`Event::Timeout`] if the deadline has
    /// passed. The timer then stays disarmed until activity or
    /// [`set_timeout`](Self::set_timeout) re-arms it. Idempotent: a spurious or
    /// early call is a no-op. The idle timer never runs while connecting: the
    /// connect timeout is the connect plan's.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase != Phase::Open {
            return;
        }
        if let Some(deadline) = self.deadline {
            if now >= deadline {
                self.deadline = None;
                self.events.push_back(Event::Timeout);
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Open {
            self.deadline
        } else {
            None
        }
    }

    /// The next event for the application. Poll after every `handle_*` and
    /// application call until `None`.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event<T>> {
        let ev = self.events.pop_front();
        if ev == Some(Event::End) {
            self.end_seen = true;
        }
        if ev.is_some() && self.events.is_empty() {
            // Events are rare (data is not queued): hold no queue memory while idle.
            self.events = VecDeque::new();
        }
        ev
    }

    /// Queues bytes for the peer and returns how many were accepted: all of them
    /// unless the buffer would pass the high-water mark. Fewer than `bytes.len()`
    /// (possibly 0) is backpressure: the caller keeps the rest and writes it again
    /// after [`Event::Drain`]. Bytes written in one event-loop tick coalesce into one
    /// buffer and so one syscall. An empty write returns `Ok(0)` and arms nothing.
    pub fn write(&mut self, now: Instant, bytes: &[u8]) -> Result<usize, Error<T>> {
        if self.phase == Phase::Closed {
            return Err(Error::Closed);
        }
        if self.write_side != WriteSide::Open {
            return Err(Error::Ended);
        }
        if bytes.is_empty() {
            return Ok(0);
        }
        let room = self.config.high_water.saturating_sub(self.buffered());
        let take = room.min(bytes.len());
        if take < bytes.len() {
            self.drain_armed = true;
        }
        if take > 0 {
            if self.head > 0 && self.head >= self.buf.len() / 2 {
                self.buf.drain(..self.head);
                self.head = 0;
            }
            self.buf.extend_from_slice(&bytes[..take]);
            self.touch(now);
        }
        Ok(take)
    }

    /// Whether the driver may hand a `len`-byte write straight to the kernel instead
    /// of [`write`](Self::write): the socket is open, its sending side too, nothing is
    /// buffered (so order is kept) and `len` is at least `write_through`. The driver
    /// then reports what the kernel took with
    /// [`handle_sent_direct`](Self::handle_sent_direct) and `write`s the rest.
    #[must_use]
    pub fn can_write_through(&self, len: usize) -> bool {
        self.phase == Phase::Open
            && self.write_side == WriteSide::Open
            && !self.shutdown_due()
            && self.buffered() == 0
            && len > 0
            && len >= self.config.write_through
    }

    /// The kernel took `n` bytes of a write-through (see
    /// [`can_write_through`](Self::can_write_through)).
    pub fn handle_sent_direct(&mut self, now: Instant, n: usize) {
        if n > 0 && self.phase == Phase::Open {
            self.bytes_written += n as u64;
            self.touch(now);
        }
    }

    /// Ends the sending side gracefully: buffered bytes are flushed, then FIN is
    /// sent. The socket closes once the peer has ended too. Idempotent.
    pub fn end(&mut self, _now: Instant) -> Result<(), Error<T>> {
        if self.phase == Phase::Closed {
            return Err(Error::Closed);
        }
        if self.write_side == WriteSide::Open {
            self.write_side = WriteSide::Ending;
        }
        Ok(())
    }

    /// Closes now: unsent bytes are dropped and [`Event::Close`] is queued.
    /// Idempotent.
    pub fn close(&mut self) {
        if self.phase != Phase::Closed {
            self.finish(None);
        }
    }

    /// Closes now with a reset (RST instead of FIN); see
    /// [`reset_on_close`](Self::reset_on_close).
    pub fn terminate(&mut self) {
        if self.phase != Phase::Closed {
            self.reset_on_close = true;
            self.finish(None);
        }
    }

    /// Stops asking for input (read backpressure). The driver stops reading.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Asks for input again after [`pause`](Self::pause).
    pub fn resume(&mut self) {
        self.paused = false;
    }

    /// Arms (or with `None`, disarms) the idle timer: [`Event::Timeout`] fires when
    /// `timeout` passes without input or output progress.
    pub fn set_timeout(&mut self, now: Instant, timeout: Option<Duration>) {
        self.timeout = timeout.filter(|d| !d.is_zero());
        self.deadline = self.timeout.map(|d| now + d);
    }

    /// Whether the driver should read from the socket now.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        self.phase == Phase::Open && self.read_open && !self.paused
    }

    /// Whether there is something to transmit (the driver should wait for writability
    /// if the kernel would block).
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.poll_transmit() != Transmit::Idle
    }

    /// Whether [`poll_event`](Self::poll_event) has something to return.
    #[must_use]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Bytes accepted by `write` and not yet taken by the kernel.
    #[must_use]
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.head
    }

    /// Whether the socket is closed (after `Close` or `ConnectError` was queued).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether the connection is established and not yet closed.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether `end()` was called (or implied by the peer's EOF, once `End` was seen).
    #[must_use]
    pub fn is_ending(&self) -> bool {
        self.write_side != WriteSide::Open || self.shutdown_due()
    }

    /// Whether the peer has sent EOF.
    #[must_use]
    pub fn peer_ended(&self) -> bool {
        !self.read_open
    }

    /// Whether the driver should close with a reset (`SO_LINGER` 0) on [`Event::Close`].
    #[must_use]
    pub fn reset_on_close(&self) -> bool {
        self.reset_on_close
    }

    /// Total bytes delivered by `handle_input`.
    #[must_use]
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Total bytes taken by the kernel.
    #[must_use]
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn low_water(&self) -> usize {
        self.config
            .low_water
            .min(self.config.high_water.saturating_sub(1))
    }

    fn touch(&mut self, now: Instant) {
        if let Some(t) = self.timeout {
            self.deadline = Some(now + t);
        }
    }

    fn release_buffer(&mut self) {
        self.buf = Vec::new();
        self.head = 0;
    }

    fn finish(&mut self, err: Option<Error<T>>) {
        self.phase = Phase::Closed;
        self.drain_armed = false;
        self.deadline = None;
        self.release_buffer();
        self.events.push_back(Event::Close(err));
    }
}

#[cfg(test)]
mod tests;
