//! Against the scripted fault peer of `stomp-broker`: stalls, half-written
//! frames, garbage, and the connection cut at every point of the handshake.

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use stomp_broker::fault::{Behaviour, Cut, FaultPeer, TlsSeen};
use stomp_driver::{Config, Error, Lifecycle, Tls};
use stomp_proto::client::{CloseReason, RequestError, SendOptions};
use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
use stomp_proto::server::ServerConfig;
use stomp_proto::{DecodeErrorKind, HeartBeat};

use crate::support::{self, round_trip};
use crate::{Adapter, SuiteClient, SuiteMsg, SuiteSub};

const WAIT: Duration = Duration::from_secs(5);

/// Instantiates every scenario of this module for `$adapter`.
#[macro_export]
macro_rules! fault_scenarios {
    ($adapter:ty) => {
        $crate::suite!($adapter, faults: a_silent_broker_is_detected_within_the_heartbeat_grace, garbage_from_the_broker_is_a_protocol_error_with_its_offset, a_half_written_frame_is_never_delivered_and_the_client_reconnects, a_handshake_cut_anywhere_ends_the_session_promptly, a_handshake_cut_anywhere_is_survived_by_reconnecting,
            tls_sends_the_server_name_and_presents_the_client_certificate,
            a_broker_that_writes_before_reading_never_deadlocks_a_busy_client,
            a_broker_that_stops_reading_fails_the_write_within_the_write_timeout,
            a_subscription_asked_with_a_receipt_waits_for_it,
            the_websocket_upgrade_carries_the_urls_query_and_the_callers_headers,
            large_frames_are_split_for_a_broker_with_a_small_websocket_limit,
            a_request_waiting_when_the_connection_is_lost_fails_at_once,
            tcp_keepalive_and_the_local_address_are_applied_to_the_socket);
    };
}

fn config(peer: &FaultPeer) -> Config {
    Config::from_url(&peer.url()).unwrap()
}

/// Reconnects at once, forever.
fn failover(peer: &FaultPeer) -> Config {
    let mut config = config(peer);
    config.session.reconnect = ReconnectPolicy {
        initial_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        unconfirmed_sends: UnconfirmedSends::Fail,
        ..ReconnectPolicy::failover()
    };
    config
}

fn wait_for(client: &impl SuiteClient, want: impl Fn(&Lifecycle) -> bool) -> Lifecycle {
    support::wait_for(&client.events(), WAIT, want)
}

pub fn a_silent_broker_is_detected_within_the_heartbeat_grace<A: Adapter>() {
    let server = ServerConfig {
        heartbeat: HeartBeat::new(100, 100),
        ..ServerConfig::default()
    };
    let stall = Duration::from_millis(500);
    let peer = FaultPeer::start_with(server, vec![Behaviour::StallAfter(stall)]).unwrap();
    let mut config = config(&peer);
    config.session.heartbeat = HeartBeat::new(100, 100);
    let grace = Duration::from_millis(100).mul_f64(config.session.heartbeat_grace);
    let start = Instant::now();
    let client = A::connect(config).unwrap();
    assert!(client.is_connected(), "{}", A::NAME);
    assert_eq!(client.close_reason(), None);
    wait_for(&client, |e| matches!(e, Lifecycle::HeartbeatTimeout));
    let detected = start.elapsed();
    // Heart-beats kept it alive until the stall; it was declared dead within
    // the grace after (plus scheduling slack).
    assert!(detected >= stall, "{detected:?}");
    assert!(
        detected <= stall + grace + Duration::from_millis(500),
        "{detected:?}"
    );
    let Lifecycle::Closed(reason) = wait_for(&client, |e| matches!(e, Lifecycle::Closed(_))) else {
        unreachable!()
    };
    assert_eq!(reason, CloseReason::HeartbeatTimeout);
    assert!(!client.is_connected(), "{}", A::NAME);
    assert_eq!(client.close_reason(), Some(CloseReason::HeartbeatTimeout));
    assert!(matches!(
        client.send("/queue/a", "x"),
        Err(Error::Closed(Some(CloseReason::HeartbeatTimeout)))
    ));
    // The counters outlive the connection: what it did before it failed.
    let stats = client.stats().unwrap();
    assert_eq!(stats.heartbeat_timeouts, 1, "{}: {stats:?}", A::NAME);
    assert!(stats.heartbeats_in > 0, "{}: {stats:?}", A::NAME);
    assert_eq!(stats.connects, 1, "{}: {stats:?}", A::NAME);
}

