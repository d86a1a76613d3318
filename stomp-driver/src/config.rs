//! The configuration every adapter takes.

use std::time::Duration;

use stomp_proto::client::ClientConfig;

use crate::{Error, Tls};

/// How a client connects and behaves (the same for every adapter).
#[derive(Clone, Debug)]
pub struct Config {
    /// The session's configuration: hosts, versions, heart-beats, credentials,
    /// timeouts, limits and the reconnect policy.
    pub session: ClientConfig,
    /// Messages a subscription holds before the socket stops being read
    /// (back-pressure towards the broker).
    pub subscription_capacity: usize,
    /// How long one write to the socket may block.
    pub write_timeout: Duration,
    /// TLS settings for `stomp+ssl://` and `wss://` hosts.
    pub tls: Tls,
}

impl Config {
    /// A configuration around a session configuration.
    pub fn new(session: ClientConfig) -> Config {
        let mut session = session;
        session.reconnect.seed = random_seed();
        Config {
            session,
            subscription_capacity: 1024,
            write_timeout: Duration::from_secs(30),
            tls: Tls::default(),
        }
    }

    /// From a URL: `stomp://[user:pass@]host[:port][/vhost]`, a host list, or
    /// the `failover:(..)?options` form (see [`stomp_proto::uri`]).
    pub fn from_url(url: &str) -> Result<Config, Error> {
        Ok(Config::new(ClientConfig::from_uri(url)?))
    }
}

/// The reconnect jitter's seed, from the OS's per-process hash keys.
fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
