//! OS errors at the I/O edge: node's errno names (`ECONNREFUSED`...) for the
//! raw values the kernel reports, so `crates/` can name errors without a
//! platform crate.

use std::io;

use crate::Error;

/// node's name for the errno behind an I/O error (`ECONNREFUSED`, `EADDRINUSE`, ...).
///
/// Uses the raw OS code when there is one, else the [`io::ErrorKind`]; unknown
/// failures are `EIO`.
pub fn errno_name(err: &io::Error) -> &'static str {
    if let Some(name) = err.raw_os_error().and_then(raw_errno_name) {
        return name;
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
        K::NotFound => "ENOENT",
        K::HostUnreachable => "EHOSTUNREACH",
        K::NetworkUnreachable => "ENETUNREACH",
        K::UnexpectedEof => "ECONNRESET",
        _ => "EIO",
    }
}

/// node's name for a raw errno value, on the errnos that sockets produce.
#[must_use]
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
        libc::EPROTO => "EPROTO",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOTDIR => "ENOTDIR",
        libc::EROFS => "EROFS",
        libc::EINTR => "EINTR",
        // Multicast and interface options: an interface that is gone, an
        // address the socket's family cannot take, an option not there.
        libc::ENODEV => "ENODEV",
        libc::ENXIO => "ENXIO",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::ENOPROTOOPT => "ENOPROTOOPT",
        libc::EDESTADDRREQ => "EDESTADDRREQ",
        libc::EHOSTDOWN => "EHOSTDOWN",
        libc::ENETRESET => "ENETRESET",
        libc::ESHUTDOWN => "ESHUTDOWN",
        _ => return None,
    };
    Some(name)
}

/// `"Connection refused (os error 111)"` → `"Connection refused"`.
fn strip_os_suffix(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// An I/O error as the drivers' [`Error::Os`], named like node, with `context`
/// as its message (`connect 127.0.0.1:9`), or the OS's words when `context` is
/// empty: `ECONNREFUSED: connect 127.0.0.1:9`.
pub fn os_error(err: &io::Error, context: impl Into<String>) -> Error {
    let context = context.into();
    Error::Os {
        code: errno_name(err),
        errno: err.raw_os_error(),
        message: if context.is_empty() {
            strip_os_suffix(&err.to_string())
        } else {
            context
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_node() {
        let e = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(errno_name(&e), "ECONNREFUSED");
        let e = os_error(&e, "connect 127.0.0.1:9");
        assert_eq!(e.to_string(), "ECONNREFUSED: connect 127.0.0.1:9");
        let e = io::Error::from(io::ErrorKind::AddrInUse);
        assert_eq!(errno_name(&e), "EADDRINUSE");
        let e = os_error(&io::Error::from_raw_os_error(libc::ECONNRESET), "");
        assert_eq!(e.to_string(), "ECONNRESET: Connection reset by peer");
        assert_eq!(
            errno_name(&io::Error::from_raw_os_error(libc::EMFILE)),
            "EMFILE"
        );
        // A multicast join on an interface that is gone (was EIO).
        assert_eq!(
            errno_name(&io::Error::from_raw_os_error(libc::ENODEV)),
            "ENODEV"
        );
    }
}
