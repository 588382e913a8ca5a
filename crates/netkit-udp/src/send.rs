//! Carrying out a plan with Bun's accounting: `sendMany` returns how many
//! datagrams the kernel accepted; a short batch (or a full queue: EAGAIN,
//! ENOBUFS, ENOMEM) is backpressure, not an error, and arms one `drain` for
//! when the socket can send again; EINVAL, EMSGSIZE and the like are errors
//! of the call. The caller re-sends from the returned count after `drain`.
//! The driver makes the kernel calls; this value decides what they mean.

use std::collections::VecDeque;

use crate::plan::Batch;

/// What one kernel call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It took this many datagrams of the batch (all of a GSO send, or a
    /// prefix of a `sendmmsg` batch).
    Sent(usize),
    /// No room now (EAGAIN, ENOBUFS, ENOMEM): backpressure.
    Full,
}

/// What the application hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The socket can send again after backpressure (once per short send).
    Drain,
}

/// One socket's sending side: the plan being carried out and the drain owed.
#[derive(Debug, Default)]
pub struct Sender {
    plan: VecDeque<Batch>,
    accepted: usize,
    blocked: bool,
    events: VecDeque<Event>,
}

impl Sender {
    /// A sender with nothing in progress.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts carrying out `plan` (one `sendMany` call); any plan still in
    /// progress is dropped (its count was already returned).
    pub fn start(&mut self, plan: Vec<Batch>) {
        self.plan = plan.into();
        self.accepted = 0;
    }

    /// The next kernel call to make, or `None`: the plan is done, or the
    /// socket is full (poll again after [`handle_writable`](Self::handle_writable)
    /// only for a new plan: Bun's caller re-sends the rest itself).
    #[must_use]
    pub fn poll_batch(&self) -> Option<Batch> {
        if self.blocked {
            None
        } else {
            self.plan.front().copied()
        }
    }

    /// What the call for [`poll_batch`](Self::poll_batch)'s batch did.
    pub fn handle_outcome(&mut self, outcome: Outcome) {
        let Some(batch) = self.plan.front().copied() else {
            return;
        };
        let len = batch.range().len();
        match outcome {
            Outcome::Sent(n) if n >= len => {
                self.accepted += len;
                self.plan.pop_front();
            }
            Outcome::Sent(n) => {
                // A short batch: the rest waits for the caller after drain.
                self.accepted += n;
                self.block();
            }
            Outcome::Full => self.block(),
        }
    }

    fn block(&mut self) {
        self.plan.clear();
        self.blocked = true;
    }

    /// Datagrams the kernel accepted for the current plan: `sendMany`'s
    /// return value once [`poll_batch`](Self::poll_batch) is `None`.
    #[must_use]
    pub fn accepted(&self) -> usize {
        self.accepted
    }

    /// Whether to watch the socket for writability (a drain is owed).
    #[must_use]
    pub fn wants_write(&self) -> bool {
        self.blocked
    }

    /// The socket is writable: a drain owed is delivered. A spurious call
    /// (nothing owed) does nothing.
    pub fn handle_writable(&mut self) {
        if std::mem::take(&mut self.blocked) {
            self.events.push_back(Event::Drain);
        }
    }

    /// The next event; poll after [`handle_writable`](Self::handle_writable).
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }
}

/// Whether an OS error of a send is backpressure (by node's errno name):
/// EAGAIN/EWOULDBLOCK, ENOBUFS, ENOMEM. Anything else is an error of the call.
#[must_use]
pub fn is_backpressure(code: &str) -> bool {
    matches!(code, "EAGAIN" | "EWOULDBLOCK" | "ENOBUFS" | "ENOMEM")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn many(start: usize, count: usize) -> Batch {
        Batch::Many { start, count }
    }

    #[test]
    fn whole_short_and_full_sends() {
        let mut s = Sender::new();
        s.start(vec![
            many(0, 3),
            Batch::Gso {
                start: 3,
                count: 2,
                segment: 9,
            },
        ]);
        assert_eq!(s.poll_batch(), Some(many(0, 3)));
        s.handle_outcome(Outcome::Sent(3));
        assert!(matches!(s.poll_batch(), Some(Batch::Gso { .. })));
        s.handle_outcome(Outcome::Sent(2));
        assert_eq!(
            (s.poll_batch(), s.accepted(), s.wants_write()),
            (None, 5, false)
        );
        s.handle_writable();
        assert_eq!(s.poll_event(), None, "no drain without backpressure");

        s.start(vec![many(0, 4), many(4, 4)]);
        s.handle_outcome(Outcome::Sent(1));
        assert_eq!(
            (s.poll_batch(), s.accepted(), s.wants_write()),
            (None, 1, true)
        );
        s.handle_writable();
        assert_eq!(s.poll_event(), Some(Event::Drain));
        s.handle_writable();
        assert_eq!(s.poll_event(), None, "one drain per short send");

        s.start(vec![many(0, 2)]);
        s.handle_outcome(Outcome::Full);
        assert_eq!((s.accepted(), s.wants_write()), (0, true));
        assert!(is_backpressure("ENOBUFS") && !is_backpressure("EMSGSIZE"));
    }

    proptest! {
        /// Whatever the kernel does, the count is a prefix of the plan's
        /// datagrams, a drain comes only after backpressure, and exactly one.
        #[test]
        fn the_count_is_a_prefix_and_drains_pair_with_backpressure(
            sizes in proptest::collection::vec(1usize..10, 1..20),
            outcomes in proptest::collection::vec((any::<bool>(), 0usize..12), 1..30),
        ) {
            let mut plan = Vec::new();
            let mut start = 0;
            for n in &sizes {
                plan.push(many(start, *n));
                start += n;
            }
            let mut s = Sender::new();
            s.start(plan);
            let mut sent = 0;
            for (full, n) in outcomes {
                let Some(b) = s.poll_batch() else { break };
                let len = b.range().len();
                prop_assert_eq!(b.range().start, sent);
                if full {
                    s.handle_outcome(Outcome::Full);
                } else {
                    let n = n.min(len);
                    s.handle_outcome(Outcome::Sent(n));
                    sent += n;
                }
                prop_assert_eq!(s.accepted(), sent);
            }
            let blocked = s.wants_write();
            s.handle_writable();
            prop_assert_eq!(s.poll_event().is_some(), blocked);
            prop_assert_eq!(s.poll_event(), None);
            prop_assert!(s.accepted() <= start);
        }
    }
}
