//! Interop through RabbitMQ and through the embedded broker with the
//! clients people use today: Python's stomp.py over TCP and JavaScript's
//! @stomp/stompjs over WebSocket (both installed by `scripts/peers` under
//! `target/peers`). What they send, we receive intact, and the other way
//! round: text, binary bodies with NULs, escaped header values, UTF-8; the
//! peers send partly inside a transaction and acknowledge inside one. And
//! without a broker: stomp.py's `MulticastConnection` and our `udp://`
//! members exchange messages on one multicast group (on loopback).

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use stomp_driver::Config;
use stomp_proto::client::SendOptions;
use stomp_proto::AckMode;

use crate::support;
use crate::{Adapter, SuiteClient, SuiteMsg, SuiteSub};

/// Instantiates every scenario of this module for `$adapter`.
#[macro_export]
macro_rules! interop_scenarios {
    ($adapter:ty) => {
        $crate::suite!($adapter, interop: what_stomppy_sends_arrives_intact,
            what_we_send_reaches_stomppy_intact, what_stompjs_sends_arrives_intact,
            what_we_send_reaches_stompjs_intact, stomppy_and_we_share_a_multicast_group);
    };
}

/// A broker the peers meet us at.
struct Meeting {
    name: &'static str,
    /// STOMP over TCP: our URL, and the port for stomp.py.
    tcp: &'static str,
    tcp_port: u16,
    /// STOMP over WebSocket: our URL, stompjs's URL, the port.
    ws: &'static str,
    ws_for_peer: &'static str,
    ws_port: u16,
}

const MEETINGS: [Meeting; 2] = [
    Meeting {
        name: "rabbitmq",
        tcp: "stomp://guest:guest@127.0.0.1:61613",
        tcp_port: 61613,
        ws: "ws://guest:guest@127.0.0.1:15674/ws",
        ws_for_peer: "ws://127.0.0.1:15674/ws",
        ws_port: 15674,
    },
    Meeting {
        name: "embedded",
        tcp: "stomp://guest:guest@127.0.0.1:61633",
        tcp_port: support::EMBEDDED_PORT,
        ws: "ws://guest:guest@127.0.0.1:61634/stomp",
        ws_for_peer: "ws://127.0.0.1:61634/stomp",
        ws_port: support::EMBEDDED_WS_PORT,
    },
];

/// A body and its extra headers.
type Sample = (Vec<u8>, Vec<(&'static str, &'static str)>);

/// What every side sends (kept in step with `tests/peers/`).
fn messages() -> Vec<Sample> {
    vec![
        (b"plain text from a peer".to_vec(), vec![]),
        (
            (0..=255u8).chain([0, 0]).collect(),
            vec![("content-type", "application/octet-stream")],
        ),
        (b"escaped headers".to_vec(), vec![("x-note", "a:b\nc\\d")]),
        (
            "unicode \u{e9}\u{e8} \u{2603}".as_bytes().to_vec(),
            vec![("content-type", "text/plain;charset=utf-8")],
        ),
    ]
}

/// A peer client: how to run it.
struct Peer {
    program: PathBuf,
    script: &'static str,
    /// `NODE_PATH`, for the Node peer.
    node_path: Option<PathBuf>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The peer if it and the broker on `port` (if any) are there; None when
/// skipping is allowed.
fn peer(
    installed: &Path,
    program: PathBuf,
    script: &'static str,
    port: Option<u16>,
) -> Option<Peer> {
    support::embedded();
    if installed.exists() && port.is_none_or(support::listening) {
        let node_path = script
            .ends_with(".cjs")
            .then(|| root().join("target/peers/node/node_modules"));
        return Some(Peer {
            program,
            script,
            node_path,
        });
    }
    assert!(
        support::skip_allowed(),
        "{script}'s client or the broker on port {port:?} is missing (run `bash scripts/peers` and `bash scripts/brokers`)"
    );
    None
}

/// stomp.py, meeting us at `at` (a broker) or on a multicast group (None).
fn stomppy(at: Option<&Meeting>) -> Option<Peer> {
    let python = root().join("target/peers/venv/bin/python3");
    peer(
        &python.clone(),
        python,
        "stomppy.py",
        at.map(|at| at.tcp_port),
    )
}

fn stompjs(at: &Meeting) -> Option<Peer> {
    let installed = root().join("target/peers/node/node_modules/@stomp/stompjs");
    peer(
        &installed,
        PathBuf::from("node"),
        "stompjs.cjs",
        Some(at.ws_port),
    )
}

impl Peer {
    /// Starts the peer; its output comes line by line.
    fn start(&self, args: &[&str]) -> Running {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/peers")
            .join(self.script);
        let mut command = Command::new(&self.program);
        command
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(node_path) = &self.node_path {
            command.env("NODE_PATH", node_path);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            what: format!("{} {args:?}", self.script),
            deadline: Instant::now() + Duration::from_secs(30),
        }
    }

    /// Runs the peer; its standard output, or a panic with its errors.
    fn run(&self, args: &[&str]) -> String {
        self.start(args).finish()
    }
}

/// A peer process under way, bounded by a deadline.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    what: String,
    deadline: Instant,
}

