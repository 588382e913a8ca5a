//! `bench-http`: the end-to-end HTTP benchmark behind `cargo xtask bench http`.
//!
//! Starts nginx (one worker) and tinyproxy on loopback, then, every client a
//! whole process of its own (start-up included, as the issue measured):
//!
//! 1. **One connection**: N sequential GETs of `/hello` (`return 200`):
//!    the `netkit` CLI (N URLs), netkit's blocking loop as a library, ureq,
//!    reqwest, curl (`-K` with N URLs) and Bun's fetch. Requests/s, client
//!    CPU per request, connections opened (nginx's `$connection`).
//! 2. **64 in flight**: the same with 64 requests in flight
//!    (`--parallel 64`, `curl --parallel --parallel-max 64`, 64 tasks or
//!    threads, 64 concurrent fetches in Bun).
//!
//!    Both run twice: on the machine as it is, then with every CPU kept
//!    awake by a nice-19 spinner (`Awake`), since on a VM a halted
//!    vCPU's wake-up, not the client, bounds sequential exchanges.
//! 3. **Bulk**: a 256 MiB file over http and https to /dev/null: MB/s, client
//!    CPU per MB, peak RSS (wait4's `ru_maxrss`): netkit CLI, curl, Bun.
//! 4. **CONNECT tunnels**: https GETs through tinyproxy, one tunnel each
//!    (`Connection: close` to the origin): netkit CLI against reqwest.
//! 5. **In process** (criterion, `benches/http.rs`, run first by xtask):
//!    medians and ratios.
//!
//! The same binary is the library clients: `bench-http --client KIND`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use netkit_bench::proc::{find_bun, target_dir};
use netkit_bench::{Cost, criterion_median, ratio, run_measured};
use netkit_tests::http::{Nginx, Tinyproxy};
use netkit_tests::pki::Pki;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(300);