pub fn garbage_from_the_broker_is_a_protocol_error_with_its_offset<A: Adapter>() {
    let peer = FaultPeer::start(vec![Behaviour::Write {
        bytes: b"HELLO THERE\n\n\0".to_vec(),
        close: false,
    }])
    .unwrap();
    let client = A::connect(config(&peer)).unwrap();
    let Lifecycle::Closed(CloseReason::Protocol(error)) =
        wait_for(&client, |e| matches!(e, Lifecycle::Closed(_)))
    else {
        panic!("not a protocol error")
    };
    assert!(
        matches!(error.kind(), DecodeErrorKind::UnknownCommand { line } if line.starts_with("HELLO")),
        "{error}"
    );
    // Right after CONNECTED (whose command line alone is 10 octets).
    assert!(error.offset() >= 10, "{error}");
    assert!(error.to_string().contains(&error.offset().to_string()));
}

pub fn a_half_written_frame_is_never_delivered_and_the_client_reconnects<A: Adapter>() {
    let half = b"MESSAGE\nsubscription:0\nmessage-id:x\ndestination:/queue/half\n\nhal".to_vec();
    let peer = FaultPeer::start(vec![
        Behaviour::Write {
            bytes: half,
            close: true,
        },
        Behaviour::Serve,
    ])
    .unwrap();
    let client = A::connect(failover(&peer)).unwrap();
    let Lifecycle::Connected(info) = wait_for(
        &client,
        |e| matches!(e, Lifecycle::Connected(info) if info.reconnected),
    ) else {
        unreachable!()
    };
    assert!(info.reconnected);
    round_trip(&client, "/queue/half");
    let stats = client.stats().unwrap();
    assert_eq!(stats.frames_in(stomp_proto::Command::Message), 1);
    assert_eq!(stats.connections_lost, 1);
    assert_eq!(peer.accepted(), 2);
}

pub fn a_handshake_cut_anywhere_ends_the_session_promptly<A: Adapter>() {
    for cut in Cut::ALL {
        let peer = FaultPeer::start(vec![Behaviour::Cut(cut)]).unwrap();
        let start = Instant::now();
        let result = A::connect(config(&peer));
        if cut == Cut::AfterConnected {
            // CONNECTED came: connected, then closed.
            let client = result.unwrap();
            let closed = wait_for(&client, |e| matches!(e, Lifecycle::Closed(_)));
            assert_eq!(closed, Lifecycle::Closed(CloseReason::TransportClosed));
            continue;
        }
        let error = result.unwrap_err();
        assert!(
            matches!(
                &error,
                Error::Connect(reason)
                    if matches!(reason.root(), CloseReason::TransportClosed | CloseReason::TransportError(_))
            ),
            "{cut:?}: {error:?}"
        );
        assert!(
            start.elapsed() < WAIT,
            "{cut:?}: took {:?}",
            start.elapsed()
        );
    }
}

pub fn a_handshake_cut_anywhere_is_survived_by_reconnecting<A: Adapter>() {
    for cut in Cut::ALL {
        let peer = FaultPeer::start(vec![Behaviour::Cut(cut), Behaviour::Serve]).unwrap();
        let client = A::connect(failover(&peer)).unwrap_or_else(|e| panic!("{cut:?}: {e}"));
        if cut == Cut::AfterConnected {
            // CONNECTED came, so connect returned; the reconnect follows.
            wait_for(
                &client,
                |e| matches!(e, Lifecycle::Connected(info) if info.reconnected),
            );
        }
        round_trip(&client, "/queue/cut");
        assert_eq!(peer.accepted(), 2, "{cut:?}");
        client.disconnect().unwrap();
    }
}

/// A throw-away CA made here, a server certificate for `stomp.test` and a
/// client certificate, both signed by it: (CA, server chain and key, client
/// chain and key), in PEM.
fn test_pki() -> (String, (String, String), (String, String)) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, &ca_key);
    let leaf = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    (ca_cert.pem(), leaf("stomp.test"), leaf("client.test"))
}

