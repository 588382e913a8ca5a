//! Connecting a client: one sans-IO plan that every driver runs, so they
//! connect identically.
//!
//! A [`ConnectPlan`] takes a host and a port. It asks the driver to resolve
//! the host (unless it is an IP literal), then asks for connection attempts in
//! the order of RFC 8305 (Happy Eyeballs v2): address families interleaved,
//! starting with the resolver's first; the next attempt starts when the
//! Connection Attempt Delay (250 ms by default) has passed since the last one
//! started, or at once when an attempt fails. The first attempt to connect
//! wins and the others are cancelled. One overall connect timeout, counted from
//! the plan's creation and distinct from a socket's idle timeout, bounds it
//! all. The outcome is [`Action::Connected`] or one [`Action::Failed`] with the
//! most useful error: an attempt's own failure (`ECONNREFUSED`...) over a
//! timeout, the resolver's (`ENOTFOUND`) when there was nothing to try.
//!
//! # Examples
//!
//! ```
//! use std::time::{Duration, Instant};
//! use netkit_socket::connect::{Action, ConnectConfig, ConnectPlan};
//!
//! let now = Instant::now();
//! let mut plan: ConnectPlan = ConnectPlan::new(now, "example.test", 443, ConnectConfig::default());
//! assert_eq!(plan.poll_action(), Some(Action::Resolve { host: "example.test".into() }));
//! plan.handle_resolved(now, Ok(vec!["2001:db8::1".parse()?, "192.0.2.1".parse()?]));
//! let Some(Action::Attempt { id: v6, .. }) = plan.poll_action() else { panic!() };
//! // No answer within 250 ms: IPv4 is tried too, the IPv6 attempt goes on.
//! assert_eq!(plan.poll_timeout(), Some(now + Duration::from_millis(250)));
//! plan.handle_timeout(now + Duration::from_millis(250));
//! let Some(Action::Attempt { id: v4, addr }) = plan.poll_action() else { panic!() };
//! assert!(addr.is_ipv4());
//! plan.handle_connected(now + Duration::from_millis(260), v4);
//! assert_eq!(plan.poll_action(), Some(Action::Cancel { id: v6 }));
//! assert_eq!(plan.poll_action(), Some(Action::Connected { id: v4, addr }));
//! assert!(plan.is_done());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::Error;

/// RFC 8305's recommended Connection Attempt Delay.
pub const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// How a plan connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectConfig {
    /// Wait this long for an attempt before starting the next one in parallel
    /// (RFC 8305's Connection Attempt Delay; 250 ms, at least 10 ms).
    pub attempt_delay: Duration,
    /// Give up after this long, resolution included (`ETIMEDOUT`); `None`
    /// waits for the attempts' own outcomes (the kernel's SYN retries).
    pub timeout: Option<Duration>,
}

/// What a plan's timeout error names when the plan's addresses are stand-ins
/// (a Unix socket path, say): set with [`ConnectPlan::named`].
type Label = Option<String>;

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            attempt_delay: ATTEMPT_DELAY,
            timeout: None,
        }
    }
}

/// One connection attempt, named so the driver can report its outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u32);

/// What the driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Action<T = std::convert::Infallible> {
    /// Resolve `host`; answer with [`ConnectPlan::handle_resolved`] (now or
    /// later: the plan waits).
    Resolve {
        /// The name to resolve (never an IP literal).
        host: String,
    },
    /// Start a non-blocking connect to `addr`; report its outcome with
    /// [`ConnectPlan::handle_connected`] or [`ConnectPlan::handle_failed`].
    Attempt {
        /// The attempt's name.
        id: AttemptId,
        /// Where to connect.
        addr: SocketAddr,
    },
    /// Abandon this attempt (close its socket): another one won, or the plan
    /// timed out.
    Cancel {
        /// The attempt to drop.
        id: AttemptId,
    },
    /// This attempt connected: its socket is the connection. Last action.
    Connected {
        /// The winning attempt.
        id: AttemptId,
        /// Its address.
        addr: SocketAddr,
    },
    /// The plan failed: every address was tried, the timeout passed, or the
    /// host did not resolve. Last action.
    Failed(Error<T>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Resolving,
    Connecting,
    Done,
}

