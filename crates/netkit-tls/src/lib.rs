//! A sans-IO TLS session on rustls, configured with Bun's options.
//!
//! [`TlsSession`] takes TLS bytes from the network and gives plaintext, takes
//! plaintext and gives TLS bytes; it never touches a socket, a file or a thread.
//! Configuration comes from PEM handed over as bytes ([`Pem`]), with Bun's
//! vocabulary: `key`/`cert`, `ca` (replaces the built-in roots),
//! `reject_unauthorized`, `request_cert`, ALPN. The drivers (TCP sockets, proxy
//! tunnels, the HTTP client) all reuse it.
//!
//! It wraps rustls 0.23's unbuffered connections, with the session owning its
//! buffers and freeing them when empty; see ARCHITECTURE.md for why the
//! unbuffered API was chosen over the buffered one.
//!
//! # Examples
//!
//! A client and a server talking in memory:
//!
//! ```
//! use std::sync::Arc;
//! use netkit_tls::{ClientOptions, Pem, ServerOptions, TlsEvent, TlsSession};
//! use netkit_tls::rustls::{pki_types::UnixTime, time_provider::TimeProvider};
//!
//! // Time comes from the caller: here a fixed instant inside the certificate's
//! // validity (a driver passes the system's clock).
//! #[derive(Debug)]
//! struct Fixed(UnixTime);
//! impl TimeProvider for Fixed {
//!     fn current_time(&self) -> Option<UnixTime> { Some(self.0) }
//! }
//! let now = Arc::new(Fixed(UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_900_000_000))));
//!
//! let ca = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
//! let cert = Pem::new("cert.pem", ca.cert.pem());
//! let key = Pem::new("key.pem", ca.signing_key.serialize_pem());
//! let mut so = ServerOptions::new(cert.clone(), key);
//! so.time = Some(now.clone());
//! let server_cfg = netkit_tls::server_config(&so)?;
//! let client_cfg = netkit_tls::client_config(&ClientOptions {
//!     ca: Some(cert),
//!     time: Some(now),
//!     ..ClientOptions::default()
//! })?;
//!
//! let mut client = TlsSession::client(&client_cfg, "localhost")?;
//! let mut server = TlsSession::server(&server_cfg)?;
//! client.write(b"hello")?; // buffered until the handshake is done
//! let mut wire = Vec::new();
//! for _ in 0..4 {
//!     wire.clear();
//!     client.drain_transmit(&mut wire);
//!     server.handle_input(&wire)?;
//!     wire.clear();
//!     server.drain_transmit(&mut wire);
//!     client.handle_input(&wire)?;
//! }
//! assert_eq!(server.poll_event(), Some(TlsEvent::HandshakeDone));
//! let mut buf = [0u8; 16];
//! let n = server.read_plaintext(&mut buf);
//! assert_eq!(&buf[..n], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod error;
mod hello;
mod machine;
mod session;
mod socket;
pub mod stream;

pub use config::{
    ClientConfig, ClientOptions, MAX_PEM_BYTES, Pem, ServerConfig, ServerOptions, client_config,
    provider, server_config, server_name,
};
pub use error::Error;
pub use machine::Machine;
pub use rustls;
pub use session::{Authorization, TlsEvent, TlsSession};
pub use socket::TlsSocket;

/// A socket error whose TLS variant is this crate's typed [`Error`]: what the
/// drivers' handlers receive.
pub type SocketError = netkit_socket::Error<Error>;

/// A socket event carrying [`SocketError`]s.
pub type SocketEvent = netkit_socket::Event<Error>;

#[cfg(test)]
mod socket_tests;
#[cfg(test)]
mod tests;
