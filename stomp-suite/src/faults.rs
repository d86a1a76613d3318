//! Against the scripted fault peer of `stomp-broker`: stalls, half-written
//! frames, garbage, and the connection cut at every point of the handshake.

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use stomp_broker::fault::{Behaviour, Cut, FaultPeer};
use stomp_driver::{Config, Error, Lifecycle};
use stomp_proto::client::CloseReason;
use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
use stomp_proto::server::ServerConfig;
use stomp_proto::{DecodeErrorKind, HeartBeat};

use crate::support::{self, round_trip};
use crate::{Adapter, SuiteClient};

const WAIT: Duration = Duration::from_secs(5);

/// Instantiates every scenario of this module for `$adapter`.
#[macro_export]
macro_rules! fault_scenarios {
    ($adapter:ty) => {
        $crate::suite!($adapter, faults: a_silent_broker_is_detected_within_the_heartbeat_grace, garbage_from_the_broker_is_a_protocol_error_with_its_offset, a_half_written_frame_is_never_delivered_and_the_client_reconnects, a_handshake_cut_anywhere_ends_the_session_promptly, a_handshake_cut_anywhere_is_survived_by_reconnecting);
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
    assert!(matches!(
        client.send("/queue/a", "x"),
        Err(Error::Closed(Some(CloseReason::HeartbeatTimeout)))
    ));
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
                error,
                Error::Connect(CloseReason::TransportClosed | CloseReason::TransportError(_))
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
