//! In-memory TLS benchmark (no sockets): full handshakes/s (ECDSA P-256 server
//! certificate) and bulk MB/s both ways, through netkit-tls's `TlsSession` against
//! a plain rustls loop written the obvious way. Candidates alternate round by
//! round; medians and ratios are printed. Target: netkit-tls >= 0.95x rustls.
//!
//! Also the heap an idle server session holds after its handshake and one 64-byte
//! echo, counted by a global allocator (no RSS noise): netkit-tls's session on
//! rustls's unbuffered API against rustls's buffered `ServerConnection`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call forwards to the system allocator with the caller's
// arguments; the counter is only bookkeeping.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

use netkit_tls::rustls::{ClientConnection, ServerConnection};
use netkit_tls::{ClientConfig, ClientOptions, Pem, ServerConfig, ServerOptions, TlsSession};

struct Cfg {
    client: ClientConfig,
    server: ServerConfig,
}

fn cfg() -> Cfg {
    let id = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("cert");
    let cert = Pem::new("cert.pem", id.cert.pem());
    let key = Pem::new("key.pem", id.signing_key.serialize_pem());
    let server =
        netkit_sys::tls::server_config(&ServerOptions::new(cert.clone(), key)).expect("server");
    // Full handshakes: no resumption.
    let client = netkit_sys::tls::client_config(&ClientOptions {
        ca: Some(cert),
        session_resumption: false,
        ..ClientOptions::default()
    })
    .expect("client");
    Cfg { client, server }
}

// ---- netkit-tls ----

fn nk_pair(c: &Cfg) -> (TlsSession, TlsSession) {
    let mut cl = TlsSession::client(&c.client, "localhost").unwrap();
    let mut sv = TlsSession::server(&c.server).unwrap();
    let mut buf = Vec::new();
    while cl.is_handshaking() || sv.is_handshaking() {
        buf.clear();
        cl.drain_transmit(&mut buf);
        sv.handle_input(&buf).unwrap();
        buf.clear();
        sv.drain_transmit(&mut buf);
        cl.handle_input(&buf).unwrap();
    }
    (cl, sv)
}

fn nk_bulk(a: &mut TlsSession, b: &mut TlsSession, total: usize) {
    let chunk = vec![0x5au8; 16 * 1024];
    let mut wire = Vec::with_capacity(64 * 1024);
    let mut got = 0;
    let mut sink = vec![0u8; 64 * 1024];
    while got < total {
        a.write(&chunk).unwrap();
        wire.clear();
        a.drain_transmit(&mut wire);
        b.handle_input(&wire).unwrap();
        loop {
            let m = b.read_plaintext(&mut sink);
            if m == 0 {
                break;
            }
            got += m;
        }
    }
}

// ---- plain rustls, the obvious loop ----

fn rl_pair(c: &Cfg) -> (ClientConnection, ServerConnection) {
    let mut cl =
        ClientConnection::new(c.client.rustls().clone(), "localhost".try_into().unwrap()).unwrap();
    let mut sv = ServerConnection::new(c.server.rustls().clone()).unwrap();
    let mut buf = Vec::new();
    while cl.is_handshaking() || sv.is_handshaking() {
        buf.clear();
        while cl.wants_write() {
            cl.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            sv.read_tls(&mut rd).unwrap();
            sv.process_new_packets().unwrap();
        }
        buf.clear();
        while sv.wants_write() {
            sv.write_tls(&mut buf).unwrap();
        }
        let mut rd = &buf[..];
        while !rd.is_empty() {
            cl.read_tls(&mut rd).unwrap();
            cl.process_new_packets().unwrap();
        }
    }
    (cl, sv)
}

fn rl_bulk<A, B, DA, DB>(a: &mut A, b: &mut B, total: usize)
where
    A: std::ops::DerefMut<Target = netkit_tls::rustls::ConnectionCommon<DA>>,
    B: std::ops::DerefMut<Target = netkit_tls::rustls::ConnectionCommon<DB>>,
{
    let chunk = vec![0x5au8; 16 * 1024];
    let mut wire = Vec::with_capacity(64 * 1024);
    let mut got = 0;
    let mut sink = vec![0u8; 64 * 1024];
    while got < total {
        a.writer().write_all(&chunk).unwrap();
        wire.clear();
        while a.wants_write() {
            a.write_tls(&mut wire).unwrap();
        }
        let mut rd = &wire[..];
        while !rd.is_empty() {
            b.read_tls(&mut rd).unwrap();
            b.process_new_packets().unwrap();
            loop {
                match b.reader().read(&mut sink) {
                    Ok(0) => break,
                    Ok(m) => got += m,
                    Err(_) => break,
                }
            }
        }
    }
}

/// Heap bytes per idle server session: `n` handshakes and one 64-byte echo
/// each, clients dropped, servers kept.
fn nk_idle_bytes(c: &Cfg, n: usize) -> f64 {
    let before = live();
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut cl, mut sv) = nk_pair(c);
        let msg = [7u8; 64];
        cl.write(&msg).unwrap();
        let mut wire = Vec::new();
        cl.drain_transmit(&mut wire);
        sv.handle_input(&wire).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(sv.read_plaintext(&mut buf), 64);
        sv.write(&buf).unwrap();
        wire.clear();
        sv.drain_transmit(&mut wire);
        cl.handle_input(&wire).unwrap();
        assert_eq!(cl.read_plaintext(&mut buf), 64);
        servers.push(sv);
    }
    let after = live();
    drop(servers);
    (after - before) as f64 / n as f64
}

