//! How requests, commands and whole sessions fail: each variant names the
//! rule that was broken, and says whether a reconnect may follow.

use std::fmt;
use std::io;

use crate::decode::DecodeError;
use crate::encode::EncodeError;
use crate::frame::{Command, Frame};
use crate::heartbeat::ParseHeartBeatError;
use crate::version::VersionSet;

/// An ERROR frame from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// The `message` header: a short description.
    pub message: Option<String>,
    /// The whole frame (the body often has details); boxed, so that errors
    /// carrying it stay small.
    pub frame: Box<Frame>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = self.message.as_deref().unwrap_or("(no message)");
        write!(f, "server error: {message}")?;
        if let Ok(body) = std::str::from_utf8(&self.frame.body) {
            let first = body.lines().next().unwrap_or("").trim();
            // Many brokers repeat the message as the body: say it once.
            if !first.is_empty() && first != message {
                write!(f, ": {first}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

/// Why a request with a receipt failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The server answered with an ERROR naming this receipt (or an ERROR
    /// naming none, which ends the connection).
    Server(ServerError),
    /// No receipt within the receipt timeout. The request may or may not
    /// have been carried out.
    Timeout,
    /// The connection ended first. The request may or may not have been
    /// carried out.
    ConnectionLost,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::Server(e) => e.fmt(f),
            RequestError::Timeout => f.write_str("no receipt in time"),
            RequestError::ConnectionLost => {
                f.write_str("the connection was lost before the receipt came")
            }
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Server(e) => Some(e),
            _ => None,
        }
    }
}

/// Why a transport failed or could not be opened: the I/O error's kind
/// (`ConnectionRefused`, `TimedOut`, `InvalidData` for a TLS or WebSocket
/// failure, ...) and its text.
///
/// ```
/// use std::io;
/// use stomp_proto::client::TransportFailure;
///
/// let refused = TransportFailure::from(io::Error::from(io::ErrorKind::ConnectionRefused));
/// assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
/// let said = TransportFailure::from("the proxy hung up");
/// assert_eq!(said.kind(), io::ErrorKind::Other);
/// assert_eq!(said.to_string(), "the proxy hung up");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportFailure {
    kind: io::ErrorKind,
    message: String,
}

impl TransportFailure {
    /// A failure of `kind`, described by `message`.
    pub fn new(kind: io::ErrorKind, message: impl Into<String>) -> TransportFailure {
        TransportFailure {
            kind,
            message: message.into(),
        }
    }

    /// The I/O error's kind.
    pub fn kind(&self) -> io::ErrorKind {
        self.kind
    }

    /// What was said about it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for TransportFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<io::Error> for TransportFailure {
    fn from(e: io::Error) -> TransportFailure {
        TransportFailure::from(&e)
    }
}

impl From<&io::Error> for TransportFailure {
    fn from(e: &io::Error) -> TransportFailure {
        TransportFailure::new(e.kind(), e.to_string())
    }
}

impl From<io::ErrorKind> for TransportFailure {
    fn from(kind: io::ErrorKind) -> TransportFailure {
        TransportFailure::from(io::Error::from(kind))
    }
}

impl From<String> for TransportFailure {
    fn from(message: String) -> TransportFailure {
        TransportFailure::new(io::ErrorKind::Other, message)
    }
}

impl From<&str> for TransportFailure {
    fn from(message: &str) -> TransportFailure {
        TransportFailure::new(io::ErrorKind::Other, message)
    }
}

