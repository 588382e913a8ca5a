//! Header fields as received: one copy of the raw bytes, and the spans of
//! each name and value in them.

use std::fmt;
use std::ops::Range;

/// Header fields (a response head's or a chunked body's trailers), in the
/// order received, repeated names kept. Names compare case-insensitively.
#[derive(Clone, PartialEq, Eq)]
pub struct Fields {
    /// One allocation: the raw bytes, then per field its name's and value's
    /// start and end as little-endian `u32`s.
    data: Box<[u8]>,
    raw_len: u32,
}

/// Bytes of one field's spans in `data`.
const SPAN: usize = 16;

impl Fields {
    /// Empty fields.
    pub(crate) fn empty() -> Self {
        Self {
            data: Box::default(),
            raw_len: 0,
        }
    }

    /// Copies `raw` and records where httparse found each header in it.
    /// (The head is at most [`crate::Limits::max_head`], far under 4 GiB, so
    /// spans fit in `u32`.)
    #[inline]
    pub(crate) fn from_parsed(raw: &[u8], headers: &[httparse::Header<'_>]) -> Self {
        let base = raw.as_ptr() as usize;
        let mut data = Vec::with_capacity(raw.len() + headers.len() * SPAN);
        data.extend_from_slice(raw);
        for h in headers {
            let at = |s: &[u8]| (s.as_ptr() as usize).wrapping_sub(base) as u32;
            let (n, v) = (at(h.name.as_bytes()), at(h.value));
            let ends = [n, n + h.name.len() as u32, v, v + h.value.len() as u32];
            let mut span = [0u8; SPAN];
            for (out, w) in span.chunks_exact_mut(4).zip(ends) {
                out.copy_from_slice(&w.to_le_bytes());
            }
            data.extend_from_slice(&span);
        }
        Self {
            data: data.into_boxed_slice(),
            raw_len: raw.len() as u32,
        }
    }

    fn span(&self, i: usize) -> (Range<usize>, Range<usize>) {
        let at = self.raw_len as usize + i * SPAN;
        let w = |k: usize| {
            let b = &self.data[at + 4 * k..at + 4 * k + 4];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
        };
        (w(0)..w(1), w(2)..w(3))
    }

    /// The bytes the fields came in (for a head: status line included), as
    /// received.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        &self.data[..self.raw_len as usize]
    }

    /// How many fields.
    #[must_use]
    pub fn len(&self) -> usize {
        (self.data.len() - self.raw_len as usize) / SPAN
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Each field's name and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        (0..self.len()).map(|i| {
            let (n, v) = self.span(i);
            (
                // httparse checked names are tokens (ASCII).
                std::str::from_utf8(&self.data[n]).unwrap_or(""),
                &self.data[v],
            )
        })
    }

    /// The first value of `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of `name` as text (`None` if absent or not UTF-8).
    #[must_use]
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether any value of `name`, split on commas, has the token `token`
    /// (case-insensitive), as `Connection: keep-alive, Upgrade` has `upgrade`.
    #[must_use]
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Every comma-separated element of every value of `name`, trimmed.
    pub fn tokens<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|t| !t.is_empty())
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|(n, v)| (n, String::from_utf8_lossy(v).into_owned())),
            )
            .finish()
    }
}
