//! Broker addresses: `stomp://` URIs, plain host lists and the `failover:` form.
//!
//! ```
//! use std::time::Duration;
//! use stomp_proto::uri::{Failover, Scheme};
//!
//! let failover: Failover = "failover:(stomp://h1:61613,stomp+ssl://h2:61614)\
//!     ?initialReconnectDelay=10&maxReconnectDelay=30000&useExponentialBackOff=true\
//!     &backOffMultiplier=2&maxReconnectAttempts=-1&randomize=false"
//!     .parse()
//!     .unwrap();
//! assert_eq!(failover.hosts.len(), 2);
//! assert_eq!(failover.hosts[1].scheme, Scheme::StompSsl);
//! assert_eq!(failover.hosts[1].authority(), "h2:61614");
//! assert_eq!(failover.policy.initial_delay, Duration::from_millis(10));
//! assert_eq!(failover.policy.max_attempts, None); // -1: forever
//! assert!(!failover.policy.randomize);
//! ```
//!
//! The grammar, in the forms users bring from ActiveMQ and the Python and Java
//! clients:
//!
//! - an endpoint: `scheme://[login[:passcode]@]host[:port][/path][?name=value&..]`
//!   where `scheme` is `stomp` (also `tcp`), `stomp+ssl` (also `ssl`, `stomp+tls`,
//!   `stomps`), `ws`, `wss` or `udp`; `host` is a name, an IPv4 address or an
//!   IPv6 address in brackets; login, passcode, path and query are
//!   percent-decoded. Without a port, the scheme's usual one is used.
//! - a plain host list: endpoints separated by commas; a bare `host:port` means
//!   `stomp://host:port`.
//! - `failover:(endpoint,..)?options` (also `failover:endpoint,..` and
//!   `failover://(..)`), with the reconnect options of ActiveMQ's failover
//!   transport (see [`Failover`]).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_till1, take_while1};
use nom::character::complete::{char, space0};
use nom::combinator::{opt, recognize};
use nom::sequence::{delimited, pair, preceded, terminated};
use nom::{IResult, Parser};

use crate::reconnect::{ReconnectPolicy, UnconfirmedSends};

/// How an endpoint is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// STOMP over TCP (`stomp://`, `tcp://`); default port 61613.
    Stomp,
    /// STOMP over TLS (`stomp+ssl://`, `ssl://`, `stomp+tls://`, `stomps://`);
    /// default port 61614.
    StompSsl,
    /// STOMP over WebSocket (`ws://`); default port 80.
    Ws,
    /// STOMP over WebSocket over TLS (`wss://`); default port 443.
    Wss,
    /// Broker-less UDP multicast (`udp://`); default port 61616.
    Udp,
}

impl Scheme {
    /// The port used when the URI names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Stomp => 61613,
            Scheme::StompSsl => 61614,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
            Scheme::Udp => 61616,
        }
    }

    /// Whether the transport runs over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::StompSsl | Scheme::Wss)
    }

    /// The canonical name, as written before `://`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Stomp => "stomp",
            Scheme::StompSsl => "stomp+ssl",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
            Scheme::Udp => "udp",
        }
    }

    fn from_name(name: &str) -> Option<Scheme> {
        Some(match name.to_ascii_lowercase().as_str() {
            "stomp" | "tcp" => Scheme::Stomp,
            "stomp+ssl" | "ssl" | "stomp+tls" | "stomps" | "tls" => Scheme::StompSsl,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            "udp" => Scheme::Udp,
            _ => return None,
        })
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broker address.
///
/// ```
/// use stomp_proto::uri::{Endpoint, Scheme};
///
/// let endpoint: Endpoint = "stomp://guest:s%40cret@[::1]:61613/%2F".parse().unwrap();
/// assert_eq!(endpoint.scheme, Scheme::Stomp);
/// assert_eq!(endpoint.host, "::1");
/// assert_eq!(endpoint.authority(), "[::1]:61613");
/// assert_eq!(endpoint.passcode.as_deref(), Some("s@cret"));
/// assert_eq!(endpoint.virtual_host().as_deref(), Some("/"));
/// // The passcode is never shown.
/// assert_eq!(endpoint.to_string(), "stomp://guest@[::1]:61613/%2F");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The transport.
    pub scheme: Scheme,
    /// The host name or address (an IPv6 address without its brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The path as written (still percent-encoded), `""` when there is none.
    /// For `ws`/`wss` it is the HTTP path; for `stomp`/`stomp+ssl` it names the
    /// virtual host (see [`virtual_host`](Endpoint::virtual_host)).
    pub path: String,
    /// The login from the user part.
    pub login: Option<String>,
    /// The passcode from the user part.
    pub passcode: Option<String>,
    /// The query's `name=value` pairs, decoded, in order (transport options
    /// such as a multicast interface; the session itself reads none).
    pub options: Vec<(String, String)>,
}

