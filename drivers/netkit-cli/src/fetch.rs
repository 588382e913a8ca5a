//! `netkit fetch`: HTTP/1.1 requests on the blocking loop's fetch client.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use netkit_blocking::EventLoop;
use netkit_blocking::fetch::Upload;
use netkit_fetch::{Body, ClientConfig, Delivery, Event, Head, Request, Url};
use netkit_tls::ClientOptions;

use crate::Failure;
use crate::listen_connect::{read_pem, tls_failure};

/// `netkit fetch` options (shared/CLI.md).
#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    /// URLs to fetch; bodies are written in this order.
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
    /// Request method (default GET; POST when a body is given).
    #[arg(short = 'X', long = "method", value_name = "M")]
    method: Option<String>,
    /// A request header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = header_arg)]
    headers: Vec<(String, String)>,
    /// Request body (framed with Content-Length).
    #[arg(
        short = 'd',
        long = "data",
        value_name = "STRING",
        conflicts_with = "data_file"
    )]
    data: Option<String>,
    /// Request body from a file.
    #[arg(long = "data-file", value_name = "PATH")]
    data_file: Option<PathBuf>,
    /// Write the bodies there instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<PathBuf>,
    /// Write the status line and headers as received, a blank line, then the body.
    #[arg(short = 'i', long = "include")]
    include: bool,
    /// Use this proxy (`http://[user:pass@]host:port`), overriding the environment.
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
    /// Like NO_PROXY, overriding it; `*` disables proxies.
    #[arg(long, value_name = "LIST")]
    noproxy: Option<String>,
    /// Send the requests over this Unix domain socket.
    #[arg(long, value_name = "PATH")]
    unix: Option<String>,
    /// Resolve names with this DNS server (repeatable); the hosts file is still read first.
    #[arg(long = "dns-server", value_name = "IP[:PORT]", value_parser = crate::dns::server_arg)]
    dns_servers: Vec<std::net::SocketAddr>,
    /// Trusted CA certificates (PEM), replacing the built-in roots.
    #[arg(long, value_name = "PATH")]
    cacert: Option<PathBuf>,
    /// Do not verify the server's certificate.
    #[arg(short = 'k', long)]
    insecure: bool,
    /// Follow at most N redirects; 0 returns the 3xx response itself.
    #[arg(long = "max-redirects", value_name = "N", default_value_t = 20)]
    max_redirects: u32,
    /// Limit for each whole request, in seconds (fractions allowed).
    #[arg(long, value_name = "SECS", value_parser = secs_arg)]
    timeout: Option<Duration>,
    /// At most N requests in flight; connections are pooled and reused.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    parallel: u32,
    /// curl-style trace on stderr.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Exit 22 when the final status is 400 or more.
    #[arg(long)]
    fail: bool,
}

/// `Name: value`, refusing what would split the head.
fn header_arg(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not `Name: value`"))?;
    let (name, value) = (name.trim(), value.trim_start());
    netkit_http1::check_header(name, value.as_bytes()).map_err(|e| e.to_string())?;
    Ok((name.to_owned(), value.to_owned()))
}

fn secs_arg(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(v).map_err(|e| format!("{s:?}: {e}"))
}

/// Downloads over this size show a progress bar when stderr is a terminal.
const PROGRESS_OVER: u64 = 1 << 20;

