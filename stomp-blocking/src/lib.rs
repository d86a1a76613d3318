//! A blocking STOMP client on std threads, for people who come from Python's
//! stomp.py and stompy: no async, plain calls that block until done.
//!
//! A background thread (the pump) owns the socket and the sans-IO
//! [`ClientSession`](stomp_proto::client::ClientSession) of `stomp-proto`, through the
//! connection driver of `stomp-driver`: it
//! keeps heart-beats flowing while your code is busy, and reconnects and
//! resubscribes per the session's policy. Every decision is the core's; this
//! crate only moves bytes and answers.
//!
//! ```no_run
//! use stomp_blocking::{AckMode, Client};
//!
//! # fn main() -> Result<(), stomp_blocking::Error> {
//! let client = Client::connect("stomp://guest:guest@localhost:61613")?;
//! let orders = client.subscribe("/queue/orders", AckMode::ClientIndividual)?;
//! client.send_with_receipt("/queue/orders", "one pizza")?; // the broker has it
//! for message in &orders {
//!     println!("{}", message.text().unwrap_or("<binary>".into()));
//!     message.ack()?;
//!     break;
//! }
//! client.disconnect()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Transports
//!
//! The URL picks it: `stomp://` (TCP), `stomp+ssl://` (TLS with rustls; the
//! system's roots unless [`Config::tls`] names a CA, client certificates and a
//! server name), `ws://` and `wss://` (STOMP over WebSocket, offering the
//! `v12.stomp`, `v11.stomp` and `v10.stomp` subprotocols; the URL's path is the
//! HTTP path, such as RabbitMQ's `/ws`), and `failover:(..)` lists of them.
//!
//! # Multicast, without a broker
//!
//! `udp://GROUP:PORT` joins an IPv4 multicast group instead: every SEND goes
//! to every member as one datagram, each member delivers what matches its
//! subscriptions (`*` for one path segment, a final `>` for one or more),
//! and receipts are answered locally. Options: `interface`, `ttl`, `loop`,
//! `ignore_own` (drop our own messages; by default they are delivered, as
//! stomp.py does) and `max_datagram` (see [`stomp_driver::multicast`]). A
//! frame larger than one datagram is refused when sent
//! ([`CommandError::TooLarge`],
//! naming the limit: 65,467 octets by default). Multicast gives up what a
//! broker gives: no acknowledgements (ACK and NACK do nothing), no storage
//! (who is not listening misses it), no order across senders, and a lost
//! datagram is lost. See [`stomp_proto::multicast`].
//!
//! ```no_run
//! use stomp_blocking::{AckMode, Client};
//!
//! # fn main() -> Result<(), stomp_blocking::Error> {
//! let url = "udp://239.1.2.3:61616?interface=127.0.0.1&ttl=0";
//! let listener = Client::connect(url)?;
//! let prices = listener.subscribe("/topic/prices/>", AckMode::Auto)?;
//! let speaker = Client::connect(url)?; // another process would do the same
//! speaker.send_with_receipt("/topic/prices/eur/usd", "1.09")?; // answered locally
//! if let Some(price) = prices.recv() {
//!     println!("{:?}", price.text());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Requests, the tap, health and confirmed mode
//!
//! [`Client::request`] sends with `reply-to` and a `correlation-id` and
//! returns the reply ([`Client::reply`] answers one); [`Client::unhandled`]
//! takes the MESSAGEs for no subscription of ours; [`Client::tap`] shows
//! every frame and heart-beat both ways; [`Client::health`] tells each
//! subscription's last delivery, the receipts waiting and the octets not
//! yet written. [`Config::confirm`] makes every request wait for its
//! receipt, and [`Error::outcome`] says of a failure whether it was
//! rejected, is ambiguous or was never sent; [`Config::resubscribe_idle`]
//! renews a subscription that hears nothing; [`Config::tcp`] sets TCP
//! keepalive and a local address.
//!
//! ```no_run
//! use std::time::Duration;
//! use stomp_blocking::{Client, Config, Outcome};
//!
//! # fn main() -> Result<(), stomp_blocking::Error> {
//! let mut config = Config::from_url("stomp://guest:guest@localhost:61613")?;
//! config.confirm = true;
//! let client = Client::connect_with(config)?;
//! let price = client.request("/queue/prices", "ACME", Duration::from_secs(5))?;
//! println!("{}", price.text().unwrap_or_default());
//! if let Err(e) = client.send("/queue/orders", "one pizza") {
//!     assert_ne!(e.outcome(), Outcome::Rejected, "{e}");
//! }
//! # Ok(()) }
//! ```
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
//!   life-cycle events say so: [`Lifecycle::Connecting`] for every dial (the
//!   first included), [`Lifecycle::DialFailed`] with the host and the reason,
//!   [`Lifecycle::Connected`] once in.
//! - A call made while the connection is down (reconnecting) waits for it,
//!   up to [`Config::offline_wait`] (30 s by default), then fails with
//!   [`Error::Offline`]; a receipted send made then is confirmed by the new
//!   connection. With `offline_wait: None` such calls fail at once with
//!   [`CommandError::NotConnected`].
//! - An ACK or NACK for a message delivered on an earlier connection is
//!   refused with [`CommandError::StaleAck`]
//!   and never sent (the broker redelivers that message); the connection
//!   lives on.
//! - Subscriptions are made again after a reconnect, in their order, with
//!   their ids; receipts still pending fail with
//!   [`RequestError::ConnectionLost`]
//!   (the request may or may not have been carried out).
//!
//! # Back-pressure
//!
//! Each subscription holds up to [`Config::subscription_capacity`] messages.
//! Once one is full, the socket is read for at most [`Config::read_ahead`]
//! more bytes and then not at all until it has room, so the broker holds the rest
//! (and, per its flow control, may slow producers). A consequence to keep in
//! mind: a thread that subscribes and then only sends, never receiving, will
//! at some point have the broker's answers (receipts included) stuck behind
//! the full subscription, and `send_with_receipt` then waits for its receipt
//! timeout. Consume on another thread, or drop the subscription.
//!
//! # Broker notes
//!
//! - RabbitMQ over WebSocket answers DISCONNECT by closing instead of with a
//!   RECEIPT: [`Client::disconnect`] takes that as success.
//! - RabbitMQ's ERROR names no receipt and ends the connection: the request
//!   waiting for a receipt fails with that ERROR.
//! - ActiveMQ puts Java stack traces in ERROR bodies: the error's one-line
//!   text is the `message` header and the body's first line; the whole body is
//!   in [`ServerError::frame`](stomp_proto::client::ServerError::frame).
//! - Debian's RabbitMQ 3.10 Web-STOMP may drop a busy connection whose
//!   heart-beats *to* the broker are on (its heart-beat receiver crashes when
//!   credit flow resumes the connection). Asking only for heart-beats from the
//!   broker (`HeartBeat::new(0, ms)`) avoids it; a reconnect policy survives it.
//! - ActiveMQ fixes its sockets' buffers at 64 KiB by default. On one host
//!   (loopback segments are up to 64 KiB) a connection that sends and
//!   receives hard at once can have segments dropped by the kernel and stall
//!   in retransmission backoff for seconds, past a heart-beat grace. Give the
//!   connector `?transport.socketBufferSize=1048576` (as `scripts/brokers`
//!   does).

