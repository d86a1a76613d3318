//! The driver: owns the `ClientSession`, carries out the handles' commands,
//! and hands the session's events to the right waiter, subscription or
//! life-cycle queue. It decides nothing; the session does. An adapter runs it
//! in a loop with the transport and a timer.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use stomp_proto::client::{
    self as core, AckHandle, ClientSession, CloseReason, Event, ReceiptId, RequestError,
    SendOptions, SessionInfo, Stats, SubscribeOptions, SubscriptionId, TxId,
};
use stomp_proto::uri::Endpoint;

use crate::error::Error;
use crate::queue::Queue;
use crate::reply::{reply, Reply};

/// A reply carrying a result.
pub type Done<T> = Reply<Result<T, Error>>;

/// What reaches the driver: transport input (from adapters that read on
/// another thread), and the handles' commands.
#[derive(Debug)]
pub enum Input {
    /// Raw bytes read from transport number `generation`.
    Bytes {
        /// Which transport (stale ones are ignored).
        generation: u64,
        /// What was read.
        bytes: Vec<u8>,
    },
    /// Transport number `generation` ended.
    Eof {
        /// Which transport.
        generation: u64,
        /// Why, when it failed; `None` when the peer closed it.
        error: Option<String>,
    },
    /// A full subscription has room again.
    Wake,
    /// A handle's command.
    Command(Command),
}

/// What a handle asks of the driver.
#[derive(Debug)]
pub enum Command {
    /// SEND; with `options.receipt` resolved by the receipt, otherwise once queued.
    Send {
        /// Where to.
        destination: String,
        /// The body.
        body: Bytes,
        /// Headers, transaction, receipt.
        options: SendOptions,
        /// The answer.
        done: Done<()>,
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
        /// The answer, if anyone waits.
        done: Option<Done<()>>,
    },
    /// ACK or NACK.
    Ack {
        /// The message's handle.
        handle: AckHandle,
        /// NACK instead of ACK.
        nack: bool,
        /// Inside this transaction.
        transaction: Option<TxId>,
        /// The answer.
        done: Done<()>,
    },
    /// BEGIN.
    Begin {
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
    /// The session's counters.
    Stats {
        /// The answer.
        done: Reply<Stats>,
    },
    /// Close at once.
    Close,
}

/// Who waits for a receipt.
#[derive(Debug)]
enum Waiter {
    /// A send, COMMIT or ABORT.
    Done(Done<()>),
    /// A subscription asked with a receipt.
    Subscribed(SubscriptionId, Done<SubscriptionId>),
}

impl Waiter {
    fn answer(self, result: Result<(), Error>) {
        match self {
            Waiter::Done(done) => done.send(result),
            Waiter::Subscribed(id, done) => done.send(result.map(|()| id)),
        }
    }
}

impl Command {
    /// The body octets of the frame it queues, if it queues one (every
    /// command but `Stats` and `Close`).
    fn queues(&self) -> Option<usize> {
        match self {
            Command::Send { body, .. } => Some(body.len()),
            Command::Stats { .. } | Command::Close => None,
            _ => Some(0),
        }
    }
}

/// What happens to the connection, as stomp.py's listeners would hear it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    /// CONNECTED arrived (the first time, or after a reconnect).
    Connected(SessionInfo),
    /// The broker was silent past the heart-beat grace.
    HeartbeatTimeout,
    /// The connection is gone; a reconnect follows.
    ConnectionLost(CloseReason),
    /// A dial is planned.
    Reconnecting {
        /// The reconnect pass.
        attempt: u32,
        /// The host.
        host: Endpoint,
        /// How long until then.
        delay: std::time::Duration,
    },
    /// The client has ended.
    Closed(CloseReason),
}

/// What the handles share with the driver: the way in, and the end.
#[derive(Clone, Debug)]
pub struct Handle {
    input: Arc<Queue<Input>>,
    closed: Arc<Mutex<Option<CloseReason>>>,
    /// The session's counters as they were at the end.
    final_stats: Arc<Mutex<Option<Stats>>>,
}

