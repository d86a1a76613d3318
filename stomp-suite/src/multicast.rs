//! Broker-less UDP multicast, on loopback only (interface 127.0.0.1, TTL 0,
//! multicast loop on): several clients of one process in a group, wildcard
//! subscriptions, receipts answered locally, the size limit, our own
//! messages, and garbage on the group.

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use stomp_driver::{Config, Error};
use stomp_proto::client::{CommandError, SubscribeOptions};
use stomp_proto::AckMode;

use crate::support::WAIT;
use crate::{Adapter, SuiteClient, SuiteMsg, SuiteSub, SuiteTx};

/// Instantiates every scenario of this module for `$adapter`.
#[macro_export]
macro_rules! multicast_scenarios {
    ($adapter:ty) => {
        $crate::suite!($adapter, multicast: multicast_members_exchange_messages_by_wildcard_without_a_broker,
            multicast_refuses_a_frame_larger_than_a_datagram_and_says_the_limit,
            multicast_own_messages_are_delivered_unless_ignoring_them_was_asked,
            multicast_garbage_on_the_group_is_counted_and_dropped,
            multicast_the_largest_frame_that_fits_crosses_the_network_whole);
    };
}

/// The group every scenario uses, on its own port (tests run in parallel,
/// and so do the adapters' test binaries).
pub const GROUP: &str = "239.255.77.77";

/// A port no other running scenario uses.
pub fn port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let process = (std::process::id() % 500) as u16;
    40_000 + process * 40 + NEXT.fetch_add(1, Ordering::Relaxed) % 40
}

/// `udp://GROUP:port` on loopback, with extra options.
pub fn url(port: u16, options: &str) -> String {
    format!("udp://{GROUP}:{port}?interface=127.0.0.1&ttl=0{options}")
}

