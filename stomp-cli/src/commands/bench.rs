//! `stomp bench`: producers and consumers through a broker (the embedded one,
//! in-process, unless `--url` names another), with a live progress bar and a
//! closing table of rates and latencies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use serde::Serialize;
use stomp_broker::serve::{Broker, ServeConfig};
use stomp_tokio::{Client, SendOptions, SubscribeOptions};
use tokio::task::JoinSet;

use super::connect::{connect, ended, parse_duration, redact, ConnectArgs};
use super::subscribe::Ack;
use crate::Failure;

/// The header carrying when a message was sent (µs since the bench began).
const SENT_AT: &str = "stomp-bench-sent";
/// The header naming the run, so messages left by an earlier one are skipped.
const RUN: &str = "stomp-bench-run";

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
    /// Print the results as one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

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
    /// Messages sent, and how long sending took.
    pub sent: u64,
    pub send_seconds: f64,
    /// Messages received (each consumer's copy counts, for topics), and
    /// how long from the first send to the last receipt.
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
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// Counters shared by the run's tasks.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    received: AtomicU64,
    stale: AtomicU64,
    /// When the last message arrived, µs since the bench began.
    last_received: AtomicU64,
}

/// Runs `stomp bench`.
pub fn run(args: &BenchArgs) -> Result<(), Failure> {
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
    Ok(())
}

