//! `bench-load`: the TCP benchmark's load generator.
//!
//! One thread, one level-triggered `epoll` set, nonblocking `std::net` streams with
//! `TCP_NODELAY`: it costs every server the same and adds as little CPU as it can,
//! since on a 2-core machine it saturates at about the rate of a good server.
//!
//! - Echo (default): each connection sends `--size` bytes, waits until it has read
//!   `--size` bytes back (checked against what it sent), and sends again. Round trips
//!   completed inside the measured window (after `--warmup`) are counted.
//! - `--bulk`: each connection keeps up to 256 KiB in flight, written in 16 KiB
//!   chunks (`--size`), and reads everything back (checked); reports MB/s echoed.
//! - `--idle N`: opens N connections, does one 64-byte echo on each, prints
//!   `ready {json}` and holds them open until stdin closes or a signal arrives.
//!
//! With `--tls-ca PEM` every connection is TLS (rustls client, server name
//! `localhost`, no session resumption, handshake done before the clock starts);
//! the figures then count plaintext bytes.
//!
//! All connections are made before the clock starts. With `--server-pid`, the
//! server's CPU time (utime + stime from `/proc/PID/stat`) is sampled at the start
//! and the end of the measured window. The result is one line of JSON on stdout.

use std::io::{self, BufRead, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use netkit_bench::{
    PATTERN_MOD, clk_tck, machine_cpu_ticks, pattern, proc_cpu_time, raise_nofile_limit,
    self_cpu_time,
};
use netkit_tls::rustls::{self, ClientConnection};
use serde_json::{Value, json};

/// Most bytes a bulk connection keeps in flight (written, not yet read back).
const BULK_WINDOW: usize = 256 * 1024;
/// Read buffer of the generator.
const READ_BUF: usize = 256 * 1024;
/// The message of the idle scenario's one echo per connection.
const IDLE_MSG: usize = 64;
/// Overall limit on making all connections.
const CONNECT_LIMIT: Duration = Duration::from_secs(120);
/// Limit on the idle scenario's echoes.
const IDLE_ECHO_LIMIT: Duration = Duration::from_secs(120);

#[derive(Debug, Parser)]
#[command(about = "Load generator for netkit's TCP benchmark")]
struct Args {
    /// Server address.
    #[arg(long)]
    addr: String,
    /// Connections.
    #[arg(long, default_value_t = 1)]
    conns: usize,
    /// Echo message size, or bulk chunk size, in bytes.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Length of the measured window, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Traffic before the measured window, in seconds.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Bulk mode: stream data and read it back instead of ping-pong.
    #[arg(long)]
    bulk: bool,
    /// Idle mode: open this many connections, one echo each, then hold them.
    #[arg(long)]
    idle: Option<usize>,
    /// Sample this process's CPU time over the measured window.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Poll without sleeping (epoll_wait with a zero timeout) during warmup and the
    /// window, so the server never pays for waking the generator.
    #[arg(long)]
    spin: bool,
    /// Speak TLS, trusting this CA (PEM) for the name `localhost`.
    #[arg(long)]
    tls_ca: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(v) => {
            println!("{v}");
            let _ = io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench-load: {e}");
            println!("{}", json!({ "error": e.to_string() }));
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> io::Result<Value> {
    let nofile = raise_nofile_limit()?;
    let addr =
        args.addr.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(ErrorKind::InvalidInput, "address resolves to nothing")
        })?;
    let n = args.idle.unwrap_or(args.conns).max(1);
    if n as u64 + 16 > nofile {
        return Err(io::Error::other(format!(
            "{n} connections need more file descriptors than RLIMIT_NOFILE={nofile}"
        )));
    }
    let tls = match &args.tls_ca {
        None => None,
        Some(p) => {
            let ca = netkit_tls::Pem::new(p.display().to_string(), std::fs::read(p)?);
            let cfg = netkit_sys::tls::client_config(&netkit_tls::ClientOptions {
                ca: Some(ca),
                session_resumption: false,
                ..netkit_tls::ClientOptions::default()
            })
            .map_err(io::Error::other)?;
            Some(cfg.rustls().clone())
        }
    };
    let t0 = Instant::now();
    let streams = connect_all(addr, n, tls.as_ref())?;
    let connect_s = t0.elapsed().as_secs_f64();
    let mut lp = Loop::new(streams)?;
    if args.idle.is_some() {
        return idle(&mut lp, connect_s);
    }
    if args.size == 0 {
        return Err(io::Error::new(
            ErrorKind::InvalidInput,
            "--size must be > 0",
        ));
    }
    let plan = Window {
        warmup: Duration::from_secs_f64(args.warmup.max(0.0)),
        measure: Duration::from_secs_f64(args.seconds.max(0.01)),
        server_pid: args.server_pid,
        spin: args.spin,
    };
    let mut v = if args.bulk {
        lp.bulk(args.size, &plan)?
    } else {
        lp.echo(args.size, &plan)?
    };
    v["conns"] = json!(n);
    v["size"] = json!(args.size);
    v["connect_s"] = json!(connect_s);
    v["spin"] = json!(args.spin);
    Ok(v)
}

/// Connects `n` streams one after another (bounded retries, bounded total time).
fn connect_all(
    addr: SocketAddr,
    n: usize,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> io::Result<Vec<Link>> {
    let deadline = Instant::now() + CONNECT_LIMIT;
    let mut streams = Vec::with_capacity(n);
    for i in 0..n {
        let mut attempt = 0;
        let s = loop {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(s) => break s,
                Err(e) => {
                    attempt += 1;
                    if attempt >= 5 || Instant::now() >= deadline {
                        return Err(io::Error::new(
                            e.kind(),
                            format!("connect #{i} to {addr} failed after {attempt} tries: {e}"),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(50 * attempt));
                }
            }
        };
        s.set_nodelay(true)?;
        let tls = match tls {
            None => None,
            Some(cfg) => {
                let name = "localhost".try_into().map_err(io::Error::other)?;
                let mut c = ClientConnection::new(cfg.clone(), name).map_err(io::Error::other)?;
                let mut s = &s;
                while c.is_handshaking() {
                    c.complete_io(&mut s).map_err(|e| {
                        io::Error::new(e.kind(), format!("TLS handshake #{i}: {e}"))
                    })?;
                }
                Some(Box::new(c))
            }
        };
        s.set_nonblocking(true)?;
        streams.push(Link { stream: s, tls });
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                ErrorKind::TimedOut,
                format!("connected only {} of {n} in {CONNECT_LIMIT:?}", i + 1),
            ));
        }
    }
    Ok(streams)
}

