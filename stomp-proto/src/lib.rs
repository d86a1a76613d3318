//! The sans-IO core of a STOMP 1.0, 1.1 and 1.2 implementation.
//!
//! This crate never touches a socket, a thread or a clock: bytes go in, frames
//! come out, and frames go in, bytes come out. Adapters (blocking, Tokio,
//! async-std) and your own event loop drive it.
//!
//! The session layer, where most users start:
//! - [`client::ClientSession`]: the client side of a connection: CONNECT and
//!   version negotiation, heart-beats, subscriptions and acks, receipts with
//!   deadlines, transactions, graceful disconnect, and reconnect across a
//!   host list ([`reconnect`], [`uri`]).
//! - [`server::ServerSession`]: the server side of one connection, for brokers
//!   and test peers.
//! - [`guide`]: a walkthrough of driving a session from your own event loop.
//!
//! The frame layer:
//! - [`Decoder`]: a streaming decoder over a [`bytes::BytesMut`] receive buffer.
//!   Input may arrive split at any octet. Bodies and header text are zero-copy
//!   slices of the buffer; escapes are undone in place. [`Limits`] bound what a
//!   peer can make it buffer, and every failure is a [`DecodeError`] with the
//!   stream offset of the offending octet.
//! - [`Encoder`]: writes frames with the version's escaping and a correct
//!   `content-length`.
//! - [`Frame`], [`Command`], [`Headers`], [`FrameBuilder`] and [`Version`].
//!
//! ```
//! use bytes::BytesMut;
//! use stomp_proto::{Command, Decoder, Encoder, Frame, Item, Limits, Version};
//!
//! // Encode a SEND whose header value holds a colon and a newline.
//! let frame = Frame::builder(Command::Send)
//!     .header("destination", "/queue/a")
//!     .header("note", "line one:\nline two")
//!     .body(&b"binary\0body"[..])
//!     .build();
//! let mut wire = BytesMut::new();
//! Encoder::new(Version::V1_2).encode(&frame, &mut wire).unwrap();
//!
//! // Decode it again, fed one octet at a time as a slow socket would.
//! let mut decoder = Decoder::new(Version::V1_2, Limits::default());
//! let mut buf = BytesMut::new();
//! let mut items = Vec::new();
//! for octet in wire.iter() {
//!     buf.extend_from_slice(&[*octet]);
//!     while let Some(item) = decoder.decode(&mut buf).unwrap() {
//!         items.push(item);
//!     }
//! }
//! let Item::Frame(decoded) = &items[0] else { panic!("expected a frame") };
//! assert_eq!(decoded.header("note"), Some("line one:\nline two"));
//! assert_eq!(&decoded.body[..], b"binary\0body");
//! assert_eq!(decoded.header("content-length"), Some("11"));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ack;
mod charset;
pub mod client;
mod decode;
mod encode;
mod escape;
mod frame;
pub mod guide;
pub mod heartbeat;
pub mod multicast;
mod outbox;
pub mod reconnect;
pub mod server;
pub mod uri;
mod version;

pub use ack::AckMode;
pub use charset::body_text;
pub use decode::{DecodeError, DecodeErrorKind, Decoder, Item, Limits};
pub use encode::{encode, encode_heartbeat, ContentLengthPolicy, EncodeError, Encoder};
pub use frame::{Command, Frame, FrameBuilder, Headers, Iter, Summary};
pub use heartbeat::HeartBeat;
pub use version::{ParseVersionError, Version, VersionSet};

#[cfg(test)]
mod tests;