fn rl_idle_bytes(c: &Cfg, n: usize) -> f64 {
    let before = live();
    let mut servers = Vec::with_capacity(n);
    for _ in 0..n {
        let (mut cl, mut sv) = rl_pair(c);
        let mut buf = [7u8; 64];
        cl.writer().write_all(&buf).unwrap();
        let mut wire = Vec::new();
        while cl.wants_write() {
            cl.write_tls(&mut wire).unwrap();
        }
        let mut rd = &wire[..];
        while !rd.is_empty() {
            sv.read_tls(&mut rd).unwrap();
            sv.process_new_packets().unwrap();
        }
        sv.reader().read_exact(&mut buf).unwrap();
        sv.writer().write_all(&buf).unwrap();
        wire.clear();
        while sv.wants_write() {
            sv.write_tls(&mut wire).unwrap();
        }
        let mut rd = &wire[..];
        while !rd.is_empty() {
            cl.read_tls(&mut rd).unwrap();
            cl.process_new_packets().unwrap();
        }
        cl.reader().read_exact(&mut buf).unwrap();
        servers.push(sv);
    }
    let after = live();
    drop(servers);
    (after - before) as f64 / n as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<F: FnMut()>(mut f: F) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn main() {
    // `--instructions MB`: one handshake, then MB of bulk each way through
    // netkit-tls and nothing else, for an instruction count under
    // `valgrind --tool=callgrind` (repeatable where wall-clock rates are not).
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--instructions") {
        let mb: usize = args.get(i + 1).and_then(|s| s.parse().ok()).unwrap_or(16);
        let c = cfg();
        let (mut cl, mut sv) = nk_pair(&c);
        nk_bulk(&mut cl, &mut sv, mb << 20);
        nk_bulk(&mut sv, &mut cl, mb << 20);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 1 } else { 5 };
    let hs_n = if quick { 200 } else { 2000 };
    let bulk = if quick { 64 << 20 } else { 512 << 20 };
    let c = cfg();
    let (mut nk_hs, mut rl_hs, mut nk_up, mut rl_up, mut nk_down, mut rl_down) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        // Alternate which candidate goes first.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for who in order {
            if who == 0 {
                let d = time(|| {
                    for _ in 0..hs_n {
                        std::hint::black_box(nk_pair(&c));
                    }
                });
                nk_hs.push(hs_n as f64 / d.as_secs_f64());
                let (mut cl, mut sv) = nk_pair(&c);
                let d = time(|| nk_bulk(&mut cl, &mut sv, bulk));
                nk_up.push(bulk as f64 / d.as_secs_f64() / 1e6);
                let d = time(|| nk_bulk(&mut sv, &mut cl, bulk));
                nk_down.push(bulk as f64 / d.as_secs_f64() / 1e6);
            } else {
                let d = time(|| {
                    for _ in 0..hs_n {
                        std::hint::black_box(rl_pair(&c));
                    }
                });
                rl_hs.push(hs_n as f64 / d.as_secs_f64());
                let (mut cl, mut sv) = rl_pair(&c);
                let d = time(|| rl_bulk(&mut cl, &mut sv, bulk));
                rl_up.push(bulk as f64 / d.as_secs_f64() / 1e6);
                let d = time(|| rl_bulk(&mut sv, &mut cl, bulk));
                rl_down.push(bulk as f64 / d.as_secs_f64() / 1e6);
            }
        }
        eprintln!("bench-tls-mem: round {}/{rounds} done", round + 1);
    }
    let rows = [
        (
            "full handshakes/s (ECDSA P-256)",
            median(nk_hs),
            median(rl_hs),
        ),
        ("bulk client->server MB/s", median(nk_up), median(rl_up)),
        ("bulk server->client MB/s", median(nk_down), median(rl_down)),
    ];
    println!("== TLS in memory ({rounds} round(s), median; one core) ==");
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "measure", "netkit-tls", "rustls loop", "ratio"
    );
    let mut all_ok = true;
    for (name, nk, rl) in rows {
        let ratio = nk / rl;
        all_ok &= ratio >= 0.95;
        println!("{name:<34} {nk:>12.0} {rl:>12.0} {ratio:>7.3}x");
    }
    println!(
        "{}  netkit-tls >= 0.95x a plain rustls loop on every row",
        if all_ok { "PASS" } else { "MISS" }
    );
    let n = if quick { 200 } else { 2000 };
    let (nk, rl) = (nk_idle_bytes(&c, n), rl_idle_bytes(&c, n));
    println!(
        "{:<34} {nk:>12.0} {rl:>12.0} {:>7.3}x",
        "idle server session, heap B",
        nk / rl
    );
    println!(
        "{}  an idle netkit-tls session holds less heap than rustls's buffered one",
        if nk < rl { "PASS" } else { "MISS" }
    );
}
