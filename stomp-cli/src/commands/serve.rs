//! `stomp serve`: the embedded development broker, until Ctrl-C.

use std::net::SocketAddr;

use stomp_broker::engine::EngineConfig;
use stomp_broker::serve::{Broker, ServeConfig};

use crate::Failure;

/// Runs the broker on `listen`; logins from `users` (`login:passcode`), or
/// open when there are none.
pub fn run(listen: SocketAddr, users: &[String]) -> Result<(), Failure> {
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
            engine: EngineConfig {
                users,
                ..EngineConfig::default()
            },
        };
        let broker = Broker::start(config)
            .await
            .map_err(|e| Failure::Usage(format!("cannot listen on {listen}: {e}")))?;
        eprintln!(
            "stomp serve: listening on {} (STOMP 1.0, 1.1, 1.2; Ctrl-C stops)",
            broker.url()
        );
        tokio::signal::ctrl_c().await.map_err(Failure::Io)?;
        eprintln!("stomp serve: stopping");
        Ok(())
    })
}
