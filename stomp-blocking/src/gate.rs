//! The gate that paces the socket reader thread: a few chunks in flight,
//! none while a subscription is full (back-pressure towards the broker).

use std::sync::{Condvar, Mutex};

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
