//! Client and server sessions against each other, in simulated time.

mod sim;

use std::time::Duration;

use proptest::prelude::*;
use sim::{Broker, Sim};
use stomp_proto::client::{
    ClientConfig, CloseReason, CommandError, Event, RequestError, SendOptions, SubscribeOptions,
};
use stomp_proto::server::{RequestKind, ServerClose, ServerConfig, ServerEvent};
use stomp_proto::{AckMode, HeartBeat, Version, VersionSet};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn connected_info(events: &[Event]) -> Option<&stomp_proto::client::SessionInfo> {
    events.iter().find_map(|e| match e {
        Event::Connected(info) => Some(info),
        _ => None,
    })
}

fn closed_reason(events: &[Event]) -> Option<&CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed(reason) => Some(reason),
        _ => None,
    })
}

#[test]
fn version_negotiation_for_every_pair_of_accepted_versions() {
    let sets: Vec<VersionSet> = (1..8u8)
        .map(|bits| {
            Version::ALL
                .into_iter()
                .filter(|v| bits & (1 << *v as u8) != 0)
                .collect()
        })
        .collect();
    for client_versions in &sets {
        for server_versions in &sets {
            let client = ClientConfig {
                versions: *client_versions,
                ..ClientConfig::default()
            };
            let server = ServerConfig {
                versions: *server_versions,
                ..ServerConfig::default()
            };
            let sim = Sim::new(client, server, Broker::Echo);
            let expected = client_versions.highest_common(*server_versions);
            let info = connected_info(&sim.client_events);
            assert_eq!(
                info.map(|i| i.version),
                expected,
                "{client_versions} vs {server_versions}"
            );
            if expected.is_none() {
                let Some(CloseReason::ServerError(error)) = closed_reason(&sim.client_events)
                else {
                    panic!(
                        "no ERROR for {client_versions} vs {server_versions}: {:?}",
                        sim.client_events
                    );
                };
                assert_eq!(
                    error.message.as_deref(),
                    Some("unsupported protocol version")
                );
                assert_eq!(
                    error.frame.header("version"),
                    Some(&*server_versions.to_string())
                );
            }
        }
    }
}

#[test]
fn heartbeat_matrix_is_negotiated_as_the_spec_says() {
    let values = [0u32, 500, 2000];
    for cx in values {
        for cy in values {
            for sx in values {
                for sy in values {
                    let client = ClientConfig {
                        heartbeat: HeartBeat::new(cx, cy),
                        ..ClientConfig::default()
                    };
                    let server = ServerConfig {
                        heartbeat: HeartBeat::new(sx, sy),
                        ..ServerConfig::default()
                    };
                    let sim = Sim::new(client, server, Broker::Echo);
                    let info = connected_info(&sim.client_events).expect("connected");
                    let both = |a: u32, b: u32| (a != 0 && b != 0).then(|| ms(u64::from(a.max(b))));
                    assert_eq!(info.heartbeat.send, both(cx, sy), "{cx},{cy} / {sx},{sy}");
                    assert_eq!(
                        info.heartbeat.receive,
                        both(cy, sx),
                        "{cx},{cy} / {sx},{sy}"
                    );
                }
            }
        }
    }
}

