//! The int8 captcha CRNN on a Cortex-M4F (or another Cortex-M core, or RV32: `tools/firmware.sh --core`), under
//! QEMU (`mps2-an386` by default) or on a board.
//!
//! What it does, logging with defmt (semihosting transport, decoded on the host by defmt-print):
//! 1. parses the embedded int8 model and checks that its scratch fits the static buffer;
//! 2. reads the embedded test images and compares with their labels;
//! 3. measures instructions per inference (SysTick under `qemu -icount shift=0`, proven at every start by
//!    timing a loop of a known instruction count: see `timing`) and the stack high-water mark (stack
//!    painting); with the `profile` feature, also the instructions of each stage of the network;
//! 4. with the `draw` feature (on by default): writes a picture of what it saw (`device-view.pgm`), and
//!    draws captchas itself with the shared `no_std` generator, reads them and reports the accuracy.
//!    Like the embedded test images, this is test equipment, and so is the `self-test` feature (on by
//!    default: the DSP kernels checked against the portable ones at every start, and on the Cortex-M55 the
//!    Helium kernels against their definitions: `helium_test`): without both
//!    (`--no-default-features`) the firmware is the model, the inference and the checks alone, the
//!    footprint a product would ship.
//!
//! An MPU guard below the stack turns a stack overflow into a reported failure (see `stack`).
//!
//! Lines starting with `time:` or `calibration:` vary with the build; every other line must equal
//! `expected.txt`, which the host computes with core-infer for the same images (see
//! `tests/tests/firmware_expected.rs`).
#![no_std]
#![no_main]

#[cfg(all(feature = "self-test", feature = "mve"))]
mod helium_test;
#[cfg(feature = "draw")]
mod picture;
#[cfg(feature = "profile")]
mod profile;
mod stack;
mod timing;

#[cfg(target_arch = "arm")]
use cortex_m::singleton;
#[cfg(target_arch = "arm")]
use cortex_m_rt::entry;
use defmt_semihosting as _;
#[cfg(target_arch = "riscv32")]
use riscv::singleton;
#[cfg(target_arch = "riscv32")]
use riscv_rt::entry;

// The model and the test images go to the `.assets` section, which each board's memory map places:
// in flash after the code on the mps2 boards, in the larger SRAM on the M55's (its ITCM is 512 KiB).
#[link_section = ".assets"]
static MODEL_BYTES: [u8; include_bytes!(concat!(env!("OUT_DIR"), "/model.crnn")).len()] =
    *include_bytes!(concat!(env!("OUT_DIR"), "/model.crnn"));
#[link_section = ".assets"]
static IMAGE_BYTES_ALL: [u8; include_bytes!(concat!(env!("OUT_DIR"), "/images.bin")).len()] =
    *include_bytes!(concat!(env!("OUT_DIR"), "/images.bin"));
static MODEL: &[u8] = &MODEL_BYTES;
static IMAGES: &[u8] = &IMAGE_BYTES_ALL;
static LABELS: &str = include_str!(concat!(env!("OUT_DIR"), "/labels.txt"));

/// Working memory of the network: the model reports what it needs; a larger model is refused.
/// (The `small-scratch-demo` feature gives it too little, to show that the model is then refused.)
const SCRATCH_BYTES: usize = if cfg!(feature = "small-scratch-demo") { 16 * 1024 } else { 35 * 1024 };
// The fixtures shared with the host (`expected.txt`); the product build links only the fingerprint.
use captcha_synth::fixtures::fingerprint;
#[cfg(feature = "draw")]
use captcha_synth::fixtures::{DRAW_COUNT, DRAW_SEED};
#[cfg(any(feature = "draw", feature = "profile"))]
use captcha_synth::fixtures::IMAGE_BYTES;

#[entry]
fn main() -> ! {
    stack::paint();
    stack::enable_guard();
    #[cfg(feature = "stack-overflow-demo")]
    {
        let never = stack::overflow(0);
        defmt::error!("the overflow demo returned {=u32}: the guard did not fire", never);
    }
    exit(run())
}

