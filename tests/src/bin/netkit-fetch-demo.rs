//! The fetch part of `cargo xtask demo`: nginx (plain, TLS with a test CA, a
//! Unix socket) and tinyproxy on loopback, and `netkit fetch` against them:
//! a plain GET with its head, three URLs over one pooled connection, HTTPS,
//! a refused certificate, an http URL through the proxy and an https one
//! through a CONNECT tunnel, and a redirect loop. `netkit-fetch-demo NETKIT`.
//! Without nginx or tinyproxy installed, that part is skipped with a note.

use std::process::Command;

use netkit_tests::http::{Nginx, Tinyproxy};
use netkit_tests::pki::Pki;

fn fetch(netkit: &str, args: &[&str]) {
    println!("$ netkit fetch {}", args.join(" "));
    let out = Command::new(netkit)
        .arg("fetch")
        .args(args)
        .env_remove("http_proxy")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .output()
        .expect("run netkit fetch");
    let body = String::from_utf8_lossy(&out.stdout);
    let shown: String = body.lines().take(12).collect::<Vec<_>>().join("\n");
    if !shown.is_empty() {
        println!("{shown}");
    }
    let err = String::from_utf8_lossy(&out.stderr);
    for l in err
        .lines()
        .filter(|l| !l.starts_with('<') && !l.starts_with('>'))
    {
        println!("  {l}");
    }
    println!("  (exit {})\n", out.status.code().unwrap_or(-1));
}

fn main() {
    let netkit = std::env::args()
        .nth(1)
        .expect("usage: netkit-fetch-demo NETKIT");
    let pki = Pki::new();
    let Some(ng) = Nginx::start(&pki) else {
        println!("(nginx is not installed: the fetch demo is skipped; .ci/run installs it)");
        return;
    };
    let ca = pki.ca.to_str().expect("path");
    let http = |p: &str| format!("http://{}{p}", ng.http);
    fetch(&netkit, &["-i", &http("/hello")]);
    fetch(
        &netkit,
        &[
            "-v",
            &http("/hello?1"),
            &http("/hello?2"),
            &http("/hello?3"),
        ],
    );
    println!(
        "nginx saw those three requests on {} connection(s)\n",
        ng.connections_for("/hello?")
    );
    let https = format!("https://localhost:{}/small.txt", ng.https.port());
    fetch(&netkit, &["--cacert", ca, &https]);
    fetch(&netkit, &[&https]);
    let unix = ng.unix.to_string_lossy().into_owned();
    fetch(&netkit, &["--unix", &unix, "http://localhost/hello"]);
    fetch(&netkit, &[&http("/redirect")]);
    fetch(&netkit, &["--max-redirects", "3", &http("/loop")]);
    match Tinyproxy::start(None) {
        Some(tp) => {
            let proxy = format!("http://{}", tp.addr);
            fetch(&netkit, &["--proxy", &proxy, &http("/hello")]);
            fetch(&netkit, &["-v", "--proxy", &proxy, "--cacert", ca, &https]);
        }
        None => println!("(tinyproxy is not installed: the proxy demo is skipped)"),
    }
}