impl Endpoint {
    /// `stomp://host:port`.
    pub fn tcp(host: impl Into<String>, port: u16) -> Endpoint {
        Endpoint {
            scheme: Scheme::Stomp,
            host: host.into(),
            port,
            path: String::new(),
            login: None,
            passcode: None,
            options: Vec::new(),
        }
    }

    /// `host:port`, with brackets around an IPv6 address: what a socket
    /// connect or a TLS server name lookup needs.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The virtual host a `stomp`/`stomp+ssl` path names (`/vhost`, with `/%2F`
    /// for RabbitMQ's `/`), or `None` without a path (the session's configured
    /// host is used then). WebSocket and UDP paths name no virtual host.
    pub fn virtual_host(&self) -> Option<String> {
        if !matches!(self.scheme, Scheme::Stomp | Scheme::StompSsl) {
            return None;
        }
        match self.path.strip_prefix('/') {
            None | Some("") => None,
            Some(encoded) => {
                Some(percent_decode(encoded, 0).unwrap_or_else(|_| encoded.to_string()))
            }
        }
    }

    /// What a `ws`/`wss` endpoint's HTTP upgrade asks for: its path (`/`
    /// when it has none) and its query, so `ws://h/ws?access_token=abc`
    /// sends `GET /ws?access_token=abc`.
    ///
    /// ```
    /// let e: stomp_proto::uri::Endpoint = "ws://h:15674/ws?access_token=a%2Bb&v=1".parse().unwrap();
    /// assert_eq!(e.http_target(), "/ws?access_token=a%2Bb&v=1");
    /// let bare: stomp_proto::uri::Endpoint = "ws://h:15674".parse().unwrap();
    /// assert_eq!(bare.http_target(), "/");
    /// ```
    pub fn http_target(&self) -> String {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        format!("{path}{}", Query(&self.options))
    }

    /// The value of the query option `name`, if given.
    pub fn option(&self, name: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for Endpoint {
    /// The endpoint as a URI, without the passcode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        if let Some(login) = &self.login {
            write!(f, "{}@", encode_component(login))?;
        }
        write!(
            f,
            "{}{}{}",
            self.authority(),
            self.path,
            Query(&self.options)
        )
    }
}

/// Query options as a URI writes them: `?name=value&..`, encoded; nothing
/// when there are none.
struct Query<'a>(&'a [(String, String)]);

impl fmt::Display for Query<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.0.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            write!(
                f,
                "{sep}{}={}",
                encode_component(name),
                encode_component(value)
            )?;
        }
        Ok(())
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Endpoint({self})")
    }
}

impl FromStr for Endpoint {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Endpoint, UriError> {
        let mut cursor = Cursor::new(s);
        let endpoint = cursor.endpoint(true)?;
        cursor.finish()?;
        Ok(endpoint)
    }
}

/// A list of endpoints and how to move between them: what a `failover:` URI
/// or a plain host list says.
///
/// Options of the `failover:` form (names as in ActiveMQ; times in ms):
///
/// | option | default | meaning |
/// |---|---|---|
/// | `initialReconnectDelay` | 10 | delay before the first reconnect pass |
/// | `maxReconnectDelay` | 30000 | the longest delay between passes |
/// | `useExponentialBackOff` | true | multiply the delay after each pass |
/// | `backOffMultiplier` (or `reconnectDelayExponent`) | 2 | by this much |
/// | `maxReconnectAttempts` | -1 | passes after a loss before giving up; -1 = forever, 0 = never reconnect |
/// | `startupMaxReconnectAttempts` | as `maxReconnectAttempts` | the same for the very first connect |
/// | `randomize` | true | shuffle the host list before each pass |
/// | `jitter` | 0.5 | shorten each delay by a random fraction up to this (0 to 1) |
/// | `unconfirmedSends` | `fail` | `fail` or `resend` sends whose receipt was outstanding |
///
/// ActiveMQ options that concern its Java client only (`backup`, `timeout`,
/// `trackMessages`, ...) are accepted and listed in [`ignored`](Failover::ignored);
/// any other name is an error.
///
/// A plain host list (no `failover:` prefix) never reconnects unless its
/// policy is changed: `maxReconnectAttempts=0`, each host tried once.
#[derive(Clone, Debug, PartialEq)]
pub struct Failover {
    /// The endpoints, in the order given.
    pub hosts: Vec<Endpoint>,
    /// The reconnect policy the options describe.
    pub policy: ReconnectPolicy,
    /// Recognised ActiveMQ options that this client does not act on.
    pub ignored: Vec<String>,
}

