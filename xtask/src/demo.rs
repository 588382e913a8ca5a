//! `cargo xtask demo`: a netkit echo server and clients talking on loopback, over
//! TCP and then TLS and Unix sockets; DNS against a local server; and `netkit
//! fetch` against nginx and tinyproxy.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Result, step, target_dir};

/// A child process killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP echo server and clients, then the same over TLS.
pub(crate) fn run() -> Result {
    step("build netkit", &["build", "--quiet", "--bin", "netkit"])?;
    let netkit = target_dir()?.join("debug/netkit");
    println!("== TCP: netkit listen --echo, and clients with netkit connect");
    let (mut server, port, line) = start_listen(&netkit, &["--port", "0", "--echo"])?;
    println!("server: {line}");
    let clients: Vec<_> = (1..=4)
        .map(|i| {
            let netkit = netkit.clone();
            std::thread::spawn(move || -> Result<String> {
                let msg = format!("hello from client {i}");
                let mut c = Command::new(netkit)
                    .args(["connect", "127.0.0.1", &port.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| e.to_string())?;
                {
                    use std::io::Write;
                    let mut stdin = c.stdin.take().ok_or("no stdin")?;
                    stdin.write_all(msg.as_bytes()).map_err(|e| e.to_string())?;
                }
                let out = c.wait_with_output().map_err(|e| e.to_string())?;
                if !out.status.success() {
                    return Err(String::from_utf8_lossy(&out.stderr).into_owned());
                }
                Ok(format!(
                    "client {i}: sent {msg:?}, got {:?}",
                    String::from_utf8_lossy(&out.stdout)
                ))
            })
        })
        .collect();
    for c in clients {
        println!("{}", c.join().map_err(|_| "client thread panicked")??);
    }
    let refused = Command::new(&netkit)
        .args(["connect", "127.0.0.1", "1"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    println!(
        "a client to a closed port: exit {}, {}",
        refused.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&refused.stderr).trim()
    );
    let pid = server.0.id() as libc::pid_t;
    let t = Instant::now();
    send_sigterm(pid);
    let end = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Ok(Some(st)) = server.0.try_wait() {
            break st;
        }
        if Instant::now() > end {
            return Err("server did not stop on SIGTERM".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    println!(
        "server: SIGTERM -> exited {} after {:.0?}",
        status.code().unwrap_or(-1),
        t.elapsed()
    );
    if !status.success() {
        return Err("server exit status".into());
    }
    demo_tls(&netkit)?;
    demo_unix(&netkit)?;
    demo_dns(&netkit)?;
    demo_fetch(&netkit)?;
    demo_udp(&netkit)?;
    Ok(())
}

/// UDP: a sendMany batch to `netkit udp listen`, and the kernel path that
/// carried it.
fn demo_udp(netkit: &Path) -> Result {
    println!("== UDP: netkit udp send (one sendMany batch) to netkit udp listen");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let mut server = Child(
        Command::new(netkit)
            .args(["udp", "listen", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start netkit udp listen: {e}"))?,
    );
    let mut err = BufReader::new(server.0.stderr.take().ok_or("no stderr")?);
    let mut line = String::new();
    err.read_line(&mut line).map_err(|e| e.to_string())?;
    println!("server: {}", line.trim());
    let target = format!("127.0.0.1:{port}");
    let messages = ["aaaa", "bbbb", "cccc", "dddd", "a longer one"];
    let out = Command::new(netkit)
        .args(["udp", "send", "-v", &target])
        .args(messages)
        .output()
        .map_err(|e| e.to_string())?;
    println!(
        "client: {} {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let mut lines = BufReader::new(server.0.stdout.take().ok_or("no stdout")?).lines();
    for _ in messages {
        let l = lines
            .next()
            .ok_or("the server stopped")?
            .map_err(|e| e.to_string())?;
        println!("server: {l}");
    }
    send_sigterm(server.0.id() as libc::pid_t);
    Ok(())
}

/// Starts `netkit listen` with `args` and returns it with its port.
fn start_listen(netkit: &Path, args: &[&str]) -> Result<(Child, u16, String)> {
    let (server, first) = spawn_listen(netkit, args)?;
    let port = first
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| format!("unexpected first line {first:?}"))?;
    Ok((server, port, first))
}

/// Starts `netkit listen` with `args` and returns it with its first line.
fn spawn_listen(netkit: &Path, args: &[&str]) -> Result<(Child, String)> {
    let mut server = Child(
        Command::new(netkit)
            .arg("listen")
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("start netkit listen: {e}"))?,
    );
    let out = server.0.stdout.take().ok_or("no stdout")?;
    let mut first = String::new();
    BufReader::new(out)
        .read_line(&mut first)
        .map_err(|e| e.to_string())?;
    Ok((server, first.trim().to_string()))
}

/// Unix domain sockets: listen, connect, the errors, and the socket file
/// removed when the server stops.
fn demo_unix(netkit: &Path) -> Result {
    println!("== Unix sockets: netkit listen --unix, netkit connect --unix");
    let dir = std::env::temp_dir().join(format!("netkit-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("echo.sock");
    let p = path.to_string_lossy().into_owned();
    let (server, line) = spawn_listen(netkit, &["--unix", &p, "--echo"])?;
    println!("server: {line}");
    let (code, out, err) = run_connect(netkit, &["--unix", &p], b"hello over a Unix socket")?;
    println!("client: exit {code}, got {out:?} {err}");
    let (code, _, err) = run_connect(netkit, &["--unix", &format!("{p}.missing")], b"")?;
    println!("a client to a missing path: exit {code}, {err}");
    let taken = Command::new(netkit)
        .args(["listen", "--unix", &p])
        .output()
        .map_err(|e| e.to_string())?;
    println!(
        "a second server on the same path: exit {}, {}",
        taken.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&taken.stderr).trim()
    );
    let mut server = server;
    send_sigterm(server.0.id() as libc::pid_t);
    let _ = server.0.wait();
    println!(
        "server stopped: its socket file {}",
        if path.exists() {
            "is still there (bug)"
        } else {
            "is gone"
        }
    );
    let _ = std::fs::remove_dir_all(&dir);
    if code != 1 || path.exists() {
        return Err("unix demo: unexpected outcome".into());
    }
    Ok(())
}

/// Runs `netkit connect ARGS` with `input` on stdin; returns (status, stdout, stderr).
fn run_connect(netkit: &Path, args: &[&str], input: &[u8]) -> Result<(i32, String, String)> {
    use std::io::Write;
    let mut c = Command::new(netkit)
        .arg("connect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    c.stdin
        .take()
        .ok_or("no stdin")?
        .write_all(input)
        .map_err(|e| e.to_string())?;
    let out = c.wait_with_output().map_err(|e| e.to_string())?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

/// The TLS half of the demo, with a PKI made by `netkit-pki`.
fn demo_tls(netkit: &Path) -> Result {
    println!("== TLS: a PKI made on the fly, netkit listen --tls-*, netkit connect --tls");
    step(
        "build the PKI maker",
        &[
            "build",
            "--quiet",
            "-p",
            "netkit-tests",
            "--bin",
            "netkit-pki",
        ],
    )?;
    let dir = target_dir()?.join("demo-pki");
    let st = Command::new(target_dir()?.join("debug/netkit-pki"))
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("netkit-pki failed".into());
    }
    let p = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let (_server, port, line) = start_listen(
        netkit,
        &[
            "--port",
            "0",
            "--echo",
            "--tls-cert",
            &p("localhost.pem"),
            "--tls-key",
            &p("localhost.key"),
        ],
    )?;
    println!("server: {line} (TLS, certificate for localhost from a test CA)");
    let port = port.to_string();
    let (code, out, err) = run_connect(
        netkit,
        &["localhost", &port, "--tls", "--cacert", &p("ca.pem")],
        b"hello over TLS",
    )?;
    println!("client --cacert ca.pem: exit {code}, got {out:?} {err}");
    let (code, _, err) = run_connect(netkit, &["localhost", &port, "--tls"], b"x")?;
    println!("client trusting only the built-in roots: exit {code}, {err}");
    let (code, out, _) = run_connect(netkit, &["localhost", &port, "-k"], b"insecure")?;
    println!("client -k: exit {code}, got {out:?}");
    Ok(())
}

/// Sends SIGTERM to `pid`.
#[allow(unsafe_code, reason = "kill(2) has no safe wrapper in std")]
fn send_sigterm(pid: libc::pid_t) {
    // SAFETY: kill(2) takes plain integers and touches no memory of ours.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// DNS: lookups against a local server, Bun's cache counters before and after.
fn demo_dns(netkit: &Path) -> Result {
    println!("== DNS: the resolver and its cache against a local DNS server");
    step(
        "build the DNS demo",
        &[
            "build",
            "--quiet",
            "-p",
            "netkit-tests",
            "--bin",
            "netkit-dns-demo",
        ],
    )?;
    let st = Command::new(target_dir()?.join("debug/netkit-dns-demo"))
        .arg(netkit)
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("netkit-dns-demo failed".into());
    }
    Ok(())
}

/// fetch: nginx and tinyproxy on loopback, `netkit fetch` against them.
fn demo_fetch(netkit: &Path) -> Result {
    println!("== fetch: netkit fetch against nginx (HTTP, HTTPS, a Unix socket) and tinyproxy");
    step(
        "build the fetch demo",
        &[
            "build",
            "--quiet",
            "-p",
            "netkit-tests",
            "--bin",
            "netkit-fetch-demo",
        ],
    )?;
    let st = Command::new(target_dir()?.join("debug/netkit-fetch-demo"))
        .arg(netkit)
        .status()
        .map_err(|e| e.to_string())?;
    if !st.success() {
        return Err("netkit-fetch-demo failed".into());
    }
    Ok(())
}
