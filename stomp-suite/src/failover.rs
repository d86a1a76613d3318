//! Host lists and reconnects against every broker and transport: a dead,
//! a silent and a refusing host in front of the real broker, and, through
//! a proxy that drops the connection, a send made while the link is down
//! (confirmed once reconnected) and an ACK for a message of the lost
//! connection (refused locally; the new connection lives on).

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use stomp_broker::fault::{Behaviour, FaultPeer};
use stomp_driver::{Config, Error, Lifecycle};
use stomp_proto::client::{CloseReason, CommandError};
use stomp_proto::reconnect::ReconnectPolicy;
use stomp_proto::AckMode;

use crate::proxy::Proxy;
use crate::support::{self, brokers, queue, round_trip, Broker, WAIT};
use crate::{Adapter, SuiteClient, SuiteMsg, SuiteSub};

/// Instantiates every scenario of this module for `$adapter`.
#[macro_export]
macro_rules! failover_scenarios {
    ($adapter:ty) => {
        $crate::suite!($adapter, failover: a_refused_first_host_is_passed_on_every_broker, a_silent_first_host_is_passed_after_the_connect_timeout, a_refusing_first_host_is_passed_on_every_broker, a_send_while_the_link_is_down_is_confirmed_after_the_reconnect_and_a_stale_ack_is_refused);
    };
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `broker`'s configuration with `front` listed before it.
fn behind(broker: &Broker, front: &str, failover: bool) -> Config {
    let url = if failover {
        format!("failover:({front},{})?randomize=false", broker.url)
    } else {
        format!("{front},{}", broker.url)
    };
    broker.config_for(&url)
}

/// Connects, checks it reached `broker` past `front_port` whose dial failed
/// as `failed` says, and that the connection works.
fn connects_past<A: Adapter>(
    broker: &Broker,
    config: Config,
    front_port: u16,
    failed: impl Fn(&CloseReason) -> bool,
) -> Duration {
    let start = Instant::now();
    let client = A::connect(config).unwrap_or_else(|e| panic!("{} {broker}: {e}", A::NAME));
    let took = start.elapsed();
    assert_eq!(
        client.info().endpoint.map(|e| e.port),
        Some(broker.port),
        "{} {broker}",
        A::NAME
    );
    // Every reader sees every event, from the first.
    let (one, two) = (client.events(), client.events());
    let events: Vec<Lifecycle> = std::iter::from_fn(|| one.try_recv()).collect();
    let again: Vec<Lifecycle> = std::iter::from_fn(|| two.try_recv()).collect();
    assert_eq!(events, again, "{} {broker}", A::NAME);
    assert!(
        matches!(events[0], Lifecycle::Connecting { .. }),
        "{events:?}"
    );
    let dial_failed = events.iter().find_map(|e| match e {
        Lifecycle::DialFailed { host, reason } => Some((host.clone(), reason.clone())),
        _ => None,
    });
    let Some((Some(host), reason)) = dial_failed else {
        panic!("{} {broker}: no failed dial in {events:?}", A::NAME)
    };
    assert_eq!(host.port, front_port, "{} {broker}", A::NAME);
    assert!(failed(&reason), "{} {broker}: {reason:?}", A::NAME);
    assert!(
        matches!(events.first(), Some(Lifecycle::Connecting { host, attempt: 0 }) if host.port == front_port),
        "{} {broker}: {events:?}",
        A::NAME
    );
    round_trip(&client, &queue("failover"));
    client.disconnect().unwrap();
    took
}

pub fn a_refused_first_host_is_passed_on_every_broker<A: Adapter>() {
    for broker in brokers() {
        for failover in [false, true] {
            let port = dead_port();
            let config = behind(broker, &format!("stomp://127.0.0.1:{port}"), failover);
            let took = connects_past::<A>(broker, config, port, |reason| {
                matches!(reason, CloseReason::TransportError(f)
                    if f.kind() == std::io::ErrorKind::ConnectionRefused)
            });
            eprintln!(
                "{} {broker}: connected past a refused host in {took:?}",
                A::NAME
            );
            assert!(took < Duration::from_secs(3), "{broker}: {took:?}");
        }
    }
}

pub fn a_silent_first_host_is_passed_after_the_connect_timeout<A: Adapter>() {
    for broker in brokers() {
        let silent = FaultPeer::start(vec![Behaviour::Silent]).unwrap();
        let port = silent.addr().port();
        let mut config = behind(broker, &format!("stomp://127.0.0.1:{port}"), false);
        config.session.connect_timeout = Duration::from_secs(1);
        let took = connects_past::<A>(broker, config, port, |reason| {
            *reason == CloseReason::ConnectTimeout
        });
        eprintln!(
            "{} {broker}: connected past a silent host in {took:?}",
            A::NAME
        );
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(4),
            "{broker}: {took:?}"
        );
    }
}

