//! HTTP peers for the tests: nginx (HTTP, HTTPS with the test PKI, a Unix
//! socket, files, gzip) and tinyproxy (forward and CONNECT, optionally with
//! Basic auth), each on loopback ports picked at run time with a generated
//! config, stopped on drop; and a raw-bytes server for framing tests.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::peer::{Peer, TempDir, have, wait_tcp};
use crate::pki::Pki;

const READY: Duration = Duration::from_secs(20);

/// A file of `len` bytes of text (compressible, and checkable by content).
pub fn text_file(len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 32);
    let mut i = 0u64;
    while v.len() < len {
        v.extend_from_slice(format!("line {i:08} of the test file\n").as_bytes());
        i += 1;
    }
    v.truncate(len);
    v
}

/// nginx on loopback: `http` and `https` ports, a Unix socket, `root` with
/// `small.txt` (6 bytes), `big.txt` (8 MiB of text), `nogzip/` (served
/// without gzip, for files a benchmark puts there), `upload/` taking PUTs
/// (WebDAV: the body lands under `root/upload/`) and the locations the
/// tests use; an access log of `$connection $request_method $request_uri
/// $status` lines.
#[derive(Debug)]
pub struct Nginx {
    peer: Peer,
    /// The plain HTTP address.
    pub http: SocketAddr,
    /// The HTTPS address (certificate for localhost/127.0.0.1 from the PKI).
    pub https: SocketAddr,
    /// The Unix socket nginx also listens on (plain HTTP).
    pub unix: PathBuf,
    /// The document root.
    pub root: PathBuf,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx; `None` (loudly) when it is not installed outside CI.
    pub fn start(pki: &Pki) -> Option<Self> {
        if !have("nginx", "-v") {
            return None;
        }
        let dir = TempDir::new("nk-nginx").expect("temp dir");
        let d = dir.path().to_path_buf();
        let root = d.join("www");
        std::fs::create_dir_all(&root).expect("www");
        std::fs::create_dir_all(d.join("tmp")).expect("tmp");
        std::fs::write(root.join("small.txt"), b"small\n").expect("small");
        std::fs::write(root.join("big.txt"), text_file(8 << 20)).expect("big");
        std::fs::create_dir_all(root.join("nogzip")).expect("nogzip");
        let (http, https) = (crate::free_port(), crate::free_port());
        let unix = d.join("nginx.sock");
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
user root;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format conn '$connection $request_method $request_uri $status';
    access_log {d}/access.log conn;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    default_type text/plain;
    keepalive_timeout 60;
    keepalive_requests 100000;
    gzip on;
    gzip_types text/plain;
    gzip_min_length 64;
    server {{
        listen 127.0.0.1:{http};
        listen unix:{unix};
        listen 127.0.0.1:{https} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
        location = /hello {{ return 200 "hello\n"; }}
        location = /method {{ return 200 "$request_method\n"; }}
        location = /redirect {{ return 302 /small.txt; }}
        location = /redirect-abs {{ return 301 http://127.0.0.1:{http}/small.txt; }}
        location = /loop {{ return 302 /loop; }}
        location = /missing {{ return 404 "no such thing\n"; }}
        location = /headers {{ add_header X-Many a; add_header X-Many b; return 200 "h\n"; }}
        location /nogzip/ {{ gzip off; }}
        location /upload/ {{ dav_methods PUT; create_full_put_path on; client_max_body_size 0; }}
        location = /put-redirect {{ return 307 /upload/redirected.bin; }}
    }}
}}
"#,
            d = d.display(),
            unix = unix.display(),
            cert = pki.localhost.cert.display(),
            key = pki.localhost.key.display(),
            root = root.display(),
        );
        let conf_path = d.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let mut cmd = std::process::Command::new("nginx");
        cmd.arg("-c").arg(&conf_path).arg("-p").arg(&d);
        let peer = Peer::spawn("nginx", cmd).expect("spawn nginx");
        let http = SocketAddr::from(([127, 0, 0, 1], http));
        let https = SocketAddr::from(([127, 0, 0, 1], https));
        peer.wait_ready(READY, || {
            wait_tcp(http, Duration::from_millis(200))
                && wait_tcp(https, Duration::from_millis(200))
        });
        Some(Self {
            peer,
            http,
            https,
            unix,
            root,
            dir,
        })
    }

    /// The access log's lines so far: `$connection $method $uri $status`.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// How many distinct connections carried the logged requests whose URI
    /// starts with `prefix`.
    pub fn connections_for(&self, prefix: &str) -> usize {
        let mut ids: Vec<String> = self
            .log()
            .iter()
            .filter(|l| l.split(' ').nth(2).is_some_and(|u| u.starts_with(prefix)))
            .filter_map(|l| l.split(' ').next().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        ids.len()
    }

    /// nginx's error log (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
            + &self.peer.stderr()
    }
}