impl Running {
    /// Waits for the line `want` (what came before it is dropped).
    fn wait_for(&mut self, want: &str) {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return,
                Ok(_) => {}
                Err(_) => {
                    let _ = self.child.kill();
                    panic!("{}: no {want:?} line", self.what);
                }
            }
        }
    }

    /// Waits for the end; the rest of the output, or a panic with the
    /// peer's errors.
    fn finish(mut self) -> String {
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > self.deadline {
                let _ = self.child.kill();
                panic!("{} hung", self.what);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "{}: {status}\n{err}", self.what);
        // The reader thread ends with the output.
        let out: Vec<String> = self.lines.iter().collect();
        out.iter().map(|line| format!("{line}\n")).collect()
    }
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// What the peer sent to `queue` is received intact by adapter `A` at `url`.
fn receive_from<A: Adapter>(url: &str, queue: &str) {
    let client = A::connect(Config::from_url(url).unwrap()).unwrap();
    let sub = client.subscribe(queue, AckMode::ClientIndividual).unwrap();
    for (body, headers) in messages() {
        let message = sub.recv_timeout(support::WAIT).unwrap();
        assert_eq!(&message.body()[..], &body[..], "{}", A::NAME);
        for (name, value) in headers {
            assert_eq!(message.header(name), Some(value), "{name}");
        }
        message.ack().unwrap();
    }
    client.disconnect().unwrap();
}

/// Sends every one of `samples` to `destination`, each confirmed.
fn send_samples(client: &impl SuiteClient, destination: &str, samples: &[Sample]) {
    for (body, headers) in samples {
        let options = SendOptions {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            receipt: true,
            ..SendOptions::default()
        };
        client
            .send_with(destination, body.clone().into(), options)
            .unwrap();
    }
}

/// Adapter `A` at `url` sends every sample to `queue`, confirmed.
fn send_to<A: Adapter>(url: &str, queue: &str) {
    let client = A::connect(Config::from_url(url).unwrap()).unwrap();
    send_samples(&client, queue, &messages());
    client.disconnect().unwrap();
}

/// Nothing is left in `queue`: the peer's acknowledgements took.
fn nothing_left<A: Adapter>(url: &str, queue: &str, peer: &str) {
    let client = A::connect(Config::from_url(url).unwrap()).unwrap();
    let sub = client.subscribe(queue, AckMode::Auto).unwrap();
    let left = sub.recv_timeout(Duration::from_millis(300));
    assert!(
        left.is_err(),
        "{peer} did not acknowledge: {:?}",
        left.ok().map(|m| m.body().clone())
    );
    client.disconnect().unwrap();
}

/// The peer's printout of what it received matches `samples`.
fn check_printout(peer: &str, out: &str, samples: &[Sample]) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), samples.len(), "{peer}: {out}");
    for (line, (body, headers)) in lines.iter().zip(samples) {
        let mut fields = line.split(' ');
        assert_eq!(&unhex(fields.next().unwrap()), body, "{peer}");
        let received: Vec<(String, Vec<u8>)> = fields
            .map(|f| {
                let (name, value) = f.split_once('=').unwrap();
                (name.to_string(), unhex(value))
            })
            .collect();
        for (name, value) in headers {
            assert!(
                received.contains(&(name.to_string(), value.as_bytes().to_vec())),
                "{peer} {name}: {received:?}"
            );
        }
    }
}

pub fn what_stomppy_sends_arrives_intact<A: Adapter>() {
    for at in &MEETINGS {
        let Some(stomppy) = stomppy(Some(at)) else {
            continue;
        };
        let q = support::queue("from-py");
        stomppy.run(&["send", "127.0.0.1", &at.tcp_port.to_string(), &q]);
        receive_from::<A>(at.tcp, &q);
    }
}

pub fn what_we_send_reaches_stomppy_intact<A: Adapter>() {
    for at in &MEETINGS {
        let Some(stomppy) = stomppy(Some(at)) else {
            continue;
        };
        let q = support::queue("to-py");
        send_to::<A>(at.tcp, &q);
        let count = messages().len().to_string();
        let port = at.tcp_port.to_string();
        let out = stomppy.run(&["receive", "127.0.0.1", &port, &q, &count]);
        check_printout(&format!("stomp.py via {}", at.name), &out, &messages());
        nothing_left::<A>(at.tcp, &q, "stomp.py");
    }
}

pub fn what_stompjs_sends_arrives_intact<A: Adapter>() {
    for at in &MEETINGS {
        let Some(stompjs) = stompjs(at) else { continue };
        let q = support::queue("from-js");
        stompjs.run(&["send", at.ws_for_peer, &q]);
        receive_from::<A>(at.ws, &q);
    }
}

pub fn what_we_send_reaches_stompjs_intact<A: Adapter>() {
    for at in &MEETINGS {
        let Some(stompjs) = stompjs(at) else { continue };
        let q = support::queue("to-js");
        send_to::<A>(at.ws, &q);
        let count = messages().len().to_string();
        let out = stompjs.run(&["receive", at.ws_for_peer, &q, &count]);
        check_printout(&format!("stompjs via {}", at.name), &out, &messages());
        nothing_left::<A>(at.ws, &q, "stompjs");
    }
}