impl Handle {
    /// A handle with a fresh input queue.
    pub fn new() -> Handle {
        Handle {
            input: Arc::new(Queue::unbounded()),
            closed: Arc::default(),
            final_stats: Arc::default(),
        }
    }

    /// The driver's input queue.
    pub fn input(&self) -> &Arc<Queue<Input>> {
        &self.input
    }

    /// Sends a command without waiting.
    pub fn send(&self, command: Command) -> Result<(), Error> {
        if self.input.push(Input::Command(command)) {
            Ok(())
        } else {
            Err(self.closed())
        }
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

impl Default for Handle {
    fn default() -> Handle {
        Handle::new()
    }
}

/// The driver proper; see the module docs.
#[derive(Debug)]
pub struct Driver {
    /// The session it drives.
    pub session: ClientSession,
    handle: Handle,
    lifecycle: Arc<Queue<Lifecycle>>,
    first_connect: Option<Done<SessionInfo>>,
    mailboxes: HashMap<SubscriptionId, Arc<Queue<core::Message>>>,
    waiting: HashMap<ReceiptId, Waiter>,
    disconnecting: Option<Done<()>>,
    /// Commands waiting for room in the session's outgoing queue, in order.
    deferred: VecDeque<Command>,
    paused: bool,
    /// The session's `bytes_in` when reading was paused.
    paused_at: u64,
    /// Bytes still read after a pause (see [`Driver::may_read`]).
    read_ahead: u64,
    link_lost: bool,
}

impl Driver {
    /// A driver for `session`, answering `first_connect` once connected (or
    /// not), and telling `lifecycle` what happens (dropped when it is full).
    pub fn new(
        session: ClientSession,
        handle: Handle,
        lifecycle: Arc<Queue<Lifecycle>>,
        first_connect: Done<SessionInfo>,
    ) -> Driver {
        Driver {
            session,
            handle,
            lifecycle,
            first_connect: Some(first_connect),
            mailboxes: HashMap::new(),
            waiting: HashMap::new(),
            disconnecting: None,
            deferred: VecDeque::new(),
            paused: false,
            paused_at: 0,
            read_ahead: crate::config::DEFAULT_READ_AHEAD as u64,
            link_lost: false,
        }
    }

    /// The handles' way in.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Whether the session dropped its connection since the last call: the
    /// adapter closes its transport.
    pub fn take_link_lost(&mut self) -> bool {
        std::mem::take(&mut self.link_lost)
    }

    /// How many bytes the transport may still read once paused
    /// ([`Config::read_ahead`](crate::Config::read_ahead)).
    pub fn set_read_ahead(&mut self, bytes: usize) {
        self.read_ahead = bytes as u64;
    }

    /// Whether the transport should read from the socket now: always while
    /// no subscription is full, and after one fills, until the read-ahead
    /// is used up. Bytes left in the kernel's buffer while the application
    /// reads nothing can make it drop segments (small ones overrun the
    /// memory the advertised window promised), and the sender's
    /// retransmission backoff then stalls the connection for seconds after
    /// reading resumes; reading ahead keeps bursts out of the kernel.
    pub fn may_read(&self) -> bool {
        !self.paused || self.session.stats().bytes_in - self.paused_at < self.read_ahead
    }

    /// Reading pauses while any subscription's mailbox is full; true when
    /// that changed.
    pub fn update_pause(&mut self, now: Instant) -> bool {
        let full = self.mailboxes.values().any(|m| m.is_full());
        if full == self.paused {
            return false;
        }
        self.paused = full;
        self.paused_at = self.session.stats().bytes_in;
        self.session.set_reading_paused(now, full);
        true
    }

    /// Hands the session what the transport's layers made of some input
    /// (STOMP bytes, and whether the peer ended the stream cleanly), or
    /// their failure; false when the transport is done for and should be
    /// dropped.
    pub fn received(&mut self, now: Instant, result: std::io::Result<(Vec<u8>, bool)>) -> bool {
        match result {
            Ok((data, ended)) => {
                if !data.is_empty() {
                    self.session.handle_input(now, &data);
                }
                if ended {
                    self.session.handle_closed(now);
                }
                !ended
            }
            Err(e) => {
                self.session.handle_transport_error(now, e.to_string());
                false
            }
        }
    }

    /// Carries out a command, or holds it back while the session's outgoing
    /// queue has no room for it (or earlier commands wait): callers wait
    /// instead of failing with back-pressure. Call
    /// [`run_deferred`](Driver::run_deferred) after transmitting.
    pub fn execute(&mut self, command: Command) {
        if let Command::Unsubscribe { id, .. } = &command {
            // Its messages stop at once, even if the frame has to wait: a
            // mailbox nobody empties must not pause reading.
            if let Some(mailbox) = self.mailboxes.remove(id) {
                mailbox.close();
                self.update_pause(Instant::now());
            }
        }
        match command.queues() {
            Some(len) if !self.deferred.is_empty() || !self.session.has_room_for(len) => {
                self.deferred.push_back(command);
            }
            _ => self.run(command),
        }
    }

    /// Runs the held-back commands that fit now, in order; true when any
    /// ran (they may have queued more to transmit).
    pub fn run_deferred(&mut self) -> bool {
        let mut ran = false;
        while let Some(len) = self.deferred.front().and_then(Command::queues) {
            if !self.session.has_room_for(len) {
                break;
            }
            if let Some(command) = self.deferred.pop_front() {
                self.run(command);
                ran = true;
            }
        }
        ran
    }

    fn run(&mut self, command: Command) {
        let session = &mut self.session;
        match command {
            Command::Send {
                destination,
                body,
                options,
                done,
            } => match session.send(&destination, body, options) {
                Ok(Some(receipt)) => {
                    self.waiting.insert(receipt, Waiter::Done(done));
                }
                Ok(None) => done.send(Ok(())),
                Err(e) => done.send(Err(e.into())),
            },
            // Its caller stopped waiting before this ran.
            Command::Subscribe { mailbox, done, .. } if mailbox.is_closed() => {
                done.send(Err(Error::Closed(None)))
            }
            Command::Subscribe {
                destination,
                options,
                mailbox,
                done,
            } => match session.subscribe(&destination, options) {
                Ok((id, receipt)) => {
                    self.mailboxes.insert(id.clone(), mailbox);
                    match receipt {
                        // Answered once the broker confirms it.
                        Some(receipt) => {
                            self.waiting.insert(receipt, Waiter::Subscribed(id, done));
                        }
                        None => done.send(Ok(id)),
                    }
                }
                Err(e) => done.send(Err(e.into())),
            },
            Command::Unsubscribe { id, done } => {
                if let Some(mailbox) = self.mailboxes.remove(&id) {
                    mailbox.close();
                }
                let result = session.unsubscribe(&id, false).map(|_| ());
                if let Some(done) = done {
                    done.send(result.map_err(Error::from));
                }
                self.update_pause(Instant::now());
            }
            Command::Ack {
                handle,
                nack,
                transaction,
                done,
            } => {
                let result = if nack {
                    session.nack(&handle, transaction.as_ref(), false)
                } else {
                    session.ack(&handle, transaction.as_ref(), false)
                };
                done.send(result.map(|_| ()).map_err(Error::from));
            }
            Command::Begin { done } => {
                let result = session.begin(None, false).map(|(tx, _)| tx);
                done.send(result.map_err(Error::from));
            }
            Command::End { tx, commit, done } => {
                let wants_receipt = done.is_some();
                let result = if commit {
                    session.commit(&tx, wants_receipt)
                } else {
                    session.abort(&tx, wants_receipt)
                };
                match (result, done) {
                    (Ok(Some(receipt)), Some(done)) => {
                        self.waiting.insert(receipt, Waiter::Done(done));
                    }
                    (Ok(_), Some(done)) => done.send(Ok(())),
                    (Err(e), Some(done)) => done.send(Err(e.into())),
                    (_, None) => {}
                }
            }
            Command::Disconnect { done } => match session.disconnect() {
                Ok(_) => self.disconnecting = Some(done),
                Err(e) => done.send(Err(e.into())),
            },
            Command::Stats { done } => done.send(session.stats().clone()),
            Command::Close => session.close(),
        }
    }

    /// Hands out the session's events; false once it has ended.
    pub fn drain_events(&mut self) -> bool {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Message(message) => {
                    let id = message.subscription.clone();
                    if let Some(mailbox) = self.mailboxes.get(&id) {
                        if !mailbox.push(message) {
                            // Its owner is gone (a subscribe call dropped
                            // before its answer): end the subscription.
                            self.mailboxes.remove(&id);
                            let _ = self.session.unsubscribe(&id, false);
                        } else if mailbox.is_full() {
                            self.update_pause(Instant::now());
                        }
                    }
                }
                Event::Receipt(receipt) => {
                    if let Some(waiter) = self.waiting.remove(&receipt) {
                        waiter.answer(Ok(()));
                    }
                }
                Event::RequestFailed { receipt, error } => {
                    if let Some(waiter) = self.waiting.remove(&receipt) {
                        waiter.answer(Err(Error::Request(error)));
                    }
                }
                Event::Connected(info) => {
                    tracing::info!(
                        endpoint = ?info.endpoint,
                        version = %info.version,
                        server = info.server.as_deref().unwrap_or(""),
                        reconnected = info.reconnected,
                        "STOMP connected"
                    );
                    if let Some(first) = self.first_connect.take() {
                        first.send(Ok(info.clone()));
                    }
                    self.tell(Lifecycle::Connected(info));
                }
                Event::HeartbeatTimeout => {
                    tracing::warn!("STOMP broker silent past the heart-beat grace");
                    self.tell(Lifecycle::HeartbeatTimeout)
                }
                Event::ConnectionLost(reason) => {
                    tracing::warn!(%reason, "STOMP connection lost");
                    self.link_lost = true;
                    self.tell(Lifecycle::ConnectionLost(reason));
                }
                Event::Reconnecting {
                    attempt,
                    host,
                    delay,
                } => {
                    tracing::info!(attempt, %host, ?delay, "STOMP reconnecting");
                    self.tell(Lifecycle::Reconnecting {
                        attempt,
                        host,
                        delay,
                    })
                }
                Event::Closed(reason) => {
                    tracing::info!(%reason, "STOMP client closed");
                    self.finish(reason);
                    return false;
                }
            }
        }
        true
    }

