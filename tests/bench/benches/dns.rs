//! In-process DNS benchmarks (criterion), behind `cargo xtask bench dns`.
//!
//! - `dns_cache_hit`: a warm cache answering a name it holds. netkit's
//!   `Dns::cached` (a `dns.resolve4` hit: borrowed, no allocation) and the
//!   driver's `Resolver::lookup` (a `dns.lookup` hit: hosts file check, A and
//!   AAAA from the cache, a fresh `Vec` of addresses), against hickory's
//!   `lookup` / `lookup_ip` on a warmed cache and against `getaddrinfo("localhost")`
//!   (what a program without a cache pays for the cheapest name there is).
//! - `dns_decode`: one A+AAAA-sized answer through netkit's `read_response`
//!   (matching, validation, node's record shapes) against hickory-proto's
//!   bare `Message::from_vec`.
//!
//! Both caches are warmed from the same in-process server (`FakeDns`), with
//! TTLs far above the run time. `bench-dns` reads the estimates criterion
//! writes and prints the ratios.

use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use netkit_blocking::EventLoop;
use netkit_dns::message::{Verdict, read_response};
use netkit_dns::{Family, Rtype};
use netkit_sys::resolve::{DnsSettings, HostsFile, Resolution, Resolver};
use netkit_tests::dns::{FakeDns, record};

const NAME: &str = "bench.test";

fn zone() -> Vec<hickory_proto::rr::Record> {
    vec![
        record(
            "bench.test.",
            86_400,
            RData::A(Ipv4Addr::new(192, 0, 2, 1).into()),
        ),
        record(
            "bench.test.",
            86_400,
            RData::AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).into()),
        ),
    ]
}

/// An event loop whose resolver asks `server` and has `NAME` cached (A and AAAA).
fn warm_netkit(server: std::net::SocketAddr) -> EventLoop {
    let mut lp = EventLoop::new().expect("event loop");
    let settings = DnsSettings {
        servers: Some(vec![server]),
        ..DnsSettings::from_env()
    };
    *lp.resolver() = Resolver::new(HostsFile::from_env(), settings);
    let done = std::rc::Rc::new(std::cell::Cell::new(false));
    let d = done.clone();
    lp.lookup(NAME, Family::Any, move |_, r| {
        assert_eq!(r.expect("warm-up lookup").len(), 2);
        d.set(true);
    });
    let d = done.clone();
    lp.resolve(NAME, Rtype::A, |_, r| {
        r.expect("warm-up resolve");
    });
    assert!(
        lp.run_until(Duration::from_secs(10), move || d.get())
            .expect("run")
    );
    lp.run().expect("run");
    lp
}

fn warm_hickory(rt: &tokio::runtime::Runtime, server: std::net::SocketAddr) -> TokioResolver {
    let mut udp = ConnectionConfig::udp();
    udp.port = server.port();
    let ns = NameServerConfig::new(server.ip(), true, vec![udp]);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 1024;
    let r = rt.block_on(async {
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(vec![ns]),
            TokioRuntimeProvider::new(),
        )
        .with_options(opts)
        .build()
        .expect("hickory resolver")
    });
    let n = rt
        .block_on(r.lookup_ip("bench.test."))
        .expect("hickory warm-up")
        .iter()
        .count();
    assert_eq!(n, 2);
    rt.block_on(r.lookup("bench.test.", RecordType::A))
        .expect("hickory warm-up A");
    r
}

fn cache_hit(c: &mut Criterion) {
    let server = FakeDns::start(zone());
    let mut lp = warm_netkit(server.addr());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let hickory = warm_hickory(&rt, server.addr());

    let mut g = c.benchmark_group("dns_cache_hit");
    g.bench_function("netkit_cached_a", |b| {
        b.iter(|| {
            let now = Instant::now();
            let hit = lp.resolver().dns().cached(now, black_box(NAME), Rtype::A);
            assert!(matches!(hit, Some(Ok(_))));
            black_box(hit.is_some());
        })
    });
    g.bench_function("netkit_lookup", |b| {
        b.iter(|| {
            let now = Instant::now();
            match lp.resolver().lookup(now, black_box(NAME)) {
                Resolution::Ready(Ok(v)) => black_box(v),
                other => panic!("not a hit: {other:?}"),
            }
        })
    });
    g.bench_function("hickory_lookup_a", |b| {
        b.iter(|| {
            let l = rt
                .block_on(hickory.lookup(black_box("bench.test."), RecordType::A))
                .expect("hit");
            black_box(l);
        })
    });
    g.bench_function("hickory_lookup_ip", |b| {
        b.iter(|| {
            let l = rt
                .block_on(hickory.lookup_ip(black_box("bench.test.")))
                .expect("hit");
            black_box(l);
        })
    });
    // What the two netkit figures above spend reading the clock (`now` is
    // the driver's argument to every call into the sans-IO crate).
    g.bench_function("clock_read", |b| b.iter(|| black_box(Instant::now())));
    g.bench_function("getaddrinfo_localhost", |b| {
        b.iter(|| {
            let v: Vec<_> = (black_box("localhost"), 0)
                .to_socket_addrs()
                .expect("getaddrinfo")
                .collect();
            black_box(v);
        })
    });
    g.finish();
}

/// A response of `bench.test` A as a server sends it (answer with one record).
fn response_bytes(id: u16) -> Vec<u8> {
    let mut m = Message::new(id, MessageType::Response, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.metadata.recursion_available = true;
    m.add_query(Query::query(
        Name::from_ascii("bench.test.").expect("name"),
        RecordType::A,
    ));
    m.add_answer(zone().remove(0));
    m.to_vec().expect("encode")
}

fn decode(c: &mut Criterion) {
    let bytes = response_bytes(0x1234);
    let mut g = c.benchmark_group("dns_decode");
    g.bench_function("netkit_read_response", |b| {
        b.iter(|| {
            let v = read_response(black_box(&bytes), 0x1234, NAME, Rtype::A);
            assert!(matches!(v, Verdict::Answer(_)));
            black_box(v);
        })
    });
    g.bench_function("hickory_from_vec", |b| {
        b.iter(|| black_box(Message::from_vec(black_box(&bytes)).expect("decode")))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = cache_hit, decode
}
criterion_main!(benches);
