//! The DNS part of `cargo xtask demo`: a local DNS server (nsd with the test
//! zones when it is installed, else the canned server), lookups through the
//! blocking loop's resolver (a cold one, 8 concurrent ones sharing a query,
//! cached ones), Bun's six cache counters before and after, and the `netkit
//! dns` command against the same server. `netkit-dns-demo [NETKIT]`.

use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;

use netkit_dns::{Family, Rtype};
use netkit_sys::resolve::{DnsSettings, HostsFile};

fn print_stats(label: &str, s: netkit_dns::cache::Stats) {
    println!(
        "{label}: {{ cacheHitsCompleted: {}, cacheHitsInflight: {}, cacheMisses: {}, size: {}, errors: {}, totalCount: {} }}",
        s.cache_hits_completed,
        s.cache_hits_inflight,
        s.cache_misses,
        s.size,
        s.errors,
        s.total_count
    );
}

fn main() {
    use hickory_proto::rr::RData;
    use hickory_proto::rr::rdata::{A, AAAA};
    let nsd = netkit_tests::dns::Nsd::start();
    let fake;
    let server = match &nsd {
        Some(n) => {
            println!("DNS server: nsd on {} (zones in tests/dns)", n.addr);
            n.addr
        }
        None => {
            fake = netkit_tests::dns::FakeDns::start(vec![
                netkit_tests::dns::record("a.test.", 300, RData::A(A::new(192, 0, 2, 10))),
                netkit_tests::dns::record("both.test.", 300, RData::A(A::new(192, 0, 2, 20))),
                netkit_tests::dns::record(
                    "both.test.",
                    300,
                    RData::AAAA(AAAA::from(
                        "2001:db8::20".parse::<std::net::Ipv6Addr>().unwrap(),
                    )),
                ),
            ]);
            println!(
                "DNS server: netkit's canned server on {} (nsd is not installed)",
                fake.addr()
            );
            fake.addr()
        }
    };
    let mut lp = netkit_blocking::EventLoop::new().expect("loop");
    *lp.resolver() = netkit_sys::Resolver::new(
        HostsFile::new("/nonexistent"),
        DnsSettings {
            servers: Some(vec![server]),
            ..DnsSettings::from_env()
        },
    );
    print_stats("cache stats before", lp.dns_stats());
    let lines = Rc::new(RefCell::new(Vec::new()));
    let l = lines.clone();
    lp.resolve("a.test", Rtype::A, move |_, r| {
        l.borrow_mut().push(format!(
            "resolve4 a.test (cold): {:?}",
            r.map(|a| a.records.into_iter().map(|x| x.data).collect::<Vec<_>>())
        ));
    });
    for i in 0..8 {
        let l = lines.clone();
        lp.lookup("both.test", Family::Any, move |_, r| {
            if i == 0 {
                l.borrow_mut().push(format!(
                    "lookup both.test x8 at once (one query per type): {r:?}"
                ));
            }
        });
    }
    lp.run().expect("run");
    for _ in 0..3 {
        let l = lines.clone();
        lp.lookup("both.test", Family::Any, move |_, r| {
            l.borrow_mut()
                .push(format!("lookup both.test (cached): {r:?}"));
        });
    }
    for line in lines.borrow().iter() {
        println!("{line}");
    }
    print_stats("cache stats after", lp.dns_stats());
    if let Some(netkit) = std::env::args().nth(1) {
        for args in [["resolve4", "a.test", "--ttl"], ["resolve4", "nx.test", ""]] {
            let mut cmd = Command::new(&netkit);
            cmd.arg("dns")
                .args(args.iter().filter(|a| !a.is_empty()))
                .arg("--server")
                .arg(server.to_string());
            let out = cmd.output().expect("run netkit dns");
            println!(
                "netkit dns {}: exit {}, {}{}",
                args.join(" ").trim(),
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}