use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use stomp_driver::driver::{Command, Driver, Handle};
pub use stomp_driver::driver::{Health, SubscriptionHealth};
use stomp_driver::queue::Queue;
use stomp_driver::reply::reply;
use stomp_proto::client::{self as core, SessionInfo, Stats, SubscriptionId, TxId};

mod gate;
mod pump;
mod transport;

pub use stomp_driver::delivery::Delivery;
pub use stomp_driver::{
    Config, Empty, Error, Events, Keepalive, Lifecycle, Outcome, TcpOptions, Tls,
};
pub use stomp_proto::client::{CloseReason, CommandError, RequestError};
pub use stomp_proto::client::{Direction, SendOptions, SubscribeOptions, Tapped};
pub use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
pub use stomp_proto::{AckMode, HeartBeat, Version, VersionSet};

use pump::Pump;

/// A connected client. Calls block until the pump has carried them out; the
/// ones named `*_with_receipt` (and [`Transaction::commit`]) block until the
/// broker has confirmed. Share it between threads by reference or in an
/// `Arc`; dropping it closes the connection without waiting.
pub struct Client {
    handle: Handle,
    events: Events,
    info: SessionInfo,
    subscription_capacity: usize,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("info", &self.info).finish()
    }
}

impl Client {
    /// Connects to `url` (see [`Config::from_url`]) and waits for CONNECTED.
    pub fn connect(url: &str) -> Result<Client, Error> {
        Client::connect_with(Config::from_url(url)?)
    }

