//! The embedded broker on Tokio: a TCP listener and optionally a WebSocket
//! one (loopback by default), each also over TLS when given a certificate
//! ([`ServeTls`]), and one task that owns the [`Engine`]. Each
//! connection has a reader task that hands the engine what arrives, and a
//! writer task that writes what the engine gives, a bounded channel between
//! them: the engine asks a connection for more only while its writer has
//! room. When the engine's store is full (`EngineConfig::max_stored`), the
//! readers of connections that send stop until consumers have drained a
//! quarter of it: producers are held back, not refused, and memory stays
//! bounded.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use stomp_broker::serve::{Broker, ServeConfig};
//!
//! let broker = Broker::start(ServeConfig {
//!     listen: "127.0.0.1:0".parse().unwrap(),
//!     ws: Some("127.0.0.1:0".parse().unwrap()),
//!     ..ServeConfig::default()
//! })
//! .await?;
//! assert!(broker.url().starts_with("stomp://127.0.0.1:"));
//! assert!(broker.ws_url().unwrap().starts_with("ws://127.0.0.1:"));
//! # Ok(())
//! # }
//! ```

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::engine::{ConnectionId, Engine, EngineConfig};

/// The room one TCP read may fill.
const READ_ROOM: usize = 16 * 1024;

/// Chunks waiting for one TCP connection's writer.
const WRITER_QUEUE: usize = 16;

/// WebSocket messages (each all the whole frames waiting) waiting for one
/// connection's writer.
const WS_WRITER_QUEUE: usize = 2;

/// The STOMP WebSocket sub-protocols, most preferred first.
const WS_PROTOCOLS: [&str; 3] = ["v12.stomp", "v11.stomp", "v10.stomp"];

/// Where the broker listens, and how it behaves.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// The STOMP over TCP listener's address.
    pub listen: SocketAddr,
    /// The STOMP over WebSocket listener's address, if any (any HTTP path).
    pub ws: Option<SocketAddr>,
    /// The TLS listeners, if any.
    pub tls: Option<ServeTls>,
    /// The most connections open at once, over all listeners; one more is
    /// closed at once. Default 10,000. With the decoder's limits
    /// (`engine.server.limits`) and the store's (`engine.max_stored`), this
    /// bounds the broker's memory.
    pub max_connections: usize,
    /// The largest WebSocket message (and frame) a client may send; a larger
    /// one ends its connection, as brokers with a small limit do (test a
    /// client's message splitting with it). `None`: 64 MiB.
    pub ws_max_message: Option<usize>,
    /// Queues, topics, logins, sessions. Its server's `connect_timeout` also
    /// bounds the TLS and WebSocket handshakes before CONNECT.
    pub engine: EngineConfig,
}

/// STOMP over TLS (and optionally WebSocket over TLS) with one certificate.
///
/// ```
/// use stomp_broker::serve::ServeTls;
///
/// // A certificate and key in PEM, as `openssl` or `rcgen` writes them.
/// let error = ServeTls::from_pem(b"not a certificate", b"nor a key").unwrap_err();
/// assert!(error.to_string().contains("certificate"), "{error}");
/// ```
#[derive(Clone, Debug)]
pub struct ServeTls {
    /// The STOMP over TLS listener's address, if any.
    pub listen: Option<SocketAddr>,
    /// The STOMP over WebSocket over TLS listener's address, if any.
    pub wss: Option<SocketAddr>,
    /// The certificate, the key and how client certificates are checked.
    pub config: Arc<rustls::ServerConfig>,
}

/// Whether a TLS listener asks for client certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCerts {
    /// A client without a certificate is refused; one is checked against the CA.
    Required,
    /// A client may go without one; a certificate given is checked against the
    /// CA (RabbitMQ's `verify_peer` with `fail_if_no_peer_cert = false`).
    Optional,
}

