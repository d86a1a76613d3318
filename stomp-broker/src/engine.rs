//! The embedded broker's logic, sans-IO like the rest of the core: a
//! transport adapter opens connections by id, hands in bytes and the time,
//! and writes out what [`Engine::poll_transmit`] gives. Queues
//! (`/queue/..` and any other name) give each message to one consumer,
//! round-robin, and hold it until it is acknowledged in the client modes
//! (redelivered, marked `redelivered:true`, on NACK or when its consumer
//! goes); topics (`/topic/..`) give a copy to every current subscriber.
//! Transactions hold their SENDs, ACKs and NACKs until COMMIT. A
//! subscription holds at most its prefetch of unacknowledged messages
//! (`activemq.prefetchSize` or `prefetch-count`), and a connection whose
//! outgoing queue is full gets nothing more until it drains: a slow
//! consumer cannot make the broker buffer without bound.
//!
//! It is a development and test broker; deployments use RabbitMQ, ActiveMQ
//! or Artemis.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use stomp_proto::server::{
    message_for, RequestKind, ServerCommandError, ServerConfig, ServerEvent, ServerSession,
};
use stomp_proto::{AckMode, Command, Frame};

/// A connection's number.
pub type ConnectionId = u64;

/// How the broker behaves.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Each connection's session configuration (versions, heart-beats,
    /// limits); the engine sends receipts itself, once a request is applied.
    /// By default heart-beats answer the client's own values swapped, at
    /// least 100 ms each (ActiveMQ's answer, with a floor).
    pub server: ServerConfig,
    /// Who may log in (login, passcode); empty: anyone.
    pub users: Vec<(String, String)>,
    /// Unacknowledged messages a client-acknowledged subscription may hold
    /// when it names no prefetch.
    pub prefetch: usize,
    /// Octets (bodies, plus a little for headers) that queues and open
    /// transactions may hold; past it [`is_full`](Engine::is_full) says so,
    /// and the transport stops reading from connections that send, until
    /// consumers drain it (a slightly soft limit: what was read still lands).
    pub max_stored: usize,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            server: ServerConfig {
                heartbeat_echo: Some(std::time::Duration::from_millis(100)),
                ..ServerConfig::default()
            },
            users: Vec::new(),
            prefetch: 1000,
            max_stored: 64 << 20,
        }
    }
}

/// A stored message: the SEND it came from.
#[derive(Clone, Debug)]
struct Stored {
    /// Shared by every copy of a topic's fan-out.
    send: Arc<Frame>,
    message_id: Arc<str>,
    redelivered: bool,
}

#[derive(Debug)]
struct Subscription {
    destination: String,
    ack: AckMode,
    prefetch: usize,
    in_flight: usize,
}

#[derive(Debug)]
struct Unacked {
    ack_id: String,
    subscription: String,
    destination: String,
    /// Topics' copies are not redelivered.
    from_queue: bool,
    message: Stored,
}

/// What a transaction holds until COMMIT.
#[derive(Debug)]
enum Held {
    Send { destination: String, frame: Frame },
    Ack { key: AckKey, nack: bool },
}

/// What an ACK or NACK names, per version: 1.2 the MESSAGE's `ack` header
/// (sent as `id`); 1.1 its `message-id` and `subscription`; 1.0 its
/// `message-id` alone.
#[derive(Clone, Debug)]
struct AckKey {
    id: String,
    subscription: Option<String>,
    /// 1.0 or 1.1: `id` is a `message-id`.
    by_message_id: bool,
}

impl Connection {
    /// Whether `frame` names a `/temp-queue/` in `reply-to` that this
    /// connection does not subscribe to.
    fn wants_temp_queue(&self, frame: &Frame) -> bool {
        temp_reply_to(frame)
            .is_some_and(|name| !self.subscriptions.values().any(|s| s.destination == name))
    }

    /// RabbitMQ's temporary reply queues: a SEND whose `reply-to` names
    /// `/temp-queue/NAME`, on a connection without a subscription to that
    /// destination (subscribing to it makes it a plain queue, as ActiveMQ
    /// has it), gets a queue of the connection's own, subscribed for it
    /// with the subscription id `/temp-queue/NAME` and `auto` acks; the
    /// `reply-to` passed on names it as `/reply-queue/QUEUE`. The frame to
    /// pass on, and the subscription made (its id and queue), if one was.
    fn temp_reply_queue(
        &mut self,
        id: ConnectionId,
        frame: Frame,
    ) -> (Frame, Option<(String, String)>) {
        let Some(name) = temp_reply_to(&frame)
            .filter(|_| self.wants_temp_queue(&frame))
            .map(String::from)
        else {
            return (frame, None);
        };
        let mut made = None;
        let count = self.temp_queues.len();
        let queue = self
            .temp_queues
            .entry(name.clone())
            .or_insert_with(|| {
                let queue = format!("tmp.{id}.{count}");
                made = Some((name.clone(), format!("/queue/{queue}")));
                queue
            })
            .clone();
        if let Some((sub, destination)) = &made {
            self.subscriptions.insert(
                sub.clone(),
                Subscription {
                    destination: destination.clone(),
                    ack: AckMode::Auto,
                    prefetch: usize::MAX,
                    in_flight: 0,
                },
            );
        }
        let reply_to = format!("/reply-queue/{queue}");
        let frame = Frame::builder(Command::Send)
            .headers(frame.headers.iter().map(|(k, v)| match k == "reply-to" {
                true => (k, reply_to.as_str()),
                false => (k, v),
            }))
            .body(frame.body.clone())
            .build();
        (frame, made)
    }
}

impl AckKey {
    fn matches(&self, unacked: &Unacked) -> bool {
        if !self.by_message_id {
            return unacked.ack_id == self.id;
        }
        *unacked.message.message_id == *self.id
            && self
                .subscription
                .as_ref()
                .is_none_or(|s| *s == unacked.subscription)
    }

    fn missing(&self) -> String {
        match (&self.subscription, self.by_message_id) {
            (_, false) => format!("no message to acknowledge with id {:?}", self.id),
            (Some(sub), true) => format!(
                "no message to acknowledge with message-id {:?} on subscription {sub:?}",
                self.id
            ),
            (None, true) => format!("no message to acknowledge with message-id {:?}", self.id),
        }
    }
}

/// The `/temp-queue/NAME` a SEND names in `reply-to`, if it does.
fn temp_reply_to(frame: &Frame) -> Option<&str> {
    frame
        .header("reply-to")
        .filter(|to| to.starts_with("/temp-queue/"))
}

