//! The connection driver: the loop between a transport and the
//! `ClientSession`, written once and sans-IO like the core, so that every
//! adapter runs the same steps and the whole of it is tested in simulated
//! time (`tests/driver.rs`).
//!
//! It owns the session, the TLS/WebSocket/multicast [`Layers`] of the
//! current transport, and everything the handles wait on. It never reads
//! the clock and never touches a socket:
//!
//! - **In**, each with `now`: the handles' [`Command`]s, a transport opened
//!   or not ([`handle_opened`](Driver::handle_opened),
//!   [`handle_open_failed`](Driver::handle_open_failed)), raw bytes read
//!   ([`handle_read`](Driver::handle_read)), the end of a transport
//!   ([`handle_ended`](Driver::handle_ended)), bytes written
//!   ([`handle_written`](Driver::handle_written)) and the timer
//!   ([`handle_timeout`](Driver::handle_timeout)). Every transport input
//!   names its [`LinkId`]; input for a transport that is no longer the
//!   current one is ignored, so a late report can never close a newer
//!   connection.
//! - **Out**: transports to open and close ([`poll_action`](Driver::poll_action)),
//!   raw bytes to write ([`poll_transmit`](Driver::poll_transmit): the
//!   session's own `Bytes` for plain TCP, one datagram per chunk for
//!   multicast), how much may be read ([`read_budget`](Driver::read_budget)),
//!   the next deadline ([`poll_timeout`](Driver::poll_timeout)), and the
//!   answers, messages and life-cycle events, which go straight into the
//!   handles' queues.
//!
//! An adapter's loop: after any input, take every action, then every chunk
//! to write, then the deadline and the read budget; wait for the first of
//! them; hand in what happened. Stop once [`is_finished`](Driver::is_finished).
//!
//! What it decides, once for every adapter: which host to open (the
//! session's dial), the handshakes, when a transport is done for (read or
//! write failure, a write that makes no progress for the write timeout,
//! the session's own verdicts), reading less once a subscription is full
//! (back-pressure), holding commands while the outgoing queue is full or
//! the connection is down, and flushing what is left at the end.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stomp_proto::client::{
    self as core, AckHandle, ClientSession, CloseReason, CommandError, Dial, Event, LinkId,
    ReceiptId, RequestError, SessionInfo, SubscriptionId, TxId,
};
use stomp_proto::uri::Endpoint;

use crate::error::Error;
use crate::layers::{Connector, Layers};
use crate::multicast;
use crate::queue::Queue;
use crate::reply::{reply, Answer};
use crate::requests::Requests;
use crate::window::Window;
use crate::{Config, EventLog, Events};

pub use crate::handle::{Command, Done, Handle, Health, Input, Lifecycle, SubscriptionHealth};

/// Raw bytes the driver lets wait for the transport (handed out and not
/// yet written) before it takes no more from the session, whose outgoing
/// limit then holds callers back.
pub const OUT_HIGH_WATER: usize = 256 * 1024;

/// Frames the session keeps tapped between two looks of the driver.
const TAP_BUFFER: usize = 4096;

/// Frames a reader of the tap may leave unread before it misses some.
pub const TAP_CAPACITY: usize = 4096;

/// What to open for a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A TCP connection to `host:port` (any of its addresses); TLS and
    /// WebSocket run over it inside the driver.
    Tcp {
        /// The host name or address.
        host: String,
        /// The port.
        port: u16,
        /// How to set the socket up (see [`crate::tcp`]).
        options: crate::TcpOptions,
    },
    /// A UDP socket joined to a multicast group (open it with
    /// [`multicast::Options::open`]); each chunk to write is one datagram
    /// for [`Options::group`](multicast::Options::group), each datagram
    /// read is one [`handle_read`](Driver::handle_read).
    Udp(multicast::Options),
}

/// What the adapter is asked to do with its transports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open `target` for `link`, within `timeout` (the driver fails the
    /// dial itself at that deadline; an adapter that connects blocking
    /// passes it to its connect call). Then call
    /// [`handle_opened`](Driver::handle_opened) or
    /// [`handle_open_failed`](Driver::handle_open_failed).
    Open {
        /// The link it will be.
        link: LinkId,
        /// What to open.
        target: Target,
        /// How long opening may take.
        timeout: Duration,
    },
    /// Drop `link`'s transport (close the socket, stop its threads, cancel
    /// a connect still under way).
    Close {
        /// Which.
        link: LinkId,
    },
}

/// Who waits for a receipt.
#[derive(Debug)]
enum Waiter {
    /// A send, COMMIT or ABORT.
    Done(Done<()>),
    /// A subscription asked with a receipt.
    Subscribed(SubscriptionId, Done<SubscriptionId>),
    /// A BEGIN asked with a receipt.
    Begun(TxId, Done<TxId>),
    /// A request's SEND, asked with a receipt: a failure fails the
    /// request (named by its `correlation-id`); a receipt changes nothing,
    /// the request waits for its reply.
    Request(String),
}

impl Waiter {
    fn answer(self, result: Result<(), Error>) {
        match self {
            Waiter::Done(done) => done.send(result),
            Waiter::Subscribed(id, done) => done.send(result.map(|()| id)),
            Waiter::Begun(tx, done) => done.send(result.map(|()| tx)),
            // Answered through the requests.
            Waiter::Request(_) => {}
        }
    }
}