#[derive(Debug, Parser)]
#[command(about = "netkit's end-to-end HTTP benchmark (cargo xtask bench http)")]
struct Args {
    /// Smoke run: fewer requests, one round, a 32 MiB bulk file.
    #[arg(long)]
    quick: bool,
    /// Runs per candidate (the median is reported; default 3, 1 with --quick).
    #[arg(long)]
    rounds: Option<usize>,
    /// Bun to use (default: TARGET/bun, installed with npm when missing).
    #[arg(long)]
    bun: Option<PathBuf>,
    /// Do not install Bun; skip it when missing.
    #[arg(long)]
    no_bun_install: bool,
    /// Where to write the JSON report.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these scenarios (comma-separated: one_connection,
    /// in_flight_64, bulk, tunnels, criterion); default all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Child mode: be this library client (netkit-lib, reqwest, ureq).
    #[arg(long)]
    client: Option<String>,
    /// Child mode: the URL.
    #[arg(long)]
    url: Option<String>,
    /// Child mode: requests.
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Child mode: requests in flight.
    #[arg(long, default_value_t = 1)]
    conc: usize,
    /// Child mode: a proxy URL.
    #[arg(long)]
    proxy: Option<String>,
    /// Child mode: trusted CA (PEM).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Child mode: a new connection per request.
    #[arg(long)]
    no_reuse: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let r = match &args.client {
        Some(kind) => client(kind, &args),
        None => run(&args),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-http: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------
// Library clients (child mode)

fn client(kind: &str, a: &Args) -> Result<(), String> {
    let url = a.url.clone().ok_or("--url is required")?;
    match kind {
        "netkit-lib" => netkit_lib(a, &url),
        "reqwest" => reqwest_client(a, &url),
        "ureq" => ureq_client(a, &url),
        other => Err(format!("unknown client {other}")),
    }
}

fn netkit_lib(a: &Args, url: &str) -> Result<(), String> {
    use netkit_fetch::{ClientConfig, Event, Request, Url};
    use std::cell::Cell;
    use std::rc::Rc;
    let ca = match &a.ca {
        Some(p) => Some(netkit_tls::Pem::new(
            p.display().to_string(),
            std::fs::read(p).map_err(|e| e.to_string())?,
        )),
        None => None,
    };
    let tls = netkit_sys::tls::client_config(&netkit_tls::ClientOptions {
        ca,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let mut cfg = ClientConfig::new(Arc::new(tls));
    if let Some(p) = &a.proxy {
        cfg.proxies = netkit_fetch::proxy::ProxyConfig::none()
            .with_overrides(Some(p), None)
            .map_err(|e| e.to_string())?;
    }
    let mut lp = netkit_blocking::EventLoop::new().map_err(|e| e.to_string())?;
    let client = lp.http_client(cfg).map_err(|e| e.to_string())?;
    let url = Url::parse(url).map_err(|e| e.to_string())?;
    let done = Rc::new(Cell::new(0usize));
    let failed = Rc::new(Cell::new(false));
    let mut started = 0;
    while done.get() < a.n {
        while started < a.n && started - done.get() < a.conc {
            let mut r = Request::get(url.clone());
            if a.no_reuse {
                r.headers.push(("Connection".into(), b"close".to_vec()));
            }
            let (d, f) = (done.clone(), failed.clone());
            lp.fetch(client, r, move |e| match e {
                Event::End { .. } => d.set(d.get() + 1),
                Event::Failed { error, .. } => {
                    eprintln!("netkit-lib: {error}");
                    f.set(true);
                    d.set(d.get() + 1);
                }
                _ => {}
            })
            .map_err(|e| e.to_string())?;
            started += 1;
        }
        lp.turn(None).map_err(|e| e.to_string())?;
    }
    if failed.get() {
        return Err("a request failed".into());
    }
    Ok(())
}

fn reqwest_client(a: &Args, url: &str) -> Result<(), String> {
    let rt = if a.conc > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
    .map_err(|e| e.to_string())?;
    let mut b = reqwest::Client::builder();
    if let Some(p) = &a.proxy {
        b = b.proxy(reqwest::Proxy::all(p).map_err(|e| e.to_string())?);
    } else {
        b = b.no_proxy();
    }
    if let Some(ca) = &a.ca {
        let pem = std::fs::read(ca).map_err(|e| e.to_string())?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?;
        b = b.add_root_certificate(cert);
    }
    if a.no_reuse {
        b = b.pool_max_idle_per_host(0);
    }
    let c = b.build().map_err(|e| e.to_string())?;
    let url = url.to_owned();
    let (n, conc) = (a.n, a.conc);
    rt.block_on(async move {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..conc {
            let (c, url, next) = (c.clone(), url.clone(), next.clone());
            tasks.push(tokio::spawn(async move {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                    let r = c.get(&url).send().await.map_err(|e| e.to_string())?;
                    r.bytes().await.map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            }));
        }
        for t in tasks {
            t.await.map_err(|e| e.to_string())??;
        }
        Ok(())
    })
}

fn ureq_client(a: &Args, url: &str) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_idle_connections_per_host(a.conc.max(1))
        .build()
        .into();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = a.n;
    let run =
        |agent: ureq::Agent, next: Arc<std::sync::atomic::AtomicUsize>| -> Result<(), String> {
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let mut r = agent.get(url).call().map_err(|e| e.to_string())?;
                r.body_mut().read_to_vec().map_err(|e| e.to_string())?;
            }
            Ok(())
        };
    if a.conc <= 1 {
        return run(agent, next);
    }
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..a.conc)
            .map(|_| {
                let (agent, next) = (agent.clone(), next.clone());
                s.spawn(move || run(agent, next))
            })
            .collect();
        hs.into_iter()
            .try_for_each(|h| h.join().map_err(|_| "a ureq thread panicked".to_string())?)
    })
}

// ---------------------------------------------------------------------------
// The runner

/// One measured candidate.
struct Row {
    name: String,
    cost: Option<Cost>,
    /// Connections nginx saw for the candidate's requests.
    conns: Option<usize>,
    note: String,
}

