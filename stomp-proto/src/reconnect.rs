//! Reconnect policy: which host to dial next, and when. Pure arithmetic on a
//! seeded generator; the session asks it, the adapter dials.
//!
//! Hosts are tried in passes. A pass dials every host of the list once, back to
//! back (the next as soon as one fails). Between passes the session waits: the
//! first reconnect pass starts `initial_delay` after a connection is lost, and
//! each further pass waits `multiplier` times longer, up to `max_delay`. Jitter
//! shortens every wait by a random fraction (up to [`ReconnectPolicy::jitter`])
//! so that many clients of one broker do not return in step.
//!
//! ```
//! use std::time::Duration;
//! use stomp_proto::reconnect::ReconnectPolicy;
//!
//! let policy = ReconnectPolicy {
//!     jitter: 0.0,
//!     ..ReconnectPolicy::failover()
//! };
//! let waits: Vec<u64> = (1..=14).map(|pass| policy.base_delay(pass).as_millis() as u64).collect();
//! assert_eq!(&waits[..4], &[10, 20, 40, 80]);
//! assert_eq!(waits[13], 30_000); // capped at maxReconnectDelay
//! ```

use std::time::{Duration, Instant};

/// What happens to sends whose receipt was outstanding when a connection was
/// lost. The broker may or may not have them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UnconfirmedSends {
    /// Fail each with [`RequestError::ConnectionLost`](crate::client::RequestError::ConnectionLost):
    /// no duplicate is ever silent; the caller decides whether to send again.
    #[default]
    Fail,
    /// Send them again after the reconnect (with the same receipt ids, after
    /// the resubscriptions): at-least-once, a message may arrive twice. Sends
    /// inside a transaction are always failed: the broker rolled it back.
    Resend,
}

/// How a session reconnects. [`ReconnectPolicy::default`] never reconnects;
/// [`ReconnectPolicy::failover`] has the defaults of a `failover:` URI.
#[derive(Clone, Debug, PartialEq)]
pub struct ReconnectPolicy {
    /// The wait before the first reconnect pass.
    pub initial_delay: Duration,
    /// The longest wait between passes.
    pub max_delay: Duration,
    /// Whether the wait grows by `multiplier` after each pass.
    pub exponential: bool,
    /// The growth factor (at least 1).
    pub multiplier: f64,
    /// Passes after a lost connection before giving up; `None` = forever,
    /// `Some(0)` = never reconnect.
    pub max_attempts: Option<u32>,
    /// The same for the very first connect (passes after the first one).
    pub startup_max_attempts: Option<u32>,
    /// Shuffle the host list before every pass (load spreading); otherwise
    /// hosts are tried in the order given (primary first). Either way,
    /// after an established connection is lost its host comes last in
    /// every pass until a connection is made again: in list order, a pass
    /// then starts with the host after it and wraps around. A host that
    /// has just failed (killed, or silent behind a half-open link) is so
    /// not tried before the others.
    pub randomize: bool,
    /// Each wait is shortened by a random fraction of itself, up to this
    /// (0 = exact waits, 1 = anywhere from 0 to the full wait).
    pub jitter: f64,
    /// The seed of the generator behind `randomize` and `jitter`. The session
    /// never reads a random source: adapters seed it from the operating
    /// system, tests with a constant.
    pub seed: u64,
    /// What happens to sends awaiting a receipt when the connection is lost.
    pub unconfirmed_sends: UnconfirmedSends,
}

impl Default for ReconnectPolicy {
    /// No reconnect: each host of the list is tried once, in order.
    fn default() -> ReconnectPolicy {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_secs(30),
            exponential: true,
            multiplier: 2.0,
            max_attempts: Some(0),
            startup_max_attempts: Some(0),
            randomize: false,
            jitter: 0.5,
            seed: 0,
            unconfirmed_sends: UnconfirmedSends::Fail,
        }
    }
}

impl ReconnectPolicy {
    /// The defaults of a `failover:` URI (as ActiveMQ's): reconnect forever,
    /// 10 ms doubling up to 30 s, hosts shuffled.
    pub fn failover() -> ReconnectPolicy {
        ReconnectPolicy {
            max_attempts: None,
            startup_max_attempts: None,
            randomize: true,
            ..ReconnectPolicy::default()
        }
    }

    /// The wait before reconnect pass `pass` (1 = the first), without jitter.
    pub fn base_delay(&self, pass: u32) -> Duration {
        if !self.exponential || pass <= 1 {
            return self.initial_delay.min(self.max_delay);
        }
        let exponent = pass.saturating_sub(1).min(4096) as i32;
        let factor = self.multiplier.max(1.0).powi(exponent);
        let millis = self.initial_delay.as_secs_f64() * factor;
        if millis.is_finite() && millis < self.max_delay.as_secs_f64() {
            Duration::from_secs_f64(millis)
        } else {
            self.max_delay
        }
    }
}