impl FromStr for Failover {
    type Err = UriError;

    fn from_str(s: &str) -> Result<Failover, UriError> {
        let mut cursor = Cursor::new(s);
        let failover = cursor.failover()?;
        cursor.finish()?;
        Ok(failover)
    }
}

/// A URI that could not be read: what was wrong and at which octet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UriError {
    /// The octet offset in the URI where the problem is.
    pub offset: usize,
    /// What was expected or wrong there.
    pub message: String,
}

impl fmt::Display for UriError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad URI at offset {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for UriError {}

/// ActiveMQ failover options that concern its Java client only.
const IGNORED_OPTIONS: &[&str] = &[
    "backup",
    "backupPoolSize",
    "maxCacheSize",
    "nested.wireFormat.maxInactivityDuration",
    "priorityBackup",
    "priorityURIs",
    "reconnectSupported",
    "timeout",
    "trackMessages",
    "trackTransactionProducers",
    "updateURIsSupported",
    "updateURIsURL",
    "warnAfterReconnectAttempts",
];

/// What ends a host name, a user part or a path inside a list.
const DELIMITERS: &str = "/?#@,()[] ";

/// Parsing state: the whole input and what is left of it.
struct Cursor<'a> {
    input: &'a str,
    rest: &'a str,
}

type Res<'a, T> = IResult<&'a str, T>;

impl<'a> Cursor<'a> {
    fn new(input: &'a str) -> Cursor<'a> {
        Cursor { input, rest: input }
    }

    fn offset(&self) -> usize {
        self.input.len() - self.rest.len()
    }

    fn error(&self, message: impl Into<String>) -> UriError {
        UriError {
            offset: self.offset(),
            message: message.into(),
        }
    }

    /// Runs `parser` on what is left; on failure, the error names `expected`.
    fn step<T>(
        &mut self,
        mut parser: impl Parser<&'a str, Output = T, Error = nom::error::Error<&'a str>>,
        expected: &str,
    ) -> Result<T, UriError> {
        match parser.parse(self.rest) {
            Ok((rest, value)) => {
                self.rest = rest;
                Ok(value)
            }
            Err(_) => Err(self.error(format!("expected {expected}"))),
        }
    }

    fn finish(&self) -> Result<(), UriError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.error(format!("unexpected {:?}", first_char(self.rest))))
        }
    }

    /// `failover:(..)?options`, `failover:a,b`, or a plain list.
    fn failover(&mut self) -> Result<Failover, UriError> {
        let prefixed = self.step(opt(failover_prefix), "failover:")?.is_some();
        let parenthesised = self.step(opt(char('(')), "(")?.is_some();
        let mut hosts = vec![self.endpoint(false)?];
        while self
            .step(opt(delimited(space0, char(','), space0)), ",")?
            .is_some()
        {
            hosts.push(self.endpoint(false)?);
        }
        if parenthesised {
            self.step(char(')'), "`)` closing the host list")?;
        }
        let mut failover = Failover {
            hosts,
            policy: if prefixed {
                ReconnectPolicy::failover()
            } else {
                ReconnectPolicy::default()
            },
            ignored: Vec::new(),
        };
        if self.step(opt(char('?')), "?")?.is_some() {
            if !prefixed {
                return Err(self.error("options need the failover:(..) form"));
            }
            let start = self.offset();
            let query = self.step(take_till(|c| c == '#'), "options")?;
            let mut startup_given = false;
            for (offset, name, value) in split_query(query, start)? {
                failover.apply(offset, &name, &value)?;
                startup_given |= name == "startupMaxReconnectAttempts";
            }
            if !startup_given {
                failover.policy.startup_max_attempts = failover.policy.max_attempts;
            }
        }
        Ok(failover)
    }

    /// One endpoint; `alone` when it is the whole input (a query may then hold
    /// commas).
    fn endpoint(&mut self, alone: bool) -> Result<Endpoint, UriError> {
        let scheme_start = self.offset();
        let scheme = match self.step(opt(scheme_prefix), "a scheme")? {
            Some(name) => Scheme::from_name(name).ok_or(UriError {
                offset: scheme_start,
                message: format!("unknown scheme {name:?} (stomp, stomp+ssl, ws, wss, udp)"),
            })?,
            None => Scheme::Stomp,
        };
        let user_start = self.offset();
        let user = self.step(opt(user_part), "a user part")?;
        let (login, passcode) = match user {
            None => (None, None),
            Some(user) => {
                let (login, passcode) = match user.split_once(':') {
                    Some((login, passcode)) => (login, Some(passcode)),
                    None => (user, None),
                };
                let login = percent_decode(login, user_start)?;
                let passcode = passcode
                    .map(|p| percent_decode(p, user_start + login.len() + 1))
                    .transpose()?;
                (Some(login), passcode)
            }
        };
        let host = self.step(host, "a host name or address")?;
        let port_start = self.offset();
        let port = match self.step(opt(preceded(char(':'), digits)), "a port")? {
            None => scheme.default_port(),
            Some(digits) => digits.parse::<u16>().map_err(|_| UriError {
                offset: port_start + 1,
                message: format!("port {digits} is not in 0..=65535"),
            })?,
        };
        let path_start = self.offset();
        let path = self.step(opt(path), "a path")?.unwrap_or("");
        if let Some(encoded) = path.strip_prefix('/') {
            percent_decode(encoded, path_start + 1)?;
        }
        let mut options = Vec::new();
        if self.step(opt(char('?')), "?")?.is_some() {
            let start = self.offset();
            let query = if alone {
                self.step(take_till(|c| c == '#'), "options")?
            } else {
                self.step(take_till(|c| ",()".contains(c)), "options")?
            };
            options = split_query(query, start)?
                .into_iter()
                .map(|(_, name, value)| (name, value))
                .collect();
        }
        Ok(Endpoint {
            scheme,
            host: host.to_string(),
            port,
            path: path.to_string(),
            login,
            passcode,
            options,
        })
    }
}

