//! Client sockets (`connect`): one table of connect scenarios, each run on both
//! drivers with the same handler, against plain std::net peers (a refusing
//! port, a listener whose accept queue is full so its SYNs vanish, a silent
//! server, missing and stale Unix paths).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netkit_smol as nsmol;
use netkit_sys::resolve::{DnsSettings, HostsFile};
use netkit_sys::{ConnectOptions, Error, Resolver, SharedHandler, Socket};
use netkit_tests::peer::TempDir;
use netkit_tests::servers::Driver;

/// What a client saw, in order; one handler for both drivers.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, e: String) {
        self.0.lock().unwrap().push(e);
    }

    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl SharedHandler for Log {
    type Data = ();
    /// Records the peer, sends the request and ends our side at once.
    fn open(&self, s: &mut Socket<'_, ()>) {
        self.push(format!(
            "open:{}",
            s.remote_addr()
                .map(|a| a.ip().to_string())
                .unwrap_or_default()
        ));
        let _ = s.write(b"request");
        s.end();
    }
    fn data(&self, _s: &mut Socket<'_, ()>, b: &[u8]) {
        self.push(format!("data:{}", String::from_utf8_lossy(b)));
    }
    fn end(&self, _s: &mut Socket<'_, ()>) {
        self.push("end".into());
    }
    fn timeout(&self, s: &mut Socket<'_, ()>) {
        self.push("timeout".into());
        s.close();
    }
    fn close(&self, _s: &mut Socket<'_, ()>, e: Option<&Error>) {
        self.push(format!("close:{}", e.is_some()));
    }
    fn connect_error(&self, _s: &mut Socket<'_, ()>, e: &Error) {
        self.push(format!("connect_error:{e}"));
    }
}

/// A canned DNS server every client of these tests asks: `dns.test` names
/// 127.0.0.1 (and ::1); any other name is NXDOMAIN.
fn fake_dns() -> &'static netkit_tests::dns::FakeDns {
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, AAAA};
    static DNS: std::sync::OnceLock<netkit_tests::dns::FakeDns> = std::sync::OnceLock::new();
    DNS.get_or_init(|| {
        netkit_tests::dns::FakeDns::start(vec![
            netkit_tests::dns::record("dns.test.", 60, RData::A(A::new(127, 0, 0, 1))),
            netkit_tests::dns::record(
                "dns.test.",
                60,
                RData::AAAA(AAAA::from(std::net::Ipv6Addr::LOCALHOST)),
            ),
        ])
    })
}

/// Settings that ask `server` only.
fn settings(server: SocketAddr) -> DnsSettings {
    DnsSettings {
        resolv_conf: netkit_dns::ResolvConf::default(),
        servers: Some(vec![server]),
        cache: netkit_dns::cache::CacheConfig::default(),
        prefer_v6: false,
    }
}

/// Runs one client to completion on `d`, resolving with `hosts` (a hosts
/// file's text) when given, then the canned DNS server; returns what its
/// handler saw.
fn run_client(d: Driver, opts: ConnectOptions, hosts: Option<&Path>) -> Vec<String> {
    run_client_with(d, opts, hosts, fake_dns().addr())
}

fn run_client_with(
    d: Driver,
    opts: ConnectOptions,
    hosts: Option<&Path>,
    dns: SocketAddr,
) -> Vec<String> {
    let log = Log::default();
    let resolver = || match hosts {
        Some(p) => Resolver::new(HostsFile::new(p), settings(dns)),
        None => Resolver::new(HostsFile::new("/nonexistent"), settings(dns)),
    };
    match d {
        Driver::Blocking => {
            let mut lp = netkit_blocking::EventLoop::new().unwrap();
            *lp.resolver() = resolver();
            lp.connect(opts, Arc::new(log.clone()), ()).unwrap();
            lp.run().unwrap();
        }
        Driver::Smol => {
            let rt = nsmol::Runtime::with_resolver(resolver());
            let r = ::smol::block_on(rt.connect(opts, log.clone(), ()));
            // `Err` exactly when the handler saw a connect error.
            let failed = log.events().iter().any(|e| e.starts_with("connect_error"));
            assert_eq!(r.is_err(), failed, "{:?}", log.events());
        }
    }
    log.events()
}

