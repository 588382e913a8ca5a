//! Child processes (real peers and the `netkit` binary), stopped on drop, with
//! bounded waits for their output and readiness.
//!
//! # Process groups and stopping
//!
//! [`Peer::spawn`] starts the child in a process group of its own (its pgid is
//! its pid), so that whatever it forks (nginx workers, nsd's server processes)
//! can be stopped with it. [`Peer::stop`], and dropping a [`Peer`], send SIGTERM
//! to the whole group, wait up to [`STOP_GRACE`] for the child and every other
//! member to exit, SIGKILL what is left of the group, and reap the child: no
//! peer process outlives its test holding a port. [`Peer::signal`] still
//! signals the direct child only (the `netkit` binary's own signal handling is
//! under test there); [`Peer::signal_group`] signals the group.
//!
//! Being in a group of its own, a peer no longer gets the terminal's Ctrl-C;
//! instead it is tied to the test process: it is spawned from one thread that
//! lives as long as the process, with `PR_SET_PDEATHSIG` set to SIGTERM, so when
//! the test process dies without dropping its peers (Ctrl-C, a CI timeout's
//! SIGKILL), each peer gets SIGTERM (and nginx or nsd stop their own children
//! on it).
//!
//! # Output
//!
//! stdout is read line by line ([`Peer::next_line`], [`Peer::wait_line`]) and
//! stderr collected ([`Peer::stderr`]) by two reader threads. Once
//! [`Peer::wait_exit`] or [`Peer::stop`] has returned an exit status, both
//! readers have reached end of file (waited for within the time left, and at
//! least [`OUTPUT_GRACE`]), so `stderr()` holds everything the child wrote. The
//! one exception: another live process of the group (a grandchild) may hold the
//! pipes open after the child exited; `wait_exit` then gives the readers at
//! most 200 ms more instead of waiting for an end of file that may not come.
//!
//! # Readiness
//!
//! A peer is ready when it answers, not when it prints something: [`wait_tcp`]
//! connects until a connection is accepted, [`wait_udp_dns`] sends a minimal DNS
//! query until an answer with its ID comes back, and [`Peer::wait_ready`] polls
//! any such probe while failing early, with the peer's stderr, if the peer
//! exited. Waiting for a stdout line ([`Peer::wait_line`]) stays for peers that
//! announce themselves (`openssl s_server`'s `ACCEPT`, `netkit listen`).
//!
//! # Missing programs
//!
//! [`have`] tells whether a peer program is installed. Outside CI a missing one
//! skips the test, loudly; when the `CI` environment variable is set (`.ci/run`
//! sets it, after installing every peer), a missing one fails the test, naming
//! the Debian package to install.

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long [`Peer::stop`] (and drop) waits after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(3);

/// The least time [`Peer::wait_exit`] gives the output readers to reach end of
/// file once the child has exited, even when its limit is (nearly) spent.
pub const OUTPUT_GRACE: Duration = Duration::from_secs(1);

/// A running child process in its own process group; the group is stopped (and
/// the child reaped) on drop. See the module docs.
#[derive(Debug)]
pub struct Peer {
    name: String,
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    /// Disconnected once both reader threads have ended (each holds a sender).
    readers: mpsc::Receiver<()>,
}

