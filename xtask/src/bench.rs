//! `cargo xtask bench [tcp|tls|dns|http|udp] [ARGS]`: the side-by-side benchmarks (release build).

use std::process::Command;

use crate::{Result, root, run as run_cmd, step, target_dir};

/// Runs the benchmark `tcp` (the default), `tls`, `dns`, `http` or `udp` with the remaining arguments.
pub(crate) fn run(args: &[String]) -> Result {
    let (which, rest) = match args.split_first() {
        Some((w, r)) if !w.starts_with('-') => (w.as_str(), r),
        _ => ("tcp", args),
    };
    match which {
        "tcp" => {
            build_with_cli()?;
            let mut c = Command::new(target_dir()?.join("release/bench-tcp"));
            c.current_dir(root()).args(rest);
            default_out(&mut c, rest, "tcp.json")?;
            run_cmd(c, "bench tcp")
        }
        "tls" => {
            step(
                "build benchmark binaries (release)",
                &["build", "--release", "-p", "netkit-bench"],
            )?;
            // In memory first (netkit-tls against a plain rustls loop, and idle heap
            // per session), then over loopback against tokio-rustls, Bun and
            // openssl s_server. `--quick` is understood by both; other arguments
            // go to the loopback runner.
            let mut c = Command::new(target_dir()?.join("release/bench-tls-mem"));
            c.current_dir(root());
            if rest.iter().any(|a| a == "--quick") {
                c.arg("--quick");
            }
            run_cmd(c, "bench tls (in memory)")?;
            let mut c = Command::new(target_dir()?.join("release/bench-tcp"));
            c.current_dir(root()).arg("--tls").args(rest);
            default_out(&mut c, rest, "tls.json")?;
            run_cmd(c, "bench tls (loopback)")
        }
        "dns" => {
            build_with_cli()?;
            // In process first (criterion: cache hits and decoding against
            // hickory and getaddrinfo), then end to end against nsd, which
            // also prints criterion's medians as ratios.
            let mut criterion = vec!["bench", "-p", "netkit-bench", "--bench", "dns", "--"];
            if rest.iter().any(|a| a == "--quick") {
                criterion.push("--quick");
            }
            step("bench dns (in process, criterion)", &criterion)?;
            let mut c = Command::new(target_dir()?.join("release/bench-dns"));
            c.current_dir(root()).args(rest);
            default_out(&mut c, rest, "dns.json")?;
            run_cmd(c, "bench dns (end to end)")
        }
        "http" => {
            build_with_cli()?;
            // In process first (criterion: response decoding against raw
            // httparse and hyper's client), then end to end against nginx
            // and tinyproxy with curl, Bun, reqwest and ureq as peers.
            let mut criterion = vec!["bench", "-p", "netkit-bench", "--bench", "http", "--"];
            if rest.iter().any(|a| a == "--quick") {
                criterion.push("--quick");
            }
            step("bench http (in process, criterion)", &criterion)?;
            let mut c = Command::new(target_dir()?.join("release/bench-http"));
            c.current_dir(root()).args(rest);
            default_out(&mut c, rest, "http.json")?;
            run_cmd(c, "bench http (end to end)")
        }
        "udp" => {
            build_with_cli()?;
            // Senders (std, netkit's sendmmsg and GSO plans, quinn-udp,
            // `netkit udp send --repeat`, Bun) to one loopback receiver, then
            // receivers (netkit, quinn-udp) live and draining a queue.
            let mut c = Command::new(target_dir()?.join("release/bench-udp"));
            c.current_dir(root()).args(rest);
            default_out(&mut c, rest, "udp.json")?;
            run_cmd(c, "bench udp")
        }
        other => Err(format!(
            "unknown benchmark {other:?} (have: tcp, tls, dns, http, udp)"
        )),
    }
}

/// Builds the benchmark binaries and the `netkit` CLI they run (release).
fn build_with_cli() -> Result {
    step(
        "build benchmark binaries (release)",
        &[
            "build",
            "--release",
            "-p",
            "netkit-bench",
            "-p",
            "netkit-cli",
        ],
    )
}

/// Unless the caller chose `--out`, writes bench-tcp's JSON to `bench/FILE` under
/// the target directory (bench-tcp's own default is `target/bench/...` relative
/// to the root, wrong when the target directory is elsewhere).
fn default_out(c: &mut Command, rest: &[String], file: &str) -> Result {
    if !rest.iter().any(|a| a == "--out" || a.starts_with("--out=")) {
        c.arg("--out").arg(target_dir()?.join("bench").join(file));
    }
    Ok(())
}
