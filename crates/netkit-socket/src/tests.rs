use super::*;
use proptest::prelude::*;

/// The tests' time zero; every other instant is this plus a chosen duration.
fn t0() -> Instant {
    netkit_test_clock::origin()
}

fn events(s: &mut Socket) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn small(high: usize, low: usize) -> Config {
    Config {
        high_water: high,
        low_water: low,
        write_through: 100,
        ..Config::default()
    }
}

/// Sends everything the socket offers, as a kernel that takes all would.
fn flush_all(s: &mut Socket, now: Instant, wire: &mut Vec<u8>) {
    loop {
        match s.poll_transmit() {
            Transmit::Bytes(b) => {
                let n = b.len();
                wire.extend_from_slice(b);
                s.handle_sent(now, n);
            }
            Transmit::Shutdown => s.handle_shutdown(now),
            Transmit::Idle => break,
        }
    }
}

#[test]
fn accepted_socket_opens_once() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    assert_eq!(events(&mut s), vec![Event::Open]);
    assert!(s.wants_read());
    assert!(!s.wants_write());
}

#[test]
fn connect_error_is_the_only_event() {
    let now = t0();
    let mut s: Socket = Socket::connecting(now, Config::default());
    let err: Error = Error::os("ECONNREFUSED", "connect 127.0.0.1:9");
    s.handle_connect_error(err.clone());
    s.handle_connected(now);
    s.handle_error(err.clone());
    s.close();
    assert_eq!(events(&mut s), vec![Event::ConnectError(err)]);
    assert!(s.is_closed());
}

#[test]
fn connected_then_open() {
    let now = t0();
    let mut s: Socket = Socket::connecting(now, Config::default());
    assert_eq!(s.write(now, b"early").unwrap(), 5);
    assert_eq!(
        s.poll_transmit(),
        Transmit::Idle,
        "nothing goes out before connect"
    );
    s.handle_connected(now);
    assert_eq!(events(&mut s), vec![Event::Open]);
    assert_eq!(s.poll_transmit(), Transmit::Bytes(b"early"));
}

#[test]
fn empty_write_is_zero_and_arms_nothing() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, small(0, 0));
    events(&mut s);
    assert_eq!(s.write(now, b"").unwrap(), 0);
    assert_eq!(events(&mut s), vec![]);
}

#[test]
fn drain_never_spurious() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, small(100, 10));
    events(&mut s);
    assert_eq!(s.write(now, &[1; 50]).unwrap(), 50);
    s.handle_sent(now, 50);
    assert_eq!(events(&mut s), vec![], "no drain without a short write");
}

#[test]
fn drain_once_after_short_write() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, small(100, 10));
    events(&mut s);
    assert_eq!(s.write(now, &[1; 150]).unwrap(), 100);
    assert_eq!(s.write(now, &[1; 5]).unwrap(), 0);
    s.handle_sent(now, 80);
    assert_eq!(events(&mut s), vec![], "20 buffered > low water 10");
    s.handle_sent(now, 10);
    assert_eq!(events(&mut s), vec![Event::Drain]);
    s.handle_sent(now, 10);
    assert_eq!(events(&mut s), vec![], "drain is not repeated");
}

#[test]
fn write_after_end_or_close_is_refused() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    s.end(now).unwrap();
    assert_eq!(s.write(now, b"x"), Err(Error::Ended));
    s.close();
    assert_eq!(s.write(now, b"x"), Err(Error::Closed));
    assert_eq!(s.end(now), Err(Error::Closed));
}

#[test]
fn local_end_then_peer_eof_closes() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    s.write(now, b"bye").unwrap();
    s.end(now).unwrap();
    let mut wire = vec![];
    flush_all(&mut s, now, &mut wire);
    assert_eq!(wire, b"bye");
    assert!(s.wants_read(), "still reading after our FIN");
    assert_eq!(events(&mut s), vec![Event::Open]);
    s.handle_input(now, b"late reply").unwrap();
    s.handle_eof(now);
    assert_eq!(events(&mut s), vec![Event::End, Event::Close(None)]);
}

