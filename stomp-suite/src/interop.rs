//! Interop through RabbitMQ and through the embedded broker with the
//! clients people use today: Python's stomp.py over TCP and JavaScript's
//! @stomp/stompjs over WebSocket (both installed by `scripts/peers` under
//! `target/peers`). What they send, we receive intact, and the other way
//! round: text, binary bodies with NULs, escaped header values, UTF-8; the
//! peers send partly inside a transaction and acknowledge inside one.

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::io::Read;
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
            what_we_send_reaches_stompjs_intact);
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

/// The peer if it and the broker on `port` are there; None when skipping
/// is allowed.
fn peer(installed: &Path, program: PathBuf, script: &'static str, port: u16) -> Option<Peer> {
    support::embedded();
    if installed.exists() && support::listening(port) {
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
        "{script}'s client or the broker on port {port} is missing (run `bash scripts/peers` and `bash scripts/brokers`)"
    );
    None
}

fn stomppy(at: &Meeting) -> Option<Peer> {
    let python = root().join("target/peers/venv/bin/python3");
    peer(&python.clone(), python, "stomppy.py", at.tcp_port)
}

fn stompjs(at: &Meeting) -> Option<Peer> {
    let installed = root().join("target/peers/node/node_modules/@stomp/stompjs");
    peer(&installed, PathBuf::from("node"), "stompjs.cjs", at.ws_port)
}

impl Peer {
    /// Runs the peer; its standard output, or a panic with its errors.
    fn run(&self, args: &[&str]) -> String {
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
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("{} {args:?} hung", self.script);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (mut out, mut err) = (String::new(), String::new());
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(
            status.success(),
            "{} {args:?}: {status}\n{err}",
            self.script
        );
        out
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

/// Adapter `A` at `url` sends every sample to `queue`, confirmed.
fn send_to<A: Adapter>(url: &str, queue: &str) {
    let client = A::connect(Config::from_url(url).unwrap()).unwrap();
    for (body, headers) in messages() {
        let options = SendOptions {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            receipt: true,
            ..SendOptions::default()
        };
        client.send_with(queue, body.into(), options).unwrap();
    }
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

/// The peer's printout of what it received matches every sample.
fn check_printout(peer: &str, out: &str) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), messages().len(), "{peer}: {out}");
    for (line, (body, headers)) in lines.iter().zip(messages()) {
        let mut fields = line.split(' ');
        assert_eq!(unhex(fields.next().unwrap()), body, "{peer}");
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
        let Some(stomppy) = stomppy(at) else { continue };
        let q = support::queue("from-py");
        stomppy.run(&["send", "127.0.0.1", &at.tcp_port.to_string(), &q]);
        receive_from::<A>(at.tcp, &q);
    }
}

pub fn what_we_send_reaches_stomppy_intact<A: Adapter>() {
    for at in &MEETINGS {
        let Some(stomppy) = stomppy(at) else { continue };
        let q = support::queue("to-py");
        send_to::<A>(at.tcp, &q);
        let count = messages().len().to_string();
        let port = at.tcp_port.to_string();
        let out = stomppy.run(&["receive", "127.0.0.1", &port, &q, &count]);
        check_printout(&format!("stomp.py via {}", at.name), &out);
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
        check_printout(&format!("stompjs via {}", at.name), &out);
        nothing_left::<A>(at.ws, &q, "stompjs");
    }
}
