//! Servers (Bun's `Bun.listen`): the accept loop, run under the accept gate,
//! and a task per connection.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use async_io::{Async, Timer};
use futures_lite::future;
use netkit_socket::accept::AcceptGate;
use netkit_sys::net::{Endpoint, Listener};
use netkit_sys::sys::errno::errno_name;
use netkit_tls::Machine;
use socket2::Socket as RawSocket;

use crate::conn::{HandlerCell, Shared, drive};
use crate::{Error, Handler, ListenOptions};

struct ServerShared<H> {
    /// What the server's connections share.
    conns: Arc<Shared<H>>,
    /// Closed when the server stops listening.
    stop_listen: (async_channel::Sender<()>, async_channel::Receiver<()>),
    /// Closed by `stop(true)`: every connection closes (they hold the receiver).
    stop_conns: async_channel::Sender<()>,
    /// Where connections signal that they closed.
    closed: async_channel::Receiver<()>,
}

/// A handle to a running [`Server`]: stop it, reload its handler.
pub struct ServerHandle<H> {
    shared: Arc<ServerShared<H>>,
}

impl<H> Clone for ServerHandle<H> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<H> fmt::Debug for ServerHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle").finish_non_exhaustive()
    }
}

impl<H: Handler> ServerHandle<H> {
    /// Stops listening (a Unix server removes its socket file); `force` also
    /// closes every live connection. Idempotent.
    pub fn stop(&self, force: bool) {
        self.shared.stop_listen.0.close();
        if force {
            self.shared.stop_conns.close();
        }
    }

    /// Swaps the handler for all live connections at once (Bun's `server.reload`).
    pub fn reload(&self, handler: H) {
        self.shared.conns.handlers.store(handler);
    }
}

/// A listening server (Bun's `Bun.listen`), TCP or Unix. Call
/// [`run`](Self::run) to serve.
pub struct Server<H: Handler> {
    listener: Async<Listener>,
    local: Endpoint,
    opts: ListenOptions,
    shared: Arc<ServerShared<H>>,
}

impl<H: Handler> fmt::Debug for Server<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}

/// A boxed connection task, for [`Server::run_with`].
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A server whose handler is not set yet (see [`Runtime::bind`](crate::Runtime::bind)).
pub(crate) struct Unbound {
    listener: Async<Listener>,
    local: Endpoint,
    opts: ListenOptions,
}

impl Unbound {
    pub(crate) fn new(listener: Listener, opts: ListenOptions) -> Result<Self, Error> {
        let local = listener.local().clone();
        let listener = Async::new(listener)
            .map_err(|e| netkit_sys::os_error(&e, format!("listen {local}")))?;
        Ok(Self {
            listener,
            local,
            opts,
        })
    }

    pub(crate) fn with_handler<H: Handler>(self, handler: H) -> Server<H> {
        let (stop_conns, stop_rx) = async_channel::bounded(1);
        let (closed_tx, closed) = async_channel::bounded(1);
        Server {
            listener: self.listener,
            local: self.local,
            opts: self.opts,
            shared: Arc::new(ServerShared {
                conns: Arc::new(Shared {
                    handlers: HandlerCell::new(handler),
                    stop: Some(stop_rx),
                    closed: Some(closed_tx),
                }),
                stop_listen: async_channel::bounded(1),
                stop_conns,
                closed,
            }),
        }
    }
}

