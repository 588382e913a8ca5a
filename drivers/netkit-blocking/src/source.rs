//! Loop services: anything the loop drives besides its own timers. A TCP or
//! Unix server, a set of client connections, and (as the later issues land) a
//! DNS resolver, a connection pool or a UDP socket are each a [`Source`]: fds
//! registered under the source's own tokens, timers armed under those tokens,
//! and work to run "soon" (before the loop blocks). The loop routes readiness
//! and timers back to the source by token and knows nothing else about it.

use std::any::Any;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::AsRawFd;
use std::time::Instant;

use netkit_sys::Resolver;
use netkit_sys::sys::poller::Poller;

pub use netkit_sys::sys::poller::Event as Readiness;

/// A poller or timer key: the source's index in the loop, and the source's
/// own token.
pub(crate) fn key(source: usize, token: u32) -> u64 {
    ((source as u64) << 32) | u64::from(token)
}

pub(crate) fn split_key(key: u64) -> (usize, u32) {
    ((key >> 32) as usize, key as u32)
}

/// The loop's timer heap: (deadline, key) entries, moved lazily (a source
/// ignores an entry that no longer matches its deadline).
pub(crate) type TimerHeap = BinaryHeap<Reverse<(Instant, u64)>>;

/// What a source may use of the loop during one call.
pub struct Cx<'a> {
    pub(crate) poller: &'a Poller,
    pub(crate) timers: &'a mut TimerHeap,
    pub(crate) soon: &'a mut Vec<u64>,
    pub(crate) resolver: &'a mut Resolver,
    /// Who to wake when a DNS request finishes.
    pub(crate) dns_waiters: &'a mut std::collections::HashMap<netkit_dns::RequestId, u64>,
    pub(crate) source: usize,
    /// The loop's read buffer, shared by every socket of the loop.
    pub buf: &'a mut [u8],
    /// The loop's current time (taken once per turn).
    pub now: Instant,
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("source", &self.source)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl Cx<'_> {
    /// Registers `fd` under `token` with this interest (level-triggered). The
    /// source must [`deregister`](Self::deregister) it before closing it.
    pub fn register(
        &self,
        fd: &impl AsRawFd,
        token: u32,
        read: bool,
        write: bool,
    ) -> io::Result<()> {
        self.poller
            .add(fd, key(self.source, token) as usize, read, write)
    }

    /// Changes a registered fd's interest.
    pub fn reregister(
        &self,
        fd: &impl AsRawFd,
        token: u32,
        read: bool,
        write: bool,
    ) -> io::Result<()> {
        self.poller
            .modify(fd, key(self.source, token) as usize, read, write)
    }

    /// Unregisters an fd.
    pub fn deregister(&self, fd: &impl AsRawFd) -> io::Result<()> {
        self.poller.delete(fd)
    }

    /// Calls [`Source::timer`] with `token` at `at` (or later). Entries are not
    /// cancelled: a source ignores one whose deadline it no longer wants.
    pub fn arm(&mut self, at: Instant, token: u32) {
        self.timers.push(Reverse((at, key(self.source, token))));
    }

    /// Calls [`Source::soon`] with `token` before the loop next blocks.
    pub fn soon(&mut self, token: u32) {
        self.soon.push(key(self.source, token));
    }

    /// The loop's resolver (the connect plan's resolution step).
    pub fn resolver(&mut self) -> &mut Resolver {
        self.resolver
    }

    /// Calls [`Source::soon`] with `token` once the resolver's request `r`
    /// finished; take its answer from [`resolver`](Self::resolver) then.
    pub fn wake_on_dns(&mut self, r: netkit_dns::RequestId, token: u32) {
        self.dns_waiters.insert(r, key(self.source, token));
    }
}

/// A service the loop drives. See the [module docs](self).
pub trait Source: Any {
    /// An fd registered under `token` is ready.
    fn ready(&mut self, cx: &mut Cx<'_>, token: u32, ev: Readiness);
    /// A timer armed under `token` for `at` is due.
    fn timer(&mut self, cx: &mut Cx<'_>, token: u32, at: Instant);
    /// Work asked for with [`Cx::soon`].
    fn soon(&mut self, cx: &mut Cx<'_>, token: u32);
    /// Stop serving (`force`: close everything now).
    fn stop(&mut self, cx: &mut Cx<'_>, force: bool);
    /// Whether the source has nothing left to do (the loop then drops it).
    fn is_done(&self) -> bool;
    /// Whether the source keeps [`EventLoop::run`](crate::EventLoop::run)
    /// going: while it is not done, unless it says otherwise (a fetch
    /// client's idle pool lives on without keeping the loop alive).
    fn keeps_alive(&self) -> bool {
        !self.is_done()
    }
    /// The loop is dropping the source: deregister every fd.
    fn shutdown(&mut self, cx: &mut Cx<'_>);
    /// For typed access by the loop's owner.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Where a listening source listens.
    fn local_endpoint(&self) -> Option<netkit_sys::net::Endpoint> {
        None
    }
    /// Live connections, for sources that have any.
    fn connections(&self) -> usize {
        0
    }
    /// Swaps the source's handler (type-erased, from another thread); returns
    /// whether it was of the right type.
    fn reload(&mut self, handler: Box<dyn Any + Send>) -> bool {
        let _ = handler;
        false
    }
    /// For typed access by the loop's owner.
    fn as_any(&self) -> &dyn Any;
}
