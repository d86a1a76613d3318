//! Decode and encode throughput of stomp-proto beside peer crates and baselines.
//!
//! `cargo bench -p stomp-benches --bench codec` first prints a correctness and
//! allocations-per-frame table (from a counting global allocator), then runs the
//! criterion groups `decode/*`, `decode-streamed/*` and `encode/*`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput};
use stomp_benches::*;

/// Counts every allocation and reallocation made through the global allocator.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only bumps a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn count_allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let out = f();
    (out, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

fn per_frame(allocations: usize, frames: usize) -> String {
    format!("{:.2}", allocations as f64 / frames as f64)
}

fn check<P: Peer>(w: &Workload) -> String {
    let got = summarize::<P>(w);
    verdict(w, &got)
}

fn verdict(w: &Workload, got: &Summary) -> String {
    let (name, expected) = w.probe();
    let mut problems = Vec::new();
    if got.frames != w.frames.len() {
        problems.push(format!("{} of {} frames", got.frames, w.frames.len()));
    }
    if got.probe.as_deref() != Some(expected) {
        problems.push(format!("{name} = {:?}, expected {expected:?}", got.probe));
    }
    if got.first_body_len != w.body.len() {
        problems.push(format!("body {} octets", got.first_body_len));
    }
    if problems.is_empty() {
        "ok".into()
    } else {
        format!("WRONG: {}", problems.join("; "))
    }
}

fn row<P: Peer>(w: &Workload) {
    let frames = w.frames.len();
    let (_, whole) =
        count_allocations(|| decode_whole::<P>(BytesMut::from(&w.bytes[..])).to_owned());
    // The input copy above is one allocation made before decoding starts.
    let whole = whole.saturating_sub(1);
    let (_, streamed) = count_allocations(|| decode_streamed::<P>(&w.bytes));
    println!(
        "| {} | {} | {} | {} | {} |",
        w.name,
        P::NAME,
        per_frame(whole, frames),
        per_frame(streamed, frames),
        check::<P>(w)
    );
}

/// Prints what each decoder got right and how many allocations it made.
fn report(workloads: &[Workload]) {
    println!("\n| workload | decoder | allocations/frame (whole) | allocations/frame (1460-byte reads) | output |");
    println!("|---|---|---|---|---|");
    for w in workloads {
        row::<StompProto>(w);
        row::<Iridium>(w);
        row::<TokioStomp2>(w);
        row::<AsyncStomp>(w);
        let mut summary = Summary {
            frames: 0,
            probe: None,
            first_body_len: 0,
        };
        let (n, allocations) = count_allocations(|| stomp_parser_frames(w, Some(&mut summary)));
        summary.frames = n;
        println!(
            "| {} | stomp-parser (pre-split) | {} | n/a | {} |",
            w.name,
            per_frame(allocations, n),
            verdict(w, &summary)
        );
    }
    println!();
}

fn decode_benches(c: &mut Criterion, workloads: &[Workload]) {
    for w in workloads {
        let mut group = c.benchmark_group(format!("decode/{}", w.name));
        group.throughput(Throughput::Bytes(w.bytes.len() as u64));
        let input = || BytesMut::from(&w.bytes[..]);
        fn whole<P: Peer>(
            group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
            input: &dyn Fn() -> BytesMut,
        ) {
            group.bench_function(P::NAME, |b| {
                b.iter_batched(input, |buf| decode_whole::<P>(buf), BatchSize::PerIteration)
            });
        }
        whole::<StompProto>(&mut group, &input);
        whole::<Iridium>(&mut group, &input);
        whole::<TokioStomp2>(&mut group, &input);
        whole::<AsyncStomp>(&mut group, &input);
        group.bench_function("stomp-parser (pre-split)", |b| {
            b.iter(|| stomp_parser_frames(w, None))
        });
        group.bench_function("baseline memchr2 scan", |b| {
            b.iter(|| memchr2_scan(black_box(&w.bytes)))
        });
        let mut copy = vec![0u8; w.bytes.len()];
        group.bench_function("baseline copy", |b| {
            b.iter(|| {
                copy.copy_from_slice(black_box(&w.bytes));
                black_box(&copy);
            })
        });
        group.finish();
    }
}

fn streamed_benches(c: &mut Criterion, workloads: &[Workload]) {
    for w in workloads {
        let mut group = c.benchmark_group(format!("decode-streamed/{}", w.name));
        group.throughput(Throughput::Bytes(w.bytes.len() as u64));
        group.bench_function(StompProto::NAME, |b| {
            b.iter(|| decode_streamed::<StompProto>(&w.bytes))
        });
        group.bench_function(Iridium::NAME, |b| {
            b.iter(|| decode_streamed::<Iridium>(&w.bytes))
        });
        group.bench_function(TokioStomp2::NAME, |b| {
            b.iter(|| decode_streamed::<TokioStomp2>(&w.bytes))
        });
        group.bench_function(AsyncStomp::NAME, |b| {
            b.iter(|| decode_streamed::<AsyncStomp>(&w.bytes))
        });
        group.bench_function("baseline copy in 1460-byte reads", |b| {
            b.iter(|| {
                let mut buf = BytesMut::with_capacity(64 << 10);
                for chunk in w.bytes.chunks(READ_SIZE) {
                    buf.extend_from_slice(chunk);
                    if buf.len() > 32 << 10 {
                        black_box(&buf);
                        buf.clear();
                    }
                }
                black_box(buf)
            })
        });
        group.finish();
    }
}

/// Benches an encoder that consumes its frames: fresh frames and an output
/// buffer come from criterion's untimed setup.
fn consuming<T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    command: &str,
    frames: impl Fn() -> T,
    out: &dyn Fn() -> BytesMut,
    encode: impl Fn(T, &mut BytesMut),
) {
    group.bench_function(BenchmarkId::new(name, command), |b| {
        b.iter_batched(
            || (frames(), out()),
            |(frames, mut dst)| {
                encode(frames, &mut dst);
                dst
            },
            BatchSize::PerIteration,
        )
    });
}

