//! `bench-dns`: the end-to-end DNS benchmark behind `cargo xtask bench dns`.
//!
//! Starts nsd on a loopback port with the test zones (`tests/dns`), then:
//!
//! 1. **Cold lookups, one at a time**: `resolve4` of names nobody asked before
//!    (`*.wild.test` is a wildcard), so every lookup is a query: netkit's
//!    blocking loop (`EventLoop::resolve`), netkit's smol driver
//!    (`Runtime::resolve`), hickory-resolver on tokio (cache off), and a floor
//!    (one connected UDP socket sending netkit-dns's query bytes, no engine).
//!    Latency p50/p99 per candidate; candidates alternate round by round.
//! 2. **Cold lookups, many in flight**: the same with `--window` (64) lookups
//!    in flight on one thread (smol's DNS task runs on smol's executor):
//!    lookups/s and client CPU (this process's utime + stime) per lookup.
//! 3. **Per process**: `netkit dns resolve4 --server` against `drill`, `dig`,
//!    Bun and node (`node:dns` Resolver, `bun/resolve4.mjs`): wall time from
//!    spawn to exit, p50/p90, every output checked.
//! 4. **In process** (criterion, `benches/dns.rs`, run first by xtask): the
//!    cache-hit and decode medians are read from `TARGET/criterion` and shown
//!    as ratios.
//!
//! Writes everything to `target/bench/dns.json` (`--out`).

use std::cell::{Cell, RefCell};
use std::io::Read as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;
use netkit_bench::proc::{find_bun, target_dir};
use netkit_bench::{criterion_median, ratio, self_cpu_time};
use netkit_blocking::EventLoop;
use netkit_dns::Rtype;
use netkit_dns::message::{Verdict, encode_query, read_response};
use netkit_sys::resolve::{DnsSettings, HostsFile, Resolver};
use serde_json::json;

/// How long one lookup may take before the run is declared broken.
const LOOKUP_LIMIT: Duration = Duration::from_secs(10);
/// How long one per-process run may take.
const PROCESS_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug, Parser)]
#[command(about = "netkit's end-to-end DNS benchmark (cargo xtask bench dns)")]
struct Args {
    /// Smoke run: fewer lookups and process runs, one round.
    #[arg(long)]
    quick: bool,
    /// Cold lookups per candidate and round (default 500; 100 with --quick).
    #[arg(long)]
    lookups: Option<usize>,
    /// Rounds; candidates alternate round by round (default 3; 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Lookups in flight in the concurrent scenario.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Lookups per candidate in the concurrent scenario (default 4096; 512 with --quick).
    #[arg(long)]
    burst: Option<usize>,
    /// Runs per program in the per-process scenario (default 30; 5 with --quick).
    #[arg(long)]
    procs: Option<usize>,
    /// Only these in-process candidates (comma-separated:
    /// netkit-blocking,netkit-smol,hickory,floor); hickory is the reference of
    /// the ratios.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Skip the per-process scenario.
    #[arg(long)]
    no_processes: bool,
    /// JSON output file.
    #[arg(long, default_value = "target/bench/dns.json")]
    out: PathBuf,
    /// Bun executable to use instead of the one under target/bun.
    #[arg(long)]
    bun: Option<PathBuf>,
    /// Do not run `npm install` when Bun is missing.
    #[arg(long)]
    no_install: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-dns: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// In-process candidates

/// A resolver under test.
trait Candidate {
    fn name(&self) -> &'static str;
    /// One `resolve4` of `name`; the number of A records.
    fn resolve_a(&mut self, name: &str) -> Result<usize, String>;
    /// Resolves all `names` with `window` in flight; `None` when the candidate
    /// has no concurrent mode.
    fn burst(&mut self, names: &[String], window: usize) -> Option<Result<(), String>>;
}

/// netkit's resolver asking only `server`.
fn netkit_resolver(server: SocketAddr) -> Resolver {
    let settings = DnsSettings {
        servers: Some(vec![server]),
        ..DnsSettings::from_env()
    };
    Resolver::new(HostsFile::new("/dev/null"), settings)
}

struct Blocking {
    lp: EventLoop,
}

impl Blocking {
    fn new(server: SocketAddr) -> Result<Self, String> {
        let mut lp = EventLoop::new().map_err(|e| format!("event loop: {e}"))?;
        *lp.resolver() = netkit_resolver(server);
        Ok(Self { lp })
    }
}

/// The blocking loop's shared state in a burst.
struct BurstState {
    names: Vec<String>,
    next: Cell<usize>,
    done: Cell<usize>,
    error: RefCell<Option<String>>,
}

/// Starts the next lookup of the burst; its callback starts the one after.
fn issue(lp: &mut EventLoop, st: &Rc<BurstState>) {
    let i = st.next.get();
    if i >= st.names.len() {
        return;
    }
    st.next.set(i + 1);
    let s = st.clone();
    lp.resolve(&st.names[i], Rtype::A, move |lp, r| {
        if let Err(e) = r {
            s.error.borrow_mut().get_or_insert(e.to_string());
        }
        s.done.set(s.done.get() + 1);
        issue(lp, &s);
    });
}

impl Candidate for Blocking {
    fn name(&self) -> &'static str {
        "netkit-blocking"
    }

