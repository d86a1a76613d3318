//! The one error type of every adapter.

use std::fmt;

use stomp_proto::client::{CloseReason, CommandError, RequestError};

use stomp_proto::uri::UriError;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The URL could not be read.
    Url(UriError),
    /// The first connection could not be made.
    Connect(CloseReason),
    /// The client has ended (the reason, when known).
    Closed(Option<CloseReason>),
    /// The core refused the call (not connected, back-pressure, unknown
    /// subscription or transaction, ...); the connection is unaffected.
    Command(CommandError),
    /// A request that waited for its receipt failed: the broker's ERROR for
    /// it, the receipt deadline, or the connection lost first.
    Request(RequestError),
    /// No answer within the time asked for.
    Timeout,
    /// The call was made while the connection was down, and it stayed down
    /// (reconnecting) for [`Config::offline_wait`](crate::Config::offline_wait):
    /// nothing was sent.
    Offline {
        /// How long the call waited.
        waited: std::time::Duration,
    },
    /// The TLS settings are unusable (a bad PEM file, no trusted root).
    Tls(String),
    /// A reply was asked for a message without a `reply-to` header.
    NoReplyTo,
    /// A request's `correlation-id` is the same as one still waiting for
    /// its reply: the reply could not be told apart.
    DuplicateCorrelation(String),
}

/// What became of a request that failed (see
/// [`Config::confirm`](crate::Config::confirm)); a call that returned `Ok`
/// in confirmed mode was confirmed by the broker's receipt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The broker refused it with an ERROR: it did not take effect.
    Rejected,
    /// No answer in time, or the connection was lost first: it may or may
    /// not have taken effect. Check before doing it again (a COMMIT
    /// above all).
    Ambiguous,
    /// It never left the client (refused locally, not connected, closed).
    NotSent,
}

impl Error {
    /// What became of the request this error answers.
    ///
    /// ```
    /// use stomp_driver::{Error, Outcome};
    /// use stomp_proto::client::RequestError;
    ///
    /// let lost = Error::Request(RequestError::ConnectionLost);
    /// assert_eq!(lost.outcome(), Outcome::Ambiguous);
    /// assert_eq!(Error::Closed(None).outcome(), Outcome::NotSent);
    /// ```
    pub fn outcome(&self) -> Outcome {
        match self {
            Error::Request(RequestError::Server(_)) => Outcome::Rejected,
            Error::Request(RequestError::Timeout | RequestError::ConnectionLost) => {
                Outcome::Ambiguous
            }
            // A request's reply that did not come: the request went out.
            Error::Timeout => Outcome::Ambiguous,
            _ => Outcome::NotSent,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(e) => e.fmt(f),
            Error::Connect(reason) => write!(f, "could not connect: {reason}"),
            Error::Closed(Some(reason)) => write!(f, "the client has closed: {reason}"),
            Error::Closed(None) => f.write_str("the client has closed"),
            Error::Command(e) => e.fmt(f),
            Error::Request(e) => e.fmt(f),
            Error::Timeout => f.write_str("timed out"),
            Error::Offline { waited } => write!(
                f,
                "not connected: the connection was down for {waited:?} and nothing was sent"
            ),
            Error::Tls(e) => write!(f, "TLS settings: {e}"),
            Error::NoReplyTo => f.write_str("the message has no reply-to header"),
            Error::DuplicateCorrelation(id) => {
                write!(f, "a request with correlation-id {id:?} is waiting already")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Url(e) => Some(e),
            Error::Connect(reason) | Error::Closed(Some(reason)) => Some(reason),
            Error::Command(e) => Some(e),
            Error::Request(e) => Some(e),
            _ => None,
        }
    }
}

impl From<UriError> for Error {
    fn from(e: UriError) -> Error {
        Error::Url(e)
    }
}

impl From<CommandError> for Error {
    fn from(e: CommandError) -> Error {
        Error::Command(e)
    }
}
