//! [`ClientSession`]: the client side of one STOMP connection, sans IO.
//!
//! # Driving a session
//!
//! The session never touches a socket or a clock. Its owner (an adapter's
//! driver, or your own event loop) runs one turn after every input, in this
//! order (the [guide](crate::guide) says why, and shows a tested loop):
//!
//! 1. **Dial** what [`poll_dial`](ClientSession::poll_dial) names; report
//!    [`handle_connected`](ClientSession::handle_connected) once the transport
//!    is up, or [`handle_transport_error`](ClientSession::handle_transport_error)
//!    if it cannot be opened. One dial is out at a time; the session fails it
//!    itself at its timeout.
//! 2. **Hand in** what happened: [`handle_input`](ClientSession::handle_input)
//!    for octets, [`handle_closed`](ClientSession::handle_closed) for the
//!    peer's end of stream, `handle_transport_error` for a failed read or write.
//! 3. **Drain** [`poll_event`](ClientSession::poll_event). Events about a
//!    transport ([`Event::DialFailed`], [`Event::ConnectionLost`]) name it by
//!    its [`LinkId`]: close that one, never a newer one. After
//!    [`Event::Closed`] ([`is_closed`](ClientSession::is_closed)) close
//!    everything and stop.
//! 4. **Transmit** what [`poll_transmit`](ClientSession::poll_transmit) returns
//!    until `None` (after events and after every command).
//! 5. **Wait** until [`poll_timeout`](ClientSession::poll_timeout) (asked
//!    afresh: every input, command and `poll_transmit` may move it) or input,
//!    then [`handle_timeout`](ClientSession::handle_timeout). A spurious call
//!    does nothing.
//!
//! Commands ([`subscribe`](ClientSession::subscribe), [`send`](ClientSession::send),
//! [`ack`](ClientSession::ack), ...) queue frames; a receipt's deadline (and the
//! DISCONNECT's) starts when its frame is handed out by `poll_transmit(now)`.
//!
//! # Reconnecting
//!
//! [`ClientConfig::hosts`] and [`ClientConfig::reconnect`] (or
//! [`ClientConfig::from_uri`] with a `failover:` URI) say where and how often;
//! see [`reconnect`](crate::reconnect) for the schedule. When a connection is
//! lost, pending receipts fail with [`RequestError::ConnectionLost`] (sends are
//! re-sent instead if [`UnconfirmedSends::Resend`] is chosen), transactions
//! are gone, and after the next CONNECTED every live subscription is made again
//! in its original order, with its id and headers. A broker refusing CONNECT
//! fails that host for the pass (final once every host of a pass refused); a
//! failed negotiation, `disconnect` and `close` end the session for good. What
//! may be retried is [`CloseReason::may_reconnect`].
//!
//! ```
//! use std::time::Instant;
//! use stomp_proto::client::{ClientConfig, ClientSession, Event, SendOptions};
//!
//! let now = Instant::now();
//! let mut client = ClientSession::new(ClientConfig::default(), now);
//! client.handle_connected(now);
//! let connect = client.poll_transmit(now).unwrap();
//! assert!(connect.starts_with(b"CONNECT\naccept-version:1.0,1.1,1.2\nhost:/\n"));
//!
//! // The server answers.
//! client.handle_input(now, b"CONNECTED\nversion:1.2\nheart-beat:0,0\n\n\0");
//! let Some(Event::Connected(info)) = client.poll_event() else { panic!() };
//! assert_eq!(info.version.as_str(), "1.2");
//!
//! let receipt = client.send("/queue/a", "hello", SendOptions::with_receipt()).unwrap();
//! let send = client.poll_transmit(now).unwrap();
//! assert!(send.starts_with(b"SEND\ndestination:/queue/a\nreceipt:"));
//! # let _ = receipt;
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::ack::AckMode;
use crate::decode::{Decoder, Item, Limits};
use crate::encode::ContentLengthPolicy;
use crate::frame::{Command, Frame, FrameBuilder};
use crate::heartbeat::{self, HeartBeat, Negotiated, Timers};
use crate::outbox::Outbox;
use crate::reconnect::{Dialer, Planned, ReconnectPolicy, UnconfirmedSends};
use crate::uri::{Endpoint, Failover, UriError};
use crate::version::{Version, VersionSet};

mod errors;
mod tap;

pub use errors::{CloseReason, CommandError, RequestError, ServerError, TransportFailure};
use tap::Tap;
pub use tap::{Direction, Tapped};

/// A login and passcode.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The `login` header.
    pub login: String,
    /// The `passcode` header.
    pub passcode: String,
}

impl Credentials {
    /// Credentials from a login and passcode.
    pub fn new(login: impl Into<String>, passcode: impl Into<String>) -> Credentials {
        Credentials {
            login: login.into(),
            passcode: passcode.into(),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("login", &self.login)
            .field("passcode", &"***")
            .finish()
    }
}

/// Where credentials come from; asked again on every connect, so rotated
/// secrets are picked up on reconnect.
pub trait CredentialSource: Send + Sync + fmt::Debug {
    /// The credentials to send now, if any.
    fn credentials(&self) -> Option<Credentials>;
}

impl CredentialSource for Credentials {
    fn credentials(&self) -> Option<Credentials> {
        Some(self.clone())
    }
}

/// How a [`ClientSession`] behaves.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The brokers [`poll_dial`](ClientSession::poll_dial) chooses from.
    /// An endpoint's login and passcode, and the virtual host its path names,
    /// take precedence over `credentials` and `host`.
    pub hosts: Vec<Endpoint>,
    /// When and where to reconnect (by default: never).
    pub reconnect: ReconnectPolicy,
    /// The `host` header: the virtual host (RabbitMQ's default is `/`).
    pub host: String,
    /// The versions offered in `accept-version`.
    pub versions: VersionSet,
    /// Login and passcode, asked for on every connect.
    pub credentials: Option<Arc<dyn CredentialSource>>,
    /// Our `heart-beat` offer: (can send every, want to receive every) in ms.
    pub heartbeat: HeartBeat,
    /// The server is declared dead after this many receive intervals of silence.
    pub heartbeat_grace: f64,
    /// How long the server may take to answer CONNECT.
    pub connect_timeout: Duration,
    /// How long a receipt may take.
    pub receipt_timeout: Duration,
    /// How long the DISCONNECT receipt may take.
    pub disconnect_timeout: Duration,
    /// Send `STOMP` instead of `CONNECT` (1.1+ servers only).
    pub use_stomp_command: bool,
    /// Extra CONNECT headers.
    pub connect_headers: Vec<(String, String)>,
    /// Decoder limits for server frames.
    pub limits: Limits,
    /// Octets that may wait to be written before commands fail with
    /// [`CommandError::Backpressure`].
    pub max_outgoing: usize,
    /// Receipts that may be pending at once.
    pub max_pending_receipts: usize,
    /// Events that may wait in `poll_event`; past it, input is buffered but not
    /// decoded until events are drained (see [`ClientSession::wants_input`]).
    pub max_events: usize,
    /// The largest frame (encoded) the transport carries, if it has a limit:
    /// larger ones are refused with [`CommandError::TooLarge`] when sent.
    /// Broker-less multicast sets it to what one datagram holds.
    pub max_frame: Option<usize>,
    /// When SEND frames carry `content-length` (a send may choose otherwise
    /// with [`SendOptions::content_length`]). ActiveMQ makes a bytes message
    /// of a SEND with `content-length` and a text message of one without.
    pub content_length: ContentLengthPolicy,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            hosts: vec![Endpoint::tcp("localhost", 61613)],
            reconnect: ReconnectPolicy::default(),
            host: "/".into(),
            versions: VersionSet::ALL,
            credentials: None,
            heartbeat: HeartBeat::new(10_000, 10_000),
            heartbeat_grace: 2.0,
            connect_timeout: Duration::from_secs(10),
            receipt_timeout: Duration::from_secs(30),
            disconnect_timeout: Duration::from_secs(10),
            use_stomp_command: false,
            connect_headers: Vec::new(),
            limits: Limits::default(),
            max_outgoing: 8 << 20,
            max_pending_receipts: 10_000,
            max_events: 10_000,
            max_frame: None,
            content_length: ContentLengthPolicy::WhenNonEmpty,
        }
    }
}

