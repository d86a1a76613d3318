//! What the test binaries share: the skip rule, waiting for life-cycle
//! events, fresh queue names. (Each binary uses a part of it.)
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use stomp_blocking::{Client, Lifecycle};
use stomp_proto::client::SessionInfo;

/// Skipping a missing broker or peer is allowed only outside CI, when asked
/// for with `STOMP_SKIP_BROKERS=1`.
pub fn skip_allowed() -> bool {
    std::env::var("STOMP_SKIP_BROKERS").is_ok_and(|v| v == "1")
        && std::env::var("CI").map_or(true, |v| v != "true")
}

/// Whether something listens on loopback `port`.
pub fn listening(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Whether `name` on `port` is up; a panic when it is not and skipping is
/// not allowed.
pub fn require(name: &str, port: u16) -> bool {
    if listening(port) {
        return true;
    }
    assert!(
        skip_allowed(),
        "{name} is not running on port {port} (run `bash scripts/brokers`, or set \
         STOMP_SKIP_BROKERS=1 outside CI to skip)"
    );
    eprintln!("skipping {name}: not running");
    false
}

/// Waits up to `limit` for a life-cycle event that `want` accepts.
pub fn wait_for(client: &Client, limit: Duration, want: impl Fn(&Lifecycle) -> bool) -> Lifecycle {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.events().recv_timeout(left) {
            Ok(event) if want(&event) => return event,
            Ok(_) => {}
            Err(e) => panic!("no such event in {limit:?}: {e}"),
        }
    }
}

/// Waits up to `limit` for CONNECTED after a reconnect.
pub fn wait_reconnected(client: &Client, limit: Duration) -> SessionInfo {
    match wait_for(
        client,
        limit,
        |e| matches!(e, Lifecycle::Connected(info) if info.reconnected),
    ) {
        Lifecycle::Connected(info) => info,
        _ => unreachable!(),
    }
}

/// A queue no other test (or earlier run) uses: RabbitMQ's queues outlive it.
pub fn queue(test: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "/queue/stomp-rs-{test}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