pub fn a_refusing_first_host_is_passed_on_every_broker<A: Adapter>() {
    for broker in brokers() {
        let refusing = FaultPeer::start(vec![Behaviour::Refuse("not ready".into())]).unwrap();
        let port = refusing.addr().port();
        let config = behind(broker, &format!("stomp://127.0.0.1:{port}"), true);
        connects_past::<A>(
            broker,
            config,
            port,
            |reason| matches!(reason, CloseReason::ServerError(e) if e.message.as_deref() == Some("not ready")),
        );
    }
}

pub fn a_send_while_the_link_is_down_is_confirmed_after_the_reconnect_and_a_stale_ack_is_refused<
    A: Adapter,
>() {
    for broker in brokers() {
        let upstream = SocketAddr::from(([127, 0, 0, 1], broker.port));
        let proxy = Proxy::start(upstream).unwrap();
        let url = broker
            .url
            .replace(&broker.port.to_string(), &proxy.addr().port().to_string());
        let mut config = broker.config_for(&url);
        config.session.reconnect = ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(200),
            ..ReconnectPolicy::failover()
        };
        config.offline_wait = Some(WAIT);
        let client = A::connect(config).unwrap_or_else(|e| panic!("{} {broker}: {e}", A::NAME));
        let q = queue("offline");
        let sub = client.subscribe(&q, AckMode::ClientIndividual).unwrap();
        client.send_with_receipt(&q, "before").unwrap();
        let before = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(before.text(), Some("before"));

        // The link drops and stays down for a while.
        proxy.set_refusing(true);
        proxy.cut();
        support::wait_for(&client.events(), WAIT, |e| {
            matches!(e, Lifecycle::ConnectionLost(_))
        });
        // Down, and reconnecting: not connected, not ended.
        assert!(!client.is_connected(), "{} {broker}", A::NAME);
        assert_eq!(client.close_reason(), None, "{} {broker}", A::NAME);
        let sent = std::thread::scope(|scope| {
            let sending = scope.spawn(|| client.send_with_receipt(&q, "during"));
            std::thread::sleep(Duration::from_millis(500));
            assert!(!sending.is_finished(), "{broker}: the send waits");
            proxy.set_refusing(false);
            let back = Instant::now();
            let sent = sending.join().unwrap();
            eprintln!(
                "{} {broker}: the waiting send confirmed {:?} after the broker was reachable again",
                A::NAME,
                back.elapsed()
            );
            sent
        });
        assert_eq!(
            sent,
            Ok(()),
            "{} {broker}: confirmed after the reconnect",
            A::NAME
        );

        // The message of the lost connection cannot be acknowledged on the
        // new one: refused here, never sent.
        let stale = before.ack();
        assert!(
            matches!(stale, Err(Error::Command(CommandError::StaleAck { .. }))),
            "{} {broker}: {stale:?}",
            A::NAME
        );
        // Both come (the first again: it was never acknowledged), and are
        // acknowledged on the connection that lives on.
        let mut bodies = Vec::new();
        for _ in 0..2 {
            let message = sub.recv_timeout(WAIT).unwrap();
            bodies.push(message.text().unwrap().to_string());
            message.ack().unwrap();
        }
        bodies.sort();
        assert_eq!(bodies, ["before", "during"], "{} {broker}", A::NAME);
        assert!(client.is_connected(), "{} {broker}", A::NAME);
        round_trip(&client, &queue("offline-after"));
        drop(sub);
        client.disconnect().unwrap();
    }
}
