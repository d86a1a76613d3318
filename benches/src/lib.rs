//! Workloads and per-crate decode/encode adapters for the codec benches.
//!
//! Each adapter drives one crate through its own public decoder the way an
//! application would, and reports what it decoded so the bench can check the
//! output is right before it measures anything.

use std::hint::black_box;

use bytes::BytesMut;
use tokio_util::codec::Decoder as _;

/// The read size of the streamed benches: one Ethernet-MSS TCP segment.
pub const READ_SIZE: usize = 1460;

/// Target size of each workload's buffer.
const WORKLOAD_BYTES: usize = 8 << 20;

/// One benchmark input: many STOMP 1.2 MESSAGE frames with `content-length`.
pub struct Workload {
    /// Short name, used in bench ids.
    pub name: &'static str,
    /// The whole stream.
    pub bytes: Vec<u8>,
    /// Where each frame starts and ends in `bytes` (for pre-split peers).
    pub frames: Vec<(usize, usize)>,
    /// One frame's headers (unescaped) and body, for the encode benches.
    pub headers: Vec<(String, String)>,
    /// The body of every frame.
    pub body: Vec<u8>,
}

impl Workload {
    /// The `(name, unescaped value)` a correct decoder must report for the
    /// first frame's header `x-h0` (header-heavy only) or `destination`.
    pub fn probe(&self) -> (&str, &str) {
        let name = if self.name == "d-header-heavy" {
            "x-h0"
        } else {
            "destination"
        };
        let value = self.headers.iter().find(|(n, _)| n == name).unwrap();
        (name, &value.1)
    }
}

fn escape(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace(':', "\\c")
        .replace('\r', "\\r")
}

