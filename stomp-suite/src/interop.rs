//! Interop with Python's stomp.py (installed by `scripts/peers` into
//! `target/peers/venv`) through RabbitMQ: what stomp.py sends, we receive
//! intact, and the other way round. Text, binary bodies with NULs, escaped
//! header values and UTF-8.

// Each scenario's name says what it asserts.
#![allow(missing_docs)]

use std::io::Read;
use std::path::PathBuf;
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
        $crate::suite!($adapter, interop: what_stomppy_sends_arrives_intact, what_we_send_reaches_stomppy_intact);
    };
}

const URL: &str = "stomp://guest:guest@127.0.0.1:61613";

/// A body and its extra headers.
type Sample = (Vec<u8>, Vec<(&'static str, &'static str)>);

/// What both sides send (kept in step with `peers/stomppy.py`).
fn messages() -> Vec<Sample> {
    vec![
        (b"plain text from stomp.py".to_vec(), vec![]),
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

/// The venv's Python, or None when skipping is allowed (outside CI, asked).
fn python() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("target/peers/venv/bin/python3");
    if python.exists() && support::listening(61613) {
        return Some(python);
    }
    assert!(
        support::skip_allowed(),
        "stomp.py or RabbitMQ missing (run `bash scripts/peers` and `bash scripts/brokers`)"
    );
    None
}

/// Runs the stomp.py peer; its standard output, or a panic with its errors.
fn stomppy(python: &PathBuf, args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peers/stomppy.py");
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stomp.py {args:?} hung");
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
    assert!(status.success(), "stomp.py {args:?}: {status}\n{err}");
    out
}

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

pub fn what_stomppy_sends_arrives_intact<A: Adapter>() {
    let Some(python) = python() else { return };
    let q = support::queue("from-py");
    stomppy(&python, &["send", "127.0.0.1", "61613", &q]);
    let client = A::connect(Config::from_url(URL).unwrap()).unwrap();
    let sub = client.subscribe(&q, AckMode::ClientIndividual).unwrap();
    for (body, headers) in messages() {
        let message = sub.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(&message.body()[..], &body[..]);
        for (name, value) in headers {
            assert_eq!(message.header(name), Some(value), "{name}");
        }
        message.ack().unwrap();
    }
    client.disconnect().unwrap();
}

pub fn what_we_send_reaches_stomppy_intact<A: Adapter>() {
    let Some(python) = python() else { return };
    let q = support::queue("to-py");
    let client = A::connect(Config::from_url(URL).unwrap()).unwrap();
    for (body, headers) in messages() {
        let options = SendOptions {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            receipt: true,
            ..SendOptions::default()
        };
        client.send_with(&q, body.into(), options).unwrap();
    }
    client.disconnect().unwrap();
    let count = messages().len().to_string();
    let out = stomppy(&python, &["receive", "127.0.0.1", "61613", &q, &count]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), messages().len(), "{out}");
    for (line, (body, headers)) in lines.iter().zip(messages()) {
        let mut fields = line.split(' ');
        assert_eq!(unhex(fields.next().unwrap()), body);
        let received: Vec<(String, Vec<u8>)> = fields
            .map(|f| {
                let (name, value) = f.split_once('=').unwrap();
                (name.to_string(), unhex(value))
            })
            .collect();
        for (name, value) in headers {
            assert!(
                received.contains(&(name.to_string(), value.as_bytes().to_vec())),
                "{name}: {received:?}"
            );
        }
    }
}