impl ClientConfig {
    /// The default configuration with the hosts and reconnect policy of a
    /// URI: one endpoint, a plain list, or the `failover:` form (see
    /// [`uri`](crate::uri)).
    ///
    /// ```
    /// use stomp_proto::client::ClientConfig;
    ///
    /// let config = ClientConfig::from_uri("failover:(stomp://a:61613,stomp://b:61613)").unwrap();
    /// assert_eq!(config.hosts.len(), 2);
    /// assert_eq!(config.reconnect.max_attempts, None); // forever
    /// ```
    pub fn from_uri(uri: &str) -> Result<ClientConfig, UriError> {
        let failover: Failover = uri.parse()?;
        Ok(ClientConfig {
            hosts: failover.hosts,
            reconnect: failover.policy,
            ..ClientConfig::default()
        })
    }
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The id as it appears on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.into())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }
    };
}

id_type!(
    /// A subscription's `id`.
    SubscriptionId
);
id_type!(
    /// A `receipt` id the session asked for.
    ReceiptId
);
id_type!(
    /// A `transaction` id.
    TxId
);

/// Options for [`ClientSession::subscribe`].
#[derive(Clone, Debug, Default)]
pub struct SubscribeOptions {
    /// The subscription id; the session allocates one when `None`.
    pub id: Option<String>,
    /// How messages are acknowledged.
    pub ack: AckMode,
    /// Extra headers (selectors, durable names, prefetch, ...), passed through.
    pub headers: Vec<(String, String)>,
    /// Ask for a receipt.
    pub receipt: bool,
}

/// Options for [`ClientSession::send`].
#[derive(Clone, Debug, Default)]
pub struct SendOptions {
    /// Extra headers, passed through as given.
    pub headers: Vec<(String, String)>,
    /// The `content-type` header.
    pub content_type: Option<String>,
    /// The transaction the send belongs to.
    pub transaction: Option<TxId>,
    /// Ask for a receipt.
    pub receipt: bool,
    /// The receipt's id, chosen by the caller (to find it in the broker's
    /// logs, or to tie it to a record of one's own); it asks for a receipt
    /// whatever `receipt` says. One still pending is refused with
    /// [`CommandError::DuplicateReceipt`]. `None`: the session numbers it.
    pub receipt_id: Option<String>,
    /// When to write `content-length`, if not as the client's
    /// [`ClientConfig::content_length`] says:
    /// [`ContentLengthPolicy::WhenRequired`] leaves it out unless the body
    /// holds a NUL (stomp.py's `auto_content_length=False`, go-stomp's
    /// `NoContentLength`, stompjs's `skipContentLengthHeader`). A
    /// `content-length` in `headers` is written as given (corrected if it
    /// is wrong).
    pub content_length: Option<ContentLengthPolicy>,
}

impl SendOptions {
    /// Options that only ask for a receipt.
    pub fn with_receipt() -> SendOptions {
        SendOptions {
            receipt: true,
            ..SendOptions::default()
        }
    }
}

/// A live subscription, as [`ClientSession::subscriptions`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionInfo {
    /// Its id.
    pub id: SubscriptionId,
    /// What it subscribes to.
    pub destination: String,
    /// Its ack mode.
    pub ack: AckMode,
    /// The extra headers it was made with.
    pub headers: Vec<(String, String)>,
}

/// What an ACK or NACK for one message needs, per negotiated version: 1.2 the
/// MESSAGE's `ack` header (sent as `id`); 1.1 `message-id` and `subscription`;
/// 1.0 `message-id`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckHandle {
    subscription: SubscriptionId,
    version: Version,
    id: String,
    /// Which connection of the session delivered it (its count of
    /// CONNECTEDs then): an ACK on a later one is refused.
    connection: u64,
}

impl AckHandle {
    /// The subscription the message came through.
    pub fn subscription(&self) -> &SubscriptionId {
        &self.subscription
    }

    /// What the ACK or NACK names: the MESSAGE's `ack` header in 1.2, its
    /// `message-id` in 1.0 and 1.1.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Which connection of the session delivered it: the session's count
    /// of CONNECTEDs then ([`Stats::connects`]). An ACK or NACK is refused
    /// on any later connection.
    pub fn connection(&self) -> u64 {
        self.connection
    }

    fn headers(&self, frame: FrameBuilder) -> FrameBuilder {
        match self.version {
            Version::V1_2 => frame.header("id", &self.id),
            Version::V1_1 => frame
                .header("message-id", &self.id)
                .header("subscription", self.subscription.as_str()),
            Version::V1_0 => frame.header("message-id", &self.id),
        }
    }
}

/// A MESSAGE for one of our subscriptions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The subscription it came through.
    pub subscription: SubscriptionId,
    /// The frame: headers and body.
    pub frame: Frame,
    /// What to ACK or NACK it with; `None` for `auto` subscriptions.
    pub ack: Option<AckHandle>,
}

impl Message {
    /// The `destination` header.
    pub fn destination(&self) -> Option<&str> {
        self.frame.header("destination")
    }

    /// The `message-id` header.
    pub fn message_id(&self) -> Option<&str> {
        self.frame.header("message-id")
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        &self.frame.body
    }
}

/// Who we are connected to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The negotiated version.
    pub version: Version,
    /// The `server` header.
    pub server: Option<String>,
    /// The `session` header.
    pub session: Option<String>,
    /// The agreed heart-beat intervals.
    pub heartbeat: Negotiated,
    /// The endpoint, when the connection was dialled through
    /// [`ClientSession::poll_dial`].
    pub endpoint: Option<Endpoint>,
    /// Whether this connection replaces a lost one: the live subscriptions
    /// were replayed (and, per policy, unconfirmed sends re-sent).
    pub reconnected: bool,
}

/// Names one transport: the [`Dial`] that asked for it, or one the caller
/// opened itself. Every event about a transport carries it, so a loop that
/// drains events late closes the transport they are about and no other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(u64);

impl LinkId {
    /// The number behind it: 1 for the first transport, then counting up.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LinkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "link {}", self.0)
    }
}

/// A transport the session wants: open `endpoint`, then call
/// [`handle_connected`](ClientSession::handle_connected) when it is up (TCP
/// connected, TLS and WebSocket handshakes done), or
/// [`handle_transport_error`](ClientSession::handle_transport_error) when it
/// cannot be opened. The session gives up on it by itself at `timeout`
/// ([`poll_timeout`](ClientSession::poll_timeout) includes that deadline):
/// an [`Event::DialFailed`] naming `link` with [`CloseReason::DialTimeout`]
/// then tells you to drop the attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dial {
    /// Which transport this is; the events about it name it.
    pub link: LinkId,
    /// The host's index in [`ClientConfig::hosts`].
    pub host: usize,
    /// Where to connect.
    pub endpoint: Endpoint,
    /// The pass: 0 for the first connect, then 1, 2, ... for reconnects.
    pub attempt: u32,
    /// How long opening the transport (TCP, TLS, WebSocket handshakes) may take
    /// before it counts as failed.
    pub timeout: Duration,
}