/// What stomp.py's `MulticastConnection` sends intact: every sample but the
/// one with escaped headers (it writes header values unescaped, so a line
/// feed in one breaks its frame; `stomppy.py mcast-send` leaves it out).
fn multicast_samples() -> Vec<Sample> {
    messages()
        .into_iter()
        .filter(|(_, headers)| !headers.iter().any(|(name, _)| *name == "x-note"))
        .collect()
}

pub fn stomppy_and_we_share_a_multicast_group<A: Adapter>() {
    let Some(stomppy) = stomppy(None) else { return };
    let port = crate::multicast::port();
    let group = crate::multicast::GROUP;
    let url = crate::multicast::url(port, "");
    let client = A::connect(Config::from_url(&url).unwrap()).unwrap();
    let options = stomp_proto::client::SubscribeOptions {
        receipt: true,
        ..Default::default()
    };
    let sub = client.subscribe_with("/topic/interop/>", options).unwrap();

    // stomp.py to us: its sends (two of them inside its transaction) match
    // our wildcard.
    let port = port.to_string();
    stomppy.run(&["mcast-send", group, &port, "/topic/interop/from-py"]);
    for (body, headers) in multicast_samples() {
        let message = sub.recv_timeout(support::WAIT).unwrap();
        assert_eq!(&message.body()[..], &body[..], "{}", A::NAME);
        assert_eq!(
            message.header("destination"),
            Some("/topic/interop/from-py")
        );
        for (name, value) in headers {
            assert_eq!(message.header(name), Some(value), "{name}");
        }
    }

    // Us to stomp.py, once it has joined (receipts are our member's own).
    let samples = messages();
    let count = samples.len().to_string();
    let mut running = stomppy.start(&[
        "mcast-receive",
        group,
        &port,
        "/topic/interop/to-py",
        &count,
    ]);
    running.wait_for("ready");
    send_samples(&client, "/topic/interop/to-py", &samples);
    check_printout("stomp.py multicast", &running.finish(), &samples);
    // stomp.py also multicast its DISCONNECTs: not SENDs, but no garbage.
    assert_eq!(client.stats().unwrap().dropped_datagrams, 0, "{}", A::NAME);
    client.disconnect().unwrap();
}

/// Every version with each ack mode it has, for the peers' ack scenarios.
const ACK_MODES: [(&str, &str); 5] = [
    ("1.0", "client"),
    ("1.1", "client"),
    ("1.1", "client-individual"),
    ("1.2", "client"),
    ("1.2", "client-individual"),
];

/// stomp.py's `Connection10`, `Connection11` and `Connection12` at their
/// defaults, in every ack mode the version has, against the embedded broker,
/// RabbitMQ and ActiveMQ: acknowledged messages are gone, the rest come to
/// the next connection. Where the brokers disagree the test holds each to
/// what it does: an ACK and a NACK inside a committed transaction take
/// effect on RabbitMQ and the embedded broker (the NACKed message comes
/// back), while ActiveMQ 5.17 gives both messages back when the connection
/// goes, as if the transaction's acknowledgements had not happened (seen
/// every run here; the ACK outside the transaction holds).
pub fn stomppy_acknowledges_in_every_version_and_ack_mode() {
    let activemq = ("activemq", 61623);
    let brokers = MEETINGS
        .iter()
        .map(|m| (m.name, m.tcp_port))
        .chain(std::iter::once(activemq));
    for (name, port) in brokers {
        if name == "embedded" {
            support::embedded();
        }
        if !support::require(name, port) {
            continue;
        }
        let Some(stomppy) = stomppy(None) else {
            return;
        };
        for (version, mode) in ACK_MODES {
            let q = support::queue("py-acks");
            let port = port.to_string();
            let out = stomppy.run(&["acks", "127.0.0.1", &port, &q, version, mode]);
            let expected = match (mode, name) {
                ("client", _) => "d",
                (_, "activemq") => "b c d",
                _ => "b d",
            };
            assert_eq!(out.trim(), expected, "stomp.py {version} {mode} via {name}");
        }
    }
}

/// stompjs (over WebSocket) speaking only 1.0, 1.1 or 1.2, in every ack
/// mode the version has, against the embedded broker and RabbitMQ (ActiveMQ
/// has no WebSocket here): acknowledged messages are gone, the NACKed and
/// unacknowledged ones come to the next connection, as with stomp.py.
pub fn stompjs_acknowledges_in_every_version_and_ack_mode() {
    for at in &MEETINGS {
        let Some(stompjs) = stompjs(at) else { continue };
        for (version, mode) in ACK_MODES {
            let q = support::queue("js-acks");
            let out = stompjs.run(&["acks", at.ws_for_peer, &q, version, mode]);
            let expected = if mode == "client" { "d" } else { "b d" };
            assert_eq!(
                out.trim(),
                expected,
                "stompjs {version} {mode} via {}",
                at.name
            );
        }
    }
}