#[derive(Debug)]
struct Connection {
    /// RabbitMQ's temporary reply queues this connection has, by their
    /// `/temp-queue/NAME`.
    temp_queues: HashMap<String, String>,
    session: ServerSession,
    subscriptions: HashMap<String, Subscription>,
    transactions: HashMap<String, Vec<Held>>,
    unacked: Vec<Unacked>,
    next_ack: u64,
    /// It has sent a SEND: a producer, held back while the broker is full.
    sent: bool,
    /// It is in [`Engine::ready`].
    ready: bool,
    /// The deadline of its entry in [`Engine::timers`], if it has one.
    deadline: Option<Instant>,
}

/// The broker; see the module docs.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    connections: HashMap<ConnectionId, Connection>,
    queues: HashMap<String, VecDeque<Stored>>,
    /// Per queue, the consumer served last (round-robin goes on after it).
    cursors: HashMap<String, (ConnectionId, String)>,
    /// Every destination's subscriptions (connection, subscription id), in
    /// round-robin order: delivery looks at a destination's own consumers,
    /// never at every connection.
    consumers: HashMap<String, BTreeSet<(ConnectionId, String)>>,
    next_connection: ConnectionId,
    next_message: u64,
    /// What queues and open transactions hold (see [`weight`]).
    stored: usize,
    /// Connections that may have something to transmit (see
    /// [`poll_ready`](Engine::poll_ready)): the owner visits these, never
    /// every connection.
    ready: Vec<ConnectionId>,
    /// Every connection's next deadline, earliest first. An entry is current
    /// while it is its connection's `deadline`; one that fires early (its
    /// session's deadline moved later meanwhile) just runs that session's
    /// timers: a busy connection has one entry, not one per frame.
    timers: BinaryHeap<Reverse<(Instant, ConnectionId)>>,
}

/// What a stored message counts for: its body and a little for headers.
fn weight(frame: &Frame) -> usize {
    frame.body.len() + 64
}

impl Engine {
    /// An empty broker.
    pub fn new(config: EngineConfig) -> Engine {
        let mut config = config;
        config.server.auto_receipts = false;
        Engine {
            config,
            connections: HashMap::new(),
            queues: HashMap::new(),
            cursors: HashMap::new(),
            consumers: HashMap::new(),
            next_connection: 1,
            next_message: 1,
            stored: 0,
            ready: Vec::new(),
            timers: BinaryHeap::new(),
        }
    }

    /// A transport opened at `now`.
    pub fn open(&mut self, now: Instant) -> ConnectionId {
        let id = self.next_connection;
        self.next_connection += 1;
        let connection = Connection {
            temp_queues: HashMap::new(),
            session: ServerSession::new(self.config.server.clone(), now),
            subscriptions: HashMap::new(),
            transactions: HashMap::new(),
            unacked: Vec::new(),
            next_ack: 1,
            sent: false,
            ready: false,
            deadline: None,
        };
        self.connections.insert(id, connection);
        self.touch(id);
        id
    }

    /// A connection that may have something to transmit, once each until
    /// the next change: hand [`poll_transmit`](Engine::poll_transmit) its
    /// id until it gives `None`.
    pub fn poll_ready(&mut self) -> Option<ConnectionId> {
        while let Some(id) = self.ready.pop() {
            if let Some(connection) = self.connections.get_mut(&id) {
                connection.ready = false;
                return Some(id);
            }
        }
        None
    }

    /// Connection `id`'s session changed: it may have output, and its
    /// deadline may be earlier than the one in the timers.
    fn touch(&mut self, id: ConnectionId) {
        let Some(connection) = self.connections.get_mut(&id) else {
            return;
        };
        if !connection.ready {
            connection.ready = true;
            self.ready.push(id);
        }
        if let Some(at) = connection.session.poll_timeout() {
            if connection.deadline.is_none_or(|old| at < old) {
                connection.deadline = Some(at);
                self.timers.push(Reverse((at, id)));
            }
        }
    }

