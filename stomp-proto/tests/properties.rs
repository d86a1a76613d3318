//! Properties of the codec: encode/decode is the identity, chunking is invisible,
//! and no input makes the decoder panic.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use stomp_proto::{Command, Decoder, EncodeError, Encoder, Frame, Item, Limits, Version};

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![
        Just(Version::V1_0),
        Just(Version::V1_1),
        Just(Version::V1_2)
    ]
}

fn command() -> impl Strategy<Value = Command> {
    proptest::sample::select(Command::ALL.to_vec())
}

/// Header text biased towards the octets that escaping and line ends care about.
fn text(min: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("([a-z0-9:\\\\\\r\\n -]|\\PC){{{min},12}}")).unwrap()
}

fn frame() -> impl Strategy<Value = Frame> {
    (
        command(),
        proptest::collection::vec((text(1), text(0)), 0..6),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(command, headers, body)| {
            Frame::builder(command)
                .headers(headers.into_iter().filter(|(n, _)| n != "content-length"))
                .body(body)
                .build()
        })
}

/// Whether `frame` can be written in `version`, by the rules the encoder documents.
fn representable(frame: &Frame, version: Version) -> bool {
    let escapes = frame.command.escapes_headers(version);
    frame.headers.iter().all(|(name, value)| {
        let cr_end_ok = version == Version::V1_2 && escapes || !value.ends_with('\r');
        let raw_ok = escapes || !(name.contains(['\n', ':']) || value.contains('\n'));
        cr_end_ok && raw_ok
    })
}

fn decode_all(version: Version, chunks: &[&[u8]]) -> Vec<Item> {
    let mut decoder = Decoder::new(version, Limits::default());
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        while let Some(item) = decoder.decode(&mut buf).expect("valid input") {
            items.push(item);
        }
    }
    assert!(decoder.is_idle() && buf.is_empty(), "input left over");
    items
}

/// Cuts `input` at the given points (taken modulo its length).
fn split<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut from = 0;
    for p in points.into_iter().chain([input.len()]) {
        chunks.push(&input[from..p]);
        from = p;
    }
    chunks
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn encode_then_decode_is_the_identity(frame in frame(), version in version()) {
        let mut wire = BytesMut::new();
        let result = Encoder::new(version).encode(&frame, &mut wire);
        prop_assert_eq!(result.is_ok(), representable(&frame, version), "result: {:?}", result);
        if let Err(e) = result {
            let unencodable = matches!(e, EncodeError::Unencodable { .. });
            prop_assert!(unencodable, "unexpected error {:?}", e);
            prop_assert!(wire.is_empty());
            return Ok(());
        }
        let items = decode_all(version, &[&wire]);
        prop_assert_eq!(items.len(), 1);
        let Item::Frame(decoded) = &items[0] else { panic!("not a frame") };
        let mut expected = frame.clone();
        if !frame.body.is_empty() {
            expected.headers.push("content-length", &frame.body.len().to_string());
        }
        prop_assert_eq!(decoded, &expected);
    }

    #[test]
    fn any_chunking_yields_the_same_items(
        frames in proptest::collection::vec(frame(), 1..5),
        beats in proptest::collection::vec(0usize..3, 5),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        version in version(),
    ) {
        let encoder = Encoder::new(version);
        let mut wire = BytesMut::new();
        for (i, frame) in frames.iter().enumerate() {
            if encoder.encode(frame, &mut wire).is_ok() {
                for _ in 0..beats[i] {
                    wire.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
                }
            }
        }
        let whole = decode_all(version, &[&wire]);
        let chunked = decode_all(version, &split(&wire, &cuts));
        prop_assert_eq!(&whole, &chunked);
        let bytewise: Vec<&[u8]> = wire.chunks(1).collect();
        prop_assert_eq!(&whole, &decode_all(version, &bytewise));
    }

    #[test]
    fn arbitrary_input_never_panics_and_chunking_agrees(
        input in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(b':'), Just(0u8), Just(b'\\')], 0..256),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
        version in version(),
    ) {
        let limits = Limits { max_frame_size: 200, max_headers: 4, max_header_line: 40, max_body: 100 };
        let run = |chunks: Vec<&[u8]>| {
            let mut decoder = Decoder::new(version, limits);
            let mut buf = BytesMut::new();
            let mut out: Vec<Result<Item, u64>> = Vec::new();
            'feed: for chunk in chunks {
                buf.extend_from_slice(chunk);
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(Some(item)) => out.push(Ok(item)),
                        Ok(None) => break,
                        Err(e) => { out.push(Err(e.offset())); break 'feed; }
                    }
                }
            }
            out
        };
        let whole = run(vec![&input]);
        prop_assert_eq!(&whole, &run(split(&input, &cuts)));
        if let Some(Err(offset)) = whole.last() {
            prop_assert!(*offset <= input.len() as u64);
        }
    }
}

#[test]
fn a_body_is_shared_not_copied_when_cloned() {
    let frame = Frame::builder(Command::Send)
        .body(Bytes::from(vec![7u8; 1000]))
        .build();
    let copy = frame.clone();
    assert_eq!(frame.body.as_ptr(), copy.body.as_ptr());
}