impl ServeTls {
    /// A listener on 127.0.0.1:61614 (STOMP over TLS, RabbitMQ's port) with
    /// the certificate chain and private key in PEM; client certificates are
    /// not asked for.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<ServeTls, TlsSetupError> {
        ServeTls::with_client_ca(cert_chain, key, None)
    }

    /// [`from_pem`](ServeTls::from_pem), checking client certificates against
    /// the CA certificates in `client_ca` (PEM) when given.
    pub fn with_client_ca(
        cert_chain: &[u8],
        key: &[u8],
        client_ca: Option<(&[u8], ClientCerts)>,
    ) -> Result<ServeTls, TlsSetupError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};

        let chain = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsSetupError::new("certificate", e))?;
        if chain.is_empty() {
            return Err(TlsSetupError::new("certificate", "no CERTIFICATE in it"));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsSetupError::new("key", e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsSetupError::new("protocol versions", e))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some((pem, certs)) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| TlsSetupError::new("client CA", e))?;
                    roots
                        .add(cert)
                        .map_err(|e| TlsSetupError::new("client CA", e))?;
                }
                if roots.is_empty() {
                    return Err(TlsSetupError::new("client CA", "no CERTIFICATE in it"));
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                );
                let verifier = match certs {
                    ClientCerts::Required => verifier,
                    ClientCerts::Optional => verifier.allow_unauthenticated(),
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| TlsSetupError::new("client CA", e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsSetupError::new("certificate and key", e))?;
        Ok(ServeTls {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 61614))),
            wss: None,
            config: Arc::new(config),
        })
    }
}

/// Why a [`ServeTls`] could not be made: which part, and what was wrong.
#[derive(Debug)]
pub struct TlsSetupError {
    part: &'static str,
    reason: String,
}

impl TlsSetupError {
    fn new(part: &'static str, reason: impl std::fmt::Display) -> TlsSetupError {
        TlsSetupError {
            part,
            reason: reason.to_string(),
        }
    }

    /// The part at fault: `certificate`, `key`, `client CA`, ...
    pub fn part(&self) -> &'static str {
        self.part
    }
}

impl std::fmt::Display for TlsSetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TLS {}: {}", self.part, self.reason)
    }
}

impl std::error::Error for TlsSetupError {}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 61613)),
            ws: None,
            tls: None,
            max_connections: 10_000,
            ws_max_message: None,
            engine: EngineConfig::default(),
        }
    }
}

/// A running broker; dropping it stops it (connections are closed).
#[derive(Debug)]
pub struct Broker {
    addr: SocketAddr,
    ws_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    wss_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
}

impl Broker {
    /// Binds the listeners and starts the broker on the current Tokio runtime.
    pub async fn start(config: ServeConfig) -> io::Result<Broker> {
        let handshake = config.engine.server.connect_timeout;
        let (events, inbox) = mpsc::channel(256);
        let plain = Listening {
            transport: Transport::Tcp,
            tls: None,
            handshake,
            ws_max_message: config.ws_max_message,
            open: Arc::new(OpenConnections {
                count: AtomicUsize::new(0),
                max: config.max_connections,
            }),
        };
        let mut listeners = Vec::new();
        let addr = bind(config.listen, plain.clone(), &mut listeners).await?;
        let ws_addr = match config.ws {
            Some(at) => Some(bind(at, plain.websocket(), &mut listeners).await?),
            None => None,
        };
        let (mut tls_addr, mut wss_addr) = (None, None);
        if let Some(tls) = config.tls {
            let secure = Listening {
                tls: Some(TlsAcceptor::from(tls.config)),
                ..plain
            };
            if let Some(at) = tls.listen {
                tls_addr = Some(bind(at, secure.clone(), &mut listeners).await?);
            }
            if let Some(at) = tls.wss {
                wss_addr = Some(bind(at, secure.websocket(), &mut listeners).await?);
            }
        }
        for (listener, how) in listeners {
            tokio::spawn(accept_loop(listener, how, events.clone()));
        }
        let (stop, stopped) = oneshot::channel();
        let engine = Engine::new(config.engine);
        tokio::spawn(run_engine(engine, inbox, stopped));
        Ok(Broker {
            addr,
            ws_addr,
            tls_addr,
            wss_addr,
            stop: Some(stop),
        })
    }

