//! Outgoing bytes of one connection, shared by the client and server sessions.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::encode::{encode_heartbeat, ContentLengthPolicy, EncodeError, Encoder};
use crate::frame::Frame;
use crate::version::Version;

/// Bodies at least this long go out as their own `Bytes`, uncopied.
const SHARE_BODY_FROM: usize = 4096;

/// `pending` is cut into a chunk once it holds this much.
const CUT_AT: usize = 32 * 1024;

/// A fresh `pending` buffer's room.
const CHUNK: usize = 64 * 1024;

/// The room a frame's head is expected to need (a larger one grows the
/// buffer, correctly, only less cheaply).
const HEAD_ROOM: usize = 512;

/// Encodes frames and queues the octets to write, copying small frames into one
/// buffer and passing large bodies through by reference.
#[derive(Debug)]
pub(crate) struct Outbox {
    encoder: Encoder,
    /// Octets not yet cut into `queue`.
    pending: BytesMut,
    queue: VecDeque<Bytes>,
    queued: usize,
    limit: usize,
}

impl Outbox {
    pub(crate) fn new(version: Version, limit: usize) -> Outbox {
        Outbox {
            encoder: Encoder::new(version),
            pending: BytesMut::new(),
            queue: VecDeque::new(),
            queued: 0,
            limit,
        }
    }

    pub(crate) fn set_version(&mut self, version: Version) {
        self.encoder.set_version(version);
    }

    /// Octets waiting to be written.
    pub(crate) fn len(&self) -> usize {
        self.queued + self.pending.len()
    }

    /// Whether `extra` more octets would go past the limit.
    pub(crate) fn would_exceed(&self, extra: usize) -> bool {
        self.len() > 0 && self.len() + extra > self.limit
    }

    /// The octets `frame` takes on the wire, without queueing it.
    pub(crate) fn encoded_len(
        &self,
        frame: &Frame,
        length: ContentLengthPolicy,
    ) -> Result<usize, EncodeError> {
        let mut head = BytesMut::new();
        self.encoder
            .content_length(length)
            .encode_head(frame, &mut head)?;
        Ok(head.len() + frame.body.len() + 1)
    }

    /// Queues `frame`; returns the octets it takes on the wire.
    pub(crate) fn push(&mut self, frame: &Frame) -> Result<usize, EncodeError> {
        self.push_with(frame, ContentLengthPolicy::WhenNonEmpty)
    }

    /// [`push`](Self::push), writing `content-length` as `length` says.
    pub(crate) fn push_with(
        &mut self,
        frame: &Frame,
        length: ContentLengthPolicy,
    ) -> Result<usize, EncodeError> {
        let before = self.len();
        self.make_room(frame);
        self.encoder
            .content_length(length)
            .encode_head(frame, &mut self.pending)?;
        if frame.body.len() >= SHARE_BODY_FROM {
            self.cut();
            self.queued += frame.body.len();
            self.queue.push_back(frame.body.clone());
        } else {
            self.pending.extend_from_slice(&frame.body);
        }
        self.pending.extend_from_slice(&[0]);
        tracing::debug!(target: "stomp::frames", "> {}", frame.summary());
        Ok(self.len() - before)
    }

    /// Queues one heart-beat.
    pub(crate) fn push_heartbeat(&mut self) {
        tracing::trace!(target: "stomp::frames", "> heart-beat");
        encode_heartbeat(&mut self.pending);
    }

    /// Small frames are encoded one after another into `pending`; once it
    /// holds [`CUT_AT`] octets, or has too little room left for the next
    /// frame, it is cut into a chunk of its own and a fresh buffer is
    /// started. A buffer is never grown by copying what it holds: growing
    /// one while the transport still holds chunks of it would copy all of
    /// it, again and again as frames pile up behind a slow socket.
    fn make_room(&mut self, frame: &Frame) {
        let body = if frame.body.len() >= SHARE_BODY_FROM {
            0
        } else {
            frame.body.len()
        };
        let want = HEAD_ROOM + body;
        if self.pending.len() >= CUT_AT || self.pending.capacity() - self.pending.len() < want {
            self.cut();
            self.pending.reserve(want.max(CHUNK));
        }
    }

    fn cut(&mut self) {
        if !self.pending.is_empty() {
            let chunk = self.pending.split().freeze();
            self.queued += chunk.len();
            self.queue.push_back(chunk);
        }
    }

    /// The next octets to write.
    pub(crate) fn pop(&mut self) -> Option<Bytes> {
        if self.queue.is_empty() {
            self.cut();
        }
        let chunk = self.queue.pop_front()?;
        self.queued -= chunk.len();
        Some(chunk)
    }

    /// Drops everything queued (the connection is gone).
    pub(crate) fn clear(&mut self) {
        self.pending.clear();
        self.queue.clear();
        self.queued = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Command;

    #[test]
    fn large_bodies_pass_through_uncopied_and_order_is_kept() {
        let mut outbox = Outbox::new(Version::V1_2, 1 << 20);
        let small = Frame::builder(Command::Send)
            .header("destination", "/q")
            .body("hi")
            .build();
        let large = Frame::builder(Command::Send)
            .body(vec![7u8; 10_000])
            .build();
        outbox.push(&small).unwrap();
        outbox.push(&large).unwrap();
        outbox.push_heartbeat();
        let mut wire = Vec::new();
        let mut chunks = Vec::new();
        while let Some(chunk) = outbox.pop() {
            wire.extend_from_slice(&chunk);
            chunks.push(chunk);
        }
        assert_eq!(
            chunks.len(),
            3,
            "head+small frame, large body, NUL+heart-beat"
        );
        assert_eq!(
            chunks[1].as_ptr(),
            large.body.as_ptr(),
            "the body was copied"
        );
        assert!(wire.starts_with(
            b"SEND\ndestination:/q\ncontent-length:2\n\nhi\0SEND\ncontent-length:10000\n\n"
        ));
        assert!(wire.ends_with(b"\x07\0\n"));
        assert_eq!(outbox.len(), 0);
    }

    #[test]
    fn the_limit_is_reported_before_queueing_past_it() {
        let mut outbox = Outbox::new(Version::V1_2, 100);
        assert!(
            !outbox.would_exceed(1000),
            "an empty outbox always takes one frame"
        );
        outbox
            .push(&Frame::builder(Command::Send).body(vec![1u8; 90]).build())
            .unwrap();
        assert!(outbox.would_exceed(50));
        outbox.clear();
        assert_eq!(outbox.pop(), None);
    }
}