impl Peer {
    /// Spawns `cmd` in a new process group with piped stdin, stdout and stderr.
    pub fn spawn(name: &str, mut cmd: Command) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = spawn_tied(cmd)?;
        let (tx, rx) = mpsc::channel();
        let (done, readers) = mpsc::channel::<()>();
        let out = child.stdout.take().expect("piped stdout");
        let done_out = done.clone();
        std::thread::spawn(move || {
            let _done = done_out;
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let err = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let _done = done;
            let mut r = BufReader::new(err);
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            }
        });
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            lines: rx,
            stderr,
            readers,
        })
    }

    /// Waits (at most `limit`) for the next stdout line.
    pub fn next_line(&self, limit: Duration) -> Option<String> {
        self.lines.recv_timeout(limit).ok()
    }

    /// Waits (at most `limit`) for a stdout line satisfying `pred`.
    pub fn wait_line(&self, limit: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let end = Instant::now() + limit;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            if pred(&line) {
                return Some(line);
            }
        }
    }

    /// Polls `probe` (every 50 ms, at most `limit`) until it says the peer is
    /// ready, e.g. `|| wait_tcp(addr, Duration::ZERO)`.
    ///
    /// # Panics
    ///
    /// When the peer exits first, at once, with its stderr; when `limit` passes,
    /// with its stderr too.
    #[track_caller]
    pub fn wait_ready(&self, limit: Duration, probe: impl Fn() -> bool) {
        let end = Instant::now() + limit;
        loop {
            if probe() {
                return;
            }
            if self.exited() {
                self.wait_readers(Instant::now() + OUTPUT_GRACE);
                panic!(
                    "{} exited before it was ready; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if Instant::now() >= end {
                panic!(
                    "{} not ready after {limit:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What the child wrote to stderr so far (all of it once [`Self::wait_exit`]
    /// or [`Self::stop`] returned a status).
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The child's pid (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Takes the child's stdin (to write to it or close it).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.as_mut().and_then(|c| c.stdin.take())
    }

    /// Sends a signal to the direct child only, not to the rest of its process
    /// group (see [`Self::signal_group`]).
    pub fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            kill(c.id() as libc::pid_t, sig);
        }
    }

    /// Sends a signal to the child's whole process group (the child and all it
    /// forked, unless they left the group).
    pub fn signal_group(&self, sig: i32) {
        if let Some(c) = &self.child {
            kill(-(c.id() as libc::pid_t), sig);
        }
    }

    /// Waits (at most `limit`) for the child to exit; `None` if it did not. With
    /// a status, the stdout and stderr readers have also finished (waited for in
    /// the time left, at least [`OUTPUT_GRACE`]), so [`Self::stderr`] and the
    /// stdout lines are complete, unless another process of the group still
    /// holds the pipes.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        let child = self.child.as_mut()?;
        let status = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let pgid = child.id() as libc::pid_t;
        // Another live process of the group may hold the pipes open: then do
        // not wait for an end of file that may never come.
        let until = if group_alive(pgid) {
            end.min(Instant::now() + Duration::from_millis(200))
        } else {
            end.max(Instant::now() + OUTPUT_GRACE)
        };
        self.wait_readers(until);
        Some(status)
    }

    /// Stops the child's process group: SIGTERM to the group, up to
    /// [`STOP_GRACE`] for the child and every other member to exit, then
    /// SIGKILL to what is left; reaps the child and waits (bounded) for its
    /// output readers. Returns the child's exit status; calling it again (or
    /// dropping the peer afterwards) returns the same status and sends nothing.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let pgid = child.id() as libc::pid_t;
        let exited = |c: &mut Child| matches!(c.try_wait(), Ok(Some(_)));
        // An unreaped child keeps the group id ours; once reaped, signal only a
        // group that still has live members.
        if !exited(child) || group_alive(pgid) {
            kill(-pgid, libc::SIGTERM);
            let end = Instant::now() + STOP_GRACE;
            loop {
                if exited(child) && !group_alive(pgid) {
                    break;
                }
                if Instant::now() >= end {
                    kill(-pgid, libc::SIGKILL);
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let status = child.wait().ok();
        self.wait_readers(Instant::now() + OUTPUT_GRACE);
        status
    }

    /// The name given at spawn.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the child has exited (a zombie or gone), without reaping it.
    fn exited(&self) -> bool {
        let Some(c) = &self.child else { return true };
        match std::fs::read_to_string(format!("/proc/{}/stat", c.id())) {
            Ok(stat) => proc_stat(&stat).is_none_or(|(s, _)| s == 'Z' || s == 'X'),
            Err(_) => true,
        }
    }

    /// Waits until both output readers have ended, or until `until`.
    fn wait_readers(&self, until: Instant) {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.readers.recv_timeout(left) {
                Ok(()) => continue,
                Err(RecvTimeoutError::Disconnected | RecvTimeoutError::Timeout) => return,
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Spawns `cmd` so that the child gets SIGTERM when this process dies: from a
/// thread that lives as long as the process (`PR_SET_PDEATHSIG` fires when the
/// thread that forked the child ends, and test threads end with their test,
/// while a peer may be shared between tests), with the death signal set in the
/// child before `exec`.
fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    type Job = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("peer-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("start the peer-spawner thread");
        tx
    });
    let parent = std::process::id() as libc::pid_t;
    #[allow(unsafe_code, reason = "pre_exec and prctl(2) have no safe wrappers")]
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (prctl, getppid), touching no memory
    // shared with the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before the line above: then no signal
            // comes, so do not start at all.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the test process is gone"));
            }
            Ok(())
        });
    }
    let (reply, result) = mpsc::channel();
    spawner
        .send((cmd, reply))
        .map_err(|_| std::io::Error::other("the peer-spawner thread is gone"))?;
    result
        .recv()
        .map_err(|_| std::io::Error::other("the peer-spawner thread is gone"))?
}

