//! What only the async adapters promise: many subscriptions and senders on
//! one connection at once, and calls that can be dropped half-way.

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::collections::BTreeMap;
use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;

use futures_util::future::join_all;
use stomp_driver::{aio, Config};
use stomp_proto::AckMode;

use crate::adapters::{AsyncClient, BlockOn};
use crate::support::{one, queue, WAIT};
use crate::Adapter;

/// Instantiates every scenario of this module for `$adapter`.
#[macro_export]
macro_rules! concurrency_scenarios {
    ($adapter:ty) => {
        $crate::suite!($adapter, concurrency: a_hundred_subscriptions_share_one_connection,
            ten_senders_share_one_client,
            dropping_calls_half_way_leaves_the_connection_consistent);
    };
}

/// Polls `future` once (as a `select!` or a timeout would before giving up
/// on it) and drops it, finished or not.
fn poll_once<F: Future>(future: F) {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let _ = future.as_mut().poll(&mut cx);
}

/// The async client itself, connected with `config`.
fn connect<A>(config: Config) -> aio::Client
where
    A: Adapter<Client = AsyncClient<A>> + BlockOn,
{
    let client = A::connect(config).unwrap_or_else(|e| panic!("{}: {e}", A::NAME));
    client.inner().clone()
}

pub fn a_hundred_subscriptions_share_one_connection<A>()
where
    A: Adapter<Client = AsyncClient<A>> + BlockOn,
{
    let Some(broker) = one("rabbitmq", "tcp") else {
        return;
    };
    let client = connect::<A>(broker.config());
    let queues: Vec<String> = (0..100).map(|_| queue("hundred")).collect();
    A::block_on(async {
        let subs = join_all(queues.iter().map(|q| client.subscribe(q, AckMode::Auto))).await;
        let subs: Vec<_> = subs.into_iter().map(Result::unwrap).collect();
        let sends = queues
            .iter()
            .enumerate()
            .map(|(i, q)| client.send_with_receipt(q, format!("to {i}")));
        for sent in join_all(sends).await {
            sent.unwrap();
        }
        let received = join_all(subs.iter().map(|sub| sub.recv())).await;
        for (i, message) in received.into_iter().enumerate() {
            let message = message.expect("one message each");
            assert_eq!(
                message.text().as_deref(),
                Some(format!("to {i}").as_str()),
                "{}",
                A::NAME
            );
        }
        client.disconnect().await.unwrap();
    });
}

pub fn ten_senders_share_one_client<A>()
where
    A: Adapter<Client = AsyncClient<A>> + BlockOn,
{
    let Some(broker) = one("rabbitmq", "tcp") else {
        return;
    };
    let client = connect::<A>(broker.config());
    let q = queue("ten-senders");
    A::block_on(async {
        let sub = client.subscribe(&q, AckMode::Auto).await.unwrap();
        let senders = (0..10).map(|sender| {
            let (client, q) = (client.clone(), q.clone());
            async move {
                for n in 0..100 {
                    let body = format!("{sender}:{n}");
                    if n % 10 == 9 {
                        client.send_with_receipt(&q, body).await.unwrap();
                    } else {
                        client.send(&q, body).await.unwrap();
                    }
                }
            }
        });
        join_all(senders).await;
        // Every message once, each sender's in its order.
        let mut next: BTreeMap<u32, u32> = BTreeMap::new();
        for _ in 0..1000 {
            let message = sub.recv().await.expect("a message");
            let text = message.text().unwrap();
            let (sender, n) = text.split_once(':').unwrap();
            let (sender, n): (u32, u32) = (sender.parse().unwrap(), n.parse().unwrap());
            let expected = next.entry(sender).or_insert(0);
            assert_eq!(n, *expected, "{} sender {sender}", A::NAME);
            *expected += 1;
        }
        assert!(next.values().all(|&count| count == 100), "{next:?}");
        client.disconnect().await.unwrap();
    });
}

pub fn dropping_calls_half_way_leaves_the_connection_consistent<A>()
where
    A: Adapter<Client = AsyncClient<A>> + BlockOn,
{
    let Some(broker) = one("rabbitmq", "tcp") else {
        return;
    };
    let mut config = broker.config();
    config.subscription_capacity = 4;
    let client = connect::<A>(config);
    let (q, orphan) = (queue("cancel"), queue("orphan"));
    let sub = A::block_on(client.subscribe(&q, AckMode::ClientIndividual)).unwrap();

    // A send_with_receipt dropped after its first poll: the SEND is out
    // and confirmed all the same; only its answer is lost.
    poll_once(client.send_with_receipt(&q, "cancelled"));
    let message = A::timeout(sub.recv(), WAIT).unwrap().unwrap();
    assert_eq!(message.text().as_deref(), Some("cancelled"));
    // An ack dropped half-way is sent as well.
    poll_once(message.ack());

    // A subscribe dropped before its answer: the driver ends that
    // subscription on its first message instead of letting it fill (at 4)
    // and stall the socket.
    poll_once(client.subscribe(&orphan, AckMode::Auto));
    for n in 0..20 {
        A::block_on(client.send(&orphan, format!("{n}"))).unwrap();
    }

    // Either the driver saw the caller gone before it sent SUBSCRIBE, or it
    // ends the orphan on its first message: only `q` stays subscribed.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let stats = A::block_on(client.stats()).unwrap();
        let live = stats.frames_out(stomp_proto::Command::Subscribe)
            - stats.frames_out(stomp_proto::Command::Unsubscribe);
        if live == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{}: {stats:?}",
            A::NAME
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The connection goes on as if nothing happened.
    A::block_on(client.send_with_receipt(&q, "after")).unwrap();
    let message = A::timeout(sub.recv(), WAIT).unwrap().unwrap();
    assert_eq!(message.text().as_deref(), Some("after"), "{}", A::NAME);
    A::block_on(message.ack()).unwrap();
    drop(sub);
    A::block_on(client.disconnect()).unwrap();

    // The dropped ack counted: "cancelled" is not redelivered.
    let again = connect::<A>(broker.config());
    let sub = A::block_on(again.subscribe(&q, AckMode::Auto)).unwrap();
    assert!(
        A::timeout(sub.recv(), Duration::from_millis(500)).is_err(),
        "{}: an acknowledged message came back",
        A::NAME
    );
    A::block_on(again.disconnect()).unwrap();
}