/// The idle scenario: one echo per connection, then hold everything open.
fn idle(lp: &mut Loop, connect_s: f64) -> io::Result<Value> {
    let t0 = Instant::now();
    lp.echo_once(IDLE_MSG, IDLE_ECHO_LIMIT)?;
    let ready = json!({
        "mode": "idle",
        "conns": lp.conns.len(),
        "connect_s": connect_s,
        "echo_s": t0.elapsed().as_secs_f64(),
    });
    {
        let mut out = io::stdout().lock();
        writeln!(out, "ready {ready}")?;
        out.flush()?;
    }
    // Hold the connections until stdin closes (or a signal ends the process).
    let mut sink = Vec::new();
    let _ = io::stdin().lock().read_until(b'\0', &mut sink);
    Ok(json!({ "mode": "idle", "released": true }))
}

/// When the measured window starts and how long it lasts.
struct Window {
    warmup: Duration,
    measure: Duration,
    server_pid: Option<u32>,
    spin: bool,
}

/// Counters sampled at the edges of the measured window.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    count: u64,
    server_cpu: Option<Duration>,
    self_cpu: Duration,
    /// Machine-wide (busy, steal) clock ticks.
    machine: Option<(u64, u64)>,
}

impl Sample {
    fn take(count: u64, server_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            count,
            server_cpu: server_pid.and_then(|p| proc_cpu_time(p).ok()),
            self_cpu: self_cpu_time(),
            machine: machine_cpu_ticks().ok(),
        }
    }
}

