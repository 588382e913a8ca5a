//! `bench-tcp`: the end-to-end TCP benchmark runner behind `cargo xtask bench tcp`.
//!
//! Runs from the workspace root with the release binaries built
//! (`cargo build --release -p netkit-bench`); finds `bench-server` and `bench-load`
//! beside its own executable.
//!
//! For every scenario (64 B echo at 1, 64 and 1,000 connections; 16 KiB bulk at 1
//! connection) and every candidate (netkit's blocking loop and smol driver, tokio
//! current-thread and 2-worker multi-thread, std threads, Bun), it starts a fresh
//! server pinned to one CPU and the load generator pinned to another, measures a
//! window after a warmup, and samples the server's CPU time (utime + stime from
//! `/proc/PID/stat`) over that window. Candidates alternate round by round (each
//! round starts one candidate later) and the median of the rounds is reported.
//! Then, per candidate, the idle-memory scenario: server `VmRSS` before and after
//! `bench-load --idle N` (N connections, one 64-byte echo each), as bytes per
//! connection.
//!
//! Prints a table per scenario and a block of the targets (PASS/MISS), and
//! writes everything as JSON to `target/bench/tcp.json`.
//!
//! With `--tls` (behind `cargo xtask bench tls`) the same runs go over TLS: the
//! runner makes an ECDSA P-256 certificate for localhost + 127.0.0.1 (rcgen, under
//! `target/bench/tls-pki`), the netkit servers use netkit-tls, tokio uses
//! tokio-rustls on the same rustls config, Bun uses `Bun.listen` with `tls`, and
//! the load generator speaks TLS (rustls). Scenarios: echo at 64 connections, bulk,
//! idle memory, and handshakes: `openssl s_time -new` against every server and
//! against `openssl s_server`, with the server's CPU time per handshake. Output:
//! `target/bench/tls.json`. Every child is killed on
//! drop (and dies with the runner through `PR_SET_PDEATHSIG`); every wait is bounded.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use clap::Parser;
use netkit_bench::proc::{Proc, find_bun, target_dir};
use netkit_bench::{allowed_cpus, median, proc_rss_kib, proc_threads};
use serde_json::{Value, json};

/// How long a server may take to print `listening on`.
const START_LIMIT: Duration = Duration::from_secs(20);
/// Extra time a load run may take beyond warmup + window (connecting 1,000 streams).
const RUN_SLACK: Duration = Duration::from_secs(60);
/// How long the idle scenario may take to open and echo on every connection.
const IDLE_READY_LIMIT: Duration = Duration::from_secs(240);

#[derive(Debug, Parser)]
#[command(about = "netkit's end-to-end TCP benchmark (cargo xtask bench tcp)")]
struct Args {
    /// Smoke run: 0.5 s windows, 0.2 s warmup, 1 round, 1,000 idle connections.
    #[arg(long)]
    quick: bool,
    /// Measured window per run, in seconds (default 3; 0.5 with --quick).
    #[arg(long)]
    seconds: Option<f64>,
    /// Warmup before each window, in seconds (default 1; 0.2 with --quick).
    #[arg(long)]
    warmup: Option<f64>,
    /// Rounds per scenario; candidates alternate round by round (default 3; 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Connections of the idle-memory scenario (default 10000; 1000 with --quick).
    #[arg(long)]
    idle: Option<usize>,
    /// Only these candidates (comma-separated: blocking,smol,tokio-ct,tokio-mt,std-threads,bun).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Only these scenarios (comma-separated: echo-1,echo-64,echo-1000,bulk,idle).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// Where bench-server and bench-load are (default: beside this executable).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// JSON output file.
    #[arg(long, default_value = "target/bench/tcp.json")]
    out: PathBuf,
    /// Bun executable to use instead of the one under target/bun.
    #[arg(long)]
    bun: Option<PathBuf>,
    /// Do not run `npm install` when Bun is missing.
    #[arg(long)]
    no_install: bool,
    /// Let the load generator busy-poll (epoll_wait with a zero timeout) instead of
    /// sleeping, so servers never pay for waking it.
    #[arg(long)]
    spin: bool,
    /// Run over TLS (see the module docs).
    #[arg(long)]
    tls: bool,
}

/// Effective settings.
#[derive(Debug, Clone)]
struct Config {
    seconds: f64,
    warmup: f64,
    rounds: usize,
    idle: usize,
    bin_dir: PathBuf,
    server_cpu: Option<usize>,
    load_cpu: Option<usize>,
    spin: bool,
    /// TLS mode: the server's certificate and key (the certificate is also the
    /// load generator's CA).
    tls: Option<TlsFiles>,
}

#[derive(Debug, Clone)]
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
}

/// Makes the benchmark's certificate (ECDSA P-256, localhost + 127.0.0.1).
fn make_pki(dir: &Path) -> Result<TlsFiles, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let id = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .map_err(|e| format!("rcgen: {e}"))?;
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.cert, id.cert.pem()).map_err(|e| e.to_string())?;
    std::fs::write(&files.key, id.signing_key.serialize_pem()).map_err(|e| e.to_string())?;
    Ok(files)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-tcp: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Candidates

#[derive(Debug, Clone)]
struct Candidate {
    name: &'static str,
    desc: String,
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    skipped: Option<String>,
    /// The server takes its port as `{port}` in its arguments and prints nothing:
    /// the runner picks a free port and waits until it accepts connections.
    port_arg: bool,
    /// Only in the handshake scenario (not an echo server).
    handshake_only: bool,
}

/// A free loopback port (bound, then released).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