    /// Connects with `config` and waits for CONNECTED (or the end of the
    /// first connect's attempts).
    pub fn connect_with(config: Config) -> Result<Client, Error> {
        // Bad TLS settings fail here, not on every dial.
        let started = Driver::start(&config, std::time::Instant::now())?;
        let (driver, events, first) = (started.driver, started.events, started.first);
        let handle = driver.handle().clone();
        let pump = Pump::new(driver);
        thread::Builder::new()
            .name("stomp-pump".into())
            .spawn(move || pump.run())
            .map_err(|_| Error::Closed(None))?;
        let info = first.wait().ok_or(Error::Closed(None))??;
        Ok(Client {
            handle,
            events,
            info,
            subscription_capacity: config.subscription_capacity,
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

    /// Sends `body` to `destination` without a receipt: returns as soon as
    /// the send has room in the [send window](Config::send_window),
    /// without waiting for the connection's task, so a loop of sends goes
    /// out in batches (one write for many frames). A full window blocks it
    /// (memory stays bounded). A refusal found after it returned (the
    /// connection stayed down past `offline_wait`, say) comes back from the
    /// next send or acknowledgement; use
    /// [`send_with_receipt`](Client::send_with_receipt) to know that the
    /// broker has it.
    pub fn send(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        self.send_with(destination, body, SendOptions::default())
    }

    /// Sends and blocks until the broker's RECEIPT (or its ERROR, or the
    /// receipt timeout of the session's configuration).
    pub fn send_with_receipt(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
    ) -> Result<(), Error> {
        self.send_with(destination, body, SendOptions::with_receipt())
    }

    /// Sends with headers, content type, transaction and receipt as `options`
    /// say; with `options.receipt` it blocks until the broker confirms.
    pub fn send_with(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        options: SendOptions,
    ) -> Result<(), Error> {
        self.handle.send_blocking(destination, body.into(), options)
    }

    /// Subscribes to `destination`.
    pub fn subscribe(&self, destination: &str, ack: AckMode) -> Result<Subscription, Error> {
        self.subscribe_with(
            destination,
            SubscribeOptions {
                ack,
                ..SubscribeOptions::default()
            },
        )
    }

    /// Subscribes with an id, extra headers (selectors, durable names,
    /// prefetch) and ack mode as `options` say; with `options.receipt` it
    /// returns once the broker confirms (so a send after it, on any
    /// connection, finds the subscription in place).
    pub fn subscribe_with(
        &self,
        destination: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, Error> {
        let mailbox = self.handle.mailbox(self.subscription_capacity);
        let id = self.handle.call(|done| Command::Subscribe {
            destination: destination.into(),
            options,
            mailbox: mailbox.clone(),
            done,
        })?;
        Ok(Subscription {
            id,
            inbox: Inbox {
                mailbox,
                handle: self.handle.clone(),
            },
            handle: self.handle.clone(),
            ended: false,
        })
    }

    /// Begins a transaction; it aborts when dropped without `commit`.
    pub fn transaction(&self) -> Result<Transaction<'_>, Error> {
        self.begin(None)
    }

    /// Begins a transaction with the id `id` (one already open is refused
    /// with [`CommandError::DuplicateTransaction`]).
    pub fn transaction_with_id(&self, id: &str) -> Result<Transaction<'_>, Error> {
        self.begin(Some(id.to_string()))
    }

    fn begin(&self, id: Option<String>) -> Result<Transaction<'_>, Error> {
        let id = self.handle.call(|done| Command::Begin { id, done })?;
        Ok(Transaction {
            client: self,
            id,
            ended: false,
        })
    }

    /// The life-cycle events (connected, heart-beat timeout, connection
    /// lost, reconnecting, closed), for one more reader: every reader sees
    /// every event, from the oldest of the last 256 (so a reader made
    /// after the connect still sees it). Read it, or drop it: the client
    /// never waits for a reader.
    pub fn events(&self) -> Events {
        self.events.reader()
    }

    /// How the client is doing: connected or not, each subscription's
    /// deliveries and how long ago the last came, receipts and replies
    /// waiting, octets not yet written, calls held back. For a readiness
    /// probe, and to spot a subscription that hears nothing while the
    /// connection looks fine (see [`Config::resubscribe_idle`]).
    /// [`Error::Closed`] once the client has ended.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), stomp_blocking::Error> {
    /// # let client = stomp_blocking::Client::connect("stomp://guest:guest@localhost:61613")?;
    /// let health = client.health()?;
    /// for sub in &health.subscriptions {
    ///     println!("{} {}: {} messages, last {:?} ago", sub.id, sub.destination, sub.delivered, sub.last_delivery);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn health(&self) -> Result<Health, Error> {
        let (done, answer) = reply();
        self.handle.send(Command::Health { done })?;
        answer.wait().ok_or_else(|| self.handle.closed())
    }

