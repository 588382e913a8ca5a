//! `netkit`: the toolkit's command line (shared/CLI.md is its contract).

mod dns;
mod fetch;
mod listen_connect;
mod udp;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A curl + dig + ncat on netkit's engine.
#[derive(Debug, Parser)]
#[command(name = "netkit", version, about)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Fetch URLs over HTTP/1.1 (Bun's fetch): bodies to stdout or a file.
    Fetch(fetch::FetchArgs),
    /// Accept TCP connections (Bun.listen); print what arrives, or echo it back.
    Listen(listen_connect::ListenArgs),
    /// Connect over TCP (Bun.connect): stdin to the socket, the socket to stdout.
    Connect(listen_connect::ConnectArgs),
    /// Resolve names (node's dns.promises): JSON in node's shapes.
    Dns(dns::DnsArgs),
    /// Send and receive datagrams (Bun.udpSocket).
    Udp(udp::UdpArgs),
}

/// A failure to report as `netkit: error: KIND: detail`, exit status 1.
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Fetch(a) => fetch::run(a),
        Cmd::Listen(a) => listen_connect::listen(a),
        Cmd::Connect(a) => listen_connect::connect(a),
        Cmd::Dns(a) => dns::run(a),
        Cmd::Udp(a) => udp::run(a),
    };
    match result {
        Ok(code) => code,
        Err(Failure(msg)) => {
            eprintln!("netkit: error: {msg}");
            ExitCode::from(1)
        }
    }
}
