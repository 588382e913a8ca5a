//! `cargo xtask test [--no-fuzz]`: rustfmt check, clippy (`-D warnings`), the sans-IO
//! check, `cargo test` on the default members (its pass/fail counts summed into
//! the closing line CI reads), then a short smoke run of each fuzz target.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Instant;

use crate::{Result, cargo, fuzz, sans_io, step};

/// Runs everything a fresh machine can run.
pub(crate) fn run(args: &[String]) -> Result {
    let t0 = Instant::now();
    step("rustfmt check", &["fmt", "--all", "--check"])?;
    step(
        "clippy",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--exclude",
            "netkit-bench",
            "--",
            "-D",
            "warnings",
        ],
    )?;
    sans_io::check()?;
    let (passed, failed) = cargo_test()?;
    if args.iter().any(|a| a == "--no-fuzz") {
        eprintln!("xtask: fuzz smoke skipped (--no-fuzz)");
    } else {
        fuzz::smoke()?;
    }
    eprintln!("xtask: test done in {:.0?}", t0.elapsed());
    // The plain closing line CI reads.
    println!("xtask: {passed} passed, {failed} failed");
    Ok(())
}

/// Runs `cargo test` on the default members, streaming its output, and adds up
/// the `test result:` lines.
fn cargo_test() -> Result<(u64, u64)> {
    eprintln!("xtask: tests (unit, property, integration, interop, fuzz corpus replay)");
    let mut c = cargo();
    c.arg("test").stdout(Stdio::piped());
    let mut child = c.spawn().map_err(|e| format!("cargo test: {e}"))?;
    let out = child.stdout.take().ok_or("cargo test: no stdout")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    for line in BufReader::new(out).lines() {
        let line = line.map_err(|e| e.to_string())?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split([';', '.']) {
                let mut w = part.split_whitespace();
                match (w.next().and_then(|n| n.parse::<u64>().ok()), w.next()) {
                    (Some(n), Some("passed")) => passed += n,
                    (Some(n), Some("failed")) => failed += n,
                    _ => {}
                }
            }
        }
    }
    let st = child.wait().map_err(|e| e.to_string())?;
    if !st.success() {
        println!("xtask: {passed} passed, {failed} failed");
        return Err(format!("cargo test failed ({st})"));
    }
    Ok((passed, failed))
}
