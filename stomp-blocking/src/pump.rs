//! The pump thread: owns the `ClientSession` and the transport, moves bytes
//! between them, runs the session's timers, and carries out the handles'
//! commands. It decides nothing; the session does.

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use stomp_proto::client::{
    AckHandle, ClientSession, CloseReason, Event, ReceiptId, RequestError, SendOptions,
    SessionInfo, Stats, SubscribeOptions, SubscriptionId, TxId,
};

use crate::error::Error;
use crate::mailbox::Mailbox;
use crate::transport::{Link, Opener};
use crate::{Handle, Lifecycle, Message};

/// A reply to a handle: sent once.
pub(crate) type Reply<T> = Sender<Result<T, Error>>;

/// What reaches the pump: transport input, and the handles' commands.
pub(crate) enum Input {
    Bytes {
        generation: u64,
        bytes: Vec<u8>,
    },
    Eof {
        generation: u64,
    },
    /// A full mailbox has room again.
    Wake,
    Command(Command),
}

pub(crate) enum Command {
    Send {
        destination: String,
        body: Bytes,
        options: SendOptions,
        /// With `options.receipt`, resolved by the receipt; otherwise once queued.
        done: Reply<()>,
    },
    Subscribe {
        destination: String,
        options: SubscribeOptions,
        mailbox: Arc<Mailbox<Message>>,
        done: Reply<SubscriptionId>,
    },
    Unsubscribe {
        id: SubscriptionId,
        done: Option<Reply<()>>,
    },
    Ack {
        handle: AckHandle,
        nack: bool,
        transaction: Option<TxId>,
        done: Reply<()>,
    },
    Begin {
        done: Reply<TxId>,
    },
    /// COMMIT or ABORT, resolved by its receipt.
    End {
        tx: TxId,
        commit: bool,
        done: Option<Reply<()>>,
    },
    Disconnect {
        done: Reply<()>,
    },
    Stats {
        done: Sender<Stats>,
    },
    Close,
}

/// What the handles share with the pump.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub closed: Mutex<Option<CloseReason>>,
}

pub(crate) struct Pump {
    pub session: ClientSession,
    pub input: Receiver<Input>,
    /// Given to reader threads and messages; records the end.
    handle: Handle,
    pub lifecycle: SyncSender<Lifecycle>,
    /// Told once: connected (or why not).
    pub first_connect: Option<Sender<Result<SessionInfo, Error>>>,
    opener: Opener,
    link: Option<Link>,
    generation: u64,
    mailboxes: HashMap<SubscriptionId, Arc<Mailbox<Message>>>,
    waiting: HashMap<ReceiptId, Reply<()>>,
    disconnecting: Option<Reply<()>>,
}

impl Pump {
    pub fn new(
        session: ClientSession,
        input: Receiver<Input>,
        handle: Handle,
        lifecycle: SyncSender<Lifecycle>,
        first_connect: Sender<Result<SessionInfo, Error>>,
        opener: Opener,
    ) -> Pump {
        Pump {
            session,
            input,
            handle,
            lifecycle,
            first_connect: Some(first_connect),
            opener,
            link: None,
            generation: 0,
            mailboxes: HashMap::new(),
            waiting: HashMap::new(),
            disconnecting: None,
        }
    }

    /// Runs until the session ends.
    pub fn run(mut self) {
        loop {
            self.dial();
            if !self.drain_events() {
                break;
            }
            self.transmit();
            let now = Instant::now();
            let wait = self
                .session
                .poll_timeout()
                .map_or(Duration::from_secs(3600), |t| {
                    t.saturating_duration_since(now)
                });
            match self.input.recv_timeout(wait) {
                Ok(input) => self.handle(input),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            // Take whatever else is already waiting before the timers run.
            while let Ok(input) = self.input.try_recv() {
                self.handle(input);
            }
            self.session.handle_timeout(Instant::now());
        }
        self.link = None;
    }

    fn dial(&mut self) {
        while let Some(dial) = self.session.poll_dial(Instant::now()) {
            self.generation += 1;
            let input = self.handle.commands.clone();
            match self.opener.open(&dial, self.generation, input) {
                Ok(link) => {
                    self.link = Some(link);
                    self.session.handle_connected(Instant::now());
                }
                Err(e) => self
                    .session
                    .handle_transport_error(Instant::now(), e.to_string()),
            }
        }
    }

    fn transmit(&mut self) {
        while let Some(bytes) = self.session.poll_transmit(Instant::now()) {
            let written = match &mut self.link {
                Some(link) => link.write(&bytes),
                None => continue,
            };
            if let Err(e) = written {
                self.link = None;
                self.session
                    .handle_transport_error(Instant::now(), e.to_string());
            }
        }
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Bytes { generation, bytes } if generation == self.generation => {
                let Some(link) = &mut self.link else { return };
                link.gate().consumed();
                match link.receive(bytes) {
                    Ok((data, ended)) => {
                        if !data.is_empty() {
                            self.session.handle_input(now, &data);
                        }
                        if ended {
                            self.link = None;
                            self.session.handle_closed(now);
                        }
                    }
                    Err(e) => {
                        self.link = None;
                        self.session.handle_transport_error(now, e.to_string());
                    }
                }
            }
            Input::Eof { generation } if generation == self.generation => {
                self.link = None;
                self.session.handle_closed(now);
            }
            Input::Bytes { .. } | Input::Eof { .. } => {}
            Input::Wake => self.update_pause(),
            Input::Command(command) => self.execute(command),
        }
    }