/// A TLS fault peer with `server` as its certificate that accepts client
/// certificates from `ca` (and clients without one).
fn tls_peer(ca: &str, server: &(String, String)) -> FaultPeer {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .allow_unauthenticated()
            .build()
            .unwrap();
    let chain = vec![CertificateDer::from_pem_slice(server.0.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(server.1.as_bytes()).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    FaultPeer::start_tls(
        ServerConfig::default(),
        vec![Behaviour::Serve],
        std::sync::Arc::new(tls),
    )
    .unwrap()
}

pub fn tls_sends_the_server_name_and_presents_the_client_certificate<A: Adapter>() {
    let (ca, server, client) = test_pki();
    let peer = tls_peer(&ca, &server);
    let mut config = Config::from_url(&format!("stomp+ssl://{}", peer.addr())).unwrap();
    config.tls = Tls::default()
        .with_ca_pem(ca.clone())
        .with_server_name("stomp.test")
        .with_client_cert_pem(client.0.clone(), client.1.clone());
    let client = A::connect(config).unwrap_or_else(|e| panic!("{}: {e}", A::NAME));
    round_trip(&client, "/queue/tls");
    client.disconnect().unwrap();
    assert_eq!(
        peer.tls_seen(),
        [TlsSeen {
            server_name: Some("stomp.test".into()),
            client_certificates: 1,
        }],
        "{}",
        A::NAME
    );

    // Without the name, the certificate (for stomp.test) does not match
    // 127.0.0.1: refused before any STOMP is spoken.
    let mut config = Config::from_url(&format!("stomp+ssl://{}", peer.addr())).unwrap();
    config.tls = Tls::default().with_ca_pem(ca);
    let error = A::connect(config).unwrap_err();
    assert!(
        matches!(&error, Error::Connect(reason)
            if matches!(reason.root(), CloseReason::TransportError(e) if e.message().contains("not valid for name"))),
        "{}: {error:?}",
        A::NAME
    );
}

/// A broker that writes everything it owes before it reads again (the
/// fault peer serves that way, and so can a real one): the client must keep
/// reading while its own writes wait, or both sides block on each other.
/// 32 MB each way, far past what the sockets buffer.
pub fn a_broker_that_writes_before_reading_never_deadlocks_a_busy_client<A: Adapter>() {
    const COUNT: usize = 2_000;
    const SIZE: usize = 16 * 1024;
    let peer = FaultPeer::start(vec![Behaviour::Serve]).unwrap();
    let mut config = config(&peer);
    // Longer than the consumer waits: a deadlock fails the test, it does not
    // end in a write timeout that a reconnect would hide.
    config.write_timeout = support::WAIT * 2;
    let client = A::connect(config).unwrap();
    let subscription = client
        .subscribe("/queue/flood", stomp_proto::AckMode::Auto)
        .unwrap();
    let body = bytes::Bytes::from(vec![b'x'; SIZE]);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let consumer = scope.spawn(|| {
            for n in 0..COUNT {
                match subscription.recv_timeout(support::WAIT) {
                    Ok(message) => assert_eq!(message.body().len(), SIZE),
                    Err(e) => panic!("{}: message {n} of {COUNT}: {e}", A::NAME),
                }
            }
        });
        for n in 0..COUNT {
            if let Err(e) = client.send("/queue/flood", body.clone()) {
                panic!("{}: send {n} of {COUNT}: {e}", A::NAME);
            }
        }
        consumer.join().unwrap();
    });
    let stats = client.stats().unwrap();
    assert_eq!(stats.connections_lost, 0, "{}", A::NAME);
    assert_eq!(
        stats.frames_in(stomp_proto::Command::Message),
        COUNT as u64,
        "{}",
        A::NAME
    );
    eprintln!(
        "{}: {COUNT} x {SIZE} B each way in {:?}",
        A::NAME,
        start.elapsed()
    );
    client.disconnect().unwrap();
}

pub fn a_broker_that_stops_reading_fails_the_write_within_the_write_timeout<A: Adapter>() {
    let peer = FaultPeer::start(vec![Behaviour::Deaf]).unwrap();
    let mut config = config(&peer);
    let write_timeout = Duration::from_millis(500);
    config.write_timeout = write_timeout;
    let client = A::connect(config).unwrap();
    let body = bytes::Bytes::from(vec![b'x'; 1 << 20]);
    let start = Instant::now();
    // Sends wait while the outgoing queue is full; once the socket's
    // buffers are, the write timeout ends the connection and the sends.
    let failed = (0..200).find_map(|_| client.send("/queue/deaf", body.clone()).err());
    let elapsed = start.elapsed();
    let Some(Error::Closed(Some(CloseReason::TransportError(error)))) = failed else {
        panic!("{}: {failed:?}", A::NAME)
    };
    assert_eq!(
        error.kind(),
        std::io::ErrorKind::TimedOut,
        "{}: {error}",
        A::NAME
    );
    assert!(
        elapsed < write_timeout + WAIT,
        "{}: took {elapsed:?}",
        A::NAME
    );
    assert_eq!(
        wait_for(&client, |e| matches!(e, Lifecycle::Closed(_))),
        Lifecycle::Closed(CloseReason::TransportError(error))
    );
}

