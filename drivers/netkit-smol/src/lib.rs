//! netkit's async driver on `async-io`: Bun-style socket handlers on smol, and
//! plain `AsyncRead`/`AsyncWrite` streams for code that prefers those.
//!
//! Every connection runs the same [`netkit_socket::Socket`] state machine as the
//! blocking driver, in one task per connection, so backpressure, `drain`,
//! half-close and idle timeouts behave identically; connects run the same
//! connect plan (Happy Eyeballs, one connect timeout), over TCP or a Unix
//! socket. Reads go through a buffer shared by all tasks of a thread, so an
//! idle connection holds no read buffer. The futures are executor-agnostic
//! (`async-io` reactor); [`Server::run`] runs connection tasks inside its own
//! future (one thread) and [`Server::run_with`] hands them to your executor
//! (for example smol's multi-threaded one). What a process's connections share
//! (the resolver, later the HTTP pool) lives in a [`Runtime`].
//! [`udp::UdpSocket`] is Bun's `udpSocket` (sends that never wait and
//! return Bun's count, `writable` as the drain, batched receives).
//! [`TlsStream`] is an `AsyncRead`/`AsyncWrite` TLS stream over any transport,
//! another `TlsStream` included (TLS inside TLS, for proxy tunnels).
//!
//! # Examples
//!
//! ```
//! use netkit_smol::{Handler, ListenOptions, Server, Socket, TcpStream};
//! use futures_lite::{AsyncReadExt, AsyncWriteExt};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = Vec<u8>; // what the socket has not accepted yet
//!     fn data(&self, s: &mut Socket<'_, Vec<u8>>, bytes: &[u8]) {
//!         let n = s.write(bytes).unwrap_or(0); // fewer than bytes.len() = backpressure
//!         if n < bytes.len() {
//!             s.data_mut().extend_from_slice(&bytes[n..]);
//!             s.pause(); // read nothing more until `drain`
//!         }
//!     }
//!     fn drain(&self, s: &mut Socket<'_, Vec<u8>>) {
//!         let held = std::mem::take(s.data_mut());
//!         let n = s.write(&held).unwrap_or(0);
//!         s.data_mut().extend_from_slice(&held[n..]);
//!         if s.data().is_empty() {
//!             s.resume();
//!         }
//!     }
//! }
//!
//! smol::block_on(async {
//!     let server = Server::bind(ListenOptions::new("127.0.0.1", 0), Echo)?;
//!     let addr = server.local_addr();
//!     let handle = server.handle();
//!     smol::spawn(server.run()).detach();
//!
//!     let mut stream = TcpStream::connect("127.0.0.1", addr.port()).await?;
//!     stream.write_all(b"ping").await?;
//!     let mut buf = [0u8; 4];
//!     stream.read_exact(&mut buf).await?;
//!     assert_eq!(&buf, b"ping");
//!     handle.stop(true);
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod conn;
mod dns;
pub mod fetch;
mod runtime;
mod server;
mod stream;
mod tls_stream;
pub mod udp;

pub use netkit_sys::net::Endpoint;
pub use netkit_sys::tls;
pub use netkit_sys::{ClientTls, ConnectOptions, Error, ListenOptions, SocketConfig, resolve};
pub use runtime::Runtime;
pub use server::{Server, ServerHandle, Task};
pub use stream::{TcpListener, TcpStream};
pub use tls_stream::TlsStream;

/// A set of socket handlers, implemented once per server or client (Bun's
/// `socket: { open, data, drain, ... }`). Methods take `&self` because a
/// server's connections run on many tasks, possibly on many threads; keep
/// per-connection state in `Data`. It is netkit-sys's [`SharedHandler`]: the
/// same handler runs on `netkit-blocking` inside an `Arc`.
///
/// [`SharedHandler`]: netkit_sys::SharedHandler
pub use netkit_sys::SharedHandler as Handler;

/// One connection, as seen from inside a [`Handler`] callback (see
/// [`netkit_sys::Socket`] for its methods). I/O happens when the callback returns.
pub type Socket<'a, D> = netkit_sys::Socket<'a, D>;

/// Connects a client (Bun's `Bun.connect`) on the process's [`Runtime`] and
/// runs it to completion: returns when the socket has closed, or with the
/// error after `connect_error` ran.
pub async fn connect<H: Handler>(
    opts: ConnectOptions,
    handler: H,
    data: H::Data,
) -> Result<(), Error> {
    Runtime::global().connect(opts, handler, data).await
}
