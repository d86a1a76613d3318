//! STOMP frames over your own `futures-io` stream; see
//! [`stomp_driver::codec`].

pub use stomp_driver::codec::{CodecError, FrameReader, FrameWriter};