/// kill(2); whether it succeeded (errno says why not).
#[allow(unsafe_code, reason = "kill(2) has no safe wrapper in std")]
fn kill(pid: libc::pid_t, sig: i32) -> bool {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// The state letter (`R`, `S`, `Z`...) and the process group of a
/// `/proc/PID/stat` line.
fn proc_stat(stat: &str) -> Option<(char, libc::pid_t)> {
    // `PID (COMM) STATE PPID PGRP ...`; COMM may hold spaces and parentheses.
    let mut f = stat.rsplit_once(')')?.1.split_whitespace();
    let state = f.next()?.chars().next()?;
    let pgrp = f.nth(1)?.parse().ok()?;
    Some((state, pgrp))
}

/// Whether process group `pgid` has a member that is not a zombie.
fn group_alive(pgid: libc::pid_t) -> bool {
    if !kill(-pgid, 0) && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
        return false;
    }
    // Zombies are members too until reaped (and an init that does not reap
    // leaves them forever): look for a live one.
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return true;
    };
    rd.flatten().any(|e| {
        if !e
            .file_name()
            .to_string_lossy()
            .bytes()
            .all(|b| b.is_ascii_digit())
        {
            return false;
        }
        std::fs::read_to_string(e.path().join("stat"))
            .ok()
            .and_then(|s| proc_stat(&s))
            .is_some_and(|(state, pgrp)| pgrp == pgid && !matches!(state, 'Z' | 'X'))
    })
}

/// Whether a TCP connection to `addr` is accepted, trying (every 20 ms) for at
/// most `limit`; one attempt when `limit` is zero. The probe connection is closed
/// at once: a peer that serves one connection at a time (`openssl s_server`)
/// sees it as a client that left.
pub fn wait_tcp(addr: SocketAddr, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let attempt = left.clamp(Duration::from_millis(100), Duration::from_secs(1));
        if TcpStream::connect_timeout(&addr, attempt).is_ok() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a DNS server answers on UDP `addr`: sends a minimal query (`. IN
/// SOA`, RD clear) every 50 ms for at most `limit` (once when `limit` is zero)
/// and returns true on the first response (QR set) carrying the query's ID,
/// whatever its RCODE (a REFUSED answer shows the server is up too).
pub fn wait_udp_dns(addr: SocketAddr, limit: Duration) -> bool {
    let bind: SocketAddr = if addr.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(sock) = UdpSocket::bind(bind) else {
        return false;
    };
    if sock.connect(addr).is_err()
        || sock
            .set_read_timeout(Some(Duration::from_millis(50)))
            .is_err()
    {
        return false;
    }
    let id = query_id();
    let query = dns_probe_query(id);
    let end = Instant::now() + limit;
    let mut buf = [0u8; 512];
    loop {
        let sent = Instant::now();
        let _ = sock.send(&query);
        // Read until this round's 50 ms are up (a refused port errors at once).
        while sent.elapsed() < Duration::from_millis(50) {
            match sock.recv(&mut buf) {
                Ok(n) if n >= 12 && buf[..2] == id.to_be_bytes() && buf[2] & 0x80 != 0 => {
                    return true;
                }
                Ok(_) => {}
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(50).saturating_sub(sent.elapsed()))
                }
            }
        }
        if Instant::now() >= end {
            return false;
        }
    }
}