    /// The session's counters; once the client has ended, as they were at
    /// the end (what a failed connection did before it failed).
    pub fn stats(&self) -> Result<Stats, Error> {
        let (done, answer) = reply();
        if self.handle.send(Command::Stats { done }).is_ok() {
            if let Some(stats) = answer.wait() {
                return Ok(stats);
            }
        }
        self.handle
            .final_stats()
            .ok_or_else(|| self.handle.closed())
    }

    /// Disconnects gracefully: DISCONNECT, then its receipt (or the
    /// disconnect timeout).
    pub fn disconnect(self) -> Result<(), Error> {
        self.handle.call(|done| Command::Disconnect { done })
    }

    /// Acknowledges a message by its id alone, for a message whose id was
    /// handed elsewhere (another process, a database) instead of its
    /// [`Message`]: `subscription` is its `subscription` header, `id` what
    /// the version acknowledges by ([`AckHandle::id`](stomp_proto::client::AckHandle::id):
    /// the `ack` header in 1.2, the `message-id` before). Returns on the
    /// broker's receipt; an id it does not know comes back as its ERROR.
    pub fn ack_id(&self, subscription: &str, id: &str) -> Result<(), Error> {
        self.acknowledge_id(subscription, id, false)
    }

    /// Rejects a message by its id alone (1.1+); see [`ack_id`](Client::ack_id).
    pub fn nack_id(&self, subscription: &str, id: &str) -> Result<(), Error> {
        self.acknowledge_id(subscription, id, true)
    }

    fn acknowledge_id(&self, subscription: &str, id: &str, nack: bool) -> Result<(), Error> {
        let (subscription, id) = (subscription.to_string(), id.to_string());
        self.handle.call(|done| Command::AckId {
            subscription,
            id,
            nack,
            done,
        })
    }

