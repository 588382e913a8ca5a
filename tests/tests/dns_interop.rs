//! DNS against a real server: nsd on a loopback port picked at run time,
//! serving the zones under tests/dns. `netkit dns` for every record type in
//! CLI.md (with `dig` as the reference for the answers), the error codes
//! (NXDOMAIN, NODATA, REFUSED, a dead server, a silent one), truncation to
//! TCP, forged answers racing the real one, in-flight coalescing on both
//! drivers, and `netkit connect --dns-server`.

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use netkit_dns::{Family, Rtype};
use netkit_sys::resolve::{DnsSettings, HostsFile};
use netkit_tests::dns::{Nsd, Relay};
use netkit_tests::peer::{Peer, have, run_bounded};
use netkit_tests::servers::Driver;
use netkit_tests::{bin, parse_listening};

const LIMIT: Duration = Duration::from_secs(30);

/// `netkit dns ARGS --server SERVER`: (exit code, stdout, stderr).
fn dns(server: SocketAddr, args: &[&str]) -> (i32, String, String) {
    // No hosts file of the machine's in the way.
    dns_env(server, args, &[("NETKIT_HOSTS", "/nonexistent")])
}

/// [`dns`] with this environment.
fn dns_env(server: SocketAddr, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin("netkit"));
    cmd.arg("dns")
        .args(args)
        .arg("--server")
        .arg(server.to_string());
    cmd.envs(env.iter().copied());
    let (code, out, err) = run_bounded(&mut cmd, b"", LIMIT);
    (
        code,
        String::from_utf8_lossy(&out).trim().to_string(),
        err.trim().to_string(),
    )
}

fn ok(server: SocketAddr, args: &[&str]) -> String {
    let (code, out, err) = dns(server, args);
    assert_eq!(code, 0, "{args:?}: {err}");
    out
}

fn fails(server: SocketAddr, args: &[&str], want: &str) {
    let (code, out, err) = dns(server, args);
    assert_eq!(code, 1, "{args:?}: {out}");
    assert_eq!(err, format!("netkit: error: {want}"), "{args:?}");
}

/// `dig +short` against the same server.
fn dig(server: SocketAddr, name: &str, t: &str) -> Vec<String> {
    let out = Command::new("dig")
        .args(["+short", "+tries=1", "+time=5"])
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), name, t])
        .output()
        .expect("run dig");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('.').to_string())
        .collect()
}

