//! Broker-less STOMP over UDP multicast, sans-IO: the [`Group`] stands in
//! for the broker a [`ClientSession`](crate::client::ClientSession) would
//! talk to. It answers CONNECT, receipts and DISCONNECT itself, turns each
//! SEND into one datagram for the group, and turns each datagram from the
//! group into a MESSAGE for every subscription whose pattern matches its
//! destination. The transport moves datagrams; the session never knows
//! there is no broker.
//!
//! What multicast gives up, compared with a broker: nothing is acknowledged
//! (ACK and NACK are accepted and do nothing; a lost datagram is lost),
//! nothing is stored (a member that is not listening misses what is sent),
//! and nothing orders messages across senders (each sender's datagrams may
//! also arrive out of order or twice on a real network). Heart-beats are
//! off: there is no peer to watch. Transactions are kept locally: their
//! sends go out, in order, at COMMIT.
//!
//! Destinations are matched segment by segment (split at `/`): `*` matches
//! exactly one segment, and `>` as the last segment matches one or more.
//!
//! ```
//! use stomp_proto::multicast::matches;
//!
//! assert!(matches("/topic/prices/*", "/topic/prices/eur"));
//! assert!(!matches("/topic/prices/*", "/topic/prices/eur/usd"));
//! assert!(matches("/topic/prices/>", "/topic/prices/eur/usd"));
//! assert!(!matches("/topic/prices/>", "/topic/prices"));
//! assert!(matches("/queue/a", "/queue/a"));
//! ```
//!
//! A datagram is one STOMP 1.2 SEND frame that carries its sender in the
//! [`SENDER_HEADER`] header, so that a member can ignore its own messages
//! when asked ([`GroupConfig::ignore_own`]; by default they are delivered,
//! as stomp.py does). stomp.py's `MulticastConnection` sends plain SEND
//! frames too, so its members and ours share a group; what else it
//! multicasts (its DISCONNECT, RECEIPTs) is counted in
//! [`GroupStats::ignored`] and otherwise left alone. (It writes header
//! values unescaped, so one holding a line feed breaks its frame: that
//! datagram is garbage to every reader.)

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::decode::{Decoder, Item, Limits};
use crate::encode::Encoder;
use crate::frame::{Command, Frame};
use crate::heartbeat::HeartBeat;
use crate::server::{message_for, RequestKind, ServerConfig, ServerEvent, ServerSession};
use crate::version::Version;

/// The header naming a datagram's sender.
pub const SENDER_HEADER: &str = "stomp-multicast-sender";

/// The length of a sender's identity (hex digits).
pub const SENDER_LEN: usize = 16;

/// The most a UDP datagram over IPv4 carries (65,535 less the IP and UDP
/// headers). Past the link's MTU (1,500 octets on most Ethernet), datagrams
/// are fragmented by IP, and a lost fragment loses the whole datagram.
pub const MAX_UDP_PAYLOAD: usize = 65_507;

/// What the sender header line adds to a frame.
pub const SENDER_OVERHEAD: usize = SENDER_HEADER.len() + 1 + SENDER_LEN + 1;

/// How a member behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// The largest datagram to send, in octets.
    pub max_datagram: usize,
    /// This member's identity ([`SENDER_LEN`] hex digits), carried by every
    /// datagram it sends.
    pub sender: String,
    /// Drop datagrams from ourselves instead of delivering them.
    pub ignore_own: bool,
}

impl GroupConfig {
    /// A member with identity `seed` (as hex) and the defaults: datagrams up
    /// to [`MAX_UDP_PAYLOAD`], own messages delivered.
    pub fn new(seed: u64) -> GroupConfig {
        GroupConfig {
            max_datagram: MAX_UDP_PAYLOAD,
            sender: format!("{seed:016x}"),
            ignore_own: false,
        }
    }

    /// The largest frame a client may send: a datagram less the sender
    /// header. Give it to the session as
    /// [`ClientConfig::max_frame`](crate::client::ClientConfig::max_frame).
    pub fn max_frame(&self) -> usize {
        self.max_datagram.saturating_sub(SENDER_OVERHEAD)
    }
}