impl Candidate {
    fn command_on(&self, port: u16) -> Command {
        let mut c = Command::new(&self.program);
        c.args(
            self.args
                .iter()
                .map(|a| a.replace("{port}", &port.to_string())),
        );
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Starts the server pinned to `cpu` and waits for `listening on ADDR`.
    fn start(&self, cpu: Option<usize>) -> Result<(Proc, SocketAddr), String> {
        if self.port_arg {
            let port = free_port()?;
            let mut p = Proc::spawn(self.name, self.command_on(port), cpu, false)
                .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let end = Instant::now() + START_LIMIT;
            loop {
                if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Ok((p, addr));
                }
                if p.exited().is_some() {
                    return Err(p.why("exited before accepting connections"));
                }
                if Instant::now() >= end {
                    return Err(format!("{} did not accept on {addr} in time", self.name));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let mut p = Proc::spawn(self.name, self.command_on(0), cpu, false)
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        let line = p.next_line(START_LIMIT)?;
        let addr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.trim().parse::<SocketAddr>().ok())
            .ok_or_else(|| format!("{}: unexpected first line {line:?}", self.name))?;
        Ok((p, addr))
    }
}

fn server_candidate(cfg: &Config, name: &'static str, desc: &str) -> Candidate {
    let mut args: Vec<String> = vec!["--kind".into(), name.into(), "--port".into(), "0".into()];
    if let Some(t) = &cfg.tls {
        args.extend([
            "--tls-cert".into(),
            t.cert.display().to_string(),
            "--tls-key".into(),
            t.key.display().to_string(),
        ]);
    }
    Candidate {
        name,
        desc: desc.to_string(),
        program: cfg.bin_dir.join("bench-server"),
        args,
        env: Vec::new(),
        skipped: None,
        port_arg: false,
        handshake_only: false,
    }
}

fn candidates(cfg: &Config, args: &Args) -> Vec<Candidate> {
    let smol_threads = std::env::var("SMOL_THREADS").unwrap_or_else(|_| "1 (default)".into());
    let tokio = if cfg.tls.is_some() {
        "tokio-rustls on tokio"
    } else {
        "tokio"
    };
    let mut list = vec![
        server_candidate(cfg, "blocking", "netkit blocking EventLoop, 1 loop thread"),
        server_candidate(
            cfg,
            "smol",
            &format!("netkit-smol Server on smol's global executor (SMOL_THREADS={smol_threads})"),
        ),
        server_candidate(
            cfg,
            "tokio-ct",
            &format!("{tokio} current_thread, task per connection"),
        ),
        server_candidate(
            cfg,
            "tokio-mt",
            &format!("{tokio} multi_thread, 2 workers, task per connection"),
        ),
    ];
    if cfg.tls.is_none() {
        list.push(server_candidate(
            cfg,
            "std-threads",
            "std::net, thread per connection",
        ));
    }
    if let Some(t) = &cfg.tls {
        list.push(Candidate {
            name: "openssl",
            desc: format!(
                "openssl s_server -www ({}), handshakes only",
                openssl_version().unwrap_or_else(|| "version unknown".into())
            ),
            program: PathBuf::from("openssl"),
            args: vec![
                "s_server".into(),
                "-accept".into(),
                "127.0.0.1:{port}".into(),
                "-cert".into(),
                t.cert.display().to_string(),
                "-key".into(),
                t.key.display().to_string(),
                "-www".into(),
                "-quiet".into(),
            ],
            env: Vec::new(),
            skipped: None,
            port_arg: true,
            handshake_only: true,
        });
    }
    let wanted = |n: &str| args.only.is_empty() || args.only.iter().any(|o| o == n);
    list.retain(|c| wanted(c.name));
    if wanted("bun") {
        let script = bun_script();
        list.push(match find_bun(args.bun.as_deref(), args.no_install) {
            Ok((bun, version, note)) => Candidate {
                name: "bun",
                desc: format!("Bun {version} Bun.listen echo ({}){note}", script.display()),
                program: bun,
                args: vec![script.display().to_string()],
                env: {
                    let mut env = vec![("PORT".to_string(), "0".to_string())];
                    if let Some(t) = &cfg.tls {
                        env.push(("TLS_CERT".into(), t.cert.display().to_string()));
                        env.push(("TLS_KEY".into(), t.key.display().to_string()));
                    }
                    env
                },
                skipped: None,
                port_arg: false,
                handshake_only: false,
            },
            Err(reason) => Candidate {
                name: "bun",
                desc: "Bun Bun.listen echo".into(),
                program: PathBuf::from("bun"),
                args: Vec::new(),
                env: Vec::new(),
                skipped: Some(reason),
                port_arg: false,
                handshake_only: false,
            },
        });
    }
    list
}

fn openssl_version() -> Option<String> {
    let out = Command::new("openssl").arg("version").output().ok()?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn bun_script() -> PathBuf {
    let rel = PathBuf::from("tests/bench/bun/echo.js");
    if rel.exists() {
        return rel;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/bun/echo.js"))
}

/// Starts each candidate once; those that cannot serve are marked skipped.
fn preflight(cands: &mut [Candidate], cfg: &Config) {
    for c in cands.iter_mut().filter(|c| c.skipped.is_none()) {
        if !c.program.exists() && c.program.is_absolute() {
            c.skipped = Some(format!(
                "{} not found (build it first)",
                c.program.display()
            ));
            continue;
        }
        match c.start(cfg.server_cpu) {
            Ok((mut p, _)) => {
                std::thread::sleep(Duration::from_millis(100));
                if p.exited().is_some() {
                    c.skipped = Some(p.why("exited right after starting"));
                }
            }
            Err(e) => c.skipped = Some(e),
        }
    }
}

// ---------------------------------------------------------------------------
// Scenarios

#[derive(Debug, Clone, Copy)]
struct Scenario {
    key: &'static str,
    title: &'static str,
    conns: usize,
    size: usize,
    bulk: bool,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario {
        key: "echo-1",
        title: "echo 64 B, 1 connection",
        conns: 1,
        size: 64,
        bulk: false,
    },
    Scenario {
        key: "echo-64",
        title: "echo 64 B, 64 connections",
        conns: 64,
        size: 64,
        bulk: false,
    },
    Scenario {
        key: "echo-1000",
        title: "echo 64 B, 1,000 connections",
        conns: 1000,
        size: 64,
        bulk: false,
    },
    Scenario {
        key: "bulk",
        title: "bulk 16 KiB chunks, 1 connection, 256 KiB in flight",
        conns: 1,
        size: 16 * 1024,
        bulk: true,
    },
];

impl Scenario {
    /// The figure compared across candidates.
    fn rate_key(&self) -> &'static str {
        if self.bulk {
            "mb_per_sec"
        } else {
            "rt_per_sec"
        }
    }
    fn cpu_key(&self) -> &'static str {
        if self.bulk {
            "server_cpu_us_per_mb"
        } else {
            "server_cpu_us_per_rt"
        }
    }
    fn rate_unit(&self) -> &'static str {
        if self.bulk { "MB/s" } else { "rt/s" }
    }
    fn cpu_unit(&self) -> &'static str {
        if self.bulk {
            "CPU µs/MB"
        } else {
            "CPU µs/rt"
        }
    }
}

