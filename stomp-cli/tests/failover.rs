//! `stomp bench` under a broker that dies mid-run: with a `failover:` URL it
//! follows the list and reports the outage (the connections lost, how long
//! each took to come back, the longest time without a delivery, what came
//! twice, what could not be confirmed, what never came); with one broker
//! and no failover it ends with exit 5 and one line.
//!
//! Against `stomp serve` and against `scripts/cluster`'s ActiveMQ
//! master/slave pair (started if it is down; in CI a failure to start is a
//! failure, outside CI `STOMP_SKIP_BROKERS=1` skips it).

use std::process::Output;
use std::thread;
use std::time::Duration;

mod common;

use common::stomp;
use serde_json::Value;
use stomp_suite::chaos::{cluster_script, Cluster};
use stomp_suite::support;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The failover tests time their faults: one at a time.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// `stomp bench ARGS --json` in a thread, started now.
fn bench(args: Vec<String>) -> thread::JoinHandle<Output> {
    thread::spawn(move || {
        let mut args = args;
        args.insert(0, "bench".into());
        args.push("--json".into());
        stomp(&args, b"", &[])
    })
}

/// The report of a bench that must have succeeded.
fn report(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        text(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)))
}

fn count(report: &Value, path: &[&str]) -> u64 {
    let mut value = report;
    for key in path {
        value = &value[key];
    }
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} in {report}"))
}

/// Every client of the run lost its connection once or more and came back
/// on `host`; the outages began near `at` seconds into the run.
fn assert_failed_over(report: &Value, host: &str, at: f64, min_gap_ms: f64) {
    let outages = report["outages"].as_array().expect("outages");
    for client in ["producer", "consumer"] {
        let theirs: Vec<&Value> = outages.iter().filter(|o| o["client"] == client).collect();
        assert!(!theirs.is_empty(), "no {client} outage in {report}");
        let last = theirs.last().unwrap();
        assert_eq!(last["host"], host, "{report}");
        let back = last["back_after_ms"].as_f64().expect("came back");
        assert!(back < 5000.0, "{report}");
        let lost_at = theirs[0]["lost_at_s"].as_f64().unwrap();
        assert!((at - 0.5..at + 1.5).contains(&lost_at), "{report}");
    }
    let gap = report["ledger"]["longest_gap_ms"].as_f64().unwrap();
    assert!(gap >= min_gap_ms && gap < 5000.0, "{report}");
    let gap_at = report["ledger"]["longest_gap_at_s"].as_f64().unwrap();
    assert!((at - 0.5..at + 1.5).contains(&gap_at), "{report}");
}

#[test]
fn bench_follows_a_failover_list_when_its_embedded_broker_dies_and_reports_what_was_lost() {
    let _turn = one_at_a_time();
    let (first, first_urls) = common::serve(&["--listen", "127.0.0.1:0"]);
    let (_second, second_urls) = common::serve(&["--listen", "127.0.0.1:0"]);
    let (a, b) = (
        common::url(&first_urls, "stomp://"),
        common::url(&second_urls, "stomp://"),
    );
    // The reconnect waits 400-800 ms (jitter): the failover is the run's longest gap
    // even on a loaded machine.
    let url = format!("failover:({a},{b})?randomize=false&initialReconnectDelay=800");
    let run = bench(
        [
            "--url",
            &url,
            "--duration",
            "4s",
            "--rate",
            "500",
            "--ack",
            "client-individual",
            "--heart-beat",
            "500,500",
        ]
        .map(String::from)
        .to_vec(),
    );
    thread::sleep(Duration::from_millis(1500));
    drop(first);
    let report = report(&run.join().unwrap());
    assert_failed_over(&report, b.trim_start_matches("stomp://"), 1.5, 350.0);

    // Without receipts nothing is unconfirmed: each send arrived or is
    // missing (what the dead broker held), and a duplicate counts again.
    let sent = count(&report, &["sent"]);
    assert!((1800..=2001).contains(&sent), "{report}");
    let unique = count(&report, &["ledger", "unique"]);
    let missing = count(&report, &["ledger", "missing"]);
    assert_eq!(unique + missing, sent, "{report}");
    assert_eq!(count(&report, &["ledger", "unconfirmed"]), 0, "{report}");
    assert_eq!(count(&report, &["ledger", "unknown"]), 0, "{report}");
    let duplicates = count(&report, &["ledger", "duplicates"]);
    assert_eq!(
        count(&report, &["received"]),
        unique + duplicates,
        "{report}"
    );
    // What came after the failover came from the second broker.
    assert!(unique > sent / 2, "{report}");
}