impl Failover {
    fn apply(&mut self, offset: usize, name: &str, value: &str) -> Result<(), UriError> {
        let bad = |what: &str| UriError {
            offset,
            message: format!("{name}={value:?}: expected {what}"),
        };
        let millis = || value.parse::<u64>().map(Duration::from_millis);
        let flag = || value.parse::<bool>();
        let attempts = || match value.parse::<i64>() {
            Ok(n) if n < 0 => Ok(None),
            Ok(n) => Ok(Some(u32::try_from(n).unwrap_or(u32::MAX))),
            Err(e) => Err(e),
        };
        let policy = &mut self.policy;
        match name {
            "initialReconnectDelay" => {
                policy.initial_delay = millis().map_err(|_| bad("milliseconds"))?
            }
            "maxReconnectDelay" => policy.max_delay = millis().map_err(|_| bad("milliseconds"))?,
            "useExponentialBackOff" => {
                policy.exponential = flag().map_err(|_| bad("true or false"))?
            }
            "backOffMultiplier" | "reconnectDelayExponent" => {
                policy.multiplier = value
                    .parse::<f64>()
                    .ok()
                    .filter(|m| (1.0..=1000.0).contains(m))
                    .ok_or_else(|| bad("a number from 1 to 1000"))?
            }
            "maxReconnectAttempts" => {
                policy.max_attempts = attempts().map_err(|_| bad("a count, -1 for no limit"))?
            }
            "startupMaxReconnectAttempts" => {
                policy.startup_max_attempts =
                    attempts().map_err(|_| bad("a count, -1 for no limit"))?
            }
            "randomize" => policy.randomize = flag().map_err(|_| bad("true or false"))?,
            "jitter" => {
                policy.jitter = value
                    .parse::<f64>()
                    .ok()
                    .filter(|j| (0.0..=1.0).contains(j))
                    .ok_or_else(|| bad("a fraction from 0 to 1"))?
            }
            "unconfirmedSends" => {
                policy.unconfirmed_sends = match value {
                    "fail" => UnconfirmedSends::Fail,
                    "resend" => UnconfirmedSends::Resend,
                    _ => return Err(bad("fail or resend")),
                }
            }
            _ if IGNORED_OPTIONS.contains(&name) => self.ignored.push(name.to_string()),
            _ => {
                return Err(UriError {
                    offset,
                    message: format!("unknown failover option {name:?}"),
                })
            }
        }
        Ok(())
    }
}