async fn bench(args: &BenchArgs) -> Result<Report, Failure> {
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
    let fan_out = args.destination.starts_with("/topic/");
    let run_id = format!("{}-{}", std::process::id(), nanos_now());
    let progress = Arc::new(Progress::default());

    let mut consumers = Vec::new();
    for _ in 0..args.consumers {
        consumers.push(connect(&url, config.clone()).await?);
    }
    let mut producers = Vec::new();
    for _ in 0..args.producers {
        producers.push(connect(&url, config.clone()).await?);
    }

    let start = Instant::now();
    let mut receiving = JoinSet::new();
    for client in &consumers {
        let options = SubscribeOptions {
            ack: args.ack.into(),
            receipt: true,
            ..SubscribeOptions::default()
        };
        let subscription = client
            .subscribe_with(&args.destination, options)
            .await
            .map_err(|e| Failure::Remote(ended(&e)))?;
        let progress = progress.clone();
        let run_id = run_id.clone();
        receiving.spawn(async move {
            let mut latencies = Histogram::<u64>::new(3).expect("3 significant figures");
            while let Some(message) = subscription.recv().await {
                let sent_at = (message.header(RUN) == Some(run_id.as_str()))
                    .then(|| message.header(SENT_AT)?.parse::<u64>().ok())
                    .flatten();
                message.ack().await.map_err(|e| ended(&e))?;
                match sent_at {
                    Some(sent_at) => {
                        let now = start.elapsed().as_micros() as u64;
                        let _ = latencies.record(now.saturating_sub(sent_at).max(1));
                        progress.received.fetch_add(1, Ordering::Relaxed);
                        progress.last_received.fetch_max(now, Ordering::Relaxed);
                    }
                    None => {
                        progress.stale.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Ok::<_, String>(latencies)
        });
    }

    let body = Bytes::from(vec![b'x'; args.size]);
    let deadline = args.duration.map(|d| start + d);
    let mut sending = JoinSet::new();
    let producer_count = args.producers as u64;
    for (n, client) in producers.iter().enumerate() {
        let share =
            args.count / producer_count + u64::from((n as u64) < args.count % producer_count);
        let limit = if deadline.is_some() { u64::MAX } else { share };
        let (client, body, destination) = (client.clone(), body.clone(), args.destination.clone());
        let (progress, run_id) = (progress.clone(), run_id.clone());
        let pace = (args.rate > 0)
            .then(|| Duration::from_secs_f64(producer_count as f64 / args.rate as f64));
        sending.spawn(async move {
            let plan = Plan {
                limit,
                deadline,
                pace,
                start,
                run_id: &run_id,
            };
            send_loop(&client, &destination, body, &plan, &progress).await
        });
    }

    let bar = progress_bar(args);
    let mut sent_done = None;
    let mut last = (0, Instant::now());
    let stall = args.connect.timeout.max(Duration::from_secs(10));
    loop {
        tokio::select! {
            finished = sending.join_next(), if !sending.is_empty() => {
                if let Some(result) = finished {
                    result
                        .map_err(|e| Failure::Remote(e.to_string()))?
                        .map_err(Failure::Remote)?;
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
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        let sent = progress.sent.load(Ordering::Relaxed);
        let received = progress.received.load(Ordering::Relaxed);
        let expected = if fan_out {
            sent * args.consumers as u64
        } else {
            sent
        };
        bar.set_length(match deadline {
            None if fan_out => args.count * args.consumers as u64,
            None => args.count,
            Some(_) => expected.max(1),
        });
        bar.set_position(received);
        if sent_done.is_some() && received >= expected {
            break;
        }
        if received != last.0 {
            last = (received, Instant::now());
        } else if last.1.elapsed() > stall {
            bar.abandon();
            let hint = if url.starts_with("udp://") {
                " (multicast drops what a receiver's socket buffer cannot hold: try --rate)"
            } else {
                ""
            };
            return Err(Failure::Remote(format!(
                "stalled: {received} of {expected} messages arrived, none in the last {}s{hint}",
                stall.as_secs()
            )));
        }
    }
    let receive_time = Duration::from_micros(progress.last_received.load(Ordering::Relaxed));
    bar.finish_and_clear();

    for client in producers {
        client
            .disconnect()
            .await
            .map_err(|e| Failure::Remote(ended(&e)))?;
    }
    for client in consumers {
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

    let sent = progress.sent.load(Ordering::Relaxed);
    let received = progress.received.load(Ordering::Relaxed);
    let send_seconds = sent_done.unwrap_or(receive_time).as_secs_f64();
    let receive_seconds = receive_time.as_secs_f64();
    let ms = |micros: u64| micros as f64 / 1000.0;
    Ok(Report {
        broker,
        transport: args.connect.url.is_none().then_some(args.transport),
        producers: args.producers,
        consumers: args.consumers,
        size: args.size,
        ack: stomp_proto::AckMode::from(args.ack).as_str().to_string(),
        destination: args.destination.clone(),
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
    })
}

/// What one producer sends.
struct Plan<'a> {
    /// Messages in all.
    limit: u64,
    /// Or until then.
    deadline: Option<Instant>,
    /// One message per this, if paced.
    pace: Option<Duration>,
    /// When the bench began.
    start: Instant,
    run_id: &'a str,
}

/// One producer: `limit` messages, or until `deadline`. A counted run asks
/// a receipt for its last message, so the broker has them all when it
/// returns.
async fn send_loop(
    client: &Client,
    destination: &str,
    body: Bytes,
    plan: &Plan<'_>,
    progress: &Progress,
) -> Result<(), String> {
    let Plan {
        limit,
        deadline,
        pace,
        start,
        run_id,
    } = *plan;
    let mut n = 0;
    while n < limit && deadline.is_none_or(|at| Instant::now() < at) {
        if let Some(pace) = pace {
            tokio::time::sleep_until((start + pace.mul_f64(n as f64)).into()).await;
        }
        n += 1;
        let last = n == limit;
        let options = SendOptions {
            headers: vec![
                (RUN.into(), run_id.into()),
                (SENT_AT.into(), start.elapsed().as_micros().to_string()),
            ],
            receipt: last,
            ..SendOptions::default()
        };
        client
            .send_with(destination, body.clone(), options)
            .await
            .map_err(|e| ended(&e))?;
        progress.sent.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
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
    if report.stale > 0 {
        out += &format!(
            "  ({} messages of earlier runs were on {} and were skipped)\n",
            report.stale, report.destination
        );
    }
    out
}
