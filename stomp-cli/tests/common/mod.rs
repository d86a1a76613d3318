//! What the CLI test binaries share: running `stomp` as a script would.

// Each test binary uses its own part of this.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::Duration;

/// The binary under test.
pub const STOMP: &str = env!("CARGO_BIN_EXE_stomp");

/// A child killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `stomp` with `args` and `stdin`, killed after 30 s.
pub fn stomp<S: AsRef<std::ffi::OsStr>>(args: &[S], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(STOMP)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("STOMP_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let pid = child.id();
    let watchdog = thread::spawn(move || {
        thread::sleep(Duration::from_secs(30));
        let _ = Command::new("kill").arg(pid.to_string()).status();
    });
    let output = child.wait_with_output().unwrap();
    drop(watchdog);
    output
}

/// `stomp serve` with `args`, until dropped: the process, and the URLs its
/// first line names (the log after it is drained so it never blocks).
pub fn serve(args: &[&str]) -> (Killed, Vec<String>) {
    use std::io::{BufRead, BufReader};

    let mut child = Command::new(STOMP)
        .arg("serve")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    let mut lines = BufReader::new(stderr).lines();
    let line = lines.next().unwrap().unwrap();
    thread::spawn(move || lines.for_each(drop));
    let urls = line
        .split_whitespace()
        .filter(|word| word.contains("://"))
        .map(String::from)
        .collect();
    (child, urls)
}

/// The first of `urls` with `scheme` (such as `stomp://`).
pub fn url<'a>(urls: &'a [String], scheme: &str) -> &'a str {
    urls.iter()
        .find(|url| url.starts_with(scheme))
        .unwrap_or_else(|| panic!("no {scheme} in {urls:?}"))
}