/// Ends the run through semihosting: QEMU exits with 0 if `ok`, else 1.
pub fn exit(ok: bool) -> ! {
    #[cfg(target_arch = "arm")]
    {
        use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};
        debug::exit(if ok { EXIT_SUCCESS } else { EXIT_FAILURE });
        loop {
            cortex_m::asm::wfi();
        }
    }
    #[cfg(target_arch = "riscv32")]
    semihosting::process::exit(if ok { 0 } else { 1 })
}

/// The int8 kernels this build uses (the DSP ones) against the portable reference, on pseudo-random
/// data: the block kernel on rows of every length 0..=300 (reading on into the next row, as inside a
/// tensor), with 1 to 4 input columns, aligned and not; the many-rows pass (`dot_rows`, 1 to 5 rows
/// ending exactly at the weights' end, 1, 2 and 4 columns) against the rows one by one; and the input
/// widening against the portable `put`; the fused conv window (`pooled_rows`) against the portable
/// kernel and the int8 output's definition; the copy of converted inputs against the portable copy. Returns the first failing row length.
#[cfg(feature = "self-test")]
#[inline(never)] // its buffers must not stay in `run`'s frame during inference
fn kernel_self_test() -> Option<usize> {
    use core_infer::block::{block_len, copy_groups, put, zero_tail};
    use core_infer::kernels::{
        copy_inputs, dot_block, dot_block_portable, dot_rows, dot_rows2, dot_rows2_portable, one_word_shifts, pooled_rows,
        put_inputs, requantize, QuantLinear, LANES,
    };
    let mut state = 0x2545_f491u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as u8
    };
    let mut w = [0u8; 304];
    let mut x = [0i8; 304]; // column c reads x[c..]: the columns differ
    // Word-aligned backing for the block; offset by one i16 for the unaligned case.
    #[repr(C, align(4))]
    struct Aligned([i16; 2 + 300 * 4]);
    let mut backing = Aligned([0; 2 + 300 * 4]);
    // (the widening is checked on rows up to WIDEN_MAX long: two more full-size blocks would add 5 KB of stack)
    const WIDEN_MAX: usize = 64;
    #[repr(C, align(4))]
    struct Small([i16; WIDEN_MAX * 4]);
    let (mut got_block, mut want_block) = (Small([0; WIDEN_MAX * 4]), Small([0; WIDEN_MAX * 4]));
    for len in 0..=300 {
        w.iter_mut().for_each(|v| *v = next());
        x.iter_mut().for_each(|v| *v = next() as i8);
        let zp = i16::from(next() as i8);
        for cols in 1..=4 {
            for offset in [0, 1] {
                let Some(block) = backing.0.get_mut(offset..offset + block_len(len, cols)) else { return Some(len) };
                zero_tail(block, cols, len, LANES);
                for c in 0..cols {
                    put(block, cols, c, 0, &x[c..c + len], LANES, |a| i16::from(a) - zp);
                }
                let (mut got, mut want) = ([0i32; 4], [0i32; 4]);
                dot_block(&w, len, block, &mut got[..cols]);
                dot_block_portable(&w, len, block, &mut want[..cols]);
                if got != want {
                    return Some(len);
                }
                // Widening x − zp into column c of a block, as conv2 gathers its inputs (whole groups
                // from a group boundary), against the portable put.
                if len % 4 == 0 && len <= WIDEN_MAX && offset == 0 {
                    for c in 0..cols {
                        let k0 = 4 * (c % 3);
                        let n = len.saturating_sub(k0) / 4 * 4;
                        got_block.0.fill(0);
                        want_block.0.fill(0);
                        let (Some(got), Some(want)) =
                            (got_block.0.get_mut(..block_len(len, cols)), want_block.0.get_mut(..block_len(len, cols)))
                        else {
                            return Some(len);
                        };
                        put_inputs(got, cols, c, k0, &x[..n], i32::from(zp));
                        put(want, cols, c, k0, &x[..n], LANES, |a| i16::from(a) - zp);
                        if got != want {
                            return Some(len);
                        }
                    }
                }
                let Some(block) = backing.0.get_mut(offset..offset + block_len(len, cols)) else { return Some(len) };
                // 1 to 5 rows of k = len / rows inputs, the weights ending right after the last row: the
                // many-rows pass against each row through the portable kernel.
                for rows in 1..=5 {
                    let k = len / rows;
                    if cols == 3 || (k == 0 && len > 0) {
                        continue;
                    }
                    zero_tail(block, cols, k, LANES);
                    let mut got = [[0i32; 4]; 5];
                    dot_rows(&w[..rows * k], k, block, cols, &mut got[..rows]);
                    for (r, got) in got.iter().enumerate().take(rows) {
                        let mut want = [0i32; 4];
                        dot_block_portable(&w[r * k..rows * k], k, block, &mut want[..cols]);
                        if got[..cols] != want[..cols] {
                            return Some(len);
                        }
                    }
                }
                // The fused conv window (kernel pass, 2×2 max-pool, requantization) on 1 to 5 channels
                // of k = len / rows inputs, the weights ending right after the last channel (so conv1's
                // nine-weight rows take the zero-padded copy), against the portable kernel and the
                // int8 output's definition (requantize, plus the zero point, clamped to lo..=127).
                for rows in (1..=5).filter(|_| cols == 4 && offset == 0) {
                    let k = len / rows;
                    if k == 0 {
                        continue;
                    }
                    zero_tail(block, 4, k, LANES);
                    let mut params = [[0u8; 4 * 5]; 3];
                    for (i, p) in params.iter_mut().enumerate() {
                        for v in p.chunks_exact_mut(4) {
                            let raw = u32::from_le_bytes([next(), next(), next(), next()]) as i32;
                            // bias (small, as trained), Q31 multiplier, shift: mostly in -31..=-2 (the fused
                            // window's one-word form), sometimes anywhere in -31..=30 (it must then decline)
                            let shift = if raw & 0x300 == 0 { raw.rem_euclid(62) - 31 } else { raw.rem_euclid(30) - 31 };
                            let value = [raw >> 12, raw, shift][i];
                            v.copy_from_slice(&value.to_le_bytes());
                        }
                    }
                    let (zp_out, relu) = (i32::from(next() as i8), next() % 2 == 0);
                    let lo = if relu { zp_out } else { -128 };
                    let [b, m, sh] = &params;
                    let q = QuantLinear { w: &w[..rows * k], bias: b, mult: m, shift: sh, outputs: rows, cin: k, zp_out, lo };
                    let mut got = [0i8; 5];
                    if !pooled_rows(&q, k, block, &mut got[..rows], one_word_shifts(&q)) {
                        continue; // (declined: the generic path runs, nothing to compare)
                    }
                    let word = |t: &[u8; 20], r: usize| i32::from_le_bytes([t[4 * r], t[4 * r + 1], t[4 * r + 2], t[4 * r + 3]]);
                    for (r, &got) in got.iter().enumerate().take(rows) {
                        let mut sums = [word(b, r); 4];
                        dot_block_portable(&w[r * k..rows * k], k, block, &mut sums);
                        let largest = sums.into_iter().max().unwrap_or(0);
                        let want = zp_out.saturating_add(requantize(largest, word(m, r), word(sh, r))).clamp(lo, 127);
                        if i32::from(got) != want {
                            return Some(len);
                        }
                    }
                }
                // Converted inputs copied into a four-column block (the conv window's 16 input rows to
                // its patches), the DSP copy against the portable one, into column c at group c.
                if cols == 4 && offset == 0 && len % 4 == 0 && len <= WIDEN_MAX {
                    for c in 0..4 {
                        let src: [i16; WIDEN_MAX] = core::array::from_fn(|i| i16::from(x[i] as i8) * 37);
                        got_block.0.fill(0);
                        want_block.0.fill(0);
                        let k0 = 4 * c;
                        let n = len.saturating_sub(k0);
                        copy_inputs(&mut got_block.0, 4, c, k0, &src[..n]);
                        copy_groups(&mut want_block.0, 4, c, k0, &src[..n]);
                        if got_block.0 != want_block.0 {
                            return Some(len);
                        }
                    }
                }
                if cols == 1 {
                    // Two rows of len / 2: the block must then be zero after that many inputs (the kernels may
                    // read the last group of a row whole).
                    let k = len / 2;
                    zero_tail(block, 1, k, LANES);
                    if dot_rows2(&w, k, block) != dot_rows2_portable(&w, k, block) {
                        return Some(len);
                    }
                }
            }
        }
    }
    None
}