/// One measured run of one candidate in one scenario.
fn measure(c: &Candidate, s: &Scenario, cfg: &Config) -> Result<Value, String> {
    let (mut server, addr) = c.start(cfg.server_cpu)?;
    let mut cmd = Command::new(cfg.bin_dir.join("bench-load"));
    cmd.args(["--addr", &addr.to_string()])
        .args(["--conns", &s.conns.to_string()])
        .args(["--size", &s.size.to_string()])
        .args(["--seconds", &cfg.seconds.to_string()])
        .args(["--warmup", &cfg.warmup.to_string()])
        .args(["--server-pid", &server.pid().to_string()]);
    if s.bulk {
        cmd.arg("--bulk");
    }
    if let Some(t) = &cfg.tls {
        cmd.arg("--tls-ca").arg(&t.cert);
    }
    if cfg.spin {
        cmd.arg("--spin");
    }
    let mut load = Proc::spawn("bench-load", cmd, cfg.load_cpu, false)
        .map_err(|e| format!("cannot start bench-load: {e}"))?;
    let limit = Duration::from_secs_f64(cfg.seconds + cfg.warmup) + RUN_SLACK;
    let end = Instant::now() + limit;
    let v: Value = loop {
        let left = end.saturating_duration_since(Instant::now());
        let line = load.next_line(left)?;
        if line.starts_with('{') {
            break serde_json::from_str(&line)
                .map_err(|e| format!("bench-load printed bad JSON ({e}): {line}"))?;
        }
    };
    if let Some(err) = v.get("error").and_then(Value::as_str) {
        let mut msg = format!("bench-load: {err}");
        if server.exited().is_some() {
            msg = format!("{msg}; {}", server.why("server died"));
        }
        return Err(msg);
    }
    if server.exited().is_some() {
        return Err(server.why("server exited during the run"));
    }
    if v.get("errors").and_then(Value::as_u64).unwrap_or(0) > 0 {
        let first = v.get("first_error").and_then(Value::as_str).unwrap_or("?");
        eprintln!(
            "bench-tcp: {} {}: connection errors: {first}",
            c.name, s.key
        );
    }
    let _ = load.wait_exit(Duration::from_secs(10));
    Ok(v)
}

/// The idle-memory scenario for one candidate.
fn idle(c: &Candidate, n: usize, cfg: &Config) -> Result<Value, String> {
    let (mut server, addr) = c.start(cfg.server_cpu)?;
    let pid = server.pid();
    std::thread::sleep(Duration::from_millis(500));
    let rss0 = proc_rss_kib(pid).map_err(|e| format!("VmRSS of {pid}: {e}"))?;
    let thr0 = proc_threads(pid).unwrap_or(0);
    let mut cmd = Command::new(cfg.bin_dir.join("bench-load"));
    cmd.args(["--addr", &addr.to_string()])
        .args(["--idle", &n.to_string()]);
    if let Some(t) = &cfg.tls {
        cmd.arg("--tls-ca").arg(&t.cert);
    }
    let mut load = Proc::spawn("bench-load", cmd, cfg.load_cpu, true)
        .map_err(|e| format!("cannot start bench-load: {e}"))?;
    let line = load.next_line(IDLE_READY_LIMIT)?;
    let Some(ready) = line.strip_prefix("ready ") else {
        let detail = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(line);
        let mut msg = format!("bench-load --idle {n}: {detail}");
        if server.exited().is_some() {
            msg = format!("{msg}; {}", server.why("server died"));
        }
        return Err(msg);
    };
    let ready: Value = serde_json::from_str(ready).unwrap_or(Value::Null);
    // Let the server settle (deferred frees, a runtime's GC) before sampling.
    std::thread::sleep(Duration::from_secs(1));
    if server.exited().is_some() {
        return Err(server.why("server died while holding the connections"));
    }
    let rss1 = proc_rss_kib(pid).map_err(|e| format!("VmRSS of {pid}: {e}"))?;
    let thr1 = proc_threads(pid).unwrap_or(0);
    load.close_stdin();
    let _ = load.wait_exit(Duration::from_secs(10));
    let per_conn = (rss1 as f64 - rss0 as f64) * 1024.0 / n as f64;
    Ok(json!({
        "conns": n,
        "rss_before_kib": rss0,
        "rss_after_kib": rss1,
        "bytes_per_conn": per_conn,
        "threads_before": thr0,
        "threads_after": thr1,
        "connect_s": ready.get("connect_s"),
        "echo_s": ready.get("echo_s"),
    }))
}

// ---------------------------------------------------------------------------
// The run

/// Results of one scenario: per candidate, the runs (or the reason it has none).
struct ScenarioResult {
    scenario: Scenario,
    /// (candidate, successful runs, errors)
    rows: Vec<(String, Vec<Value>, Vec<String>)>,
}

impl ScenarioResult {
    fn runs(&self, cand: &str) -> Option<&Vec<Value>> {
        self.rows
            .iter()
            .find(|(n, _, _)| n == cand)
            .map(|(_, r, _)| r)
            .filter(|r| !r.is_empty())
    }

    fn med(&self, cand: &str, key: &str) -> Option<f64> {
        let runs = self.runs(cand)?;
        let xs: Vec<f64> = runs
            .iter()
            .filter_map(|v| v.get(key).and_then(Value::as_f64))
            .collect();
        median(&xs)
    }
}

