//! Runs one codec path in a loop for a profiler:
//! `cargo run --release -p stomp-benches --example profile -- decode d-header-heavy 3`
//! (what: decode | streamed | encode; a workload name; seconds).

use std::time::{Duration, Instant};

use bytes::BytesMut;
use stomp_benches::{decode_streamed, decode_whole, encode, workloads, StompProto};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let what = args.get(1).map_or("decode", String::as_str);
    let name = args.get(2).map_or("a-small", String::as_str);
    let seconds: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3);
    let w = workloads()
        .into_iter()
        .find(|w| w.name == name)
        .expect("a workload name");
    let frames = encode::stomp_proto_frames(&w, w.frames.len());
    let until = Instant::now() + Duration::from_secs(seconds);
    let (mut rounds, mut busy) = (0u64, Duration::ZERO);
    while Instant::now() < until {
        let input = BytesMut::from(&w.bytes[..]);
        let mut out = BytesMut::with_capacity(w.bytes.len() * 2);
        let start = Instant::now();
        match what {
            "decode" => drop(decode_whole::<StompProto>(input)),
            "streamed" => drop(decode_streamed::<StompProto>(&w.bytes)),
            _ => encode::stomp_proto(&frames, &mut out),
        }
        busy += start.elapsed();
        rounds += 1;
    }
    let mb = (w.bytes.len() as f64 * rounds as f64) / busy.as_secs_f64() / 1e6;
    println!("{what} {name}: {rounds} rounds, {mb:.0} MB/s");
}