#[test]
fn peer_eof_auto_ends_without_half_open() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    events(&mut s);
    s.write(now, b"owed").unwrap();
    s.handle_eof(now);
    assert_eq!(events(&mut s), vec![Event::End]);
    assert_eq!(
        s.poll_transmit(),
        Transmit::Bytes(b"owed"),
        "owed bytes still go out"
    );
    let mut wire = vec![];
    flush_all(&mut s, now, &mut wire);
    assert_eq!(events(&mut s), vec![Event::Close(None)]);
}

#[test]
fn end_handler_may_still_reply() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    events(&mut s);
    s.handle_eof(now);
    assert_eq!(events(&mut s), vec![Event::End]);
    assert_eq!(s.write(now, b"last words").unwrap(), 10);
    let mut wire = vec![];
    flush_all(&mut s, now, &mut wire);
    assert_eq!(wire, b"last words");
    assert_eq!(events(&mut s), vec![Event::Close(None)]);
}

#[test]
fn half_open_allowed_keeps_writing() {
    let now = t0();
    let mut s: Socket = Socket::accepted(
        now,
        Config {
            allow_half_open: true,
            ..Config::default()
        },
    );
    events(&mut s);
    s.handle_eof(now);
    assert_eq!(events(&mut s), vec![Event::End]);
    assert!(!s.wants_read());
    assert_eq!(s.write(now, b"more").unwrap(), 4);
    assert!(!s.is_closed());
    s.end(now).unwrap();
    let mut wire = vec![];
    flush_all(&mut s, now, &mut wire);
    assert_eq!(wire, b"more");
    assert_eq!(events(&mut s), vec![Event::Close(None)]);
}

#[test]
fn error_then_close_then_nothing() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    events(&mut s);
    s.write(now, b"pending").unwrap();
    let err: Error = Error::Os {
        code: "ECONNRESET",
        errno: Some(104),
        message: "read 127.0.0.1:80".into(),
    };
    s.handle_error(err.clone());
    s.handle_eof(now);
    s.handle_timeout(now + Duration::from_secs(100));
    s.close();
    assert!(s.handle_input(now, b"x").is_err());
    assert_eq!(
        events(&mut s),
        vec![Event::Error(err.clone()), Event::Close(Some(err))]
    );
    assert_eq!(s.poll_transmit(), Transmit::Idle);
    assert_eq!(s.buffered(), 0);
}

#[test]
fn timeout_fires_once_per_expiry_and_rearms_on_activity() {
    let now = t0();
    let sec = Duration::from_secs(1);
    let mut s: Socket = Socket::accepted(now, Config::default());
    events(&mut s);
    s.set_timeout(now, Some(sec));
    s.handle_timeout(now + sec / 2);
    assert_eq!(events(&mut s), vec![], "early call is a no-op");
    s.handle_timeout(now + sec);
    s.handle_timeout(now + sec);
    s.handle_timeout(now + 5 * sec);
    assert_eq!(events(&mut s), vec![Event::Timeout], "once per expiry");
    assert_eq!(s.poll_timeout(), None);
    assert!(!s.is_closed(), "timeout does not close");
    s.handle_input(now + 6 * sec, b"hi").unwrap();
    assert_eq!(s.poll_timeout(), Some(now + 7 * sec), "activity re-arms");
    s.handle_timeout(now + 7 * sec);
    assert_eq!(events(&mut s), vec![Event::Timeout]);
    s.set_timeout(now, None);
    assert_eq!(s.poll_timeout(), None);
}

/// The idle timer is not a connect timeout (that is the connect plan's): set
/// while connecting, it starts counting when the socket opens.
#[test]
fn the_idle_timer_starts_when_the_socket_opens() {
    let now = t0();
    let sec = Duration::from_secs(1);
    let mut s: Socket = Socket::connecting(now, Config::default());
    s.set_timeout(now, Some(sec));
    assert_eq!(s.poll_timeout(), None);
    s.handle_timeout(now + 10 * sec);
    assert_eq!(events(&mut s), vec![], "no timeout while connecting");
    s.handle_connected(now + 20 * sec);
    assert_eq!(s.poll_timeout(), Some(now + 21 * sec));
    s.handle_timeout(now + 21 * sec);
    assert_eq!(events(&mut s), vec![Event::Open, Event::Timeout]);
}

