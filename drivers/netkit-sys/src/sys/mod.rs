//! The one syscall shim both drivers use: every `unsafe` block of the drivers
//! lives under this module, each with a `// SAFETY:` line, and each capability
//! the drivers adapt to is probed here at run time (by real use) with a
//! fallback.
//!
//! What it is: the readiness poller (epoll and eventfd on Linux, `polling`
//! elsewhere), node's errno names for OS errors, the capability probe, and
//! UDP's batch calls (`udp`: `sendmmsg`, GSO sends with `UDP_SEGMENT`,
//! `recvmmsg`, the GSO probe by a real send, IPv6 source-specific joins
//! (`MCAST_JOIN_SOURCE_GROUP`), `UDP_GRO` receives and their probe by a real
//! round trip), the quinn-udp model. What it is not:
//! a place for protocol decisions (those are in `crates/`), or for anything
//! `socket2` and `std` already do safely.
pub mod caps;
pub mod errno;
pub mod poller;
pub mod udp;