/// What a member counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Datagrams sent to the group.
    pub datagrams_out: u64,
    /// Datagrams received from the group.
    pub datagrams_in: u64,
    /// MESSAGE frames handed to the client.
    pub delivered: u64,
    /// Datagrams that were not one well-formed frame, dropped.
    pub garbage: u64,
    /// Well-formed frames other than SEND, dropped without complaint:
    /// stomp.py's members multicast their DISCONNECT, and a RECEIPT for
    /// every frame they hear with a `receipt` header.
    pub ignored: u64,
    /// Our own datagrams, dropped as asked.
    pub own: u64,
    /// Messages dropped because the client was not taking them.
    pub overflow: u64,
    /// Sends larger than a datagram that reached the group (the session
    /// refuses them first when configured with the limit), dropped.
    pub too_large: u64,
}

/// A member of a multicast group, standing in for the broker of one client
/// session; see the module docs.
#[derive(Debug)]
pub struct Group {
    config: GroupConfig,
    session: ServerSession,
    /// (subscription id, destination pattern), in subscription order.
    subscriptions: Vec<(String, String)>,
    transactions: HashMap<String, Vec<Frame>>,
    datagrams: VecDeque<Bytes>,
    encoder: Encoder,
    stats: GroupStats,
    next_message: u64,
}

impl Group {
    /// A member for a client session whose transport opened at `now`.
    pub fn new(config: GroupConfig, now: Instant) -> Group {
        let server = ServerConfig {
            heartbeat: HeartBeat::OFF,
            server: Some(concat!("stomp-rs-multicast/", env!("CARGO_PKG_VERSION")).into()),
            auto_receipts: true,
            ..ServerConfig::default()
        };
        Group {
            config,
            session: ServerSession::new(server, now),
            subscriptions: Vec::new(),
            transactions: HashMap::new(),
            datagrams: VecDeque::new(),
            encoder: Encoder::new(Version::V1_2),
            stats: GroupStats::default(),
            next_message: 1,
        }
    }

    /// Octets the client session wrote.
    pub fn handle_client(&mut self, now: Instant, octets: &[u8]) {
        self.session.handle_input(now, octets);
        while let Some(event) = self.session.poll_event() {
            match event {
                ServerEvent::Connect(_) => {
                    let name = self.config.sender.clone();
                    self.session.accept(now, Some(&name));
                }
                ServerEvent::Request(request) => self.apply(request.kind, request.frame),
                ServerEvent::Closed(_) => {}
            }
        }
    }

    fn apply(&mut self, kind: RequestKind, frame: Frame) {
        match kind {
            RequestKind::Send {
                transaction: Some(tx),
                ..
            } => self.transactions.entry(tx).or_default().push(frame),
            RequestKind::Send { .. } => self.publish(&frame),
            RequestKind::Subscribe {
                id, destination, ..
            } => {
                self.subscriptions.push((id, destination));
            }
            RequestKind::Unsubscribe { id } => self.subscriptions.retain(|(s, _)| *s != id),
            RequestKind::Begin { transaction } => {
                self.transactions.insert(transaction, Vec::new());
            }
            RequestKind::Commit { transaction } => {
                for frame in self.transactions.remove(&transaction).unwrap_or_default() {
                    self.publish(&frame);
                }
            }
            RequestKind::Abort { transaction } => {
                self.transactions.remove(&transaction);
            }
            // Nothing is stored, so nothing is acknowledged.
            RequestKind::Ack { .. } | RequestKind::Disconnect => {}
        }
    }

    /// One SEND as a datagram: its headers but the receipt and transaction,
    /// and the sender.
    fn publish(&mut self, sent: &Frame) {
        let mut frame =
            Frame::builder(Command::Send).headers(sent.headers.iter().filter(|(name, _)| {
                !matches!(*name, "receipt" | "transaction" | "content-length")
                    && *name != SENDER_HEADER
            }));
        frame = frame.header(SENDER_HEADER, &self.config.sender);
        let frame = frame.body(sent.body.clone()).build();
        let mut datagram = BytesMut::new();
        if self.encoder.encode(&frame, &mut datagram).is_err()
            || datagram.len() > self.config.max_datagram
        {
            self.stats.too_large += 1;
            return;
        }
        self.stats.datagrams_out += 1;
        self.datagrams.push_back(datagram.freeze());
    }

