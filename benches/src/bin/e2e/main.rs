//! The end-to-end benchmark: every client (our adapters, the Rust peers,
//! stomp.py, stompjs and a raw socket as the ceiling) through every broker
//! (the embedded one in its own process, RabbitMQ, ActiveMQ), on every
//! workload, each client in a process of its own so its CPU time and peak
//! memory are its own (`getrusage`). One command runs the whole table:
//!
//! ```text
//! cargo run --release -p stomp-benches --bin e2e
//! cargo run --release -p stomp-benches --bin e2e -- --brokers embedded --clients raw,tokio-mt --workloads queue-100
//! ```
//!
//! Each cell runs twice: as fast as it goes (the rates, the CPU per
//! message), then paced at half the rate it reached (the latencies).
//!
//! `--smoke` is the short form the test suite runs: every client once
//! through the embedded broker on three workloads with a few thousand
//! messages, no latency runs; it fails if any client fails.

use std::io::Write as _;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod ours;
mod peers;
mod raw;
mod spec;
mod tally;

use spec::{Outcome, Spec};

const CLIENTS: &[&str] = &[
    "raw",
    "blocking",
    "tokio-mt",
    "tokio-ct",
    "async-std",
    "smol",
    "iridium-stomp",
    "async-stomp",
    "stomp.py",
    "stompjs",
];

struct Workload {
    id: &'static str,
    title: &'static str,
    size: usize,
    producers: usize,
    consumers: usize,
    topic: bool,
    client_acks: bool,
    receipt_every: u64,
    /// Share of the broker's message count.
    scale: f64,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        id: "queue-100",
        title: "1 → 1 queue, 100 B",
        size: 100,
        producers: 1,
        consumers: 1,
        topic: false,
        client_acks: false,
        receipt_every: 0,
        scale: 1.0,
    },
    Workload {
        id: "queue-4k",
        title: "1 → 1 queue, 4 KiB",
        size: 4096,
        producers: 1,
        consumers: 1,
        topic: false,
        client_acks: false,
        receipt_every: 0,
        scale: 0.5,
    },
    Workload {
        id: "queue-4x4",
        title: "4 → 4 queue, 100 B",
        size: 100,
        producers: 4,
        consumers: 4,
        topic: false,
        client_acks: false,
        receipt_every: 0,
        scale: 1.0,
    },
    Workload {
        id: "topic-1x10",
        title: "1 → 10 topic (fan-out), 100 B",
        size: 100,
        producers: 1,
        consumers: 10,
        topic: true,
        client_acks: false,
        receipt_every: 0,
        scale: 0.25,
    },
    Workload {
        id: "client-acks",
        title: "1 → 1 queue, client-individual acks, 100 B",
        size: 100,
        producers: 1,
        consumers: 1,
        topic: false,
        client_acks: true,
        receipt_every: 0,
        scale: 0.5,
    },
    Workload {
        id: "receipt-each",
        title: "1 → 1 queue, a receipt per message, 100 B",
        size: 100,
        producers: 1,
        consumers: 1,
        topic: false,
        client_acks: false,
        receipt_every: 1,
        scale: 0.05,
    },
    Workload {
        id: "receipt-100",
        title: "1 → 1 queue, a receipt per 100 messages, 100 B",
        size: 100,
        producers: 1,
        consumers: 1,
        topic: false,
        client_acks: false,
        receipt_every: 100,
        scale: 0.5,
    },
];

struct Broker {
    name: &'static str,
    port: u16,
    /// Messages per run of a fast client at scale 1.
    count: u64,
}

const BROKERS: &[Broker] = &[
    Broker {
        name: "embedded",
        port: 61690,
        count: 200_000,
    },
    Broker {
        name: "rabbitmq",
        port: 61613,
        count: 50_000,
    },
    Broker {
        name: "activemq",
        port: 61623,
        count: 50_000,
    },
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(args.get(1).and_then(|p| p.parse().ok()).unwrap_or(61690)),
        Some("client") => {
            let (Some(name), Some(spec)) = (args.get(1), args.get(2)) else {
                eprintln!("usage: e2e client NAME SPEC-JSON");
                std::process::exit(2);
            };
            let spec: Spec = serde_json::from_str(spec).expect("a spec");
            let outcome = client(name, spec);
            println!("{}", serde_json::to_string(&outcome).expect("json"));
        }
        _ => orchestrate(&args),
    }
}

/// The embedded broker in this process, until killed.
fn serve(port: u16) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let config = stomp_broker::serve::ServeConfig {
            listen: ([127, 0, 0, 1], port).into(),
            ..stomp_broker::serve::ServeConfig::default()
        };
        let _broker = stomp_broker::serve::Broker::start(config)
            .await
            .expect("the broker starts");
        std::future::pending::<()>().await;
    });
}

