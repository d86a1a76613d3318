//! Runs the `stomp` binary as a script would.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

mod common;

use common::STOMP;

fn sample() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/session-1.2.stomp");
    std::fs::read(path).unwrap()
}

fn run(args: &[&str], stdin: &[u8]) -> Output {
    common::stomp(args, stdin, &[])
}

fn stdout_lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn decode_prints_one_json_line_per_item() {
    let out = run(
        &["decode"],
        b"SEND\ndestination:/queue/a\nx:a\\cb\n\nhi\0\n\x00",
    );
    // The last NUL begins a command line that never ends: incomplete.
    let lines = stdout_lines(&out);
    assert_eq!(
        lines[0],
        r#"{"command":"SEND","headers":[["destination","/queue/a"],["x","a:b"]],"body":"hi"}"#
    );
    assert_eq!(lines[1], r#"{"heartbeat":true}"#);
    assert_eq!(out.status.code(), Some(2));

    let out = run(
        &["decode", "--protocol", "1.2"],
        b"MESSAGE\ncontent-length:3\n\n\xff\x00a\0",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout_lines(&out),
        [r#"{"command":"MESSAGE","headers":[["content-length","3"]],"body_base64":"/wBh"}"#]
    );
}

#[test]
fn decode_of_the_sample_session_succeeds() {
    let out = run(&["decode", "-"], &sample());
    assert!(out.status.success(), "{}", stderr(&out));
    let lines = stdout_lines(&out);
    let frames: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("{\"command\""))
        .collect();
    assert_eq!(frames.len(), 9);
    assert_eq!(lines.len(), 19, "9 frames and 10 heart-beats");
    assert!(
        frames[3].contains(r#"["x-note","priority:HIGH\nrush"]"#),
        "{}",
        frames[3]
    );
    assert!(
        frames[5].contains(r#""body_base64":"AAH+/29r""#),
        "{}",
        frames[5]
    );
}

#[test]
fn decode_reads_a_file_argument() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/session-1.2.stomp");
    let from_file = run(&["decode", path.to_str().unwrap()], b"");
    let from_stdin = run(&["decode"], &sample());
    assert!(from_file.status.success());
    assert_eq!(from_file.stdout, from_stdin.stdout);
    let missing = run(&["decode", "/nonexistent/file.stomp"], b"");
    assert_eq!(missing.status.code(), Some(3));
    assert!(stderr(&missing).contains("/nonexistent/file.stomp"));
}

#[test]
fn malformed_input_prints_frames_before_it_and_the_offset() {
    let out = run(&["decode"], b"SEND\n\nok\0BOGUS\n\n\0SEND\n\n\0");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout_lines(&out).len(),
        1,
        "only the frame before the error"
    );
    let err = stderr(&out);
    assert!(err.contains("offset 9"), "{err}");
    assert!(err.contains("BOGUS"), "{err}");

    let out = run(&["decode", "--protocol", "1.1"], b"SEND\nk:\\r\n\n\0");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("offset 7"), "{}", stderr(&out));
    // The same bytes are fine in 1.2, and in 1.0 where nothing is escaped.
    assert!(run(&["decode", "--protocol", "1.2"], b"SEND\nk:\\r\n\n\0")
        .status
        .success());
    let out = run(&["decode", "--protocol", "1.0"], b"SEND\nk:\\r\n\n\0");
    assert!(stdout_lines(&out)[0].contains(r#"["k","\\r"]"#));
}

#[test]
fn input_ending_inside_a_frame_is_incomplete() {
    for input in [
        &b"SEND\ndestination:/q\n\nhal"[..],
        b"SEND",
        b"SEND\ncontent-length:5\n\nab\0",
        b"\r",
    ] {
        let out = run(&["decode"], input);
        assert_eq!(out.status.code(), Some(2), "{input:?}");
        assert!(stderr(&out).contains("incomplete"), "{}", stderr(&out));
    }
    let out = run(&["decode"], b"");
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
}

#[test]
fn encode_then_decode_is_the_identity() {
    let decoded = run(&["decode"], &sample());
    assert!(decoded.status.success());
    let encoded = run(&["encode"], &decoded.stdout);
    assert!(encoded.status.success(), "{}", stderr(&encoded));
    assert_eq!(
        encoded.stdout,
        sample(),
        "re-encoding gives back the very bytes"
    );
    let again = run(&["decode"], &encoded.stdout);
    assert_eq!(again.stdout, decoded.stdout);
}

#[test]
fn encode_escapes_per_protocol_and_rejects_what_cannot_be_written() {
    let line = br#"{"command":"SEND","headers":[["k","a:b"]],"body":""}"#;
    let out = run(&["encode", "--protocol", "1.2"], line);
    assert_eq!(out.stdout, b"SEND\nk:a\\cb\n\n\0");
    let out = run(&["encode", "--protocol", "1.0"], line);
    assert_eq!(out.stdout, b"SEND\nk:a:b\n\n\0");
    let out = run(
        &["encode", "--protocol", "1.0"],
        br#"{"command":"SEND","headers":[["k","a\nb"]]}"#,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 1"), "{}", stderr(&out));
    let out = run(
        &["encode"],
        b"\n{\"heartbeat\":true}\n{\"command\":\"NOPE\"}\n",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("line 3: unknown command"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        out.stdout, b"\n",
        "what came before the bad line is written"
    );
}

#[test]
fn encode_adds_content_length_only_where_a_nul_needs_it() {
    let out = run(
        &["encode"],
        br#"{"command":"SEND","headers":[],"body_base64":"YQBi"}"#,
    );
    assert_eq!(out.stdout, b"SEND\ncontent-length:3\n\na\0b\0");
}

#[test]
fn help_shows_an_example() {
    for sub in ["decode", "encode"] {
        let out = run(&[sub, "--help"], b"");
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("Example:") && text.contains("--protocol"),
            "{text}"
        );
    }
    // Usage errors are 4, as every command's own are: clap's 2 would read
    // as decode's "input ended inside a frame".
    let out = run(&["decode", "--protocol", "2.0"], b"");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("unknown STOMP version"));
    for args in [&["send", "--bogus"][..], &["frobnicate"], &[], &["send"]] {
        let out = run(args, b"");
        assert_eq!(out.status.code(), Some(4), "{args:?}: {}", stderr(&out));
    }
    for args in [&["--help"][..], &["--version"], &["help", "send"]] {
        let out = run(args, b"");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    }
}

/// Peak resident memory of a running process, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Streams `chunk` `times` times through `stomp args`, and returns the peak RSS
/// measured after all input was written but before the process could exit.
fn peak_memory_streaming(args: &[&str], chunk: &[u8], times: usize) -> (u64, u64) {
    let mut child = Command::new(STOMP)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    for _ in 0..times {
        stdin.write_all(chunk).unwrap();
        assert!(Instant::now() < deadline, "streaming took too long");
    }
    stdin.flush().unwrap();
    // Everything but the pipe's buffer has been consumed: the high-water mark
    // now covers the whole run.
    thread::sleep(Duration::from_millis(200));
    let peak = peak_rss_kib(child.id());
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    (peak, reader.join().unwrap())
}

#[test]
fn decode_and_encode_stream_in_flat_memory() {
    // 64 frames of 16 KiB body per chunk, 64 MiB in all.
    let mut chunk = Vec::new();
    for i in 0..64 {
        chunk.extend_from_slice(
            format!("MESSAGE\ndestination:/queue/big\nmessage-id:{i}\ncontent-length:16384\n\n")
                .as_bytes(),
        );
        chunk.extend_from_slice(&[b'x'; 16384]);
        chunk.extend_from_slice(b"\0\n");
    }
    let (peak, out) = peak_memory_streaming(&["decode"], &chunk, 64);
    assert!(out > 64 << 20, "all of it was decoded: {out}");
    assert!(
        peak < 24 << 10,
        "decode peak RSS {peak} KiB for 64 MiB of input"
    );

    let mut lines = Vec::new();
    for i in 0..64 {
        lines.extend_from_slice(format!(r#"{{"command":"SEND","headers":[["destination","/queue/big"],["n","{i}"]],"body":""#).as_bytes());
        lines.extend_from_slice(&[b'y'; 16384]);
        lines.extend_from_slice(b"\"}\n");
    }
    let (peak, out) = peak_memory_streaming(&["encode"], &lines, 64);
    assert!(out > 64 << 20, "all of it was encoded: {out}");
    assert!(
        peak < 24 << 10,
        "encode peak RSS {peak} KiB for 64 MiB of input"
    );
}

#[test]
fn serve_with_a_malformed_user_says_so_and_exits_4() {
    let output = run(
        &["serve", "--listen", "127.0.0.1:0", "--user", "nocolon"],
        b"",
    );
    assert_eq!(output.status.code(), Some(4));
    assert!(
        stderr(&output).contains("LOGIN:PASSCODE"),
        "{}",
        stderr(&output)
    );
}
