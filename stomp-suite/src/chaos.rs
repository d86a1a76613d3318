//! Chaos under load: a producer sends persistent, receipted messages at a
//! steady rate and a consumer acknowledges each (`client-individual`),
//! each on its own connection with the cluster's whole failover list, while
//! a fault strikes: a RabbitMQ node killed (`kill -9`; the one both clients
//! are connected to, or the one that leads the queue), the ActiveMQ master
//! killed (the slave takes the store's lock and opens its port), or the
//! network breaks in the suite's [`Proxy`] (a half-open stall, a slow link,
//! a reset in the middle of a frame, one direction black-holed).
//!
//! A ledger of every send and every delivery is checked after each round:
//! - every send that returned `Ok` (its RECEIPT came) was delivered at
//!   least once: `lost` must be 0;
//! - nothing was delivered that was never sent;
//! - every send that could not be confirmed was reported to the caller as
//!   an error (counted as `unconfirmed`; the producer sends it again, as a
//!   careful caller would, so it may arrive twice);
//! - first deliveries (the first copy of each number) come in the
//!   producer's order (both brokers keep a queue's order; redeliveries,
//!   marked `redelivered:true`, may not, nor may a later copy: a SEND held
//!   in a half-open link reaches the broker once the link is let go, long
//!   after the producer sent it again);
//! - duplicates (redeliveries of messages whose ACK was lost with a
//!   connection, and resends of sends that did reach the broker) are
//!   counted, not failed.
//!
//! Figures per round: the time from the fault until the consumer was
//! connected and resubscribed again, and until deliveries of messages sent
//! after the fault resumed.
//!
//! The clusters are `scripts/cluster`'s: RabbitMQ nodes on 61701-61703 with
//! quorum queues (declared by the SUBSCRIBE with `x-queue-type:quorum`), an
//! ActiveMQ shared-store pair on 61711-61712. The short form (one round of
//! each scenario per adapter) is the `chaos` test binary; the long form is
//! `scripts/chaos` (the `chaos` binary of this crate), which prints the
//! table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stomp_driver::{Config, Error, Events, Lifecycle};
use stomp_proto::client::{CommandError, SendOptions, SubscribeOptions};
use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
use stomp_proto::{AckMode, HeartBeat};

use crate::proxy::{Direction, Proxy};
use crate::support;
use crate::{Adapter, SuiteClient, SuiteMsg, SuiteSub};

/// A cluster of `scripts/cluster`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cluster {
    /// Three RabbitMQ nodes.
    Rabbitmq,
    /// An ActiveMQ master and its slave.
    Activemq,
}

impl Cluster {
    /// The nodes' STOMP ports.
    pub fn ports(self) -> &'static [u16] {
        match self {
            Cluster::Rabbitmq => &[61701, 61702, 61703],
            Cluster::Activemq => &[61711, 61712],
        }
    }

    /// The `scripts/cluster` name of the node on `port`.
    pub fn node(self, port: u16) -> String {
        match self {
            Cluster::Rabbitmq => format!("rabbit-c{}", port - 61700),
            Cluster::Activemq => format!("amq-c{}", port - 61710),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cluster::Rabbitmq => "rabbitmq",
            Cluster::Activemq => "activemq",
        }
    }
}

/// What strikes during a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` the node both clients are connected to.
    KillConnected,
    /// `kill -9` the node that leads the queue (RabbitMQ; the clients are
    /// connected elsewhere and stay connected).
    KillLeader,
    /// The link stalls (nothing forwarded, both sockets open).
    HalfOpen,
    /// 100 ms each way and 128 KiB/s each way, for the whole round.
    SlowLink,
    /// The connection is reset (RST) in the middle of a frame from the
    /// broker.
    ResetMidFrame,
    /// What the broker sends is thrown away; what the client sends passes.
    DownstreamDropped,
}

/// One scenario: a fault on a cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Where.
    pub cluster: Cluster,
    /// What.
    pub fault: Fault,
}

