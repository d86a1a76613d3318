//! `stomp encode`: JSON lines in, wire bytes out.

use std::io::{self, BufRead, Write};

use bytes::BytesMut;
use stomp_proto::{encode_heartbeat, ContentLengthPolicy, Encoder, Item, Version};

use crate::json::parse_item;
use crate::Failure;

/// Encodes every JSON line of `input` to `out`. `content-length` is written only
/// where a line has it or the body needs it, so that `encode | decode` gives back
/// exactly the lines it was given.
pub fn run(version: Version, input: impl BufRead, out: &mut impl Write) -> Result<(), Failure> {
    let mut wire = BytesMut::with_capacity(64 << 10);
    let result = encode_lines(version, input, out, &mut wire);
    // What was encoded before a bad line is still written.
    out.write_all(&wire).map_err(Failure::Io)?;
    out.flush().map_err(Failure::Io)?;
    result
}

fn encode_lines(
    version: Version,
    input: impl BufRead,
    out: &mut impl Write,
    wire: &mut BytesMut,
) -> Result<(), Failure> {
    let encoder = Encoder::new(version).content_length(ContentLengthPolicy::WhenRequired);
    for (index, line) in input.lines().enumerate() {
        let line = line.map_err(|e| match e.kind() {
            io::ErrorKind::InvalidData => {
                Failure::Malformed(format!("line {}: not UTF-8", index + 1))
            }
            _ => Failure::Io(e),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let fail = |why: String| Failure::Malformed(format!("line {}: {why}", index + 1));
        match parse_item(&line).map_err(fail)? {
            Item::Heartbeat => encode_heartbeat(wire),
            Item::Frame(frame) => encoder
                .encode(&frame, wire)
                .map_err(|e| fail(e.to_string()))?,
        }
        if wire.len() >= 32 << 10 {
            out.write_all(wire).map_err(Failure::Io)?;
            wire.clear();
        }
    }
    Ok(())
}
