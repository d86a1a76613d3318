//! What one client process is asked to do, and what it reports: the same
//! JSON for every client (Rust, Python, Node), so the orchestrator treats
//! them alike.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One run of one client process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Spec {
    pub host: String,
    pub port: u16,
    pub login: String,
    pub passcode: String,
    /// The `host` header (RabbitMQ's virtual host).
    pub vhost: String,
    pub destination: String,
    /// Body octets; the first 20 are the send time.
    pub size: usize,
    /// Messages sent in all, shared among the producers.
    pub count: u64,
    pub producers: usize,
    pub consumers: usize,
    /// `auto` or `client-individual`.
    pub ack: String,
    /// Every this many sends one waits for its receipt (1: every send); 0:
    /// none waits.
    pub receipt_every: u64,
    /// Messages per second in all; 0: as fast as they go.
    pub rate: u64,
    /// The run fails if it takes longer.
    pub timeout_s: u64,
}

impl Spec {
    /// Deliveries the consumers wait for: each message once on a queue,
    /// once per consumer on a topic.
    pub fn expected(&self) -> u64 {
        if self.destination.starts_with("/topic/") {
            self.count * self.consumers as u64
        } else {
            self.count
        }
    }

    /// Producer `n`'s share of the messages.
    pub fn share(&self, n: usize) -> u64 {
        let p = self.producers as u64;
        self.count / p + u64::from((n as u64) < self.count % p)
    }

    /// Whether the `i`-th send (from 1) of a share of `share` waits for a
    /// receipt.
    pub fn receipted(&self, i: u64, share: u64) -> bool {
        self.receipt_every > 0 && (i % self.receipt_every == 0 || i == share)
    }

    pub fn client_acks(&self) -> bool {
        self.ack != "auto"
    }

    /// A URL for our clients.
    pub fn url(&self) -> String {
        format!(
            "stomp://{}:{}@{}:{}",
            self.login, self.passcode, self.host, self.port
        )
    }
}

/// What a client process reports.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Outcome {
    pub sent: u64,
    pub received: u64,
    /// From the first send to the last send done.
    pub send_s: f64,
    /// From the first send to the last delivery.
    pub recv_s: f64,
    /// User + system time of the whole client process, from just before it
    /// connected to the end.
    pub cpu_s: f64,
    /// Peak resident set of the client process.
    pub rss_kb: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    #[serde(default)]
    pub error: Option<String>,
}

/// Paces sends at `rate` per second in all (0: no pacing): how long to wait
/// before send number `i` (from 0) of a producer sending `1 / producers` of
/// the rate.
pub fn pace(rate: u64, producers: usize, start: Instant, i: u64) -> Option<Duration> {
    if rate == 0 {
        return None;
    }
    let due = start + Duration::from_secs_f64(i as f64 * producers as f64 / rate as f64);
    due.checked_duration_since(Instant::now())
        .filter(|d| *d > Duration::from_micros(200))
}

/// A body of `size` octets stamped with `nanos` (20 decimal digits) and
/// padded with `x`.
pub fn stamped(size: usize, nanos: u64) -> Vec<u8> {
    let mut body = vec![b'x'; size.max(20)];
    let mut n = nanos;
    for digit in body[..20].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    body
}

/// The stamp of a body made by [`stamped`].
pub fn stamp_of(body: &[u8]) -> Option<u64> {
    std::str::from_utf8(body.get(..20)?).ok()?.parse().ok()
}

/// p50 and p99 of `latencies` (µs).
pub fn percentiles(latencies: &mut [u64]) -> (f64, f64) {
    if latencies.is_empty() {
        return (0.0, 0.0);
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as f64;
    (at(0.5), at(0.99))
}

/// The process's CPU seconds (user + system) and peak RSS in KiB.
#[allow(unsafe_code)]
pub fn usage() -> (f64, u64) {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime) + secs(ru.ru_stime), ru.ru_maxrss as u64)
}
