//! Against the real brokers, over every transport: versions, bodies and
//! escaping, every ack mode with ACK and NACK, receipts, transactions,
//! unsubscribe, the broker's ERROR tied to its request, large bodies, 10,000
//! messages in order, bad logins, TLS checks, and each broker difference of
//! `../shared/BROKERS.md` met by the client.

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::Bytes;
use stomp_driver::{Config, Error, Lifecycle, Tls};
use stomp_proto::client::{CloseReason, CommandError, RequestError, SendOptions, SubscribeOptions};
use stomp_proto::reconnect::ReconnectPolicy;
use stomp_proto::{AckMode, ContentLengthPolicy, HeartBeat, Version, VersionSet};

use crate::support::{self, brokers, one, queue, recv_text, Broker, TLS_DIR, WAIT};
use crate::{Adapter, SuiteClient, SuiteInbox, SuiteMsg, SuiteSub, SuiteTap, SuiteTx};

/// Instantiates every scenario of this module for `$adapter`.
#[macro_export]
macro_rules! broker_scenarios {
    ($adapter:ty) => {
        $crate::suite!($adapter, brokers: every_version_negotiates_and_round_trips, binary_bodies_with_nuls_and_escaped_headers_arrive_intact, text_is_decoded_in_the_charset_its_content_type_names, client_individual_acks_and_unacked_messages_come_back, nack_takes_the_message_away_from_the_subscription, a_nack_in_a_transaction_takes_effect_on_commit_only, transactions_deliver_on_commit_and_never_after_abort, unsubscribe_stops_delivery, acks_by_handle_or_by_id_and_unsubscribes_wait_for_their_receipts, caller_chosen_transaction_ids_are_used_and_a_duplicate_refused, a_broker_error_surfaces_on_the_request_that_caused_it, large_bodies_round_trip, ten_thousand_messages_arrive_in_order_exactly_once, a_bad_login_is_refused_with_the_brokers_words, tls_client_certificates_from_the_brokers_ca_are_accepted_and_others_refused, tls_refuses_a_broker_the_roots_do_not_vouch_for, tls_checks_the_server_name_given_instead_of_the_host, bad_tls_settings_fail_before_dialing, activemq_stack_traces_stay_in_the_error_body, activemq_closing_after_a_protocol_error_is_survived_by_reconnecting, rabbitmq_whole_second_heartbeats_keep_the_connection_alive, rabbitmq_websocket_answers_disconnect_with_a_close_which_is_success, a_topic_reaches_every_subscription_confirmed_by_its_receipt, a_full_subscription_stops_reading_after_the_read_ahead_and_loses_nothing, activemq_makes_a_text_message_of_a_send_without_content_length, the_end_of_line_brokers_write_after_frames_is_no_heartbeat, requests_get_their_own_replies_and_an_unanswered_one_times_out, replies_to_a_temp_queue_reach_the_unhandled_stream, the_tap_sees_every_frame_both_ways_and_ends_with_the_client, a_caller_chosen_receipt_id_goes_out_and_comes_back, the_idle_watchdog_renews_a_quiet_subscription_which_still_delivers, confirmed_mode_asks_a_receipt_for_every_request_and_types_a_refusal);
    };
}

pub fn every_version_negotiates_and_round_trips<A: Adapter>() {
    for broker in brokers() {
        for version in Version::ALL {
            let mut config = broker.config();
            config.session.versions = VersionSet::from_iter([version]);
            let client = A::connect(config).unwrap();
            assert_eq!(client.version(), version, "{broker}");
            let q = queue("version");
            let sub = client.subscribe(&q, AckMode::Auto).unwrap();
            client
                .send_with_receipt(&q, format!("in {version}"))
                .unwrap();
            assert_eq!(recv_text(&sub), format!("in {version}"), "{broker}");
            client.disconnect().unwrap();
        }
    }
}

pub fn binary_bodies_with_nuls_and_escaped_headers_arrive_intact<A: Adapter>() {
    for broker in brokers() {
        let client = broker.connect::<A>();
        let q = queue("binary");
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        let body: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
        let options = SendOptions {
            headers: vec![("x-note".into(), "a:b\nc\\d".into())],
            content_type: Some("application/octet-stream".into()),
            receipt: true,
            ..SendOptions::default()
        };
        client
            .send_with(&q, Bytes::from(body.clone()), options)
            .unwrap();
        let message = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(&message.body()[..], &body[..], "{broker}");
        assert_eq!(message.header("x-note"), Some("a:b\nc\\d"), "{}", broker);
        client.disconnect().unwrap();
    }
}

pub fn text_is_decoded_in_the_charset_its_content_type_names<A: Adapter>() {
    for broker in brokers() {
        let client = broker.connect::<A>();
        let q = queue("charset");
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        let cases: [(Option<&str>, &[u8], Option<&str>); 5] = [
            (None, "café ☕".as_bytes(), Some("café ☕")),
            (
                Some("text/plain;charset=utf-8"),
                "naïve".as_bytes(),
                Some("naïve"),
            ),
            (
                Some("text/plain; charset=ISO-8859-1"),
                b"caf\xe9 cr\xe8me",
                Some("café crème"),
            ),
            (Some("text/plain;charset=us-ascii"), b"caf\xe9", None),
            (Some("application/octet-stream"), b"\xff\xfe", None),
        ];
        for (content_type, body, _) in cases {
            let options = SendOptions {
                content_type: content_type.map(String::from),
                receipt: true,
                ..SendOptions::default()
            };
            client
                .send_with(&q, Bytes::copy_from_slice(body), options)
                .unwrap();
        }
        for (content_type, body, text) in cases {
            let message = sub.recv_timeout(WAIT).unwrap();
            assert_eq!(&message.body()[..], body, "{broker}");
            assert_eq!(
                message.decoded_text().as_deref(),
                text,
                "{} {broker}: {content_type:?}",
                A::NAME
            );
        }
        client.disconnect().unwrap();
    }
}

