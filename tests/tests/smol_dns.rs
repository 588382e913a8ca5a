//! netkit-smol's DNS service, which the waiting futures drive themselves: a
//! dropped driver hands over to another waiter, and waiters on many threads
//! of one runtime all finish.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use futures_lite::future;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::RData;
use hickory_proto::rr::rdata::A;
use netkit_dns::Rtype;
use netkit_smol::Runtime;
use netkit_sys::resolve::{DnsSettings, HostsFile, Resolver};
use netkit_tests::dns::{FakeDns, record};

fn runtime(server: SocketAddr) -> Runtime {
    let settings = DnsSettings {
        resolv_conf: netkit_dns::ResolvConf::default(),
        servers: Some(vec![server]),
        cache: netkit_dns::cache::CacheConfig::default(),
        prefer_v6: false,
    };
    Runtime::with_resolver(Resolver::new(HostsFile::new("/dev/null"), settings))
}

/// A server that holds queries until `n` have come and `release` says so,
/// then answers them all (A 192.0.2.1 for any name); tells `seen` of each
/// query as it comes.
fn holding_server(
    n: usize,
    seen: std::sync::mpsc::Sender<()>,
    release: std::sync::mpsc::Receiver<()>,
) -> (SocketAddr, std::thread::JoinHandle<usize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let addr = sock.local_addr().expect("addr");
    let t = std::thread::spawn(move || {
        let mut held = Vec::new();
        let mut buf = [0u8; 1500];
        while held.len() < n {
            let Ok((len, from)) = sock.recv_from(&mut buf) else {
                break;
            };
            if let Ok(q) = Message::from_vec(&buf[..len]) {
                held.push((q, from));
                let _ = seen.send(());
            }
        }
        let _ = release.recv_timeout(Duration::from_secs(10));
        for (q, from) in &held {
            let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            m.metadata.response_code = ResponseCode::NoError;
            m.add_queries(q.queries.clone());
            let name = q.queries[0].name().to_ascii();
            m.add_answer(record(&name, 60, RData::A(A(Ipv4Addr::new(192, 0, 2, 1)))));
            let _ = sock.send_to(&m.to_vec().expect("encode"), from);
        }
        held.len()
    });
    (addr, t)
}

#[test]
fn a_dropped_driver_hands_over_to_another_waiter() {
    let (seen_tx, seen) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let (server, held) = holding_server(2, seen_tx, release_rx);
    let rt = runtime(server);
    // `a` waits in a task of its own, parked once its query is out.
    let r = rt.clone();
    let a = smol::spawn(async move { r.resolve("a.test", Rtype::A).await });
    seen.recv_timeout(Duration::from_secs(10))
        .expect("a's query");
    smol::block_on(async {
        // `b` sends its query and, polled last, holds every socket's waker;
        // then it is dropped before any answer.
        let mut b = Box::pin(rt.resolve("b.test", Rtype::A));
        assert!(future::poll_once(b.as_mut()).await.is_none());
        drop(b);
    });
    seen.recv_timeout(Duration::from_secs(10))
        .expect("b's query");
    // Now the answers: only a waiter that took over from `b` can hear them.
    release.send(()).expect("release");
    let got = smol::block_on(future::or(async { Some(a.await) }, async {
        smol::Timer::after(Duration::from_secs(8)).await;
        None
    }));
    assert_eq!(held.join().expect("server"), 2);
    let answer = got
        .expect("the remaining waiter was never woken")
        .expect("an answer");
    assert_eq!(answer.records.len(), 1);
}

#[test]
fn waiters_on_many_threads_of_one_runtime_all_finish() {
    let zone = (0..64)
        .map(|i| {
            record(
                &format!("n{i}.test."),
                60,
                RData::A(A(Ipv4Addr::new(192, 0, 2, i as u8))),
            )
        })
        .collect();
    let dns = FakeDns::start(zone);
    let rt = runtime(dns.addr());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                smol::block_on(async {
                    let mut got = Vec::new();
                    // Eight at once per thread, sixteen names per thread.
                    for round in 0..2 {
                        let futs: Vec<_> = (0..8)
                            .map(|k| {
                                let i = t * 16 + round * 8 + k;
                                let rt = rt.clone();
                                smol::spawn(async move {
                                    (i, rt.resolve(&format!("n{i}.test"), Rtype::A).await)
                                })
                            })
                            .collect();
                        for f in futs {
                            got.push(f.await);
                        }
                    }
                    got
                })
            })
        })
        .collect();
    let mut n = 0;
    for t in threads {
        for (i, r) in t.join().expect("thread") {
            let a = r.unwrap_or_else(|e| panic!("n{i}.test: {e}"));
            assert_eq!(
                a.records[0].data,
                netkit_dns::RecordData::A(Ipv4Addr::new(192, 0, 2, i as u8))
            );
            n += 1;
        }
    }
    assert_eq!(n, 64);
    assert_eq!(rt.dns_stats().cache_misses, 64);
}