#[test]
fn bench_without_failover_ends_with_one_line_when_its_broker_dies() {
    let (broker, urls) = common::serve(&["--listen", "127.0.0.1:0"]);
    let url = common::url(&urls, "stomp://").to_string();
    let run = bench(
        ["--url", &url, "--duration", "20s", "--rate", "500"]
            .map(String::from)
            .to_vec(),
    );
    thread::sleep(Duration::from_millis(1000));
    drop(broker);
    let started = std::time::Instant::now();
    let output = run.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The pair is up (started if need be): its master's and its slave's
/// `scripts/cluster` name and STOMP port; `None` when skipping was asked
/// for.
fn activemq_pair() -> Option<[(String, u16); 2]> {
    let ports = Cluster::Activemq.ports();
    if support::skip_allowed() && !ports.iter().any(|&port| support::listening(port)) {
        eprintln!("skipping: the ActiveMQ pair is down and STOMP_SKIP_BROKERS=1");
        return None;
    }
    // Both nodes: a master, and a slave to take over.
    cluster_script(&["start"]);
    let status = cluster_script(&["status"]);
    let mut nodes: Vec<(String, u16)> = ports
        .iter()
        .map(|&port| (Cluster::Activemq.node(port), port))
        .collect();
    let is_master = |node: &str| {
        status
            .lines()
            .any(|l| l.starts_with(node) && l.ends_with("master"))
    };
    nodes.sort_by_key(|(node, _)| !is_master(node));
    assert!(is_master(&nodes[0].0), "no ActiveMQ master in:\n{status}");
    nodes.try_into().ok()
}

#[test]
fn bench_rides_through_a_kill_of_the_activemq_master_and_loses_nothing_confirmed() {
    let _turn = one_at_a_time();
    let Some([(master, master_port), (_, slave_port)]) = activemq_pair() else {
        return;
    };
    let url = format!(
        "failover:(stomp://guest:guest@127.0.0.1:{master_port},\
         stomp://guest:guest@127.0.0.1:{slave_port})\
         ?randomize=false&initialReconnectDelay=100&maxReconnectDelay=1000"
    );
    let destination = format!("/queue/bench-failover-{}", std::process::id());
    let run = bench(
        [
            "--url",
            &url,
            "--destination",
            &destination,
            "--duration",
            "8s",
            "--rate",
            "500",
            "--persistent",
            "--receipts",
            "--ack",
            "client-individual",
            "--heart-beat",
            "1000,1000",
        ]
        .map(String::from)
        .to_vec(),
    );
    thread::sleep(Duration::from_secs(3));
    cluster_script(&["kill", &master]);
    let output = run.join().unwrap();
    // The killed node comes back, as the slave now.
    cluster_script(&["start", &master]);
    let report = report(&output);
    // The slave takes the lock within its 500 ms poll.
    assert_failed_over(&report, &format!("127.0.0.1:{slave_port}"), 3.0, 100.0);

    // At least once: every confirmed message arrived; what could not be
    // confirmed was reported, and arrived or not.
    let ledger = &report["ledger"];
    assert_eq!(count(&report, &["ledger", "missing"]), 0, "{report}");
    assert_eq!(count(&report, &["ledger", "unknown"]), 0, "{report}");
    let sent = count(&report, &["sent"]);
    assert!((3600..=4001).contains(&sent), "{report}");
    let unconfirmed = count(&report, &["ledger", "unconfirmed"]);
    let arrived_anyway = count(&report, &["ledger", "unconfirmed_arrived"]);
    assert!(arrived_anyway <= unconfirmed, "{ledger}");
    assert_eq!(
        count(&report, &["ledger", "unique"]) + unconfirmed - arrived_anyway,
        sent,
        "{report}"
    );
    assert!(support::listening(slave_port));
}
