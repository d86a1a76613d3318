//! [`ServerSession`]: the server side of one STOMP connection, sans IO.
//!
//! It negotiates the version and heart-beats, decodes and validates client frames
//! into typed [`Request`]s, answers receipts, and encodes CONNECTED, MESSAGE,
//! RECEIPT and ERROR. It does no routing: a broker (or a scripted test peer)
//! built on it decides what a SEND or SUBSCRIBE means.
//!
//! The driver's loop: feed received octets to [`handle_input`](ServerSession::handle_input),
//! call [`handle_timeout`](ServerSession::handle_timeout) at
//! [`poll_timeout`](ServerSession::poll_timeout), drain
//! [`poll_event`](ServerSession::poll_event) and
//! [`poll_transmit`](ServerSession::poll_transmit), and close the transport once
//! [`is_finished`](ServerSession::is_finished) says so.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::ack::AckMode;
use crate::decode::{Decoder, Item, Limits};
use crate::frame::{Command, Frame};
use crate::heartbeat::{self, HeartBeat, Timers};
use crate::outbox::Outbox;
use crate::version::{Version, VersionSet};

/// How a [`ServerSession`] behaves.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Versions the server speaks.
    pub versions: VersionSet,
    /// The server's `heart-beat` offer (`sx,sy`), unless
    /// [`heartbeat_echo`](ServerConfig::heartbeat_echo) is set.
    pub heartbeat: HeartBeat,
    /// Answer each client's `heart-beat` with its own values swapped
    /// instead of a fixed offer, as ActiveMQ does: the server sends as often
    /// as the client asked to receive and expects what the client offered to
    /// send, each at least this floor (0, no heart-beats, stays 0). `None`
    /// (the default) offers [`heartbeat`](ServerConfig::heartbeat).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use stomp_proto::server::{ServerConfig, ServerEvent, ServerSession};
    ///
    /// let config = ServerConfig {
    ///     heartbeat_echo: Some(Duration::from_millis(100)),
    ///     ..ServerConfig::default()
    /// };
    /// let now = Instant::now();
    /// let mut server = ServerSession::new(config, now);
    /// server.handle_input(now, b"CONNECT\naccept-version:1.2\nheart-beat:10,1000\n\n\0");
    /// assert!(matches!(server.poll_event(), Some(ServerEvent::Connect(_))));
    /// server.accept(now, None);
    /// let connected = server.poll_transmit(now).unwrap();
    /// assert!(String::from_utf8_lossy(&connected).contains("heart-beat:1000,100\n"));
    /// ```
    pub heartbeat_echo: Option<Duration>,
    /// A silent client is dropped after this many receive intervals.
    pub heartbeat_grace: f64,
    /// The `server` header of CONNECTED, if any.
    pub server: Option<String>,
    /// Decoder limits for client frames.
    pub limits: Limits,
    /// How long a client may take to send CONNECT after the transport opened.
    pub connect_timeout: Duration,
    /// Octets that may wait to be written before `message` refuses more.
    pub max_outgoing: usize,
    /// Send RECEIPT as soon as a request is validated (otherwise the owner calls
    /// [`ServerSession::receipt`] when it has processed the request).
    pub auto_receipts: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            versions: VersionSet::ALL,
            heartbeat: HeartBeat::new(10_000, 10_000),
            heartbeat_echo: None,
            heartbeat_grace: 3.0,
            server: Some(concat!("stomp-rs/", env!("CARGO_PKG_VERSION")).into()),
            limits: Limits::default(),
            // RabbitMQ's handshake timeout; ActiveMQ waits 30 s.
            connect_timeout: Duration::from_secs(10),
            max_outgoing: 8 << 20,
            auto_receipts: true,
        }
    }
}

