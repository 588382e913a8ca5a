//! The fewest kernel calls for a list of packets.
//!
//! A run of two or more consecutive datagrams to one destination, all of one
//! size (the last may be shorter), becomes one GSO send (`UDP_SEGMENT`: the
//! kernel cuts one buffer into datagrams), within the kernel's limits of 64
//! segments and a 64 KiB buffer; everything else goes in `sendmmsg` batches
//! of consecutive packets. Packets keep their order, so each destination
//! receives its datagrams in the order given. A plan is data: the driver
//! carries it out and counts what the kernel took.

use crate::Packet;

/// What the kernel and the path allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// GSO works here (probed by the driver with a real send); off, every
    /// packet goes through `sendmmsg` batches.
    pub gso: bool,
    /// Segments per GSO send (the kernel's `UDP_MAX_SEGMENTS` is 64).
    pub max_segments: usize,
    /// Bytes per GSO send (one UDP payload's limit: 65,507 over IPv4).
    pub max_gso_bytes: usize,
    /// The largest segment to hand to GSO (a segment larger than the path's
    /// MTU is refused by the kernel): 1,472 by default, Ethernet's 1,500
    /// less the IPv4 and UDP headers; a driver that knows the route may
    /// raise it.
    pub max_segment: usize,
    /// Messages per `sendmmsg` call (the kernel's `UIO_MAXIOV` is 1,024).
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            gso: true,
            max_segments: 64,
            max_gso_bytes: 65_507,
            max_segment: 1_472,
            max_batch: 1_024,
        }
    }
}

/// One kernel call of a plan, over `packets[start..start + count]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batch {
    /// One GSO send: the packets' payloads concatenated, cut by the kernel
    /// every `segment` bytes, to their one destination.
    Gso {
        /// The first packet.
        start: usize,
        /// How many.
        count: usize,
        /// Every datagram's size but the last's (which may be shorter).
        segment: usize,
    },
    /// One `sendmmsg` call (or one `sendto` per packet where it is missing).
    Many {
        /// The first packet.
        start: usize,
        /// How many.
        count: usize,
    },
}

impl Batch {
    /// The packets this call carries.
    #[must_use]
    pub fn range(&self) -> std::ops::Range<usize> {
        match *self {
            Self::Gso { start, count, .. } | Self::Many { start, count } => start..start + count,
        }
    }
}

