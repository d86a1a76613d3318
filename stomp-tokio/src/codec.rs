//! STOMP frames over your own [`Framed`](tokio_util::codec::Framed): the
//! `stomp-proto` decoder and encoder as a `tokio_util::codec` pair, for
//! users who run their own connection logic (a server, a proxy, a test).
//!
//! ```
//! use bytes::BytesMut;
//! use stomp_proto::{Command, Frame, Item, Version};
//! use stomp_tokio::codec::StompCodec;
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! let mut codec = StompCodec::new(Version::V1_2);
//! let mut wire = BytesMut::new();
//! let frame = Frame::builder(Command::Send).header("destination", "/queue/a").body("hi").build();
//! codec.encode(frame, &mut wire)?;
//! codec.encode(Item::Heartbeat, &mut wire)?;
//! let Some(Item::Frame(decoded)) = codec.decode(&mut wire)? else { panic!() };
//! assert_eq!(decoded.header("destination"), Some("/queue/a"));
//! assert_eq!(&decoded.body[..], b"hi");
//! assert_eq!(codec.decode(&mut wire)?, Some(Item::Heartbeat));
//! assert_eq!(codec.decode(&mut wire)?, None);
//! # Ok::<(), stomp_tokio::codec::CodecError>(())
//! ```

use bytes::BytesMut;
pub use stomp_driver::codec::CodecError;
use stomp_proto::{encode_heartbeat, Decoder, Encoder, Frame, Item, Limits, Version};

/// Decodes [`Item`]s (frames and heart-beats) and encodes frames and
/// heart-beats, with one version's escaping rules and the decoder's limits.
#[derive(Debug)]
pub struct StompCodec {
    decoder: Decoder,
    encoder: Encoder,
}

impl StompCodec {
    /// A codec for `version` with the default limits.
    pub fn new(version: Version) -> StompCodec {
        StompCodec::with_limits(version, Limits::default())
    }

    /// A codec for `version` with these decoder limits.
    pub fn with_limits(version: Version, limits: Limits) -> StompCodec {
        StompCodec {
            decoder: Decoder::new(version, limits),
            encoder: Encoder::new(version),
        }
    }
}

impl tokio_util::codec::Decoder for StompCodec {
    type Item = Item;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Item>, CodecError> {
        self.decoder.decode(src).map_err(CodecError::Decode)
    }
}

impl tokio_util::codec::Encoder<Frame> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encoder.encode(&frame, dst).map_err(CodecError::Encode)
    }
}

impl tokio_util::codec::Encoder<Item> for StompCodec {
    type Error = CodecError;

    fn encode(&mut self, item: Item, dst: &mut BytesMut) -> Result<(), CodecError> {
        match item {
            Item::Frame(frame) => self.encode(frame, dst),
            Item::Heartbeat => {
                encode_heartbeat(dst);
                Ok(())
            }
        }
    }
}