/// Runs every candidate `rounds` times, the rounds interleaved across
/// the candidates and each round starting one candidate later (A B C, B C A,
/// ...), so a drift in the machine lands on every candidate alike and none
/// always runs first or after the same neighbour; each row is the median
/// round by wall time (or the first error). `once(r)` runs round `r`.
fn interleaved<F: FnMut(usize) -> Result<Cost, String>>(
    rounds: usize,
    mut cands: Vec<(&str, F)>,
) -> Vec<Row> {
    let count = cands.len();
    let mut costs: Vec<Result<Vec<Cost>, String>> = vec![Ok(Vec::new()); count];
    for r in 0..rounds {
        for k in (0..count).map(|i| (i + r) % count) {
            let Ok(done) = &mut costs[k] else { continue };
            match (cands[k].1)(r) {
                Ok(cost) => {
                    eprintln!(
                        "bench-http: round {}/{rounds}: {:<18} wall {:>9.1} ms, CPU {:>9.1} ms",
                        r + 1,
                        cands[k].0,
                        cost.wall.as_secs_f64() * 1e3,
                        cost.cpu.as_secs_f64() * 1e3
                    );
                    done.push(cost);
                }
                Err(e) => costs[k] = Err(e),
            }
        }
    }
    cands
        .iter()
        .zip(costs)
        .map(|((name, _), c)| {
            match c.and_then(|c| median_cost(c).ok_or_else(|| "no rounds".into())) {
                Ok(cost) => Row {
                    name: (*name).into(),
                    cost: Some(cost),
                    conns: None,
                    note: String::new(),
                },
                Err(note) => Row {
                    name: (*name).into(),
                    cost: None,
                    conns: None,
                    note,
                },
            }
        })
        .collect()
}

/// Spinning processes at nice 19, one per CPU, for as long as this lives.
/// On this VM a sequential exchange is bound by how fast a halted vCPU
/// wakes (tens of µs, changing from minute to minute), not by the client:
/// with a lowest-priority spinner on each CPU no vCPU halts, and the
/// spinners give way to a woken client or server at once. The rows then
/// compare what the clients themselves cost. (`chrt --idle` spinners were
/// tried first and did not help here: a CPU running only SCHED_IDLE work
/// still woke slowly, 40 µs of CPU per request against 7 µs at nice 19.)
struct Awake(Vec<std::process::Child>);

impl Awake {
    fn start() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from);
        Self(
            (0..cpus)
                .filter_map(|_| {
                    Command::new("nice")
                        .args(["-n", "19", "sh", "-c", "while :; do :; done"])
                        .spawn()
                        .ok()
                })
                .collect(),
        )
    }
}

