//! The life-cycle events of a client, broadcast: every reader sees every
//! event, from the oldest the log still holds.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::driver::Lifecycle;
use crate::queue::Empty;

/// The life-cycle events of a client, as they happen: connected, heart-beat
/// timeout, connection lost, reconnecting, closed.
///
/// Every reader sees every event: each value [`Client::events`] returns,
/// and each clone of one, reads on its own, starting from the oldest event
/// the client still holds (the last [`Events::CAPACITY`], so a reader made
/// after the connect still sees it). A reader that falls further behind
/// skips what was dropped ([`missed`](Events::missed) counts it). Receive
/// by blocking ([`recv_timeout`](Events::recv_timeout)) or as a `Stream`
/// ([`poll_next`](Events::poll_next)).
///
/// [`Client::events`]: crate::aio::Client::events
#[derive(Debug)]
pub struct Events {
    log: Arc<EventLog>,
    /// The sequence number of the next event this reader takes.
    cursor: AtomicU64,
    /// Events dropped before this reader took them.
    missed: AtomicU64,
}

impl Clone for Events {
    /// Another reader, at the same place: from here on, both see every
    /// event.
    fn clone(&self) -> Events {
        Events {
            log: self.log.clone(),
            cursor: AtomicU64::new(self.cursor.load(Ordering::Relaxed)),
            missed: AtomicU64::new(self.missed.load(Ordering::Relaxed)),
        }
    }
}

impl Events {
    /// How many events the log holds for readers that are behind.
    pub const CAPACITY: usize = 256;

    /// A fresh log, and a reader of it.
    pub fn new() -> Events {
        EventLog::new().reader()
    }

    /// The log the driver writes.
    pub fn log(&self) -> &Arc<EventLog> {
        &self.log
    }

    /// A new reader from the oldest event the log holds.
    pub fn reader(&self) -> Events {
        self.log.reader()
    }

    /// The next event, blocking; `None` once the client has ended and this
    /// reader has taken every event.
    pub fn recv(&self) -> Option<Lifecycle> {
        let mut state = self.log.lock();
        loop {
            if let Some(event) = self.take(&state) {
                return Some(event);
            }
            if state.closed {
                return None;
            }
            state = self
                .log
                .arrived
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The next event within `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Lifecycle, Empty> {
        let deadline = Instant::now() + timeout;
        let mut state = self.log.lock();
        loop {
            if let Some(event) = self.take(&state) {
                return Ok(event);
            }
            if state.closed {
                return Err(Empty::Closed);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Empty::Timeout);
            }
            state = self
                .log
                .arrived
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// An event if one is waiting.
    pub fn try_recv(&self) -> Option<Lifecycle> {
        self.take(&self.log.lock())
    }

    /// The next event without blocking the thread (`None`: the end).
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Lifecycle>> {
        let mut state = self.log.lock();
        if let Some(event) = self.take(&state) {
            return Poll::Ready(Some(event));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            state.wakers.push(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Waits for the next event without blocking the thread.
    pub async fn next(&self) -> Option<Lifecycle> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Events this reader never saw: dropped from the log before it took
    /// them.
    pub fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// This reader's next event in `state`, if there is one.
    fn take(&self, state: &State) -> Option<Lifecycle> {
        let mut cursor = self.cursor.load(Ordering::Relaxed);
        let oldest = state.next - state.events.len() as u64;
        if cursor < oldest {
            self.missed.fetch_add(oldest - cursor, Ordering::Relaxed);
            cursor = oldest;
        }
        let event = state.events.get((cursor - oldest) as usize)?.clone();
        self.cursor.store(cursor + 1, Ordering::Relaxed);
        Some(event)
    }
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}

/// Where the driver writes the events its readers take.
#[derive(Debug)]
pub struct EventLog {
    state: Mutex<State>,
    arrived: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The last [`Events::CAPACITY`] events.
    events: VecDeque<Lifecycle>,
    /// The sequence number the next event gets.
    next: u64,
    closed: bool,
    /// Async readers waiting for the next event.
    wakers: Vec<Waker>,
}

impl EventLog {
    /// An empty, open log.
    pub fn new() -> Arc<EventLog> {
        Arc::new(EventLog {
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
        })
    }

    /// A reader from the oldest event held.
    pub fn reader(self: &Arc<EventLog>) -> Events {
        let state = self.lock();
        let oldest = state.next - state.events.len() as u64;
        Events {
            log: self.clone(),
            cursor: AtomicU64::new(oldest),
            missed: AtomicU64::new(0),
        }
    }

    /// Adds `event` for every reader (the oldest goes once the log is full).
    pub fn offer(&self, event: Lifecycle) {
        let wakers = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            if state.events.len() == Events::CAPACITY {
                state.events.pop_front();
            }
            state.events.push_back(event);
            state.next += 1;
            std::mem::take(&mut state.wakers)
        };
        self.arrived.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    /// No events after this: readers end once they have taken the rest.
    pub fn close(&self) {
        let wakers = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.wakers)
        };
        self.arrived.notify_all();
        wakers.into_iter().for_each(Waker::wake);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stomp_proto::client::CloseReason;

    fn lost(n: u64) -> Lifecycle {
        Lifecycle::Reconnecting {
            attempt: n as u32,
            host: "stomp://h:1".parse().unwrap(),
            delay: Duration::from_millis(n),
        }
    }

    #[test]
    fn every_reader_sees_every_event_from_the_oldest_held() {
        let first = Events::new();
        let log = first.log().clone();
        log.offer(Lifecycle::HeartbeatTimeout);
        let second = first.reader();
        let clone = first.clone();
        log.offer(lost(1));
        for reader in [&first, &second, &clone] {
            assert_eq!(reader.try_recv(), Some(Lifecycle::HeartbeatTimeout));
            assert_eq!(reader.try_recv(), Some(lost(1)));
            assert_eq!(reader.try_recv(), None);
        }
        // A clone starts where its original is.
        let late = first.clone();
        log.offer(Lifecycle::Closed(CloseReason::Disconnected));
        log.close();
        for reader in [&first, &late] {
            assert_eq!(
                reader.recv_timeout(Duration::from_secs(1)),
                Ok(Lifecycle::Closed(CloseReason::Disconnected))
            );
            assert_eq!(reader.recv(), None);
        }
        // A reader made at the end still has the history.
        assert_eq!(first.reader().recv(), Some(Lifecycle::HeartbeatTimeout));
    }

    #[test]
    fn a_reader_that_falls_behind_skips_what_was_dropped_and_counts_it() {
        let reader = Events::new();
        let log = reader.log().clone();
        for n in 0..Events::CAPACITY as u64 + 10 {
            log.offer(lost(n));
        }
        assert_eq!(reader.try_recv(), Some(lost(10)));
        assert_eq!(reader.missed(), 10);
        assert_eq!(reader.recv_timeout(Duration::from_millis(1)), Ok(lost(11)));
    }

    #[test]
    fn a_blocked_reader_wakes_for_an_event_from_another_thread() {
        let reader = Events::new();
        let log = reader.log().clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            log.offer(Lifecycle::HeartbeatTimeout);
            log.close();
        });
        assert_eq!(reader.recv(), Some(Lifecycle::HeartbeatTimeout));
        assert_eq!(
            reader.recv_timeout(Duration::from_secs(5)),
            Err(Empty::Closed)
        );
        writer.join().unwrap();
    }
}
