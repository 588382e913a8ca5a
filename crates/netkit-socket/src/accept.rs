//! When a listener should accept: one policy for every driver.
//!
//! A failed `accept` either concerns one connection (the client gave up:
//! `ECONNABORTED`, `EPROTO`, `EPERM` from a firewall), and accepting goes on at
//! once, or the process (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`: out of
//! descriptors or memory). Then the listener stays readable, so accepting again
//! at once would spin, and sleeping a fixed interval wastes time or wakes-ups.
//! [`AcceptGate`] pauses accepting instead and resumes as soon as one of the
//! listener's own connections closes (a descriptor was freed), or after a
//! back-off (descriptors freed elsewhere in the process), doubling from 50 ms
//! to 1 s while the shortage lasts.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, Instant};
//! use netkit_socket::accept::AcceptGate;
//!
//! let now = Instant::now();
//! let mut gate = AcceptGate::new();
//! gate.handle_error(now, "ECONNABORTED"); // one client gave up: go on
//! assert!(gate.wants_accept());
//! gate.handle_error(now, "EMFILE"); // out of descriptors: pause
//! assert!(!gate.wants_accept());
//! assert_eq!(gate.poll_timeout(), Some(now + Duration::from_millis(50)));
//! gate.handle_closed(); // a connection closed: a descriptor is free
//! assert!(gate.wants_accept());
//! ```

use std::time::{Duration, Instant};

/// The first back-off after a resource shortage.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Whether a listener should accept now. See the [module docs](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptGate {
    /// Paused until this instant (or an earlier close).
    paused_until: Option<Instant>,
    /// The back-off the next shortage gets.
    backoff: Option<Duration>,
}

/// Whether an `accept` failure with this errno name is the process's shortage
/// (pause) rather than one connection's failure (go on).
#[must_use]
pub fn is_resource_shortage(code: &str) -> bool {
    matches!(code, "EMFILE" | "ENFILE" | "ENOBUFS" | "ENOMEM")
}

impl AcceptGate {
    /// A gate that accepts.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `accept` failed with the errno named `code` (node's name, `EMFILE`...).
    pub fn handle_error(&mut self, now: Instant, code: &str) {
        if !is_resource_shortage(code) {
            return;
        }
        let backoff = self.backoff.unwrap_or(FIRST_BACKOFF);
        self.paused_until = Some(now + backoff);
        self.backoff = Some((backoff * 2).min(MAX_BACKOFF));
    }

    /// `accept` succeeded: the shortage, if any, is over.
    pub fn handle_accepted(&mut self) {
        self.backoff = None;
    }

    /// One of the listener's connections closed: its descriptor is free, so
    /// accept again now.
    pub fn handle_closed(&mut self) {
        self.paused_until = None;
    }

    /// Whether to accept (and to watch the listener for readiness) now.
    #[must_use]
    pub fn wants_accept(&self) -> bool {
        self.paused_until.is_none()
    }

    /// When to try again without a close.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.paused_until
    }

    /// Resumes accepting once the back-off has passed. Idempotent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.paused_until.is_some_and(|t| now >= t) {
            self.paused_until = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortages_back_off_and_a_close_resumes() {
        let now = netkit_test_clock::origin();
        let ms = Duration::from_millis;
        let mut g = AcceptGate::new();
        for code in ["ECONNABORTED", "EPROTO", "EPERM", "EINTR"] {
            g.handle_error(now, code);
            assert!(g.wants_accept(), "{code}");
        }
        g.handle_error(now, "EMFILE");
        assert_eq!(g.poll_timeout(), Some(now + ms(50)));
        g.handle_timeout(now + ms(10));
        assert!(!g.wants_accept(), "early: still paused");
        g.handle_timeout(now + ms(50));
        assert!(g.wants_accept());
        // Still short: the back-off doubles, up to 1 s.
        let mut t = now + ms(50);
        for want in [100, 200, 400, 800, 1000, 1000] {
            g.handle_error(t, "ENFILE");
            assert_eq!(g.poll_timeout(), Some(t + ms(want)));
            t += ms(want);
            g.handle_timeout(t);
        }
        // A close resumes at once; a success resets the back-off.
        g.handle_error(t, "EMFILE");
        g.handle_closed();
        assert!(g.wants_accept());
        assert_eq!(g.poll_timeout(), None);
        g.handle_accepted();
        g.handle_error(t, "EMFILE");
        assert_eq!(g.poll_timeout(), Some(t + ms(50)));
    }
}
