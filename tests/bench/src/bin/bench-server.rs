//! `bench-server --kind KIND --port 0 [--threads N]`: a pure echo server (the reply is
//! exactly the bytes received) for the TCP benchmark. Prints `listening on ADDR` as
//! its first stdout line, then serves until killed.
//!
//! Kinds:
//! - `blocking`: netkit's blocking [`EventLoop`] (one loop; `--threads N` > 1 uses
//!   `netkit_blocking::multi::serve`), with backpressure as in the CLI's echo;
//! - `smol`: netkit's smol driver (tasks on smol's global executor, whose thread
//!   count follows `SMOL_THREADS`);
//! - `tokio-ct`, `tokio-mt`: tokio current-thread, and multi-thread with 2 workers
//!   (or `--threads N`): accept loop, one task per connection, read + `write_all`;
//! - `std-threads`: std::net, one thread per connection.
//!
//! The tokio and std servers read into a 64 KiB buffer per connection, the size of
//! the netkit drivers' shared read buffer, so bulk transfers are compared with equal
//! read sizes.
//!
//! With `--tls-cert PEM --tls-key PEM` the server speaks TLS: the netkit drivers
//! through netkit-tls, tokio through tokio-rustls, both on the same rustls
//! `ServerConfig` (built by `netkit_tls::server_config`, aws-lc-rs provider), so the
//! comparison is of the I/O around rustls. `std-threads` has no TLS variant.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use netkit_blocking::{EventLoop, ListenOptions};
use netkit_sys::SharedHandler;

/// Read buffer of the tokio and std servers.
const READ_BUF: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    Blocking,
    Smol,
    TokioCt,
    TokioMt,
    StdThreads,
}

#[derive(Debug, Parser)]
#[command(about = "Echo server for netkit's TCP benchmark")]
struct Args {
    /// Which server to run.
    #[arg(long, value_enum)]
    kind: Kind,
    /// Port on 127.0.0.1; 0 picks a free one.
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Threads: blocking loops (multi::serve when > 1) or tokio-mt workers (default 2).
    #[arg(long)]
    threads: Option<usize>,
    /// TLS certificate chain (PEM); with `--tls-key`, serve TLS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

/// The TLS configuration from `--tls-cert`/`--tls-key`, if given.
fn tls_config(args: &Args) -> Result<Option<netkit_tls::ServerConfig>, AnyError> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let pem = |p: &std::path::Path| -> Result<netkit_tls::Pem, AnyError> {
        Ok(netkit_tls::Pem::new(
            p.display().to_string(),
            std::fs::read(p)?,
        ))
    };
    let opts = netkit_tls::ServerOptions::new(pem(cert)?, pem(key)?);
    Ok(Some(netkit_sys::tls::server_config(&opts)?))
}

fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {addr}")?;
    out.flush()
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = netkit_bench::raise_nofile_limit() {
        eprintln!("bench-server: cannot raise RLIMIT_NOFILE: {e}");
    }
    let tls = match tls_config(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench-server: TLS configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match (args.kind, tls) {
        (Kind::Blocking, tls) => blocking(args.port, args.threads.unwrap_or(1), tls),
        (Kind::Smol, tls) => smol_driver(args.port, tls),
        (Kind::TokioCt, tls) => tokio_echo(args.port, None, tls),
        (Kind::TokioMt, tls) => tokio_echo(args.port, Some(args.threads.unwrap_or(2)), tls),
        (Kind::StdThreads, None) => std_threads(args.port),
        (Kind::StdThreads, Some(_)) => Err("std-threads has no TLS variant".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-server ({:?}): {e}", args.kind);
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

// ---------------------------------------------------------------------------
// netkit blocking loop

/// Echo bytes the socket has not accepted yet; reading pauses while any are held.
#[derive(Debug, Default)]
struct Pending(Vec<u8>);

/// The echo both netkit drivers run, written once (netkit-sys's
/// `SharedHandler`: smol runs it as is, the blocking loop inside an `Arc`):
/// write what came in; hold what the socket did not accept and pause reading
/// until `drain` writes it.
#[derive(Debug, Clone, Copy)]
struct Echo;

impl SharedHandler for Echo {
    type Data = Pending;

    fn data(&self, s: &mut netkit_sys::Socket<'_, Pending>, bytes: &[u8]) {
        if !s.data().0.is_empty() {
            s.data_mut().0.extend_from_slice(bytes);
            s.pause();
            return;
        }
        match s.write(bytes) {
            Ok(n) if n < bytes.len() => {
                s.data_mut().0.extend_from_slice(&bytes[n..]);
                s.pause();
            }
            Ok(_) | Err(_) => {}
        }
    }

    fn drain(&self, s: &mut netkit_sys::Socket<'_, Pending>) {
        if s.data().0.is_empty() {
            return;
        }
        let held = std::mem::take(&mut s.data_mut().0);
        if let Ok(n) = s.write(&held) {
            if n < held.len() {
                s.data_mut().0.extend_from_slice(&held[n..]);
            }
        }
        if s.data().0.is_empty() {
            s.resume();
        }
    }
}

fn blocking(
    port: u16,
    threads: usize,
    tls: Option<netkit_tls::ServerConfig>,
) -> Result<(), AnyError> {
    let mut opts = ListenOptions::new("127.0.0.1", port);
    opts.tls = tls;
    if threads > 1 {
        let server = netkit_blocking::multi::serve(threads, opts, || std::sync::Arc::new(Echo))?;
        announce(server.local_addr())?;
        server.join()?;
        return Ok(());
    }
    let mut lp = EventLoop::new()?;
    let server = lp.listen(opts, std::sync::Arc::new(Echo))?;
    let addr = lp
        .local_addr(server)
        .ok_or("the loop reports no local address")?;
    announce(addr)?;
    lp.run()?;
    Ok(())
}

// ---------------------------------------------------------------------------
// netkit smol driver

#[cfg(feature = "smol-driver")]
fn smol_driver(port: u16, tls: Option<netkit_tls::ServerConfig>) -> Result<(), AnyError> {
    let mut opts = netkit_smol::ListenOptions::new("127.0.0.1", port);
    opts.tls = tls;
    let server = netkit_smol::Server::bind(opts, Echo)?;
    announce(server.local_addr())?;
    smol::block_on(server.run());
    Ok(())
}

#[cfg(not(feature = "smol-driver"))]
fn smol_driver(_port: u16, _tls: Option<netkit_tls::ServerConfig>) -> Result<(), AnyError> {
    Err("built without the `smol-driver` feature of netkit-bench".into())
}

// ---------------------------------------------------------------------------
// tokio

fn tokio_echo(
    port: u16,
    workers: Option<usize>,
    tls: Option<netkit_tls::ServerConfig>,
) -> Result<(), AnyError> {
    let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.rustls().clone()));
    let rt = match workers {
        None => tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?,
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n.max(1))
            .enable_io()
            .enable_time()
            .build()?,
    };
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        announce(listener.local_addr()?)?;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    match &acceptor {
                        None => {
                            tokio::spawn(tokio_conn(stream));
                        }
                        Some(a) => {
                            let accept = a.accept(stream);
                            tokio::spawn(async move {
                                if let Ok(tls) = accept.await {
                                    tokio_conn(tls).await;
                                }
                            });
                        }
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("bench-server (tokio): accept: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
}

async fn tokio_conn<S>(mut stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // `flush` makes tokio-rustls push its records out (a no-op on plain TCP).
        if stream.write_all(&buf[..n]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// std threads

fn std_threads(port: u16) -> Result<(), AnyError> {
    let listener = StdListener::bind(("127.0.0.1", port))?;
    announce(listener.local_addr()?)?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                if let Err(e) = std::thread::Builder::new()
                    .name("echo".into())
                    .spawn(move || std_conn(stream))
                {
                    eprintln!("bench-server (std-threads): spawn: {e}");
                }
            }
            Err(e) => {
                eprintln!("bench-server (std-threads): accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn std_conn(mut stream: StdStream) {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if stream.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}
