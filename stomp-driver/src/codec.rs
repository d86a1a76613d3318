//! STOMP frames over any `futures-io` stream, for users who run their own
//! connection logic (a server, a proxy, a test): [`FrameReader`] is a
//! `Stream` of decoded items, [`FrameWriter`] encodes frames and
//! heart-beats. (`stomp-tokio` has the `tokio_util::codec` pair.)
//!
//! ```
//! use futures_core::Stream;
//! use stomp_driver::codec::{FrameReader, FrameWriter};
//! use stomp_proto::{Command, Frame, Item, Version};
//! # use std::future::Future;
//! # use std::pin::Pin;
//! # use std::task::{Context, Poll, Waker};
//! # fn block_on<F: Future>(f: F) -> F::Output {
//! #     let mut f = Box::pin(f);
//! #     let mut cx = Context::from_waker(Waker::noop());
//! #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v } }
//! # }
//!
//! let mut wire = Vec::new();
//! let mut writer = FrameWriter::new(&mut wire, Version::V1_2);
//! let frame = Frame::builder(Command::Send).header("destination", "/queue/a").body("hi").build();
//! block_on(writer.send(&frame))?;
//! block_on(writer.heartbeat())?;
//!
//! let mut reader = FrameReader::new(&wire[..], Version::V1_2);
//! let next = |reader: &mut FrameReader<&[u8]>| {
//!     block_on(std::future::poll_fn(|cx| Pin::new(&mut *reader).poll_next(cx)))
//! };
//! let Some(Ok(Item::Frame(decoded))) = next(&mut reader) else { panic!() };
//! assert_eq!(decoded.header("destination"), Some("/queue/a"));
//! assert!(matches!(next(&mut reader), Some(Ok(Item::Heartbeat))));
//! assert!(next(&mut reader).is_none());
//! # Ok::<(), stomp_driver::codec::CodecError>(())
//! ```

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use futures_core::Stream;
use futures_io::{AsyncRead, AsyncWrite};
use stomp_proto::{
    encode_heartbeat, DecodeError, Decoder, EncodeError, Encoder, Frame, Item, Limits, Version,
};

/// What went wrong reading or writing frames.
#[derive(Debug)]
pub enum CodecError {
    /// The input broke the protocol (with its byte offset).
    Decode(DecodeError),
    /// A frame could not be encoded.
    Encode(EncodeError),
    /// The transport failed, or ended inside a frame.
    Io(io::Error),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Decode(e) => e.fmt(f),
            CodecError::Encode(e) => e.fmt(f),
            CodecError::Io(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for CodecError {}

impl From<io::Error> for CodecError {
    fn from(e: io::Error) -> CodecError {
        CodecError::Io(e)
    }
}

/// Decoded items (frames and heart-beats) from an `AsyncRead`; the stream
/// ends at a clean end of input, and fails on input that ends inside a frame.
#[derive(Debug)]
pub struct FrameReader<R> {
    reader: R,
    decoder: Decoder,
    buffer: BytesMut,
    done: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader for `version` with the default limits.
    pub fn new(reader: R, version: Version) -> FrameReader<R> {
        FrameReader::with_limits(reader, version, Limits::default())
    }

    /// A reader for `version` with these decoder limits.
    pub fn with_limits(reader: R, version: Version, limits: Limits) -> FrameReader<R> {
        FrameReader {
            reader,
            decoder: Decoder::new(version, limits),
            buffer: BytesMut::new(),
            done: false,
        }
    }
}

impl<R: AsyncRead + Unpin> Stream for FrameReader<R> {
    type Item = Result<Item, CodecError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            match this.decoder.decode(&mut this.buffer) {
                Ok(Some(item)) => return Poll::Ready(Some(Ok(item))),
                Ok(None) => {}
                Err(e) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(CodecError::Decode(e))));
                }
            }
            let mut chunk = [0; 8 * 1024];
            match Pin::new(&mut this.reader).poll_read(cx, &mut chunk) {
                Poll::Ready(Ok(0)) => {
                    this.done = true;
                    if this.buffer.iter().all(|b| matches!(b, b'\n' | b'\r')) {
                        return Poll::Ready(None);
                    }
                    let e =
                        io::Error::new(io::ErrorKind::UnexpectedEof, "input ended inside a frame");
                    return Poll::Ready(Some(Err(CodecError::Io(e))));
                }
                Poll::Ready(Ok(n)) => this.buffer.extend_from_slice(&chunk[..n]),
                Poll::Ready(Err(e)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(CodecError::Io(e))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// Encodes frames and heart-beats onto an `AsyncWrite`.
#[derive(Debug)]
pub struct FrameWriter<W> {
    writer: W,
    encoder: Encoder,
    buffer: BytesMut,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    /// A writer with `version`'s escaping.
    pub fn new(writer: W, version: Version) -> FrameWriter<W> {
        FrameWriter {
            writer,
            encoder: Encoder::new(version),
            buffer: BytesMut::new(),
        }
    }

    /// Writes one frame and flushes.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), CodecError> {
        self.encoder
            .encode(frame, &mut self.buffer)
            .map_err(CodecError::Encode)?;
        self.flush().await
    }

    /// Writes one heart-beat (an EOL) and flushes.
    pub async fn heartbeat(&mut self) -> Result<(), CodecError> {
        encode_heartbeat(&mut self.buffer);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<(), CodecError> {
        while !self.buffer.is_empty() {
            let n =
                std::future::poll_fn(|cx| Pin::new(&mut self.writer).poll_write(cx, &self.buffer))
                    .await?;
            if n == 0 {
                return Err(CodecError::Io(io::ErrorKind::WriteZero.into()));
            }
            let _ = self.buffer.split_to(n);
        }
        std::future::poll_fn(|cx| Pin::new(&mut self.writer).poll_flush(cx)).await?;
        Ok(())
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.writer
    }
}
