//! The client-session fuzz check, shared by the cargo-fuzz target and the
//! stable corpus replay test.
//!
//! The input is a script. Octets 0 and 1 choose the configuration (versions,
//! heart-beats, reconnect policy); then each octet picks an operation and the
//! octets after it its arguments: raw server bytes, well-formed server frames
//! that name the session's own ids (to reach deep states), time steps, dial
//! outcomes, transport closes and every command. Checked throughout:
//! - no panic;
//! - every receipt the commands handed out is resolved at most once, by a
//!   `Receipt` or `RequestFailed`, and all of them are resolved once the
//!   session has closed;
//! - nothing follows `Closed`, and a closed session asks for nothing more;
//! - the events of one operation are bounded by the configured limits;
//! - after a timeout is handled and output drained, the next deadline lies in
//!   the future unless a dial is due (no busy loop).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use stomp_proto::client::{
    AckHandle, ClientConfig, ClientSession, Event, ReceiptId, SendOptions, SubscribeOptions,
    SubscriptionId, TxId,
};
use stomp_proto::reconnect::{ReconnectPolicy, UnconfirmedSends};
use stomp_proto::uri::Endpoint;
use stomp_proto::{AckMode, HeartBeat, Limits, Version, VersionSet};

#[path = "script.rs"]
mod script;
use script::Script;

const MAX_EVENTS: usize = 8;
const MAX_PENDING: usize = 4;

/// What the harness knows, as the session's owner would.
#[derive(Default)]
struct Owner {
    outstanding: BTreeSet<ReceiptId>,
    subscriptions: Vec<SubscriptionId>,
    transactions: Vec<TxId>,
    handles: Vec<AckHandle>,
    closed: bool,
    messages: u32,
}

impl Owner {
    fn track(&mut self, receipt: Option<ReceiptId>) {
        if let Some(receipt) = receipt {
            assert!(self.outstanding.insert(receipt), "a receipt id was reused");
        }
    }

    fn pick<T: Clone>(list: &[T], choice: u8) -> Option<T> {
        (!list.is_empty()).then(|| list[usize::from(choice) % list.len()].clone())
    }
}

fn config(a: u8, b: u8) -> ClientConfig {
    let versions: VersionSet = Version::ALL
        .into_iter()
        .filter(|v| a & (1 << *v as u8) != 0)
        .collect();
    let mut reconnect = if a & 0x08 != 0 {
        ReconnectPolicy {
            max_attempts: match (a >> 4) & 3 {
                0 => None,
                n => Some(u32::from(n)),
            },
            ..ReconnectPolicy::failover()
        }
    } else {
        ReconnectPolicy::default()
    };
    reconnect.seed = u64::from(b);
    if a & 0x40 != 0 {
        reconnect.unconfirmed_sends = UnconfirmedSends::Resend;
    }
    ClientConfig {
        hosts: vec![
            Endpoint::tcp("a", 1),
            Endpoint::tcp("b", 2),
            Endpoint::tcp("c", 3),
        ],
        reconnect,
        versions: if versions.is_empty() {
            VersionSet::ALL
        } else {
            versions
        },
        heartbeat: HeartBeat::new(u32::from(b & 0x0f) * 100, u32::from(b >> 4) * 100),
        use_stomp_command: a & 0x80 != 0,
        connect_timeout: Duration::from_millis(1000),
        receipt_timeout: Duration::from_millis(500),
        disconnect_timeout: Duration::from_millis(500),
        limits: Limits {
            max_frame_size: 2048,
            max_headers: 16,
            max_header_line: 256,
            max_body: 1024,
        },
        max_outgoing: 2048,
        max_pending_receipts: MAX_PENDING,
        max_events: MAX_EVENTS,
        ..ClientConfig::default()
    }
}

