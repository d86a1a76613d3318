//! A simulated network for the [`Driver`], in simulated time: the hosts of
//! a client's list each behave as the test says (refuse, black-hole,
//! accept and stay silent, answer CONNECT with ERROR, close after
//! CONNECTED, cut a frame in half, or serve as a small broker on the core's
//! `ServerSession`), with knobs for partial writes and byte-at-a-time
//! delivery. The clock only moves when nothing else can happen, straight
//! to the driver's next deadline.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use bytes::Bytes;
use stomp_driver::driver::{Action, Command, Driver, Handle, Input, Lifecycle, Target};
use stomp_driver::reply::{reply, Answer};
use stomp_driver::{Config, Error, Events};
use stomp_proto::client::{LinkId, SessionInfo};
use stomp_proto::server::{ServerConfig, ServerEvent, ServerSession};

#[path = "../../../stomp-proto/tests/sim/mod.rs"]
mod sim;

pub use sim::EchoBroker;

/// How a host of the list behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    /// A broker: accepts CONNECT, delivers SENDs to subscriptions.
    Up,
    /// Nothing listens: the connection is refused at once.
    Refused,
    /// The connect never completes (a firewall dropping SYNs).
    BlackHoled,
    /// Accepts the connection, reads, never writes.
    Silent,
    /// Answers CONNECT with ERROR and closes.
    Erroring,
    /// Sends CONNECTED, then closes.
    ClosesAfterConnected,
    /// Sends half of CONNECTED, then closes.
    CutsMidFrame,
}

impl Host {
    pub const FAULTS: [Host; 6] = [
        Host::Refused,
        Host::BlackHoled,
        Host::Silent,
        Host::Erroring,
        Host::ClosesAfterConnected,
        Host::CutsMidFrame,
    ];
}

/// The transport of one link, as the network sees it.
struct Conn {
    link: LinkId,
    host: usize,
    server: ServerSession,
    broker: EchoBroker,
    /// Raw bytes the client handed out and the network has not taken.
    from_client: VecDeque<Bytes>,
    /// Raw bytes on their way to the client.
    to_client: VecDeque<u8>,
    /// The server's side has ended: close once delivered.
    closing: bool,
}

/// A dial under way.
struct Opening {
    link: LinkId,
    host: usize,
    at: Instant,
}

pub struct Net {
    pub t0: Instant,
    pub now: Instant,
    pub driver: Driver,
    pub handle: Handle,
    pub events: Events,
    first: Option<Answer<Result<SessionInfo, Error>>>,
    /// What the first connect answered, once it has.
    pub first_answer: Option<Result<SessionInfo, Error>>,
    /// The hosts, by port: the host list's ports are 1, 2, 3, ...
    pub hosts: Vec<Host>,
    conn: Option<Conn>,
    opening: Option<Opening>,
    /// Every Open: (ms since the start, host index, link).
    pub opens: Vec<(u128, usize, LinkId)>,
    /// Every Close asked for: link.
    pub closes: Vec<LinkId>,
    /// Every life-cycle event, with its time in ms.
    pub lifecycle: Vec<(u128, Lifecycle)>,
    /// The network takes at most this many octets of a chunk per turn
    /// (partial writes); `usize::MAX`: all.
    pub write_limit: usize,
    /// Octets delivered to the client per read.
    pub chunk: usize,
    /// How long a dial or a delivery takes.
    pub latency: Duration,
}

