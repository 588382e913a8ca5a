//! A level-triggered readiness poller.
//!
//! On Linux it calls epoll directly: one `epoll_wait` per loop turn. (The `polling`
//! crate's `wait` re-arms a timerfd and a wake-up fd on every call: five syscalls
//! per turn, measured with strace at 1 connection — 7 syscalls per echo round trip
//! against tokio's 3. See the TCP benchmark notes in ARCHITECTURE.md.) Elsewhere it
//! wraps `polling` in level-triggered mode. Both expose the same small API.
#![allow(
    unsafe_code,
    reason = "epoll and eventfd have no safe std wrappers; each block states its contract"
)]

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// One readiness event.
#[derive(Debug, Clone, Copy)]
pub struct Event {
    /// The key the fd was registered with.
    pub key: usize,
    /// Readable (or hung up / in error: a read reports which).
    pub readable: bool,
    /// Writable (or hung up / in error).
    pub writable: bool,
    /// The kernel reported an error condition (`EPOLLERR`).
    pub error: bool,
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use std::os::fd::{FromRawFd, OwnedFd};

    /// The key reserved for the wake-up eventfd.
    const WAKE_KEY: u64 = u64::MAX;

    /// An epoll instance plus an eventfd to wake it from other threads.
    #[derive(Debug)]
    pub struct Poller {
        epfd: OwnedFd,
        wake: OwnedFd,
    }

    /// A reusable buffer of events.
    pub struct Events {
        buf: Vec<libc::epoll_event>,
        len: usize,
    }