/// A peer that reads the request to EOF, answers "answer to " + request, and
/// closes. Returns its address and its thread.
fn answering_peer(ip: &str) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind((ip, 0)).unwrap();
    let addr = l.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        s.write_all(b"answer to ").unwrap();
        s.write_all(&req).unwrap();
    });
    (addr, peer)
}

/// A listener whose accept queue is full: a further SYN is dropped, so a
/// connect to it neither succeeds nor fails (until the kernel gives up).
struct Blackhole {
    addr: SocketAddr,
    _listener: socket2::Socket,
    _filler: TcpStream,
}

fn blackhole(ip: &str, port: u16) -> Blackhole {
    use socket2::{Domain, Socket, Type};
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let l = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    l.bind(&addr.into()).unwrap();
    l.listen(0).unwrap();
    let addr = l.local_addr().unwrap().as_socket().unwrap();
    // Backlog 0 holds one established connection; with it queued (never
    // accepted), the next SYN is dropped.
    let filler = TcpStream::connect(addr).unwrap();
    Blackhole {
        addr,
        _listener: l,
        _filler: filler,
    }
}

fn hosts_file(dir: &TempDir, text: &str) -> PathBuf {
    let p = dir.path().join("hosts");
    std::fs::write(&p, text).unwrap();
    p
}

/// The half-close exchange as the client saw it: `open`, the whole answer,
/// then `end` and a clean `close`.
fn assert_half_close(log: &[String], peer_ip: &str) {
    assert_eq!(
        log.first().map(String::as_str),
        Some(&*format!("open:{peer_ip}")),
        "{log:?}"
    );
    let data: String = log.iter().filter_map(|e| e.strip_prefix("data:")).collect();
    assert_eq!(data, "answer to request", "{log:?}");
    assert_eq!(&log[log.len() - 2..], ["end", "close:false"], "{log:?}");
}

fn refused(d: Driver) {
    let closed = netkit_tests::closed_tcp_port();
    let port = closed.port;
    let log = run_client(d, ConnectOptions::new("127.0.0.1", port), None);
    assert_eq!(
        log,
        [format!(
            "connect_error:ECONNREFUSED: connect 127.0.0.1:{port}"
        )]
    );
}

fn unknown_host(d: Driver) {
    let dir = TempDir::new("nk-hosts").unwrap();
    let hosts = hosts_file(&dir, "127.0.0.1 known.test\n");
    let log = run_client(
        d,
        ConnectOptions::new("no-such-host.invalid", 80),
        Some(&hosts),
    );
    assert_eq!(
        log,
        ["connect_error:ENOTFOUND: getaddrinfo no-such-host.invalid"]
    );
}

fn half_close_through_a_hosts_file_name(d: Driver) {
    let (addr, peer) = answering_peer("127.0.0.1");
    let dir = TempDir::new("nk-hosts").unwrap();
    let hosts = hosts_file(&dir, "127.0.0.1 peer.test\n");
    let log = run_client(
        d,
        ConnectOptions::new("peer.test", addr.port()),
        Some(&hosts),
    );
    peer.join().unwrap();
    assert_half_close(&log, "127.0.0.1");
}

/// `localhost` is ::1 and 127.0.0.1; the peer listens on IPv4 only: whichever
/// is tried first, the client ends up connected to 127.0.0.1.
fn localhost_falls_back_across_families(d: Driver) {
    let (addr, peer) = answering_peer("127.0.0.1");
    let dir = TempDir::new("nk-hosts").unwrap();
    let hosts = hosts_file(&dir, "::1 localhost\n127.0.0.1 localhost\n");
    let log = run_client(
        d,
        ConnectOptions::new("localhost", addr.port()),
        Some(&hosts),
    );
    peer.join().unwrap();
    assert_half_close(&log, "127.0.0.1");
}

