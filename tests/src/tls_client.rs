//! A hand-driven TLS client for misbehaving on purpose: a [`TlsSession`] over a
//! blocking `TcpStream`, which sends records a well-behaved client never would.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use netkit_tls::{ClientConfig, TlsSession};

/// What a client saw after sending a valid record and a corrupted one in one
/// segment.
#[derive(Debug)]
pub struct BadRecordOutcome {
    /// The plaintext that came back before the failure.
    pub plaintext: Vec<u8>,
    /// The client session's failure (the server's alert), if one came.
    pub error: Option<netkit_tls::Error>,
    /// Whether the server closed the connection (EOF or reset) afterwards.
    pub closed: bool,
}

/// Sends `valid` as one record, then a record whose authentication tag was
/// altered, in one write.
fn send_valid_then_corrupt(tls: &mut TlsSession, tcp: &mut TcpStream, valid: &[u8]) {
    let mut wire = Vec::new();
    tls.write(valid).expect("write");
    tls.drain_transmit(&mut wire);
    let mut bad = Vec::new();
    tls.write(b"a record that is corrupted on the way")
        .expect("write");
    tls.drain_transmit(&mut bad);
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    wire.extend_from_slice(&bad);
    tcp.write_all(&wire).expect("write records");
}

/// Runs a handshake on a blocking stream.
fn handshake(tls: &mut TlsSession, tcp: &mut TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while tls.is_handshaking() {
        pump_out(tls, tcp);
        let n = tcp.read(&mut buf).expect("read during the handshake");
        assert!(n > 0, "EOF during the handshake");
        tls.handle_input(&buf[..n]).expect("handshake");
    }
    pump_out(tls, tcp);
}

/// A TLS server that misbehaves once: it accepts one connection on `listener`,
/// completes the handshake, sends `valid` as one record and a corrupted record
/// right after it, then reads until the client closes. Returns its thread.
pub fn corrupting_server(
    listener: std::net::TcpListener,
    config: netkit_tls::ServerConfig,
    valid: &'static [u8],
    limit: Duration,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().expect("accept");
        tcp.set_read_timeout(Some(limit)).expect("timeout");
        let mut tls = TlsSession::server(&config).expect("session");
        handshake(&mut tls, &mut tcp);
        send_valid_then_corrupt(&mut tls, &mut tcp, valid);
        let mut buf = [0u8; 4096];
        while matches!(tcp.read(&mut buf), Ok(n) if n > 0) {}
    })
}

fn pump_out(tls: &mut TlsSession, tcp: &mut TcpStream) {
    let mut out = Vec::new();
    tls.drain_transmit(&mut out);
    tcp.write_all(&out).expect("write");
}

/// Connects to `addr`, completes the handshake as `name`, then sends `valid`
/// as one record followed by a record whose authentication tag was altered, in
/// one write. Reads until the connection ends or `limit` passes without a byte.
pub fn valid_then_corrupt_record(
    addr: SocketAddr,
    config: &ClientConfig,
    name: &str,
    valid: &[u8],
    limit: Duration,
) -> BadRecordOutcome {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(limit)).expect("timeout");
    let mut tls = TlsSession::client(config, name).expect("session");
    handshake(&mut tls, &mut tcp);
    send_valid_then_corrupt(&mut tls, &mut tcp, valid);
    let mut buf = vec![0u8; 64 * 1024];
    let mut plaintext = Vec::new();
    let mut closed = false;
    loop {
        while let Some(()) = tls.read_plaintext_with(|b| plaintext.extend_from_slice(b)) {}
        if tls.error().is_some() && closed {
            break;
        }
        match tcp.read(&mut buf) {
            Ok(0) => {
                closed = true;
                if tls.error().is_some() || !tls.has_plaintext() {
                    break;
                }
            }
            Ok(n) => {
                if tls.handle_input(&buf[..n]).is_err() {
                    continue;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                closed = true;
                break;
            }
            Err(_) => break, // timed out: the server neither answered nor closed
        }
    }
    while let Some(()) = tls.read_plaintext_with(|b| plaintext.extend_from_slice(b)) {}
    BadRecordOutcome {
        plaintext,
        error: tls.error().cloned(),
        closed,
    }
}