/// Why a connection, a dial or the whole session ended.
///
/// [`may_reconnect`](CloseReason::may_reconnect) says, per variant, whether
/// the reconnect policy may try again after it: a broker refusing CONNECT,
/// a failed negotiation and a graceful or local end are final; a lost or
/// unreachable transport, a timeout, a protocol error and an ERROR on an
/// established connection are not.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// DISCONNECT was confirmed (or the transport closed after it was
    /// sent). Final.
    Disconnected,
    /// The DISCONNECT receipt did not come in time. Final.
    DisconnectTimeout,
    /// The server sent an ERROR that ends the connection. Final while
    /// connecting (the broker refused CONNECT: a bad login, a vhost it does
    /// not have); on an established connection a reconnect may follow.
    ServerError(ServerError),
    /// The transport was up but no CONNECTED came within the connect
    /// timeout. A reconnect may follow.
    ConnectTimeout,
    /// The transport (TCP, and the TLS and WebSocket handshakes) did not
    /// open within the dial's timeout: a black-holed address. A reconnect
    /// may follow.
    DialTimeout,
    /// The server was silent past the heart-beat grace. A reconnect may
    /// follow.
    HeartbeatTimeout,
    /// The server sent something that is not STOMP. A reconnect may follow.
    Protocol(DecodeError),
    /// The server sent a frame that has no place here (a MESSAGE before
    /// CONNECTED, a CONNECTED twice, a client frame). A reconnect may
    /// follow.
    UnexpectedFrame {
        /// The frame's command.
        command: Command,
        /// Where the session was: `"connecting"`, `"connected"` or
        /// `"disconnecting"`.
        state: &'static str,
    },
    /// CONNECTED named a version that was not offered. Final.
    VersionRefused {
        /// The `version` header's value.
        chosen: String,
        /// What CONNECT offered.
        offered: VersionSet,
    },
    /// CONNECTED carried a `heart-beat` header that is not two numbers.
    /// Final.
    BadHeartbeat(ParseHeartBeatError),
    /// A frame the session makes itself (CONNECT with the configured
    /// headers, a subscription replayed in the negotiated version) cannot be
    /// encoded. Final.
    Unencodable(EncodeError),
    /// The peer closed the transport. A reconnect may follow.
    TransportClosed,
    /// The transport failed, or could not be opened (connection refused,
    /// TLS handshake or WebSocket upgrade failure, a failed write, ...). A
    /// reconnect may follow.
    TransportError(TransportFailure),
    /// [`ClientSession::close`](super::ClientSession::close) was called.
    /// Final.
    Local,
    /// The reconnect policy's attempts ran out: no host of the list could
    /// be reached (`attempts` is 0 when the policy allows no reconnect pass
    /// after the first) or a lost connection could not be replaced. `last`
    /// is the last failure. Final.
    GaveUp {
        /// Reconnect passes made after the first pass over the list.
        attempts: u32,
        /// Why the last dial or connection failed.
        last: Box<CloseReason>,
    },
}

impl CloseReason {
    /// Whether the reconnect policy may try again after this: see each
    /// variant. [`ServerError`](CloseReason::ServerError) is retryable
    /// here; the session makes it final when it answers CONNECT.
    ///
    /// ```
    /// use stomp_proto::client::CloseReason;
    ///
    /// assert!(CloseReason::HeartbeatTimeout.may_reconnect());
    /// assert!(CloseReason::TransportError("connection refused".into()).may_reconnect());
    /// assert!(!CloseReason::Disconnected.may_reconnect());
    /// assert!(!CloseReason::Local.may_reconnect());
    /// ```
    pub fn may_reconnect(&self) -> bool {
        match self {
            CloseReason::TransportClosed
            | CloseReason::TransportError(_)
            | CloseReason::ConnectTimeout
            | CloseReason::DialTimeout
            | CloseReason::HeartbeatTimeout
            | CloseReason::Protocol(_)
            | CloseReason::UnexpectedFrame { .. }
            | CloseReason::ServerError(_) => true,
            CloseReason::Disconnected
            | CloseReason::DisconnectTimeout
            | CloseReason::VersionRefused { .. }
            | CloseReason::BadHeartbeat(_)
            | CloseReason::Unencodable(_)
            | CloseReason::Local
            | CloseReason::GaveUp { .. } => false,
        }
    }