    fn resolve_a(&mut self, name: &str) -> Result<usize, String> {
        let out: Rc<RefCell<Option<Result<usize, String>>>> = Rc::default();
        let o = out.clone();
        self.lp.resolve(name, Rtype::A, move |_, r| {
            *o.borrow_mut() = Some(r.map(|a| a.records.len()).map_err(|e| e.to_string()));
        });
        let o = out.clone();
        let ok = self
            .lp
            .run_until(LOOKUP_LIMIT, move || o.borrow().is_some())
            .map_err(|e| e.to_string())?;
        if !ok {
            return Err(format!("no answer for {name} within {LOOKUP_LIMIT:?}"));
        }
        out.borrow_mut().take().unwrap_or(Err("lost".into()))
    }

    fn burst(&mut self, names: &[String], window: usize) -> Option<Result<(), String>> {
        let st = Rc::new(BurstState {
            names: names.to_vec(),
            next: Cell::new(0),
            done: Cell::new(0),
            error: RefCell::new(None),
        });
        for _ in 0..window {
            issue(&mut self.lp, &st);
        }
        let s = st.clone();
        let n = names.len();
        let limit = LOOKUP_LIMIT * 6;
        Some(match self.lp.run_until(limit, move || s.done.get() == n) {
            Err(e) => Err(e.to_string()),
            Ok(false) => Err(format!("{} of {n} done within {limit:?}", st.done.get())),
            Ok(true) => st.error.borrow_mut().take().map_or(Ok(()), Err),
        })
    }
}

struct Smol {
    rt: netkit_smol::Runtime,
}

impl Candidate for Smol {
    fn name(&self) -> &'static str {
        "netkit-smol"
    }

    fn resolve_a(&mut self, name: &str) -> Result<usize, String> {
        smol::block_on(self.rt.resolve(name, Rtype::A))
            .map(|a| a.records.len())
            .map_err(|e| e.to_string())
    }

    fn burst(&mut self, names: &[String], window: usize) -> Option<Result<(), String>> {
        let names: Rc<Vec<String>> = Rc::new(names.to_vec());
        let next = Rc::new(Cell::new(0usize));
        let ex = smol::LocalExecutor::new();
        let tasks: Vec<_> = (0..window)
            .map(|_| {
                let (names, next, rt) = (names.clone(), next.clone(), self.rt.clone());
                ex.spawn(async move {
                    loop {
                        let i = next.get();
                        let Some(name) = names.get(i) else {
                            return Ok::<(), String>(());
                        };
                        next.set(i + 1);
                        rt.resolve(name, Rtype::A)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                })
            })
            .collect();
        Some(smol::block_on(ex.run(async {
            for t in tasks {
                t.await?;
            }
            Ok(())
        })))
    }
}

struct Hickory {
    rt: tokio::runtime::Runtime,
    resolver: TokioResolver,
}

