//! Hostile clients against `stomp serve` as its own process: each gets a
//! clear end, and the broker's memory (its resident set, read from
//! `/proc`) stays bounded. The figures are printed (`--nocapture`).

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::Killed;

/// `stomp serve` on an ephemeral port with `extra`: the process and its
/// address.
fn serve(extra: &[&str]) -> (Killed, String) {
    let mut args = vec!["--listen", "127.0.0.1:0"];
    args.extend(extra);
    let (child, urls) = common::serve(&args);
    let addr = common::url(&urls, "stomp://").trim_start_matches("stomp://");
    (child, addr.to_string())
}

/// The resident set of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Whether the broker has closed `socket` (EOF or reset), waiting at most
/// `limit`; what it sent meanwhile goes to `seen`.
fn closed_within(socket: &mut TcpStream, limit: Duration, seen: &mut Vec<u8>) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

fn connect(addr: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
        .unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0; 512];
    let n = socket.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"CONNECTED\n"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    socket
}

#[test]
fn five_thousand_idle_connections_are_closed_at_the_handshake_timeout() {
    const N: usize = 5000;
    let (broker, addr) = serve(&["--handshake-timeout", "2s"]);
    let pid = broker.0.id();
    let before = rss_kib(pid);
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(N);
    for i in 0..N {
        sockets.push(TcpStream::connect(&addr).unwrap());
        // Within the listen backlog (a burst past it leaves connections the
        // kernel has not queued, retried for a minute).
        if i % 1000 == 999 {
            thread::sleep(Duration::from_millis(50));
        }
    }
    // Let the broker take every one in.
    thread::sleep(Duration::from_millis(500));
    let open = rss_kib(pid);
    let per_connection = (open.saturating_sub(before)) * 1024 / N as u64;
    println!(
        "{N} idle connections: RSS {before} KiB before, {open} KiB with them open \
         ({per_connection} B each)"
    );
    // The debug build's tasks are larger than the release build's
    // (about 6 KiB a connection): 24 KiB bounds both.
    assert!(
        per_connection < 24 << 10,
        "{per_connection} B per idle connection"
    );

    let mut closed = 0;
    let deadline = started + Duration::from_secs(10);
    for socket in &mut sockets {
        let left = deadline.saturating_duration_since(Instant::now());
        if closed_within(socket, left.max(Duration::from_millis(1)), &mut Vec::new()) {
            closed += 1;
        }
    }
    let waited = started.elapsed();
    println!(
        "closed {closed} of {N} after {waited:?}; RSS then {} KiB",
        rss_kib(pid)
    );
    assert_eq!(closed, N, "still open after {waited:?}");
}

#[test]
fn connections_past_the_maximum_are_closed_at_once() {
    let (_broker, addr) = serve(&["--max-connections", "50"]);
    let mut kept = (0..50).map(|_| connect(&addr)).collect::<Vec<_>>();
    let mut extra = TcpStream::connect(&addr).unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(5), &mut Vec::new()),
        "the 51st connection stayed open"
    );
    // The first fifty are still served; once one leaves, a new one is let in.
    let mut first = kept.remove(0);
    first.write_all(b"DISCONNECT\nreceipt:bye\n\n\0").unwrap();
    let mut seen = Vec::new();
    assert!(closed_within(&mut first, Duration::from_secs(5), &mut seen));
    assert!(String::from_utf8_lossy(&seen).contains("receipt-id:bye"));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = TcpStream::connect(&addr).unwrap();
        again
            .write_all(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
            .unwrap();
        let mut seen = Vec::new();
        if !closed_within(&mut again, Duration::from_millis(500), &mut seen) || !seen.is_empty() {
            assert!(
                String::from_utf8_lossy(&seen).starts_with("CONNECTED"),
                "{seen:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no room after a connection left");
    }
    drop(kept);
}