    /// Answers everyone still waiting; call after flushing what the session
    /// has left to transmit.
    fn finish(&mut self, reason: CloseReason) {
        self.link_lost = true;
        // Recorded first: whoever wakes up below reads it.
        *self
            .handle
            .final_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(self.session.stats().clone());
        *self.handle.closed.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
        if let Some(first) = self.first_connect.take() {
            first.send(Err(Error::Connect(reason.clone())));
        }
        if let Some(done) = self.disconnecting.take() {
            done.send(match &reason {
                CloseReason::Disconnected => Ok(()),
                other => Err(Error::Closed(Some(other.clone()))),
            });
        }
        for (_, waiter) in self.waiting.drain() {
            waiter.answer(Err(Error::Request(RequestError::ConnectionLost)));
        }
        for (_, mailbox) in self.mailboxes.drain() {
            mailbox.close();
        }
        // Held-back commands are dropped like queued ones (below).
        self.deferred.clear();
        // Commands still queued are dropped: their callers see the reply
        // dropped and answer with the reason above.
        self.handle.input.close();
        while self
            .handle
            .input
            .pop(Some(std::time::Duration::ZERO))
            .is_ok()
        {}
        self.tell(Lifecycle::Closed(reason));
        self.lifecycle.close();
    }

    /// Life-cycle events are dropped when nobody reads them.
    fn tell(&self, event: Lifecycle) {
        self.lifecycle.offer(event);
    }
}
