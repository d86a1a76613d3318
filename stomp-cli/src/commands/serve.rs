//! `stomp serve`: the embedded development broker, until Ctrl-C.

use std::net::SocketAddr;
use std::time::Duration;

use stomp_broker::engine::EngineConfig;
use stomp_broker::serve::{Broker, ServeConfig};
use stomp_proto::server::ServerConfig;

use crate::Failure;

/// Runs the broker on `listen` (and `ws` for STOMP over WebSocket); logins
/// from `users` (`login:passcode`), or open when there are none; a
/// connection that sends no CONNECT within `handshake_timeout` is closed.
/// Connections are logged on stderr.
pub fn run(
    listen: SocketAddr,
    ws: Option<SocketAddr>,
    users: &[String],
    handshake_timeout: Duration,
) -> Result<(), Failure> {
    let users = users
        .iter()
        .map(|user| {
            user.split_once(':')
                .map(|(login, passcode)| (login.to_string(), passcode.to_string()))
                .ok_or_else(|| Failure::Usage(format!("--user {user:?}: expected LOGIN:PASSCODE")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::Io)?;
    runtime.block_on(async {
        let config = ServeConfig {
            listen,
            ws,
            engine: EngineConfig {
                users,
                server: ServerConfig {
                    connect_timeout: handshake_timeout,
                    ..ServerConfig::default()
                },
                ..EngineConfig::default()
            },
        };
        let broker = Broker::start(config).await.map_err(|e| {
            let at = ws.map_or(listen.to_string(), |ws| format!("{listen} or {ws}"));
            Failure::Usage(format!("cannot listen on {at}: {e}"))
        })?;
        let ws = broker
            .ws_url()
            .map(|url| format!(" and {url}"))
            .unwrap_or_default();
        eprintln!(
            "stomp serve: listening on {}{ws} (STOMP 1.0, 1.1, 1.2; Ctrl-C stops)",
            broker.url()
        );
        tokio::signal::ctrl_c().await.map_err(Failure::Io)?;
        eprintln!("stomp serve: stopping");
        Ok(())
    })
}