#[test]
fn an_idle_client_sends_heartbeats_and_a_busy_one_does_not() {
    let client = ClientConfig {
        heartbeat: HeartBeat::new(1000, 0),
        ..ClientConfig::default()
    };
    let server = ServerConfig {
        heartbeat: HeartBeat::new(0, 1000),
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(client.clone(), server.clone(), Broker::Echo);
    sim.advance(ms(10_500));
    assert_eq!(sim.client.stats().heartbeats_out, 10, "one per idle second");
    assert!(!sim.closed, "the server saw life every second");

    let mut busy = Sim::new(client, server, Broker::Echo);
    for _ in 0..20 {
        busy.client
            .send("/queue/x", "tick", SendOptions::default())
            .unwrap();
        busy.advance(ms(500));
    }
    assert_eq!(
        busy.client.stats().heartbeats_out,
        0,
        "frames count as life"
    );
}

/// A client that wants the server's heart-beat every second (grace 2x), and a
/// server that sends one.
fn server_beats_every_second() -> Sim {
    let client = ClientConfig {
        heartbeat: HeartBeat::new(0, 1000),
        heartbeat_grace: 2.0,
        ..ClientConfig::default()
    };
    let server = ServerConfig {
        heartbeat: HeartBeat::new(1000, 0),
        ..ServerConfig::default()
    };
    Sim::new(client, server, Broker::Echo)
}

#[test]
fn a_silent_server_is_declared_dead_after_the_grace() {
    let mut sim = server_beats_every_second();
    sim.advance(ms(5000));
    assert!(!sim.closed, "server heart-beats keep the client happy");
    assert!(sim.client.stats().heartbeats_in >= 4);
    // The broker stops sending anything at t = 5 s.
    sim.drop_to_client = true;
    let stopped = sim.elapsed_ms();
    sim.advance(ms(10_000));
    let events = sim.take_client_events();
    assert!(events.contains(&Event::HeartbeatTimeout), "{events:?}");
    assert_eq!(closed_reason(&events), Some(&CloseReason::HeartbeatTimeout));
    // Last octet arrived at 5000 ms (the server's beat); dead 2 x 1000 ms later.
    assert_eq!(stopped, 5000);
    assert_eq!(sim.client.stats().heartbeat_timeouts, 1);
}

#[test]
fn a_client_that_pauses_reading_does_not_blame_the_server() {
    let mut sim = server_beats_every_second();
    // The owner stops reading (its consumers are behind): nothing arrives.
    let now = sim.now;
    sim.client.handle_reading_paused(now, true);
    sim.drop_to_client = true;
    sim.advance(ms(30_000));
    assert!(!sim.closed, "{:?}", sim.client_events);
    // Reading again, the receive window starts afresh: still silent, the
    // server is dead two intervals later, not at once.
    let now = sim.now;
    sim.client.handle_reading_paused(now, false);
    sim.advance(ms(1999));
    assert!(!sim.closed);
    sim.advance(ms(1));
    assert_eq!(
        closed_reason(&sim.client_events),
        Some(&CloseReason::HeartbeatTimeout)
    );
}

#[test]
fn a_silent_client_is_dropped_by_the_server() {
    let client = ClientConfig {
        heartbeat: HeartBeat::new(1000, 0),
        ..ClientConfig::default()
    };
    let mut sim = Sim::new(client, ServerConfig::default(), Broker::Echo);
    sim.drop_to_server = true;
    sim.advance(ms(60_000));
    assert!(sim
        .server_events
        .contains(&ServerEvent::Closed(ServerClose::HeartbeatTimeout)));
    assert_eq!(
        closed_reason(&sim.client_events),
        Some(&CloseReason::TransportClosed)
    );
}

#[test]
fn receipts_resolve_and_time_out() {
    let mut sim = Sim::connected();
    let receipt = sim
        .client
        .send("/queue/a", "x", SendOptions::with_receipt())
        .unwrap()
        .unwrap();
    sim.run();
    assert!(sim.client_events.contains(&Event::Receipt(receipt)));

    let server = ServerConfig {
        auto_receipts: false,
        ..ServerConfig::default()
    };
    let client = ClientConfig {
        receipt_timeout: ms(3000),
        ..ClientConfig::default()
    };
    let mut sim = Sim::new(client, server, Broker::Echo);
    sim.advance(ms(1000));
    let receipt = sim
        .client
        .send("/queue/a", "x", SendOptions::with_receipt())
        .unwrap()
        .unwrap();
    sim.advance(ms(2999));
    assert!(
        !sim.client_events
            .iter()
            .any(|e| matches!(e, Event::RequestFailed { .. })),
        "{:?} at {} ms",
        sim.client_events,
        sim.elapsed_ms()
    );
    sim.advance(ms(1));
    assert!(sim.client_events.contains(&Event::RequestFailed {
        receipt,
        error: RequestError::Timeout
    }));
    assert_eq!(sim.client.stats().receipt_timeouts, 1);
    assert!(
        sim.client.is_connected(),
        "a late receipt does not end the session"
    );
}

#[test]
fn an_error_naming_a_receipt_fails_exactly_that_request() {
    let server = ServerConfig {
        auto_receipts: false,
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(ClientConfig::default(), server, Broker::Echo);
    let first = sim
        .client
        .send("/queue/a", "1", SendOptions::with_receipt())
        .unwrap()
        .unwrap();
    let second = sim
        .client
        .send("/queue/a", "2", SendOptions::with_receipt())
        .unwrap()
        .unwrap();
    sim.run();
    sim.server.receipt(first.as_str());
    sim.run();
    // A broker that keeps the connection after a semantic error (as ActiveMQ does)
    // is simulated by writing the ERROR by hand rather than through `error()`.
    let error = b"ERROR\nmessage:no such queue\nreceipt-id:";
    let mut frame = error.to_vec();
    frame.extend_from_slice(second.as_str().as_bytes());
    frame.extend_from_slice(b"\n\nqueue details\0");
    let now = sim.now;
    sim.client.handle_input(now, &frame);
    sim.run();
    let events = sim.take_client_events();
    assert!(events.contains(&Event::Receipt(first)));
    let failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::RequestFailed {
                receipt,
                error: RequestError::Server(err),
            } => Some((receipt.clone(), err.message.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [(second, Some("no such queue".to_string()))]);
    assert!(sim.client.is_connected());
}

#[test]
fn an_error_naming_no_receipt_fails_everything_and_ends_the_session() {
    let server = ServerConfig {
        auto_receipts: false,
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(ClientConfig::default(), server, Broker::Echo);
    let a = sim
        .client
        .send("/queue/a", "1", SendOptions::with_receipt())
        .unwrap()
        .unwrap();
    let b = sim
        .client
        .subscribe(
            "/queue/b",
            SubscribeOptions {
                receipt: true,
                ..Default::default()
            },
        )
        .unwrap()
        .1
        .unwrap();
    sim.run();
    sim.server.error(None, "resource limit", "too many things");
    sim.run();
    let events = sim.take_client_events();
    let mut failed: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::RequestFailed {
                receipt,
                error: RequestError::Server(err),
            } => {
                assert_eq!(err.message.as_deref(), Some("resource limit"));
                assert_eq!(&err.frame.body[..], b"too many things");
                Some(receipt.clone())
            }
            _ => None,
        })
        .collect();
    failed.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(failed, expected);
    let Some(CloseReason::ServerError(error)) = closed_reason(&events) else {
        panic!("{events:?}")
    };
    assert_eq!(error.message.as_deref(), Some("resource limit"));
    assert!(
        matches!(events.last(), Some(Event::Closed(_))),
        "Closed comes last"
    );
}

#[test]
fn messages_carry_the_ack_headers_of_the_negotiated_version() {
    for version in Version::ALL {
        let client = ClientConfig {
            versions: VersionSet::only(version),
            ..ClientConfig::default()
        };
        let mut sim = Sim::new(client, ServerConfig::default(), Broker::Echo);
        let mode = if version == Version::V1_0 {
            AckMode::Client
        } else {
            AckMode::ClientIndividual
        };
        let options = SubscribeOptions {
            ack: mode,
            ..Default::default()
        };
        let (sub, _) = sim.client.subscribe("/queue/in", options).unwrap();
        // 1.0 has no escaping: a LF in a header value cannot be sent, and the
        // session says so instead of corrupting the stream.
        let value = if version == Version::V1_0 {
            "a:b"
        } else {
            "a:b\nc"
        };
        if version == Version::V1_0 {
            let with_lf = SendOptions {
                headers: vec![("x-k".into(), "a\nb".into())],
                ..Default::default()
            };
            let refused = sim.client.send("/queue/in", "payload", with_lf);
            assert!(
                matches!(refused, Err(CommandError::Encode(_))),
                "{refused:?}"
            );
        }
        let options = SendOptions {
            headers: vec![("x-k".into(), value.into())],
            ..Default::default()
        };
        sim.client
            .send("/queue/in", "payload", options)
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        sim.run();
        let message = sim
            .client_events
            .iter()
            .find_map(|e| match e {
                Event::Message(m) => Some(m.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{version}: no message in {:?}", sim.client_events));
        assert_eq!(message.subscription, sub);
        assert_eq!(&message.body()[..], b"payload");
        assert_eq!(
            message.frame.header("x-k"),
            Some(value),
            "header round trip in {version}"
        );
        let handle = message.ack.clone().expect("an ack handle");
        sim.client.ack(&handle, None, false).unwrap();
        if version > Version::V1_0 {
            sim.client.nack(&handle, None, false).unwrap();
        } else {
            assert_eq!(
                sim.client.nack(&handle, None, false),
                Err(CommandError::NackUnsupported)
            );
        }
        sim.run();
        let acks: Vec<RequestKind> = sim
            .server_requests()
            .into_iter()
            .filter(|k| matches!(k, RequestKind::Ack { .. }))
            .collect();
        let (id, subscription) = match version {
            Version::V1_2 => ("ack-m-1".to_string(), None),
            Version::V1_1 => ("m-1".to_string(), Some(sub.to_string())),
            Version::V1_0 => ("m-1".to_string(), None),
        };
        let expected_ack = RequestKind::Ack {
            id: id.clone(),
            subscription: subscription.clone(),
            transaction: None,
            nack: false,
        };
        assert_eq!(acks.first(), Some(&expected_ack), "{version}");
        if version > Version::V1_0 {
            let expected_nack = RequestKind::Ack {
                id,
                subscription,
                transaction: None,
                nack: true,
            };
            assert_eq!(acks.get(1), Some(&expected_nack), "{version}");
        }
    }
}

#[test]
fn auto_subscriptions_get_no_ack_handle() {
    // The echo broker adds `ack` to every MESSAGE, as some brokers do: the
    // subscription's mode decides, in every version.
    for version in Version::ALL {
        let client = ClientConfig {
            versions: VersionSet::only(version),
            ..ClientConfig::default()
        };
        let mut sim = Sim::new(client, ServerConfig::default(), Broker::Echo);
        sim.client
            .subscribe("/topic/t", SubscribeOptions::default())
            .unwrap();
        sim.client
            .send("/topic/t", "x", SendOptions::default())
            .unwrap();
        sim.run();
        let Some(Event::Message(m)) = sim
            .client_events
            .iter()
            .find(|e| matches!(e, Event::Message(_)))
        else {
            panic!("{version}: no message");
        };
        assert!(m.frame.header("ack").is_some() || version != Version::V1_2);
        assert_eq!(m.ack, None, "{version}");
    }
}

#[test]
fn transactions_tag_their_frames_and_unknown_ones_stay_local() {
    let mut sim = Sim::connected();
    let (tx, _) = sim.client.begin(None, false).unwrap();
    sim.client
        .send(
            "/queue/t",
            "in tx",
            SendOptions {
                transaction: Some(tx.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    sim.client.commit(&tx, false).unwrap();
    sim.run();
    let wire = String::from_utf8_lossy(&sim.to_server).into_owned();
    let send_at = wire.find("SEND\n").expect("a SEND on the wire");
    let send_frame = &wire[send_at..send_at + wire[send_at..].find('\0').unwrap()];
    assert!(
        send_frame.contains(&format!("\ntransaction:{tx}\n")),
        "{send_frame:?}"
    );
    let requests = sim.server_requests();
    assert!(requests.contains(&RequestKind::Begin {
        transaction: tx.to_string()
    }));
    assert!(requests.contains(&RequestKind::Send {
        destination: "/queue/t".into(),
        transaction: Some(tx.to_string())
    }));
    assert!(requests.contains(&RequestKind::Commit {
        transaction: tx.to_string()
    }));
    // Committed: the id is gone. Aborting it, or anything never begun, sends nothing.
    let before = sim.to_server.len();
    assert_eq!(
        sim.client.abort(&tx, false),
        Err(CommandError::UnknownTransaction(tx.to_string()))
    );
    assert_eq!(
        sim.client.send(
            "/q",
            "x",
            SendOptions {
                transaction: Some("nope".into()),
                ..Default::default()
            }
        ),
        Err(CommandError::UnknownTransaction("nope".into()))
    );
    sim.run();
    assert_eq!(sim.to_server.len(), before, "local errors write nothing");
}

#[test]
fn graceful_disconnect_waits_for_its_receipt() {
    let mut sim = Sim::connected();
    sim.client.disconnect().unwrap();
    assert_eq!(
        sim.client.send("/q", "late", SendOptions::default()),
        Err(CommandError::NotConnected)
    );
    sim.run();
    assert_eq!(
        closed_reason(&sim.client_events),
        Some(&CloseReason::Disconnected)
    );
    assert!(sim
        .server_events
        .contains(&ServerEvent::Closed(ServerClose::Disconnected)));
}

#[test]
fn a_missing_disconnect_receipt_times_out() {
    let client = ClientConfig {
        disconnect_timeout: ms(2000),
        ..ClientConfig::default()
    };
    let mut sim = Sim::new(client, ServerConfig::default(), Broker::Echo);
    sim.drop_to_server = true;
    sim.client.disconnect().unwrap();
    sim.advance(ms(1999));
    assert_eq!(closed_reason(&sim.client_events), None);
    sim.advance(ms(1));
    assert_eq!(
        closed_reason(&sim.client_events),
        Some(&CloseReason::DisconnectTimeout)
    );
}

#[test]
fn a_server_that_never_answers_connect_times_out() {
    let client = ClientConfig {
        connect_timeout: ms(5000),
        ..ClientConfig::default()
    };
    let mut sim = Sim::new(client, ServerConfig::default(), Broker::Manual);
    sim.advance(ms(4999));
    assert!(!sim.closed);
    sim.advance(ms(1));
    assert_eq!(
        closed_reason(&sim.client_events).map(CloseReason::root),
        Some(&CloseReason::ConnectTimeout)
    );
}

#[test]
fn the_server_rejects_invalid_requests_with_an_error_naming_the_problem() {
    let mut sim = Sim::connected();
    let now = sim.now;
    // A SEND without destination, straight onto the wire.
    sim.server
        .handle_input(now, b"SEND\nreceipt:77\n\nno destination\0");
    sim.run();
    let Some(CloseReason::ServerError(error)) = closed_reason(&sim.client_events) else {
        panic!("{:?}", sim.client_events)
    };
    assert_eq!(
        error.message.as_deref(),
        Some("SEND frame has no \"destination\" header")
    );
    assert_eq!(error.frame.header("receipt-id"), Some("77"));
    assert!(sim
        .server_events
        .iter()
        .any(|e| matches!(e, ServerEvent::Closed(ServerClose::ProtocolError(_)))));
}

#[test]
fn the_server_refuses_an_empty_destination_as_the_real_brokers_do() {
    for frame in [
        &b"SEND\ndestination:\nreceipt:78\n\nbody\0"[..],
        &b"SUBSCRIBE\nid:1\ndestination:\nreceipt:78\n\n\0"[..],
    ] {
        let mut sim = Sim::connected();
        let now = sim.now;
        sim.server.handle_input(now, frame);
        sim.run();
        let Some(CloseReason::ServerError(error)) = closed_reason(&sim.client_events) else {
            panic!("{:?}", sim.client_events)
        };
        let message = error.message.as_deref().unwrap_or("");
        assert!(
            message.ends_with("frame has an empty \"destination\" header"),
            "{message}"
        );
        assert_eq!(error.frame.header("receipt-id"), Some("78"));
    }
}

#[test]
fn the_server_wants_connect_first() {
    let t0 = std::time::Instant::now();
    let mut server = stomp_proto::server::ServerSession::new(ServerConfig::default(), t0);
    server.handle_input(t0, b"SEND\ndestination:/q\n\n\0");
    let out = server.poll_transmit(t0).unwrap();
    assert!(
        out.starts_with(b"ERROR\nmessage:not connected\n"),
        "{out:?}"
    );
    assert!(server.is_finished());
    assert_eq!(
        server.poll_event(),
        Some(ServerEvent::Closed(ServerClose::ProtocolError(
            "not connected".into()
        )))
    );
}

#[test]
fn backpressure_is_an_error_the_caller_can_act_on() {
    let client = ClientConfig {
        max_outgoing: 10_000,
        ..ClientConfig::default()
    };
    let mut sim = Sim::new(client, ServerConfig::default(), Broker::Echo);
    let body = vec![b'x'; 6000];
    sim.client
        .send("/q", body.clone(), SendOptions::default())
        .unwrap();
    assert_eq!(
        sim.client.send("/q", body.clone(), SendOptions::default()),
        Err(CommandError::Backpressure)
    );
    sim.run(); // the transport drains the queue
    sim.client.send("/q", body, SendOptions::default()).unwrap();
}

#[test]
fn undelivered_events_hold_input_back() {
    let client = ClientConfig {
        max_events: 3,
        ..ClientConfig::default()
    };
    let mut sim = Sim::new(client, ServerConfig::default(), Broker::Manual);
    let now = sim.now;
    sim.server.accept(now, None);
    let connected = sim.server.poll_transmit(now).unwrap();
    sim.client.handle_input(now, &connected);
    let mut burst = Vec::new();
    for i in 0..10 {
        burst.extend_from_slice(
            format!("MESSAGE\nsubscription:s\ndestination:/q\nmessage-id:{i}\n\n{i}\0").as_bytes(),
        );
    }
    sim.client.handle_input(now, &burst);
    assert!(!sim.client.wants_input(), "three events wait");
    let mut bodies = Vec::new();
    while let Some(event) = sim.client.poll_event() {
        if let Event::Message(m) = event {
            bodies.push(String::from_utf8(m.body().to_vec()).unwrap());
        }
    }
    assert_eq!(
        bodies,
        (0..10).map(|i| i.to_string()).collect::<Vec<_>>(),
        "nothing lost, in order"
    );
    assert!(sim.client.wants_input());
}

#[test]
fn garbage_from_the_server_ends_the_session_with_the_decode_error() {
    let mut sim = Sim::connected();
    let now = sim.now;
    let before = sim.to_client.len();
    sim.client.handle_input(now, b"HELLO\n\n\0");
    sim.run();
    let events = sim.take_client_events();
    let Some(CloseReason::Protocol(e)) = closed_reason(&events) else {
        panic!("{events:?}")
    };
    assert_eq!(
        e.offset(),
        before as u64,
        "the offset counts from the stream start"
    );
}

#[test]
fn stats_count_frames_both_ways() {
    let mut sim = Sim::connected();
    sim.client
        .subscribe("/queue/s", SubscribeOptions::default())
        .unwrap();
    for _ in 0..3 {
        sim.client
            .send("/queue/s", "m", SendOptions::default())
            .unwrap();
    }
    sim.run();
    let stats = sim.client.stats();
    use stomp_proto::Command::*;
    assert_eq!(
        (
            stats.frames_out(Connect),
            stats.frames_out(Subscribe),
            stats.frames_out(Send)
        ),
        (1, 1, 3)
    );
    assert_eq!(
        (stats.frames_in(Connected), stats.frames_in(Message)),
        (1, 3)
    );
    assert_eq!(stats.bytes_out, sim.to_server.len() as u64);
    assert_eq!(stats.bytes_in, sim.to_client.len() as u64);
    assert_eq!(sim.client.subscriptions().len(), 1);
}

/// Client events with the parts that depend on timing or identity removed.
fn scenario_events(chunk: usize) -> Vec<Event> {
    let client = ClientConfig {
        heartbeat: HeartBeat::new(0, 0),
        ..ClientConfig::default()
    };
    let mut sim = Sim::new(client, ServerConfig::default(), Broker::Echo);
    sim.chunk = chunk;
    sim.run();
    let (sub, _) = sim
        .client
        .subscribe(
            "/queue/p",
            SubscribeOptions {
                ack: AckMode::Client,
                receipt: true,
                ..Default::default()
            },
        )
        .unwrap();
    for i in 0..5 {
        let body = vec![i as u8; 50 + i * 3000];
        sim.client
            .send(
                "/queue/p",
                body,
                SendOptions {
                    receipt: i % 2 == 0,
                    headers: vec![("n".into(), format!("{i}:\\"))],
                    ..Default::default()
                },
            )
            .unwrap();
    }
    sim.run();
    sim.client.unsubscribe(&sub, true).unwrap();
    sim.client.disconnect().unwrap();
    sim.run();
    sim.take_client_events()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// However the byte stream is chunked, the client sees the same events.
    #[test]
    fn chunking_does_not_change_the_events(chunk in 1usize..400) {
        let whole = scenario_events(usize::MAX);
        prop_assert!(whole.iter().filter(|e| matches!(e, Event::Message(_))).count() == 5);
        prop_assert_eq!(scenario_events(chunk), whole);
    }
}

#[test]
fn an_end_of_line_after_each_frame_is_not_a_heartbeat() {
    let client = ClientConfig {
        max_events: 3,
        ..ClientConfig::default()
    };
    let mut sim = Sim::new(client, ServerConfig::default(), Broker::Manual);
    let now = sim.now;
    sim.server.accept(now, None);
    let mut connected = sim.server.poll_transmit(now).unwrap().to_vec();
    connected.push(b'\n');
    sim.client.handle_input(now, &connected);
    // RabbitMQ's way: an end of line after every frame, in the same write;
    // ten of them, more than the events that may wait, so the decoding
    // stops and resumes between a frame and its end of line.
    let mut burst = Vec::new();
    for i in 0..10 {
        let frame = format!("MESSAGE\nsubscription:s\ndestination:/q\nmessage-id:{i}\n\n{i}\0\n");
        burst.extend_from_slice(frame.as_bytes());
    }
    sim.client.handle_input(now, &burst);
    while sim.client.poll_event().is_some() {}
    assert_eq!(
        sim.client.stats().frames_in(stomp_proto::Command::Message),
        10
    );
    assert_eq!(sim.client.stats().heartbeats_in, 0);
    // Ends of line read on their own are heart-beats, after a frame too.
    for n in 1..=3 {
        sim.client.handle_input(now, b"\n");
        assert_eq!(sim.client.stats().heartbeats_in, n);
    }
    sim.client.handle_input(now, b"\r\n\n");
    assert_eq!(sim.client.stats().heartbeats_in, 5);
    sim.client.handle_input(
        now,
        b"MESSAGE\nsubscription:s\ndestination:/q\nmessage-id:x\n\n\0\n\n",
    );
    while sim.client.poll_event().is_some() {}
    assert_eq!(
        sim.client.stats().heartbeats_in,
        6,
        "the second end of line stands alone"
    );
}

#[test]
fn content_length_is_left_out_when_the_send_or_the_client_asks() {
    let wire = |client: ClientConfig, options: SendOptions, body: &'static [u8]| {
        let mut sim = Sim::new(client, ServerConfig::default(), Broker::Manual);
        let now = sim.now;
        sim.server.accept(now, None);
        let connected = sim.server.poll_transmit(now).unwrap();
        sim.client.handle_input(now, &connected);
        while let Some(out) = sim.client.poll_transmit(now) {
            drop(out);
        }
        sim.client.send("/queue/a", body, options).unwrap();
        let mut sent = Vec::new();
        while let Some(out) = sim.client.poll_transmit(now) {
            sent.extend_from_slice(&out);
        }
        String::from_utf8_lossy(&sent).into_owned()
    };
    let without = SendOptions {
        content_length: Some(stomp_proto::ContentLengthPolicy::WhenRequired),
        ..SendOptions::default()
    };
    let sent = wire(ClientConfig::default(), SendOptions::default(), b"text");
    assert!(sent.contains("content-length:4\n"), "{sent:?}");
    let sent = wire(ClientConfig::default(), without.clone(), b"text");
    assert_eq!(sent, "SEND\ndestination:/queue/a\n\ntext\0");
    // A NUL in the body needs the header all the same.
    let sent = wire(ClientConfig::default(), without.clone(), b"a\0b");
    assert!(sent.contains("content-length:3\n"), "{sent:?}");
    // The client's default, and a send that overrides it.
    let texts = ClientConfig {
        content_length: stomp_proto::ContentLengthPolicy::WhenRequired,
        ..ClientConfig::default()
    };
    let sent = wire(texts.clone(), SendOptions::default(), b"text");
    assert!(!sent.contains("content-length"), "{sent:?}");
    let bytes = SendOptions {
        content_length: Some(stomp_proto::ContentLengthPolicy::WhenNonEmpty),
        ..SendOptions::default()
    };
    let sent = wire(texts, bytes, b"text");
    assert!(sent.contains("content-length:4\n"), "{sent:?}");
}

/// The tap sees every frame both ways in the order they crossed, and the
/// heart-beats, once asked for; it drops the oldest past its capacity and
/// counts them; off, it records nothing.
#[test]
fn the_tap_sees_every_frame_and_heartbeat_in_order_and_stays_bounded() {
    use stomp_proto::client::Direction;
    use stomp_proto::Command;
    let heartbeat = HeartBeat::new(100, 100);
    let client = ClientConfig {
        heartbeat,
        ..ClientConfig::default()
    };
    let server = ServerConfig {
        heartbeat,
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(client, server, Broker::Echo);
    assert!(sim.client.poll_tap().is_none(), "off until asked for");
    sim.client.set_tap(100);
    let options = SubscribeOptions::default();
    sim.client.subscribe("/queue/tap", options).unwrap();
    sim.client
        .send("/queue/tap", "hello", SendOptions::with_receipt())
        .unwrap();
    sim.run();
    sim.advance(ms(250));
    let mut seen = Vec::new();
    while let Some(tapped) = sim.client.poll_tap() {
        seen.push((tapped.direction, tapped.frame.map(|f| f.command)));
    }
    let frames: Vec<_> = seen.iter().filter(|(_, f)| f.is_some()).cloned().collect();
    assert_eq!(
        frames,
        vec![
            (Direction::Out, Some(Command::Subscribe)),
            (Direction::Out, Some(Command::Send)),
            // The echo broker confirms before it delivers.
            (Direction::In, Some(Command::Receipt)),
            (Direction::In, Some(Command::Message)),
        ],
        "{seen:?}"
    );
    let beats = |d: Direction| seen.iter().filter(|s| **s == (d, None)).count();
    assert!(beats(Direction::Out) >= 1, "{seen:?}");
    assert!(beats(Direction::In) >= 1, "{seen:?}");
    assert_eq!(sim.client.tap_dropped(), 0);
    // Bounded: the oldest go.
    sim.client.set_tap(2);
    for n in 0..5 {
        sim.client
            .send("/queue/other", format!("{n}"), SendOptions::default())
            .unwrap();
    }
    let kept: Vec<_> = std::iter::from_fn(|| sim.client.poll_tap()).collect();
    assert_eq!(kept.len(), 2);
    assert_eq!(
        kept[1].frame.as_ref().map(|f| f.body.clone()),
        Some("4".into())
    );
    assert_eq!(sim.client.tap_dropped(), 3);
    // Off again: nothing more.
    sim.client.set_tap(0);
    sim.client
        .send("/queue/other", "x", SendOptions::default())
        .unwrap();
    assert!(sim.client.poll_tap().is_none());
}

/// A receipt id the caller chose goes on the wire as it is and comes back
/// in the RECEIPT; while it is pending the same id is refused, and the
/// session's own numbering never takes it.
#[test]
fn a_caller_chosen_receipt_id_is_used_and_a_pending_one_refused() {
    let mut sim = Sim::connected();
    let mine = |id: &str| SendOptions {
        receipt_id: Some(id.into()),
        ..SendOptions::default()
    };
    let receipt = sim.client.send("/queue/r", "a", mine("order-7")).unwrap();
    assert_eq!(receipt.as_ref().map(|r| r.as_str()), Some("order-7"));
    assert_eq!(
        sim.client.send("/queue/r", "b", mine("order-7")),
        Err(CommandError::DuplicateReceipt("order-7".into()))
    );
    // One that looks like the session's own next number.
    let taken = sim.client.send("/queue/r", "c", mine("r-0")).unwrap();
    let own = sim
        .client
        .send("/queue/r", "d", SendOptions::with_receipt())
        .unwrap();
    assert_ne!(own, taken);
    sim.run();
    let confirmed: Vec<String> = sim
        .take_client_events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Receipt(id) => Some(id.as_str().to_string()),
            _ => None,
        })
        .collect();
    assert!(confirmed.contains(&"order-7".to_string()), "{confirmed:?}");
    assert!(confirmed.contains(&"r-0".to_string()), "{confirmed:?}");
    assert_eq!(confirmed.len(), 3, "{confirmed:?}");
    // Confirmed, the id may be used again.
    assert!(sim.client.send("/queue/r", "e", mine("order-7")).is_ok());
}

/// `resubscribe` queues UNSUBSCRIBE and SUBSCRIBE together with the same
/// id, destination and headers, and the subscription keeps its place in
/// the replay order; an unknown id is refused and nothing is sent.
#[test]
fn resubscribe_makes_a_subscription_again_in_place() {
    let mut sim = Sim::connected();
    let headers = vec![("selector".to_string(), "x = 1".to_string())];
    for (id, destination) in [("a", "/queue/a"), ("b", "/queue/b")] {
        let options = SubscribeOptions {
            id: Some(id.into()),
            headers: headers.clone(),
            ..SubscribeOptions::default()
        };
        sim.client.subscribe(destination, options).unwrap();
    }
    sim.run();
    let before = sim.server_requests().len();
    sim.client.resubscribe(&"a".into()).unwrap();
    assert_eq!(
        sim.client.resubscribe(&"nope".into()),
        Err(CommandError::UnknownSubscription("nope".into()))
    );
    sim.run();
    let requests = sim.server_requests();
    let renewed: Vec<String> = requests[before..]
        .iter()
        .map(|r| format!("{r:?}"))
        .collect();
    assert_eq!(renewed.len(), 2, "{renewed:?}");
    assert!(renewed[0].starts_with("Unsubscribe"), "{renewed:?}");
    assert!(
        renewed[1].starts_with("Subscribe") && renewed[1].contains("/queue/a"),
        "{renewed:?}"
    );
    let order: Vec<String> = sim
        .client
        .subscriptions()
        .into_iter()
        .map(|s| {
            assert_eq!(s.headers, headers);
            s.id.as_str().to_string()
        })
        .collect();
    assert_eq!(order, ["a", "b"]);
}
