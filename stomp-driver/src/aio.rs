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
    self as core, ClientSession, CloseReason, SendOptions, SessionInfo, Stats, SubscribeOptions,
    SubscriptionId, TxId,
};
use stomp_proto::reconnect::Dial;
use stomp_proto::{AckMode, Version};

use crate::delivery::Delivery;
use crate::driver::{Command, Driver, Handle, Input};
use crate::layers::{Connector, Layers};
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

    /// Opens a TCP connection to `host:port` (any of its addresses).
    fn connect(&self, host: String, port: u16) -> BoxFuture<io::Result<Box<dyn AsyncStream>>>;

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
        let session_config = config.session_config();
        let connector = Connector::for_hosts(config.tls, &config.session.hosts)?;
        let handle = Handle::new();
        let events = Events::new();
        let (first_tx, first) = reply();
        let session = ClientSession::new(session_config, Instant::now());
        let mut driver = Driver::new(session, handle.clone(), events.queue().clone(), first_tx);
        driver.set_read_ahead(config.read_ahead);
        let task = Task {
            driver,
            connector,
            runtime: runtime.clone(),
            write_timeout: config.write_timeout,
            link: None,
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

    /// Sends `body` to `destination`; resolves once it is queued for the wire.
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
        let command = |done| Command::Send {
            destination: destination.into(),
            body: body.into(),
            options,
            done,
        };
        self.handle.ask(command).await
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

    /// Begins a transaction; it aborts when dropped without `commit`.
    pub async fn transaction(&self) -> Result<Transaction, Error> {
        let id = self.handle.ask(|done| Command::Begin { done }).await?;
        Ok(Transaction {
            client: self.clone(),
            id,
            ended: false,
        })
    }

    /// The life-cycle events (connected, heart-beat timeout, connection
    /// lost, reconnecting, closed) as a `Stream`; up to 256 wait, later ones
    /// are dropped. Clones share one queue.
    pub fn events(&self) -> Events {
        self.events.clone()
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
        let handle = self.handle.clone();
        self.mailbox
            .recv()
            .await
            .map(|inner| Message::new(inner, handle))
    }

    /// Ends the subscription; resolves once UNSUBSCRIBE is queued.
    pub async fn unsubscribe(mut self) -> Result<(), Error> {
        self.ended = true;
        let id = self.id.clone();
        self.handle
            .ask(|done| Command::Unsubscribe {
                id,
                done: Some(done),
            })
            .await
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        let handle = &self.handle;
        self.mailbox
            .poll_pop(cx)
            .map(|m| m.map(|inner| Message::new(inner, handle.clone())))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.ended {
            let _ = self.handle.send(Command::Unsubscribe {
                id: self.id.clone(),
                done: None,
            });
        }
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

    async fn acknowledge(&self, nack: bool, transaction: Option<TxId>) -> Result<(), Error> {
        match self.0.acknowledgement(nack, transaction) {
            Some(command) => self.0.handle().ask(command).await,
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

/// One open connection: the stream and its TLS/WebSocket layers.
struct Link {
    io: LinkIo,
    layers: Layers,
    /// Raw bytes not yet written; the first `written` of them are.
    out: Vec<u8>,
    written: usize,
    /// Written bytes not yet flushed.
    unflushed: bool,
    /// When the last write made progress, while bytes wait.
    progress: Option<Instant>,
}

/// Raw bytes the task holds for the socket before it stops taking more from
/// the session (whose outgoing limit then holds callers back).
const OUT_HIGH_WATER: usize = 256 * 1024;

/// What a link moves bytes over.
enum LinkIo {
    Stream(Box<dyn AsyncStream>),
    /// A multicast group: `out` holds no bytes, `datagrams` do.
    Datagram {
        socket: Box<dyn AsyncDatagram>,
        group: SocketAddr,
        datagrams: VecDeque<Bytes>,
    },
}

impl Link {
    fn new(io: LinkIo, layers: Layers) -> Link {
        Link {
            io,
            layers,
            out: Vec::new(),
            written: 0,
            unflushed: false,
            progress: None,
        }
    }

    fn pending(&self) -> usize {
        match &self.io {
            LinkIo::Datagram { datagrams, .. } => datagrams.iter().map(Bytes::len).sum(),
            LinkIo::Stream(_) => self.out.len() - self.written,
        }
    }

    /// Reads raw bytes (one datagram, for multicast).
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match &mut self.io {
            LinkIo::Stream(stream) => Pin::new(stream).poll_read(cx, buf),
            LinkIo::Datagram { socket, .. } => socket.poll_recv(cx, buf),
        }
    }

    /// Moves what the layers made into the bytes to write.
    fn take_output(&mut self, now: Instant) {
        if let LinkIo::Datagram { datagrams, .. } = &mut self.io {
            let more = self.layers.take_datagrams();
            if !more.is_empty() {
                datagrams.extend(more);
                self.progress.get_or_insert(now);
            }
            return;
        }
        let more = self.layers.take_output();
        if more.is_empty() {
            return;
        }
        if self.written == self.out.len() {
            self.out = more;
        } else {
            // Drop what is written, so a steady partial drain cannot grow
            // the buffer (at most the high-water mark and a chunk remain).
            self.out.drain(..self.written);
            self.out.extend_from_slice(&more);
        }
        self.written = 0;
        self.progress.get_or_insert(now);
    }

    /// Writes what it can without waiting; `Ready(Ok(()))` when it made
    /// progress, `Pending` when the socket takes nothing now (or nothing
    /// waits).
    fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut progressed = false;
        let stream = match &mut self.io {
            LinkIo::Stream(stream) => stream,
            LinkIo::Datagram {
                socket,
                group,
                datagrams,
            } => {
                while let Some(datagram) = datagrams.front() {
                    match socket.poll_send_to(cx, datagram, *group) {
                        Poll::Ready(Ok(_)) => {
                            datagrams.pop_front();
                            progressed = true;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => break,
                    }
                }
                if !progressed {
                    return Poll::Pending;
                }
                self.progress = (!datagrams.is_empty()).then(Instant::now);
                return Poll::Ready(Ok(()));
            }
        };
        while self.written < self.out.len() {
            match Pin::new(&mut *stream).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.unflushed = true;
                    progressed = true;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
            if self.unflushed {
                match Pin::new(&mut *stream).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.unflushed = false,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
        }
        if progressed {
            self.progress = (self.pending() > 0).then(Instant::now);
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// When waiting bytes count as a failed write.
    fn write_deadline(&self, timeout: Duration) -> Option<Instant> {
        self.progress.map(|at| at + timeout)
    }
}

/// What woke the task: every source that was ready in one poll, so a busy
/// one (callers flooding commands, say) cannot starve the others.
#[derive(Default)]
struct Wakeup {
    input: Option<Option<Input>>,
    read: Option<io::Result<usize>>,
    wrote: Option<io::Result<()>>,
    timer: bool,
}

impl Wakeup {
    fn is_empty(&self) -> bool {
        self.input.is_none() && self.read.is_none() && self.wrote.is_none() && !self.timer
    }
}

/// The background task: the driver, the socket, the timer.
struct Task {
    driver: Driver,
    connector: Connector,
    runtime: Arc<dyn Runtime>,
    write_timeout: Duration,
    link: Option<Link>,
}

impl Task {
    async fn run(mut self) {
        let input = self.driver.handle().input().clone();
        let mut buf = vec![0; 64 * 1024];
        let mut timer: Option<(Instant, BoxFuture<()>)> = None;
        loop {
            self.dial().await;
            let running = self.driver.drain_events();
            if !running {
                self.transmit();
                self.finish().await;
                break;
            }
            if self.driver.take_link_lost() {
                self.link = None;
            }
            if self.transmit() {
                // The session has local answers to hand out first.
                continue;
            }
            let write_deadline = self
                .link
                .as_ref()
                .and_then(|link| link.write_deadline(self.write_timeout));
            let deadline = [self.driver.session.poll_timeout(), write_deadline]
                .into_iter()
                .flatten()
                .min();
            if timer.as_ref().map(|(at, _)| *at) != deadline {
                timer = deadline.map(|at| (at, self.runtime.sleep_until(at)));
            }
            let reading = self.driver.may_read();
            // Reading, writing, commands and timers all wait here together:
            // a peer that stops reading until it has written is still read.
            let wakeup = poll_fn(|cx| {
                let mut wakeup = Wakeup::default();
                if let Poll::Ready(item) = input.poll_pop(cx) {
                    wakeup.input = Some(item);
                }
                if let Some(link) = &mut self.link {
                    if let Poll::Ready(wrote) = link.poll_write(cx) {
                        wakeup.wrote = Some(wrote);
                    }
                    if reading {
                        if let Poll::Ready(read) = link.poll_read(cx, &mut buf) {
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
            let now = Instant::now();
            if let Some(Err(e)) = wakeup.wrote {
                self.write_failed(e);
            }
            if let Some(read) = wakeup.read {
                // Nothing to take when a failed write dropped the link.
                self.received(read, &buf);
            }
            match wakeup.input {
                Some(None) => break,
                Some(Some(item)) => self.handle(item),
                None => {}
            }
            if wakeup.timer {
                timer = None;
                // Asked afresh: a write in this same wake-up moves it.
                let write_deadline = self
                    .link
                    .as_ref()
                    .and_then(|link| link.write_deadline(self.write_timeout));
                if write_deadline.is_some_and(|at| at <= now) {
                    self.write_failed(io::ErrorKind::TimedOut.into());
                }
            }
            // Take whatever else is already waiting before the timers run.
            while let Ok(item) = input.pop(Some(Duration::ZERO)) {
                self.handle(item);
            }
            self.driver.session.handle_timeout(now.max(Instant::now()));
        }
        self.link = None;
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Command(command) => self.driver.execute(command),
            Input::Wake => {
                self.driver.update_pause(Instant::now());
            }
            // Bytes come from the task's own reads.
            Input::Bytes { .. } | Input::Eof { .. } => {}
        }
    }

    fn write_failed(&mut self, error: io::Error) {
        self.link = None;
        self.driver
            .session
            .handle_transport_error(Instant::now(), format!("write failed: {error}"));
    }

    fn received(&mut self, read: io::Result<usize>, buf: &[u8]) {
        let now = Instant::now();
        let Some(link) = &mut self.link else { return };
        let session = &mut self.driver.session;
        let n = match read {
            // An empty datagram is no end (the group member counts it).
            Ok(0) if matches!(link.io, LinkIo::Stream(_)) => {
                self.link = None;
                return session.handle_closed(now);
            }
            Ok(n) => n,
            Err(e) => {
                self.link = None;
                return session.handle_transport_error(now, e.to_string());
            }
        };
        let received = link.layers.receive(&buf[..n]);
        session.note_dropped_datagrams(link.layers.take_dropped());
        // What the layers answer (TLS records, WebSocket pongs) goes out in
        // turn with everything else.
        link.take_output(now);
        if !self.driver.received(now, received) {
            self.link = None;
        }
    }

    async fn dial(&mut self) {
        while let Some(dial) = self.driver.session.poll_dial(Instant::now()) {
            match self.open(&dial).await {
                Ok((link, early)) => {
                    let session = &mut self.driver.session;
                    session.handle_connected(Instant::now());
                    if !early.is_empty() {
                        session.handle_input(Instant::now(), &early);
                    }
                    self.link = Some(link);
                }
                Err(e) => self
                    .driver
                    .session
                    .handle_transport_error(Instant::now(), e.to_string()),
            }
        }
    }

    /// Connects and runs the handshakes, within the dial's timeout; gives
    /// the link and any STOMP bytes that came with the handshakes' end.
    async fn open(&mut self, dial: &Dial) -> io::Result<(Link, Vec<u8>)> {
        let deadline = Instant::now() + dial.timeout;
        let layers = self.connector.layers(&dial.endpoint)?;
        let endpoint = &dial.endpoint;
        if let Some(options) = layers.multicast() {
            let socket = options.open()?;
            socket.set_nonblocking(true)?;
            let io = LinkIo::Datagram {
                socket: self.runtime.udp(socket)?,
                group: SocketAddr::V4(options.group),
                datagrams: VecDeque::new(),
            };
            return Ok((Link::new(io, layers), Vec::new()));
        }
        let connect = self.runtime.connect(endpoint.host.clone(), endpoint.port);
        let stream = before(&*self.runtime, deadline, connect).await??;
        let mut link = Link::new(LinkIo::Stream(stream), layers);
        let mut early = Vec::new();
        let mut buf = vec![0; 16 * 1024];
        loop {
            let LinkIo::Stream(stream) = &mut link.io else {
                unreachable!("a stream link")
            };
            let out = link.layers.take_output();
            before(&*self.runtime, deadline, write_all(stream, &out)).await??;
            if link.layers.is_ready() {
                return Ok((link, early));
            }
            let n = before(&*self.runtime, deadline, read(stream, &mut buf)).await??;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed during the handshake",
                ));
            }
            let (data, _) = link.layers.receive(&buf[..n])?;
            early.extend(data);
        }
    }

    /// Takes what the session has to send into the link's buffer, up to its
    /// high-water mark; the rest waits in the session, and so do commands
    /// that find no room there. The socket is written in the task's poll.
    fn transmit(&mut self) -> bool {
        let mut answered = false;
        loop {
            let session = &mut self.driver.session;
            while self
                .link
                .as_ref()
                .is_none_or(|link| link.pending() < OUT_HIGH_WATER)
            {
                let now = Instant::now();
                let Some(bytes) = session.poll_transmit(now) else {
                    break;
                };
                // Without a transport the bytes are dropped: the session
                // resends what a new connection needs.
                let Some(link) = &mut self.link else { continue };
                match link.layers.send(&bytes) {
                    Ok(()) => {
                        link.take_output(now);
                        // A multicast group member answers some frames itself.
                        let local = link.layers.take_local();
                        if !local.is_empty() {
                            session.handle_input(now, &local);
                            answered = true;
                        }
                    }
                    Err(e) => {
                        self.link = None;
                        session.handle_transport_error(now, e.to_string());
                    }
                }
            }
            if !self.driver.run_deferred() {
                break;
            }
        }
        answered
    }

    /// The session ended: writes what is left (an ERROR's aftermath)
    /// within the write timeout.
    async fn finish(&mut self) {
        let Some(link) = &mut self.link else { return };
        let deadline = Instant::now() + self.write_timeout;
        let _ = before(
            &*self.runtime,
            deadline,
            poll_fn(|cx| match link.poll_write(cx) {
                Poll::Ready(Ok(())) if link.pending() > 0 => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Poll::Ready(result) => Poll::Ready(result),
                // Nothing left, or the socket takes nothing now.
                Poll::Pending if link.pending() == 0 => Poll::Ready(Ok(())),
                Poll::Pending => Poll::Pending,
            }),
        )
        .await;
    }
}

/// `future`'s output, or a timeout error at `deadline`.
async fn before<T>(
    runtime: &dyn Runtime,
    deadline: Instant,
    future: impl Future<Output = T>,
) -> io::Result<T> {
    let mut future = std::pin::pin!(future);
    let mut sleep = runtime.sleep_until(deadline);
    poll_fn(|cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(value));
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::ErrorKind::TimedOut.into())),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

async fn read(stream: &mut Box<dyn AsyncStream>, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, buf)).await
}

async fn write_all(stream: &mut Box<dyn AsyncStream>, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        let n = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, bytes)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[n..];
    }
    poll_fn(|cx| Pin::new(&mut *stream).poll_flush(cx)).await
}
