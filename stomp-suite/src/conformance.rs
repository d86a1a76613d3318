//! The differential conformance suite: one list of scenarios, each written
//! with raw frames on a socket (neither our client nor our server session is
//! the judge: frames are written by hand and read by the small parser here),
//! run against RabbitMQ, ActiveMQ and the embedded broker.
//!
//! Each scenario reduces what the broker did to a short answer. Where the
//! spec or common sense says what must happen, all three must give the same
//! answer ([`Expect::All`]); where RabbitMQ and ActiveMQ disagree, both
//! answers are recorded, with the one the embedded broker follows and why
//! ([`Expect::Differ`]). A broker that changes its answer fails the suite.
//! [`table`] renders the whole list; `stomp-suite/CONFORMANCE.md` is that
//! table, checked to be current by the test binary.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{self, queue};

/// A broker the scenarios run against.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// `rabbitmq`, `activemq` or `embedded`.
    pub kind: &'static str,
    /// Its STOMP over TCP port on loopback.
    pub port: u16,
}

/// The three brokers, in the table's column order.
pub const TARGETS: [Target; 3] = [
    Target {
        kind: "rabbitmq",
        port: 61613,
    },
    Target {
        kind: "activemq",
        port: 61623,
    },
    Target {
        kind: "embedded",
        port: support::EMBEDDED_PORT,
    },
];

/// How long a scenario waits for a frame that should come.
const WAIT: Duration = Duration::from_secs(5);

/// How long a scenario listens for a frame that should not come.
const QUIET: Duration = Duration::from_millis(500);

/// How long a scenario waits for redeliveries after a drop or a NACK.
const SETTLE: Duration = Duration::from_secs(2);

/// One frame as read off the wire: headers raw (not unescaped), in order.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The command line.
    pub command: String,
    /// Every header line, split at its first colon, repeats kept.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Frame {
    /// The first header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the next read gave.
#[derive(Debug)]
pub enum Next {
    /// A whole frame (heart-beats skipped).
    Frame(Frame),
    /// The broker closed the connection (or reset it).
    Closed,
    /// Nothing within the time given.
    Quiet,
}

/// A raw STOMP connection.
pub struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
    /// MESSAGEs read while [`expect`](Raw::expect) waited for another frame.
    held: std::collections::VecDeque<Frame>,
}

impl Raw {
    /// A TCP connection to `target`, nothing sent.
    pub fn open(target: Target) -> Raw {
        let addr = SocketAddr::from(([127, 0, 0, 1], target.port));
        let stream = TcpStream::connect_timeout(&addr, WAIT)
            .unwrap_or_else(|e| panic!("{}: {e}", target.kind));
        stream.set_nodelay(true).unwrap();
        Raw {
            stream,
            buf: Vec::new(),
            closed: false,
            held: Default::default(),
        }
    }

    /// Opens and sends CONNECT with the test login, `host:/` and `extra`
    /// header lines (`name:value`, written as given); the answer.
    pub fn connect(target: Target, command: &str, extra: &[&str]) -> (Raw, Next) {
        let mut raw = Raw::open(target);
        let mut frame = format!("{command}\nlogin:guest\npasscode:guest\nhost:/\n");
        for line in extra {
            frame.push_str(line);
            frame.push('\n');
        }
        frame.push_str("\n\0");
        raw.write(frame.as_bytes());
        let answer = raw.next(WAIT);
        (raw, answer)
    }

    /// A connection in `version` (heart-beats off), or a panic.
    pub fn session(target: Target, version: &str) -> Raw {
        let accept = format!("accept-version:{version}");
        let (raw, answer) = Raw::connect(target, "CONNECT", &[&accept, "heart-beat:0,0"]);
        match answer {
            Next::Frame(f) if f.command == "CONNECTED" => raw,
            other => panic!("{}: CONNECT {version}: {other:?}", target.kind),
        }
    }

    /// Writes raw octets (a closed connection is noted, not a panic).
    pub fn write(&mut self, bytes: &[u8]) {
        if self.stream.write_all(bytes).is_err() {
            self.closed = true;
        }
    }

    /// Writes a frame: `headers` are raw header lines, the body as given,
    /// with a `content-length` only if a header line gives one.
    pub fn frame(&mut self, command: &str, headers: &[&str], body: &[u8]) {
        let mut bytes = Vec::with_capacity(64 + body.len());
        bytes.extend_from_slice(command.as_bytes());
        bytes.push(b'\n');
        for line in headers {
            bytes.extend_from_slice(line.as_bytes());
            bytes.push(b'\n');
        }
        bytes.push(b'\n');
        bytes.extend_from_slice(body);
        bytes.push(0);
        self.write(&bytes);
    }

    /// The next frame within `limit`, skipping heart-beats.
    pub fn next(&mut self, limit: Duration) -> Next {
        if let Some(frame) = self.held.pop_front() {
            return Next::Frame(frame);
        }
        let deadline = Instant::now() + limit;
        loop {
            if let Some(frame) = self.parse() {
                return Next::Frame(frame);
            }
            if self.closed {
                return Next::Closed;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Next::Quiet;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0; 64 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(_) => self.closed = true,
            }
        }
    }

