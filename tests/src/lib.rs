//! Test support for netkit: real peers started on loopback ports picked at run
//! time, killed on drop; the `netkit` binary; in-process servers on both drivers
//! that record their handler events; and process measurements (fds, RSS).
//!
//! Every later issue adds its peer here (nginx, tinyproxy, nsd, openssl...)
//! instead of writing its own start-up code.

pub mod fuzz;
pub mod peer;
pub mod pki;
pub mod servers;
pub mod tls_client;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;

/// A free TCP port on 127.0.0.1 (bound then released; peers that take a port
/// argument race only with other processes, which loopback tests accept).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Path of a workspace binary built by cargo (`netkit`, ...), building it if needed.
pub fn bin(name: &str) -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let path = target.join(profile).join(name);
    if !path.exists() {
        let mut cmd = std::process::Command::new(env!("CARGO"));
        cmd.current_dir(&root)
            .args(["build", "--quiet", "--bin", name]);
        if profile == "release" {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --bin {name} failed");
    }
    path
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Open file descriptors of this process.
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Resident set size of a process in bytes (`VmRSS` of /proc/PID/status).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Parses the `listening on ADDR` line the CLI prints first.
pub fn parse_listening(line: &str) -> Option<SocketAddr> {
    line.trim().strip_prefix("listening on ")?.parse().ok()
}
