//! What the handles share with the driver: the commands they send, the
//! input queue, the end (reason and final counters), and the life-cycle
//! events the driver tells.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use stomp_proto::client::{
    self as core, AckHandle, CloseReason, CommandError, LinkId, SendOptions, SessionInfo, Stats,
    SubscribeOptions, SubscriptionId, TxId,
};
use stomp_proto::uri::Endpoint;

use crate::error::Error;
use crate::queue::Queue;
use crate::reply::{reply, Reply};
use crate::window::{weight, Window};

/// The SEND command: answered through `done`, or holding `credit` of the
/// window while nobody waits.
fn send_command(
    destination: &str,
    body: Bytes,
    options: SendOptions,
    done: Option<Done<()>>,
    credit: usize,
) -> Command {
    Command::Send {
        destination: destination.into(),
        body,
        options,
        done,
        credit,
    }
}

/// How far below the session's frame limit a send must stay for it not
/// to wait for the driver's verdict: more than any head the session adds.
const NEAR_LIMIT: usize = 1024;

/// A reply carrying a result.
pub type Done<T> = Reply<Result<T, Error>>;

/// What reaches the driver through the handles' queue: the handles'
/// commands, a subscription's room, and (for an adapter whose transport
/// runs on threads of its own) what happened to a transport, named by its
/// link.
#[derive(Debug)]
pub enum Input {
    /// Raw bytes read from `link`.
    Read {
        /// Which transport (stale ones are ignored).
        link: LinkId,
        /// What was read.
        bytes: Bytes,
    },
    /// `n` raw bytes handed out for `link` were written.
    Written {
        /// Which transport.
        link: LinkId,
        /// How many.
        n: usize,
    },
    /// `link` ended.
    Ended {
        /// Which transport.
        link: LinkId,
        /// Why, when it failed; `None` when the peer closed it.
        error: Option<std::io::Error>,
    },
    /// A full subscription has room again.
    Wake,
    /// A handle's command.
    Command(Command),
}

/// What a handle asks of the driver.
#[derive(Debug)]
pub enum Command {
    /// SEND; with `options.receipt` resolved by the receipt, otherwise once
    /// it reaches the session. Without an answer to send (`done: None`) it
    /// gives its `credit` back to the [`Window`] instead, and a failure goes
    /// to the caller's next send.
    Send {
        /// Where to.
        destination: String,
        /// The body.
        body: Bytes,
        /// Headers, transaction, receipt.
        options: SendOptions,
        /// The answer, if anyone waits.
        done: Option<Done<()>>,
        /// The window room it holds while nobody waits.
        credit: usize,
    },
    /// SUBSCRIBE, delivering into `mailbox`.
    Subscribe {
        /// What to.
        destination: String,
        /// Ack mode, id, headers.
        options: SubscribeOptions,
        /// Where its messages go.
        mailbox: Arc<Queue<core::Message>>,
        /// The answer.
        done: Done<SubscriptionId>,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// Which.
        id: SubscriptionId,
        /// Answered by the broker's receipt, not once it is sent.
        receipt: bool,
        /// The answer, if anyone waits.
        done: Option<Done<()>>,
    },
    /// ACK or NACK; like a send without a receipt when nobody waits for
    /// the answer (`done: None`).
    Ack {
        /// The message's handle.
        handle: AckHandle,
        /// NACK instead of ACK.
        nack: bool,
        /// Inside this transaction.
        transaction: Option<TxId>,
        /// Answered by the broker's receipt (`done` must be there).
        receipt: bool,
        /// The answer, if anyone waits.
        done: Option<Done<()>>,
        /// The window room it holds while nobody waits.
        credit: usize,
    },
    /// ACK or NACK by the message's id alone (see
    /// [`ClientSession::ack_handle`](stomp_proto::client::ClientSession::ack_handle)),
    /// answered by the broker's receipt.
    AckId {
        /// The message's `subscription`.
        subscription: String,
        /// What the version acknowledges by.
        id: String,
        /// NACK instead of ACK.
        nack: bool,
        /// The answer.
        done: Done<()>,
    },
    /// BEGIN.
    Begin {
        /// The transaction's id, if the caller chose one.
        id: Option<String>,
        /// The answer.
        done: Done<TxId>,
    },
    /// COMMIT or ABORT, resolved by its receipt.
    End {
        /// Which.
        tx: TxId,
        /// COMMIT instead of ABORT.
        commit: bool,
        /// The answer, if anyone waits.
        done: Option<Done<()>>,
    },
    /// DISCONNECT, resolved by its receipt.
    Disconnect {
        /// The answer.
        done: Done<()>,
    },
    /// A SEND with `reply-to` (where replies reach this client) and a
    /// `correlation-id` (the one in `options.headers`, or a fresh one),
    /// answered by the first MESSAGE that carries the `correlation-id`
    /// back, or failed after `timeout` (counted from when the SEND goes
    /// out) or when the connection is lost.
    Request {
        /// Where to.
        destination: String,
        /// The body.
        body: Bytes,
        /// Headers, transaction, receipt.
        options: SendOptions,
        /// How long the reply may take.
        timeout: Duration,
        /// The reply.
        done: Done<core::Message>,
    },
    /// MESSAGE frames for no subscription of the client's (replies the
    /// broker routes to the connection itself, as RabbitMQ's
    /// `/temp-queue/` does) go into `mailbox` from now on, instead of
    /// being dropped; it replaces any earlier one. Closing it ends that.
    Unhandled {
        /// Where they go.
        mailbox: Arc<Queue<core::Message>>,
    },
    /// Every frame and heart-beat in and out goes into `queue` from now
    /// on (as long as it has room: a slow reader misses some, the
    /// connection never waits for it) until it is closed.
    Tap {
        /// Where they go.
        queue: Arc<Queue<core::Tapped>>,
    },
    /// How the client is doing, as [`Health`] tells.
    Health {
        /// The answer.
        done: Reply<Health>,
    },
    /// The session's counters.
    Stats {
        /// The answer.
        done: Reply<Stats>,
    },
    /// Close at once.
    Close,
}

