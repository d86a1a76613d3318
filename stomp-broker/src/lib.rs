//! A STOMP broker for development and tests, built on the sans-IO
//! [`ServerSession`](stomp_proto::server::ServerSession) of `stomp-proto`.
//!
//! For now it holds the [`fault`] peer: a scripted server that misbehaves on
//! cue (cuts the handshake, stalls, writes half a frame or garbage), so that
//! clients can be tested against what real brokers do only on a bad day.
//! Real deployments use RabbitMQ, ActiveMQ or Artemis.

#![forbid(unsafe_code)]

pub mod fault;