    /// The next frame but MESSAGEs, which must be `command`; MESSAGEs
    /// before it are kept for [`next`](Raw::next) (the spec does not order a
    /// RECEIPT and the MESSAGEs around it).
    pub fn expect(&mut self, command: &str) -> Frame {
        let mut messages = Vec::new();
        let deadline = Instant::now() + WAIT;
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Only frames read now: the held ones were passed over already.
            let next = match self.parse() {
                Some(frame) => Next::Frame(frame),
                None if self.closed => Next::Closed,
                None if left.is_zero() => Next::Quiet,
                None => {
                    let held = std::mem::take(&mut self.held);
                    let next = self.next(left);
                    self.held = held;
                    next
                }
            };
            match next {
                Next::Frame(f) if f.command == command => break f,
                Next::Frame(f) if f.command == "MESSAGE" => messages.push(f),
                other => panic!("expected {command}, got {other:?}"),
            }
        };
        self.held.extend(messages);
        found
    }

    /// A frame parsed off the front of the buffer, if a whole one is there.
    fn parse(&mut self) -> Option<Frame> {
        let start = self
            .buf
            .iter()
            .position(|&b| b != b'\n' && b != b'\r')
            .unwrap_or(self.buf.len());
        self.buf.drain(..start);
        let head_end = find(&self.buf, b"\n\n")
            .map(|at| (at, at + 2))
            .into_iter()
            .chain(find(&self.buf, b"\r\n\r\n").map(|at| (at, at + 4)))
            .min()?;
        let head = String::from_utf8_lossy(&self.buf[..head_end.0]).replace('\r', "");
        let mut lines = head.split('\n');
        let command = lines.next()?.to_string();
        let headers: Vec<(String, String)> = lines
            .map(|line| match line.split_once(':') {
                Some((n, v)) => (n.to_string(), v.to_string()),
                None => (line.to_string(), String::new()),
            })
            .collect();
        let body_start = head_end.1;
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        let body_end = match length {
            Some(n) if self.buf.len() > body_start + n => body_start + n,
            Some(_) => return None,
            None => body_start + self.buf[body_start..].iter().position(|&b| b == 0)?,
        };
        let body = self.buf[body_start..body_end].to_vec();
        self.buf.drain(..=body_end);
        Some(Frame {
            command,
            headers,
            body,
        })
    }

    /// What the broker does within `limit`: the frame, closed, or quiet.
    fn after(&mut self, limit: Duration) -> &'static str {
        match self.next(limit) {
            Next::Frame(_) => "a frame",
            Next::Closed => "closed",
            Next::Quiet => "open",
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a scenario must answer.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// The same answer from all three.
    All(&'static str),
    /// RabbitMQ and ActiveMQ disagree: each one's answer, the embedded
    /// broker's, and why it answers so.
    Differ {
        /// RabbitMQ's answer.
        rabbitmq: &'static str,
        /// ActiveMQ's answer.
        activemq: &'static str,
        /// The embedded broker's answer.
        embedded: &'static str,
        /// Which one it follows, and why.
        why: &'static str,
    },
}

impl Expect {
    /// The answer `kind` must give.
    pub fn of(&self, kind: &str) -> &'static str {
        match *self {
            Expect::All(answer) => answer,
            Expect::Differ {
                rabbitmq,
                activemq,
                embedded,
                ..
            } => match kind {
                "rabbitmq" => rabbitmq,
                "activemq" => activemq,
                _ => embedded,
            },
        }
    }
}

/// One scenario.
pub struct Scenario {
    /// What it tries, in a few words.
    pub name: &'static str,
    /// Runs it against a broker; the answer.
    pub run: fn(Target) -> String,
    /// What each broker must answer.
    pub expect: Expect,
}

/// The ERROR's `receipt-id` and what the connection does after it.
fn error_answer(raw: &mut Raw) -> String {
    match raw.next(WAIT) {
        Next::Frame(f) if f.command == "ERROR" => {
            let receipt = match f.header("receipt-id") {
                Some(id) => format!(" receipt-id:{id}"),
                None => String::new(),
            };
            format!("ERROR{receipt}, then {}", raw.after(Duration::from_secs(1)))
        }
        Next::Frame(f) => format!("{} (no ERROR)", f.command),
        Next::Closed => "closed, no ERROR".to_string(),
        Next::Quiet => "nothing".to_string(),
    }
}

/// The CONNECTED's `version` (or its absence), or what came instead.
fn connected_version(answer: Next) -> String {
    match answer {
        Next::Frame(f) if f.command == "CONNECTED" => match f.header("version") {
            Some(v) => format!("CONNECTED version:{v}"),
            None => "CONNECTED, no version".to_string(),
        },
        Next::Frame(f) => match f.header("version") {
            Some(v) => format!("{} version:{v}", f.command),
            None => format!("{}, no version header", f.command),
        },
        Next::Closed => "closed".to_string(),
        Next::Quiet => "nothing".to_string(),
    }
}