    impl std::fmt::Debug for Events {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Events").field("len", &self.len).finish()
        }
    }

    impl Default for Events {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Events {
        /// A buffer for up to 1,024 events per wait.
        #[must_use]
        pub fn new() -> Self {
            Self {
                buf: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
                len: 0,
            }
        }

        /// A placeholder that holds no memory (swapped in while events are dispatched).
        #[must_use]
        pub fn new_empty() -> Self {
            Self {
                buf: Vec::new(),
                len: 0,
            }
        }

        /// Forgets the events of the last wait.
        pub fn clear(&mut self) {
            self.len = 0;
        }

        /// The events of the last wait.
        pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
            self.buf[..self.len]
                .iter()
                .filter(|e| e.u64 != WAKE_KEY)
                .map(|e| {
                    let f = e.events as i32;
                    let hup_err = f & (libc::EPOLLHUP | libc::EPOLLERR) != 0;
                    Event {
                        key: e.u64 as usize,
                        readable: f & libc::EPOLLIN != 0 || hup_err,
                        writable: f & libc::EPOLLOUT != 0 || hup_err,
                        error: f & libc::EPOLLERR != 0,
                    }
                })
        }
    }

    fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    fn flags(readable: bool, writable: bool) -> u32 {
        let mut f = 0;
        if readable {
            f |= libc::EPOLLIN;
        }
        if writable {
            f |= libc::EPOLLOUT;
        }
        f as u32
    }

    impl Poller {
        /// A new epoll instance with its wake-up eventfd.
        pub fn new() -> io::Result<Self> {
            // SAFETY: epoll_create1 takes a flag and returns a new fd or -1.
            let epfd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
            // SAFETY: `epfd` is a fresh fd that nothing else owns.
            let epfd = unsafe { OwnedFd::from_raw_fd(epfd) };
            // SAFETY: eventfd takes an initial value and flags and returns a new fd or -1.
            let wake = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
            // SAFETY: `wake` is a fresh fd that nothing else owns.
            let wake = unsafe { OwnedFd::from_raw_fd(wake) };
            let p = Self { epfd, wake };
            p.ctl(
                libc::EPOLL_CTL_ADD,
                p.wake.as_raw_fd(),
                WAKE_KEY,
                libc::EPOLLIN as u32,
            )?;
            Ok(p)
        }

        fn ctl(&self, op: libc::c_int, fd: RawFd, key: u64, events: u32) -> io::Result<()> {
            let mut ev = libc::epoll_event { events, u64: key };
            // SAFETY: `ev` is a valid epoll_event for the duration of the call; the
            // kernel validates both fds.
            cvt(unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) })?;
            Ok(())
        }

        /// Registers `fd`; the caller must [`delete`](Self::delete) it before closing it.
        pub fn add(&self, fd: &impl AsRawFd, key: usize, r: bool, w: bool) -> io::Result<()> {
            self.ctl(libc::EPOLL_CTL_ADD, fd.as_raw_fd(), key as u64, flags(r, w))
        }

        /// Changes the interest (and key) of a registered fd.
        pub fn modify(&self, fd: &impl AsRawFd, key: usize, r: bool, w: bool) -> io::Result<()> {
            self.ctl(libc::EPOLL_CTL_MOD, fd.as_raw_fd(), key as u64, flags(r, w))
        }

        /// Unregisters an fd (before it is closed).
        pub fn delete(&self, fd: &impl AsRawFd) -> io::Result<()> {
            self.ctl(libc::EPOLL_CTL_DEL, fd.as_raw_fd(), 0, 0)
        }

        /// Waits for events (at most `timeout`, rounded up to whole milliseconds so
        /// that a timer is never woken early).
        pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
            let ms = match timeout {
                None => -1,
                Some(d) => d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
            };
            // SAFETY: `buf` has `buf.len()` initialised entries the kernel may overwrite.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.buf.as_mut_ptr(),
                    events.buf.len() as libc::c_int,
                    ms,
                )
            };
            events.len = cvt(n)? as usize;
            if events.buf[..events.len].iter().any(|e| e.u64 == WAKE_KEY) {
                let mut v = 0u64;
                // SAFETY: reads 8 bytes into `v`; the eventfd is non-blocking.
                unsafe {
                    libc::read(self.wake.as_raw_fd(), (&mut v as *mut u64).cast(), 8);
                }
            }
            Ok(())
        }

        /// Wakes a `wait` in progress, or the next one.
        pub fn notify(&self) -> io::Result<()> {
            let v = 1u64;
            // SAFETY: writes 8 bytes from `v` to the eventfd.
            let r = unsafe { libc::write(self.wake.as_raw_fd(), (&v as *const u64).cast(), 8) };
            if r < 0 {
                let e = io::Error::last_os_error();
                // A full counter already guarantees a wake-up.
                if e.kind() != io::ErrorKind::WouldBlock {
                    return Err(e);
                }
            }
            Ok(())
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;
    use polling::PollMode;

    /// `polling` in level-triggered mode.
    #[derive(Debug)]
    pub struct Poller(polling::Poller);

    /// A reusable buffer of events.
    #[derive(Debug)]
    pub struct Events(polling::Events);

    impl Default for Events {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Events {
        /// A buffer of events.
        pub fn new() -> Self {
            Self(polling::Events::new())
        }
        /// A placeholder that holds (almost) no memory.
        pub fn new_empty() -> Self {
            Self(polling::Events::with_capacity(std::num::NonZeroUsize::MIN))
        }
        /// Forgets the events of the last wait.
        pub fn clear(&mut self) {
            self.0.clear();
        }
        /// The events of the last wait.
        pub fn iter(&self) -> impl Iterator<Item = Event> + '_ {
            self.0.iter().map(|e| Event {
                key: e.key,
                readable: e.readable,
                writable: e.writable,
                error: e.is_err() == Some(true),
            })
        }
    }

    impl Poller {
        /// A new poller.
        pub fn new() -> io::Result<Self> {
            polling::Poller::new().map(Self)
        }
        /// Registers `fd`; the caller must [`delete`](Self::delete) it before closing it.
        pub fn add(&self, fd: &impl AsRawFd, key: usize, r: bool, w: bool) -> io::Result<()> {
            // SAFETY: the loop deletes every registered fd before its socket drops,
            // which is the contract of `Poller::add_with_mode`.
            unsafe {
                self.0.add_with_mode(
                    fd.as_raw_fd(),
                    polling::Event::new(key, r, w),
                    PollMode::Level,
                )
            }
        }
        /// Changes the interest (and key) of a registered fd.
        pub fn modify(&self, fd: &impl AsRawFd, key: usize, r: bool, w: bool) -> io::Result<()> {
            // SAFETY: `fd` is registered and open for the duration of the call.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.as_raw_fd()) };
            self.0
                .modify_with_mode(fd, polling::Event::new(key, r, w), PollMode::Level)
        }
        /// Unregisters an fd (before it is closed).
        pub fn delete(&self, fd: &impl AsRawFd) -> io::Result<()> {
            // SAFETY: `fd` is open for the duration of the call.
            let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd.as_raw_fd()) };
            self.0.delete(fd)
        }
        /// Waits for events (at most `timeout`).
        pub fn wait(&self, events: &mut Events, timeout: Option<Duration>) -> io::Result<()> {
            self.0.wait(&mut events.0, timeout).map(|_| ())
        }
        /// Wakes a `wait` in progress, or the next one.
        pub fn notify(&self) -> io::Result<()> {
            self.0.notify()
        }
    }
}

pub use imp::{Events, Poller};
