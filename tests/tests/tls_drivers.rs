//! TLS on both drivers over loopback: a rustls client (the reference
//! implementation's own blocking stream) against each driver's TLS server, and
//! each driver's TLS client against the other's server.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netkit_sys::Error;
use netkit_tests::servers::{Behavior, Driver, TestServer};
use netkit_tls::rustls::{ClientConnection, StreamOwned};

use netkit_tls::{ClientConfig, ClientOptions, Pem, ServerOptions};

const LIMIT: Duration = Duration::from_secs(20);

struct Setup {
    server: netkit_tls::ServerConfig,
    client: ClientConfig,
}

fn setup() -> Setup {
    let id = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = Pem::new("cert.pem", id.cert.pem());
    let key = Pem::new("key.pem", id.signing_key.serialize_pem());
    Setup {
        server: netkit_sys::tls::server_config(&ServerOptions::new(cert.clone(), key)).unwrap(),
        client: netkit_sys::tls::client_config(&ClientOptions {
            ca: Some(cert),
            ..ClientOptions::default()
        })
        .unwrap(),
    }
}

fn tls_server(d: Driver, s: &Setup, high_water: Option<usize>) -> TestServer {
    TestServer::start(
        d,
        Behavior {
            tls: Some(s.server.clone()),
            high_water,
            ..Behavior::default()
        },
    )
}

fn rustls_client(srv: &TestServer, s: &Setup) -> StreamOwned<ClientConnection, TcpStream> {
    let tcp = TcpStream::connect(srv.addr()).unwrap();
    tcp.set_read_timeout(Some(LIMIT)).unwrap();
    let conn =
        ClientConnection::new(s.client.rustls().clone(), "localhost".try_into().unwrap()).unwrap();
    StreamOwned::new(conn, tcp)
}

fn echo_and_clean_close(d: Driver) {
    let s = setup();
    let srv = tls_server(d, &s, None);
    let mut c = rustls_client(&srv, &s);
    c.write_all(b"over tls").unwrap();
    let mut buf = [0u8; 8];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"over tls");
    // close_notify + FIN: the server ends too, with its own close_notify.
    c.conn.send_close_notify();
    c.flush().unwrap();
    c.sock.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest)
        .expect("clean EOF (close_notify from the server)");
    assert!(rest.is_empty());
    assert!(srv.wait(LIMIT, |s| s.live() == 0));
    assert_eq!(srv.events_of(1), ["open", "end", "close"]);
}

