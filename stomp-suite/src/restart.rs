//! Kills a real broker mid-stream (`kill -9` by its pid, through
//! `scripts/brokers kill`) and starts it again: the client reconnects and
//! resubscribes; no message the broker confirmed is lost and every one not
//! acknowledged comes back. Run from a test binary of its own, so that no
//! other broker test runs while a broker is down.
//!
//! Durability on both brokers: a durable queue (`/queue/..` on RabbitMQ,
//! any queue on ActiveMQ), `persistent:true`, and each SEND's own RECEIPT as
//! the barrier (on RabbitMQ only that receipt means the message is on disk).

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use stomp_driver::{Config, Lifecycle};
use stomp_proto::client::SendOptions;
use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
use stomp_proto::AckMode;

use crate::support;
use crate::{Adapter, SuiteClient, SuiteMsg, SuiteSub};

fn scripts_brokers(args: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/brokers");
    let status = Command::new("bash")
        .arg(script)
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/brokers {args:?}: {status}");
}

fn persistent() -> SendOptions {
    SendOptions {
        headers: vec![("persistent".into(), "true".into())],
        receipt: true,
        ..SendOptions::default()
    }
}

fn survive_a_restart<A: Adapter>(name: &str, port: u16) {
    if !support::require(name, port) {
        return;
    }
    let queue = support::queue("restart");
    let mut config = Config::from_url(&format!("stomp://guest:guest@127.0.0.1:{port}")).unwrap();
    config.session.reconnect = ReconnectPolicy {
        initial_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
        unconfirmed_sends: UnconfirmedSends::Fail,
        ..ReconnectPolicy::failover()
    };
    config.session.reconnect.seed = 7;
    // A restart takes RabbitMQ several seconds; calls wait that long.
    config.offline_wait = Some(Duration::from_secs(90));
    let client = A::connect(config).unwrap();
    let sub = client.subscribe(&queue, AckMode::ClientIndividual).unwrap();

    let mut confirmed = BTreeSet::new();
    for i in 0..100 {
        client
            .send_with(&queue, format!("m{i:03}").into(), persistent())
            .unwrap();
        confirmed.insert(format!("m{i:03}"));
    }
    let mut acked = BTreeSet::new();
    for i in 0..100 {
        let message = sub.recv_timeout(Duration::from_secs(10)).unwrap();
        let body = message.text().unwrap().to_string();
        assert_eq!(body, format!("m{i:03}"), "{name}: in order before the kill");
        if i < 50 {
            message.ack().unwrap();
            acked.insert(body);
        }
    }

    if name == "rabbitmq" {
        // RabbitMQ writes a new queue's declaration to its metadata store
        // lazily; a crash right after can forget the queue (and with it the
        // confirmed messages): have it on disk before the kill.
        let synced = Command::new("rabbitmqctl")
            .args(["-q", "eval", "ok = mnesia:sync_log()."])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(synced.success(), "rabbitmqctl eval: {synced}");
    }
    scripts_brokers(&["kill", name]);
    support::wait_for(&client.events(), Duration::from_secs(10), |e| {
        matches!(e, Lifecycle::ConnectionLost(_))
    });
    // A send made while the broker is down waits for the reconnect and is
    // confirmed by the restarted broker.
    let during = std::thread::scope(|scope| {
        let sending = scope.spawn(|| client.send_with(&queue, "during".into(), persistent()));
        scripts_brokers(&["restart", name]);
        sending.join().unwrap()
    });
    assert_eq!(
        during,
        Ok(()),
        "{} {name}: the send during the outage",
        A::NAME
    );
    confirmed.insert("during".to_string());
    let info = support::wait_reconnected(&client.events(), Duration::from_secs(90));
    assert!(info.reconnected, "{name}");

    for i in 100..150 {
        client
            .send_with(&queue, format!("m{i:03}").into(), persistent())
            .unwrap();
        confirmed.insert(format!("m{i:03}"));
    }
    // Everything confirmed and not acknowledged comes back, on the same
    // (resubscribed) subscription; acknowledged ones may come back too (an
    // ACK is not confirmed), nothing else may.
    let mut missing: BTreeSet<String> = confirmed.difference(&acked).cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(message) = sub.recv_timeout(left) else {
            panic!("{} {name}: never came back: {missing:?}", A::NAME);
        };
        let body = message.text().unwrap().to_string();
        assert!(confirmed.contains(&body), "{name}: unknown {body}");
        missing.remove(&body);
        message.ack().unwrap();
    }
    let stats = client.stats().unwrap();
    assert_eq!(stats.reconnects, 1, "{name}");
    drop(sub);
    client.disconnect().unwrap();
}

/// RabbitMQ killed and restarted under adapter `A`.
pub fn rabbitmq_restart_loses_no_confirmed_message<A: Adapter>() {
    survive_a_restart::<A>("rabbitmq", 61613);
}

/// ActiveMQ killed and restarted under adapter `A`.
pub fn activemq_restart_loses_no_confirmed_message<A: Adapter>() {
    survive_a_restart::<A>("activemq", 61623);
}
