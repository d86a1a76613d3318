//! Heart-beat negotiation and the two timers (STOMP 1.1+).

use std::fmt;
use std::time::{Duration, Instant};

/// A `heart-beat` header value: `cx,cy` in milliseconds.
///
/// From a client, `cx` is the smallest interval at which it can send heart-beats
/// and `cy` the interval at which it wants to receive them; a server answers the
/// same way (`sx,sy`). 0 means "cannot send" or "does not want".
///
/// ```
/// use stomp_proto::HeartBeat;
///
/// let hb: HeartBeat = "10000,5000".parse().unwrap();
/// assert_eq!((hb.send_ms, hb.receive_ms), (10000, 5000));
/// assert_eq!(hb.to_string(), "10000,5000");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct HeartBeat {
    /// The sender's own interval (cx or sx), in milliseconds; 0 = none.
    pub send_ms: u32,
    /// The interval the sender wants to receive at (cy or sy); 0 = none.
    pub receive_ms: u32,
}

impl HeartBeat {
    /// No heart-beats either way: `0,0` (also what an absent header means).
    pub const OFF: HeartBeat = HeartBeat {
        send_ms: 0,
        receive_ms: 0,
    };

    /// A heart-beat value.
    pub const fn new(send_ms: u32, receive_ms: u32) -> HeartBeat {
        HeartBeat {
            send_ms,
            receive_ms,
        }
    }
}

impl fmt::Display for HeartBeat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.send_ms, self.receive_ms)
    }
}

/// A `heart-beat` value that is not two comma-separated numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseHeartBeatError {
    text: String,
}

impl fmt::Display for ParseHeartBeatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "heart-beat {:?} is not two comma-separated millisecond counts",
            self.text
        )
    }
}

impl std::error::Error for ParseHeartBeatError {}

impl std::str::FromStr for HeartBeat {
    type Err = ParseHeartBeatError;

    fn from_str(s: &str) -> Result<HeartBeat, ParseHeartBeatError> {
        use nom::character::complete::{char, u32 as number};
        use nom::sequence::separated_pair;
        use nom::Parser;
        let mut parser = separated_pair(number::<&str, ()>, char(','), number);
        match parser.parse(s) {
            Ok(("", (send_ms, receive_ms))) => Ok(HeartBeat::new(send_ms, receive_ms)),
            _ => Err(ParseHeartBeatError { text: s.into() }),
        }
    }
}

/// The intervals both sides agreed on. `None` turns a direction off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// How often we must send something (a frame or a heart-beat).
    pub send: Option<Duration>,
    /// How often we expect to receive something.
    pub receive: Option<Duration>,
}

/// Applies the specification's rule to our offer and the peer's answer.
///
/// We send every `max(ours.send, theirs.receive)` unless either is 0, and expect
/// to receive every `max(ours.receive, theirs.send)` unless either is 0. The rule
/// is symmetric: a server calls it with its own value as `ours`.
///
/// ```
/// use std::time::Duration;
/// use stomp_proto::{heartbeat, HeartBeat};
///
/// let n = heartbeat::negotiate(HeartBeat::new(1000, 5000), HeartBeat::new(2000, 0));
/// assert_eq!(n.send, None); // the server does not want any
/// assert_eq!(n.receive, Some(Duration::from_millis(5000)));
/// ```
pub fn negotiate(ours: HeartBeat, theirs: HeartBeat) -> Negotiated {
    let interval =
        |a: u32, b: u32| (a != 0 && b != 0).then(|| Duration::from_millis(u64::from(a.max(b))));
    Negotiated {
        send: interval(ours.send_ms, theirs.receive_ms),
        receive: interval(ours.receive_ms, theirs.send_ms),
    }
}

/// The two heart-beat timers of one connection.
///
/// Pure bookkeeping: the owner reports what it sent and received and when, and
/// asks what is due. A heart-beat is due when nothing at all was sent for the
/// send interval; the peer is dead when nothing at all arrived for the receive
/// interval times the grace factor.
#[derive(Clone, Debug)]
pub struct Timers {
    negotiated: Negotiated,
    grace: f64,
    last_sent: Instant,
    last_received: Instant,
}

impl Timers {
    /// Timers starting at `now`. `grace` multiplies the receive interval (2.0 is
    /// a common choice; brokers themselves use 3.0 on their side).
    pub fn new(negotiated: Negotiated, grace: f64, now: Instant) -> Timers {
        Timers {
            negotiated,
            grace: grace.max(1.0),
            last_sent: now,
            last_received: now,
        }
    }

