//! The shared scenarios for `stomp-blocking`, and what only it has: the
//! `run` loops and `json`.

use std::time::Duration;

use stomp_blocking::{AckMode, Flow};
use stomp_suite::adapters::Blocking;
use stomp_suite::support::{brokers, queue, recv_text, WAIT};

stomp_suite::broker_scenarios!(Blocking);
stomp_suite::fault_scenarios!(Blocking);
stomp_suite::failover_scenarios!(Blocking);
stomp_suite::multicast_scenarios!(Blocking);
stomp_suite::interop_scenarios!(Blocking);

#[test]
fn run_acking_acknowledges_what_the_handler_did_not() {
    for broker in brokers() {
        let q = queue("run");
        let client = broker.connect::<Blocking>();
        let sub = client.subscribe(&q, AckMode::ClientIndividual).unwrap();
        for body in ["one", "two", "three", "four"] {
            client.send_with_receipt(&q, body).unwrap();
        }
        let mut seen = Vec::new();
        sub.run_acking(|message| {
            let text = message.text().unwrap().to_string();
            if text == "two" {
                // Answered by the handler: run_acking leaves it alone.
                message.ack().unwrap();
            }
            seen.push(text);
            if seen.len() == 3 {
                Flow::Stop
            } else {
                Flow::Continue
            }
        })
        .unwrap();
        assert_eq!(seen, ["one", "two", "three"], "{broker}");
        drop(sub);
        client.disconnect().unwrap();

        // Only the one the loop never saw is still there.
        let client = broker.connect::<Blocking>();
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        assert_eq!(recv_text(&sub), "four", "{broker}");
        assert!(
            sub.recv_timeout(Duration::from_millis(300)).is_err(),
            "{broker}"
        );
        client.disconnect().unwrap();
    }
}

#[test]
fn run_returns_ok_when_the_client_disconnects_and_the_reason_otherwise() {
    for broker in brokers().into_iter().filter(|b| b.transport == "tcp") {
        let client = broker.connect::<Blocking>();
        let sub = client.subscribe(&queue("run-end"), AckMode::Auto).unwrap();
        std::thread::scope(|scope| {
            let looping = scope.spawn(|| sub.run(|_| Flow::Continue).map_err(|e| e.to_string()));
            std::thread::sleep(Duration::from_millis(100));
            client.disconnect().unwrap();
            assert_eq!(looping.join().unwrap(), Ok(()), "{broker}");
        });
    }
}

#[test]
fn json_bodies_parse_into_types() {
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Order {
        pizza: String,
        count: u32,
    }
    for broker in brokers() {
        let q = queue("json");
        let client = broker.connect::<Blocking>();
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        client
            .send_with_receipt(&q, r#"{"pizza":"margherita","count":2}"#)
            .unwrap();
        client.send_with_receipt(&q, "not json").unwrap();
        let order: Order = sub.recv_timeout(WAIT).unwrap().json().unwrap();
        assert_eq!(
            order,
            Order {
                pizza: "margherita".into(),
                count: 2
            },
            "{broker}"
        );
        let bad = sub.recv_timeout(WAIT).unwrap().json::<Order>();
        assert!(bad.is_err(), "{broker}");
        client.disconnect().unwrap();
    }
}

/// A broker matter, run once: stomp.py acknowledging in every version.
#[test]
fn stomppy_acknowledges_in_every_version_and_ack_mode() {
    stomp_suite::interop::stomppy_acknowledges_in_every_version_and_ack_mode();
}

/// A broker matter, run once: stompjs acknowledging in every version.
#[test]
fn stompjs_acknowledges_in_every_version_and_ack_mode() {
    stomp_suite::interop::stompjs_acknowledges_in_every_version_and_ack_mode();
}
