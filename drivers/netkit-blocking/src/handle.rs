//! The loop's cross-thread handle: commands posted from other threads (signal
//! handlers, tests) run at the loop's next turn.

use std::any::Any;
use std::fmt;
use std::sync::{Arc, Mutex};

use netkit_sys::sys::poller::Poller;

use crate::{EventLoop, Handler, Server};

pub(crate) enum Command {
    Stop {
        source: usize,
        generation: u64,
        force: bool,
    },
    StopAll {
        force: bool,
    },
    Reload {
        source: usize,
        generation: u64,
        handler: Box<dyn Any + Send>,
    },
    Post(Box<dyn FnOnce(&mut EventLoop) + Send>),
}

pub(crate) struct Shared {
    pub(crate) poller: Poller,
    pub(crate) commands: Mutex<Vec<Command>>,
}

impl Shared {
    pub(crate) fn take_commands(&self) -> Vec<Command> {
        std::mem::take(&mut *self.commands.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A `Send + Clone` handle to an [`EventLoop`] for other threads (signal handlers,
/// tests): stop servers, reload handlers, run closures on the loop. Commands run
/// at the loop's next turn.
#[derive(Clone)]
pub struct LoopHandle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle").finish_non_exhaustive()
    }
}

impl LoopHandle {
    fn send(&self, cmd: Command) {
        self.shared
            .commands
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(cmd);
        let _ = self.shared.poller.notify();
    }

    /// Stops a server: `force` also closes every live connection.
    pub fn stop(&self, server: Server, force: bool) {
        self.send(Command::Stop {
            source: server.source,
            generation: server.generation,
            force,
        });
    }

    /// Stops every server and (with `force`) closes every connection of the loop.
    pub fn stop_all(&self, force: bool) {
        self.send(Command::StopAll { force });
    }

    /// Swaps the handler of a server for all its live connections.
    pub fn reload<H: Handler + Send>(&self, server: Server, handler: H) {
        self.send(Command::Reload {
            source: server.source,
            generation: server.generation,
            handler: Box::new(handler),
        });
    }

    /// Runs `f` on the loop's thread at its next turn, with the loop itself (for
    /// example to write to a connection through [`EventLoop::with_socket`]).
    pub fn post(&self, f: impl FnOnce(&mut EventLoop) + Send + 'static) {
        self.send(Command::Post(Box::new(f)));
    }

    /// Wakes the loop.
    pub fn wake(&self) {
        let _ = self.shared.poller.notify();
    }
}
