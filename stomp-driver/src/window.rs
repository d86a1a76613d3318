//! The send window: how many octets of sends that nobody waits for (no
//! receipt) may be on their way to the driver at once. A caller takes room
//! before it hands a send over and returns at once; the driver gives the
//! room back once the send has reached the session (or failed). A full
//! window holds callers back, blocking or async, so memory stays bounded
//! however fast they send.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll};

use crate::queue::Waiters;
use crate::Error;

/// What one send weighs in the window: its body, its destination and its
/// headers, and a frame's fixed cost, so empty bodies count too.
pub fn weight(destination: &str, body: usize, headers: &[(String, String)]) -> usize {
    let headers: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    64 + destination.len() + body + headers
}

/// See the module docs.
#[derive(Debug)]
pub struct Window {
    state: Mutex<State>,
    room: Condvar,
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    used: usize,
    closed: bool,
    /// Why the last send nobody waited for failed, for the next call.
    failed: Option<Error>,
    waiters: Waiters,
}

impl Window {
    /// A window of `capacity` octets (at least 1).
    pub fn new(capacity: usize) -> Window {
        Window {
            state: Mutex::default(),
            room: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    /// Takes `n` octets of room, blocking while the window is full (a send
    /// larger than the whole window goes once the window is empty). Fails
    /// once the window is closed, or with the failure of an earlier send.
    pub fn take(&self, n: usize) -> Result<(), Error> {
        let mut state = self.lock();
        loop {
            if let Some(ready) = self.try_take(&mut state, n) {
                return ready;
            }
            state.waiters.sleepers += 1;
            state = self.room.wait(state).unwrap_or_else(|e| e.into_inner());
            state.waiters.sleepers -= 1;
        }
    }

    /// [`take`](Window::take) without blocking the thread.
    pub fn poll_take(&self, cx: &mut Context<'_>, n: usize) -> Poll<Result<(), Error>> {
        let mut state = self.lock();
        match self.try_take(&mut state, n) {
            Some(ready) => Poll::Ready(ready),
            None => {
                state.waiters.register(cx);
                Poll::Pending
            }
        }
    }

    /// Waits for room without blocking the thread. A task sending in a
    /// loop gives way to other tasks only when the window is full: a full
    /// window is what lets the connection's task run on a runtime with one
    /// thread. (Yielding every few sends as well was tried: it cost the
    /// current-thread Tokio runtime 2.5 times the CPU per message.)
    pub async fn take_async(&self, n: usize) -> Result<(), Error> {
        std::future::poll_fn(|cx| self.poll_take(cx, n)).await
    }

    fn try_take(&self, state: &mut State, n: usize) -> Option<Result<(), Error>> {
        if let Some(error) = state.failed.take() {
            return Some(Err(error));
        }
        if state.closed {
            return Some(Err(Error::Closed(None)));
        }
        if state.used == 0 || state.used + n <= self.capacity {
            state.used += n;
            return Some(Ok(()));
        }
        None
    }

    /// Gives `n` octets back. Waiting callers wake once half the window
    /// is free, not for every send that leaves it: they then go on in a
    /// batch instead of one wake-up (two thread switches) per send.
    pub fn give(&self, n: usize) {
        let mut state = self.lock();
        state.used = state.used.saturating_sub(n);
        if state.used <= self.capacity / 2 {
            self.wake(state);
        }
    }

    /// Gives `n` octets back for a send that failed: the next call that
    /// takes room fails with `error`.
    pub fn fail(&self, n: usize, error: Error) {
        tracing::warn!(%error, "STOMP send without a receipt failed");
        let mut state = self.lock();
        state.used = state.used.saturating_sub(n);
        state.failed = Some(error);
        self.wake(state);
    }

    /// Gives `n` octets back for a send nobody waited for, as it went:
    /// [`give`](Window::give) when it was taken, [`fail`](Window::fail) when
    /// it was refused.
    pub fn settle(&self, n: usize, result: Result<(), Error>) {
        match result {
            Ok(()) => self.give(n),
            Err(error) => self.fail(n, error),
        }
    }

    /// Octets taken now.
    pub fn used(&self) -> usize {
        self.lock().used
    }

    /// No more room will be given: waiting callers fail.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.wake(state);
    }

    fn wake(&self, mut state: MutexGuard<'_, State>) {
        let wake = state.waiters.take();
        drop(state);
        wake.run(&self.room);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_full_window_holds_a_sender_until_room_is_given_back() {
        let window = Arc::new(Window::new(100));
        window.take(60).unwrap();
        window.take(40).unwrap();
        let waiting = window.clone();
        let sender = std::thread::spawn(move || waiting.take(10));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!sender.is_finished(), "the window is full");
        window.give(60);
        sender.join().unwrap().unwrap();
        assert_eq!(window.used(), 50);
    }

    #[test]
    fn a_send_larger_than_the_window_goes_alone() {
        let window = Window::new(100);
        window.take(500).unwrap();
        window.give(500);
        window.take(10).unwrap();
    }

    #[test]
    fn a_failed_send_is_reported_to_the_next_call_once() {
        let window = Window::new(100);
        window.take(10).unwrap();
        window.fail(10, Error::Closed(None));
        assert!(window.take(10).is_err());
        window.take(10).unwrap();
        window.close();
        assert!(matches!(window.take(1), Err(Error::Closed(None))));
    }
}
