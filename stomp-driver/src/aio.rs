//! The async client, for any runtime: a task runs the driver with a socket
//! (any `futures-io` stream) and a timer, both from a [`Runtime`]; cheap
//! handles talk to it through queues. `stomp-tokio` and `stomp-async-std`
//! each add their runtime and re-export this API.
//!
//! Transports: `stomp://`, `stomp+ssl://`, `ws://`, `wss://` and
//! `failover:(..)` lists, as in every adapter; and `udp://GROUP:PORT` for
//! broker-less multicast over the runtime's UDP socket
//! ([`Runtime::udp`]; see [`crate::multicast`] for its options and
//! [`stomp_proto::multicast`] for what it gives up). Reading, writing,
//! commands and timers are polled together, so a peer that stops reading
//! until it has written never stalls the task.
//!
//! # Failover and reconnecting
//!
//! A URL may list hosts (`stomp://a:61613,stomp://b:61613`, tried in order,
//! once) or use the `failover:(..)?options` form (shuffled per pass unless
//! `randomize=false`, reconnecting per its options). What a caller can rely
//! on, in every adapter (the connection driver of `stomp-driver` decides it
//! once, and is tested in simulated time):
//!
//! - A host that refuses, stays silent, never completes the connect or
//!   answers CONNECT with an ERROR is passed over for the next one; the
//!   life-cycle events say so: [`Lifecycle::Connecting`](crate::Lifecycle::Connecting) for every dial (the
//!   first included), [`Lifecycle::DialFailed`](crate::Lifecycle::DialFailed) with the host and the reason,
//!   [`Lifecycle::Connected`](crate::Lifecycle::Connected) once in.
//! - A call made while the connection is down (reconnecting) waits for it,
//!   up to [`Config::offline_wait`](crate::Config::offline_wait) (30 s by default), then fails with
//!   [`Error::Offline`]; a receipted send made then is confirmed by the new
//!   connection. With `offline_wait: None` such calls fail at once with
//!   [`CommandError::NotConnected`](stomp_proto::client::CommandError::NotConnected).
//! - An ACK or NACK for a message delivered on an earlier connection is
//!   refused with [`CommandError::StaleAck`](stomp_proto::client::CommandError::StaleAck)
//!   and never sent (the broker redelivers that message); the connection
//!   lives on.
//! - Subscriptions are made again after a reconnect, in their order, with
//!   their ids; receipts still pending fail with
//!   [`RequestError::ConnectionLost`](stomp_proto::client::RequestError::ConnectionLost)
//!   (the request may or may not have been carried out).
//!
//! Cancellation: every call sends its command to the driver before its
//! first `.await`, so dropping a future half-way never leaves the connection
//! half-done: the command runs, only its answer is lost. (A SEND dropped
//! while waiting for its receipt is still sent, and still confirmed.)

use std::collections::VecDeque;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use stomp_proto::client::{
    self as core, CloseReason, LinkId, SendOptions, SessionInfo, Stats, SubscribeOptions,
    SubscriptionId, Tapped, TxId,
};
use stomp_proto::{AckMode, Version};

use crate::delivery::Delivery;
use crate::driver::{
    consume_written, io_slices, Action, Command, Driver, Handle, Health, Input, Target,
};
use crate::queue::Queue;
use crate::reply::reply;
use crate::{Config, Error, Events};

/// A boxed future, as runtimes hand them out.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A byte stream the runtime opened (a TCP connection).
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> AsyncStream for T {}

/// A UDP socket as the runtime polls it (for `udp://` multicast).
pub trait AsyncDatagram: Send + Sync + fmt::Debug {
    /// Sends one datagram to `target`.
    fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        datagram: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>>;

    /// Receives one datagram into `buf`; its length.
    fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
}