/// A query ID that differs between calls and processes.
fn query_id() -> u16 {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let x = nanos ^ std::process::id().rotate_left(16) ^ n.wrapping_mul(0x9e37_79b9);
    (x ^ (x >> 16)) as u16
}

/// The 17-byte DNS query [`wait_udp_dns`] sends: header with `id`, no flags
/// (RD clear), one question: the root name, type SOA (6), class IN (1).
pub fn dns_probe_query(id: u16) -> [u8; 17] {
    let [a, b] = id.to_be_bytes();
    [
        a, b, // ID
        0, 0, // QR=0 OPCODE=0 AA=0 TC=0 RD=0, RA=0 Z=0 RCODE=0
        0, 1, // QDCOUNT
        0, 0, // ANCOUNT
        0, 0, // NSCOUNT
        0, 0, // ARCOUNT
        0, // QNAME: the root
        0, 6, // QTYPE SOA
        0, 1, // QCLASS IN
    ]
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh directory under the system temp dir.
    pub fn new(prefix: &str) -> std::io::Result<Self> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Whether tests run under CI: `CI` set to anything but empty, `0` or `false`.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false"))
}

/// The Debian package that provides `tool`.
fn package_of(tool: &str) -> &str {
    match tool {
        "dig" | "nslookup" => "bind9-dnsutils",
        "kdig" => "knot-dnsutils",
        "nsd" | "nsd-control" => "nsd",
        "s3s-fs" => "(cargo install s3s-fs --features binary) s3s-fs",
        "ss" | "ip" => "iproute2",
        other => other,
    }
}

/// Whether `tool` runs (`tool version_arg`).
///
/// When it does not: under CI (see [`in_ci`]; `.ci/run` installs every tool the
/// tests use, so a missing one is a bug there) this panics, failing the test
/// with the package to install; elsewhere it says on stderr that the test is
/// SKIPPED and returns false, so a developer machine without the tool sees why
/// a test did nothing.
#[track_caller]
pub fn have(tool: &str, version_arg: &str) -> bool {
    let ok = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        let pkg = package_of(tool);
        if in_ci() {
            panic!(
                "`{tool}` is not installed, and CI is set: a peer test cannot be skipped \
                 in CI (apt-get install {pkg}; .ci/run should have)"
            );
        }
        eprintln!("SKIPPED: `{tool}` is not installed (apt-get install {pkg}; .ci/run does)");
    }
    ok
}

/// Runs `cmd` with `stdin` as its input and returns (exit code, stdout, stderr).
/// A child still running after `limit` is killed and fails the test: a hang is a
/// bug, not a slow test.
pub fn run_bounded(cmd: &mut Command, stdin: &[u8], limit: Duration) -> (i32, Vec<u8>, String) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("piped stdin");
    let data = stdin.to_vec();
    let w = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let collect = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let err = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let end = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = w.join();
    (
        status.code().unwrap_or(-1),
        out.join().unwrap_or_default(),
        String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    )
}

/// `openssl s_server -rev` (answers each line reversed) on a free port with
/// `cert`/`key` and `extra` arguments; returns once it accepts.
pub fn openssl_s_server(cert: &Path, key: &Path, extra: &[&str], limit: Duration) -> (Peer, u16) {
    let port = crate::free_port();
    let mut cmd = Command::new("openssl");
    cmd.args(["s_server", "-accept", &port.to_string(), "-rev", "-cert"])
        .arg(cert)
        .arg("-key")
        .arg(key)
        .args(extra);
    let p = Peer::spawn("openssl s_server", cmd).expect("spawn s_server");
    p.wait_line(limit, |l| l.contains("ACCEPT"))
        .unwrap_or_else(|| panic!("s_server did not start: {}", p.stderr()));
    (p, port)
}