impl Drop for Awake {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn median_cost(mut costs: Vec<Cost>) -> Option<Cost> {
    costs.sort_by_key(|c| c.wall);
    costs.get(costs.len() / 2).copied()
}

fn run(args: &Args) -> Result<(), String> {
    let rounds = args.rounds.unwrap_or(if args.quick { 1 } else { 5 });
    let n_seq = if args.quick { 500 } else { 5000 };
    let n_par = if args.quick { 2000 } else { 20_000 };
    let bulk_mib: usize = if args.quick { 32 } else { 256 };
    let n_tunnels = if args.quick { 50 } else { 300 };
    let pki = Pki::new();
    let ng = Nginx::start(&pki).ok_or("nginx is not installed")?;
    let tp = Tinyproxy::start(None).ok_or("tinyproxy is not installed")?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let netkit = target_dir().join("release/netkit");
    let work = target_dir().join("bench/http-work");
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let bun = match find_bun(args.bun.as_deref(), args.no_bun_install) {
        Ok((b, v, note)) => {
            println!("bun {v} {note}");
            Some(b)
        }
        Err(e) => {
            println!("bun: skipped ({e})");
            None
        }
    };
    let bun_script = netkit_tests::workspace_root().join("tests/bench/bun/fetch.mjs");
    let base = format!("http://{}", ng.http);
    let ca = pki.ca.display().to_string();
    let mut report = serde_json::Map::new();
    let wanted = |s: &str| args.only.is_empty() || args.only.iter().any(|o| o == s);

    // 1 and 2: many small requests, each on the machine as it is and then
    // with its CPUs kept awake (see `Awake`).
    for (scenario, n, conc, awake) in [
        ("one_connection", n_seq, 1usize, false),
        ("one_connection_awake", n_seq, 1usize, true),
        ("in_flight_64", n_par, 64, false),
        ("in_flight_64_awake", n_par, 64, true),
    ] {
        if !wanted(scenario.trim_end_matches("_awake")) {
            continue;
        }
        let _awake = awake.then(Awake::start);
        let regime = if awake {
            ", CPUs kept awake by nice-19 spinners"
        } else {
            ""
        };
        println!("\n== {scenario}: {n} GETs of /hello, {conc} in flight{regime} ==");
        let url_for = |tag: &str| format!("{base}/hello?{scenario}-{tag}");
        type Make<'a> = Box<dyn FnMut(&str) -> Command + 'a>;
        let mut candidates: Vec<(&str, Make<'_>)> = vec![
            (
                "netkit (CLI)",
                Box::new(|tag: &str| {
                    let mut c = Command::new(&netkit);
                    c.arg("fetch").arg("-o").arg("/dev/null");
                    c.arg("--parallel").arg(conc.to_string());
                    let u = url_for(tag);
                    c.args(std::iter::repeat_n(u, n));
                    c.env("NETKIT_MAX_HTTP_REQUESTS", "256");
                    c
                }),
            ),
            (
                "netkit (library)",
                Box::new(|tag: &str| lib(&me, "netkit-lib", &url_for(tag), n, conc)),
            ),
            (
                "ureq",
                Box::new(|tag: &str| lib(&me, "ureq", &url_for(tag), n, conc)),
            ),
            (
                "reqwest",
                Box::new(|tag: &str| lib(&me, "reqwest", &url_for(tag), n, conc)),
            ),
            (
                "curl",
                Box::new(|tag: &str| {
                    let cfg = work.join(format!("curl-{scenario}-{tag}.cfg"));
                    let mut f = std::fs::File::create(&cfg).expect("curl config");
                    let u = url_for(tag);
                    for _ in 0..n {
                        let _ = writeln!(f, "url = \"{u}\"\noutput = \"/dev/null\"");
                    }
                    let mut c = Command::new("curl");
                    c.args(["-s", "--no-progress-meter", "-K"]).arg(&cfg);
                    if conc > 1 {
                        c.args(["--parallel", "--parallel-max", &conc.to_string()]);
                    }
                    c
                }),
            ),
        ];
        if let Some(b) = &bun {
            let (b, script) = (b.clone(), bun_script.clone());
            candidates.push((
                "bun",
                Box::new(move |tag: &str| {
                    let mut c = Command::new(&b);
                    c.arg(&script)
                        .arg(url_for(tag))
                        .arg(n.to_string())
                        .arg(conc.to_string());
                    c
                }),
            ));
        }
        // The connection count is read from round 0's tag.
        let tags: Vec<String> = candidates
            .iter()
            .map(|(name, _)| name.chars().filter(char::is_ascii_alphanumeric).collect())
            .collect();
        let runs = candidates
            .into_iter()
            .zip(&tags)
            .map(|((name, mut make), tag)| {
                (name, move |r: usize| {
                    let mut c = make(&format!("{tag}-{r}"));
                    c.stdout(Stdio::null()).stderr(Stdio::inherit());
                    run_measured(&mut c, LIMIT)
                })
            })
            .collect();
        let mut rows = interleaved(rounds, runs);
        for (row, tag) in rows.iter_mut().zip(&tags) {
            if row.cost.is_some() {
                row.conns = Some(ng.connections_for(&format!("/hello?{scenario}-{tag}-0")));
            }
        }
        report.insert(scenario.into(), print_requests(&rows, n));
    }

    // 3: bulk.
    if wanted("bulk") {
        let bulk = ng.root.join("nogzip/bulk.bin");
        {
            let f = std::fs::File::create(&bulk).map_err(|e| e.to_string())?;
            let chunk = netkit_tests::http::text_file(1 << 20);
            let mut w = std::io::BufWriter::new(f);
            for _ in 0..bulk_mib {
                w.write_all(&chunk).map_err(|e| e.to_string())?;
            }
        }
        for (scheme, url) in [
            ("http", format!("{base}/nogzip/bulk.bin")),
            (
                "https",
                format!("https://localhost:{}/nogzip/bulk.bin", ng.https.port()),
            ),
        ] {
            println!("\n== bulk {scheme}: {bulk_mib} MiB to /dev/null ==");
            let mut cands: Vec<(&str, Command)> = Vec::new();
            let mut c = Command::new(&netkit);
            c.args(["fetch", "-o", "/dev/null", "--cacert", &ca, &url]);
            cands.push(("netkit (CLI)", c));
            let mut c = Command::new("curl");
            c.args(["-s", "-o", "/dev/null", "--cacert", &ca, &url]);
            cands.push(("curl", c));
            if let Some(b) = &bun {
                let mut c = Command::new(b);
                c.arg(&bun_script).arg(&url).arg("1").arg("1");
                c.env("NODE_EXTRA_CA_CERTS", &ca);
                cands.push(("bun", c));
            }
            let runs = cands
                .into_iter()
                .map(|(name, cmd)| {
                    let work = &work;
                    (name, move |_: usize| run_peak(&cmd, work))
                })
                .collect();
            let rows = interleaved(rounds, runs);
            report.insert(format!("bulk_{scheme}"), print_bulk(&rows, bulk_mib));
        }
        let _ = std::fs::remove_file(&bulk);
    }

    // 4: CONNECT tunnels.
    if wanted("tunnels") {
        println!(
            "\n== CONNECT tunnels through tinyproxy: {n_tunnels} https GETs, one tunnel each =="
        );
        let proxy = format!("http://{}", tp.addr);
        let turl = format!("https://localhost:{}/hello", ng.https.port());
        let mut c = Command::new(&netkit);
        c.args([
            "fetch",
            "-o",
            "/dev/null",
            "--cacert",
            &ca,
            "--proxy",
            &proxy,
            "-H",
            "Connection: close",
        ]);
        c.args(std::iter::repeat_n(turl.clone(), n_tunnels));
        let mut cands = vec![("netkit (CLI)", c)];
        let mut c = lib(&me, "netkit-lib", &turl, n_tunnels, 1);
        c.args(["--proxy", &proxy, "--ca", &ca, "--no-reuse"]);
        cands.push(("netkit (library)", c));
        let mut c = lib(&me, "reqwest", &turl, n_tunnels, 1);
        c.args(["--proxy", &proxy, "--ca", &ca, "--no-reuse"]);
        cands.push(("reqwest", c));
        let runs = cands
            .into_iter()
            .map(|(name, mut cmd)| {
                cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
                (name, move |_: usize| run_measured(&mut cmd, LIMIT))
            })
            .collect();
        let rows = interleaved(rounds, runs);
        report.insert("connect_tunnels".into(), print_requests(&rows, n_tunnels));
    }

    // 5: criterion.
    if wanted("criterion") {
        println!("\n== in process (criterion medians from `cargo bench --bench http`) ==");
        let cdir = target_dir().join("criterion");
        let get = |g: &str, id: &str| criterion_median(&cdir, g, id).unwrap_or(f64::NAN);
        let pairs = [
            (
                "head: httparse / netkit decoder",
                get("http_head", "httparse"),
                get("http_head", "netkit_decoder"),
            ),
            (
                "exchange: hyper / netkit",
                get("http_hyper", "hyper_client"),
                get("http_hyper", "netkit_exchange"),
            ),
            (
                "head in 1-7 byte pieces / whole",
                get("http_chunked", "head_pieces_1_to_7"),
                get("http_chunked", "head_whole"),
            ),
            (
                "head in pieces through a Vec / whole",
                get("http_chunked", "head_pieces_1_to_7_vec"),
                get("http_chunked", "head_whole"),
            ),
            (
                "chunked 16 KiB in pieces / Content-Length in pieces",
                get("http_chunked", "pieces_1_to_7"),
                get("http_chunked", "length_pieces_1_to_7"),
            ),
            (
                "chunked 16 KiB in pieces / whole",
                get("http_chunked", "pieces_1_to_7"),
                get("http_chunked", "whole"),
            ),
        ];
        let mut crit = serde_json::Map::new();
        for (what, a, b) in pairs {
            println!("  {what:<55} {a:>10.1} ns / {b:>10.1} ns = {}", ratio(a, b));
            crit.insert(what.into(), json!({"a_ns": a, "b_ns": b}));
        }
        report.insert("criterion".into(), Value::Object(crit));
    }

    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir().join("bench/http.json"));
    if let Some(d) = out.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    std::fs::write(
        &out,
        serde_json::to_string_pretty(&Value::Object(report)).unwrap_or_default(),
    )
    .map_err(|e| e.to_string())?;
    println!("\nwrote {}", out.display());
    Ok(())
}

