//! The sans-IO check: nothing in `crates/` may touch a clock, a socket, a thread,
//! the environment or the file system (DESIGN.md, "The sans-IO contract").

use std::path::{Path, PathBuf};

use crate::{Result, root};

/// Fails if anything in `crates/` (outside tests) touches a clock, a socket, a
/// thread, the environment or the file system: the sans-IO contract.
pub(crate) fn check() -> Result {
    const FORBIDDEN: &[&str] = &[
        "Instant::now",
        "SystemTime::now",
        "std::net::TcpStream",
        "std::net::TcpListener",
        "std::net::UdpSocket",
        "std::thread",
        "std::env",
        "std::fs",
        "std::process",
    ];
    eprintln!("xtask: sans-IO check of crates/");
    let mut bad = Vec::new();
    let mut files = Vec::new();
    collect_rs(&root().join("crates"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        for (i, line) in text.lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            // Tests too, with no exception: their clock origin comes from
            // `netkit-test-clock` (tests/clock), as time comes from a driver.
            for pat in FORBIDDEN {
                if l.contains(pat) {
                    bad.push(format!("{}:{}: {pat}", f.display(), i + 1));
                }
            }
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("sans-IO contract broken:\n  {}", bad.join("\n  ")))
    }
}

/// Every `.rs` file under `dir`, skipping `target/` directories.
fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "target") {
                collect_rs(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}
