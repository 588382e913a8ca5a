//! Test support for netkit: real peers started on loopback ports picked at run
//! time, killed on drop; the `netkit` binary; in-process servers on both drivers
//! that record their handler events; and process measurements (fds, RSS).
//!
//! Every later issue adds its peer here (nginx, tinyproxy, nsd, openssl...)
//! instead of writing its own start-up code.

pub mod dns;
pub mod fuzz;
pub mod http;
pub mod peer;
pub mod pki;
pub mod servers;
pub mod tls_client;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// A free TCP port on 127.0.0.1 (bound then released; peers that take a port
/// argument race only with other processes, which loopback tests accept).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// A free UDP port on 127.0.0.1 (bound then released, as [`free_port`]).
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("bind udp 127.0.0.1:0")
}

/// A TCP port on 127.0.0.1 where nothing listens, for as long as this
/// lives: a socket bound there without `listen`, so a connect is refused
/// (RST: ECONNREFUSED). A port bound and released ([`free_port`]) is not
/// reliably closed: tests run in parallel threads, and a process another
/// test forks meanwhile holds the listener open (accepting into its
/// backlog) until it execs.
#[derive(Debug)]
pub struct ClosedTcpPort {
    _sock: socket2::Socket,
    /// The port.
    pub port: u16,
}

/// See [`ClosedTcpPort`].
pub fn closed_tcp_port() -> ClosedTcpPort {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("tcp socket");
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind 127.0.0.1:0");
    let port = sock
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map(|a| a.port())
        .expect("local_addr");
    ClosedTcpPort { _sock: sock, port }
}

/// A UDP socket on 127.0.0.1 that hears nobody, for as long as it lives:
/// connected to port 1 of its own address, it gets no datagram from anyone
/// else, so the kernel answers a datagram to its port with an ICMP port
/// unreachable (ECONNREFUSED on a connected sender), as for a closed port.
/// Closing a socket would not do reliably, for the reason
/// [`ClosedTcpPort`] gives.
pub fn deaf_udp_socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
    make_deaf(&s);
    s
}

/// Makes a UDP socket hear nobody, as [`deaf_udp_socket`] (a peer that
/// should now look gone).
pub fn make_deaf(s: &UdpSocket) {
    let me = s.local_addr().expect("local_addr");
    s.connect(SocketAddr::new(me.ip(), 1))
        .expect("connect to port 1");
}

/// A port on 127.0.0.1 free for both TCP and UDP at once (bound with both, then
/// released), for a peer that listens on both, such as a DNS server.
pub fn free_tcp_udp_port() -> u16 {
    for _ in 0..100 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("local_addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free for both TCP and UDP on 127.0.0.1 in 100 tries");
}

/// Path of a workspace binary (`netkit`, `netkit-pki`...), built first.
///
/// The first call for a `name` in a process runs `cargo build --quiet --bin
/// NAME` (with `--release` when the tests are built in release), a quick no-op
/// when the binary is up to date, so a test never runs a binary older than the
/// sources; later calls return at once. Concurrent callers wait for the build.
/// The binary is looked for under [`target_dir`].
pub fn bin(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let release = !cfg!(debug_assertions);
    let path = target_dir()
        .join(if release { "release" } else { "debug" })
        .join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.contains(name) {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(workspace_root())
            .args(["build", "--quiet", "--bin", name]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build --bin {name} failed");
        built.insert(name.to_string());
    }
    path
}

/// Cargo's target directory as `cargo metadata` reports it (so that
/// `CARGO_TARGET_DIR`, `build.target-dir` in a config file and the like are
/// honoured), asked once per process.
pub fn target_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .expect("run cargo metadata");
        assert!(
            out.status.success(),
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
        let dir = v
            .get("target_directory")
            .and_then(|d| d.as_str())
            .expect("cargo metadata has target_directory");
        PathBuf::from(dir)
    })
    .clone()
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

/// Writes `total` bytes of the test pattern (byte `i` is `i % 251`: loss,
/// duplication and reordering all show) to `w`, in 64 KiB writes.
pub fn write_pattern(w: &mut impl std::io::Write, total: usize) -> std::io::Result<()> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    while sent < total {
        let n = chunk.len().min(total - sent);
        for (i, b) in chunk[..n].iter_mut().enumerate() {
            *b = ((sent + i) % 251) as u8;
        }
        w.write_all(&chunk[..n])?;
        sent += n;
    }
    Ok(())
}

/// Reads `r` to its end, checking every byte against the test pattern (see
/// [`write_pattern`]); returns how many bytes came. Panics at the first wrong byte.
pub fn read_pattern(r: &mut impl std::io::Read) -> usize {
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = r.read(&mut buf).expect("read the pattern");
        if n == 0 {
            return got;
        }
        for (i, b) in buf[..n].iter().enumerate() {
            assert_eq!(*b, ((got + i) % 251) as u8, "byte {} out of order", got + i);
        }
        got += n;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bin_builds_into_the_target_dir() {
        let dir = super::target_dir();
        assert!(dir.is_absolute(), "{}", dir.display());
        let netkit = super::bin("netkit");
        assert!(netkit.starts_with(&dir), "{}", netkit.display());
        assert!(netkit.exists(), "{}", netkit.display());
        // Later calls do not build again.
        let t = std::time::Instant::now();
        assert_eq!(super::bin("netkit"), netkit);
        assert!(t.elapsed() < std::time::Duration::from_millis(50));
    }
}