pub fn client_individual_acks_and_unacked_messages_come_back<A: Adapter>() {
    for broker in brokers() {
        let q = queue("acks");
        let client = broker.connect::<A>();
        let sub = client.subscribe(&q, AckMode::ClientIndividual).unwrap();
        for body in ["first", "second"] {
            client.send_with_receipt(&q, body).unwrap();
        }
        let first = sub.recv_timeout(WAIT).unwrap();
        let second = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(
            (first.text(), second.text()),
            (Some("first"), Some("second"))
        );
        first.ack().unwrap();
        drop(second); // never acknowledged
        drop(sub);
        client.disconnect().unwrap();

        // A new connection gets only the unacknowledged one, marked redelivered.
        let client = broker.connect::<A>();
        let sub = client.subscribe(&q, AckMode::Client).unwrap();
        let again = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(again.text(), Some("second"), "{broker}");
        again.ack().unwrap();
        assert!(
            sub.recv_timeout(Duration::from_millis(300)).is_err(),
            "{broker}: nothing else"
        );
        client.disconnect().unwrap();
    }
}

pub fn nack_takes_the_message_away_from_the_subscription<A: Adapter>() {
    for broker in brokers() {
        for mode in [AckMode::Client, AckMode::ClientIndividual] {
            let q = queue("nack");
            let client = broker.connect::<A>();
            let sub = client.subscribe(&q, mode).unwrap();
            client.send_with_receipt(&q, "reject me").unwrap();
            let message = sub.recv_timeout(WAIT).unwrap();
            message.nack().unwrap();
            // RabbitMQ and the embedded broker requeue (and redeliver at once);
            // ActiveMQ moves it to its DLQ.
            match broker.kind {
                "rabbitmq" | "embedded" => {
                    let again = sub.recv_timeout(WAIT).unwrap();
                    assert_eq!(again.text(), Some("reject me"), "{broker} {mode:?}");
                    assert_eq!(again.header("redelivered"), Some("true"));
                    again.ack().unwrap();
                }
                _ => assert!(
                    sub.recv_timeout(Duration::from_millis(500)).is_err(),
                    "{broker} {mode:?}"
                ),
            }
            client.disconnect().unwrap();
        }
    }
}

pub fn a_nack_in_a_transaction_takes_effect_on_commit_only<A: Adapter>() {
    for broker in brokers() {
        let q = queue("tx-nack");
        let client = broker.connect::<A>();
        let sub = client.subscribe(&q, AckMode::ClientIndividual).unwrap();
        client.send_with_receipt(&q, "reject me later").unwrap();
        let message = sub.recv_timeout(WAIT).unwrap();
        if broker.kind == "activemq" {
            // ActiveMQ refuses it ("Poison ack cannot be transacted") with
            // an ERROR, and closes the connection.
            let events = client.events();
            let tx = client.transaction().unwrap();
            client.acknowledge_in(&message, &tx, true).unwrap();
            let ended = support::wait_for(&events, WAIT, |e| {
                matches!(e, Lifecycle::ConnectionLost(_) | Lifecycle::Closed(_))
            });
            let (Lifecycle::ConnectionLost(CloseReason::ServerError(error))
            | Lifecycle::Closed(CloseReason::ServerError(error))) = &ended
            else {
                panic!("{broker}: {ended:?}")
            };
            let said = error.message.as_deref().unwrap_or_default();
            assert!(
                said.starts_with("Poison ack cannot be transacted"),
                "{said}"
            );
            continue;
        }
        // Aborted: as if the NACK was never sent.
        let tx = client.transaction().unwrap();
        client.acknowledge_in(&message, &tx, true).unwrap();
        tx.abort().unwrap();
        let quiet = Duration::from_millis(400);
        assert!(sub.recv_timeout(quiet).is_err(), "{broker}: after abort");
        // Committed: the NACK happens then, not before.
        let tx = client.transaction().unwrap();
        client.acknowledge_in(&message, &tx, true).unwrap();
        assert!(sub.recv_timeout(quiet).is_err(), "{broker}: before commit");
        tx.commit().unwrap();
        // Requeued, and redelivered at once.
        let again = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(again.text(), Some("reject me later"), "{broker}");
        assert_eq!(again.header("redelivered"), Some("true"), "{broker}");
        again.ack().unwrap();
        client.disconnect().unwrap();
    }
}

pub fn transactions_deliver_on_commit_and_never_after_abort<A: Adapter>() {
    for broker in brokers() {
        let q = queue("tx");
        let client = broker.connect::<A>();
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        let tx = client.transaction().unwrap();
        tx.send(&q, "aborted").unwrap();
        tx.abort().unwrap();
        {
            let _dropped = client.transaction().unwrap();
            _dropped.send(&q, "dropped").unwrap();
        }
        let tx = client.transaction().unwrap();
        tx.send(&q, "committed").unwrap();
        assert!(
            sub.recv_timeout(Duration::from_millis(300)).is_err(),
            "{broker}: nothing before COMMIT"
        );
        tx.commit().unwrap();
        assert_eq!(recv_text(&sub), "committed", "{broker}");
        assert!(sub.recv_timeout(Duration::from_millis(300)).is_err());
        client.disconnect().unwrap();
    }
}

