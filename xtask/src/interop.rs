//! `cargo xtask interop`: only the tests that talk to real peers and the `netkit`
//! binary.
//!
//! Which test binaries those are is read from the sources, so a new interop test
//! file needs no change here. A test binary of `netkit-tests` (`tests/tests/NAME.rs`
//! or `tests/tests/NAME/main.rs`) is an interop binary when its code, comments
//! and string literals left out, starts a real peer process or the `netkit`
//! binary through the test support, that is when any of its files
//!
//! - names `netkit_tests::peer` (a path, or a `use` of it or of anything in it,
//!   `Peer`, `have`, `run_bounded`, `openssl_s_server`...), or writes `peer::`;
//! - names `netkit_tests::bin` (`netkit_tests::bin("netkit")`, or
//!   `use netkit_tests::{bin, ...}`).
//!
//! In-process tests (the drivers' servers in `netkit_tests::servers`, in-memory
//! pairs) are not interop tests.

use std::path::{Path, PathBuf};

use crate::source::{blank, use_decls};
use crate::{Result, cargo, root, run as run_cmd};

/// Runs `cargo test -p netkit-tests --test A --test B ...` over every interop
/// test binary.
pub(crate) fn run() -> Result {
    let names = interop_tests(&root().join("tests/tests"))?;
    if names.is_empty() {
        return Err("no interop test binaries found under tests/tests".into());
    }
    let mut c = cargo();
    c.args(["test", "-p", "netkit-tests"]);
    for n in &names {
        c.args(["--test", n]);
    }
    run_cmd(
        c,
        &format!(
            "interop tests (real peers and the netkit binary over loopback): {}",
            names.join(", ")
        ),
    )
}

/// The names of the interop test binaries under `dir`, sorted.
fn interop_tests(dir: &Path) -> Result<Vec<String>> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut names = Vec::new();
    for e in rd.flatten() {
        let p = e.path();
        let (name, files): (String, Vec<PathBuf>) = if p.is_dir() {
            if !p.join("main.rs").exists() {
                continue;
            }
            let mut files = Vec::new();
            collect_rs(&p, &mut files);
            (e.file_name().to_string_lossy().into_owned(), files)
        } else if p.extension().is_some_and(|x| x == "rs") {
            let Some(stem) = p.file_stem() else { continue };
            (stem.to_string_lossy().into_owned(), vec![p.clone()])
        } else {
            continue;
        };
        let mut interop = false;
        for f in files {
            let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
            interop |= is_interop(&text);
        }
        if interop {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_rs(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Whether one source file starts real peers or the `netkit` binary (the rule in
/// the module docs).
fn is_interop(text: &str) -> bool {
    let code = blank(text);
    let under = |path: &str, module: &str| {
        path.strip_prefix(module)
            .is_some_and(|r| r.is_empty() || r.starts_with("::"))
    };
    let imports = use_decls(&code).into_iter().flat_map(|d| d.items).any(|u| {
        under(&u.path, "netkit_tests::peer")
            || under(&u.path, "netkit_tests::bin")
            || u.path == "netkit_tests::*"
    });
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let peer_path = code
        .match_indices("peer::")
        .any(|(i, _)| !code[..i].chars().next_back().is_some_and(ident));
    imports
        || peer_path
        || code.contains("netkit_tests::peer")
        || code.contains("netkit_tests::bin(")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_interop_files() {
        assert!(is_interop("use netkit_tests::peer::Peer;"));
        assert!(is_interop(
            "use netkit_tests::{bin, free_port};\nfn t() { bin(\"netkit\"); }"
        ));
        assert!(is_interop(
            "use netkit_tests::{\n    peer::{self, run_bounded},\n};"
        ));
        assert!(is_interop(
            "fn t() { if !netkit_tests::peer::have(\"openssl\", \"version\") {} }"
        ));
        assert!(is_interop(
            "fn t() { let p = netkit_tests::bin(\"netkit\"); }"
        ));
        assert!(is_interop(
            "use netkit_tests::peer;\nfn t() { peer::have(\"x\", \"y\"); }"
        ));
        assert!(!is_interop(
            "use netkit_tests::servers::{Driver, TestServer};\nfn t() { netkit_tests::free_port(); }"
        ));
        assert!(!is_interop(
            "// uses netkit_tests::peer::Peer one day\nfn t() { let s = \"peer::\"; let my_peer = 1; }"
        ));
        assert!(!is_interop("fn t() { netkit_tests::binary_size(); }"));
    }

    #[test]
    fn finds_the_interop_binaries_of_this_workspace() {
        let names = interop_tests(&root().join("tests/tests")).expect("tests/tests");
        for n in ["cli", "tls_interop", "tls_streams"] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        for n in ["sockets", "fd_leak", "fuzz_corpus"] {
            assert!(!names.iter().any(|x| x == n), "{n} in {names:?}");
        }
    }
}