fn negotiate(target: Target, extra: &[&str]) -> String {
    let (_raw, answer) = Raw::connect(target, "CONNECT", extra);
    connected_version(answer)
}

fn heart_beat(target: Target, asked: &str) -> String {
    let asked = format!("heart-beat:{asked}");
    match Raw::connect(target, "CONNECT", &["accept-version:1.2", &asked]).1 {
        Next::Frame(f) => format!("heart-beat:{}", f.header("heart-beat").unwrap_or("(none)")),
        other => format!("{other:?}"),
    }
}

/// Sends `bodies` to `dest` over a connection of its own, with a receipt
/// for the last.
fn produce(target: Target, dest: &str, bodies: &[&str]) {
    let mut raw = Raw::session(target, "1.2");
    let destination = format!("destination:{dest}");
    for (i, body) in bodies.iter().enumerate() {
        if i + 1 == bodies.len() {
            raw.frame("SEND", &[&destination, "receipt:last"], body.as_bytes());
        } else {
            raw.frame("SEND", &[&destination], body.as_bytes());
        }
    }
    raw.expect("RECEIPT");
    raw.frame("DISCONNECT", &["receipt:bye"], b"");
    raw.expect("RECEIPT");
}

/// Subscribes `raw` to `dest` as `id` in `ack` mode.
fn subscribe(raw: &mut Raw, dest: &str, id: &str, ack: &str) {
    let destination = format!("destination:{dest}");
    let id = format!("id:{id}");
    let ack = format!("ack:{ack}");
    raw.frame("SUBSCRIBE", &[&destination, &id, &ack, "receipt:sub"], b"");
    raw.expect("RECEIPT");
}

/// Takes up to `n` MESSAGEs (each within [`WAIT`]).
fn take(raw: &mut Raw, n: usize) -> Vec<Frame> {
    let mut got = Vec::new();
    while got.len() < n {
        match raw.next(WAIT) {
            Next::Frame(f) if f.command == "MESSAGE" => got.push(f),
            Next::Frame(_) => {}
            _ => break,
        }
    }
    got
}

/// Every MESSAGE that comes within [`QUIET`] of the last.
fn drain(raw: &mut Raw) -> Vec<Frame> {
    drain_after(raw, QUIET)
}

/// [`drain`], waiting up to `first` for the first frame: what comes back
/// once the broker has handled a close or a NACK may take a moment more.
fn drain_after(raw: &mut Raw, first: Duration) -> Vec<Frame> {
    let mut got = Vec::new();
    let mut wait = first;
    while let Next::Frame(f) = raw.next(wait) {
        if f.command == "MESSAGE" {
            got.push(f);
        }
        wait = QUIET;
    }
    got
}

fn bodies(frames: &[Frame]) -> String {
    let list = frames
        .iter()
        .map(|f| String::from_utf8_lossy(&f.body).into_owned())
        .collect::<Vec<_>>();
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(",")
    }
}

/// The ACK frame's header lines for `message` in `version`.
fn ack_headers(version: &str, message: &Frame) -> Vec<String> {
    match version {
        "1.2" => vec![format!("id:{}", message.header("ack").unwrap_or("?"))],
        "1.1" => vec![
            format!("message-id:{}", message.header("message-id").unwrap_or("?")),
            format!(
                "subscription:{}",
                message.header("subscription").unwrap_or("?")
            ),
        ],
        _ => vec![format!(
            "message-id:{}",
            message.header("message-id").unwrap_or("?")
        )],
    }
}

fn ack(raw: &mut Raw, command: &str, version: &str, message: &Frame, extra: &[&str]) {
    let mut lines = ack_headers(version, message);
    lines.extend(extra.iter().map(|s| s.to_string()));
    let lines = lines.iter().map(String::as_str).collect::<Vec<_>>();
    raw.frame(command, &lines, b"");
}

/// What comes back to a new subscription after `before` ran on one that
/// took `sent` messages and closed without a DISCONNECT.
fn redelivery(
    target: Target,
    version: &str,
    mode: &str,
    sent: usize,
    before: impl FnOnce(&mut Raw, &[Frame]),
) -> String {
    let dest = queue("conformance");
    let names = (1..=sent).map(|i| i.to_string()).collect::<Vec<_>>();
    let names = names.iter().map(String::as_str).collect::<Vec<_>>();
    produce(target, &dest, &names);
    let mut first = Raw::session(target, version);
    subscribe(&mut first, &dest, "s1", mode);
    let got = take(&mut first, sent);
    if got.len() != sent {
        return format!("only {} of {sent} delivered", got.len());
    }
    before(&mut first, &got);
    // Everything before is written; the broker has read it once a receipt
    // for a frame after it comes back.
    first.frame("BEGIN", &["transaction:probe", "receipt:probe"], b"");
    first.expect("RECEIPT");
    drop(first);
    let mut second = Raw::session(target, version);
    subscribe(&mut second, &dest, "s2", "auto");
    let again = drain_after(&mut second, SETTLE);
    let redelivered = again
        .first()
        .map(|f| {
            format!(
                " (redelivered:{})",
                f.header("redelivered").unwrap_or("absent")
            )
        })
        .unwrap_or_default();
    format!("back: {}{redelivered}", bodies(&again))
}

