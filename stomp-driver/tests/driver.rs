//! The connection driver in simulated time, against a fake network whose
//! hosts refuse, black-hole, stay silent, answer ERROR, close or cut: the
//! failover matrix, reconnect policies, and what calls do while the
//! connection is down. All of it runs in well under a second.

mod net;

use std::time::Duration;

use bytes::Bytes;
use net::{Host, Net};
use stomp_driver::driver::{Command, Input, Lifecycle};
use stomp_driver::{Config, Error};
use stomp_proto::client::{CloseReason, CommandError, RequestError, SendOptions, SubscribeOptions};
use stomp_proto::AckMode;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const LIMIT: Duration = Duration::from_secs(60);

/// The failure a host of this kind causes a dial.
fn expected_failure(host: Host, reason: &CloseReason) -> bool {
    match host {
        Host::Refused => matches!(reason, CloseReason::TransportError(f)
            if f.kind() == std::io::ErrorKind::ConnectionRefused),
        Host::BlackHoled => *reason == CloseReason::DialTimeout,
        Host::Silent => *reason == CloseReason::ConnectTimeout,
        Host::Erroring => matches!(reason, CloseReason::ServerError(e)
            if e.message.as_deref() == Some("access refused")),
        Host::CutsMidFrame => *reason == CloseReason::TransportClosed,
        Host::Up | Host::ClosesAfterConnected => false,
    }
}

/// What a failed dial of this kind costs in simulated time, at most.
fn cost(host: Host) -> u128 {
    match host {
        // The dial timeout, and the connect timeout: 1 s each here.
        Host::BlackHoled | Host::Silent => 1_010,
        _ => 10,
    }
}