/// What the client needs from an async runtime: a task, a timer and a TCP
/// connection. `stomp-tokio` and `stomp-async-std` implement it (the latter
/// for async-std and for smol).
pub trait Runtime: Send + Sync + fmt::Debug + 'static {
    /// Runs `task` to completion in the background.
    fn spawn(&self, task: BoxFuture<()>);

    /// Resolves at `deadline`.
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<()>;

    /// The time now; a test runtime may drive it.
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// Opens a TCP connection to `host:port` (any of its addresses), the
    /// socket set up as `options` say: resolve the host, then hand
    /// [`tcp::connect_each`](crate::tcp::connect_each) a wait for a socket
    /// to become writable on this runtime.
    fn connect(
        &self,
        host: String,
        port: u16,
        options: crate::TcpOptions,
    ) -> BoxFuture<io::Result<Box<dyn AsyncStream>>>;

    /// Makes a bound, configured UDP socket (non-blocking already) one the
    /// runtime polls. Runtimes without UDP leave it unsupported.
    fn udp(&self, socket: std::net::UdpSocket) -> io::Result<Box<dyn AsyncDatagram>> {
        drop(socket);
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "this runtime has no UDP support",
        ))
    }
}

/// A connected client: cheap to clone (every clone drives the same
/// connection), `Send + Sync`. The connection closes when the last clone is
/// dropped, or at [`disconnect`](Client::disconnect).
#[derive(Clone)]
pub struct Client {
    handle: Handle,
    events: Events,
    info: SessionInfo,
    subscription_capacity: usize,
    /// Closes the connection when the last clone goes.
    _owner: Arc<Owner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("info", &self.info).finish()
    }
}

#[derive(Debug)]
struct Owner(Handle);

impl Drop for Owner {
    fn drop(&mut self) {
        let _ = self.0.send(Command::Close);
    }
}

impl Client {
    /// Connects with `config` on `runtime`, and waits for CONNECTED (or the
    /// end of the first connect's attempts).
    pub async fn connect_with(config: Config, runtime: Arc<dyn Runtime>) -> Result<Client, Error> {
        let started = Driver::start(&config, runtime.now())?;
        let (driver, events, first) = (started.driver, started.events, started.first);
        let handle = driver.handle().clone();
        let task = Task {
            driver,
            runtime: runtime.clone(),
            link: None,
            opening: None,
        };
        runtime.spawn(Box::pin(task.run()));
        let owner = Arc::new(Owner(handle.clone()));
        let info = first.await.ok_or(Error::Closed(None))??;
        Ok(Client {
            handle,
            events,
            info,
            subscription_capacity: config.subscription_capacity,
            _owner: owner,
        })
    }

    /// Who we are connected to (as of the first connect).
    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    /// The negotiated version.
    pub fn version(&self) -> Version {
        self.info.version
    }

    /// Sends `body` to `destination` without a receipt: resolves as soon as
    /// the send has room in the [send window](crate::Config::send_window),
    /// without waiting for the connection's task, so a loop of sends goes
    /// out in batches (one write for many frames). A full window makes it
    /// wait (memory stays bounded). A refusal found after it resolved (the
    /// connection stayed down past `offline_wait`, say) comes back from the
    /// next send or acknowledgement; use
    /// [`send_with_receipt`](Client::send_with_receipt) to know that the
    /// broker has it.
    pub async fn send(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        self.send_with(destination, body, SendOptions::default())
            .await
    }

    /// Sends and resolves on the broker's RECEIPT (or fails with its ERROR,
    /// or at the receipt timeout of the session's configuration).
    pub async fn send_with_receipt(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
    ) -> Result<(), Error> {
        self.send_with(destination, body, SendOptions::with_receipt())
            .await
    }

    /// Sends with headers, content type, transaction and receipt as `options`
    /// say; with `options.receipt` it resolves once the broker confirms.
    pub async fn send_with(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        options: SendOptions,
    ) -> Result<(), Error> {
        self.handle
            .send_async(destination, body.into(), options)
            .await
    }

    /// Subscribes to `destination`.
    pub async fn subscribe(&self, destination: &str, ack: AckMode) -> Result<Subscription, Error> {
        let options = SubscribeOptions {
            ack,
            ..SubscribeOptions::default()
        };
        self.subscribe_with(destination, options).await
    }

