//! The platform both netkit drivers stand on, below any protocol decision:
//!
//! - the one syscall shim ([`sys`]): the readiness poller, node's errno names
//!   for OS errors, the run-time capability probe; every `unsafe` of the
//!   drivers is there;
//! - the listen and connect options (Bun's `Bun.listen` / `Bun.connect`,
//!   TCP or Unix, with TLS), and what a driver does with them: binding,
//!   accepting, starting connects ([`net`]), building the connection's state
//!   machine ([`ConnectOptions::machine`]) and the connect plan
//!   ([`ConnectOptions::plan`]);
//! - the resolution step of the connect plan ([`Resolver`]: IP literals and
//!   the hosts file today, the DNS resolver next);
//! - UDP sockets' options, binding, `sendMany` decoding and sending, and
//!   every socket option with Bun's messages ([`udp`]), for both drivers;
//! - the handler-facing [`Socket`] handle and the [`SharedHandler`] shape that
//!   runs on both drivers.
//!
//! Both `netkit-blocking` and `netkit-smol` use it, so they bind, connect,
//! resolve and report errors identically.
//!
//! # Examples
//!
//! ```
//! use netkit_sys::{ListenOptions, Resolver, net::bind_listener};
//!
//! let listener = bind_listener(&ListenOptions::new("127.0.0.1", 0), &mut Resolver::default())?;
//! println!("listening on {}", listener.local());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod handler;
pub mod net;
pub mod resolve;
mod socket;
pub mod sys;
pub mod tls;
pub mod udp;

pub use handler::SharedHandler;
pub use resolve::Resolver;
pub use socket::Socket;
pub use sys::errno::os_error;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use netkit_socket::Config as SocketConfig;
use netkit_socket::connect::{ATTEMPT_DELAY, ConnectConfig, ConnectPlan};
use netkit_tls::Machine;

/// What handlers and drivers report: an OS error named like node, a TLS
/// failure (typed: [`netkit_tls::Error`]), or a write after close.
pub type Error = netkit_tls::SocketError;

/// Options for listening (Bun's `Bun.listen` options).
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Address or host name to bind (`127.0.0.1`, `::`, `localhost`...).
    pub hostname: String,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// Listen on this Unix domain socket path instead of `hostname:port`
    /// (Bun's `unix`). A path that exists is `EADDRINUSE`; the listener
    /// removes the file it created when it stops.
    pub unix: Option<PathBuf>,
    /// Set `SO_REUSEPORT`, so several loops can each own a listener on one port.
    pub reuse_port: bool,
    /// The listen backlog.
    pub backlog: i32,
    /// Per-connection limits (write high-water mark, half-open...).
    pub socket: SocketConfig,
    /// Disable Nagle's algorithm on accepted TCP sockets (on by default).
    pub no_delay: bool,
    /// Serve TLS with this configuration (Bun's `tls: { key, cert }`).
    pub tls: Option<netkit_tls::ServerConfig>,
}

impl ListenOptions {
    /// Listen on `hostname:port` with the defaults.
    pub fn new(hostname: impl Into<String>, port: u16) -> Self {
        Self {
            hostname: hostname.into(),
            port,
            unix: None,
            reuse_port: false,
            backlog: 1024,
            socket: SocketConfig::default(),
            no_delay: true,
            tls: None,
        }
    }

    /// Listen on a Unix domain socket at `path` with the defaults.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self {
            unix: Some(path.into()),
            ..Self::new("", 0)
        }
    }

    /// The connection state machine for an accepted socket (plain, or TLS
    /// when the options serve TLS).
    pub fn machine(&self, now: Instant) -> Result<Machine, netkit_tls::Error> {
        Machine::accepted(now, self.socket.clone(), self.tls.as_ref())
    }
}

/// TLS for a client connection (Bun's `tls: true` or `tls: { ... }`).
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The configuration (roots, verification, ALPN...).
    pub config: netkit_tls::ClientConfig,
    /// SNI and the name verified; the connect host name when `None` (over a
    /// Unix socket, `localhost`).
    pub server_name: Option<String>,
}

/// Options for connecting (Bun's `Bun.connect` options).
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Address or host name to connect to; IPv6 with or without brackets.
    pub hostname: String,
    /// Port.
    pub port: u16,
    /// Connect to this Unix domain socket path instead (Bun's `unix`).
    pub unix: Option<PathBuf>,
    /// Per-connection limits.
    pub socket: SocketConfig,
    /// Disable Nagle's algorithm (on by default; TCP only).
    pub no_delay: bool,
    /// Idle timeout, armed when the connection opens (Bun's `socket.timeout`).
    pub timeout: Option<Duration>,
    /// Limit for the whole connect, resolution and every attempt included
    /// (`ETIMEDOUT`); `None`: the kernel's own limits.
    pub connect_timeout: Option<Duration>,
    /// Happy Eyeballs' Connection Attempt Delay (RFC 8305, 250 ms).
    pub attempt_delay: Duration,
    /// Speak TLS over the connection.
    pub tls: Option<ClientTls>,
}

impl ConnectOptions {
    /// Connect to `hostname:port` with the defaults.
    pub fn new(hostname: impl Into<String>, port: u16) -> Self {
        Self {
            hostname: hostname.into(),
            port,
            unix: None,
            socket: SocketConfig::default(),
            no_delay: true,
            timeout: None,
            connect_timeout: None,
            attempt_delay: ATTEMPT_DELAY,
            tls: None,
        }
    }

    /// Connect to a Unix domain socket at `path` with the defaults.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self {
            unix: Some(path.into()),
            ..Self::new("", 0)
        }
    }

    /// The TLS server name: the configured one, else the host (`localhost`
    /// over a Unix socket).
    #[must_use]
    pub fn server_name(&self) -> &str {
        match self.tls.as_ref().and_then(|t| t.server_name.as_deref()) {
            Some(name) => name,
            None if self.unix.is_some() => "localhost",
            None => &self.hostname,
        }
    }

    /// The connection's state machine (plain, or TLS with the server name),
    /// connecting, with the idle timeout set to start when it opens.
    pub fn machine(&self, now: Instant) -> Result<Machine, netkit_tls::Error> {
        let tls = self.tls.as_ref().map(|t| (&t.config, self.server_name()));
        let mut sm = Machine::client(now, self.socket.clone(), tls)?;
        if self.timeout.is_some() {
            sm.set_timeout(now, self.timeout);
        }
        Ok(sm)
    }

    /// The connect plan for these options: Happy Eyeballs over the host's
    /// addresses, or a single attempt to the Unix path (the driver connects
    /// to [`endpoint`](Self::endpoint) for that attempt).
    #[must_use]
    pub fn plan(&self, now: Instant) -> ConnectPlan<netkit_tls::Error> {
        let config = ConnectConfig {
            attempt_delay: self.attempt_delay,
            timeout: self.connect_timeout,
        };
        match &self.unix {
            // One attempt: the address stands for the path (see `endpoint`).
            Some(path) => ConnectPlan::to_addrs(now, &[([0, 0, 0, 0], 0).into()], config)
                .named(path.display().to_string()),
            None => ConnectPlan::new(now, &self.hostname, self.port, config),
        }
    }

    /// What an attempt of the plan connects to.
    #[must_use]
    pub fn endpoint(&self, addr: std::net::SocketAddr) -> net::Endpoint {
        match &self.unix {
            Some(p) => net::Endpoint::Unix(p.clone()),
            None => net::Endpoint::Inet(addr),
        }
    }
}
