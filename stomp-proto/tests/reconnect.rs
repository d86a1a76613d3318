//! Reconnect scenarios in simulated time: dials across a host list with
//! backoff, resubscription, the unconfirmed-send policy, giving up.

mod sim;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sim::{Broker, Sim};
use stomp_proto::client::{
    ClientConfig, CloseReason, CredentialSource, Credentials, Event, ReceiptId, RequestError,
    SendOptions, SubscribeOptions,
};
use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
use stomp_proto::server::{Request, ServerConfig, ServerEvent};
use stomp_proto::uri::Endpoint;
use stomp_proto::{AckMode, HeartBeat};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Three hosts, no heart-beats (so only the reconnect timers run), and a
/// reconnect policy with exact numbers.
fn config(policy: ReconnectPolicy) -> ClientConfig {
    ClientConfig {
        hosts: vec![
            Endpoint::tcp("a", 61613),
            Endpoint::tcp("b", 61613),
            Endpoint::tcp("c", 61613),
        ],
        reconnect: policy,
        heartbeat: HeartBeat::OFF,
        ..ClientConfig::default()
    }
}

fn forever(seed: u64) -> ReconnectPolicy {
    ReconnectPolicy {
        initial_delay: ms(100),
        max_delay: ms(1000),
        multiplier: 2.0,
        max_attempts: None,
        randomize: false,
        jitter: 0.5,
        seed,
        ..ReconnectPolicy::failover()
    }
}

fn connects(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Connected(_)))
        .count()
}

fn closed_reason(events: &[Event]) -> Option<&CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed(reason) => Some(reason),
        _ => None,
    })
}

fn failures(events: &[Event]) -> Vec<(String, RequestError)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::RequestFailed { receipt, error } => Some((receipt.to_string(), error.clone())),
            _ => None,
        })
        .collect()
}

/// The requests the server saw since its last CONNECT.
fn requests_since_last_connect(sim: &Sim) -> Vec<Request> {
    let start = sim
        .server_events
        .iter()
        .rposition(|e| matches!(e, ServerEvent::Connect(_)))
        .expect("a CONNECT");
    sim.server_events[start..]
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Request(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// Runs the loss-and-recovery script with `seed`: connected to `a`; all
/// hosts go down at 1 s and the link is cut; `c` comes back at 3 s.
fn outage(seed: u64) -> Sim {
    let mut sim = Sim::new(config(forever(seed)), ServerConfig::default(), Broker::Echo);
    sim.advance(ms(1000));
    sim.up = vec![false; 3];
    sim.cut();
    sim.advance(ms(2000));
    sim.up[2] = true;
    sim.advance(ms(2000));
    sim
}

#[test]
fn reconnect_dials_every_host_per_pass_with_seeded_backoff() {
    let sim = outage(42);
    let dials = &sim.dials;
    // The first connect to a, then passes over b, c and a back to back:
    // the host of the lost connection comes last.
    assert_eq!(dials[0], (0, 0, 0));
    let passes: Vec<&[(u128, usize, u32)]> = dials[1..].chunks(3).collect();
    for (i, pass) in passes.iter().enumerate() {
        let attempt = i as u32 + 1;
        let hosts: Vec<usize> = pass.iter().map(|d| d.1).collect();
        assert_eq!(
            &hosts,
            &[1, 2, 0][..hosts.len()],
            "pass {attempt} in list order, from the host after the lost one"
        );
        assert!(pass.iter().all(|d| d.0 == pass[0].0 && d.2 == attempt));
    }
    // Each wait is the doubled base delay (100 ms up to 1 s), shortened by
    // jitter of at most half.
    let mut previous_end = 1000;
    for (i, pass) in passes.iter().enumerate() {
        let base = (100u128 << i).min(1000);
        let waited = pass[0].0 - previous_end;
        assert!(
            waited >= base / 2 && waited <= base,
            "pass {}: waited {waited} ms, base {base} ms",
            i + 1
        );
        previous_end = pass[0].0;
    }
    // The exact times for seed 42 (checked against an independent SplitMix64
    // by hand): waits of 62, 184, 344, 662 and 980 ms.
    let times: Vec<u128> = passes.iter().map(|p| p[0].0).collect();
    assert_eq!(times, [1062, 1246, 1591, 2253, 3234], "{dials:?}");
    // c came back at 3 s: pass 5 tried b, then reached c.
    assert_eq!(dials.len(), 15);
    let info = sim
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::Connected(info) => Some(info),
            _ => None,
        })
        .next_back()
        .unwrap();
    assert!(info.reconnected);
    assert_eq!(info.endpoint, Some(Endpoint::tcp("c", 61613)));
    assert!(sim.client.is_connected());
    let stats = sim.client.stats();
    assert_eq!(
        (
            stats.connects,
            stats.reconnects,
            stats.connections_lost,
            stats.dial_failures
        ),
        (2, 1, 1, 13)
    );
}

