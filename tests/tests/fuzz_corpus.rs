//! Replays every fuzz target's checked-in corpus (`fuzz/corpus/<target>/`) through
//! the target body on stable Rust.

use std::path::Path;

fn replay(target: &str, body: fn(&[u8])) {
    let dir = netkit_tests::workspace_root()
        .join("fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let ok = std::panic::catch_unwind(|| body(&data));
        assert!(ok.is_ok(), "{target}: {} fails", name(&path));
        n += 1;
    }
    assert!(n > 0, "{target}: empty corpus");
}

fn name(p: &Path) -> String {
    p.file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn socket_ops_corpus() {
    replay("socket_ops", netkit_tests::fuzz::socket_ops);
}

#[test]
fn hosts_corpus() {
    replay("hosts", netkit_tests::fuzz::hosts);
}

#[test]
fn tls_sessions_corpus() {
    replay("tls_sessions", netkit_tests::fuzz::tls_sessions);
}

/// Regenerates the TLS seed that needs a live session (a real ClientHello):
/// `cargo test -p netkit-tests --test fuzz_corpus -- --ignored write_tls_seeds`.
#[test]
#[ignore]
fn write_tls_seeds() {
    let dir = netkit_tests::workspace_root().join("fuzz/corpus/tls_sessions");
    std::fs::create_dir_all(&dir).unwrap();
    let mut seed = vec![255u8];
    seed.extend(netkit_tests::fuzz::client_hello());
    std::fs::write(dir.join("seed-client-hello"), &seed).unwrap();
    let mut split = vec![0u8];
    split.extend(netkit_tests::fuzz::client_hello());
    std::fs::write(dir.join("seed-client-hello-1-byte"), &split).unwrap();
}

#[test]
fn udp_batch_corpus() {
    replay("udp_batch", netkit_tests::fuzz::udp_batch);
}

#[test]
fn connect_plan_corpus() {
    replay("connect_plan", netkit_tests::fuzz::connect_plan);
}

#[test]
fn accept_gate_corpus() {
    replay("accept_gate", netkit_tests::fuzz::accept_gate);
}

#[test]
fn dns_message_corpus() {
    replay("dns_message", netkit_tests::fuzz::dns_message);
}

#[test]
fn dns_resolver_corpus() {
    replay("dns_resolver", netkit_tests::fuzz::dns_resolver);
}

/// Regenerates the DNS seeds (real responses):
/// `cargo test -p netkit-tests --test fuzz_corpus -- --ignored write_dns_seeds`.
#[test]
#[ignore]
fn write_dns_seeds() {
    let root = netkit_tests::workspace_root().join("fuzz/corpus");
    for (name, seed) in netkit_tests::fuzz::dns_seeds() {
        let (target, file) = name.split_once('/').unwrap();
        std::fs::create_dir_all(root.join(target)).unwrap();
        std::fs::write(root.join(target).join(file), seed).unwrap();
    }
}

#[test]
fn http_response_corpus() {
    replay("http_response", netkit_tests::fuzz::http_response);
}

#[test]
fn http_chunked_corpus() {
    replay("http_chunked", netkit_tests::fuzz::http_chunked);
}

#[test]
fn proxy_select_corpus() {
    replay("proxy_select", netkit_tests::fuzz::proxy_select);
}
