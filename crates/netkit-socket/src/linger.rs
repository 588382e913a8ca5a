//! A lingering close: how a connection that still owes its peer a few bytes
//! (a TLS alert) ends so that the peer reliably reads them.
//!
//! Closing a socket whose receive queue holds unread bytes makes the kernel
//! send a reset instead of a FIN, and a peer that receives the reset before it
//! read our last bytes loses them (Linux discards the receive queue on a
//! reset). So a closing connection with parting bytes does not close at once:
//! it sends them, shuts its sending side (FIN after the bytes), then reads and
//! discards whatever the peer still sends until the peer's EOF, a byte budget
//! or a deadline, and only then closes. nginx's `lingering_close` is the same
//! idea. The driver owns the socket; this value decides.
//!
//! ```
//! use std::time::Instant;
//! use netkit_socket::Transmit;
//! use netkit_socket::linger::Linger;
//!
//! # let now = Instant::now();
//! let mut l = Linger::new(now, b"alert");
//! assert_eq!(l.poll_transmit(), Transmit::Bytes(b"alert"));
//! l.handle_sent(5);
//! assert_eq!(l.poll_transmit(), Transmit::Shutdown);
//! l.handle_shutdown();
//! assert!(l.wants_read());
//! l.handle_input(now, 100); // the peer's late bytes, discarded
//! l.handle_eof();           // the peer closed: now close the socket
//! assert!(l.is_done());
//! ```

use std::time::{Duration, Instant};

use crate::Transmit;

/// How long a closing connection waits for its peer's EOF at most.
pub const LINGER_TIME: Duration = Duration::from_secs(2);
/// How many late bytes it discards at most before it gives up.
pub const LINGER_BUDGET: usize = 256 * 1024;

/// One closing connection's parting send and lingering read. See the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct Linger {
    out: Vec<u8>,
    sent: usize,
    shut: bool,
    deadline: Instant,
    budget: usize,
    done: bool,
}

impl Linger {
    /// A close that owes `parting` (sent first, then FIN) and lingers from
    /// `now` for [`LINGER_TIME`] at most.
    #[must_use]
    pub fn new(now: Instant, parting: &[u8]) -> Self {
        Self {
            out: parting.to_vec(),
            sent: 0,
            shut: false,
            deadline: now + LINGER_TIME,
            budget: LINGER_BUDGET,
            done: false,
        }
    }