/// Writes `prefix`, then `filler` again and again, until the broker closes
/// the connection (or `most` octets went out): what it sent back, and how
/// many octets were written.
fn flood(addr: &str, prefix: &[u8], filler: &[u8], most: usize) -> (String, usize) {
    let mut socket = connect(addr);
    socket.write_all(prefix).unwrap();
    let mut reader = socket.try_clone().unwrap();
    let answer = thread::spawn(move || {
        let mut seen = Vec::new();
        closed_within(&mut reader, Duration::from_secs(20), &mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut written = prefix.len();
    while written < most {
        match socket.write(filler) {
            Ok(n) => written += n,
            Err(_) => break,
        }
    }
    (answer.join().unwrap(), written)
}

#[test]
fn an_endless_header_line_gets_an_error_naming_the_limit() {
    let (_broker, addr) = serve(&[]);
    let (answer, written) = flood(
        &addr,
        b"SEND\ndestination:/queue/endless\nx-endless:",
        &[b'a'; 16 << 10],
        64 << 20,
    );
    println!("endless header line: closed after {written} octets written");
    assert!(answer.starts_with("ERROR\n"), "{answer:?}");
    assert!(
        answer.contains("header line longer than the limit of 65536 octets"),
        "{answer:?}"
    );
    // Closed long before the 64 MiB the flood would send (socket buffers
    // take a few MiB after the broker stopped reading).
    assert!(written < 32 << 20, "{written} octets taken");
}

#[test]
fn a_body_past_the_limit_gets_an_error_naming_it() {
    let (_broker, addr) = serve(&["--max-body", "64KiB"]);
    // Declared: refused from the header, before the body comes.
    let (answer, _) = flood(
        &addr,
        b"SEND\ndestination:/queue/big\ncontent-length:1000000\n\n",
        &[b'b'; 4096],
        1 << 20,
    );
    assert!(answer.starts_with("ERROR\n"), "{answer:?}");
    assert!(answer.contains("65536"), "{answer:?}");
    // Undeclared: refused once past the limit.
    let (answer, written) = flood(
        &addr,
        b"SEND\ndestination:/queue/big\n\n",
        &[b'b'; 4096],
        64 << 20,
    );
    assert!(answer.starts_with("ERROR\n"), "{answer:?}");
    assert!(answer.contains("65536"), "{answer:?}");
    assert!(written < 32 << 20, "{written} octets taken");
    // A body within the limit still goes through.
    let mut socket = connect(&addr);
    let frame = [
        b"SEND\ndestination:/queue/fits\nreceipt:r\n\n".as_slice(),
        &[b'f'; 60 << 10],
        b"\0",
    ]
    .concat();
    socket.write_all(&frame).unwrap();
    let mut buf = [0; 256];
    let n = socket.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"RECEIPT\nreceipt-id:r\n"));
}

#[test]
fn a_producer_flooding_an_unread_queue_is_held_back_in_bounded_memory() {
    const BODY: usize = 64 << 10;
    const COUNT: usize = 512;
    let (broker, addr) = serve(&["--max-stored", "4MiB"]);
    let pid = broker.0.id();
    let before = rss_kib(pid);
    let mut producer = connect(&addr);
    let written = Arc::new(AtomicU64::new(0));
    let progress = written.clone();
    let sending = thread::spawn(move || {
        let frame = [
            b"SEND\ndestination:/queue/flood\n\n".as_slice(),
            &[b'x'; BODY],
            b"\0",
        ]
        .concat();
        for _ in 0..COUNT {
            producer.write_all(&frame).unwrap();
            progress.fetch_add(1, Ordering::SeqCst);
        }
        producer
    });
    // Nobody reads: the producer is held back.
    let mut last = (u64::MAX, Instant::now());
    let deadline = Instant::now() + Duration::from_secs(20);
    let stalled_at = loop {
        let now = written.load(Ordering::SeqCst);
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(500) {
            break now;
        }
        assert!(Instant::now() < deadline, "never held back: {now} sent");
        thread::sleep(Duration::from_millis(20));
    };
    let held = rss_kib(pid);
    println!(
        "flood of {COUNT} x {BODY} B into a 4 MiB store: held back after {stalled_at} \
         messages; RSS {before} KiB before, {held} KiB while held"
    );
    assert!(
        stalled_at < COUNT as u64 / 2,
        "held back only after {stalled_at}"
    );
    assert!(
        held < before + (48 << 10),
        "RSS grew from {before} to {held} KiB"
    );

    // A consumer takes everything; the producer finishes; nothing is lost.
    let mut consumer = connect(&addr);
    consumer
        .write_all(b"SUBSCRIBE\nid:0\ndestination:/queue/flood\n\n\0")
        .unwrap();
    let mut buf = vec![0; 256 << 10];
    let mut bodies = 0;
    let mut octets = 0usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Each MESSAGE carries BODY x's: count them.
    while bodies < COUNT {
        assert!(
            Instant::now() < deadline,
            "only {bodies} of {COUNT} arrived"
        );
        let n = consumer.read(&mut buf).unwrap();
        assert!(n > 0, "the broker closed after {bodies}");
        octets += buf[..n].iter().filter(|&&b| b == b'x').count();
        bodies = octets / BODY;
    }
    drop(sending.join().unwrap());
    assert_eq!(octets, COUNT * BODY);
    println!("after draining: RSS {} KiB", rss_kib(pid));
}
