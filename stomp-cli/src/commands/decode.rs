//! `stomp decode`: wire bytes in, JSON lines out.

use std::io::{self, Read, Write};

use bytes::BytesMut;
use stomp_proto::{Decoder, Limits, Version};

use crate::json::write_item;
use crate::Failure;

/// How much is read from the input at a time.
const READ_SIZE: usize = 64 << 10;

/// Decodes `input` and writes one JSON line per item to `out`.
pub fn run(version: Version, mut input: impl Read, out: &mut impl Write) -> Result<(), Failure> {
    let mut decoder = Decoder::new(version, Limits::default());
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut chunk = vec![0u8; READ_SIZE];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Io(e)),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(item)) => write_item(out, &item).map_err(Failure::Io)?,
                Ok(None) => break,
                Err(e) => {
                    out.flush().map_err(Failure::Io)?;
                    return Err(Failure::Malformed(e.to_string()));
                }
            }
        }
    }
    out.flush().map_err(Failure::Io)?;
    if !decoder.is_idle() || !buf.is_empty() {
        let start = decoder.offset();
        return Err(Failure::Incomplete(format!(
            "incomplete input: it ends inside a frame that starts at offset {start} ({} octets of it read)",
            buf.len()
        )));
    }
    Ok(())
}