/// Runs `cmd` measured, its peak RSS from GNU time when installed: a child
/// of this (large) process inherits its resident set until exec, which
/// wait4's `ru_maxrss` then reports, so a small `time` process in between
/// gives the real figure.
fn run_peak(cmd: &Command, work: &std::path::Path) -> Result<Cost, String> {
    let time = std::path::Path::new("/usr/bin/time");
    let file = work.join("peak-rss");
    let mut c = if time.exists() {
        let mut c = Command::new(time);
        c.args(["-f", "%M", "-o"]).arg(&file).arg(cmd.get_program());
        c
    } else {
        Command::new(cmd.get_program())
    };
    c.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.stdout(Stdio::null()).stderr(Stdio::inherit());
    let mut cost = run_measured(&mut c, LIMIT)?;
    if time.exists() {
        cost.max_rss_kib = std::fs::read_to_string(&file)
            .ok()
            .and_then(|t| t.trim().lines().last()?.trim().parse().ok())
            .unwrap_or(0);
    }
    Ok(cost)
}

fn lib(me: &std::path::Path, kind: &str, url: &str, n: usize, conc: usize) -> Command {
    let mut c = Command::new(me);
    c.args([
        "--client",
        kind,
        "--url",
        url,
        "--n",
        &n.to_string(),
        "--conc",
        &conc.to_string(),
    ]);
    c
}

