//! `cargo xtask`: netkit's task runner, plain Rust.
//!
//! - `test`: rustfmt check, clippy (`-D warnings`), the sans-IO check on `crates/`,
//!   every unit/property/integration/interop test and the fuzz-corpus replay, then a
//!   short smoke run of each fuzz target when cargo-fuzz is available.
//! - `interop`: only the tests that talk to real peers and the `netkit` binary.
//! - `bench [tcp|tls|dns|http] [ARGS]`: the side-by-side benchmarks (release build).
//! - `fuzz [TARGET] [--seconds N]`: fuzz campaigns (all targets by default).
//! - `demo`: a netkit echo server and clients talking on loopback.
//!
//! One module per command; this file holds the argument dispatch and the helpers
//! they share (the workspace root, a `cargo` command, running a step).

mod bench;
mod demo;
mod fuzz;
mod interop;
mod sans_io;
mod source;
mod test;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::OnceLock;

/// A command's outcome; the error is the message printed after `xtask: error:`.
type Result<T = ()> = std::result::Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = args
        .split_first()
        .map_or(("help", &[][..]), |(c, r)| (c.as_str(), r));
    let result = match cmd {
        "test" => test::run(rest),
        "interop" => interop::run(),
        "bench" => bench::run(rest),
        "fuzz" => fuzz::run(rest),
        "demo" => demo::run(),
        _ => {
            eprintln!(
                "usage: cargo xtask <test [--no-fuzz] | interop | bench [tcp|tls|dns|http] [ARGS] | fuzz [TARGET] [--seconds N] | demo>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

/// Cargo's target directory, as `cargo metadata` reports it: `target/` under the
/// root unless `CARGO_TARGET_DIR`, `build.target-dir` in a config file or the
/// like moves it. Every path xtask builds under the target directory (binaries,
/// fuzz corpora and logs, the demo's PKI, benchmark output) starts here, so that
/// `CARGO_TARGET_DIR=/elsewhere cargo xtask ...` finds what cargo built.
fn target_dir() -> Result<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(d) = DIR.get() {
        return Ok(d.clone());
    }
    let mut c = cargo();
    c.args(["metadata", "--format-version", "1", "--no-deps"]);
    let out = c.output().map_err(|e| format!("cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let dir = parse_target_directory(&out.stdout)?;
    Ok(DIR.get_or_init(|| dir).clone())
}

/// `target_directory` out of `cargo metadata`'s JSON.
fn parse_target_directory(json: &[u8]) -> Result<PathBuf> {
    let v: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| format!("cargo metadata output: {e}"))?;
    v.get("target_directory")
        .and_then(|d| d.as_str())
        .map(PathBuf::from)
        .ok_or_else(|| "cargo metadata output has no target_directory".into())
}

/// `$CARGO` (or `cargo`), run from the workspace root.
fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

/// Runs `cmd`, announcing it as `what`; a non-zero exit is an error.
fn run(mut cmd: Command, what: &str) -> Result {
    eprintln!("xtask: {what}");
    let st = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({st})"))
    }
}

/// Runs `cargo ARGS` as one announced step.
fn step(what: &str, args: &[&str]) -> Result {
    let mut c = cargo();
    c.args(args);
    run(c, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_directory_is_read_from_metadata() {
        let json = br#"{"packages":[],"target_directory":"/tmp/tgt","version":1}"#;
        assert_eq!(parse_target_directory(json), Ok(PathBuf::from("/tmp/tgt")));
        assert!(parse_target_directory(br#"{"version":1}"#).is_err());
        assert!(parse_target_directory(b"not json").is_err());
    }

    #[test]
    fn target_dir_is_absolute() {
        let d = target_dir().expect("cargo metadata");
        assert!(d.is_absolute(), "{}", d.display());
    }
}