fn redelivered_after_disconnect(target: Target) -> String {
    redelivery(target, "1.2", "client-individual", 1, |_, _| {})
}

fn cumulative_client_acks(target: Target) -> String {
    let answer = redelivery(target, "1.2", "client", 50, |raw, got| {
        ack(raw, "ACK", "1.2", &got[24], &[]);
    });
    // 26 to 50 back: shorten the list.
    answer.replace(
        &(26..=50)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(","),
        "26..50",
    )
}

fn individual_acks(version: &'static str) -> fn(Target) -> String {
    fn run(target: Target, version: &str) -> String {
        redelivery(target, version, "client-individual", 10, |raw, got| {
            for message in got.iter().step_by(2) {
                ack(raw, "ACK", version, message, &[]);
            }
        })
    }
    match version {
        "1.1" => |t| run(t, "1.1"),
        _ => |t| run(t, "1.2"),
    }
}

fn client_acks_in_1_0(target: Target) -> String {
    redelivery(target, "1.0", "client", 4, |raw, got| {
        ack(raw, "ACK", "1.0", &got[1], &[]);
    })
}

fn nack_requeues_or_not(target: Target) -> String {
    let dest = queue("conformance-nack");
    produce(target, &dest, &["n"]);
    let mut raw = Raw::session(target, "1.2");
    subscribe(&mut raw, &dest, "s1", "client-individual");
    let got = take(&mut raw, 1);
    let Some(first) = got.first() else {
        return "not delivered".to_string();
    };
    ack(&mut raw, "NACK", "1.2", first, &[]);
    let again = drain_after(&mut raw, SETTLE);
    let again = match again.first() {
        Some(f) => format!(
            "redelivered at once (redelivered:{})",
            f.header("redelivered").unwrap_or("absent")
        ),
        None => "not redelivered".to_string(),
    };
    // Either way, nothing of it is left for a later consumer but what was
    // given again.
    for f in drain(&mut raw) {
        ack(&mut raw, "ACK", "1.2", &f, &[]);
    }
    again
}

fn ack_in_transaction(commit: bool) -> fn(Target) -> String {
    fn run(target: Target, commit: bool) -> String {
        redelivery(target, "1.2", "client-individual", 1, |raw, got| {
            raw.frame("BEGIN", &["transaction:t1"], b"");
            ack(raw, "ACK", "1.2", &got[0], &["transaction:t1"]);
            let end = if commit { "COMMIT" } else { "ABORT" };
            raw.frame(end, &["transaction:t1", "receipt:end"], b"");
            raw.expect("RECEIPT");
        })
    }
    if commit {
        |t| run(t, true)
    } else {
        |t| run(t, false)
    }
}

/// The receipts that come within a short wait.
fn receipts_within(raw: &mut Raw, wait: Duration) -> String {
    let mut ids = Vec::new();
    while let Next::Frame(frame) = raw.next(wait) {
        if frame.command == "RECEIPT" {
            ids.push(frame.header("receipt-id").unwrap_or("?").to_string());
        }
    }
    match ids.is_empty() {
        true => "none".to_string(),
        false => ids.join(", "),
    }
}

fn receipt_inside_a_transaction(target: Target) -> String {
    let dest = queue("conformance-tx-receipt");
    let mut raw = Raw::session(target, "1.2");
    raw.frame("BEGIN", &["transaction:t1", "receipt:begin"], b"");
    raw.expect("RECEIPT");
    let destination = format!("destination:{dest}");
    raw.frame(
        "SEND",
        &[&destination, "transaction:t1", "receipt:send"],
        b"x",
    );
    let before = receipts_within(&mut raw, Duration::from_millis(500));
    raw.frame("COMMIT", &["transaction:t1", "receipt:commit"], b"");
    let after = receipts_within(&mut raw, Duration::from_millis(500));
    format!("before COMMIT: {before}; after: {after}")
}

fn temp_queue_reply(target: Target) -> String {
    let dest = queue("conformance-temp");
    let mut server = Raw::session(target, "1.2");
    subscribe(&mut server, &dest, "s1", "auto");
    let mut asker = Raw::session(target, "1.2");
    let destination = format!("destination:{dest}");
    asker.frame(
        "SEND",
        &[&destination, "reply-to:/temp-queue/r", "receipt:ask"],
        b"q",
    );
    asker.expect("RECEIPT");
    let request = take(&mut server, 1);
    let Some(to) = request.first().and_then(|f| f.header("reply-to")) else {
        return "no request".into();
    };
    let to = to.to_string();
    // The queue's name is the broker's own.
    let passed = ["/reply-queue/", "/remote-temp-queue/"]
        .into_iter()
        .find(|prefix| to.starts_with(prefix))
        .map_or_else(|| to.clone(), |prefix| format!("{prefix}…"));
    server.frame("SEND", &[&format!("destination:{to}")], b"a");
    let answer = match asker.next(Duration::from_millis(1000)) {
        Next::Frame(f) if f.command == "MESSAGE" => {
            format!(
                "answer for subscription {}",
                f.header("subscription").unwrap_or("?")
            )
        }
        _ => "no answer".to_string(),
    };
    format!("reply-to passed on as {passed}; {answer}")
}