pub fn unsubscribe_stops_delivery<A: Adapter>() {
    for broker in brokers() {
        let q = queue("unsub");
        let client = broker.connect::<A>();
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        client.send_with_receipt(&q, "one").unwrap();
        assert_eq!(recv_text(&sub), "one");
        sub.unsubscribe().unwrap();
        client.send_with_receipt(&q, "two").unwrap();
        // "two" waits in the queue for the next subscriber.
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        assert_eq!(recv_text(&sub), "two", "{broker}");
        client.disconnect().unwrap();
    }
}

pub fn acks_by_handle_or_by_id_and_unsubscribes_wait_for_their_receipts<A: Adapter>() {
    for broker in brokers() {
        for version in Version::ALL {
            let q = queue("receipted-acks");
            let mut config = broker.config();
            config.session.versions = VersionSet::from_iter([version]);
            // 1.0 has only the cumulative mode: acking the second then
            // acknowledges the first again, and still not the third.
            let mode = match version {
                Version::V1_0 => AckMode::Client,
                _ => AckMode::ClientIndividual,
            };
            let client = A::connect(config.clone()).unwrap();
            let sub = client.subscribe(&q, mode).unwrap();
            for n in 1..=3 {
                client.send_with_receipt(&q, format!("m{n}")).unwrap();
            }
            let first = sub.recv_timeout(WAIT).unwrap();
            first.ack_with_receipt(false).unwrap();
            // The second by its id alone, as if the message were long gone.
            let second = sub.recv_timeout(WAIT).unwrap();
            let (subscription, id) = (
                second.header("subscription").unwrap().to_string(),
                second.ack_handle_id().unwrap(),
            );
            drop(second);
            client.ack_id(&subscription, &id, false).unwrap();
            let third = sub.recv_timeout(WAIT).unwrap();
            assert_eq!(third.text(), Some("m3"), "{broker} {version}");
            sub.unsubscribe_with_receipt().unwrap();
            client.disconnect().unwrap();
            // Only the one never acknowledged comes back.
            let client = A::connect(config).unwrap();
            let sub = client.subscribe(&q, mode).unwrap();
            let again = sub.recv_timeout(WAIT).unwrap();
            assert_eq!(again.text(), Some("m3"), "{broker} {version}");
            again.ack_with_receipt(false).unwrap();
            let quiet = Duration::from_millis(300);
            assert!(sub.recv_timeout(quiet).is_err(), "{broker} {version}");
            client.disconnect().unwrap();
        }
    }
}

pub fn caller_chosen_transaction_ids_are_used_and_a_duplicate_refused<A: Adapter>() {
    for broker in brokers() {
        let client = broker.connect::<A>();
        let q = queue("tx-id");
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        let id = format!("order-{}", std::process::id());
        let tx = client.transaction_with_id(&id).unwrap();
        let twice = client.transaction_with_id(&id).map(drop);
        assert!(
            matches!(
                twice,
                Err(Error::Command(CommandError::DuplicateTransaction(ref d))) if *d == id
            ),
            "{broker}: {twice:?}"
        );
        tx.send(&q, "in a named transaction").unwrap();
        tx.commit().unwrap();
        assert_eq!(recv_text(&sub), "in a named transaction", "{broker}");
        // Once ended, the id may be used again.
        let tx = client.transaction_with_id(&id).unwrap();
        tx.abort().unwrap();
        client.disconnect().unwrap();
    }
}

pub fn requests_get_their_own_replies_and_an_unanswered_one_times_out<A: Adapter>() {
    for broker in brokers() {
        let q = queue("rpc");
        let server = broker.connect::<A>();
        let receipted = SubscribeOptions {
            receipt: true,
            ..SubscribeOptions::default()
        };
        let incoming = server.subscribe_with(&q, receipted).unwrap();
        let client = broker.connect::<A>();
        let asks = 4;
        std::thread::scope(|s| {
            let answering = s.spawn(|| {
                for _ in 0..asks {
                    let request = incoming.recv_timeout(WAIT).unwrap();
                    assert!(request.header("reply-to").is_some(), "{broker}");
                    let body = request.text().unwrap().to_uppercase();
                    server.reply(&request, body.into()).unwrap();
                }
            });
            // Asked at once from as many threads: each gets its own reply.
            let waiting: Vec<_> = (0..asks)
                .map(|n| {
                    let (client, q) = (&client, &q);
                    s.spawn(move || {
                        let body = Bytes::from(format!("ping {n}"));
                        client.request(q, body, SendOptions::default(), WAIT)
                    })
                })
                .collect();
            for (n, ask) in waiting.into_iter().enumerate() {
                let reply = ask.join().unwrap().unwrap();
                assert_eq!(reply.text(), Some(format!("PING {n}").as_str()), "{broker}");
            }
            answering.join().unwrap();
        });
        // The caller's own correlation-id is the one carried.
        let mine = SendOptions {
            headers: vec![("correlation-id".into(), "order-42".into())],
            ..SendOptions::default()
        };
        std::thread::scope(|s| {
            s.spawn(|| {
                let request = incoming.recv_timeout(WAIT).unwrap();
                assert_eq!(request.header("correlation-id"), Some("order-42"));
                server.reply(&request, "done".into()).unwrap();
            });
            let reply = client.request(&q, "42?".into(), mine, WAIT).unwrap();
            assert_eq!(reply.header("correlation-id"), Some("order-42"), "{broker}");
            assert_eq!(reply.text(), Some("done"), "{broker}");
        });
        // Nobody answers: it times out when asked, and the client goes on.
        let patience = Duration::from_millis(300);
        let started = std::time::Instant::now();
        let lonely = client.request(
            &queue("rpc-nobody"),
            "anyone?".into(),
            SendOptions::default(),
            patience,
        );
        let took = started.elapsed();
        assert!(
            matches!(lonely, Err(Error::Timeout)),
            "{broker}: {:?}",
            lonely.map(|m| m.text().map(String::from))
        );
        assert!(took >= patience && took < WAIT, "{broker}: {took:?}");
        assert!(client.is_connected(), "{broker}");
        // A message without reply-to cannot be answered.
        client.send_with_receipt(&q, "no reply wanted").unwrap();
        let plain = incoming.recv_timeout(WAIT).unwrap();
        assert!(matches!(
            server.reply(&plain, "?".into()),
            Err(Error::NoReplyTo)
        ));
        client.disconnect().unwrap();
        server.disconnect().unwrap();
    }
}