/// What a session reports, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// CONNECTED arrived.
    Connected(SessionInfo),
    /// A MESSAGE arrived.
    Message(Message),
    /// The server confirmed a request.
    Receipt(ReceiptId),
    /// A request that asked for a receipt failed.
    RequestFailed {
        /// The request's receipt.
        receipt: ReceiptId,
        /// Why.
        error: RequestError,
    },
    /// The server was silent past the heart-beat grace (a `ConnectionLost`
    /// follows).
    HeartbeatTimeout,
    /// A transport that never reached CONNECTED failed: it could not be
    /// opened (refused, timed out, a failed handshake), or the broker
    /// closed it or stayed silent before CONNECTED. Close `link` if it is
    /// open. Unless [`Event::Closed`] follows, the next host is dialled:
    /// at once when the pass has hosts left ([`poll_dial`](ClientSession::poll_dial)
    /// has it now), otherwise after the wait an [`Event::Reconnecting`]
    /// announces.
    DialFailed {
        /// The transport that failed.
        link: LinkId,
        /// The host it was for (`None` for a transport the caller opened
        /// with no host list configured).
        host: Option<Endpoint>,
        /// Why.
        reason: CloseReason,
    },
    /// An established connection (one that reached CONNECTED) ended. Close
    /// `link`. Pending receipts have failed (or wait to be re-sent, per
    /// [`UnconfirmedSends`]); open transactions are gone; messages it
    /// delivered can no longer be acknowledged. An [`Event::Reconnecting`]
    /// or an [`Event::Closed`] follows.
    ConnectionLost {
        /// The transport that carried it.
        link: LinkId,
        /// Why.
        reason: CloseReason,
    },
    /// The session waits `delay`, then dials `host`: a new pass over the
    /// host list (`attempt`, counting from 1), or the first dial after a
    /// lost connection.
    Reconnecting {
        /// The reconnect pass.
        attempt: u32,
        /// The endpoint to be dialled.
        host: Endpoint,
        /// How long until then.
        delay: Duration,
    },
    /// The session ended for good; close the transport.
    Closed(CloseReason),
}

/// Counters, in the spirit of stomp.py's StatsListener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    frames_in: [u64; 15],
    frames_out: [u64; 15],
    /// Octets received.
    pub bytes_in: u64,
    /// Octets handed to the transport.
    pub bytes_out: u64,
    /// Heart-beats received: ends of line that stand alone between frames
    /// (not the one a broker may write right after each frame, in the same
    /// read).
    pub heartbeats_in: u64,
    /// Heart-beats sent.
    pub heartbeats_out: u64,
    /// Times the server was declared dead.
    pub heartbeat_timeouts: u64,
    /// ERROR frames received.
    pub errors: u64,
    /// Receipts that timed out.
    pub receipt_timeouts: u64,
    /// Messages acknowledged.
    pub acks: u64,
    /// Messages rejected.
    pub nacks: u64,
    /// Successful connects.
    pub connects: u64,
    /// Connects that replaced a lost connection.
    pub reconnects: u64,
    /// Dials (or CONNECTs) that failed.
    pub dial_failures: u64,
    /// Established connections lost.
    pub connections_lost: u64,
    /// Datagrams from a multicast group dropped because they were not one
    /// well-formed STOMP frame (see [`ClientSession::handle_dropped_datagrams`];
    /// other members' frames that are not SENDs are not counted).
    pub dropped_datagrams: u64,
}

impl Stats {
    /// Frames received with `command`.
    pub fn frames_in(&self, command: Command) -> u64 {
        self.frames_in[command_index(command)]
    }

    /// Frames sent with `command`.
    pub fn frames_out(&self, command: Command) -> u64 {
        self.frames_out[command_index(command)]
    }
}

fn subscribe_frame(
    id: &SubscriptionId,
    destination: &str,
    ack: AckMode,
    headers: &[(String, String)],
) -> FrameBuilder {
    let mut frame = Frame::builder(Command::Subscribe)
        .header("id", id.as_str())
        .header("destination", destination);
    if ack != AckMode::Auto {
        frame = frame.header("ack", ack.as_str());
    }
    frame.headers(headers.iter().map(|(k, v)| (k, v)))
}

fn command_index(command: Command) -> usize {
    Command::ALL.iter().position(|c| *c == command).unwrap_or(0)
}

#[derive(Debug)]
struct SubscriptionEntry {
    order: u64,
    destination: String,
    ack: AckMode,
    headers: Vec<(String, String)>,
}

/// A pending receipt: its order, and its place in the deadline index once its
/// frame has been handed to the transport.
#[derive(Debug, Clone)]
struct Pending {
    order: u64,
    key: Option<(Instant, u64)>,
    /// The SEND frame, kept when the policy re-sends unconfirmed sends.
    resend: Option<(Frame, ContentLengthPolicy)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// No transport: waiting for the next dial to be due.
    Idle,
    /// A [`Dial`] was handed out and its outcome is not known yet.
    Dialing {
        deadline: Instant,
    },
    /// CONNECT is out; waiting for CONNECTED.
    Connecting {
        deadline: Instant,
    },
    Connected,
    /// The deadline starts when DISCONNECT is handed to the transport.
    Disconnecting {
        deadline: Option<Instant>,
    },
    Closed,
}

/// The client side of one connection. See the [module docs](self) for how to
/// drive it.
#[derive(Debug)]
pub struct ClientSession {
    config: ClientConfig,
    state: State,
    now: Instant,
    version: Version,
    decoder: Decoder,
    inbound: BytesMut,
    /// A frame ended in the octets read last: an end of line right after
    /// it trails the frame (RabbitMQ writes one after every frame) and is
    /// no heart-beat.
    eol_trails_frame: bool,
    /// Every frame in and out, while asked for.
    tap: Tap,
    outbox: Outbox,
    timers: Option<Timers>,
    events: VecDeque<Event>,
    subscriptions: HashMap<SubscriptionId, SubscriptionEntry>,
    transactions: HashSet<TxId>,
    pending: HashMap<ReceiptId, Pending>,
    deadlines: BTreeMap<(Instant, u64), ReceiptId>,
    /// Receipts whose frames are queued but not yet handed out.
    unstarted: Vec<ReceiptId>,
    disconnect_receipt: Option<ReceiptId>,
    next_id: u64,
    /// Orders pending receipts (oldest first when they fail together).
    next_pending: u64,
    stats: Stats,
    dialer: Dialer,
    /// The host being dialled or connected to, when dialled via `poll_dial`.
    current: Option<usize>,
    /// The transport being dialled or in use, once there has been one.
    link: Option<LinkId>,
    /// The last link id handed out.
    links: u64,
    /// Hosts in a row that answered CONNECT with an ERROR.
    refusals: usize,
    /// Unconfirmed sends to re-send after the reconnect, oldest first.
    replay: Vec<(ReceiptId, Frame, ContentLengthPolicy)>,
    /// The owner stopped reading on purpose (see `set_reading_paused`).
    reading_paused: bool,
}

impl ClientSession {
    /// A session that will connect once the transport is up.
    pub fn new(config: ClientConfig, now: Instant) -> ClientSession {
        let version = config.versions.highest().unwrap_or(Version::V1_2);
        ClientSession {
            state: State::Idle,
            now,
            version,
            decoder: Decoder::new(version, config.limits),
            inbound: BytesMut::new(),
            eol_trails_frame: false,
            tap: Tap::default(),
            outbox: Outbox::new(version, config.max_outgoing),
            timers: None,
            events: VecDeque::new(),
            subscriptions: HashMap::new(),
            transactions: HashSet::new(),
            pending: HashMap::new(),
            deadlines: BTreeMap::new(),
            unstarted: Vec::new(),
            disconnect_receipt: None,
            next_id: 0,
            next_pending: 0,
            stats: Stats::default(),
            dialer: Dialer::new(config.reconnect.clone(), config.hosts.len(), now),
            current: None,
            link: None,
            links: 0,
            refusals: 0,
            replay: Vec::new(),
            reading_paused: false,
            config,
        }
    }