fn run() -> bool {
    let scratch = singleton!(: [u8; SCRATCH_BYTES] = [0; SCRATCH_BYTES]);
    let Some(scratch) = scratch else { return false };
    let model = match core_infer::Model::parse(MODEL) {
        Ok(m) => m,
        Err(e) => {
            defmt::error!("model: {}", e);
            return false;
        }
    };
    let need = model.scratch_bytes();
    if need > SCRATCH_BYTES {
        defmt::error!("model needs {=usize} bytes of scratch, this build has {=usize}", need, SCRATCH_BYTES);
        return false;
    }
    #[cfg(feature = "self-test")]
    if let Some(n) = kernel_self_test() {
        defmt::error!("int8 dot kernel differs from the portable one at case {=usize}", n);
        return false;
    }
    #[cfg(all(feature = "self-test", feature = "mve"))]
    if let Some(kernel) = helium_test::run() {
        defmt::error!("Helium kernel {=str} differs from its definition", kernel);
        return false;
    }
    let arch = *model.arch();
    let (h, w) = (usize::from(arch.height), usize::from(arch.width));
    defmt::info!(
        "model: {=usize} bytes, {}x{} input, {=usize} classes, scratch {=usize} bytes",
        MODEL.len(),
        w,
        h,
        usize::from(arch.classes),
        need
    );

    let mut timer = timing::Timer::start();
    let cal = timing::calibrate(&mut timer);
    defmt::info!(
        "calibration: {=u64} instructions measured as {=u64} (timer reads {=u64}, tolerance {=u64})",
        cal.known,
        cal.measured,
        cal.overhead,
        cal.tolerance
    );
    if !cal.agrees() {
        defmt::error!("the instruction counter is wrong: every `time:` figure would be too");
        return false;
    }
    #[cfg(feature = "profile")]
    let mut profile = profile::Profile::default();
    // (a) embedded test images
    for (i, (img, label)) in IMAGES.chunks_exact(h * w).zip(LABELS.lines()).enumerate() {
        let t0 = timer.now();
        #[cfg(feature = "profile")]
        let scores = model.run_probed(img, scratch, &mut profile.clock(&mut timer));
        #[cfg(not(feature = "profile"))]
        let scores = model.run(img, scratch);
        let Ok(scores) = scores else {
            defmt::error!("image {=usize}: inference failed", i);
            return false;
        };
        let dt = timer.now() - t0;
        let text = model.decode(&scores);
        #[cfg(feature = "profile")]
        {
            profile.add_decode(timer.now() - t0 - dt);
            let max_len = usize::from(arch.max_label_len);
            let t1 = timer.now();
            let greedy = core_infer::beam::greedy(&scores, model.alphabet(), max_len);
            let t2 = timer.now();
            let beam = core_infer::beam::beam::<8>(&scores, model.alphabet(), max_len);
            let t3 = timer.now();
            profile.add_readers(t2 - t1, t3 - t2);
            defmt::info!(
                "decode: test {=usize} greedy {=str} (confidence {=f32}), beam 8 {=str} (probability {=f32})",
                i,
                greedy.text.as_str(),
                greedy.confidence,
                beam.text.as_str(),
                beam.confidence
            );
        }
        let fp = fingerprint(scores.raw_i8().unwrap_or(&[]));
        defmt::info!("test {=usize}: label {=str} read {=str} scores {=u32:08x}", i, label, text.as_str(), fp);
        defmt::info!("time: {=u64} instructions", dt);
        #[cfg(feature = "draw")]
        if i == 0 {
            // The scratch is free again: the picture borrows it as its framebuffer.
            picture::write(img, w, h, text.as_str(), &mut scratch[..]);
        }
    }
    #[cfg(feature = "profile")]
    {
        profile.log(&arch);
        colour_input_cost(IMAGES.get(..h * w).unwrap_or(&[]), (h, w), scratch, &mut timer);
    }
    // (b) captchas drawn here, by the same generator the trainer uses
    #[cfg(feature = "draw")]
    if !drawn_captchas(&model, (h, w), scratch) {
        return false;
    }
    let stack = stack::high_water();
    defmt::info!("time: stack high-water {=usize} bytes", stack);
    timer.stop();
    true
}