/// 16 MiB through TLS while the client reads nothing until half is sent: the
/// server stalls with a bounded amount held, then everything arrives in order.
/// The client pumps a `TlsSession` over a non-blocking socket, reading and
/// writing independently (a `complete_io`-style client deadlocks here).
fn backpressure(d: Driver) {
    const TOTAL: usize = 16 * 1024 * 1024;
    let s = setup();
    let srv = tls_server(d, &s, Some(256 * 1024));
    let mut tcp = TcpStream::connect(srv.addr()).unwrap();
    tcp.set_nonblocking(true).unwrap();
    let mut tls = netkit_tls::TlsSession::client(&s.client, "localhost").unwrap();
    let (mut sent, mut got) = (0usize, 0usize);
    let mut out: Vec<u8> = Vec::new();
    let mut inbuf = vec![0u8; 64 * 1024];
    let mut chunk = vec![0u8; 16 * 1024];
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got < TOTAL {
        assert!(
            std::time::Instant::now() < deadline,
            "stalled at {got}/{TOTAL} (sent {sent})"
        );
        let mut progress = false;
        if sent < TOTAL && out.len() < 256 * 1024 {
            for (i, b) in chunk.iter_mut().enumerate() {
                *b = ((sent + i) % 251) as u8;
            }
            let n = tls.write(&chunk[..chunk.len().min(TOTAL - sent)]).unwrap();
            sent += n;
            progress |= n > 0;
        }
        tls.drain_transmit(&mut out);
        if !out.is_empty() {
            match tcp.write(&out) {
                Ok(n) => {
                    out.drain(..n);
                    progress = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        if sent >= TOTAL / 2 || tls.is_handshaking() {
            if tls.wants_input() {
                match tcp.read(&mut inbuf) {
                    Ok(0) => break,
                    Ok(n) => {
                        tls.handle_input(&inbuf[..n]).unwrap();
                        progress = true;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => panic!("read: {e}"),
                }
            }
            while let Some(n) = tls.read_plaintext_with(|b| {
                for (i, x) in b.iter().enumerate() {
                    assert_eq!(*x, ((got + i) % 251) as u8, "byte {}", got + i);
                }
                b.len()
            }) {
                got += n;
                progress = true;
            }
        }
        if !progress {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert_eq!(got, TOTAL);
    assert!(
        srv.max_held() <= 256 * 1024 + 64 * 1024,
        "held {}",
        srv.max_held()
    );
}

fn garbage_is_a_connect_error_and_the_server_goes_on(d: Driver) {
    let s = setup();
    let srv = tls_server(d, &s, None);
    let mut g = TcpStream::connect(srv.addr()).unwrap();
    g.set_read_timeout(Some(LIMIT)).unwrap();
    g.write_all(b"definitely not a ClientHello\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    let _ = g.read_to_end(&mut rest);
    assert!(srv.wait(LIMIT, |s| {
        s.events().iter().any(|(_, e)| e == "connect_error:ERR_TLS")
    }));
    assert!(
        !srv.events().iter().any(|(_, e)| e == "open"),
        "no open without a handshake"
    );
    let mut c = rustls_client(&srv, &s);
    c.write_all(b"ok").unwrap();
    let mut buf = [0u8; 2];
    c.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ok");
}

/// A client sends a valid record and a record that fails authentication in
/// one segment: the server delivers and echoes the valid data, then fails that
/// connection (`error`, `close`), sends its alert after the echo and closes;
/// the client sees the echo, then the alert, then EOF. (Before, the session's
/// kept error was never asked for: the socket lost all interest and the
/// connection stayed open forever.)
fn a_bad_record_after_valid_data_closes_the_connection(d: Driver) {
    let s = setup();
    let srv = tls_server(d, &s, None);
    let out = netkit_tests::tls_client::valid_then_corrupt_record(
        srv.addr(),
        &s.client,
        "localhost",
        b"valid",
        LIMIT,
    );
    assert_eq!(out.plaintext, b"valid", "{out:?}");
    let e = out.error.as_ref().expect("the server's alert");
    assert!(e.to_string().contains("BadRecordMac"), "{e}");
    assert!(out.closed, "{out:?}");
    assert!(srv.wait(LIMIT, |s| s.live() == 0), "{:?}", srv.events());
    let evs = srv.events_of(1);
    assert_eq!(evs.first().map(String::as_str), Some("open"), "{evs:?}");
    assert_eq!(
        &evs[evs.len() - 2..],
        ["error:ERR_TLS", "close:err"],
        "{evs:?}"
    );
}

/// The same, with the server in a process of its own: after bad records on
/// several connections, its descriptor count returns to its baseline.
fn a_bad_record_leaves_no_descriptor_open(d: Driver) {
    let pki = netkit_tests::pki::Pki::new();
    let which = match d {
        Driver::Blocking => "blocking",
        Driver::Smol => "smol",
    };
    let mut cmd = std::process::Command::new(netkit_tests::bin("netkit-echo"));
    cmd.arg(which)
        .arg(&pki.localhost.cert)
        .arg(&pki.localhost.key);
    let srv = netkit_tests::peer::Peer::spawn("netkit-echo --tls", cmd).expect("spawn");
    let line = srv
        .next_line(LIMIT)
        .unwrap_or_else(|| panic!("no first line: {}", srv.stderr()));
    let addr = netkit_tests::parse_listening(&line).expect("listening line");
    let config = netkit_sys::tls::client_config(&ClientOptions {
        ca: Some(Pem::new("ca", std::fs::read(&pki.ca).unwrap())),
        ..ClientOptions::default()
    })
    .unwrap();
    // The server's sockets (its listener, its connections, one lingering
    // while it closes); the poller's and timers' descriptors, made lazily,
    // are not connections and are left out.
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", srv.pid()))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| {
                        std::fs::read_link(e.path())
                            .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                    })
                    .count()
            })
            .unwrap_or(0)
    };
    // Before any connection: the listener alone. (Taken after a first
    // exchange it could catch that connection's socket still in its
    // lingering close, waiting for the client's EOF.)
    let baseline = fds();
    let warm = netkit_tests::tls_client::valid_then_corrupt_record(
        addr,
        &config,
        "localhost",
        b"w",
        LIMIT,
    );
    assert!(warm.closed, "{warm:?}");
    for i in 0..5 {
        let out = netkit_tests::tls_client::valid_then_corrupt_record(
            addr,
            &config,
            "localhost",
            format!("valid {i}").as_bytes(),
            LIMIT,
        );
        assert_eq!(out.plaintext, format!("valid {i}").as_bytes(), "{out:?}");
        assert!(out.closed, "{out:?}");
    }
    let end = std::time::Instant::now() + LIMIT;
    while fds() != baseline && std::time::Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(fds(), baseline, "{which}: descriptors left open");
}

/// A handshake that fails while the client's later bytes still wait unread
/// in the server's receive queue: the client still reads the server's alert,
/// then a clean EOF. (Closing a socket with unread bytes sends a reset, and a
/// reset destroys what the peer has not read yet: the alert was lost under
/// load. The server now sends the alert and its FIN, then reads and
/// discards until the client's EOF before it closes.)
fn the_alert_survives_bytes_the_server_never_read(d: Driver) {
    let s = setup();
    let srv = tls_server(d, &s, None);
    let mut c = TcpStream::connect(srv.addr()).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    // A handshake record a server must refuse (a ServerHello), then 200 KB
    // more: more than the server reads before the failure, less than the
    // close will discard.
    let mut bytes = vec![0x16, 0x03, 0x03, 0x00, 0x04, 0x02, 0x00, 0x00, 0x00];
    bytes.resize(bytes.len() + 200 * 1024, 0x17);
    let mut w = c.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(&bytes);
        // Our EOF ends the server's lingering read.
        let _ = w.shutdown(Shutdown::Write);
    });
    assert!(srv.wait(LIMIT, |s| s.live() == 0), "{:?}", srv.events());
    // The server has closed its side; what it sent must still be readable.
    std::thread::sleep(Duration::from_millis(100));
    let mut got = Vec::new();
    let r = c.read_to_end(&mut got);
    writer.join().unwrap();
    assert!(r.is_ok(), "{d:?}: {r:?} after {got:02x?}");
    assert_eq!(
        got.first(),
        Some(&0x15),
        "{d:?}: an alert record: {got:02x?}"
    );
    assert!(
        srv.events()
            .iter()
            .any(|(_, e)| e.starts_with("connect_error")),
        "{:?}",
        srv.events()
    );
}