    // ---- inputs ------------------------------------------------------------

    /// The transport is up (the one [`poll_dial`](Self::poll_dial) asked for,
    /// or one the caller opened itself): sends CONNECT (or STOMP) and starts
    /// the connect deadline.
    pub fn handle_connected(&mut self, now: Instant) {
        self.now = now;
        match self.state {
            State::Dialing { .. } => {}
            State::Idle => {
                // The caller opened this transport itself: it stands for the
                // next planned dial.
                self.current = self.dialer.take_next().map(|(host, _)| host);
                self.link = Some(self.next_link());
            }
            _ => return,
        }
        // A fresh transport: nothing of the last one carries over.
        self.version = self.config.versions.highest().unwrap_or(Version::V1_2);
        self.decoder = Decoder::new(self.version, self.config.limits);
        self.inbound.clear();
        self.outbox.clear();
        self.outbox.set_version(self.version);
        let command = if self.config.use_stomp_command {
            Command::Stomp
        } else {
            Command::Connect
        };
        let endpoint = self.current.and_then(|i| self.config.hosts.get(i));
        let host = endpoint
            .and_then(Endpoint::virtual_host)
            .unwrap_or_else(|| self.config.host.clone());
        let mut frame = Frame::builder(command)
            .header("accept-version", &self.config.versions.to_string())
            .header("host", &host);
        let from_endpoint = endpoint.and_then(|e| {
            let login = e.login.as_deref()?;
            Some(Credentials::new(login, e.passcode.as_deref().unwrap_or("")))
        });
        let credentials = from_endpoint.or_else(|| {
            let source = self.config.credentials.as_ref()?;
            source.credentials()
        });
        if let Some(credentials) = credentials {
            frame = frame
                .header("login", &credentials.login)
                .header("passcode", &credentials.passcode);
        }
        if self.config.versions.iter().any(|v| v > Version::V1_0) {
            frame = frame.header("heart-beat", &self.config.heartbeat.to_string());
        }
        let frame = frame
            .headers(self.config.connect_headers.iter().map(|(k, v)| (k, v)))
            .build();
        // CONNECT headers are never escaped: a value with a LF cannot be sent.
        match self.outbox.push(&frame) {
            Ok(_) => {
                self.sent(&frame);
                self.state = State::Connecting {
                    deadline: now + self.config.connect_timeout,
                };
            }
            Err(e) => self.finish(CloseReason::Unencodable(e)),
        }
    }

    /// Octets arrived from the server.
    pub fn handle_input(&mut self, now: Instant, octets: &[u8]) {
        self.now = now;
        if !self.has_transport() {
            return;
        }
        self.stats.bytes_in += octets.len() as u64;
        if let Some(timers) = &mut self.timers {
            timers.received(now);
        }
        if self.inbound.is_empty() {
            // Octets of a new read: an end of line at their start stands
            // alone.
            self.eol_trails_frame = false;
        }
        self.inbound.extend_from_slice(octets);
        self.process_inbound();
    }

    /// The peer closed the transport (an orderly end of stream). A close
    /// the session asked for itself (after [`Event::ConnectionLost`] or
    /// [`Event::DialFailed`]) is ignored. For a dial that could not open a
    /// transport, say why with
    /// [`handle_transport_error`](ClientSession::handle_transport_error).
    pub fn handle_closed(&mut self, now: Instant) {
        self.transport_ended(now, CloseReason::TransportClosed);
    }

    /// The transport failed, or the dial [`poll_dial`](ClientSession::poll_dial)
    /// asked for could not open one; `error` (an [`std::io::Error`], or a
    /// text) reaches the user in [`CloseReason::TransportError`], with its
    /// [`io::ErrorKind`](std::io::ErrorKind).
    ///
    /// ```
    /// use std::io;
    /// use std::time::Instant;
    /// use stomp_proto::client::{ClientConfig, ClientSession, CloseReason, Event};
    ///
    /// let now = Instant::now();
    /// let mut session = ClientSession::new(ClientConfig::default(), now);
    /// let dial = session.poll_dial(now).unwrap();
    /// session.handle_transport_error(now, io::Error::from(io::ErrorKind::ConnectionRefused));
    /// // The dial is reported as what it was, naming its link...
    /// let Some(Event::DialFailed { link, reason, .. }) = session.poll_event() else { panic!() };
    /// assert_eq!(link, dial.link);
    /// let CloseReason::TransportError(failure) = &reason else { panic!() };
    /// assert_eq!(failure.kind(), io::ErrorKind::ConnectionRefused);
    /// // ...and with one host and no reconnect passes, the session gives up.
    /// let Some(Event::Closed(CloseReason::GaveUp { attempts: 0, last })) = session.poll_event()
    /// else {
    ///     panic!()
    /// };
    /// assert_eq!(*last, reason);
    /// ```
    pub fn handle_transport_error(&mut self, now: Instant, error: impl Into<TransportFailure>) {
        self.transport_ended(now, CloseReason::TransportError(error.into()));
    }

    fn transport_ended(&mut self, now: Instant, reason: CloseReason) {
        self.now = now;
        match self.state {
            // An old transport.
            State::Closed | State::Idle => {}
            State::Dialing { .. } => self.fail(reason),
            // RabbitMQ over WebSocket answers DISCONNECT by closing, not with a
            // RECEIPT: a close after DISCONNECT is a clean end.
            State::Disconnecting { .. } => self.finish(CloseReason::Disconnected),
            State::Connecting { .. } | State::Connected => self.fail(reason),
        }
    }

    /// The owner stops (`true`) or resumes reading the transport on purpose,
    /// because its consumers are behind (back-pressure). While paused, the
    /// server's silence is not held against it: unread input may hold its
    /// heart-beats. The receive window starts afresh on resume.
    pub fn handle_reading_paused(&mut self, now: Instant, paused: bool) {
        self.now = now;
        self.reading_paused = paused;
        if let Some(timers) = &mut self.timers {
            timers.received(now);
        }
    }

