//! The pump thread: runtime glue around the driver (which owns the
//! `ClientSession` and decides everything): it opens and closes the links
//! the driver asks for, hands the writer thread what the driver has to
//! write, paces the reader by the driver's read budget, and sleeps on the
//! queue that carries the handles' commands and the links' reports until
//! the driver's next deadline.

use std::time::{Duration, Instant};

use stomp_driver::driver::{Action, Driver, Input};
use stomp_driver::Empty;

use crate::transport::Link;

pub(crate) struct Pump {
    driver: Driver,
    link: Option<Link>,
    /// Octets of the current link handed to the driver.
    reported: u64,
}

impl Pump {
    pub fn new(driver: Driver) -> Pump {
        Pump {
            driver,
            link: None,
            reported: 0,
        }
    }

    /// Runs until the driver is finished.
    pub fn run(mut self) {
        let input = self.driver.handle().input().clone();
        loop {
            self.take_actions();
            if self.driver.is_finished() {
                break;
            }
            if let Some(link) = &self.link {
                while let Some((id, bytes)) = self.driver.poll_transmit() {
                    if id == link.id {
                        link.write(bytes);
                    }
                }
                let budget = self.driver.read_budget();
                link.gate().allow(self.reported.saturating_add(budget));
            }
            let now = Instant::now();
            let wait = self
                .driver
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
            while let Ok(item) = input.try_pop() {
                self.handle(item);
            }
            self.driver.handle_timeout(Instant::now());
        }
    }

    fn handle(&mut self, item: Input) {
        if let (Input::Read { link, bytes }, Some(current)) = (&item, &self.link) {
            if *link == current.id {
                current.gate().consumed();
                self.reported += bytes.len() as u64;
            }
        }
        self.driver.handle_input(Instant::now(), item);
    }

    /// Opens and closes what the driver asks for. A connect blocks the
    /// pump for at most the dial's timeout.
    fn take_actions(&mut self) {
        while let Some(action) = self.driver.poll_action() {
            match action {
                Action::Open {
                    link,
                    target,
                    timeout,
                } => {
                    let input = self.driver.handle().input().clone();
                    match Link::open(link, &target, timeout, &input) {
                        Ok(opened) => {
                            self.link = Some(opened);
                            self.reported = 0;
                            self.driver.handle_opened(Instant::now(), link);
                        }
                        Err(e) => self.driver.handle_open_failed(Instant::now(), link, e),
                    }
                }
                Action::Close { link } => {
                    if self.link.as_ref().is_some_and(|l| l.id == link) {
                        self.link = None;
                    }
                }
            }
        }
    }
}
