//! The runtime-neutral half of the stomp-rs adapters (`stomp-blocking`,
//! `stomp-tokio`, `stomp-async-std`): the [`Driver`](driver::Driver) that owns
//! a `ClientSession` and answers the handles, [queues](queue::Queue) that a
//! blocking thread and an async task can both wait on, the one
//! [`Error`] type, [TLS settings](Tls), and the sans-IO TLS and WebSocket
//! [layers](layers::Layers). An adapter adds only a socket, a timer and a
//! loop. Users reach all of it through an adapter crate.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

pub mod aio;
pub mod codec;
mod config;
pub mod delivery;
pub mod driver;
mod error;
pub mod handle;
pub mod layers;
pub mod multicast;
pub mod queue;
pub mod reply;
mod tls;
pub mod window;

pub use config::Config;
pub use driver::Lifecycle;
pub use error::Error;
pub use queue::Empty;
pub use tls::Tls;

use queue::Queue;

/// The life-cycle events of a client, as they happen: connected, heart-beat
/// timeout, connection lost, reconnecting, closed. Up to 256 wait; later
/// ones are dropped while nobody reads. Receive by blocking
/// ([`recv_timeout`](Events::recv_timeout)) or as a `Stream`
/// ([`poll_next`](Events::poll_next)).
#[derive(Clone, Debug)]
pub struct Events {
    queue: Arc<Queue<Lifecycle>>,
}

impl Events {
    /// How many events may wait.
    pub const CAPACITY: usize = 256;

    /// A fresh event queue.
    pub fn new() -> Events {
        Events {
            queue: Arc::new(Queue::bounded(Events::CAPACITY, None)),
        }
    }

    /// The queue the driver fills.
    pub fn queue(&self) -> &Arc<Queue<Lifecycle>> {
        &self.queue
    }

    /// The next event, blocking; `None` once the client has ended and every
    /// event was taken.
    pub fn recv(&self) -> Option<Lifecycle> {
        self.queue.pop(None).ok()
    }

    /// The next event within `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Lifecycle, Empty> {
        self.queue.pop(Some(timeout))
    }

    /// An event if one is waiting.
    pub fn try_recv(&self) -> Option<Lifecycle> {
        self.queue.try_pop().ok()
    }

    /// The next event without blocking the thread (`None`: the end).
    pub fn poll_next(&self, cx: &mut Context<'_>) -> Poll<Option<Lifecycle>> {
        self.queue.poll_pop(cx)
    }

    /// Waits for the next event without blocking the thread.
    pub async fn next(&self) -> Option<Lifecycle> {
        self.queue.recv().await
    }
}

impl Default for Events {
    fn default() -> Events {
        Events::new()
    }
}