/// What happens to the connection, as stomp.py's listeners would hear it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lifecycle {
    /// A transport to `host` is being opened (stomp.py's `on_connecting`):
    /// the first connect's, the next host's after a failed dial, or a
    /// reconnect's.
    Connecting {
        /// The host.
        host: Endpoint,
        /// The reconnect pass: 0 for the first connect.
        attempt: u32,
    },
    /// CONNECTED arrived (the first time, or after a reconnect).
    Connected(SessionInfo),
    /// A host could not be reached, or did not answer CONNECT: the next one
    /// is tried (or, after the last of a pass, a `Reconnecting` wait).
    DialFailed {
        /// The host.
        host: Option<Endpoint>,
        /// Why.
        reason: CloseReason,
    },
    /// The broker was silent past the heart-beat grace.
    HeartbeatTimeout,
    /// An established connection is gone; a reconnect follows unless
    /// `Closed` does.
    ConnectionLost(CloseReason),
    /// The next dial waits `delay`.
    Reconnecting {
        /// The reconnect pass.
        attempt: u32,
        /// The host.
        host: Endpoint,
        /// How long until then.
        delay: Duration,
    },
    /// A subscription that received nothing for
    /// [`Config::resubscribe_idle`](crate::Config::resubscribe_idle) while
    /// the connection was up was made again (UNSUBSCRIBE, then SUBSCRIBE
    /// with the same id, destination and headers).
    Resubscribed {
        /// Its id.
        id: SubscriptionId,
        /// Its destination.
        destination: String,
    },
    /// The client has ended.
    Closed(CloseReason),
}

/// How a client is doing: the health check behind a readiness probe, and
/// the way to spot a consumer that hears nothing while the connection
/// looks fine.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Health {
    /// A connection is up.
    pub connected: bool,
    /// Every live subscription.
    pub subscriptions: Vec<SubscriptionHealth>,
    /// Requests waiting for their receipts.
    pub pending_receipts: usize,
    /// Requests (`request`) waiting for their replies.
    pub pending_replies: usize,
    /// Octets of frames queued and not yet written.
    pub outgoing_bytes: usize,
    /// Calls held back, waiting for room or for the connection.
    pub held_calls: usize,
}

/// One subscription's part of [`Health`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscriptionHealth {
    /// Its id.
    pub id: SubscriptionId,
    /// Its destination.
    pub destination: String,
    /// Messages it has received.
    pub delivered: u64,
    /// How long ago the last one came (`None`: none yet).
    pub last_delivery: Option<Duration>,
    /// How long ago it was made (or last made again).
    pub subscribed: Duration,
    /// How often the idle watchdog made it again.
    pub resubscribed: u64,
}

/// What the handles share with the driver: the way in, and the end.
#[derive(Clone, Debug)]
pub struct Handle {
    input: Arc<Queue<Input>>,
    window: Arc<Window>,
    /// The session's count of CONNECTEDs, as the driver last saw it.
    connects: Arc<AtomicU64>,
    /// Whether a connection is up (CONNECTED came, and it has not been
    /// lost since).
    connected: Arc<AtomicBool>,
    /// The session's frame limit, if any: a send that may come near it
    /// waits for the driver's verdict.
    max_frame: Option<usize>,
    closed: Arc<Mutex<Option<CloseReason>>>,
    /// Confirmed mode: every request waits for its receipt.
    confirm: bool,
    /// The session's counters as they were at the end.
    final_stats: Arc<Mutex<Option<Stats>>>,
}