impl<H: Handler> Server<H>
where
    H::Data: Default,
{
    /// Binds the listener now (so errors such as `EADDRINUSE` come back here),
    /// on the process's [`Runtime`](crate::Runtime).
    pub fn bind(opts: ListenOptions, handler: H) -> Result<Self, Error> {
        crate::Runtime::global().bind(opts, handler)
    }

    /// The bound TCP address (the real port after `port: 0`).
    ///
    /// # Panics
    ///
    /// For a Unix server; use [`local_endpoint`](Self::local_endpoint).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.local
            .inet()
            .expect("a TCP server (use local_endpoint for a Unix server)")
    }

    /// Where the server listens: a TCP address or a Unix path.
    pub fn local_endpoint(&self) -> &Endpoint {
        &self.local
    }

    /// A handle to stop or reload the server from anywhere.
    pub fn handle(&self) -> ServerHandle<H> {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Accepts until stopped, running every connection as a task of an executor
    /// driven by this future itself (one thread: no cross-thread wake-ups, and the
    /// `async-io` reactor runs on the same thread under `block_on`). After
    /// `stop(false)` it keeps serving live connections and returns once they have
    /// all closed; after `stop(true)`, once they have closed.
    pub async fn run(self) {
        let ex = Arc::new(smol::Executor::new());
        let (live_tx, live_rx) = async_channel::bounded::<()>(1);
        // The accept loop is a task too: the future given to `Executor::run` is
        // polled on every wake-up of any task, so it must be a passive wait.
        let spawner = ex.clone();
        let accept_live = live_tx.clone();
        ex.spawn(async move {
            // One allocation per connection: the task holds the connection's future.
            self.accept_loop(move |c| {
                let live = live_tx.clone();
                spawner
                    .spawn(async move {
                        c.serve().await;
                        drop(live);
                    })
                    .detach();
            })
            .await;
            drop(accept_live);
        })
        .detach();
        // Resolves when every task (accept loop and connections) has dropped its sender.
        ex.run(async {
            let _ = live_rx.recv().await;
        })
        .await;
    }

    /// Accepts until stopped, handing each connection's task to `spawn`.
    pub async fn run_with(self, spawn: impl Fn(Task)) {
        self.accept_loop(|c| spawn(Box::pin(c.serve()))).await;
    }

    async fn accept_loop(self, spawn: impl Fn(Accepted<H>)) {
        let stop = self.shared.stop_listen.1.clone();
        // Connections signal here when they close: the accept gate's "a
        // descriptor is free".
        let closed_rx = self.shared.closed.clone();
        let mut gate = AcceptGate::new();
        loop {
            if !gate.wants_accept() {
                let until = gate.poll_timeout();
                let resumed = future::or(
                    async {
                        match until {
                            Some(t) => {
                                Timer::at(t).await;
                            }
                            None => future::pending::<()>().await,
                        }
                        Some(false)
                    },
                    future::or(
                        async {
                            let _ = closed_rx.recv().await;
                            Some(true)
                        },
                        async {
                            let _ = stop.recv().await;
                            None
                        },
                    ),
                )
                .await;
                match resumed {
                    None => return,
                    Some(true) => gate.handle_closed(),
                    Some(false) => gate.handle_timeout(Instant::now()),
                }
                continue;
            }
            let accepted = future::or(
                async { Some(self.listener.read_with(|l| l.accept()).await) },
                async {
                    let _ = stop.recv().await;
                    None
                },
            )
            .await;
            match accepted {
                None => return,
                Some(Ok((sock, peer))) => {
                    gate.handle_accepted();
                    let Ok(sm) = self.opts.machine(Instant::now()) else {
                        continue;
                    };
                    let Ok(stream) = Async::new(sock) else {
                        continue;
                    };
                    spawn(Accepted {
                        stream,
                        sm,
                        peer,
                        shared: self.shared.conns.clone(),
                    });
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Some(Err(e)) => gate.handle_error(Instant::now(), errno_name(&e)),
            }
        }
    }
}

/// An accepted connection, ready to be served by its own task.
struct Accepted<H: Handler> {
    stream: Async<RawSocket>,
    sm: Machine,
    peer: Option<std::net::SocketAddr>,
    shared: Arc<Shared<H>>,
}

impl<H: Handler> Accepted<H>
where
    H::Data: Default,
{
    /// The connection's future; everything it needs is moved into `drive`, so
    /// the task stores each field once (one allocation per connection: the task).
    fn serve(self) -> impl Future<Output = ()> + Send + 'static {
        drive(
            self.stream,
            self.sm,
            H::Data::default(),
            self.shared,
            self.peer,
        )
    }
}
