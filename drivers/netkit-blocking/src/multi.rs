//! Multi-core serving: N event loops on N threads, each with its own
//! `SO_REUSEPORT` listener on the same port; the kernel spreads connections.

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::{Error, EventLoop, Handler, ListenOptions, LoopHandle, Server};

/// A server running on several loops. Dropping it does not stop it; call
/// [`stop`](Self::stop) then [`join`](Self::join).
#[derive(Debug)]
pub struct MultiServer {
    local_addr: SocketAddr,
    loops: Vec<(LoopHandle, Server)>,
    threads: Vec<JoinHandle<io::Result<()>>>,
}

impl MultiServer {
    /// The shared listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops every loop's listener; `force` also closes all connections.
    pub fn stop(&self, force: bool) {
        for (h, s) in &self.loops {
            h.stop(*s, force);
        }
    }

    /// Waits for every loop thread to finish.
    pub fn join(self) -> io::Result<()> {
        for t in self.threads {
            t.join()
                .map_err(|_| io::Error::other("event loop thread panicked"))??;
        }
        Ok(())
    }
}

/// Starts `threads` loops, each running `make()`'s handler on a `SO_REUSEPORT`
/// listener bound to `opts`. With port 0, the first loop picks the port and the
/// others share it.
pub fn serve<H, F>(threads: usize, mut opts: ListenOptions, make: F) -> Result<MultiServer, Error>
where
    H: Handler,
    H::Data: Default,
    F: Fn() -> H + Send + Sync + Clone + 'static,
{
    opts.reuse_port = true;
    let mut loops = Vec::new();
    let mut handles = Vec::new();
    let mut local_addr = None;
    for _ in 0..threads.max(1) {
        let (tx, rx) = mpsc::channel();
        let mut o = opts.clone();
        if let Some(a) = local_addr {
            o.port = SocketAddr::port(&a);
        }
        let make = make.clone();
        let t = std::thread::spawn(move || -> io::Result<()> {
            let mut lp = EventLoop::new()?;
            match lp.listen(o, make()) {
                Ok(server) => {
                    let _ = tx.send(Ok((lp.handle(), server, lp.local_addr(server))));
                    lp.run()
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    Ok(())
                }
            }
        });
        match rx.recv() {
            Ok(Ok((h, s, addr))) => {
                local_addr = local_addr.or(addr);
                loops.push((h, s));
                handles.push(t);
            }
            Ok(Err(e)) => {
                for (h, s) in &loops {
                    h.stop(*s, true);
                }
                return Err(e);
            }
            Err(_) => return Err(Error::Closed),
        }
    }
    Ok(MultiServer {
        local_addr: local_addr.ok_or(Error::Closed)?,
        loops,
        threads: handles,
    })
}
