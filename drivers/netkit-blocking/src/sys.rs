//! The driver's one unsafe shim: registering a file descriptor with the poller.
#![allow(
    unsafe_code,
    reason = "polling::Poller::add is unsafe; this module keeps its contract"
)]

use std::io;
use std::os::fd::AsRawFd;

use polling::{Event, PollMode, Poller};

/// Registers `source` with the poller, level-triggered.
///
/// The caller must delete the source from the poller before closing it: every
/// `Conn` and listener in the loop calls [`Poller::delete`] before its socket drops.
pub(crate) fn register(poller: &Poller, source: &impl AsRawFd, ev: Event) -> io::Result<()> {
    // SAFETY: the loop deletes every registered fd from the poller before the
    // owning socket is dropped (see `Conn` removal and listener stop), which is the
    // contract `Poller::add_with_mode` asks for.
    unsafe { poller.add_with_mode(source.as_raw_fd(), ev, PollMode::Level) }
}
