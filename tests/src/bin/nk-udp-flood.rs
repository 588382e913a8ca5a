//! A sendMany flood through a full socket buffer, for the namespace tests
//! (run inside a namespace whose `lo` has a slow `tbf` qdisc, so datagrams
//! wait in the qdisc charged to the sender's tiny `SO_SNDBUF` and the
//! kernel accepts only part of a batch):
//!
//! `nk-udp-flood COUNT [blocking|smol]` sends COUNT 200-byte datagrams
//! (each starting with its sequence number) with the blocking loop's
//! `send_many`, resuming from the accepted count on every `drain` (or the
//! smol socket's, resuming after `writable().await`), to a receiver thread
//! on 127.0.0.1; prints `sent N partial P drains D received R in-order
//! BOOL` and exits 0 when every datagram the counts claimed arrived once,
//! in order.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netkit_blocking::EventLoop;
use netkit_blocking::udp::{UdpHandler, UdpOptions, UdpSocket};
use netkit_udp::args::Arg;

const SIZE: usize = 200;
const BATCH: usize = 64;

#[derive(Default)]
struct State {
    next: usize,
    partial: usize,
    drains: usize,
}

struct Flood {
    grams: Rc<Vec<Vec<u8>>>,
    to: SocketAddr,
    st: Rc<RefCell<State>>,
}

/// The next `sendMany` list: up to BATCH datagrams from `next`, to `ip`
/// and `port`, and how many it holds.
fn batch<'a>(grams: &'a [Vec<u8>], next: usize, ip: &'a str, port: i64) -> (Vec<Arg<'a>>, usize) {
    let end = (next + BATCH).min(grams.len());
    let mut list = Vec::new();
    for g in &grams[next..end] {
        list.extend([Arg::Data(g), Arg::Port(port), Arg::Addr(ip)]);
    }
    (list, end - next)
}

impl Flood {
    /// Sends from `next` until the kernel takes less than a whole batch.
    fn pump(&self, s: &mut UdpSocket<'_>) {
        let ip = self.to.ip().to_string();
        let port = i64::from(self.to.port());
        let mut st = self.st.borrow_mut();
        while st.next < self.grams.len() {
            let (list, len) = batch(&self.grams, st.next, &ip, port);
            let n = s.send_many(&list).expect("sendMany");
            st.next += n;
            if n < len {
                st.partial += 1;
                return; // `drain` follows
            }
        }
    }
}

impl UdpHandler for Flood {
    fn data(&mut self, _: &mut UdpSocket<'_>, _: &[u8], _: SocketAddr, _: bool) {}
    fn drain(&mut self, s: &mut UdpSocket<'_>) {
        self.st.borrow_mut().drains += 1;
        self.pump(s);
    }
}

/// The smol socket's flood: `send_many` from `next`, and on a short count
/// `writable().await` (its drain) before the rest.
fn flood_smol(grams: &[Vec<u8>], to: SocketAddr, st: &RefCell<State>) {
    smol::block_on(async {
        let s = netkit_smol::udp::UdpSocket::bind(UdpOptions::new("127.0.0.1", 0))
            .await
            .expect("bind");
        s.set_send_buffer_size(4096).expect("setSendBufferSize");
        let ip = to.ip().to_string();
        let port = i64::from(to.port());
        let deadline = Instant::now() + Duration::from_secs(60);
        while st.borrow().next < grams.len() && Instant::now() < deadline {
            let (list, len) = batch(grams, st.borrow().next, &ip, port);
            let n = s.send_many(&list).expect("sendMany");
            st.borrow_mut().next += n;
            if n < len {
                st.borrow_mut().partial += 1;
                s.writable().await.expect("writable");
                st.borrow_mut().drains += 1;
            }
        }
    });
}

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("COUNT");
    let smol_driver = match std::env::args().nth(2).as_deref() {
        None | Some("blocking") => false,
        Some("smol") => true,
        Some(other) => panic!("unknown driver {other:?} (blocking or smol)"),
    };
    let rx = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind the receiver");
    let to = rx.local_addr().expect("addr");
    rx.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let got: Arc<Mutex<Vec<u32>>> = Arc::default();
    let g = got.clone();
    let receiver = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok(n) = rx.recv(&mut buf) {
            assert_eq!(n, SIZE, "a datagram of the wrong size");
            let seq = u32::from_be_bytes(buf[..4].try_into().expect("4 bytes"));
            let mut g = g.lock().expect("lock");
            g.push(seq);
            if g.len() == count {
                return;
            }
        }
    });
    let grams: Rc<Vec<Vec<u8>>> = Rc::new(
        (0..count as u32)
            .map(|i| {
                let mut d = vec![(i % 251) as u8; SIZE];
                d[..4].copy_from_slice(&i.to_be_bytes());
                d
            })
            .collect(),
    );
    let st = Rc::new(RefCell::new(State::default()));
    if smol_driver {
        flood_smol(&grams, to, &st);
    } else {
        flood_blocking(&grams, to, &st, count);
    }
    receiver.join().expect("receiver");
    let got = got.lock().expect("lock");
    let in_order = got.iter().copied().eq(0..count as u32);
    let st = st.borrow();
    println!(
        "sent {} partial {} drains {} received {} in-order {in_order}",
        st.next,
        st.partial,
        st.drains,
        got.len()
    );
    std::process::exit(if in_order && st.next == count { 0 } else { 1 });
}

/// The blocking loop's flood: `send_many` in the handler, resumed on `drain`.
fn flood_blocking(grams: &Rc<Vec<Vec<u8>>>, to: SocketAddr, st: &Rc<RefCell<State>>, count: usize) {
    let mut lp = EventLoop::new().expect("a loop");
    let id = lp
        .udp(
            UdpOptions::new("127.0.0.1", 0),
            Flood {
                grams: grams.clone(),
                to,
                st: st.clone(),
            },
        )
        .expect("bind");
    lp.with_udp::<Flood, _>(id, |h, s| {
        s.set_send_buffer_size(4096).expect("setSendBufferSize");
        h.pump(s);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while st.borrow().next < count && Instant::now() < deadline {
        lp.turn(Some(Duration::from_millis(100))).expect("turn");
    }
}