/// A CONNECT (or STOMP) the owner must [`accept`](ServerSession::accept) or
/// [`reject`](ServerSession::reject).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The negotiated version.
    pub version: Version,
    /// The `host` header (virtual host).
    pub host: Option<String>,
    /// The `login` header.
    pub login: Option<String>,
    /// The `passcode` header.
    pub passcode: Option<String>,
    /// The client's `heart-beat` header (`0,0` when absent).
    pub heartbeat: HeartBeat,
    /// The whole frame, for other headers.
    pub frame: Frame,
}

/// A validated client request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestKind {
    /// SEND.
    Send {
        /// Where to.
        destination: String,
        /// The transaction it belongs to.
        transaction: Option<String>,
    },
    /// SUBSCRIBE.
    Subscribe {
        /// The subscription id (1.0 clients without one get their destination).
        id: String,
        /// What to.
        destination: String,
        /// How messages are acknowledged.
        ack: AckMode,
    },
    /// UNSUBSCRIBE.
    Unsubscribe {
        /// The subscription id (for 1.0, the destination when no id was given).
        id: String,
    },
    /// ACK (`nack: false`) or NACK (`nack: true`).
    Ack {
        /// 1.2: the `id` header (the MESSAGE's `ack`); 1.0 and 1.1: `message-id`.
        id: String,
        /// 1.1: the `subscription` header.
        subscription: Option<String>,
        /// The transaction it belongs to.
        transaction: Option<String>,
        /// Whether this is a NACK.
        nack: bool,
    },
    /// BEGIN.
    Begin {
        /// The transaction id.
        transaction: String,
    },
    /// COMMIT.
    Commit {
        /// The transaction id.
        transaction: String,
    },
    /// ABORT.
    Abort {
        /// The transaction id.
        transaction: String,
    },
    /// DISCONNECT.
    Disconnect,
}

/// A validated client request and the frame it came in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// What is asked.
    pub kind: RequestKind,
    /// The `receipt` header, if the client asked for one.
    pub receipt: Option<String>,
    /// The frame as received.
    pub frame: Frame,
}

/// Why a server session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerClose {
    /// The client sent DISCONNECT.
    Disconnected,
    /// The client broke the protocol; an ERROR with this message was sent.
    ProtocolError(String),
    /// The owner rejected the CONNECT; an ERROR was sent.
    Rejected(String),
    /// The owner ended the session with an ERROR.
    Error(String),
    /// Nothing arrived within the heart-beat grace.
    HeartbeatTimeout,
    /// No CONNECT arrived in time.
    ConnectTimeout,
    /// The transport closed.
    TransportClosed,
}

/// What a server session reports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerEvent {
    /// A client asks to connect: call `accept` or `reject`.
    Connect(ConnectRequest),
    /// A validated request.
    Request(Request),
    /// The session ended; close the transport once `poll_transmit` is drained.
    Closed(ServerClose),
}

/// A call the session cannot carry out now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerCommandError {
    /// The session is not (or no longer) connected.
    NotConnected,
    /// The outgoing queue is full; retry after draining `poll_transmit`.
    Backpressure,
    /// The frame cannot be encoded (see [`crate::EncodeError`]).
    Encode(crate::EncodeError),
}