impl Command {
    /// The body octets of the frame it queues, if it queues one (every
    /// command but `Stats` and `Close`).
    fn queues(&self) -> Option<usize> {
        match self {
            Command::Send { body, .. } | Command::Request { body, .. } => Some(body.len()),
            Command::Stats { .. }
            | Command::Health { .. }
            | Command::Close
            | Command::Unhandled { .. }
            | Command::Tap { .. } => None,
            _ => Some(0),
        }
    }

    /// Answers it with `error`, whatever it is (a send nobody waits for
    /// tells `window`).
    fn fail(self, window: &Window, error: Error) {
        match self {
            Command::Send {
                done: Some(done), ..
            }
            | Command::Ack {
                done: Some(done), ..
            }
            | Command::Disconnect { done } => done.send(Err(error)),
            Command::Subscribe { done, .. } => done.send(Err(error)),
            Command::Begin { done, .. } => done.send(Err(error)),
            Command::AckId { done, .. } => done.send(Err(error)),
            Command::Request { done, .. } => done.send(Err(error)),
            Command::Unsubscribe { done, .. } | Command::End { done, .. } => {
                if let Some(done) = done {
                    done.send(Err(error));
                }
            }
            Command::Send {
                done: None, credit, ..
            }
            | Command::Ack {
                done: None, credit, ..
            } => window.fail(credit, error),
            // Dropped unanswered: the caller sees the end.
            Command::Stats { .. }
            | Command::Health { .. }
            | Command::Close
            | Command::Unhandled { .. }
            | Command::Tap { .. } => {}
        }
    }
}

/// A live subscription's mailbox, and what it received when.
#[derive(Debug)]
struct Mailbox {
    queue: Arc<Queue<core::Message>>,
    /// When it was made, made again, or its connection came up.
    since: Instant,
    last: Option<Instant>,
    delivered: u64,
    resubscribed: u64,
}

impl Mailbox {
    fn new(queue: Arc<Queue<core::Message>>, now: Instant) -> Mailbox {
        Mailbox {
            queue,
            since: now,
            last: None,
            delivered: 0,
            resubscribed: 0,
        }
    }

    /// When the watchdog makes it again, if nothing comes first.
    fn due(&self, idle: Duration) -> Instant {
        self.last.map_or(self.since, |last| last.max(self.since)) + idle
    }
}

/// A command held back, and until when it may wait for the connection.
#[derive(Debug)]
struct Held {
    command: Command,
    /// Set while the connection is down: when waiting ends in failure.
    until: Option<Instant>,
    since: Instant,
}

/// The current transport.
#[derive(Debug)]
struct Link {
    id: LinkId,
    layers: Layers,
    /// The transport is open (TCP connected, or the UDP socket made).
    opened: bool,
    /// The handshakes are done and the session was told.
    ready: bool,
    /// Raw bytes ready to hand out.
    out: VecDeque<Bytes>,
    /// Raw bytes taken from the layers and not yet written.
    unwritten: usize,
    /// When writing last made progress, while bytes wait.
    progress: Option<Instant>,
    /// Raw bytes the transport reported read.
    read: u64,
}

impl Link {
    fn take_layers_output(&mut self, now: Instant) {
        while let Some(chunk) = self.layers.pop_output() {
            if self.unwritten == 0 {
                self.progress = Some(now);
            }
            self.unwritten += chunk.len();
            self.out.push_back(chunk);
        }
    }
}

/// A driver just made by [`Driver::start`].
#[derive(Debug)]
pub struct Started {
    /// The driver, for the adapter's loop.
    pub driver: Driver,
    /// Its life-cycle events, for the client.
    pub events: Events,
    /// CONNECTED's details, or why the first connect failed.
    pub first: Answer<Result<SessionInfo, Error>>,
}

/// The driver proper; see the module docs.
#[derive(Debug)]
pub struct Driver {
    session: ClientSession,
    connector: Connector,
    handle: Handle,
    lifecycle: Arc<EventLog>,
    first_connect: Option<Done<SessionInfo>>,
    mailboxes: HashMap<SubscriptionId, Mailbox>,
    /// Where MESSAGEs for no subscription of ours go, if anywhere.
    unhandled: Option<Arc<Queue<core::Message>>>,
    /// Requests waiting for replies.
    requests: Requests,
    /// The `server` header of the connection up now.
    server: Option<String>,
    /// How TCP sockets are set up.
    tcp: crate::TcpOptions,
    /// The idle watchdog's period.
    resubscribe_idle: Option<Duration>,
    /// The readers of the tap (the session taps while there are any).
    taps: Vec<Arc<Queue<core::Tapped>>>,
    waiting: HashMap<ReceiptId, Waiter>,
    disconnecting: Option<Done<()>>,
    /// Commands waiting for room in the session's outgoing queue, or for
    /// the connection, in order.
    held: VecDeque<Held>,
    /// Body octets of the held commands.
    held_bytes: usize,
    link: Option<Link>,
    actions: VecDeque<Action>,
    /// Reading is paused: a subscription is full.
    paused: bool,
    /// The link's `read` when reading was paused.
    paused_at: u64,
    read_ahead: u64,
    write_timeout: Duration,
    offline_wait: Option<Duration>,
    max_held: usize,
    /// The session has ended; the link is being flushed until this.
    closing: Option<Instant>,
    finished: bool,
}