fn client(name: &str, spec: Spec) -> Outcome {
    let tokio_mt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
    };
    match name {
        "raw" => raw::run(spec),
        "blocking" => ours::run_blocking(spec),
        "tokio-mt" => {
            let runtime = tokio_mt();
            let rt = std::sync::Arc::new(ours::TokioRt(runtime.handle().clone()));
            runtime.block_on(ours::run_async(spec, rt))
        }
        "tokio-ct" => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let rt = std::sync::Arc::new(ours::TokioRt(runtime.handle().clone()));
            runtime.block_on(ours::run_async(spec, rt))
        }
        "async-std" => {
            async_std::task::block_on(ours::run_async(spec, std::sync::Arc::new(ours::AsyncStdRt)))
        }
        "smol" => smol::block_on(ours::run_async(spec, std::sync::Arc::new(ours::SmolRt))),
        "iridium-stomp" => tokio_mt().block_on(peers::iridium(spec)),
        "async-stomp" => tokio_mt().block_on(peers::async_stomp(spec)),
        other => Outcome {
            error: Some(format!("no client {other}")),
            ..Outcome::default()
        },
    }
}

/// The command that runs client `name` with `spec`.
fn command(name: &str, spec: &Spec) -> Command {
    let json = serde_json::to_string(spec).expect("json");
    let peers = root().join("target/peers");
    match name {
        "stomp.py" => {
            let mut command = Command::new(peers.join("venv/bin/python3"));
            command
                .arg(root().join("benches/peers/e2e_stomppy.py"))
                .arg(json);
            command
        }
        "stompjs" => {
            let mut command = Command::new("node");
            command
                .arg(root().join("benches/peers/e2e_stompjs.cjs"))
                .arg(json)
                .env("NODE_PATH", peers.join("node/node_modules"));
            command
        }
        _ => {
            let mut command = Command::new(std::env::current_exe().expect("this binary"));
            command.arg("client").arg(name).arg(json);
            command
        }
    }
}

/// Runs one client process; kills it if it overstays.
fn run_one(name: &str, spec: &Spec) -> Outcome {
    let failed = |error: String| Outcome {
        error: Some(error),
        ..Outcome::default()
    };
    let child = command(name, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot start {name}: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(spec.timeout_s + 15);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return failed("killed: it overstayed its timeout".into());
            }
        }
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    match stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Outcome>(l).ok())
    {
        Some(outcome) => outcome,
        None => failed(format!(
            "no report ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .last()
                .unwrap_or("")
        )),
    }
}

struct Embedded(Child);