fn topic_reaches_two_subscribers(target: Target) -> String {
    let topic = queue("conformance-topic").replace("/queue/", "/topic/");
    let mut a = Raw::session(target, "1.2");
    let mut b = Raw::session(target, "1.2");
    subscribe(&mut a, &topic, "a", "auto");
    subscribe(&mut b, &topic, "b", "auto");
    produce(target, &topic, &["t"]);
    format!(
        "first got {}, second got {}",
        bodies(&take(&mut a, 1)),
        bodies(&take(&mut b, 1))
    )
}

fn unsubscribe(version: &'static str) -> fn(Target) -> String {
    fn run(target: Target, version: &str) -> String {
        let dest = queue("conformance-unsub");
        let mut raw = Raw::session(target, version);
        let destination = format!("destination:{dest}");
        let (subscribe_lines, unsubscribe_line) = if version == "1.0" {
            (vec![destination.clone()], destination.clone())
        } else {
            (vec![destination.clone(), "id:s1".into()], "id:s1".into())
        };
        let mut lines = subscribe_lines
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>();
        lines.push("receipt:sub");
        raw.frame("SUBSCRIBE", &lines, b"");
        raw.expect("RECEIPT");
        produce(target, &dest, &["before"]);
        let before = bodies(&take(&mut raw, 1));
        raw.frame("UNSUBSCRIBE", &[&unsubscribe_line, "receipt:unsub"], b"");
        let receipt = match raw.next(WAIT) {
            Next::Frame(f) => f.command,
            other => format!("{other:?}"),
        };
        produce(target, &dest, &["after"]);
        let after = bodies(&drain(&mut raw));
        // Leave the queue empty.
        let mut sweep = Raw::session(target, "1.2");
        subscribe(&mut sweep, &dest, "sweep", "auto");
        drain(&mut sweep);
        format!("got {before}; UNSUBSCRIBE: {receipt}; then got {after}")
    }
    match version {
        "1.0" => |t| run(t, "1.0"),
        _ => |t| run(t, "1.2"),
    }
}

fn receipt_before_waiting_messages(target: Target) -> String {
    let dest = queue("conformance-order");
    produce(target, &dest, &["w"]);
    let mut raw = Raw::session(target, "1.2");
    let destination = format!("destination:{dest}");
    raw.frame("SUBSCRIBE", &[&destination, "id:s1", "receipt:sub"], b"");
    let order = [raw.next(WAIT), raw.next(WAIT)].map(|next| match next {
        Next::Frame(f) => f.command,
        other => format!("{other:?}"),
    });
    order.join(" then ")
}

fn duplicate_subscription_id(target: Target) -> String {
    let mut raw = Raw::session(target, "1.2");
    let one = format!("destination:{}", queue("conformance-dup"));
    let two = format!("destination:{}", queue("conformance-dup"));
    raw.frame("SUBSCRIBE", &[&one, "id:same", "receipt:r1"], b"");
    raw.expect("RECEIPT");
    raw.frame("SUBSCRIBE", &[&two, "id:same", "receipt:r2"], b"");
    let mut seen = Vec::new();
    for _ in 0..2 {
        match raw.next(Duration::from_secs(1)) {
            Next::Frame(f) => {
                let receipt = f.header("receipt-id").map(|id| format!(" receipt-id:{id}"));
                seen.push(format!("{}{}", f.command, receipt.unwrap_or_default()));
            }
            Next::Closed => {
                seen.push("closed".to_string());
                break;
            }
            Next::Quiet => break,
        }
    }
    seen.join(", then ")
}

fn send_without_destination(target: Target) -> String {
    let mut raw = Raw::session(target, "1.2");
    raw.frame("SEND", &["receipt:r-nodest"], b"x");
    error_answer(&mut raw)
}

fn send_with_empty_destination(target: Target) -> String {
    let mut raw = Raw::session(target, "1.2");
    raw.frame("SEND", &["destination:", "receipt:r-empty"], b"x");
    error_answer(&mut raw)
}

fn unknown_command(target: Target) -> String {
    let mut raw = Raw::session(target, "1.2");
    raw.frame("FOO", &["receipt:r-foo"], b"");
    error_answer(&mut raw)
}