pub fn replies_to_a_temp_queue_reach_the_unhandled_stream<A: Adapter>() {
    // RabbitMQ (and the embedded broker, as it does) subscribes the
    // connection to a `/temp-queue/` named in `reply-to` by itself: the
    // answers come for a subscription the client never made. ActiveMQ
    // delivers a temporary queue's messages only to a subscription.
    for broker in brokers().into_iter().filter(|b| b.kind != "activemq") {
        let q = queue("temp-reply");
        let server = broker.connect::<A>();
        let receipted = SubscribeOptions {
            receipt: true,
            ..SubscribeOptions::default()
        };
        let incoming = server.subscribe_with(&q, receipted).unwrap();
        let client = broker.connect::<A>();
        let unhandled = client.unhandled();
        for n in 0..2 {
            let options = SendOptions {
                headers: vec![("reply-to".into(), "/temp-queue/suite-by-hand".into())],
                receipt: true,
                ..SendOptions::default()
            };
            client
                .send_with(&q, format!("ask {n}").into(), options)
                .unwrap();
            let request = incoming.recv_timeout(WAIT).unwrap();
            let to = request.header("reply-to").unwrap_or_default().to_string();
            assert!(to.starts_with("/reply-queue/"), "{broker}: {to}");
            server
                .reply(&request, format!("answer {n}").into())
                .unwrap();
            let got = unhandled.recv_timeout(WAIT).unwrap();
            assert_eq!(got.text(), Some(format!("answer {n}").as_str()), "{broker}");
            assert_eq!(
                got.header("subscription"),
                Some("/temp-queue/suite-by-hand")
            );
        }
        // Without a reader they are dropped, and the connection lives on.
        drop(unhandled);
        let options = SendOptions {
            headers: vec![("reply-to".into(), "/temp-queue/suite-by-hand".into())],
            ..SendOptions::default()
        };
        client.send_with(&q, "unread".into(), options).unwrap();
        let request = incoming.recv_timeout(WAIT).unwrap();
        server.reply(&request, "nobody reads this".into()).unwrap();
        client
            .send_with_receipt(&queue("temp-reply-after"), "still here")
            .unwrap();
        assert!(client.is_connected(), "{broker}");
        client.disconnect().unwrap();
        server.disconnect().unwrap();
    }
}

pub fn the_tap_sees_every_frame_both_ways_and_ends_with_the_client<A: Adapter>() {
    use stomp_proto::client::Direction;
    use stomp_proto::Command;
    for broker in brokers() {
        let q = queue("tap");
        let client = broker.connect::<A>();
        let tap = client.tap();
        let receipted = SubscribeOptions {
            receipt: true,
            ack: AckMode::ClientIndividual,
            ..SubscribeOptions::default()
        };
        let sub = client.subscribe_with(&q, receipted).unwrap();
        client.send_with_receipt(&q, "tapped").unwrap();
        let message = sub.recv_timeout(WAIT).unwrap();
        message.ack_with_receipt(false).unwrap();
        client.disconnect().unwrap();
        let mut seen = Vec::new();
        loop {
            match tap.recv_timeout(WAIT) {
                Ok(tapped) => seen.push(tapped),
                Err(crate::Empty::Closed) => break,
                Err(crate::Empty::Timeout) => panic!("{broker}: the tap did not end"),
            }
        }
        let frames = |direction: Direction| -> Vec<Command> {
            seen.iter()
                .filter(|t| t.direction == direction)
                .filter_map(|t| t.frame.as_ref().map(|f| f.command))
                .collect()
        };
        assert_eq!(
            frames(Direction::Out),
            [
                Command::Subscribe,
                Command::Send,
                Command::Ack,
                Command::Disconnect
            ],
            "{broker}"
        );
        let inbound = frames(Direction::In);
        // RabbitMQ over WebSocket answers DISCONNECT with a close instead.
        let receipts = match (broker.kind, broker.transport) {
            ("rabbitmq", "ws" | "wss") => 3,
            _ => 4,
        };
        let count = inbound.iter().filter(|c| **c == Command::Receipt).count();
        assert_eq!(count, receipts, "{broker}: {inbound:?}");
        assert_eq!(
            inbound.iter().filter(|c| **c == Command::Message).count(),
            1,
            "{broker}: {inbound:?}"
        );
        let delivered = seen
            .iter()
            .find_map(|t| t.frame.as_ref().filter(|f| f.command == Command::Message))
            .unwrap();
        assert_eq!(&delivered.body[..], b"tapped", "{broker}");
        // In the order they crossed.
        assert!(seen.windows(2).all(|w| w[0].at <= w[1].at), "{broker}");
    }
}

