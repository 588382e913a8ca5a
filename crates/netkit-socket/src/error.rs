//! The crate's error type and node-style errno names.

use std::io;

/// What went wrong on a socket, in a form that can be cloned into both the
/// `error` and the `close` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
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
    /// A TLS failure on the socket (handshake, certificate, alert, truncation),
    /// worded by the TLS layer.
    #[error("tls: {0}")]
    Tls(String),
}

impl Error {
    /// Builds an [`Error::Os`] from an I/O error, prefixing the message with `context`
    /// (for example `connect 127.0.0.1:9`). The code is node's name for the errno.
    pub fn from_io(err: &io::Error, context: impl Into<String>) -> Self {
        let context = context.into();
        Self::Os {
            code: errno_name(err),
            errno: err.raw_os_error(),
            message: if context.is_empty() {
                strip_os_suffix(&err.to_string())
            } else {
                context
            },
        }
    }

    /// The node-style code (`ECONNRESET`...) for OS errors, `ERR_SOCKET_CLOSED` otherwise.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Os { code, .. } => code,
            Self::Closed => "ERR_SOCKET_CLOSED",
            Self::Ended => "EPIPE",
            Self::Tls(_) => "ERR_TLS",
        }
    }
}

impl From<io::Error> for Error {
    fn from(err: io::Error) -> Self {
        Self::from_io(&err, String::new())
    }
}

/// `"Connection refused (os error 111)"` → `"Connection refused"`.
fn strip_os_suffix(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// node's name for the errno behind an I/O error (`ECONNREFUSED`, `EADDRINUSE`, ...).
///
/// Uses the raw OS code when there is one, else the [`io::ErrorKind`]; unknown
/// failures are `EIO`.
pub fn errno_name(err: &io::Error) -> &'static str {
    if let Some(code) = err.raw_os_error() {
        if let Some(name) = raw_errno_name(code) {
            return name;
        }
    }
    use io::ErrorKind as K;
    match err.kind() {
        K::ConnectionRefused => "ECONNREFUSED",
        K::ConnectionReset => "ECONNRESET",
        K::ConnectionAborted => "ECONNABORTED",
        K::AddrInUse => "EADDRINUSE",
        K::AddrNotAvailable => "EADDRNOTAVAIL",
        K::TimedOut => "ETIMEDOUT",
        K::BrokenPipe => "EPIPE",
        K::NotConnected => "ENOTCONN",
        K::PermissionDenied => "EACCES",
        K::WouldBlock => "EAGAIN",
        K::InvalidInput => "EINVAL",
        K::NotFound => "ENOTFOUND",
        K::HostUnreachable => "EHOSTUNREACH",
        K::NetworkUnreachable => "ENETUNREACH",
        K::UnexpectedEof => "ECONNRESET",
        _ => "EIO",
    }
}

/// node's name for a raw errno value, on the errnos that sockets produce.
pub fn raw_errno_name(code: i32) -> Option<&'static str> {
    let name = match code {
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EPIPE => "EPIPE",
        libc::ENOTCONN => "ENOTCONN",
        libc::EACCES => "EACCES",
        libc::EPERM => "EPERM",
        libc::EAGAIN => "EAGAIN",
        libc::EINVAL => "EINVAL",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENETDOWN => "ENETDOWN",
        libc::EMFILE => "EMFILE",
        libc::ENFILE => "ENFILE",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        libc::EBADF => "EBADF",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EMSGSIZE => "EMSGSIZE",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::EALREADY => "EALREADY",
        libc::EISCONN => "EISCONN",
        libc::ENOENT => "ENOENT",
        _ => return None,
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_node() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(errno_name(&e), "ECONNREFUSED");
        let e = Error::from_io(&e, "connect 127.0.0.1:9");
        assert_eq!(e.to_string(), "ECONNREFUSED: connect 127.0.0.1:9");
        let e = io::Error::from(io::ErrorKind::AddrInUse);
        assert_eq!(errno_name(&e), "EADDRINUSE");
        let e: Error = io::Error::from_raw_os_error(libc::ECONNRESET).into();
        assert_eq!(e.to_string(), "ECONNRESET: Connection reset by peer");
        assert_eq!(Error::Closed.code(), "ERR_SOCKET_CLOSED");
    }
}