fn encode_benches(c: &mut Criterion, workloads: &[Workload]) {
    for w in workloads {
        let count = w.frames.len();
        let mut group = c.benchmark_group(format!("encode/{}", w.name));
        group.throughput(Throughput::Bytes(w.bytes.len() as u64));
        let out = || BytesMut::with_capacity(w.bytes.len() + (w.bytes.len() >> 3));
        let ours = encode::stomp_proto_frames(w, count);
        group.bench_function(BenchmarkId::new("stomp-proto", "MESSAGE"), |b| {
            b.iter_batched_ref(
                out,
                |dst| encode::stomp_proto(&ours, dst),
                BatchSize::PerIteration,
            )
        });
        consuming(
            &mut group,
            "iridium-stomp",
            "MESSAGE",
            || encode::iridium_frames(w, count),
            &out,
            |f, d| encode::with_codec(iridium_stomp::StompCodec::new(), f, d),
        );
        consuming(
            &mut group,
            "tokio-stomp-2",
            "SEND",
            || encode::tokio_stomp_2_frames(w, count),
            &out,
            |f, d| encode::with_codec(tokio_stomp_2::client::ClientCodec, f, d),
        );
        consuming(
            &mut group,
            "async-stomp",
            "SEND",
            || encode::async_stomp_frames(w, count),
            &out,
            |f, d| encode::with_codec(async_stomp::client::ClientCodec::new(), f, d),
        );
        group.finish();
    }
}

fn main() {
    let workloads = workloads();
    let only_report = std::env::args().any(|a| a == "--report-only");
    report(&workloads);
    if only_report {
        return;
    }
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    decode_benches(&mut c, &workloads);
    streamed_benches(&mut c, &workloads);
    encode_benches(&mut c, &workloads);
    c.final_summary();
}