impl std::fmt::Display for ServerCommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerCommandError::NotConnected => f.write_str("the session is not connected"),
            ServerCommandError::Backpressure => f.write_str("the outgoing queue is full"),
            ServerCommandError::Encode(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ServerCommandError {}

#[derive(Debug)]
enum State {
    AwaitingConnect {
        deadline: Instant,
    },
    /// CONNECT received; the owner decides.
    Deciding {
        version: Version,
        client_heartbeat: HeartBeat,
    },
    Connected,
    /// DISCONNECT arrived and the owner sends the receipts
    /// (`auto_receipts: false`): the requests before it still get their
    /// answers; nothing more is read; the session closes once the owner has
    /// taken the events up to its `Closed`.
    Disconnecting,
    /// An ERROR or the DISCONNECT receipt is queued; nothing more is read.
    Closing,
    Closed,
}

/// The server side of one connection.
///
/// ```
/// use std::time::Instant;
/// use stomp_proto::server::{ServerConfig, ServerEvent, ServerSession};
///
/// let now = Instant::now();
/// let mut server = ServerSession::new(ServerConfig::default(), now);
/// server.handle_input(now, b"CONNECT\naccept-version:1.1,1.2\nhost:/\n\n\0");
/// let Some(ServerEvent::Connect(request)) = server.poll_event() else { panic!() };
/// assert_eq!(request.version.as_str(), "1.2");
/// server.accept(now, Some("session-1"));
/// let connected = server.poll_transmit(now).unwrap();
/// assert!(connected.starts_with(b"CONNECTED\nversion:1.2\n"));
/// ```
#[derive(Debug)]
pub struct ServerSession {
    config: ServerConfig,
    state: State,
    version: Version,
    decoder: Decoder,
    inbound: BytesMut,
    outbox: Outbox,
    timers: Option<Timers>,
    events: VecDeque<ServerEvent>,
    /// The owner stopped reading on purpose (see `set_reading_paused`).
    reading_paused: bool,
}

impl ServerSession {
    /// A session for a transport that just opened at `now`.
    pub fn new(config: ServerConfig, now: Instant) -> ServerSession {
        ServerSession {
            state: State::AwaitingConnect {
                deadline: now + config.connect_timeout,
            },
            version: Version::V1_2,
            decoder: Decoder::new(Version::V1_2, config.limits),
            inbound: BytesMut::new(),
            outbox: Outbox::new(Version::V1_2, config.max_outgoing),
            timers: None,
            events: VecDeque::new(),
            reading_paused: false,
            config,
        }
    }

    /// The negotiated version (1.2 until a CONNECT is accepted).
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether the session has ended and, once `poll_transmit` returns `None`,
    /// the transport should be closed.
    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Closing | State::Closed)
    }

    /// Octets received from the client.
    pub fn handle_input(&mut self, now: Instant, octets: &[u8]) {
        if self.is_finished() {
            return;
        }
        if let Some(timers) = &mut self.timers {
            timers.received(now);
        }
        self.inbound.extend_from_slice(octets);
        self.decode_buffered();
    }

    /// Decodes what is buffered, except while the owner decides on CONNECT:
    /// frames a client pipelines behind its CONNECT wait for the answer.
    fn decode_buffered(&mut self) {
        while matches!(self.state, State::AwaitingConnect { .. } | State::Connected) {
            match self.decoder.decode(&mut self.inbound) {
                Ok(Some(Item::Frame(frame))) => {
                    tracing::debug!(target: "stomp::frames", "< {}", frame.summary());
                    self.handle_frame(frame)
                }
                Ok(Some(Item::Heartbeat)) => {
                    tracing::trace!(target: "stomp::frames", "< heart-beat");
                }
                Ok(None) => break,
                Err(e) => {
                    self.fail(None, "malformed frame", &e.to_string());
                }
            }
        }
    }

    /// The transport closed.
    pub fn handle_closed(&mut self) {
        if !matches!(self.state, State::Closed) {
            let was_closing = matches!(self.state, State::Closing);
            self.state = State::Closed;
            self.outbox.clear();
            if !was_closing {
                self.events
                    .push_back(ServerEvent::Closed(ServerClose::TransportClosed));
            }
        }
    }

    /// The owner stops (`true`) or resumes reading the transport on purpose
    /// (flow control: the broker is full and holds producers back). While
    /// paused, the client's silence is not held against it: unread input
    /// may hold its heart-beats. The receive window starts afresh on resume.
    pub fn set_reading_paused(&mut self, now: Instant, paused: bool) {
        self.reading_paused = paused;
        if let Some(timers) = &mut self.timers {
            timers.received(now);
        }
    }

    /// Runs timers due at `now`; a spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::AwaitingConnect { deadline } if now >= deadline => {
                self.end(ServerClose::ConnectTimeout);
            }
            State::Connected => {
                let Some(timers) = &mut self.timers else {
                    return;
                };
                if self.reading_paused {
                    // Unread input may well hold the client's heart-beats.
                    timers.received(now);
                }
                if timers.peer_dead(now) {
                    self.end(ServerClose::HeartbeatTimeout);
                } else if timers.heartbeat_due(now) && self.outbox.len() == 0 {
                    self.outbox.push_heartbeat();
                }
            }
            _ => {}
        }
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitingConnect { deadline } => Some(deadline),
            State::Connected => self.timers.as_ref().and_then(Timers::next_deadline),
            _ => None,
        }
    }

    /// The next octets to write; `now` is when they go out.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        let chunk = self.outbox.pop()?;
        if let Some(timers) = &mut self.timers {
            timers.sent(now);
        }
        Some(chunk)
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        let event = self.events.pop_front();
        if matches!(event, Some(ServerEvent::Closed(_)))
            && matches!(self.state, State::Disconnecting)
        {
            // The owner has answered everything before the DISCONNECT.
            self.state = State::Closing;
            self.timers = None;
        }
        event
    }

    /// Accepts the pending CONNECT: sends CONNECTED and starts heart-beats.
    pub fn accept(&mut self, now: Instant, session: Option<&str>) {
        let State::Deciding {
            version,
            client_heartbeat,
        } = self.state
        else {
            return;
        };
        let offer = match self.config.heartbeat_echo {
            None => self.config.heartbeat,
            Some(floor) => {
                let floor = u32::try_from(floor.as_millis()).unwrap_or(u32::MAX);
                let echo = |ms: u32| if ms == 0 { 0 } else { ms.max(floor) };
                HeartBeat::new(
                    echo(client_heartbeat.receive_ms),
                    echo(client_heartbeat.send_ms),
                )
            }
        };
        let negotiated = heartbeat::negotiate(offer, client_heartbeat);
        let mut connected = Frame::builder(Command::Connected).header("version", version.as_str());
        if version > Version::V1_0 {
            connected = connected.header("heart-beat", &offer.to_string());
        }
        if let Some(server) = &self.config.server {
            connected = connected.header("server", server);
        }
        if let Some(session) = session {
            connected = connected.header("session", session);
        }
        self.push(&connected.build());
        self.state = State::Connected;
        if version > Version::V1_0 {
            self.timers = Some(Timers::new(negotiated, self.config.heartbeat_grace, now));
        }
        self.decode_buffered();
    }

    /// Rejects the pending CONNECT with an ERROR, then ends the session.
    pub fn reject(&mut self, message: &str, details: &str) {
        if matches!(self.state, State::Deciding { .. }) {
            self.send_error(None, message, details);
            self.end(ServerClose::Rejected(message.into()));
        }
    }

    /// Queues a MESSAGE frame (the owner sets `destination`, `message-id`,
    /// `subscription`, `ack`, and any headers it copies from the SEND).
    pub fn message(&mut self, frame: &Frame) -> Result<(), ServerCommandError> {
        if !matches!(self.state, State::Connected | State::Disconnecting) {
            return Err(ServerCommandError::NotConnected);
        }
        if self.outbox.would_exceed(frame.body.len()) {
            return Err(ServerCommandError::Backpressure);
        }
        self.outbox
            .push(frame)
            .map(drop)
            .map_err(ServerCommandError::Encode)
    }

    /// Sends a RECEIPT (when `auto_receipts` is off, once a request is processed).
    pub fn receipt(&mut self, receipt_id: &str) {
        if matches!(self.state, State::Connected | State::Disconnecting) {
            let frame = Frame::builder(Command::Receipt)
                .header("receipt-id", receipt_id)
                .build();
            self.push(&frame);
        }
    }

    /// Sends an ERROR (tied to a request by `receipt_id` when given) and ends the
    /// session, as the specification requires.
    pub fn error(&mut self, receipt_id: Option<&str>, message: &str, details: &str) {
        if !self.is_finished() {
            self.send_error(receipt_id, message, details);
            self.end(ServerClose::Error(message.into()));
        }
    }

    fn push(&mut self, frame: &Frame) {
        // Frames the session builds itself are always encodable.
        let _ = self.outbox.push(frame);
    }

    fn end(&mut self, why: ServerClose) {
        self.state = State::Closing;
        self.timers = None;
        self.events.push_back(ServerEvent::Closed(why));
    }

    fn send_error(&mut self, receipt_id: Option<&str>, message: &str, details: &str) {
        let mut error = Frame::builder(Command::Error)
            .header("message", message)
            .header("content-type", "text/plain");
        if let Some(id) = receipt_id {
            error = error.header("receipt-id", id);
        }
        if matches!(
            self.state,
            State::AwaitingConnect { .. } | State::Deciding { .. }
        ) {
            error = error.header("version", &self.config.versions.to_string());
        }
        self.push(&error.body(details.to_string()).build());
    }

    /// Sends an ERROR for a protocol violation and ends the session.
    fn fail(&mut self, receipt_id: Option<&str>, message: &str, details: &str) {
        self.send_error(receipt_id, message, details);
        self.end(ServerClose::ProtocolError(message.into()));
    }

    fn handle_frame(&mut self, frame: Frame) {
        let receipt = frame.header("receipt").map(String::from);
        match (&self.state, frame.command) {
            (State::AwaitingConnect { .. }, Command::Connect | Command::Stomp) => {
                self.handle_connect(frame)
            }
            (State::AwaitingConnect { .. }, _) => self.fail(
                receipt.as_deref(),
                "not connected",
                "the first frame must be CONNECT or STOMP",
            ),
            (State::Deciding { .. }, _) => self.fail(
                receipt.as_deref(),
                "not connected",
                "no frame may follow CONNECT before CONNECTED",
            ),
            (State::Connected, _) => match validate(&frame, self.version) {
                Ok(kind) if kind == RequestKind::Disconnect && !self.config.auto_receipts => {
                    self.events.push_back(ServerEvent::Request(Request {
                        kind,
                        receipt,
                        frame,
                    }));
                    self.state = State::Disconnecting;
                    self.events
                        .push_back(ServerEvent::Closed(ServerClose::Disconnected));
                }
                Ok(kind) => {
                    let disconnect = kind == RequestKind::Disconnect;
                    if let (Some(id), true) = (&receipt, self.config.auto_receipts || disconnect) {
                        let id = id.clone();
                        self.receipt(&id);
                    }
                    self.events.push_back(ServerEvent::Request(Request {
                        kind,
                        receipt,
                        frame,
                    }));
                    if disconnect {
                        self.end(ServerClose::Disconnected);
                    }
                }
                Err(problem) => self.fail(receipt.as_deref(), &problem, &problem),
            },
            (State::Disconnecting | State::Closing | State::Closed, _) => {}
        }
    }

    fn handle_connect(&mut self, frame: Frame) {
        let offered = VersionSet::parse_accept_version(frame.header("accept-version"));
        let Some(version) = offered.highest_common(self.config.versions) else {
            let supported = self.config.versions.to_string();
            return self.fail(
                None,
                "unsupported protocol version",
                &format!("Supported protocol versions are {supported}"),
            );
        };
        let client_heartbeat = match frame.header("heart-beat") {
            None => HeartBeat::OFF,
            Some(value) => match value.parse() {
                Ok(hb) => hb,
                Err(e) => return self.fail(None, "invalid heart-beat header", &format!("{e}")),
            },
        };
        self.version = version;
        self.decoder.set_version(version);
        self.outbox.set_version(version);
        self.state = State::Deciding {
            version,
            client_heartbeat,
        };
        let text = |name| frame.header(name).map(String::from);
        self.events.push_back(ServerEvent::Connect(ConnectRequest {
            version,
            host: text("host"),
            login: text("login"),
            passcode: text("passcode"),
            heartbeat: client_heartbeat,
            frame,
        }));
    }
}