pub fn a_caller_chosen_receipt_id_goes_out_and_comes_back<A: Adapter>() {
    use stomp_proto::Command;
    for broker in brokers() {
        let q = queue("receipt-id");
        let client = broker.connect::<A>();
        let tap = client.tap();
        let id = format!("order-{}-{}", std::process::id(), A::NAME);
        let options = SendOptions {
            receipt_id: Some(id.clone()),
            ..SendOptions::default()
        };
        client.send_with(&q, "mine".into(), options).unwrap();
        let mut sent = None;
        let mut confirmed = None;
        while confirmed.is_none() {
            let tapped = tap.recv_timeout(WAIT).unwrap();
            let Some(frame) = tapped.frame else { continue };
            match frame.command {
                Command::Send => sent = frame.header("receipt").map(String::from),
                Command::Receipt => confirmed = frame.header("receipt-id").map(String::from),
                _ => {}
            }
        }
        assert_eq!(sent.as_deref(), Some(id.as_str()), "{broker}");
        assert_eq!(confirmed.as_deref(), Some(id.as_str()), "{broker}");
        client.disconnect().unwrap();
    }
}

pub fn the_idle_watchdog_renews_a_quiet_subscription_which_still_delivers<A: Adapter>() {
    for broker in brokers() {
        let q = queue("watchdog");
        let mut config = broker.config();
        config.resubscribe_idle = Some(Duration::from_millis(300));
        let client = A::connect(config).unwrap();
        let events = client.events();
        let receipted = SubscribeOptions {
            receipt: true,
            ack: AckMode::ClientIndividual,
            ..SubscribeOptions::default()
        };
        let sub = client.subscribe_with(&q, receipted).unwrap();
        let renewed = support::wait_for(&events, WAIT, |e| {
            matches!(e, Lifecycle::Resubscribed { .. })
        });
        let Lifecycle::Resubscribed { destination, .. } = renewed else {
            unreachable!()
        };
        assert_eq!(destination, q, "{broker}");
        // Made again, it still delivers (and acknowledges).
        client.send_with_receipt(&q, "after the renewal").unwrap();
        let message = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(message.text(), Some("after the renewal"), "{broker}");
        message.ack_with_receipt(false).unwrap();
        let health = client.health().unwrap();
        assert!(health.connected, "{broker}");
        let mine = health
            .subscriptions
            .iter()
            .find(|s| s.destination == q)
            .unwrap();
        assert_eq!(mine.delivered, 1, "{broker}: {health:?}");
        assert!(mine.resubscribed >= 1, "{broker}: {health:?}");
        assert!(mine.last_delivery.is_some_and(|ago| ago < WAIT), "{broker}");
        assert_eq!(health.pending_receipts, 0, "{broker}: {health:?}");
        assert!(client.is_connected(), "{broker}");
        client.disconnect().unwrap();
    }
}

pub fn confirmed_mode_asks_a_receipt_for_every_request_and_types_a_refusal<A: Adapter>() {
    use stomp_driver::Outcome;
    use stomp_proto::Command;
    for broker in brokers() {
        let q = queue("confirmed");
        let mut config = broker.config();
        config.confirm = true;
        let client = A::connect(config.clone()).unwrap();
        let tap = client.tap();
        let sub = client.subscribe(&q, AckMode::ClientIndividual).unwrap();
        client.send(&q, "confirmed").unwrap();
        let message = sub.recv_timeout(WAIT).unwrap();
        message.ack().unwrap();
        let tx = client.transaction().unwrap();
        tx.send(&q, "in a transaction").unwrap();
        tx.commit().unwrap();
        let again = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(again.text(), Some("in a transaction"), "{broker}");
        again.nack().unwrap_or_else(|e| panic!("{broker}: {e}"));
        // Taken back, it comes again (and is settled before UNSUBSCRIBE:
        // RabbitMQ may otherwise answer a redelivery racing the cancel with
        // an ERROR "Subscription not found").
        // (ActiveMQ sends a NACKed message to its dead-letter queue.)
        let redelivers = broker.kind != "activemq";
        if redelivers {
            let third = sub.recv_timeout(WAIT).unwrap();
            assert_eq!(third.text(), Some("in a transaction"), "{broker}");
            third.ack().unwrap();
        }
        sub.unsubscribe().unwrap();
        // Every request went out with a receipt, and every receipt came
        // (each call above returned only then).
        let mut requests = 0;
        let mut receipts = 0;
        while let Ok(tapped) = tap.recv_timeout(Duration::from_millis(200)) {
            let Some(frame) = tapped.frame else { continue };
            match frame.command {
                Command::Receipt => receipts += 1,
                Command::Message => {}
                // Confirmed by the COMMIT's receipt.
                Command::Send if frame.header("transaction").is_some() => {
                    assert!(frame.header("receipt").is_none(), "{broker}");
                }
                command => {
                    assert!(
                        frame.header("receipt").is_some(),
                        "{broker}: {command} without a receipt: {frame:?}"
                    );
                    requests += 1;
                }
            }
        }
        // SUBSCRIBE, SEND, ACK, BEGIN, COMMIT, NACK, (ACK,) UNSUBSCRIBE.
        let asked = 7 + usize::from(redelivers);
        assert_eq!((requests, receipts), (asked, asked), "{broker}");
        client.disconnect().unwrap();
        // A refusal is typed as such: it did not happen.
        let refused = match broker.kind {
            // Outside its destination prefixes.
            "rabbitmq" => A::connect(config.clone())
                .unwrap()
                .send("/nowhere/at-all", "x"),
            // A message it never delivered.
            "embedded" => A::connect(config.clone())
                .unwrap()
                .ack_id("0", "no-such-message", false),
            _ => continue,
        };
        let error = refused.unwrap_err();
        assert_eq!(error.outcome(), Outcome::Rejected, "{broker}: {error}");
    }
}