    /// Subscribes with an id, extra headers (selectors, durable names,
    /// prefetch) and ack mode as `options` say; with `options.receipt` it
    /// resolves once the broker confirms (so a send after it, on any
    /// connection, finds the subscription in place).
    pub async fn subscribe_with(
        &self,
        destination: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        let mailbox = self.handle.mailbox(self.subscription_capacity);
        // Dropped before the answer, the guard closes the mailbox: the driver
        // then unsubscribes instead of filling it.
        let mut pending = PendingSubscription {
            mailbox: mailbox.clone(),
            answered: false,
        };
        let (done, answer) = reply();
        self.handle.send(Command::Subscribe {
            destination: destination.into(),
            options,
            mailbox: mailbox.clone(),
            done,
        })?;
        let id = answer.await.unwrap_or_else(|| Err(self.handle.closed()))?;
        pending.answered = true;
        Ok(Subscription {
            id,
            mailbox,
            handle: self.handle.clone(),
            ended: false,
        })
    }

    /// Sends a request and waits for its reply: the SEND carries
    /// `reply-to` (where replies reach this client, see
    /// [`Config::reply_destination`](crate::Config::reply_destination)) and
    /// a fresh `correlation-id`, and the first MESSAGE that carries that
    /// `correlation-id` back is the answer. Fails with [`Error::Timeout`]
    /// after `timeout` (counted from when the SEND goes out), and when the
    /// connection is lost first (a reply to it can no longer come). The
    /// other side answers with [`reply`](Client::reply).
    ///
    /// ```no_run
    /// # async fn f(client: stomp_driver::aio::Client) -> Result<(), stomp_driver::Error> {
    /// let answer = client
    ///     .request("/queue/prices", "GET ACME", std::time::Duration::from_secs(5))
    ///     .await?;
    /// println!("{}", answer.text().unwrap_or_default());
    /// # Ok(()) }
    /// ```
    pub async fn request(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        self.request_with(destination, body, SendOptions::default(), timeout)
            .await
    }

    /// [`request`](Client::request) with headers, content type and receipt
    /// as `options` say; a `correlation-id` among the headers is used
    /// instead of a fresh one (one still waiting is refused with
    /// [`Error::DuplicateCorrelation`]).
    pub async fn request_with(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        options: SendOptions,
        timeout: Duration,
    ) -> Result<Message, Error> {
        let request = Handle::request_command(destination, body.into(), options, timeout);
        let reply = self.handle.ask(request).await?;
        Ok(Message::new(reply, self.handle.clone()))
    }

    /// Answers `request`: sends `body` to its `reply-to`, carrying its
    /// `correlation-id` back ([`Error::NoReplyTo`] if it names no
    /// `reply-to`). Like [`send`](Client::send), without a receipt.
    pub async fn reply(&self, request: &Message, body: impl Into<Bytes>) -> Result<(), Error> {
        let (destination, options) = request.reply_options()?;
        self.send_with(&destination, body, options).await
    }

    /// The MESSAGE frames for no subscription of this client's (a broker
    /// that routes replies to the connection itself, as RabbitMQ does for
    /// `/temp-queue/` destinations a SEND names in `reply-to`), from now
    /// on, as a `Stream`; without one they are dropped. A later call takes
    /// them over; dropping it drops them again. Replies to
    /// [`request`](Client::request) go to their request, not here.
    pub fn unhandled(&self) -> Unhandled {
        Unhandled {
            mailbox: self.handle.unhandled(self.subscription_capacity),
            handle: self.handle.clone(),
        }
    }

    /// Every frame and heart-beat in and out from now on, as a `Stream`
    /// (stompy's `for frame in client`, stomp.py's `on_send` and
    /// `on_before_message`), for debugging: each [`Tapped`] says which
    /// way it went and when. A reader that falls more than
    /// [`TAP_CAPACITY`](crate::driver::TAP_CAPACITY) behind misses some;
    /// the connection never waits for it. Several may read at once; it
    /// costs nothing while none does.
    ///
    /// ```no_run
    /// # async fn f(client: stomp_driver::aio::Client) {
    /// let tap = client.tap();
    /// while let Some(tapped) = tap.recv().await {
    ///     match tapped.frame {
    ///         Some(frame) => println!("{:?} {}", tapped.direction, frame.summary()),
    ///         None => println!("{:?} heart-beat", tapped.direction),
    ///     }
    /// }
    /// # }
    /// ```
    pub fn tap(&self) -> Tap {
        Tap {
            queue: self.handle.tap(),
        }
    }