impl Hickory {
    fn new(server: SocketAddr) -> Result<Self, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio: {e}"))?;
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let ns = NameServerConfig::new(server.ip(), true, vec![udp, tcp]);
        let mut opts = ResolverOpts::default();
        opts.cache_size = 0;
        let resolver = rt
            .block_on(async {
                TokioResolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![ns]),
                    TokioRuntimeProvider::new(),
                )
                .with_options(opts)
                .build()
            })
            .map_err(|e| format!("hickory: {e}"))?;
        Ok(Self { rt, resolver })
    }
}

impl Candidate for Hickory {
    fn name(&self) -> &'static str {
        "hickory"
    }

    fn resolve_a(&mut self, name: &str) -> Result<usize, String> {
        let fqdn = format!("{name}.");
        self.rt
            .block_on(self.resolver.lookup(fqdn.as_str(), RecordType::A))
            .map(|l| l.answers().len())
            .map_err(|e| e.to_string())
    }

    fn burst(&mut self, names: &[String], window: usize) -> Option<Result<(), String>> {
        let names: Arc<Vec<String>> = Arc::new(names.iter().map(|n| format!("{n}.")).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let resolver = self.resolver.clone();
        Some(self.rt.block_on(async move {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..window {
                let (names, next, r) = (names.clone(), next.clone(), resolver.clone());
                set.spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = names.get(i) else {
                            return Ok::<(), String>(());
                        };
                        r.lookup(name.as_str(), RecordType::A)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                });
            }
            while let Some(r) = set.join_next().await {
                r.map_err(|e| e.to_string())??;
            }
            Ok(())
        }))
    }
}

/// The floor: one connected UDP socket, netkit-dns's query and response code,
/// no engine, no timers, no cache.
struct Floor {
    sock: UdpSocket,
    id: u16,
    buf: Vec<u8>,
}

impl Floor {
    fn new(server: SocketAddr) -> Result<Self, String> {
        let sock = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        sock.connect(server).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(LOOKUP_LIMIT))
            .map_err(|e| e.to_string())?;
        Ok(Self {
            sock,
            id: 1,
            buf: vec![0; 1500],
        })
    }
}

impl Candidate for Floor {
    fn name(&self) -> &'static str {
        "floor"
    }

    fn resolve_a(&mut self, name: &str) -> Result<usize, String> {
        self.id = self.id.wrapping_add(1);
        let q = encode_query(self.id, name, Rtype::A).map_err(|e| e.to_string())?;
        self.sock.send(&q).map_err(|e| e.to_string())?;
        loop {
            let n = self.sock.recv(&mut self.buf).map_err(|e| e.to_string())?;
            match read_response(&self.buf[..n], self.id, name, Rtype::A) {
                Verdict::Answer(Ok(a)) => return Ok(a.records.len()),
                Verdict::Answer(Err((e, _))) => return Err(e.to_string()),
                Verdict::Truncated => return Err("truncated".into()),
                Verdict::Ignore(_) => {}
            }
        }
    }

    fn burst(&mut self, _: &[String], _: usize) -> Option<Result<(), String>> {
        None
    }
}

// ---------------------------------------------------------------------------
// Scenarios

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Cold lookups one at a time: latencies in µs per candidate.
fn cold_sequential(
    cands: &mut [Box<dyn Candidate>],
    run: u64,
    lookups: usize,
    rounds: usize,
) -> Result<Vec<Vec<f64>>, String> {
    let mut lat = vec![Vec::with_capacity(lookups * rounds); cands.len()];
    for round in 0..rounds {
        for k in 0..cands.len() {
            let c = (k + round) % cands.len();
            let cand = &mut cands[c];
            // One untimed lookup first: sockets, tasks and the server warm.
            cand.resolve_a(&format!("warm-{run}-{c}-{round}.wild.test"))
                .map_err(|e| format!("{}: {e}", cand.name()))?;
            for i in 0..lookups {
                let name = format!("s{run}-{c}-{round}-{i}.wild.test");
                let t = Instant::now();
                let n = cand
                    .resolve_a(&name)
                    .map_err(|e| format!("{}: {name}: {e}", cand.name()))?;
                lat[c].push(t.elapsed().as_secs_f64() * 1e6);
                if n != 1 {
                    return Err(format!("{}: {name}: {n} records, want 1", cand.name()));
                }
            }
        }
    }
    for l in &mut lat {
        l.sort_by(f64::total_cmp);
    }
    Ok(lat)
}

