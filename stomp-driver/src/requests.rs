//! Request and reply: a SEND with `reply-to` and `correlation-id`, answered
//! by the first MESSAGE that carries the same `correlation-id` back.
//!
//! Where replies come depends on the broker. RabbitMQ makes a private queue
//! for a `reply-to: /temp-queue/NAME` by itself and delivers its messages
//! without a SUBSCRIBE of ours (they arrive for a subscription the client
//! never made). Other brokers need a subscription: ActiveMQ turns
//! `/temp-queue/NAME` into a temporary queue of the connection, and on a
//! broker without temporary queues a `/temp-queue/` name with a random part
//! is a queue nobody else uses. The subscription is the session's like any
//! other: replayed after a reconnect.

use std::collections::HashMap;
use std::time::Instant;

use stomp_proto::client::{self as core, ClientSession, SubscribeOptions, SubscriptionId};
use stomp_proto::AckMode;

use crate::error::Error;
use crate::handle::Done;

/// The subscription id replies come through, where the client subscribes.
const REPLY_SUBSCRIPTION: &str = "stomp-rs-replies";

/// How replies reach this client.
#[derive(Debug)]
enum Route {
    /// The broker subscribes the connection itself (RabbitMQ's
    /// `/temp-queue/`): replies come for a subscription we never made.
    Broker(String),
    /// Through our own subscription to the destination.
    Subscribed {
        id: SubscriptionId,
        destination: String,
    },
}

impl Route {
    fn destination(&self) -> &str {
        match self {
            Route::Broker(destination) | Route::Subscribed { destination, .. } => destination,
        }
    }
}

/// A request waiting for its reply.
#[derive(Debug)]
struct Pending {
    done: Done<core::Message>,
    deadline: Instant,
}

/// The requests waiting for replies, and the way replies come.
#[derive(Debug)]
pub(crate) struct Requests {
    /// The destination replies go to, when the configuration names one.
    configured: Option<String>,
    /// A random part that makes names of ours unique among clients.
    unique: String,
    route: Option<Route>,
    pending: HashMap<String, Pending>,
    next: u64,
}

impl Requests {
    pub(crate) fn new(configured: Option<String>, seed: u64) -> Requests {
        Requests {
            configured,
            unique: format!("{seed:016x}"),
            route: None,
            pending: HashMap::new(),
            next: 0,
        }
    }

    /// The `reply-to` for a request to a broker whose CONNECTED named
    /// `server`, subscribing first where the broker needs it.
    pub(crate) fn reply_to(
        &mut self,
        session: &mut ClientSession,
        server: Option<&str>,
    ) -> Result<String, Error> {
        if let Some(route) = &self.route {
            return Ok(route.destination().to_string());
        }
        let rabbit = server.is_some_and(|s| s.starts_with("RabbitMQ"));
        let route = match &self.configured {
            None if rabbit => Route::Broker("/temp-queue/stomp-rs-replies".into()),
            configured => {
                let destination = configured
                    .clone()
                    .unwrap_or_else(|| format!("/temp-queue/stomp-rs-replies-{}", self.unique));
                let options = SubscribeOptions {
                    ack: AckMode::Auto,
                    id: Some(format!("{REPLY_SUBSCRIPTION}-{}", self.unique)),
                    ..SubscribeOptions::default()
                };
                let (id, _) = session.subscribe(&destination, options)?;
                Route::Subscribed { id, destination }
            }
        };
        let destination = route.destination().to_string();
        self.route = Some(route);
        Ok(destination)
    }

    /// A fresh `correlation-id`.
    pub(crate) fn correlation(&mut self) -> String {
        self.next += 1;
        format!("{}-{}", self.unique, self.next)
    }

    /// How many wait.
    pub(crate) fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether `correlation` is waiting already.
    pub(crate) fn is_pending(&self, correlation: &str) -> bool {
        self.pending.contains_key(correlation)
    }

    /// Waits for the reply carrying `correlation` until `deadline`.
    pub(crate) fn wait(
        &mut self,
        correlation: String,
        done: Done<core::Message>,
        deadline: Instant,
    ) {
        self.pending.insert(correlation, Pending { done, deadline });
    }

    /// Whether `subscription` is the one replies come through.
    pub(crate) fn is_reply_subscription(&self, subscription: &SubscriptionId) -> bool {
        matches!(&self.route, Some(Route::Subscribed { id, .. }) if id == subscription)
    }

    /// Answers the request `message` replies to, if one waits for it;
    /// otherwise hands the message back.
    pub(crate) fn answer(&mut self, message: core::Message) -> Option<core::Message> {
        let waiting = message
            .frame
            .header("correlation-id")
            .and_then(|id| self.pending.remove(id));
        match waiting {
            Some(pending) => {
                pending.done.send(Ok(message));
                None
            }
            None => Some(message),
        }
    }

    /// Fails the request that sent `correlation`, if it still waits.
    pub(crate) fn fail(&mut self, correlation: &str, error: Error) {
        if let Some(pending) = self.pending.remove(correlation) {
            pending.done.send(Err(error));
        }
    }

    /// The earliest deadline of a waiting request.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| p.deadline).min()
    }

    /// Fails the requests whose time is up with [`Error::Timeout`].
    pub(crate) fn expire(&mut self, now: Instant) {
        let due: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.fail(&id, Error::Timeout);
        }
    }

    /// Fails every waiting request with `error` (the connection is gone:
    /// a reply sent to it can no longer come).
    pub(crate) fn fail_all(&mut self, error: &Error) {
        for (_, pending) in self.pending.drain() {
            pending.done.send(Err(error.clone()));
        }
    }
}
