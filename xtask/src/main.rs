//! `cargo xtask`: netkit's task runner, plain Rust.
//!
//! - `test`: rustfmt check, clippy (`-D warnings`), the sans-IO check on `crates/`,
//!   every unit/property/integration/interop test and the fuzz-corpus replay, then a
//!   short smoke run of each fuzz target when cargo-fuzz is available.
//! - `interop`: only the tests that talk to real peers and the `netkit` binary.
//! - `bench [tcp|tls] [ARGS]`: the side-by-side benchmarks (release build).
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
mod test;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

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
                "usage: cargo xtask <test [--no-fuzz] | interop | bench [tcp|tls] [ARGS] | fuzz [TARGET] [--seconds N] | demo>"
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
