//! A simulated-time harness: one `ClientSession` and one `ServerSession` wired
//! through in-memory pipes, with a fake clock and knobs to split, stall or cut
//! the bytes between them. The server side plays a tiny broker (SEND is
//! delivered to matching subscriptions) unless a test drives it by hand.
//!
//! The client dials through `poll_dial`: each of its configured hosts is a
//! simulated broker that is up or down (`up`), every dial is recorded with its
//! time (`dials`), and each accepted dial gets a fresh `ServerSession`.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use stomp_proto::client::{ClientConfig, ClientSession, Event};
use stomp_proto::server::{message_for, RequestKind, ServerConfig, ServerEvent, ServerSession};

/// How the simulated server reacts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broker {
    /// Accept CONNECT and deliver SENDs to subscriptions.
    Echo,
    /// Do nothing on its own: the test answers.
    Manual,
}

pub struct Sim {
    pub t0: Instant,
    pub now: Instant,
    pub client: ClientSession,
    pub server: ServerSession,
    pub client_events: Vec<Event>,
    pub server_events: Vec<ServerEvent>,
    /// Every octet the client wrote, and the server wrote.
    pub to_server: Vec<u8>,
    pub to_client: Vec<u8>,
    /// Octets are delivered in chunks of this size (1 = one at a time).
    pub chunk: usize,
    /// While set, what one side writes is lost (a stalled or cut link).
    pub drop_to_server: bool,
    pub drop_to_client: bool,
    pub broker: Broker,
    echo: EchoBroker,
    /// The client session ended and its transport is closed; nothing moves
    /// any more.
    pub closed: bool,
    /// Whether a transport is open between the two.
    pub link: bool,
    /// Per host index: whether a dial to it succeeds.
    pub up: Vec<bool>,
    /// Every dial: (milliseconds since the start, host index, attempt).
    pub dials: Vec<(u128, usize, u32)>,
    server_config: ServerConfig,
}

impl Sim {
    pub fn new(client: ClientConfig, server: ServerConfig, broker: Broker) -> Sim {
        Sim::new_with_down(client, server, broker, &[])
    }

    /// A pair whose hosts listed in `down` refuse dials from the start.
    pub fn new_with_down(
        client: ClientConfig,
        server: ServerConfig,
        broker: Broker,
        down: &[usize],
    ) -> Sim {
        let t0 = Instant::now();
        let hosts = client.hosts.len();
        let mut sim = Sim {
            t0,
            now: t0,
            client: ClientSession::new(client, t0),
            server: ServerSession::new(server.clone(), t0),
            client_events: Vec::new(),
            server_events: Vec::new(),
            to_server: Vec::new(),
            to_client: Vec::new(),
            chunk: usize::MAX,
            drop_to_server: false,
            drop_to_client: false,
            broker,
            echo: EchoBroker::default(),
            closed: false,
            link: false,
            up: vec![true; hosts],
            dials: Vec::new(),
            server_config: server,
        };
        for host in down {
            sim.up[*host] = false;
        }
        sim.run();
        sim
    }

    /// A connected pair with default configs.
    pub fn connected() -> Sim {
        Sim::new(
            ClientConfig::default(),
            ServerConfig::default(),
            Broker::Echo,
        )
    }

    /// Milliseconds since the start.
    pub fn elapsed_ms(&self) -> u128 {
        (self.now - self.t0).as_millis()
    }

    /// Moves octets and events until nothing changes.
    pub fn run(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("the simulation did not settle");
    }

    fn deliver(chunk: usize, bytes: &Bytes, mut to: impl FnMut(&[u8])) {
        for piece in bytes.chunks(chunk.max(1)) {
            to(piece);
        }
    }

    /// Moves what the client wrote to the server; returns whether there was any.
    fn pump_to_server(&mut self) -> bool {
        let (now, mut moved) = (self.now, false);
        while let Some(bytes) = self.client.poll_transmit(now) {
            moved = true;
            self.to_server.extend_from_slice(&bytes);
            if !self.drop_to_server {
                let server = &mut self.server;
                Self::deliver(self.chunk, &bytes, |p| server.handle_input(now, p));
            }
        }
        moved
    }

    /// Moves what the server wrote to the client; returns whether there was any.
    fn pump_to_client(&mut self) -> bool {
        let (now, mut moved) = (self.now, false);
        while let Some(bytes) = self.server.poll_transmit(now) {
            moved = true;
            self.to_client.extend_from_slice(&bytes);
            if !self.drop_to_client {
                let client = &mut self.client;
                Self::deliver(self.chunk, &bytes, |p| client.handle_input(now, p));
            }
        }
        moved
    }

