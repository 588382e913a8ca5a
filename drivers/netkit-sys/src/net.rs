//! Sockets below any protocol decision: binding a TCP or Unix listener,
//! accepting, and starting non-blocking connects. Errors read like node's
//! (`EADDRINUSE: listen 127.0.0.1:8080`, `ENOENT: connect /tmp/x.sock`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, SockAddr, Socket as RawSocket, Type};

use crate::sys::errno::os_error;
use crate::{Error, ListenOptions};

/// Where a listener listens, or what a connection connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A TCP address.
    Inet(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    /// `127.0.0.1:80`, `[::1]:80`, or the path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inet(a) => write!(f, "{a}"),
            Self::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Endpoint {
    /// The TCP address, if this is one.
    #[must_use]
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            Self::Inet(a) => Some(*a),
            Self::Unix(_) => None,
        }
    }
}

/// A listening socket (TCP or Unix), non-blocking. A Unix listener removes its
/// socket file when dropped, if the file is still the one it created (never a
/// file it did not create: a path that exists makes `bind` fail with
/// `EADDRINUSE`).
#[derive(Debug)]
pub struct Listener {
    sock: RawSocket,
    local: Endpoint,
    no_delay: bool,
    /// The socket file we created: its path, device and inode.
    created: Option<(PathBuf, u64, u64)>,
}

impl Listener {
    /// The socket, to register with a poller or wrap in `Async`.
    #[must_use]
    pub fn socket(&self) -> &RawSocket {
        &self.sock
    }

    /// Where it listens (the real port after port 0).
    #[must_use]
    pub fn local(&self) -> &Endpoint {
        &self.local
    }

    /// Accepts one connection: non-blocking, Nagle off for TCP when asked.
    /// Returns the peer's address for TCP (`None` for Unix).
    pub fn accept(&self) -> io::Result<(RawSocket, Option<SocketAddr>)> {
        let (sock, peer) = self.sock.accept()?;
        sock.set_nonblocking(true)?;
        if self.no_delay && matches!(self.local, Endpoint::Inet(_)) {
            let _ = sock.set_tcp_nodelay(true);
        }
        Ok((sock, peer.as_socket()))
    }
}

impl std::os::fd::AsFd for Listener {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl std::os::fd::AsRawFd for Listener {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.sock.as_raw_fd()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some((path, dev, ino)) = &self.created {
            let ours = std::fs::symlink_metadata(path)
                .is_ok_and(|m| m.file_type().is_socket() && m.dev() == *dev && m.ino() == *ino);
            if ours {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Binds a non-blocking listener for `opts`: a Unix socket at `opts.unix`, else
/// TCP on `hostname:port` (`SO_REUSEADDR` always, `SO_REUSEPORT` on request;
/// the host must be an IP literal or a hosts-file name: no DNS).
pub fn bind_listener(
    opts: &ListenOptions,
    resolver: &mut crate::Resolver,
) -> Result<Listener, Error> {
    if let Some(path) = &opts.unix {
        return bind_unix(path, opts.backlog);
    }
    // A listener binds an IP literal or a hosts-file name (`localhost`): no
    // DNS round trip before a server can start.
    let ip = resolver.lookup_now(std::time::Instant::now(), &opts.hostname)?;
    let addr = SocketAddr::new(ip, opts.port);
    let io = |e: io::Error| os_error(&e, format!("listen {addr}"));
    let sock =
        RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(io)?;
    sock.set_reuse_address(true).map_err(io)?;
    if opts.reuse_port {
        sock.set_reuse_port(true).map_err(io)?;
    }
    sock.bind(&addr.into()).map_err(io)?;
    sock.listen(opts.backlog).map_err(io)?;
    sock.set_nonblocking(true).map_err(io)?;
    let local = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .unwrap_or(addr);
    Ok(Listener {
        sock,
        local: Endpoint::Inet(local),
        no_delay: opts.no_delay,
        created: None,
    })
}

fn bind_unix(path: &Path, backlog: i32) -> Result<Listener, Error> {
    let io = |e: io::Error| os_error(&e, format!("listen {}", path.display()));
    let sock = RawSocket::new(Domain::UNIX, Type::STREAM, None).map_err(io)?;
    let addr = SockAddr::unix(path).map_err(io)?;
    // An existing path (a stale socket, or any other file) is EADDRINUSE from
    // the kernel: it is never unlinked here.
    sock.bind(&addr).map_err(io)?;
    let meta = std::fs::symlink_metadata(path).map_err(io)?;
    let created = Some((path.to_path_buf(), meta.dev(), meta.ino()));
    // From here on, dropping the listener removes the file it created.
    let listener = Listener {
        sock,
        local: Endpoint::Unix(path.to_path_buf()),
        no_delay: false,
        created,
    };
    listener.sock.listen(backlog).map_err(io)?;
    listener.sock.set_nonblocking(true).map_err(io)?;
    Ok(listener)
}

/// Starts a non-blocking connect to a TCP address or a Unix path; completion is
/// signalled by writability, then [`connect_result`] tells the outcome. A Unix
/// path that does not exist is `ENOENT`, one with no listener `ECONNREFUSED`,
/// at once.
pub fn start_connect(to: &Endpoint) -> Result<RawSocket, Error> {
    let io = |e: io::Error| os_error(&e, format!("connect {to}"));
    let (domain, addr, proto) = match to {
        Endpoint::Inet(a) => (
            Domain::for_address(*a),
            SockAddr::from(*a),
            Some(Protocol::TCP),
        ),
        Endpoint::Unix(p) => (Domain::UNIX, SockAddr::unix(p).map_err(io)?, None),
    };
    let sock = RawSocket::new(domain, Type::STREAM, proto).map_err(io)?;
    sock.set_nonblocking(true).map_err(io)?;
    match sock.connect(&addr) {
        Ok(()) => Ok(sock),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(sock),
        // A Unix socket whose listener's backlog is full.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(sock),
        Err(e) => Err(io(e)),
    }
}

/// The outcome of a connect started by [`start_connect`], once the socket
/// reported readiness: `Ok(true)` connected, `Ok(false)` still in progress (a
/// spurious wake-up), `Err` failed (`error` is the poller's error flag).
pub fn connect_result(sock: &RawSocket, to: &Endpoint, error: bool) -> Result<bool, Error> {
    let io = |e: io::Error| os_error(&e, format!("connect {to}"));
    match sock.take_error() {
        Ok(Some(e)) | Err(e) => return Err(io(e)),
        Ok(None) => {}
    }
    if error {
        return Err(io(io::Error::from(io::ErrorKind::ConnectionRefused)));
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(io(e)),
    }
}