#[test]
fn pause_stops_reading() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    s.pause();
    assert!(!s.wants_read());
    s.resume();
    assert!(s.wants_read());
}

#[test]
fn terminate_asks_for_reset() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    events(&mut s);
    s.terminate();
    assert!(s.reset_on_close());
    assert_eq!(events(&mut s), vec![Event::Close(None)]);
}

#[test]
fn idle_socket_holds_no_buffer() {
    let now = t0();
    let mut s: Socket = Socket::accepted(now, Config::default());
    events(&mut s);
    s.write(now, &[0; 64 * 1024]).unwrap();
    let n = s.buffered();
    s.handle_sent(now, n);
    assert_eq!(s.buf.capacity(), 0);
    assert_eq!(s.events.capacity(), 0);
    s.write(now, &[0; 64]).unwrap();
    s.handle_sent(now, 64);
    assert!(s.buf.capacity() <= s.config.retain_capacity);
}

/// One step of a random schedule against the state machine.
#[derive(Debug, Clone)]
enum Op {
    Write(Vec<u8>),
    /// A write the driver tries to put straight on the wire; the kernel takes at
    /// most the given count.
    WriteThrough(Vec<u8>, usize),
    /// The kernel takes at most this many bytes.
    Send(usize),
    Input(Vec<u8>),
    Tick(u64),
    SetTimeout(Option<u64>),
    PauseResume(bool),
    End,
    Eof,
    Close,
    Error,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec(any::<u8>(), 0..300).prop_map(Op::Write),
        3 => (proptest::collection::vec(any::<u8>(), 0..300), 0usize..300)
            .prop_map(|(b, k)| Op::WriteThrough(b, k)),
        6 => (0usize..400).prop_map(Op::Send),
        2 => proptest::collection::vec(any::<u8>(), 0..50).prop_map(Op::Input),
        2 => (0u64..3000).prop_map(Op::Tick),
        1 => proptest::option::of(1u64..2000).prop_map(Op::SetTimeout),
        1 => any::<bool>().prop_map(Op::PauseResume),
        1 => Just(Op::End),
        1 => Just(Op::Eof),
        1 => Just(Op::Close),
        1 => Just(Op::Error),
    ]
}