/// A progress bar for one download, shown once it passes 1 MiB (or at once
/// when `Content-Length` says it will), only when stderr is a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    got: u64,
    total: Option<u64>,
    enabled: bool,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Self {
            bar: None,
            got: 0,
            total: None,
            enabled,
        }
    }

    fn head(&mut self, head: &Head) {
        self.got = 0;
        if !self.enabled {
            return;
        }
        self.total = head
            .headers()
            .get_str("content-length")
            .and_then(|v| v.trim().parse().ok());
    }

    fn data(&mut self, n: usize) {
        self.got += n as u64;
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.total.unwrap_or(self.got).max(self.got) > PROGRESS_OVER {
            let bar = match self.total {
                Some(t) => indicatif::ProgressBar::new(t),
                None => indicatif::ProgressBar::new_spinner(),
            };
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            let template = if self.total.is_some() {
                "{bytes}/{total_bytes} [{bar:30}] {bytes_per_sec} {eta}"
            } else {
                "{spinner} {bytes} {bytes_per_sec}"
            };
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            self.bar = Some(bar);
        }
        if let Some(b) = &self.bar {
            b.set_position(self.got);
        }
    }

    fn end(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// A URL checked and waiting for its turn: an s3:// request signed up
/// front (`true`: `--data-file` streams as its body), or an http(s) URL (an
/// index into the distinct parsed URLs).
enum Planned {
    Ready(Box<Request>, bool),
    Http(usize),
}

/// SigV4's hash of the file at `p`, read in pieces (never held whole).
fn file_sha256(p: &std::path::Path) -> std::io::Result<String> {
    let mut h = netkit_s3::PayloadHasher::new();
    std::io::copy(&mut std::fs::File::open(p)?, &mut h)?;
    Ok(h.finish())
}

/// One URL's progress toward the output.
#[derive(Default)]
struct Slot {
    head: Option<Head>,
    head_written: bool,
    body: Vec<u8>,
    done: bool,
}

impl Slot {
    /// Its head is out and nothing of its body is held back: its next
    /// bytes go straight to the output (when it is the current URL).
    fn streams(&self) -> bool {
        self.head_written && self.body.is_empty()
    }
}

pub(crate) fn run(args: FetchArgs) -> Result<ExitCode, Failure> {
    let verbose = args.verbose
        || std::env::var("NETKIT_VERBOSE_FETCH").is_ok_and(|v| v.eq_ignore_ascii_case("curl"));
    // `-d` is sent from memory; `--data-file` is streamed from the file
    // (an Upload per request, read as the connection takes it). To s3://,
    // whose signature covers the payload's hash, the file is read once
    // more before, in pieces, for that hash.
    let cannot_read = |p: &std::path::Path, e: std::io::Error| {
        Failure(format!(
            "{}: cannot read {}: {e}",
            errno_name(&e),
            p.display()
        ))
    };
    let upload = |p: &std::path::Path| Upload::file(p).map_err(|e| cannot_read(p, e));
    let mut file_hash: Option<String> = None;
    let has_body = args.data.is_some() || args.data_file.is_some();
    let body = args.data.clone().map(String::into_bytes);
    let method = args
        .method
        .clone()
        .unwrap_or_else(|| if has_body { "POST" } else { "GET" }.to_owned());
    let ca = args.cacert.as_deref().map(read_pem).transpose()?;
    let tls = netkit_blocking::tls::client_config(&ClientOptions {
        ca,
        reject_unauthorized: !args.insecure,
        ..Default::default()
    })
    .map_err(tls_failure)?;
    if args.unix.is_some() && args.proxy.is_some() {
        return Err(Failure(
            "proxy: a Unix socket and a proxy cannot be combined".into(),
        ));
    }
    let mut config = ClientConfig::from_env(Arc::new(tls), |k| std::env::var(k).ok())?;
    config.proxies = config
        .proxies
        .with_overrides(args.proxy.as_deref(), args.noproxy.as_deref())?;

    // Every URL is checked before the first request goes out, but an
    // http(s) request is built only when it starts: a script naming one URL
    // thousands of times parses it once, and holds one request at a time
    // per slot in flight, not thousands. (`--data-file` is opened here once
    // to report an unreadable file up front, then again per request.)
    let user_headers: Vec<(String, Vec<u8>)> = args
        .headers
        .iter()
        .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
        .collect();
    let mut planned: Vec<Planned> = Vec::with_capacity(args.urls.len());
    let mut distinct: Vec<Url> = Vec::new();
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    if body.is_none() {
        if let Some(p) = &args.data_file {
            drop(upload(p)?);
        }
    }
    let mut s3: Option<netkit_s3::S3Config> = None;
    for u in &args.urls {
        if u.starts_with("s3://") {
            // An object operation, signed (SigV4) with the environment's
            // credentials; PUT by default when there is a body.
            let s3 = match &s3 {
                Some(c) => c,
                None => s3.insert(
                    netkit_s3::S3Config::from_env(|k| std::env::var(k).ok())
                        .map_err(|e| Failure(e.to_string()))?,
                ),
            };
            let m = args
                .method
                .as_deref()
                .unwrap_or(if has_body { "PUT" } else { "GET" });
            // Only a PUT carries a body to S3.
            let file = args
                .data_file
                .as_ref()
                .filter(|_| body.is_none() && m.eq_ignore_ascii_case("PUT"));
            let r = match file {
                Some(p) => {
                    let hash = match &file_hash {
                        Some(h) => h,
                        None => file_hash.insert(file_sha256(p).map_err(|e| cannot_read(p, e))?),
                    };
                    s3.put_streamed(u, hash, wall_clock())
                }
                None => s3.request(m, u, body.clone(), wall_clock()),
            };
            let mut r = r.map_err(|e| Failure(e.to_string()))?;
            // The user's headers go unsigned, after the signed ones.
            r.headers.extend(user_headers.iter().cloned());
            planned.push(Planned::Ready(Box::new(r), file.is_some()));
        } else {
            let k = match seen.get(u.as_str()) {
                Some(&k) => k,
                None => {
                    let url = Url::parse(u)
                        .map_err(|e| Failure(format!("http: invalid URL {u:?}: {e}")))?;
                    distinct.push(url);
                    seen.insert(u, distinct.len() - 1);
                    distinct.len() - 1
                }
            };
            planned.push(Planned::Http(k));
        }
    }
    drop(seen);
    let make = |p: Planned| -> Result<(Request, Option<Upload>), Failure> {
        let (mut r, up) = match p {
            Planned::Ready(r, streamed) => {
                let up = match &args.data_file {
                    Some(p) if streamed => Some(upload(p)?),
                    _ => None,
                };
                (*r, up)
            }
            Planned::Http(k) => {
                let mut r = Request::new(&method, distinct[k].clone());
                r.headers.clone_from(&user_headers);
                r.body = body.clone().map(Body::Bytes);
                let up = match (&body, &args.data_file) {
                    (None, Some(p)) => Some(upload(p)?),
                    _ => None,
                };
                (r, up)
            }
        };
        r.timeout = args.timeout;
        r.max_redirects = args.max_redirects;
        r.unix.clone_from(&args.unix);
        r.verbose = verbose;
        Ok((r, up))
    };

    let mut lp = EventLoop::new()?;
    if !args.dns_servers.is_empty() {
        *lp.resolver() = crate::dns::resolver(&args.dns_servers, None, None);
    }
    let client = lp.http_client(config)?;
    let out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(std::fs::File::create(p).map_err(
            |e| {
                Failure(format!(
                    "{}: cannot create {}: {e}",
                    errno_name(&e),
                    p.display()
                ))
            },
        )?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let shared = Rc::new(RefCell::new(Output {
        out,
        direct: None,
        error: None,
        progress: Progress::new(std::io::IsTerminal::is_terminal(&std::io::stderr())),
    }));
    let one = args.parallel == 1;
    let events: Rc<RefCell<VecDeque<(usize, Event)>>> = Rc::default();
    let mut slots: Vec<Slot> = planned.iter().map(|_| Slot::default()).collect();
    let mut pending = planned.into_iter().enumerate();
    let (mut in_flight, mut current) = (0usize, 0usize);
    let mut batch = VecDeque::new();
    let result = loop {
        while in_flight < args.parallel as usize {
            let Some((i, p)) = pending.next() else {
                break;
            };
            let (r, up) = make(p)?;
            let (q, sh) = (events.clone(), shared.clone());
            let sink = move |d: Delivery<'_>| match d {
                // The URL being written: its bytes go straight from the
                // loop's read buffer to the output.
                Delivery::Data { data, .. } if sh.borrow().direct == Some(i) => {
                    sh.borrow_mut().write_direct(data, one);
                }
                d => q.borrow_mut().push_back((i, d.into_event())),
            };
            lp.fetch_lent(client, r, up, sink)?;
            in_flight += 1;
        }
        let mut o = shared.borrow_mut();
        if let Some(e) = o.error.take() {
            return Err(e.into());
        }
        // Swapped with a spare queue, so neither allocates per turn.
        std::mem::swap(&mut *events.borrow_mut(), &mut batch);
        let progressed = !batch.is_empty();
        for (i, ev) in batch.drain(..) {
            match ev {
                // The loop feeds uploads itself; sinks never see this.
                Event::BodyWanted { .. } => {}
                Event::Trace { kind, line, .. } => {
                    if line.is_empty() {
                        eprintln!("{kind}");
                    } else {
                        eprintln!("{kind} {line}");
                    }
                }
                Event::Head { response, .. } => {
                    if one {
                        o.progress.head(&response.head);
                    }
                    slots[i].head = Some(response.head);
                }
                Event::Data { data, .. } => {
                    if one {
                        o.progress.data(data.len());
                    }
                    let s = &mut slots[i];
                    if i == current && s.streams() {
                        o.out.write_all(&data)?;
                    } else {
                        s.body.extend_from_slice(&data);
                        if i == current {
                            if let Some(code) =
                                advance(&mut slots, &mut current, &mut *o.out, &args)?
                            {
                                o.out.flush()?;
                                return Ok(code);
                            }
                        }
                    }
                }
                Event::End { .. } => {
                    o.progress.end();
                    slots[i].done = true;
                    in_flight -= 1;
                }
                Event::Failed { error, .. } => {
                    o.progress.end();
                    o.direct = None;
                    advance(&mut slots, &mut current, &mut *o.out, &args)?;
                    o.out.flush()?;
                    return Err(Failure(error.to_string()));
                }
            }
        }
        if let Some(code) = advance(&mut slots, &mut current, &mut *o.out, &args)? {
            break code;
        }
        if current == slots.len() {
            break ExitCode::SUCCESS;
        }
        // Nothing of the current URL is held back (no event is queued:
        // the batch was all of them): its next bytes may go straight out.
        o.direct = slots
            .get(current)
            .filter(|s| s.streams() && !s.done)
            .map(|_| current);
        drop(o);
        // Events may have freed a slot for the next URL: start it first.
        if !progressed {
            lp.turn(None)?;
        }
    };
    let mut o = shared.borrow_mut();
    if let Some(e) = o.error.take() {
        return Err(e.into());
    }
    o.out.flush()?;
    Ok(result)
}

/// The output as the run loop and the requests' sinks share it.
struct Output {
    out: Box<dyn Write>,
    /// The URL whose head is written and whose held body is flushed: its
    /// lent body bytes are written as they come, never copied or queued.
    direct: Option<usize>,
    /// A write that failed in a sink, for the run loop to report.
    error: Option<std::io::Error>,
    progress: Progress,
}

impl Output {
    fn write_direct(&mut self, data: &[u8], progress: bool) {
        if self.error.is_some() {
            return;
        }
        match self.out.write_all(data) {
            Ok(()) if progress => self.progress.data(data.len()),
            Ok(()) => {}
            Err(e) => {
                self.error = Some(e);
                self.direct = None;
            }
        }
    }
}

/// Writes what can be written, in URL order: each head (with `-i`), then
/// its body as it arrives. `Some(22)` when `--fail` meets a status ≥ 400.
fn advance(
    slots: &mut [Slot],
    current: &mut usize,
    out: &mut dyn Write,
    args: &FetchArgs,
) -> Result<Option<ExitCode>, Failure> {
    while let Some(s) = slots.get_mut(*current) {
        let Some(head) = &s.head else {
            return Ok(None);
        };
        if !s.head_written {
            if args.fail && head.status() >= 400 {
                out.flush()?;
                eprintln!(
                    "netkit: error: http: the server answered {} {}",
                    head.status(),
                    head.reason()
                );
                return Ok(Some(ExitCode::from(22)));
            }
            if args.include {
                out.write_all(head.raw())?;
            }
            s.head_written = true;
        }
        out.write_all(&s.body)?;
        s.body.clear();
        if !s.done {
            return Ok(None);
        }
        // Written whole: free its head and buffer (thousands of URLs would
        // otherwise keep every head to the end).
        *s = Slot {
            head_written: true,
            done: true,
            ..Slot::default()
        };
        *current += 1;
    }
    Ok(None)
}

/// The wall clock as S3 signing takes it: the time since the Unix epoch.
fn wall_clock() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// node's errno name for a file error.
fn errno_name(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "ENOENT",
        std::io::ErrorKind::PermissionDenied => "EACCES",
        std::io::ErrorKind::IsADirectory => "EISDIR",
        _ => "EIO",
    }
}
