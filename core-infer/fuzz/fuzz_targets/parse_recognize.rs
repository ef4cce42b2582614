//! Raw bytes as a model file, parsed and (when they parse) run and decoded: see `fuzz_models::raw`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_models::raw(data));