fn run(args: &Args) -> Result<(), String> {
    if let Err(e) = netkit_bench::raise_nofile_limit() {
        eprintln!("bench-tcp: cannot raise RLIMIT_NOFILE: {e}");
    }
    let bin_dir = match &args.bin_dir {
        Some(d) => d.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .ok_or("executable has no directory")?
            .to_path_buf(),
    };
    for b in ["bench-server", "bench-load"] {
        if !bin_dir.join(b).exists() {
            return Err(format!(
                "{} missing: run `cargo build --release -p netkit-bench` first",
                bin_dir.join(b).display()
            ));
        }
    }
    let cpus = allowed_cpus();
    let (server_cpu, load_cpu) = if cpus.len() >= 2 {
        (Some(cpus[0]), Some(cpus[1]))
    } else {
        eprintln!("bench-tcp: fewer than 2 CPUs available ({cpus:?}): not pinning");
        (None, None)
    };
    let cfg = Config {
        seconds: args.seconds.unwrap_or(if args.quick { 0.5 } else { 3.0 }),
        warmup: args.warmup.unwrap_or(if args.quick { 0.2 } else { 1.0 }),
        rounds: args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1),
        idle: args
            .idle
            .unwrap_or(if args.quick { 1000 } else { 10_000 })
            .max(1),
        bin_dir,
        server_cpu,
        load_cpu,
        spin: args.spin,
        tls: if args.tls {
            Some(make_pki(&target_dir().join("bench/tls-pki"))?)
        } else {
            None
        },
    };
    // TLS runs the scenarios the TLS issue names unless asked for others.
    let tls_default = ["echo-64", "bulk", "handshakes", "idle"];
    let want_scenario = |k: &str| {
        if args.scenarios.is_empty() {
            if cfg.tls.is_some() {
                tls_default.contains(&k)
            } else {
                k != "handshakes"
            }
        } else {
            args.scenarios.iter().any(|s| s == k)
        }
    };
    let out_path = if args.tls && args.out == Path::new("target/bench/tcp.json") {
        PathBuf::from("target/bench/tls.json")
    } else {
        args.out.clone()
    };
    let loadavg_start = loadavg();
    let background = background_cpu(Duration::from_secs(1));
    let started = Instant::now();

    let mut cands = candidates(&cfg, args);
    preflight(&mut cands, &cfg);
    println!(
        "netkit {} benchmark: {} s windows after {} s warmup, {} round(s), median; idle {} connections",
        if cfg.tls.is_some() { "TLS" } else { "TCP" },
        cfg.seconds,
        cfg.warmup,
        cfg.rounds,
        cfg.idle
    );
    println!(
        "server pinned to CPU {}, load generator to CPU {}; load average at start: {loadavg_start}",
        cfg.server_cpu.map_or("-".into(), |c| c.to_string()),
        cfg.load_cpu.map_or("-".into(), |c| c.to_string()),
    );
    if let Some(b) = background {
        println!("CPU used by other processes in the second before the run: {b:.0}% of one CPU");
        if b > 20.0 {
            println!("warning: the machine is busy; figures will be noisy (see the other% column)");
        }
    }
    for c in &cands {
        match &c.skipped {
            None => println!("  {:<12} {}", c.name, c.desc),
            Some(r) => println!("  {:<12} skipped: {r}", c.name),
        }
    }
    let all_live: Vec<&Candidate> = cands.iter().filter(|c| c.skipped.is_none()).collect();
    let live: Vec<&Candidate> = all_live
        .iter()
        .copied()
        .filter(|c| !c.handshake_only)
        .collect();

    let mut results = Vec::new();
    for s in SCENARIOS.iter().filter(|s| want_scenario(s.key)) {
        let mut rows: Vec<(String, Vec<Value>, Vec<String>)> = live
            .iter()
            .map(|c| (c.name.to_string(), Vec::new(), Vec::new()))
            .collect();
        for round in 0..cfg.rounds {
            for k in 0..live.len() {
                let idx = (k + round) % live.len();
                let c = live[idx];
                eprint!(
                    "bench-tcp: {} round {}/{}: {:<12}",
                    s.key,
                    round + 1,
                    cfg.rounds,
                    c.name
                );
                match measure(c, s, &cfg) {
                    Ok(v) => {
                        let rate = v.get(s.rate_key()).and_then(Value::as_f64).unwrap_or(0.0);
                        let cpu = v.get(s.cpu_key()).and_then(Value::as_f64);
                        let pct = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
                        eprintln!(
                            " {:>12} {}  {} {}  (server {:.0}%, load {:.0}%, other {:.0}%, steal {:.0}%)",
                            fmt_rate(rate, s.bulk),
                            s.rate_unit(),
                            cpu.map_or("-".into(), |x| format!("{x:.2}")),
                            s.cpu_unit(),
                            pct("server_cpu_pct"),
                            pct("load_cpu_pct"),
                            pct("other_cpu_pct"),
                            pct("steal_pct"),
                        );
                        rows[idx].1.push(v);
                    }
                    Err(e) => {
                        eprintln!(" failed: {e}");
                        rows[idx].2.push(e);
                    }
                }
            }
        }
        let r = ScenarioResult { scenario: *s, rows };
        print_scenario(&r, &cands, &cfg);
        results.push(r);
    }

    let mut idle_rows: Vec<(String, Result<Value, String>)> = Vec::new();
    if want_scenario("idle") {
        for c in &live {
            eprintln!("bench-tcp: idle {}: {} connections", c.name, cfg.idle);
            idle_rows.push((c.name.to_string(), idle(c, cfg.idle, &cfg)));
        }
        print_idle(&idle_rows, &cands, &cfg);
    }

    let mut hs_rows: Vec<(String, Vec<Value>, Vec<String>)> = Vec::new();
    if want_scenario("handshakes") {
        hs_rows = all_live
            .iter()
            .map(|c| (c.name.to_string(), Vec::new(), Vec::new()))
            .collect();
        for round in 0..cfg.rounds {
            for k in 0..all_live.len() {
                let idx = (k + round) % all_live.len();
                let c = all_live[idx];
                eprint!(
                    "bench-tcp: handshakes round {}/{}: {:<12}",
                    round + 1,
                    cfg.rounds,
                    c.name
                );
                match handshakes(c, &cfg) {
                    Ok(v) => {
                        let f = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
                        eprintln!(
                            " {:>8.0} handshakes/s  {:.0} server CPU µs/handshake",
                            f("hs_per_sec"),
                            f("server_cpu_us_per_hs")
                        );
                        hs_rows[idx].1.push(v);
                    }
                    Err(e) => {
                        eprintln!(" failed: {e}");
                        hs_rows[idx].2.push(e);
                    }
                }
            }
        }
        print_handshakes(&hs_rows, &cands, &cfg);
    }

    let targets = if cfg.tls.is_some() {
        tls_targets(&results, &idle_rows, &hs_rows, &cands)
    } else {
        targets(&results, &idle_rows, &cands, &cfg)
    };
    println!();
    println!("== targets ==");
    for t in &targets {
        println!(
            "{:<7} {}",
            t.get("status").and_then(Value::as_str).unwrap_or("?"),
            t.get("text").and_then(Value::as_str).unwrap_or("")
        );
    }
    let loadavg_end = loadavg();
    println!(
        "load average at end: {loadavg_end}; took {:.0} s",
        started.elapsed().as_secs_f64()
    );

    let doc = json!({
        "config": {
            "seconds": cfg.seconds,
            "warmup": cfg.warmup,
            "rounds": cfg.rounds,
            "idle_conns": cfg.idle,
            "server_cpu": cfg.server_cpu,
            "load_cpu": cfg.load_cpu,
            "load_spin": cfg.spin,
            "clk_tck": netkit_bench::clk_tck(),
            "cpu_time_source": "utime+stime of /proc/PID/stat (all threads), sampled by bench-load at the window's edges",
            "memory_method": "server VmRSS (/proc/PID/status) after N idle connections with one 64-byte echo each, minus VmRSS before, divided by N",
        },
        "machine": {
            "cpus": allowed_cpus(),
            "loadavg_start": loadavg_start,
            "background_cpu_pct_before": background,
            "loadavg_end": loadavg_end,
            "seconds_total": started.elapsed().as_secs_f64(),
        },
        "candidates": cands.iter().map(|c| json!({
            "name": c.name,
            "desc": c.desc,
            "skipped": c.skipped,
        })).collect::<Vec<_>>(),
        "scenarios": results.iter().map(|r| scenario_json(r, &cands)).collect::<Vec<_>>(),
        "idle": idle_rows.iter().map(|(n, r)| match r {
            Ok(v) => json!({ "candidate": n, "status": "ok", "result": v }),
            Err(e) => json!({ "candidate": n, "status": "failed", "reason": e }),
        }).collect::<Vec<_>>(),
        "handshakes": hs_rows.iter().map(|(n, runs, errs)| json!({
            "candidate": n,
            "runs": runs,
            "errors": errs,
        })).collect::<Vec<_>>(),
        "targets": targets,
    });
    if let Some(dir) = out_path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
    std::fs::write(&out_path, text + "\n").map_err(|e| format!("{}: {e}", out_path.display()))?;
    println!("results written to {}", out_path.display());
    Ok(())
}

