//! What the scenarios share: the brokers and how to reach them, the skip
//! rule, waiting for life-cycle events, fresh queue names.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stomp_driver::{Config, Events, Lifecycle, Tls};
use stomp_proto::client::SessionInfo;

use crate::{Adapter, SuiteClient, SuiteSub};

/// How long a scenario waits for something that should come.
pub const WAIT: Duration = Duration::from_secs(10);

/// Where `scripts/brokers` leaves its throw-away CA.
pub const TLS_DIR: &str = "/etc/rabbitmq/stomp-tls";

/// One broker over one transport.
#[derive(Debug)]
pub struct Broker {
    /// `rabbitmq` or `activemq`: what the broker-specific answers depend on.
    pub kind: &'static str,
    /// `tcp`, `tls`, `ws` or `wss`.
    pub transport: &'static str,
    /// Where, with the test credentials.
    pub url: &'static str,
    /// The port, to check that it listens.
    pub port: u16,
}

/// Where the suite starts its own embedded broker (`stomp-broker`).
pub const EMBEDDED_PORT: u16 = 61633;

/// The embedded broker's WebSocket listener.
pub const EMBEDDED_WS_PORT: u16 = 61634;

/// The embedded broker's STOMP over TLS listener (with RabbitMQ's
/// certificate from [`TLS_DIR`]).
pub const EMBEDDED_TLS_PORT: u16 = 61635;

/// The embedded broker's WebSocket over TLS listener.
pub const EMBEDDED_WSS_PORT: u16 = 61636;

/// Every broker and transport the suite runs against.
pub const ALL: [Broker; 9] = [
    Broker {
        kind: "rabbitmq",
        transport: "tcp",
        url: "stomp://guest:guest@127.0.0.1:61613",
        port: 61613,
    },
    Broker {
        kind: "activemq",
        transport: "tcp",
        url: "stomp://guest:guest@127.0.0.1:61623",
        port: 61623,
    },
    Broker {
        kind: "rabbitmq",
        transport: "tls",
        url: "stomp+ssl://guest:guest@127.0.0.1:61614",
        port: 61614,
    },
    Broker {
        kind: "rabbitmq",
        transport: "ws",
        url: "ws://guest:guest@127.0.0.1:15674/ws",
        port: 15674,
    },
    Broker {
        kind: "rabbitmq",
        transport: "wss",
        url: "wss://guest:guest@localhost:15673/ws",
        port: 15673,
    },
    Broker {
        kind: "embedded",
        transport: "tcp",
        url: "stomp://guest:guest@127.0.0.1:61633",
        port: EMBEDDED_PORT,
    },
    Broker {
        kind: "embedded",
        transport: "ws",
        url: "ws://guest:guest@127.0.0.1:61634/stomp",
        port: EMBEDDED_WS_PORT,
    },
    Broker {
        kind: "embedded",
        transport: "tls",
        url: "stomp+ssl://guest:guest@127.0.0.1:61635",
        port: EMBEDDED_TLS_PORT,
    },
    Broker {
        kind: "embedded",
        transport: "wss",
        url: "wss://guest:guest@localhost:61636/stomp",
        port: EMBEDDED_WSS_PORT,
    },
];

/// Starts the embedded broker for this test binary, once: logins
/// guest/guest only, on [`EMBEDDED_PORT`] and [`EMBEDDED_WS_PORT`], and
/// over TLS on [`EMBEDDED_TLS_PORT`] and [`EMBEDDED_WSS_PORT`] with the
/// certificate `scripts/brokers` made for RabbitMQ, checking client
/// certificates against its CA as RabbitMQ does (optional, verified when
/// given); kept for the process's life.
pub fn embedded() {
    static STARTED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    STARTED.get_or_init(|| {
        let read = |name: &str| {
            std::fs::read(format!("{TLS_DIR}/{name}"))
                .unwrap_or_else(|e| panic!("{TLS_DIR}/{name}: {e} (run `bash scripts/brokers`)"))
        };
        let ca = read("ca.pem");
        let certs = stomp_broker::serve::ClientCerts::Optional;
        let mut tls = stomp_broker::serve::ServeTls::with_client_ca(
            &read("server.pem"),
            &read("server-key.pem"),
            Some((&ca, certs)),
        )
        .unwrap_or_else(|e| panic!("the embedded broker's TLS: {e}"));
        tls.listen = Some(([127, 0, 0, 1], EMBEDDED_TLS_PORT).into());
        tls.wss = Some(([127, 0, 0, 1], EMBEDDED_WSS_PORT).into());
        let config = stomp_broker::serve::ServeConfig {
            listen: ([127, 0, 0, 1], EMBEDDED_PORT).into(),
            ws: Some(([127, 0, 0, 1], EMBEDDED_WS_PORT).into()),
            tls: Some(tls),
            engine: stomp_broker::engine::EngineConfig {
                users: vec![("guest".into(), "guest".into())],
                ..Default::default()
            },
            ..Default::default()
        };
        run_broker("embedded-broker", config);
    });
}

/// The URL of an embedded broker, started once per process on an
/// ephemeral port, that takes WebSocket messages of at most `limit` octets
/// (the first call's) and ends a connection that sends a larger one.
pub fn embedded_small_websocket(limit: usize) -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        let config = stomp_broker::serve::ServeConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            ws: Some(([127, 0, 0, 1], 0).into()),
            ws_max_message: Some(limit),
            ..Default::default()
        };
        run_broker("embedded-small-ws", config).expect("a WebSocket listener")
    })
}