/// The MESSAGE a broker delivers for a SEND to one subscription: the SEND's
/// own headers and body, without the ones that were for the broker
/// (`destination` is set anew; `receipt`, `transaction` and `content-length`
/// are dropped, the encoder writes the last itself), and with
/// `subscription`, `message-id` and, for client acknowledgement, `ack`.
///
/// ```
/// use stomp_proto::server::message_for;
/// use stomp_proto::{Command, Frame};
///
/// let send = Frame::builder(Command::Send)
///     .header("destination", "/queue/a")
///     .header("receipt", "r-1")
///     .header("x-trace", "42")
///     .header("x-trace", "43")
///     .body("hi")
///     .build();
/// let message = message_for(&send, "/queue/a", "sub-0", "m-1", Some("m-1"));
/// assert_eq!(message.command, Command::Message);
/// // Only the first of repeated headers is passed on.
/// assert_eq!(message.header("x-trace"), Some("42"));
/// assert_eq!(message.headers.iter().filter(|(n, _)| *n == "x-trace").count(), 1);
/// assert_eq!(message.header("ack"), Some("m-1"));
/// assert_eq!(message.header("receipt"), None);
/// assert_eq!(&message.body[..], b"hi");
/// ```
pub fn message_for(
    send: &Frame,
    destination: &str,
    subscription: &str,
    message_id: &str,
    ack: Option<&str>,
) -> Frame {
    let mut frame = Frame::builder(Command::Message)
        .header("subscription", subscription)
        .header("destination", destination)
        .header("message-id", message_id);
    if let Some(ack) = ack {
        frame = frame.header("ack", ack);
    }
    // Only the first of repeated headers counts (the specification), and
    // only it is passed on, as RabbitMQ and ActiveMQ do.
    let mut seen = std::collections::HashSet::new();
    let many = send.headers.len() > 16;
    let headers = send.headers.iter().enumerate().filter(|&(i, (name, _))| {
        let copied = !matches!(
            name,
            "destination"
                | "receipt"
                | "transaction"
                | "content-length"
                | "subscription"
                | "message-id"
                | "ack"
        );
        let first = if many {
            seen.insert(name)
        } else {
            !send
                .headers
                .iter()
                .take(i)
                .any(|(earlier, _)| earlier == name)
        };
        copied && first
    });
    frame
        .headers(headers.map(|(_, header)| header))
        .body(send.body.clone())
        .build()
}