/// A well-formed server frame naming the session's own ids.
fn server_frame(owner: &Owner, script: &mut Script<'_>) -> Vec<u8> {
    let kind = script.arg();
    let choice = script.arg();
    let receipt = Owner::pick(
        &owner.outstanding.iter().cloned().collect::<Vec<_>>(),
        choice,
    )
    .map(|r| r.to_string())
    .unwrap_or_else(|| format!("r-{choice}"));
    let subscription = Owner::pick(&owner.subscriptions, choice)
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("sub-{choice}"));
    let n = owner.messages;
    let text = match kind % 8 {
        0 => format!(
            "CONNECTED\nversion:1.{}\nheart-beat:{},{}\nsession:s\n\n\0",
            choice % 3,
            u32::from(choice & 0x0f) * 100,
            u32::from(choice >> 4) * 100
        ),
        1 | 2 => format!(
            "MESSAGE\nsubscription:{subscription}\nmessage-id:m{n}\nack:a{n}\n\
             destination:/queue/{}\ncontent-length:2\n\nhi\0",
            choice % 3
        ),
        3 => format!("RECEIPT\nreceipt-id:{receipt}\n\n\0"),
        4 => format!("ERROR\nreceipt-id:{receipt}\nmessage:no\n\nbody\0"),
        5 => "ERROR\nmessage:fatal\n\n\0".to_string(),
        6 => "\n".to_string(),
        _ => format!(
            "MESSAGE\nmessage-id:m{n}\ndestination:/queue/{}\n\n\0",
            choice % 3
        ),
    };
    text.into_bytes()
}

/// Drains output and events as an owner would, checking the event rules.
fn pump(client: &mut ClientSession, owner: &mut Owner, now: Instant, ops: usize) {
    while client.poll_transmit(now).is_some() {}
    let mut count = 0;
    while let Some(event) = client.poll_event() {
        assert!(!owner.closed, "an event after Closed: {event:?}");
        count += 1;
        match event {
            Event::Receipt(receipt) | Event::RequestFailed { receipt, .. } => {
                assert!(
                    owner.outstanding.remove(&receipt),
                    "{receipt:?} resolved twice or never asked for"
                );
            }
            Event::Message(message) => {
                owner.messages += 1;
                if let Some(handle) = message.ack {
                    owner.handles.push(handle);
                    if owner.handles.len() > 16 {
                        owner.handles.remove(0);
                    }
                }
            }
            Event::ConnectionLost { .. } | Event::DialFailed { .. } => owner.transactions.clear(),
            Event::Closed(_) => {
                owner.closed = true;
                assert!(client.is_closed());
                assert!(
                    owner.outstanding.is_empty(),
                    "closed with {:?} unresolved",
                    owner.outstanding
                );
            }
            _ => {}
        }
    }
    assert!(
        count <= ops * (MAX_EVENTS + MAX_PENDING + 8),
        "{count} events from {ops} operations"
    );
    if owner.closed {
        assert!(client.poll_timeout().is_none());
        assert!(client.poll_dial(now).is_none());
        assert!(client.poll_transmit(now).is_none());
    }
}

