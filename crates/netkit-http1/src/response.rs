//! The response decoder: head, framing, body, keep-alive.

use std::mem::MaybeUninit;
use std::time::Duration;

use crate::chunked::{self, Chunked};
use crate::{Error, Fields, Limits, parse_error};

/// What the request was, as far as the response's framing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A HEAD request: the response has no body, whatever its headers say.
    Head,
    /// A CONNECT request: a 2xx opens a tunnel (no body; the bytes after the
    /// head belong to the tunnel).
    Connect,
    /// Any other method.
    Other,
}

/// A response head (final or informational).
#[derive(Clone, PartialEq, Eq)]
pub struct Head {
    version: u8,
    status: u16,
    /// Where the reason phrase is in `fields.raw()` (no allocation of its own).
    reason: (u32, u32),
    fields: Fields,
}

impl Head {
    /// The status code.
    #[must_use]
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    #[must_use]
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The reason phrase (empty when missing or not visible ASCII/Latin-1 text).
    #[must_use]
    pub fn reason(&self) -> &str {
        let (start, end) = (self.reason.0 as usize, self.reason.1 as usize);
        self.fields
            .raw()
            .get(start..end)
            .and_then(|r| std::str::from_utf8(r).ok())
            .unwrap_or("")
    }

    /// The header fields, in order, repeated names kept.
    #[must_use]
    pub fn headers(&self) -> &Fields {
        &self.fields
    }

    /// The head exactly as received: status line, header lines and the
    /// blank line (for `curl -i`-style output).
    #[must_use]
    pub fn raw(&self) -> &[u8] {
        self.fields.raw()
    }
}

impl std::fmt::Debug for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Head")
            .field("version", &self.version)
            .field("status", &self.status)
            .field("reason", &self.reason())
            .field("headers", &self.fields)
            .finish()
    }
}

/// What the decoder found. Body data borrows the caller's input.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A 1xx other than 101 (100 Continue, 102 Processing, 103 Early Hints):
    /// surfaced, then the final head follows.
    Informational(Head),
    /// The final head. For a 101, or a 2xx to CONNECT, the bytes after it
    /// belong to the new protocol or the tunnel: `End` follows at once.
    Head(Head),
    /// Body bytes, in order.
    Data(&'a [u8]),
    /// A chunked body's trailer fields (only when there are some).
    Trailers(Fields),
    /// The response is complete.
    End,
}

/// The keep-alive verdict of a complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reuse {
    /// The server's `Keep-Alive: timeout=` (drop the idle connection before
    /// the server does).
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
enum Body {
    Length { remaining: u64, total: u64 },
    Chunked(Box<Chunked>),
    Close { got: u64 },
    None,
}

#[derive(Debug, Clone)]
enum State {
    /// Looking for the end of a head (LFs before the decoder's `scanned`
    /// were checked).
    Head,
    Body(Body),
    Done,
    Failed,
}

/// Decodes one response. See the [crate docs](crate) for the loop.
#[derive(Debug, Clone)]
pub struct ResponseDecoder {
    kind: RequestKind,
    limits: Limits,
    state: State,
    received: bool,
    /// Whether the connection may carry another exchange once this one ends.
    keep_alive: bool,
    timeout: Option<Duration>,
    /// In a head: how many bytes of the input were looked through for its
    /// end. Zero in every other state, so the piece fast path in `decode`
    /// needs no look at `state`.
    scanned: usize,
}

impl ResponseDecoder {
    /// A decoder for the response to a request of `kind`.
    #[must_use]
    pub fn new(kind: RequestKind, limits: Limits) -> Self {
        Self {
            kind,
            limits,
            state: State::Head,
            scanned: 0,
            received: false,
            keep_alive: false,
            timeout: None,
        }
    }

    /// Whether the final head has been decoded.
    #[must_use]
    pub fn has_head(&self) -> bool {
        matches!(self.state, State::Body(_) | State::Done)
    }

