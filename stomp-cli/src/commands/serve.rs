//! `stomp serve`: the embedded development broker, until Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use stomp_broker::engine::EngineConfig;
use stomp_broker::serve::{Broker, ClientCerts, ServeConfig, ServeTls};
use stomp_proto::server::ServerConfig;
use stomp_proto::Limits;

use crate::Failure;

/// `stomp serve`'s options.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Where to listen for STOMP over TCP.
    #[arg(long, default_value = "127.0.0.1:61613", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Where to listen for STOMP over WebSocket (any path), if anywhere.
    #[arg(long, value_name = "ADDR")]
    pub ws: Option<SocketAddr>,
    /// Who may log in, as LOGIN:PASSCODE (repeatable); anyone when absent.
    #[arg(long = "user", value_name = "LOGIN:PASSCODE")]
    pub users: Vec<String>,
    /// How long a connection may stay open without sending CONNECT
    /// before it is closed (RabbitMQ's default is the same 10 s); it also
    /// bounds the TLS and WebSocket handshakes.
    #[arg(long, default_value = "10s", value_parser = super::connect::parse_duration, value_name = "TIME")]
    pub handshake_timeout: Duration,
    /// The server certificate chain (PEM) for the TLS listeners: STOMP over
    /// TLS on --tls-listen, and WebSocket over TLS on --wss if given.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where to listen for STOMP over TLS.
    #[arg(long, default_value = "127.0.0.1:61614", value_name = "ADDR")]
    pub tls_listen: SocketAddr,
    /// Where to listen for STOMP over WebSocket over TLS, if anywhere
    /// (needs --tls-cert).
    #[arg(long, value_name = "ADDR", requires = "tls_cert")]
    pub wss: Option<SocketAddr>,
    /// Require client certificates signed by the CA certificates in FILE
    /// (PEM) on the TLS listeners.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// The most connections open at once; one more is closed at once.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub max_connections: usize,
    /// The largest frame body a client may send (128MiB, 64KiB, 1000000);
    /// a larger one gets an ERROR naming the limit and the connection is closed.
    #[arg(long, default_value = "128MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_body: usize,
    /// How much message data the broker keeps for slow or absent consumers;
    /// past it, producers are held back (their connections are not read)
    /// until consumers take a quarter of it.
    #[arg(long, default_value = "64MiB", value_parser = parse_size, value_name = "SIZE")]
    pub max_stored: usize,
    /// With --client-ca: let clients without a certificate in too (a
    /// certificate given is still checked), as RabbitMQ's
    /// `fail_if_no_peer_cert = false` does.
    #[arg(long, requires = "client_ca")]
    pub client_cert_optional: bool,
    /// The largest WebSocket message a client may send (like 16KiB); a
    /// larger one ends its connection, as on brokers with a small limit.
    #[arg(long, value_parser = parse_size, value_name = "SIZE")]
    pub ws_max_message: Option<usize>,
}

/// `1000`, `64KiB`, `128MiB`, `1GiB` (also `k`, `M`, `G`: the same powers of two).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{text:?}: expected a size such as 64KiB or 1000000"))?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "k" | "K" | "KiB" | "KB" => 10,
        "M" | "MiB" | "MB" => 20,
        "G" | "GiB" | "GB" => 30,
        other => return Err(format!("{text:?}: unknown unit {other:?} (KiB, MiB, GiB)")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?}: too large"))
}

fn read(path: &PathBuf, what: &str) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("{what} {}: {e}", path.display())))
}

/// The TLS listeners the options ask for, if any.
fn tls(args: &ServeArgs) -> Result<Option<ServeTls>, Failure> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let cert = read(cert, "--tls-cert")?;
    let key = read(key, "--tls-key")?;
    let ca = args
        .client_ca
        .as_ref()
        .map(|ca| read(ca, "--client-ca"))
        .transpose()?;
    let certs = if args.client_cert_optional {
        ClientCerts::Optional
    } else {
        ClientCerts::Required
    };
    let client_ca = ca.as_deref().map(|ca| (ca, certs));
    let mut tls = ServeTls::with_client_ca(&cert, &key, client_ca)
        .map_err(|e| Failure::Usage(e.to_string()))?;
    tls.listen = Some(args.tls_listen);
    tls.wss = args.wss;
    Ok(Some(tls))
}

/// Runs the broker on the listeners asked for; logins from `--user`
/// (`login:passcode`), or open when there are none; a connection that sends
/// no CONNECT within `--handshake-timeout` is closed. Connections are logged
/// on stderr.
pub fn run(args: &ServeArgs) -> Result<(), Failure> {
    let users = args
        .users
        .iter()
        .map(|user| {
            user.split_once(':')
                .map(|(login, passcode)| (login.to_string(), passcode.to_string()))
                .ok_or_else(|| Failure::Usage(format!("--user {user:?}: expected LOGIN:PASSCODE")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls = tls(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::Io)?;
    runtime.block_on(async {
        // The frame limit keeps the default's room for the head.
        let default = Limits::default();
        let limits = Limits {
            max_body: args.max_body,
            max_frame_size: args
                .max_body
                .saturating_add(default.max_frame_size - default.max_body),
            ..default
        };
        let config = ServeConfig {
            listen: args.listen,
            ws: args.ws,
            tls,
            max_connections: args.max_connections,
            ws_max_message: args.ws_max_message,
            engine: EngineConfig {
                users,
                max_stored: args.max_stored,
                server: ServerConfig {
                    connect_timeout: args.handshake_timeout,
                    limits,
                    ..EngineConfig::default().server
                },
                ..EngineConfig::default()
            },
        };
        let broker = Broker::start(config)
            .await
            .map_err(|e| Failure::Usage(e.to_string()))?;
        let urls = [
            Some(broker.url()),
            broker.ws_url(),
            broker.tls_url(),
            broker.wss_url(),
        ];
        let urls = urls.into_iter().flatten().collect::<Vec<_>>().join(" and ");
        eprintln!("stomp serve: listening on {urls} (STOMP 1.0, 1.1, 1.2; Ctrl-C stops)");
        tokio::signal::ctrl_c().await.map_err(Failure::Io)?;
        eprintln!("stomp serve: stopping");
        Ok(())
    })
}