/// A connection's byte stream: plain TCP, or TLS over it (nonblocking both).
struct Link {
    stream: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

impl Link {
    /// Sends TLS records rustls holds; `WouldBlock` when the kernel is full.
    fn flush(&mut self) -> io::Result<()> {
        if let Some(tls) = &mut self.tls {
            while tls.wants_write() {
                tls.write_tls(&mut &self.stream)?;
            }
        }
        Ok(())
    }

    /// Whether TLS records wait for the kernel.
    fn pending_out(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.tls.is_none() {
            return (&self.stream).write(data);
        }
        self.flush()?;
        let tls = self.tls.as_mut().expect("tls");
        let n = tls.writer().write(data)?;
        match self.flush() {
            Err(e) if e.kind() != ErrorKind::WouldBlock => Err(e),
            _ => Ok(n),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = &mut self.tls else {
            return (&self.stream).read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut &self.stream)? == 0 {
                return Ok(0);
            }
            tls.process_new_packets().map_err(io::Error::other)?;
        }
    }
}

/// Per-connection state.
struct Conn {
    stream: Link,
    /// Echo: bytes of the current message written. Bulk: total bytes written.
    sent: u64,
    /// Echo: bytes of the current message read back. Bulk: total bytes read.
    recvd: u64,
    /// Whether EPOLLOUT is in the registered interest.
    want_out: bool,
    alive: bool,
}

/// The single-threaded epoll loop over all connections.
struct Loop {
    ep: Epoll,
    conns: Vec<Conn>,
    events: Vec<libc::epoll_event>,
    buf: Vec<u8>,
    live: usize,
    errors: u64,
    first_error: Option<String>,
}

impl Loop {
    fn new(streams: Vec<Link>) -> io::Result<Self> {
        let ep = Epoll::new()?;
        let mut conns = Vec::with_capacity(streams.len());
        for (i, stream) in streams.into_iter().enumerate() {
            ep.ctl(
                libc::EPOLL_CTL_ADD,
                stream.stream.as_raw_fd(),
                libc::EPOLLIN as u32,
                i,
            )?;
            conns.push(Conn {
                stream,
                sent: 0,
                recvd: 0,
                want_out: false,
                alive: true,
            });
        }
        let live = conns.len();
        Ok(Self {
            ep,
            conns,
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 1024],
            buf: vec![0; READ_BUF],
            live,
            errors: 0,
            first_error: None,
        })
    }

    fn set_out(&mut self, i: usize, out: bool) {
        let c = &mut self.conns[i];
        if c.want_out == out || !c.alive {
            return;
        }
        let mut ev = libc::EPOLLIN as u32;
        if out {
            ev |= libc::EPOLLOUT as u32;
        }
        if self
            .ep
            .ctl(libc::EPOLL_CTL_MOD, c.stream.stream.as_raw_fd(), ev, i)
            .is_ok()
        {
            c.want_out = out;
        }
    }