    /// Acknowledges a message by its id alone, for a message whose id was
    /// handed elsewhere (another process, a database) instead of its
    /// [`Message`]: `subscription` is its `subscription` header, `id` what
    /// the version acknowledges by ([`AckHandle::id`](stomp_proto::client::AckHandle::id):
    /// the `ack` header in 1.2, the `message-id` before). Resolves on the
    /// broker's receipt; an id it does not know comes back as its ERROR.
    pub async fn ack_id(&self, subscription: &str, id: &str) -> Result<(), Error> {
        self.acknowledge_id(subscription, id, false).await
    }

    /// Rejects a message by its id alone (1.1+); see [`ack_id`](Client::ack_id).
    pub async fn nack_id(&self, subscription: &str, id: &str) -> Result<(), Error> {
        self.acknowledge_id(subscription, id, true).await
    }

    async fn acknowledge_id(&self, subscription: &str, id: &str, nack: bool) -> Result<(), Error> {
        let (subscription, id) = (subscription.to_string(), id.to_string());
        self.handle
            .ask(|done| Command::AckId {
                subscription,
                id,
                nack,
                done,
            })
            .await
    }

    /// Begins a transaction; it aborts when dropped without `commit`.
    pub async fn transaction(&self) -> Result<Transaction, Error> {
        self.begin(None).await
    }

    /// Begins a transaction with the id `id` (one already open is refused
    /// with [`CommandError::DuplicateTransaction`](stomp_proto::client::CommandError::DuplicateTransaction)).
    pub async fn transaction_with_id(&self, id: &str) -> Result<Transaction, Error> {
        self.begin(Some(id.to_string())).await
    }

    async fn begin(&self, id: Option<String>) -> Result<Transaction, Error> {
        let id = self.handle.ask(|done| Command::Begin { id, done }).await?;
        Ok(Transaction {
            client: self.clone(),
            id,
            ended: false,
        })
    }

    /// The life-cycle events (connected, heart-beat timeout, connection
    /// lost, reconnecting, closed) as a `Stream`, for one more reader:
    /// every reader sees every event, from the oldest of the last 256 (so
    /// a reader made after the connect still sees it). Read it, or drop it:
    /// the client never waits for a reader.
    pub fn events(&self) -> Events {
        self.events.reader()
    }

    /// How the client is doing: connected or not, each subscription's
    /// deliveries and how long ago the last came, receipts and replies
    /// waiting, octets not yet written, calls held back. For a readiness
    /// probe, and to spot a subscription that hears nothing while the
    /// connection looks fine (see [`Config::resubscribe_idle`](crate::Config::resubscribe_idle)).
    /// [`Error::Closed`] once the client has ended.
    pub async fn health(&self) -> Result<Health, Error> {
        let (done, answer) = reply();
        self.handle.send(Command::Health { done })?;
        answer.await.ok_or_else(|| self.handle.closed())
    }

    /// The session's counters; once the client has ended, as they were at
    /// the end (what a failed connection did before it failed).
    pub async fn stats(&self) -> Result<Stats, Error> {
        let (done, answer) = reply();
        if self.handle.send(Command::Stats { done }).is_ok() {
            if let Some(stats) = answer.await {
                return Ok(stats);
            }
        }
        self.handle
            .final_stats()
            .ok_or_else(|| self.handle.closed())
    }

    /// Disconnects gracefully: DISCONNECT, then its receipt (or the
    /// disconnect timeout). Other clones see the client closed.
    pub async fn disconnect(self) -> Result<(), Error> {
        self.handle.ask(|done| Command::Disconnect { done }).await
    }

    /// How the client ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.handle.close_reason()
    }

    /// Whether a connection is up now (`false` while reconnecting, and
    /// once the client has ended).
    pub fn is_connected(&self) -> bool {
        self.handle.is_connected()
    }
}