#[test]
fn the_schedule_is_a_function_of_the_seed() {
    let first = outage(42).dials;
    assert_eq!(first, outage(42).dials);
    assert_ne!(first, outage(43).dials);
}

#[test]
fn events_say_what_was_lost_and_what_is_planned() {
    let sim = outage(42);
    let lost = sim
        .client_events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::ConnectionLost {
                    reason: CloseReason::TransportClosed,
                    ..
                }
            )
        })
        .expect("ConnectionLost");
    let Event::Reconnecting {
        attempt,
        host,
        delay,
    } = &sim.client_events[lost + 1]
    else {
        panic!("{:?}", sim.client_events)
    };
    // The lost host comes last: b first.
    assert_eq!((*attempt, host.host.as_str()), (1, "b"));
    assert_eq!(delay.as_millis(), 62);
    // A wait is announced once per pass: c and a follow b's failure at once,
    // then b again after the next wait.
    let plans: Vec<(u32, String, u128)> = sim
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::Reconnecting {
                attempt,
                host,
                delay,
            } => Some((*attempt, host.host.clone(), delay.as_millis())),
            _ => None,
        })
        .take(5)
        .collect();
    assert_eq!(
        plans,
        [
            (1, "b".into(), 62),
            (2, "b".into(), 184),
            (3, "b".into(), 344),
            (4, "b".into(), 662),
            (5, "b".into(), 980),
        ]
    );
    // Each failed dial is reported as one, naming its host and its own link,
    // never as a lost connection.
    let failed: Vec<(u64, String)> = sim
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::DialFailed { link, host, reason } => {
                assert!(matches!(reason, CloseReason::TransportError(f)
                    if f.kind() == std::io::ErrorKind::ConnectionRefused));
                Some((link.get(), host.as_ref().unwrap().host.clone()))
            }
            _ => None,
        })
        .take(4)
        .collect();
    assert_eq!(
        failed,
        [
            (2, "b".into()),
            (3, "c".into()),
            (4, "a".into()),
            (5, "b".into())
        ]
    );
    let lost = sim
        .client_events
        .iter()
        .filter(|e| matches!(e, Event::ConnectionLost { .. }))
        .count();
    assert_eq!(lost, 1, "one connection was lost");
}

#[test]
fn randomize_shuffles_each_pass_and_still_tries_every_host() {
    let policy = ReconnectPolicy {
        randomize: true,
        ..forever(7)
    };
    let mut sim = Sim::new(config(policy), ServerConfig::default(), Broker::Echo);
    sim.up = vec![false; 3];
    sim.cut();
    sim.advance(ms(5000));
    let passes: Vec<Vec<usize>> = sim.dials[1..]
        .chunks(3)
        .map(|pass| pass.iter().map(|d| d.1).collect())
        .collect();
    assert!(passes.len() >= 5, "{passes:?}");
    for pass in &passes[..passes.len() - 1] {
        let mut sorted = pass.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2], "every host once per pass: {passes:?}");
    }
    assert!(
        passes.iter().any(|p| p != &passes[0]),
        "the order changes between passes: {passes:?}"
    );
}

