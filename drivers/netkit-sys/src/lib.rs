//! What netkit's drivers share, below any protocol decision: the listen/connect
//! options, binding a listener, starting a non-blocking connect, and resolving a
//! host name (IP literal or hosts file). Both `netkit-blocking` and `netkit-smol`
//! use it, so they bind, connect and resolve identically.
//!
//! # Examples
//!
//! ```
//! use netkit_sys::{ListenOptions, bind_listener, resolve::resolve};
//!
//! let listener = bind_listener(&ListenOptions::new("127.0.0.1", 0))?;
//! let addr = listener.local_addr()?.as_socket().unwrap();
//! assert_eq!(resolve("127.0.0.1", addr.port())?, vec![addr]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod resolve;
mod socket;

pub use socket::{Socket, SocketIo};

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

pub use netkit_socket::{Config as SocketConfig, Error};
use socket2::{Domain, Protocol, SockAddr, Socket as RawSocket, Type};

/// Options for listening (Bun's `Bun.listen` options).
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Address or host name to bind (`127.0.0.1`, `::`, `localhost`...).
    pub hostname: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Set `SO_REUSEPORT`, so several loops can each own a listener on one port.
    pub reuse_port: bool,
    /// The listen backlog.
    pub backlog: i32,
    /// Per-connection limits (write high-water mark, half-open...).
    pub socket: SocketConfig,
    /// Disable Nagle's algorithm on accepted sockets (on by default).
    pub no_delay: bool,
    /// Serve TLS with this configuration (Bun's `tls: { key, cert }`).
    pub tls: Option<netkit_tls::ServerConfig>,
}

/// TLS for a client connection (Bun's `tls: true` or `tls: { ... }`).
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The configuration (roots, verification, ALPN...).
    pub config: netkit_tls::ClientConfig,
    /// SNI and the name verified; the connect host name when `None`.
    pub server_name: Option<String>,
}

impl ListenOptions {
    /// Listen on `hostname:port` with the defaults.
    pub fn new(hostname: impl Into<String>, port: u16) -> Self {
        Self {
            hostname: hostname.into(),
            port,
            reuse_port: false,
            backlog: 1024,
            socket: SocketConfig::default(),
            no_delay: true,
            tls: None,
        }
    }
}

/// Options for connecting (Bun's `Bun.connect` options).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Address or host name to connect to; IPv6 with or without brackets.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Per-connection limits.
    pub socket: SocketConfig,
    /// Disable Nagle's algorithm (on by default).
    pub no_delay: bool,
    /// Idle timeout armed from the start (also covers the connect itself).
    pub timeout: Option<Duration>,
    /// Speak TLS over the connection.
    pub tls: Option<ClientTls>,
}

impl ConnectOptions {
    /// Connect to `hostname:port` with the defaults.
    pub fn new(hostname: impl Into<String>, port: u16) -> Self {
        Self {
            hostname: hostname.into(),
            port,
            socket: SocketConfig::default(),
            no_delay: true,
            timeout: None,
            tls: None,
        }
    }
}

/// Binds a non-blocking, listening TCP socket for `opts` (`SO_REUSEADDR` always,
/// `SO_REUSEPORT` on request). Errors read like node's:
/// `EADDRINUSE: listen 127.0.0.1:8080`.
pub fn bind_listener(opts: &ListenOptions) -> Result<RawSocket, Error> {
    let addrs = resolve::resolve(&opts.hostname, opts.port)?;
    let addr = addrs[0];
    let ctx = || format!("listen {addr}");
    let io = |e: io::Error| Error::from_io(&e, ctx());
    let sock =
        RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(io)?;
    sock.set_reuse_address(true).map_err(io)?;
    if opts.reuse_port {
        sock.set_reuse_port(true).map_err(io)?;
    }
    sock.bind(&addr.into()).map_err(io)?;
    sock.listen(opts.backlog).map_err(io)?;
    sock.set_nonblocking(true).map_err(io)?;
    Ok(sock)
}

/// Starts a non-blocking connect to `addr`; completion is signalled by writability
/// (then check `take_error`). Errors read like node's: `ECONNREFUSED: connect 127.0.0.1:9`.
pub fn start_connect(addr: SocketAddr) -> Result<RawSocket, Error> {
    let io = |e: io::Error| Error::from_io(&e, format!("connect {addr}"));
    let sock =
        RawSocket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(io)?;
    sock.set_nonblocking(true).map_err(io)?;
    match sock.connect(&SockAddr::from(addr)) {
        Ok(()) => Ok(sock),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(sock),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(sock),
        Err(e) => Err(io(e)),
    }
}