impl Handle {
    /// A handle with a fresh input queue, whose sends without a receipt
    /// may hold `window` octets on their way to the driver, for a session
    /// whose frames may be at most `max_frame` octets.
    pub fn new(window: usize, max_frame: Option<usize>) -> Handle {
        Handle {
            input: Arc::new(Queue::unbounded()),
            window: Arc::new(Window::new(window)),
            connects: Arc::default(),
            connected: Arc::default(),
            max_frame,
            closed: Arc::default(),
            confirm: false,
            final_stats: Arc::default(),
        }
    }

    /// In confirmed mode (see [`Config::confirm`](crate::Config::confirm)).
    pub(crate) fn confirming(mut self, confirm: bool) -> Handle {
        self.confirm = confirm;
        self
    }

    /// Whether every request waits for its receipt
    /// ([`Config::confirm`](crate::Config::confirm)).
    pub fn confirms(&self) -> bool {
        self.confirm
    }

    /// The driver's input queue.
    pub fn input(&self) -> &Arc<Queue<Input>> {
        &self.input
    }

    /// Sends a command without waiting.
    pub fn send(&self, command: Command) -> Result<(), Error> {
        // After the end the driver refuses commands itself (with the
        // recorded reason) until the queue closes.
        if self.input.push(Input::Command(command)) {
            Ok(())
        } else {
            Err(self.closed())
        }
    }

    /// The window of sends nobody waits for.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The driver saw CONNECTED number `connects`.
    pub(crate) fn set_connects(&self, connects: u64) {
        self.connects.store(connects, Ordering::Relaxed);
        self.connected.store(true, Ordering::Relaxed);
    }

    /// The driver lost the connection (or the client ended).
    pub(crate) fn set_disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    /// Whether the client is connected now: CONNECTED came and the
    /// connection has not been lost since (while it reconnects, and once
    /// it has ended, `false`). What the driver last saw; the network may
    /// already know better.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// An ACK or NACK as every client makes it: refused at once with
    /// [`CommandError::StaleAck`] for a message of an earlier connection,
    /// otherwise handed to the driver without waiting for its answer once
    /// the window has room (`wait` takes the room: blocking or async). A
    /// failure the driver finds later comes back from the next send or
    /// acknowledgement.
    pub(crate) fn ack_command(
        &self,
        handle: AckHandle,
        nack: bool,
        transaction: Option<TxId>,
    ) -> Result<(Command, usize), Error> {
        let handle = self.current(handle)?;
        let credit = 64 + handle.id().len();
        let command = Command::Ack {
            handle,
            nack,
            transaction,
            receipt: false,
            done: None,
            credit,
        };
        Ok((command, credit))
    }

    /// `handle` if it is of the connection up now, or the
    /// [`CommandError::StaleAck`] that refuses it.
    pub(crate) fn current(&self, handle: AckHandle) -> Result<AckHandle, Error> {
        if handle.connection() != self.connects.load(Ordering::Relaxed) {
            return Err(Error::Command(CommandError::StaleAck {
                id: handle.id().to_string(),
            }));
        }
        Ok(handle)
    }

    /// Hands over a command that holds `credit` of the window, once it has
    /// room (blocking).
    pub fn send_in_window(&self, command: Command, credit: usize) -> Result<(), Error> {
        self.window.take(credit).map_err(|e| self.or_closed(e))?;
        self.send(command).inspect_err(|_| self.window.give(credit))
    }

    /// [`send_in_window`](Handle::send_in_window) without blocking the
    /// thread.
    pub async fn send_in_window_async(&self, command: Command, credit: usize) -> Result<(), Error> {
        self.window
            .take_async(credit)
            .await
            .map_err(|e| self.or_closed(e))?;
        self.send(command).inspect_err(|_| self.window.give(credit))
    }

    /// Whether a send waits for the driver's answer: with a receipt, and
    /// when it may be refused as larger than the session's frame limit
    /// (so that refusal comes from the call itself).
    fn waits(&self, credit: usize, options: &SendOptions) -> bool {
        options.receipt
            || options.receipt_id.is_some()
            || self
                .max_frame
                .is_some_and(|limit| credit + NEAR_LIMIT > limit)
    }

    /// `options` as this mode sends them: with a receipt when confirming,
    /// outside a transaction (inside one the COMMIT's receipt confirms it).
    fn confirmed(&self, mut options: SendOptions) -> SendOptions {
        options.receipt |= self.confirm && options.transaction.is_none();
        options
    }

