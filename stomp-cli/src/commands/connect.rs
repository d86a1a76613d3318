//! The connection flags every client sub-command takes, and connecting
//! with them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stomp_proto::client::{CloseReason, CommandError, Credentials};
use stomp_proto::{HeartBeat, Version, VersionSet};
use stomp_tokio::{Client, Config, Error, Tls};

use crate::Failure;

/// Where `stomp serve` listens by default, and so where clients go.
pub const DEFAULT_URL: &str = "stomp://127.0.0.1:61613";

/// How to reach the broker.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectArgs {
    /// The broker's URL (see the flag's help).
    #[arg(
        long,
        env = "STOMP_URL",
        value_name = "URL",
        help = "The broker: stomp://[LOGIN:PASSCODE@]HOST[:PORT][/VHOST], stomp+ssl://, \
                ws://HOST:PORT/PATH, wss://, failover:(URL,URL)?OPTIONS, or no broker at all: \
                udp://GROUP:PORT?interface=ADDR&ttl=N&ignore_own=true (multicast) \
                [default: stomp://127.0.0.1:61613, where `stomp serve` listens]"
    )]
    pub url: Option<String>,
    /// The versions to offer, comma-separated.
    #[arg(
        long = "accept-version",
        value_delimiter = ',',
        default_value = "1.0,1.1,1.2",
        value_name = "VERSIONS"
    )]
    pub accept_version: Vec<Version>,
    /// Heart-beats: we can send every CX ms, we want one every CY ms (0: none).
    #[arg(
        long = "heart-beat",
        default_value = "10000,10000",
        value_name = "CX,CY"
    )]
    pub heart_beat: HeartBeat,
    /// The login (overrides the URL's).
    #[arg(long, env = "STOMP_LOGIN")]
    pub login: Option<String>,
    /// The passcode (overrides the URL's).
    #[arg(long, env = "STOMP_PASSCODE", hide_env_values = true)]
    pub passcode: Option<String>,
    /// How long connecting, and each receipt, may take: 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration, value_name = "TIME")]
    pub timeout: Duration,
    /// The CA certificates (PEM) to trust for stomp+ssl:// and wss://,
    /// instead of the system's roots (as curl's --cacert does).
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// A client certificate chain (PEM) to present over TLS, for brokers
    /// that ask for one; with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// TCP keepalive: probe the broker after this long without traffic
    /// (e.g. 30s), to find a dead connection even with heart-beats off.
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub keepalive: Option<Duration>,
    /// The local address to connect from (ADDR:PORT, port 0 for any).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::SocketAddr>,
    /// Log every frame sent (>) and received (<) on stderr; twice: heart-beats too.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl ConnectArgs {
    /// The broker's URL.
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(DEFAULT_URL)
    }

    /// The client configuration the flags describe.
    pub fn config(&self) -> Result<Config, Failure> {
        self.config_for(self.url())
    }

    /// The configuration the flags describe, for `url`.
    pub fn config_for(&self, url: &str) -> Result<Config, Failure> {
        let mut config =
            Config::from_url(url).map_err(|e| Failure::Usage(format!("--url {url}: {e}")))?;
        let versions: VersionSet = self.accept_version.iter().copied().collect();
        config.session.versions = versions;
        config.session.heartbeat = self.heart_beat;
        config.session.connect_timeout = self.timeout;
        config.session.receipt_timeout = self.timeout;
        config.session.disconnect_timeout = self.timeout;
        if self.login.is_some() || self.passcode.is_some() {
            let login = self.login.clone().unwrap_or_default();
            let passcode = self.passcode.clone().unwrap_or_default();
            config.session.credentials = Some(Arc::new(Credentials::new(login, passcode)));
            // The flags win over the URL's user part.
            for host in &mut config.session.hosts {
                host.login = None;
                host.passcode = None;
            }
        }
        if let Some(ca) = &self.ca {
            config.tls = Tls::default()
                .with_ca_file(ca)
                .map_err(|e| Failure::Usage(format!("--ca: {e}")))?;
        }
        config.tcp.bind = self.bind;
        config.tcp.keepalive = self.keepalive.map(|idle| stomp_tokio::Keepalive {
            idle,
            interval: None,
            retries: None,
        });
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            let read = |flag: &str, path: &PathBuf| {
                std::fs::read(path)
                    .map_err(|e| Failure::Usage(format!("--{flag} {}: {e}", path.display())))
            };
            let (chain, key) = (read("cert", cert)?, read("key", key)?);
            config.tls = config.tls.with_client_cert_pem(chain, key);
        }
        Ok(config)
    }

    /// Connects, or says in one line why not.
    pub async fn connect(&self) -> Result<Client, Failure> {
        connect(self.url(), self.config()?).await
    }
}

