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
