//! Small models built through the format's writer from the fuzzer's bytes, then mutated, parsed, run and
//! decoded: see `fuzz_models::structured`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_models::structured(data));
