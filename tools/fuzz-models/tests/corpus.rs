//! Replays the fuzz corpus kept in the repository (`core-infer/fuzz/corpus/`) through the same target
//! bodies the fuzzer runs, so every input that once found new code paths is checked by the test command
//! (in the `checked` profile too, with overflow checks on), without nightly or libFuzzer.

use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../core-infer/fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the corpus is part of the repository)", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{}: empty corpus", dir.display());
    files
}

fn replay(target: &str, run: fn(&[u8])) {
    let files = corpus(target);
    for path in &files {
        let data = std::fs::read(path).unwrap();
        // A panic here names the input: rerun it with `cargo fuzz run TARGET PATH` to debug.
        eprintln!("{}", path.display());
        run(&data);
    }
    eprintln!("{target}: {} corpus inputs replayed", files.len());
}

#[test]
fn structured_corpus_replays() {
    replay("structured", fuzz_models::structured);
}

#[test]
fn raw_corpus_replays() {
    replay("parse_recognize", fuzz_models::raw);
}