impl Driver {
    /// A driver for `config`, answering `first_connect` once connected (or
    /// not), telling `lifecycle` what happens (events are dropped while it
    /// is full), and taking commands from a fresh handle. Bad TLS settings
    /// fail here, before any dial.
    fn new(
        config: &Config,
        now: Instant,
        lifecycle: Arc<EventLog>,
        first_connect: Done<SessionInfo>,
    ) -> Result<Driver, Error> {
        let session_config = config.session_config();
        let handle =
            Handle::new(config.send_window, session_config.max_frame).confirming(config.confirm);
        let connector = Connector::for_hosts(
            config.tls.clone(),
            config.websocket.clone(),
            &session_config.hosts,
        )?;
        let max_held = session_config.max_outgoing;
        let mut driver = Driver {
            session: ClientSession::new(session_config, now),
            connector,
            handle,
            lifecycle,
            first_connect: Some(first_connect),
            mailboxes: HashMap::new(),
            unhandled: None,
            requests: Requests::new(
                config.reply_destination.clone(),
                crate::config::random_seed(),
            ),
            server: None,
            taps: Vec::new(),
            tcp: config.tcp.clone(),
            resubscribe_idle: config.resubscribe_idle,
            waiting: HashMap::new(),
            disconnecting: None,
            held: VecDeque::new(),
            held_bytes: 0,
            link: None,
            actions: VecDeque::new(),
            paused: false,
            paused_at: 0,
            read_ahead: config.read_ahead as u64,
            write_timeout: config.write_timeout,
            offline_wait: config.offline_wait,
            max_held,
            closing: None,
            finished: false,
        };
        driver.step(now);
        Ok(driver)
    }

    /// A driver with a fresh handle and event queue: the driver, its
    /// life-cycle events, and the first connect's answer to wait for. Bad
    /// TLS settings fail here, before any dial.
    pub fn start(config: &Config, now: Instant) -> Result<Started, Error> {
        let events = Events::new();
        let (first_tx, first) = reply();
        let driver = Driver::new(config, now, events.log().clone(), first_tx)?;
        Ok(Started {
            driver,
            events,
            first,
        })
    }

    /// The handles' way in.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    // ---- inputs ------------------------------------------------------------

    /// Whatever came through the handles' queue.
    pub fn handle_input(&mut self, now: Instant, input: Input) {
        match input {
            // After the end only the counters are answered.
            Input::Command(command @ Command::Stats { .. }) => self.run(now, command),
            Input::Command(Command::Close) if self.finished => {}
            Input::Command(command) if self.finished => {
                command.fail(self.handle.window(), self.handle.closed());
            }
            Input::Command(command) => self.execute(now, command),
            Input::Wake => self.update_pause(now),
            Input::Read { link, bytes } => return self.handle_read(now, link, &bytes),
            Input::Written { link, n } => return self.handle_written(now, link, n),
            Input::Ended { link, error } => return self.handle_ended(now, link, error),
        }
        self.step(now);
    }

    /// `link`'s transport is open: the handshakes start (or, for plain TCP
    /// and multicast, CONNECT goes out).
    pub fn handle_opened(&mut self, now: Instant, link: LinkId) {
        let Some(current) = self.current(link) else {
            return;
        };
        if current.opened {
            return;
        }
        current.opened = true;
        current.take_layers_output(now);
        if current.layers.is_ready() {
            current.ready = true;
            self.session.handle_connected(now);
        }
        self.step(now);
    }

    /// `link`'s transport could not be opened.
    pub fn handle_open_failed(&mut self, now: Instant, link: LinkId, error: io::Error) {
        if self.current(link).is_some_and(|l| !l.opened) {
            self.session.handle_transport_error(now, error);
            self.step(now);
        }
    }

    /// Raw bytes read from `link` (one datagram, for multicast).
    pub fn handle_read(&mut self, now: Instant, link: LinkId, raw: &[u8]) {
        let Some(current) = self.current(link) else {
            return;
        };
        if !current.opened {
            return;
        }
        current.read += raw.len() as u64;
        let was_ready = current.layers.is_ready();
        let received = current.layers.receive(now, raw);
        let dropped = current.layers.take_dropped();
        // What the layers answer (TLS records, WebSocket pongs) goes out in
        // turn with everything else.
        current.take_layers_output(now);
        let becomes_ready = !was_ready && current.layers.is_ready();
        if becomes_ready {
            current.ready = true;
        }
        self.session.handle_dropped_datagrams(dropped);
        match received {
            Ok((data, ended)) => {
                if becomes_ready {
                    self.session.handle_connected(now);
                }
                if !data.is_empty() {
                    self.session.handle_input(now, &data);
                }
                if ended {
                    self.session.handle_closed(now);
                }
            }
            Err(e) => self.session.handle_transport_error(now, e),
        }
        self.step(now);
    }

    /// `link`'s transport ended: `None` when the peer closed it, the error
    /// when reading or writing failed.
    pub fn handle_ended(&mut self, now: Instant, link: LinkId, error: Option<io::Error>) {
        let Some(current) = self.current(link) else {
            return;
        };
        if !current.opened {
            return;
        }
        match error {
            None => self.session.handle_closed(now),
            Some(e) => self.session.handle_transport_error(now, e),
        }
        self.step(now);
    }