netkit_tests::both_drivers!(
    a_client_fails_on_a_bad_record_after_valid_data,
    the_alert_survives_bytes_the_server_never_read,
    a_bad_record_leaves_no_descriptor_open,
    a_bad_record_after_valid_data_closes_the_connection,
    echo_and_clean_close,
    backpressure,
    garbage_is_a_connect_error_and_the_server_goes_on
);

#[test]
fn smol_tls_client_against_blocking_tls_server() {
    let s = setup();
    let srv = tls_server(Driver::Blocking, &s, None);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut opts = netkit_smol::ConnectOptions::new("localhost", srv.addr().port());
    opts.tls = Some(netkit_smol::ClientTls {
        config: s.client.clone(),
        server_name: None,
    });
    ::smol::block_on(netkit_smol::connect(
        opts,
        Recorder::greeting(&log, b"from smol"),
        (),
    ))
    .unwrap();
    let log = log.lock().unwrap();
    let data: String = log.iter().filter_map(|e| e.strip_prefix("data:")).collect();
    assert_eq!(data, "from smol");
    assert_eq!(log.first().map(String::as_str), Some("open"));
    assert_eq!(log.last().map(String::as_str), Some("close:false"));
}

#[test]
fn smol_tls_client_refuses_an_unknown_issuer() {
    let s = setup();
    let other = setup(); // a different self-signed certificate
    let srv = tls_server(Driver::Smol, &other, None);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut opts = netkit_smol::ConnectOptions::new("localhost", srv.addr().port());
    opts.tls = Some(netkit_smol::ClientTls {
        config: s.client.clone(),
        server_name: None,
    });
    let _ = ::smol::block_on(netkit_smol::connect(
        opts,
        Recorder::greeting(&log, b"from smol"),
        (),
    ));
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("tls: invalid peer certificate"), "{log:?}");
}