/// Every scenario, in the order the table lists them.
pub const SCENARIOS: [Scenario; 9] = [
    Scenario {
        cluster: Cluster::Rabbitmq,
        fault: Fault::KillConnected,
    },
    Scenario {
        cluster: Cluster::Rabbitmq,
        fault: Fault::KillLeader,
    },
    Scenario {
        cluster: Cluster::Activemq,
        fault: Fault::KillConnected,
    },
    Scenario {
        cluster: Cluster::Rabbitmq,
        fault: Fault::HalfOpen,
    },
    Scenario {
        cluster: Cluster::Activemq,
        fault: Fault::HalfOpen,
    },
    Scenario {
        cluster: Cluster::Rabbitmq,
        fault: Fault::SlowLink,
    },
    Scenario {
        cluster: Cluster::Activemq,
        fault: Fault::SlowLink,
    },
    Scenario {
        cluster: Cluster::Rabbitmq,
        fault: Fault::ResetMidFrame,
    },
    Scenario {
        cluster: Cluster::Activemq,
        fault: Fault::DownstreamDropped,
    },
];

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fault = match (self.cluster, self.fault) {
            (Cluster::Activemq, Fault::KillConnected) => "kill -9 the master",
            (_, Fault::KillConnected) => "kill -9 the connected node",
            (_, Fault::KillLeader) => "kill -9 the queue's leader",
            (_, Fault::HalfOpen) => "half-open link",
            (_, Fault::SlowLink) => "slow link",
            (_, Fault::ResetMidFrame) => "RST mid-frame",
            (_, Fault::DownstreamDropped) => "broker->client dropped",
        };
        write!(f, "{}: {fault}", self.cluster.name())
    }
}

impl Scenario {
    /// Its short name, for `--scenarios`.
    pub fn key(&self) -> String {
        let fault = match self.fault {
            Fault::KillConnected => "kill",
            Fault::KillLeader => "kill-leader",
            Fault::HalfOpen => "half-open",
            Fault::SlowLink => "slow",
            Fault::ResetMidFrame => "reset",
            Fault::DownstreamDropped => "drop-down",
        };
        format!("{}-{fault}", self.cluster.name())
    }

    /// Whether the fault goes through proxies.
    fn proxied(&self) -> bool {
        !matches!(self.fault, Fault::KillConnected | Fault::KillLeader)
    }
}

/// What one round measured.
#[derive(Clone, Debug)]
pub struct Round {
    /// Which.
    pub scenario: Scenario,
    /// The adapter.
    pub adapter: &'static str,
    /// From the fault until the consumer was connected (and resubscribed)
    /// again; `None` when it never lost its connection.
    pub resubscribed: Option<Duration>,
    /// From the fault until a message sent after it was delivered.
    pub resumed: Duration,
    /// Messages the producer sent and had confirmed.
    pub confirmed: usize,
    /// Sends that returned an error (not confirmed) and were sent again.
    pub unconfirmed: usize,
    /// Deliveries past the first of a message.
    pub duplicates: usize,
    /// Confirmed messages never delivered: must be 0.
    pub lost: usize,
    /// ACKs refused because their message came on a lost connection.
    pub stale_acks: usize,
    /// Heart-beat timeouts the two clients saw.
    pub heartbeat_timeouts: usize,
    /// Connections the two clients lost.
    pub connections_lost: usize,
}

/// Runs `rounds` rounds of `scenario` with adapter `A`, checks each
/// round's ledger (panicking on a lost or unknown message, a first delivery
/// out of order, or a fault not followed), and returns the figures.
pub fn run<A: Adapter>(scenario: Scenario, rounds: usize) -> Vec<Round> {
    // Scenarios share the clusters: one at a time.
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    require(scenario.cluster);
    (0..rounds)
        .map(|round| {
            let result = one_round::<A>(scenario, round);
            eprintln!("{}", row(&result, round));
            result
        })
        .collect()
}

/// The clusters must be up: `scripts/cluster` starts what is down (in CI
/// and locally; a failure to start is a failure).
fn require(cluster: Cluster) {
    let up = match cluster {
        Cluster::Rabbitmq => cluster.ports().iter().all(|&p| support::listening(p)),
        // The slave does not listen: the master is enough.
        Cluster::Activemq => cluster.ports().iter().any(|&p| support::listening(p)),
    };
    if !up {
        cluster_script(&["start"]);
    }
}