    /// Runs the timers due at `now`; a spurious call does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        match self.state {
            State::Dialing { deadline } if now >= deadline => {
                return self.fail(CloseReason::DialTimeout)
            }
            State::Connecting { deadline } if now >= deadline => {
                return self.fail(CloseReason::ConnectTimeout)
            }
            State::Disconnecting {
                deadline: Some(deadline),
            } if now >= deadline => return self.finish(CloseReason::DisconnectTimeout),
            _ => {}
        }
        if let Some(timers) = &mut self.timers {
            if self.reading_paused {
                // Unread input may well hold the server's heart-beats.
                timers.received(now);
            }
            if timers.peer_dead(now) {
                self.stats.heartbeat_timeouts += 1;
                self.events.push_back(Event::HeartbeatTimeout);
                return self.fail(CloseReason::HeartbeatTimeout);
            }
            if timers.heartbeat_due(now) && self.outbox.len() == 0 {
                self.outbox.push_heartbeat();
                self.stats.heartbeats_out += 1;
                self.tap.record(Direction::Out, None, now);
            }
        }
        while let Some(entry) = self.deadlines.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let receipt = entry.remove();
            self.pending.remove(&receipt);
            self.stats.receipt_timeouts += 1;
            self.events.push_back(Event::RequestFailed {
                receipt,
                error: RequestError::Timeout,
            });
        }
    }

    // ---- outputs -----------------------------------------------------------

    /// The next octets to write; `now` is when they go out. Heart-beat timers,
    /// and the deadlines of receipts whose frames are in these octets, count
    /// from it.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        let chunk = self.outbox.pop()?;
        self.now = now;
        self.stats.bytes_out += chunk.len() as u64;
        if let Some(timers) = &mut self.timers {
            timers.sent(now);
        }
        for receipt in std::mem::take(&mut self.unstarted) {
            if let Some(pending) = self.pending.get_mut(&receipt) {
                let key = (now + self.config.receipt_timeout, pending.order);
                pending.key = Some(key);
                self.deadlines.insert(key, receipt);
            }
        }
        if let State::Disconnecting { deadline: None } = self.state {
            self.state = State::Disconnecting {
                deadline: Some(now + self.config.disconnect_timeout),
            };
        }
        Some(chunk)
    }

    /// The next event. Draining events also resumes decoding input held back
    /// by [`ClientConfig::max_events`].
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front();
        if !self.inbound.is_empty() && self.events.len() < self.config.max_events {
            self.process_inbound();
        }
        event
    }

    /// The transport to open next, once it is due (see
    /// [`poll_timeout`](Self::poll_timeout) for when). Open it, then call
    /// [`handle_connected`](Self::handle_connected), or
    /// [`handle_transport_error`](Self::handle_transport_error) if it cannot
    /// be opened. At most one dial is out at a time: this gives `None` until
    /// its outcome is known, and the session fails it by itself at
    /// [`Dial::timeout`]. After a failed dial the next host of the pass is
    /// due at once, so call this again after every input. A caller that
    /// manages exactly one transport itself may ignore this and call
    /// `handle_connected` directly; reconnects need it.
    #[must_use]
    pub fn poll_dial(&mut self, now: Instant) -> Option<Dial> {
        if self.state != State::Idle {
            return None;
        }
        let (host, attempt) = self.dialer.take_due(now)?;
        self.now = now;
        let link = self.next_link();
        self.link = Some(link);
        self.state = State::Dialing {
            deadline: now + self.config.connect_timeout,
        };
        self.current = Some(host);
        Some(Dial {
            link,
            host,
            endpoint: self.config.hosts[host].clone(),
            attempt,
            timeout: self.config.connect_timeout,
        })
    }

    /// When `handle_timeout` (or `poll_dial`) should next be called: the
    /// earliest of the dial's timeout, the connect and disconnect deadlines,
    /// the heart-beat timers, the receipts' deadlines and the next planned
    /// dial. `None`: nothing is due until some input comes. Ask again after
    /// every call that may change it: any input, any command, and
    /// `poll_transmit` (which starts receipt and heart-beat timers).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state = match self.state {
            State::Dialing { deadline }
            | State::Connecting { deadline }
            | State::Disconnecting {
                deadline: Some(deadline),
            } => Some(deadline),
            State::Idle => self.dialer.next_due(),
            _ => None,
        };
        let timers = self.timers.as_ref().and_then(Timers::next_deadline);
        let receipt = self.deadlines.keys().next().map(|k| k.0);
        [state, timers, receipt].into_iter().flatten().min()
    }

    /// Whether more input may be handed in now: false while undelivered events
    /// fill [`ClientConfig::max_events`] (stop reading the socket until
    /// `poll_event` drains them: back-pressure towards the server).
    pub fn wants_input(&self) -> bool {
        self.events.len() < self.config.max_events && self.state != State::Closed
    }

    /// Requests waiting for their receipts.
    pub fn pending_receipts(&self) -> usize {
        self.pending.len()
    }

    /// Octets queued and not yet taken by [`poll_transmit`](ClientSession::poll_transmit).
    pub fn outgoing_len(&self) -> usize {
        self.outbox.len()
    }

    /// Whether a frame with a body of `body_len` octets fits in the outgoing
    /// queue now, that is, whether a command carrying it would be refused
    /// with [`CommandError::Backpressure`] or not. A driver that would
    /// rather wait than fail holds such commands back until
    /// [`poll_transmit`](ClientSession::poll_transmit) has made room.
    ///
    /// ```
    /// use std::time::Instant;
    /// use stomp_proto::client::{ClientConfig, ClientSession};
    ///
    /// let config = ClientConfig { max_outgoing: 1024, ..ClientConfig::default() };
    /// let mut session = ClientSession::new(config, Instant::now());
    /// session.handle_connected(Instant::now());
    /// // CONNECT waits to be written: room for a small body, not a large one.
    /// assert!(session.outgoing_len() > 0);
    /// assert!(session.has_room_for(100));
    /// assert!(!session.has_room_for(4096));
    /// // Written: an empty queue takes any one frame, however large.
    /// while session.poll_transmit(Instant::now()).is_some() {}
    /// assert!(session.has_room_for(4096));
    /// ```
    pub fn has_room_for(&self, body_len: usize) -> bool {
        !self.outbox.would_exceed(body_len)
    }

    /// The transport dropped `count` datagrams that were not STOMP (a
    /// multicast group's garbage); counted in [`Stats::dropped_datagrams`].
    pub fn handle_dropped_datagrams(&mut self, count: u64) {
        self.stats.dropped_datagrams += count;
    }

    /// Whether the session is connected (CONNECTED received, not disconnecting).
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Whether the session has ended: close the transport.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The negotiated version (the highest offered one before CONNECTED).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The live subscriptions, in the order they were made (the order a
    /// reconnect replays them in).
    pub fn subscriptions(&self) -> Vec<SubscriptionInfo> {
        let mut list: Vec<(&SubscriptionId, &SubscriptionEntry)> =
            self.subscriptions.iter().collect();
        list.sort_by_key(|(_, entry)| entry.order);
        list.into_iter()
            .map(|(id, entry)| SubscriptionInfo {
                id: id.clone(),
                destination: entry.destination.clone(),
                ack: entry.ack,
                headers: entry.headers.clone(),
            })
            .collect()
    }

    /// Taps every frame and heart-beat in and out from now on, keeping the
    /// last `capacity` of them for [`poll_tap`](ClientSession::poll_tap)
    /// (older ones are dropped and counted by
    /// [`tap_dropped`](ClientSession::tap_dropped)); 0 turns it off. Off,
    /// it costs nothing; on, a copy of each frame's headers.
    ///
    /// ```
    /// use std::time::Instant;
    /// use stomp_proto::client::{ClientConfig, ClientSession, Direction};
    ///
    /// let now = Instant::now();
    /// let mut session = ClientSession::new(ClientConfig::default(), now);
    /// session.set_tap(64);
    /// let _dial = session.poll_dial(now).unwrap();
    /// session.handle_connected(now); // CONNECT is queued
    /// let tapped = session.poll_tap().unwrap();
    /// assert_eq!(tapped.direction, Direction::Out);
    /// assert_eq!(tapped.frame.unwrap().command, stomp_proto::Command::Connect);
    /// ```
    pub fn set_tap(&mut self, capacity: usize) {
        self.tap.set_capacity(capacity);
    }

    /// The oldest tapped frame not yet taken (see
    /// [`set_tap`](ClientSession::set_tap)).
    pub fn poll_tap(&mut self) -> Option<Tapped> {
        self.tap.pop()
    }

    /// How many tapped frames were dropped because nobody took them in
    /// time.
    pub fn tap_dropped(&self) -> u64 {
        self.tap.dropped()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    // ---- commands ----------------------------------------------------------

    /// Subscribes to `destination`.
    pub fn subscribe(
        &mut self,
        destination: &str,
        options: SubscribeOptions,
    ) -> Result<(SubscriptionId, Option<ReceiptId>), CommandError> {
        self.check_connected()?;
        let id: SubscriptionId = match &options.id {
            Some(id) => id.as_str().into(),
            None => self.allocate("sub-").as_str().into(),
        };
        if self.subscriptions.contains_key(&id) {
            return Err(CommandError::DuplicateSubscription(id.to_string()));
        }
        let frame = subscribe_frame(&id, destination, options.ack, &options.headers);
        let receipt = self.request(frame, options.receipt)?;
        let order = self.next_id;
        self.next_id += 1;
        self.subscriptions.insert(
            id.clone(),
            SubscriptionEntry {
                order,
                destination: destination.into(),
                ack: options.ack,
                headers: options.headers,
            },
        );
        Ok((id, receipt))
    }

    /// Makes a subscription again: UNSUBSCRIBE, then SUBSCRIBE with the
    /// same id, destination, ack mode and headers, queued together (both
    /// or, refused, neither), for a subscription the broker may have
    /// forgotten while the connection looks fine. It keeps its place in
    /// the order a reconnect replays.
    pub fn resubscribe(&mut self, id: &SubscriptionId) -> Result<(), CommandError> {
        self.check_connected()?;
        let entry = self
            .subscriptions
            .get(id)
            .ok_or_else(|| CommandError::UnknownSubscription(id.to_string()))?;
        if self.outbox.would_exceed(0) {
            return Err(CommandError::Backpressure);
        }
        let frames = [
            Frame::builder(Command::Unsubscribe)
                .header("id", id.as_str())
                .build(),
            subscribe_frame(id, &entry.destination, entry.ack, &entry.headers).build(),
        ];
        for frame in frames {
            self.outbox.push(&frame).map_err(CommandError::Encode)?;
            self.sent(&frame);
        }
        Ok(())
    }

    /// Ends a subscription.
    pub fn unsubscribe(
        &mut self,
        id: &SubscriptionId,
        receipt: bool,
    ) -> Result<Option<ReceiptId>, CommandError> {
        self.check_connected()?;
        if !self.subscriptions.contains_key(id) {
            return Err(CommandError::UnknownSubscription(id.to_string()));
        }
        let frame = Frame::builder(Command::Unsubscribe).header("id", id.as_str());
        let receipt = self.request(frame, receipt)?;
        self.subscriptions.remove(id);
        Ok(receipt)
    }

    /// Sends `body` to `destination`.
    pub fn send(
        &mut self,
        destination: &str,
        body: impl Into<Bytes>,
        options: SendOptions,
    ) -> Result<Option<ReceiptId>, CommandError> {
        self.check_connected()?;
        self.check_transaction(options.transaction.as_ref())?;
        let mut frame = Frame::builder(Command::Send).header("destination", destination);
        if let Some(content_type) = &options.content_type {
            frame = frame.header("content-type", content_type);
        }
        if let Some(tx) = &options.transaction {
            frame = frame.header("transaction", tx.as_str());
        }
        let frame = frame
            .headers(options.headers.iter().map(|(k, v)| (k, v)))
            .body(body);
        let length = options.content_length.unwrap_or(self.config.content_length);
        match options.receipt_id {
            Some(id) => self.request_as(frame, id.as_str().into(), length),
            None => self.request_with(frame, options.receipt, length),
        }
    }

    /// Acknowledges a message (for `client` subscriptions, it and every earlier
    /// message of the subscription).
    pub fn ack(
        &mut self,
        handle: &AckHandle,
        transaction: Option<&TxId>,
        receipt: bool,
    ) -> Result<Option<ReceiptId>, CommandError> {
        self.acknowledge(Command::Ack, handle, transaction, receipt)
    }

    /// The handle to ACK or NACK a message by its id alone, on the
    /// connection up now: for a message whose id was handed elsewhere (to
    /// another process, say) instead of its [`Message`]. `id` is what the
    /// negotiated version acknowledges by: the MESSAGE's `ack` header in
    /// 1.2, its `message-id` in 1.0 and 1.1 (what [`AckHandle::id`] gives);
    /// `subscription` is its `subscription` header. The broker judges it:
    /// an id it does not know comes back as its ERROR.
    pub fn ack_handle(&self, subscription: &str, id: &str) -> Result<AckHandle, CommandError> {
        self.check_connected()?;
        Ok(AckHandle {
            subscription: subscription.into(),
            version: self.version,
            id: id.to_string(),
            connection: self.stats.connects,
        })
    }

    /// Rejects a message (1.1+).
    pub fn nack(
        &mut self,
        handle: &AckHandle,
        transaction: Option<&TxId>,
        receipt: bool,
    ) -> Result<Option<ReceiptId>, CommandError> {
        if self.version == Version::V1_0 {
            return Err(CommandError::NackUnsupported);
        }
        self.acknowledge(Command::Nack, handle, transaction, receipt)
    }

    /// Begins a transaction; `id` is allocated when `None`.
    pub fn begin(
        &mut self,
        id: Option<&str>,
        receipt: bool,
    ) -> Result<(TxId, Option<ReceiptId>), CommandError> {
        self.check_connected()?;
        let tx: TxId = match id {
            Some(id) => id.into(),
            None => self.allocate("tx-").as_str().into(),
        };
        if self.transactions.contains(&tx) {
            return Err(CommandError::DuplicateTransaction(tx.to_string()));
        }
        let frame = Frame::builder(Command::Begin).header("transaction", tx.as_str());
        let receipt = self.request(frame, receipt)?;
        self.transactions.insert(tx.clone());
        Ok((tx, receipt))
    }

    /// Commits a transaction.
    pub fn commit(&mut self, tx: &TxId, receipt: bool) -> Result<Option<ReceiptId>, CommandError> {
        self.end_transaction(Command::Commit, tx, receipt)
    }

    /// Rolls a transaction back. Aborting what was never begun is a local error;
    /// nothing is sent.
    pub fn abort(&mut self, tx: &TxId, receipt: bool) -> Result<Option<ReceiptId>, CommandError> {
        self.end_transaction(Command::Abort, tx, receipt)
    }

    /// Disconnects gracefully: DISCONNECT with a receipt; the session closes
    /// when the receipt arrives (or the disconnect timeout passes).
    pub fn disconnect(&mut self) -> Result<ReceiptId, CommandError> {
        self.check_connected()?;
        let receipt = self.allocate("disconnect-");
        let frame = Frame::builder(Command::Disconnect)
            .header("receipt", receipt.as_str())
            .build();
        self.queue(&frame, ContentLengthPolicy::WhenNonEmpty)?;
        self.disconnect_receipt = Some(receipt.clone());
        self.state = State::Disconnecting { deadline: None };
        Ok(receipt)
    }

    /// Ends the session at once, without DISCONNECT (and without any further
    /// reconnect): pending requests fail with
    /// [`RequestError::ConnectionLost`]; a [`CloseReason::Local`] close event
    /// follows. For a graceful end use [`disconnect`](Self::disconnect).
    pub fn close(&mut self) {
        self.finish(CloseReason::Local);
    }

    // ---- internals ---------------------------------------------------------

    fn next_link(&mut self) -> LinkId {
        self.links += 1;
        LinkId(self.links)
    }

    fn allocate(&mut self, prefix: &str) -> ReceiptId {
        loop {
            let id: ReceiptId = format!("{prefix}{}", self.next_id).as_str().into();
            self.next_id += 1;
            // Never one a caller chose and still waits for.
            if !self.pending.contains_key(&id) {
                return id;
            }
        }
    }

    fn check_connected(&self) -> Result<(), CommandError> {
        if self.state == State::Connected {
            Ok(())
        } else {
            Err(CommandError::NotConnected)
        }
    }

    fn check_transaction(&self, tx: Option<&TxId>) -> Result<(), CommandError> {
        match tx {
            Some(tx) if !self.transactions.contains(tx) => {
                Err(CommandError::UnknownTransaction(tx.to_string()))
            }
            _ => Ok(()),
        }
    }

    fn acknowledge(
        &mut self,
        command: Command,
        handle: &AckHandle,
        transaction: Option<&TxId>,
        receipt: bool,
    ) -> Result<Option<ReceiptId>, CommandError> {
        self.check_connected()?;
        if handle.connection != self.stats.connects {
            return Err(CommandError::StaleAck {
                id: handle.id.clone(),
            });
        }
        self.check_transaction(transaction)?;
        let mut frame = handle.headers(Frame::builder(command));
        if let Some(tx) = transaction {
            frame = frame.header("transaction", tx.as_str());
        }
        let receipt = self.request(frame, receipt)?;
        if command == Command::Ack {
            self.stats.acks += 1;
        } else {
            self.stats.nacks += 1;
        }
        Ok(receipt)
    }

    fn end_transaction(
        &mut self,
        command: Command,
        tx: &TxId,
        receipt: bool,
    ) -> Result<Option<ReceiptId>, CommandError> {
        self.check_connected()?;
        self.check_transaction(Some(tx))?;
        let frame = Frame::builder(command).header("transaction", tx.as_str());
        let receipt = self.request(frame, receipt)?;
        self.transactions.remove(tx);
        Ok(receipt)
    }

    /// Queues a request, with a receipt when asked.
    fn request(
        &mut self,
        frame: FrameBuilder,
        receipt: bool,
    ) -> Result<Option<ReceiptId>, CommandError> {
        self.request_with(frame, receipt, ContentLengthPolicy::WhenNonEmpty)
    }

    /// [`request`](Self::request), writing `content-length` as `length` says.
    fn request_with(
        &mut self,
        frame: FrameBuilder,
        receipt: bool,
        length: ContentLengthPolicy,
    ) -> Result<Option<ReceiptId>, CommandError> {
        if !receipt {
            self.queue(&frame.build(), length)?;
            return Ok(None);
        }
        let id = self.allocate("r-");
        self.request_as(frame, id, length)
    }

    /// [`request_with`](Self::request_with) with a receipt of id `id`.
    fn request_as(
        &mut self,
        frame: FrameBuilder,
        id: ReceiptId,
        length: ContentLengthPolicy,
    ) -> Result<Option<ReceiptId>, CommandError> {
        if self.pending.len() >= self.config.max_pending_receipts {
            return Err(CommandError::TooManyPendingReceipts);
        }
        if self.pending.contains_key(&id) || self.disconnect_receipt.as_ref() == Some(&id) {
            return Err(CommandError::DuplicateReceipt(id.as_str().to_string()));
        }
        let frame = frame.header("receipt", id.as_str()).build();
        self.queue(&frame, length)?;
        let resend = (self.config.reconnect.unconfirmed_sends == UnconfirmedSends::Resend
            && frame.command == Command::Send
            && frame.header("transaction").is_none())
        .then_some((frame, length));
        self.pend(id.clone(), resend);
        Ok(Some(id))
    }

    /// Records a receipt as pending; its deadline starts when its frame is
    /// handed out.
    fn pend(&mut self, receipt: ReceiptId, resend: Option<(Frame, ContentLengthPolicy)>) {
        let order = self.next_pending;
        self.next_pending += 1;
        self.unstarted.push(receipt.clone());
        self.pending.insert(
            receipt,
            Pending {
                order,
                key: None,
                resend,
            },
        );
    }

    fn queue(&mut self, frame: &Frame, length: ContentLengthPolicy) -> Result<(), CommandError> {
        if let Some(limit) = self.config.max_frame {
            let size = self
                .outbox
                .encoded_len(frame, length)
                .map_err(CommandError::Encode)?;
            if size > limit {
                return Err(CommandError::TooLarge { size, limit });
            }
        }
        if self.outbox.would_exceed(frame.body.len()) {
            return Err(CommandError::Backpressure);
        }
        self.outbox
            .push_with(frame, length)
            .map_err(CommandError::Encode)?;
        self.sent(frame);
        Ok(())
    }

    /// Counts (and taps) a frame queued for the server.
    fn sent(&mut self, frame: &Frame) {
        self.stats.frames_out[command_index(frame.command)] += 1;
        self.tap.record(Direction::Out, Some(frame), self.now);
    }

    fn process_inbound(&mut self) {
        while self.events.len() < self.config.max_events && self.has_transport() {
            match self.decoder.decode(&mut self.inbound) {
                Ok(Some(Item::Frame(frame))) => {
                    tracing::debug!(target: "stomp::frames", "< {}", frame.summary());
                    self.stats.frames_in[command_index(frame.command)] += 1;
                    self.tap.record(Direction::In, Some(&frame), self.now);
                    self.eol_trails_frame = true;
                    self.handle_frame(frame);
                }
                Ok(Some(Item::Heartbeat)) if std::mem::take(&mut self.eol_trails_frame) => {}
                Ok(Some(Item::Heartbeat)) => {
                    tracing::trace!(target: "stomp::frames", "< heart-beat");
                    self.stats.heartbeats_in += 1;
                    self.tap.record(Direction::In, None, self.now);
                }
                Ok(None) => break,
                Err(e) => self.fail(CloseReason::Protocol(e)),
            }
        }
    }

    fn handle_frame(&mut self, frame: Frame) {
        match (self.state, frame.command) {
            (State::Connecting { .. }, Command::Connected) => self.handle_connected_frame(&frame),
            (_, Command::Error) => self.handle_error(frame),
            (State::Connected | State::Disconnecting { .. }, Command::Message) => {
                self.handle_message(frame)
            }
            (State::Connected | State::Disconnecting { .. }, Command::Receipt) => {
                self.handle_receipt(&frame)
            }
            (state, command) => self.fail(CloseReason::UnexpectedFrame {
                command,
                state: match state {
                    State::Connecting { .. } => "connecting",
                    State::Disconnecting { .. } => "disconnecting",
                    _ => "connected",
                },
            }),
        }
    }

    fn handle_connected_frame(&mut self, frame: &Frame) {
        let version = match frame.header("version") {
            None => Version::V1_0,
            Some(v) => match v.parse::<Version>() {
                Ok(v) if self.config.versions.contains(v) => v,
                _ => {
                    return self.fail(CloseReason::VersionRefused {
                        chosen: v.into(),
                        offered: self.config.versions,
                    })
                }
            },
        };
        let server_heartbeat = match frame.header("heart-beat") {
            Some(value) if version > Version::V1_0 => match value.parse() {
                Ok(hb) => hb,
                Err(e) => return self.fail(CloseReason::BadHeartbeat(e)),
            },
            _ => HeartBeat::OFF,
        };
        let negotiated = if version == Version::V1_0 {
            Negotiated::default()
        } else {
            heartbeat::negotiate(self.config.heartbeat, server_heartbeat)
        };
        self.version = version;
        self.decoder.set_version(version);
        self.outbox.set_version(version);
        self.timers = Some(Timers::new(
            negotiated,
            self.config.heartbeat_grace,
            self.now,
        ));
        self.state = State::Connected;
        let reconnected = self.stats.connects > 0;
        self.stats.connects += 1;
        self.dialer.connected(self.current);
        self.refusals = 0;
        self.events.push_back(Event::Connected(SessionInfo {
            version,
            server: frame.header("server").map(String::from),
            session: frame.header("session").map(String::from),
            heartbeat: negotiated,
            endpoint: self.current.map(|i| self.config.hosts[i].clone()),
            reconnected,
        }));
        if reconnected {
            self.stats.reconnects += 1;
            self.replay_subscriptions();
        }
        self.replay_sends();
    }

    /// After a reconnect: every live subscription again, in its original
    /// order, with its id and headers.
    fn replay_subscriptions(&mut self) {
        for info in self.subscriptions() {
            let frame =
                subscribe_frame(&info.id, &info.destination, info.ack, &info.headers).build();
            if let Err(e) = self.outbox.push(&frame) {
                return self.fail(CloseReason::Unencodable(e));
            }
            self.sent(&frame);
        }
    }

    /// Sends the policy re-sends, oldest first, with their receipt ids.
    fn replay_sends(&mut self) {
        for (receipt, frame, length) in std::mem::take(&mut self.replay) {
            if self.outbox.push_with(&frame, length).is_err() {
                self.events.push_back(Event::RequestFailed {
                    receipt,
                    error: RequestError::ConnectionLost,
                });
                continue;
            }
            self.sent(&frame);
            self.pend(receipt, Some((frame, length)));
        }
    }

    /// Whether a transport is open and its input matters.
    fn has_transport(&self) -> bool {
        matches!(
            self.state,
            State::Connecting { .. } | State::Connected | State::Disconnecting { .. }
        )
    }

    fn handle_message(&mut self, frame: Frame) {
        let subscription: SubscriptionId = match frame.header("subscription") {
            Some(id) => id.into(),
            // 1.0 servers may leave it out: find the subscription by destination.
            None => match frame.header("destination").and_then(|d| {
                // The first one subscribed, when several share it.
                self.subscriptions
                    .iter()
                    .filter(|(_, s)| s.destination == d)
                    .min_by_key(|(_, s)| s.order)
                    .map(|(id, _)| id.clone())
            }) {
                Some(id) => id,
                None => "".into(),
            },
        };
        let mode = self.subscriptions.get(&subscription).map(|s| s.ack);
        let ack = match self.version {
            // An auto subscription never acknowledges, whatever the server
            // sends (some send an `ack` header on every MESSAGE).
            _ if mode == Some(AckMode::Auto) => None,
            // 1.2 servers name what to acknowledge in the `ack` header.
            Version::V1_2 => frame.header("ack").map(String::from),
            _ if mode.is_some_and(AckMode::needs_ack) => {
                frame.header("message-id").map(String::from)
            }
            _ => None,
        }
        .map(|id| AckHandle {
            subscription: subscription.clone(),
            version: self.version,
            id,
            connection: self.stats.connects,
        });
        self.events.push_back(Event::Message(Message {
            subscription,
            frame,
            ack,
        }));
    }

    fn handle_receipt(&mut self, frame: &Frame) {
        let Some(id) = frame.header("receipt-id") else {
            return;
        };
        let id: ReceiptId = id.into();
        if self.disconnect_receipt.as_ref() == Some(&id) {
            return self.finish(CloseReason::Disconnected);
        }
        if self.forget(&id) {
            self.events.push_back(Event::Receipt(id));
        }
    }

    fn handle_error(&mut self, frame: Frame) {
        self.stats.errors += 1;
        let error = ServerError {
            message: frame.header("message").map(String::from),
            frame: Box::new(frame),
        };
        let receipt: Option<ReceiptId> = error.frame.header("receipt-id").map(Into::into);
        if let Some(receipt) = receipt.filter(|id| self.forget(id)) {
            self.events.push_back(Event::RequestFailed {
                receipt,
                error: RequestError::Server(error),
            });
            return;
        }
        // An ERROR naming no pending request ends the session and fails every
        // request still waiting, with the server's own words.
        for receipt in self.take_pending(false) {
            self.events.push_back(Event::RequestFailed {
                receipt,
                error: RequestError::Server(error.clone()),
            });
        }
        self.fail(CloseReason::ServerError(error));
    }

    /// Drops a pending receipt; returns whether it was pending.
    fn forget(&mut self, receipt: &ReceiptId) -> bool {
        let Some(pending) = self.pending.remove(receipt) else {
            return false;
        };
        if let Some(key) = pending.key {
            self.deadlines.remove(&key);
        }
        true
    }

    /// Every pending receipt, oldest request first, forgotten; with
    /// `keep_resends`, the sends the policy re-sends move to the replay list
    /// instead.
    fn take_pending(&mut self, keep_resends: bool) -> Vec<ReceiptId> {
        let mut pending: Vec<(ReceiptId, Pending)> = self.pending.drain().collect();
        pending.sort_by_key(|(_, p)| p.order);
        self.deadlines.clear();
        self.unstarted.clear();
        let mut failed = Vec::with_capacity(pending.len());
        for (receipt, p) in pending {
            match p.resend {
                Some((frame, length)) if keep_resends => self.replay.push((receipt, frame, length)),
                _ => failed.push(receipt),
            }
        }
        failed
    }

    /// Ends the current connection (or dial): the reconnect policy plans the
    /// next dial, or the session ends.
    fn fail(&mut self, reason: CloseReason) {
        let connected = match self.state {
            State::Closed => return,
            State::Disconnecting { .. } => return self.finish(reason),
            _ if !reason.may_reconnect() => return self.finish(reason),
            State::Connected => true,
            State::Idle | State::Dialing { .. } | State::Connecting { .. } => false,
        };
        // A broker refusing CONNECT (a bad login, a vhost it lacks) fails
        // that host for this pass; once every host of a pass refused,
        // retrying would only repeat it, and the refusal is final.
        let refused = matches!(
            (self.state, &reason),
            (State::Connecting { .. }, CloseReason::ServerError(_))
        );
        self.refusals = if refused { self.refusals + 1 } else { 0 };
        let pass = self.dialer.attempts();
        let planned = if connected {
            self.stats.connections_lost += 1;
            self.dialer.lost(self.now)
        } else {
            self.stats.dial_failures += 1;
            self.dialer.failed(self.now)
        };
        let pass_over = planned.is_none_or(|p| p.attempt != pass);
        if refused && pass_over && self.refusals >= self.config.hosts.len().max(1) {
            return self.finish(reason);
        }
        self.drop_connection();
        self.state = State::Idle;
        // Every transport that ends is reported, by its id.
        if let Some(link) = self.link {
            self.events.push_back(if connected {
                Event::ConnectionLost {
                    link,
                    reason: reason.clone(),
                }
            } else {
                Event::DialFailed {
                    link,
                    host: self.current_endpoint(),
                    reason: reason.clone(),
                }
            });
        }
        let Some(Planned {
            host,
            attempt,
            delay,
        }) = planned
        else {
            // A lost connection the policy does not replace ends with its
            // own reason; dials that ran out end in giving up.
            return self.finish(if connected {
                reason
            } else {
                CloseReason::GaveUp {
                    attempts: self.dialer.attempts(),
                    last: Box::new(reason),
                }
            });
        };
        // Within a pass the next host is due at once: its dial says so.
        if connected || attempt != pass {
            self.events.push_back(Event::Reconnecting {
                attempt,
                host: self.config.hosts[host].clone(),
                delay,
            });
        }
    }

    /// The endpoint dialled or connected to, if it came from the host list.
    fn current_endpoint(&self) -> Option<Endpoint> {
        self.current.and_then(|i| self.config.hosts.get(i).cloned())
    }

    /// Forgets everything tied to the current connection; pending requests
    /// fail (or wait for the replay).
    fn drop_connection(&mut self) {
        for receipt in self.take_pending(true) {
            self.events.push_back(Event::RequestFailed {
                receipt,
                error: RequestError::ConnectionLost,
            });
        }
        self.timers = None;
        self.outbox.clear();
        self.inbound.clear();
        self.transactions.clear();
        self.disconnect_receipt = None;
    }

    /// Ends the session for good.
    fn finish(&mut self, reason: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        self.drop_connection();
        for (receipt, ..) in std::mem::take(&mut self.replay) {
            self.events.push_back(Event::RequestFailed {
                receipt,
                error: RequestError::ConnectionLost,
            });
        }
        self.state = State::Closed;
        self.events.push_back(Event::Closed(reason));
    }
}
