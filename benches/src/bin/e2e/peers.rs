//! The Rust peers, each through its own API on Tokio: iridium-stomp (a
//! `Connection` per producer and consumer, `send`, a `Subscription`
//! stream, `ack_frame`, `send_frame_with_receipt`) and async-stomp (a
//! `ClientTransport` per producer and consumer: `Sink` of frames in,
//! `Stream` of frames out).

use std::time::Duration;

use futures::{SinkExt, StreamExt};

use crate::spec::{pace, stamp_of, stamped, usage, Outcome, Spec};
use crate::tally::Tally;

fn failed(error: String) -> Outcome {
    Outcome {
        error: Some(error),
        ..Outcome::default()
    }
}

pub async fn iridium(spec: Spec) -> Outcome {
    let cpu_before = usage().0;
    iridium_inner(&spec, cpu_before)
        .await
        .unwrap_or_else(failed)
}

async fn iridium_inner(spec: &Spec, cpu_before: f64) -> Result<Outcome, String> {
    use iridium_stomp::{AckMode, Connection, Frame};
    let addr = format!("{}:{}", spec.host, spec.port);
    let connect =
        || Connection::connect(&addr, &spec.login, &spec.passcode, Connection::NO_HEARTBEAT);
    let ack = if spec.client_acks() {
        AckMode::ClientIndividual
    } else {
        AckMode::Auto
    };
    let mut consumers = Vec::new();
    let mut subscriptions = Vec::new();
    for _ in 0..spec.consumers {
        let conn = connect().await.map_err(|e| e.to_string())?;
        subscriptions.push(
            conn.subscribe(&spec.destination, ack)
                .await
                .map_err(|e| e.to_string())?,
        );
        consumers.push(conn);
    }
    // SUBSCRIBE has no receipt here: give the broker time to set it up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut producers = Vec::new();
    for _ in 0..spec.producers {
        producers.push(connect().await.map_err(|e| e.to_string())?);
    }
    let tally = Tally::new(spec, cpu_before);
    let paced = spec.rate > 0;
    let mut receiving = Vec::new();
    for mut sub in subscriptions {
        let (tally, client_acks) = (tally.clone(), spec.client_acks());
        receiving.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while let Some(frame) = sub.next().await {
                if client_acks {
                    if let Err(e) = sub.ack_frame(&frame).await {
                        tally.fail(format!("ack: {e}"));
                        break;
                    }
                }
                tally.delivered(stamp_of(&frame.body), &mut latencies, paced);
            }
            // A subscription it gave up on (its channel overflowed, say).
            if let Some(
                end @ (iridium_stomp::SubscriptionEnd::Overflowed { .. }
                | iridium_stomp::SubscriptionEnd::Abandoned { .. }),
            ) = sub.ended()
            {
                tally.fail(format!("the subscription ended: {end:?}"));
            }
            tally.keep(latencies);
        }));
    }
    let mut sending = Vec::new();
    for (n, conn) in producers.iter().enumerate() {
        let (conn, tally, spec) = (conn.clone(), tally.clone(), spec.clone());
        sending.push(tokio::spawn(async move {
            let share = spec.share(n);
            for i in 1..=share {
                if let Some(wait) = pace(spec.rate, spec.producers, tally.start, i - 1) {
                    tokio::time::sleep(wait).await;
                }
                let body = stamped(spec.size, tally.now());
                let result = if spec.receipted(i, share) {
                    let frame = Frame::new("SEND")
                        .header("destination", &spec.destination)
                        .set_body(body);
                    match conn.send_frame_with_receipt(frame).await {
                        Ok(receipt) => receipt
                            .wait(Duration::from_secs(spec.timeout_s))
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                } else {
                    let text = String::from_utf8(body).unwrap_or_default();
                    conn.send(&spec.destination, text)
                        .await
                        .map_err(|e| e.to_string())
                };
                if let Err(e) = result {
                    return tally.fail(format!("send: {e}"));
                }
            }
            tally.sent(share);
        }));
    }
    let ended = tally.done().await;
    for task in sending {
        let _ = task.await;
    }
    for conn in producers {
        let _ = conn.close().await;
    }
    for conn in consumers {
        let _ = conn.close().await;
    }
    for task in receiving {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    ended?;
    Ok(tally.outcome())
}

pub async fn async_stomp(spec: Spec) -> Outcome {
    let cpu_before = usage().0;
    async_stomp_inner(&spec, cpu_before)
        .await
        .unwrap_or_else(failed)
}

async fn async_stomp_inner(spec: &Spec, cpu_before: f64) -> Result<Outcome, String> {
    use async_stomp::client::{Connector, Subscriber};
    use async_stomp::{AckMode, FromServer, Message, ToServer};
    let addr = format!("{}:{}", spec.host, spec.port);
    let connect = || {
        Connector::builder()
            .server(addr.clone())
            .virtualhost(spec.vhost.clone())
            .login(spec.login.clone())
            .passcode(spec.passcode.clone())
            .heartbeat(0, 0)
            .connect()
    };
    let mut consumers = Vec::new();
    for n in 0..spec.consumers {
        let mut conn = connect().await.map_err(|e| e.to_string())?;
        let mut subscribe = Subscriber::builder()
            .destination(spec.destination.clone())
            .id(format!("sub-{n}"))
            .ack(if spec.client_acks() {
                AckMode::ClientIndividual
            } else {
                AckMode::Auto
            })
            .subscribe();
        subscribe
            .extra_headers
            .push((b"receipt".to_vec(), b"subscribed".to_vec()));
        conn.send(subscribe).await.map_err(|e| e.to_string())?;
        match conn.next().await {
            Some(Ok(Message {
                content: FromServer::Receipt { .. },
                ..
            })) => {}
            other => return Err(format!("subscribe: {other:?}")),
        }
        consumers.push(conn);
    }
    let mut producers = Vec::new();
    for _ in 0..spec.producers {
        producers.push(connect().await.map_err(|e| e.to_string())?);
    }
    let tally = Tally::new(spec, cpu_before);
    let paced = spec.rate > 0;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut receiving = Vec::new();
    for mut conn in consumers {
        let (tally, client_acks, mut stopped) =
            (tally.clone(), spec.client_acks(), stopped.clone());
        receiving.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let item = tokio::select! {
                    item = conn.next() => item,
                    _ = stopped.changed() => break,
                };
                let Some(Ok(message)) = item else { break };
                match message.content {
                    FromServer::Message { ack, body, .. } => {
                        if client_acks {
                            let ack = ToServer::Ack {
                                id: ack.unwrap_or_default(),
                                transaction: None,
                            };
                            if let Err(e) = conn.send(ack.into()).await {
                                tally.fail(format!("ack: {e}"));
                                break;
                            }
                        }
                        tally.delivered(body.as_deref().and_then(stamp_of), &mut latencies, paced);
                    }
                    other => {
                        tally.fail(format!("unexpected: {other:?}"));
                        break;
                    }
                }
            }
            tally.keep(latencies);
        }));
    }
    let mut sending = Vec::new();
    for (n, mut conn) in producers.into_iter().enumerate() {
        let (tally, spec) = (tally.clone(), spec.clone());
        sending.push(tokio::spawn(async move {
            let share = spec.share(n);
            for i in 1..=share {
                if let Some(wait) = pace(spec.rate, spec.producers, tally.start, i - 1) {
                    tokio::time::sleep(wait).await;
                }
                let receipted = spec.receipted(i, share);
                let mut send: Message<ToServer> = ToServer::Send {
                    destination: spec.destination.clone(),
                    transaction: None,
                    headers: None,
                    body: Some(stamped(spec.size, tally.now())),
                }
                .into();
                if receipted {
                    send.extra_headers
                        .push((b"receipt".to_vec(), i.to_string().into_bytes()));
                }
                if let Err(e) = conn.send(send).await {
                    return tally.fail(format!("send: {e}"));
                }
                if receipted {
                    match conn.next().await {
                        Some(Ok(Message {
                            content: FromServer::Receipt { .. },
                            ..
                        })) => {}
                        other => return tally.fail(format!("receipt: {other:?}")),
                    }
                }
            }
            tally.sent(share);
        }));
    }
    let ended = tally.done().await;
    for task in sending {
        let _ = task.await;
    }
    let _ = stop.send(true);
    for task in receiving {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    ended?;
    Ok(tally.outcome())
}