/// Happy Eyeballs: the first address swallows the SYN; 250 ms later the
/// second is tried in parallel and wins.
fn a_silent_first_address_loses_to_the_second(d: Driver) {
    let (addr, peer) = answering_peer("127.0.0.2");
    let _hole = blackhole("127.0.0.1", addr.port());
    let dir = TempDir::new("nk-hosts").unwrap();
    let hosts = hosts_file(&dir, "127.0.0.1 he.test\n127.0.0.2 he.test\n");
    let mut opts = ConnectOptions::new("he.test", addr.port());
    opts.connect_timeout = Some(Duration::from_secs(20));
    let log = run_client(d, opts, Some(&hosts));
    peer.join().unwrap();
    assert_half_close(&log, "127.0.0.2");
}

/// One connect timeout for the whole connect: `ETIMEDOUT` naming the address
/// that did not answer, distinct from the idle timeout.
fn the_connect_timeout_is_one_error(d: Driver) {
    let hole = blackhole("127.0.0.1", 0);
    let mut opts = ConnectOptions::new("127.0.0.1", hole.addr.port());
    opts.connect_timeout = Some(Duration::from_millis(300));
    opts.timeout = Some(Duration::from_secs(60));
    let log = run_client(d, opts, None);
    assert_eq!(
        log,
        [format!("connect_error:ETIMEDOUT: connect {}", hole.addr)]
    );
}

/// The idle timeout starts when the socket opens and is not a connect error.
fn the_idle_timeout_fires_after_open(d: Driver) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let silent = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink); // answers nothing, keeps its side open
        std::thread::sleep(Duration::from_millis(500));
    });
    let mut opts = ConnectOptions::new("127.0.0.1", port);
    opts.timeout = Some(Duration::from_millis(150));
    opts.connect_timeout = Some(Duration::from_millis(100));
    let log = run_client(d, opts, None);
    silent.join().unwrap();
    assert_eq!(log, ["open:127.0.0.1", "timeout", "close:false"]);
}

fn unix_missing_path_is_enoent(d: Driver) {
    let dir = TempDir::new("nk-unix").unwrap();
    let path = dir.path().join("nothing.sock");
    let log = run_client(d, ConnectOptions::unix(&path), None);
    assert_eq!(
        log,
        [format!("connect_error:ENOENT: connect {}", path.display())]
    );
}

fn unix_path_without_listener_is_refused(d: Driver) {
    let dir = TempDir::new("nk-unix").unwrap();
    let path = dir.path().join("stale.sock");
    // A socket file whose listener is gone.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let log = run_client(d, ConnectOptions::unix(&path), None);
    assert_eq!(
        log,
        [format!(
            "connect_error:ECONNREFUSED: connect {}",
            path.display()
        )]
    );
}

fn unix_half_close(d: Driver) {
    let dir = TempDir::new("nk-unix").unwrap();
    let path = dir.path().join("peer.sock");
    let l = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        let mut req = Vec::new();
        s.read_to_end(&mut req).unwrap();
        s.write_all(b"answer to ").unwrap();
        s.write_all(&req).unwrap();
    });
    let log = run_client(d, ConnectOptions::unix(&path), None);
    peer.join().unwrap();
    assert_half_close(&log, "");
}

/// A name only DNS knows: the plan waits for the resolver, then connects
/// (`localhost`-style fallback from ::1 to 127.0.0.1 included).
fn a_name_only_dns_knows(d: Driver) {
    let (addr, peer) = answering_peer("127.0.0.1");
    let log = run_client(d, ConnectOptions::new("dns.test", addr.port()), None);
    peer.join().unwrap();
    assert_half_close(&log, "127.0.0.1");
    assert!(fake_dns().questions().iter().any(|q| q == "dns.test. A"));
}