    /// Bytes that arrived on connection `id`.
    pub fn input(&mut self, id: ConnectionId, now: Instant, bytes: &[u8]) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.session.handle_input(now, bytes);
            self.process(id, now);
        }
    }

    /// What to write to connection `id` next. When it returns `None` and
    /// [`is_finished`](Engine::is_finished) says so, close the transport.
    pub fn poll_transmit(&mut self, id: ConnectionId, now: Instant) -> Option<Bytes> {
        let bytes = self.connections.get_mut(&id)?.session.poll_transmit(now);
        if bytes.is_none() {
            // Drained: what waited for room on this connection may go now.
            if let Some(connection) = self.connections.get(&id) {
                let destinations = connection
                    .subscriptions
                    .values()
                    .map(|s| s.destination.clone())
                    .collect();
                self.dispatch_each(destinations);
            }
        }
        bytes
    }

    /// Whether connection `id` has ended (its last bytes may still wait in
    /// `poll_transmit`).
    pub fn is_finished(&self, id: ConnectionId) -> bool {
        self.connections
            .get(&id)
            .is_none_or(|c| c.session.is_finished())
    }

    /// Connection `id`'s transport closed: its unacknowledged queue messages
    /// go back to their queues, marked redelivered.
    pub fn closed(&mut self, id: ConnectionId) {
        let Some(mut connection) = self.connections.remove(&id) else {
            return;
        };
        connection.session.handle_closed();
        self.unindex(id, connection.subscriptions.drain());
        // Its open transactions end unapplied.
        for held in connection.transactions.values() {
            self.stored -= held_weight(held);
        }
        self.give_back(connection.unacked.drain(..).rev());
    }

    /// Runs the timers of the connections whose deadline has come, once
    /// each (a deadline they set that is already past waits for the next
    /// call).
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(&Reverse((at, id))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(connection) = self.connections.get_mut(&id) else {
                continue;
            };
            // Otherwise an earlier entry replaced this one.
            if connection.deadline == Some(at) {
                connection.deadline = None;
                due.push(id);
            }
        }
        for id in due {
            if let Some(connection) = self.connections.get_mut(&id) {
                connection.session.handle_timeout(now);
                self.process(id, now);
            }
        }
    }

    /// When to call [`handle_timeout`](Engine::handle_timeout) next (perhaps
    /// a little early).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|&Reverse((at, _))| at)
    }

    /// Messages waiting in queue `destination`.
    pub fn queued(&self, destination: &str) -> usize {
        self.queues.get(destination).map_or(0, VecDeque::len)
    }

    /// Octets the queues and open transactions hold, as counted against
    /// [`EngineConfig::max_stored`].
    pub fn stored(&self) -> usize {
        self.stored
    }

    /// Whether the store is full: stop reading from the connections that
    /// send ([`is_producer`](Engine::is_producer)) until it is not.
    pub fn is_full(&self) -> bool {
        self.stored >= self.config.max_stored
    }

    /// Whether the store is down to three quarters of its limit: producers
    /// held back since it was full may go again.
    pub fn is_drained(&self) -> bool {
        self.stored <= self.config.max_stored / 4 * 3
    }

    /// Whether connection `id` has sent messages.
    pub fn is_producer(&self, id: ConnectionId) -> bool {
        self.connections.get(&id).is_some_and(|c| c.sent)
    }

    /// The transport stopped (`true`) or resumed reading connection `id`
    /// (flow control): its heart-beats are not missed meanwhile.
    pub fn set_reading_paused(&mut self, id: ConnectionId, now: Instant, paused: bool) {
        if let Some(connection) = self.connections.get_mut(&id) {
            connection.session.set_reading_paused(now, paused);
            self.touch(id);
        }
    }

    /// Handles what connection `id`'s session has to say.
    fn process(&mut self, id: ConnectionId, now: Instant) {
        self.process_events(id, now);
        self.touch(id);
    }

    fn process_events(&mut self, id: ConnectionId, now: Instant) {
        loop {
            let Some(connection) = self.connections.get_mut(&id) else {
                return;
            };
            let Some(event) = connection.session.poll_event() else {
                return;
            };
            match event {
                ServerEvent::Connect(request) => {
                    let allowed = self.config.users.is_empty()
                        || self.config.users.iter().any(|(login, passcode)| {
                            request.login.as_deref() == Some(login)
                                && request.passcode.as_deref() == Some(passcode)
                        });
                    if allowed {
                        connection
                            .session
                            .accept(now, Some(&format!("session-{id}")));
                    } else {
                        connection
                            .session
                            .reject("Bad CONNECT", "login or passcode refused");
                    }
                }
                ServerEvent::Request(request) => {
                    let receipt = request.receipt.clone();
                    let then = match self.apply(id, request.kind, request.frame) {
                        Ok(then) => then,
                        Err(why) => {
                            if let Some(connection) = self.connections.get_mut(&id) {
                                connection.session.error(receipt.as_deref(), &why, &why);
                            }
                            continue;
                        }
                    };
                    if let (Some(receipt), Some(connection)) =
                        (receipt, self.connections.get_mut(&id))
                    {
                        connection.session.receipt(&receipt);
                    }
                    if let Some(destination) = then {
                        self.dispatch(&destination);
                    }
                }
                ServerEvent::Closed(_) => {
                    // The transport is closed once the last bytes are out;
                    // the unacknowledged go back now.
                    let unacked = std::mem::take(&mut connection.unacked);
                    let subscriptions = std::mem::take(&mut connection.subscriptions);
                    let temp_queues = std::mem::take(&mut connection.temp_queues);
                    self.unindex(id, subscriptions.into_iter());
                    // Its temporary reply queues go with it.
                    for queue in temp_queues.values() {
                        let gone = self.queues.remove(&format!("/queue/{queue}"));
                        let weight: usize = gone.iter().flatten().map(|m| weight(&m.send)).sum();
                        self.stored -= weight;
                    }
                    self.give_back(unacked.into_iter().rev());
                }
            }
        }
    }

    /// Applies one request: the destination to dispatch once its receipt is
    /// out (a new subscription's: RabbitMQ and ActiveMQ both send the
    /// SUBSCRIBE's RECEIPT before the messages waiting for it), or the ERROR
    /// message when it is refused.
    fn apply(
        &mut self,
        id: ConnectionId,
        kind: RequestKind,
        frame: Frame,
    ) -> Result<Option<String>, String> {
        let prefetch_default = self.config.prefetch;
        let connection = self
            .connections
            .get_mut(&id)
            .ok_or_else(|| "gone".to_string())?;
        if matches!(kind, RequestKind::Send { .. }) {
            connection.sent = true;
        }
        match kind {
            RequestKind::Send { destination, .. } if connection.wants_temp_queue(&frame) => {
                let (frame, made) = connection.temp_reply_queue(id, frame);
                if let Some((sub, queue)) = made {
                    self.consumers.entry(queue).or_default().insert((id, sub));
                }
                let kind = RequestKind::Send {
                    destination,
                    transaction: frame.header("transaction").map(String::from),
                };
                return self.apply(id, kind, frame);
            }
            RequestKind::Send {
                destination,
                transaction: Some(tx),
            } => {
                let held = held(connection, &tx)?;
                self.stored += weight(&frame);
                held.push(Held::Send { destination, frame });
            }
            RequestKind::Send { destination, .. } => self.publish(&destination, frame),
            RequestKind::Subscribe {
                id: sub,
                destination,
                ack,
            } => {
                if connection.subscriptions.contains_key(&sub) {
                    return Err(format!("subscription {sub:?} already exists"));
                }
                let prefetch = ["activemq.prefetchSize", "prefetch-count"]
                    .iter()
                    .find_map(|name| frame.header(name)?.parse().ok())
                    .filter(|&n: &usize| n > 0)
                    .unwrap_or(prefetch_default);
                self.consumers
                    .entry(destination.clone())
                    .or_default()
                    .insert((id, sub.clone()));
                connection.subscriptions.insert(
                    sub,
                    Subscription {
                        destination: destination.clone(),
                        ack,
                        prefetch,
                        in_flight: 0,
                    },
                );
                return Ok(Some(destination));
            }
            RequestKind::Unsubscribe { id: sub } => {
                let Some(subscription) = connection.subscriptions.remove(&sub) else {
                    return Err(format!("no subscription {sub:?}"));
                };
                // What it held unacknowledged goes back.
                let (gone, kept): (Vec<Unacked>, Vec<Unacked>) = connection
                    .unacked
                    .drain(..)
                    .partition(|u| u.subscription == sub);
                connection.unacked = kept;
                self.unindex(id, std::iter::once((sub, subscription)));
                self.give_back(gone.into_iter().rev());
            }
            RequestKind::Ack {
                id: ack_id,
                subscription,
                transaction,
                nack,
            } => {
                let key = AckKey {
                    id: ack_id,
                    subscription,
                    by_message_id: connection.session.version() < stomp_proto::Version::V1_2,
                };
                match transaction {
                    Some(tx) => held(connection, &tx)?.push(Held::Ack { key, nack }),
                    None => self.acknowledge(id, &key, nack)?,
                }
            }
            RequestKind::Begin { transaction } => {
                if connection.transactions.contains_key(&transaction) {
                    return Err(format!("transaction {transaction:?} already begun"));
                }
                connection.transactions.insert(transaction, Vec::new());
            }
            RequestKind::Commit { transaction } => {
                let held = connection
                    .transactions
                    .remove(&transaction)
                    .ok_or_else(|| format!("no transaction {transaction:?}"))?;
                self.stored -= held_weight(&held);
                // All or nothing: an ACK that cannot apply fails the COMMIT
                // before any of its sends is published.
                check_acks(connection, &held)
                    .map_err(|e| format!("transaction {transaction:?} not committed: {e}"))?;
                for item in held {
                    match item {
                        Held::Send { destination, frame } => self.publish(&destination, frame),
                        Held::Ack { key, nack } => self.acknowledge(id, &key, nack)?,
                    }
                }
            }
            RequestKind::Abort { transaction } => {
                let held = connection
                    .transactions
                    .remove(&transaction)
                    .ok_or_else(|| format!("no transaction {transaction:?}"))?;
                self.stored -= held_weight(&held);
            }
            RequestKind::Disconnect => {}
        }
        Ok(None)
    }

    /// A SEND takes effect: to a topic's subscribers now, or into a queue.
    fn publish(&mut self, destination: &str, frame: Frame) {
        // Where a temporary reply queue's `reply-to` points.
        let queue = destination
            .strip_prefix("/reply-queue/")
            .map(|name| format!("/queue/{name}"));
        let destination = queue.as_deref().unwrap_or(destination);
        let message = Stored {
            send: Arc::new(frame),
            message_id: format!("m-{}", self.next_message).into(),
            redelivered: false,
        };
        self.next_message += 1;
        if destination.starts_with("/topic/") {
            let targets: Vec<(ConnectionId, String)> = self
                .consumers
                .get(destination)
                .map(|all| all.iter().cloned().collect())
                .unwrap_or_default();
            for (id, sub) in targets {
                // A topic copy a full connection cannot take is dropped.
                let _ = self.deliver(id, &sub, destination, message.clone(), false);
            }
            return;
        }
        self.stored += weight(&message.send);
        self.queues
            .entry(destination.to_string())
            .or_default()
            .push_back(message);
        self.dispatch(destination);
    }

    /// Puts unacknowledged queue messages back at the front of their queues,
    /// marked redelivered; given newest first, so the oldest ends in front.
    /// Topic copies are dropped.
    /// Then offers those queues to their consumers again.
    fn give_back(&mut self, newest_first: impl Iterator<Item = Unacked>) {
        let mut requeued = BTreeSet::new();
        for unacked in newest_first {
            if unacked.from_queue {
                self.requeue(&unacked.destination, unacked.message);
                requeued.insert(unacked.destination);
            }
        }
        self.dispatch_each(requeued);
    }

    /// Forgets connection `id`'s `subscriptions` as consumers.
    fn unindex(
        &mut self,
        id: ConnectionId,
        subscriptions: impl Iterator<Item = (String, Subscription)>,
    ) {
        for (sub, subscription) in subscriptions {
            let destination = subscription.destination;
            if let Some(all) = self.consumers.get_mut(&destination) {
                all.remove(&(id, sub));
                if all.is_empty() {
                    self.consumers.remove(&destination);
                    self.cursors.remove(&destination);
                }
            }
        }
    }

    fn requeue(&mut self, destination: &str, mut message: Stored) {
        message.redelivered = true;
        self.stored += weight(&message.send);
        self.queues
            .entry(destination.to_string())
            .or_default()
            .push_front(message);
    }

    fn dispatch_each(&mut self, destinations: BTreeSet<String>) {
        for destination in destinations {
            self.dispatch(&destination);
        }
    }

    /// Gives queue `destination`'s messages to its consumers, round-robin,
    /// while one has room.
    fn dispatch(&mut self, destination: &str) {
        if destination.starts_with("/topic/") {
            return;
        }
        let Some(count) = self.consumers.get(destination).map(BTreeSet::len) else {
            return;
        };
        // Walk the consumers from the one served last, a message to each
        // with room, until the queue is empty or a whole lap found no room.
        let mut at = self.cursors.get(destination).cloned();
        let mut misses = 0;
        while misses < count && self.queued(destination) > 0 {
            let Some(all) = self.consumers.get(destination) else {
                return;
            };
            let next = match &at {
                Some(last) => all
                    .range((Bound::Excluded(last), Bound::Unbounded))
                    .next()
                    .or_else(|| all.first()),
                None => all.first(),
            };
            let Some((id, sub)) = next.cloned() else {
                return;
            };
            at = Some((id, sub.clone()));
            if !self.has_room(id, &sub) {
                misses += 1;
                continue;
            }
            let Some(message) = self
                .queues
                .get_mut(destination)
                .and_then(VecDeque::pop_front)
            else {
                return;
            };
            self.stored -= weight(&message.send);
            match self.deliver(id, &sub, destination, message, true) {
                Ok(()) => {
                    self.cursors.insert(destination.to_string(), (id, sub));
                    misses = 0;
                }
                Err(message) => {
                    // That connection is full: back to the front, and the
                    // others are asked.
                    self.stored += weight(&message.send);
                    self.queues
                        .entry(destination.to_string())
                        .or_default()
                        .push_front(message);
                    misses += 1;
                }
            }
        }
    }

    /// Whether subscription `sub` of connection `id` may take another
    /// message (its prefetch is not used up).
    fn has_room(&self, id: ConnectionId, sub: &str) -> bool {
        self.connections
            .get(&id)
            .and_then(|c| c.subscriptions.get(sub))
            .is_some_and(|s| s.ack == AckMode::Auto || s.in_flight < s.prefetch)
    }

    /// Sends one MESSAGE; the message back when the connection cannot take it.
    fn deliver(
        &mut self,
        id: ConnectionId,
        sub: &str,
        destination: &str,
        message: Stored,
        from_queue: bool,
    ) -> Result<(), Stored> {
        let Some(connection) = self.connections.get_mut(&id) else {
            return Err(message);
        };
        let Some(subscription) = connection.subscriptions.get_mut(sub) else {
            return Err(message);
        };
        let needs_ack = subscription.ack != AckMode::Auto;
        let ack_id = if needs_ack {
            format!("{id}-{}", connection.next_ack)
        } else {
            String::new()
        };
        let mut frame = message_for(
            &message.send,
            destination,
            sub,
            &message.message_id,
            needs_ack.then_some(ack_id.as_str()),
        );
        if message.redelivered {
            frame = Frame::builder(Command::Message)
                .headers(frame.headers.iter())
                .header("redelivered", "true")
                .body(frame.body.clone())
                .build();
        }
        match connection.session.message(&frame) {
            Ok(()) => {}
            Err(ServerCommandError::Backpressure | ServerCommandError::NotConnected) => {
                return Err(message)
            }
            // A frame that cannot be encoded is dropped.
            Err(ServerCommandError::Encode(_)) => return Ok(()),
        }
        connection.next_ack += 1;
        if needs_ack {
            subscription.in_flight += 1;
            connection.unacked.push(Unacked {
                ack_id,
                subscription: sub.to_string(),
                destination: destination.to_string(),
                from_queue,
                message,
            });
        }
        self.touch(id);
        Ok(())
    }

    /// ACK or NACK what `key` names on connection `id` (for `client`
    /// subscriptions, every earlier message of the subscription too).
    fn acknowledge(&mut self, id: ConnectionId, key: &AckKey, nack: bool) -> Result<(), String> {
        let connection = self
            .connections
            .get_mut(&id)
            .ok_or_else(|| "gone".to_string())?;
        let at = connection
            .unacked
            .iter()
            .position(|u| key.matches(u))
            .ok_or_else(|| key.missing())?;
        let sub = connection.unacked[at].subscription.clone();
        let cumulative = connection
            .subscriptions
            .get(&sub)
            .is_some_and(|s| s.ack == AckMode::Client);
        let chosen: BTreeSet<usize> = if cumulative {
            (0..=at)
                .filter(|&i| connection.unacked[i].subscription == sub)
                .collect()
        } else {
            BTreeSet::from([at])
        };
        let mut taken = Vec::new();
        for i in chosen.into_iter().rev() {
            taken.push(connection.unacked.remove(i));
        }
        // The subscription has room again (and a NACK gives its messages back).
        let mut freed = BTreeSet::new();
        if let Some(subscription) = connection.subscriptions.get_mut(&sub) {
            subscription.in_flight = subscription.in_flight.saturating_sub(taken.len());
            freed.insert(subscription.destination.clone());
        }
        if nack {
            // `taken` is newest first already.
            self.give_back(taken.into_iter());
        }
        self.dispatch_each(freed);
        Ok(())
    }
}

