//! The runtime-neutral half of the stomp-rs adapters (`stomp-blocking`,
//! `stomp-tokio`, `stomp-async-std`): the [`Driver`](driver::Driver) that owns
//! a `ClientSession` and answers the handles, [queues](queue::Queue) that a
//! blocking thread and an async task can both wait on, the one
//! [`Error`] type, [TLS settings](Tls), and the sans-IO TLS and WebSocket
//! [layers](layers::Layers). An adapter adds only a socket, a timer and a
//! loop. Users reach all of it through an adapter crate.

#![forbid(unsafe_code)]

pub mod aio;
pub mod codec;
mod config;
pub mod delivery;
pub mod driver;
mod error;
mod events;
pub mod handle;
pub mod layers;
pub mod multicast;
pub mod queue;
pub mod reply;
mod requests;
pub mod tcp;
mod tls;
pub mod window;

pub use config::{Config, WebSocket};
pub use driver::Lifecycle;
pub use error::{Error, Outcome};
pub use events::{EventLog, Events};
pub use queue::Empty;
pub use tcp::{Keepalive, TcpOptions};
pub use tls::Tls;
