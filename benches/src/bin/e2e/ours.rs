//! Our own adapters as clients: the blocking client on threads, and the
//! async client on Tokio (multi-thread and current-thread), async-std and
//! smol, all through their public API.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use stomp_driver::aio;
use stomp_proto::client::{SendOptions, SubscribeOptions};
use stomp_proto::AckMode;

use crate::spec::{pace, stamp_of, stamped, usage, Outcome, Spec};
use crate::tally::Tally;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

fn ack_mode(spec: &Spec) -> AckMode {
    if spec.client_acks() {
        AckMode::ClientIndividual
    } else {
        AckMode::Auto
    }
}

fn config(spec: &Spec) -> Result<stomp_driver::Config, String> {
    let mut config = stomp_driver::Config::from_url(&spec.url()).map_err(|e| e.to_string())?;
    config.session.heartbeat = stomp_proto::HeartBeat::new(0, 0);
    config.session.host = spec.vhost.clone();
    Ok(config)
}

/// What a runtime gives the async run.
pub trait Rt: Send + Sync + 'static {
    fn connect(&self, config: stomp_driver::Config) -> BoxFuture<Result<aio::Client, String>>;
    fn spawn(&self, task: BoxFuture<()>) -> BoxFuture<()>;
    fn sleep(&self, how_long: Duration) -> BoxFuture<()>;
}

/// The whole run on an async runtime (called inside its `block_on`).
pub async fn run_async(spec: Spec, rt: Arc<dyn Rt>) -> Outcome {
    let cpu_before = usage().0;
    match run_async_inner(&spec, &rt, cpu_before).await {
        Ok(outcome) => outcome,
        Err(error) => Outcome {
            error: Some(error),
            ..Outcome::default()
        },
    }
}

async fn run_async_inner(
    spec: &Spec,
    rt: &Arc<dyn Rt>,
    cpu_before: f64,
) -> Result<Outcome, String> {
    let paced = spec.rate > 0;
    let mut consumers = Vec::new();
    let mut subscriptions = Vec::new();
    for _ in 0..spec.consumers {
        let client = rt.connect(config(spec)?).await?;
        let options = SubscribeOptions {
            ack: ack_mode(spec),
            receipt: true,
            ..SubscribeOptions::default()
        };
        let subscription = client
            .subscribe_with(&spec.destination, options)
            .await
            .map_err(|e| e.to_string())?;
        subscriptions.push(subscription);
        consumers.push(client);
    }
    let mut producers = Vec::new();
    for _ in 0..spec.producers {
        producers.push(rt.connect(config(spec)?).await?);
    }
    let tally = Tally::new(spec, cpu_before);
    let mut receiving = Vec::new();
    for subscription in subscriptions {
        let (tally, client_acks) = (tally.clone(), spec.client_acks());
        receiving.push(rt.spawn(Box::pin(async move {
            let mut latencies = Vec::new();
            while let Some(message) = subscription.recv().await {
                if client_acks {
                    if let Err(e) = message.ack().await {
                        return tally.fail(format!("ack: {e}"));
                    }
                }
                tally.delivered(stamp_of(message.body()), &mut latencies, paced);
            }
            tally.keep(latencies);
        })));
    }
    let mut sending = Vec::new();
    for (n, client) in producers.iter().enumerate() {
        let (client, tally, spec2, rt2) = (client.clone(), tally.clone(), spec.clone(), rt.clone());
        sending.push(rt.spawn(Box::pin(async move {
            let share = spec2.share(n);
            for i in 1..=share {
                if let Some(wait) = pace(spec2.rate, spec2.producers, tally.start, i - 1) {
                    rt2.sleep(wait).await;
                }
                let body = stamped(spec2.size, tally.now());
                let options = SendOptions {
                    receipt: spec2.receipted(i, share),
                    ..SendOptions::default()
                };
                if let Err(e) = client.send_with(&spec2.destination, body, options).await {
                    return tally.fail(format!("send: {e}"));
                }
            }
            tally.sent(share);
        })));
    }
    let ended = tally.done().await;
    for task in sending {
        task.await;
    }
    for client in producers {
        let _ = client.disconnect().await;
    }
    for client in consumers {
        let _ = client.disconnect().await;
    }
    for task in receiving {
        task.await;
    }
    ended?;
    Ok(tally.outcome())
}

pub struct TokioRt(pub tokio::runtime::Handle);

impl Rt for TokioRt {
    fn connect(&self, config: stomp_driver::Config) -> BoxFuture<Result<aio::Client, String>> {
        Box::pin(async move {
            let client = stomp_tokio::Client::connect_with(config)
                .await
                .map_err(|e| e.to_string())?;
            Ok((*client).clone())
        })
    }