/// tinyproxy on loopback, optionally requiring Basic credentials.
#[derive(Debug)]
pub struct Tinyproxy {
    _peer: Peer,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: TempDir,
}

impl Tinyproxy {
    /// Starts tinyproxy; with `auth`, it demands `user` / `password`.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Self> {
        if !have("tinyproxy", "-v") {
            return None;
        }
        let dir = TempDir::new("nk-tinyproxy").expect("temp dir");
        let d = dir.path();
        let port = crate::free_port();
        let mut conf = format!(
            "User root\nGroup root\nPort {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 200\n\
             Allow 127.0.0.1\nLogFile \"{d}/tinyproxy.log\"\nLogLevel Info\nPidFile \"{d}/tinyproxy.pid\"\n\
             DisableViaHeader Yes\n",
            d = d.display()
        );
        if let Some((u, p)) = auth {
            conf.push_str(&format!("BasicAuth {u} {p}\n"));
        }
        let conf_path = d.join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).expect("write tinyproxy.conf");
        let mut cmd = std::process::Command::new("tinyproxy");
        cmd.arg("-d").arg("-c").arg(&conf_path);
        let peer = Peer::spawn("tinyproxy", cmd).expect("spawn tinyproxy");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        peer.wait_ready(READY, || wait_tcp(addr, Duration::from_millis(200)));
        Some(Self {
            _peer: peer,
            addr,
            dir,
        })
    }

    /// tinyproxy's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tinyproxy.log")).unwrap_or_default()
    }
}

/// A server that answers each connection with canned bytes: for the `n`th
/// connection (from 0), `script(n, request_bytes)` returns what to send, and
/// whether to close after sending. It reads one request head (up to the
/// blank line) before each answer.
#[derive(Debug)]
pub struct RawServer {
    /// Where it listens.
    pub addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _thread: JoinHandle<()>,
}

/// What a [`RawServer`] does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Send these bytes, then read the next request on the same connection.
    Keep(Vec<u8>),
    /// Send these bytes, then close.
    Close(Vec<u8>),
}

impl RawServer {
    /// Serves `script(connection_index, request_index_on_it)`.
    pub fn start(script: impl Fn(usize, usize) -> Reply + Send + Sync + 'static) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let script = Arc::new(script);
        let thread = std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(s) = s else { return };
                let n = count.fetch_add(1, Ordering::SeqCst);
                let script = script.clone();
                std::thread::spawn(move || serve(s, n, &*script));
            }
        });
        Self {
            addr,
            accepted,
            _thread: thread,
        }
    }

    /// A keep-alive server whose first connection answers once, then closes
    /// at the next request without a byte (a server that dropped an idle
    /// connection); later connections answer `ok2`.
    pub fn stale_after_one() -> Self {
        Self::start(|conn, req| match (conn, req) {
            (0, 0) => Reply::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
            (0, _) => Reply::Close(Vec::new()),
            _ => Reply::Keep(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok2".to_vec()),
        })
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// `http://addr/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

fn serve(mut s: TcpStream, conn: usize, script: &dyn Fn(usize, usize) -> Reply) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    for req in 0.. {
        // One request head (the tests send no bodies to raw servers, except
        // with Content-Length, which is skipped here too).
        loop {
            if let Some(end) = find_head_end(&buf) {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let body = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if buf.len() >= end + body {
                    buf.drain(..end + body);
                    break;
                }
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        match script(conn, req) {
            Reply::Keep(b) => {
                if s.write_all(&b).is_err() {
                    return;
                }
            }
            Reply::Close(b) => {
                let _ = s.write_all(&b);
                let _ = s.shutdown(std::net::Shutdown::Write);
                // Drain what the client still sends, so the close is a FIN.
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut sink = [0u8; 4096];
                while matches!(s.read(&mut sink), Ok(n) if n > 0) {}
                return;
            }
        }
    }
}

fn find_head_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// A fetch client configuration trusting the test PKI's CA.
pub fn client_config(pki: &Pki) -> netkit_fetch::ClientConfig {
    let ca = netkit_tls::Pem::new("ca", std::fs::read(&pki.ca).expect("the CA"));
    let tls = netkit_sys::tls::client_config(&netkit_tls::ClientOptions {
        ca: Some(ca),
        ..Default::default()
    })
    .expect("a TLS client configuration");
    netkit_fetch::ClientConfig::new(Arc::new(tls))
}
