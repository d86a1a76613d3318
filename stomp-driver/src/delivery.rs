//! A received message as every adapter hands it out: the frame, and what an
//! ACK or NACK of it needs. Each adapter wraps it with acknowledgements of
//! its kind (blocking or async) and derefs to it for the rest.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use stomp_proto::client::{self as core, AckHandle, SendOptions, SubscriptionId, TxId};
use stomp_proto::Frame;

use crate::driver::{Command, Handle};
use crate::Error;

/// A received message; see the module docs.
pub struct Delivery {
    inner: core::Message,
    handle: Handle,
    answered: AtomicBool,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Delivery {
    /// A message that came through a subscription of the client behind
    /// `handle`.
    pub fn new(inner: core::Message, handle: Handle) -> Delivery {
        Delivery {
            inner,
            handle,
            answered: AtomicBool::new(false),
        }
    }

    /// The whole frame: headers and body.
    pub fn frame(&self) -> &Frame {
        &self.inner.frame
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner.frame.header(name)
    }

    /// The body.
    pub fn body(&self) -> &Bytes {
        self.inner.body()
    }

    /// The body as text, in the charset its `content-type` names (UTF-8
    /// when it names none; `us-ascii` and `iso-8859-1` too): `None` if it
    /// is not valid text in it, or another charset (see
    /// [`stomp_proto::body_text`]). Borrowed unless it had to be decoded.
    pub fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        stomp_proto::body_text(self.header("content-type"), self.inner.body())
    }

    /// The body parsed as JSON into `T`.
    #[cfg(feature = "serde")]
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.inner.body())
    }

    /// The `destination` header.
    pub fn destination(&self) -> Option<&str> {
        self.inner.destination()
    }

    /// The `reply-to` header: where a reply to it goes.
    pub fn reply_to(&self) -> Option<&str> {
        self.header("reply-to")
    }

    /// Where a reply to it goes, and the options that carry its
    /// `correlation-id` back (add headers, a receipt, a content type to
    /// them): [`Error::NoReplyTo`] if it names no `reply-to`.
    pub fn reply_options(&self) -> Result<(String, SendOptions), Error> {
        let destination = self.reply_to().ok_or(Error::NoReplyTo)?.to_string();
        let mut options = SendOptions::default();
        if let Some(id) = self.header("correlation-id") {
            options.headers.push(("correlation-id".into(), id.into()));
        }
        Ok((destination, options))
    }

    /// The subscription it came through.
    pub fn subscription(&self) -> &SubscriptionId {
        &self.inner.subscription
    }

    /// What an ACK or NACK of it carries, if its subscription needs one.
    pub fn ack_handle(&self) -> Option<&AckHandle> {
        self.inner.ack.as_ref()
    }

    /// Whether an ACK or NACK was asked for.
    pub fn is_answered(&self) -> bool {
        self.answered.load(Ordering::Relaxed)
    }

    /// The client's handle (for the adapter's ack calls).
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The handle to acknowledge it with, marking it answered: `None` when
    /// its subscription acknowledges automatically, an error for a message
    /// of an earlier connection.
    pub fn current_ack_handle(&self) -> Option<Result<AckHandle, Error>> {
        let handle = self.inner.ack.clone()?;
        self.answered.store(true, Ordering::Relaxed);
        Some(self.handle.current(handle))
    }

    /// The ACK or NACK with a receipt, answered through `done` when it
    /// comes; see [`current_ack_handle`](Delivery::current_ack_handle).
    pub fn receipted_ack(
        handle: AckHandle,
        nack: bool,
        transaction: Option<TxId>,
        done: crate::handle::Done<()>,
    ) -> Command {
        Command::Ack {
            handle,
            nack,
            transaction,
            receipt: true,
            done: Some(done),
            credit: 0,
        }
    }

    /// The ACK or NACK command for it and the window room it takes,
    /// marking it answered; `None` when its subscription acknowledges
    /// automatically, an error for a message of an earlier connection.
    pub fn acknowledgement(
        &self,
        nack: bool,
        transaction: Option<TxId>,
    ) -> Option<Result<(Command, usize), Error>> {
        let handle = self.inner.ack.clone()?;
        self.answered.store(true, Ordering::Relaxed);
        Some(self.handle.ack_command(handle, nack, transaction))
    }
}