pub fn run(data: &[u8]) {
    let mut script = Script::new(data);
    let (a, b) = (script.arg(), script.arg());
    let t0 = Instant::now();
    let mut now = t0;
    let mut client = ClientSession::new(config(a, b), now);
    let mut owner = Owner::default();
    let mut undrained = 0;
    let mut ids = 0u32;
    while let Some(op) = script.byte() {
        undrained += 1;
        match op % 16 {
            0 | 1 => {
                let n = usize::from(script.arg());
                client.handle_input(now, script.bytes(n));
            }
            2 | 3 => {
                let frame = server_frame(&owner, &mut script);
                let split = usize::from(script.arg()) % (frame.len() + 1);
                client.handle_input(now, &frame[..split]);
                client.handle_input(now, &frame[split..]);
            }
            4 => {
                now += Duration::from_millis(u64::from(script.arg()) * 37);
                client.handle_timeout(now);
                pump(&mut client, &mut owner, now, undrained);
                if client.poll_timeout().is_some_and(|t| t <= now) {
                    let dial = client.poll_dial(now);
                    assert!(
                        dial.is_some(),
                        "a deadline at or before now after handling it"
                    );
                    client.handle_closed(now);
                }
            }
            5 => {
                if client.poll_dial(now).is_some() {
                    if script.arg() & 1 == 1 {
                        client.handle_connected(now);
                    } else {
                        client.handle_closed(now);
                    }
                }
            }
            6 => {
                let choice = script.arg();
                let id = (choice & 1 == 1).then(|| {
                    ids += 1;
                    format!("own-{}", ids % 4)
                });
                let ack = [AckMode::Auto, AckMode::Client, AckMode::ClientIndividual]
                    [usize::from(choice >> 1) % 3];
                let options = SubscribeOptions {
                    id,
                    ack,
                    headers: vec![("selector".into(), "a = 'b'".into())],
                    receipt: choice & 0x40 != 0,
                };
                if let Ok((id, receipt)) =
                    client.subscribe(&format!("/queue/{}", choice % 3), options)
                {
                    owner.subscriptions.push(id);
                    owner.track(receipt);
                }
            }
            7 => {
                let choice = script.arg();
                if let Some(id) = Owner::pick(&owner.subscriptions, choice) {
                    if let Ok(receipt) = client.unsubscribe(&id, choice & 0x80 != 0) {
                        owner.subscriptions.retain(|s| s != &id);
                        owner.track(receipt);
                    }
                }
            }
            8 => {
                let choice = script.arg();
                let size = usize::from(script.arg()) * 16;
                let options = SendOptions {
                    headers: vec![("note".into(), "a:b\nc".into())],
                    content_type: (choice & 2 != 0).then(|| "text/plain".into()),
                    transaction: if choice & 4 != 0 {
                        Owner::pick(&owner.transactions, choice)
                    } else {
                        None
                    },
                    receipt: choice & 1 != 0,
                    receipt_id: (choice & 16 != 0).then(|| format!("mine-{}", choice % 4)),
                    content_length: (choice & 8 != 0)
                        .then_some(stomp_proto::ContentLengthPolicy::WhenRequired),
                };
                if let Ok(receipt) = client.send("/queue/0", vec![b'x'; size], options) {
                    owner.track(receipt);
                }
            }
            9 => {
                let choice = script.arg();
                if let Some(handle) = Owner::pick(&owner.handles, choice) {
                    let tx = Owner::pick(&owner.transactions, choice).filter(|_| choice & 4 != 0);
                    let result = if choice & 1 == 0 {
                        client.ack(&handle, tx.as_ref(), choice & 2 != 0)
                    } else {
                        client.nack(&handle, tx.as_ref(), choice & 2 != 0)
                    };
                    if let Ok(receipt) = result {
                        owner.track(receipt);
                    }
                }
            }
            10 => {
                let choice = script.arg();
                let id = format!("t{}", choice % 4);
                let id = (choice & 8 != 0).then_some(id.as_str());
                if let Ok((tx, receipt)) = client.begin(id, choice & 0x10 != 0) {
                    owner.transactions.push(tx);
                    owner.track(receipt);
                }
            }
            11 => {
                let choice = script.arg();
                let tx = Owner::pick(&owner.transactions, choice)
                    .unwrap_or_else(|| "never-begun".into());
                let result = if choice & 1 == 0 {
                    client.commit(&tx, choice & 2 != 0)
                } else {
                    client.abort(&tx, choice & 2 != 0)
                };
                if let Ok(receipt) = result {
                    owner.transactions.retain(|t| t != &tx);
                    owner.track(receipt);
                }
            }
            12 => {
                let _ = client.disconnect();
            }
            13 => client.handle_closed(now),
            14 => {
                if script.arg() == 0xff {
                    client.close();
                }
            }
            _ => continue, // leave events undrained: the queue bounds hold
        }
        pump(&mut client, &mut owner, now, undrained);
        undrained = 0;
    }
    client.close();
    pump(&mut client, &mut owner, now, 1);
    assert!(owner.closed, "close() ends every session");
}