/// Draws captchas with the trainer's generator, reads them and logs the results and the accuracy.
/// What a colour model's input conversion costs here (`core_infer::input::ink` and the stretch table, as
/// `Model::run` does them for `Input::Ink`): timed on an RGB copy of the first test image (RAM the profile
/// build may spend; the product build has no colour model).
#[cfg(feature = "profile")]
fn colour_input_cost(grey: &[u8], (h, w): (usize, usize), scratch: &mut [u8], timer: &mut timing::Timer) {
    let Some(rgb) = singleton!(: [u8; 3 * IMAGE_BYTES] = [0; 3 * IMAGE_BYTES]) else { return };
    let (Some(rgb), Some(out)) = (rgb.get_mut(..3 * h * w), scratch.get_mut(..h * w)) else { return };
    for (p, &v) in rgb.chunks_exact_mut(3).zip(grey) {
        p.copy_from_slice(&[v, 255 - v, v / 2]);
    }
    let t0 = timer.now();
    let ok = core_infer::input::ink(rgb, h, w, out).is_ok();
    let table = core_infer::Input::Ink.table(out);
    let dt = timer.now() - t0;
    defmt::info!(
        "decode: colour input (ink + stretch table) {=usize}x{=usize}: {=u64} instructions, {=bool}, table[0] {=u8}",
        w,
        h,
        dt,
        ok,
        table[0]
    );
}

