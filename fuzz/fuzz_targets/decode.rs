#![no_main]
//! Feeds arbitrary bytes to the decoder, whole and in random chunks.

use libfuzzer_sys::fuzz_target;

#[path = "../harness/decode.rs"]
mod harness;

fuzz_target!(|data: &[u8]| harness::run(data));
