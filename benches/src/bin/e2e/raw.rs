//! The ceiling: frames encoded by hand and written on a plain socket, 100 at
//! a time; deliveries found by scanning for NUL (the bodies hold none).
//! No library, no checks beyond what counting needs.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::spec::{pace, stamp_of, stamped, usage, Outcome, Spec};
use crate::tally::Tally;

const BATCH: u64 = 100;

fn open(spec: &Spec) -> Result<(TcpStream, Vec<u8>), String> {
    let mut stream =
        TcpStream::connect((spec.host.as_str(), spec.port)).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let connect = format!(
        "CONNECT\naccept-version:1.2\nhost:{}\nlogin:{}\npasscode:{}\nheart-beat:0,0\n\n\0",
        spec.vhost, spec.login, spec.passcode
    );
    stream
        .write_all(connect.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut pending = Vec::new();
    let frame = next_frame(&mut stream, &mut pending)?;
    if !frame.starts_with(b"CONNECTED") {
        return Err(format!("refused: {}", String::from_utf8_lossy(&frame)));
    }
    Ok((stream, pending))
}

/// Reads up to the next NUL; the frame (without leading EOLs).
fn next_frame(stream: &mut TcpStream, pending: &mut Vec<u8>) -> Result<Vec<u8>, String> {
    loop {
        if let Some(end) = memchr::memchr(0, pending) {
            let frame: Vec<u8> = pending.drain(..=end).collect();
            let start = frame
                .iter()
                .position(|&b| b != b'\n' && b != b'\r')
                .unwrap_or(frame.len());
            return Ok(frame[start..frame.len() - 1].to_vec());
        }
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("the broker closed the connection".into());
        }
        pending.extend_from_slice(&buf[..n]);
    }
}

pub fn run(spec: Spec) -> Outcome {
    let cpu_before = usage().0;
    run_inner(&spec, cpu_before).unwrap_or_else(|error| Outcome {
        error: Some(error),
        ..Outcome::default()
    })
}

fn run_inner(spec: &Spec, cpu_before: f64) -> Result<Outcome, String> {
    let paced = spec.rate > 0;
    let mut consumers = Vec::new();
    for n in 0..spec.consumers {
        let (mut stream, mut pending) = open(spec)?;
        let subscribe = format!(
            "SUBSCRIBE\nid:{n}\ndestination:{}\nack:{}\nreceipt:s\n\n\0",
            spec.destination, spec.ack
        );
        stream
            .write_all(subscribe.as_bytes())
            .map_err(|e| e.to_string())?;
        let frame = next_frame(&mut stream, &mut pending)?;
        if !frame.starts_with(b"RECEIPT") {
            return Err(format!("subscribe: {}", String::from_utf8_lossy(&frame)));
        }
        consumers.push((stream, pending));
    }
    let mut producers = Vec::new();
    for _ in 0..spec.producers {
        producers.push(open(spec)?);
    }
    let closers = consumers
        .iter()
        .map(|(stream, _)| stream.try_clone().map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let tally = Tally::new(spec, cpu_before);
    let ended = std::thread::scope(|scope| {
        for (stream, pending) in consumers.iter_mut() {
            let tally = &tally;
            scope.spawn(move || {
                let mut latencies = Vec::new();
                if let Err(e) = consume(spec, tally, stream, pending, &mut latencies, paced) {
                    tally.fail(e);
                }
                tally.keep(latencies);
            });
        }
        for (n, (stream, pending)) in producers.iter_mut().enumerate() {
            let tally = &tally;
            scope.spawn(move || {
                if let Err(e) = produce(spec, n, tally, stream, pending) {
                    tally.fail(e);
                }
            });
        }
        let ended = tally.wait();
        for stream in &closers {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        ended
    });
    ended?;
    Ok(tally.outcome())
}

fn produce(
    spec: &Spec,
    n: usize,
    tally: &Tally,
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
) -> Result<(), String> {
    let share = spec.share(n);
    let head = format!(
        "SEND\ndestination:{}\ncontent-length:{}\n",
        spec.destination,
        spec.size.max(20)
    );
    let mut out = Vec::with_capacity(BATCH as usize * (spec.size + head.len() + 32));
    let mut i = 0;
    while i < share {
        if let Some(wait) = pace(spec.rate, spec.producers, tally.start, i) {
            std::thread::sleep(wait);
        }
        out.clear();
        let mut receipt = false;
        let mut k = 0;
        while k < BATCH && i < share {
            i += 1;
            k += 1;
            out.extend_from_slice(head.as_bytes());
            if spec.receipted(i, share) {
                out.extend_from_slice(format!("receipt:{i}\n").as_bytes());
                receipt = true;
            }
            out.push(b'\n');
            out.extend_from_slice(&stamped(spec.size, tally.now()));
            out.push(0);
            if receipt
                || (spec.rate > 0 && pace(spec.rate, spec.producers, tally.start, i).is_some())
            {
                break;
            }
        }
        stream.write_all(&out).map_err(|e| e.to_string())?;
        if receipt {
            let frame = next_frame(stream, pending)?;
            if !frame.starts_with(b"RECEIPT") {
                return Err(format!("send: {}", String::from_utf8_lossy(&frame)));
            }
        }
    }
    tally.sent(share);
    Ok(())
}

fn consume(
    spec: &Spec,
    tally: &Tally,
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    latencies: &mut Vec<u64>,
    paced: bool,
) -> Result<(), String> {
    let mut buf = std::mem::take(pending);
    let mut acks = Vec::new();
    let mut start = 0;
    loop {
        let mut scanned = start;
        while let Some(end) = memchr::memchr(0, &buf[scanned..]).map(|i| scanned + i) {
            let frame = &buf[scanned..end];
            let frame = &frame[frame
                .iter()
                .position(|&b| b != b'\n' && b != b'\r')
                .unwrap_or(0)..];
            scanned = end + 1;
            if !frame.starts_with(b"MESSAGE") {
                return Err(format!("unexpected: {}", String::from_utf8_lossy(frame)));
            }
            let body = memchr::memmem::find(frame, b"\n\n").map(|i| &frame[i + 2..]);
            if spec.client_acks() {
                let at = memchr::memmem::find(frame, b"\nack:").ok_or("no ack header")?;
                let value = &frame[at + 5..];
                let value = &value[..memchr::memchr(b'\n', value).unwrap_or(value.len())];
                acks.extend_from_slice(b"ACK\nid:");
                acks.extend_from_slice(value);
                acks.extend_from_slice(b"\n\n\0");
            }
            tally.delivered(body.and_then(stamp_of), latencies, paced);
        }
        if !acks.is_empty() {
            stream.write_all(&acks).map_err(|e| e.to_string())?;
            acks.clear();
        }
        buf.drain(..scanned);
        start = 0;
        let len = buf.len();
        buf.resize(len + 64 * 1024, 0);
        match stream.read(&mut buf[len..]) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(n) => buf.truncate(len + n),
        }
    }
}