pub fn a_subscription_asked_with_a_receipt_waits_for_it<A: Adapter>() {
    // The deaf peer never answers: the call waits for the receipt, and the
    // receipt timeout ends the wait with its own error.
    let peer = FaultPeer::start(vec![Behaviour::Deaf]).unwrap();
    let mut config = config(&peer);
    let receipt_timeout = Duration::from_millis(300);
    config.session.receipt_timeout = receipt_timeout;
    let client = A::connect(config).unwrap();
    let options = stomp_proto::client::SubscribeOptions {
        receipt: true,
        ..Default::default()
    };
    let start = Instant::now();
    let result = client.subscribe_with("/topic/deaf", options);
    let elapsed = start.elapsed();
    assert!(
        matches!(
            result,
            Err(Error::Request(stomp_proto::client::RequestError::Timeout))
        ),
        "{}: {:?}",
        A::NAME,
        result.map(|_| ())
    );
    assert!(elapsed >= receipt_timeout, "{}: {elapsed:?}", A::NAME);
    assert!(elapsed < WAIT, "{}: {elapsed:?}", A::NAME);
}

pub fn the_websocket_upgrade_carries_the_urls_query_and_the_callers_headers<A: Adapter>() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // An HTTP server that records the upgrade request and refuses it.
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket.set_read_timeout(Some(WAIT)).unwrap();
        let mut head = Vec::new();
        let mut buf = [0; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = socket.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
        String::from_utf8_lossy(&head).into_owned()
    });
    let url = format!("ws://127.0.0.1:{port}/ws?access_token=abc%2Bdef&lang=en");
    let mut config = Config::from_url(&url).unwrap();
    config.session.connect_timeout = WAIT;
    config.websocket.headers = vec![
        ("Authorization".into(), "Bearer t0k3n".into()),
        ("Cookie".into(), "session=42".into()),
        ("Origin".into(), "https://app.example".into()),
    ];
    let refused = A::connect(config);
    assert!(matches!(refused, Err(Error::Connect(_))), "{refused:?}");
    let head = server.join().unwrap();
    let lines: Vec<&str> = head.lines().collect();
    assert_eq!(
        lines[0],
        "GET /ws?access_token=abc%2Bdef&lang=en HTTP/1.1",
        "{}: {head}",
        A::NAME
    );
    for wanted in [
        "authorization: Bearer t0k3n",
        "cookie: session=42",
        "origin: https://app.example",
    ] {
        assert!(
            lines.iter().any(|l| l.eq_ignore_ascii_case(wanted)),
            "{}: no {wanted:?} in {head}",
            A::NAME
        );
    }
    // A header that HTTP cannot carry fails the dial, saying which.
    let mut config = Config::from_url(&url).unwrap();
    config.websocket.headers = vec![("Bad Name".into(), "x".into())];
    let refused = A::connect(config);
    let Err(Error::Connect(reason)) = &refused else {
        panic!("{refused:?}")
    };
    assert!(reason.to_string().contains("Bad Name"), "{reason}");
}

