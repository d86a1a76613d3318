//! Broker-less multicast, sans-IO: client sessions, each with its own
//! `Group` member, exchange datagrams in memory as a network would deliver
//! them to every member (the sender included).

use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use stomp_proto::client::{
    ClientConfig, ClientSession, CommandError, Event, SendOptions, SubscribeOptions,
};
use stomp_proto::multicast::{matches, Group, GroupConfig, SENDER_HEADER};
use stomp_proto::uri::Endpoint;
use stomp_proto::{AckMode, HeartBeat};

/// Members of one group, each a client session over its own `Group`.
struct Lan {
    members: Vec<(ClientSession, Group)>,
    now: Instant,
    /// Datagrams the network lost on purpose (none unless asked).
    lose: bool,
}

impl Lan {
    fn new() -> Lan {
        Lan {
            members: Vec::new(),
            now: Instant::now(),
            lose: false,
        }
    }

    /// Joins a member; its index.
    fn join(&mut self, group: GroupConfig) -> usize {
        let mut endpoint = Endpoint::tcp("224.1.2.3", 61616);
        endpoint.scheme = stomp_proto::uri::Scheme::Udp;
        let config = ClientConfig {
            hosts: vec![endpoint],
            heartbeat: HeartBeat::new(1000, 1000),
            max_frame: Some(group.max_frame()),
            ..ClientConfig::default()
        };
        let mut client = ClientSession::new(config, self.now);
        client.poll_dial(self.now).expect("a dial");
        client.handle_connected(self.now);
        self.members.push((client, Group::new(group, self.now)));
        self.run();
        self.members.len() - 1
    }