/// Closes the mailbox of a subscription whose `subscribe` future was
/// dropped before its answer.
struct PendingSubscription {
    mailbox: Arc<Queue<core::Message>>,
    answered: bool,
}

impl Drop for PendingSubscription {
    fn drop(&mut self) {
        if !self.answered {
            self.mailbox.close();
        }
    }
}

/// A live subscription: a `Stream` of [`Message`]s, backed by a bounded
/// queue (a slow consumer stops the socket being read; memory stays
/// bounded). It ends when the client does. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    id: SubscriptionId,
    mailbox: Arc<Queue<core::Message>>,
    handle: Handle,
    ended: bool,
}

impl Subscription {
    /// The subscription's id.
    pub fn id(&self) -> &SubscriptionId {
        &self.id
    }

    /// The next message; `None` once the subscription or the client has
    /// ended. Cancel-safe: a message is taken only when it is returned.
    pub async fn recv(&self) -> Option<Message> {
        next_message(&self.mailbox, &self.handle).await
    }

    /// Ends the subscription; resolves once UNSUBSCRIBE is queued.
    pub async fn unsubscribe(self) -> Result<(), Error> {
        self.end(false).await
    }

    /// Ends the subscription; resolves on the broker's receipt for the
    /// UNSUBSCRIBE (after it, the broker sends nothing more for it).
    pub async fn unsubscribe_with_receipt(self) -> Result<(), Error> {
        self.end(true).await
    }

    async fn end(mut self, receipt: bool) -> Result<(), Error> {
        self.ended = true;
        let id = self.id.clone();
        self.handle
            .ask(|done| Command::Unsubscribe {
                id,
                receipt,
                done: Some(done),
            })
            .await
    }
}

/// The next message of `mailbox`, as a client of `handle` hands it out.
async fn next_message(mailbox: &Queue<core::Message>, handle: &Handle) -> Option<Message> {
    let handle = handle.clone();
    mailbox
        .recv()
        .await
        .map(|inner| Message::new(inner, handle))
}

/// [`next_message`] as a `Stream` polls it.
fn poll_message(
    mailbox: &Queue<core::Message>,
    handle: &Handle,
    cx: &mut Context<'_>,
) -> Poll<Option<Message>> {
    mailbox
        .poll_pop(cx)
        .map(|m| m.map(|inner| Message::new(inner, handle.clone())))
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        poll_message(&self.mailbox, &self.handle, cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.handle.send(Command::Unsubscribe {
                id: self.id.clone(),
                receipt: false,
                done: None,
            });
        }
    }
}

/// Every frame in and out; see [`Client::tap`]. Ends with the client;
/// dropping it stops the tapping (once no other reader is left).
#[derive(Debug)]
pub struct Tap {
    queue: Arc<Queue<Tapped>>,
}

impl Tap {
    /// The next tapped frame; `None` once the client has ended.
    pub async fn recv(&self) -> Option<Tapped> {
        self.queue.recv().await
    }
}

impl Stream for Tap {
    type Item = Tapped;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Tapped>> {
        self.queue.poll_pop(cx)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.queue.close();
    }
}

/// The MESSAGE frames for no subscription of the client's; see
/// [`Client::unhandled`]. Ends with the client.
#[derive(Debug)]
pub struct Unhandled {
    mailbox: Arc<Queue<core::Message>>,
    handle: Handle,
}

impl Unhandled {
    /// The next one; `None` once the client has ended (or a later
    /// [`Client::unhandled`] took them over). Cancel-safe.
    pub async fn recv(&self) -> Option<Message> {
        next_message(&self.mailbox, &self.handle).await
    }
}

impl Stream for Unhandled {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        poll_message(&self.mailbox, &self.handle, cx)
    }
}

impl Drop for Unhandled {
    fn drop(&mut self) {
        self.handle.end_unhandled(&self.mailbox);
    }
}

impl Stream for Events {
    type Item = crate::Lifecycle;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<crate::Lifecycle>> {
        Events::poll_next(&self, cx)
    }
}

/// A received message: the frame's accessors come from [`Delivery`]
/// (`text()`, `header()`, `body()`, `json()` ...), the acknowledgements are
/// async.
#[derive(Debug)]
pub struct Message(Delivery);

