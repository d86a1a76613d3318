//! `stomp bench`: producers and consumers through a broker (the embedded one,
//! in-process, unless `--url` names another), with a live progress bar and a
//! closing table of rates and latencies.
//!
//! Each producer numbers its messages and the consumers keep a [ledger] of
//! what arrived, so a run rides through a failover (a `failover:` URL, a
//! broker killed under it) and reports it: the connections lost and how long
//! each took to come back, the longest time without a delivery, messages
//! that came twice, sends that could not be confirmed, and what never came.

mod ledger;
mod report;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use stomp_broker::serve::{Broker, ServeConfig};
use stomp_proto::client::CommandError;
use stomp_tokio::{Client, Error, Events, Lifecycle, SendOptions, SubscribeOptions, Subscription};
use tokio::task::JoinSet;

use super::connect::{connect, ended, parse_duration, reason_line, redact, ConnectArgs};
use super::send::parse_headers;
use super::subscribe::Ack;
use crate::Failure;
use ledger::{parse_mark, Ledger, Seq};
pub use report::{table, Latency, LedgerReport, Outage, Report};

/// The header naming the run (so messages left by an earlier one are
/// skipped), the producer, its sequence number and the send time: see
/// [`ledger::Mark`].
const MARK: &str = "stomp-bench";
/// Receipts a producer awaits at once with `--receipts`.
const RECEIPT_WINDOW: usize = 1024;
/// After a failover, how long the end of a run waits without a delivery
/// before it counts what is still out as missing.
const SETTLE: Duration = Duration::from_secs(3);

/// How the in-process broker is reached.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// STOMP over TCP.
    Tcp,
    /// STOMP over WebSocket.
    Ws,
}

/// `stomp bench` flags.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Sending clients, each on its own connection.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub producers: usize,
    /// Receiving clients, each on its own connection.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub consumers: usize,
    /// Body size in bytes.
    #[arg(long, default_value_t = 1024, value_name = "BYTES")]
    pub size: usize,
    /// Messages to send in all, shared among the producers.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub count: u64,
    /// Send for this long instead of --count.
    #[arg(long, value_parser = parse_duration, value_name = "TIME")]
    pub duration: Option<Duration>,
    /// How consumers acknowledge (each message, in the client modes).
    #[arg(long, value_enum, default_value_t = Ack::Auto)]
    pub ack: Ack,
    /// Where to send: a queue shares messages among consumers, a /topic/
    /// gives each consumer every message.
    #[arg(long, default_value = "/queue/stomp-bench", value_name = "DEST")]
    pub destination: String,
    /// How to reach the in-process broker (without --url).
    #[arg(long, value_enum, default_value_t = Transport::Tcp)]
    pub transport: Transport,
    /// Send at most this many messages per second in all (shared among the
    /// producers), to measure latency below saturation; 0: as fast as the
    /// broker takes them.
    #[arg(long, default_value_t = 0, value_name = "MSG/S")]
    pub rate: u64,
    /// Ask the broker to keep every message on disk (`persistent:true`),
    /// so a broker that is killed keeps them (ActiveMQ keeps only
    /// persistent messages across a restart or a failover).
    #[arg(long)]
    pub persistent: bool,
    /// Ask a receipt for every send (up to 1024 awaited at once per
    /// producer): a send whose receipt never comes (the connection lost
    /// first) is reported as not confirmed, and a confirmed message that
    /// never arrives fails the run.
    #[arg(long)]
    pub receipts: bool,
    /// A header for every SEND and SUBSCRIBE, NAME:VALUE (repeatable): a
    /// RabbitMQ cluster's quorum queue, say (`-H x-queue-type:quorum -H
    /// durable:true -H auto-delete:false`), or an ActiveMQ prefetch.
    #[arg(short = 'H', long = "header", value_name = "NAME:VALUE")]
    pub headers: Vec<String>,
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Counters shared by the run's tasks.
struct Progress {
    /// Per producer, the sequence numbers handed out (the next one).
    issued: Vec<AtomicU64>,
    /// Deliveries of this run's messages, duplicates included.
    received: AtomicU64,
    /// Deliveries new to their ledger.
    unique: AtomicU64,
    stale: AtomicU64,
    stale_acks: AtomicU64,
    unknown: AtomicU64,
    /// When the last message arrived, µs since the bench began.
    last_received: AtomicU64,
    /// The longest gap so far (µs), for a check without the lock.
    longest_gap: AtomicU64,
    /// The longest gap and when it began (µs).
    gap: Mutex<(u64, u64)>,
    /// Connections lost, and clients without one now.
    lost: AtomicU64,
    down: AtomicU64,
}

