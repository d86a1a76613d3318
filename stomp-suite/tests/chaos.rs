//! The chaos scenarios' short form: one round of each per adapter, against
//! the clusters `scripts/cluster` starts (one test binary of its own, so
//! that no other test sees a node die). The long form, with the table, is
//! `scripts/chaos`. `STOMP_CHAOS_ROUNDS` sets the rounds here too.

use stomp_suite::adapters::{AsyncStd, Blocking, Smol, Tokio};
use stomp_suite::chaos::{self, SCENARIOS};

fn rounds() -> usize {
    std::env::var("STOMP_CHAOS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(1)
}

fn every_adapter(key: &str) {
    let scenario = *SCENARIOS.iter().find(|s| s.key() == key).unwrap();
    let rounds = rounds();
    let mut all = Vec::new();
    all.extend(chaos::run::<Blocking>(scenario, rounds));
    all.extend(chaos::run::<Tokio>(scenario, rounds));
    all.extend(chaos::run::<AsyncStd>(scenario, rounds));
    all.extend(chaos::run::<Smol>(scenario, rounds));
    eprintln!("{}", chaos::table(&all));
}

#[test]
fn rabbitmq_kill_the_connected_node() {
    every_adapter("rabbitmq-kill");
}

#[test]
fn rabbitmq_kill_the_queue_leader() {
    every_adapter("rabbitmq-kill-leader");
}

#[test]
fn activemq_kill_the_master() {
    every_adapter("activemq-kill");
}

#[test]
fn rabbitmq_half_open_link() {
    every_adapter("rabbitmq-half-open");
}

#[test]
fn activemq_half_open_link() {
    every_adapter("activemq-half-open");
}

#[test]
fn rabbitmq_slow_link() {
    every_adapter("rabbitmq-slow");
}

#[test]
fn activemq_slow_link() {
    every_adapter("activemq-slow");
}

#[test]
fn rabbitmq_reset_mid_frame() {
    every_adapter("rabbitmq-reset");
}

#[test]
fn activemq_broker_to_client_dropped() {
    every_adapter("activemq-drop-down");
}