    /// Whether the response is complete.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether any response byte has arrived.
    #[must_use]
    pub fn received_any(&self) -> bool {
        self.received
    }

    /// The keep-alive verdict once the response is complete: `Some` when the
    /// connection may carry another request (HTTP/1.1 without
    /// `Connection: close`, HTTP/1.0 with `keep-alive`; never after
    /// `Transfer-Encoding` with `Content-Length`, a close-delimited body, a
    /// 101 or a tunnel). The caller must also check that no byte followed
    /// the response and that its own request was sent whole.
    #[must_use]
    pub fn reuse(&self) -> Option<Reuse> {
        (self.is_done() && self.keep_alive).then_some(Reuse {
            timeout: self.timeout,
        })
    }

    /// Consumes from `input` (what the caller holds that this decoder has
    /// not consumed) until there is an event. Returns the bytes consumed and
    /// the event; `None` means everything useful was consumed and more input
    /// is needed (or the response is done). Call again after each event.
    #[inline]
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Event<'a>>), Error> {
        self.received |= !input.is_empty();
        // A head arriving a few bytes at a time: most pieces hold no LF, and
        // only the new bytes need looking at. Inlined into the caller, the
        // rest not, so a slow peer's piece costs a couple of nanoseconds.
        if self.scanned != 0 && input.len() <= self.limits.max_head {
            let mut scanned = self.scanned;
            if head_end(input, &mut scanned).is_none() {
                self.scanned = scanned;
                return Ok((0, None));
            }
        }
        self.decode_slow(input)
    }

    #[inline(never)]
    fn decode_slow<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Event<'a>>), Error> {
        let r = self.decode_inner(input);
        if r.is_err() {
            self.state = State::Failed;
            self.scanned = 0;
        }
        r
    }

    fn decode_inner<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Option<Event<'a>>), Error> {
        match &mut self.state {
            State::Head => self.decode_head(input, self.scanned),
            State::Body(Body::Length { remaining, .. }) => {
                if *remaining == 0 {
                    self.state = State::Done;
                    return Ok((0, Some(Event::End)));
                }
                if input.is_empty() {
                    return Ok((0, None));
                }
                let n = usize::try_from(*remaining).map_or(input.len(), |r| r.min(input.len()));
                *remaining -= n as u64;
                Ok((n, Some(Event::Data(&input[..n]))))
            }
            State::Body(Body::Close { got }) => {
                if input.is_empty() {
                    return Ok((0, None));
                }
                *got += input.len() as u64;
                Ok((input.len(), Some(Event::Data(input))))
            }
            State::Body(Body::None) => {
                self.state = State::Done;
                Ok((0, Some(Event::End)))
            }
            State::Body(Body::Chunked(c)) => {
                let (n, out) = c.decode(input)?;
                Ok((
                    n,
                    out.map(|o| match o {
                        chunked::Out::Data(d) => Event::Data(d),
                        chunked::Out::Trailers(f) => Event::Trailers(f),
                        chunked::Out::End => {
                            self.state = State::Done;
                            Event::End
                        }
                    }),
                ))
            }
            State::Done | State::Failed => Ok((0, None)),
        }
    }

    /// In a head: `scanned` bytes of `input` were already looked through
    /// for its end.
    fn decode_head(
        &mut self,
        input: &[u8],
        mut scanned: usize,
    ) -> Result<(usize, Option<Event<'static>>), Error> {
        if scanned == 0 && !input.is_empty() {
            // First look: httparse finds the end itself, so a head that came
            // whole is read in one pass. Partial or refused, the scan below
            // decides, as for any later piece: an error counts only once the
            // end is known, so every split of the input gives one outcome.
            let probe = &input[..input.len().min(self.limits.max_head)];
            if let Some((end, head)) = self.parse_head(probe, true)? {
                return Ok((end, Some(head)));
            }
        }
        let found = head_end(input, &mut scanned);
        self.scanned = scanned;
        let Some(end) = found else {
            if input.len() > self.limits.max_head {
                return Err(Error::HeadTooLarge {
                    limit: self.limits.max_head,
                });
            }
            return Ok((0, None));
        };
        if end > self.limits.max_head {
            return Err(Error::HeadTooLarge {
                limit: self.limits.max_head,
            });
        }
        match self.parse_head(&input[..end], false)? {
            Some((_, head)) => Ok((end, Some(head))),
            None => Err(Error::BadHead("incomplete head")),
        }
    }

    /// The connection reached EOF: the end of a close-delimited body, or an
    /// error if the response is incomplete. `Ok(None)` if it was already done.
    pub fn finish(&mut self) -> Result<Option<Event<'static>>, Error> {
        let r = match &self.state {
            State::Head if !self.received => Err(Error::NoResponse),
            State::Head => Err(Error::TruncatedHead),
            State::Body(Body::Length { remaining, total }) if *remaining > 0 => {
                Err(Error::Truncated {
                    got: total - remaining,
                    expected: *total,
                })
            }
            State::Body(Body::Chunked(c)) if !c.is_done() => {
                Err(Error::TruncatedChunked { got: c.got })
            }
            State::Body(_) => {
                self.state = State::Done;
                return Ok(Some(Event::End));
            }
            State::Done | State::Failed => return Ok(None),
        };
        self.state = State::Failed;
        r
    }

    /// Parses the head at the start of `input`: its length and event, or
    /// `None` when `probe` (a first look, not known to hold the whole head)
    /// and httparse found it partial or refused it.
    fn parse_head(
        &mut self,
        input: &[u8],
        probe: bool,
    ) -> Result<Option<(usize, Event<'static>)>, Error> {
        const STACK: usize = 128;
        let mut stack = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; STACK];
        let mut heap;
        let headers: &mut [MaybeUninit<httparse::Header<'_>>] = if self.limits.max_headers <= STACK
        {
            &mut stack[..self.limits.max_headers]
        } else {
            heap = Vec::with_capacity(self.limits.max_headers);
            heap.resize_with(self.limits.max_headers, MaybeUninit::uninit);
            &mut heap
        };
        let mut resp = httparse::Response::new(&mut []);
        let parsed = httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut resp, input, headers);
        let end = match parsed {
            Ok(httparse::Status::Complete(end)) => end,
            Ok(httparse::Status::Partial) | Err(_) if probe => return Ok(None),
            Ok(httparse::Status::Partial) => return Err(Error::BadHead("incomplete head")),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(Error::TooManyHeaders {
                    limit: self.limits.max_headers,
                });
            }
            Err(e) => return Err(Error::BadHead(parse_error(e))),
        };
        let raw = &input[..end];
        let status = resp.code.unwrap_or(0);
        let version = resp.version.unwrap_or(1);
        let info = (100..200).contains(&status) && status != 101;
        // What framing and keep-alive need, in one pass over the fields.
        let mut scan = Scan::default();
        if !info {
            for h in resp.headers.iter() {
                scan.field(h.name.as_bytes(), h.value)?;
            }
        }
        let head = Head {
            version,
            status,
            reason: span_in(raw, resp.reason.unwrap_or("").as_bytes()),
            fields: Fields::from_parsed(raw, resp.headers),
        };
        if info {
            self.state = State::Head;
            self.scanned = 0;
            return Ok(Some((end, Event::Informational(head))));
        }
        if scan.conflict.is_some() {
            return Err(Error::ConflictingContentLength(
                head.fields
                    .get_all("content-length")
                    .map(lossy)
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        let body = self.framing(status, &scan);
        let persistent = if version >= 1 {
            !scan.close
        } else {
            scan.keep_alive && !scan.close
        };
        let te_and_cl = scan.te.is_some() && scan.length.is_some();
        let tunnel =
            status == 101 || (self.kind == RequestKind::Connect && (200..300).contains(&status));
        self.keep_alive =
            persistent && !te_and_cl && !tunnel && !matches!(body, Body::Close { .. });
        self.timeout = scan.timeout;
        self.state = State::Body(body);
        self.scanned = 0;
        Ok(Some((end, Event::Head(head))))
    }

    /// RFC 9112 §6.3, in order.
    fn framing(&self, status: u16, scan: &Scan) -> Body {
        if self.kind == RequestKind::Head
            || (100..200).contains(&status)
            || status == 204
            || status == 304
            || (self.kind == RequestKind::Connect && (200..300).contains(&status))
        {
            return Body::None;
        }
        if let Some(chunked_last) = scan.te {
            return if chunked_last {
                Body::Chunked(Box::new(Chunked::new(self.limits)))
            } else {
                Body::Close { got: 0 }
            };
        }
        match scan.length {
            Some(n) => Body::Length {
                remaining: n,
                total: n,
            },
            None => Body::Close { got: 0 },
        }
    }
}

/// The fields that decide framing and keep-alive, gathered in one pass.
#[derive(Debug, Default)]
struct Scan {
    /// `Transfer-Encoding` present: whether its last coding is chunked.
    te: Option<bool>,
    length: Option<u64>,
    /// Differing `Content-Length` values were seen.
    conflict: Option<()>,
    close: bool,
    keep_alive: bool,
    timeout: Option<Duration>,
}

impl Scan {
    fn field(&mut self, name: &[u8], value: &[u8]) -> Result<(), Error> {
        match name.len() {
            17 if is_lower(name, b"transfer-encoding") => {
                let last = value
                    .split(|&b| b == b',')
                    .map(<[u8]>::trim_ascii)
                    .rfind(|t| !t.is_empty());
                match last {
                    Some(t) => self.te = Some(is_lower(t, b"chunked")),
                    None => {
                        self.te.get_or_insert(false);
                    }
                }
            }
            14 if is_lower(name, b"content-length") => {
                for part in value.split(|&b| b == b',') {
                    let n = parse_length(part.trim_ascii())
                        .ok_or_else(|| Error::BadContentLength(lossy(value)))?;
                    if self.length.is_some_and(|l| l != n) {
                        self.conflict = Some(());
                    }
                    self.length = Some(n);
                }
            }
            10 if is_lower(name, b"connection") => {
                for t in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                    self.close |= is_lower(t, b"close");
                    self.keep_alive |= is_lower(t, b"keep-alive");
                }
            }
            10 if is_lower(name, b"keep-alive") => {
                self.timeout = self.timeout.or_else(|| keep_alive_timeout(value));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether `s` is `lower` in any case, for a `lower` of lowercase letters
/// and `-` only, and an `s` from a parsed head (a name's token characters
/// or a value's, never CR, LF or NUL). Setting bit 5 of each byte then maps
/// exactly the two cases of a letter to its lowercase, and only `-` (or CR,
/// which a parsed head cannot hold) to `-`; so eight bytes compare at once
/// where `eq_ignore_ascii_case` lowercases byte by byte (a third of the
/// head's own decoding time).
fn is_lower(s: &[u8], lower: &[u8]) -> bool {
    debug_assert!(lower.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    if s.len() != lower.len() {
        return false;
    }
    let word = |b: &[u8]| {
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(b);
        u64::from_le_bytes(w)
    };
    let mut a = s.chunks(8);
    let mut b = lower.chunks(8);
    loop {
        match (a.next(), b.next()) {
            (Some(x), Some(y)) => {
                if word(x) | (0x2020_2020_2020_2020 >> (8 * (8 - x.len()))) != word(y) {
                    return false;
                }
            }
            _ => return true,
        }
    }
}

/// Where `part` (a slice of `raw`, or empty) lies in `raw`.
fn span_in(raw: &[u8], part: &[u8]) -> (u32, u32) {
    let start = (part.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if !part.is_empty() && end <= raw.len() => (start as u32, end as u32),
        _ => (0, 0),
    }
}

fn lossy(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// `1*DIGIT`, at most 19 digits (so it fits in u64 without overflow).
fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// `Keep-Alive: timeout=N[, max=M]`.
fn keep_alive_timeout(value: &[u8]) -> Option<Duration> {
    std::str::from_utf8(value).ok()?.split(',').find_map(|t| {
        let (k, v) = t.split_once('=')?;
        if !k.trim().eq_ignore_ascii_case("timeout") {
            return None;
        }
        v.trim()
            .trim_matches('"')
            .parse::<u64>()
            .ok()
            .map(Duration::from_secs)
    })
}

/// Where the head ends (the index after its blank line), scanning only the
/// bytes not scanned before (so feeding a head byte by byte stays linear).
/// Leading empty lines are part of the head (httparse skips them).
#[inline]
fn head_end(input: &[u8], scanned: &mut usize) -> Option<usize> {
    let start = match input.first() {
        Some(b'\r' | b'\n') => input
            .iter()
            .position(|&b| b != b'\r' && b != b'\n')
            .unwrap_or(input.len()),
        _ => 0,
    };
    // (`min`: a caller that hands in fewer bytes than before gets a rescan
    // of what it gave, not a panic.)
    let mut from = (*scanned).max(start).min(input.len());
    // Each LF: the blank line follows as LF or CRLF.
    while let Some(p) = find_lf(&input[from..]) {
        let lf = from + p;
        from = lf + 1;
        match &input[lf + 1..] {
            [b'\n', ..] => return Some(lf + 2),
            [b'\r', b'\n', ..] => return Some(lf + 3),
            [] | [b'\r'] => {
                // Could still be the blank line: look here again next time.
                *scanned = lf;
                return None;
            }
            _ => {}
        }
    }
    *scanned = input.len();
    None
}

/// The first LF in `hay`. A piece from a slow peer is a few bytes, where a
/// plain loop beats memchr's setup.
#[inline]
fn find_lf(hay: &[u8]) -> Option<usize> {
    if hay.len() < 16 {
        hay.iter().position(|&b| b == b'\n')
    } else {
        memchr::memchr(b'\n', hay)
    }
}

#[cfg(test)]
mod compare_tests {
    use super::is_lower;
    use proptest::prelude::*;

    #[test]
    fn words_compare_like_eq_ignore_ascii_case() {
        assert!(is_lower(b"Content-Length", b"content-length"));
        assert!(is_lower(b"CONTENT-LENGTH", b"content-length"));
        assert!(is_lower(b"Keep-Alive", b"keep-alive"));
        assert!(is_lower(b"cLoSe", b"close"));
        assert!(!is_lower(b"Content_Length", b"content-length"));
        assert!(!is_lower(b"Content-Lengtx", b"content-length"));
        assert!(!is_lower(b"content-lengt", b"content-length"));
        assert!(!is_lower(b"clos\x0d", b"close"));
    }

    proptest! {
        /// Over every byte a parsed head can hold (all but CR, LF and NUL),
        /// the word compare agrees with the byte-wise one.
        #[test]
        fn agrees_with_the_bytewise_compare(
            s in proptest::collection::vec(
                any::<u8>().prop_filter("not in a parsed head", |b| !matches!(b, b'\r' | b'\n' | 0)),
                0..20,
            ),
            pick in 0usize..5,
            flip in any::<u32>(),
        ) {
            let lower: &[u8] = [
                &b"transfer-encoding"[..], b"content-length", b"connection", b"keep-alive", b"chunked",
            ][pick];
            prop_assert_eq!(is_lower(&s, lower), s.eq_ignore_ascii_case(lower));
            // The same word in a case pattern of its own.
            let cased: Vec<u8> = lower
                .iter()
                .enumerate()
                .map(|(i, &b)| if flip >> (i % 32) & 1 == 1 { b.to_ascii_uppercase() } else { b })
                .collect();
            prop_assert!(is_lower(&cased, lower));
        }
    }
}