impl Message {
    fn new(inner: core::Message, handle: Handle) -> Message {
        Message(Delivery::new(inner, handle))
    }

    /// Acknowledges it (for `client` subscriptions: it and all before it).
    /// Like a send without a receipt it resolves once it has room in the
    /// send window; a message of an earlier connection is refused at once
    /// with [`CommandError::StaleAck`](stomp_proto::client::CommandError::StaleAck).
    pub async fn ack(&self) -> Result<(), Error> {
        self.acknowledge(false, None).await
    }

    /// Rejects it (STOMP 1.1 and later).
    pub async fn nack(&self) -> Result<(), Error> {
        self.acknowledge(true, None).await
    }

    /// Acknowledges it inside `transaction`.
    pub async fn ack_in(&self, transaction: &Transaction) -> Result<(), Error> {
        self.acknowledge(false, Some(transaction.id.clone())).await
    }

    /// Rejects it inside `transaction` (STOMP 1.1 and later): the NACK
    /// takes effect on commit, and not at all if the transaction aborts.
    pub async fn nack_in(&self, transaction: &Transaction) -> Result<(), Error> {
        self.acknowledge(true, Some(transaction.id.clone())).await
    }

    /// Acknowledges it and resolves on the broker's receipt for the ACK.
    pub async fn ack_with_receipt(&self) -> Result<(), Error> {
        self.acknowledge_with_receipt(false, None).await
    }

    /// Rejects it (1.1+) and resolves on the broker's receipt for the NACK.
    pub async fn nack_with_receipt(&self) -> Result<(), Error> {
        self.acknowledge_with_receipt(true, None).await
    }

    async fn acknowledge_with_receipt(
        &self,
        nack: bool,
        transaction: Option<TxId>,
    ) -> Result<(), Error> {
        match self.0.current_ack_handle() {
            Some(handle) => {
                let handle = handle?;
                let ask = |done| Delivery::receipted_ack(handle, nack, transaction, done);
                self.0.handle().ask(ask).await
            }
            None => Ok(()), // auto mode: nothing to acknowledge
        }
    }

    async fn acknowledge(&self, nack: bool, transaction: Option<TxId>) -> Result<(), Error> {
        // Inside a transaction, the COMMIT's receipt confirms it.
        if self.0.handle().confirms() && transaction.is_none() {
            return self.acknowledge_with_receipt(nack, transaction).await;
        }
        match self.0.acknowledgement(nack, transaction) {
            Some(ack) => {
                let (command, credit) = ack?;
                self.0.handle().send_in_window_async(command, credit).await
            }
            None => Ok(()), // auto mode: nothing to acknowledge
        }
    }
}

impl std::ops::Deref for Message {
    type Target = Delivery;

    fn deref(&self) -> &Delivery {
        &self.0
    }
}

/// An open transaction: sends and acks inside it take effect on
/// [`commit`](Transaction::commit); dropping it aborts.
#[derive(Debug)]
pub struct Transaction {
    client: Client,
    id: TxId,
    ended: bool,
}

impl Transaction {
    /// The transaction's id.
    pub fn id(&self) -> &TxId {
        &self.id
    }

    /// Sends inside the transaction.
    pub async fn send(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        let options = SendOptions {
            transaction: Some(self.id.clone()),
            ..SendOptions::default()
        };
        self.client.send_with(destination, body, options).await
    }

    /// Commits; resolves on the broker's receipt.
    pub async fn commit(mut self) -> Result<(), Error> {
        self.end(true).await
    }

    /// Aborts; resolves on the broker's receipt.
    pub async fn abort(mut self) -> Result<(), Error> {
        self.end(false).await
    }

    async fn end(&mut self, commit: bool) -> Result<(), Error> {
        self.ended = true;
        let tx = self.id.clone();
        let command = |done| Command::End {
            tx,
            commit,
            done: Some(done),
        };
        self.client.handle.ask(command).await
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.client.handle.send(Command::End {
                tx: self.id.clone(),
                commit: false,
                done: None,
            });
        }
    }
}

