//! Model bytes the fuzzer chooses, parsed and (when they parse) run on an image: any input must end in
//! an error or a result, never a panic, a hang or an out-of-bounds access.
//!
//! The first input byte picks how the rest is used:
//! - even: the rest is a model file as it is (the header checks and the checksum face it);
//! - odd: the rest is a list of 5-byte patches `(offset u32 LE, xor mask)` applied to the shipped int8
//!   model, whose checksum is then recomputed, so the fuzzer reaches the tensor table, the shapes, the
//!   quantization parameters and the inference kernels behind the checksum.
#![no_main]

use libfuzzer_sys::fuzz_target;

static SHIPPED: &[u8] = include_bytes!("../../../models/synthetic/model-int8.crnn");

/// Largest scratch buffer the target hands out: a hostile header may ask for more; that is refused.
const MAX_SCRATCH: usize = 1 << 20;

fn run(bytes: &[u8]) {
    let Ok(model) = core_infer::Model::parse(bytes) else { return };
    let arch = *model.arch();
    let pixels = usize::from(arch.height) * usize::from(arch.width);
    if model.scratch_bytes() > MAX_SCRATCH || pixels > MAX_SCRATCH {
        return;
    }
    let image: Vec<u8> = (0..pixels).map(|i| (i * 31 % 251) as u8).collect();
    let mut scratch = vec![0u8; model.scratch_bytes()];
    let _ = model.recognize(&image, &mut scratch);
    // A scratch buffer one byte short must be refused, not overrun.
    if let Some(short) = model.scratch_bytes().checked_sub(1) {
        let _ = model.recognize(&image, &mut scratch[..short]);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        run(rest);
        return;
    }
    let mut bytes = SHIPPED.to_vec();
    let body = bytes.len() - 4;
    for patch in rest.chunks_exact(5) {
        let offset = u32::from_le_bytes([patch[0], patch[1], patch[2], patch[3]]) as usize % body;
        bytes[offset] ^= patch[4];
    }
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    run(&bytes);
});