fn failover_prefix(i: &str) -> Res<'_, &str> {
    terminated(tag("failover:"), opt(tag("//"))).parse(i)
}

fn scheme_prefix(i: &str) -> Res<'_, &str> {
    terminated(
        take_while1(|c: char| c.is_ascii_alphanumeric() || "+-.".contains(c)),
        tag("://"),
    )
    .parse(i)
}

fn user_part(i: &str) -> Res<'_, &str> {
    terminated(take_till1(|c| DELIMITERS.contains(c)), char('@')).parse(i)
}

fn host(i: &str) -> Res<'_, &str> {
    alt((
        delimited(
            char('['),
            take_while1(|c: char| c.is_ascii_hexdigit() || ":.%".contains(c)),
            char(']'),
        ),
        take_till1(|c| DELIMITERS.contains(c) || c == ':'),
    ))
    .parse(i)
}

fn digits(i: &str) -> Res<'_, &str> {
    take_while1(|c: char| c.is_ascii_digit()).parse(i)
}

fn path(i: &str) -> Res<'_, &str> {
    recognize(pair(char('/'), take_till(|c| "?#,()".contains(c)))).parse(i)
}

/// `a=1&b=2` into decoded pairs, each with the offset of its name.
fn split_query(query: &str, start: usize) -> Result<Vec<(usize, String, String)>, UriError> {
    let mut pairs = Vec::new();
    let mut offset = start;
    for part in query.split('&') {
        if !part.is_empty() {
            let Some((name, value)) = part.split_once('=') else {
                return Err(UriError {
                    offset,
                    message: format!("option {part:?} has no `=value`"),
                });
            };
            pairs.push((
                offset,
                percent_decode(name, offset)?,
                percent_decode(value, offset + name.len() + 1)?,
            ));
        }
        offset += part.len() + 1;
    }
    Ok(pairs)
}

/// Undoes `%XX` escapes; `offset` is where `text` starts in the URI.
fn percent_decode(text: &str, offset: usize) -> Result<String, UriError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(octet) => out.push(octet),
                None => {
                    return Err(UriError {
                        offset: offset + i,
                        message: "`%` must be followed by two hex digits".into(),
                    })
                }
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| UriError {
        offset,
        message: "percent-decoded text is not UTF-8".into(),
    })
}

/// Escapes what would break the URI grammar.
fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || "-._~".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for octet in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{octet:02X}"));
            }
        }
    }
    out
}

