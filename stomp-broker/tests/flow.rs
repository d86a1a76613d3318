//! The embedded broker holds producers back when its store is full, and
//! lets them go once consumers drain it: memory stays bounded, nothing is
//! lost. Raw STOMP over loopback TCP, so only the broker is under test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use stomp_broker::engine::EngineConfig;
use stomp_broker::serve::{Broker, ServeConfig};
use stomp_proto::{Command, Decoder, Item, Limits, Version};

const MAX_STORED: usize = 1 << 20;
const BODY: usize = 64 << 10;
const COUNT: usize = 1024;

/// Starts a broker with a 1 MiB store on its own thread.
fn broker() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let config = ServeConfig {
                listen: ([127, 0, 0, 1], 0).into(),
                engine: EngineConfig {
                    max_stored: MAX_STORED,
                    ..EngineConfig::default()
                },
                ..ServeConfig::default()
            };
            let broker = Broker::start(config).await.unwrap();
            tx.send(broker.addr()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

/// A connected socket (CONNECTED read).
fn connect(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .unwrap();
    let mut buf = [0; 256];
    let n = stream.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"CONNECTED\n"));
    stream
}

#[test]
fn a_full_store_holds_producers_back_until_consumers_drain_it() {
    let addr = broker();
    let mut producer = connect(addr);
    let written = Arc::new(AtomicU64::new(0));
    let progress = written.clone();
    let sending = thread::spawn(move || {
        let frame = [
            b"SEND\ndestination:/queue/flow\n\n".as_slice(),
            &[b'x'; BODY],
            b"\0",
        ]
        .concat();
        for _ in 0..COUNT {
            producer.write_all(&frame).unwrap();
            progress.fetch_add(frame.len() as u64, Ordering::SeqCst);
        }
        producer
    });

    // With nobody consuming, the producer stalls: what it got written is
    // the store plus what sockets and the broker's read-ahead hold.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = (u64::MAX, Instant::now());
    let stalled_at = loop {
        let now = written.load(Ordering::SeqCst);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) {
            break now;
        }
        assert!(
            Instant::now() < deadline,
            "never stalled: {now} bytes written"
        );
        thread::sleep(Duration::from_millis(20));
    };
    let total = (COUNT * BODY) as u64;
    assert!(
        stalled_at < total / 2,
        "held back only after {stalled_at} of {total} bytes"
    );

    // A consumer drains it; the producer goes on, and every message arrives.
    let mut consumer = connect(addr);
    consumer
        .write_all(b"SUBSCRIBE\nid:0\ndestination:/queue/flow\n\n\0")
        .unwrap();
    let mut decoder = Decoder::new(Version::V1_2, Limits::default());
    let mut buf = BytesMut::new();
    let mut chunk = vec![0; 64 << 10];
    let mut received = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while received < COUNT {
        assert!(
            Instant::now() < deadline,
            "only {received} of {COUNT} arrived"
        );
        let n = consumer.read(&mut chunk).unwrap();
        assert!(n > 0, "the broker closed after {received}");
        buf.extend_from_slice(&chunk[..n]);
        while let Some(item) = decoder.decode(&mut buf).unwrap() {
            if let Item::Frame(frame) = item {
                assert_eq!(frame.command, Command::Message);
                assert_eq!(frame.body.len(), BODY);
                received += 1;
            }
        }
    }
    drop(sending.join().unwrap());
    assert_eq!(written.load(Ordering::SeqCst), (COUNT * (BODY + 31)) as u64);
}