fn member<A: Adapter>(url: &str) -> A::Client {
    A::connect(Config::from_url(url).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", A::NAME))
}

fn subscribe<C: SuiteClient>(client: &C, pattern: &str) -> C::Sub {
    let options = SubscribeOptions {
        ack: AckMode::Auto,
        receipt: true,
        ..SubscribeOptions::default()
    };
    client.subscribe_with(pattern, options).unwrap()
}

fn text(message: &impl SuiteMsg) -> String {
    message.text().unwrap_or("<binary>").to_string()
}

/// Nothing more arrives within a moment.
fn quiet(subscription: &impl SuiteSub) {
    if let Ok(message) = subscription.recv_timeout(Duration::from_millis(200)) {
        panic!("unexpected: {:?}", message.text());
    }
}

pub fn multicast_members_exchange_messages_by_wildcard_without_a_broker<A: Adapter>() {
    let url = url(port(), "");
    let (a, b, c) = (member::<A>(&url), member::<A>(&url), member::<A>(&url));
    assert!(a.info().server.unwrap().starts_with("stomp-rs-multicast/"));
    let one = subscribe(&a, "/topic/prices/*");
    let any = subscribe(&b, "/topic/prices/>");
    let news = subscribe(&c, "/topic/news");
    // Receipts come from the member itself.
    c.send_with_receipt("/topic/prices/eur", "1.08").unwrap();
    c.send_with_receipt("/topic/prices/eur/usd", "1.09")
        .unwrap();
    a.send_with_receipt("/topic/news", "hello").unwrap();
    assert_eq!(
        text(&one.recv_timeout(WAIT).unwrap()),
        "1.08",
        "{}",
        A::NAME
    );
    quiet(&one);
    assert_eq!(text(&any.recv_timeout(WAIT).unwrap()), "1.08");
    let second = any.recv_timeout(WAIT).unwrap();
    assert_eq!(text(&second), "1.09");
    assert_eq!(second.header("destination"), Some("/topic/prices/eur/usd"));
    assert_eq!(text(&news.recv_timeout(WAIT).unwrap()), "hello");
    quiet(&news);
    // Transactions go out at COMMIT.
    let tx = a.transaction().unwrap();
    tx.send("/topic/news", "in a transaction").unwrap();
    quiet(&news);
    tx.commit().unwrap();
    assert_eq!(text(&news.recv_timeout(WAIT).unwrap()), "in a transaction");
    for client in [a, b, c] {
        client.disconnect().unwrap();
    }
}

pub fn multicast_refuses_a_frame_larger_than_a_datagram_and_says_the_limit<A: Adapter>() {
    let url = url(port(), "&max_datagram=1400");
    let client = member::<A>(&url);
    let subscription = subscribe(&client, "/topic/big");
    let error = client
        .send("/topic/big", vec![b'x'; 1400])
        .expect_err("larger than a datagram");
    let Error::Command(CommandError::TooLarge { size, limit }) = &error else {
        panic!("{}: {error:?}", A::NAME)
    };
    assert!(*size > *limit && *limit < 1400, "{error}");
    assert!(error.to_string().contains(&limit.to_string()), "{error}");
    // The connection is unaffected, and what fits arrives whole.
    client
        .send_with_receipt("/topic/big", vec![b'y'; 1200])
        .unwrap();
    let message = subscription.recv_timeout(WAIT).unwrap();
    assert_eq!(message.body().len(), 1200);
    client.disconnect().unwrap();
}

pub fn multicast_own_messages_are_delivered_unless_ignoring_them_was_asked<A: Adapter>() {
    let port = port();
    let plain = member::<A>(&url(port, ""));
    let ignoring = member::<A>(&url(port, "&ignore_own=true"));
    let to_plain = subscribe(&plain, "/topic/echo");
    let to_ignoring = subscribe(&ignoring, "/topic/echo");
    plain
        .send_with_receipt("/topic/echo", "from plain")
        .unwrap();
    ignoring
        .send_with_receipt("/topic/echo", "from ignoring")
        .unwrap();
    let mut got: Vec<String> = (0..2)
        .map(|_| text(&to_plain.recv_timeout(WAIT).unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, ["from ignoring", "from plain"], "{}", A::NAME);
    assert_eq!(text(&to_ignoring.recv_timeout(WAIT).unwrap()), "from plain");
    quiet(&to_ignoring);
    plain.disconnect().unwrap();
    ignoring.disconnect().unwrap();
}

pub fn multicast_garbage_on_the_group_is_counted_and_dropped<A: Adapter>() {
    let port = port();
    let client = member::<A>(&url(port, ""));
    let subscription = subscribe(&client, "/topic/>");
    // A stranger on the group: a plain socket, set up as members are.
    let stranger: stomp_proto::uri::Failover = url(port, "").parse().unwrap();
    let socket = stomp_driver::multicast::options(&stranger.hosts[0])
        .unwrap()
        .open()
        .unwrap();
    let group = (GROUP, port);
    for garbage in [
        &b"not stomp"[..],
        b"SEND\ndestination:/topic/x\n\nno end",
        b"SEND\ndestination:/topic/x\ncontent-length:99\n\nshorter\0",
        b"",
    ] {
        socket.send_to(garbage, group).unwrap();
    }
    // What a stomp.py member multicasts besides SENDs is no garbage.
    socket
        .send_to(b"DISCONNECT\nreceipt:bye\n\n\0", group)
        .unwrap();
    // A real frame after them, from a stranger without a sender header.
    socket
        .send_to(b"SEND\ndestination:/topic/x\n\nstill here\0", group)
        .unwrap();
    assert_eq!(
        text(&subscription.recv_timeout(WAIT).unwrap()),
        "still here"
    );
    let stats = client.stats().unwrap();
    assert_eq!(stats.dropped_datagrams, 4, "{}: {stats:?}", A::NAME);
    client.disconnect().unwrap();
}

pub fn multicast_the_largest_frame_that_fits_crosses_the_network_whole<A: Adapter>() {
    let client = member::<A>(&url(port(), ""));
    let subscription = subscribe(&client, "/topic/largest");
    // A refusal says by how much the frame is over: the largest body is
    // that much smaller. (The frame counts as the client writes it, its
    // receipt header included.)
    let tried = 70_000;
    let error = client
        .send_with_receipt("/topic/largest", vec![b'x'; tried])
        .expect_err("over a datagram");
    let Error::Command(CommandError::TooLarge { size, limit }) = error else {
        panic!("{}: {error:?}", A::NAME)
    };
    assert_eq!(
        limit,
        stomp_proto::multicast::MAX_UDP_PAYLOAD - stomp_proto::multicast::SENDER_OVERHEAD
    );
    let largest = tried - (size - limit);
    let body: Vec<u8> = (0..largest).map(|i| (i % 251) as u8).collect();
    client
        .send_with_receipt("/topic/largest", body.clone())
        .unwrap();
    let message = subscription.recv_timeout(WAIT).unwrap();
    assert!(message.body()[..] == body[..], "{}", A::NAME);
    eprintln!(
        "{}: the largest frame is {limit} octets; a body of {largest} to /topic/largest fits",
        A::NAME
    );
    // One octet more is refused.
    let over = client.send_with_receipt("/topic/largest", vec![0; largest + 1]);
    assert!(matches!(
        over,
        Err(Error::Command(CommandError::TooLarge { .. }))
    ));
    client.disconnect().unwrap();
}