impl Net {
    /// A client of `hosts` (ports 1, 2, ...), with `tune` applied to its
    /// configuration; the dial timeout is 1 s and heart-beats are off
    /// unless `tune` says otherwise.
    pub fn new(hosts: &[Host], tune: impl FnOnce(&mut Config)) -> Net {
        let urls: Vec<String> = (1..=hosts.len())
            .map(|port| format!("stomp://127.0.0.1:{port}"))
            .collect();
        let mut config = Config::from_url(&urls.join(",")).unwrap();
        config.session.connect_timeout = Duration::from_secs(1);
        config.session.heartbeat = stomp_proto::HeartBeat::OFF;
        config.session.reconnect.seed = 7;
        tune(&mut config);
        let t0 = Instant::now();
        let started = Driver::start(&config, t0).expect("a driver");
        let (driver, events, first) = (started.driver, started.events, started.first);
        let handle = driver.handle().clone();
        Net {
            t0,
            now: t0,
            driver,
            handle,
            events,
            first: Some(first),
            first_answer: None,
            hosts: hosts.to_vec(),
            conn: None,
            opening: None,
            opens: Vec::new(),
            closes: Vec::new(),
            lifecycle: Vec::new(),
            write_limit: usize::MAX,
            chunk: usize::MAX,
            latency: Duration::from_millis(1),
        }
    }

    pub fn ms(&self) -> u128 {
        (self.now - self.t0).as_millis()
    }

