//! Queues that a blocking thread and an async task can both wait on: the
//! driver's input, each subscription's messages, the life-cycle events, and
//! the one-shot replies to handles.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Why nothing came out of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Empty {
    /// Nothing yet (the wait timed out).
    Timeout,
    /// Nothing ever again: the queue is closed and drained.
    Closed,
}

impl fmt::Display for Empty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Empty::Timeout => "nothing came in time",
            Empty::Closed => "closed",
        })
    }
}

impl std::error::Error for Empty {}

/// A FIFO queue with a soft capacity: [`push`](Queue::push) always adds
/// (the producer is expected to stop producing once [`is_full`](Queue::is_full)),
/// [`offer`](Queue::offer) adds only below it. Consumers wait by blocking
/// ([`pop`](Queue::pop)) or by polling ([`poll_pop`](Queue::poll_pop)).
pub struct Queue<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
    capacity: usize,
    /// Called when an item is taken from a full queue.
    on_room: Option<Box<dyn Fn() + Send + Sync>>,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    waiters: Waiters,
}

/// Who waits for a change of some state behind a mutex: tasks by their
/// wakers, threads on a condition variable (counted, so the condition
/// variable is signalled only when a thread sleeps on it: a signal is a
/// system call even when nobody waits). The queues and the send window
/// share it.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    wakers: Vec<Waker>,
    /// Threads blocked on the condition variable.
    pub(crate) sleepers: usize,
}

impl Waiters {
    /// `cx`'s task wants a wake-up at the next change.
    pub(crate) fn register(&mut self, cx: &Context<'_>) {
        if !self.wakers.iter().any(|w| w.will_wake(cx.waker())) {
            self.wakers.push(cx.waker().clone());
        }
    }

    /// Everyone waiting now, to wake once the lock is let go.
    pub(crate) fn take(&mut self) -> Wake {
        Wake {
            wakers: std::mem::take(&mut self.wakers),
            threads: self.sleepers > 0,
        }
    }
}

/// The wake-ups [`Waiters::take`] took.
pub(crate) struct Wake {
    wakers: Vec<Waker>,
    threads: bool,
}

impl Wake {
    /// Wakes them: the threads on `condvar`, then the tasks.
    pub(crate) fn run(self, condvar: &Condvar) {
        if self.threads {
            condvar.notify_all();
        }
        for waker in self.wakers {
            waker.wake();
        }
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Queue")
            .field("len", &state.items.len())
            .field("capacity", &self.capacity)
            .field("closed", &state.closed)
            .finish()
    }
}

impl<T> Queue<T> {
    /// A queue without a capacity.
    pub fn unbounded() -> Queue<T> {
        Queue::bounded(usize::MAX, None)
    }

