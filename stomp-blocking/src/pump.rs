//! The pump thread: runs the driver (which owns the `ClientSession`) with
//! the socket and the session's timers. It decides nothing; the session does.

use std::time::{Duration, Instant};

use stomp_driver::driver::{Driver, Input};
use stomp_driver::layers::Connector;
use stomp_driver::Empty;

use crate::transport::Link;

pub(crate) struct Pump {
    pub driver: Driver,
    pub connector: Connector,
    pub write_timeout: Duration,
    link: Option<Link>,
    generation: u64,
}

impl Pump {
    pub fn new(driver: Driver, connector: Connector, write_timeout: Duration) -> Pump {
        Pump {
            driver,
            connector,
            write_timeout,
            link: None,
            generation: 0,
        }
    }

    /// Runs until the session ends.
    pub fn run(mut self) {
        let input = self.driver.handle().input().clone();
        loop {
            self.dial();
            let running = self.driver.drain_events();
            if !running {
                // Flush what is queued (an ERROR's aftermath) first.
                self.transmit();
                if let Some(link) = self.link.take() {
                    link.finish(self.write_timeout);
                }
                break;
            }
            if self.driver.take_link_lost() {
                self.link = None;
            }
            if let Some(link) = &self.link {
                link.gate().set_paused(!self.driver.may_read());
            }
            if self.transmit() {
                // The session has local answers to hand out first.
                continue;
            }
            let now = Instant::now();
            let wait = self
                .driver
                .session
                .poll_timeout()
                .map_or(Duration::from_secs(3600), |t| {
                    t.saturating_duration_since(now)
                });
            match input.pop(Some(wait)) {
                Ok(item) => self.handle(item),
                Err(Empty::Timeout) => {}
                Err(Empty::Closed) => break,
            }
            // Take whatever else is already waiting before the timers run.
            while let Ok(item) = input.pop(Some(Duration::ZERO)) {
                self.handle(item);
            }
            self.driver.session.handle_timeout(Instant::now());
        }
        self.link = None;
    }

    fn dial(&mut self) {
        while let Some(dial) = self.driver.session.poll_dial(Instant::now()) {
            self.generation += 1;
            let input = self.driver.handle().input().clone();
            let session = &mut self.driver.session;
            match Link::open(
                &dial,
                &mut self.connector,
                self.write_timeout,
                self.generation,
                input,
            ) {
                Ok(mut link) => {
                    session.handle_connected(Instant::now());
                    let early = std::mem::take(&mut link.early);
                    if !early.is_empty() {
                        session.handle_input(Instant::now(), &early);
                    }
                    self.link = Some(link);
                }
                Err(e) => session.handle_transport_error(Instant::now(), e.to_string()),
            }
        }
    }

    /// Hands the writer thread what the session has to send, while it has
    /// room; the rest waits in the session, and so do commands that find
    /// no room there. True when a multicast link answered locally (the
    /// session has input to act on).
    fn transmit(&mut self) -> bool {
        let mut answered = false;
        loop {
            let session = &mut self.driver.session;
            while self.link.as_mut().is_none_or(Link::can_write) {
                let Some(bytes) = session.poll_transmit(Instant::now()) else {
                    break;
                };
                // Without a transport the bytes are dropped: the session
                // resends what a new connection needs.
                let Some(link) = &mut self.link else { continue };
                match link.write(&bytes) {
                    // A multicast group member answers some frames itself.
                    Ok(local) if !local.is_empty() => {
                        session.handle_input(Instant::now(), &local);
                        answered = true;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        self.link = None;
                        session.handle_transport_error(Instant::now(), e.to_string());
                    }
                }
            }
            if !self.driver.run_deferred() {
                break;
            }
        }
        answered
    }

    fn handle(&mut self, input: Input) {
        let now = Instant::now();
        let session = &mut self.driver.session;
        match input {
            Input::Bytes { generation, bytes } if generation == self.generation => {
                let Some(link) = &mut self.link else { return };
                link.gate().consumed();
                let received = link.receive(&bytes);
                session.note_dropped_datagrams(link.take_dropped());
                if !self.driver.received(now, received) {
                    self.link = None;
                }
            }
            Input::Eof { generation, error }
                if generation == self.generation && self.link.is_some() =>
            {
                self.link = None;
                match error {
                    Some(error) => session.handle_transport_error(now, error),
                    None => session.handle_closed(now),
                }
            }
            Input::Bytes { .. } | Input::Eof { .. } => {}
            Input::Wake => {
                self.driver.update_pause(now);
            }
            Input::Command(command) => self.driver.execute(command),
        }
    }
}