    /// Sends a request and blocks until its reply: the SEND carries
    /// `reply-to` (where replies reach this client, see
    /// [`Config::reply_destination`]) and a fresh `correlation-id`, and the
    /// first MESSAGE that carries that `correlation-id` back is the
    /// answer. Fails with [`Error::Timeout`] after `timeout` (counted from
    /// when the SEND goes out), and when the connection is lost first (a
    /// reply to it can no longer come). The other side answers with
    /// [`reply`](Client::reply).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), stomp_blocking::Error> {
    /// # let client = stomp_blocking::Client::connect("stomp://guest:guest@localhost:61613")?;
    /// let answer = client.request("/queue/prices", "GET ACME", std::time::Duration::from_secs(5))?;
    /// println!("{}", answer.text().unwrap_or_default());
    /// # Ok(()) }
    /// ```
    pub fn request(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<Message, Error> {
        self.request_with(destination, body, SendOptions::default(), timeout)
    }

    /// [`request`](Client::request) with headers, content type and receipt
    /// as `options` say; a `correlation-id` among the headers is used
    /// instead of a fresh one (one still waiting is refused with
    /// [`Error::DuplicateCorrelation`]).
    pub fn request_with(
        &self,
        destination: &str,
        body: impl Into<Bytes>,
        options: SendOptions,
        timeout: Duration,
    ) -> Result<Message, Error> {
        let request = Handle::request_command(destination, body.into(), options, timeout);
        let reply = self.handle.call(request)?;
        Ok(Message(Delivery::new(reply, self.handle.clone())))
    }

    /// Answers `request`: sends `body` to its `reply-to`, carrying its
    /// `correlation-id` back ([`Error::NoReplyTo`] if it names no
    /// `reply-to`). Like [`send`](Client::send), without a receipt.
    pub fn reply(&self, request: &Message, body: impl Into<Bytes>) -> Result<(), Error> {
        let (destination, options) = request.reply_options()?;
        self.send_with(&destination, body, options)
    }

    /// The MESSAGE frames for no subscription of this client's (a broker
    /// that routes replies to the connection itself, as RabbitMQ does for
    /// `/temp-queue/` destinations a SEND names in `reply-to`), from now
    /// on; without it they are dropped. A later call takes them over;
    /// dropping it drops them again. Replies to
    /// [`request`](Client::request) go to their request, not here.
    pub fn unhandled(&self) -> Unhandled {
        Unhandled(Inbox {
            mailbox: self.handle.unhandled(self.subscription_capacity),
            handle: self.handle.clone(),
        })
    }

    /// Every frame and heart-beat in and out from now on (stompy's `for
    /// frame in client`, stomp.py's `on_send` and `on_before_message`),
    /// for debugging: each [`Tapped`] says which way it went and when. A
    /// reader that falls more than [`TAP_CAPACITY`](stomp_driver::driver::TAP_CAPACITY)
    /// behind misses some; the connection never waits for it. Several may
    /// read at once; it costs nothing while none does.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), stomp_blocking::Error> {
    /// # let client = stomp_blocking::Client::connect("stomp://guest:guest@localhost:61613")?;
    /// let tap = client.tap();
    /// std::thread::spawn(move || {
    ///     for tapped in &tap {
    ///         match &tapped.frame {
    ///             Some(frame) => eprintln!("{:?} {}", tapped.direction, frame.summary()),
    ///             None => eprintln!("{:?} heart-beat", tapped.direction),
    ///         }
    ///     }
    /// });
    /// # Ok(()) }
    /// ```
    pub fn tap(&self) -> Tap {
        Tap {
            queue: self.handle.tap(),
        }
    }

    /// Whether a connection is up now (`false` while reconnecting, and
    /// once the client has ended).
    pub fn is_connected(&self) -> bool {
        self.handle.is_connected()
    }

    /// How the client ended, once it has (`None` while it lives;
    /// [`CloseReason::Disconnected`] after a graceful disconnect seen from
    /// a clone).
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.handle.close_reason()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.handle.send(Command::Close);
    }
}

/// A live subscription: receive with [`recv`](Subscription::recv),
/// [`recv_timeout`](Subscription::recv_timeout), [`try_recv`](Subscription::try_recv)
/// or by iterating. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    id: SubscriptionId,
    inbox: Inbox,
    handle: Handle,
    /// UNSUBSCRIBE was sent.
    ended: bool,
}

/// Where a subscription's (or the unhandled) messages wait.
#[derive(Debug)]
struct Inbox {
    mailbox: Arc<Queue<core::Message>>,
    handle: Handle,
}

impl Inbox {
    fn recv(&self) -> Option<Message> {
        self.mailbox.pop(None).ok().map(|m| self.wrap(m))
    }

    fn recv_timeout(&self, timeout: Duration) -> Result<Message, Empty> {
        self.mailbox.pop(Some(timeout)).map(|m| self.wrap(m))
    }

    fn try_recv(&self) -> Option<Message> {
        self.mailbox.try_pop().ok().map(|m| self.wrap(m))
    }

    fn wrap(&self, inner: core::Message) -> Message {
        Message(Delivery::new(inner, self.handle.clone()))
    }
}

impl Subscription {
    /// The subscription's id.
    pub fn id(&self) -> &SubscriptionId {
        &self.id
    }

    /// The next message; `None` once the subscription or the client has ended.
    pub fn recv(&self) -> Option<Message> {
        self.inbox.recv()
    }