/// A `socat` TLS terminator with `id` on a free port, forwarding the
/// plaintext to `127.0.0.1:to` (an HTTPS proxy in front of a plain one, or a
/// proxy tunnel's far end).
pub fn socat_tls(id: &crate::pki::Identity, to: u16, limit: Duration) -> (Peer, u16) {
    let port = crate::free_port();
    let listen = format!(
        "OPENSSL-LISTEN:{port},cert={},key={},verify=0,reuseaddr,fork",
        id.cert.display(),
        id.key.display()
    );
    let mut cmd = Command::new("socat");
    cmd.args(["-d", "-d", &listen, &format!("TCP:127.0.0.1:{to}")]);
    let p = Peer::spawn("socat", cmd).expect("spawn socat");
    // socat logs "listening on" to stderr once it is bound.
    let end = Instant::now() + limit;
    while !p.stderr().contains("listening on") {
        assert!(Instant::now() < end, "socat did not start: {}", p.stderr());
        std::thread::sleep(Duration::from_millis(10));
    }
    (p, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    fn sh(script: &str) -> Peer {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        Peer::spawn("sh", cmd).expect("spawn sh")
    }

    /// Whether `pid` is gone or a zombie.
    fn dead(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
            matches!(proc_stat(&s), Some(('Z' | 'X', _)) | None)
        })
    }

    fn wait_dead(pid: u32) -> bool {
        let end = Instant::now() + LIMIT;
        while Instant::now() < end {
            if dead(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn reads_state_and_group_from_proc_stat() {
        let line = "4242 (a) b (c)) S 1 4240 4240 0 -1 4194560 100 0 0 0";
        assert_eq!(proc_stat(line), Some(('S', 4240)));
        assert_eq!(proc_stat("garbage"), None);
    }

    #[test]
    fn drop_stops_the_whole_process_group() {
        let p = sh("sleep 60 & echo $!; wait");
        let grandchild: u32 = p.next_line(LIMIT).expect("pid line").parse().expect("pid");
        assert!(!dead(grandchild));
        let t = Instant::now();
        drop(p);
        assert!(t.elapsed() < STOP_GRACE, "took {:?}", t.elapsed());
        assert!(
            wait_dead(grandchild),
            "sleep {grandchild} outlived its peer"
        );
    }

    /// The helper half of `peers_die_with_the_test_process`: run in a child test
    /// process, it starts a peer, prints the peer's pid and waits to be killed.
    #[test]
    fn peer_owner_helper() {
        if std::env::var_os("NETKIT_PEER_OWNER_HELPER").is_none() {
            return;
        }
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let p = Peer::spawn("sleep", cmd).expect("spawn sleep");
        println!("peer pid {}", p.pid());
        std::thread::sleep(LIMIT);
    }

    #[test]
    fn peers_die_with_the_test_process() {
        let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
        cmd.args(["--exact", "peer::tests::peer_owner_helper", "--nocapture"])
            .env("NETKIT_PEER_OWNER_HELPER", "1");
        let mut owner = Peer::spawn("test process", cmd).expect("spawn helper");
        let line = owner
            .wait_line(LIMIT, |l| l.starts_with("peer pid "))
            .unwrap_or_else(|| panic!("no pid line: {}", owner.stderr()));
        let pid: u32 = line["peer pid ".len()..].trim().parse().expect("pid");
        assert!(!dead(pid));
        // Killed outright: no destructor runs in the helper.
        owner.signal(libc::SIGKILL);
        assert!(owner.wait_exit(LIMIT).is_some());
        assert!(
            wait_dead(pid),
            "peer {pid} outlived the process that started it"
        );
    }

    #[test]
    fn stop_kills_a_group_that_ignores_sigterm() {
        let mut p = sh("trap '' TERM; sleep 60 & echo $!; wait");
        let grandchild: u32 = p.next_line(LIMIT).expect("pid line").parse().expect("pid");
        let t = Instant::now();
        let st = p.stop().expect("a status");
        assert!(t.elapsed() >= STOP_GRACE, "took {:?}", t.elapsed());
        assert!(!st.success());
        assert!(
            wait_dead(grandchild),
            "sleep {grandchild} outlived its peer"
        );
        // Again: the same status, nothing sent.
        assert_eq!(p.stop(), Some(st));
    }

    #[test]
    fn signal_reaches_only_the_child_and_signal_group_all() {
        let mut p = sh("sleep 60 & echo $!; wait");
        let grandchild: u32 = p.next_line(LIMIT).expect("pid line").parse().expect("pid");
        p.signal(libc::SIGTERM);
        assert!(p.wait_exit(LIMIT).is_some());
        assert!(!dead(grandchild), "signal() reached the grandchild");
        p.signal_group(libc::SIGTERM);
        assert!(wait_dead(grandchild));
    }

    #[test]
    fn stderr_is_complete_once_wait_exit_returns() {
        for i in 0..20 {
            let mut p = sh(&format!("echo out {i}; echo 'alert {i}' >&2; exit 3"));
            let st = p.wait_exit(LIMIT).expect("exits");
            assert_eq!(st.code(), Some(3));
            assert_eq!(p.stderr(), format!("alert {i}\n"));
            assert_eq!(p.next_line(Duration::ZERO), Some(format!("out {i}")));
        }
    }

    #[test]
    fn wait_exit_is_not_held_by_a_grandchild_keeping_the_pipes() {
        let mut p = sh("sleep 60 & echo started >&2; exit 0");
        let t = Instant::now();
        assert!(p.wait_exit(LIMIT).is_some());
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "took {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn wait_ready_fails_early_with_stderr() {
        let p = sh("echo 'bad config' >&2; exit 1");
        let t = Instant::now();
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            p.wait_ready(LIMIT, || false)
        }))
        .expect_err("wait_ready panics");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "took {:?}",
            t.elapsed()
        );
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("exited before it was ready") && msg.contains("bad config"),
            "{msg}"
        );
    }

    #[test]
    fn wait_tcp_probes_a_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(wait_tcp(addr, LIMIT));
        drop(l);
        let t = Instant::now();
        assert!(!wait_tcp(addr, Duration::from_millis(200)));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn dns_probe_query_is_dot_in_soa() {
        let q = dns_probe_query(0xabcd);
        assert_eq!(q.len(), 17);
        assert_eq!(&q[..4], &[0xab, 0xcd, 0, 0]);
        assert_eq!(&q[4..6], &[0, 1]);
        assert_eq!(&q[12..], &[0, 0, 6, 0, 1]);
    }

    #[test]
    fn wait_udp_dns_needs_a_response_with_the_id() {
        let srv = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = srv.local_addr().unwrap();
        let responder = std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            // The first query is echoed as is (not a response), the second one
            // answered with another ID, the third one answered properly.
            for round in 0..3 {
                let (n, from) = srv.recv_from(&mut buf).unwrap();
                let mut reply = buf[..n].to_vec();
                if round >= 1 {
                    reply[2] |= 0x80;
                }
                if round == 1 {
                    reply[0] ^= 0xff;
                }
                srv.send_to(&reply, from).unwrap();
            }
        });
        assert!(wait_udp_dns(addr, LIMIT));
        responder.join().unwrap();
        let t = Instant::now();
        assert!(!wait_udp_dns(addr, Duration::from_millis(200)));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn have_skips_outside_ci_and_fails_in_ci() {
        let r = std::panic::catch_unwind(|| have("netkit-no-such-tool", "--version"));
        if in_ci() {
            let msg = r.expect_err("have() panics in CI");
            let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("apt-get install netkit-no-such-tool"), "{msg}");
        } else {
            assert_eq!(r.ok(), Some(false));
        }
        assert!(have("true", "--version"));
    }

    #[test]
    fn free_tcp_udp_port_binds_both() {
        // The port is free when returned; a concurrent test binding port 0 may
        // still take it before we bind it again, hence a few tries.
        let both = (0..5).any(|_| {
            let port = crate::free_tcp_udp_port();
            let t = std::net::TcpListener::bind(("127.0.0.1", port));
            let u = UdpSocket::bind(("127.0.0.1", port));
            t.is_ok() && u.is_ok()
        });
        assert!(both, "free_tcp_udp_port gave no port bindable with both");
        assert_ne!(crate::free_udp_port(), 0);
    }
}
