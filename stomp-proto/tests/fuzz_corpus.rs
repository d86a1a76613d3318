//! Replays the decoder fuzz corpus (`fuzz/corpus/decode`) through the same checks
//! the fuzz target runs, so stable CI exercises every input the fuzzer kept.

use std::path::Path;

#[path = "../../fuzz/harness/decode.rs"]
mod harness;

#[test]
fn decoder_corpus_replays_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/decode");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| harness::run(&data));
        assert!(outcome.is_ok(), "{} fails the fuzz checks", path.display());
        count += 1;
    }
    assert!(
        count >= 20,
        "only {count} corpus inputs in {}",
        dir.display()
    );
}