    /// The TCP listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `stomp://<addr>`.
    pub fn url(&self) -> String {
        format!("stomp://{}", self.addr)
    }

    /// The WebSocket listener's address, if it has one.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// `ws://<addr>/stomp`, if it has a WebSocket listener.
    pub fn ws_url(&self) -> Option<String> {
        self.ws_addr.map(|addr| format!("ws://{addr}/stomp"))
    }

    /// The STOMP over TLS listener's address, if it has one.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// `stomp+ssl://<addr>`, if it has a TLS listener.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_addr.map(|addr| format!("stomp+ssl://{addr}"))
    }

    /// The WebSocket over TLS listener's address, if it has one.
    pub fn wss_addr(&self) -> Option<SocketAddr> {
        self.wss_addr
    }

    /// `wss://<addr>/stomp`, if it has a WebSocket over TLS listener.
    pub fn wss_url(&self) -> Option<String> {
        self.wss_addr.map(|addr| format!("wss://{addr}/stomp"))
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// How a connection carries STOMP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    /// Each WebSocket message carries whole frames.
    WebSocket,
}

/// What reaches the engine task.
enum Event {
    Open {
        writer: mpsc::Sender<Bytes>,
        /// Whether the reader may read (flow control).
        reading: watch::Sender<bool>,
        transport: Transport,
        peer: SocketAddr,
        id: oneshot::Sender<ConnectionId>,
    },
    Bytes(ConnectionId, Bytes),
    Closed(ConnectionId),
    /// A writer wrote: it may take more.
    Wrote,
}

/// How one listener's connections carry STOMP.
#[derive(Clone)]
struct Listening {
    transport: Transport,
    tls: Option<TlsAcceptor>,
    /// How long the TLS and WebSocket handshakes may take.
    handshake: Duration,
    /// The largest WebSocket message taken.
    ws_max_message: Option<usize>,
    /// Shared by every listener.
    open: Arc<OpenConnections>,
}

/// How many connections are open, and how many may be.
struct OpenConnections {
    count: AtomicUsize,
    max: usize,
}

/// One open connection, counted until dropped.
struct Counted(Arc<OpenConnections>);

