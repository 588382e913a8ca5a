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