/// Runs `scripts/cluster ARGS` (a failure is a panic); what it printed.
pub fn cluster_script(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/cluster");
    let out = Command::new("bash")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/cluster {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One row of the per-round log.
pub fn row(r: &Round, round: usize) -> String {
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
    format!(
        "chaos {} {} round {round}: resubscribed {}, resumed {}, confirmed {}, lost {}, \
         duplicates {}, unconfirmed {}, stale acks {}, heart-beat timeouts {}, connections lost {}",
        r.adapter,
        r.scenario,
        r.resubscribed.map_or("-".into(), ms),
        ms(r.resumed),
        r.confirmed,
        r.lost,
        r.duplicates,
        r.unconfirmed,
        r.stale_acks,
        r.heartbeat_timeouts,
        r.connections_lost,
    )
}

/// The life-cycle events of one client, with when they came.
struct Watch {
    log: Arc<Mutex<Vec<(Instant, Lifecycle)>>>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Watch {
    fn start(events: Events) -> Watch {
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        let thread = thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                if let Ok(event) = events.recv_timeout(Duration::from_millis(20)) {
                    log2.lock().unwrap().push((Instant::now(), event));
                }
            }
        });
        Watch {
            log,
            stop,
            thread: Some(thread),
        }
    }

    /// The port of the connection now up, if one is.
    fn port(&self) -> Option<u16> {
        let log = self.log.lock().unwrap();
        let mut port = None;
        for (_, event) in log.iter() {
            match event {
                Lifecycle::Connected(info) => port = info.endpoint.as_ref().map(|e| e.port),
                Lifecycle::ConnectionLost(_) | Lifecycle::Closed(_) => port = None,
                _ => {}
            }
        }
        port
    }

    /// When the first reconnect after `after` completed.
    fn reconnected_after(&self, after: Instant) -> Option<Instant> {
        self.log.lock().unwrap().iter().find_map(|(at, e)| {
            matches!(e, Lifecycle::Connected(info) if info.reconnected && *at >= after)
                .then_some(*at)
        })
    }

    fn count(&self, want: impl Fn(&Lifecycle) -> bool) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, e)| want(e))
            .count()
    }

    fn events(&self) -> Vec<Lifecycle> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The producer's side of the ledger.
#[derive(Default)]
struct Sent {
    /// Every sequence number sent at least once.
    attempted: BTreeSet<u64>,
    /// Those whose send returned `Ok`.
    confirmed: BTreeSet<u64>,
    /// Sends that returned an error.
    unconfirmed: usize,
    errors: Vec<String>,
}

/// The consumer's side.
#[derive(Default)]
struct Received {
    /// Deliveries per sequence number.
    count: BTreeMap<u64, usize>,
    /// First deliveries (not marked redelivered) out of the producer's order.
    out_of_order: Vec<(u64, u64)>,
    last_first: Option<u64>,
    /// When each sequence number was first delivered.
    first_at: BTreeMap<u64, Instant>,
    stale_acks: usize,
    ack_errors: Vec<String>,
}

/// Messages a second through the round.
const RATE: u64 = 100;

fn config_for(urls: &[String]) -> Config {
    let url = format!("failover:({})?randomize=false", urls.join(","));
    let mut config = Config::from_url(&url).unwrap();
    let session = &mut config.session;
    session.heartbeat = HeartBeat::new(1000, 1000);
    session.connect_timeout = Duration::from_secs(2);
    // A quorum queue's leader election holds receipts back a few seconds.
    session.receipt_timeout = Duration::from_secs(15);
    session.reconnect = ReconnectPolicy {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
        randomize: false,
        unconfirmed_sends: UnconfirmedSends::Fail,
        ..ReconnectPolicy::failover()
    };
    session.reconnect.seed = 17;
    config.offline_wait = Some(Duration::from_secs(60));
    config
}

/// The headers that make a RabbitMQ queue a quorum queue (replicated on
/// every node, so it survives one).
fn declare(cluster: Cluster) -> Vec<(String, String)> {
    match cluster {
        Cluster::Rabbitmq => vec![
            ("x-queue-type".into(), "quorum".into()),
            ("durable".into(), "true".into()),
            ("auto-delete".into(), "false".into()),
        ],
        Cluster::Activemq => Vec::new(),
    }
}

