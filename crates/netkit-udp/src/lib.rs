//! UDP batching, sans-IO.
//!
//! Bun's `udpSocket.sendMany` takes a flat list (`[data, port, addr, ...]`
//! unconnected, `[data, ...]` connected); [`args`] decodes and validates it
//! into [`Packet`]s with the index of any bad entry. [`plan`] groups packets
//! into the fewest kernel calls: runs of equal-size datagrams to one
//! destination become one GSO send (`UDP_SEGMENT`), the rest `sendmmsg`
//! batches; a plan is data, so the driver only carries it out. [`recv`]
//! splits a GRO-coalesced receive back into the datagrams it holds. Nothing
//! here opens a socket or reads a clock.
//!
//! # Examples
//!
//! ```
//! use netkit_udp::args::{Arg, Family, decode_unconnected};
//! use netkit_udp::plan::{Batch, Limits, plan};
//!
//! let list = [
//!     Arg::Data(b"one"), Arg::Port(9000), Arg::Addr("127.0.0.1"),
//!     Arg::Data(b"two"), Arg::Port(9000), Arg::Addr("127.0.0.1"),
//!     Arg::Data(b"three"), Arg::Port(9001), Arg::Addr("127.0.0.1"),
//! ];
//! let packets = decode_unconnected(&list, Family::V4)?;
//! let batches = plan(&packets, &Limits::default());
//! // "one" and "two": equal sizes, one destination: one GSO send;
//! // "three" goes to another port: a batch of its own.
//! assert_eq!(batches, [
//!     Batch::Gso { start: 0, count: 2, segment: 3 },
//!     Batch::Many { start: 2, count: 1 },
//! ]);
//! # Ok::<(), netkit_udp::args::Error>(())
//! ```

pub mod args;
pub mod plan;
pub mod recv;
pub mod send;

use std::net::SocketAddr;

/// One datagram to send: its payload and, on an unconnected socket, where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The payload (may be empty: a 0-byte datagram).
    pub data: &'a [u8],
    /// The destination; `None` on a connected socket.
    pub to: Option<SocketAddr>,
}
