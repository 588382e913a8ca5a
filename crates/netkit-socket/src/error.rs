//! The crate's error type.
//!
//! OS failures carry node's errno name (`ECONNREFUSED`...) as data; turning an
//! `io::Error` into one happens at the I/O edge, in the drivers' shim
//! (`netkit_sys::os_error`), so this crate needs no platform crate.

use std::convert::Infallible;

/// What went wrong on a socket, in a form that can be cloned into both the
/// `error` and the `close` event.
///
/// `T` is the error of a TLS layer above the socket (`netkit_tls::Error` for
/// the drivers' sockets), kept typed so callers can act on it; a plain socket
/// has none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error<T = Infallible> {
    /// The operating system reported a failure (`ECONNRESET`, `ECONNREFUSED`, ...).
    #[error("{code}: {message}")]
    Os {
        /// The node-style name of the errno, e.g. `ECONNREFUSED`.
        code: &'static str,
        /// The raw errno value, when the OS gave one.
        errno: Option<i32>,
        /// A human description (the operation and address, or the OS text).
        message: String,
    },
    /// `write` or `end` was called after the socket closed (Bun returns -1 here).
    #[error("socket is closed")]
    Closed,
    /// `write` was called after `end()` shut the sending side.
    #[error("socket has ended: the sending side is shut")]
    Ended,
    /// A failure of the TLS layer over the socket (handshake, certificate,
    /// alert, truncation), typed.
    #[error("tls: {0}")]
    Tls(T),
}

impl<T> Error<T> {
    /// An OS-level failure named like node (`ETIMEDOUT`, `ENOTFOUND`...) that no
    /// syscall reported (a timer, a resolver), so it has no errno value.
    pub fn os(code: &'static str, message: impl Into<String>) -> Self {
        Self::Os {
            code,
            errno: None,
            message: message.into(),
        }
    }

    /// The node-style code (`ECONNRESET`...) for OS errors; `ERR_SOCKET_CLOSED`,
    /// `EPIPE` and `ERR_TLS` otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Os { code, .. } => code,
            Self::Closed => "ERR_SOCKET_CLOSED",
            Self::Ended => "EPIPE",
            Self::Tls(_) => "ERR_TLS",
        }
    }

    /// The TLS layer's error, if this is one.
    pub fn tls(&self) -> Option<&T> {
        match self {
            Self::Tls(e) => Some(e),
            _ => None,
        }
    }

    /// The same error for a socket whose TLS error type is `U` (a plain
    /// socket's error has no TLS variant to convert).
    pub fn widen<U>(self) -> Error<U>
    where
        T: Into<U>,
    {
        match self {
            Self::Os {
                code,
                errno,
                message,
            } => Error::Os {
                code,
                errno,
                message,
            },
            Self::Closed => Error::Closed,
            Self::Ended => Error::Ended,
            Self::Tls(e) => Error::Tls(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_words() {
        let e: Error = Error::os("ETIMEDOUT", "connect 10.0.0.1:80");
        assert_eq!(e.to_string(), "ETIMEDOUT: connect 10.0.0.1:80");
        assert_eq!(e.code(), "ETIMEDOUT");
        assert_eq!(Error::<Infallible>::Closed.code(), "ERR_SOCKET_CLOSED");
        let t: Error<String> = Error::Tls("bad certificate".into());
        assert_eq!(t.to_string(), "tls: bad certificate");
        assert_eq!(t.code(), "ERR_TLS");
        assert_eq!(t.tls().map(String::as_str), Some("bad certificate"));
    }
}