    /// A queue full at `capacity` items (at least 1); `on_room` is called when
    /// a consumer takes an item from a full queue.
    pub fn bounded(capacity: usize, on_room: Option<Box<dyn Fn() + Send + Sync>>) -> Queue<T> {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                waiters: Waiters::default(),
            }),
            ready: Condvar::new(),
            capacity: capacity.max(1),
            on_room,
        }
    }

    /// Adds `item`, full or not; false (and the item dropped) once closed.
    pub fn push(&self, item: T) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.items.push_back(item);
        self.wake_if_first(state);
        true
    }

    /// Adds `item` unless the queue is full or closed.
    pub fn offer(&self, item: T) -> bool {
        let mut state = self.lock();
        if state.closed || state.items.len() >= self.capacity {
            return false;
        }
        state.items.push_back(item);
        self.wake_if_first(state);
        true
    }

    /// Whether it holds `capacity` items or more.
    pub fn is_full(&self) -> bool {
        self.lock().items.len() >= self.capacity
    }

    /// Whether [`close`](Queue::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// No more items will be added; waiting consumers wake up and drain.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.wake(state);
    }

    /// Waits up to `timeout` (forever for `None`) for an item.
    pub fn pop(&self, timeout: Option<Duration>) -> Result<T, Empty> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut state = self.lock();
        loop {
            if let Some(item) = self.take(&mut state) {
                return Ok(item);
            }
            if state.closed {
                return Err(Empty::Closed);
            }
            let wait = match deadline {
                None => None,
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(Empty::Timeout);
                    }
                    Some(deadline - now)
                }
            };
            state.waiters.sleepers += 1;
            state = match wait {
                None => self.ready.wait(state).unwrap_or_else(|e| e.into_inner()),
                Some(wait) => {
                    self.ready
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
            state.waiters.sleepers -= 1;
        }
    }

    /// An item if one is waiting, without reading the clock or blocking.
    pub fn try_pop(&self) -> Result<T, Empty> {
        let mut state = self.lock();
        match self.take(&mut state) {
            Some(item) => Ok(item),
            None if state.closed => Err(Empty::Closed),
            None => Err(Empty::Timeout),
        }
    }

    /// Everything waiting, in order, appended to `into` (one lock for the
    /// lot); how many.
    pub fn drain_into(&self, into: &mut VecDeque<T>) -> usize {
        let mut state = self.lock();
        let was_full = state.items.len() >= self.capacity;
        let n = state.items.len();
        into.extend(state.items.drain(..));
        drop(state);
        if was_full && n > 0 {
            if let Some(on_room) = &self.on_room {
                on_room();
            }
        }
        n
    }

    /// An item if one is there, `Pending` (and a wake-up later) if not,
    /// `None` once closed and drained.
    pub fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.lock();
        if let Some(item) = self.take(&mut state) {
            return Poll::Ready(Some(item));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        state.waiters.register(cx);
        Poll::Pending
    }

    /// Waits for an item without blocking the thread.
    pub fn recv(&self) -> Recv<'_, T> {
        Recv { queue: self }
    }

    fn take(&self, state: &mut State<T>) -> Option<T> {
        let was_full = state.items.len() >= self.capacity;
        let item = state.items.pop_front()?;
        if was_full && state.items.len() < self.capacity {
            if let Some(on_room) = &self.on_room {
                on_room();
            }
        }
        Some(item)
    }

    /// Wakes the consumers after a push, if the queue was empty before it:
    /// consumers wait only on an empty queue, so later pushes find them
    /// woken already (one wake-up per batch, not per item).
    fn wake_if_first(&self, state: MutexGuard<'_, State<T>>) {
        if state.items.len() == 1 {
            self.wake(state);
        }
    }

    fn wake(&self, mut state: MutexGuard<'_, State<T>>) {
        let wake = state.waiters.take();
        drop(state);
        wake.run(&self.ready);
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The future of [`Queue::recv`]: the next item, or `None` once closed.
#[derive(Debug)]
pub struct Recv<'a, T> {
    queue: &'a Queue<T>,
}

impl<T> Future for Recv<'_, T> {
    type Output = Option<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.queue.poll_pop(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn a_full_queue_calls_on_room_once_an_item_is_taken() {
        let rooms = Arc::new(AtomicUsize::new(0));
        let counter = rooms.clone();
        let queue = Queue::bounded(
            2,
            Some(Box::new(move || {
                counter.fetch_add(1, Ordering::SeqCst);
            })),
        );
        assert!(queue.offer(1) && queue.offer(2));
        assert!(!queue.offer(3), "full");
        assert!(queue.push(3), "push ignores the capacity");
        assert_eq!(queue.pop(None), Ok(1));
        assert_eq!(rooms.load(Ordering::SeqCst), 0, "still full");
        assert_eq!(queue.pop(None), Ok(2));
        assert_eq!(rooms.load(Ordering::SeqCst), 1);
        queue.close();
        assert!(!queue.push(4));
        assert_eq!(queue.pop(None), Ok(3));
        assert_eq!(queue.pop(None), Err(Empty::Closed));
    }

    #[test]
    fn a_blocked_consumer_wakes_for_a_push_from_another_thread() {
        let queue = Arc::new(Queue::unbounded());
        let producer = queue.clone();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            producer.push("late");
        });
        assert_eq!(queue.pop(Some(Duration::from_secs(5))), Ok("late"));
        assert_eq!(
            queue.pop(Some(Duration::from_millis(10))),
            Err(Empty::Timeout)
        );
        thread.join().unwrap();
    }
}
