#![no_main]
//! The client session driven by an arbitrary script (see `harness/client.rs`).

use libfuzzer_sys::fuzz_target;

#[path = "../harness/client.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
