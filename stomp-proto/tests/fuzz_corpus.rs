//! Replays the fuzz corpora (`fuzz/corpus/<target>`) through the same checks
//! the fuzz targets run, so stable CI exercises every input the fuzzers kept.

// The client and server harnesses each include the shared script reader, as
// their fuzz targets do.
#![allow(clippy::duplicate_mod)]

use std::path::Path;

#[path = "../../fuzz/harness/client.rs"]
mod client;
#[path = "../../fuzz/harness/decode.rs"]
mod decode;
#[path = "../../fuzz/harness/server.rs"]
mod server;

/// Runs `check` on every file of `fuzz/corpus/<target>`; at least `min` exist.
fn replay(target: &str, min: usize, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{} fails the fuzz checks", path.display());
        count += 1;
    }
    assert!(
        count >= min,
        "only {count} corpus inputs in {}",
        dir.display()
    );
}

#[test]
fn decoder_corpus_replays_cleanly() {
    replay("decode", 20, decode::run);
}

#[test]
fn client_session_corpus_replays_cleanly() {
    replay("client", 10, client::run);
}

#[test]
fn server_session_corpus_replays_cleanly() {
    replay("server", 10, server::run);
}
