//! One-shot replies from the driver to a waiting handle, awaited by blocking
//! (`wait`) or async (`.await`) callers alike.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::queue::Queue;

/// The sending half: used once; dropping it unanswered tells the waiter
/// there will be no answer.
#[derive(Debug)]
pub struct Reply<T> {
    queue: Arc<Queue<T>>,
}

/// The waiting half: `None` when the reply was dropped unanswered.
#[derive(Debug)]
pub struct Answer<T> {
    queue: Arc<Queue<T>>,
}

/// A connected reply and answer.
pub fn reply<T>() -> (Reply<T>, Answer<T>) {
    let queue = Arc::new(Queue::unbounded());
    (
        Reply {
            queue: queue.clone(),
        },
        Answer { queue },
    )
}

impl<T> Reply<T> {
    /// Answers (dropped when the waiter is gone).
    pub fn send(self, value: T) {
        self.queue.push(value);
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl<T> Answer<T> {
    /// Blocks the thread until answered.
    pub fn wait(self) -> Option<T> {
        self.queue.pop(None).ok()
    }

    /// The answer if it has come (`Some(None)`: the reply was dropped
    /// unanswered), without waiting.
    pub fn try_take(&self) -> Option<Option<T>> {
        match self.queue.try_pop() {
            Ok(value) => Some(Some(value)),
            Err(crate::Empty::Closed) => Some(None),
            Err(crate::Empty::Timeout) => None,
        }
    }
}

impl<T> Future for Answer<T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.queue.poll_pop(cx)
    }
}