    /// A SEND as the blocking clients make it: with a receipt it waits for
    /// the broker, without one it waits only for room in the window.
    pub fn send_blocking(
        &self,
        destination: &str,
        body: Bytes,
        options: SendOptions,
    ) -> Result<(), Error> {
        let credit = weight(destination, body.len(), &options.headers);
        let options = self.confirmed(options);
        if self.waits(credit, &options) {
            return self.call(|done| send_command(destination, body, options, Some(done), 0));
        }
        self.send_in_window(
            send_command(destination, body, options, None, credit),
            credit,
        )
    }

    /// A SEND as the async clients make it; see
    /// [`send_blocking`](Handle::send_blocking).
    pub async fn send_async(
        &self,
        destination: &str,
        body: Bytes,
        options: SendOptions,
    ) -> Result<(), Error> {
        let credit = weight(destination, body.len(), &options.headers);
        let options = self.confirmed(options);
        if self.waits(credit, &options) {
            return self
                .ask(|done| send_command(destination, body, options, Some(done), 0))
                .await;
        }
        let command = send_command(destination, body, options, None, credit);
        self.send_in_window_async(command, credit).await
    }

    /// Sends a command and blocks the thread until its answer.
    pub fn call<T>(&self, command: impl FnOnce(Done<T>) -> Command) -> Result<T, Error> {
        let (done, answer) = reply();
        self.send(command(done))?;
        answer.wait().unwrap_or_else(|| Err(self.closed()))
    }

    /// Sends a command and waits for its answer without blocking the thread.
    /// Cancel-safe: dropping the future leaves the command to run; only its
    /// answer is lost.
    pub async fn ask<T>(&self, command: impl FnOnce(Done<T>) -> Command) -> Result<T, Error> {
        let (done, answer) = reply();
        self.send(command(done))?;
        answer.await.unwrap_or_else(|| Err(self.closed()))
    }

    /// `error`, or the recorded end if it is a bare `Closed`.
    fn or_closed(&self, error: Error) -> Error {
        match error {
            Error::Closed(None) => self.closed(),
            other => other,
        }
    }

    /// The error for a call after the end, with the reason when known.
    pub fn closed(&self) -> Error {
        let reason = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        Error::Closed(reason.clone())
    }

    /// The session's counters as they were when the client ended, once it
    /// has.
    pub fn final_stats(&self) -> Option<Stats> {
        self.final_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How the client ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records how the client ended and its counters then, for the calls
    /// that come after.
    pub(crate) fn record_end(&self, reason: CloseReason, stats: Stats) {
        *self.final_stats.lock().unwrap_or_else(|e| e.into_inner()) = Some(stats);
        *self.closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    /// Closes the input queue and drops what waits in it: the callers see
    /// their replies dropped and answer with the recorded end.
    pub(crate) fn close_input(&self) {
        self.window.close();
        self.input.close();
        while self.input.try_pop().is_ok() {}
    }

    /// A mailbox of `capacity` for the MESSAGEs of no subscription, handed
    /// to the driver (it takes over from any earlier one); see
    /// [`end_unhandled`](Handle::end_unhandled).
    pub fn unhandled(&self, capacity: usize) -> Arc<Queue<core::Message>> {
        let mailbox = self.mailbox(capacity);
        let _ = self.send(Command::Unhandled {
            mailbox: mailbox.clone(),
        });
        mailbox
    }

    /// Its reader is gone: the driver drops the mailbox when it looks
    /// again (woken here, so a full one stops pausing the reading).
    pub fn end_unhandled(&self, mailbox: &Queue<core::Message>) {
        mailbox.close();
        self.input.push(Input::Wake);
    }

    /// A queue for one more reader of the tap, handed to the driver; the
    /// reader closes it when done.
    pub fn tap(&self) -> Arc<Queue<core::Tapped>> {
        let queue = Arc::new(Queue::bounded(crate::driver::TAP_CAPACITY, None));
        let _ = self.send(Command::Tap {
            queue: queue.clone(),
        });
        queue
    }

    /// A request and its reply, as the blocking and async clients make it
    /// (see [`Command::Request`]).
    pub fn request_command(
        destination: &str,
        body: Bytes,
        options: SendOptions,
        timeout: Duration,
    ) -> impl FnOnce(Done<core::Message>) -> Command {
        let destination = destination.to_string();
        move |done| Command::Request {
            destination,
            body,
            options,
            timeout,
            done,
        }
    }

    /// A subscription mailbox that wakes the driver when it has room again.
    pub fn mailbox(&self, capacity: usize) -> Arc<Queue<core::Message>> {
        let input = Arc::downgrade(&self.input);
        Arc::new(Queue::bounded(
            capacity,
            Some(Box::new(move || {
                if let Some(input) = input.upgrade() {
                    input.push(Input::Wake);
                }
            })),
        ))
    }
}