/// Sends one message with `headers` and `body` and returns the MESSAGE.
fn round_trip(target: Target, version: &str, headers: &[&str], body: &[u8]) -> Option<Frame> {
    let dest = queue("conformance-rt");
    let mut consumer = Raw::session(target, version);
    let destination = format!("destination:{dest}");
    consumer.frame(
        "SUBSCRIBE",
        &[&destination, "id:s1", "ack:auto", "receipt:sub"],
        b"",
    );
    consumer.expect("RECEIPT");
    let mut producer = Raw::session(target, version);
    let mut lines = vec![destination.as_str(), "receipt:sent"];
    lines.extend_from_slice(headers);
    producer.frame("SEND", &lines, body);
    match producer.next(WAIT) {
        Next::Frame(f) if f.command == "RECEIPT" => take(&mut consumer, 1).pop(),
        _ => None,
    }
}

fn nuls_under_content_length(target: Target) -> String {
    let body: Vec<u8> = (0..300u16)
        .map(|i| if i % 50 == 0 { 0 } else { (i % 251) as u8 })
        .collect();
    let length = format!("content-length:{}", body.len());
    match round_trip(target, "1.2", &[&length], &body) {
        Some(f) if f.body == body => "intact".to_string(),
        Some(f) => format!("changed: {} octets", f.body.len()),
        None => "not delivered".to_string(),
    }
}

fn trickled_frame(target: Target) -> String {
    let dest = queue("conformance-trickle");
    let mut consumer = Raw::session(target, "1.2");
    subscribe(&mut consumer, &dest, "s1", "auto");
    let mut producer = Raw::session(target, "1.2");
    let body = "t".repeat(1000);
    let frame = format!("SEND\ndestination:{dest}\nreceipt:trickled\n\n{body}\0");
    for piece in frame.as_bytes().chunks(191) {
        producer.write(piece);
        std::thread::sleep(Duration::from_millis(100));
    }
    let receipt = match producer.next(WAIT) {
        Next::Frame(f) => f.command,
        other => format!("{other:?}"),
    };
    match take(&mut consumer, 1).pop() {
        Some(f) if f.body == body.as_bytes() => format!("{receipt}, delivered intact"),
        Some(f) => format!("{receipt}, delivered {} octets", f.body.len()),
        None => format!("{receipt}, not delivered"),
    }
}

fn header_whitespace(target: Target) -> String {
    match round_trip(target, "1.2", &["x-space: a b "], b"w") {
        Some(f) => format!("{:?}", f.header("x-space").unwrap_or("(absent)")),
        None => "not delivered".to_string(),
    }
}

fn repeated_headers(target: Target) -> String {
    match round_trip(target, "1.2", &["x-rep:first", "x-rep:second"], b"r") {
        Some(f) => {
            let all = f
                .headers
                .iter()
                .filter(|(n, _)| n == "x-rep")
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>();
            all.join(" then ")
        }
        None => "not delivered".to_string(),
    }
}

fn escapes(target: Target) -> String {
    let lines = ["x-esc\\cname:a\\cb\\nc\\\\d\\re"];
    match round_trip(target, "1.2", &lines, b"e") {
        Some(f) => {
            let found = f
                .headers
                .iter()
                .find(|(n, _)| n.starts_with("x-esc"))
                .map(|(n, v)| format!("{n}:{v}"));
            found.unwrap_or_else(|| "(header lost)".to_string())
        }
        None => "not delivered".to_string(),
    }
}

fn undefined_escape(target: Target) -> String {
    let dest = queue("conformance-badesc");
    let mut raw = Raw::session(target, "1.2");
    let destination = format!("destination:{dest}");
    raw.frame(
        "SEND",
        &[&destination, "x-bad:a\\tb", "receipt:r-esc"],
        b"u",
    );
    error_answer(&mut raw)
}

fn ten_thousand_then_disconnect(target: Target) -> String {
    const N: usize = 10_000;
    let dest = queue("conformance-10k");
    let mut consumer = Raw::session(target, "1.2");
    subscribe(&mut consumer, &dest, "s1", "auto");
    let mut producer = Raw::session(target, "1.2");
    let body = "b".repeat(128);
    let one = format!("SEND\ndestination:{dest}\n\n{body}\0");
    let batch = one.repeat(500);
    for _ in 0..N / 500 {
        producer.write(batch.as_bytes());
    }
    producer.frame("DISCONNECT", &["receipt:bye"], b"");
    let receipt = match producer.next(Duration::from_secs(30)) {
        Next::Frame(f) => format!("{} {}", f.command, f.header("receipt-id").unwrap_or("")),
        other => format!("{other:?}"),
    };
    let mut got = 0;
    while got < N {
        match consumer.next(Duration::from_secs(10)) {
            Next::Frame(f) if f.command == "MESSAGE" && f.body == body.as_bytes() => got += 1,
            Next::Frame(_) => {}
            _ => break,
        }
    }
    format!("{receipt}; {got} of {N} arrived")
}