/// Cold lookups with `window` in flight: (lookups/s, client CPU µs per lookup)
/// per candidate, `None` for a candidate without the mode.
fn cold_burst(
    cands: &mut [Box<dyn Candidate>],
    run: u64,
    n: usize,
    window: usize,
) -> Result<Vec<Option<(f64, f64)>>, String> {
    let mut out = Vec::new();
    for (c, cand) in cands.iter_mut().enumerate() {
        let names: Vec<String> = (0..n)
            .map(|i| format!("b{run}-{c}-{i}.wild.test"))
            .collect();
        let (t, cpu) = (Instant::now(), self_cpu_time());
        match cand.burst(&names, window) {
            None => out.push(None),
            Some(Err(e)) => return Err(format!("{} (burst): {e}", cand.name())),
            Some(Ok(())) => {
                let (wall, cpu) = (t.elapsed(), self_cpu_time() - cpu);
                out.push(Some((
                    n as f64 / wall.as_secs_f64(),
                    cpu.as_secs_f64() * 1e6 / n as f64,
                )));
            }
        }
    }
    Ok(out)
}

/// A program of the per-process scenario.
struct Program {
    name: &'static str,
    argv: Vec<String>,
    skipped: Option<String>,
}

/// Runs `argv` to its end; (wall time, stdout).
fn time_process(argv: &[String]) -> Result<(Duration, String), String> {
    let (prog, args) = argv.split_first().ok_or("empty command")?;
    let t = Instant::now();
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {prog}: {e}"))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        let st = child.wait();
        let _ = tx.send((st, Instant::now(), out));
    });
    match rx.recv_timeout(PROCESS_LIMIT) {
        Ok((Ok(st), end, out)) if st.success() => Ok((end - t, out)),
        Ok((Ok(st), _, out)) => Err(format!("{prog} failed ({st}): {}", out.trim())),
        Ok((Err(e), _, _)) => Err(format!("{prog}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            Err(format!("{prog} did not finish within {PROCESS_LIMIT:?}"))
        }
    }
}

fn programs(server: SocketAddr, bun: Result<PathBuf, String>) -> Vec<Program> {
    let (ip, port) = (server.ip().to_string(), server.port().to_string());
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.to_path_buf()))
        .unwrap_or_default();
    let script = script_path();
    let have = |p: &str| {
        Command::new(p)
            .arg("-v")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let mut list = vec![Program {
        name: "netkit",
        argv: vec![
            exe_dir.join("netkit").display().to_string(),
            "dns".into(),
            "resolve4".into(),
            "--server".into(),
            server.to_string(),
            "a.test".into(),
        ],
        skipped: (!exe_dir.join("netkit").exists())
            .then(|| "netkit not built (cargo build --release -p netkit-cli)".into()),
    }];
    list.push(Program {
        name: "drill",
        argv: ["drill", "-p", &port, "a.test", &format!("@{ip}"), "A"]
            .map(String::from)
            .to_vec(),
        skipped: (!have("drill")).then(|| "drill not installed (ldnsutils)".into()),
    });
    list.push(Program {
        name: "dig",
        argv: [
            "dig",
            "-p",
            &port,
            &format!("@{ip}"),
            "a.test",
            "A",
            "+short",
        ]
        .map(String::from)
        .to_vec(),
        skipped: (!have("dig")).then(|| "dig not installed (bind9-dnsutils)".into()),
    });
    let (bun_argv, bun_skip) = match bun {
        Ok(b) => (
            vec![
                b.display().to_string(),
                script.display().to_string(),
                server.to_string(),
                "a.test".into(),
            ],
            None,
        ),
        Err(e) => (Vec::new(), Some(e)),
    };
    list.push(Program {
        name: "bun",
        argv: bun_argv,
        skipped: bun_skip,
    });
    list.push(Program {
        name: "node",
        argv: vec![
            "node".into(),
            script.display().to_string(),
            server.to_string(),
            "a.test".into(),
        ],
        skipped: (!have("node")).then(|| "node not installed".into()),
    });
    list
}

