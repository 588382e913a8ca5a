//! A canned DNS server for tests that need a name server but not a real one
//! (nsd is the real peer of the interop tests): answers from a zone given as
//! records, NXDOMAIN for names it does not hold, NODATA for types it lacks,
//! over UDP on a loopback port picked at run time. It logs every question.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record};

/// A running canned server; stopped on drop.
#[derive(Debug)]
pub struct FakeDns {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

/// A record of the zone: owner name (absolute, with the dot) and data.
pub fn record(name: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(Name::from_ascii(name).expect("a name"), ttl, data)
}

impl FakeDns {
    /// Serves `zone` on 127.0.0.1, a port picked by the kernel.
    pub fn start(zone: Vec<Record>) -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = sock.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (stop.clone(), log.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(query) = q.queries.first() else {
                    continue;
                };
                if let Ok(mut log) = l.lock() {
                    log.push(format!("{} {}", query.name(), query.query_type()));
                }
                let owned: Vec<&Record> = zone
                    .iter()
                    .filter(|r| {
                        r.name
                            .to_ascii()
                            .eq_ignore_ascii_case(&query.name().to_ascii())
                    })
                    .collect();
                let answers: Vec<Record> = owned
                    .iter()
                    .filter(|r| r.record_type() == query.query_type())
                    .map(|r| (*r).clone())
                    .collect();
                let mut m = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
                m.metadata.recursion_available = true;
                m.metadata.response_code = if owned.is_empty() {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::NoError
                };
                m.add_queries(q.queries.clone());
                m.add_answers(answers.clone());
                if answers.is_empty() {
                    m.add_authority(record(
                        "test.",
                        60,
                        RData::SOA(SOA::new(
                            Name::from_ascii("ns.test.").expect("name"),
                            Name::from_ascii("admin.test.").expect("name"),
                            1,
                            3600,
                            600,
                            86400,
                            30,
                        )),
                    ));
                }
                if let Ok(bytes) = m.to_vec() {
                    let _ = sock.send_to(&bytes, from);
                }
            }
        });
        Self {
            addr,
            stop,
            log,
            thread: Some(thread),
        }
    }

    /// Where it listens (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every question received, as `name. TYPE`.
    pub fn questions(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