    /// The next datagram to send to the group.
    pub fn poll_datagram(&mut self) -> Option<Bytes> {
        self.datagrams.pop_front()
    }

    /// What to hand the client session next (CONNECTED, receipts, messages).
    pub fn poll_client(&mut self, now: Instant) -> Option<Bytes> {
        self.session.poll_transmit(now)
    }

    /// A datagram from the group: a MESSAGE for each matching subscription,
    /// or counted and dropped when it is not one SEND frame (never a panic,
    /// whatever the octets).
    pub fn handle_datagram(&mut self, datagram: &[u8]) {
        self.stats.datagrams_in += 1;
        let sent = match single_frame(datagram, self.config.max_datagram) {
            Some(frame) if frame.command == Command::Send => frame,
            Some(_) => {
                self.stats.ignored += 1;
                return;
            }
            None => {
                self.stats.garbage += 1;
                return;
            }
        };
        if self.config.ignore_own && sent.header(SENDER_HEADER) == Some(&self.config.sender) {
            self.stats.own += 1;
            return;
        }
        let Some(destination) = sent.header("destination").map(String::from) else {
            self.stats.garbage += 1;
            return;
        };
        let targets: Vec<String> = self
            .subscriptions
            .iter()
            .filter(|(_, pattern)| matches(pattern, &destination))
            .map(|(id, _)| id.clone())
            .collect();
        for id in targets {
            let message_id = format!("{}-{}", self.config.sender, self.next_message);
            self.next_message += 1;
            let message = message_for(&sent, &destination, &id, &message_id, None);
            match self.session.message(&message) {
                Ok(()) => self.stats.delivered += 1,
                Err(_) => self.stats.overflow += 1,
            }
        }
    }

    /// What it counted.
    pub fn stats(&self) -> &GroupStats {
        &self.stats
    }

    /// Its configuration.
    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    /// Whether the client session has ended (DISCONNECT answered).
    pub fn is_finished(&self) -> bool {
        self.session.is_finished()
    }
}

/// The one frame `datagram` holds (heart-beat newlines around it allowed),
/// or `None`.
fn single_frame(datagram: &[u8], max: usize) -> Option<Frame> {
    let limits = Limits {
        max_frame_size: max,
        max_body: max,
        ..Limits::default()
    };
    let mut decoder = Decoder::new(Version::V1_2, limits);
    let mut input = BytesMut::from(datagram);
    let mut frame = None;
    loop {
        match decoder.decode(&mut input) {
            Ok(Some(Item::Heartbeat)) => {}
            Ok(Some(Item::Frame(f))) if frame.is_none() => {
                frame = Some(f);
            }
            Ok(None) if input.is_empty() => return frame,
            _ => return None,
        }
    }
}

/// Whether `destination` matches `pattern`: segment by segment (split at
/// `/`), `*` matching any one segment and a final `>` one or more.
pub fn matches(pattern: &str, destination: &str) -> bool {
    let mut wanted = pattern.split('/');
    let mut given = destination.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) if wanted.clone().next().is_none() => return true,
            (Some("*"), Some(_)) => {}
            (Some(w), Some(g)) if w == g => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_segments_only() {
        assert!(matches("/topic/a", "/topic/a"));
        assert!(!matches("/topic/a", "/topic/ab"));
        assert!(!matches("/topic/a", "/topic/a/b"));
        assert!(matches("/topic/*/x", "/topic/any/x"));
        assert!(!matches("/topic/*/x", "/topic/x"));
        assert!(matches("/topic/>", "/topic/a"));
        assert!(matches("/topic/>", "/topic/a/b/c"));
        assert!(!matches("/topic/>", "/topic"));
        // `>` only counts as the last segment; elsewhere it is literal.
        assert!(!matches("/topic/>/x", "/topic/a/x"));
        assert!(matches("/topic/>/x", "/topic/>/x"));
        assert!(matches("*", "anything"));
        assert!(!matches("/a*", "/ab"));
    }
}