fn first_char(s: &str) -> char {
    s.chars().next().unwrap_or(' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failover(text: &str) -> Failover {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn error(text: &str) -> UriError {
        match text.parse::<Failover>() {
            Ok(f) => panic!("{text} parsed: {f:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_issue_example_parses_with_every_option() {
        let f = failover(
            "failover:(stomp://h1:61613,stomp+ssl://h2:61614)?initialReconnectDelay=10\
             &maxReconnectDelay=30000&useExponentialBackOff=true&backOffMultiplier=2\
             &maxReconnectAttempts=-1&randomize=false",
        );
        let hosts: Vec<String> = f.hosts.iter().map(ToString::to_string).collect();
        assert_eq!(hosts, ["stomp://h1:61613", "stomp+ssl://h2:61614"]);
        let p = &f.policy;
        assert_eq!(p.initial_delay, Duration::from_millis(10));
        assert_eq!(p.max_delay, Duration::from_millis(30000));
        assert!(p.exponential);
        assert_eq!(p.multiplier, 2.0);
        assert_eq!(p.max_attempts, None);
        assert_eq!(p.startup_max_attempts, None);
        assert!(!p.randomize);
    }

    #[test]
    fn failover_forms_and_defaults() {
        for text in [
            "failover:(tcp://a:1,tcp://b:2)",
            "failover:tcp://a:1,tcp://b:2",
            "failover://(tcp://a:1,tcp://b:2)",
        ] {
            let f = failover(text);
            assert_eq!(
                f.hosts,
                [Endpoint::tcp("a", 1), Endpoint::tcp("b", 2)],
                "{text}"
            );
            assert_eq!(f.policy, ReconnectPolicy::failover(), "{text}");
        }
        // A plain list never reconnects.
        let plain = failover("a:1, b");
        assert_eq!(
            plain.hosts,
            [Endpoint::tcp("a", 1), Endpoint::tcp("b", 61613)]
        );
        assert_eq!(plain.policy.max_attempts, Some(0));
    }

    #[test]
    fn attempts_and_the_startup_limit() {
        let f = failover("failover:(a)?maxReconnectAttempts=3");
        assert_eq!(f.policy.max_attempts, Some(3));
        assert_eq!(f.policy.startup_max_attempts, Some(3), "follows max");
        let f = failover("failover:(a)?startupMaxReconnectAttempts=0&maxReconnectAttempts=5");
        assert_eq!(
            (f.policy.max_attempts, f.policy.startup_max_attempts),
            (Some(5), Some(0))
        );
        let f = failover("failover:(a)?maxReconnectAttempts=0");
        assert_eq!(f.policy.max_attempts, Some(0));
    }

    #[test]
    fn our_options_and_activemq_ones_we_ignore() {
        let f = failover(
            "failover:(a)?jitter=0&unconfirmedSends=resend&reconnectDelayExponent=1.5\
             &timeout=3000&trackMessages=true",
        );
        assert_eq!(f.policy.jitter, 0.0);
        assert_eq!(f.policy.unconfirmed_sends, UnconfirmedSends::Resend);
        assert_eq!(f.policy.multiplier, 1.5);
        assert_eq!(f.ignored, ["timeout", "trackMessages"]);
    }

    #[test]
    fn endpoints_carry_user_path_and_options() {
        let e: Endpoint =
            "stomp+ssl://us%3Aer:p%40ss:word@broker.example:1234/v%2Fhost?sni=x&a=b%26c"
                .parse()
                .unwrap();
        assert_eq!(e.scheme, Scheme::StompSsl);
        assert!(e.scheme.is_tls());
        assert_eq!(e.login.as_deref(), Some("us:er"));
        assert_eq!(e.passcode.as_deref(), Some("p@ss:word"));
        assert_eq!(e.authority(), "broker.example:1234");
        assert_eq!(e.virtual_host().as_deref(), Some("v/host"));
        assert_eq!(e.option("a"), Some("b&c"));
        assert_eq!(
            e.to_string(),
            "stomp+ssl://us%3Aer@broker.example:1234/v%2Fhost?sni=x&a=b%26c"
        );
        assert!(!format!("{e:?}").contains("word"), "no passcode in Debug");

        let ws: Endpoint = "ws://localhost:15674/ws".parse().unwrap();
        assert_eq!((ws.scheme, ws.path.as_str()), (Scheme::Ws, "/ws"));
        assert_eq!(ws.virtual_host(), None, "a WebSocket path is no vhost");
        let v6: Endpoint = "udp://[ff02::1]".parse().unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("ff02::1", 61616));
        assert_eq!(v6.authority(), "[ff02::1]:61616");
        for (text, port) in [("wss://h", 443), ("ws://h", 80), ("ssl://h", 61614)] {
            assert_eq!(text.parse::<Endpoint>().unwrap().port, port, "{text}");
        }
        // Shown, the endpoint parses back to itself (without the passcode).
        let shown: Endpoint = e.to_string().parse().unwrap();
        assert_eq!(
            shown,
            Endpoint {
                passcode: None,
                ..e
            }
        );
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases: [(&str, usize, &str); 9] = [
            ("failover:(a:1,b:2", 17, "`)`"),
            (
                "failover:(a)?nope=1",
                13,
                "unknown failover option \"nope\"",
            ),
            ("failover:(a)?jitter=2", 13, "a fraction"),
            ("failover:(a)?randomize=yes", 13, "true or false"),
            ("failover:(a)?maxReconnectDelay", 13, "no `=value`"),
            ("a:99999", 2, "not in 0..=65535"),
            ("ftp://a", 0, "unknown scheme"),
            ("stomp://a/b%zz", 11, "two hex digits"),
            ("(a,b)?x=1", 6, "failover:(..) form"),
        ];
        for (text, offset, words) in cases {
            let e = error(text);
            assert_eq!(e.offset, offset, "{text}: {e}");
            assert!(e.message.contains(words), "{text}: {e}");
        }
        assert!(error("stomp://").message.contains("host"));
        assert!(error("a:1 b").message.contains("unexpected"));
    }
}