/// Checks a client frame's required headers for `version`.
fn validate(frame: &Frame, version: Version) -> Result<RequestKind, String> {
    let required = |name: &str| {
        frame
            .header(name)
            .map(String::from)
            .ok_or_else(|| format!("{} frame has no {name:?} header", frame.command))
    };
    let optional = |name: &str| frame.header(name).map(String::from);
    // RabbitMQ and ActiveMQ refuse an empty destination too.
    let destination = || {
        required("destination").and_then(|d| match d.is_empty() {
            true => Err(format!(
                "{} frame has an empty \"destination\" header",
                frame.command
            )),
            false => Ok(d),
        })
    };
    Ok(match frame.command {
        Command::Send => RequestKind::Send {
            destination: destination()?,
            transaction: optional("transaction"),
        },
        Command::Subscribe => {
            let destination = destination()?;
            let id = match version {
                Version::V1_0 => optional("id").unwrap_or_else(|| destination.clone()),
                _ => required("id")?,
            };
            let ack = match frame.header("ack") {
                None => AckMode::Auto,
                Some(value) => AckMode::parse(value, version)
                    .ok_or_else(|| format!("ack mode {value:?} is not valid in STOMP {version}"))?,
            };
            RequestKind::Subscribe {
                id,
                destination,
                ack,
            }
        }
        Command::Unsubscribe => RequestKind::Unsubscribe {
            id: match version {
                Version::V1_0 => required("id").or_else(|_| required("destination"))?,
                _ => required("id")?,
            },
        },
        Command::Ack | Command::Nack => {
            let nack = frame.command == Command::Nack;
            if nack && version == Version::V1_0 {
                return Err("NACK does not exist in STOMP 1.0".into());
            }
            let (id, subscription) = match version {
                Version::V1_2 => (required("id")?, None),
                Version::V1_1 => (required("message-id")?, Some(required("subscription")?)),
                Version::V1_0 => (required("message-id")?, None),
            };
            RequestKind::Ack {
                id,
                subscription,
                transaction: optional("transaction"),
                nack,
            }
        }
        Command::Begin => RequestKind::Begin {
            transaction: required("transaction")?,
        },
        Command::Commit => RequestKind::Commit {
            transaction: required("transaction")?,
        },
        Command::Abort => RequestKind::Abort {
            transaction: required("transaction")?,
        },
        Command::Disconnect => RequestKind::Disconnect,
        Command::Connect | Command::Stomp => return Err("already connected".into()),
        other => return Err(format!("{other} is a server frame")),
    })
}