/// What an open link moves bytes over.
enum LinkIo {
    Stream(Box<dyn AsyncStream>),
    /// A multicast group: each chunk is one datagram.
    Datagram {
        socket: Box<dyn AsyncDatagram>,
        group: SocketAddr,
    },
}

/// The adapter's side of the current link: its socket and the chunks the
/// driver handed out, in order (the first `offset` octets of the front
/// one written).
struct Link {
    id: LinkId,
    io: LinkIo,
    out: VecDeque<Bytes>,
    offset: usize,
    unflushed: bool,
}

impl Link {
    /// Reads raw bytes (one datagram, for multicast).
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match &mut self.io {
            LinkIo::Stream(stream) => Pin::new(stream).poll_read(cx, buf),
            LinkIo::Datagram { socket, .. } => socket.poll_recv(cx, buf),
        }
    }

    /// Writes what it can without waiting; `Ready(Ok(n))` with the octets
    /// written when it made progress, `Pending` when the socket takes
    /// nothing now (or nothing waits).
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut written = 0;
        match &mut self.io {
            LinkIo::Datagram { socket, group } => {
                while let Some(datagram) = self.out.front() {
                    match socket.poll_send_to(cx, datagram, *group) {
                        Poll::Ready(Ok(_)) => {
                            written += datagram.len();
                            self.out.pop_front();
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => break,
                    }
                }
            }
            LinkIo::Stream(stream) => {
                while !self.out.is_empty() {
                    let slices = io_slices(&self.out, self.offset);
                    match Pin::new(&mut *stream).poll_write_vectored(cx, &slices) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()))
                        }
                        Poll::Ready(Ok(n)) => {
                            written += n;
                            self.unflushed = true;
                            consume_written(&mut self.out, &mut self.offset, n);
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => break,
                    }
                }
                if self.out.is_empty() && self.unflushed {
                    match Pin::new(&mut *stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.unflushed = false,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => {}
                    }
                }
            }
        }
        if written > 0 {
            Poll::Ready(Ok(written))
        } else {
            Poll::Pending
        }
    }
}

/// A link being opened: its id and the connect under way.
type Opening = (LinkId, BoxFuture<io::Result<LinkIo>>);

/// What woke the task: every source that was ready in one poll, so a busy
/// one (callers flooding commands, say) cannot starve the others.
#[derive(Default)]
struct Wakeup {
    input: Option<Option<Input>>,
    opened: Option<(LinkId, io::Result<LinkIo>)>,
    read: Option<io::Result<usize>>,
    wrote: Option<io::Result<usize>>,
    timer: bool,
}

impl Wakeup {
    fn is_empty(&self) -> bool {
        self.input.is_none()
            && self.opened.is_none()
            && self.read.is_none()
            && self.wrote.is_none()
            && !self.timer
    }
}

/// The background task: runtime glue around the [`Driver`]: the socket,
/// the connect under way, the timer and the handles' queue, polled
/// together. Every decision is the driver's.
struct Task {
    driver: Driver,
    runtime: Arc<dyn Runtime>,
    link: Option<Link>,
    opening: Option<Opening>,
}

