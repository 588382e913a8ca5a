//! netkit's blocking driver: an event loop with Bun's socket handler model.
//!
//! One [`EventLoop`] per thread owns its sockets and runs the
//! [`netkit_socket::Socket`] state machine for each of them. A server is a
//! [`Handler`] implemented once (not per socket), as with `Bun.listen`; every socket
//! carries user data of the handler's [`Handler::Data`] type (Bun's `socket.data`).
//! The loop is level-triggered readiness polling (epoll called directly on Linux,
//! the `polling` crate elsewhere), `socket2` and `std::net`; it reads into one
//! buffer shared by all its sockets, so an idle connection holds no read buffer.
//!
//! The driver makes no protocol decision: backpressure, `drain`, half-close and the
//! idle timer are all `netkit-socket`'s.
//!
//! Outside the loop, [`TlsStream`] is a blocking `Read + Write` TLS stream over any
//! transport, another `TlsStream` included (TLS inside TLS, for proxy tunnels).
//!
//! # Examples
//!
//! An echo server and a client on one loop:
//!
//! ```
//! use netkit_blocking::{ConnectOptions, EventLoop, Handler, ListenOptions, Socket};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type Data = Vec<u8>; // what the socket has not accepted yet
//!     fn data(&mut self, s: &mut Socket<'_, Vec<u8>>, bytes: &[u8]) {
//!         let n = s.write(bytes).unwrap_or(0); // fewer than bytes.len() = backpressure
//!         if n < bytes.len() {
//!             s.data_mut().extend_from_slice(&bytes[n..]);
//!             s.pause(); // read nothing more until `drain`
//!         }
//!     }
//!     fn drain(&mut self, s: &mut Socket<'_, Vec<u8>>) {
//!         let held = std::mem::take(s.data_mut());
//!         let n = s.write(&held).unwrap_or(0);
//!         s.data_mut().extend_from_slice(&held[n..]);
//!         if s.data().is_empty() {
//!             s.resume();
//!         }
//!     }
//! }
//!
//! struct Client { got: Vec<u8> }
//! impl Handler for Client {
//!     type Data = ();
//!     fn open(&mut self, s: &mut Socket<'_, ()>) {
//!         let _ = s.write(b"hello");
//!     }
//!     fn data(&mut self, s: &mut Socket<'_, ()>, bytes: &[u8]) {
//!         self.got.extend_from_slice(bytes);
//!         if self.got == b"hello" { s.close(); }
//!     }
//! }
//!
//! let mut lp = EventLoop::new()?;
//! let server = lp.listen(ListenOptions::new("127.0.0.1", 0), Echo)?;
//! let port = lp.local_addr(server).unwrap().port();
//! lp.connect(ConnectOptions::new("127.0.0.1", port), Client { got: vec![] }, ())?;
//! lp.unref(server); // run() returns once the client is done
//! lp.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dns;
mod event_loop;
pub mod fetch;
mod group;
mod handle;
pub mod multi;
mod socket;
pub mod source;
mod tls_stream;
pub mod udp;

use std::sync::Arc;

pub use event_loop::{ClientGroup, Connection, EventLoop, Server, SourceId, TimerId, UdpId};
pub use handle::LoopHandle;
pub use netkit_sys::net::Endpoint;
pub use netkit_sys::tls;
pub use netkit_sys::{
    ClientTls, ConnectOptions, Error, ListenOptions, SharedHandler, SocketConfig, resolve,
};
pub use socket::Socket;
pub use tls_stream::TlsStream;

/// A set of socket handlers, implemented once per server or client group
/// (Bun's `socket: { open, data, drain, close, end, error, timeout, connectError }`).
///
/// Every method but `data` has an empty default. Writes made inside a handler are
/// buffered and flushed when the handler returns, so many small writes in one
/// callback cost one syscall. Methods take `&mut self`: a loop is one thread
/// that owns its handlers. A [`SharedHandler`] (written once for both drivers)
/// is a `Handler` here inside an `Arc`.
pub trait Handler: 'static {
    /// Each socket's user data (Bun's `socket.data`).
    type Data: 'static;

    /// The connection is established.
    fn open(&mut self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// Bytes arrived. The slice is the loop's shared buffer: copy what you keep.
    fn data(&mut self, socket: &mut Socket<'_, Self::Data>, bytes: &[u8]);
    /// A write that was short has since drained below the low-water mark.
    fn drain(&mut self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// The peer ended its sending side. Unless the socket allows half-open, the
    /// socket ends its own side after this returns.
    fn end(&mut self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// The socket closed, with the error that closed it if any. Always the last call.
    fn close(&mut self, socket: &mut Socket<'_, Self::Data>, error: Option<&Error>) {
        let _ = (socket, error);
    }
    /// An I/O error; `close` follows.
    fn error(&mut self, socket: &mut Socket<'_, Self::Data>, error: &Error) {
        let _ = (socket, error);
    }
    /// The idle timer expired; the socket stays open unless the handler closes it.
    fn timeout(&mut self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// A client's connect failed (all addresses tried). Nothing else is called for
    /// this socket.
    fn connect_error(&mut self, socket: &mut Socket<'_, Self::Data>, error: &Error) {
        let _ = (socket, error);
    }
}

/// A handler written once for both drivers runs here shared.
impl<H: SharedHandler> Handler for Arc<H> {
    type Data = H::Data;

    fn open(&mut self, socket: &mut Socket<'_, Self::Data>) {
        (**self).open(socket);
    }
    fn data(&mut self, socket: &mut Socket<'_, Self::Data>, bytes: &[u8]) {
        (**self).data(socket, bytes);
    }
    fn drain(&mut self, socket: &mut Socket<'_, Self::Data>) {
        (**self).drain(socket);
    }
    fn end(&mut self, socket: &mut Socket<'_, Self::Data>) {
        (**self).end(socket);
    }
    fn close(&mut self, socket: &mut Socket<'_, Self::Data>, error: Option<&Error>) {
        (**self).close(socket, error);
    }
    fn error(&mut self, socket: &mut Socket<'_, Self::Data>, error: &Error) {
        (**self).error(socket, error);
    }
    fn timeout(&mut self, socket: &mut Socket<'_, Self::Data>) {
        (**self).timeout(socket);
    }
    fn connect_error(&mut self, socket: &mut Socket<'_, Self::Data>, error: &Error) {
        (**self).connect_error(socket, error);
    }
}