    /// Reading pauses while any subscription's mailbox is full.
    fn update_pause(&mut self) {
        if let Some(link) = &self.link {
            let full = self.mailboxes.values().any(|m| m.is_full());
            if link.gate().set_paused(full) {
                self.session.set_reading_paused(Instant::now(), full);
            }
        }
    }

    fn execute(&mut self, command: Command) {
        let session = &mut self.session;
        match command {
            Command::Send {
                destination,
                body,
                options,
                done,
            } => match session.send(&destination, body, options) {
                Ok(Some(receipt)) => {
                    self.waiting.insert(receipt, done);
                }
                Ok(None) => reply(&done, Ok(())),
                Err(e) => reply(&done, Err(e.into())),
            },
            Command::Subscribe {
                destination,
                options,
                mailbox,
                done,
            } => match session.subscribe(&destination, options) {
                Ok((id, _)) => {
                    self.mailboxes.insert(id.clone(), mailbox);
                    reply(&done, Ok(id));
                }
                Err(e) => reply(&done, Err(e.into())),
            },
            Command::Unsubscribe { id, done } => {
                if let Some(mailbox) = self.mailboxes.remove(&id) {
                    mailbox.close();
                }
                let result = session.unsubscribe(&id, false).map(|_| ());
                if let Some(done) = done {
                    reply(&done, result.map_err(Error::from));
                }
                self.update_pause();
            }
            Command::Ack {
                handle,
                nack,
                transaction,
                done,
            } => {
                let result = if nack {
                    session.nack(&handle, transaction.as_ref(), false)
                } else {
                    session.ack(&handle, transaction.as_ref(), false)
                };
                reply(&done, result.map(|_| ()).map_err(Error::from));
            }
            Command::Begin { done } => {
                let result = session.begin(None, false).map(|(tx, _)| tx);
                reply(&done, result.map_err(Error::from));
            }
            Command::End { tx, commit, done } => {
                let wants_receipt = done.is_some();
                let result = if commit {
                    session.commit(&tx, wants_receipt)
                } else {
                    session.abort(&tx, wants_receipt)
                };
                match (result, done) {
                    (Ok(Some(receipt)), Some(done)) => {
                        self.waiting.insert(receipt, done);
                    }
                    (Ok(_), Some(done)) => reply(&done, Ok(())),
                    (Err(e), Some(done)) => reply(&done, Err(e.into())),
                    (_, None) => {}
                }
            }
            Command::Disconnect { done } => match session.disconnect() {
                Ok(_) => self.disconnecting = Some(done),
                Err(e) => reply(&done, Err(e.into())),
            },
            Command::Stats { done } => {
                let _ = done.send(session.stats().clone());
            }
            Command::Close => session.close(),
        }
    }

    /// Handles the session's events; false once it has ended.
    fn drain_events(&mut self) -> bool {
        while let Some(event) = self.session.poll_event() {
            match event {
                Event::Message(message) => {
                    if let Some(mailbox) = self.mailboxes.get(&message.subscription) {
                        mailbox.push(Message::new(message, self.handle.clone()));
                        if mailbox.is_full() {
                            self.update_pause();
                        }
                    }
                }
                Event::Receipt(receipt) => {
                    if let Some(done) = self.waiting.remove(&receipt) {
                        reply(&done, Ok(()));
                    }
                }
                Event::RequestFailed { receipt, error } => {
                    if let Some(done) = self.waiting.remove(&receipt) {
                        reply(&done, Err(Error::Request(error)));
                    }
                }
                Event::Connected(info) => {
                    if let Some(first) = self.first_connect.take() {
                        let _ = first.send(Ok(info.clone()));
                    }
                    self.tell(Lifecycle::Connected(info));
                }
                Event::HeartbeatTimeout => self.tell(Lifecycle::HeartbeatTimeout),
                Event::ConnectionLost(reason) => {
                    self.link = None;
                    self.tell(Lifecycle::ConnectionLost(reason));
                }
                Event::Reconnecting {
                    attempt,
                    host,
                    delay,
                } => self.tell(Lifecycle::Reconnecting {
                    attempt,
                    host,
                    delay,
                }),
                Event::Closed(reason) => {
                    self.finish(reason);
                    return false;
                }
            }
        }
        true
    }

    fn finish(&mut self, reason: CloseReason) {
        // Flush what is queued (the DISCONNECT, an ERROR's aftermath) first.
        self.transmit();
        self.link = None;
        if let Some(first) = self.first_connect.take() {
            let _ = first.send(Err(Error::Connect(reason.clone())));
        }
        if let Some(done) = self.disconnecting.take() {
            let result = match &reason {
                CloseReason::Disconnected => Ok(()),
                other => Err(Error::Closed(Some(other.clone()))),
            };
            reply(&done, result);
        }
        for (_, done) in self.waiting.drain() {
            reply(&done, Err(Error::Request(RequestError::ConnectionLost)));
        }
        for (_, mailbox) in self.mailboxes.drain() {
            mailbox.close();
        }
        *self
            .handle
            .shared
            .closed
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(reason.clone());
        // Commands still queued are dropped with the pump: their callers see
        // the reply channel close and answer with the reason recorded here.
        self.tell(Lifecycle::Closed(reason));
    }

    /// Life-cycle events are dropped when nobody reads them.
    fn tell(&self, event: Lifecycle) {
        let _ = self.lifecycle.try_send(event);
    }
}

fn reply<T>(done: &Reply<T>, result: Result<T, Error>) {
    let _ = done.send(result);
}