/// Full handshakes against one server: `openssl s_time -new` (one handshake at a
/// time, then close) pinned to the load CPU, with the server's CPU time sampled
/// around it.
fn handshakes(c: &Candidate, cfg: &Config) -> Result<Value, String> {
    let (mut server, addr) = c.start(cfg.server_cpu)?;
    let secs = cfg.seconds.ceil().max(1.0) as u64;
    let mut cmd = Command::new("openssl");
    cmd.args(["s_time", "-connect", &addr.to_string(), "-new", "-time"])
        .arg(secs.to_string());
    let pid = server.pid();
    let cpu0 = netkit_bench::proc_cpu_time(pid).map_err(|e| format!("CPU of {pid}: {e}"))?;
    let t0 = Instant::now();
    let mut load = Proc::spawn("s_time", cmd, cfg.load_cpu, false)
        .map_err(|e| format!("cannot start openssl s_time: {e}"))?;
    let limit = Duration::from_secs(secs) + RUN_SLACK;
    let mut count = None;
    let end = Instant::now() + limit;
    while count.is_none() {
        let left = end.saturating_duration_since(Instant::now());
        let line = match load.next_line(left) {
            Ok(l) => l,
            Err(e) => return Err(format!("s_time: {e}; {}", load.stderr_tail())),
        };
        // "2713 connections in 3 real seconds, 0 bytes read per connection"
        if line.contains("real seconds") {
            count = line
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok());
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu1 = netkit_bench::proc_cpu_time(pid).map_err(|e| format!("CPU of {pid}: {e}"))?;
    let _ = load.wait_exit(Duration::from_secs(10));
    if server.exited().is_some() {
        return Err(server.why("server exited during the run"));
    }
    let n = count.unwrap_or(0);
    if n == 0 {
        return Err("s_time completed no handshake".into());
    }
    let cpu = cpu1.saturating_sub(cpu0).as_secs_f64();
    Ok(json!({
        "handshakes": n,
        "seconds": wall,
        "hs_per_sec": n as f64 / wall,
        "server_cpu_s": cpu,
        "server_cpu_us_per_hs": cpu * 1e6 / n as f64,
        "server_cpu_pct": 100.0 * cpu / wall,
    }))
}

fn hs_med(rows: &[(String, Vec<Value>, Vec<String>)], cand: &str, key: &str) -> Option<f64> {
    let (_, runs, _) = rows.iter().find(|(n, _, _)| n == cand)?;
    let xs: Vec<f64> = runs
        .iter()
        .filter_map(|v| v.get(key).and_then(Value::as_f64))
        .collect();
    median(&xs)
}

fn print_handshakes(rows: &[(String, Vec<Value>, Vec<String>)], cands: &[Candidate], cfg: &Config) {
    println!();
    println!(
        "== full TLS handshakes, openssl s_time -new ({} round(s) x {} s, median) ==",
        cfg.rounds,
        cfg.seconds.ceil().max(1.0)
    );
    println!(
        "{:<12} {:>12} {:>10} {:>10} {:>14} {:>10} {:>10} {:>9}",
        "candidate",
        "hs/s",
        "vs s_srv",
        "vs tok-mt",
        "CPU µs/hs",
        "vs s_srv",
        "vs tok-mt",
        "srv CPU%"
    );
    let base = |k: &str| (hs_med(rows, "openssl", k), hs_med(rows, "tokio-mt", k));
    let (rate_ssl, rate_tok) = base("hs_per_sec");
    let (cpu_ssl, cpu_tok) = base("server_cpu_us_per_hs");
    for c in cands {
        if let Some(reason) = &c.skipped {
            println!("{:<12} skipped: {reason}", c.name);
            continue;
        }
        let Some(row) = rows.iter().find(|(n, _, _)| n == c.name) else {
            continue;
        };
        if row.1.is_empty() {
            println!(
                "{:<12} failed: {}",
                c.name,
                row.2.first().map_or("", String::as_str)
            );
            continue;
        }
        let rate = hs_med(rows, c.name, "hs_per_sec");
        let cpu = hs_med(rows, c.name, "server_cpu_us_per_hs");
        println!(
            "{:<12} {:>12} {:>10} {:>10} {:>14} {:>10} {:>10} {:>9}",
            c.name,
            rate.map_or("-".into(), |x| format!("{x:.0}")),
            fmt_ratio(ratio(rate, rate_ssl)),
            fmt_ratio(ratio(rate, rate_tok)),
            cpu.map_or("-".into(), |x| format!("{x:.0}")),
            fmt_ratio(ratio(cpu, cpu_ssl)),
            fmt_ratio(ratio(cpu, cpu_tok)),
            hs_med(rows, c.name, "server_cpu_pct").map_or("-".into(), |x| format!("{x:.0}")),
        );
    }
}

/// The TLS issue's targets.
fn tls_targets(
    results: &[ScenarioResult],
    idle_rows: &[(String, Result<Value, String>)],
    hs_rows: &[(String, Vec<Value>, Vec<String>)],
    cands: &[Candidate],
) -> Vec<Value> {
    let scen = |k: &str| results.iter().find(|r| r.scenario.key == k);
    let mut out = Vec::new();
    let cmp = |text: String,
               a: Option<f64>,
               b: Option<f64>,
               ok: &dyn Fn(f64) -> bool,
               unit: &str,
               names: &[&str],
               r: Option<&ScenarioResult>| match ratio(a, b) {
        Some(x) => target(
            text,
            Some(ok(x)),
            format!(
                "{x:.3}x ({:.2} vs {:.2} {unit})",
                a.unwrap_or(0.0),
                b.unwrap_or(0.0)
            ),
        ),
        None => target(text, None, unavailable(names, r, cands)),
    };
    let e64 = scen("echo-64");
    let bulk = scen("bulk");
    for cand in ["blocking", "smol"] {
        out.push(cmp(
            format!("{cand} TLS echo rate at 64 conns >= 1.0x tokio-rustls (tokio-mt)"),
            e64.and_then(|r| r.med(cand, "rt_per_sec")),
            e64.and_then(|r| r.med("tokio-mt", "rt_per_sec")),
            &|x| x >= 1.0,
            "rt/s",
            &[cand, "tokio-mt"],
            e64,
        ));
        out.push(cmp(
            format!("{cand} TLS server CPU per round trip at 64 conns <= 1.0x tokio-rustls"),
            e64.and_then(|r| r.med(cand, "server_cpu_us_per_rt")),
            e64.and_then(|r| r.med("tokio-mt", "server_cpu_us_per_rt")),
            &|x| x <= 1.0,
            "µs/rt",
            &[cand, "tokio-mt"],
            e64,
        ));
        out.push(cmp(
            format!("{cand} TLS bulk >= 1.0x tokio-rustls (tokio-mt)"),
            bulk.and_then(|r| r.med(cand, "mb_per_sec")),
            bulk.and_then(|r| r.med("tokio-mt", "mb_per_sec")),
            &|x| x >= 1.0,
            "MB/s",
            &[cand, "tokio-mt"],
            bulk,
        ));
    }
    let hs = |c: &str, k: &str| hs_med(hs_rows, c, k);
    if !hs_rows.is_empty() {
        for cand in ["blocking", "smol"] {
            out.push(cmp(
                format!("{cand} handshakes/s >= 1.3x openssl s_server"),
                hs(cand, "hs_per_sec"),
                hs("openssl", "hs_per_sec"),
                &|x| x >= 1.3,
                "hs/s",
                &[cand, "openssl"],
                None,
            ));
            out.push(cmp(
                format!("{cand} server CPU per handshake <= 1.0x tokio-rustls"),
                hs(cand, "server_cpu_us_per_hs"),
                hs("tokio-mt", "server_cpu_us_per_hs"),
                &|x| x <= 1.0,
                "µs/hs",
                &[cand, "tokio-mt"],
                None,
            ));
            out.push(cmp(
                format!("{cand} server CPU per handshake <= 0.5x openssl s_server"),
                hs(cand, "server_cpu_us_per_hs"),
                hs("openssl", "server_cpu_us_per_hs"),
                &|x| x <= 0.5,
                "µs/hs",
                &[cand, "openssl"],
                None,
            ));
        }
    }
    let per_conn = |n: &str| -> Option<f64> {
        match idle_rows.iter().find(|(c, _)| c == n) {
            Some((_, Ok(v))) => v.get("bytes_per_conn").and_then(Value::as_f64),
            _ => None,
        }
    };
    if !idle_rows.is_empty() {
        for cand in ["blocking", "smol"] {
            out.push(cmp(
                format!("{cand} memory per idle TLS connection <= Bun's"),
                per_conn(cand),
                per_conn("bun"),
                &|x| x <= 1.0,
                "B/conn",
                &[cand, "bun"],
                None,
            ));
            out.push(cmp(
                format!("{cand} memory per idle TLS connection vs tokio-rustls (tokio-mt), informational"),
                per_conn(cand),
                per_conn("tokio-mt"),
                &|x| x <= 1.0,
                "B/conn",
                &[cand, "tokio-mt"],
                None,
            ));
        }
    }
    out
}

/// Machine-wide busy CPU over `window`, in percent of one CPU (the runner itself
/// sleeps meanwhile, so this is other processes' load).
fn background_cpu(window: Duration) -> Option<f64> {
    let (b0, _) = netkit_bench::machine_cpu_ticks().ok()?;
    let t0 = Instant::now();
    std::thread::sleep(window);
    let (b1, _) = netkit_bench::machine_cpu_ticks().ok()?;
    let secs = t0.elapsed().as_secs_f64();
    Some(100.0 * b1.saturating_sub(b0) as f64 / netkit_bench::clk_tck() as f64 / secs)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn fmt_rate(x: f64, bulk: bool) -> String {
    if bulk {
        format!("{x:.0}")
    } else {
        // Thousands separators for round trips per second.
        let n = x.round() as u64;
        let s = n.to_string();
        let mut out = String::new();
        for (i, ch) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(ch);
        }
        out
    }
}

fn fmt_ratio(x: Option<f64>) -> String {
    x.map_or("-".into(), |r| format!("{r:.2}x"))
}

fn print_scenario(r: &ScenarioResult, cands: &[Candidate], cfg: &Config) {
    let s = &r.scenario;
    let base_rate = r.med("tokio-mt", s.rate_key());
    let base_cpu = r.med("tokio-mt", s.cpu_key());
    let std_rate = r.med("std-threads", s.rate_key());
    println!();
    println!(
        "== {} ({} round(s) x {} s, median) ==",
        s.title, cfg.rounds, cfg.seconds
    );
    let mut header = format!(
        "{:<12} {:>12} {:>10} {:>12} {:>10} {:>9} {:>9} {:>7} {:>7}",
        "candidate",
        s.rate_unit(),
        "vs tok-mt",
        s.cpu_unit(),
        "vs tok-mt",
        "srv CPU%",
        "load CPU%",
        "other%",
        "steal%"
    );
    if s.bulk {
        let _ = write!(header, " {:>10}", "vs std");
    }
    println!("{header}");
    for c in cands {
        if let Some(reason) = &c.skipped {
            println!("{:<12} skipped: {reason}", c.name);
            continue;
        }
        let Some(row) = r.rows.iter().find(|(n, _, _)| n == c.name) else {
            continue;
        };
        if row.1.is_empty() {
            println!(
                "{:<12} failed: {}",
                c.name,
                row.2.first().map_or("", String::as_str)
            );
            continue;
        }
        let rate = r.med(c.name, s.rate_key());
        let cpu = r.med(c.name, s.cpu_key());
        let pct = |k: &str| r.med(c.name, k).map_or("-".into(), |x| format!("{x:.0}"));
        let mut line = format!(
            "{:<12} {:>12} {:>10} {:>12} {:>10} {:>9} {:>9} {:>7} {:>7}",
            c.name,
            rate.map_or("-".into(), |x| fmt_rate(x, s.bulk)),
            fmt_ratio(ratio(rate, base_rate)),
            cpu.map_or("-".into(), |x| format!("{x:.2}")),
            fmt_ratio(ratio(cpu, base_cpu)),
            pct("server_cpu_pct"),
            pct("load_cpu_pct"),
            pct("other_cpu_pct"),
            pct("steal_pct"),
        );
        if s.bulk {
            let _ = write!(line, " {:>10}", fmt_ratio(ratio(rate, std_rate)));
        }
        if !row.2.is_empty() {
            let _ = write!(line, "  ({} failed run(s): {})", row.2.len(), row.2[0]);
        }
        println!("{line}");
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn print_idle(rows: &[(String, Result<Value, String>)], cands: &[Candidate], cfg: &Config) {
    println!();
    println!(
        "== idle memory: {} connections, one 64-byte echo each; (VmRSS after - before) / N ==",
        cfg.idle
    );
    println!(
        "{:<12} {:>12} {:>12} {:>12} {:>9}",
        "candidate", "RSS before", "RSS after", "bytes/conn", "threads"
    );
    for c in cands {
        if let Some(reason) = &c.skipped {
            println!("{:<12} skipped: {reason}", c.name);
            continue;
        }
        match rows.iter().find(|(n, _)| n == c.name).map(|(_, r)| r) {
            Some(Ok(v)) => {
                let kib = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
                println!(
                    "{:<12} {:>8.1} MiB {:>8.1} MiB {:>12.0} {:>9}",
                    c.name,
                    kib("rss_before_kib") as f64 / 1024.0,
                    kib("rss_after_kib") as f64 / 1024.0,
                    v.get("bytes_per_conn")
                        .and_then(Value::as_f64)
                        .unwrap_or(f64::NAN),
                    v.get("threads_after").and_then(Value::as_u64).unwrap_or(0),
                );
            }
            Some(Err(e)) => println!("{:<12} failed: {e}", c.name),
            None => {}
        }
    }
}

fn scenario_json(r: &ScenarioResult, cands: &[Candidate]) -> Value {
    let s = &r.scenario;
    let base_rate = r.med("tokio-mt", s.rate_key());
    let base_cpu = r.med("tokio-mt", s.cpu_key());
    let std_rate = r.med("std-threads", s.rate_key());
    let results: Vec<Value> = cands
        .iter()
        .map(|c| {
            if let Some(reason) = &c.skipped {
                return json!({ "candidate": c.name, "status": "skipped", "reason": reason });
            }
            let Some((_, runs, errors)) = r.rows.iter().find(|(n, _, _)| n == c.name) else {
                return json!({ "candidate": c.name, "status": "not run" });
            };
            if runs.is_empty() {
                return json!({ "candidate": c.name, "status": "failed", "errors": errors });
            }
            let rate = r.med(c.name, s.rate_key());
            let cpu = r.med(c.name, s.cpu_key());
            json!({
                "candidate": c.name,
                "status": "ok",
                s.rate_key(): rate,
                s.cpu_key(): cpu,
                "server_cpu_pct": r.med(c.name, "server_cpu_pct"),
                "load_cpu_pct": r.med(c.name, "load_cpu_pct"),
                "other_cpu_pct": r.med(c.name, "other_cpu_pct"),
                "steal_pct": r.med(c.name, "steal_pct"),
                "rate_vs_tokio_mt": ratio(rate, base_rate),
                "cpu_vs_tokio_mt": ratio(cpu, base_cpu),
                "rate_vs_std_threads": ratio(rate, std_rate),
                "runs": runs,
                "errors": errors,
            })
        })
        .collect();
    json!({
        "scenario": s.key,
        "title": s.title,
        "conns": s.conns,
        "size": s.size,
        "bulk": s.bulk,
        "results": results,
    })
}

// ---------------------------------------------------------------------------
// Targets

/// One target line: PASS/MISS with numbers, or N/A with the reason.
fn target(text: String, pass: Option<bool>, detail: String) -> Value {
    let status = match pass {
        Some(true) => "PASS",
        Some(false) => "MISS",
        None => "N/A",
    };
    json!({ "status": status, "text": format!("{text}: {detail}"), "pass": pass })
}

fn unavailable(names: &[&str], results: Option<&ScenarioResult>, cands: &[Candidate]) -> String {
    let mut why = Vec::new();
    for n in names {
        match cands.iter().find(|c| c.name == *n) {
            None => why.push(format!("{n} not selected")),
            Some(c) if c.skipped.is_some() => {
                why.push(format!(
                    "{n} skipped: {}",
                    c.skipped.as_deref().unwrap_or("")
                ));
            }
            Some(_) => match results {
                None => why.push("scenario not run".into()),
                Some(r) if r.runs(n).is_none() => why.push(format!("{n} has no successful run")),
                Some(_) => {}
            },
        }
    }
    if why.is_empty() {
        "no data".into()
    } else {
        why.join("; ")
    }
}

fn targets(
    results: &[ScenarioResult],
    idle_rows: &[(String, Result<Value, String>)],
    cands: &[Candidate],
    cfg: &Config,
) -> Vec<Value> {
    let scen = |k: &str| results.iter().find(|r| r.scenario.key == k);
    let mut out = Vec::new();
    let e64 = scen("echo-64");

    // Throughput at 64 connections against tokio multi-thread.
    for (cand, min) in [("blocking", 1.1), ("smol", 0.9)] {
        let text = format!("{cand} echo rate at 64 conns >= {min}x tokio-mt");
        let a = e64.and_then(|r| r.med(cand, "rt_per_sec"));
        let b = e64.and_then(|r| r.med("tokio-mt", "rt_per_sec"));
        out.push(match ratio(a, b) {
            Some(x) => target(
                text,
                Some(x >= min),
                format!(
                    "{x:.3}x ({} vs {} rt/s)",
                    fmt_rate(a.unwrap_or(0.0), false),
                    fmt_rate(b.unwrap_or(0.0), false)
                ),
            ),
            None => target(text, None, unavailable(&[cand, "tokio-mt"], e64, cands)),
        });
    }
    // The smol driver against tokio at the other connection counts too (informational
    // lines in the same form).
    for k in ["echo-1", "echo-1000"] {
        let r = scen(k);
        let text = format!(
            "smol echo rate at {} conn(s) >= 0.9x tokio-mt (same target, other load)",
            r.map_or(0, |r| r.scenario.conns)
        );
        let a = r.and_then(|r| r.med("smol", "rt_per_sec"));
        let b = r.and_then(|r| r.med("tokio-mt", "rt_per_sec"));
        if r.is_some() {
            out.push(match ratio(a, b) {
                Some(x) => target(
                    text,
                    Some(x >= 0.9),
                    format!(
                        "{x:.3}x ({} vs {} rt/s)",
                        fmt_rate(a.unwrap_or(0.0), false),
                        fmt_rate(b.unwrap_or(0.0), false)
                    ),
                ),
                None => target(text, None, unavailable(&["smol", "tokio-mt"], r, cands)),
            });
        }
    }
    // Bulk against the std::net baseline.
    let bulk = scen("bulk");
    for cand in ["blocking", "smol"] {
        let text = format!("{cand} bulk 16 KiB >= 0.9x std-threads");
        let a = bulk.and_then(|r| r.med(cand, "mb_per_sec"));
        let b = bulk.and_then(|r| r.med("std-threads", "mb_per_sec"));
        out.push(match ratio(a, b) {
            Some(x) => target(
                text,
                Some(x >= 0.9),
                format!(
                    "{x:.3}x ({:.0} vs {:.0} MB/s)",
                    a.unwrap_or(0.0),
                    b.unwrap_or(0.0)
                ),
            ),
            None => target(text, None, unavailable(&[cand, "std-threads"], bulk, cands)),
        });
    }
    // Server CPU per round trip against tokio multi-thread.
    for cand in ["blocking", "smol"] {
        let text = format!("{cand} server CPU per round trip at 64 conns <= 0.9x tokio-mt");
        let a = e64.and_then(|r| r.med(cand, "server_cpu_us_per_rt"));
        let b = e64.and_then(|r| r.med("tokio-mt", "server_cpu_us_per_rt"));
        out.push(match ratio(a, b) {
            Some(x) => target(
                text,
                Some(x <= 0.9),
                format!(
                    "{x:.3}x ({:.2} vs {:.2} µs/rt)",
                    a.unwrap_or(0.0),
                    b.unwrap_or(0.0)
                ),
            ),
            None => target(text, None, unavailable(&[cand, "tokio-mt"], e64, cands)),
        });
    }
    // Idle memory: <= 1 KiB per connection, and below Bun's.
    let per_conn =
        |n: &str| -> Result<f64, String> {
            match idle_rows.iter().find(|(c, _)| c == n) {
                Some((_, Ok(v))) => v
                    .get("bytes_per_conn")
                    .and_then(Value::as_f64)
                    .ok_or_else(|| "no figure".into()),
                Some((_, Err(e))) => Err(format!("{n} failed: {e}")),
                None => Err(unavailable(&[n], None, cands)
                    .replace("scenario not run", "idle scenario not run")),
            }
        };
    let bun = per_conn("bun");
    for cand in ["blocking", "smol"] {
        let text = format!(
            "{cand} memory per idle connection <= 1 KiB at {} conns",
            cfg.idle
        );
        out.push(match per_conn(cand) {
            Ok(x) => target(text, Some(x <= 1024.0), format!("{x:.0} B/conn")),
            Err(e) => target(text, None, e),
        });
        let text = format!("{cand} memory per idle connection below Bun's");
        out.push(match (per_conn(cand), &bun) {
            (Ok(x), Ok(b)) => target(text, Some(x < *b), format!("{x:.0} vs {b:.0} B/conn")),
            (Err(e), _) => target(text, None, e),
            (_, Err(e)) => target(text, None, e.clone()),
        });
    }
    if cfg.idle < 10_000 {
        out.push(target(
            "idle scenario size".into(),
            None,
            format!(
                "ran with {} connections, the target is stated at 10,000",
                cfg.idle
            ),
        ));
    }
    out
}