/// The frames of the requests the server saw since its last CONNECT.
fn frames_since_last_connect(sim: &Sim) -> Vec<stomp_proto::Frame> {
    requests_since_last_connect(sim)
        .into_iter()
        .map(|r| r.frame)
        .collect()
}

fn headers(frame: &stomp_proto::Frame) -> Vec<(String, String)> {
    frame
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Cuts the link with every host still up: the first reconnect pass (after
/// the 100 ms initial delay at most) reaches host a again.
fn bounce(sim: &mut Sim) {
    sim.cut();
    sim.advance(ms(200));
    assert!(sim.client.is_connected(), "{:?}", sim.client_events);
}

#[test]
fn resubscribes_in_original_order_with_original_ids_and_headers() {
    let mut sim = Sim::new(config(forever(1)), ServerConfig::default(), Broker::Echo);
    let orders = sim
        .client
        .subscribe(
            "/queue/orders",
            SubscribeOptions {
                id: Some("orders".into()),
                ack: AckMode::ClientIndividual,
                headers: vec![
                    ("selector".into(), "region = 'eu'".into()),
                    ("activemq.prefetchSize".into(), "10".into()),
                ],
                receipt: false,
            },
        )
        .unwrap()
        .0;
    let (gone, _) = sim
        .client
        .subscribe("/topic/gone", SubscribeOptions::default())
        .unwrap();
    let (prices, _) = sim
        .client
        .subscribe(
            "/topic/prices",
            SubscribeOptions {
                ack: AckMode::Client,
                ..SubscribeOptions::default()
            },
        )
        .unwrap();
    sim.client.unsubscribe(&gone, false).unwrap();
    sim.run();
    let originals: Vec<_> = frames_since_last_connect(&sim)
        .into_iter()
        .filter(|f| f.command == stomp_proto::Command::Subscribe)
        .map(|f| headers(&f))
        .collect();

    bounce(&mut sim);
    let replayed: Vec<_> = frames_since_last_connect(&sim)
        .iter()
        .map(headers)
        .collect();
    assert_eq!(replayed, [originals[0].clone(), originals[2].clone()]);
    assert_eq!(
        sim.client
            .subscriptions()
            .iter()
            .map(|s| s.id.clone())
            .collect::<Vec<_>>(),
        [orders, prices.clone()]
    );
    // And the replayed subscription delivers on the new connection.
    sim.client
        .send("/topic/prices", "42", SendOptions::default())
        .unwrap();
    sim.run();
    let delivered: Vec<_> = sim
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some((m.subscription.clone(), m.body().clone())),
            _ => None,
        })
        .collect();
    assert_eq!(delivered, [(prices, "42".into())]);
}

/// Sends `body` to /queue/a asking for a receipt; returns the receipt id.
fn send_with_receipt(sim: &mut Sim, body: &'static str) -> ReceiptId {
    sim.client
        .send("/queue/a", body, SendOptions::with_receipt())
        .unwrap()
        .unwrap()
}

#[test]
fn unconfirmed_sends_fail_by_default_and_are_not_resent() {
    let mut sim = Sim::new(config(forever(1)), ServerConfig::default(), Broker::Echo);
    sim.drop_to_client = true; // receipts get lost
    let receipt = send_with_receipt(&mut sim, "maybe");
    sim.run();
    sim.drop_to_client = false;
    bounce(&mut sim);
    assert_eq!(
        failures(&sim.client_events),
        [(receipt.to_string(), RequestError::ConnectionLost)]
    );
    assert_eq!(requests_since_last_connect(&sim), []);
}

