//! The blocking loop as a host for more than TCP groups: timers that belong to
//! no connection, and a service of its own (a UDP echo here, as the DNS
//! resolver and the UDP sockets will be) driven through the `Source` trait.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::net::UdpSocket;
use std::rc::Rc;
use std::time::{Duration, Instant};

use netkit_blocking::EventLoop;
use netkit_blocking::source::{Cx, Readiness, Source};

#[test]
fn loop_timers_fire_in_order_and_cancel() {
    let mut lp = EventLoop::new().unwrap();
    let fired = Rc::new(RefCell::new(Vec::new()));
    let t0 = Instant::now();
    for (name, ms) in [("c", 30), ("a", 10), ("b", 20), ("x", 15)] {
        let f = fired.clone();
        let id = lp.set_timer(t0 + Duration::from_millis(ms), move |lp| {
            f.borrow_mut().push(name);
            if name == "a" {
                // A timer set from a timer.
                let f = f.clone();
                lp.set_timer(Instant::now(), move |_| f.borrow_mut().push("a2"));
            }
        });
        if name == "x" {
            assert!(lp.cancel_timer(id));
            assert!(!lp.cancel_timer(id), "cancelled twice");
        }
    }
    // Pending timers keep `run` going; it returns once they all fired.
    lp.run().unwrap();
    assert_eq!(*fired.borrow(), ["a", "a2", "b", "c"]);
    assert!(t0.elapsed() >= Duration::from_millis(30));
}

/// A UDP echo as a loop service: its socket registered under its own token,
/// a timer of its own, stopped through the loop.
struct UdpEcho {
    sock: Option<UdpSocket>,
    echoed: Rc<Cell<usize>>,
    ticks: usize,
}

const SOCK: u32 = 0;
const TICK: u32 = 1;

impl Source for UdpEcho {
    fn ready(&mut self, cx: &mut Cx<'_>, token: u32, ev: Readiness) {
        assert_eq!(token, SOCK);
        let Some(sock) = &self.sock else { return };
        if !ev.readable {
            return;
        }
        // A bounded number of datagrams per readiness event.
        for _ in 0..16 {
            match sock.recv_from(cx.buf) {
                Ok((n, from)) => {
                    let _ = sock.send_to(&cx.buf[..n], from);
                    self.echoed.set(self.echoed.get() + 1);
                }
                Err(_) => break,
            }
        }
    }
    fn timer(&mut self, cx: &mut Cx<'_>, token: u32, _at: Instant) {
        assert_eq!(token, TICK);
        self.ticks += 1;
        if self.ticks < 3 {
            cx.arm(cx.now + Duration::from_millis(5), TICK);
        }
    }
    fn soon(&mut self, _cx: &mut Cx<'_>, _token: u32) {}
    fn stop(&mut self, cx: &mut Cx<'_>, _force: bool) {
        if let Some(s) = self.sock.take() {
            let _ = cx.deregister(&s);
        }
    }
    fn is_done(&self) -> bool {
        self.sock.is_none()
    }
    fn shutdown(&mut self, cx: &mut Cx<'_>) {
        self.stop(cx, true);
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[test]
fn a_service_of_its_own() {
    let mut lp = EventLoop::new().unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let addr = sock.local_addr().unwrap();
    let echoed = Rc::new(Cell::new(0));
    let id = lp
        .add_source(
            UdpEcho {
                sock: Some(sock),
                echoed: echoed.clone(),
                ticks: 0,
            },
            |s, cx| {
                cx.arm(cx.now + Duration::from_millis(5), TICK);
                cx.register(s.sock.as_ref().unwrap(), SOCK, true, false)
            },
        )
        .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for msg in [&b"one"[..], b"two", b"three"] {
        client.send_to(msg, addr).unwrap();
    }
    assert!(
        lp.run_until(Duration::from_secs(10), || echoed.get() == 3)
            .unwrap()
    );
    // Its own timer ticks three times (5 ms apart).
    let end = Instant::now() + Duration::from_secs(10);
    while lp.with_source::<UdpEcho, _>(id, |s, _| s.ticks).unwrap() < 3 && Instant::now() < end {
        lp.turn(Some(Duration::from_millis(10))).unwrap();
    }
    let mut buf = [0u8; 16];
    let mut got = Vec::new();
    for _ in 0..3 {
        let (n, _) = client.recv_from(&mut buf).unwrap();
        got.push(buf[..n].to_vec());
    }
    assert_eq!(got, [&b"one"[..], b"two", b"three"]);
    let (echoed, ticks) = lp
        .with_source::<UdpEcho, _>(id, |s, _| (s.echoed.get(), s.ticks))
        .unwrap();
    assert_eq!((echoed, ticks), (3, 3));
    // Stopped through the loop, it is dropped and `run` returns.
    lp.with_source::<UdpEcho, _>(id, |s, cx| s.stop(cx, false));
    lp.run().unwrap();
    assert!(lp.with_source::<UdpEcho, _>(id, |_, _| ()).is_none());
}
