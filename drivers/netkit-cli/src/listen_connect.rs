//! `netkit listen` and `netkit connect` on the blocking driver.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::mpsc;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use netkit_blocking::{
    ClientTls, ConnectOptions, Error, EventLoop, Handler, ListenOptions, Socket, SocketConfig,
};
use netkit_tls::{ClientOptions, Pem, ServerOptions};

use crate::Failure;

/// Most memory a connection that stops reading may hold (shared/CLI.md: 1 MiB).
const PER_CONN_LIMIT: usize = 1024 * 1024;
/// The loop's read chunk, which an echo may have to hold beside the write buffer.
const READ_CHUNK: usize = 64 * 1024;
const ECHO_PREFIX: &[u8] = b"Echo: ";

#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// Address to bind (`0.0.0.0` or `::` to serve other hosts).
    #[arg(long, default_value = "127.0.0.1", conflicts_with = "unix")]
    host: String,
    /// Port to listen on; 0 picks a free one.
    #[arg(long, required_unless_present = "unix", conflicts_with = "unix")]
    port: Option<u16>,
    /// Listen on this Unix domain socket path instead (it must not exist; it is
    /// removed when the server stops).
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// Answer every chunk received with `Echo: ` and the chunk.
    #[arg(long)]
    echo: bool,
    /// Serve TLS with this certificate chain (PEM, leaf first).
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// Host name or address (IPv6 with or without brackets).
    #[arg(required_unless_present = "unix", conflicts_with = "unix")]
    host: Option<String>,
    /// Port.
    #[arg(required_unless_present = "unix", conflicts_with = "unix")]
    port: Option<u16>,
    /// Connect to this Unix domain socket path instead.
    #[arg(long, value_name = "PATH")]
    unix: Option<PathBuf>,
    /// Speak TLS, verifying the server against the built-in roots or `--cacert`.
    #[arg(long)]
    tls: bool,
    /// Trusted CA certificates (PEM), replacing the built-in roots. Implies `--tls`.
    #[arg(long, value_name = "PEM")]
    cacert: Option<PathBuf>,
    /// Do not verify the server's certificate. Implies `--tls`.
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Resolve HOST with this DNS server (repeatable) instead of the
    /// resolv.conf name servers; the hosts file is still read first.
    #[arg(long = "dns-server", value_name = "IP[:PORT]", value_parser = crate::dns::server_arg)]
    dns_servers: Vec<std::net::SocketAddr>,
    /// SNI and the name verified (default: HOST; `localhost` over `--unix`).
    /// Implies `--tls`.
    #[arg(long, value_name = "NAME")]
    servername: Option<String>,
}

/// The per-connection limits that keep a non-reading client under 1 MiB of
/// server memory: the write buffer plus at most one read chunk held back.
fn bounded_config() -> SocketConfig {
    SocketConfig {
        high_water: PER_CONN_LIMIT - READ_CHUNK - ECHO_PREFIX.len(),
        low_water: 256 * 1024,
        ..SocketConfig::default()
    }
}

/// The listen handler: echo with backpressure, or print to stdout.
struct ListenHandler {
    echo: bool,
}

/// Bytes an echo could not hand to the socket yet; reading pauses while any are held.
#[derive(Default)]
struct Pending(Vec<u8>);

/// Writes `parts` in order, keeping whatever the socket refuses in `pending`, and
/// pauses reading while anything is pending.
fn write_or_hold(s: &mut Socket<'_, Pending>, parts: &[&[u8]]) {
    for part in parts {
        if !s.data().0.is_empty() {
            s.data_mut().0.extend_from_slice(part);
            continue;
        }
        match s.write(part) {
            Ok(n) if n < part.len() => s.data_mut().0.extend_from_slice(&part[n..]),
            Ok(_) => {}
            Err(_) => return,
        }
    }
    if !s.data().0.is_empty() {
        s.pause();
    }
}

impl Handler for ListenHandler {
    type Data = Pending;

    fn data(&mut self, s: &mut Socket<'_, Pending>, bytes: &[u8]) {
        if self.echo {
            write_or_hold(s, &[ECHO_PREFIX, bytes]);
        } else {
            let mut out = io::stdout().lock();
            let _ = out.write_all(bytes);
            let _ = out.flush();
        }
    }

    fn drain(&mut self, s: &mut Socket<'_, Pending>) {
        let held = std::mem::take(&mut s.data_mut().0);
        if let Ok(n) = s.write(&held) {
            s.data_mut().0.extend_from_slice(&held[n..]);
        }
        if s.data().0.is_empty() {
            s.resume();
        }
    }
}

pub(crate) fn listen(args: ListenArgs) -> Result<ExitCode, Failure> {
    let mut lp = EventLoop::new()?;
    let mut opts = match args.unix {
        Some(path) => ListenOptions::unix(path),
        None => ListenOptions::new(args.host, args.port.unwrap_or(0)),
    };
    opts.socket = bounded_config();
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        let mut o = ServerOptions::new(read_pem(cert)?, read_pem(key)?);
        o.key_log = Some(Arc::new(netkit_tls::rustls::KeyLogFile::new()));
        opts.tls = Some(netkit_blocking::tls::server_config(&o).map_err(tls_failure)?);
    }
    let server = lp.listen(opts, ListenHandler { echo: args.echo })?;
    let addr = lp
        .local_endpoint(server)
        .ok_or_else(|| Failure("listen: no local address".into()))?;
    // Signals are handled before the first line: a script that stops the server
    // as soon as it announced itself gets a clean exit.
    let handle = lp.handle();
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            handle.stop_all(true);
        }
    });
    {
        let mut out = io::stdout().lock();
        writeln!(out, "listening on {addr}")?;
        out.flush()?;
    }
    lp.run()?;
    Ok(ExitCode::SUCCESS)
}