#[test]
fn unconfirmed_sends_are_resent_with_their_receipts_when_asked() {
    let policy = ReconnectPolicy {
        unconfirmed_sends: UnconfirmedSends::Resend,
        ..forever(1)
    };
    let mut sim = Sim::new(config(policy), ServerConfig::default(), Broker::Echo);
    let (sub, _) = sim
        .client
        .subscribe("/queue/a", SubscribeOptions::default())
        .unwrap();
    let (tx, _) = sim.client.begin(None, false).unwrap();
    sim.run();
    sim.drop_to_client = true;
    let first = send_with_receipt(&mut sim, "one");
    let in_tx = sim
        .client
        .send(
            "/queue/a",
            "in tx",
            SendOptions {
                transaction: Some(tx.clone()),
                receipt: true,
                ..SendOptions::default()
            },
        )
        .unwrap()
        .unwrap();
    let second = send_with_receipt(&mut sim, "two");
    sim.run();
    sim.drop_to_client = false;
    bounce(&mut sim);

    // The transactional send failed (the broker rolled the transaction back);
    // the other two went again, after the resubscription, in order.
    assert_eq!(
        failures(&sim.client_events),
        [(in_tx.to_string(), RequestError::ConnectionLost)]
    );
    let frames = frames_since_last_connect(&sim);
    let summary: Vec<(stomp_proto::Command, Option<&str>)> = frames
        .iter()
        .map(|f| (f.command, f.header("receipt").or(f.header("id"))))
        .collect();
    use stomp_proto::Command::{Send, Subscribe};
    assert_eq!(
        summary,
        [
            (Subscribe, Some(sub.as_str())),
            (Send, Some(first.as_str())),
            (Send, Some(second.as_str())),
        ]
    );
    let receipts: Vec<_> = sim
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::Receipt(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(receipts, [first, second]);
    // What the first connection delivered was lost with the link; the
    // re-sent messages arrive on the new one.
    let bodies: Vec<_> = sim
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::Message(m) => Some(m.body().clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies, ["one", "two"]);
    // The transaction is gone: committing it is a local error.
    assert!(sim.client.commit(&tx, false).is_err());
}

#[test]
fn other_pending_receipts_fail_with_connection_lost() {
    let mut sim = Sim::new(config(forever(1)), ServerConfig::default(), Broker::Echo);
    sim.drop_to_client = true;
    let (_, subscribe) = sim
        .client
        .subscribe(
            "/queue/a",
            SubscribeOptions {
                receipt: true,
                ..SubscribeOptions::default()
            },
        )
        .unwrap();
    let (_, begin) = sim.client.begin(Some("t1"), true).unwrap();
    sim.run();
    sim.drop_to_client = false;
    bounce(&mut sim);
    assert_eq!(
        failures(&sim.client_events),
        [
            (subscribe.unwrap().to_string(), RequestError::ConnectionLost),
            (begin.unwrap().to_string(), RequestError::ConnectionLost),
        ]
    );
}

#[test]
fn gives_up_after_the_configured_passes() {
    let policy = ReconnectPolicy {
        max_attempts: Some(2),
        jitter: 0.0,
        ..forever(1)
    };
    let mut sim = Sim::new(config(policy), ServerConfig::default(), Broker::Echo);
    sim.up = vec![false; 3];
    sim.cut();
    sim.advance(ms(10_000));
    assert!(sim.closed);
    // Two passes over three hosts, at 100 ms and 200 ms later, the host of
    // the lost connection (a) last.
    let times: Vec<(u128, usize)> = sim.dials[1..].iter().map(|d| (d.0, d.1)).collect();
    assert_eq!(
        times,
        [(100, 1), (100, 2), (100, 0), (300, 1), (300, 2), (300, 0)]
    );
    assert_eq!(
        closed_reason(&sim.client_events),
        Some(&CloseReason::GaveUp {
            attempts: 2,
            last: Box::new(CloseReason::TransportError(
                std::io::ErrorKind::ConnectionRefused.into()
            ))
        })
    );
    assert_eq!(connects(&sim.client_events), 1);
}

#[test]
fn without_a_reconnect_policy_each_host_is_tried_once() {
    let mut config = config(ReconnectPolicy::default());
    config.hosts.truncate(2);
    let mut sim = Sim::new(config.clone(), ServerConfig::default(), Broker::Echo);
    assert!(sim.client.is_connected());
    sim.cut();
    assert!(sim.closed);
    assert_eq!(
        closed_reason(&sim.client_events),
        Some(&CloseReason::TransportClosed)
    );
    assert_eq!(sim.dials.len(), 1);

    // At startup with both hosts down: each tried once, then the end.
    let sim = Sim::new_with_down(config, ServerConfig::default(), Broker::Echo, &[0, 1]);
    assert!(sim.closed);
    assert_eq!(sim.dials, [(0, 0, 0), (0, 1, 0)]);
    assert_eq!(
        closed_reason(&sim.client_events),
        Some(&CloseReason::GaveUp {
            attempts: 0,
            last: Box::new(CloseReason::TransportError(
                std::io::ErrorKind::ConnectionRefused.into()
            ))
        })
    );
}

#[test]
fn a_failed_startup_moves_to_the_next_host_at_once() {
    // Host a refuses TCP, host b answers: the first connect lands on b at t=0.
    let mut config = config(ReconnectPolicy::default());
    config.hosts[0] = Endpoint::tcp("down", 1);
    let sim = Sim::new_with_down(config, ServerConfig::default(), Broker::Echo, &[0]);
    assert_eq!(
        sim.dials.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>(),
        [(0, 0), (0, 1)]
    );
    assert!(sim.client.is_connected());
    assert_eq!(sim.client.stats().dial_failures, 1);
}

#[test]
fn a_refused_connect_is_final_once_every_host_of_a_pass_refused() {
    // One host: its refusal ends the pass. (Hosts that refuse beside hosts
    // that work are in stomp-driver's failover matrix.)
    let mut config = config(forever(1));
    config.hosts.truncate(1);
    let mut sim = Sim::new(config, ServerConfig::default(), Broker::Manual);
    sim.server.reject("access refused", "bad login");
    sim.advance(ms(5000));
    assert!(sim.closed);
    assert_eq!(sim.dials.len(), 1, "no retry with the same refused login");
    let Some(CloseReason::ServerError(error)) = closed_reason(&sim.client_events) else {
        panic!("{:?}", sim.client_events)
    };
    assert_eq!(error.message.as_deref(), Some("access refused"));
}

#[test]
fn an_error_after_connected_reconnects() {
    let mut sim = Sim::new(config(forever(1)), ServerConfig::default(), Broker::Echo);
    sim.server
        .error(None, "connection_forced", "broker shutting down");
    sim.run();
    assert!(matches!(
        sim.client_events
            .iter()
            .find(|e| matches!(e, Event::ConnectionLost { .. })),
        Some(Event::ConnectionLost {
            reason: CloseReason::ServerError(_),
            ..
        })
    ));
    sim.advance(ms(200));
    assert!(sim.client.is_connected());
    assert_eq!(connects(&sim.client_events), 2);
}

#[test]
fn a_heartbeat_timeout_reconnects() {
    let config = ClientConfig {
        heartbeat: HeartBeat::new(0, 1000),
        ..config(forever(1))
    };
    let server = ServerConfig {
        heartbeat: HeartBeat::new(1000, 0),
        ..ServerConfig::default()
    };
    let mut sim = Sim::new(config, server, Broker::Echo);
    sim.drop_to_client = true; // the broker's heart-beats stop arriving
    sim.advance(ms(2000));
    assert!(sim.client_events.iter().any(|e| matches!(
        e,
        Event::ConnectionLost {
            reason: CloseReason::HeartbeatTimeout,
            ..
        }
    )));
    sim.drop_to_client = false;
    sim.advance(ms(200));
    assert!(sim.client.is_connected());
    assert_eq!(sim.client.stats().heartbeat_timeouts, 1);
    assert_eq!(sim.client.stats().reconnects, 1);
}

/// Hands out a new passcode on every call, and counts the calls.
#[derive(Debug, Default)]
struct Rotating(AtomicUsize);

impl CredentialSource for Rotating {
    fn credentials(&self) -> Option<Credentials> {
        let n = self.0.fetch_add(1, Ordering::SeqCst);
        Some(Credentials::new("app", format!("token-{n}")))
    }
}

#[test]
fn credentials_are_asked_for_on_every_connect() {
    let source = Arc::new(Rotating::default());
    let config = ClientConfig {
        credentials: Some(source.clone()),
        ..config(forever(1))
    };
    let mut sim = Sim::new(config, ServerConfig::default(), Broker::Echo);
    bounce(&mut sim);
    bounce(&mut sim);
    let passcodes: Vec<Option<String>> = sim
        .server_events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Connect(c) => Some(c.passcode.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        passcodes,
        [
            Some("token-0".into()),
            Some("token-1".into()),
            Some("token-2".into())
        ]
    );
    assert_eq!(source.0.load(Ordering::SeqCst), 3);
}

#[test]
fn an_endpoint_login_and_virtual_host_take_precedence() {
    let config = ClientConfig {
        hosts: vec!["stomp://ops:pw@a:61613/prod".parse().unwrap()],
        credentials: Some(Arc::new(Credentials::new("app", "secret"))),
        ..config(forever(1))
    };
    let sim = Sim::new(config, ServerConfig::default(), Broker::Echo);
    let Some(ServerEvent::Connect(connect)) = sim.server_events.first() else {
        panic!("{:?}", sim.server_events)
    };
    assert_eq!(connect.login.as_deref(), Some("ops"));
    assert_eq!(connect.passcode.as_deref(), Some("pw"));
    assert_eq!(connect.host.as_deref(), Some("prod"));
}

#[test]
fn disconnect_ends_reconnecting_for_good() {
    let mut sim = Sim::new(config(forever(1)), ServerConfig::default(), Broker::Echo);
    sim.client.disconnect().unwrap();
    sim.advance(ms(5000));
    assert!(sim.closed);
    assert_eq!(sim.dials.len(), 1);
    assert_eq!(
        closed_reason(&sim.client_events),
        Some(&CloseReason::Disconnected)
    );
}

#[test]
fn close_stops_a_session_that_is_waiting_to_reconnect() {
    let mut sim = Sim::new(config(forever(1)), ServerConfig::default(), Broker::Echo);
    sim.up = vec![false; 3];
    sim.cut();
    sim.advance(ms(500));
    let dials = sim.dials.len();
    sim.client.close();
    sim.advance(ms(5000));
    assert!(sim.closed);
    assert_eq!(sim.dials.len(), dials);
    assert_eq!(closed_reason(&sim.client_events), Some(&CloseReason::Local));
    assert_eq!(sim.client.poll_timeout(), None);
}

#[test]
fn a_dial_that_never_completes_is_failed_by_the_session_at_its_timeout() {
    use stomp_proto::client::ClientSession;
    let config = ClientConfig {
        connect_timeout: ms(3000),
        ..config(forever(0))
    };
    let t0 = std::time::Instant::now();
    let mut session = ClientSession::new(config, t0);
    let first = session
        .poll_dial(t0)
        .expect("the first dial is due at once");
    // Black-holed: the caller hears nothing, yet the session's deadline is
    // the dial's, and it fails the dial by itself.
    assert_eq!(session.poll_timeout(), Some(t0 + ms(3000)));
    assert_eq!(session.poll_dial(t0 + ms(10)), None, "one dial at a time");
    session.handle_timeout(t0 + ms(2999));
    assert!(session.poll_event().is_none());
    session.handle_timeout(t0 + ms(3000));
    assert_eq!(
        session.poll_event(),
        Some(Event::DialFailed {
            link: first.link,
            host: Some(Endpoint::tcp("a", 61613)),
            reason: CloseReason::DialTimeout,
        })
    );
    // The next host is due at once, on a new link; a late answer for the
    // first one changes nothing.
    let second = session.poll_dial(t0 + ms(3000)).expect("the next host");
    assert_eq!(second.endpoint.host, "b");
    assert_ne!(second.link, first.link);
}

#[test]
fn an_ack_for_a_message_of_an_earlier_connection_is_refused_locally() {
    let mut sim = Sim::new(config(forever(1)), ServerConfig::default(), Broker::Echo);
    sim.client
        .subscribe(
            "/queue/a",
            SubscribeOptions {
                ack: AckMode::ClientIndividual,
                ..SubscribeOptions::default()
            },
        )
        .unwrap();
    sim.client
        .send("/queue/a", "one", SendOptions::default())
        .unwrap();
    sim.run();
    let handle = sim
        .take_client_events()
        .into_iter()
        .find_map(|e| match e {
            Event::Message(m) => m.ack,
            _ => None,
        })
        .expect("a message to acknowledge");
    bounce(&mut sim);
    assert!(sim.client.is_connected());
    let sent_before = sim.to_server.len();
    let error = sim.client.ack(&handle, None, false).unwrap_err();
    assert_eq!(
        error,
        stomp_proto::client::CommandError::StaleAck {
            id: handle.id().to_string()
        }
    );
    sim.run();
    assert_eq!(sim.to_server.len(), sent_before, "nothing was sent");
    assert!(sim.client.is_connected(), "the new connection lives on");
}

#[test]
fn each_close_reason_says_whether_a_reconnect_may_follow() {
    use stomp_proto::Command;
    let retryable = [
        CloseReason::TransportClosed,
        CloseReason::TransportError("refused".into()),
        CloseReason::ConnectTimeout,
        CloseReason::DialTimeout,
        CloseReason::HeartbeatTimeout,
        CloseReason::UnexpectedFrame {
            command: Command::Connected,
            state: "connected",
        },
    ];
    for reason in &retryable {
        assert!(reason.may_reconnect(), "{reason}");
    }
    let last = CloseReason::VersionRefused {
        chosen: "9.9".into(),
        offered: stomp_proto::VersionSet::ALL,
    };
    let final_ones = [
        CloseReason::Disconnected,
        CloseReason::DisconnectTimeout,
        CloseReason::Local,
        last.clone(),
        CloseReason::GaveUp {
            attempts: 1,
            last: Box::new(CloseReason::DialTimeout),
        },
    ];
    for reason in &final_ones {
        assert!(!reason.may_reconnect(), "{reason}");
    }
    // And the session follows it: a heart-beat timeout reconnects (tested
    // above), a refused version ends the session for good.
    let mut sim = Sim::new(config(forever(3)), ServerConfig::default(), Broker::Manual);
    let now = sim.now;
    sim.run();
    sim.client
        .handle_input(now, b"CONNECTED\nversion:9.9\n\n\0");
    sim.run();
    assert_eq!(closed_reason(&sim.client_events), Some(&last));
    assert_eq!(sim.dials.len(), 1, "no reconnect after a refused version");
    // Errors chain to their cause.
    let gave_up = CloseReason::GaveUp {
        attempts: 0,
        last: Box::new(CloseReason::Protocol(
            stomp_proto::Decoder::new(stomp_proto::Version::V1_2, Default::default())
                .decode(&mut bytes::BytesMut::from(&b"NOPE\n\n\0"[..]))
                .unwrap_err(),
        )),
    };
    let source = std::error::Error::source(&gave_up).expect("a source");
    assert!(source.to_string().starts_with("protocol error"), "{source}");
}