    /// What to send now: the parting bytes not yet taken, then the shutdown
    /// of the sending side, then nothing. Poll after [`handle_sent`] and
    /// [`handle_shutdown`], and when the socket turns writable.
    ///
    /// [`handle_sent`]: Self::handle_sent
    /// [`handle_shutdown`]: Self::handle_shutdown
    pub fn poll_transmit(&self) -> Transmit<'_> {
        if self.done || self.shut {
            Transmit::Idle
        } else if self.sent < self.out.len() {
            Transmit::Bytes(&self.out[self.sent..])
        } else {
            Transmit::Shutdown
        }
    }

    /// The kernel took `n` of the bytes [`poll_transmit`](Self::poll_transmit) offered.
    pub fn handle_sent(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.out.len());
    }

    /// The sending side is shut (FIN queued after the parting bytes).
    pub fn handle_shutdown(&mut self) {
        self.shut = true;
        self.out = Vec::new();
    }

    /// Whether the parting bytes still wait for room in the kernel.
    #[must_use]
    pub fn wants_write(&self) -> bool {
        !self.done && !self.shut
    }

    /// Whether to keep reading (and discarding) what the peer sends.
    #[must_use]
    pub fn wants_read(&self) -> bool {
        !self.done
    }

    /// `n` late bytes were read and discarded. Past the budget the close
    /// gives up waiting (a peer that keeps sending gets its reset).
    pub fn handle_input(&mut self, now: Instant, n: usize) {
        self.budget = self.budget.saturating_sub(n);
        if self.budget == 0 {
            self.done = true;
        }
        self.handle_timeout(now);
    }

    /// The peer's EOF: everything it sent was read, so closing now sends no
    /// reset.
    pub fn handle_eof(&mut self) {
        self.done = true;
    }

    /// A send, shutdown or read failed: the peer is gone, close now.
    pub fn handle_error(&mut self) {
        self.done = true;
    }

    /// The clock moved; past the deadline the close stops waiting. A call
    /// before the deadline is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if now >= self.deadline {
            self.done = true;
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout); `None` once done.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        (!self.done).then_some(self.deadline)
    }

    /// Whether the driver should close the socket now.
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netkit_test_clock::origin;

    #[test]
    fn sends_everything_then_shuts_then_waits_for_eof() {
        let now = origin();
        let mut l = Linger::new(now, b"abcdef");
        assert_eq!(l.poll_transmit(), Transmit::Bytes(b"abcdef"));
        l.handle_sent(2);
        assert!(l.wants_write());
        assert_eq!(l.poll_transmit(), Transmit::Bytes(b"cdef"));
        l.handle_sent(4);
        assert_eq!(l.poll_transmit(), Transmit::Shutdown);
        l.handle_shutdown();
        assert_eq!(l.poll_transmit(), Transmit::Idle);
        assert!(!l.wants_write() && l.wants_read() && !l.is_done());
        l.handle_input(now, 10);
        assert!(!l.is_done());
        l.handle_eof();
        assert!(l.is_done() && !l.wants_read());
        assert_eq!(l.poll_timeout(), None);
    }

    #[test]
    fn the_deadline_and_the_budget_end_it() {
        let now = origin();
        let mut l = Linger::new(now, b"x");
        assert_eq!(l.poll_timeout(), Some(now + LINGER_TIME));
        l.handle_timeout(now + LINGER_TIME - Duration::from_millis(1));
        assert!(!l.is_done(), "early timeouts are no-ops");
        l.handle_timeout(now + LINGER_TIME);
        assert!(l.is_done());
        assert_eq!(l.poll_transmit(), Transmit::Idle);

        let mut l = Linger::new(now, b"x");
        l.handle_input(now, LINGER_BUDGET - 1);
        assert!(!l.is_done());
        l.handle_input(now, 1);
        assert!(l.is_done());

        let mut l = Linger::new(now, b"x");
        l.handle_input(now + LINGER_TIME, 1);
        assert!(l.is_done(), "input past the deadline ends it too");

        let mut l = Linger::new(now, b"x");
        l.handle_error();
        assert!(l.is_done() && !l.wants_write());
    }

    proptest::proptest! {
        /// Any sequence of kernel results and peer behaviour: what is offered
        /// is always the unsent suffix of the parting bytes, the shutdown
        /// comes only after all of them, and once done nothing is offered,
        /// read or awaited.
        #[test]
        fn any_sequence_keeps_the_invariants(
            parting in proptest::collection::vec(proptest::num::u8::ANY, 1..64),
            ops in proptest::collection::vec((0u8..5, 0usize..100_000), 0..40),
        ) {
            let t0 = origin();
            let mut now = t0;
            let mut l = Linger::new(now, &parting);
            let mut sent = 0;
            let mut shut = false;
            for (op, n) in ops {
                match l.poll_transmit() {
                    Transmit::Bytes(b) => {
                        proptest::prop_assert!(!shut);
                        proptest::prop_assert_eq!(b, &parting[sent..]);
                    }
                    Transmit::Shutdown => proptest::prop_assert_eq!(sent, parting.len()),
                    Transmit::Idle => proptest::prop_assert!(shut || l.is_done()),
                }
                match op {
                    0 => if let Transmit::Bytes(b) = l.poll_transmit() {
                        let k = n % (b.len() + 1);
                        l.handle_sent(k);
                        sent += k;
                    },
                    1 => if l.poll_transmit() == Transmit::Shutdown {
                        l.handle_shutdown();
                        shut = true;
                    },
                    2 => l.handle_input(now, n),
                    3 => { now += Duration::from_millis(n as u64 % 1500); l.handle_timeout(now); }
                    _ => if n % 7 == 0 { l.handle_eof() },
                }
                if l.is_done() {
                    proptest::prop_assert_eq!(l.poll_transmit(), Transmit::Idle);
                    proptest::prop_assert_eq!(l.poll_timeout(), None);
                    proptest::prop_assert!(!l.wants_read() && !l.wants_write());
                } else {
                    proptest::prop_assert!(now < t0 + LINGER_TIME);
                }
            }
        }
    }

    #[test]
    fn an_over_report_of_sent_bytes_cannot_overrun() {
        let now = origin();
        let mut l = Linger::new(now, b"ab");
        l.handle_sent(9);
        assert_eq!(l.poll_transmit(), Transmit::Shutdown);
    }
}