pub fn a_broker_error_surfaces_on_the_request_that_caused_it<A: Adapter>() {
    // RabbitMQ refuses destinations outside its prefixes; its ERROR names no
    // receipt, so it ends the connection and fails what was waiting.
    for rabbit in brokers().into_iter().filter(|b| b.kind == "rabbitmq") {
        let client = rabbit.connect::<A>();
        let error = client
            .send_with_receipt("/nowhere/at-all", "x")
            .unwrap_err();
        let Error::Request(RequestError::Server(server)) = error else {
            panic!("{rabbit}: {error:?}")
        };
        assert_eq!(
            server.message.as_deref(),
            Some("Unknown destination"),
            "{rabbit}"
        );
    }
}

pub fn large_bodies_round_trip<A: Adapter>() {
    for broker in brokers() {
        let client = broker.connect::<A>();
        let q = queue("large");
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        for size in [1 << 20, 10 << 20] {
            let body: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            client.send_with_receipt(&q, body.clone()).unwrap();
            let message = sub.recv_timeout(Duration::from_secs(30)).unwrap();
            assert!(message.body()[..] == body[..], "{broker} {size}");
        }
        client.disconnect().unwrap();
    }
}

pub fn ten_thousand_messages_arrive_in_order_exactly_once<A: Adapter>() {
    for broker in brokers() {
        let mut config = broker.config();
        if broker.kind == "rabbitmq" && broker.transport.starts_with("ws") {
            // Debian's RabbitMQ 3.10 Web-STOMP drops a connection whose
            // heart-beat receiver runs when credit flow throttles and then
            // resumes it (`{unexpected_message,resume}` in its log; fixed
            // upstream in 2026). Heart-beats from the broker only keep its
            // receiver off while we still watch the broker.
            config.session.heartbeat = HeartBeat::new(0, 10_000);
        }
        let client = A::connect(config).unwrap();
        let events = client.events();
        let q = queue("order");
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        let expected: Vec<String> = (0..10_000)
            .map(|i| i.to_string())
            .chain(["end".to_string()])
            .collect();
        let (sent, received) = std::thread::scope(|scope| {
            let consumer = scope.spawn(|| {
                let mut received = Vec::with_capacity(10_001);
                while received.last().is_none_or(|last: &String| last != "end") {
                    match sub.recv_timeout(WAIT) {
                        Ok(message) => received.push(message.text().unwrap_or("").to_string()),
                        // Whose side holds the bytes, while the stall lasts.
                        Err(e) => return Err((e, support::sockets(broker.port), received)),
                    }
                }
                Ok(received)
            });
            let sent = (0..10_000)
                .try_for_each(|i| client.send(&q, i.to_string()))
                .and_then(|()| client.send_with_receipt(&q, "end"));
            (sent, consumer.join().unwrap())
        });
        // On failure, say what the connection went through: a stall, a
        // lost connection, a heart-beat timeout, and how far each side got.
        if sent.is_err() || received.as_ref() != Ok(&expected) {
            let history: Vec<_> = std::iter::from_fn(|| events.try_recv()).collect();
            let (why, got) = match &received {
                Ok(got) => ("out of order or lost".to_string(), got),
                Err((e, sockets, got)) => (format!("stalled ({e}); sockets:\n{sockets}\n"), got),
            };
            panic!(
                "{broker}: {why} after {} messages (the last {:?}); sending: {sent:?}; \
                 events: {history:?}; stats: {:?}",
                got.len(),
                got.last(),
                client.stats()
            );
        }
        let stats = client.stats().unwrap();
        assert_eq!(
            stats.frames_in(stomp_proto::Command::Message),
            10_001,
            "{}",
            broker
        );
        client.disconnect().unwrap();
    }
}

pub fn a_full_subscription_stops_reading_after_the_read_ahead_and_loses_nothing<A: Adapter>() {
    // The embedded broker keeps what a connection cannot take in its queue.
    let Some(broker) = one("embedded", "tcp") else {
        return;
    };
    let (capacity, read_ahead, size, count) = (16, 256 << 10, 1024, 8_000);
    let mut config = broker.config();
    config.subscription_capacity = capacity;
    config.read_ahead = read_ahead;
    let consumer = A::connect(config).unwrap();
    let q = queue("back-pressure");
    let sub = consumer.subscribe(&q, AckMode::Auto).unwrap();
    let producer = broker.connect::<A>();
    for i in 0..count {
        let body = format!("{i:>size$}");
        producer.send(&q, body).unwrap();
    }
    producer.send_with_receipt(&q, "end").unwrap();
    // Nobody takes from the subscription: what the consumer reads stops
    // growing once it is full and the read-ahead is used up (and not before).
    let mut read = consumer.stats().unwrap().bytes_in;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = consumer.stats().unwrap().bytes_in;
        if now == read || std::time::Instant::now() > deadline {
            break;
        }
        read = now;
    }
    let total = (count * (size + 150)) as u64;
    // The subscription's messages (a frame's worth of headers each), the
    // rest of the one read that filled it, then exactly the read-ahead: the
    // driver's read budget counts every byte read, also those a reader
    // thread has not handed in yet, so nothing is read past it.
    let bound = (capacity * (size + 150) + (64 << 10) + read_ahead) as u64;
    eprintln!("{}: read {read} octets while full (bound {bound})", A::NAME);
    assert!(
        read >= read_ahead as u64 && read < bound,
        "{}: read {read} of about {total} octets (bound {bound})",
        A::NAME
    );
    // Then everything comes, in order, as the subscription is emptied.
    for i in 0..count {
        let message = sub.recv_timeout(WAIT).unwrap();
        assert_eq!(message.text().map(str::trim_start), Some(&*i.to_string()));
    }
    assert_eq!(recv_text(&sub), "end");
    producer.disconnect().unwrap();
    consumer.disconnect().unwrap();
}

