//! The gate that paces a socket reader thread: it reads only what the
//! driver's read budget allows (counted from the bytes the reader has read,
//! handed in or not, so the budget is never overshot), with a few chunks
//! in flight at most.

use std::sync::{Condvar, Mutex};

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    /// Chunks read and not yet taken by the pump.
    in_flight: usize,
    /// Octets read so far.
    read: u64,
    /// Octets the reader may have read in all, so far.
    allowed: u64,
    closed: bool,
}

const MAX_IN_FLIGHT: usize = 4;

impl Gate {
    /// Waits until the reader may read; how much (at least 1), or `None`
    /// once the gate is closed.
    pub fn wait_ready(&self) -> Option<usize> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            let room = state.allowed.saturating_sub(state.read);
            if room > 0 && state.in_flight < MAX_IN_FLIGHT {
                return Some(usize::try_from(room).unwrap_or(usize::MAX));
            }
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The reader read `n` octets, now on their way to the pump.
    pub fn read(&self, n: usize) {
        let mut state = self.lock();
        state.read += n as u64;
        state.in_flight += 1;
    }

    /// The pump took one chunk.
    pub fn consumed(&self) {
        let mut state = self.lock();
        state.in_flight = state.in_flight.saturating_sub(1);
        self.changed.notify_all();
    }

    /// How many octets the reader may have read in all.
    pub fn allow(&self, total: u64) {
        let mut state = self.lock();
        if state.allowed != total {
            state.allowed = total;
            self.changed.notify_all();
        }
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