/// Checks the event-order invariants over a whole event log.
fn check_event_log(log: &[Event], connecting: bool) {
    let closes = log
        .iter()
        .filter(|e| matches!(e, Event::Close(_) | Event::ConnectError(_)))
        .count();
    assert!(closes <= 1, "close/connectError at most once: {log:?}");
    if let Some(i) = log
        .iter()
        .position(|e| matches!(e, Event::Close(_) | Event::ConnectError(_)))
    {
        assert_eq!(i, log.len() - 1, "nothing after close: {log:?}");
    }
    let opens = log.iter().filter(|e| **e == Event::Open).count();
    assert!(opens <= 1);
    if log.iter().any(|e| matches!(e, Event::ConnectError(_))) {
        assert!(connecting);
        assert_eq!(log.len(), 1, "connectError is the only event: {log:?}");
    }
    let ends = log.iter().filter(|e| **e == Event::End).count();
    assert!(ends <= 1);
    if let Some(Event::Error(e)) = log.iter().find(|e| matches!(e, Event::Error(_))) {
        assert_eq!(log.last(), Some(&Event::Close(Some(e.clone()))));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any interleaving of writes, partial kernel acceptance and drains puts exactly
    /// the accepted bytes on the wire, in order; drain follows only a short write and
    /// never goes missing; the event order holds.
    #[test]
    fn wire_is_accepted_bytes_in_order(
        ops in proptest::collection::vec(op(), 0..120),
        high in 1usize..700,
        low_frac in 0usize..=100,
        connecting in any::<bool>(),
    ) {
        let low = (high - 1) * low_frac / 100;
        let mut now = t0();
        let mut s = if connecting {
            let mut s: Socket = Socket::connecting(now, small(high, low));
            s.handle_connected(now);
            s
        } else {
            Socket::accepted(now, small(high, low))
        };
        let mut accepted = Vec::new();
        let mut wire = Vec::new();
        let mut log = Vec::new();
        let mut short_pending = false;
        for op in ops {
            match op {
                Op::Write(b) => match s.write(now, &b) {
                    Ok(n) => {
                        prop_assert!(n <= b.len());
                        prop_assert!(s.buffered() <= high);
                        accepted.extend_from_slice(&b[..n]);
                        if n < b.len() { short_pending = true; }
                    }
                    Err(_) => prop_assert!(s.is_closed() || s.is_ending()),
                },
                Op::WriteThrough(b, k) => {
                    let mut rest = &b[..];
                    if s.can_write_through(b.len()) {
                        let n = k.min(b.len());
                        wire.extend_from_slice(&b[..n]);
                        accepted.extend_from_slice(&b[..n]);
                        s.handle_sent_direct(now, n);
                        rest = &b[n..];
                    }
                    if let Ok(n) = s.write(now, rest) {
                        accepted.extend_from_slice(&rest[..n]);
                        if n < rest.len() { short_pending = true; }
                    }
                }
                Op::Send(max) => match s.poll_transmit() {
                    Transmit::Bytes(b) => {
                        prop_assert!(!b.is_empty());
                        let n = max.min(b.len());
                        wire.extend_from_slice(&b[..n]);
                        s.handle_sent(now, n);
                    }
                    Transmit::Shutdown => s.handle_shutdown(now),
                    Transmit::Idle => {}
                },
                Op::Input(b) => { let _ = s.handle_input(now, &b); }
                Op::Tick(ms) => {
                    now += Duration::from_millis(ms);
                    if let Some(t) = s.poll_timeout() {
                        if now >= t { s.handle_timeout(now); }
                    }
                }
                Op::SetTimeout(ms) => s.set_timeout(now, ms.map(Duration::from_millis)),
                Op::PauseResume(p) => if p { s.pause() } else { s.resume() },
                Op::End => { let _ = s.end(now); }
                Op::Eof => s.handle_eof(now),
                Op::Close => s.close(),
                Op::Error => s.handle_error(Error::Closed),
            }
            while let Some(ev) = s.poll_event() {
                if ev == Event::Drain {
                    prop_assert!(short_pending, "drain without a short write");
                    short_pending = false;
                    prop_assert!(s.buffered() <= low);
                }
                log.push(ev);
            }
            if short_pending && !s.is_closed() {
                prop_assert!(s.buffered() > low, "a drain went missing");
            }
            check_event_log(&log, connecting);
        }
        let closed_early = s.is_closed();
        flush_all(&mut s, now, &mut wire);
        if closed_early || log.iter().any(|e| matches!(e, Event::Close(_))) {
            // Closing drops unsent bytes; what went out is still an in-order prefix.
            prop_assert!(accepted.starts_with(&wire));
        } else {
            prop_assert_eq!(&wire, &accepted);
        }
    }

    /// Any split of the peer's bytes is delivered whole and in order.
    #[test]
    fn any_input_split_delivers_the_same_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(0usize..2000, 0..20),
    ) {
        let now = t0();
        let mut s: Socket = Socket::accepted(now, Config::default());
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
        cuts.sort_unstable();
        let mut delivered = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain([data.len()]) {
            let chunk = &data[prev..c];
            s.handle_input(now, chunk).unwrap();
            delivered.extend_from_slice(chunk);
            prev = c;
        }
        prop_assert_eq!(delivered, data.clone());
        prop_assert_eq!(s.bytes_read(), data.len() as u64);
        prop_assert_eq!(s.poll_event(), Some(Event::Open));
        prop_assert_eq!(s.poll_event(), None);
    }
}