pub fn a_bad_login_is_refused_with_the_brokers_words<A: Adapter>() {
    for broker in brokers() {
        let url = broker.url.replace("guest:guest", "guest:wrong");
        let error = A::connect(broker.config_for(&url)).unwrap_err();
        let Error::Connect(stomp_proto::client::CloseReason::ServerError(server)) = &error else {
            panic!("{broker}: {error:?}")
        };
        assert!(server.message.is_some(), "{broker}: {error}");
    }
}

// TLS: RabbitMQ and the embedded broker check client certificates against
// their CA (`verify_peer`, a certificate optional); we check their
// certificate and name.

fn tls_brokers() -> Vec<&'static Broker> {
    let mut tls = brokers();
    tls.retain(|b| b.transport == "tls");
    tls
}

fn tls_dir_file(name: &str) -> Vec<u8> {
    std::fs::read(format!("{TLS_DIR}/{name}")).unwrap()
}

fn tls_error<C: std::fmt::Debug>(result: Result<C, Error>) -> String {
    match result {
        Err(Error::Connect(reason)) => match reason.root() {
            stomp_proto::client::CloseReason::TransportError(e) => e.to_string(),
            other => panic!("expected a TLS failure, got {other:?}"),
        },
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

pub fn tls_client_certificates_from_the_brokers_ca_are_accepted_and_others_refused<A: Adapter>() {
    for broker in tls_brokers() {
        client_certificates::<A>(broker);
    }
}

fn client_certificates<A: Adapter>(broker: &Broker) {
    let mut config = broker.config();
    config.tls = config
        .tls
        .with_client_cert_pem(tls_dir_file("client.pem"), tls_dir_file("client-key.pem"));
    A::connect(config).unwrap().disconnect().unwrap();

    // A certificate from a CA of our own making: the broker refuses it.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["stranger".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let mut config = broker.config();
    config.tls = config
        .tls
        .with_client_cert_pem(cert.pem(), key.serialize_pem());
    // (Under TLS 1.3 the refusal comes after our side of the handshake.)
    let error = tls_error(A::connect(config));
    // Erlang's TLS says bad_certificate; rustls names the unknown CA.
    let alert = match broker.kind {
        "embedded" => "UnknownCA",
        _ => "BadCertificate",
    };
    assert!(error.contains(alert), "{broker}: {error}");
}

pub fn tls_refuses_a_broker_the_roots_do_not_vouch_for<A: Adapter>() {
    for broker in tls_brokers() {
        // The system's roots know nothing of the throw-away CA.
        let mut config = Config::from_url(broker.url).unwrap();
        config.tls = Tls::default();
        let error = tls_error(A::connect(config));
        assert!(error.contains("UnknownIssuer"), "{broker}: {error}");
    }
}

pub fn tls_checks_the_server_name_given_instead_of_the_host<A: Adapter>() {
    for broker in tls_brokers() {
        // The certificate names 127.0.0.1 and localhost.
        let mut config = broker.config();
        config.tls = config.tls.with_server_name("localhost");
        A::connect(config).unwrap().disconnect().unwrap();

        let mut config = broker.config();
        config.tls = config.tls.with_server_name("elsewhere.test");
        let error = tls_error(A::connect(config));
        assert!(error.contains("not valid for name"), "{broker}: {error}");
    }
}

pub fn bad_tls_settings_fail_before_dialing<A: Adapter>() {
    let mut config = Config::from_url("stomp+ssl://127.0.0.1:1").unwrap();
    config.tls = Tls::default().with_ca_pem("not a certificate");
    let error = A::connect(config).unwrap_err();
    assert!(matches!(error, Error::Tls(_)), "{error:?}");
}

// The broker differences of ../shared/BROKERS.md, each met by the client.

pub fn activemq_stack_traces_stay_in_the_error_body<A: Adapter>() {
    let Some(broker) = one("activemq", "tcp") else {
        return;
    };
    let client = broker.connect::<A>();
    let options = SendOptions {
        headers: vec![("transaction".into(), "nope".into())],
        receipt: true,
        ..SendOptions::default()
    };
    let error = client
        .send_with("/queue/x", Bytes::from("x"), options)
        .unwrap_err();
    let Error::Request(RequestError::Server(server)) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(
        server.message.as_deref(),
        Some("Invalid transaction id: nope")
    );
    // The Java stack trace is there for who wants it, not in the one line.
    let body = String::from_utf8_lossy(&server.frame.body);
    assert!(body.contains("\tat org.apache.activemq"), "{body}");
    assert!(!error.to_string().contains('\n'), "{error}");
    // ActiveMQ named our receipt: the error is that request's, the
    // connection goes on.
    let q = queue("after-error");
    let sub = client.subscribe(&q, AckMode::Auto).unwrap();
    client.send_with_receipt(&q, "still here").unwrap();
    assert_eq!(recv_text(&sub), "still here");
    client.disconnect().unwrap();
}

pub fn activemq_closing_after_a_protocol_error_is_survived_by_reconnecting<A: Adapter>() {
    let Some(broker) = one("activemq", "tcp") else {
        return;
    };
    let mut config = broker.config();
    config.session.reconnect = ReconnectPolicy {
        initial_delay: Duration::from_millis(50),
        ..ReconnectPolicy::failover()
    };
    let client = A::connect(config).unwrap();
    let q = queue("survive");
    let sub = client.subscribe(&q, AckMode::Auto).unwrap();
    // ActiveMQ drops the connection, without an ERROR, on a bare `/queue/`.
    let error = client.send_with_receipt("/queue/", "x").unwrap_err();
    assert_eq!(error, Error::Request(RequestError::ConnectionLost));
    support::wait_reconnected(&client.events(), WAIT);
    // Resubscribed underneath.
    client.send_with_receipt(&q, "after").unwrap();
    assert_eq!(recv_text(&sub), "after");
    client.disconnect().unwrap();
}

pub fn activemq_makes_a_text_message_of_a_send_without_content_length<A: Adapter>() {
    let Some(broker) = one("activemq", "tcp") else {
        return;
    };
    let client = broker.connect::<A>();
    let q = queue("content-length");
    let sub = client.subscribe(&q, AckMode::Auto).unwrap();
    let text = SendOptions {
        content_length: Some(ContentLengthPolicy::WhenRequired),
        receipt: true,
        ..SendOptions::default()
    };
    client.send_with(&q, Bytes::from("as text"), text).unwrap();
    client.send_with_receipt(&q, "as bytes").unwrap();
    // A JMS text message comes back without `content-length`, a bytes
    // message with it.
    let first = sub.recv_timeout(WAIT).unwrap();
    assert_eq!(first.text(), Some("as text"));
    assert_eq!(first.header("content-length"), None);
    let second = sub.recv_timeout(WAIT).unwrap();
    assert_eq!(second.text(), Some("as bytes"));
    assert_eq!(second.header("content-length"), Some("8"));
    client.disconnect().unwrap();

    // The client-wide default, as stomp.py's `auto_content_length=False`.
    let mut config = broker.config();
    config.session.content_length = ContentLengthPolicy::WhenRequired;
    let client = A::connect(config).unwrap();
    let sub = client.subscribe(&q, AckMode::Auto).unwrap();
    client.send_with_receipt(&q, "text again").unwrap();
    let body: Vec<u8> = b"nul\0inside".to_vec();
    client.send_with_receipt(&q, body.clone()).unwrap();
    let third = sub.recv_timeout(WAIT).unwrap();
    assert_eq!(third.header("content-length"), None);
    // A NUL needs the header whatever the setting: a bytes message.
    let fourth = sub.recv_timeout(WAIT).unwrap();
    assert_eq!(&fourth.body()[..], &body[..]);
    assert_eq!(fourth.header("content-length"), Some("10"));
    client.disconnect().unwrap();
}

pub fn the_end_of_line_brokers_write_after_frames_is_no_heartbeat<A: Adapter>() {
    for broker in brokers() {
        let mut config = broker.config();
        config.session.heartbeat = HeartBeat::new(0, 0);
        let client = A::connect(config).unwrap();
        let q = queue("eol");
        let sub = client.subscribe(&q, AckMode::Auto).unwrap();
        for n in 0..40 {
            client.send_with_receipt(&q, format!("m{n}")).unwrap();
        }
        for n in 0..40 {
            assert_eq!(recv_text(&sub), format!("m{n}"), "{broker}");
        }
        // No heart-beats were asked for: none can have been read, however
        // many end-of-line octets followed the frames.
        let stats = client.stats().unwrap();
        assert_eq!(stats.heartbeats_in, 0, "{broker}: {stats:?}");
        client.disconnect().unwrap();
    }
}

pub fn rabbitmq_whole_second_heartbeats_keep_the_connection_alive<A: Adapter>() {
    let Some(broker) = one("rabbitmq", "tcp") else {
        return;
    };
    let mut config = broker.config();
    config.session.heartbeat = HeartBeat::new(1500, 1500);
    let client = A::connect(config).unwrap();
    let negotiated = client.info().heartbeat;
    // RabbitMQ offers whole seconds; we send and expect at the slower of
    // the two sides' intervals.
    for interval in [negotiated.send, negotiated.receive] {
        let interval = interval.expect("heart-beats both ways");
        assert!(interval >= Duration::from_millis(1500), "{negotiated:?}");
    }
    std::thread::sleep(Duration::from_millis(4500));
    let stats = client.stats().unwrap();
    assert!(stats.heartbeats_in >= 1, "{stats:?}");
    assert!(stats.heartbeats_out >= 1, "{stats:?}");
    client.send_with_receipt(&queue("hb"), "alive").unwrap();
    client.disconnect().unwrap();
}

pub fn rabbitmq_websocket_answers_disconnect_with_a_close_which_is_success<A: Adapter>() {
    for transport in ["ws", "wss"] {
        let Some(broker) = one("rabbitmq", transport) else {
            continue;
        };
        let mut config = broker.config();
        // Were the close not taken as the answer, this would be the error.
        config.session.disconnect_timeout = Duration::from_secs(60);
        let client = A::connect(config).unwrap();
        let start = std::time::Instant::now();
        client.disconnect().unwrap();
        assert!(start.elapsed() < Duration::from_secs(5), "{broker}");
    }
}

pub fn a_topic_reaches_every_subscription_confirmed_by_its_receipt<A: Adapter>() {
    for broker in brokers() {
        // A topic keeps nothing for later subscribers: only a subscription
        // the broker has confirmed is sure to get what is sent next.
        let topic = queue("fanout").replacen("/queue/", "/topic/", 1);
        let listeners: Vec<_> = (0..2).map(|_| broker.connect::<A>()).collect();
        let subscriptions: Vec<_> = listeners
            .iter()
            .map(|client| {
                let options = SubscribeOptions {
                    receipt: true,
                    ..SubscribeOptions::default()
                };
                client.subscribe_with(&topic, options).unwrap()
            })
            .collect();
        let sender = broker.connect::<A>();
        for n in 0..3 {
            sender
                .send_with_receipt(&topic, format!("tick {n}"))
                .unwrap();
        }
        for subscription in &subscriptions {
            for n in 0..3 {
                assert_eq!(recv_text(subscription), format!("tick {n}"), "{broker}");
            }
        }
        sender.disconnect().unwrap();
        for client in listeners {
            client.disconnect().unwrap();
        }
    }
}