    fn step(&mut self) -> bool {
        if self.closed {
            return false;
        }
        let mut progress = false;
        let mut client_drops_link = false;
        if self.link {
            progress |= self.pump_to_server();
            progress |= self.pump_to_client();
            while let Some(event) = self.server.poll_event() {
                progress = true;
                self.play_broker(&event);
                self.server_events.push(event);
            }
        }
        while let Some(event) = self.client.poll_event() {
            progress = true;
            client_drops_link |= matches!(
                event,
                Event::ConnectionLost { .. } | Event::DialFailed { .. }
            );
            self.client_events.push(event);
        }
        if self.link && (self.server.is_finished() || self.client.is_closed() || client_drops_link)
        {
            // Whoever ends the session closes the transport, once flushed.
            self.pump_to_client();
            self.close_link();
            return true;
        }
        if !self.link && !self.client.is_closed() {
            let now = self.now;
            if let Some(dial) = self.client.poll_dial(now) {
                self.dials
                    .push((self.elapsed_ms(), dial.host, dial.attempt));
                if self.up[dial.host] {
                    self.server = ServerSession::new(self.server_config.clone(), now);
                    self.echo = EchoBroker::default();
                    self.link = true;
                    self.client.handle_connected(now);
                } else {
                    self.client
                        .handle_transport_error(now, std::io::ErrorKind::ConnectionRefused);
                }
                return true;
            }
        }
        if self.client.is_closed() && !self.link {
            self.closed = true;
        }
        progress
    }

    /// The transport closes under both sessions.
    fn close_link(&mut self) {
        let now = self.now;
        self.link = false;
        self.client.handle_closed(now);
        self.server.handle_closed();
        while let Some(event) = self.server.poll_event() {
            self.server_events.push(event);
        }
    }

    /// The connection breaks (a broker crash, a cable pulled): both sides see
    /// the transport close, nothing in flight arrives.
    pub fn cut(&mut self) {
        if self.link {
            self.close_link();
        }
        self.run();
    }

    fn play_broker(&mut self, event: &ServerEvent) {
        if self.broker == Broker::Echo {
            self.echo.play(&mut self.server, self.now, event);
        }
    }

    /// Advances the clock by `by`, stopping at every deadline on the way.
    pub fn advance(&mut self, by: Duration) {
        let until = self.now + by;
        loop {
            self.run();
            let server = self.server.poll_timeout().filter(|_| self.link);
            let next = [self.client.poll_timeout(), server]
                .into_iter()
                .flatten()
                .filter(|t| *t <= until)
                .min();
            let Some(next) = next else { break };
            if self.closed {
                break;
            }
            self.now = self.now.max(next);
            let now = self.now;
            self.client.handle_timeout(now);
            if self.link {
                self.server.handle_timeout(now);
            }
        }
        self.now = until;
        self.run();
    }

    /// The client events so far, taken.
    pub fn take_client_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.client_events)
    }

    /// Requests the server received, as kinds.
    pub fn server_requests(&self) -> Vec<RequestKind> {
        self.server_events
            .iter()
            .filter_map(|e| match e {
                ServerEvent::Request(r) => Some(r.kind.clone()),
                _ => None,
            })
            .collect()
    }
}

/// The tiny broker behind one server session: accepts CONNECT and delivers
/// each SEND to the subscriptions on its destination.
#[derive(Default)]
pub struct EchoBroker {
    subscriptions: Vec<(String, String)>,
    next_message: u64,
}

impl EchoBroker {
    /// Reacts to one server event.
    pub fn play(&mut self, server: &mut ServerSession, now: Instant, event: &ServerEvent) {
        match event {
            ServerEvent::Connect(_) => server.accept(now, Some("sim-session")),
            ServerEvent::Request(request) => match &request.kind {
                RequestKind::Subscribe {
                    id, destination, ..
                } => self.subscriptions.push((id.clone(), destination.clone())),
                RequestKind::Unsubscribe { id } => self.subscriptions.retain(|(i, _)| i != id),
                RequestKind::Send { destination, .. } => {
                    let targets: Vec<String> = self
                        .subscriptions
                        .iter()
                        .filter(|(_, d)| d == destination)
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in targets {
                        self.next_message += 1;
                        let message_id = format!("m-{}", self.next_message);
                        let ack = format!("ack-{message_id}");
                        let frame =
                            message_for(&request.frame, destination, &id, &message_id, Some(&ack));
                        server.message(&frame).expect("room for the message");
                    }
                }
                _ => {}
            },
            ServerEvent::Closed(_) => {}
        }
    }
}