    /// The next message within `timeout`: [`Empty::Timeout`] if none came,
    /// [`Empty::Closed`] once the subscription or the client has ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, Empty> {
        self.inbox.recv_timeout(timeout)
    }

    /// A message if one is waiting.
    pub fn try_recv(&self) -> Option<Message> {
        self.inbox.try_recv()
    }

    /// Calls `handler` with each message, as stompy's `loop` does, until it
    /// returns [`Flow::Stop`] or the client ends: `Ok` after a stop or a
    /// graceful disconnect, the reason otherwise. Reconnects happen
    /// underneath; the loop goes on.
    ///
    /// ```no_run
    /// use stomp_blocking::{AckMode, Client, Flow};
    ///
    /// # fn main() -> Result<(), stomp_blocking::Error> {
    /// let client = Client::connect("stomp://guest:guest@localhost:61613")?;
    /// let jobs = client.subscribe("/queue/jobs", AckMode::Auto)?;
    /// jobs.run(|message| {
    ///     println!("{}", message.text().unwrap_or("<binary>".into()));
    ///     if message.header("last") == Some("true") {
    ///         Flow::Stop
    ///     } else {
    ///         Flow::Continue
    ///     }
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn run(&self, handler: impl FnMut(&Message) -> Flow) -> Result<(), Error> {
        self.run_loop(false, handler)
    }

    /// [`run`](Subscription::run), acknowledging each message once the
    /// handler returns (stompy's `send_acks`), unless the handler acked or
    /// nacked it itself. For `client` and `client-individual` subscriptions.
    pub fn run_acking(&self, handler: impl FnMut(&Message) -> Flow) -> Result<(), Error> {
        self.run_loop(true, handler)
    }

    fn run_loop(&self, ack: bool, mut handler: impl FnMut(&Message) -> Flow) -> Result<(), Error> {
        while let Some(message) = self.recv() {
            let flow = handler(&message);
            if ack && !message.is_answered() {
                message.ack()?;
            }
            if flow == Flow::Stop {
                return Ok(());
            }
        }
        match self.handle.close_reason() {
            Some(CloseReason::Disconnected | CloseReason::Local) => Ok(()),
            _ => Err(self.handle.closed()),
        }
    }

    /// Ends the subscription and waits until UNSUBSCRIBE is queued.
    pub fn unsubscribe(self) -> Result<(), Error> {
        self.end(false)
    }

    /// Ends the subscription, and returns on the broker's receipt for the
    /// UNSUBSCRIBE (after it, the broker sends nothing more for it).
    pub fn unsubscribe_with_receipt(self) -> Result<(), Error> {
        self.end(true)
    }

    fn end(mut self, receipt: bool) -> Result<(), Error> {
        self.ended = true;
        let id = self.id.clone();
        self.handle.call(|done| Command::Unsubscribe {
            id,
            receipt,
            done: Some(done),
        })
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
    pub fn recv(&self) -> Option<Tapped> {
        self.queue.pop(None).ok()
    }

    /// The next one within `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Tapped, Empty> {
        self.queue.pop(Some(timeout))
    }

    /// One if it is waiting.
    pub fn try_recv(&self) -> Option<Tapped> {
        self.queue.try_pop().ok()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.queue.close();
    }
}

impl<'a> IntoIterator for &'a Tap {
    type Item = Tapped;
    type IntoIter = std::iter::MapWhile<std::iter::Repeat<&'a Tap>, fn(&Tap) -> Option<Tapped>>;

    fn into_iter(self) -> Self::IntoIter {
        std::iter::repeat(self).map_while(Tap::recv)
    }
}

/// The MESSAGE frames for no subscription of the client's; see
/// [`Client::unhandled`]. Ends with the client.
#[derive(Debug)]
pub struct Unhandled(Inbox);

impl Unhandled {
    /// The next one; `None` once the client has ended (or a later
    /// [`Client::unhandled`] took them over).
    pub fn recv(&self) -> Option<Message> {
        self.0.recv()
    }

    /// The next one within `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Message, Empty> {
        self.0.recv_timeout(timeout)
    }

    /// One if it is waiting.
    pub fn try_recv(&self) -> Option<Message> {
        self.0.try_recv()
    }
}

impl Drop for Unhandled {
    fn drop(&mut self) {
        self.0.handle.end_unhandled(&self.0.mailbox);
    }
}