fn build(name: &'static str, headers: Vec<(String, String)>, body_len: usize) -> Workload {
    let body: Vec<u8> = (0..body_len).map(|i| b'a' + (i % 26) as u8).collect();
    let mut bytes = Vec::with_capacity(WORKLOAD_BYTES + 70_000);
    let mut frames = Vec::new();
    let mut n = 0u64;
    while bytes.len() < WORKLOAD_BYTES {
        let start = bytes.len();
        bytes.extend_from_slice(b"MESSAGE\n");
        for (k, v) in &headers {
            let v = if k == "message-id" || k == "ack" {
                format!("{v}{n}")
            } else {
                v.clone()
            };
            bytes.extend_from_slice(escape(k).as_bytes());
            bytes.push(b':');
            bytes.extend_from_slice(escape(&v).as_bytes());
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(format!("content-length:{}\n\n", body.len()).as_bytes());
        bytes.extend_from_slice(&body);
        bytes.push(0);
        frames.push((start, bytes.len()));
        n += 1;
    }
    Workload {
        name,
        bytes,
        frames,
        headers,
        body,
    }
}

fn usual_headers() -> Vec<(String, String)> {
    [
        ("subscription", "sub-0"),
        ("destination", "/queue/benchmark"),
        ("message-id", "T_sub-0@@session-mjpcAxkyn7iwaduyjoaNtw@@"),
        ("redelivered", "false"),
        ("ack", "T_sub-0@@session-mjpcAxkyn7iwaduyjoaNtw@@"),
        ("content-type", "text/plain"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The four workloads of the codec issue, about 8 MB each.
pub fn workloads() -> Vec<Workload> {
    let mut heavy = vec![
        ("subscription".to_string(), "sub-0".to_string()),
        ("destination".to_string(), "/queue/benchmark".to_string()),
        ("message-id".to_string(), "ID:host-1:1:".to_string()),
    ];
    for i in 0..27 {
        heavy.push((format!("x-h{i}"), format!("k{i}:v:w\nline two\\tab{i}")));
    }
    vec![
        build("a-small", usual_headers(), 100),
        build("b-medium", usual_headers(), 4096),
        build("c-large", usual_headers(), 65536),
        build("d-header-heavy", heavy, 16),
    ]
}

/// What a decoder produced: frames, and the probe header's value in the first.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    /// Frames decoded.
    pub frames: usize,
    /// The probe header's value in the first frame, as the decoder reported it.
    pub probe: Option<String>,
    /// Body bytes of the first frame.
    pub first_body_len: usize,
}

/// A decoder under test. `decode` takes the buffer as a socket reader would
/// have filled it and drains every complete frame from it.
pub trait Peer {
    /// The crate's name.
    const NAME: &'static str;
    /// The decoder state kept across reads.
    type State: Default;
    /// Drains complete frames from `buf`; returns how many. With `probe`, the
    /// first frame's header value and body length are recorded.
    fn drain(
        state: &mut Self::State,
        buf: &mut BytesMut,
        probe: Option<(&str, &mut Summary)>,
    ) -> usize;
}

/// Decodes the whole buffer at once, then checks it was all consumed.
pub fn decode_whole<P: Peer>(input: BytesMut) -> usize {
    let mut buf = input;
    let mut state = P::State::default();
    let n = P::drain(&mut state, &mut buf, None);
    assert!(buf.is_empty(), "{} left {} octets", P::NAME, buf.len());
    n
}

/// Decodes `input` fed in `READ_SIZE` reads, as from a socket.
pub fn decode_streamed<P: Peer>(input: &[u8]) -> usize {
    let mut buf = BytesMut::with_capacity(64 << 10);
    let mut state = P::State::default();
    let mut n = 0;
    for chunk in input.chunks(READ_SIZE) {
        buf.extend_from_slice(chunk);
        n += P::drain(&mut state, &mut buf, None);
    }
    assert!(buf.is_empty(), "{} left {} octets", P::NAME, buf.len());
    n
}

/// Decodes the workload once and reports what came out.
pub fn summarize<P: Peer>(w: &Workload) -> Summary {
    let mut summary = Summary {
        frames: 0,
        probe: None,
        first_body_len: 0,
    };
    let mut buf = BytesMut::from(&w.bytes[..]);
    let mut state = P::State::default();
    let (name, _) = w.probe();
    summary.frames = P::drain(&mut state, &mut buf, Some((name, &mut summary)));
    summary
}

fn record(probe: &mut Option<(&str, &mut Summary)>, value: Option<String>, body_len: usize) {
    if let Some((_, summary)) = probe.take() {
        summary.probe = value;
        summary.first_body_len = body_len;
    }
}

/// This project's decoder.
pub struct StompProto;

impl Peer for StompProto {
    const NAME: &'static str = "stomp-proto";
    type State = Option<stomp_proto::Decoder>;

    fn drain(
        state: &mut Self::State,
        buf: &mut BytesMut,
        mut probe: Option<(&str, &mut Summary)>,
    ) -> usize {
        let decoder = state.get_or_insert_with(|| {
            stomp_proto::Decoder::new(stomp_proto::Version::V1_2, stomp_proto::Limits::default())
        });
        let mut n = 0;
        while let Some(item) = decoder.decode(buf).expect("stomp-proto decode") {
            if let stomp_proto::Item::Frame(frame) = &item {
                if let Some((name, _)) = &probe {
                    let value = frame.header(name).map(String::from);
                    record(&mut probe, value, frame.body.len());
                }
                n += 1;
            }
            black_box(item);
        }
        n
    }
}

/// iridium-stomp 0.6: `StompCodec` (tokio-util codec).
pub struct Iridium;

impl Peer for Iridium {
    const NAME: &'static str = "iridium-stomp";
    type State = iridium_stomp::StompCodec;

    fn drain(
        state: &mut Self::State,
        buf: &mut BytesMut,
        mut probe: Option<(&str, &mut Summary)>,
    ) -> usize {
        let mut n = 0;
        while let Some(item) = state.decode(buf).expect("iridium decode") {
            if let iridium_stomp::StompItem::Frame(frame) = &item {
                if let Some((name, _)) = &probe {
                    let value = frame.get_header(name).map(String::from);
                    record(&mut probe, value, frame.body.len());
                }
                n += 1;
            }
            black_box(item);
        }
        n
    }
}

/// tokio-stomp-2 0.3: `ClientCodec` (tokio-util codec).
pub struct TokioStomp2;

impl Peer for TokioStomp2 {
    const NAME: &'static str = "tokio-stomp-2";
    type State = ();

    fn drain(_: &mut (), buf: &mut BytesMut, mut probe: Option<(&str, &mut Summary)>) -> usize {
        let mut codec = tokio_stomp_2::client::ClientCodec;
        let mut n = 0;
        while let Some(msg) = codec.decode(buf).expect("tokio-stomp-2 decode") {
            if let Some((name, _)) = &probe {
                if let tokio_stomp_2::FromServer::Message { headers, body, .. } = &msg.content {
                    let value = headers
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone());
                    record(&mut probe, value, body.as_ref().map_or(0, Vec::len));
                }
            }
            n += 1;
            black_box(msg);
        }
        n
    }
}

/// async-stomp 0.7: `ClientCodec` (tokio-util codec).
pub struct AsyncStomp;

impl Peer for AsyncStomp {
    const NAME: &'static str = "async-stomp";
    type State = async_stomp::client::ClientCodec;

    fn drain(
        state: &mut Self::State,
        buf: &mut BytesMut,
        mut probe: Option<(&str, &mut Summary)>,
    ) -> usize {
        let mut n = 0;
        while let Some(msg) = state.decode(buf).expect("async-stomp decode") {
            if let Some((name, _)) = &probe {
                if let async_stomp::FromServer::Message { headers, body, .. } = &msg.content {
                    let value = headers
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone());
                    record(&mut probe, value, body.as_ref().map_or(0, Vec::len));
                }
            }
            n += 1;
            black_box(msg);
        }
        n
    }
}

/// stomp-parser 0.8: `ServerFrame::try_from(Vec<u8>)`, one owned frame at a
/// time. It has no streaming decoder, so it is handed frames already split
/// (each copied into the `Vec` its API takes); it cannot run streamed.
pub fn stomp_parser_frames(w: &Workload, probe: Option<&mut Summary>) -> usize {
    use stomp_parser::headers::HeaderValue as _;
    let mut probe = probe;
    let (name, _) = w.probe();
    let mut n = 0;
    for &(start, end) in &w.frames {
        let frame = stomp_parser::server::ServerFrame::try_from(w.bytes[start..end].to_vec())
            .expect("stomp-parser decode");
        if let Some(summary) = probe.take() {
            if let stomp_parser::server::ServerFrame::Message(m) = &frame {
                summary.probe = if name == "destination" {
                    Some(m.destination().value().to_string())
                } else {
                    m.custom
                        .iter()
                        .find(|c| c.header_name() == name)
                        .map(|c| c.value().to_string())
                };
                summary.first_body_len = m.body().map_or(0, <[u8]>::len);
            }
        }
        n += 1;
        black_box(frame);
    }
    n
}

/// Baseline: one memchr2 pass visiting every NUL and LF.
pub fn memchr2_scan(bytes: &[u8]) -> usize {
    memchr::memchr2_iter(0, b'\n', bytes).count()
}

/// Encoders, each building the crate's own frame type outside the timing.
pub mod encode {
    use super::*;

    /// Our frames for the workload (the timed part encodes them).
    pub fn stomp_proto_frames(w: &Workload, count: usize) -> Vec<stomp_proto::Frame> {
        (0..count)
            .map(|_| {
                stomp_proto::Frame::builder(stomp_proto::Command::Message)
                    .headers(w.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .body(w.body.clone())
                    .build()
            })
            .collect()
    }

    /// Encodes with this project's encoder.
    pub fn stomp_proto(frames: &[stomp_proto::Frame], dst: &mut BytesMut) {
        let encoder = stomp_proto::Encoder::new(stomp_proto::Version::V1_2);
        for frame in frames {
            encoder.encode(frame, dst).expect("encodable");
        }
    }

    /// iridium-stomp frames (its encoder consumes them).
    pub fn iridium_frames(w: &Workload, count: usize) -> Vec<iridium_stomp::StompItem> {
        (0..count)
            .map(|_| {
                let mut frame = iridium_stomp::Frame::new("MESSAGE");
                frame.headers = w.headers.clone();
                frame
                    .headers
                    .push(("content-length".into(), w.body.len().to_string()));
                frame.body = w.body.clone();
                iridium_stomp::StompItem::Frame(frame)
            })
            .collect()
    }

    /// Encodes every frame with a tokio-util encoder, as `Framed` would.
    pub fn with_codec<I, C>(mut codec: C, frames: Vec<I>, dst: &mut BytesMut)
    where
        C: tokio_util::codec::Encoder<I>,
        C::Error: std::fmt::Debug,
    {
        for frame in frames {
            codec.encode(frame, dst).expect("encodable");
        }
    }

    /// SEND frames with the workload's headers and body, for the crates whose
    /// encoder takes only client frames (their types differ, their shape not).
    macro_rules! send_frames {
        ($krate:ident, $w:expr, $count:expr) => {
            (0..$count)
                .map(|_| {
                    $krate::ToServer::Send {
                        destination: "/queue/benchmark".into(),
                        transaction: None,
                        headers: Some($w.headers.clone()),
                        body: Some($w.body.clone()),
                    }
                    .into()
                })
                .collect()
        };
    }

    /// tokio-stomp-2 SEND frames.
    pub fn tokio_stomp_2_frames(
        w: &Workload,
        count: usize,
    ) -> Vec<tokio_stomp_2::Message<tokio_stomp_2::ToServer>> {
        send_frames!(tokio_stomp_2, w, count)
    }

    /// async-stomp SEND frames.
    pub fn async_stomp_frames(
        w: &Workload,
        count: usize,
    ) -> Vec<async_stomp::Message<async_stomp::ToServer>> {
        send_frames!(async_stomp, w, count)
    }
}