/// Starts an embedded broker with `config` on a thread of its own (named
/// `name`), kept for the process's life: its WebSocket URL, if it has one.
fn run_broker(name: &str, config: stomp_broker::serve::ServeConfig) -> Option<String> {
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let broker = stomp_broker::serve::Broker::start(config).await;
                let started = broker.as_ref().map(|b| b.ws_url());
                let _ = ready_tx.send(started.map_err(|e| e.to_string()));
                let _broker = broker;
                std::future::pending::<()>().await;
            });
        })
        .unwrap();
    ready
        .recv()
        .unwrap()
        .unwrap_or_else(|e| panic!("the {name} did not start: {e}"))
}

impl std::fmt::Display for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind, self.transport)
    }
}

impl Broker {
    /// A configuration for this broker, trusting the brokers' CA.
    pub fn config(&self) -> Config {
        self.config_for(self.url)
    }

    /// A configuration for `url` (this broker's, changed), trusting the
    /// brokers' CA.
    pub fn config_for(&self, url: &str) -> Config {
        let mut config = Config::from_url(url).unwrap();
        if matches!(self.transport, "tls" | "wss") {
            config.tls = Tls::default()
                .with_ca_file(format!("{TLS_DIR}/ca.pem"))
                .unwrap_or_else(|e| panic!("{self}: {e} (run `bash scripts/brokers`)"));
        }
        config
    }

    /// Connects adapter `A`, or panics saying where.
    pub fn connect<A: Adapter>(&self) -> A::Client {
        A::connect(self.config()).unwrap_or_else(|e| panic!("{} {self}: {e}", A::NAME))
    }
}

/// The running brokers: all of them, or a panic naming the missing one.
pub fn brokers() -> Vec<&'static Broker> {
    if ALL
        .iter()
        .any(|broker| broker.kind == "embedded" && chosen(broker))
    {
        embedded();
    }
    ALL.iter()
        .filter(|broker| chosen(broker))
        .filter(|broker| require(&broker.to_string(), broker.port))
        .collect()
}

/// Whether `broker` is among those `STOMP_BROKERS` names (a comma-separated
/// list such as `activemq/tcp,rabbitmq`), to chase one broker's problem
/// locally. Outside CI only, like [`skip_allowed`]: in CI every broker runs.
fn chosen(broker: &Broker) -> bool {
    let Ok(list) = std::env::var("STOMP_BROKERS") else {
        return true;
    };
    if in_ci() {
        return true;
    }
    let name = broker.to_string();
    list.split(',')
        .map(str::trim)
        .any(|want| want == name || want == broker.kind)
}

/// The running broker of `kind` over `transport`.
pub fn one(kind: &str, transport: &str) -> Option<&'static Broker> {
    brokers()
        .into_iter()
        .find(|b| b.kind == kind && b.transport == transport)
}

/// Skipping a missing broker or peer is allowed only outside CI, when asked
/// for with `STOMP_SKIP_BROKERS=1`.
pub fn skip_allowed() -> bool {
    std::env::var("STOMP_SKIP_BROKERS").is_ok_and(|v| v == "1") && !in_ci()
}

/// Whether this runs in CI (`CI=true`), where every broker must be there.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The TCP connections to and from loopback `port` with their queues
/// (`ss -tnim`, with socket memory and drops): whose side holds unread or
/// unsent bytes when a test stalls.
pub fn sockets(port: u16) -> String {
    let filter = format!("( sport = :{port} or dport = :{port} )");
    match std::process::Command::new("ss")
        .args(["-tnim", "state", "established", &filter])
        .output()
    {
        Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
        Err(e) => format!("(ss: {e})"),
    }
}

/// Whether something listens on loopback `port`.
pub fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Whether `name` on `port` is up; a panic when it is not and skipping is
/// not allowed.
pub fn require(name: &str, port: u16) -> bool {
    if listening(port) {
        return true;
    }
    assert!(
        skip_allowed(),
        "{name} is not running on port {port} (run `bash scripts/brokers`, or set \
         STOMP_SKIP_BROKERS=1 outside CI to skip)"
    );
    eprintln!("skipping {name}: not running");
    false
}

/// Waits up to `limit` for a life-cycle event that `want` accepts.
pub fn wait_for(events: &Events, limit: Duration, want: impl Fn(&Lifecycle) -> bool) -> Lifecycle {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if want(&event) => return event,
            Ok(_) => {}
            Err(e) => panic!("no such event in {limit:?}: {e}"),
        }
    }
}

/// Waits up to `limit` for CONNECTED after a reconnect.
pub fn wait_reconnected(events: &Events, limit: Duration) -> SessionInfo {
    match wait_for(
        events,
        limit,
        |e| matches!(e, Lifecycle::Connected(info) if info.reconnected),
    ) {
        Lifecycle::Connected(info) => info,
        _ => unreachable!(),
    }
}

/// A queue no other test (or earlier run) uses: RabbitMQ's queues outlive it.
pub fn queue(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "/queue/stomp-rs-{test}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The next message's text, within [`WAIT`].
pub fn recv_text(subscription: &impl SuiteSub) -> String {
    let message = subscription.recv_timeout(WAIT).expect("a message in time");
    crate::SuiteMsg::text(&message).expect("UTF-8").to_string()
}

/// A message sent now comes back through a fresh subscription.
pub fn round_trip(client: &impl SuiteClient, queue: &str) {
    let sub = client.subscribe(queue, stomp_proto::AckMode::Auto).unwrap();
    client.send_with_receipt(queue, "still works").unwrap();
    assert_eq!(recv_text(&sub), "still works");
}
