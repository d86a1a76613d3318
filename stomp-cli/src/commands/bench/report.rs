//! What a bench run measured, as JSON or as the closing table.

use serde::Serialize;

use super::Transport;

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `embedded` or the URL given.
    pub broker: String,
    /// The embedded broker's transport, if it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transport: Option<Transport>,
    pub producers: usize,
    pub consumers: usize,
    pub size: usize,
    pub ack: String,
    pub destination: String,
    /// Whether sends asked the broker to keep them on disk.
    pub persistent: bool,
    /// Whether every send asked for a receipt.
    pub receipts: bool,
    /// Messages sent (each producer's numbered sends, confirmed or not), and
    /// how long sending took.
    pub sent: u64,
    pub send_seconds: f64,
    /// Messages received (each consumer's copy counts, for topics; a
    /// duplicate counts again), and how long from the first send to the
    /// last delivery.
    pub received: u64,
    pub receive_seconds: f64,
    pub sent_per_second: f64,
    pub received_per_second: f64,
    /// Body megabytes (10^6) received per second.
    pub megabytes_per_second: f64,
    /// From send to receive, in milliseconds.
    pub latency_ms: Latency,
    /// Messages of earlier runs found (and acknowledged) on the destination.
    pub stale: u64,
    /// What arrived, message by message.
    pub ledger: LedgerReport,
    /// Connections lost during the run, and how long each took to come back.
    pub outages: Vec<Outage>,
}

/// The ledger's counts (per consumer copy, for a topic).
#[derive(Debug, Default, Serialize)]
pub struct LedgerReport {
    /// Messages that arrived at least once.
    pub unique: u64,
    /// Arrivals of a message that had arrived before (redeliveries after a
    /// failover, mostly).
    pub duplicates: u64,
    /// Sends that went out (and, with receipts, were confirmed) but never
    /// arrived.
    pub missing: u64,
    /// Sends that failed (the connection was lost before the receipt): the
    /// broker may or may not have them. Not sent again.
    pub unconfirmed: u64,
    /// Of those, how many arrived all the same.
    pub unconfirmed_arrived: u64,
    /// Messages carrying this run's mark that no producer sent.
    pub unknown: u64,
    /// Acknowledgements refused because the message came on a connection
    /// since lost (the broker redelivers it).
    pub stale_acks: u64,
    /// The longest time without a delivery between the first and the last,
    /// in milliseconds, and when it began (seconds into the run).
    pub longest_gap_ms: f64,
    pub longest_gap_at_s: f64,
}

/// One lost connection.
#[derive(Debug, Serialize)]
pub struct Outage {
    /// `producer N` or `consumer N` (from 1).
    pub client: String,
    /// Seconds into the run.
    pub lost_at_s: f64,
    /// Why, as the client saw it.
    pub reason: String,
    /// How long until CONNECTED came again; `None` if it never did.
    pub back_after_ms: Option<f64>,
    /// The host it came back on.
    pub host: Option<String>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Report {
    /// What makes the run a failure even though it finished: a confirmed
    /// message that never arrived, or one that was never sent.
    pub fn verdict(&self) -> Result<(), String> {
        let ledger = &self.ledger;
        if ledger.unknown > 0 {
            return Err(format!(
                "{} messages arrived that no producer of this run sent",
                ledger.unknown
            ));
        }
        if self.receipts && ledger.missing > 0 {
            return Err(format!(
                "{} messages the broker confirmed never arrived",
                ledger.missing
            ));
        }
        Ok(())
    }
}

/// The closing table.
pub fn table(report: &Report) -> String {
    let broker = match report.transport {
        Some(transport) => format!("embedded (in-process, {transport:?})").to_lowercase(),
        None => report.broker.clone(),
    };
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut out = format!(
        "stomp bench: {} producer{} -> {} consumer{} on {}, {} B bodies, ack {}, broker {}\n\n",
        report.producers,
        plural(report.producers),
        report.consumers,
        plural(report.consumers),
        report.destination,
        report.size,
        report.ack,
        broker,
    );
    out += &format!(
        "  {:<10} {:>10} {:>10} {:>12} {:>9}\n",
        "", "messages", "seconds", "msg/s", "MB/s"
    );
    let mb = |count: u64, seconds: f64| (count * report.size as u64) as f64 / seconds / 1e6;
    out += &format!(
        "  {:<10} {:>10} {:>10.2} {:>12.0} {:>9.1}\n",
        "sent",
        report.sent,
        report.send_seconds,
        report.sent_per_second,
        mb(report.sent, report.send_seconds)
    );
    out += &format!(
        "  {:<10} {:>10} {:>10.2} {:>12.0} {:>9.1}\n\n",
        "received",
        report.received,
        report.receive_seconds,
        report.received_per_second,
        report.megabytes_per_second
    );
    out += &format!(
        "  latency    p50 {:.2} ms   p99 {:.2} ms   max {:.2} ms\n",
        report.latency_ms.p50, report.latency_ms.p99, report.latency_ms.max
    );
    let ledger = &report.ledger;
    out += &format!(
        "  ledger     {} unique   {} duplicates   {} missing   longest gap {:.2} ms\n",
        ledger.unique, ledger.duplicates, ledger.missing, ledger.longest_gap_ms
    );
    if ledger.unconfirmed > 0 {
        out += &format!(
            "  ({} sends not confirmed: the connection was lost before the receipt; \
             {} of them arrived all the same)\n",
            ledger.unconfirmed, ledger.unconfirmed_arrived
        );
    }
    if ledger.missing > 0 && !report.receipts {
        out += "  (sends without receipts are not confirmed, so a broker or connection lost takes \
                 some with it: --receipts --persistent --ack client-individual for at least once)\n";
    }
    if ledger.unknown > 0 {
        out += &format!(
            "  ({} messages arrived that no producer of this run sent)\n",
            ledger.unknown
        );
    }
    if ledger.stale_acks > 0 {
        out += &format!(
            "  ({} acknowledgements were for a connection since lost; the broker redelivers those)\n",
            ledger.stale_acks
        );
    }
    if ledger.longest_gap_ms >= 100.0 {
        out += &format!(
            "  (the longest gap began {:.2} s into the run)\n",
            ledger.longest_gap_at_s
        );
    }
    for outage in &report.outages {
        let back = match (outage.back_after_ms, &outage.host) {
            (Some(ms), Some(host)) => format!("back after {ms:.0} ms on {host}"),
            (Some(ms), None) => format!("back after {ms:.0} ms"),
            _ => "never back".to_string(),
        };
        out += &format!(
            "  failover   {} lost its connection at {:.2} s ({}), {back}\n",
            outage.client, outage.lost_at_s, outage.reason
        );
    }
    if report.stale > 0 {
        out += &format!(
            "  ({} messages of earlier runs were on {} and were skipped)\n",
            report.stale, report.destination
        );
    }
    out
}