fn script_path() -> PathBuf {
    let rel = PathBuf::from("tests/bench/bun/resolve4.mjs");
    if rel.exists() {
        return rel;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/bun/resolve4.mjs"))
}

/// Per-process wall times in ms (sorted), alternating programs run by run.
fn per_process(progs: &mut [Program], runs: usize) -> Vec<Vec<f64>> {
    let mut times = vec![Vec::new(); progs.len()];
    for run in 0..runs {
        for k in 0..progs.len() {
            let i = (k + run) % progs.len();
            let p = &mut progs[i];
            if p.skipped.is_some() {
                continue;
            }
            match time_process(&p.argv) {
                Ok((t, out)) if out.contains("192.0.2.10") => times[i].push(t.as_secs_f64() * 1e3),
                Ok((_, out)) => {
                    p.skipped = Some(format!("unexpected output: {}", out.trim()));
                }
                Err(e) => p.skipped = Some(e),
            }
        }
    }
    for t in &mut times {
        t.sort_by(f64::total_cmp);
    }
    times
}

fn run(args: &Args) -> Result<(), String> {
    let lookups = args.lookups.unwrap_or(if args.quick { 100 } else { 500 });
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let burst = args.burst.unwrap_or(if args.quick { 512 } else { 4096 });
    let procs = args.procs.unwrap_or(if args.quick { 5 } else { 30 }).max(1);
    let nsd = netkit_tests::dns::Nsd::start()
        .ok_or("nsd is not installed (apt-get install nsd): it is the server of this benchmark")?;
    let server = nsd.addr;
    // Names differ from run to run (nsd has no cache, but keep every lookup cold
    // for any server).
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 1_000_000);
    println!("bench-dns: nsd on {server}, run {run}");

    let mut cands: Vec<Box<dyn Candidate>> = vec![
        Box::new(Blocking::new(server)?),
        Box::new(Smol {
            rt: netkit_smol::Runtime::with_resolver(netkit_resolver(server)),
        }),
        Box::new(Hickory::new(server)?),
        Box::new(Floor::new(server)?),
    ];
    if !args.only.is_empty() {
        cands.retain(|c| args.only.iter().any(|o| o == c.name()));
    }
    let names: Vec<&str> = cands.iter().map(|c| c.name()).collect();
    let reference = names.iter().position(|n| *n == "hickory");

    println!(
        "\n== cold resolve4, one at a time ({lookups} lookups x {rounds} rounds per candidate) =="
    );
    let lat = cold_sequential(&mut cands, run, lookups, rounds)?;
    let hickory_p50 = reference.map_or(f64::NAN, |i| percentile(&lat[i], 0.5));
    println!(
        "{:<18} {:>10} {:>10} {:>10}  {:>14}",
        "candidate", "p50 us", "p99 us", "max us", "p50 vs hickory"
    );
    let mut seq_json = Vec::new();
    for (name, l) in names.iter().zip(&lat) {
        let (p50, p99, max) = (percentile(l, 0.5), percentile(l, 0.99), percentile(l, 1.0));
        println!(
            "{name:<18} {p50:>10.1} {p99:>10.1} {max:>10.1}  {:>14}",
            ratio(p50, hickory_p50)
        );
        seq_json.push(
            json!({"candidate": name, "p50_us": p50, "p99_us": p99, "max_us": max, "n": l.len()}),
        );
    }

    println!(
        "\n== cold resolve4, {} in flight ({burst} lookups per candidate) ==",
        args.window
    );
    let bursts = cold_burst(&mut cands, run, burst, args.window)?;
    let hickory_rate = reference.and_then(|i| bursts[i]).map_or(f64::NAN, |b| b.0);
    println!(
        "{:<18} {:>12} {:>16}  {:>15}",
        "candidate", "lookups/s", "client CPU us/op", "rate vs hickory"
    );
    let mut burst_json = Vec::new();
    for (name, b) in names.iter().zip(&bursts) {
        if let Some((rate, cpu)) = b {
            println!(
                "{name:<18} {rate:>12.0} {cpu:>16.1}  {:>15}",
                ratio(*rate, hickory_rate)
            );
            burst_json.push(
                json!({"candidate": name, "lookups_per_sec": rate, "cpu_us_per_lookup": cpu}),
            );
        }
    }

    println!("\n== one process per lookup: resolve4 a.test ({procs} runs each) ==");
    let mut progs = if args.no_processes {
        Vec::new()
    } else {
        let bun = find_bun(args.bun.as_deref(), args.no_install).map(|(b, _, _)| b);
        programs(server, bun)
    };
    let times = per_process(&mut progs, procs);
    let drill_p50 = progs
        .iter()
        .position(|p| p.name == "drill")
        .map_or(f64::NAN, |i| percentile(&times[i], 0.5));
    println!(
        "{:<10} {:>10} {:>10}  {:>13}",
        "program", "p50 ms", "p90 ms", "p50 vs drill"
    );
    let mut proc_json = Vec::new();
    for (p, t) in progs.iter().zip(&times) {
        if let Some(why) = &p.skipped {
            println!("{:<10} skipped: {why}", p.name);
            proc_json.push(json!({"program": p.name, "skipped": why}));
            continue;
        }
        let (p50, p90) = (percentile(t, 0.5), percentile(t, 0.9));
        println!(
            "{:<10} {p50:>10.2} {p90:>10.2}  {:>13}",
            p.name,
            ratio(p50, drill_p50)
        );
        proc_json.push(json!({"program": p.name, "p50_ms": p50, "p90_ms": p90, "n": t.len()}));
    }

    println!("\n== in process (criterion medians from `cargo bench --bench dns`) ==");
    let cdir = target_dir().join("criterion");
    let get = |g: &str, id: &str| criterion_median(&cdir, g, id).unwrap_or(f64::NAN);
    let hit = [
        "netkit_cached_a",
        "netkit_lookup",
        "hickory_lookup_a",
        "hickory_lookup_ip",
        "getaddrinfo_localhost",
        "clock_read",
    ]
    .map(|id| (id, get("dns_cache_hit", id)));
    let dec = ["netkit_read_response", "hickory_from_vec"].map(|id| (id, get("dns_decode", id)));
    let mut crit_json = serde_json::Map::new();
    if hit.iter().chain(&dec).all(|(_, v)| v.is_nan()) {
        println!(
            "(no criterion results under {}; run cargo xtask bench dns)",
            cdir.display()
        );
    } else {
        for (id, ns) in hit.iter().chain(&dec) {
            println!("{id:<24} {ns:>10.1} ns");
            crit_json.insert((*id).into(), json!(ns));
        }
        let v = |id: &str| {
            hit.iter()
                .chain(&dec)
                .find(|(k, _)| *k == id)
                .map_or(f64::NAN, |x| x.1)
        };
        println!(
            "resolve4 hit: hickory lookup(A) / netkit cached  = {}",
            ratio(v("hickory_lookup_a"), v("netkit_cached_a"))
        );
        println!(
            "lookup hit:   hickory lookup_ip / netkit lookup  = {}",
            ratio(v("hickory_lookup_ip"), v("netkit_lookup"))
        );
        println!(
            "lookup hit:   getaddrinfo(localhost) / netkit    = {}",
            ratio(v("getaddrinfo_localhost"), v("netkit_lookup"))
        );
        println!(
            "(the netkit hits include one clock read: {:.1} ns)",
            v("clock_read")
        );
        println!(
            "decode:       netkit read_response / hickory     = {}",
            ratio(v("netkit_read_response"), v("hickory_from_vec"))
        );
    }

    let report = json!({
        "server": "nsd",
        "cold_sequential": seq_json,
        "cold_burst": {"window": args.window, "lookups": burst, "results": burst_json},
        "per_process": proc_json,
        "criterion_ns": crit_json,
    });
    if let Some(dir) = args.out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(
        &args.out,
        serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?,
    )
    .map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("\nwritten to {}", args.out.display());
    drop(nsd);
    Ok(())
}