#[test]
fn every_record_type_in_node_shapes() {
    let Some(nsd) = Nsd::start() else { return };
    let s = nsd.addr;
    assert_eq!(ok(s, &["resolve4", "a.test"]), r#"["192.0.2.10"]"#);
    assert_eq!(
        ok(s, &["resolve4", "a.test", "--ttl"]),
        r#"[{"address":"192.0.2.10","family":4,"ttl":300}]"#
    );
    assert_eq!(
        ok(s, &["resolve6", "a.test", "--ttl"]),
        r#"[{"address":"2001:db8::10","family":6,"ttl":300}]"#
    );
    assert_eq!(ok(s, &["resolve", "a.test"]), r#"["192.0.2.10"]"#);
    assert_eq!(ok(s, &["resolve", "a.test", "AAAA"]), r#"["2001:db8::10"]"#);
    assert_eq!(
        ok(s, &["resolve", "test", "MX"]),
        r#"[{"exchange":"mail.test","priority":10},{"exchange":"mail2.test","priority":20}]"#
    );
    assert_eq!(
        ok(s, &["resolve", "txt.test", "TXT"]),
        r#"[["hello","world"]]"#
    );
    assert_eq!(
        ok(s, &["resolve", "_sip._tcp.test", "SRV"]),
        r#"[{"name":"sip.test","port":5060,"priority":10,"weight":60}]"#
    );
    assert_eq!(
        ok(s, &["resolve", "test", "SOA"]),
        r#"{"nsname":"ns.test","hostmaster":"hostmaster.test","serial":2026112901,"refresh":3600,"retry":600,"expire":86400,"minttl":60}"#
    );
    assert_eq!(ok(s, &["resolve", "test", "NS"]), r#"["ns.test"]"#);
    assert_eq!(ok(s, &["resolve", "alias.test", "CNAME"]), r#"["a.test"]"#);
    // A CNAME is followed to its target's records.
    assert_eq!(ok(s, &["resolve", "alias.test"]), r#"["192.0.2.10"]"#);
    assert_eq!(
        ok(s, &["resolve", "10.2.0.192.in-addr.arpa", "PTR"]),
        r#"["a.test"]"#
    );
    assert_eq!(
        ok(s, &["resolve", "test", "CAA"]),
        r#"[{"critical":0,"issue":"ca.example"}]"#
    );
    assert_eq!(
        ok(s, &["resolve", "naptr.test", "NAPTR"]),
        r#"[{"flags":"U","service":"E2U+sip","regexp":"!^.*$!sip:info@test!","replacement":".","order":100,"preference":10}]"#
    );
    let any = ok(s, &["resolve", "both.test", "ANY"]);
    let any: Vec<serde_json::Value> = serde_json::from_str(&any).expect("ANY is JSON");
    let mut typed: Vec<(String, String)> = any
        .iter()
        .map(|o| {
            (
                o["type"].as_str().unwrap_or("").to_owned(),
                o["address"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    typed.sort();
    // nsd answers ANY minimally (RFC 8482: one RRset of the name); dig, below,
    // must see the same records.
    assert!(!typed.is_empty(), "{any:?}");
    for (t, address) in &typed {
        let want = match t.as_str() {
            "A" => "192.0.2.20",
            "AAAA" => "2001:db8::20",
            other => panic!("ANY gave a {other} record: {any:?}"),
        };
        assert_eq!(address, want, "{any:?}");
    }
    assert_eq!(ok(s, &["reverse", "192.0.2.10"]), r#"["a.test"]"#);
    // Both families; which comes first depends on whether this machine has a
    // global IPv6 route (RFC 6724-ish ordering).
    let all = ok(s, &["lookup", "both.test", "--all"]);
    let (v4, v6) = (
        r#"{"address":"192.0.2.20","family":4}"#,
        r#"{"address":"2001:db8::20","family":6}"#,
    );
    // getaddrinfo's order on this machine (RFC 6724: IPv6 first only from a
    // native global IPv6 source address).
    let want = if netkit_sys::sys::caps::caps().prefer_ipv6 {
        format!("[{v6},{v4}]")
    } else {
        format!("[{v4},{v6}]")
    };
    assert_eq!(all, want);
    assert_eq!(
        ok(s, &["lookup", "both.test", "--family", "6"]),
        r#"{"address":"2001:db8::20","family":6}"#
    );
    // The short TTL as the server gives it.
    assert_eq!(
        ok(s, &["resolve4", "short.test", "--ttl"]),
        r#"[{"address":"192.0.2.30","family":4,"ttl":5}]"#
    );
    // dig agrees.
    if have("dig", "-v") {
        assert_eq!(dig(s, "a.test", "A"), ["192.0.2.10"]);
        assert_eq!(dig(s, "test", "MX"), ["10 mail.test", "20 mail2.test"]);
        assert_eq!(dig(s, "txt.test", "TXT"), [r#""hello" "world""#]);
        assert_eq!(dig(s, "alias.test", "A"), ["a.test", "192.0.2.10"]);
        assert_eq!(dig(s, "a.test", "AAAA"), ["2001:db8::10"]);
        assert_eq!(dig(s, "_sip._tcp.test", "SRV"), ["10 60 5060 sip.test"]);
        assert_eq!(
            dig(s, "test", "SOA"),
            ["ns.test. hostmaster.test. 2026112901 3600 600 86400 60"]
        );
        assert_eq!(dig(s, "test", "NS"), ["ns.test"]);
        assert_eq!(dig(s, "10.2.0.192.in-addr.arpa", "PTR"), ["a.test"]);
        assert_eq!(dig(s, "test", "CAA"), [r#"0 issue "ca.example""#]);
        let naptr = dig(s, "naptr.test", "NAPTR");
        assert_eq!(naptr.len(), 1);
        assert!(
            naptr[0].starts_with(r#"100 10 "U" "E2U+sip" "!^.*$!sip:info@test!""#),
            "{naptr:?}"
        );
        let mut any = dig(s, "both.test", "ANY");
        any.sort();
        let ours: Vec<&str> = typed.iter().map(|(_, a)| a.as_str()).collect();
        assert_eq!(any, ours, "dig's ANY gives the same records");
    }
}

#[test]
fn resolv_conf_and_hosts_come_from_the_environment() {
    let Some(nsd) = Nsd::start() else { return };
    let s = nsd.addr;
    let dir = netkit_tests::peer::TempDir::new("nk-dnsenv").expect("temp dir");
    let conf = dir.path().join("resolv.conf");
    std::fs::write(&conf, "search test\noptions ndots:2 timeout:1 attempts:1\n").expect("write");
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "10.1.2.3 pinned.test a.test\n").expect("write");
    let (conf, hosts) = (conf.to_str().unwrap(), hosts.to_str().unwrap());
    let env = [
        ("NETKIT_RESOLV_CONF", conf),
        ("NETKIT_HOSTS", "/nonexistent"),
    ];
    // `a` (fewer dots than ndots) is tried as a.test first: the search list.
    let (code, out, err) = dns_env(s, &["lookup", "a", "--family", "4"], &env);
    assert_eq!(
        (code, out.trim(), err.as_str()),
        (0, r#"{"address":"192.0.2.10","family":4}"#, "")
    );
    // `resolve*` never walks the search list (node's resolve4 does not): `a.`
    // is asked, outside nsd's zones, so refused.
    let (code, _, err) = dns_env(s, &["resolve4", "a"], &env);
    assert_eq!((code, err.trim()), (1, "netkit: error: EREFUSED: queryA a"));
    // The hosts file answers `lookup` first, never `resolve*`.
    let env = [("NETKIT_RESOLV_CONF", conf), ("NETKIT_HOSTS", hosts)];
    let (_, out, _) = dns_env(s, &["lookup", "a.test", "--all"], &env);
    assert_eq!(out.trim(), r#"[{"address":"10.1.2.3","family":4}]"#);
    let (_, out, _) = dns_env(s, &["resolve4", "a.test"], &env);
    assert_eq!(out.trim(), r#"["192.0.2.10"]"#);
    let (code, _, err) = dns_env(s, &["resolve4", "pinned.test"], &env);
    assert_eq!(
        (code, err.trim()),
        (1, "netkit: error: ENOTFOUND: queryA pinned.test")
    );
}

#[test]
fn truncated_answers_come_over_tcp() {
    let Some(nsd) = Nsd::start() else { return };
    let out = ok(nsd.addr, &["resolve", "big.test", "TXT"]);
    let v: Vec<Vec<String>> = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v.len(), 12, "every record of the truncated RRset");
    assert!(out.len() > 1232, "more than a UDP answer holds");
    if have("dig", "-v") {
        assert_eq!(dig(nsd.addr, "big.test", "TXT").len(), 12);
    }
}

#[test]
fn error_codes() {
    let Some(nsd) = Nsd::start() else { return };
    let s = nsd.addr;
    fails(s, &["resolve4", "nx.test"], "ENOTFOUND: queryA nx.test");
    fails(
        s,
        &["resolve6", "mail.test"],
        "ENODATA: queryAaaa mail.test",
    );
    // A zone nsd does not serve: REFUSED.
    fails(
        s,
        &["resolve4", "example.com"],
        "EREFUSED: queryA example.com",
    );
    fails(
        s,
        &["resolve4", &format!("{}.test", "x".repeat(64))],
        &format!(
            "EBADNAME: {}.test: a label longer than 63 bytes",
            "x".repeat(64)
        ),
    );
    fails(
        s,
        &["reverse", "192.0.2.99"],
        "ENOTFOUND: getHostByAddr 192.0.2.99",
    );
    fails(s, &["lookup", "nx.test"], "ENOTFOUND: getaddrinfo nx.test");
    // A dead server (nothing on the port): refused, at once.
    let deaf = netkit_tests::deaf_udp_socket();
    let dead = deaf.local_addr().unwrap();
    fails(dead, &["resolve4", "a.test"], "ECONNREFUSED: queryA a.test");
    // A silent server (reads, never answers): ETIMEOUT after --timeout ×
    // --tries, each try a datagram of its own.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let t = std::time::Instant::now();
    fails(
        silent.local_addr().unwrap(),
        &["resolve4", "a.test", "--timeout", "300", "--tries", "2"],
        "ETIMEOUT: queryA a.test",
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(600),
        "gave up early: {took:?}"
    );
    assert!(
        took < Duration::from_millis(600) + Duration::from_secs(10),
        "{took:?}"
    );
    silent.set_nonblocking(true).unwrap();
    let mut tries = 0;
    let mut buf = [0u8; 512];
    while silent.recv_from(&mut buf).is_ok() {
        tries += 1;
    }
    assert_eq!(tries, 2, "--tries 2: two queries");
    // Bad arguments: usage, exit 2.
    let (code, _, _) = dns(s, &["resolve", "a.test", "BOGUS"]);
    assert_eq!(code, 2);
}

/// Forged answers race the real one (another ID, another question, the right
/// fields from another port): none is taken.
#[test]
fn forged_answers_are_ignored() {
    let Some(nsd) = Nsd::start() else { return };
    let relay = Relay::start(nsd.addr, true);
    for _ in 0..5 {
        assert_eq!(
            ok(relay.addr(), &["resolve4", "a.test"]),
            r#"["192.0.2.10"]"#
        );
    }
}

/// Resolver settings that ask only `relay` (no resolv.conf, a fresh cache).
fn through(relay: &Relay) -> DnsSettings {
    DnsSettings {
        resolv_conf: netkit_dns::ResolvConf::default(),
        servers: Some(vec![relay.addr()]),
        cache: netkit_dns::cache::CacheConfig::default(),
        prefer_v6: false,
    }
}

/// 64 concurrent lookups of one name ask the server once (counted by a relay
/// in front of nsd), on both drivers; Bun's counters add up.
fn coalescing(d: Driver) {
    let Some(nsd) = Nsd::start() else { return };
    let relay = Relay::start(nsd.addr, false);
    let settings = through(&relay);
    let resolver = || netkit_sys::Resolver::new(HostsFile::new("/nonexistent"), settings.clone());
    let answers = Arc::new(Mutex::new(Vec::new()));
    let asked_before = nsd.queries();
    let stats = match d {
        Driver::Blocking => {
            let mut lp = netkit_blocking::EventLoop::new().unwrap();
            *lp.resolver() = resolver();
            for _ in 0..64 {
                let a = answers.clone();
                lp.resolve("both.test", Rtype::A, move |_, r| {
                    a.lock().unwrap().push(r.map(|x| x.records.len()));
                });
            }
            lp.run().unwrap();
            // Answered from the cache now, with no query.
            let a = answers.clone();
            lp.lookup("both.test", Family::V4, move |_, r| {
                a.lock().unwrap().push(
                    r.map(|x| x.len())
                        .map_err(|e| netkit_dns::Error::Invalid(e.to_string())),
                );
            });
            lp.dns_stats()
        }
        Driver::Smol => {
            let rt = netkit_smol::Runtime::with_resolver(resolver());
            // 64 requests in flight at once (each a task: a future that is
            // not polled starts nothing; the relay holds the answer until
            // all 64 have asked), then one lookup from the cache.
            let ex = ::smol::LocalExecutor::new();
            let tasks: Vec<_> = (0..64)
                .map(|_| ex.spawn(rt.resolve("both.test", Rtype::A)))
                .collect();
            relay.hold(true);
            ::smol::block_on(ex.run(async {
                let end = std::time::Instant::now() + LIMIT;
                while rt.dns_stats().total_count < 64 && std::time::Instant::now() < end {
                    ::smol::future::yield_now().await;
                }
                relay.hold(false);
                for t in tasks {
                    let r = t.await;
                    answers.lock().unwrap().push(r.map(|x| x.records.len()));
                }
                let r = rt.lookup_family("both.test", Family::V4).await;
                answers.lock().unwrap().push(
                    r.map(|x| x.len())
                        .map_err(|e| netkit_dns::Error::Invalid(e.to_string())),
                );
            }));
            rt.dns_stats()
        }
    };
    let got = answers.lock().unwrap().clone();
    assert!(
        got.len() >= 64 && got.iter().all(|r| r == &Ok(1)),
        "{got:?}"
    );
    assert_eq!(got.len(), 65, "{got:?}");
    assert_eq!(relay.queries(), 1, "one query upstream for 64 requests");
    assert_eq!(nsd.queries() - asked_before, 1, "nsd's own count agrees");
    // Bun's counters: the first request missed, 63 joined it in flight, the
    // lookup afterwards was a completed hit; one entry, no error.
    assert_eq!(
        (
            stats.cache_misses,
            stats.cache_hits_inflight,
            stats.cache_hits_completed,
            stats.total_count,
            stats.size,
            stats.errors
        ),
        (1, 63, 1, 65, 1, 0),
        "{stats:?}"
    );
}

netkit_tests::both_drivers!(coalescing);

/// Resolvers that share a cache (as every `Resolver::default()` shares the
/// process's): a name one loop resolved is a completed hit for another loop
/// and for a smol runtime, with no second query upstream, and the counters
/// are the cache's, the same wherever they are read.
#[test]
fn loops_and_runtimes_share_the_process_cache() {
    let Some(nsd) = Nsd::start() else { return };
    let relay = Relay::start(nsd.addr, false);
    let settings = through(&relay);
    let cache: netkit_sys::resolve::SharedCache =
        Arc::new(Mutex::new(netkit_dns::cache::Cache::new(settings.cache)));
    let resolver = || {
        netkit_sys::Resolver::new(HostsFile::new("/nonexistent"), settings.clone())
            .sharing(cache.clone())
    };
    let got = Arc::new(Mutex::new(Vec::new()));
    let resolve_on_a_loop = || {
        let mut lp = netkit_blocking::EventLoop::new().unwrap();
        *lp.resolver() = resolver();
        let g = got.clone();
        lp.lookup("both.test", Family::V4, move |_, r| {
            g.lock()
                .unwrap()
                .push(r.map(|a| a.len()).map_err(|e| e.to_string()));
        });
        lp.run().unwrap();
        lp.dns_stats()
    };
    let first = resolve_on_a_loop();
    let second = resolve_on_a_loop();
    let rt = netkit_smol::Runtime::with_resolver(resolver());
    let third = ::smol::block_on(rt.lookup_family("both.test", Family::V4)).map(|a| a.len());
    assert_eq!(*got.lock().unwrap(), [Ok(1), Ok(1)]);
    assert_eq!(third.map_err(|e| e.to_string()), Ok(1));
    assert_eq!(relay.queries(), 1, "one query upstream for three users");
    assert_eq!((first.cache_misses, first.cache_hits_completed), (1, 0));
    assert_eq!((second.cache_misses, second.cache_hits_completed), (1, 1));
    let st = rt.dns_stats();
    assert_eq!(
        (
            st.cache_misses,
            st.cache_hits_completed,
            st.total_count,
            st.size
        ),
        (1, 2, 3, 1)
    );
    // A resolver of its own shares nothing.
    let mut own = netkit_sys::Resolver::new(HostsFile::new("/nonexistent"), settings.clone());
    assert_eq!(own.stats().total_count, 0);
    assert!(matches!(
        own.lookup(std::time::Instant::now(), "both.test"),
        netkit_sys::resolve::Resolution::Pending(_)
    ));
}

/// `netkit connect NAME PORT --dns-server`: a name only nsd knows.
#[test]
fn connect_resolves_through_the_dns_server() {
    let Some(nsd) = Nsd::start() else { return };
    let mut cmd = Command::new(bin("netkit"));
    cmd.args(["listen", "--port", "0", "--echo"]);
    let srv = Peer::spawn("netkit listen", cmd).expect("spawn");
    let line = srv.next_line(LIMIT).expect("first line");
    let port = parse_listening(&line)
        .expect("listening")
        .port()
        .to_string();
    let connect = |host: &str| {
        let mut cmd = Command::new(bin("netkit"));
        cmd.args([
            "connect",
            host,
            &port,
            "--dns-server",
            &nsd.addr.to_string(),
        ])
        .env("NETKIT_HOSTS", "/nonexistent");
        run_bounded(&mut cmd, b"via nsd", LIMIT)
    };
    let (code, out, err) = connect("echo.test");
    assert_eq!((code, out.as_slice()), (0, &b"Echo: via nsd"[..]), "{err}");
    let (code, _, err) = connect("nx.test");
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "netkit: error: ENOTFOUND: getaddrinfo nx.test");
}

/// `netkit fetch --dns-server`: a URL whose host only nsd knows reaches
/// nginx (the hosts file still comes first, so it is pointed away), and an
/// NXDOMAIN host is `ENOTFOUND`.
#[test]
fn fetch_resolves_through_the_dns_server() {
    let Some(nsd) = Nsd::start() else { return };
    let pki = netkit_tests::pki::Pki::new();
    let Some(nginx) = netkit_tests::http::Nginx::start(&pki) else {
        return;
    };
    let fetch = |host: &str| {
        let mut cmd = Command::new(bin("netkit"));
        cmd.args([
            "fetch",
            &format!("http://{host}:{}/small.txt", nginx.http.port()),
            "--dns-server",
            &nsd.addr.to_string(),
        ])
        .env("NETKIT_HOSTS", "/nonexistent")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("all_proxy")
        .env_remove("ALL_PROXY");
        run_bounded(&mut cmd, b"", LIMIT)
    };
    let (code, out, err) = fetch("echo.test");
    assert_eq!((code, out.as_slice()), (0, &b"small\n"[..]), "{err}");
    let (code, out, err) = fetch("nx.test");
    assert_eq!(code, 1, "{err}");
    assert!(out.is_empty());
    assert_eq!(err.trim(), "netkit: error: ENOTFOUND: getaddrinfo nx.test");
}
