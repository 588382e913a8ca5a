//! Header fields as received: one copy of the raw bytes, and the spans of
//! each name and value in them.

use std::fmt;
use std::ops::Range;

/// Header fields (a response head's or a chunked body's trailers), in the
/// order received, repeated names kept. Names compare case-insensitively.
#[derive(Clone, PartialEq, Eq)]
pub struct Fields {
    raw: Box<[u8]>,
    spans: Vec<(Range<u32>, Range<u32>)>,
}

impl Fields {
    /// Empty fields.
    pub(crate) fn empty() -> Self {
        Self {
            raw: Box::default(),
            spans: Vec::new(),
        }
    }

    /// Copies `raw` and records where httparse found each header in it.
    /// (The head is at most [`crate::Limits::max_head`], far under 4 GiB, so
    /// spans fit in `u32`.)
    pub(crate) fn from_parsed(raw: &[u8], headers: &[httparse::Header<'_>]) -> Self {
        let base = raw.as_ptr() as usize;
        let span = |s: &[u8]| {
            let start = (s.as_ptr() as usize).wrapping_sub(base) as u32;
            start..start + s.len() as u32
        };
        Self {
            spans: headers
                .iter()
                .map(|h| (span(h.name.as_bytes()), span(h.value)))
                .collect(),
            raw: raw.into(),
        }
    }

    /// The bytes the fields came in (for a head: status line included), as
    /// received.
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// How many fields.
    #[must_use]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Each field's name and value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.spans.iter().map(|(n, v)| {
            (
                // httparse checked names are tokens (ASCII).
                std::str::from_utf8(&self.raw[n.start as usize..n.end as usize]).unwrap_or(""),
                &self.raw[v.start as usize..v.end as usize],
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