/// Outcome of a `connect`, shared between the handler and `connect()`.
#[derive(Default)]
struct Outcome {
    error: Option<Error>,
}

struct ConnectHandler {
    outcome: Rc<RefCell<Outcome>>,
    /// Stdin bytes the socket has not accepted yet.
    pending: Vec<u8>,
    /// Acknowledges a stdin chunk once the socket accepted all of it.
    ack: Option<mpsc::Sender<()>>,
    end_when_flushed: bool,
}

impl ConnectHandler {
    fn send(&mut self, s: &mut Socket<'_, ()>, chunk: &[u8], ack: mpsc::Sender<()>) {
        match s.write(chunk) {
            Ok(n) if n < chunk.len() => {
                self.pending.extend_from_slice(&chunk[n..]);
                self.ack = Some(ack);
            }
            _ => {
                let _ = ack.send(());
            }
        }
    }

    fn finish_input(&mut self, s: &mut Socket<'_, ()>) {
        if self.pending.is_empty() {
            s.end();
        } else {
            self.end_when_flushed = true;
        }
    }
}

impl Handler for ConnectHandler {
    type Data = ();

    fn data(&mut self, s: &mut Socket<'_, ()>, bytes: &[u8]) {
        let mut out = io::stdout().lock();
        if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
            s.close();
        }
    }

    fn drain(&mut self, s: &mut Socket<'_, ()>) {
        let held = std::mem::take(&mut self.pending);
        if let Ok(n) = s.write(&held) {
            self.pending.extend_from_slice(&held[n..]);
        }
        if self.pending.is_empty() {
            if let Some(ack) = self.ack.take() {
                let _ = ack.send(());
            }
            if self.end_when_flushed {
                s.end();
            }
        }
    }

    fn error(&mut self, _s: &mut Socket<'_, ()>, error: &Error) {
        self.outcome.borrow_mut().error = Some(error.clone());
    }

    fn connect_error(&mut self, _s: &mut Socket<'_, ()>, error: &Error) {
        self.outcome.borrow_mut().error = Some(error.clone());
    }
}

pub(crate) fn connect(args: ConnectArgs) -> Result<ExitCode, Failure> {
    let mut lp = EventLoop::new()?;
    if !args.dns_servers.is_empty() {
        *lp.resolver() = crate::dns::resolver(&args.dns_servers, None, None);
    }
    let outcome = Rc::new(RefCell::new(Outcome::default()));
    let handler = ConnectHandler {
        outcome: outcome.clone(),
        pending: Vec::new(),
        ack: None,
        end_when_flushed: false,
    };
    let mut opts = match args.unix {
        Some(path) => ConnectOptions::unix(path),
        None => ConnectOptions::new(args.host.unwrap_or_default(), args.port.unwrap_or_default()),
    };
    if args.tls || args.insecure || args.cacert.is_some() || args.servername.is_some() {
        let ca = args.cacert.as_deref().map(read_pem).transpose()?;
        let config = netkit_blocking::tls::client_config(&ClientOptions {
            ca,
            reject_unauthorized: !args.insecure,
            key_log: Some(Arc::new(netkit_tls::rustls::KeyLogFile::new())),
            ..ClientOptions::default()
        })
        .map_err(tls_failure)?;
        opts.tls = Some(ClientTls {
            config,
            server_name: args.servername,
        });
    }
    let conn = lp.connect(opts, handler, ())?;
    let handle = lp.handle();
    // Stdin is not pollable in general (a file, a tty): a thread reads it and hands
    // each chunk to the loop, waiting until the socket accepted it (backpressure).
    std::thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => 0,
            };
            if n == 0 {
                handle.post(move |lp| {
                    lp.with_socket::<ConnectHandler, _>(conn, |h, s| h.finish_input(s));
                });
                return;
            }
            let chunk = buf[..n].to_vec();
            let (tx, rx) = mpsc::channel();
            handle.post(move |lp| {
                lp.with_socket::<ConnectHandler, _>(conn, |h, s| h.send(s, &chunk, tx));
            });
            if rx.recv().is_err() {
                return; // the connection is gone
            }
        }
    });
    lp.run()?;
    let _ = io::stdout().flush();
    match outcome.borrow_mut().error.take() {
        Some(e) => Err(Failure(e.to_string())),
        None => Ok(ExitCode::SUCCESS),
    }
}

/// Reads a PEM file for TLS; failures are `tls: ` errors naming the file.
pub(crate) fn read_pem(path: &Path) -> Result<Pem, Failure> {
    let shown = path.display().to_string();
    match std::fs::read(path) {
        Ok(data) => Ok(Pem::new(shown, data)),
        Err(e) => Err(Failure(format!("tls: cannot read PEM file {shown}: {e}"))),
    }
}

pub(crate) fn tls_failure(e: netkit_tls::Error) -> Failure {
    Failure(format!("tls: {e}"))
}