impl Progress {
    fn new(producers: usize) -> Progress {
        Progress {
            issued: (0..producers).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            stale_acks: AtomicU64::new(0),
            unknown: AtomicU64::new(0),
            last_received: AtomicU64::new(0),
            longest_gap: AtomicU64::new(0),
            gap: Mutex::new((0, 0)),
            lost: AtomicU64::new(0),
            down: AtomicU64::new(0),
        }
    }

    fn issued(&self) -> Vec<u64> {
        self.issued
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }

    /// A delivery at `now` (µs into the run).
    fn delivered(&self, now: u64) {
        self.received.fetch_add(1, Ordering::Relaxed);
        let before = self.last_received.fetch_max(now, Ordering::Relaxed);
        let gap = now.saturating_sub(before);
        if before > 0 && gap > self.longest_gap.load(Ordering::Relaxed) {
            let mut longest = self.gap.lock().unwrap_or_else(|e| e.into_inner());
            if gap > longest.0 {
                *longest = (gap, before);
                self.longest_gap.store(gap, Ordering::Relaxed);
            }
        }
    }
}

/// Runs `stomp bench`.
pub fn run(args: &BenchArgs) -> Result<(), Failure> {
    super::connect::check_destination(&args.destination)?;
    if args.producers == 0 || args.consumers == 0 {
        return Err(Failure::Usage(
            "--producers and --consumers must be at least 1".into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::Io)?;
    let report = runtime.block_on(bench(args))?;
    if args.json {
        let line = serde_json::to_string(&report).map_err(|e| Failure::Io(e.into()))?;
        println!("{line}");
    } else {
        print!("{}", table(&report));
    }
    report.verdict().map_err(|why| {
        let hint = if args.ack == Ack::Auto {
            " (with --ack auto, what the broker had handed to a lost connection is gone: \
             try --ack client-individual)"
        } else {
            ""
        };
        Failure::Remote(format!("{why}{hint}"))
    })
}

async fn bench(args: &BenchArgs) -> Result<Report, Failure> {
    // Listening from the start: a signal during set-up is not lost.
    let interrupted = super::interrupted().map_err(Failure::Io)?;
    tokio::pin!(interrupted);
    let mut _broker = None;
    let (url, broker) = match &args.connect.url {
        Some(url) => (url.clone(), redact(url)),
        None => {
            let config = ServeConfig {
                listen: ([127, 0, 0, 1], 0).into(),
                ws: Some(([127, 0, 0, 1], 0).into()),
                ..ServeConfig::default()
            };
            let started = Broker::start(config)
                .await
                .map_err(|e| Failure::Io(std::io::Error::other(e)))?;
            let url = match args.transport {
                Transport::Tcp => started.url(),
                Transport::Ws => started.ws_url().unwrap_or_default(),
            };
            _broker = Some(started);
            (url, "embedded".to_string())
        }
    };
    let config = args.connect.config_for(&url)?;
    let extra = parse_headers(&args.headers)?;
    let fan_out = args.destination.starts_with("/topic/");
    let copies = if fan_out { args.consumers as u64 } else { 1 };
    let run_id = format!("{}-{}", std::process::id(), nanos_now());
    let progress = Arc::new(Progress::new(args.producers));

    let mut consumers = Vec::new();
    for _ in 0..args.consumers {
        consumers.push(connect(&url, config.clone()).await?);
    }
    let mut producers = Vec::new();
    for _ in 0..args.producers {
        producers.push(connect(&url, config.clone()).await?);
    }

    let start = Instant::now();
    let mut watching = JoinSet::new();
    let named = |kind: &str, clients: &[Client]| -> Vec<(String, Events)> {
        let many = clients.len() > 1;
        clients
            .iter()
            .enumerate()
            .map(|(n, c)| match many {
                true => (format!("{kind} {}", n + 1), c.events()),
                false => (kind.to_string(), c.events()),
            })
            .collect()
    };
    for (label, events) in named("consumer", &consumers)
        .into_iter()
        .chain(named("producer", &producers))
    {
        watching.spawn(watch(label, events, start, progress.clone()));
    }

    let ledgers: Vec<Arc<Mutex<Ledger>>> = (0..copies)
        .map(|_| Arc::new(Mutex::new(Ledger::new(args.producers))))
        .collect();
    let mut receiving = JoinSet::new();
    for (n, client) in consumers.iter().enumerate() {
        let options = SubscribeOptions {
            ack: args.ack.into(),
            receipt: true,
            headers: extra.clone(),
            ..SubscribeOptions::default()
        };
        let subscription = client
            .subscribe_with(&args.destination, options)
            .await
            .map_err(|e| Failure::Remote(ended(&e)))?;
        let consumer = Consumer {
            ledger: ledgers[n % ledgers.len()].clone(),
            progress: progress.clone(),
            run_id: run_id.clone(),
            start,
        };
        receiving.spawn(consumer.run(subscription));
    }

    let body = Bytes::from(vec![b'x'; args.size]);
    let deadline = args.duration.map(|d| start + d);
    // Ctrl-C or SIGTERM: the producers stop, what they sent is received,
    // and the report tells what was measured.
    let stop = Arc::new(AtomicBool::new(false));
    let mut sending = JoinSet::new();
    let producer_count = args.producers as u64;
    for (n, client) in producers.iter().enumerate() {
        let share =
            args.count / producer_count + u64::from((n as u64) < args.count % producer_count);
        let plan = Plan {
            producer: n,
            limit: if deadline.is_some() { u64::MAX } else { share },
            deadline,
            pace: (args.rate > 0)
                .then(|| Duration::from_secs_f64(producer_count as f64 / args.rate as f64)),
            start,
            run_id: run_id.clone(),
            persistent: args.persistent,
            receipts: args.receipts,
            headers: extra.clone(),
            stop: stop.clone(),
        };
        let (client, body, destination) = (client.clone(), body.clone(), args.destination.clone());
        let progress = progress.clone();
        sending.spawn(async move {
            let unconfirmed = send_loop(&client, &destination, body, &plan, &progress).await?;
            Ok::<_, String>((plan.producer, unconfirmed))
        });
    }

    let bar = progress_bar(args);
    let mut sent_done = None;
    let mut unconfirmed = vec![Vec::new(); args.producers];
    // What last changed, and when: the end waits for quiet.
    let mut last = ((0, false, 0, 0), Instant::now());
    let stall = args.connect.timeout.max(Duration::from_secs(10));
    loop {
        tokio::select! {
            finished = sending.join_next(), if !sending.is_empty() => {
                if let Some(result) = finished {
                    let (producer, failed) = result
                        .map_err(|e| Failure::Remote(e.to_string()))?
                        .map_err(Failure::Remote)?;
                    unconfirmed[producer] = failed;
                }
                if sending.is_empty() {
                    sent_done = Some(start.elapsed());
                }
            }
            finished = receiving.join_next(), if !receiving.is_empty() => {
                // A consumer only stops when its connection does.
                let why = match finished {
                    Some(Ok(Err(why))) => why,
                    _ => "a consumer's subscription ended".to_string(),
                };
                return Err(Failure::Remote(why));
            }
            () = &mut interrupted, if !stop.load(Ordering::Relaxed) => {
                stop.store(true, Ordering::Relaxed);
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let expected = progress.issued().iter().sum::<u64>() * copies;
        let unique = progress.unique.load(Ordering::Relaxed);
        bar.set_length(match deadline {
            None => args.count * copies,
            Some(_) => expected.max(1),
        });
        bar.set_position(unique);
        if sent_done.is_some() && unique >= expected {
            break;
        }
        let lost = progress.lost.load(Ordering::Relaxed);
        let down = progress.down.load(Ordering::Relaxed);
        let state = (
            progress.received.load(Ordering::Relaxed),
            sent_done.is_some(),
            lost,
            down,
        );
        if state != last.0 {
            last = (state, Instant::now());
            continue;
        }
        let quiet = last.1.elapsed();
        // After a failover, what has not come once every client is back
        // and the deliveries have settled is missing.
        if lost > 0 && sent_done.is_some() && down == 0 && quiet >= SETTLE {
            break;
        }
        if quiet > stall {
            if lost > 0 {
                break;
            }
            bar.abandon();
            let hint = if url.starts_with("udp://") {
                " (multicast drops what a receiver's socket buffer cannot hold: try --rate)"
            } else {
                ""
            };
            return Err(Failure::Remote(format!(
                "stalled: {unique} of {expected} messages arrived, none in the last {}s{hint}",
                stall.as_secs()
            )));
        }
    }
    let receive_time = Duration::from_micros(progress.last_received.load(Ordering::Relaxed));
    bar.finish_and_clear();

    for client in producers.into_iter().chain(consumers) {
        client
            .disconnect()
            .await
            .map_err(|e| Failure::Remote(ended(&e)))?;
    }
    let mut latencies = Histogram::<u64>::new(3).expect("3 significant figures");
    while let Some(finished) = receiving.join_next().await {
        if let Ok(Ok(histogram)) = finished {
            let _ = latencies.add(histogram);
        }
    }
    let mut outages = Vec::new();
    while let Ok(Some(finished)) =
        tokio::time::timeout(Duration::from_secs(5), watching.join_next()).await
    {
        outages.extend(finished.unwrap_or_default());
    }
    outages.sort_by(|a, b| a.lost_at_s.total_cmp(&b.lost_at_s));

    let issued = progress.issued();
    let ledgers: Vec<Ledger> = ledgers
        .into_iter()
        .map(|l| std::mem::take(&mut *l.lock().unwrap_or_else(|e| e.into_inner())))
        .collect();
    let sent: u64 = issued.iter().sum();
    let send_seconds = sent_done.unwrap_or(receive_time).as_secs_f64();
    let receive_seconds = receive_time.as_secs_f64();
    let received = progress.received.load(Ordering::Relaxed);
    let (gap, gap_from) = *progress.gap.lock().unwrap_or_else(|e| e.into_inner());
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok(Report {
        broker,
        transport: args.connect.url.is_none().then_some(args.transport),
        producers: args.producers,
        consumers: args.consumers,
        size: args.size,
        ack: stomp_proto::AckMode::from(args.ack).as_str().to_string(),
        destination: args.destination.clone(),
        persistent: args.persistent,
        receipts: args.receipts,
        sent,
        send_seconds,
        received,
        receive_seconds,
        sent_per_second: sent as f64 / send_seconds,
        received_per_second: received as f64 / receive_seconds,
        megabytes_per_second: (received * args.size as u64) as f64 / receive_seconds / 1e6,
        latency_ms: Latency {
            p50: ms(latencies.value_at_quantile(0.5)),
            p99: ms(latencies.value_at_quantile(0.99)),
            max: ms(latencies.max()),
        },
        stale: progress.stale.load(Ordering::Relaxed),
        ledger: LedgerReport {
            stale_acks: progress.stale_acks.load(Ordering::Relaxed),
            unknown: progress.unknown.load(Ordering::Relaxed),
            longest_gap_ms: ms(gap),
            longest_gap_at_s: gap_from as f64 / 1e6,
            ..account(&ledgers, &issued, &unconfirmed)
        },
        outages,
    })
}

/// The ledgers' sums: unique, duplicates, and which sends never came.
fn account(ledgers: &[Ledger], issued: &[u64], unconfirmed: &[Vec<u64>]) -> LedgerReport {
    let mut report = LedgerReport {
        unconfirmed: unconfirmed.iter().map(|u| u.len() as u64).sum(),
        ..LedgerReport::default()
    };
    for ledger in ledgers {
        report.unique += ledger.unique;
        report.duplicates += ledger.duplicates;
    }
    for (producer, (&issued, failed)) in issued.iter().zip(unconfirmed).enumerate() {
        let mut failed = failed.clone();
        failed.sort_unstable();
        for n in 0..issued {
            let arrivals = ledgers.iter().filter(|l| l.has(producer, n)).count() as u64;
            if failed.binary_search(&n).is_ok() {
                report.unconfirmed_arrived += u64::from(arrivals > 0);
            } else {
                report.missing += ledgers.len() as u64 - arrivals;
            }
        }
    }
    report
}

/// One consumer's side of the run.
struct Consumer {
    /// Its ledger (shared by every consumer of a queue).
    ledger: Arc<Mutex<Ledger>>,
    progress: Arc<Progress>,
    run_id: String,
    start: Instant,
}

impl Consumer {
    /// Receives until the subscription ends; the latencies it saw.
    async fn run(self, subscription: Subscription) -> Result<Histogram<u64>, String> {
        let Consumer {
            ledger,
            progress,
            run_id,
            start,
        } = self;
        let mut latencies = Histogram::<u64>::new(3).expect("3 significant figures");
        while let Some(message) = subscription.recv().await {
            let mark = message.header(MARK).map(parse_mark);
            let ours = mark.is_some_and(|m| m.run == run_id);
            let seq = mark.and_then(|m| m.seq);
            match message.ack().await {
                Ok(()) => {}
                // Delivered on a connection since lost: the broker has it
                // back and delivers it again.
                Err(Error::Command(CommandError::StaleAck { .. })) => {
                    progress.stale_acks.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => return Err(ended(&e)),
            }
            if !ours {
                progress.stale.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let now = start.elapsed().as_micros() as u64;
            progress.delivered(now);
            // Only what was sent is marked: a forged number cannot grow
            // the ledger.
            let sent = seq.filter(|seq| {
                progress
                    .issued
                    .get(seq.producer)
                    .is_some_and(|issued| seq.n < issued.load(Ordering::Relaxed))
            });
            match sent {
                Some(seq) => {
                    let _ = latencies.record(now.saturating_sub(seq.sent_at).max(1));
                    let mut ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
                    if ledger.mark(seq.producer, seq.n) {
                        progress.unique.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    progress.unknown.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(latencies)
    }
}

/// Follows one client's life-cycle: its lost connections, and how long
/// each took to come back.
async fn watch(
    label: String,
    events: Events,
    start: Instant,
    progress: Arc<Progress>,
) -> Vec<Outage> {
    let mut outages = Vec::new();
    let mut open: Option<(Instant, Outage)> = None;
    while let Some(event) = events.next().await {
        match event {
            Lifecycle::ConnectionLost(reason) => {
                progress.lost.fetch_add(1, Ordering::Relaxed);
                if open.is_none() {
                    progress.down.fetch_add(1, Ordering::Relaxed);
                }
                let outage = Outage {
                    client: label.clone(),
                    lost_at_s: start.elapsed().as_secs_f64(),
                    reason: reason_line(&reason),
                    back_after_ms: None,
                    host: None,
                };
                outages.extend(open.replace((Instant::now(), outage)).map(|(_, o)| o));
            }
            Lifecycle::Connected(info) => {
                if let Some((at, mut outage)) = open.take() {
                    outage.back_after_ms = Some(at.elapsed().as_secs_f64() * 1000.0);
                    outage.host = info.endpoint.map(|e| e.authority());
                    progress.down.fetch_sub(1, Ordering::Relaxed);
                    outages.push(outage);
                }
            }
            Lifecycle::Closed(_) => break,
            _ => {}
        }
    }
    outages.extend(open.map(|(_, o)| o));
    outages
}

/// What one producer sends.
struct Plan {
    /// Which producer (from 0).
    producer: usize,
    /// Messages in all.
    limit: u64,
    /// Or until then.
    deadline: Option<Instant>,
    /// One message per this, if paced.
    pace: Option<Duration>,
    /// When the bench began.
    start: Instant,
    run_id: String,
    persistent: bool,
    /// A receipt for every send.
    receipts: bool,
    /// `-H` headers.
    headers: Vec<(String, String)>,
    /// Set on Ctrl-C or SIGTERM: send no more.
    stop: Arc<AtomicBool>,
}

/// One producer: `limit` messages, or until `deadline`; the numbers of the
/// sends that could not be confirmed. A counted run asks a receipt for its
/// last message, so the broker has them all when it returns.
async fn send_loop(
    client: &Client,
    destination: &str,
    body: Bytes,
    plan: &Plan,
    progress: &Progress,
) -> Result<Vec<u64>, String> {
    let mut unconfirmed = Vec::new();
    // A send that could not be confirmed is counted and the run goes on;
    // anything else (the client has ended) ends the run.
    let mut settle = |n: u64, result: Result<(), Error>| match result {
        Ok(()) => Ok(()),
        Err(Error::Request(_) | Error::Timeout) => {
            unconfirmed.push(n);
            Ok(())
        }
        Err(e) => Err(ended(&e)),
    };
    let issued = &progress.issued[plan.producer];
    let mut in_flight = FuturesUnordered::new();
    let mut n = 0;
    let stopped = || plan.stop.load(Ordering::Relaxed);
    while n < plan.limit && plan.deadline.is_none_or(|at| Instant::now() < at) && !stopped() {
        if let Some(pace) = plan.pace {
            tokio::time::sleep_until((plan.start + pace.mul_f64(n as f64)).into()).await;
            if stopped() {
                break;
            }
        }
        n = issued.fetch_add(1, Ordering::Relaxed);
        let seq = Seq {
            producer: plan.producer,
            n,
            sent_at: plan.start.elapsed().as_micros() as u64,
        };
        let mut headers = vec![(MARK.into(), seq.value(&plan.run_id))];
        headers.extend(plan.headers.iter().cloned());
        if plan.persistent {
            headers.push(("persistent".into(), "true".into()));
        }
        let options = SendOptions {
            headers,
            receipt: plan.receipts || n + 1 == plan.limit,
            ..SendOptions::default()
        };
        let send = client.send_with(destination, body.clone(), options);
        n += 1;
        if !plan.receipts {
            settle(n - 1, send.await)?;
            continue;
        }
        in_flight.push(send.map(move |result| (n - 1, result)));
        // Poll until nothing is ready: the new send has gone to the
        // connection, and the receipts that came are settled.
        while let Some(Some((n, result))) = in_flight.next().now_or_never() {
            settle(n, result)?;
        }
        while in_flight.len() >= RECEIPT_WINDOW {
            if let Some((n, result)) = in_flight.next().await {
                settle(n, result)?;
            }
        }
    }
    while let Some((n, result)) = in_flight.next().await {
        settle(n, result)?;
    }
    drop(in_flight);
    Ok(unconfirmed)
}

fn progress_bar(args: &BenchArgs) -> indicatif::ProgressBar {
    if args.json {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(args.count);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} messages  {per_sec}  {elapsed}",
        )
        .expect("a valid template"),
    );
    bar
}

fn nanos_now() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