impl<'a> IntoIterator for &'a Subscription {
    type Item = Message;
    type IntoIter = Messages<'a>;

    fn into_iter(self) -> Messages<'a> {
        Messages { subscription: self }
    }
}

/// The messages of a subscription, blocking for each; ends with the
/// subscription.
#[derive(Debug)]
pub struct Messages<'a> {
    subscription: &'a Subscription,
}

impl Iterator for Messages<'_> {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        self.subscription.recv()
    }
}

/// What a [`Subscription::run`] handler asks for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// The next message, please.
    Continue,
    /// Return from `run`.
    Stop,
}

/// A received message: the frame's accessors come from [`Delivery`]
/// (`text()`, `header()`, `body()`, `json()` ...), the acknowledgements
/// block until queued.
#[derive(Debug)]
pub struct Message(Delivery);

impl Message {
    /// Acknowledges it (for `client` subscriptions: it and all before it).
    /// Like a send without a receipt it returns once it has room in the
    /// send window; a message of an earlier connection is refused at once
    /// with [`CommandError::StaleAck`].
    pub fn ack(&self) -> Result<(), Error> {
        self.acknowledge(false, None)
    }

    /// Rejects it (STOMP 1.1 and later).
    pub fn nack(&self) -> Result<(), Error> {
        self.acknowledge(true, None)
    }

    /// Acknowledges it inside `transaction`.
    pub fn ack_in(&self, transaction: &Transaction<'_>) -> Result<(), Error> {
        self.acknowledge(false, Some(transaction.id.clone()))
    }

    /// Rejects it inside `transaction` (STOMP 1.1 and later): the NACK
    /// takes effect on commit, and not at all if the transaction aborts.
    pub fn nack_in(&self, transaction: &Transaction<'_>) -> Result<(), Error> {
        self.acknowledge(true, Some(transaction.id.clone()))
    }

    /// Acknowledges it and returns on the broker's receipt for the ACK.
    pub fn ack_with_receipt(&self) -> Result<(), Error> {
        self.acknowledge_with_receipt(false, None)
    }

    /// Rejects it (1.1+) and returns on the broker's receipt for the NACK.
    pub fn nack_with_receipt(&self) -> Result<(), Error> {
        self.acknowledge_with_receipt(true, None)
    }

    fn acknowledge_with_receipt(&self, nack: bool, transaction: Option<TxId>) -> Result<(), Error> {
        match self.0.current_ack_handle() {
            Some(handle) => {
                let handle = handle?;
                let call = |done| Delivery::receipted_ack(handle, nack, transaction, done);
                self.0.handle().call(call)
            }
            None => Ok(()), // auto mode: nothing to acknowledge
        }
    }

    fn acknowledge(&self, nack: bool, transaction: Option<TxId>) -> Result<(), Error> {
        // Inside a transaction, the COMMIT's receipt confirms it.
        if self.0.handle().confirms() && transaction.is_none() {
            return self.acknowledge_with_receipt(nack, transaction);
        }
        match self.0.acknowledgement(nack, transaction) {
            Some(ack) => {
                let (command, credit) = ack?;
                self.0.handle().send_in_window(command, credit)
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
pub struct Transaction<'a> {
    client: &'a Client,
    id: TxId,
    ended: bool,
}

impl Transaction<'_> {
    /// The transaction's id.
    pub fn id(&self) -> &TxId {
        &self.id
    }

    /// Sends inside the transaction.
    pub fn send(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        let options = SendOptions {
            transaction: Some(self.id.clone()),
            ..SendOptions::default()
        };
        self.client.send_with(destination, body, options)
    }

    /// Commits and waits for the broker's receipt.
    pub fn commit(mut self) -> Result<(), Error> {
        self.end(true)
    }

    /// Aborts and waits for the broker's receipt.
    pub fn abort(mut self) -> Result<(), Error> {
        self.end(false)
    }

    fn end(&mut self, commit: bool) -> Result<(), Error> {
        self.ended = true;
        let tx = self.id.clone();
        self.client.handle.call(|done| Command::End {
            tx,
            commit,
            done: Some(done),
        })
    }
}

impl Drop for Transaction<'_> {
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