    /// Sends a command and runs the network until it is answered (or
    /// `limit` passes); its answer.
    pub fn call<T: Send + 'static>(
        &mut self,
        limit: Duration,
        command: impl FnOnce(stomp_driver::driver::Done<T>) -> Command,
    ) -> Option<Result<T, Error>> {
        let (done, answer) = reply();
        let command = command(done);
        self.driver.handle_input(self.now, Input::Command(command));
        let deadline = self.now + limit;
        loop {
            if let Some(value) = answer.try_take() {
                return value;
            }
            if !self.turn(deadline) {
                return answer.try_take().flatten();
            }
        }
    }

    /// Runs until `deadline` (simulated), or until the driver is finished.
    pub fn run_for(&mut self, by: Duration) {
        let deadline = self.now + by;
        while self.turn(deadline) {}
    }

    /// Runs until the first connect is answered, for at most `limit`.
    pub fn connect(&mut self, limit: Duration) -> Option<&Result<SessionInfo, Error>> {
        let deadline = self.now + limit;
        while self.first_answer.is_none() && self.turn(deadline) {}
        self.first_answer.as_ref()
    }

    /// One step of the network; false once nothing can happen before
    /// `deadline` (the clock is then at `deadline`) or the driver is done.
    pub fn turn(&mut self, deadline: Instant) -> bool {
        if self.collect() {
            return true;
        }
        if self.driver.is_finished() {
            return false;
        }
        if self.take_actions() || self.move_bytes() {
            return true;
        }
        // Nothing to do now: the clock moves to the next thing due.
        let next = [
            self.driver.poll_timeout(),
            self.opening.as_ref().map(|o| o.at),
        ]
        .into_iter()
        .flatten()
        .min();
        match next {
            Some(at) if at <= deadline => {
                self.now = self.now.max(at);
                self.open_due();
                self.driver.handle_timeout(self.now);
                true
            }
            _ => {
                self.now = deadline;
                self.driver.handle_timeout(self.now);
                self.collect();
                false
            }
        }
    }

    /// Takes the life-cycle events and the first connect's answer; true
    /// when there was anything.
    fn collect(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.events.try_recv() {
            self.lifecycle.push((self.ms(), event));
            any = true;
        }
        if let Some(first) = &self.first {
            if let Some(answer) = first.try_take() {
                self.first_answer = Some(answer.unwrap_or(Err(Error::Closed(None))));
                self.first = None;
                any = true;
            }
        }
        any
    }

    fn take_actions(&mut self) -> bool {
        let mut any = false;
        while let Some(action) = self.driver.poll_action() {
            any = true;
            match action {
                Action::Open { link, target, .. } => {
                    let Target::Tcp { port, .. } = target else {
                        panic!("only TCP here")
                    };
                    let host = usize::from(port) - 1;
                    self.opens.push((self.ms(), host, link));
                    assert!(self.conn.is_none(), "a dial while a link is open");
                    self.opening = Some(Opening {
                        link,
                        host,
                        at: self.now + self.latency,
                    });
                }
                Action::Close { link } => {
                    self.closes.push(link);
                    if self.conn.as_ref().is_some_and(|c| c.link == link) {
                        self.conn = None;
                    }
                    if self.opening.as_ref().is_some_and(|o| o.link == link) {
                        self.opening = None;
                    }
                }
            }
        }
        any
    }

    /// Completes the dial under way once it is due.
    fn open_due(&mut self) {
        let Some(opening) = self.opening.take_if(|o| o.at <= self.now) else {
            return;
        };
        match self.hosts[opening.host] {
            Host::Refused => self.driver.handle_open_failed(
                self.now,
                opening.link,
                io::ErrorKind::ConnectionRefused.into(),
            ),
            // Never completes: the opening stays, never due.
            Host::BlackHoled => {
                self.opening = Some(Opening {
                    at: self.now + Duration::from_secs(1 << 30),
                    ..opening
                })
            }
            _ => {
                self.conn = Some(Conn {
                    link: opening.link,
                    host: opening.host,
                    server: ServerSession::new(ServerConfig::default(), self.now),
                    broker: EchoBroker::default(),
                    from_client: VecDeque::new(),
                    to_client: VecDeque::new(),
                    closing: false,
                });
                self.driver.handle_opened(self.now, opening.link);
            }
        }
    }

    /// Moves bytes both ways once; true when any moved.
    fn move_bytes(&mut self) -> bool {
        let mut moved = false;
        while let Some((link, bytes)) = self.driver.poll_transmit() {
            if let Some(conn) = self.conn.as_mut().filter(|c| c.link == link) {
                conn.from_client.push_back(bytes);
            }
        }
        let Some(conn) = &mut self.conn else {
            return false;
        };
        let link = conn.link;
        let behaviour = self.hosts[conn.host];
        // Client to server, `write_limit` octets of a chunk at a time.
        if let Some(front) = conn
            .from_client
            .pop_front()
            .filter(|_| self.write_limit > 0)
        {
            let n = front.len().min(self.write_limit);
            if n < front.len() {
                conn.from_client.push_front(front.slice(n..));
            }
            conn.server.handle_input(self.now, &front[..n]);
            self.driver.handle_written(self.now, link, n);
            moved = true;
        }
        let Some(conn) = &mut self.conn else {
            return true;
        };
        while let Some(event) = conn.server.poll_event() {
            moved = true;
            match (&event, behaviour) {
                (ServerEvent::Connect(_), Host::Silent) => {}
                (ServerEvent::Connect(_), Host::Erroring) => {
                    conn.server.reject("access refused", "not this host")
                }
                (ServerEvent::Connect(_), Host::ClosesAfterConnected | Host::CutsMidFrame) => {
                    conn.server.accept(self.now, None);
                    conn.closing = true;
                }
                _ => conn.broker.play(&mut conn.server, self.now, &event),
            }
        }
        while let Some(bytes) = conn.server.poll_transmit(self.now) {
            if behaviour != Host::Silent {
                let keep = if behaviour == Host::CutsMidFrame {
                    bytes.len() / 2
                } else {
                    bytes.len()
                };
                conn.to_client.extend(&bytes[..keep]);
            }
        }
        if conn.server.is_finished() {
            conn.closing = true;
        }
        if !conn.to_client.is_empty() {
            let n = conn.to_client.len().min(self.chunk);
            let bytes: Vec<u8> = conn.to_client.drain(..n).collect();
            self.driver.handle_read(self.now, link, &bytes);
            return true;
        }
        if conn.closing {
            self.conn = None;
            self.driver.handle_ended(self.now, link, None);
            return true;
        }
        moved
    }

    /// The broker on the current connection goes away: the connection is
    /// cut (the peer's end of stream).
    pub fn cut(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.driver.handle_ended(self.now, conn.link, None);
        }
    }

    /// The host index the current connection is to.
    pub fn connected_host(&self) -> Option<usize> {
        self.conn.as_ref().map(|c| c.host)
    }

    /// The life-cycle events without their times.
    pub fn events_only(&self) -> Vec<Lifecycle> {
        self.lifecycle.iter().map(|(_, e)| e.clone()).collect()
    }
}