/// Every scenario, in the table's order.
pub fn scenarios() -> Vec<Scenario> {
    use Expect::{All, Differ};
    vec![
        Scenario {
            name: "CONNECT without accept-version",
            run: |t| negotiate(t, &[]),
            expect: All("CONNECTED version:1.0"),
        },
        Scenario {
            name: "accept-version:1.0,1.1,1.3",
            run: |t| negotiate(t, &["accept-version:1.0,1.1,1.3"]),
            expect: All("CONNECTED version:1.1"),
        },
        Scenario {
            name: "accept-version:2.0,3.1 only",
            run: |t| negotiate(t, &["accept-version:2.0,3.1"]),
            expect: Differ {
                rabbitmq: "ERROR version:1.0,1.1,1.2",
                activemq: "ERROR, no version header",
                embedded: "ERROR version:1.0,1.1,1.2",
                why: "RabbitMQ's: the specification asks for the `version` header listing \
                      what the server speaks",
            },
        },
        Scenario {
            name: "STOMP instead of CONNECT",
            run: |t| connected_version(Raw::connect(t, "STOMP", &["accept-version:1.2"]).1),
            expect: All("CONNECTED version:1.2"),
        },
        Scenario {
            name: "heart-beat:0,0",
            run: |t| heart_beat(t, "0,0"),
            expect: All("heart-beat:0,0"),
        },
        Scenario {
            name: "heart-beat:1,0",
            run: |t| heart_beat(t, "1,0"),
            expect: Differ {
                rabbitmq: "heart-beat:0,1000",
                activemq: "heart-beat:0,1",
                embedded: "heart-beat:0,100",
                why: "ActiveMQ's exact echo of the client's values, swapped, so that tests \
                      may use fast heart-beats; with a floor of 100 ms (RabbitMQ's is 1 s) \
                      so that no client makes the broker beat or check every millisecond",
            },
        },
        Scenario {
            name: "heart-beat:500,1000",
            run: |t| heart_beat(t, "500,1000"),
            expect: Differ {
                rabbitmq: "heart-beat:1000,1000",
                activemq: "heart-beat:1000,500",
                embedded: "heart-beat:1000,500",
                why: "ActiveMQ's: the client's values swapped (RabbitMQ rounds up to whole \
                      seconds)",
            },
        },
        Scenario {
            name: "unacked client-individual message, connection dropped",
            run: redelivered_after_disconnect,
            expect: All("back: 1 (redelivered:true)"),
        },
        Scenario {
            name: "client acks: 50 delivered, the 25th acked (cumulative)",
            run: cumulative_client_acks,
            expect: All("back: 26..50 (redelivered:true)"),
        },
        Scenario {
            name: "client acks in 1.0: 4 delivered, the 2nd acked by message-id",
            run: client_acks_in_1_0,
            expect: All("back: 3,4 (redelivered:true)"),
        },
        Scenario {
            name: "client-individual 1.2: every second of 10 acked by id",
            run: individual_acks("1.2"),
            expect: All("back: 2,4,6,8,10 (redelivered:true)"),
        },
        Scenario {
            name: "client-individual 1.1: every second of 10 acked by message-id + subscription",
            run: individual_acks("1.1"),
            expect: All("back: 2,4,6,8,10 (redelivered:true)"),
        },
        Scenario {
            name: "receipt of a SEND inside a transaction",
            run: receipt_inside_a_transaction,
            expect: Differ {
                rabbitmq: "before COMMIT: none; after: commit, send",
                activemq: "before COMMIT: send; after: commit",
                embedded: "before COMMIT: send; after: commit",
                why: "ActiveMQ's: the frame was applied (held in the transaction), \
                      so its receipt is due; a client cannot wait for RabbitMQ's \
                      before committing (the client's confirmed mode lets the COMMIT's \
                      receipt confirm a transaction's frames on every broker)",
            },
        },
        Scenario {
            name: "reply-to:/temp-queue/r, answered",
            run: temp_queue_reply,
            expect: Differ {
                rabbitmq:
                    "reply-to passed on as /reply-queue/…; answer for subscription /temp-queue/r",
                activemq: "reply-to passed on as /remote-temp-queue/…; no answer",
                embedded:
                    "reply-to passed on as /reply-queue/…; answer for subscription /temp-queue/r",
                why: "RabbitMQ's: the asker needs no SUBSCRIBE of its own (ActiveMQ \
                      delivers its temporary queue only to a subscription to it)",
            },
        },
        Scenario {
            name: "NACK (1.2)",
            run: nack_requeues_or_not,
            expect: Differ {
                rabbitmq: "redelivered at once (redelivered:true)",
                activemq: "not redelivered",
                embedded: "redelivered at once (redelivered:true)",
                why: "RabbitMQ's: a NACKed message is requeued (ActiveMQ moves it to \
                      `ActiveMQ.DLQ`); the embedded broker has no dead-letter queue",
            },
        },
        Scenario {
            name: "ACK in a transaction, COMMIT, connection dropped",
            run: ack_in_transaction(true),
            expect: All("back: none"),
        },
        Scenario {
            name: "ACK in a transaction, ABORT, connection dropped",
            run: ack_in_transaction(false),
            expect: All("back: 1 (redelivered:true)"),
        },
        Scenario {
            name: "a topic with two subscribers",
            run: topic_reaches_two_subscribers,
            expect: All("first got t, second got t"),
        },
        Scenario {
            name: "UNSUBSCRIBE by id (1.2)",
            run: unsubscribe("1.2"),
            expect: All("got before; UNSUBSCRIBE: RECEIPT; then got none"),
        },
        Scenario {
            name: "UNSUBSCRIBE by destination (1.0)",
            run: unsubscribe("1.0"),
            expect: All("got before; UNSUBSCRIBE: RECEIPT; then got none"),
        },
        Scenario {
            name: "SUBSCRIBE with a receipt to a queue holding a message",
            run: receipt_before_waiting_messages,
            expect: All("RECEIPT then MESSAGE"),
        },
        Scenario {
            name: "a second SUBSCRIBE with the same id",
            run: duplicate_subscription_id,
            expect: Differ {
                rabbitmq: "ERROR, then RECEIPT receipt-id:r2",
                activemq: "RECEIPT receipt-id:r2",
                embedded: "ERROR receipt-id:r2, then closed",
                why: "RabbitMQ's refusal (ActiveMQ takes it), with the `receipt-id` and the \
                      close after an ERROR that the specification asks for",
            },
        },
        Scenario {
            name: "SEND without destination, with receipt",
            run: send_without_destination,
            expect: Differ {
                rabbitmq: "ERROR, then open",
                activemq: "ERROR receipt-id:r-nodest, then open",
                embedded: "ERROR receipt-id:r-nodest, then closed",
                why: "ActiveMQ's `receipt-id`; closed after the ERROR, as the specification \
                      says (both brokers keep the connection)",
            },
        },
        Scenario {
            name: "SEND with an empty destination, with receipt",
            run: send_with_empty_destination,
            expect: Differ {
                rabbitmq: "ERROR, then open",
                activemq: "closed, no ERROR",
                embedded: "ERROR receipt-id:r-empty, then closed",
                why: "RabbitMQ's ERROR, with the `receipt-id` and the close the \
                      specification asks for",
            },
        },
        Scenario {
            name: "unknown command FOO, with receipt",
            run: unknown_command,
            expect: Differ {
                rabbitmq: "ERROR, then open",
                activemq: "ERROR receipt-id:r-foo, then closed",
                embedded: "ERROR, then closed",
                why: "ActiveMQ's close; no `receipt-id`, since the frame is refused at its \
                      command line, before its headers are read",
            },
        },
        Scenario {
            name: "300-octet body with NULs every 50 octets, content-length",
            run: nuls_under_content_length,
            expect: All("intact"),
        },
        Scenario {
            name: "a SEND trickled in 191-octet pieces 0.1 s apart",
            run: trickled_frame,
            expect: All("RECEIPT, delivered intact"),
        },
        Scenario {
            name: "header `x-space: a b ` (whitespace)",
            run: header_whitespace,
            expect: All("\" a b \""),
        },
        Scenario {
            name: "header x-rep twice (first wins)",
            run: repeated_headers,
            expect: All("first"),
        },
        Scenario {
            name: "escapes in a header name and value (1.2)",
            run: escapes,
            expect: All("x-esc\\cname:a\\cb\\nc\\\\d\\re"),
        },
        Scenario {
            name: "an undefined escape \\t (1.2)",
            run: undefined_escape,
            expect: Differ {
                rabbitmq: "closed, no ERROR",
                activemq: "RECEIPT (no ERROR)",
                embedded: "ERROR, then closed",
                why: "RabbitMQ's close, which the specification asks for (an undefined \
                      escape is a fatal protocol error), with an ERROR saying where",
            },
        },
        Scenario {
            name: "10,000 x 128 B SENDs, then DISCONNECT with a receipt",
            run: ten_thousand_then_disconnect,
            expect: All("RECEIPT bye; 10000 of 10000 arrived"),
        },
    ]
}

