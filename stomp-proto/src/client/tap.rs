//! A tap of every frame and heart-beat that crosses the connection, for
//! debugging (stompy's `for frame in client`, stomp.py's `on_send`,
//! `on_before_message` and `on_heartbeat`): off until asked for, bounded,
//! and never in the way of the session.

use std::collections::VecDeque;
use std::time::Instant;

use crate::frame::Frame;

/// Which way a tapped frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the server.
    In,
    /// To the server.
    Out,
}

/// A frame, or a heart-beat, as it crossed the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tapped {
    /// Which way.
    pub direction: Direction,
    /// The frame; `None` for a heart-beat.
    pub frame: Option<Frame>,
    /// When: for a frame in, when it was decoded; for a frame out, when it
    /// was queued (before it was written).
    pub at: Instant,
}

/// The tap's buffer: the oldest are dropped (and counted) once it holds
/// `capacity`.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    capacity: usize,
    items: VecDeque<Tapped>,
    dropped: u64,
}

impl Tap {
    pub(crate) fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity;
        while self.items.len() > capacity {
            self.items.pop_front();
            self.dropped += 1;
        }
    }

    pub(crate) fn is_on(&self) -> bool {
        self.capacity > 0
    }

    /// Records `frame` (a heart-beat for `None`) if the tap is on.
    pub(crate) fn record(&mut self, direction: Direction, frame: Option<&Frame>, at: Instant) {
        if !self.is_on() {
            return;
        }
        if self.items.len() >= self.capacity {
            self.items.pop_front();
            self.dropped += 1;
        }
        self.items.push_back(Tapped {
            direction,
            frame: frame.cloned(),
            at,
        });
    }

    pub(crate) fn pop(&mut self) -> Option<Tapped> {
        self.items.pop_front()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}
