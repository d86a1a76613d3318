#![no_main]
//! The server session driven by an arbitrary script (see `harness/server.rs`).

use libfuzzer_sys::fuzz_target;

#[path = "../harness/server.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
