//! What the producers and consumers of one client process count together,
//! and the wait for the last delivery (blocking, or as a future on any
//! runtime), with a watchdog so a stalled run fails instead of hanging.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::spec::{percentiles, usage, Outcome, Spec};

pub struct Tally {
    pub start: Instant,
    expected: u64,
    received: AtomicU64,
    sent: AtomicU64,
    /// Nanoseconds from `start` to the last delivery, and to the last send.
    last_received: AtomicU64,
    last_sent: AtomicU64,
    state: Mutex<State>,
    changed: Condvar,
    cpu_before: f64,
}

#[derive(Default)]
struct State {
    /// `Some(Ok)` once every delivery came, `Some(Err)` at the deadline.
    end: Option<Result<(), String>>,
    wakers: Vec<Waker>,
    latencies: Vec<u64>,
}

impl Tally {
    /// Counting starts now (the process had used `cpu_before` seconds of
    /// CPU when it began connecting); the run fails after `spec.timeout_s`.
    pub fn new(spec: &Spec, cpu_before: f64) -> Arc<Tally> {
        let tally = Arc::new(Tally {
            start: Instant::now(),
            expected: spec.expected(),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            last_received: AtomicU64::new(0),
            last_sent: AtomicU64::new(0),
            state: Mutex::default(),
            changed: Condvar::new(),
            cpu_before,
        });
        let watched = Arc::downgrade(&tally);
        let timeout = Duration::from_secs(spec.timeout_s);
        std::thread::spawn(move || {
            std::thread::sleep(timeout);
            if let Some(tally) = watched.upgrade() {
                let (got, want) = (tally.received(), tally.expected);
                tally.end(Err(format!("timed out: {got} of {want} deliveries came")));
            }
        });
        tally
    }

    /// Nanoseconds since the start.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// One delivery, stamped `stamp` (ns since the start) by its sender.
    /// Latencies are kept only for paced runs.
    pub fn delivered(&self, stamp: Option<u64>, keep: &mut Vec<u64>, paced: bool) {
        let now = self.now();
        if paced {
            if let Some(stamp) = stamp {
                keep.push(now.saturating_sub(stamp) / 1000);
            }
        }
        self.last_received.fetch_max(now, Ordering::Relaxed);
        if self.received.fetch_add(1, Ordering::Relaxed) + 1 == self.expected {
            self.end(Ok(()));
        }
    }

    /// A consumer's latencies, at its end.
    pub fn keep(&self, latencies: Vec<u64>) {
        self.lock().latencies.extend(latencies);
    }

    /// A producer finished its `n` sends.
    pub fn sent(&self, n: u64) {
        self.sent.fetch_add(n, Ordering::Relaxed);
        self.last_sent.fetch_max(self.now(), Ordering::Relaxed);
    }

    /// A failure that ends the run.
    pub fn fail(&self, why: String) {
        self.end(Err(why));
    }

    fn end(&self, end: Result<(), String>) {
        let mut state = self.lock();
        if state.end.is_none() {
            state.end = Some(end);
        }
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        self.changed.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Blocks until every delivery came (or the run failed).
    pub fn wait(&self) -> Result<(), String> {
        let mut state = self.lock();
        loop {
            if let Some(end) = &state.end {
                return end.clone();
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// [`wait`](Tally::wait) as a future.
    pub fn done(&self) -> Done<'_> {
        Done(self)
    }

    /// The report, once the consumers have handed in their latencies.
    pub fn outcome(&self) -> Outcome {
        let (cpu, rss_kb) = usage();
        let mut state = self.lock();
        let (p50_us, p99_us) = percentiles(&mut state.latencies);
        let secs = |ns: &AtomicU64| ns.load(Ordering::Relaxed) as f64 / 1e9;
        Outcome {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received(),
            send_s: secs(&self.last_sent),
            recv_s: secs(&self.last_received),
            cpu_s: cpu - self.cpu_before,
            rss_kb,
            p50_us,
            p99_us,
            error: state.end.clone().and_then(Result::err),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Done<'a>(&'a Tally);

impl Future for Done<'_> {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.0.lock();
        match &state.end {
            Some(end) => Poll::Ready(end.clone()),
            None => {
                state.wakers.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