pub fn large_frames_are_split_for_a_broker_with_a_small_websocket_limit<A: Adapter>() {
    const LIMIT: usize = 16 * 1024;
    let url = support::embedded_small_websocket(LIMIT);
    let body = bytes::Bytes::from(
        (0..100_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let q = support::queue("ws-split");

    // Unsplit, the broker refuses the message and ends the connection.
    let mut config = Config::from_url(url).unwrap();
    config.session.receipt_timeout = WAIT;
    let whole = A::connect(config).unwrap();
    let refused = whole.send_with(
        &q,
        body.clone(),
        stomp_proto::client::SendOptions::with_receipt(),
    );
    assert!(refused.is_err(), "{}: {refused:?}", A::NAME);

    // Split into messages under the limit, it arrives intact.
    let mut config = Config::from_url(url).unwrap();
    config.websocket.max_message = Some(LIMIT / 2);
    let split = A::connect(config).unwrap();
    let sub = split.subscribe(&q, stomp_proto::AckMode::Auto).unwrap();
    split.send_with_receipt(&q, body.clone()).unwrap();
    let message = sub.recv_timeout(WAIT).unwrap();
    assert_eq!(message.body(), &body, "{}", A::NAME);
    split.disconnect().unwrap();
}

pub fn a_request_waiting_when_the_connection_is_lost_fails_at_once<A: Adapter>() {
    let peer = FaultPeer::start(vec![Behaviour::Serve]).unwrap();
    let client = A::connect(failover(&peer)).unwrap();
    let patience = Duration::from_secs(20);
    let started = Instant::now();
    let outcome = std::thread::scope(|s| {
        let asking = s.spawn(|| {
            client.request(
                "/queue/nobody-answers",
                "hello?".into(),
                SendOptions::default(),
                patience,
            )
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(peer);
        asking.join().unwrap()
    });
    let took = started.elapsed();
    // The reply could only have come on the connection that is gone.
    assert!(
        matches!(outcome, Err(Error::Request(RequestError::ConnectionLost))),
        "{}: {:?}",
        A::NAME,
        outcome.map(|m| m.text().map(String::from))
    );
    assert!(took < WAIT, "{}: {took:?}", A::NAME);
}

/// The client's socket to `server` as the kernel lists it in
/// `/proc/net/tcp`: its local address, and its timer (`tr`: 0 none,
/// 2 keepalive) with the ticks until it fires.
fn kernel_socket(server: std::net::SocketAddr) -> Option<(std::net::SocketAddrV4, u32, u64)> {
    let hex = |addr: &str| -> Option<std::net::SocketAddrV4> {
        let (ip, port) = addr.split_once(':')?;
        let ip = u32::from_str_radix(ip, 16).ok()?;
        let port = u16::from_str_radix(port, 16).ok()?;
        Some(std::net::SocketAddrV4::new(ip.swap_bytes().into(), port))
    };
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (local, remote, state, timer) =
            (hex(fields[1])?, hex(fields[2])?, fields[3], fields[5]);
        if std::net::SocketAddr::V4(remote) != server || state != "01" {
            return None;
        }
        let (kind, when) = timer.split_once(':')?;
        Some((
            local,
            u32::from_str_radix(kind, 16).ok()?,
            u64::from_str_radix(when, 16).ok()?,
        ))
    })
}

pub fn tcp_keepalive_and_the_local_address_are_applied_to_the_socket<A: Adapter>() {
    // Without them: any local address, no keepalive timer.
    let peer = FaultPeer::start(vec![Behaviour::Serve]).unwrap();
    let client = A::connect(config(&peer)).unwrap();
    let (local, timer, _) = kernel_socket(peer.addr()).expect("the socket in /proc/net/tcp");
    assert_eq!(timer, 0, "{}: {local}", A::NAME);
    client.disconnect().unwrap();
    drop(peer);
    // With them: from 127.0.0.2, the keepalive timer armed for the idle time.
    let peer = FaultPeer::start(vec![Behaviour::Serve]).unwrap();
    let mut config = config(&peer);
    config.tcp.bind = Some("127.0.0.2:0".parse().unwrap());
    config.tcp.keepalive = Some(stomp_driver::Keepalive {
        idle: Duration::from_secs(7),
        interval: Some(Duration::from_secs(2)),
        retries: Some(3),
    });
    let client = A::connect(config.clone()).unwrap();
    let (local, timer, ticks) = kernel_socket(peer.addr()).expect("the socket in /proc/net/tcp");
    assert_eq!(
        *local.ip(),
        std::net::Ipv4Addr::new(127, 0, 0, 2),
        "{}",
        A::NAME
    );
    assert_eq!(timer, 2, "{}: keepalive timer", A::NAME);
    // Clock ticks (USER_HZ, 100 a second) until the first probe.
    assert!(ticks <= 700, "{}: {ticks} ticks", A::NAME);
    client.disconnect().unwrap();
    // A local address of the other family reaches nothing: the dial fails.
    config.tcp.bind = Some("[::1]:0".parse().unwrap());
    config.tcp.keepalive = None;
    let refused = A::connect(config).map(drop);
    assert!(
        matches!(refused, Err(Error::Connect(_))),
        "{}: {refused:?}",
        A::NAME
    );
}