impl Task {
    async fn run(mut self) {
        let input = self.driver.handle().input().clone();
        let mut buf = vec![0; 64 * 1024];
        let mut timer: Option<(Instant, BoxFuture<()>)> = None;
        // Closed by the driver at the end, which may still flush the link.
        let mut input_open = true;
        loop {
            self.take_actions();
            if self.driver.is_finished() {
                break;
            }
            if let Some(link) = &mut self.link {
                while let Some((id, bytes)) = self.driver.poll_transmit() {
                    if id == link.id {
                        link.out.push_back(bytes);
                    }
                }
            }
            let deadline = self.driver.poll_timeout();
            if timer.as_ref().map(|(at, _)| *at) != deadline {
                timer = deadline.map(|at| (at, self.runtime.sleep_until(at)));
            }
            let budget = usize::try_from(self.driver.read_budget()).unwrap_or(usize::MAX);
            // Reading, writing, connecting, commands and timers all wait
            // here together: a peer that stops reading until it has written
            // is still read.
            let wakeup = poll_fn(|cx| {
                let mut wakeup = Wakeup::default();
                if input_open {
                    if let Poll::Ready(item) = input.poll_pop(cx) {
                        wakeup.input = Some(item);
                    }
                }
                if let Some((id, connect)) = &mut self.opening {
                    if let Poll::Ready(result) = connect.as_mut().poll(cx) {
                        wakeup.opened = Some((*id, result));
                    }
                }
                if let Some(link) = &mut self.link {
                    if !link.out.is_empty() || link.unflushed {
                        if let Poll::Ready(wrote) = link.poll_write(cx) {
                            wakeup.wrote = Some(wrote);
                        }
                    }
                    if budget > 0 {
                        let room = buf.len().min(budget);
                        if let Poll::Ready(read) = link.poll_read(cx, &mut buf[..room]) {
                            wakeup.read = Some(read);
                        }
                    }
                }
                if let Some((_, sleep)) = &mut timer {
                    wakeup.timer = sleep.as_mut().poll(cx).is_ready();
                }
                if wakeup.is_empty() {
                    Poll::Pending
                } else {
                    Poll::Ready(wakeup)
                }
            })
            .await;
            let now = self.runtime.now();
            if let Some((id, result)) = wakeup.opened {
                self.opening = None;
                match result {
                    Ok(io) => {
                        self.link = Some(Link {
                            id,
                            io,
                            out: VecDeque::new(),
                            offset: 0,
                            unflushed: false,
                        });
                        self.driver.handle_opened(now, id);
                    }
                    Err(e) => self.driver.handle_open_failed(now, id, e),
                }
            }
            let id = self.link.as_ref().map(|link| link.id);
            if let (Some(id), Some(wrote)) = (id, wakeup.wrote) {
                match wrote {
                    Ok(n) => self.driver.handle_written(now, id, n),
                    Err(e) => self.driver.handle_ended(now, id, Some(e)),
                }
            }
            if let (Some(id), Some(read)) = (id, wakeup.read) {
                match read {
                    // An empty datagram is no end (the group member counts it).
                    Ok(0)
                        if self
                            .link
                            .as_ref()
                            .is_some_and(|l| matches!(l.io, LinkIo::Stream(_))) =>
                    {
                        self.driver.handle_ended(now, id, None)
                    }
                    Ok(n) => self.driver.handle_read(now, id, &buf[..n]),
                    Err(e) => self.driver.handle_ended(now, id, Some(e)),
                }
            }
            match wakeup.input {
                Some(None) => input_open = false,
                Some(Some(item)) => self.driver.handle_input(now, item),
                None => {}
            }
            // Take whatever else is already waiting before the timers run.
            while let Ok(item) = input.try_pop() {
                self.driver.handle_input(now, item);
            }
            if wakeup.timer {
                timer = None;
            }
            self.driver.handle_timeout(now);
        }
        self.link = None;
    }

    /// Opens and closes what the driver asks for.
    fn take_actions(&mut self) {
        while let Some(action) = self.driver.poll_action() {
            match action {
                Action::Open { link, target, .. } => {
                    self.opening = Some((link, self.open(target)));
                }
                Action::Close { link } => {
                    if self.link.as_ref().is_some_and(|l| l.id == link) {
                        self.link = None;
                    }
                    if self.opening.as_ref().is_some_and(|(id, _)| *id == link) {
                        self.opening = None;
                    }
                }
            }
        }
    }

    /// A connect under way (the driver bounds it by the dial's timeout).
    fn open(&self, target: Target) -> BoxFuture<io::Result<LinkIo>> {
        match target {
            Target::Tcp {
                host,
                port,
                options,
            } => {
                let connect = self.runtime.connect(host, port, options);
                Box::pin(async move { connect.await.map(LinkIo::Stream) })
            }
            Target::Udp(options) => {
                let opened = options.open().and_then(|socket| {
                    socket.set_nonblocking(true)?;
                    Ok(LinkIo::Datagram {
                        socket: self.runtime.udp(socket)?,
                        group: SocketAddr::V4(options.group),
                    })
                });
                Box::pin(std::future::ready(opened))
            }
        }
    }
}
