//! A subscription's bounded queue, and the gate that pauses the socket reader
//! while a queue is full (back-pressure towards the broker).

use std::collections::VecDeque;
use std::sync::mpsc::Sender;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::pump::Input;

/// Messages of one subscription, waiting for the consumer.
#[derive(Debug)]
pub(crate) struct Mailbox<T> {
    state: Mutex<Queue<T>>,
    ready: Condvar,
    capacity: usize,
    wake: Sender<Input>,
}

#[derive(Debug)]
struct Queue<T> {
    items: VecDeque<T>,
    closed: bool,
}

/// Why `pop` returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Empty {
    /// Nothing yet.
    Timeout,
    /// Nothing ever again.
    Closed,
}

impl<T> Mailbox<T> {
    pub fn new(capacity: usize, wake: Sender<Input>) -> Mailbox<T> {
        Mailbox {
            state: Mutex::new(Queue {
                items: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            wake,
        }
    }

    /// Adds an item (always; the pump pauses reading once `is_full`).
    pub fn push(&self, item: T) {
        let mut queue = self.lock();
        queue.items.push_back(item);
        self.ready.notify_one();
    }

    pub fn is_full(&self) -> bool {
        self.lock().items.len() >= self.capacity
    }

    /// No more items will come; waiting consumers wake up.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Waits up to `timeout` (forever for `None`) for an item.
    pub fn pop(&self, timeout: Option<Duration>) -> Result<T, Empty> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut queue = self.lock();
        loop {
            if let Some(item) = queue.items.pop_front() {
                if queue.items.len() + 1 == self.capacity {
                    // It was full: the pump may resume reading.
                    let _ = self.wake.send(Input::Wake);
                }
                return Ok(item);
            }
            if queue.closed {
                return Err(Empty::Closed);
            }
            queue = match deadline {
                None => self.ready.wait(queue).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Empty::Timeout);
                    }
                    self.ready
                        .wait_timeout(queue, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Lets the reader thread read only while the pump wants input: at most
/// `MAX_IN_FLIGHT` chunks wait in the pump's channel, and none while paused.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    in_flight: usize,
    paused: bool,
    closed: bool,
}

const MAX_IN_FLIGHT: usize = 4;

impl Gate {
    /// Waits until the reader may read; false once the gate is closed.
    pub fn wait_ready(&self) -> bool {
        let mut state = self.lock();
        while !state.closed && (state.paused || state.in_flight >= MAX_IN_FLIGHT) {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        if !state.closed {
            state.in_flight += 1;
        }
        !state.closed
    }

    /// The pump took one chunk.
    pub fn consumed(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Pauses or resumes; true when that changed anything.
    pub fn set_paused(&self, paused: bool) -> bool {
        let mut state = self.lock();
        let changed = state.paused != paused;
        if changed {
            state.paused = paused;
            self.changed.notify_all();
        }
        changed
    }

    /// The reader stops at its next check.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
