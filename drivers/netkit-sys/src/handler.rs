//! The handler shape that runs on both drivers.

use crate::{Error, Socket};

/// A set of socket handlers written once for both drivers (Bun's
/// `socket: { open, data, drain, ... }`), with `&self` methods: it is
/// `netkit_smol::Handler` as is, and runs on `netkit-blocking` wrapped in an
/// `Arc`. Keep per-connection state in [`Data`](Self::Data).
///
/// Two shapes exist on purpose: a blocking loop is one thread that owns its
/// handlers, so its own `Handler` takes `&mut self` (no locks for handler
/// state); smol connections are tasks that may run on many threads at once, so
/// they share the handler by reference.
pub trait SharedHandler: Send + Sync + 'static {
    /// Each socket's user data (Bun's `socket.data`).
    type Data: Send + 'static;

    /// The connection is established.
    fn open(&self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// Bytes arrived (a buffer shared by the loop or thread: copy what you keep).
    fn data(&self, socket: &mut Socket<'_, Self::Data>, bytes: &[u8]);
    /// A short write has since drained below the low-water mark.
    fn drain(&self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// The peer ended its sending side. Unless the socket allows half-open, the
    /// socket ends its own side after this returns.
    fn end(&self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// The socket closed, with the error that closed it if any; always last.
    fn close(&self, socket: &mut Socket<'_, Self::Data>, error: Option<&Error>) {
        let _ = (socket, error);
    }
    /// An I/O or TLS error; `close` follows.
    fn error(&self, socket: &mut Socket<'_, Self::Data>, error: &Error) {
        let _ = (socket, error);
    }
    /// The idle timer expired; the socket stays open unless the handler closes it.
    fn timeout(&self, socket: &mut Socket<'_, Self::Data>) {
        let _ = socket;
    }
    /// A client's connect failed (every address tried, or the connect timeout
    /// passed); nothing else is called for this socket.
    fn connect_error(&self, socket: &mut Socket<'_, Self::Data>, error: &Error) {
        let _ = (socket, error);
    }
}
