//! Child processes of the benchmark runners: bounded waits, killed on drop,
//! and finding (or installing) Bun.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cpu_set_of;

/// How long `npm install` of Bun may take.
const NPM_LIMIT: Duration = Duration::from_secs(300);

/// A child process with its stdout as a channel of lines and the tail of its stderr.
/// Killed (SIGKILL) and reaped on drop.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<VecDeque<String>>>,
}

impl Proc {
    /// Spawns `cmd` with piped stdout/stderr, optionally pinned to `cpu`.
    pub fn spawn(
        name: &str,
        mut cmd: Command,
        cpu: Option<usize>,
        stdin: bool,
    ) -> io::Result<Self> {
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() });
        let set = cpu.map(cpu_set_of);
        // SAFETY: the closure runs between fork and exec and only makes two
        // async-signal-safe syscalls on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                crate::die_with_parent()?;
                if let Some(set) = &set {
                    crate::set_affinity(set)?;
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(err);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
                        t.push_back(String::from_utf8_lossy(&buf).trim_end().to_string());
                        if t.len() > 20 {
                            t.pop_front();
                        }
                    }
                }
            }
        });
        Ok(Self {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            stderr,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_tail(&self) -> String {
        let t = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        t.iter()
            .rev()
            .take(5)
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Why the process is no good: its exit status (if it exited) and stderr tail.
    pub fn why(&mut self, what: &str) -> String {
        // Give a dying process a moment so its status and stderr are in.
        std::thread::sleep(Duration::from_millis(50));
        let mut s = format!("{}: {what}", self.name);
        if let Some(st) = self.exited() {
            let _ = write!(s, " (exited: {st})");
        }
        let tail = self.stderr_tail();
        if !tail.is_empty() {
            let _ = write!(s, "; stderr: {tail}");
        }
        s
    }

    /// The next stdout line, waiting at most `limit`.
    pub fn next_line(&mut self, limit: Duration) -> Result<String, String> {
        match self.lines.recv_timeout(limit) {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => Err(self.why(&format!("no output within {limit:?}"))),
            Err(RecvTimeoutError::Disconnected) => Err(self.why("closed its stdout")),
        }
    }

    /// Closes the child's stdin (the idle load generator's signal to finish).
    pub fn close_stdin(&mut self) {
        drop(self.stdin.take());
    }

    /// Waits up to `limit` for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if self.exited().is_none() {
            let _ = self.child.kill();
            // SIGKILL cannot be ignored; reaping is immediate unless the process is
            // stuck in the kernel, so bound the wait anyway.
            let _ = self.wait_exit(Duration::from_secs(5));
        }
    }
}

/// Runs a command to completion with a time limit; returns (status, stdout+stderr).
pub fn run_bounded(cmd: Command, limit: Duration) -> Result<(ExitStatus, String), String> {
    let what = format!("{cmd:?}");
    let mut p = Proc::spawn("command", cmd, None, false)
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let cmd = what;
    let end = Instant::now() + limit;
    let mut out = String::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match p.lines.recv_timeout(left.min(Duration::from_millis(200))) {
            Ok(l) => {
                out.push_str(&l);
                out.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if Instant::now() >= end {
            return Err(format!("{cmd} did not finish within {limit:?}"));
        }
    }
    let st = p
        .wait_exit(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        )
        .ok_or_else(|| format!("{cmd} did not exit within {limit:?}"))?;
    out.push_str(&p.stderr_tail());
    Ok((st, out))
}

/// The npm package carrying the Bun binary for this machine.
pub fn bun_package() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("@oven/bun-linux-x64"),
        "aarch64" => Some("@oven/bun-linux-aarch64"),
        _ => None,
    }
}

pub fn bun_version(bun: &Path) -> Result<String, String> {
    let mut c = Command::new(bun);
    c.arg("--version");
    match run_bounded(c, Duration::from_secs(30))? {
        (st, out) if st.success() => Ok(out.lines().next().unwrap_or("?").trim().to_string()),
        (st, out) => Err(format!(
            "{} --version failed ({st}): {}",
            bun.display(),
            out.trim()
        )),
    }
}

/// The target directory this runner was built into (it lives in
/// `TARGET/release/`), so its work files follow `CARGO_TARGET_DIR`; `target`
/// when that cannot be told.
pub fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Finds Bun (TARGET/bun, installing it there with npm if missing); returns the
/// executable, its version and a note on where it came from.
pub fn find_bun(
    explicit: Option<&Path>,
    no_install: bool,
) -> Result<(PathBuf, String, String), String> {
    if let Some(b) = explicit {
        let v = bun_version(b)?;
        return Ok((b.to_path_buf(), v, String::new()));
    }
    let pkg = bun_package().ok_or("no Bun npm package for this CPU architecture")?;
    let prefix = target_dir().join("bun");
    let bin_of = |root: &Path| root.join("node_modules").join(pkg).join("bin/bun");
    let local = bin_of(&prefix);
    let mut install_error = None;
    if !local.exists() && !no_install {
        eprintln!(
            "bench: installing Bun: npm install --prefix {} {pkg}",
            prefix.display()
        );
        let mut c = Command::new("npm");
        c.args(["install", "--prefix"]).arg(&prefix).args([
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            pkg,
        ]);
        match run_bounded(c, NPM_LIMIT) {
            Ok((st, _)) if st.success() => {}
            Ok((st, out)) => {
                install_error = Some(format!("npm install failed ({st}): {}", out.trim()))
            }
            Err(e) => install_error = Some(e),
        }
    }
    if local.exists() {
        let v = bun_version(&local)?;
        return Ok((local, v, String::new()));
    }
    // The package layout may differ from the expected one: look for bin/bun.
    if let Ok(rd) = std::fs::read_dir(prefix.join("node_modules/@oven")) {
        for e in rd.flatten() {
            let b = e.path().join("bin/bun");
            if b.exists() {
                if let Ok(v) = bun_version(&b) {
                    return Ok((b, v, String::new()));
                }
            }
        }
    }
    let fallback = bin_of(Path::new("/tmp/bun"));
    if fallback.exists() {
        let v = bun_version(&fallback)?;
        let why = install_error.unwrap_or_else(|| "not installed under target/bun".into());
        return Ok((fallback, v, format!("; from /tmp/bun because {why}")));
    }
    Err(install_error.unwrap_or_else(|| {
        format!("Bun not found under target/bun and --no-install given ({pkg})")
    }))
}
