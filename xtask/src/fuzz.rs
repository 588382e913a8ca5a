//! `cargo xtask fuzz [TARGET] [--seconds N]`: fuzz campaigns with cargo-fuzz (all
//! targets by default), and the short smoke runs `xtask test` makes.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Result, root, run as run_cmd, target_dir};

/// The targets: one per `fuzz/fuzz_targets/*.rs`.
fn all_targets() -> Result<Vec<String>> {
    let dir = root().join("fuzz/fuzz_targets");
    let mut t: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            if p.extension()? != "rs" {
                return None;
            }
            Some(p.file_stem()?.to_string_lossy().into_owned())
        })
        .collect();
    t.sort();
    Ok(t)
}

/// How to run cargo-fuzz here: `cargo +nightly fuzz` when a nightly is installed,
/// else stable with `RUSTC_BOOTSTRAP=1`; `None` when cargo-fuzz is missing.
fn command() -> Option<Command> {
    let has_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_fuzz {
        return None;
    }
    let nightly = Command::new("rustup")
        .args(["toolchain", "list"])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("nightly"));
    // Plain `cargo` (not $CARGO) so that rustup's `+toolchain` works.
    let mut c = Command::new("cargo");
    c.current_dir(root().join("fuzz"));
    // The toolchain chosen by the parent cargo must not leak into the nightly one.
    c.env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .env_remove("RUSTC");
    if nightly {
        c.arg("+nightly");
    } else {
        c.env("RUSTC_BOOTSTRAP", "1");
    }
    c.arg("fuzz");
    Some(c)
}

/// Runs one campaign; with `log`, libFuzzer's chatter goes to that file and only
/// its final line is echoed.
fn campaign(target: &str, seconds: u64, log: Option<&Path>) -> Result {
    let Some(mut c) = command() else {
        return Err("cargo-fuzz is not installed (cargo install cargo-fuzz)".into());
    };
    let work = target_dir()?.join("fuzz-corpus").join(target);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let seeds = root().join("fuzz/corpus").join(target);
    c.arg("run")
        .arg(target)
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg("-print_final_stats=1");
    let what = format!("fuzz {target} for {seconds}s");
    let Some(log) = log else {
        return run_cmd(c, &what);
    };
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let file2 = file.try_clone().map_err(|e| e.to_string())?;
    c.stdout(file).stderr(file2);
    let res = run_cmd(c, &what);
    let text = std::fs::read_to_string(log).unwrap_or_default();
    if let Some(done) = text.lines().rev().find(|l| l.starts_with("Done ")) {
        eprintln!("xtask: fuzz {target}: {done}");
    }
    if res.is_err() {
        eprintln!("xtask: fuzz {target} log ({}):", log.display());
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        for l in tail.into_iter().rev() {
            eprintln!("  {l}");
        }
    }
    res
}

/// Ten seconds of each target, logs under `fuzz-logs/` in the target directory; a note when
/// cargo-fuzz is missing.
pub(crate) fn smoke() -> Result {
    if command().is_none() {
        eprintln!(
            "xtask: NOTE: cargo-fuzz is not installed: fuzz smoke runs SKIPPED \
             (the seed corpora were still replayed as plain tests)"
        );
        return Ok(());
    }
    let logs = target_dir()?.join("fuzz-logs");
    std::fs::create_dir_all(&logs).map_err(|e| e.to_string())?;
    for t in all_targets()? {
        campaign(&t, 10, Some(&logs.join(format!("{t}.log"))))?;
    }
    Ok(())
}

/// `cargo xtask fuzz [TARGET...] [--seconds N]`.
pub(crate) fn run(args: &[String]) -> Result {
    let mut seconds = 60;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" {
            seconds = it
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or("--seconds needs a number")?;
        } else {
            targets.push(a.clone());
        }
    }
    if targets.is_empty() {
        targets = all_targets()?;
    }
    for t in targets {
        campaign(&t, seconds, None)?;
    }
    Ok(())
}