fn print_requests(rows: &[Row], n: usize) -> Value {
    let rate = |r: &Row| r.cost.map_or(f64::NAN, |c| n as f64 / c.wall.as_secs_f64());
    let netkit = rows.first().map_or(f64::NAN, rate);
    println!(
        "  {:<18} {:>10} {:>14} {:>8} {:>16}",
        "client", "req/s", "CPU/req (µs)", "conns", "netkit CLI is"
    );
    let mut out = Vec::new();
    for r in rows {
        match r.cost {
            Some(c) => {
                let cpu = c.cpu.as_secs_f64() * 1e6 / n as f64;
                println!(
                    "  {:<18} {:>10.0} {:>14.1} {:>8} {:>16}",
                    r.name,
                    rate(r),
                    cpu,
                    r.conns.map_or("-".into(), |c| c.to_string()),
                    ratio(netkit, rate(r)),
                );
                out.push(
                    json!({"client": r.name, "req_per_s": rate(r), "cpu_us_per_req": cpu,
                    "connections": r.conns, "wall_s": c.wall.as_secs_f64()}),
                );
            }
            None => {
                println!("  {:<18} failed: {}", r.name, r.note);
                out.push(json!({"client": r.name, "error": r.note}));
            }
        }
    }
    Value::Array(out)
}

fn print_bulk(rows: &[Row], mib: usize) -> Value {
    let mbps = |r: &Row| {
        r.cost.map_or(f64::NAN, |c| {
            (mib as f64 * 1.048_576) / c.wall.as_secs_f64()
        })
    };
    println!(
        "  {:<18} {:>10} {:>14} {:>12} {:>12}",
        "client", "MB/s", "CPU/MB (ms)", "peak RSS", "netkit is"
    );
    let netkit = rows.first().map_or(f64::NAN, mbps);
    let mut out = Vec::new();
    for r in rows {
        match r.cost {
            Some(c) => {
                let cpu = c.cpu.as_secs_f64() * 1e3 / (mib as f64 * 1.048_576);
                println!(
                    "  {:<18} {:>10.0} {:>14.3} {:>9} KiB {:>12}",
                    r.name,
                    mbps(r),
                    cpu,
                    c.max_rss_kib,
                    ratio(netkit, mbps(r))
                );
                out.push(
                    json!({"client": r.name, "mb_per_s": mbps(r), "cpu_ms_per_mb": cpu,
                    "peak_rss_kib": c.max_rss_kib}),
                );
            }
            None => {
                println!("  {:<18} failed: {}", r.name, r.note);
                out.push(json!({"client": r.name, "error": r.note}));
            }
        }
    }
    Value::Array(out)
}