/// Records a client connection's events, for both drivers; with a
/// greeting, writes it at `open` and ends its side.
struct Recorder(Arc<Mutex<Vec<String>>>, Option<&'static [u8]>);

impl Recorder {
    fn greeting(log: &Arc<Mutex<Vec<String>>>, greeting: &'static [u8]) -> Self {
        Self(log.clone(), Some(greeting))
    }
}

impl netkit_smol::Handler for Recorder {
    type Data = ();
    fn open(&self, s: &mut netkit_smol::Socket<'_, ()>) {
        self.0.lock().unwrap().push("open".into());
        if let Some(g) = self.1 {
            let _ = s.write(g);
            s.end();
        }
    }
    fn data(&self, _s: &mut netkit_smol::Socket<'_, ()>, b: &[u8]) {
        self.0
            .lock()
            .unwrap()
            .push(format!("data:{}", String::from_utf8_lossy(b)));
    }
    fn error(&self, _s: &mut netkit_smol::Socket<'_, ()>, e: &Error) {
        self.0.lock().unwrap().push(format!("error:{e}"));
    }
    fn close(&self, _s: &mut netkit_smol::Socket<'_, ()>, e: Option<&Error>) {
        self.0
            .lock()
            .unwrap()
            .push(format!("close:{}", e.is_some()));
    }
    fn connect_error(&self, _s: &mut netkit_smol::Socket<'_, ()>, e: &Error) {
        self.0.lock().unwrap().push(format!("connect_error:{e}"));
    }
}

/// Our client (each driver) against a server that sends a valid record and
/// then a corrupted one: the client gets the valid data, then `error` naming
/// the TLS failure, then `close` with that error, and nothing hangs.
fn a_client_fails_on_a_bad_record_after_valid_data(d: Driver) {
    let s = setup();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server =
        netkit_tests::tls_client::corrupting_server(listener, s.server.clone(), b"valid", LIMIT);
    let log = Arc::new(Mutex::new(Vec::new()));
    let tls = Some(netkit_sys::ClientTls {
        config: s.client.clone(),
        server_name: None,
    });
    let mut opts = netkit_sys::ConnectOptions::new("localhost", port);
    opts.tls = tls;
    opts.timeout = Some(LIMIT); // the idle timer: a hang fails the test, never blocks it
    match d {
        Driver::Blocking => {
            let mut lp = netkit_blocking::EventLoop::new().unwrap();
            lp.connect(opts, Arc::new(Recorder(log.clone(), None)), ())
                .unwrap();
            lp.run().unwrap();
        }
        Driver::Smol => {
            let r = ::smol::block_on(netkit_smol::connect(opts, Recorder(log.clone(), None), ()));
            assert!(r.is_ok(), "{r:?}");
        }
    }
    server.join().unwrap();
    let log = log.lock().unwrap();
    assert_eq!(log.first().map(String::as_str), Some("open"), "{log:?}");
    let data: String = log.iter().filter_map(|e| e.strip_prefix("data:")).collect();
    assert_eq!(data, "valid", "{log:?}");
    let n = log.len();
    assert!(n >= 3, "{log:?}");
    assert!(
        log[n - 2].starts_with("error:tls: ") && log[n - 2].contains("decrypt"),
        "{log:?}"
    );
    assert_eq!(log[n - 1], "close:true", "{log:?}");
}
