//! One test suite for every adapter. The scenarios ([`brokers`], [`faults`],
//! [`restart`], [`interop`]) are written once against the [`Adapter`] traits,
//! a blocking view of a client; each adapter implements them (the async
//! ones by blocking on a runtime) and the test binaries instantiate every
//! scenario per adapter with [`suite!`].

use std::time::Duration;

use bytes::Bytes;
use stomp_driver::{Config, Empty, Error, Events};
use stomp_proto::client::{SendOptions, SessionInfo, Stats, SubscribeOptions};
use stomp_proto::{AckMode, Version};

pub mod adapters;
pub mod brokers;
pub mod chaos;
pub mod concurrency;
pub mod conformance;
pub mod failover;
pub mod faults;
pub mod interop;
pub mod multicast;
pub mod proxy;
pub mod restart;
pub mod support;

/// A client adapter, seen through blocking calls.
pub trait Adapter: 'static {
    /// Its name in messages.
    const NAME: &'static str;
    /// Its client.
    type Client: SuiteClient;

    /// Connects and waits for CONNECTED.
    fn connect(config: Config) -> Result<Self::Client, Error>;
}

/// What the scenarios do with a client.
pub trait SuiteClient: Send + Sync + Sized + std::fmt::Debug {
    /// Its subscriptions.
    type Sub: SuiteSub<Msg = Self::Msg>;
    /// Its messages.
    type Msg: SuiteMsg;
    /// Its stream of MESSAGEs for no subscription.
    type Unhandled: SuiteInbox<Msg = Self::Msg>;
    /// Its tap of frames in and out.
    type Tap: SuiteTap;
    /// Its transactions.
    type Tx<'a>: SuiteTx
    where
        Self: 'a;

    /// Who we are connected to.
    fn info(&self) -> SessionInfo;
    /// SEND with options; with a receipt, waits for it.
    fn send_with(&self, destination: &str, body: Bytes, options: SendOptions) -> Result<(), Error>;
    /// SUBSCRIBE with options; with a receipt, waits for it.
    fn subscribe_with(
        &self,
        destination: &str,
        options: SubscribeOptions,
    ) -> Result<Self::Sub, Error>;
    /// BEGIN.
    fn transaction(&self) -> Result<Self::Tx<'_>, Error>;
    /// The session's counters.
    fn stats(&self) -> Result<Stats, Error>;
    /// The life-cycle events.
    fn events(&self) -> Events;
    /// Whether a connection is up now.
    fn is_connected(&self) -> bool;
    /// How the client ended, once it has.
    fn close_reason(&self) -> Option<stomp_proto::client::CloseReason>;
    /// ACK (or NACK) by id alone, waiting for the receipt.
    fn ack_id(&self, subscription: &str, id: &str, nack: bool) -> Result<(), Error>;
    /// BEGIN with the caller's id.
    fn transaction_with_id(&self, id: &str) -> Result<Self::Tx<'_>, Error>;
    /// ACK (or, with `nack`, NACK) `message` inside `tx`.
    fn acknowledge_in(
        &self,
        message: &Self::Msg,
        tx: &Self::Tx<'_>,
        nack: bool,
    ) -> Result<(), Error>;
    /// A request, and its reply.
    fn request(
        &self,
        destination: &str,
        body: Bytes,
        options: SendOptions,
        timeout: Duration,
    ) -> Result<Self::Msg, Error>;
    /// Answers a request.
    fn reply(&self, request: &Self::Msg, body: Bytes) -> Result<(), Error>;
    /// The MESSAGEs for no subscription, from now on.
    fn unhandled(&self) -> Self::Unhandled;
    /// Every frame in and out, from now on.
    fn tap(&self) -> Self::Tap;
    /// The health check.
    fn health(&self) -> Result<stomp_driver::driver::Health, Error>;
    /// DISCONNECT and its receipt.
    fn disconnect(self) -> Result<(), Error>;

    /// SUBSCRIBE.
    fn subscribe(&self, destination: &str, ack: AckMode) -> Result<Self::Sub, Error> {
        let options = SubscribeOptions {
            ack,
            ..SubscribeOptions::default()
        };
        self.subscribe_with(destination, options)
    }

    /// The negotiated version.
    fn version(&self) -> Version {
        self.info().version
    }

    /// SEND without a receipt.
    fn send(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        self.send_with(destination, body.into(), SendOptions::default())
    }

    /// SEND and wait for its receipt.
    fn send_with_receipt(&self, destination: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        self.send_with(destination, body.into(), SendOptions::with_receipt())
    }
}

/// What the scenarios do with a subscription.
pub trait SuiteSub: Send + Sync {
    /// Its messages.
    type Msg: SuiteMsg;
    /// The next message within `timeout`.
    fn recv_timeout(&self, timeout: Duration) -> Result<Self::Msg, Empty>;
    /// UNSUBSCRIBE.
    fn unsubscribe(self) -> Result<(), Error>;
    /// UNSUBSCRIBE, waiting for its receipt.
    fn unsubscribe_with_receipt(self) -> Result<(), Error>;
}

/// Where messages wait to be taken (the unhandled stream).
pub trait SuiteInbox: Send + Sync {
    /// Its messages.
    type Msg: SuiteMsg;
    /// The next message within `timeout`.
    fn recv_timeout(&self, timeout: Duration) -> Result<Self::Msg, Empty>;
}

/// Where tapped frames wait.
pub trait SuiteTap: Send + Sync {
    /// The next tapped frame within `timeout`.
    fn recv_timeout(&self, timeout: Duration) -> Result<stomp_proto::client::Tapped, Empty>;
}

/// What the scenarios do with a message.
pub trait SuiteMsg: Send {
    /// The body.
    fn body(&self) -> &Bytes;
    /// A header.
    fn header(&self, name: &str) -> Option<&str>;
    /// ACK.
    fn ack(&self) -> Result<(), Error>;
    /// NACK.
    fn nack(&self) -> Result<(), Error>;
    /// ACK (or NACK), waiting for its receipt.
    fn ack_with_receipt(&self, nack: bool) -> Result<(), Error>;
    /// What an ACK names it by (`AckHandle::id`).
    fn ack_handle_id(&self) -> Option<String>;
    /// The adapter's own `text()`: the body decoded in the charset its
    /// `content-type` names.
    fn decoded_text(&self) -> Option<String>;

    /// The body as text.
    fn text(&self) -> Option<&str> {
        std::str::from_utf8(self.body()).ok()
    }
}

/// What the scenarios do with a transaction.
pub trait SuiteTx {
    /// SEND inside it.
    fn send(&self, destination: &str, body: &str) -> Result<(), Error>;
    /// COMMIT and its receipt.
    fn commit(self) -> Result<(), Error>;
    /// ABORT and its receipt.
    fn abort(self) -> Result<(), Error>;
}

/// Instantiates every shared scenario of `$module` (one of [`brokers`],
/// [`faults`], [`interop`], [`restart`]) as a `#[test]` for `$adapter`.
#[macro_export]
macro_rules! suite {
    ($adapter:ty, $module:ident: $($scenario:ident),+ $(,)?) => {
        $(
            #[test]
            fn $scenario() {
                $crate::$module::$scenario::<$adapter>();
            }
        )+
    };
}

/// The README's Rust examples (the codec's and every adapter's), compiled as
/// doc tests here, where every crate is in reach.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