/// SplitMix64: small, fast, and the same sequence for the same seed everywhere.
#[derive(Clone, Debug)]
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n
    }
}

pub use crate::client::Dial;

/// The next dial, as planned after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Planned {
    pub host: usize,
    pub attempt: u32,
    pub delay: Duration,
}

/// The pass bookkeeping behind `poll_dial`.
#[derive(Clone, Debug)]
pub(crate) struct Dialer {
    policy: ReconnectPolicy,
    hosts: usize,
    rng: Rng,
    /// This pass's host order.
    order: Vec<usize>,
    /// The pass: 0 is the first connect.
    pass: u32,
    /// Where in `order` the next dial is.
    position: usize,
    /// When the next dial is due; `None` while connected, dialling or done.
    due: Option<Instant>,
    connected_once: bool,
    /// The host of the connection last established, tried last in the
    /// passes after it is lost (it just failed; the others may not have).
    last_connected: Option<usize>,
}

impl Dialer {
    pub fn new(policy: ReconnectPolicy, hosts: usize, now: Instant) -> Dialer {
        let mut dialer = Dialer {
            rng: Rng(policy.seed),
            policy,
            hosts,
            order: (0..hosts).collect(),
            pass: 0,
            position: 0,
            due: (hosts > 0).then_some(now),
            connected_once: false,
            last_connected: None,
        };
        dialer.shuffle();
        dialer
    }

    /// The host to dial now, if one is due.
    pub fn take_due(&mut self, now: Instant) -> Option<(usize, u32)> {
        match self.due {
            Some(due) if due <= now => self.take_next(),
            _ => None,
        }
    }

    /// The next planned host, due or not (the caller opened a transport
    /// without asking: it counts as that dial).
    pub fn take_next(&mut self) -> Option<(usize, u32)> {
        self.due?;
        self.due = None;
        let host = *self.order.get(self.position)?;
        self.position += 1;
        Some((host, self.pass))
    }