    fn spawn(&self, task: BoxFuture<()>) -> BoxFuture<()> {
        let handle = self.0.spawn(task);
        Box::pin(async move {
            let _ = handle.await;
        })
    }

    fn sleep(&self, how_long: Duration) -> BoxFuture<()> {
        Box::pin(tokio::time::sleep(how_long))
    }
}

pub struct AsyncStdRt;

impl Rt for AsyncStdRt {
    fn connect(&self, config: stomp_driver::Config) -> BoxFuture<Result<aio::Client, String>> {
        Box::pin(async move {
            let client = stomp_async_std::Client::connect_on(config, stomp_async_std::AsyncStd)
                .await
                .map_err(|e| e.to_string())?;
            Ok((*client).clone())
        })
    }

    fn spawn(&self, task: BoxFuture<()>) -> BoxFuture<()> {
        Box::pin(async_std::task::spawn(task))
    }

    fn sleep(&self, how_long: Duration) -> BoxFuture<()> {
        Box::pin(async_std::task::sleep(how_long))
    }
}

pub struct SmolRt;

impl Rt for SmolRt {
    fn connect(&self, config: stomp_driver::Config) -> BoxFuture<Result<aio::Client, String>> {
        Box::pin(async move {
            let client = stomp_async_std::Client::connect_on(config, stomp_async_std::Smol)
                .await
                .map_err(|e| e.to_string())?;
            Ok((*client).clone())
        })
    }

    fn spawn(&self, task: BoxFuture<()>) -> BoxFuture<()> {
        Box::pin(smol::spawn(task))
    }

    fn sleep(&self, how_long: Duration) -> BoxFuture<()> {
        Box::pin(async move {
            smol::Timer::after(how_long).await;
        })
    }
}

/// The blocking client: a thread per producer and per consumer.
pub fn run_blocking(spec: Spec) -> Outcome {
    let cpu_before = usage().0;
    match run_blocking_inner(&spec, cpu_before) {
        Ok(outcome) => outcome,
        Err(error) => Outcome {
            error: Some(error),
            ..Outcome::default()
        },
    }
}

fn run_blocking_inner(spec: &Spec, cpu_before: f64) -> Result<Outcome, String> {
    let paced = spec.rate > 0;
    let connect = || stomp_blocking::Client::connect_with(config(spec)?).map_err(|e| e.to_string());
    let mut consumers = Vec::new();
    let mut subscriptions = Vec::new();
    for _ in 0..spec.consumers {
        let client = connect()?;
        let options = SubscribeOptions {
            ack: ack_mode(spec),
            receipt: true,
            ..SubscribeOptions::default()
        };
        subscriptions.push(
            client
                .subscribe_with(&spec.destination, options)
                .map_err(|e| e.to_string())?,
        );
        consumers.push(client);
    }
    let producers = (0..spec.producers)
        .map(|_| connect())
        .collect::<Result<Vec<_>, _>>()?;
    let tally = Tally::new(spec, cpu_before);
    let outcome = std::thread::scope(|scope| {
        for subscription in &subscriptions {
            let tally = &tally;
            scope.spawn(move || {
                let mut latencies = Vec::new();
                while let Some(message) = subscription.recv() {
                    if spec.client_acks() {
                        if let Err(e) = message.ack() {
                            return tally.fail(format!("ack: {e}"));
                        }
                    }
                    tally.delivered(stamp_of(message.body()), &mut latencies, paced);
                }
                tally.keep(latencies);
            });
        }
        let sending: Vec<_> = producers
            .iter()
            .enumerate()
            .map(|(n, client)| {
                let tally = &tally;
                scope.spawn(move || {
                    let share = spec.share(n);
                    for i in 1..=share {
                        if let Some(wait) = pace(spec.rate, spec.producers, tally.start, i - 1) {
                            std::thread::sleep(wait);
                        }
                        let body = stamped(spec.size, tally.now());
                        let options = SendOptions {
                            receipt: spec.receipted(i, share),
                            ..SendOptions::default()
                        };
                        if let Err(e) = client.send_with(&spec.destination, body, options) {
                            return tally.fail(format!("send: {e}"));
                        }
                    }
                    tally.sent(share);
                })
            })
            .collect();
        let ended = tally.wait();
        for thread in sending {
            let _ = thread.join();
        }
        // Ending the clients ends the consumers' loops.
        for client in consumers.drain(..) {
            let _ = client.disconnect();
        }
        ended
    });
    for client in producers {
        let _ = client.disconnect();
    }
    drop(subscriptions);
    outcome?;
    Ok(tally.outcome())
}
