//! One HTTP/1.1 client exchange on one connection, sans-IO, on `httparse`.
//!
//! - [`request`]: the request head (any method token; origin-, absolute- or
//!   authority-form target) with its body framing (`Content-Length`,
//!   `chunked`, or none), and the body's framing as it is written
//!   ([`BodyEncoder`]). A header name that is not a token, or a value with CR,
//!   LF or NUL, is refused.
//! - [`response`]: the response decoder, RFC 9112 framing as
//!   `shared/SEMANTICS.md` lists it: 1xx consumed and surfaced, no body for
//!   HEAD, 1xx, 204, 304 and a 2xx to CONNECT, `Transfer-Encoding` before
//!   `Content-Length`, strict `Content-Length`, chunked bodies with trailers,
//!   close-delimited bodies, and the keep-alive decision
//!   ([`ResponseDecoder::reuse`]).
//!
//! The decoder reads from the caller's buffer: body bytes come back as slices
//! of it (no copy), and the caller drops what was consumed. Nothing here
//! reads a clock, a socket or the environment.
//!
//! ```
//! use netkit_http1::{encode_head, Event, Framing, RequestKind, ResponseDecoder};
//!
//! let mut out = Vec::new();
//! encode_head(&mut out, "GET", "/", &[("Host", b"example.com".as_slice())], Framing::None)?;
//! assert_eq!(out, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
//!
//! let input = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
//! let mut d = ResponseDecoder::new(RequestKind::Other, Default::default());
//! let mut pos = 0;
//! let mut body = Vec::new();
//! while let (n, Some(ev)) = d.decode(&input[pos..])? {
//!     pos += n;
//!     match ev {
//!         Event::Head(h) => assert_eq!(h.status(), 200),
//!         Event::Data(b) => body.extend_from_slice(b),
//!         Event::End => break,
//!         _ => {}
//!     }
//! }
//! assert_eq!(body, b"hello");
//! assert!(d.reuse().is_some());
//! # Ok::<(), netkit_http1::Error>(())
//! ```

mod chunked;
mod fields;
pub mod request;
pub mod response;

pub use fields::Fields;
pub use request::{BodyEncoder, Framing, check_header, encode_head, is_token};
pub use response::{Event, Head, RequestKind, ResponseDecoder, Reuse};

/// Limits on what a response may make the decoder hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most bytes of a response head (status line and headers), and of a
    /// chunked body's trailers. Default 64 KiB.
    pub max_head: usize,
    /// The most header fields in a head (or trailer section). Default 100.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head: 64 * 1024,
            max_headers: 100,
        }
    }
}

/// What went wrong, in words a user can act on. The response errors are
/// what the CLI prints after `http: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The head did not end within [`Limits::max_head`] bytes.
    #[error("response head larger than {limit} bytes")]
    HeadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// More header fields than [`Limits::max_headers`].
    #[error("more than {limit} response header fields")]
    TooManyHeaders {
        /// The limit.
        limit: usize,
    },
    /// The head is not HTTP/1.x (httparse's words for the first fault).
    #[error("malformed response head: {0}")]
    BadHead(&'static str),
    /// A `Content-Length` that is not 1*DIGIT in range.
    #[error("invalid Content-Length: {0:?}")]
    BadContentLength(String),
    /// Several `Content-Length` values that differ.
    #[error("conflicting Content-Length values: {0:?}")]
    ConflictingContentLength(String),
    /// A chunk-size line that is not hex digits (with optional extensions).
    #[error("malformed chunk size line")]
    BadChunkSize,
    /// A chunk size beyond 64 bits.
    #[error("chunk size overflows 64 bits")]
    ChunkSizeOverflow,
    /// A chunk-size line longer than [`Limits::max_head`] (endless extensions).
    #[error("chunk size line longer than {limit} bytes")]
    ChunkLineTooLong {
        /// The limit.
        limit: usize,
    },
    /// Chunk data not followed by CRLF.
    #[error("missing CRLF after chunk data")]
    MissingChunkCrlf,
    /// Trailers beyond [`Limits::max_head`] bytes.
    #[error("trailers larger than {limit} bytes")]
    TrailersTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Malformed trailer fields.
    #[error("malformed trailers: {0}")]
    BadTrailers(&'static str),
    /// The connection closed before the response began.
    #[error("connection closed before any response byte")]
    NoResponse,
    /// The connection closed inside the head.
    #[error("response truncated: connection closed in the response head")]
    TruncatedHead,
    /// The connection closed before `Content-Length` bytes of body.
    #[error("response truncated: got {got} of {expected} body bytes")]
    Truncated {
        /// Body bytes received.
        got: u64,
        /// Body bytes announced.
        expected: u64,
    },
    /// The connection closed before a chunked body's last chunk.
    #[error("response truncated: chunked body closed after {got} bytes, before its last chunk")]
    TruncatedChunked {
        /// Body bytes received.
        got: u64,
    },
    /// A method that is not an HTTP token.
    #[error("invalid method {0:?}")]
    InvalidMethod(String),
    /// A request target with whitespace or control characters, or empty.
    #[error("invalid request target {0:?}")]
    InvalidTarget(String),
    /// A header name that is not an HTTP token.
    #[error("invalid header name {0:?}")]
    InvalidHeaderName(String),
    /// A header value with CR, LF or NUL.
    #[error("invalid value for header {0:?}: CR, LF and NUL are not allowed")]
    InvalidHeaderValue(String),
    /// `Content-Length` or `Transfer-Encoding` among the headers given to
    /// [`encode_head`]: the framing argument writes them.
    #[error("{0} is set from the body's framing, not given as a header")]
    FramingHeader(String),
    /// More body written than the `Content-Length` announced.
    #[error("request body longer than its Content-Length {declared}")]
    BodyTooLong {
        /// The announced length.
        declared: u64,
    },
    /// The body ended before the `Content-Length` announced.
    #[error("request body ended after {sent} of {declared} bytes")]
    BodyTooShort {
        /// Bytes written.
        sent: u64,
        /// The announced length.
        declared: u64,
    },
}

impl Error {
    /// Whether this is the close of a connection that never answered: the
    /// signal to retry an idempotent request on a fresh connection when a
    /// pooled one turns out to be stale.
    #[must_use]
    pub fn is_no_response(&self) -> bool {
        matches!(self, Self::NoResponse)
    }
}

/// httparse's error, in words.
fn parse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "not HTTP/1.x",
    }
}

#[cfg(test)]
mod tests;