/// The working host at every position of lists of 1 to 4 hosts, the
/// others all failing the same way, for every way of failing, with a plain
/// host list and with a `failover:` URL: the client connects to the
/// working host, having tried each one before it once, in order, and says
/// so in its events.
#[test]
fn the_working_host_is_reached_from_every_position_past_every_kind_of_failure() {
    let mut cases = 0;
    for failover in [false, true] {
        for len in 1..=4 {
            for position in 0..len {
                for fault in Host::FAULTS {
                    if fault == Host::ClosesAfterConnected {
                        continue; // it connects: see the reconnect tests
                    }
                    let mut hosts = vec![fault; len];
                    hosts[position] = Host::Up;
                    let mut net = Net::new(&hosts, |config| {
                        if failover {
                            let urls: Vec<String> = (1..=len)
                                .map(|port| format!("stomp://127.0.0.1:{port}"))
                                .collect();
                            let url = format!(
                                "failover:({})?randomize=false&initialReconnectDelay=100",
                                urls.join(",")
                            );
                            let mut new = Config::from_url(&url).unwrap();
                            new.session.connect_timeout = config.session.connect_timeout;
                            new.session.heartbeat = config.session.heartbeat;
                            *config = new;
                        }
                    });
                    let case = format!("failover {failover}, {hosts:?}");
                    let info = match net.connect(LIMIT).cloned() {
                        Some(Ok(info)) => info,
                        other => panic!("{case}: {other:?}\n{:?}", net.lifecycle),
                    };
                    assert_eq!(
                        info.endpoint.as_ref().map(|e| e.port),
                        Some(position as u16 + 1),
                        "{case}"
                    );
                    assert!(!info.reconnected, "{case}");
                    assert_eq!(net.connected_host(), Some(position), "{case}");
                    // Each host before it dialled once, in order, each on a
                    // link of its own.
                    let dialled: Vec<usize> = net.opens.iter().map(|o| o.1).collect();
                    assert_eq!(dialled, (0..=position).collect::<Vec<_>>(), "{case}");
                    let mut links: Vec<_> = net.opens.iter().map(|o| o.2).collect();
                    links.dedup();
                    assert_eq!(links.len(), position + 1, "{case}");
                    // Events: connecting and a failed dial per host before
                    // it, connecting and connected for it.
                    let events = net.events_only();
                    let mut expected = 0;
                    for (i, event) in events.iter().enumerate() {
                        let host = expected;
                        match event {
                            Lifecycle::Connecting { host: h, attempt } => {
                                assert_eq!(
                                    (h.port, *attempt),
                                    (host as u16 + 1, 0),
                                    "{case}: {events:?}"
                                );
                            }
                            Lifecycle::DialFailed { host: h, reason } => {
                                assert_eq!(
                                    h.as_ref().map(|h| h.port),
                                    Some(host as u16 + 1),
                                    "{case}"
                                );
                                assert!(
                                    expected_failure(hosts[host], reason),
                                    "{case}: {reason:?}"
                                );
                                expected += 1;
                            }
                            Lifecycle::Connected(_) => {
                                assert_eq!(host, position, "{case}");
                                assert_eq!(i, events.len() - 1, "{case}: {events:?}");
                            }
                            other => panic!("{case}: unexpected {other:?} in {events:?}"),
                        }
                    }
                    // No slower than the failures before it allow.
                    let bound: u128 = hosts[..position].iter().map(|h| cost(*h)).sum::<u128>() + 20;
                    assert!(net.ms() <= bound, "{case}: {} ms > {bound} ms", net.ms());
                    // And the connection works.
                    let sent = net.call(LIMIT, |done| Command::Send {
                        destination: "/queue/a".into(),
                        body: Bytes::from_static(b"x"),
                        options: SendOptions::with_receipt(),
                        done: Some(done),
                        credit: 0,
                    });
                    assert_eq!(sent, Some(Ok(())), "{case}");
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 2 * 10 * 5);
}

/// Lists that mix every kind of failure in front of the working host.
#[test]
fn mixed_failures_in_front_are_each_reported_and_passed() {
    use Host::*;
    let lists = [
        vec![Refused, BlackHoled, Silent, Erroring, CutsMidFrame, Up],
        vec![CutsMidFrame, Erroring, Silent, BlackHoled, Refused, Up],
        vec![Silent, Refused, Up, Erroring],
    ];
    for hosts in lists {
        let mut net = Net::new(&hosts, |_| {});
        let working = hosts.iter().position(|h| *h == Up).unwrap();
        assert!(matches!(net.connect(LIMIT), Some(Ok(_))), "{hosts:?}");
        assert_eq!(net.connected_host(), Some(working));
        let failed: Vec<CloseReason> = net
            .events_only()
            .into_iter()
            .filter_map(|e| match e {
                Lifecycle::DialFailed { reason, .. } => Some(reason),
                _ => None,
            })
            .collect();
        assert_eq!(failed.len(), working, "{hosts:?}");
        for (host, reason) in hosts.iter().zip(&failed) {
            assert!(expected_failure(*host, reason), "{host:?}: {reason:?}");
        }
    }
}

/// Every host dead: the first connect ends, saying it gave up and why the
/// last dial failed; with startupMaxReconnectAttempts the passes follow the
/// backoff.
#[test]
fn with_every_host_dead_the_client_gives_up_after_the_passes_it_was_given() {
    let mut net = Net::new(&[Host::Refused, Host::BlackHoled], |_| {});
    let Some(Err(Error::Connect(reason))) = net.connect(LIMIT) else {
        panic!("{:?}", net.first_answer)
    };
    assert_eq!(
        *reason,
        CloseReason::GaveUp {
            attempts: 0,
            last: Box::new(CloseReason::DialTimeout)
        }
    );
    assert_eq!(net.opens.len(), 2);
    assert!(net.driver.is_finished());

    let url = "failover:(stomp://127.0.0.1:1,stomp://127.0.0.1:2)?randomize=false\
               &startupMaxReconnectAttempts=2&initialReconnectDelay=100&jitter=0";
    let mut net = Net::new(&[Host::Refused, Host::Refused], |config| {
        *config = Config::from_url(url).unwrap();
        config.session.heartbeat = stomp_proto::HeartBeat::OFF;
    });
    let Some(Err(Error::Connect(reason))) = net.connect(LIMIT) else {
        panic!("{:?}", net.first_answer)
    };
    assert!(
        matches!(reason, CloseReason::GaveUp { attempts: 2, .. }),
        "{reason:?}"
    );
    // Three passes over both hosts (each dial takes 1 ms here): at once,
    // 100 ms after the first pass failed, 200 ms after the second.
    let opens: Vec<(u128, usize)> = net.opens.iter().map(|o| (o.0, o.1)).collect();
    assert_eq!(
        opens,
        [(0, 0), (1, 1), (102, 0), (103, 1), (304, 0), (305, 1)]
    );
    let waits: Vec<(u32, Duration)> = net
        .events_only()
        .into_iter()
        .filter_map(|e| match e {
            Lifecycle::Reconnecting { attempt, delay, .. } => Some((attempt, delay)),
            _ => None,
        })
        .collect();
    assert_eq!(waits, [(1, ms(100)), (2, ms(200))]);
}

/// A broker that answers ERROR to CONNECT fails that host for the pass;
/// only when every host of a pass refused is it final.
#[test]
fn a_refusal_is_final_only_when_every_host_refused() {
    let mut net = Net::new(&[Host::Erroring, Host::Erroring], |_| {});
    let Some(Err(Error::Connect(CloseReason::ServerError(error)))) = net.connect(LIMIT) else {
        panic!("{:?}", net.first_answer)
    };
    assert_eq!(error.message.as_deref(), Some("access refused"));
    assert_eq!(net.opens.len(), 2, "no pass after every host refused");
}

/// A connection that drops is replaced by one to a live host of the list,
/// with the events a listener needs: lost, the wait, each dial, connected
/// again.
#[test]
fn a_dropped_connection_reconnects_to_another_host() {
    let url = "failover:(stomp://127.0.0.1:1,stomp://127.0.0.1:2)?randomize=false\
               &initialReconnectDelay=50&jitter=0";
    let mut net = Net::new(&[Host::Up, Host::Up], |config| {
        *config = Config::from_url(url).unwrap();
        config.session.heartbeat = stomp_proto::HeartBeat::OFF;
    });
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    assert_eq!(net.connected_host(), Some(0));
    let before = net.lifecycle.len();
    net.hosts[0] = Host::Refused;
    net.cut();
    net.run_for(ms(500));
    assert_eq!(net.connected_host(), Some(1), "{:?}", net.lifecycle);
    let after: Vec<Lifecycle> = net.events_only().split_off(before);
    assert!(
        matches!(
            &after[0],
            Lifecycle::ConnectionLost(CloseReason::TransportClosed)
        ),
        "{after:?}"
    );
    // The host just lost comes last in the pass: the other one first.
    assert!(
        matches!(&after[1], Lifecycle::Reconnecting { attempt: 1, host, delay }
            if host.port == 2 && *delay == ms(50)),
        "{after:?}"
    );
    assert!(
        matches!(&after[2], Lifecycle::Connecting { attempt: 1, host } if host.port == 2),
        "{after:?}"
    );
    let Lifecycle::Connected(info) = &after[3] else {
        panic!("{after:?}")
    };
    assert!(info.reconnected);
    assert_eq!(info.endpoint.as_ref().map(|e| e.port), Some(2));
    // A host that closes right after CONNECTED is a lost connection each
    // time, not a failed dial, and the client keeps coming back to it
    // (the list's order holds); once it is gone, the next host serves.
    net.hosts[0] = Host::ClosesAfterConnected;
    net.hosts[1] = Host::Refused;
    let before = net.lifecycle.len();
    net.cut();
    net.run_for(ms(200));
    let lost = net.events_only()[before..]
        .iter()
        .filter(|e| matches!(e, Lifecycle::ConnectionLost(_)))
        .count();
    assert!(lost >= 2, "{:?}", &net.lifecycle[before..]);
    net.hosts[0] = Host::Refused;
    net.hosts[1] = Host::Up;
    net.run_for(ms(60_000));
    assert_eq!(net.connected_host(), Some(1));
}

/// With randomize (failover's default), each pass tries every host in a
/// seeded order, and the working one is found whatever its position.
#[test]
fn randomized_passes_find_the_working_host() {
    for position in 0..4 {
        let mut hosts = vec![Host::Refused; 4];
        hosts[position] = Host::Up;
        let urls: Vec<String> = (1..=4).map(|p| format!("stomp://127.0.0.1:{p}")).collect();
        let url = format!("failover:({})", urls.join(","));
        let mut net = Net::new(&hosts, |config| {
            let seed = config.session.reconnect.seed;
            *config = Config::from_url(&url).unwrap();
            config.session.reconnect.seed = seed;
        });
        assert!(matches!(net.connect(LIMIT), Some(Ok(_))), "{position}");
        assert_eq!(net.connected_host(), Some(position));
        let mut dialled: Vec<usize> = net.opens.iter().map(|o| o.1).collect();
        let count = dialled.len();
        dialled.sort();
        dialled.dedup();
        assert_eq!(dialled.len(), count, "no host twice in the first pass");
    }
}

fn send(net: &mut Net, body: &'static str, receipt: bool) -> Option<Result<(), Error>> {
    let options = SendOptions {
        receipt,
        ..SendOptions::default()
    };
    net.call(LIMIT, |done| Command::Send {
        destination: "/queue/a".into(),
        body: Bytes::from_static(body.as_bytes()),
        options,
        done: Some(done),
        credit: 0,
    })
}

fn reconnecting_pair() -> Net {
    let url = "failover:(stomp://127.0.0.1:1)?initialReconnectDelay=1000&jitter=0";
    let mut net = Net::new(&[Host::Up], |config| {
        *config = Config::from_url(url).unwrap();
        config.session.heartbeat = stomp_proto::HeartBeat::OFF;
        config.offline_wait = Some(Duration::from_secs(5));
    });
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    net
}

/// A send made while the link is down waits for it, and a receipted one is
/// confirmed by the new connection.
#[test]
fn a_send_while_the_link_is_down_waits_and_is_confirmed_after_the_reconnect() {
    let mut net = reconnecting_pair();
    net.cut();
    let start = net.ms();
    assert_eq!(send(&mut net, "waits", true), Some(Ok(())));
    assert!(net.ms() - start >= 1000, "it waited for the reconnect");
    assert!(net
        .events_only()
        .iter()
        .any(|e| matches!(e, Lifecycle::Connected(info) if info.reconnected)));
}

/// Past the offline wait a send fails, typed, and nothing is sent; with
/// no offline wait it fails at once.
#[test]
fn a_send_while_down_fails_after_the_offline_wait_or_at_once_if_asked() {
    let mut net = reconnecting_pair();
    net.hosts[0] = Host::Refused;
    net.cut();
    let start = net.ms();
    let result = send(&mut net, "late", true);
    let Some(Err(Error::Offline { waited })) = result else {
        panic!("{result:?}")
    };
    assert_eq!(waited, Duration::from_secs(5));
    assert_eq!(net.ms() - start, 5000);

    let url = "failover:(stomp://127.0.0.1:1)?initialReconnectDelay=1000";
    let mut net = Net::new(&[Host::Up], |config| {
        *config = Config::from_url(url).unwrap();
        config.offline_wait = None;
    });
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    net.cut();
    assert_eq!(
        send(&mut net, "now", false),
        Some(Err(Error::Command(CommandError::NotConnected)))
    );
}

/// An ACK for a message of an earlier connection is refused locally and
/// the new connection lives on.
#[test]
fn a_stale_ack_is_refused_locally_and_the_new_connection_lives_on() {
    let mut net = reconnecting_pair();
    let mailbox = net.handle.mailbox(16);
    let options = SubscribeOptions {
        ack: AckMode::ClientIndividual,
        ..SubscribeOptions::default()
    };
    let mb = mailbox.clone();
    let subscribed = net.call(LIMIT, |done| Command::Subscribe {
        destination: "/queue/a".into(),
        options,
        mailbox: mb,
        done,
    });
    assert!(matches!(subscribed, Some(Ok(_))));
    assert_eq!(send(&mut net, "one", true), Some(Ok(())));
    let message = mailbox.pop(Some(Duration::ZERO)).expect("delivered");
    let handle = message.ack.clone().expect("client-individual");
    net.cut();
    net.run_for(ms(1500));
    assert!(net.connected_host().is_some(), "reconnected");
    let acked = net.call(LIMIT, |done| Command::Ack {
        handle: handle.clone(),
        nack: false,
        transaction: None,
        receipt: false,
        done: Some(done),
        credit: 0,
    });
    assert_eq!(
        acked,
        Some(Err(Error::Command(CommandError::StaleAck {
            id: handle.id().to_string()
        })))
    );
    assert_eq!(send(&mut net, "two", true), Some(Ok(())), "still connected");
}

/// Writes taken a byte at a time and reads delivered a byte at a time give
/// the same exchange.
#[test]
fn partial_writes_and_single_byte_reads_lose_nothing() {
    let mut net = Net::new(&[Host::Refused, Host::Up], |_| {});
    net.write_limit = 1;
    net.chunk = 1;
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    let mailbox = net.handle.mailbox(1024);
    let mb = mailbox.clone();
    let subscribed = net.call(LIMIT, |done| Command::Subscribe {
        destination: "/queue/a".into(),
        options: SubscribeOptions::default(),
        mailbox: mb,
        done,
    });
    assert!(matches!(subscribed, Some(Ok(_))));
    for _ in 0..20 {
        assert_eq!(send(&mut net, "byte by byte", false), Some(Ok(())));
    }
    assert_eq!(send(&mut net, "end", true), Some(Ok(())));
    // The broker confirms before it delivers: let the last MESSAGE come.
    net.run_for(ms(100));
    let mut bodies = Vec::new();
    while let Ok(message) = mailbox.pop(Some(Duration::ZERO)) {
        bodies.push(String::from_utf8(message.frame.body.to_vec()).unwrap());
    }
    assert_eq!(bodies.len(), 21);
    assert_eq!(bodies[20], "end");
}

/// A transport that takes no bytes at all fails the connection after the
/// write timeout, typed as a timeout.
#[test]
fn a_write_that_makes_no_progress_fails_after_the_write_timeout() {
    let mut net = Net::new(&[Host::Up], |config| {
        config.write_timeout = ms(700);
    });
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    net.write_limit = 0;
    let start = net.ms();
    let result = send(&mut net, "stuck", true);
    assert!(matches!(result, Some(Err(_))), "{result:?}");
    net.run_for(ms(10));
    let closed = net
        .lifecycle
        .iter()
        .find_map(|(at, e)| match e {
            Lifecycle::Closed(reason) => Some((*at, reason.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("not closed: {:?}", net.lifecycle));
    assert_eq!(closed.0 - start, 700);
    let CloseReason::TransportError(failure) = closed.1 else {
        panic!("{closed:?}")
    };
    assert_eq!(failure.kind(), std::io::ErrorKind::TimedOut);
}

/// maxReconnectAttempts bounds the passes after a lost connection, and
/// jitter shortens each wait by at most its fraction.
#[test]
fn reconnect_passes_stop_at_max_reconnect_attempts_and_waits_keep_their_jitter() {
    let url = "failover:(stomp://127.0.0.1:1,stomp://127.0.0.1:2)?randomize=false\
               &maxReconnectAttempts=3&initialReconnectDelay=100&jitter=0.5";
    let mut net = Net::new(&[Host::Up, Host::Refused], |config| {
        *config = Config::from_url(url).unwrap();
        config.session.heartbeat = stomp_proto::HeartBeat::OFF;
        config.session.reconnect.seed = 11;
    });
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    net.hosts[0] = Host::Refused;
    net.cut();
    net.run_for(Duration::from_secs(60));
    assert!(net.driver.is_finished());
    let events = net.events_only();
    let waits: Vec<(u32, Duration)> = events
        .iter()
        .filter_map(|e| match e {
            Lifecycle::Reconnecting { attempt, delay, .. } => Some((*attempt, *delay)),
            _ => None,
        })
        .collect();
    assert_eq!(
        waits.iter().map(|w| w.0).collect::<Vec<_>>(),
        [1, 2, 3],
        "{events:?}"
    );
    for ((_, delay), base) in waits.iter().zip([100u64, 200, 400]) {
        assert!(
            *delay >= ms(base / 2) && *delay <= ms(base),
            "{delay:?} for a base of {base} ms"
        );
    }
    assert!(
        matches!(
            events.last(),
            Some(Lifecycle::Closed(CloseReason::GaveUp { attempts: 3, .. }))
        ),
        "{events:?}"
    );
    // One connect, then three passes over both hosts.
    assert_eq!(net.opens.len(), 1 + 3 * 2);
}

fn request(
    net: &mut Net,
    destination: &'static str,
    timeout: Duration,
) -> Option<Result<stomp_proto::client::Message, Error>> {
    net.call(LIMIT, |done| Command::Request {
        destination: destination.into(),
        body: Bytes::from_static(b"ping"),
        options: SendOptions::default(),
        timeout,
        done,
    })
}

/// A request is answered by the MESSAGE carrying its `correlation-id`
/// back (here the echo broker returns the request itself on the reply
/// subscription), fails at its timeout to the millisecond in simulated
/// time when nothing comes, and fails at once when the connection is lost.
#[test]
fn a_request_is_answered_by_its_correlation_id_or_fails_at_its_timeout() {
    let mut net = Net::new(&[Host::Up], |config| {
        *config =
            Config::from_url("failover:(stomp://127.0.0.1:1)?initialReconnectDelay=1000").unwrap();
        config.session.heartbeat = stomp_proto::HeartBeat::OFF;
        config.reply_destination = Some("/queue/replies".into());
    });
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    let Some(Ok(reply)) = request(&mut net, "/queue/replies", ms(500)) else {
        panic!("no reply")
    };
    assert_eq!(reply.frame.header("reply-to"), Some("/queue/replies"));
    assert!(reply.frame.header("correlation-id").is_some());
    let start = net.ms();
    let lonely = request(&mut net, "/queue/void", ms(750));
    assert!(matches!(lonely, Some(Err(Error::Timeout))), "{lonely:?}");
    assert_eq!(net.ms() - start, 750);
    // Lost with the connection: no waiting for the timeout.
    let (done, answer) = stomp_driver::reply::reply();
    let command = Command::Request {
        destination: "/queue/void".into(),
        body: Bytes::from_static(b"lost"),
        options: SendOptions::default(),
        timeout: Duration::from_secs(60),
        done,
    };
    net.driver.handle_input(net.now, Input::Command(command));
    net.run_for(ms(10));
    let start = net.ms();
    net.cut();
    net.run_for(ms(10));
    assert_eq!(
        answer.try_take().flatten().map(|r| r.map(drop)),
        Some(Err(Error::Request(RequestError::ConnectionLost)))
    );
    assert!(net.ms() - start <= 10);
    // The reply subscription is replayed: requests work after the reconnect.
    net.run_for(ms(1500));
    assert!(net.connected_host().is_some(), "reconnected");
    assert!(matches!(
        request(&mut net, "/queue/replies", ms(500)),
        Some(Ok(_))
    ));
}

/// The idle watchdog makes a subscription again after exactly its period
/// without a delivery, each period, and never while messages come; the
/// health check counts deliveries and renewals.
#[test]
fn the_idle_watchdog_resubscribes_a_silent_subscription_and_health_tells() {
    let mut net = Net::new(&[Host::Up], |config| {
        config.session.heartbeat = stomp_proto::HeartBeat::OFF;
        config.resubscribe_idle = Some(ms(1000));
    });
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    let mailbox = net.handle.mailbox(64);
    let mb = mailbox.clone();
    let start = net.ms();
    let subscribed = net.call(LIMIT, |done| Command::Subscribe {
        destination: "/queue/a".into(),
        options: SubscribeOptions::default(),
        mailbox: mb,
        done,
    });
    assert!(matches!(subscribed, Some(Ok(_))));
    net.run_for(ms(2500));
    let renewals = |net: &Net| -> Vec<u128> {
        net.lifecycle
            .iter()
            .filter(|(_, e)| matches!(e, Lifecycle::Resubscribed { .. }))
            .map(|(at, _)| *at)
            .collect()
    };
    assert_eq!(renewals(&net), [start + 1000, start + 2000]);
    // A message every half period keeps it alive.
    for _ in 0..6 {
        assert_eq!(send(&mut net, "tick", false), Some(Ok(())));
        net.run_for(ms(500));
    }
    assert_eq!(renewals(&net).len(), 2, "{:?}", renewals(&net));
    let mut delivered = 0;
    while mailbox.try_pop().is_ok() {
        delivered += 1;
    }
    assert_eq!(delivered, 6, "the renewed subscription delivers");
    let (done, answer) = stomp_driver::reply::reply();
    net.driver
        .handle_input(net.now, Input::Command(Command::Health { done }));
    let health = answer.try_take().flatten().expect("answered at once");
    assert!(health.connected);
    assert_eq!(health.subscriptions.len(), 1);
    let sub = &health.subscriptions[0];
    assert_eq!((sub.delivered, sub.resubscribed), (6, 2));
    assert!(sub.last_delivery.is_some_and(|ago| ago <= ms(500)));
    assert_eq!(health.pending_receipts, 0);
}

/// Confirmed mode: BEGIN waits for its receipt; a COMMIT whose connection
/// is lost before its receipt fails as ambiguous, and the reconnected
/// client never sends it again.
#[test]
fn confirmed_mode_never_sends_an_ambiguous_commit_again() {
    use stomp_driver::Outcome;
    let url = "failover:(stomp://127.0.0.1:1)?initialReconnectDelay=500";
    let mut net = Net::new(&[Host::Up], |config| {
        *config = Config::from_url(url).unwrap();
        config.session.heartbeat = stomp_proto::HeartBeat::OFF;
        config.session.reconnect.unconfirmed_sends =
            stomp_proto::reconnect::UnconfirmedSends::Resend;
        config.confirm = true;
    });
    assert!(matches!(net.connect(LIMIT), Some(Ok(_))));
    let tap = std::sync::Arc::new(stomp_driver::queue::Queue::bounded(1024, None));
    net.driver
        .handle_input(net.now, Input::Command(Command::Tap { queue: tap.clone() }));
    let Some(Ok(tx)) = net.call(LIMIT, |done| Command::Begin { id: None, done }) else {
        panic!("no transaction")
    };
    // Nothing more gets written: the COMMIT waits in the client.
    net.write_limit = 0;
    let (done, answer) = stomp_driver::reply::reply();
    let commit = Command::End {
        tx,
        commit: true,
        done: Some(done),
    };
    net.driver.handle_input(net.now, Input::Command(commit));
    net.run_for(ms(20));
    net.cut();
    net.write_limit = usize::MAX;
    net.run_for(ms(10));
    let outcome = answer.try_take().flatten();
    let Some(Err(error)) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(error.outcome(), Outcome::Ambiguous, "{error}");
    net.run_for(ms(1500));
    assert!(net.connected_host().is_some(), "reconnected");
    let mut commands = Vec::new();
    while let Ok(tapped) = tap.try_pop() {
        if let Some(frame) = tapped.frame {
            // Every request of ours asked for a receipt.
            if matches!(frame.command, stomp_proto::Command::Begin) {
                assert!(frame.header("receipt").is_some(), "{frame:?}");
            }
            commands.push(frame.command);
        }
    }
    let commits = commands
        .iter()
        .filter(|c| **c == stomp_proto::Command::Commit)
        .count();
    assert_eq!(commits, 1, "{commands:?}");
}