#[cfg(feature = "draw")]
fn drawn_captchas(model: &core_infer::Model<'_>, (h, w): (usize, usize), scratch: &mut [u8]) -> bool {
    let (mut right, mut total) = (0, 0);
    let Ok(synth) = captcha_synth::Synth::new(captcha_synth::Config::default(), DRAW_SEED) else { return false };
    // A static, not a 10 KB stack frame that could step over the stack guard.
    let Some(pixels) = singleton!(: [u8; IMAGE_BYTES] = [0; IMAGE_BYTES]) else { return false };
    for i in 0..DRAW_COUNT {
        let Some(img) = pixels.get_mut(..h * w) else {
            defmt::error!("the drawing buffer is smaller than the model's input");
            return false;
        };
        let Ok(label) = synth.draw(i, img) else { return false };
        let Ok(scores) = model.run(img, scratch) else { return false };
        let text = model.decode(&scores);
        let fp = fingerprint(scores.raw_i8().unwrap_or(&[]));
        total += 1;
        right += usize::from(text == label.as_str());
        defmt::info!("drawn {=u64}: label {=str} read {=str} scores {=u32:08x}", i, label.as_str(), text.as_str(), fp);
    }
    defmt::info!("drawn accuracy: {=usize}/{=usize}", right, total);
    true
}

#[defmt::panic_handler]
fn defmt_panic() -> ! {
    exit(false)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    // Where, not what: formatting the message would pull core::fmt (about 3 KB of flash) into every
    // build, for code that denies panics (core-infer's no-panic lints) and should never get here.
    match info.location() {
        Some(at) => defmt::error!("panic at {=str}:{=u32}", at.file(), at.line()),
        None => defmt::error!("panic"),
    }
    exit(false)
}
