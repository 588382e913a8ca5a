//! A canned DNS server for tests that need a name server but not a real one
//! (nsd is the real peer of the interop tests): answers from a zone given as
//! records, NXDOMAIN for names it does not hold, NODATA for types it lacks,
//! over UDP on a loopback port picked at run time. It logs every question.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};

/// A running canned server; stopped on drop.
#[derive(Debug)]
pub struct FakeDns {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

/// A record of the zone: owner name (absolute, with the dot) and data.
pub fn record(name: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(Name::from_ascii(name).expect("a name"), ttl, data)
}

impl FakeDns {
    /// Serves `zone` on 127.0.0.1, a port picked by the kernel.
    pub fn start(zone: Vec<Record>) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (stop.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = q.queries.first() else {
                    continue;
                };
                if let Ok(mut log) = l.lock() {
                    log.push(format!("{} {}", query.name(), query.query_type()));
                }
                let owned: Vec<&Record> = zone
                    .iter()
                    .filter(|r| {
                        r.name
                            .to_ascii()
                            .eq_ignore_ascii_case(&query.name().to_ascii())
                    })
                    .collect();
                let answers: Vec<Record> = owned
                    .iter()
                    .filter(|r| r.record_type() == query.query_type())
                    .map(|r| (*r).clone())
                    .collect();
                let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
                m.metadata.recursion_available = true;
                m.metadata.response_code = if owned.is_empty() {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::NoError
                };
                m.add_queries(q.queries.clone());
                m.add_answers(answers.clone());
                if answers.is_empty() {
                    m.add_authority(record(
                        "test.",
                        60,
                        RData::SOA(SOA::new(
                            Name::from_ascii("ns.test.").expect("name"),
                            Name::from_ascii("admin.test.").expect("name"),
                            1,
                            3600,
                            600,
                            86400,
                            30,
                        )),
                    ));
                }
                if let Ok(bytes) = m.to_vec() {
                    let _ = sock.send_to(&bytes, from);
                }
            }
        });
        Self {
            addr,
            stop,
            log,
            thread: Some(thread),
        }
    }

    /// Where it listens (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every question received, as `name. TYPE`.
    pub fn questions(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// nsd serving `tests/dns/test.zone` and `tests/dns/reverse.zone` on
/// 127.0.0.1, a port free for UDP and TCP picked at run time; stopped (with
/// its children) when dropped.
#[derive(Debug)]
pub struct Nsd {
    /// The server process.
    pub peer: crate::peer::Peer,
    /// Where it answers (UDP and TCP).
    pub addr: SocketAddr,
    conf: std::path::PathBuf,
    _dir: crate::peer::TempDir,
}

impl Nsd {
    /// Starts nsd (response rate limiting off: benchmarks and bursts ask
    /// hundreds of names a second from one address); `None` (loudly) when nsd
    /// is not installed outside CI.
    pub fn start() -> Option<Self> {
        if !crate::peer::have("nsd", "-v") {
            return None;
        }
        let dir = crate::peer::TempDir::new("nk-nsd").expect("temp dir");
        let zones = crate::workspace_root().join("tests/dns");
        let d = dir.path();
        for z in ["test.zone", "reverse.zone"] {
            std::fs::copy(zones.join(z), d.join(z)).expect("copy a zone");
        }
        let port = crate::free_tcp_udp_port();
        let conf = format!(
            "server:\n    ip-address: 127.0.0.1@{port}\n    username: \"\"\n    chroot: \"\"\n    \
             zonesdir: \"{d}\"\n    database: \"\"\n    pidfile: \"{d}/nsd.pid\"\n    \
             xfrdfile: \"{d}/xfrd.state\"\n    xfrdir: \"{d}\"\n    zonelistfile: \"{d}/zone.list\"\n    \
             logfile: \"{d}/nsd.log\"\n    server-count: 1\n    do-ip6: no\n    verbosity: 1\n    \
             rrl-ratelimit: 0\n\
             remote-control:\n    control-enable: yes\n    control-interface: \"{d}/nsd.ctl\"\n\
             zone:\n    name: \"test.\"\n    zonefile: \"test.zone\"\n\
             zone:\n    name: \"2.0.192.in-addr.arpa.\"\n    zonefile: \"reverse.zone\"\n",
            d = d.display()
        );
        let conf_path = d.join("nsd.conf");
        std::fs::write(&conf_path, conf).expect("write nsd.conf");
        let mut cmd = std::process::Command::new("nsd");
        cmd.arg("-d").arg("-c").arg(&conf_path);
        let peer = crate::peer::Peer::spawn("nsd", cmd).expect("spawn nsd");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        peer.wait_ready(Duration::from_secs(20), || {
            crate::peer::wait_udp_dns(addr, Duration::from_millis(200))
        });
        Some(Self {
            peer,
            addr,
            conf: conf_path,
            _dir: dir,
        })
    }

    /// The queries nsd has answered so far (its own count, from
    /// `nsd-control stats_noreset` over its control socket).
    pub fn queries(&self) -> u64 {
        let out = std::process::Command::new("nsd-control")
            .arg("-c")
            .arg(&self.conf)
            .arg("stats_noreset")
            .output()
            .expect("run nsd-control");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("num.queries="))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "no num.queries from nsd-control: {text} {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    }
}

/// A UDP relay in front of a real server that counts the queries passing
/// through and, with `spoof`, races every answer with forgeries: one with
/// another ID, one with another question (both from the relay's address),
/// and one right in every field but sent from another port. A client that
/// accepts any of them gets 6.6.6.6.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    count: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Relays to `upstream`.
    pub fn start(upstream: SocketAddr, spoof: bool) -> Self {
        use hickory_proto::rr::rdata::A;
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let other = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let addr = sock.local_addr().expect("addr");
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let (c, s, h) = (count.clone(), stop.clone(), hold.clone());
        let thread = std::thread::spawn(move || {
            let up = UdpSocket::bind("127.0.0.1:0").expect("bind");
            up.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            let mut buf = [0u8; 65535];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, client)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                c.fetch_add(1, Ordering::Relaxed);
                let query = buf[..n].to_vec();
                if spoof {
                    if let Ok(q) = Message::from_vec(&query) {
                        let forged = |id: u16, name: &str| {
                            let mut m = Message::new(id, MessageType::Response, OpCode::Query);
                            let mut qq = q.queries[0].clone();
                            qq.set_name(Name::from_ascii(name).expect("name"));
                            m.add_query(qq.clone());
                            m.add_answer(record(name, 300, RData::A(A::new(6, 6, 6, 6))));
                            m.to_vec().expect("encode")
                        };
                        let real = q.queries[0].name().to_ascii();
                        let _ = sock.send_to(&forged(q.metadata.id.wrapping_add(1), &real), client);
                        let _ = sock.send_to(&forged(q.metadata.id, "evil.test."), client);
                        let _ = other.send_to(&forged(q.metadata.id, &real), client);
                    }
                }
                let _ = up.send_to(&query, upstream);
                if let Ok((m, _)) = up.recv_from(&mut buf) {
                    while h.load(Ordering::Relaxed) && !s.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    let _ = sock.send_to(&buf[..m], client);
                }
            }
        });
        Self {
            addr,
            count,
            stop,
            hold,
            thread: Some(thread),
        }
    }

    /// Holds answers back (`true`) until released (`false`): a test can
    /// have every request in flight before the first answer arrives.
    pub fn hold(&self, on: bool) {
        self.hold.store(on, Ordering::Relaxed);
    }

    /// Where clients send their queries.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queries relayed so far.
    pub fn queries(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
