//! A GRO receive split back into its datagrams.
//!
//! With `UDP_GRO` the kernel may hand over several datagrams from one sender
//! in one buffer, with the segment size in a control message: every datagram
//! is `segment` bytes but the last, which may be shorter.

/// The datagrams of one received buffer: `buf` cut every `segment` bytes
/// (the last piece may be shorter). `segment == 0` (no GRO control message)
/// means `buf` is one datagram, empty ones included.
pub fn split(buf: &[u8], segment: usize) -> impl Iterator<Item = &[u8]> {
    let (step, whole) = if segment == 0 || segment >= buf.len() {
        (buf.len().max(1), true)
    } else {
        (segment, false)
    };
    let mut pos = 0;
    let mut first = true;
    std::iter::from_fn(move || {
        if whole {
            return std::mem::take(&mut first).then_some(buf);
        }
        if pos >= buf.len() {
            return None;
        }
        let end = (pos + step).min(buf.len());
        let piece = &buf[pos..end];
        pos = end;
        Some(piece)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits() {
        let got: Vec<&[u8]> = split(b"aaabbbcc", 3).collect();
        assert_eq!(got, [&b"aaa"[..], b"bbb", b"cc"]);
        assert_eq!(split(b"abc", 0).collect::<Vec<_>>(), [&b"abc"[..]]);
        assert_eq!(
            split(b"", 0).collect::<Vec<_>>(),
            [&b""[..]],
            "a 0-byte datagram"
        );
        assert_eq!(split(b"abc", 10).collect::<Vec<_>>(), [&b"abc"[..]]);
    }

    proptest! {
        /// The pieces are the datagrams that were coalesced: concatenated
        /// they are the buffer, each is `segment` bytes but the last.
        #[test]
        fn pieces_rebuild_the_buffer(buf in proptest::collection::vec(any::<u8>(), 0..5000), segment in 0usize..2000) {
            let pieces: Vec<&[u8]> = split(&buf, segment).collect();
            prop_assert_eq!(pieces.concat(), buf.clone());
            prop_assert!(!pieces.is_empty());
            if segment > 0 && segment < buf.len() {
                let (last, rest) = pieces.split_last().unwrap();
                prop_assert!(rest.iter().all(|p| p.len() == segment));
                prop_assert!(!last.is_empty() && last.len() <= segment);
            }
        }
    }
}
