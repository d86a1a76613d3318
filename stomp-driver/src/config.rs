//! The configuration every adapter takes.

use std::time::Duration;

use stomp_proto::client::ClientConfig;

use crate::{Error, TcpOptions, Tls};

/// How a client connects and behaves (the same for every adapter).
#[derive(Clone, Debug)]
pub struct Config {
    /// The session's configuration: hosts, versions, heart-beats, credentials,
    /// timeouts, limits and the reconnect policy.
    pub session: ClientConfig,
    /// Messages a subscription holds before the socket stops being read
    /// (back-pressure towards the broker), after at most
    /// [`read_ahead`](Config::read_ahead) more bytes.
    pub subscription_capacity: usize,
    /// Bytes still read from the socket once a subscription is full (4 MiB
    /// by default; the messages they hold wait beyond the capacity). Reading
    /// stops only after them, so a burst waits in our memory rather than in
    /// the kernel's socket buffer, where a full buffer can make the kernel
    /// drop segments and the sender back off for seconds. 0: stop at once.
    pub read_ahead: usize,
    /// How long bytes may wait for the socket to take them (no write
    /// progress at all) before the connection counts as failed.
    pub write_timeout: Duration,
    /// How long a call made while the connection is down (reconnecting)
    /// waits for it before failing with [`Error::Offline`]; its frame goes
    /// out once reconnected (a receipted send is confirmed then). `None`:
    /// such calls fail at once with
    /// [`CommandError::NotConnected`](stomp_proto::client::CommandError::NotConnected).
    /// 30 s by default. While waiting, calls hold at most the session's
    /// `max_outgoing` octets of bodies; past that they fail with
    /// back-pressure.
    pub offline_wait: Option<Duration>,
    /// TLS settings for `stomp+ssl://` and `wss://` hosts.
    pub tls: Tls,
    /// Octets of sends without a receipt, ACKs and NACKs that may be on
    /// their way to the connection at once (1 MiB by default). Such a call
    /// returns as soon as it has room here, without waiting for the
    /// connection's task; once the window is full, callers wait (blocking,
    /// or as a pending future) until the task has taken some. A refusal
    /// the task finds later (a send while offline past
    /// [`offline_wait`](Config::offline_wait), say) comes back from the
    /// caller's next such call.
    pub send_window: usize,
    /// WebSocket settings for `ws://` and `wss://` hosts.
    pub websocket: WebSocket,
    /// Where replies to the client's requests come (the `reply-to` of a
    /// `request`): a destination it subscribes to at the first request.
    /// `None` (the default) picks one per broker: RabbitMQ's
    /// `/temp-queue/` (the broker subscribes the connection itself), and
    /// elsewhere a subscription to a `/temp-queue/` name with a random
    /// part (a temporary queue of the connection on ActiveMQ, a queue
    /// nobody else uses on a broker without them).
    pub reply_destination: Option<String>,
    /// TCP settings: keepalive, a local address to bind to, `TCP_NODELAY`.
    pub tcp: TcpOptions,
    /// The idle watchdog: a subscription that receives nothing for this
    /// long while the connection is up is made again (UNSUBSCRIBE, then
    /// SUBSCRIBE with the same id, destination and headers, told as
    /// [`Lifecycle::Resubscribed`](crate::Lifecycle::Resubscribed)). It
    /// catches the "zombie consumer" a broker forgot while heart-beats
    /// still flow (after a failover inside a cluster, say); on a quiet
    /// destination it costs two frames per period. `None` (the default):
    /// off. The replies' subscription of `request` is left alone.
    pub resubscribe_idle: Option<Duration>,
    /// Confirmed mode: every SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK,
    /// BEGIN, COMMIT and ABORT asks for a receipt, and its call returns
    /// only once the broker has answered or the session's
    /// `receipt_timeout` has passed. Inside a transaction, SENDs, ACKs and
    /// NACKs take effect at the COMMIT, whose receipt confirms them all
    /// (RabbitMQ holds back the receipts of transactional frames until the
    /// COMMIT, so they could not be awaited one by one). Each failure then says what became
    /// of the request through [`Error::outcome`]: rejected (the broker's
    /// ERROR named it: it did not happen), ambiguous (no receipt in time,
    /// or the connection lost first: it may or may not have happened), or
    /// not sent. A COMMIT, ABORT or transactional request whose outcome is
    /// ambiguous is never sent again by the client (only plain SENDs are,
    /// and only under [`UnconfirmedSends::Resend`](stomp_proto::reconnect::UnconfirmedSends)).
    /// Slower (a round trip per call) and exact. Off by default.
    pub confirm: bool,
}

/// How a `ws://` or `wss://` connection is made.
///
/// ```
/// let mut config = stomp_driver::Config::from_url("ws://127.0.0.1:15674/ws?access_token=abc")?;
/// config.websocket.headers.push(("Origin".into(), "https://app.example".into()));
/// config.websocket.max_message = Some(16 * 1024); // a broker that refuses larger messages
/// # Ok::<(), stomp_driver::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebSocket {
    /// Extra headers on the HTTP upgrade request (`Authorization`,
    /// `Cookie`, `Origin`...), after the ones the handshake needs. The
    /// URL's query string goes into the request as written.
    pub headers: Vec<(String, String)>,
    /// The largest WebSocket message to send: longer output (a large
    /// frame, or several frames) is split over several messages, as
    /// stompjs's `splitLargeFrames` does, for brokers with a small message
    /// limit. The broker must read STOMP across messages (RabbitMQ and the
    /// embedded broker do). `None`: as large as it comes.
    pub max_message: Option<usize>,
}

/// [`Config::read_ahead`]'s default.
pub(crate) const DEFAULT_READ_AHEAD: usize = 4 << 20;

impl Config {
    /// A configuration around a session configuration.
    pub fn new(session: ClientConfig) -> Config {
        let mut session = session;
        session.reconnect.seed = random_seed();
        Config {
            session,
            subscription_capacity: 1024,
            read_ahead: DEFAULT_READ_AHEAD,
            write_timeout: Duration::from_secs(30),
            offline_wait: Some(Duration::from_secs(30)),
            tls: Tls::default(),
            send_window: 1 << 20,
            websocket: WebSocket::default(),
            reply_destination: None,
            tcp: TcpOptions::default(),
            resubscribe_idle: None,
            confirm: false,
        }
    }

    /// From a URL: `stomp://[user:pass@]host[:port][/vhost]`, a host list, or
    /// the `failover:(..)?options` form (see [`stomp_proto::uri`]).
    pub fn from_url(url: &str) -> Result<Config, Error> {
        Ok(Config::new(ClientConfig::from_uri(url)?))
    }
}

impl Config {
    /// The session's configuration as the adapters start it: for `udp://`
    /// hosts, frames are limited to what one datagram holds (the smallest
    /// `max_datagram` of them, less the sender header).
    pub fn session_config(&self) -> ClientConfig {
        let mut session = self.session.clone();
        let datagram_limit = session
            .hosts
            .iter()
            .filter(|host| host.scheme == stomp_proto::uri::Scheme::Udp)
            .filter_map(|host| crate::multicast::options(host).ok())
            .map(|options| options.group_config(0).max_frame())
            .min();
        if let Some(limit) = datagram_limit {
            session.max_frame = Some(session.max_frame.map_or(limit, |m| m.min(limit)));
        }
        session
    }
}

/// A seed from the OS's per-process hash keys (reconnect jitter, multicast
/// identities).
pub(crate) fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
