//! The decoder fuzz check, shared by the cargo-fuzz target (`fuzz/fuzz_targets`)
//! and the stable corpus replay test (`stomp-proto/tests/fuzz_corpus.rs`).
//!
//! Input layout: octet 0 picks the version, octet 1 seeds the chunk sizes, the
//! rest is the stream. Checked, for every input:
//! - no panic;
//! - the items (and the error offset, if any) are the same whole and chunked;
//! - the decoder never holds more than one frame's limit plus one read unparsed;
//! - every decoded frame that can be re-encoded decodes back to itself (less any
//!   repeated `content-length`, which the encoder drops on purpose).

use bytes::BytesMut;
use stomp_proto::{ContentLengthPolicy, Decoder, Encoder, Frame, Item, Limits, Version};

const LIMITS: Limits = Limits {
    max_frame_size: 4096,
    max_headers: 16,
    max_header_line: 256,
    max_body: 2048,
};

/// Items, then the error's offset if decoding failed.
type Outcome = (Vec<Item>, Option<u64>);

fn decode(version: Version, chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new(version, LIMITS);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => return (items, Some(e.offset())),
            }
        }
        assert!(
            buf.len() <= LIMITS.max_frame_size + chunk.len(),
            "{} octets held unparsed",
            buf.len()
        );
    }
    (items, None)
}

/// Splits `input` into chunks of 1 to 64 octets, sizes from a small LCG.
fn chunks(input: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let size = ((state >> 16) as usize % 64 + 1).min(rest.len());
        out.push(&rest[..size]);
        rest = &rest[size..];
    }
    out
}

/// `frame` with only its first `content-length` header.
fn without_repeated_length(frame: &Frame) -> Frame {
    let mut seen = false;
    let headers = frame.headers.iter().filter(|(name, _)| {
        let repeat = *name == "content-length" && seen;
        seen |= *name == "content-length";
        !repeat
    });
    Frame::builder(frame.command)
        .headers(headers)
        .body(frame.body.clone())
        .build()
}

/// Runs every check on one fuzz input.
pub fn run(data: &[u8]) {
    let [selector, seed, input @ ..] = data else {
        return;
    };
    let version = Version::ALL[usize::from(*selector) % 3];
    let whole = decode(version, &[input]);
    let chunked = decode(version, &chunks(input, *seed));
    assert_eq!(whole, chunked, "chunking changed the outcome");

    let encoder = Encoder::new(version).content_length(ContentLengthPolicy::WhenRequired);
    for item in &whole.0 {
        let Item::Frame(frame) = item else { continue };
        let mut wire = BytesMut::new();
        if encoder.encode(frame, &mut wire).is_err() {
            continue;
        }
        let mut decoder = Decoder::new(version, Limits::default());
        let again = decoder
            .decode(&mut wire)
            .expect("a re-encoded frame decodes");
        assert_eq!(
            again,
            Some(Item::Frame(without_repeated_length(frame))),
            "re-encoding changed the frame"
        );
        assert!(wire.is_empty());
    }
}