    /// Moves bytes between each session and its member, and datagrams to
    /// every member, until nothing moves.
    fn run(&mut self) {
        loop {
            let mut moved = false;
            let mut datagrams: Vec<Bytes> = Vec::new();
            for (client, group) in &mut self.members {
                while let Some(bytes) = client.poll_transmit(self.now) {
                    group.handle_client(self.now, &bytes);
                    moved = true;
                }
                while let Some(bytes) = group.poll_client(self.now) {
                    client.handle_input(self.now, &bytes);
                    moved = true;
                }
                while let Some(datagram) = group.poll_datagram() {
                    datagrams.push(datagram);
                    moved = true;
                }
            }
            if !self.lose {
                for datagram in &datagrams {
                    for (_, group) in &mut self.members {
                        group.handle_datagram(datagram);
                    }
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn client(&mut self, n: usize) -> &mut ClientSession {
        &mut self.members[n].0
    }

    fn subscribe(&mut self, n: usize, pattern: &str) {
        let options = SubscribeOptions {
            ack: AckMode::Auto,
            receipt: true,
            ..SubscribeOptions::default()
        };
        self.client(n).subscribe(pattern, options).unwrap();
        self.run();
    }

    fn send(&mut self, n: usize, destination: &str, body: &str) {
        let options = SendOptions::with_receipt();
        self.client(n)
            .send(destination, body.to_string(), options)
            .unwrap();
        self.run();
    }

    /// Events of member `n` since the last call.
    fn events(&mut self, n: usize) -> Vec<Event> {
        std::iter::from_fn(|| self.client(n).poll_event()).collect()
    }

    /// (destination, body) of the messages member `n` received.
    fn received(&mut self, n: usize) -> Vec<(String, String)> {
        self.events(n)
            .into_iter()
            .filter_map(|event| match event {
                Event::Message(m) => Some((
                    m.destination().unwrap_or("").to_string(),
                    String::from_utf8_lossy(m.body()).into_owned(),
                )),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn members_connect_without_a_broker_and_heartbeats_are_off() {
    let mut lan = Lan::new();
    let a = lan.join(GroupConfig::new(1));
    let info = lan.events(a).into_iter().find_map(|e| match e {
        Event::Connected(info) => Some(info),
        _ => None,
    });
    let info = info.expect("CONNECTED, answered locally");
    assert_eq!(info.heartbeat.send, None);
    assert_eq!(info.heartbeat.receive, None);
    assert!(info.server.unwrap().starts_with("stomp-rs-multicast/"));
}

#[test]
fn sends_reach_every_matching_subscription_of_every_member_with_local_receipts() {
    let mut lan = Lan::new();
    let (a, b, c) = (
        lan.join(GroupConfig::new(1)),
        lan.join(GroupConfig::new(2)),
        lan.join(GroupConfig::new(3)),
    );
    lan.subscribe(a, "/topic/prices/*");
    lan.subscribe(b, "/topic/prices/>");
    lan.subscribe(c, "/topic/news");
    for n in [a, b, c] {
        lan.events(n);
    }
    lan.send(c, "/topic/prices/eur", "1.08");
    lan.send(c, "/topic/prices/eur/usd", "1.09");
    lan.send(a, "/topic/news", "hello");
    let prices_eur = ("/topic/prices/eur".to_string(), "1.08".to_string());
    let prices_eur_usd = ("/topic/prices/eur/usd".to_string(), "1.09".to_string());
    assert_eq!(lan.received(a), std::slice::from_ref(&prices_eur));
    assert_eq!(lan.received(b), [prices_eur, prices_eur_usd]);
    assert_eq!(
        lan.received(c),
        [("/topic/news".to_string(), "hello".to_string())]
    );
    // Every send with a receipt got one, from its own member.
    let stats = lan.members[c].1.stats().clone();
    assert_eq!(stats.datagrams_out, 2);
    assert_eq!(stats.datagrams_in, 3);
    assert_eq!(lan.members[c].0.stats().receipt_timeouts, 0);
}

#[test]
fn own_messages_are_delivered_unless_ignoring_them_was_asked() {
    let mut lan = Lan::new();
    let plain = lan.join(GroupConfig::new(1));
    let ignoring = lan.join(GroupConfig {
        ignore_own: true,
        ..GroupConfig::new(2)
    });
    for n in [plain, ignoring] {
        lan.subscribe(n, "/topic/echo");
        lan.events(n);
    }
    lan.send(plain, "/topic/echo", "from plain");
    lan.send(ignoring, "/topic/echo", "from ignoring");
    let texts = |lan: &mut Lan, n| -> Vec<String> {
        lan.received(n).into_iter().map(|(_, body)| body).collect()
    };
    assert_eq!(texts(&mut lan, plain), ["from plain", "from ignoring"]);
    assert_eq!(texts(&mut lan, ignoring), ["from plain"]);
    assert_eq!(lan.members[ignoring].1.stats().own, 1);
}

#[test]
fn a_frame_larger_than_a_datagram_is_refused_when_sent_and_says_the_limit() {
    let mut lan = Lan::new();
    let group = GroupConfig {
        max_datagram: 1200,
        ..GroupConfig::new(1)
    };
    let limit = group.max_frame();
    let a = lan.join(group);
    lan.subscribe(a, "/topic/big");
    lan.events(a);
    // The largest body that fits, found by trying: it arrives whole.
    let fits = (0..1200)
        .rev()
        .find(|&n| {
            let body = "x".repeat(n);
            lan.client(a)
                .send("/topic/big", body, SendOptions::default())
                .is_ok()
        })
        .unwrap();
    lan.run();
    let received = lan.received(a);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].1.len(), fits);
    assert_eq!(lan.members[a].1.stats().too_large, 0);
    // One more octet is refused, naming the limit.
    let error = lan
        .client(a)
        .send("/topic/big", "x".repeat(fits + 1), SendOptions::default())
        .unwrap_err();
    assert_eq!(
        error,
        CommandError::TooLarge {
            size: limit + 1,
            limit
        }
    );
    assert!(error.to_string().contains(&limit.to_string()), "{error}");
}

#[test]
fn transactions_go_out_at_commit_and_never_after_abort() {
    let mut lan = Lan::new();
    let (a, b) = (lan.join(GroupConfig::new(1)), lan.join(GroupConfig::new(2)));
    lan.subscribe(b, "/topic/tx");
    lan.events(b);
    let (tx, _) = lan.client(a).begin(None, false).unwrap();
    let options = SendOptions {
        transaction: Some(tx.clone()),
        ..SendOptions::default()
    };
    lan.client(a)
        .send("/topic/tx", "held", options.clone())
        .unwrap();
    lan.run();
    assert!(lan.received(b).is_empty());
    lan.client(a).commit(&tx, true).unwrap();
    lan.run();
    assert_eq!(lan.received(b).len(), 1);
    let (tx, _) = lan.client(a).begin(None, false).unwrap();
    let options = SendOptions {
        transaction: Some(tx.clone()),
        ..SendOptions::default()
    };
    lan.client(a).send("/topic/tx", "dropped", options).unwrap();
    lan.client(a).abort(&tx, true).unwrap();
    lan.run();
    assert!(lan.received(b).is_empty());
}

#[test]
fn garbage_datagrams_are_counted_and_dropped_and_other_frames_ignored() {
    let mut lan = Lan::new();
    let a = lan.join(GroupConfig::new(1));
    lan.subscribe(a, "/topic/>");
    lan.events(a);
    let group = &mut lan.members[a].1;
    for garbage in [
        &b"not stomp at all"[..],
        b"SEND\ndestination:/topic/x\n\nno end",
        b"SEND\n\nno destination\0",
        b"SEND\ndestination:/topic/x\n\none\0SEND\ndestination:/topic/x\n\ntwo\0",
        b"\0\0\0",
        &[0xff; 70_000],
    ] {
        group.handle_datagram(garbage);
    }
    assert_eq!(group.stats().garbage, 6);
    // Well-formed frames that are not SENDs (what stomp.py's members
    // multicast besides them) are no garbage, only not for us.
    for other in [
        &b"DISCONNECT\nreceipt:bye\n\n\0"[..],
        b"RECEIPT\nreceipt-id:r-1\n\n\0\n",
        b"MESSAGE\ndestination:/topic/x\n\nwrong command\0",
    ] {
        group.handle_datagram(other);
    }
    assert_eq!(group.stats().ignored, 3);
    assert_eq!(group.stats().garbage, 6);
    assert_eq!(group.stats().delivered, 0);
    lan.run();
    assert!(lan.received(a).is_empty());
    // A good one after them still arrives (heart-beat newlines around it
    // allowed), carrying its sender.
    lan.members[a].1.handle_datagram(
        b"\nSEND\ndestination:/topic/x\nstomp-multicast-sender:00000000000000ff\n\nok\0\n",
    );
    lan.run();
    let events = lan.events(a);
    let Some(Event::Message(m)) = events.iter().find(|e| matches!(e, Event::Message(_))) else {
        panic!("{events:?}")
    };
    assert_eq!(m.frame.header(SENDER_HEADER), Some("00000000000000ff"));
}

proptest! {
    /// A destination matches the patterns made from it (segments replaced by
    /// `*`, or a tail by `>`), and none where a literal segment differs.
    #[test]
    fn patterns_match_exactly_what_their_segments_allow(
        segments in proptest::collection::vec("[a-z]{1,3}", 1..6),
        stars in proptest::collection::vec(any::<bool>(), 6),
        tail in 0usize..6,
        changed in 0usize..6,
    ) {
        let destination = format!("/{}", segments.join("/"));
        let mut pattern: Vec<String> = segments
            .iter()
            .zip(&stars)
            .map(|(s, star)| if *star { "*".to_string() } else { s.clone() })
            .collect();
        let starred = format!("/{}", pattern.join("/"));
        prop_assert!(matches(&starred, &destination), "{} {}", starred, destination);
        // `>` for any non-empty tail.
        let cut = tail % segments.len();
        let mut wide = pattern[..cut].to_vec();
        wide.push(">".to_string());
        let wide = format!("/{}", wide.join("/"));
        prop_assert!(matches(&wide, &destination), "{} {}", wide, destination);
        // A literal segment changed: no match.
        let at = changed % segments.len();
        if pattern[at] != "*" {
            pattern[at].push('z');
            let changed = format!("/{}", pattern.join("/"));
            prop_assert!(!matches(&changed, &destination), "{} {}", changed, destination);
        }
        // One segment more than the pattern: no match without `>`.
        let longer = format!("{destination}/more");
        prop_assert!(!matches(&destination, &longer), "{}", longer);
    }

    /// Random datagrams never panic a member and never reach its client
    /// unless they are one SEND frame.
    #[test]
    fn random_datagrams_never_panic(datagrams in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 1..20)) {
        let mut lan = Lan::new();
        let a = lan.join(GroupConfig::new(1));
        lan.subscribe(a, ">");
        lan.events(a);
        for datagram in &datagrams {
            lan.members[a].1.handle_datagram(datagram);
        }
        let stats = lan.members[a].1.stats().clone();
        prop_assert_eq!(stats.datagrams_in, datagrams.len() as u64);
        prop_assert!(stats.garbage + stats.delivered <= datagrams.len() as u64);
        lan.run();
    }
}
