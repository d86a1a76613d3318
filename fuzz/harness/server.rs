//! The server-session fuzz check, shared by the cargo-fuzz target and the
//! stable corpus replay test.
//!
//! The input is a script: octet 0 chooses the configuration, then each octet
//! picks an operation: raw client bytes, well-formed client frames, time steps,
//! the owner's answers (accept, reject, MESSAGE, RECEIPT, ERROR) and transport
//! closes. Checked throughout:
//! - no panic;
//! - requests arrive only between an accepted CONNECT and the end, and
//!   `Closed` comes once, last;
//! - a finished session reads nothing and, once drained, writes nothing;
//! - the events of one input are bounded by the frames it can hold;
//! - after a timeout is handled and output drained, the next deadline lies in
//!   the future (no busy loop).

use std::time::{Duration, Instant};

use stomp_proto::server::{ServerConfig, ServerEvent, ServerSession};
use stomp_proto::{Command, Frame, HeartBeat, Limits, Version, VersionSet};

#[path = "script.rs"]
mod script;
use script::Script;

#[derive(Default)]
struct Owner {
    deciding: bool,
    accepted: bool,
    closed: bool,
    receipts: Vec<String>,
    /// Events the octets handed in so far may still explain.
    event_budget: usize,
}

fn config(a: u8) -> ServerConfig {
    let versions: VersionSet = Version::ALL
        .into_iter()
        .filter(|v| a & (1 << *v as u8) != 0)
        .collect();
    ServerConfig {
        versions: if versions.is_empty() {
            VersionSet::ALL
        } else {
            versions
        },
        heartbeat: HeartBeat::new(u32::from(a >> 4) * 100, u32::from(a >> 6) * 300),
        connect_timeout: Duration::from_millis(1000),
        auto_receipts: a & 0x08 != 0,
        limits: Limits {
            max_frame_size: 2048,
            max_headers: 16,
            max_header_line: 256,
            max_body: 1024,
        },
        max_outgoing: 4096,
        ..ServerConfig::default()
    }
}

/// A well-formed client frame.
fn client_frame(script: &mut Script<'_>) -> Vec<u8> {
    let kind = script.arg();
    let c = script.arg();
    let text = match kind % 12 {
        0 => format!(
            "CONNECT\naccept-version:1.{}\nhost:/\nheart-beat:{},{}\n\n\0",
            c % 3,
            u32::from(c & 0x0f) * 100,
            u32::from(c >> 4) * 100
        ),
        1 => "STOMP\naccept-version:1.0,1.1,1.2\nhost:/\n\n\0".to_string(),
        2 => format!("SEND\ndestination:/queue/{}\nreceipt:r{c}\n\nbody\0", c % 3),
        3 => format!("SUBSCRIBE\nid:s{c}\ndestination:/queue/a\nack:client\n\n\0"),
        4 => format!("UNSUBSCRIBE\nid:s{c}\n\n\0"),
        5 => format!("ACK\nid:a{c}\nmessage-id:m{c}\nsubscription:s{c}\n\n\0"),
        6 => format!("NACK\nid:a{c}\nreceipt:r{c}\n\n\0"),
        7 => format!("BEGIN\ntransaction:t{c}\n\n\0"),
        8 => format!("COMMIT\ntransaction:t{c}\nreceipt:r{c}\n\n\0"),
        9 => format!("ABORT\ntransaction:t{c}\n\n\0"),
        10 => format!("DISCONNECT\nreceipt:d{c}\n\n\0"),
        _ => "\n".to_string(),
    };
    text.into_bytes()
}

/// Drains output and events, checking the event rules; `input` is the number
/// of octets handed in since the last drain.
fn pump(server: &mut ServerSession, owner: &mut Owner, now: Instant, input: usize) {
    while server.poll_transmit(now).is_some() {}
    let mut count = 0;
    while let Some(event) = server.poll_event() {
        assert!(!owner.closed, "an event after Closed: {event:?}");
        count += 1;
        match event {
            ServerEvent::Connect(_) => {
                assert!(!owner.accepted, "a second CONNECT reported");
                owner.deciding = true;
            }
            ServerEvent::Request(request) => {
                assert!(owner.accepted, "a request before CONNECT was accepted");
                if let Some(receipt) = request.receipt {
                    owner.receipts.push(receipt);
                }
            }
            ServerEvent::Closed(_) => {
                owner.closed = true;
                assert!(server.is_finished());
            }
        }
    }
    // The smallest frame is a command, a LF and a NUL: at most one event per
    // three octets, plus the owner's own doing. Counted over the whole run,
    // not per step: requests that arrive while the owner decides on CONNECT
    // are held, and all come out when it accepts.
    owner.event_budget += input / 3 + 3;
    assert!(
        count <= owner.event_budget,
        "{count} events with a budget of {} (octets / 3, plus 3 a step)",
        owner.event_budget
    );
    owner.event_budget -= count;
    if server.is_finished() {
        assert!(server.poll_transmit(now).is_none());
    }
}

pub fn run(data: &[u8]) {
    let mut script = Script::new(data);
    let t0 = Instant::now();
    let mut now = t0;
    let mut server = ServerSession::new(config(script.arg()), now);
    let mut owner = Owner::default();
    while let Some(op) = script.byte() {
        let mut input = 0;
        match op % 10 {
            0 | 1 => {
                let n = usize::from(script.arg());
                let bytes = script.bytes(n);
                input = bytes.len();
                server.handle_input(now, bytes);
            }
            2 | 3 => {
                let frame = client_frame(&mut script);
                let split = usize::from(script.arg()) % (frame.len() + 1);
                input = frame.len();
                server.handle_input(now, &frame[..split]);
                server.handle_input(now, &frame[split..]);
            }
            4 => {
                now += Duration::from_millis(u64::from(script.arg()) * 37);
                server.handle_timeout(now);
                pump(&mut server, &mut owner, now, 0);
                assert!(
                    server.poll_timeout().is_none_or(|t| t > now),
                    "a deadline at or before now after handling it"
                );
            }
            5 => {
                let choice = script.arg();
                if owner.deciding {
                    owner.deciding = false;
                    if choice & 1 == 0 {
                        server.accept(now, Some("fuzz"));
                        // Accepted, even when a request held back meanwhile
                        // then ends the session: those before it are
                        // reported, as requests of an accepted connection.
                        owner.accepted = true;
                    } else {
                        server.reject("refused", "by the fuzz script");
                    }
                }
            }
            6 => {
                let c = script.arg();
                let frame = Frame::builder(Command::Message)
                    .header("destination", "/queue/a")
                    .header("message-id", &format!("m{c}"))
                    .header("subscription", &format!("s{c}"))
                    .header("note", "line\nbreak:colon")
                    .body(vec![b'x'; usize::from(c) * 8])
                    .build();
                let _ = server.message(&frame);
            }
            7 => {
                if let Some(receipt) = owner.receipts.pop() {
                    server.receipt(&receipt);
                }
            }
            8 => {
                let c = script.arg();
                let receipt = owner.receipts.pop().filter(|_| c & 1 == 0);
                server.error(receipt.as_deref(), "fuzz error", "details\nmore");
            }
            _ => server.handle_closed(),
        }
        pump(&mut server, &mut owner, now, input);
    }
    server.handle_closed();
    pump(&mut server, &mut owner, now, 0);
    assert!(owner.closed, "a closed transport ends the session");
}
