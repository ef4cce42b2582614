//! Writes the fuzz targets' seed inputs into a corpus folder: `seed-corpus TARGET DIR [COUNT]`.
//!
//! For `parse_recognize` (raw bytes), COUNT small valid-or-faulty model files from
//! [`fuzz_models::seeds`], each behind a mode byte of 0 (as is); for `structured`, COUNT blocks of
//! pseudo-random bytes, which the target turns into such models itself.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(target), Some(dir)) = (args.first(), args.get(1)) else {
        eprintln!("usage: seed-corpus parse_recognize|structured DIR [COUNT]");
        return ExitCode::FAILURE;
    };
    let count = match args.get(2).map(|c| c.parse::<u64>()) {
        None => 16,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            eprintln!("error: COUNT must be a whole number");
            return ExitCode::FAILURE;
        }
    };
    let dir = PathBuf::from(dir);
    let inputs: Vec<Vec<u8>> = match target.as_str() {
        "parse_recognize" => fuzz_models::seeds(count).into_iter().map(|m| [&[0u8][..], &m].concat()).collect(),
        "structured" => (0..count).map(|seed| fuzz_models::noise(seed, 2048)).collect(),
        other => {
            eprintln!("error: no fuzz target {other:?}: give parse_recognize or structured");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("error: {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (i, input) in inputs.iter().enumerate() {
        let path = dir.join(format!("seed-{i:03}"));
        if let Err(e) = std::fs::write(&path, input) {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("{} seeds written to {}", inputs.len(), dir.display());
    ExitCode::SUCCESS
}