    fn fail(&mut self, i: usize, what: String) {
        let c = &mut self.conns[i];
        if !c.alive {
            return;
        }
        c.alive = false;
        let _ = self
            .ep
            .ctl(libc::EPOLL_CTL_DEL, c.stream.stream.as_raw_fd(), 0, i);
        self.live -= 1;
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(format!("connection {i}: {what}"));
        }
    }

    /// Waits for readiness (at most `timeout`); returns the number of events.
    fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        self.ep.wait(&mut self.events, timeout)
    }

    /// Sends the TLS records connection `i` still holds; false if it failed.
    fn flush(&mut self, i: usize) -> bool {
        match self.conns[i].stream.flush() {
            Err(e) if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::Interrupted => {
                self.fail(i, format!("write: {e}"));
                false
            }
            _ => true,
        }
    }

    /// Writes the rest of connection `i`'s current echo message.
    fn echo_send(&mut self, i: usize, msg: &[u8]) {
        if !self.flush(i) {
            return;
        }
        let c = &mut self.conns[i];
        while (c.sent as usize) < msg.len() {
            match c.stream.write(&msg[c.sent as usize..]) {
                Ok(0) => return self.fail(i, "write returned 0".into()),
                Ok(n) => c.sent += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, format!("write: {e}")),
            }
        }
        let c = &self.conns[i];
        let out = (c.sent as usize) < msg.len() || c.stream.pending_out();
        self.set_out(i, out);
    }

    /// Reads what connection `i` has; returns whether its message came back whole.
    fn echo_recv(&mut self, i: usize, msg: &[u8]) -> bool {
        let c = &mut self.conns[i];
        let want = msg.len() - c.recvd as usize;
        let n = match c.stream.read(&mut self.buf[..want.max(1)]) {
            Ok(0) => {
                self.fail(i, "server closed the connection".into());
                return false;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                return false;
            }
            Err(e) => {
                self.fail(i, format!("read: {e}"));
                return false;
            }
        };
        if want == 0 {
            self.fail(i, "server sent bytes nobody asked for".into());
            return false;
        }
        let at = c.recvd as usize;
        if self.buf[..n] != msg[at..at + n] {
            self.fail(i, "echoed bytes differ from the bytes sent".into());
            return false;
        }
        c.recvd += n as u64;
        if c.recvd as usize == msg.len() {
            c.recvd = 0;
            c.sent = 0;
            true
        } else {
            false
        }
    }

    /// The idle scenario's single echo on every connection.
    fn echo_once(&mut self, size: usize, limit: Duration) -> io::Result<()> {
        let msg = pattern(size);
        let deadline = Instant::now() + limit;
        let mut done = vec![false; self.conns.len()];
        let mut remaining = self.conns.len();
        for i in 0..self.conns.len() {
            self.echo_send(i, &msg);
        }
        while remaining > 0 && self.live > 0 {
            let now = Instant::now();
            if now >= deadline {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    format!("{remaining} connections got no echo within {limit:?}"),
                ));
            }
            let nev = self.wait((deadline - now).min(Duration::from_millis(100)))?;
            for k in 0..nev {
                let ev = self.events[k];
                let (i, bits) = (ev.u64 as usize, ev.events);
                if !self.conns[i].alive {
                    continue;
                }
                if bits & libc::EPOLLOUT as u32 != 0 {
                    self.echo_send(i, &msg);
                }
                if bits & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0
                    && !done[i]
                    && self.echo_recv(i, &msg)
                {
                    done[i] = true;
                    remaining -= 1;
                    // Take the connection out of the set: it now only idles.
                    let fd = self.conns[i].stream.stream.as_raw_fd();
                    let _ = self.ep.ctl(libc::EPOLL_CTL_DEL, fd, 0, i);
                }
            }
        }
        if self.errors > 0 {
            return Err(io::Error::other(format!(
                "{} connections failed: {}",
                self.errors,
                self.first_error.clone().unwrap_or_default()
            )));
        }
        Ok(())
    }

    /// Ping-pong of `size`-byte messages on every connection.
    fn echo(&mut self, size: usize, plan: &Window) -> io::Result<Value> {
        let msg = pattern(size);
        let mut count: u64 = 0;
        for i in 0..self.conns.len() {
            self.echo_send(i, &msg);
        }
        let start = Instant::now();
        let (begin, end) = self.run_window(start, plan, &mut count, |lp, i, bits, count| {
            if bits & libc::EPOLLOUT as u32 != 0 {
                lp.echo_send(i, &msg);
            }
            if bits & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0
                && lp.echo_recv(i, &msg)
            {
                *count += 1;
                lp.echo_send(i, &msg);
            }
        })?;
        let secs = end.at.duration_since(begin.at).as_secs_f64();
        let rts = end.count - begin.count;
        let mut v = json!({
            "mode": "echo",
            "seconds": secs,
            "round_trips": rts,
            "rt_per_sec": rts as f64 / secs,
        });
        self.finish(
            &mut v,
            &begin,
            &end,
            rts as f64,
            "server_cpu_us_per_rt",
            1e6,
        );
        Ok(v)
    }

    /// Streams `chunk`-byte writes with up to [`BULK_WINDOW`] in flight per connection.
    fn bulk(&mut self, chunk: usize, plan: &Window) -> io::Result<Value> {
        let chunk = chunk.min(BULK_WINDOW);
        // The pattern from any offset: pat[off..off + len] for off < 251, len <= chunk.
        let pat = pattern(chunk.max(READ_BUF) + PATTERN_MOD);
        let mut bytes: u64 = 0;
        for i in 0..self.conns.len() {
            self.bulk_send(i, chunk, &pat);
        }
        let start = Instant::now();
        let (begin, end) = self.run_window(start, plan, &mut bytes, |lp, i, bits, bytes| {
            if bits & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                *bytes += lp.bulk_recv(i, &pat);
            }
            if lp.conns[i].alive {
                lp.bulk_send(i, chunk, &pat);
            }
        })?;
        let secs = end.at.duration_since(begin.at).as_secs_f64();
        let got = end.count - begin.count;
        let mut v = json!({
            "mode": "bulk",
            "seconds": secs,
            "bytes": got,
            "mb_per_sec": got as f64 / 1e6 / secs,
        });
        self.finish(
            &mut v,
            &begin,
            &end,
            got as f64 / 1e6,
            "server_cpu_us_per_mb",
            1e6,
        );
        Ok(v)
    }

    fn bulk_send(&mut self, i: usize, chunk: usize, pat: &[u8]) {
        if !self.flush(i) {
            return;
        }
        let c = &mut self.conns[i];
        loop {
            let inflight = (c.sent - c.recvd) as usize;
            if inflight >= BULK_WINDOW {
                break;
            }
            let len = chunk.min(BULK_WINDOW - inflight);
            let off = (c.sent % PATTERN_MOD as u64) as usize;
            match c.stream.write(&pat[off..off + len]) {
                Ok(0) => return self.fail(i, "write returned 0".into()),
                Ok(n) => c.sent += n as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.fail(i, format!("write: {e}")),
            }
        }
        // Still room in the window means the kernel buffer is full: wait for EPOLLOUT.
        let c = &self.conns[i];
        let out = ((c.sent - c.recvd) as usize) < BULK_WINDOW || c.stream.pending_out();
        self.set_out(i, out);
    }

    /// Reads and checks what connection `i` has; returns the bytes read.
    fn bulk_recv(&mut self, i: usize, pat: &[u8]) -> u64 {
        let c = &mut self.conns[i];
        let n = match c.stream.read(&mut self.buf) {
            Ok(0) => {
                self.fail(i, "server closed the connection".into());
                return 0;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                return 0;
            }
            Err(e) => {
                self.fail(i, format!("read: {e}"));
                return 0;
            }
        };
        if c.recvd + n as u64 > c.sent {
            self.fail(i, "server sent bytes nobody asked for".into());
            return 0;
        }
        let off = (c.recvd % PATTERN_MOD as u64) as usize;
        if self.buf[..n] != pat[off..off + n] {
            self.fail(i, "echoed bytes differ from the bytes sent".into());
            return 0;
        }
        c.recvd += n as u64;
        n as u64
    }

    /// Runs the loop through warmup and the measured window, calling `on_event` for
    /// every readiness event; returns the samples at the window's edges.
    fn run_window(
        &mut self,
        start: Instant,
        plan: &Window,
        count: &mut u64,
        mut on_event: impl FnMut(&mut Self, usize, u32, &mut u64),
    ) -> io::Result<(Sample, Sample)> {
        let measure_at = start + plan.warmup;
        let mut begin: Option<Sample> = None;
        let mut stop_at = measure_at + plan.measure;
        loop {
            let now = Instant::now();
            if begin.is_none() && now >= measure_at {
                let s = Sample::take(*count, plan.server_pid);
                stop_at = s.at + plan.measure;
                begin = Some(s);
            }
            if let Some(b) = begin {
                if now >= stop_at {
                    let end = Sample::take(*count, plan.server_pid);
                    return Ok((b, end));
                }
            }
            if self.live == 0 {
                return Err(io::Error::other(format!(
                    "every connection failed; first: {}",
                    self.first_error.clone().unwrap_or_default()
                )));
            }
            let until = if begin.is_some() { stop_at } else { measure_at };
            let timeout = if plan.spin {
                Duration::ZERO
            } else {
                until
                    .saturating_duration_since(now)
                    .min(Duration::from_millis(50))
            };
            let nev = self.wait(timeout)?;
            for k in 0..nev {
                let ev = self.events[k];
                let i = ev.u64 as usize;
                if self.conns[i].alive {
                    on_event(self, i, ev.events, count);
                }
            }
        }
    }

    /// Adds the window's CPU figures and error counts to `v`.
    fn finish(&self, v: &mut Value, b: &Sample, e: &Sample, units: f64, key: &str, scale: f64) {
        let secs = e.at.duration_since(b.at).as_secs_f64();
        let load_cpu = (e.self_cpu - b.self_cpu).as_secs_f64();
        v["load_cpu_pct"] = json!(100.0 * load_cpu / secs);
        if let (Some(sb), Some(se)) = (b.server_cpu, e.server_cpu) {
            let cpu = se.saturating_sub(sb).as_secs_f64();
            v["server_cpu_s"] = json!(cpu);
            v["server_cpu_pct"] = json!(100.0 * cpu / secs);
            if units > 0.0 {
                v[key] = json!(cpu * scale / units);
            }
        }
        // Noise: CPU that neither the server nor this generator used, and time the
        // hypervisor stole, both in percent of one CPU over the window.
        if let (Some((b0, s0)), Some((b1, s1)), Some(sb), Some(se)) =
            (b.machine, e.machine, b.server_cpu, e.server_cpu)
        {
            let tick = 1.0 / clk_tck() as f64;
            let busy = b1.saturating_sub(b0) as f64 * tick;
            let others = busy - se.saturating_sub(sb).as_secs_f64() - load_cpu;
            v["other_cpu_pct"] = json!((100.0 * others / secs).max(0.0));
            v["steal_pct"] = json!(100.0 * s1.saturating_sub(s0) as f64 * tick / secs);
        }
        v["errors"] = json!(self.errors);
        if let Some(e) = &self.first_error {
            v["first_error"] = json!(e);
        }
        v["live_conns"] = json!(self.live);
    }
}

/// A minimal level-triggered epoll set.
struct Epoll(std::os::fd::OwnedFd);

impl Epoll {
    fn new() -> io::Result<Self> {
        use std::os::fd::FromRawFd;
        // SAFETY: epoll_create1 returns a new descriptor that we own, or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh, valid descriptor owned by nobody else.
        Ok(Self(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    fn ctl(&self, op: libc::c_int, fd: libc::c_int, events: u32, key: usize) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events,
            u64: key as u64,
        };
        // SAFETY: both descriptors are valid; the event struct outlives the call.
        let rc = unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        // Round up so a sub-millisecond remainder does not become a busy poll.
        let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
        // SAFETY: `events` is a valid, writable buffer of the length we pass.
        let n = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                ms,
            )
        };
        if n >= 0 {
            Ok(n as usize)
        } else {
            let e = io::Error::last_os_error();
            if e.kind() == ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            }
        }
    }
}