/// A dead DNS server: the connect fails with the resolver's error, at once
/// (ICMP port unreachable), not after a timeout.
fn a_dead_dns_server_is_a_connect_error(d: Driver) {
    let deaf = netkit_tests::deaf_udp_socket();
    let log = run_client_with(
        d,
        ConnectOptions::new("anything.test", 80),
        None,
        deaf.local_addr().unwrap(),
    );
    assert_eq!(
        log,
        ["connect_error:ECONNREFUSED: getaddrinfo anything.test"]
    );
}

/// An address from DNS that refused the connection is dropped from the cache
/// (Bun does): the next connect to the name asks the server again, while a
/// name that connected stays cached.
fn a_failed_connect_forgets_the_names_addresses(d: Driver) {
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::A;
    let dns = netkit_tests::dns::FakeDns::start(vec![netkit_tests::dns::record(
        "gone.test.",
        60,
        RData::A(A::new(127, 0, 0, 1)),
    )]);
    let closed = netkit_tests::closed_tcp_port();
    let port = closed.port;
    let resolver = || Resolver::new(HostsFile::new("/nonexistent"), settings(dns.addr()));
    let asked = || {
        dns.questions()
            .iter()
            .filter(|q| *q == "gone.test. A")
            .count()
    };
    match d {
        Driver::Blocking => {
            let mut lp = netkit_blocking::EventLoop::new().unwrap();
            *lp.resolver() = resolver();
            for _ in 0..2 {
                let log = Log::default();
                lp.connect(
                    ConnectOptions::new("gone.test", port),
                    Arc::new(log.clone()),
                    (),
                )
                .unwrap();
                lp.run().unwrap();
                assert_eq!(log.events().len(), 1);
            }
        }
        Driver::Smol => {
            let rt = nsmol::Runtime::with_resolver(resolver());
            for _ in 0..2 {
                let r = ::smol::block_on(rt.connect(
                    ConnectOptions::new("gone.test", port),
                    Log::default(),
                    (),
                ));
                assert!(r.is_err());
            }
        }
    }
    assert_eq!(asked(), 2, "the failed name was asked again");
}

fn a_bad_tls_server_name_is_a_connect_error(d: Driver) {
    let closed = netkit_tests::closed_tcp_port();
    let mut opts = ConnectOptions::new("127.0.0.1", closed.port);
    opts.tls = Some(netkit_sys::ClientTls {
        config: netkit_sys::tls::client_config(&netkit_tls::ClientOptions::default()).unwrap(),
        server_name: Some("not a name!".into()),
    });
    let log = run_client(d, opts, None);
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(
        log[0].starts_with("connect_error:tls: invalid server name"),
        "{log:?}"
    );
}

netkit_tests::both_drivers!(
    refused,
    unknown_host,
    half_close_through_a_hosts_file_name,
    localhost_falls_back_across_families,
    a_silent_first_address_loses_to_the_second,
    the_connect_timeout_is_one_error,
    the_idle_timeout_fires_after_open,
    unix_missing_path_is_enoent,
    unix_path_without_listener_is_refused,
    unix_half_close,
    a_bad_tls_server_name_is_a_connect_error,
    a_name_only_dns_knows,
    a_dead_dns_server_is_a_connect_error,
    a_failed_connect_forgets_the_names_addresses,
);

#[test]
fn smol_plain_streams() {
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    ::smol::block_on(async {
        let l = nsmol::TcpListener::bind(&nsmol::ListenOptions::new("::1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let server = ::smol::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        let mut c = nsmol::TcpStream::connect("[::1]", port).await.unwrap();
        c.write_all(b"over v6").await.unwrap();
        c.shutdown_write().unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"over v6");
        server.await;
    });
}