/// Whether every ACK and NACK `held` would apply, in turn, to what
/// `connection` holds unacknowledged (client-mode acks take the earlier
/// messages of their subscription with them, as in `acknowledge`).
fn check_acks(connection: &Connection, held: &[Held]) -> Result<(), String> {
    let mut open: Vec<&Unacked> = connection.unacked.iter().collect();
    for item in held {
        let Held::Ack { key, .. } = item else {
            continue;
        };
        let at = open
            .iter()
            .position(|u| key.matches(u))
            .ok_or_else(|| key.missing())?;
        let sub = open[at].subscription.as_str();
        let cumulative = connection
            .subscriptions
            .get(sub)
            .is_some_and(|s| s.ack == AckMode::Client);
        let mut index = 0;
        open.retain(|u| {
            let taken = index == at || (cumulative && index < at && u.subscription == sub);
            index += 1;
            !taken
        });
    }
    Ok(())
}

/// What a transaction's held sends count for.
fn held_weight(held: &[Held]) -> usize {
    held.iter()
        .map(|item| match item {
            Held::Send { frame, .. } => weight(frame),
            Held::Ack { .. } => 0,
        })
        .sum()
}

/// The held items of transaction `tx`, or why there is none.
fn held<'a>(connection: &'a mut Connection, tx: &str) -> Result<&'a mut Vec<Held>, String> {
    connection
        .transactions
        .get_mut(tx)
        .ok_or_else(|| format!("no transaction {tx:?}"))
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use stomp_proto::client::{
        ClientConfig, ClientSession, Event, Message, SendOptions, SubscribeOptions,
    };
    use stomp_proto::AckMode;

    use super::{ConnectionId, Engine, EngineConfig};

    /// Clients and the engine, wired in memory.
    struct Net {
        engine: Engine,
        clients: Vec<(ClientSession, ConnectionId)>,
        now: Instant,
    }

    impl Net {
        fn new(config: EngineConfig) -> Net {
            Net {
                engine: Engine::new(config),
                clients: Vec::new(),
                now: Instant::now(),
            }
        }

        /// A connected client's index.
        fn connect(&mut self, config: ClientConfig) -> usize {
            let mut client = ClientSession::new(config, self.now);
            client.poll_dial(self.now).expect("a dial");
            client.handle_connected(self.now);
            let id = self.engine.open(self.now);
            self.clients.push((client, id));
            self.pump();
            self.clients.len() - 1
        }

        fn client(&mut self) -> usize {
            self.connect(ClientConfig::default())
        }

        /// Moves bytes both ways until nothing moves.
        fn pump(&mut self) {
            loop {
                let mut moved = false;
                for (client, id) in &mut self.clients {
                    while let Some(bytes) = client.poll_transmit(self.now) {
                        self.engine.input(*id, self.now, &bytes);
                        moved = true;
                    }
                    while let Some(bytes) = self.engine.poll_transmit(*id, self.now) {
                        client.handle_input(self.now, &bytes);
                        moved = true;
                    }
                }
                if !moved {
                    return;
                }
            }
        }

        fn session(&mut self, n: usize) -> &mut ClientSession {
            &mut self.clients[n].0
        }

        fn subscribe(&mut self, n: usize, destination: &str, ack: AckMode) {
            let options = SubscribeOptions {
                ack,
                ..SubscribeOptions::default()
            };
            self.session(n).subscribe(destination, options).unwrap();
            self.pump();
        }

        fn send(&mut self, n: usize, destination: &str, body: &str) {
            let body = body.to_string();
            self.session(n)
                .send(destination, body, SendOptions::default())
                .unwrap();
            self.pump();
        }

        /// The messages client `n` has received since the last call.
        fn messages(&mut self, n: usize) -> Vec<Message> {
            let mut messages = Vec::new();
            while let Some(event) = self.session(n).poll_event() {
                if let Event::Message(message) = event {
                    messages.push(message);
                }
            }
            messages
        }

        fn texts(&mut self, n: usize) -> Vec<String> {
            self.messages(n)
                .iter()
                .map(|m| String::from_utf8_lossy(m.body()).into_owned())
                .collect()
        }
    }

    /// RabbitMQ's temporary reply queues: a `reply-to: /temp-queue/NAME`
    /// becomes a queue of the sender's own, which the answer reaches
    /// through `/reply-queue/`, delivered for the subscription
    /// `/temp-queue/NAME` the sender never made; another connection's
    /// `/temp-queue/` of the same name is another queue, and one the
    /// sender subscribes to itself stays a plain destination.
    #[test]
    fn temp_queue_replies_come_back_to_the_connection_that_asked() {
        let mut net = Net::new(EngineConfig::default());
        let (asker, other, server) = (net.client(), net.client(), net.client());
        net.subscribe(server, "/queue/rpc", AckMode::Auto);
        for (n, client) in [(0, asker), (1, other)] {
            let options = SendOptions {
                headers: vec![("reply-to".into(), "/temp-queue/r".into())],
                ..SendOptions::default()
            };
            net.session(client)
                .send("/queue/rpc", format!("q{n}"), options)
                .unwrap();
            net.pump();
        }
        let requests = net.messages(server);
        assert_eq!(requests.len(), 2);
        let replies: Vec<String> = requests
            .iter()
            .map(|m| m.frame.header("reply-to").unwrap().to_string())
            .collect();
        assert!(replies[0].starts_with("/reply-queue/"), "{replies:?}");
        assert_ne!(replies[0], replies[1]);
        for (n, to) in replies.iter().enumerate() {
            net.send(server, to, &format!("a{n}"));
        }
        for (n, client) in [(0, asker), (1, other)] {
            let got = net.messages(client);
            assert_eq!(got.len(), 1, "client {n}");
            assert_eq!(got[0].subscription.as_str(), "/temp-queue/r");
            assert_eq!(got[0].body().as_ref(), format!("a{n}").as_bytes());
        }
        // Asked again, the same queue.
        let options = SendOptions {
            headers: vec![("reply-to".into(), "/temp-queue/r".into())],
            ..SendOptions::default()
        };
        net.session(asker)
            .send("/queue/rpc", "again", options)
            .unwrap();
        net.pump();
        let again = net.messages(server);
        assert_eq!(again[0].frame.header("reply-to"), Some(replies[0].as_str()));
        // Subscribed to, it is a plain queue: `reply-to` passes as it is.
        net.subscribe(other, "/temp-queue/mine", AckMode::Auto);
        let options = SendOptions {
            headers: vec![("reply-to".into(), "/temp-queue/mine".into())],
            ..SendOptions::default()
        };
        net.session(other)
            .send("/queue/rpc", "plain", options)
            .unwrap();
        net.pump();
        let plain = net.messages(server);
        assert_eq!(plain[0].frame.header("reply-to"), Some("/temp-queue/mine"));
    }

    /// ACK and NACK as each version names them (1.0 `message-id`, 1.1
    /// `message-id` and `subscription`, 1.2 `id`), individually and
    /// cumulatively, inside a transaction and out: what was acknowledged is
    /// gone, what was not comes back to the next consumer.
    #[test]
    fn acks_work_in_every_version_and_ack_mode() {
        use stomp_proto::{Version, VersionSet};
        let cases = [
            (Version::V1_0, AckMode::Client),
            (Version::V1_1, AckMode::Client),
            (Version::V1_1, AckMode::ClientIndividual),
            (Version::V1_2, AckMode::Client),
            (Version::V1_2, AckMode::ClientIndividual),
        ];
        for (version, mode) in cases {
            for in_transaction in [false, true] {
                let case = format!("{version} {mode:?} in a transaction: {in_transaction}");
                let mut net = Net::new(EngineConfig::default());
                let config = ClientConfig {
                    versions: VersionSet::from_iter([version]),
                    ..ClientConfig::default()
                };
                let consumer = net.connect(config.clone());
                let producer = net.client();
                let q = "/queue/acks";
                net.subscribe(consumer, q, mode);
                for body in ["a", "b", "c", "d"] {
                    net.send(producer, q, body);
                }
                let messages = net.messages(consumer);
                assert_eq!(messages.len(), 4, "{case}");
                // Acknowledge "c": in client mode "a" and "b" go with it.
                let handle = messages[2].ack.clone().expect("an ack handle");
                let tx =
                    in_transaction.then(|| net.session(consumer).begin(None, false).unwrap().0);
                net.session(consumer)
                    .ack(&handle, tx.as_ref(), true)
                    .unwrap();
                if let Some(tx) = &tx {
                    net.session(consumer).commit(tx, true).unwrap();
                }
                net.pump();
                let errors: Vec<_> = std::iter::from_fn(|| net.session(consumer).poll_event())
                    .filter(|e| matches!(e, Event::RequestFailed { .. } | Event::Closed(_)))
                    .collect();
                assert!(errors.is_empty(), "{case}: {errors:?}");
                assert!(net.session(consumer).is_connected(), "{case}");
                // The consumer goes: the rest comes back to the next one.
                let id = net.clients[consumer].1;
                net.engine.closed(id);
                let next = net.connect(config);
                net.subscribe(next, q, AckMode::Auto);
                let back = net.texts(next);
                let expected: &[&str] = if mode == AckMode::Client {
                    &["d"]
                } else {
                    &["a", "b", "d"]
                };
                assert_eq!(back, expected, "{case}");
            }
        }
    }

    #[test]
    fn a_queue_gives_each_message_to_one_consumer_round_robin() {
        let mut net = Net::new(EngineConfig::default());
        let (a, b, producer) = (net.client(), net.client(), net.client());
        net.subscribe(a, "/queue/work", AckMode::Auto);
        net.subscribe(b, "/queue/work", AckMode::Auto);
        for n in 0..6 {
            net.send(producer, "/queue/work", &n.to_string());
        }
        let (to_a, to_b) = (net.texts(a), net.texts(b));
        assert_eq!(to_a.len(), 3, "{to_a:?} {to_b:?}");
        assert_eq!(to_b.len(), 3, "{to_a:?} {to_b:?}");
        let mut all: Vec<String> = to_a.into_iter().chain(to_b).collect();
        all.sort();
        assert_eq!(all, ["0", "1", "2", "3", "4", "5"]);
    }

    #[test]
    fn the_store_counts_queued_and_transaction_held_messages_and_says_when_full() {
        let config = EngineConfig {
            max_stored: 3 * (10 + 64),
            ..EngineConfig::default()
        };
        let mut net = Net::new(config);
        let producer = net.client();
        assert!(!net.engine.is_producer(net.clients[producer].1));
        for _ in 0..2 {
            net.send(producer, "/queue/store", "0123456789");
        }
        assert!(net.engine.is_producer(net.clients[producer].1));
        assert_eq!(net.engine.stored(), 2 * 74);
        assert!(!net.engine.is_full());
        // Held in a transaction counts too, until it ends.
        let (tx, _) = net.session(producer).begin(None, false).unwrap();
        let options = SendOptions {
            transaction: Some(tx.clone()),
            ..SendOptions::default()
        };
        let body = "0123456789".to_string();
        net.session(producer)
            .send("/queue/store", body, options)
            .unwrap();
        net.pump();
        assert_eq!(net.engine.stored(), 3 * 74);
        assert!(net.engine.is_full());
        assert!(!net.engine.is_drained());
        net.session(producer).abort(&tx, false).unwrap();
        net.pump();
        assert_eq!(net.engine.stored(), 2 * 74);
        assert!(!net.engine.is_full());
        assert!(net.engine.is_drained());
        // Delivered, they leave the store; in client mode they wait for
        // their ACK outside it (bounded by the prefetch).
        let consumer = net.client();
        net.subscribe(consumer, "/queue/store", AckMode::ClientIndividual);
        assert_eq!(net.texts(consumer).len(), 2);
        assert_eq!(net.engine.stored(), 0);
        // A connection that closes with a transaction open leaves nothing.
        let (tx, _) = net.session(producer).begin(None, false).unwrap();
        let options = SendOptions {
            transaction: Some(tx),
            ..SendOptions::default()
        };
        net.session(producer)
            .send("/queue/store", "x".to_string(), options)
            .unwrap();
        net.pump();
        assert_eq!(net.engine.stored(), 65);
        let id = net.clients[producer].1;
        net.engine.closed(id);
        assert_eq!(net.engine.stored(), 0);
    }

    #[test]
    fn a_queue_holds_messages_until_a_consumer_comes() {
        let mut net = Net::new(EngineConfig::default());
        let producer = net.client();
        net.send(producer, "/queue/later", "waiting");
        assert_eq!(net.engine.queued("/queue/later"), 1);
        let consumer = net.client();
        net.subscribe(consumer, "/queue/later", AckMode::Auto);
        assert_eq!(net.texts(consumer), ["waiting"]);
        assert_eq!(net.engine.queued("/queue/later"), 0);
    }

    #[test]
    fn a_topic_gives_a_copy_to_every_current_subscriber() {
        let mut net = Net::new(EngineConfig::default());
        let (a, b, producer) = (net.client(), net.client(), net.client());
        net.send(producer, "/topic/news", "before anyone");
        net.subscribe(a, "/topic/news", AckMode::Auto);
        net.subscribe(b, "/topic/news", AckMode::Auto);
        net.send(producer, "/topic/news", "hello");
        assert_eq!(net.texts(a), ["hello"]);
        assert_eq!(net.texts(b), ["hello"]);
    }

    #[test]
    fn unacknowledged_messages_go_to_another_consumer_marked_redelivered() {
        let mut net = Net::new(EngineConfig::default());
        let (a, producer) = (net.client(), net.client());
        net.subscribe(a, "/queue/jobs", AckMode::ClientIndividual);
        net.send(producer, "/queue/jobs", "one");
        net.send(producer, "/queue/jobs", "two");
        let received = net.messages(a);
        assert_eq!(received.len(), 2);
        // "one" is acknowledged, "two" is not when a goes away.
        let handle = received[0].ack.clone().unwrap();
        net.session(a).ack(&handle, None, false).unwrap();
        net.pump();
        let gone = net.clients[a].1;
        net.engine.closed(gone);
        assert_eq!(net.engine.queued("/queue/jobs"), 1);

        let b = net.client();
        net.subscribe(b, "/queue/jobs", AckMode::Auto);
        let again = net.messages(b);
        assert_eq!(again.len(), 1);
        assert_eq!(&again[0].body()[..], b"two");
        assert_eq!(again[0].frame.header("redelivered"), Some("true"));
    }

    #[test]
    fn nack_requeues_and_client_acks_are_cumulative() {
        let mut net = Net::new(EngineConfig::default());
        let (a, producer) = (net.client(), net.client());
        net.subscribe(a, "/queue/n", AckMode::Client);
        for body in ["1", "2", "3"] {
            net.send(producer, "/queue/n", body);
        }
        let received = net.messages(a);
        // ACK of "2" in client mode takes "1" with it.
        let second = received[1].ack.clone().unwrap();
        net.session(a).ack(&second, None, false).unwrap();
        net.pump();
        let third = received[2].ack.clone().unwrap();
        net.session(a).nack(&third, None, false).unwrap();
        net.pump();
        let again = net.messages(a);
        assert_eq!(again.len(), 1, "only the NACKed one comes back");
        assert_eq!(&again[0].body()[..], b"3");
        assert_eq!(again[0].frame.header("redelivered"), Some("true"));
    }

    #[test]
    fn prefetch_bounds_what_a_client_subscription_holds() {
        let mut net = Net::new(EngineConfig::default());
        let (a, producer) = (net.client(), net.client());
        let options = SubscribeOptions {
            ack: AckMode::ClientIndividual,
            headers: vec![("activemq.prefetchSize".into(), "2".into())],
            ..SubscribeOptions::default()
        };
        net.session(a).subscribe("/queue/p", options).unwrap();
        net.pump();
        for n in 0..5 {
            net.send(producer, "/queue/p", &n.to_string());
        }
        let first = net.messages(a);
        assert_eq!(first.len(), 2);
        assert_eq!(net.engine.queued("/queue/p"), 3);
        let handle = first[0].ack.clone().unwrap();
        net.session(a).ack(&handle, None, false).unwrap();
        net.pump();
        assert_eq!(net.texts(a), ["2"]);
    }

    #[test]
    fn transactions_apply_on_commit_and_never_after_abort() {
        let mut net = Net::new(EngineConfig::default());
        let (a, producer) = (net.client(), net.client());
        net.subscribe(a, "/queue/tx", AckMode::Auto);
        let (aborted, _) = net.session(producer).begin(None, false).unwrap();
        let options = SendOptions {
            transaction: Some(aborted.clone()),
            ..SendOptions::default()
        };
        net.session(producer)
            .send("/queue/tx", "aborted", options)
            .unwrap();
        net.session(producer).abort(&aborted, false).unwrap();
        let (committed, _) = net.session(producer).begin(None, false).unwrap();
        let options = SendOptions {
            transaction: Some(committed.clone()),
            ..SendOptions::default()
        };
        net.session(producer)
            .send("/queue/tx", "committed", options)
            .unwrap();
        net.pump();
        assert!(net.texts(a).is_empty(), "nothing before COMMIT");
        net.session(producer).commit(&committed, false).unwrap();
        net.pump();
        assert_eq!(net.texts(a), ["committed"]);
    }

    #[test]
    fn a_commit_whose_ack_cannot_apply_publishes_none_of_its_sends() {
        let mut net = Net::new(EngineConfig::default());
        let (a, watcher) = (net.client(), net.client());
        net.subscribe(watcher, "/queue/out", AckMode::Auto);
        net.subscribe(a, "/queue/in", AckMode::Client);
        net.send(watcher, "/queue/in", "one");
        net.send(watcher, "/queue/in", "two");
        let got = net.messages(a);
        let ack = |m: &Message| m.ack.clone().unwrap();
        let (first, second) = (ack(&got[0]), ack(&got[1]));
        let (tx, _) = net.session(a).begin(None, false).unwrap();
        let options = SendOptions {
            transaction: Some(tx.clone()),
            ..SendOptions::default()
        };
        net.session(a).send("/queue/out", "held", options).unwrap();
        // In client mode the second ACK takes the first message with it, so
        // acking the first after it has nothing left to apply to.
        net.session(a).ack(&second, Some(&tx), false).unwrap();
        net.session(a).ack(&first, Some(&tx), false).unwrap();
        net.session(a).commit(&tx, false).unwrap();
        net.pump();
        let refused = std::iter::from_fn(|| net.session(a).poll_event()).any(|e| match e {
            Event::Closed(stomp_proto::client::CloseReason::ServerError(error)) => error
                .message
                .as_deref()
                .is_some_and(|m| m.contains("not committed") && m.contains("no message")),
            _ => false,
        });
        assert!(refused, "the COMMIT is refused");
        assert!(net.texts(watcher).is_empty(), "its send was not published");
        assert_eq!(net.engine.queued("/queue/out"), 0);
        // The connection's end gives both messages back, unacknowledged.
        assert_eq!(net.engine.queued("/queue/in"), 2);
    }

    #[test]
    fn round_robin_skips_a_consumer_without_room_and_takes_it_back_after_its_ack() {
        let mut net = Net::new(EngineConfig::default());
        let (a, b, c, producer) = (net.client(), net.client(), net.client(), net.client());
        net.subscribe(a, "/queue/rr", AckMode::Auto);
        let options = SubscribeOptions {
            ack: AckMode::ClientIndividual,
            headers: vec![("prefetch-count".into(), "1".into())],
            ..SubscribeOptions::default()
        };
        net.session(b).subscribe("/queue/rr", options).unwrap();
        net.subscribe(c, "/queue/rr", AckMode::Auto);
        for n in 0..7 {
            net.send(producer, "/queue/rr", &n.to_string());
        }
        // In turn a, b, c; then b is full, so a and c alternate.
        assert_eq!(net.texts(a), ["0", "3", "5"]);
        let held = net.messages(b);
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].body().as_ref(), b"1");
        assert_eq!(net.texts(c), ["2", "4", "6"]);
        net.session(b)
            .ack(held[0].ack.as_ref().unwrap(), None, false)
            .unwrap();
        net.pump();
        for n in 7..10 {
            net.send(producer, "/queue/rr", &n.to_string());
        }
        // The turn goes on after c, the last served: a, b, c.
        assert_eq!(net.texts(a), ["7"]);
        assert_eq!(net.texts(b), ["8"]);
        assert_eq!(net.texts(c), ["9"]);
    }

    #[test]
    fn a_configured_user_list_refuses_strangers() {
        let mut net = Net::new(EngineConfig {
            users: vec![("alice".into(), "secret".into())],
            ..EngineConfig::default()
        });
        let stranger = net.client();
        let refused = std::iter::from_fn(|| net.session(stranger).poll_event()).any(|e| {
            matches!(e, Event::Closed(stomp_proto::client::CloseReason::ServerError(ref s))
                if s.message.as_deref() == Some("Bad CONNECT"))
        });
        assert!(refused);
        let alice =
            net.connect(ClientConfig::from_uri("stomp://alice:secret@127.0.0.1:61613").unwrap());
        let connected = std::iter::from_fn(|| net.session(alice).poll_event())
            .any(|e| matches!(e, Event::Connected(_)));
        assert!(connected);
    }

    #[test]
    fn receipts_come_after_the_request_is_applied_and_bad_requests_get_an_error() {
        let mut net = Net::new(EngineConfig::default());
        let a = net.client();
        let receipt = net
            .session(a)
            .send("/queue/r", "x", SendOptions::with_receipt())
            .unwrap()
            .unwrap();
        net.pump();
        assert_eq!(net.engine.queued("/queue/r"), 1);
        let events: Vec<Event> = std::iter::from_fn(|| net.session(a).poll_event()).collect();
        assert!(events.contains(&Event::Receipt(receipt)), "{events:?}");

        // COMMIT of a transaction never begun (raw: the client session
        // refuses to send it): an ERROR naming that request, then the end.
        let id = net.clients[a].1;
        let now = net.now;
        net.engine
            .input(id, now, b"COMMIT\ntransaction:never\nreceipt:bad-1\n\n\0");
        net.pump();
        let failed = std::iter::from_fn(|| net.session(a).poll_event()).any(|e| match e {
            Event::Closed(stomp_proto::client::CloseReason::ServerError(error)) => {
                error.message.as_deref() == Some("no transaction \"never\"")
                    && error.frame.header("receipt-id") == Some("bad-1")
            }
            _ => false,
        });
        assert!(failed);
    }
}