#[cfg(test)]
mod pipelining {
    use std::time::Instant;

    use super::{RequestKind, ServerConfig, ServerEvent, ServerSession};

    #[test]
    fn frames_pipelined_behind_connect_wait_for_the_answer() {
        let now = Instant::now();
        let mut server = ServerSession::new(ServerConfig::default(), now);
        server.handle_input(
            now,
            b"CONNECT\naccept-version:1.2\nhost:/\n\n\0SEND\ndestination:/queue/a\n\nhi\0",
        );
        assert!(matches!(server.poll_event(), Some(ServerEvent::Connect(_))));
        assert_eq!(server.poll_event(), None, "the SEND waits");
        server.accept(now, None);
        let Some(ServerEvent::Request(request)) = server.poll_event() else {
            panic!("the SEND, once accepted")
        };
        assert!(matches!(request.kind, RequestKind::Send { .. }));
        assert!(server
            .poll_transmit(now)
            .unwrap()
            .starts_with(b"CONNECTED\n"));
    }

    #[test]
    fn an_owner_sending_receipts_answers_everything_before_disconnect() {
        let now = Instant::now();
        let config = ServerConfig {
            auto_receipts: false,
            ..ServerConfig::default()
        };
        let mut server = ServerSession::new(config, now);
        server.handle_input(now, b"CONNECT\naccept-version:1.2\nhost:/\n\n\0");
        server.poll_event();
        server.accept(now, None);
        server.poll_transmit(now);
        server.handle_input(
            now,
            b"SUBSCRIBE\nid:0\ndestination:/queue/a\n\n\0DISCONNECT\nreceipt:bye\n\n\0",
        );
        assert!(matches!(server.poll_event(), Some(ServerEvent::Request(_))));
        let Some(ServerEvent::Request(disconnect)) = server.poll_event() else {
            panic!("the DISCONNECT")
        };
        assert_eq!(disconnect.kind, RequestKind::Disconnect);
        // Still open for what the SUBSCRIBE brings, then the receipt.
        let message = crate::Frame::builder(crate::Command::Message)
            .header("subscription", "0")
            .header("destination", "/queue/a")
            .header("message-id", "m-1")
            .body("for you")
            .build();
        assert_eq!(server.message(&message), Ok(()));
        server.receipt("bye");
        assert!(!server.is_finished());
        assert!(matches!(server.poll_event(), Some(ServerEvent::Closed(_))));
        assert!(server.is_finished());
        let mut out = Vec::new();
        while let Some(bytes) = server.poll_transmit(now) {
            out.extend_from_slice(&bytes);
        }
        let out = String::from_utf8(out).unwrap();
        let (message_at, receipt_at) = (out.find("MESSAGE").unwrap(), out.find("RECEIPT").unwrap());
        assert!(message_at < receipt_at, "{out}");
    }
}
