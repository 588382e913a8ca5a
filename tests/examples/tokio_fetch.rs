//! netkit's sans-IO fetch client driven over tokio, an executor netkit does
//! not ship: `tokio_fetch URL...` prints each body. Every HTTP decision
//! (pool, proxies, TLS and CONNECT layers, redirects, decoding) is the
//! machine's; this file only moves bytes between it and tokio's sockets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use netkit_fetch::{Action, Client, ClientConfig, ConnId, Event, Request, Target, Url};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

enum Io {
    Connected(ConnId),
    Data(ConnId, Vec<u8>),
    Eof(ConnId),
    Failed(ConnId, String, String),
}

/// One connection: connect, then read into the channel and write what the
/// main loop hands over. Dropping its sender closes it.
fn spawn_conn(
    conn: ConnId,
    target: Target,
    io: mpsc::UnboundedSender<Io>,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        // TCP only here (a Unix target would use tokio's UnixStream alike).
        let Target::Tcp { host, port } = target else {
            return;
        };
        let s = match tokio::net::TcpStream::connect((host.as_str(), port)).await {
            Ok(s) => s,
            Err(e) => {
                let msg = format!("connect {host}:{port}: {e}");
                let _ = io.send(Io::Failed(conn, "ECONNREFUSED".into(), msg));
                return;
            }
        };
        let _ = s.set_nodelay(true);
        let (mut r, mut w) = s.into_split();
        let _ = io.send(Io::Connected(conn));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                n = r.read(&mut buf) => match n {
                    Ok(0) | Err(_) => { let _ = io.send(Io::Eof(conn)); return; }
                    Ok(n) => { let _ = io.send(Io::Data(conn, buf[..n].to_vec())); }
                },
                out = rx.recv() => match out {
                    Some(b) => if w.write_all(&b).await.is_err() { let _ = io.send(Io::Eof(conn)); return; },
                    None => return,
                },
            }
        }
    });
    tx
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let urls: Vec<String> = std::env::args().skip(1).collect();
    let tls = netkit_sys::tls::client_config(&Default::default()).expect("TLS config");
    let mut client = Client::new(ClientConfig::new(Arc::new(tls)));
    let (io_tx, mut io_rx) = mpsc::unbounded_channel();
    let mut conns: HashMap<ConnId, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    // One URL at a time, so bodies print in order (the pool reuses the
    // connection).
    let mut pending = urls.iter();
    let mut left = 0;
    let mut failed = false;
    loop {
        if left == 0 {
            let Some(u) = pending.next() else { break };
            let url = Url::parse(u).expect("a URL");
            client
                .request(Instant::now(), Request::get(url))
                .expect("a request");
            left = 1;
        }
        // Carry out the machine's actions, then hand out its events.
        while let Some(a) = client.poll_action() {
            match a {
                Action::Connect { conn, target } => {
                    conns.insert(conn, spawn_conn(conn, target, io_tx.clone()));
                }
                Action::Send { conn } => {
                    let bytes = client.transmit(conn).to_vec();
                    client.handle_sent(conn, bytes.len());
                    if let Some(tx) = conns.get(&conn) {
                        let _ = tx.send(bytes);
                    }
                }
                Action::Close { conn } => {
                    conns.remove(&conn);
                }
            }
        }
        while let Some(e) = client.poll_event() {
            match e {
                Event::Data { data, .. } => {
                    std::io::Write::write_all(&mut std::io::stdout().lock(), &data)
                        .expect("stdout");
                }
                Event::End { .. } => left -= 1,
                Event::Failed { error, .. } => {
                    eprintln!("tokio_fetch: {error}");
                    failed = true;
                    left -= 1;
                }
                Event::Head { .. } | Event::Trace { .. } | Event::BodyWanted { .. } => {}
            }
        }
        if left == 0 {
            continue;
        }
        let deadline = client.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            msg = io_rx.recv() => {
                let now = Instant::now();
                match msg.expect("the sender is held here") {
                    Io::Connected(c) => client.handle_connected(now, c, None),
                    Io::Data(c, b) => client.handle_input(now, c, &b),
                    Io::Eof(c) => client.handle_eof(now, c),
                    Io::Failed(c, code, message) => {
                        conns.remove(&c);
                        client.handle_error(now, c, netkit_fetch::Error::Io { code, message });
                    }
                }
            }
            () = sleep => client.handle_timeout(Instant::now()),
        }
    }
    std::process::exit(i32::from(failed));
}