/// Connects to `url` with `config`, or says in one line why not.
pub async fn connect(url: &str, config: Config) -> Result<Client, Failure> {
    Client::connect_with(config).await.map_err(|e| {
        let url = redact(url);
        match e {
            // Unusable TLS files (--ca, --cert, --key) are the caller's to fix.
            Error::Tls(_) => Failure::Usage(format!("cannot connect to {url}: {e}")),
            e => Failure::Remote(format!("cannot connect to {url}: {}", ended(&e))),
        }
    })
}

/// A failed call as the exit status tells it: a frame the client itself
/// refuses (too large for the transport, a header it cannot write) is the
/// caller's to fix (4); anything else is the broker's or the network's (5).
pub fn failed(error: &Error) -> Failure {
    match error {
        Error::Command(CommandError::TooLarge { .. } | CommandError::Encode(_)) => {
            Failure::Usage(error.to_string())
        }
        other => Failure::Remote(ended(other)),
    }
}

/// Refuses an empty destination before anything is sent (brokers answer it
/// with an ERROR, or, ActiveMQ, by closing the connection).
pub fn check_destination(destination: &str) -> Result<(), Failure> {
    match destination.is_empty() {
        true => Err(Failure::Usage("the destination is empty".into())),
        false => Ok(()),
    }
}

/// `url` with any passcode in it masked.
pub fn redact(url: &str) -> String {
    let mut out = String::new();
    let mut rest = url;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out += head;
        let authority_end = tail.find(['/', ',', ')', '?']).unwrap_or(tail.len());
        match tail[..authority_end].rfind('@') {
            Some(user_end) => {
                let user = &tail[..user_end];
                match user.split_once(':') {
                    Some((login, _)) => out += &format!("{login}:***"),
                    None => out += user,
                }
                rest = &tail[user_end..];
            }
            None => rest = tail,
        }
    }
    out + rest
}

/// `10s`, `500ms`, `2m`, or a number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (like 10s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => number,
        "ms" => number / 1000.0,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Why a session ended, as the one line a user reads; `None` for a
/// graceful end.
pub fn ended(error: &Error) -> String {
    match error {
        Error::Closed(Some(reason)) | Error::Connect(reason) => reason_line(reason),
        other => other.to_string(),
    }
}

/// One line for a close reason.
pub fn reason_line(reason: &CloseReason) -> String {
    match reason {
        CloseReason::ServerError(error) => {
            let message = error.message.as_deref().unwrap_or("(no message)");
            let body = String::from_utf8_lossy(&error.frame.body);
            let detail = body.lines().next().unwrap_or("").trim();
            if detail.is_empty() || detail == message {
                format!("the broker sent an ERROR: {message}")
            } else {
                format!("the broker sent an ERROR: {message} ({detail})")
            }
        }
        CloseReason::HeartbeatTimeout => "the broker went silent (heart-beat timeout)".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("ten")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn passcodes_in_urls_are_masked() {
        assert_eq!(
            redact("stomp://guest:secret@127.0.0.1:61613/vhost"),
            "stomp://guest:***@127.0.0.1:61613/vhost"
        );
        assert_eq!(redact("ws://127.0.0.1:15674/ws"), "ws://127.0.0.1:15674/ws");
        assert_eq!(
            redact("failover:(stomp://a:b@h1:1,stomp+ssl://c@h2:2)?randomize=false"),
            "failover:(stomp://a:***@h1:1,stomp+ssl://c@h2:2)?randomize=false"
        );
    }
}