    /// The agreed intervals.
    pub fn negotiated(&self) -> Negotiated {
        self.negotiated
    }

    /// Records that octets were written at `now`.
    pub fn sent(&mut self, now: Instant) {
        self.last_sent = self.last_sent.max(now);
    }

    /// Records that octets arrived at `now`.
    pub fn received(&mut self, now: Instant) {
        self.last_received = self.last_received.max(now);
    }

    /// When a heart-beat must be sent if nothing else is.
    pub fn send_deadline(&self) -> Option<Instant> {
        self.negotiated.send.map(|i| self.last_sent + i)
    }

    /// When the peer is declared dead if nothing arrives.
    pub fn receive_deadline(&self) -> Option<Instant> {
        self.negotiated
            .receive
            .map(|i| self.last_received + i.mul_f64(self.grace))
    }

    /// The earlier of the two deadlines.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.send_deadline(), self.receive_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether a heart-beat is due at `now`.
    pub fn heartbeat_due(&self, now: Instant) -> bool {
        self.send_deadline().is_some_and(|d| now >= d)
    }

    /// Whether the peer has been silent past the grace at `now`.
    pub fn peer_dead(&self, now: Instant) -> bool {
        self.receive_deadline().is_some_and(|d| now >= d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn parses_and_rejects() {
        assert_eq!("0,0".parse(), Ok(HeartBeat::OFF));
        assert_eq!("100,200".parse(), Ok(HeartBeat::new(100, 200)));
        for bad in [
            "",
            "1",
            "1,",
            ",1",
            "1,2,3",
            " 1,2",
            "1, 2",
            "-1,2",
            "a,b",
            "99999999999,1",
        ] {
            assert!(bad.parse::<HeartBeat>().is_err(), "{bad:?}");
        }
    }

    /// The full matrix of zero and non-zero values on each side.
    #[test]
    fn negotiation_matrix() {
        let cases = [
            // (cx, cy), (sx, sy) -> (send, receive)
            ((0, 0), (0, 0), None, None),
            ((1000, 1000), (0, 0), None, None),
            ((0, 0), (1000, 1000), None, None),
            ((1000, 0), (0, 1000), ms(1000), None),
            ((0, 1000), (1000, 0), None, ms(1000)),
            ((1000, 2000), (3000, 4000), ms(4000), ms(3000)),
            ((5000, 500), (100, 200), ms(5000), ms(500)),
            ((1000, 1000), (1000, 0), None, ms(1000)),
            ((1000, 1000), (0, 1000), ms(1000), None),
        ];
        for ((cx, cy), (sx, sy), send, receive) in cases {
            let n = negotiate(HeartBeat::new(cx, cy), HeartBeat::new(sx, sy));
            assert_eq!(
                (n.send, n.receive),
                (send, receive),
                "{cx},{cy} vs {sx},{sy}"
            );
            // The server's view is the mirror image.
            let m = negotiate(HeartBeat::new(sx, sy), HeartBeat::new(cx, cy));
            assert_eq!((m.send, m.receive), (receive, send));
        }
    }

    #[test]
    fn timers_fire_on_silence_only() {
        let t0 = Instant::now();
        let n = Negotiated {
            send: ms(1000),
            receive: ms(1000),
        };
        let mut timers = Timers::new(n, 2.0, t0);
        assert_eq!(
            timers.next_deadline(),
            Some(t0 + Duration::from_millis(1000))
        );
        assert!(!timers.heartbeat_due(t0 + Duration::from_millis(999)));
        timers.sent(t0 + Duration::from_millis(900));
        assert!(!timers.heartbeat_due(t0 + Duration::from_millis(1000)));
        assert!(timers.heartbeat_due(t0 + Duration::from_millis(1900)));
        assert!(!timers.peer_dead(t0 + Duration::from_millis(1999)));
        assert!(timers.peer_dead(t0 + Duration::from_millis(2000)));
        timers.received(t0 + Duration::from_millis(1500));
        assert!(!timers.peer_dead(t0 + Duration::from_millis(3499)));
        assert!(timers.peer_dead(t0 + Duration::from_millis(3500)));
        let off = Timers::new(Negotiated::default(), 2.0, t0);
        assert_eq!(off.next_deadline(), None);
        assert!(!off.peer_dead(t0 + Duration::from_secs(1_000_000)));
    }
}