fn one_round<A: Adapter>(scenario: Scenario, round: usize) -> Round {
    let cluster = scenario.cluster;
    let mut ports: Vec<u16> = cluster.ports().to_vec();
    if cluster == Cluster::Activemq {
        // The master first, then the slave (ActiveMQ's own failover lists
        // name both; the slave refuses until it takes over).
        ports.sort_by_key(|&p| !support::listening(p));
    }
    // Every round starts on another node.
    let shift = round % ports.len();
    ports.rotate_left(shift);
    let proxies: Vec<Proxy> = if scenario.proxied() {
        ports
            .iter()
            .map(|&p| Proxy::start(SocketAddr::from(([127, 0, 0, 1], p))).unwrap())
            .collect()
    } else {
        Vec::new()
    };
    let urls: Vec<String> = if proxies.is_empty() {
        ports
            .iter()
            .map(|p| format!("stomp://guest:guest@127.0.0.1:{p}"))
            .collect()
    } else {
        proxies
            .iter()
            .map(|p| format!("stomp://guest:guest@{}", p.addr()))
            .collect()
    };
    let queue = support::queue(&scenario.key());
    let headers = declare(cluster);

    if scenario.fault == Fault::KillLeader {
        // Declare the queue from another node than the one the clients
        // use, so that it leads there.
        let other = format!("stomp://guest:guest@127.0.0.1:{}", ports[1]);
        let declarer = A::connect(config_for(&[other])).unwrap();
        let sub = declarer
            .subscribe_with(
                &queue,
                SubscribeOptions {
                    headers: headers.clone(),
                    receipt: true,
                    ..SubscribeOptions::default()
                },
            )
            .unwrap();
        sub.unsubscribe().unwrap();
        declarer.disconnect().unwrap();
    }
    if scenario.fault == Fault::SlowLink {
        for proxy in &proxies {
            proxy.set_latency(Duration::from_millis(100));
            proxy.set_bandwidth(Some(128 * 1024));
        }
    }

    let consumer = A::connect(config_for(&urls))
        .unwrap_or_else(|e| panic!("{} {scenario}: the consumer: {e}", A::NAME));
    let consumer_watch = Watch::start(consumer.events());
    let sub = consumer
        .subscribe_with(
            &queue,
            SubscribeOptions {
                ack: AckMode::ClientIndividual,
                headers: headers.clone(),
                receipt: true,
                ..SubscribeOptions::default()
            },
        )
        .unwrap_or_else(|e| panic!("{} {scenario}: subscribe: {e}", A::NAME));
    let producer = A::connect(config_for(&urls))
        .unwrap_or_else(|e| panic!("{} {scenario}: the producer: {e}", A::NAME));
    let producer_watch = Watch::start(producer.events());

    let sent = Mutex::new(Sent::default());
    let received = Mutex::new(Received::default());
    let next_seq = AtomicU64::new(0);
    let stop_producing = AtomicBool::new(false);
    let stop_consuming = AtomicBool::new(false);
    let mut fault_at = None;
    let mut seq_at_fault = 0;
    let mut killed = None;
    let body_size = if scenario.fault == Fault::SlowLink {
        512
    } else {
        100
    };

    thread::scope(|scope| {
        // A failed check below stops both threads, or the scope never ends.
        let _stop = StopOnDrop([&stop_producing, &stop_consuming]);
        // The producer: one message every 1/RATE s, each persistent and
        // receipted; a send that fails is reported and sent again.
        scope.spawn(|| {
            let start = Instant::now();
            let mut options = SendOptions {
                headers: headers.clone(),
                receipt: true,
                ..SendOptions::default()
            };
            options.headers.push(("persistent".into(), "true".into()));
            let mut n = 0u64;
            while !stop_producing.load(Ordering::SeqCst) {
                let due = start + Duration::from_micros(n * 1_000_000 / RATE);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                let seq = next_seq.load(Ordering::SeqCst);
                let mut body = format!("{seq:08}").into_bytes();
                body.resize(body_size, b'.');
                sent.lock().unwrap().attempted.insert(seq);
                match producer.send_with(&queue, Bytes::from(body), options.clone()) {
                    Ok(()) => {
                        sent.lock().unwrap().confirmed.insert(seq);
                        next_seq.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => {
                        let mut sent = sent.lock().unwrap();
                        sent.unconfirmed += 1;
                        sent.errors.push(e.to_string());
                        // Sent again (same number) on the next turn.
                    }
                }
                n += 1;
            }
        });
        // The consumer: acknowledges each message.
        scope.spawn(|| {
            while !stop_consuming.load(Ordering::SeqCst) {
                let Ok(message) = sub.recv_timeout(Duration::from_millis(50)) else {
                    continue;
                };
                let seq: u64 = message
                    .text()
                    .and_then(|t| t.get(..8))
                    .and_then(|t| t.parse().ok())
                    .unwrap_or_else(|| panic!("{scenario}: a body not ours: {:?}", message.body()));
                let redelivered = message.header("redelivered") == Some("true");
                {
                    let mut got = received.lock().unwrap();
                    let count = got.count.entry(seq).or_insert(0);
                    *count += 1;
                    let first = *count == 1;
                    if first {
                        got.first_at.insert(seq, Instant::now());
                    }
                    // Order is the first arrivals': a copy of a number seen
                    // before is a duplicate, whenever it comes. (A SEND
                    // held in a half-open link reaches the broker when the
                    // link is let go, long after the producer sent it again.)
                    if first && !redelivered {
                        if let Some(last) = got.last_first {
                            if seq < last {
                                got.out_of_order.push((last, seq));
                            }
                        }
                        got.last_first = Some(got.last_first.map_or(seq, |l| l.max(seq)));
                    }
                }
                match message.ack() {
                    Ok(()) => {}
                    Err(Error::Command(CommandError::StaleAck { .. })) => {
                        received.lock().unwrap().stale_acks += 1;
                    }
                    Err(e) => received.lock().unwrap().ack_errors.push(e.to_string()),
                }
            }
        });

        // Steady flow first: a second's worth (a slow link's round trips
        // hold the receipted producer to a few messages a second).
        let warm = if scenario.fault == Fault::SlowLink {
            10
        } else {
            RATE as usize
        };
        wait_until(Duration::from_secs(20), || {
            received.lock().unwrap().count.len() >= warm
        })
        .unwrap_or_else(|| panic!("{} {scenario}: no steady flow to begin with", A::NAME));

        let at = Instant::now();
        match scenario.fault {
            Fault::KillConnected => {
                let port = consumer_watch.port().expect("connected");
                let node = cluster.node(port);
                cluster_script(&["kill", &node]);
                killed = Some(node);
            }
            Fault::KillLeader => {
                let node = leader(&queue, ports[0]);
                assert_ne!(
                    Some(port_of(&node)),
                    consumer_watch.port(),
                    "{scenario}: the leader is where the clients are"
                );
                cluster_script(&["kill", &node]);
                killed = Some(node);
            }
            Fault::HalfOpen => proxy_of(&proxies, &consumer_watch).set_stalled(true),
            Fault::SlowLink => {}
            Fault::ResetMidFrame => {
                // 40 octets on: inside the next MESSAGE or RECEIPT.
                proxy_of(&proxies, &consumer_watch).reset_after(Direction::Down, 40);
            }
            Fault::DownstreamDropped => {
                proxy_of(&proxies, &consumer_watch).set_dropping(Direction::Down, true);
            }
        }
        fault_at = Some(at);
        // The send in flight at the kill may have reached the broker: the
        // next one was surely made after the fault.
        seq_at_fault = next_seq.load(Ordering::SeqCst) + 1;

        // Until the consumer is back and fresh messages flow again.
        let reconnects = !matches!(scenario.fault, Fault::KillLeader | Fault::SlowLink);
        let back = wait_until(Duration::from_secs(60), || {
            if cluster == Cluster::Activemq
                && matches!(scenario.fault, Fault::HalfOpen | Fault::DownstreamDropped)
                && consumer_watch.count(|e| matches!(e, Lifecycle::HeartbeatTimeout)) > 0
            {
                // The master lives, behind the broken link, and the slave
                // waits: nothing to fail over to until the link is back.
                for proxy in &proxies {
                    proxy.heal();
                }
            }
            let connected = !reconnects || consumer_watch.reconnected_after(at).is_some();
            let resumed = received
                .lock()
                .unwrap()
                .count
                .range(seq_at_fault..)
                .next()
                .is_some();
            connected && resumed
        });
        if back.is_none() {
            panic!(
                "{} {scenario}: not recovered in 60 s; consumer events {:?}; producer events {:?}; \
                 sent {}, errors {:?}",
                A::NAME,
                consumer_watch.events(),
                producer_watch.events(),
                next_seq.load(Ordering::SeqCst),
                sent.lock().unwrap().errors,
            );
        }
        // A while of steady flow after, then the link heals.
        let after = if scenario.fault == Fault::SlowLink {
            Duration::from_secs(4)
        } else {
            Duration::from_secs(1)
        };
        thread::sleep(after);
        stop_producing.store(true, Ordering::SeqCst);
        for proxy in &proxies {
            proxy.heal();
        }
        // Everything confirmed arrives (redeliveries of what the lost
        // connection held take the broker's own heart-beat timeout).
        let drained = wait_until(Duration::from_secs(60), || {
            let confirmed = sent.lock().unwrap().confirmed.clone();
            let got = received.lock().unwrap();
            confirmed.iter().all(|s| got.count.contains_key(s))
        });
        // And a little longer, for duplicates on their way.
        thread::sleep(Duration::from_millis(300));
        stop_consuming.store(true, Ordering::SeqCst);
        if drained.is_none() {
            eprintln!(
                "{} {scenario}: not everything confirmed arrived in 60 s",
                A::NAME
            );
        }
    });

    let fault_at = fault_at.expect("the fault struck");
    drop(sub);
    let _ = producer.disconnect();
    let _ = consumer.disconnect();
    if let Some(node) = &killed {
        cluster_script(&["start", node]);
    }

    let sent = sent.into_inner().unwrap();
    let got = received.into_inner().unwrap();
    let lost: Vec<u64> = sent
        .confirmed
        .iter()
        .filter(|s| !got.count.contains_key(s))
        .copied()
        .collect();
    let unknown: Vec<u64> = got
        .count
        .keys()
        .filter(|s| !sent.attempted.contains(s))
        .copied()
        .collect();
    // The first delivery of a message sent after the fault.
    let seq_resumed = got
        .first_at
        .range(seq_at_fault..)
        .map(|(_, at)| *at)
        .min()
        .unwrap_or(fault_at);
    let result = Round {
        scenario,
        adapter: A::NAME,
        resubscribed: consumer_watch
            .reconnected_after(fault_at)
            .map(|at| at - fault_at),
        resumed: seq_resumed - fault_at,
        confirmed: sent.confirmed.len(),
        unconfirmed: sent.unconfirmed,
        duplicates: got.count.values().map(|c| c - 1).sum(),
        lost: lost.len(),
        stale_acks: got.stale_acks,
        heartbeat_timeouts: consumer_watch.count(|e| matches!(e, Lifecycle::HeartbeatTimeout))
            + producer_watch.count(|e| matches!(e, Lifecycle::HeartbeatTimeout)),
        connections_lost: consumer_watch.count(|e| matches!(e, Lifecycle::ConnectionLost(_)))
            + producer_watch.count(|e| matches!(e, Lifecycle::ConnectionLost(_))),
    };
    let context = || {
        format!(
            "{} {scenario} round {round}: {result:?}\nsend errors {:?}\nack errors {:?}\n\
             consumer events {:?}\nproducer events {:?}",
            A::NAME,
            sent.errors,
            got.ack_errors,
            consumer_watch.events(),
            producer_watch.events()
        )
    };
    if std::env::var_os("STOMP_CHAOS_DEBUG").is_some() {
        eprintln!("{}", context());
    }
    assert!(
        lost.is_empty(),
        "confirmed and lost: {lost:?}\n{}",
        context()
    );
    assert!(unknown.is_empty(), "never sent: {unknown:?}\n{}", context());
    assert!(
        got.out_of_order.is_empty(),
        "first deliveries out of order (previous, this): {:?}\n{}",
        got.out_of_order,
        context()
    );
    assert!(got.ack_errors.is_empty(), "{}", context());
    match scenario.fault {
        Fault::SlowLink => assert_eq!(
            result.connections_lost,
            0,
            "a slow link is not a dead one\n{}",
            context()
        ),
        Fault::HalfOpen | Fault::DownstreamDropped => {
            // Found by the heart-beat: 1 s negotiated, a grace of 2
            // intervals, and some slack for a loaded machine.
            let found = consumer_watch
                .log
                .lock()
                .unwrap()
                .iter()
                .find_map(|(at, e)| {
                    (matches!(e, Lifecycle::HeartbeatTimeout) && *at >= fault_at).then_some(*at)
                });
            let found = found.unwrap_or_else(|| panic!("no heart-beat timeout\n{}", context()));
            let took = found - fault_at;
            assert!(
                took <= Duration::from_millis(3500),
                "the heart-beat timeout took {took:?}\n{}",
                context()
            );
        }
        _ => {}
    }
    result
}

/// Sets its flags when dropped (panics included).
struct StopOnDrop<'a>([&'a AtomicBool; 2]);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        for flag in self.0 {
            flag.store(true, Ordering::SeqCst);
        }
    }
}

