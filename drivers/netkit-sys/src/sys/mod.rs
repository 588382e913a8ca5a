//! The one syscall shim both drivers use: every `unsafe` block of the drivers
//! lives under this module, each with a `// SAFETY:` line, and each capability
//! the drivers adapt to is probed here at run time (by real use) with a
//! fallback.
//!
//! What it is: the readiness poller (epoll and eventfd on Linux, `polling`
//! elsewhere), node's errno names for OS errors, and the capability probe. As
//! UDP lands, `sendmmsg`/`recvmmsg`, `UDP_SEGMENT`/`UDP_GRO` control messages
//! and source-specific multicast join it (the quinn-udp model). What it is not:
//! a place for protocol decisions (those are in `crates/`), or for anything
//! `socket2` and `std` already do safely.
pub mod caps;
pub mod errno;
pub mod poller;