    /// When the next dial is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.due
    }

    /// A connection to `host` (an index into the list; `None` for a
    /// transport the caller opened) is established.
    pub fn connected(&mut self, host: Option<usize>) {
        self.connected_once = true;
        self.last_connected = host;
        self.pass = 0;
        self.position = self.order.len();
        self.due = None;
    }

    /// A dial (or a connection that never reached CONNECTED) failed: the next
    /// host of the pass, at once, or the next pass after a wait; `None` when
    /// the policy gives up.
    pub fn failed(&mut self, now: Instant) -> Option<Planned> {
        if self.position < self.order.len() {
            self.due = Some(now);
            return Some(Planned {
                host: self.order[self.position],
                attempt: self.pass,
                delay: Duration::ZERO,
            });
        }
        self.next_pass(now)
    }

    /// An established connection was lost: the first reconnect pass, after
    /// the initial delay; `None` when the policy never reconnects.
    pub fn lost(&mut self, now: Instant) -> Option<Planned> {
        self.pass = 0;
        self.next_pass(now)
    }

    /// Passes made since the last established connection.
    pub fn attempts(&self) -> u32 {
        self.pass
    }

    fn next_pass(&mut self, now: Instant) -> Option<Planned> {
        let limit = if self.connected_once {
            self.policy.max_attempts
        } else {
            self.policy.startup_max_attempts
        };
        if self.hosts == 0 || limit.is_some_and(|max| self.pass >= max) {
            self.due = None;
            return None;
        }
        self.pass += 1;
        self.position = 0;
        self.shuffle();
        self.last_connected_last();
        let base = self.policy.base_delay(self.pass);
        let jitter = self.policy.jitter.clamp(0.0, 1.0) * self.rng.unit();
        let delay = base.mul_f64(1.0 - jitter);
        self.due = Some(now + delay);
        Some(Planned {
            host: self.order[0],
            attempt: self.pass,
            delay,
        })
    }

    /// Puts the host of the lost connection at the end of the pass: in
    /// list order, the pass starts with the host after it and wraps round;
    /// shuffled, it keeps the shuffle of the others.
    fn last_connected_last(&mut self) {
        if !self.policy.randomize {
            self.order = (0..self.hosts).collect();
        }
        let Some(lost) = self.last_connected.filter(|&h| h < self.hosts) else {
            return;
        };
        if self.policy.randomize {
            self.order.retain(|&h| h != lost);
            self.order.push(lost);
        } else {
            self.order = (lost + 1..self.hosts).chain(0..=lost).collect();
        }
    }

    /// Fisher-Yates over the host order, when asked for.
    fn shuffle(&mut self) {
        if !self.policy.randomize {
            return;
        }
        for i in (1..self.order.len()).rev() {
            let j = self.rng.below(i + 1);
            self.order.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64, seed: u64) -> ReconnectPolicy {
        ReconnectPolicy {
            jitter,
            seed,
            ..ReconnectPolicy::failover()
        }
    }

    #[test]
    fn base_delays_grow_and_cap() {
        let p = policy(0.0, 0);
        let waits: Vec<u128> = (1..=13).map(|n| p.base_delay(n).as_millis()).collect();
        assert_eq!(
            waits,
            [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 20480, 30000]
        );
        assert_eq!(p.base_delay(u32::MAX), p.max_delay, "no overflow");
        let flat = ReconnectPolicy {
            exponential: false,
            ..p
        };
        assert_eq!(flat.base_delay(9), Duration::from_millis(10));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let now = Instant::now();
        for seed in 0..200 {
            let mut dialer = Dialer::new(policy(0.3, seed), 1, now);
            dialer.take_due(now).unwrap();
            dialer.connected(Some(0));
            let planned = dialer.lost(now).unwrap();
            let ms = planned.delay.as_secs_f64() * 1000.0;
            assert!((7.0..=10.0).contains(&ms), "seed {seed}: {ms}");
        }
    }

    #[test]
    fn the_host_of_a_lost_connection_comes_last_in_each_pass() {
        let now = Instant::now();
        let plain = ReconnectPolicy {
            randomize: false,
            jitter: 0.0,
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..ReconnectPolicy::failover()
        };
        let mut dialer = Dialer::new(plain.clone(), 3, now);
        assert_eq!(dialer.take_due(now), Some((0, 0)));
        dialer.connected(Some(0));
        dialer.lost(now).unwrap();
        // Two passes over the list, the lost host last in each.
        let order: Vec<usize> = (0..6)
            .map(|_| {
                let (host, _) = dialer.take_due(now).unwrap();
                dialer.failed(now).unwrap();
                host
            })
            .collect();
        assert_eq!(order, [1, 2, 0, 1, 2, 0]);
        // Connected to the second host, and lost again: the third first.
        let (host, _) = dialer.take_due(now).unwrap();
        assert_eq!(host, 1);
        dialer.connected(Some(1));
        dialer.lost(now).unwrap();
        let order: Vec<usize> = (0..3)
            .map(|_| {
                let (host, _) = dialer.take_due(now).unwrap();
                dialer.failed(now).unwrap();
                host
            })
            .collect();
        assert_eq!(order, [2, 0, 1]);
        // A transport the caller opened names no host: list order again.
        dialer.take_due(now).unwrap();
        dialer.connected(None);
        dialer.lost(now).unwrap();
        assert_eq!(dialer.take_due(now), Some((0, 1)));

        // Shuffled: the lost host is last, the others in any order.
        for seed in 0..50 {
            let mut dialer = Dialer::new(policy(0.0, seed), 4, now);
            let (first, _) = dialer.take_due(now).unwrap();
            dialer.connected(Some(first));
            dialer.lost(now).unwrap();
            let order: Vec<usize> = (0..4)
                .map(|_| {
                    // Past any wait between passes.
                    let (host, _) = dialer.take_due(now + Duration::from_secs(60)).unwrap();
                    dialer.failed(now);
                    host
                })
                .collect();
            assert_eq!(order[3], first, "seed {seed}: {order:?}");
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3], "seed {seed}");
        }
    }

    #[test]
    fn a_shuffled_pass_is_a_permutation() {
        let now = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            let mut dialer = Dialer::new(policy(0.0, seed), 5, now);
            let mut order = Vec::new();
            while let Some((host, attempt)) = dialer.take_due(now) {
                assert_eq!(attempt, 0);
                order.push(host);
                if dialer.failed(now).is_some_and(|p| p.attempt > 0) {
                    break;
                }
            }
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3, 4], "seed {seed}");
            seen.insert(order);
        }
        assert!(seen.len() > 10, "different seeds, different orders");
    }

    #[test]
    fn no_hosts_means_no_dials() {
        let now = Instant::now();
        let mut dialer = Dialer::new(policy(0.0, 0), 0, now);
        assert_eq!(dialer.take_due(now), None);
        assert_eq!(dialer.failed(now), None);
        assert_eq!(dialer.lost(now), None);
    }
}