/// The scenarios as a Markdown table: scenario × broker, then the
/// disagreements with the embedded broker's choice and why.
pub fn table() -> String {
    let mut out =
        String::from("| scenario | RabbitMQ | ActiveMQ | embedded |\n|---|---|---|---|\n");
    let mut notes = String::new();
    for s in scenarios() {
        let cells = TARGETS
            .iter()
            .map(|t| s.expect.of(t.kind).replace('|', "\\|"))
            .collect::<Vec<_>>();
        out.push_str(&format!("| {} | {} |\n", s.name, cells.join(" | ")));
        if let Expect::Differ { why, .. } = s.expect {
            notes.push_str(&format!("- **{}**: {why}\n", s.name));
        }
    }
    if !notes.is_empty() {
        out.push_str("\nWhere RabbitMQ and ActiveMQ disagree, the embedded broker:\n\n");
        out.push_str(&notes);
    }
    out
}

/// Runs every scenario against `target`: (scenario, expected, got) for
/// each that answered otherwise.
pub fn run_all(target: Target) -> Vec<(&'static str, &'static str, String)> {
    let mut wrong = Vec::new();
    for s in scenarios() {
        let got = (s.run)(target);
        let want = s.expect.of(target.kind);
        eprintln!("{:>8} | {} | {got}", target.kind, s.name);
        if got != want {
            wrong.push((s.name, want, got));
        }
    }
    wrong
}