impl Drop for Embedded {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn reachable(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_ok()
}

/// Takes what a failed run left on `destination`.
fn drain(spec: &Spec) {
    let Ok(client) = stomp_blocking::Client::connect(&spec.url()) else {
        return;
    };
    if let Ok(subscription) = client.subscribe(&spec.destination, stomp_proto::AckMode::Auto) {
        while subscription
            .recv_timeout(Duration::from_millis(500))
            .is_ok()
        {}
    }
    let _ = client.disconnect();
}

struct Row {
    client: String,
    max: Outcome,
    paced: Option<Outcome>,
}

fn orchestrate(args: &[String]) {
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
    };
    let smoke = args.iter().any(|a| a == "--smoke");
    let clients =
        option("--clients").unwrap_or_else(|| CLIENTS.iter().map(|c| c.to_string()).collect());
    let workloads = option("--workloads").unwrap_or_else(|| {
        if smoke {
            vec![
                "queue-100".into(),
                "topic-1x10".into(),
                "client-acks".into(),
            ]
        } else {
            WORKLOADS.iter().map(|w| w.id.to_string()).collect()
        }
    });
    let brokers = option("--brokers").unwrap_or_else(|| {
        if smoke {
            vec!["embedded".into()]
        } else {
            BROKERS.iter().map(|b| b.name.to_string()).collect()
        }
    });
    let scale: f64 = option("--scale")
        .and_then(|v| v[0].parse().ok())
        .unwrap_or(if smoke { 0.02 } else { 1.0 });
    let latency = !smoke && !args.iter().any(|a| a == "--no-latency");
    let mut failures = 0;
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "# e2e: {} clients, {} brokers, {} workloads, scale {scale}\n",
        clients.len(),
        brokers.len(),
        workloads.len()
    );
    for broker in BROKERS
        .iter()
        .filter(|b| brokers.iter().any(|n| n == b.name))
    {
        let _embedded = (broker.name == "embedded").then(|| {
            let child = Command::new(std::env::current_exe().expect("this binary"))
                .arg("serve")
                .arg(broker.port.to_string())
                .stdout(Stdio::null())
                .spawn()
                .expect("the embedded broker starts");
            let embedded = Embedded(child);
            for _ in 0..100 {
                if reachable(broker.port) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            embedded
        });
        if !reachable(broker.port) {
            failures += 1;
            let _ = writeln!(
                out,
                "## {}: not reachable on {}, skipped\n",
                broker.name, broker.port
            );
            continue;
        }
        for workload in WORKLOADS
            .iter()
            .filter(|w| workloads.iter().any(|n| n == w.id))
        {
            let _ = writeln!(out, "## {} — {}\n", broker.name, workload.title);
            let _ = writeln!(out, "| client | sent msg/s | received msg/s | client CPU µs/msg | peak RSS MB | p50 / p99 ms at half rate | received vs raw |");
            let _ = writeln!(out, "|---|---|---|---|---|---|---|");
            let mut raw_rate = None;
            for name in &clients {
                let slow = matches!(name.as_str(), "stomp.py" | "stompjs");
                let count =
                    (broker.count as f64 * workload.scale * scale * if slow { 0.25 } else { 1.0 })
                        .max(100.0) as u64;
                let spec = Spec {
                    host: "127.0.0.1".into(),
                    port: broker.port,
                    login: "guest".into(),
                    passcode: "guest".into(),
                    vhost: "/".into(),
                    destination: format!(
                        "/{}/e2e-{}",
                        if workload.topic { "topic" } else { "queue" },
                        workload.id
                    ),
                    size: workload.size,
                    count,
                    producers: workload.producers,
                    consumers: workload.consumers,
                    ack: if workload.client_acks {
                        "client-individual"
                    } else {
                        "auto"
                    }
                    .into(),
                    receipt_every: workload.receipt_every,
                    rate: 0,
                    timeout_s: 60,
                };
                let max = run_one(name, &spec);
                if max.error.is_some() && !workload.topic {
                    drain(&spec);
                }
                let fan = if workload.topic {
                    workload.consumers as f64
                } else {
                    1.0
                };
                let paced =
                    (latency && max.error.is_none() && workload.receipt_every != 1).then(|| {
                        let rate = (max.received as f64 / max.recv_s / fan)
                            .min(max.sent as f64 / max.send_s)
                            / 2.0;
                        let spec = Spec {
                            rate: rate.max(100.0) as u64,
                            count: ((rate * 2.0) as u64).clamp(1000, count),
                            ..spec.clone()
                        };
                        let paced = run_one(name, &spec);
                        if paced.error.is_some() && !workload.topic {
                            drain(&spec);
                        }
                        paced
                    });
                // A peer that gives up a subscription it cannot keep up
                // with is a result, not a broken run.
                failures += usize::from(
                    max.error
                        .as_deref()
                        .is_some_and(|e| !e.contains("Overflowed")),
                );
                let row = Row {
                    client: name.clone(),
                    max,
                    paced,
                };
                let rate = row.max.received as f64 / row.max.recv_s;
                if name == "raw" && row.max.error.is_none() {
                    raw_rate = Some(rate);
                }
                let _ = writeln!(out, "{}", format_row(&row, raw_rate));
                let _ = out.flush();
            }
            let _ = writeln!(out);
        }
    }
    if smoke && failures > 0 {
        eprintln!("e2e --smoke: {failures} runs failed");
        std::process::exit(1);
    }
}

fn format_row(row: &Row, raw_rate: Option<f64>) -> String {
    let max = &row.max;
    if let Some(error) = &max.error {
        return format!(
            "| {} | — | — | — | — | — | failed: {} |",
            row.client,
            error.replace('|', "/")
        );
    }
    let received = max.received as f64 / max.recv_s;
    let latency = match &row.paced {
        Some(p) if p.error.is_none() => {
            format!("{:.2} / {:.2}", p.p50_us / 1000.0, p.p99_us / 1000.0)
        }
        Some(p) => format!(
            "failed: {}",
            p.error.as_deref().unwrap_or("").replace('|', "/")
        ),
        None => "—".into(),
    };
    let versus = match raw_rate {
        Some(raw) => format!("{:.0}%", received / raw * 100.0),
        None => "—".into(),
    };
    format!(
        "| {} | {:.0}k | {:.0}k | {:.2} | {:.1} | {} | {} |",
        row.client,
        max.sent as f64 / max.send_s / 1000.0,
        received / 1000.0,
        max.cpu_s / max.received as f64 * 1e6,
        max.rss_kb as f64 / 1024.0,
        latency,
        versus
    )
}
