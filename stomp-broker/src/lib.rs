//! A STOMP broker for development and tests, built on the sans-IO
//! [`ServerSession`](stomp_proto::server::ServerSession) of `stomp-proto`.
//!
//! - [`engine`]: the broker's logic, sans-IO: queues, topics, acks,
//!   redelivery, transactions, prefetch, logins, over one `ServerSession`
//!   per connection. (Its TCP and WebSocket listeners come next.)
//! - [`fault`]: a scripted server that misbehaves on cue (cuts the
//!   handshake, stalls, writes half a frame or garbage, speaks TLS and
//!   records what the client showed), so that clients can be tested against
//!   what real brokers do only on a bad day.
//!
//! Real deployments use RabbitMQ, ActiveMQ or Artemis.

#![forbid(unsafe_code)]

pub mod engine;
pub mod fault;
pub mod serve;