    /// The failure beneath [`GaveUp`](CloseReason::GaveUp) (the last dial's
    /// or connection's), or this reason itself.
    ///
    /// ```
    /// use stomp_proto::client::CloseReason;
    ///
    /// let gave_up = CloseReason::GaveUp {
    ///     attempts: 3,
    ///     last: Box::new(CloseReason::DialTimeout),
    /// };
    /// assert_eq!(gave_up.root(), &CloseReason::DialTimeout);
    /// assert_eq!(CloseReason::Local.root(), &CloseReason::Local);
    /// ```
    pub fn root(&self) -> &CloseReason {
        match self {
            CloseReason::GaveUp { last, .. } => last.root(),
            other => other,
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Disconnected => f.write_str("disconnected"),
            CloseReason::DisconnectTimeout => f.write_str("no receipt for DISCONNECT in time"),
            CloseReason::ServerError(e) => e.fmt(f),
            CloseReason::ConnectTimeout => f.write_str("no CONNECTED in time"),
            CloseReason::DialTimeout => f.write_str("the transport did not open in time"),
            CloseReason::HeartbeatTimeout => f.write_str("the server stopped heart-beating"),
            CloseReason::Protocol(e) => write!(f, "protocol error: {e}"),
            CloseReason::UnexpectedFrame { command, state } => {
                write!(
                    f,
                    "unexpected {command} frame from the server while {state}"
                )
            }
            CloseReason::VersionRefused { chosen, offered } => {
                write!(
                    f,
                    "the server chose version {chosen:?}, not one of {offered}"
                )
            }
            CloseReason::BadHeartbeat(e) => write!(f, "CONNECTED: {e}"),
            CloseReason::Unencodable(e) => write!(f, "cannot encode a frame of our own: {e}"),
            CloseReason::TransportClosed => f.write_str("the connection closed"),
            CloseReason::TransportError(e) => write!(f, "transport error: {e}"),
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::GaveUp { attempts: 0, last } => {
                write!(f, "no host could be reached: {last}")
            }
            CloseReason::GaveUp { attempts, last } => {
                write!(f, "gave up after {attempts} reconnect passes: {last}")
            }
        }
    }
}

impl std::error::Error for CloseReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CloseReason::ServerError(e) => Some(e),
            CloseReason::Protocol(e) => Some(e),
            CloseReason::BadHeartbeat(e) => Some(e),
            CloseReason::Unencodable(e) => Some(e),
            CloseReason::GaveUp { last, .. } => Some(&**last),
            _ => None,
        }
    }
}

/// A call the session cannot carry out; the connection is unaffected.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// Not connected (yet, or any more), or disconnecting.
    NotConnected,
    /// The outgoing queue is full: drain `poll_transmit`, then retry.
    Backpressure,
    /// Too many receipts are pending.
    TooManyPendingReceipts,
    /// A receipt with this id is pending already.
    DuplicateReceipt(String),
    /// No such subscription.
    UnknownSubscription(String),
    /// A subscription with this id exists already.
    DuplicateSubscription(String),
    /// No open transaction with this id.
    UnknownTransaction(String),
    /// A transaction with this id is open already.
    DuplicateTransaction(String),
    /// NACK does not exist in STOMP 1.0.
    NackUnsupported,
    /// The message was delivered on an earlier connection: the broker that
    /// sent it has taken it back (it redelivers it), and an ACK or NACK
    /// naming it on this connection would draw an ERROR. Nothing was sent.
    StaleAck {
        /// What the ACK would have named (the `ack` or `message-id` value).
        id: String,
    },
    /// The frame cannot be encoded in the negotiated version.
    Encode(EncodeError),
    /// The frame is larger than the transport carries in one piece
    /// ([`ClientConfig::max_frame`](super::ClientConfig::max_frame): one
    /// datagram, for multicast).
    TooLarge {
        /// The encoded frame's octets.
        size: usize,
        /// The most the transport carries.
        limit: usize,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::NotConnected => f.write_str("not connected"),
            CommandError::Backpressure => f.write_str("the outgoing queue is full"),
            CommandError::TooManyPendingReceipts => f.write_str("too many receipts pending"),
            CommandError::DuplicateReceipt(id) => write!(f, "receipt {id:?} is pending"),
            CommandError::UnknownSubscription(id) => write!(f, "no subscription {id:?}"),
            CommandError::DuplicateSubscription(id) => write!(f, "subscription {id:?} exists"),
            CommandError::UnknownTransaction(id) => write!(f, "no open transaction {id:?}"),
            CommandError::DuplicateTransaction(id) => write!(f, "transaction {id:?} is open"),
            CommandError::NackUnsupported => f.write_str("NACK does not exist in STOMP 1.0"),
            CommandError::StaleAck { id } => write!(
                f,
                "message {id:?} came on an earlier connection; the broker redelivers it, \
                 so it cannot be acknowledged on this one"
            ),
            CommandError::Encode(e) => e.fmt(f),
            CommandError::TooLarge { size, limit } => write!(
                f,
                "the frame is {size} octets, and the transport carries at most {limit} in one piece"
            ),
        }
    }
}

impl std::error::Error for CommandError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CommandError::Encode(e) => Some(e),
            _ => None,
        }
    }
}