/// Happy Eyeballs for one host and port. See the [module docs](self).
#[derive(Debug)]
pub struct ConnectPlan<T = std::convert::Infallible> {
    host: String,
    port: u16,
    config: ConnectConfig,
    state: State,
    /// Addresses not tried yet, in the order they will be tried.
    queue: VecDeque<SocketAddr>,
    /// Attempts in flight.
    running: Vec<(AttemptId, SocketAddr)>,
    next_id: u32,
    /// When the next attempt starts even though the running ones go on.
    next_attempt_at: Option<Instant>,
    deadline: Option<Instant>,
    /// The most useful failure so far.
    error: Option<Error<T>>,
    actions: VecDeque<Action<T>>,
    label: Label,
    /// The addresses came from the resolver.
    resolved: bool,
}

/// Parses an IP literal, accepting IPv6 with or without brackets (and a
/// `%scope` suffix, which is dropped).
#[must_use]
pub fn parse_ip(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let h = h.split('%').next().unwrap_or(h);
    // A name (any byte an address never has) is told at a glance: lookups of
    // names are the hot path, and the full parsers try both families.
    if !h
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
    {
        return None;
    }
    h.parse().ok()
}

/// RFC 8305 section 4: interleave the families, starting with the family of
/// the first address (the resolver's preference); order within a family kept.
#[must_use]
pub fn interleave(addrs: &[SocketAddr]) -> VecDeque<SocketAddr> {
    let Some(first) = addrs.first() else {
        return VecDeque::new();
    };
    let first_v6 = first.is_ipv6();
    let (mut a, mut b): (VecDeque<SocketAddr>, VecDeque<SocketAddr>) =
        addrs.iter().partition(|x| x.is_ipv6() == first_v6);
    let mut out = VecDeque::with_capacity(addrs.len());
    loop {
        match (a.pop_front(), b.pop_front()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// How useful an attempt's failure is to the user: a definite answer from the
/// peer or the network beats a timeout.
fn rank<T>(e: &Error<T>) -> u8 {
    match e.code() {
        "ECONNREFUSED" | "ECONNRESET" => 3,
        "ETIMEDOUT" => 1,
        _ => 2,
    }
}

impl<T: Clone> ConnectPlan<T> {
    /// A plan to connect to `host:port` (a name, or an IP literal, IPv6 with or
    /// without brackets), starting now.
    #[must_use]
    pub fn new(now: Instant, host: &str, port: u16, config: ConnectConfig) -> Self {
        let mut plan = Self::blank(now, host.to_string(), port, config);
        match parse_ip(host) {
            Some(ip) => plan.handle_resolved(now, Ok(vec![ip])),
            None => {
                plan.resolved = true;
                plan.actions.push_back(Action::Resolve {
                    host: host.to_string(),
                });
            }
        }
        plan
    }

    /// A plan over addresses already known (no resolution step).
    #[must_use]
    pub fn to_addrs(now: Instant, addrs: &[SocketAddr], config: ConnectConfig) -> Self {
        let host = addrs
            .first()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let port = addrs.first().map_or(0, |a| a.port());
        let mut plan = Self::blank(now, host, port, config);
        plan.start(now, addrs);
        plan
    }

    fn blank(now: Instant, host: String, port: u16, config: ConnectConfig) -> Self {
        Self {
            host,
            port,
            config,
            state: State::Resolving,
            queue: VecDeque::new(),
            running: Vec::new(),
            next_id: 0,
            next_attempt_at: None,
            deadline: config.timeout.map(|t| now + t),
            error: None,
            actions: VecDeque::new(),
            label: None,
            resolved: false,
        }
    }

    /// Names the target in the timeout's error (`ETIMEDOUT: connect NAME`)
    /// instead of the address attempted: for a plan whose address stands for
    /// something else, such as a Unix socket path.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.label = Some(name.into());
        self
    }

    /// The resolver's answer for the host (in its order of preference), or
    /// its failure (`ENOTFOUND`...). Ignored unless the plan asked for it.
    pub fn handle_resolved(&mut self, now: Instant, answer: Result<Vec<IpAddr>, Error<T>>) {
        if self.state != State::Resolving {
            return;
        }
        match answer {
            Ok(ips) if !ips.is_empty() => {
                let addrs: Vec<SocketAddr> = ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, self.port))
                    .collect();
                self.start(now, &addrs);
            }
            Ok(_) => {
                let e = Error::os("ENOTFOUND", format!("getaddrinfo {}", self.host));
                self.fail(e);
            }
            Err(e) => self.fail(e),
        }
    }

    fn start(&mut self, now: Instant, addrs: &[SocketAddr]) {
        self.state = State::Connecting;
        self.queue = interleave(addrs);
        if self.queue.is_empty() {
            let e = Error::os("ENOTFOUND", format!("getaddrinfo {}", self.host));
            return self.fail(e);
        }
        self.next_attempt(now);
    }

    fn next_attempt(&mut self, now: Instant) {
        let Some(addr) = self.queue.pop_front() else {
            self.next_attempt_at = None;
            return;
        };
        let id = AttemptId(self.next_id);
        self.next_id += 1;
        self.running.push((id, addr));
        self.actions.push_back(Action::Attempt { id, addr });
        let delay = self.config.attempt_delay.max(Duration::from_millis(10));
        self.next_attempt_at = if self.queue.is_empty() {
            None
        } else {
            Some(now + delay)
        };
    }

    /// Attempt `id` connected: the others are cancelled and the plan is done.
    pub fn handle_connected(&mut self, _now: Instant, id: AttemptId) {
        if self.state != State::Connecting {
            return;
        }
        let Some(i) = self.running.iter().position(|(a, _)| *a == id) else {
            return;
        };
        let (_, addr) = self.running.remove(i);
        self.cancel_running();
        self.queue.clear();
        self.state = State::Done;
        self.next_attempt_at = None;
        self.actions.push_back(Action::Connected { id, addr });
    }

    /// Attempt `id` failed with `error`: the next address is tried at once;
    /// when none is left and nothing runs, the plan fails.
    pub fn handle_failed(&mut self, now: Instant, id: AttemptId, error: Error<T>) {
        if self.state != State::Connecting {
            return;
        }
        let Some(i) = self.running.iter().position(|(a, _)| *a == id) else {
            return;
        };
        self.running.remove(i);
        if self.error.as_ref().is_none_or(|e| rank(&error) > rank(e)) {
            self.error = Some(error);
        }
        if !self.queue.is_empty() {
            self.next_attempt(now);
        } else if self.running.is_empty() {
            let e = self.error.take().unwrap_or(Error::Closed);
            self.fail(e);
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Done {
            return None;
        }
        match (self.next_attempt_at, self.deadline) {
            (Some(a), Some(d)) => Some(a.min(d)),
            (a, d) => a.or(d),
        }
    }

    /// Starts the next attempt when the Connection Attempt Delay has passed,
    /// and fails the plan when the timeout has. Idempotent: an early or
    /// spurious call is a no-op.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Done {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            let target = match (&self.label, self.running.last()) {
                (Some(name), _) => name.clone(),
                (None, Some((_, a))) => a.to_string(),
                (None, None) => format!("{}:{}", self.host, self.port),
            };
            self.cancel_running();
            self.fail(Error::os("ETIMEDOUT", format!("connect {target}")));
            return;
        }
        if self.next_attempt_at.is_some_and(|t| now >= t) {
            self.next_attempt(now);
        }
    }

    /// The next action for the driver; poll after every call until `None`.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action<T>> {
        self.actions.pop_front()
    }

    /// Whether the plan reached its outcome (all its actions may not have been
    /// polled yet).
    #[must_use]
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The host the plan connects to, as given.
    #[must_use]
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the host was a name the resolver answered for (not an IP
    /// literal, not a list of addresses given): then a plan that failed on
    /// every address tells the resolver to forget them.
    #[must_use]
    pub fn host_was_resolved(&self) -> bool {
        self.resolved
    }

    /// The port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    fn cancel_running(&mut self) {
        for (id, _) in self.running.drain(..) {
            self.actions.push_back(Action::Cancel { id });
        }
    }

    fn fail(&mut self, e: Error<T>) {
        self.state = State::Done;
        self.queue.clear();
        self.next_attempt_at = None;
        self.actions.push_back(Action::Failed(e));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Plan = ConnectPlan;

    fn t0() -> Instant {
        netkit_test_clock::origin()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn actions(p: &mut Plan) -> Vec<Action> {
        std::iter::from_fn(|| p.poll_action()).collect()
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn refused(addr: &str) -> Error {
        Error::Os {
            code: "ECONNREFUSED",
            errno: Some(111),
            message: format!("connect {addr}"),
        }
    }

    fn attempts(acts: &[Action]) -> Vec<(AttemptId, SocketAddr)> {
        acts.iter()
            .filter_map(|a| match a {
                Action::Attempt { id, addr } => Some((*id, *addr)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn literals_need_no_resolution() {
        for (host, want) in [
            ("127.0.0.1", "127.0.0.1:80"),
            ("::1", "[::1]:80"),
            ("[::1]", "[::1]:80"),
            ("fe80::1%lo", "[fe80::1]:80"),
        ] {
            let mut p = Plan::new(t0(), host, 80, ConnectConfig::default());
            let acts = actions(&mut p);
            assert_eq!(attempts(&acts), [(AttemptId(0), sa(want))], "{host}");
        }
        assert_eq!(parse_ip("example.com"), None);
    }

    #[test]
    fn families_interleave_starting_with_the_resolvers_first() {
        let v: Vec<SocketAddr> = ["[::1]:1", "[::2]:1", "[::3]:1", "10.0.0.1:1", "10.0.0.2:1"]
            .iter()
            .map(|s| sa(s))
            .collect();
        let got: Vec<String> = interleave(&v).iter().map(|a| a.to_string()).collect();
        assert_eq!(
            got,
            ["[::1]:1", "10.0.0.1:1", "[::2]:1", "10.0.0.2:1", "[::3]:1"]
        );
        let v4_first = [sa("10.0.0.1:1"), sa("[::1]:1"), sa("[::2]:1")];
        let got: Vec<String> = interleave(&v4_first)
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(got, ["10.0.0.1:1", "[::1]:1", "[::2]:1"]);
    }

    #[test]
    fn resolution_failure_is_the_outcome() {
        let mut p = Plan::new(t0(), "nowhere.test", 80, ConnectConfig::default());
        assert_eq!(
            actions(&mut p),
            [Action::Resolve {
                host: "nowhere.test".into()
            }]
        );
        p.handle_resolved(t0(), Ok(vec![]));
        let acts = actions(&mut p);
        assert!(
            matches!(&acts[..], [Action::Failed(e)] if e.to_string() == "ENOTFOUND: getaddrinfo nowhere.test"),
            "{acts:?}"
        );
        assert!(p.is_done());
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn a_failure_starts_the_next_attempt_at_once() {
        let now = t0();
        let mut p = Plan::new(now, "h.test", 80, ConnectConfig::default());
        let _ = actions(&mut p);
        p.handle_resolved(
            now,
            Ok(vec!["::1".parse().unwrap(), "127.0.0.1".parse().unwrap()]),
        );
        let a = attempts(&actions(&mut p));
        assert_eq!(a, [(AttemptId(0), sa("[::1]:80"))]);
        p.handle_failed(now + ms(5), AttemptId(0), refused("[::1]:80"));
        let a = attempts(&actions(&mut p));
        assert_eq!(a, [(AttemptId(1), sa("127.0.0.1:80"))]);
        p.handle_failed(now + ms(6), AttemptId(1), refused("127.0.0.1:80"));
        let acts = actions(&mut p);
        assert!(
            matches!(&acts[..], [Action::Failed(e)] if e.code() == "ECONNREFUSED"),
            "{acts:?}"
        );
    }

    #[test]
    fn a_slow_attempt_races_the_next_and_the_first_success_wins() {
        let now = t0();
        let cfg = ConnectConfig::default();
        let mut p = Plan::to_addrs(
            now,
            &[sa("[::1]:80"), sa("127.0.0.1:80"), sa("[::2]:80")],
            cfg,
        );
        assert_eq!(attempts(&actions(&mut p)).len(), 1);
        assert_eq!(p.poll_timeout(), Some(now + ATTEMPT_DELAY));
        p.handle_timeout(now + ms(100)); // early: nothing
        assert_eq!(actions(&mut p), []);
        p.handle_timeout(now + ATTEMPT_DELAY);
        assert_eq!(
            attempts(&actions(&mut p)),
            [(AttemptId(1), sa("127.0.0.1:80"))]
        );
        assert_eq!(p.poll_timeout(), Some(now + 2 * ATTEMPT_DELAY));
        // The first (IPv6) attempt answers first after all.
        p.handle_connected(now + ms(300), AttemptId(0));
        assert_eq!(
            actions(&mut p),
            [
                Action::Cancel { id: AttemptId(1) },
                Action::Connected {
                    id: AttemptId(0),
                    addr: sa("[::1]:80")
                }
            ]
        );
        // Late reports are ignored.
        p.handle_failed(now + ms(400), AttemptId(1), refused("x"));
        p.handle_connected(now + ms(400), AttemptId(1));
        assert_eq!(actions(&mut p), []);
        assert_eq!(p.poll_timeout(), None);
    }

    #[test]
    fn the_timeout_cancels_everything_and_fails() {
        let now = t0();
        let cfg = ConnectConfig {
            timeout: Some(ms(400)),
            ..ConnectConfig::default()
        };
        let mut p = Plan::to_addrs(now, &[sa("10.0.0.1:80"), sa("10.0.0.2:80")], cfg);
        let _ = actions(&mut p);
        p.handle_timeout(now + ATTEMPT_DELAY);
        let _ = actions(&mut p);
        assert_eq!(p.poll_timeout(), Some(now + ms(400)));
        p.handle_timeout(now + ms(400));
        let acts = actions(&mut p);
        assert!(
            matches!(&acts[..], [Action::Cancel{..}, Action::Cancel{..}, Action::Failed(e)] if e.to_string() == "ETIMEDOUT: connect 10.0.0.2:80"),
            "{acts:?}"
        );
        assert!(p.is_done());
    }

    #[test]
    fn a_named_plan_names_its_target_when_it_times_out() {
        let now = t0();
        let cfg = ConnectConfig {
            timeout: Some(ms(100)),
            ..ConnectConfig::default()
        };
        let mut p = Plan::to_addrs(now, &[sa("0.0.0.0:0")], cfg).named("/run/app.sock");
        let _ = actions(&mut p);
        p.handle_timeout(now + ms(100));
        let acts = actions(&mut p);
        assert!(
            matches!(&acts[..], [Action::Cancel { .. }, Action::Failed(e)] if e.to_string() == "ETIMEDOUT: connect /run/app.sock"),
            "{acts:?}"
        );
    }

    #[test]
    fn the_timeout_counts_resolution_too() {
        let now = t0();
        let cfg = ConnectConfig {
            timeout: Some(ms(100)),
            ..ConnectConfig::default()
        };
        let mut p = Plan::new(now, "slow.test", 80, cfg);
        let _ = actions(&mut p);
        p.handle_timeout(now + ms(100));
        let acts = actions(&mut p);
        assert!(
            matches!(&acts[..], [Action::Failed(e)] if e.to_string() == "ETIMEDOUT: connect slow.test:80"),
            "{acts:?}"
        );
        // A late answer changes nothing.
        p.handle_resolved(now + ms(150), Ok(vec!["127.0.0.1".parse().unwrap()]));
        assert_eq!(actions(&mut p), []);
    }

    #[test]
    fn a_refusal_is_more_useful_than_a_timeout() {
        let now = t0();
        let mut p = Plan::to_addrs(
            now,
            &[sa("[::1]:80"), sa("127.0.0.1:80")],
            ConnectConfig::default(),
        );
        let _ = actions(&mut p);
        p.handle_timeout(now + ATTEMPT_DELAY);
        let _ = actions(&mut p);
        p.handle_failed(now + ms(300), AttemptId(1), refused("127.0.0.1:80"));
        let timed_out: Error = Error::os("ETIMEDOUT", "connect [::1]:80");
        p.handle_failed(now + ms(900), AttemptId(0), timed_out);
        let acts = actions(&mut p);
        assert!(
            matches!(&acts[..], [Action::Failed(e)] if e.to_string() == "ECONNREFUSED: connect 127.0.0.1:80"),
            "{acts:?}"
        );
    }

    proptest::proptest! {
        /// Every address reads back from its text (IPv6 bare, bracketed and
        /// scoped); no text with a byte an address never has is an address.
        #[test]
        fn literals_parse_and_names_do_not(
            v4 in proptest::prelude::any::<[u8; 4]>(),
            v6 in proptest::prelude::any::<[u16; 8]>(),
            name in "[a-z0-9.:-]{0,20}",
        ) {
            let v4 = IpAddr::from(v4);
            let v6 = IpAddr::from(v6);
            proptest::prop_assert_eq!(parse_ip(&v4.to_string()), Some(v4));
            proptest::prop_assert_eq!(parse_ip(&v6.to_string()), Some(v6));
            proptest::prop_assert_eq!(parse_ip(&format!("[{v6}]")), Some(v6));
            proptest::prop_assert_eq!(parse_ip(&format!("{v6}%eth0")), Some(v6));
            let std: Option<IpAddr> = name.parse().ok();
            proptest::prop_assert_eq!(parse_ip(&name), std);
        }

        /// Whatever the outcomes and their timing: every address is attempted
        /// at most once, in interleaved order; at most one `Connected` or
        /// `Failed`, last; every attempt started is either reported or
        /// cancelled before the end; no attempt starts after the end.
        #[test]
        fn outcomes_are_consistent(
            n in 1usize..6,
            events in proptest::collection::vec((0u8..3, 0u32..8, 0u64..600), 0..20),
            timeout in proptest::option::of(100u64..2000),
        ) {
            let now = t0();
            let addrs: Vec<SocketAddr> = (0..n)
                .map(|i| if i % 2 == 0 {
                    SocketAddr::new(IpAddr::from([10, 0, 0, i as u8]), 80)
                } else {
                    SocketAddr::new(IpAddr::from([0xfd00, 0, 0, 0, 0, 0, 0, i as u16]), 80)
                })
                .collect();
            let cfg = ConnectConfig { timeout: timeout.map(ms), ..ConnectConfig::default() };
            let mut p = Plan::to_addrs(now, &addrs, cfg);
            let mut log = actions(&mut p);
            let mut t = now;
            for (kind, id, dt) in events {
                t += ms(dt);
                match kind {
                    0 => p.handle_timeout(t),
                    1 => p.handle_connected(t, AttemptId(id)),
                    _ => p.handle_failed(t, AttemptId(id), refused("x")),
                }
                log.extend(actions(&mut p));
            }
            let ends: Vec<usize> = log.iter().enumerate()
                .filter(|(_, a)| matches!(a, Action::Connected{..} | Action::Failed(_)))
                .map(|(i, _)| i).collect();
            proptest::prop_assert!(ends.len() <= 1);
            if let Some(&end) = ends.first() {
                proptest::prop_assert_eq!(end, log.len() - 1);
            }
            let started = attempts(&log);
            let want: Vec<SocketAddr> = interleave(&addrs).into_iter().take(started.len()).collect();
            let got: Vec<SocketAddr> = started.iter().map(|(_, a)| *a).collect();
            proptest::prop_assert_eq!(got, want);
            if !ends.is_empty() {
                proptest::prop_assert_eq!(p.poll_timeout(), None);
            }
        }
    }
}