/// The GSO run that starts at `packets[i]`, as a count (1 when there is none).
fn gso_run(packets: &[Packet<'_>], i: usize, limits: &Limits) -> usize {
    let first = &packets[i];
    let segment = first.data.len();
    if !limits.gso || segment == 0 || segment > limits.max_segment {
        return 1;
    }
    let mut n = 1;
    let mut bytes = segment;
    while i + n < packets.len() && n < limits.max_segments {
        let p = &packets[i + n];
        let len = p.data.len();
        if p.to != first.to || len == 0 || len > segment || bytes + len > limits.max_gso_bytes {
            break;
        }
        n += 1;
        bytes += len;
        if len < segment {
            break; // a shorter segment can only be the last
        }
    }
    n
}

/// The kernel calls that send `packets`, in order.
#[must_use]
pub fn plan(packets: &[Packet<'_>], limits: &Limits) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut i = 0;
    let mut many_start = None::<usize>;
    let flush = |out: &mut Vec<Batch>, from: Option<usize>, to: usize| {
        if let Some(s) = from {
            let mut s = s;
            while s < to {
                let count = (to - s).min(limits.max_batch.max(1));
                out.push(Batch::Many { start: s, count });
                s += count;
            }
        }
    };
    while i < packets.len() {
        let run = gso_run(packets, i, limits);
        if run >= 2 {
            flush(&mut out, many_start.take(), i);
            out.push(Batch::Gso {
                start: i,
                count: run,
                segment: packets[i].data.len(),
            });
            i += run;
        } else {
            many_start.get_or_insert(i);
            i += 1;
        }
    }
    flush(&mut out, many_start, packets.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::SocketAddr;

    fn p(data: &[u8], port: u16) -> Packet<'_> {
        Packet {
            data,
            to: Some(SocketAddr::from(([127, 0, 0, 1], port))),
        }
    }

    #[test]
    fn runs_limits_and_fallbacks() {
        let big = [7u8; 1200];
        let short = [7u8; 100];
        // 70 equal packets: 64 in one GSO send, then 6.
        let list: Vec<Packet<'_>> = (0..70).map(|_| p(&big, 1)).collect();
        assert_eq!(
            plan(&list, &Limits::default()),
            [
                Batch::Gso {
                    start: 0,
                    count: 54,
                    segment: 1200
                },
                Batch::Gso {
                    start: 54,
                    count: 16,
                    segment: 1200
                },
            ],
            "54 × 1,200 fits 65,507 bytes, 55 would not"
        );
        // A shorter last segment joins the run; a longer one starts anew.
        let list = [p(&big, 1), p(&big, 1), p(&short, 1), p(&big, 1)];
        assert_eq!(
            plan(&list, &Limits::default()),
            [
                Batch::Gso {
                    start: 0,
                    count: 3,
                    segment: 1200
                },
                Batch::Many { start: 3, count: 1 }
            ]
        );
        // Another destination breaks the run; singles gather in one batch.
        let list = [p(b"a", 1), p(b"bb", 1), p(b"c", 2), p(b"d", 2)];
        assert_eq!(
            plan(&list, &Limits::default()),
            [
                Batch::Many { start: 0, count: 2 },
                Batch::Gso {
                    start: 2,
                    count: 2,
                    segment: 1
                }
            ]
        );
        // Without GSO: sendmmsg batches of at most max_batch.
        let list: Vec<Packet<'_>> = (0..5).map(|_| p(&big, 1)).collect();
        let no_gso = Limits {
            gso: false,
            max_batch: 2,
            ..Limits::default()
        };
        assert_eq!(
            plan(&list, &no_gso),
            [
                Batch::Many { start: 0, count: 2 },
                Batch::Many { start: 2, count: 2 },
                Batch::Many { start: 4, count: 1 }
            ]
        );
        // Empty payloads and segments over the MTU never go through GSO.
        let list = [p(b"", 1), p(b"", 1)];
        assert_eq!(
            plan(&list, &Limits::default()),
            [Batch::Many { start: 0, count: 2 }]
        );
        let jumbo = vec![0u8; 9000];
        let list = [p(&jumbo, 1), p(&jumbo, 1)];
        assert_eq!(
            plan(&list, &Limits::default()),
            [Batch::Many { start: 0, count: 2 }]
        );
        assert!(plan(&[], &Limits::default()).is_empty());
    }

    proptest! {
        /// Any list, any limits: every packet is in exactly one batch, in
        /// order; a GSO batch has one destination, equal segments (the last
        /// no longer) and fits the limits; a batch is never empty.
        #[test]
        fn every_packet_once_in_order(
            sizes in proptest::collection::vec((0usize..3000, 0u16..3), 0..200),
            gso in any::<bool>(),
            max_segments in 1usize..70,
            max_batch in 1usize..50,
        ) {
            let bufs: Vec<Vec<u8>> = sizes.iter().map(|(n, _)| vec![0u8; *n]).collect();
            let list: Vec<Packet<'_>> = bufs.iter().zip(&sizes).map(|(b, (_, port))| p(b, port + 1)).collect();
            let limits = Limits { gso, max_segments, max_batch, ..Limits::default() };
            let mut next = 0;
            for b in plan(&list, &limits) {
                let r = b.range();
                prop_assert_eq!(r.start, next);
                prop_assert!(!r.is_empty());
                next = r.end;
                match b {
                    Batch::Gso { segment, count, .. } => {
                        prop_assert!(gso && count >= 2 && count <= max_segments);
                        let run = &list[r.clone()];
                        prop_assert!(run.iter().all(|q| q.to == run[0].to));
                        prop_assert!(run[..count - 1].iter().all(|q| q.data.len() == segment));
                        prop_assert!(run[count - 1].data.len() <= segment && !run[count - 1].data.is_empty());
                        prop_assert!(run.iter().map(|q| q.data.len()).sum::<usize>() <= limits.max_gso_bytes);
                        prop_assert!(segment <= limits.max_segment);
                    }
                    Batch::Many { count, .. } => prop_assert!(count <= max_batch),
                }
            }
            prop_assert_eq!(next, list.len());
        }
    }
}