/// Polls `done` every 20 ms for up to `limit`; when it held, how long it took.
fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        thread::sleep(Duration::from_millis(20));
    }
    None
}

/// The proxy the consumer is connected through.
fn proxy_of<'a>(proxies: &'a [Proxy], watch: &Watch) -> &'a Proxy {
    let port = watch.port().expect("connected");
    proxies
        .iter()
        .find(|p| p.addr().port() == port)
        .expect("connected through a proxy")
}

fn port_of(node: &str) -> u16 {
    let n: u16 = node.trim_start_matches("rabbit-c").parse().unwrap();
    61700 + n
}

/// The `scripts/cluster` name of the RabbitMQ node leading `queue`, asked
/// of the node on `port`.
fn leader(queue: &str, port: u16) -> String {
    let name = queue.trim_start_matches("/queue/");
    let node = format!("rabbit-c{}@localhost", port - 61700);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = Command::new("rabbitmqctl")
            .args(["-q", "-n", &node, "list_queues", "name", "leader"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if let Some(leader) = text.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(name)).then(|| fields.next().map(str::to_string))?
        }) {
            let leader = leader
                .trim_start_matches("rabbit-")
                .trim_end_matches("@localhost");
            return format!("rabbit-{leader}");
        }
        assert!(
            Instant::now() < deadline,
            "no leader for {name} on {node}: {text}"
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// The figures of many rounds per scenario and adapter, as a Markdown
/// table: failover times (p50 and max), lost, duplicates, unconfirmed.
pub fn table(rounds: &[Round]) -> String {
    let mut out = String::from(
        "| scenario | adapter | rounds | resubscribed p50 / max | deliveries resumed p50 / max \
         | confirmed | lost | duplicates | unconfirmed | stale acks | heart-beat timeouts |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let mut groups: Vec<(String, &'static str, Vec<&Round>)> = Vec::new();
    for r in rounds {
        let key = r.scenario.to_string();
        match groups
            .iter_mut()
            .find(|(k, a, _)| *k == key && *a == r.adapter)
        {
            Some((_, _, list)) => list.push(r),
            None => groups.push((key, r.adapter, vec![r])),
        }
    }
    let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e3);
    let spread = |mut values: Vec<Duration>| -> String {
        if values.is_empty() {
            return "-".into();
        }
        values.sort();
        format!(
            "{} / {} ms",
            ms(values[(values.len() - 1) / 2]),
            ms(*values.last().unwrap())
        )
    };
    for (scenario, adapter, list) in groups {
        let sum = |f: fn(&Round) -> usize| list.iter().map(|r| f(r)).sum::<usize>();
        out += &format!(
            "| {scenario} | {adapter} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            list.len(),
            spread(list.iter().filter_map(|r| r.resubscribed).collect()),
            spread(list.iter().map(|r| r.resumed).collect()),
            sum(|r| r.confirmed),
            sum(|r| r.lost),
            sum(|r| r.duplicates),
            sum(|r| r.unconfirmed),
            sum(|r| r.stale_acks),
            sum(|r| r.heartbeat_timeouts),
        );
    }
    out
}