    /// `n` raw bytes handed out for `link` were written.
    pub fn handle_written(&mut self, now: Instant, link: LinkId, n: usize) {
        let Some(current) = self.current(link) else {
            return;
        };
        current.unwritten = current.unwritten.saturating_sub(n);
        current.progress = (current.unwritten > 0).then_some(now);
        self.step(now);
    }

    /// Runs what is due at `now`; a spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.write_deadline().is_some_and(|at| at <= now) {
            if self.closing.is_some() {
                self.close_link();
            } else {
                self.session.handle_transport_error(
                    now,
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no write progress for {:?}", self.write_timeout),
                    ),
                );
            }
        }
        if self.closing.is_some_and(|at| at <= now) {
            self.close_link();
        }
        self.expire_held(now);
        self.requests.expire(now);
        self.resubscribe_idle_ones(now);
        self.session.handle_timeout(now);
        self.step(now);
    }

    // ---- outputs -----------------------------------------------------------

    /// The next transport to open or close.
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next raw bytes to write to `link` (one datagram, for
    /// multicast); report them with [`handle_written`](Driver::handle_written)
    /// once written.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(LinkId, Bytes)> {
        let link = self.link.as_mut().filter(|l| l.opened)?;
        link.out.pop_front().map(|bytes| (link.id, bytes))
    }

    /// How many raw bytes the transport may read now: unbounded while no
    /// subscription is full; once one is, what is left of the read-ahead
    /// (0: read nothing until [`Input::Wake`]). Bytes left in the kernel's
    /// buffer while the application reads nothing can make it drop segments
    /// (small ones overrun the memory the advertised window promised), and
    /// the sender's retransmission backoff then stalls the connection for
    /// seconds after reading resumes; reading ahead keeps bursts out of the
    /// kernel. A transport that reads on a thread of its own counts the
    /// bytes it has read but not yet handed in against this.
    #[must_use]
    pub fn read_budget(&self) -> u64 {
        let Some(link) = &self.link else { return 0 };
        if !link.opened || self.closing.is_some() {
            return 0;
        }
        if !self.paused {
            return u64::MAX;
        }
        (self.paused_at + self.read_ahead).saturating_sub(link.read)
    }

    /// When [`handle_timeout`](Driver::handle_timeout) should next be
    /// called: the session's deadlines, a write that makes no progress, a
    /// held command's wait, the end of the final flush.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let held = self.held.iter().filter_map(|h| h.until).min();
        [
            self.session.poll_timeout(),
            self.write_deadline(),
            held,
            self.requests.deadline(),
            self.watchdog_deadline(),
            self.closing,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether the client has ended and its transport is closed: the
    /// adapter stops (after taking the last actions).
    pub fn is_finished(&self) -> bool {
        self.finished && self.link.is_none()
    }

    // ---- internals ---------------------------------------------------------

    /// When bytes waiting for the transport count as a failed write: the
    /// write timeout after the last progress, while any wait.
    fn write_deadline(&self) -> Option<Instant> {
        let link = self.link.as_ref().filter(|l| l.unwritten > 0)?;
        link.progress.map(|at| at + self.write_timeout)
    }

    fn current(&mut self, link: LinkId) -> Option<&mut Link> {
        self.link.as_mut().filter(|l| l.id == link)
    }

    /// Runs the consequences of an input until nothing changes: events to
    /// the handles (closing the transports they name), the next dial, the
    /// session's output into the layers, held commands that fit now.
    fn step(&mut self, now: Instant) {
        loop {
            let mut progressed = self.drain_events(now);
            if self.finished {
                self.flush_and_close(now);
                return;
            }
            if self.link.is_none() {
                if let Some(dial) = self.session.poll_dial(now) {
                    self.open(now, dial);
                    continue;
                }
            }
            progressed |= self.pull_transmit(now);
            progressed |= self.run_held(now);
            if !progressed {
                return;
            }
        }
    }

    fn open(&mut self, now: Instant, dial: Dial) {
        tracing::info!(host = %dial.endpoint, attempt = dial.attempt, "STOMP connecting");
        self.tell(Lifecycle::Connecting {
            host: dial.endpoint.clone(),
            attempt: dial.attempt,
        });
        let layers = match self.connector.layers(&dial.endpoint, now) {
            Ok(layers) => layers,
            Err(e) => return self.session.handle_transport_error(now, e),
        };
        let target = match layers.multicast() {
            Some(options) => Target::Udp(options.clone()),
            None => Target::Tcp {
                host: dial.endpoint.host.clone(),
                port: dial.endpoint.port,
                options: self.tcp.clone(),
            },
        };
        self.link = Some(Link {
            id: dial.link,
            layers,
            opened: false,
            ready: false,
            out: VecDeque::new(),
            unwritten: 0,
            progress: None,
            read: 0,
        });
        self.paused_at = 0;
        self.actions.push_back(Action::Open {
            link: dial.link,
            target,
            timeout: dial.timeout,
        });
    }

    /// Moves what the session has to send through the layers, up to the
    /// high-water mark; true when anything moved (or the multicast member
    /// answered locally: the session has input to act on).
    fn pull_transmit(&mut self, now: Instant) -> bool {
        let mut moved = false;
        loop {
            let Some(link) = self.link.as_mut().filter(|l| l.ready) else {
                // Without a transport the bytes are dropped: the session
                // resends what a new connection needs.
                while self.session.poll_transmit(now).is_some() {}
                return moved;
            };
            if link.unwritten >= OUT_HIGH_WATER {
                return moved;
            }
            let Some(bytes) = self.session.poll_transmit(now) else {
                return moved;
            };
            moved = true;
            if let Err(e) = link.layers.send(now, bytes) {
                self.session.handle_transport_error(now, e);
                return true;
            }
            link.take_layers_output(now);
            // A multicast group member answers some frames itself.
            let local = link.layers.take_local();
            if !local.is_empty() {
                self.session.handle_input(now, &local);
            }
        }
    }

    /// Carries out a command, or holds it back: while the session's
    /// outgoing queue has no room for it (or earlier commands wait), and
    /// while the connection is down (for [`Config::offline_wait`]).
    fn execute(&mut self, now: Instant, command: Command) {
        if let Command::Unsubscribe { id, .. } = &command {
            // Its messages stop at once, even if the frame has to wait: a
            // mailbox nobody empties must not pause reading.
            if let Some(mailbox) = self.mailboxes.remove(id) {
                mailbox.queue.close();
                self.update_pause(now);
            }
        }
        let Some(len) = command.queues() else {
            return self.run(now, command);
        };
        let offline = !self.session.is_connected();
        if offline && matches!(command, Command::Disconnect { .. }) {
            // Nothing to tell a broker we are not connected to.
            return self.run(now, command);
        }
        if !offline && self.held.is_empty() && self.session.has_room_for(len) {
            return self.run(now, command);
        }
        let until = if offline {
            match self.offline_wait {
                None => {
                    return command.fail(
                        self.handle.window(),
                        Error::Command(CommandError::NotConnected),
                    )
                }
                Some(wait) => Some(now + wait),
            }
        } else {
            None
        };
        if offline && !self.held.is_empty() && self.held_bytes + len > self.max_held {
            return command.fail(
                self.handle.window(),
                Error::Command(CommandError::Backpressure),
            );
        }
        self.held_bytes += len;
        self.held.push_back(Held {
            command,
            until,
            since: now,
        });
    }

    /// Runs the held commands that fit now, in order; true when any ran.
    fn run_held(&mut self, now: Instant) -> bool {
        let mut ran = false;
        while self.session.is_connected() {
            let Some(len) = self.held.front().and_then(|h| h.command.queues()) else {
                break;
            };
            if !self.session.has_room_for(len) {
                break;
            }
            let Some(held) = self.held.pop_front() else {
                break;
            };
            self.held_bytes -= len;
            self.run(now, held.command);
            ran = true;
        }
        if !self.session.is_connected() {
            // The connection went down while they waited for room: they
            // wait for the connection now.
            for held in self.held.iter_mut().filter(|h| h.until.is_none()) {
                match self.offline_wait {
                    Some(wait) => held.until = Some(now + wait),
                    None => held.until = Some(now),
                }
            }
        }
        ran
    }

    /// Fails the held commands whose wait for the connection is over.
    fn expire_held(&mut self, now: Instant) {
        while let Some(index) = self
            .held
            .iter()
            .position(|h| h.until.is_some_and(|at| at <= now))
        {
            let Some(held) = self.held.remove(index) else {
                break;
            };
            self.held_bytes -= held.command.queues().unwrap_or(0);
            let waited = now.saturating_duration_since(held.since);
            held.command.fail(
                self.handle.window(),
                match self.offline_wait {
                    None => Error::Command(CommandError::NotConnected),
                    Some(_) => Error::Offline { waited },
                },
            );
        }
    }

    fn run(&mut self, now: Instant, command: Command) {
        let session = &mut self.session;
        match command {
            Command::Send {
                destination,
                body,
                options,
                done,
                credit,
            } => match (session.send(&destination, body, options), done) {
                (Ok(Some(receipt)), Some(done)) => {
                    self.waiting.insert(receipt, Waiter::Done(done));
                }
                (Ok(_), Some(done)) => done.send(Ok(())),
                (Err(e), Some(done)) => done.send(Err(e.into())),
                (result, None) => self
                    .handle
                    .window()
                    .settle(credit, result.map(drop).map_err(Error::from)),
            },
            // Its caller stopped waiting before this ran.
            Command::Subscribe { mailbox, done, .. } if mailbox.is_closed() => {
                done.send(Err(Error::Closed(None)))
            }
            Command::Subscribe {
                destination,
                mut options,
                mailbox,
                done,
            } => match session.subscribe(&destination, {
                options.receipt |= self.handle.confirms();
                options
            }) {
                Ok((id, receipt)) => {
                    self.mailboxes
                        .insert(id.clone(), Mailbox::new(mailbox, now));
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
            Command::Unsubscribe { id, receipt, done } => {
                if let Some(mailbox) = self.mailboxes.remove(&id) {
                    mailbox.queue.close();
                }
                let receipt = (receipt || self.handle.confirms()) && done.is_some();
                let result = session.unsubscribe(&id, receipt);
                self.answer(result, done);
                self.update_pause(now);
            }
            Command::Ack {
                handle,
                nack,
                transaction,
                receipt,
                done,
                credit,
            } => {
                let receipt = receipt && done.is_some();
                let result = acknowledge(session, &handle, nack, transaction.as_ref(), receipt);
                match done {
                    Some(_) => self.answer(result, done),
                    None => self
                        .handle
                        .window()
                        .settle(credit, result.map(drop).map_err(Error::from)),
                }
            }
            Command::AckId {
                subscription,
                id,
                nack,
                done,
            } => {
                let result = session
                    .ack_handle(&subscription, &id)
                    .and_then(|handle| acknowledge(session, &handle, nack, None, true));
                self.answer(result, Some(done));
            }
            Command::Begin { id, done } => {
                match session.begin(id.as_deref(), self.handle.confirms()) {
                    Ok((tx, Some(receipt))) => {
                        self.waiting.insert(receipt, Waiter::Begun(tx, done));
                    }
                    Ok((tx, None)) => done.send(Ok(tx)),
                    Err(e) => done.send(Err(e.into())),
                }
            }
            Command::End { tx, commit, done } => {
                let wants_receipt = done.is_some();
                let result = if commit {
                    session.commit(&tx, wants_receipt)
                } else {
                    session.abort(&tx, wants_receipt)
                };
                self.answer(result, done);
            }
            Command::Disconnect { done } if !session.is_connected() => {
                self.disconnecting = Some(done);
                session.close();
            }
            Command::Disconnect { done } => match session.disconnect() {
                Ok(_) => self.disconnecting = Some(done),
                Err(e) => done.send(Err(e.into())),
            },
            Command::Request {
                destination,
                body,
                options,
                timeout,
                done,
            } => self.request(now, destination, body, options, timeout, done),
            Command::Unhandled { mailbox } => {
                if let Some(old) = self.unhandled.replace(mailbox) {
                    old.close();
                }
                self.update_pause(now);
            }
            Command::Tap { queue } => {
                self.taps.push(queue);
                self.session.set_tap(TAP_BUFFER);
            }
            Command::Health { done } => done.send(self.health(now)),
            Command::Stats { done } => done.send(self.session.stats().clone()),
            Command::Close => session.close(),
        }
    }

    /// The health check's answer.
    fn health(&self, now: Instant) -> Health {
        let ago = |at: Instant| now.saturating_duration_since(at);
        let subscriptions = self
            .session
            .subscriptions()
            .into_iter()
            .filter_map(|info| {
                let activity = self.mailboxes.get(&info.id)?;
                Some(SubscriptionHealth {
                    id: info.id,
                    destination: info.destination,
                    delivered: activity.delivered,
                    last_delivery: activity.last.map(ago),
                    subscribed: ago(activity.since),
                    resubscribed: activity.resubscribed,
                })
            })
            .collect();
        Health {
            connected: self.session.is_connected(),
            subscriptions,
            pending_receipts: self.session.pending_receipts(),
            pending_replies: self.requests.len(),
            outgoing_bytes: self.session.outgoing_len()
                + self.link.as_ref().map_or(0, |l| l.unwritten),
            held_calls: self.held.len(),
        }
    }

    /// When the idle watchdog next looks, if it is on and connected.
    fn watchdog_deadline(&self) -> Option<Instant> {
        let idle = self.resubscribe_idle?;
        if !self.session.is_connected() {
            return None;
        }
        self.mailboxes.values().map(|m| m.due(idle)).min()
    }

    /// The idle watchdog: makes again every subscription that received
    /// nothing for its period while connected.
    fn resubscribe_idle_ones(&mut self, now: Instant) {
        let Some(idle) = self.resubscribe_idle else {
            return;
        };
        if !self.session.is_connected() {
            return;
        }
        for (id, mailbox) in &mut self.mailboxes {
            if mailbox.due(idle) > now {
                continue;
            }
            // Refused (no room now), it is tried again a period later.
            mailbox.since = now;
            if let Err(e) = self.session.resubscribe(id) {
                tracing::debug!(error = %e, subscription = %id, "STOMP watchdog could not resubscribe");
                continue;
            }
            mailbox.resubscribed += 1;
            let destination = self
                .session
                .subscriptions()
                .into_iter()
                .find(|info| info.id == *id)
                .map(|info| info.destination)
                .unwrap_or_default();
            tracing::warn!(subscription = %id, %destination, "STOMP subscription idle past the watchdog: subscribed again");
            self.lifecycle.offer(Lifecycle::Resubscribed {
                id: id.clone(),
                destination,
            });
        }
    }

    /// Sends a request: `reply-to` where replies reach us, a
    /// `correlation-id` to know its reply by.
    fn request(
        &mut self,
        now: Instant,
        destination: String,
        body: Bytes,
        mut options: core::SendOptions,
        timeout: Duration,
        done: Done<core::Message>,
    ) {
        let reply_to = match self
            .requests
            .reply_to(&mut self.session, self.server.as_deref())
        {
            Ok(reply_to) => reply_to,
            Err(e) => return done.send(Err(e)),
        };
        let given = options
            .headers
            .iter()
            .find(|(name, _)| name == "correlation-id")
            .map(|(_, value)| value.clone());
        let correlation = match given {
            Some(id) if self.requests.is_pending(&id) => {
                return done.send(Err(Error::DuplicateCorrelation(id)))
            }
            Some(id) => id,
            None => {
                let id = self.requests.correlation();
                options.headers.push(("correlation-id".into(), id.clone()));
                id
            }
        };
        options.headers.retain(|(name, _)| name != "reply-to");
        options.headers.push(("reply-to".into(), reply_to));
        match self.session.send(&destination, body, options) {
            Ok(receipt) => {
                if let Some(receipt) = receipt {
                    self.waiting
                        .insert(receipt, Waiter::Request(correlation.clone()));
                }
                self.requests.wait(correlation, done, now + timeout);
            }
            Err(e) => done.send(Err(e.into())),
        }
    }

    /// Hands a MESSAGE to its subscription, the request it answers, or
    /// the unhandled stream.
    fn deliver(&mut self, now: Instant, message: core::Message) {
        let id = message.subscription.clone();
        if let Some(mailbox) = self.mailboxes.get_mut(&id) {
            mailbox.last = Some(now);
            mailbox.delivered += 1;
            if !mailbox.queue.push(message) {
                // Its owner is gone (a subscribe call dropped before its
                // answer): end the subscription.
                self.mailboxes.remove(&id);
                let _ = self.session.unsubscribe(&id, false);
            } else if mailbox.queue.is_full() {
                self.update_pause(now);
            }
            return;
        }
        let Some(message) = self.requests.answer(message) else {
            return;
        };
        if self.requests.is_reply_subscription(&id) {
            tracing::debug!(correlation = %message.frame.header("correlation-id").unwrap_or(""), "STOMP reply nobody waits for dropped");
            return;
        }
        match &self.unhandled {
            Some(mailbox) if mailbox.push(message) => {
                if mailbox.is_full() {
                    self.update_pause(now);
                }
            }
            _ => {
                tracing::debug!(subscription = %id, "STOMP MESSAGE for no subscription dropped");
                if self.unhandled.take().is_some() {
                    self.update_pause(now);
                }
            }
        }
    }

    /// Answers `done` with `result`: at once, or when the receipt it asked
    /// for comes.
    fn answer(&mut self, result: Result<Option<ReceiptId>, CommandError>, done: Option<Done<()>>) {
        match (result, done) {
            (Ok(Some(receipt)), Some(done)) => {
                self.waiting.insert(receipt, Waiter::Done(done));
            }
            (Ok(_), Some(done)) => done.send(Ok(())),
            (Err(e), Some(done)) => done.send(Err(e.into())),
            (_, None) => {}
        }
    }

    /// Reading pauses while any subscription's mailbox is full.
    fn update_pause(&mut self, now: Instant) {
        if self.unhandled.as_ref().is_some_and(|m| m.is_closed()) {
            self.unhandled = None;
        }
        let full = self
            .mailboxes
            .values()
            .map(|m| &m.queue)
            .chain(&self.unhandled)
            .any(|m| m.is_full());
        if full == self.paused {
            return;
        }
        self.paused = full;
        self.paused_at = self.link.as_ref().map_or(0, |l| l.read);
        self.session.handle_reading_paused(now, full);
    }

    /// Hands what the session tapped to every reader of the tap.
    fn drain_tap(&mut self) {
        if self.taps.is_empty() {
            return;
        }
        while let Some(tapped) = self.session.poll_tap() {
            for queue in &self.taps {
                queue.offer(tapped.clone());
            }
        }
        self.taps.retain(|queue| !queue.is_closed());
        if self.taps.is_empty() {
            self.session.set_tap(0);
        }
    }

    /// Hands out the session's events; true when there were any.
    fn drain_events(&mut self, now: Instant) -> bool {
        self.drain_tap();
        let mut any = false;
        while let Some(event) = self.session.poll_event() {
            any = true;
            match event {
                Event::Message(message) => self.deliver(now, message),
                Event::Receipt(receipt) => {
                    if let Some(waiter) = self.waiting.remove(&receipt) {
                        waiter.answer(Ok(()));
                    }
                }
                Event::RequestFailed { receipt, error } => match self.waiting.remove(&receipt) {
                    Some(Waiter::Request(correlation)) => {
                        self.requests.fail(&correlation, Error::Request(error))
                    }
                    Some(waiter) => waiter.answer(Err(Error::Request(error))),
                    None => {}
                },
                Event::Connected(info) => {
                    tracing::info!(
                        endpoint = %info.endpoint.as_ref().map(Endpoint::to_string).unwrap_or_default(),
                        version = %info.version,
                        server = %info.server.as_deref().unwrap_or(""),
                        reconnected = info.reconnected,
                        "STOMP connected"
                    );
                    self.handle.set_connects(self.session.stats().connects);
                    self.server = info.server.clone();
                    // The subscriptions are (made again) on this connection.
                    for mailbox in self.mailboxes.values_mut() {
                        mailbox.since = now;
                    }
                    if let Some(first) = self.first_connect.take() {
                        first.send(Ok(info.clone()));
                    }
                    self.tell(Lifecycle::Connected(info));
                }
                Event::HeartbeatTimeout => {
                    tracing::warn!("STOMP broker silent past the heart-beat grace");
                    self.tell(Lifecycle::HeartbeatTimeout)
                }
                Event::DialFailed { link, host, reason } => {
                    tracing::warn!(%reason, host = %host.as_ref().map(Endpoint::to_string).unwrap_or_default(), "STOMP dial failed");
                    self.close_named(link);
                    self.tell(Lifecycle::DialFailed { host, reason });
                }
                Event::ConnectionLost { link, reason } => {
                    tracing::warn!(%reason, "STOMP connection lost");
                    self.handle.set_disconnected();
                    self.close_named(link);
                    // Replies to this connection can no longer come.
                    self.requests
                        .fail_all(&Error::Request(RequestError::ConnectionLost));
                    self.tell(Lifecycle::ConnectionLost(reason));
                }
                Event::Reconnecting {
                    attempt,
                    host,
                    delay,
                } => {
                    tracing::info!(attempt, %host, delay_ms = delay.as_millis() as u64, "STOMP reconnecting");
                    self.tell(Lifecycle::Reconnecting {
                        attempt,
                        host,
                        delay,
                    })
                }
                Event::Closed(reason) => {
                    tracing::info!(%reason, "STOMP client closed");
                    self.finish(reason);
                    return true;
                }
                other => tracing::debug!(event = ?other, "STOMP event not handled"),
            }
        }
        any
    }

    /// Closes the transport an event names, if it is the current one.
    fn close_named(&mut self, link: LinkId) {
        if self.link.as_ref().is_some_and(|l| l.id == link) {
            self.close_link();
        }
    }

    fn close_link(&mut self) {
        if let Some(link) = self.link.take() {
            self.actions.push_back(Action::Close { link: link.id });
        }
        self.closing = None;
        if self.finished {
            self.handle.close_input();
        }
    }

    /// After the end: the link stays until what was handed out is written
    /// (an ERROR's aftermath, the last frames before a close), within the
    /// write timeout.
    fn flush_and_close(&mut self, now: Instant) {
        match &self.link {
            Some(link) if link.opened && link.unwritten > 0 => {
                self.closing.get_or_insert(now + self.write_timeout);
            }
            Some(_) => self.close_link(),
            None => self.handle.close_input(),
        }
    }

    /// Answers everyone still waiting.
    fn finish(&mut self, reason: CloseReason) {
        self.finished = true;
        // Recorded first: whoever wakes up below reads it.
        self.handle
            .record_end(reason.clone(), self.session.stats().clone());
        // Sends that do not wait for an answer now fail with that end.
        self.handle.window().close();
        if let Some(first) = self.first_connect.take() {
            first.send(Err(Error::Connect(reason.clone())));
        }
        if let Some(done) = self.disconnecting.take() {
            done.send(match &reason {
                CloseReason::Disconnected | CloseReason::Local => Ok(()),
                other => Err(Error::Closed(Some(other.clone()))),
            });
        }
        for (_, waiter) in self.waiting.drain() {
            waiter.answer(Err(Error::Request(RequestError::ConnectionLost)));
        }
        for (_, mailbox) in self.mailboxes.drain() {
            mailbox.queue.close();
        }
        if let Some(mailbox) = self.unhandled.take() {
            mailbox.close();
        }
        self.drain_tap();
        for queue in self.taps.drain(..) {
            queue.close();
        }
        self.requests.fail_all(&Error::Closed(Some(reason.clone())));
        for held in self.held.drain(..) {
            held.command
                .fail(self.handle.window(), Error::Closed(Some(reason.clone())));
        }
        self.held_bytes = 0;
        // Commands that come after are refused with the reason above (the
        // queue stays open while the link is flushed: its reports come
        // through it), then dropped once the queue closes.
        self.handle.set_disconnected();
        self.tell(Lifecycle::Closed(reason));
        self.lifecycle.close();
    }

    /// Life-cycle events are dropped when nobody reads them.
    fn tell(&self, event: Lifecycle) {
        self.lifecycle.offer(event);
    }
}

/// ACK, or with `nack` NACK, `handle` in the session.
fn acknowledge(
    session: &mut ClientSession,
    handle: &AckHandle,
    nack: bool,
    transaction: Option<&TxId>,
    receipt: bool,
) -> Result<Option<ReceiptId>, CommandError> {
    if nack {
        session.nack(handle, transaction, receipt)
    } else {
        session.ack(handle, transaction, receipt)
    }
}

/// Chunks given to one vectored write, at most.
const MAX_SLICES: usize = 64;

/// The slices of one vectored write of `out`, whose first chunk is written
/// up to `offset` (for an adapter's writes; then [`consume_written`]).
pub fn io_slices(out: &VecDeque<Bytes>, offset: usize) -> Vec<io::IoSlice<'_>> {
    out.iter()
        .take(MAX_SLICES)
        .enumerate()
        .map(|(i, chunk)| io::IoSlice::new(if i == 0 { &chunk[offset..] } else { chunk }))
        .collect()
}

/// Drops `n` written octets from the front of `out`, whose first chunk is
/// written up to `offset` (for an adapter's vectored writes).
pub fn consume_written(out: &mut VecDeque<Bytes>, offset: &mut usize, mut n: usize) {
    while let Some(front) = out.front() {
        let left = front.len() - *offset;
        if n < left {
            *offset += n;
            return;
        }
        n -= left;
        *offset = 0;
        out.pop_front();
    }
}