impl OpenConnections {
    /// Counts one more connection, if there is room.
    fn admit(self: &Arc<Self>) -> Option<Counted> {
        let admitted = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        admitted.then(|| Counted(self.clone()))
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Listening {
    fn websocket(&self) -> Listening {
        Listening {
            transport: Transport::WebSocket,
            ..self.clone()
        }
    }
}

/// Binds `at` for `how`; its address, or an error naming it.
async fn bind(
    at: SocketAddr,
    how: Listening,
    listeners: &mut Vec<(TcpListener, Listening)>,
) -> io::Result<SocketAddr> {
    let listen = || {
        let socket = match at {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(at)?;
        // Room for a reconnect storm (the kernel caps it at somaxconn).
        socket.listen(4096)
    };
    let listener =
        listen().map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {at}: {e}")))?;
    let addr = listener.local_addr()?;
    listeners.push((listener, how));
    Ok(addr)
}

async fn accept_loop(listener: TcpListener, how: Listening, events: mpsc::Sender<Event>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // The engine has stopped: so does the listener.
            () = events.closed() => return,
        };
        let Ok((stream, peer)) = accepted else {
            continue;
        };
        let Some(counted) = how.open.admit() else {
            tracing::warn!(%peer, max = how.open.max, "too many connections: closed at once");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (how, events) = (how.clone(), events.clone());
        tokio::spawn(async move {
            serve_socket(stream, peer, how, events).await;
            drop(counted);
        });
    }
}

/// One accepted socket: the TLS handshake if its listener has one (within
/// the handshake timeout), then STOMP over TCP or WebSocket.
async fn serve_socket(
    stream: TcpStream,
    peer: SocketAddr,
    how: Listening,
    events: mpsc::Sender<Event>,
) {
    let Some(tls) = how.tls.clone() else {
        match how.transport {
            Transport::Tcp => {
                let (reader, writer) = stream.into_split();
                connection(reader, writer, peer, events).await;
            }
            // Boxed, as below: the task of an idle plain TCP connection
            // stays as small as its own state.
            Transport::WebSocket => {
                Box::pin(ws_connection(stream, peer, &how, events)).await;
            }
        }
        return;
    };
    Box::pin(serve_tls(stream, peer, tls, how, events)).await;
}

/// [`serve_socket`] over TLS.
async fn serve_tls(
    stream: TcpStream,
    peer: SocketAddr,
    tls: TlsAcceptor,
    how: Listening,
    events: mpsc::Sender<Event>,
) {
    let stream = match tokio::time::timeout(how.handshake, tls.accept(stream)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::info!(%peer, "TLS handshake timed out");
            return;
        }
    };
    match how.transport {
        Transport::Tcp => {
            let (reader, writer) = tokio::io::split(stream);
            connection(reader, writer, peer, events).await;
        }
        Transport::WebSocket => ws_connection(stream, peer, &how, events).await,
    }
}

/// Registers a connection with the engine: its id, and whether its reader
/// may read; none if the engine stopped.
async fn open(
    events: &mpsc::Sender<Event>,
    transport: Transport,
    peer: SocketAddr,
    writer: mpsc::Sender<Bytes>,
) -> Option<(ConnectionId, watch::Receiver<bool>)> {
    let (id_tx, id_rx) = oneshot::channel();
    let (reading, may_read) = watch::channel(true);
    let open = Event::Open {
        writer,
        reading,
        transport,
        peer,
        id: id_tx,
    };
    events.send(open).await.ok()?;
    Some((id_rx.await.ok()?, may_read))
}

/// One connection: registers with the engine, then runs its reader here
/// and its writer in a task of its own.
async fn connection<R, W>(
    mut reader: R,
    mut writer: W,
    peer: SocketAddr,
    events: mpsc::Sender<Event>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (writer_tx, mut writer_rx) = mpsc::channel::<Bytes>(WRITER_QUEUE);
    let Some((id, mut may_read)) = open(&events, Transport::Tcp, peer, writer_tx).await else {
        return;
    };
    let wrote = events.clone();
    tokio::spawn(async move {
        while let Some(bytes) = writer_rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
            let _ = wrote.try_send(Event::Wrote);
        }
        let _ = writer.shutdown().await;
    });
    // Read into room that is not touched before octets land in it (an idle
    // connection costs no resident buffer) and hand each read over whole.
    // The first read gets little room: enough for a CONNECT, and all that
    // an idle connection holds.
    let mut buf = BytesMut::with_capacity(1024);
    // Reads only while the engine lets it (flow control).
    while may_read.wait_for(|may| *may).await.is_ok() {
        if buf.capacity() < 512 {
            buf.reserve(READ_ROOM);
        }
        let read = match read_unless_told(&mut may_read, reader.read_buf(&mut buf)).await {
            Step::Read(read) => read,
            Step::Look => continue,
            Step::Stop => break,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if events
                    .send(Event::Bytes(id, buf.split().freeze()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    let _ = events.send(Event::Closed(id)).await;
}

/// What a reader does next.
enum Step<T> {
    /// What the read gave.
    Read(T),
    /// The engine paused or resumed reading meanwhile: look again.
    Look,
    /// The engine is done with the connection: stop reading, so that the
    /// socket closes even if the client never does.
    Stop,
}

/// Waits for `read` (cancel-safe) unless the engine says otherwise first.
async fn read_unless_told<F: std::future::Future>(
    may_read: &mut watch::Receiver<bool>,
    read: F,
) -> Step<F::Output> {
    tokio::select! {
        out = read => Step::Read(out),
        changed = may_read.changed() => match changed {
            Ok(()) => Step::Look,
            Err(_) => Step::Stop,
        },
    }
}

/// Agrees on the first STOMP sub-protocol the client offers, if any.
// The handshake library's callback type, not ours.
#[allow(clippy::result_large_err)]
fn choose_protocol(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    if let Some(chosen) = WS_PROTOCOLS.iter().find(|p| offered.contains(p)) {
        response
            .headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(chosen));
    }
    Ok(response)
}

/// One STOMP over WebSocket connection: the handshake (agreeing on a STOMP
/// sub-protocol when the client offers one), then like [`connection`],
/// with text or binary messages in both directions.
async fn ws_connection<S>(stream: S, peer: SocketAddr, how: &Listening, events: mpsc::Sender<Event>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = how.ws_max_message.map(|max| {
        WebSocketConfig::default()
            .max_message_size(Some(max))
            .max_frame_size(Some(max))
    });
    let accept = tokio_tungstenite::accept_hdr_async_with_config(stream, choose_protocol, limits);
    let Ok(Ok(socket)) = tokio::time::timeout(how.handshake, accept).await else {
        tracing::info!(%peer, "WebSocket handshake failed or timed out");
        return;
    };
    let (mut sink, mut messages) = socket.split();
    let (writer_tx, mut writer_rx) = mpsc::channel::<Bytes>(WS_WRITER_QUEUE);
    let Some((id, mut may_read)) = open(&events, Transport::WebSocket, peer, writer_tx).await
    else {
        return;
    };
    let wrote = events.clone();
    tokio::spawn(async move {
        while let Some(bytes) = writer_rx.recv().await {
            let message = match std::str::from_utf8(&bytes) {
                Ok(text) => Message::text(text),
                Err(_) => Message::binary(bytes),
            };
            if sink.send(message).await.is_err() {
                break;
            }
            let _ = wrote.try_send(Event::Wrote);
        }
        let _ = sink.close().await;
    });
    while may_read.wait_for(|may| *may).await.is_ok() {
        let next = match read_unless_told(&mut may_read, messages.next()).await {
            Step::Read(next) => next,
            Step::Look => continue,
            Step::Stop => break,
        };
        let Some(Ok(message)) = next else {
            break;
        };
        let bytes = match message {
            Message::Text(text) => Bytes::from(text),
            Message::Binary(bytes) => bytes,
            Message::Close(_) => break,
            // Pings are answered by the library.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        if events.send(Event::Bytes(id, bytes)).await.is_err() {
            return;
        }
    }
    let _ = events.send(Event::Closed(id)).await;
}

async fn run_engine(
    mut engine: Engine,
    mut inbox: mpsc::Receiver<Event>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut writers: HashMap<ConnectionId, Writer> = HashMap::new();
    let mut blocked = HashSet::new();
    let mut holding = false;
    loop {
        let deadline = engine.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stopped => return,
            event = inbox.recv() => match event {
                None => return,
                Some(Event::Open { writer, reading, transport, peer, id }) => {
                    let connection = engine.open(Instant::now());
                    tracing::info!(connection, %peer, ?transport, "connection opened");
                    let writer = Writer { channel: writer, transport, reading, paused: false };
                    writers.insert(connection, writer);
                    let _ = id.send(connection);
                }
                Some(Event::Bytes(id, bytes)) => engine.input(id, Instant::now(), &bytes),
                Some(Event::Closed(id)) => {
                    tracing::info!(connection = id, "connection closed");
                    engine.closed(id);
                    writers.remove(&id);
                }
                Some(Event::Wrote) => {}
            },
            () = sleep => engine.handle_timeout(Instant::now()),
        }
        let visited = flush(&mut engine, &mut writers, &mut blocked);
        holding = hold_producers(&mut engine, &mut writers, holding, &visited);
    }
}

/// Stops the readers of connections that send once the store is full, and
/// lets them go once it is down to three quarters; whether it holds them.
/// Every connection is looked at when that changes, and while it holds,
/// those `visited` (a connection may have become a producer).
fn hold_producers(
    engine: &mut Engine,
    writers: &mut HashMap<ConnectionId, Writer>,
    holding: bool,
    visited: &[ConnectionId],
) -> bool {
    let hold = if engine.is_full() {
        true
    } else if engine.is_drained() {
        false
    } else {
        holding
    };
    let stored = engine.stored();
    if hold && !holding {
        tracing::info!(stored, "store full: producers held back");
    } else if holding && !hold {
        tracing::info!(stored, "store drained: producers resume");
    }
    let now = Instant::now();
    let mut apply = |id: ConnectionId, writer: &mut Writer| {
        let pause = hold && engine.is_producer(id);
        if pause != writer.paused {
            writer.paused = pause;
            let _ = writer.reading.send(!pause);
            engine.set_reading_paused(id, now, pause);
        }
    };
    if hold != holding {
        for (&id, writer) in writers.iter_mut() {
            apply(id, writer);
        }
    } else if hold {
        for id in visited {
            if let Some(writer) = writers.get_mut(id) {
                apply(*id, writer);
            }
        }
    }
    hold
}

/// One connection's writer task.
struct Writer {
    channel: mpsc::Sender<Bytes>,
    transport: Transport,
    /// Tells the connection's reader whether it may read.
    reading: watch::Sender<bool>,
    paused: bool,
}

impl Writer {
    /// The next chunk for the writer: as the engine gives it over TCP; over
    /// WebSocket, everything waiting, so each message holds whole frames.
    fn next(&self, engine: &mut Engine, id: ConnectionId, now: Instant) -> Option<Bytes> {
        let first = engine.poll_transmit(id, now)?;
        if self.transport == Transport::Tcp {
            return Some(first);
        }
        let Some(second) = engine.poll_transmit(id, now) else {
            return Some(first);
        };
        let mut whole = first.to_vec();
        whole.extend_from_slice(&second);
        while let Some(more) = engine.poll_transmit(id, now) {
            whole.extend_from_slice(&more);
        }
        Some(Bytes::from(whole))
    }
}

/// Hands the writers of the connections that may have output (the ones
/// the engine says are ready, and those whose writer was full) what the
/// engine has for them while they have room, never visiting every
/// connection; lets go of ended connections once drained. The connections
/// visited.
fn flush(
    engine: &mut Engine,
    writers: &mut HashMap<ConnectionId, Writer>,
    blocked: &mut HashSet<ConnectionId>,
) -> Vec<ConnectionId> {
    let now = Instant::now();
    let mut visited = Vec::new();
    let mut todo: Vec<ConnectionId> = blocked.drain().collect();
    loop {
        // A drained connection may let queued messages out to others.
        while let Some(id) = engine.poll_ready() {
            todo.push(id);
        }
        let Some(id) = todo.pop() else {
            break;
        };
        visited.push(id);
        let Some(writer) = writers.get(&id) else {
            continue;
        };
        let drained = loop {
            if writer.channel.capacity() == 0 {
                break false;
            }
            match writer.next(engine, id, now) {
                // Room was checked: only a writer that is gone refuses.
                Some(bytes) => {
                    if writer.channel.try_send(bytes).is_err() {
                        break true;
                    }
                }
                None => break true,
            }
        };
        if !drained {
            blocked.insert(id);
        } else if engine.is_finished(id) {
            // Dropping the channel ends the writer, which shuts the socket
            // down; reading is stopped for good, which closes it.
            if let Some(writer) = writers.remove(&id) {
                let _ = writer.reading.send(false);
            }
        }
    }
    visited
}
