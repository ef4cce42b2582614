//! Hostile model files for core-infer, shared by the fuzz targets (`core-infer/fuzz`, run by
//! `tools/fuzz.sh`) and by the tests that replay their corpus in the test command.
//!
//! - [`structured`]: the fuzzer's bytes choose a small architecture (any sizes down to the minimum), an
//!   alphabet, a precision and every tensor's values (zero points, shifts, multipliers, scales, weights,
//!   tables; mostly in their valid ranges, sometimes not), the file is laid out by
//!   [`core_infer::format::ModelWriter`] from the one schema ([`core_infer::format::names`]), then a few
//!   tensors may be dropped or reshaped and a few bytes flipped (the checksum recomputed). The network is
//!   tiny, so one execution takes microseconds, not the 0.1 s of the seed's 67.7 M multiply-adds.
//! - [`raw`]: the bytes are a model file as they are (the header and checksum checks face them), or with
//!   their checksum recomputed (first byte odd) so mutations reach the table and the kernels.
//!
//! Both end in [`exercise`]: parse, run and decode (greedy, greedy with a confidence, beam search of
//! width 4), with a scratch buffer of the size asked and one a byte short. Whatever the bytes, each must return (an error or a text), never panic, hang or read
//! out of bounds.

use arbitrary::{Result, Unstructured};
use core_infer::format::names::{self, Spec};
use core_infer::format::{Arch, DType, ModelWriter, Precision};
use core_infer::{Input, Model};

/// Largest scratch buffer [`exercise`] hands out: a hostile header may ask for more; that is skipped,
/// not allocated.
pub const MAX_BYTES: usize = 1 << 20;
/// Largest image [`exercise`] runs: the width is the only size no tensor depends on, so a flipped
/// header byte can make a valid model of 16,000 steps; such a model is parsed but not run, which keeps
/// an execution to microseconds (a long model runs the same code as a short one, only longer).
pub const MAX_PIXELS: usize = 4096;

/// Parses `bytes` and, when they parse, runs and decodes an image: the one thing every target does.
/// Returns whether the model parsed.
pub fn exercise(bytes: &[u8], image_seed: u8) -> bool {
    let Ok(model) = Model::parse(bytes) else { return false };
    let arch = *model.arch();
    let pixels = usize::from(arch.height) * usize::from(arch.width);
    let need = model.scratch_bytes();
    if need > MAX_BYTES || pixels > MAX_PIXELS {
        return true;
    }
    // Grey, or RGB for a colour model.
    let image: Vec<u8> =
        (0..model.image_bytes()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(image_seed)).collect();
    let mut scratch = vec![0u8; need];
    if let Ok(scores) = model.run(&image, &mut scratch) {
        // Every score must be readable, dequantized to a number (int8) or as computed (f32).
        for t in 0..scores.steps() {
            for k in 0..scores.classes() {
                let _ = scores.get(t, k);
            }
        }
        let max_len = usize::from(arch.max_label_len);
        let text = model.decode(&scores);
        assert!(text.chars().count() <= max_len, "text longer than the model reads");
        let greedy = core_infer::beam::greedy(&scores, model.alphabet(), max_len);
        let beam = core_infer::beam::beam::<4>(&scores, model.alphabet(), max_len);
        for r in [&greedy, &beam] {
            assert!(r.text.chars().count() <= max_len, "text longer than the model reads");
            assert!((0.0..=1.0).contains(&r.confidence), "confidence {} is not a probability", r.confidence);
        }
        assert_eq!(greedy.text, text, "greedy with a confidence reads another text");
    }
    // A buffer one byte short, and an image of the wrong size, must be refused, not overrun.
    if let Some(short) = need.checked_sub(1) {
        assert!(model.run(&image, &mut scratch[..short]).is_err(), "short scratch accepted");
    }
    if !image.is_empty() {
        assert!(model.run(&image[1..], &mut scratch).is_err(), "short image accepted");
    }
    true
}

/// The raw-bytes target: the input is a model file (first byte even), or one whose last four bytes are
/// replaced by the checksum of the rest (first byte odd).
pub fn raw(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 || rest.len() < 4 {
        exercise(rest, mode);
        return;
    }
    let mut bytes = rest.to_vec();
    fix_checksum(&mut bytes);
    exercise(&bytes, mode);
}

/// The structure-aware target: a small model built from `data` ([`build`]), then mutated.
pub fn structured(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mut bytes) = build(&mut u) else { return };
    // A few byte flips anywhere but the checksum, which is then made right again.
    let flips = u.int_in_range(0..=3u8).unwrap_or(0);
    let body = bytes.len().saturating_sub(4);
    for _ in 0..flips {
        let (Ok(at), Ok(mask)) = (u.choose_index(body.max(1)), u.arbitrary::<u8>()) else { break };
        if let Some(b) = bytes.get_mut(at) {
            *b ^= mask;
        }
    }
    if flips > 0 {
        fix_checksum(&mut bytes);
    }
    exercise(&bytes, u.arbitrary().unwrap_or(0));
}

/// Replaces the last four bytes with the CRC-32 of the rest, so a mutation gets past the checksum.
pub fn fix_checksum(bytes: &mut [u8]) {
    let Some(body) = bytes.len().checked_sub(4) else { return };
    let crc = crc32fast::hash(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
}

/// The one deliberate fault of a built model, if any: what the loaders must refuse (or survive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, arbitrary::Arbitrary)]
enum Fault {
    /// An architecture size of 0.
    ZeroSize(u8),
    /// An alphabet one character longer or shorter than the classes say.
    AlphabetLength(bool),
    /// Tensor `k` (of the schema, modulo its length) left out.
    Missing(u8),
    /// Tensor `k` one element longer in its last dimension.
    Reshaped(u8),
    /// Tensor `k` stored as i8 whatever its dtype.
    Retyped(u8),
    /// Tensor `k` filled with any bytes (shifts and zero points out of range, NaN scales).
    AnyValues(u8),
}

/// A small model file chosen by `u`: valid half the time, else with one [`Fault`].
pub fn build(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    let fault: Option<Fault> = if u.arbitrary()? { Some(u.arbitrary()?) } else { None };
    let precision = if u.arbitrary()? { Precision::Int8 } else { Precision::F32 };
    // Sizes from the smallest the network has (a 4×4 image pools to one row and one step) up to a few
    // steps and channels.
    let mut arch = Arch {
        height: u.int_in_range(4..=12)?,
        width: u.int_in_range(4..=24)?,
        conv1: u.int_in_range(1..=4)?,
        conv2: u.int_in_range(1..=4)?,
        dense1: u.int_in_range(1..=6)?,
        lstm1: u.int_in_range(1..=6)?,
        lstm2: u.int_in_range(1..=6)?,
        classes: u.int_in_range(2..=6)?,
        max_label_len: u.int_in_range(1..=7)?,
    };
    if let Some(Fault::ZeroSize(which)) = fault {
        let fields = [
            &mut arch.height,
            &mut arch.width,
            &mut arch.conv1,
            &mut arch.conv2,
            &mut arch.dense1,
            &mut arch.lstm1,
            &mut arch.lstm2,
            &mut arch.classes,
            &mut arch.max_label_len,
        ];
        let n = fields.len();
        if let Some(f) = fields.into_iter().nth(usize::from(which) % n) {
            *f = 0;
        }
    }
    let mut letters = usize::from(arch.classes).saturating_sub(1);
    match fault {
        Some(Fault::AlphabetLength(true)) => letters += 1,
        Some(Fault::AlphabetLength(false)) => letters = letters.saturating_sub(1),
        _ => {}
    }
    let alphabet = alphabet(u, letters)?;
    let mut w = ModelWriter::new(precision, arch, &alphabet);
    w.input(match u.int_in_range(0..=2u8)? {
        0 => Input::Plain,
        1 => Input::Stretch,
        _ => Input::Ink,
    });
    let specs: Vec<Spec> = names::tensors(precision, &arch).collect();
    let target = |k: u8| usize::from(k) % specs.len().max(1);
    for (i, spec) in specs.iter().enumerate() {
        match fault {
            Some(Fault::Missing(k)) if target(k) == i => continue,
            Some(Fault::Reshaped(k)) if target(k) == i => {
                let mut shape = spec.shape().to_vec();
                if let Some(d) = shape.last_mut() {
                    *d += 1;
                }
                let data = u.bytes(shape.iter().product::<usize>() * spec.dtype.size())?.to_vec();
                w.add_raw(&spec.name(), spec.dtype, &shape, data);
            }
            Some(Fault::Retyped(k)) if target(k) == i => {
                let data = u.bytes(spec.len())?.to_vec();
                w.add_raw(&spec.name(), DType::I8, spec.shape(), data);
            }
            Some(Fault::AnyValues(k)) if target(k) == i => {
                let data = u.bytes(spec.len() * spec.dtype.size())?.to_vec();
                w.add_raw(&spec.name(), spec.dtype, spec.shape(), data);
            }
            _ => {
                let data = values(u, spec)?;
                w.add_raw(&spec.name(), spec.dtype, spec.shape(), data);
            }
        }
    }
    w.finish().map_err(|_| arbitrary::Error::IncorrectFormat)
}

/// `n` characters, mostly ASCII, some multi-byte, repeats allowed.
fn alphabet(u: &mut Unstructured<'_>, n: usize) -> Result<String> {
    const POOL: [char; 12] = ['a', 'b', '7', 'x', 'é', 'β', '€', '😀', 'Z', '0', ' ', 'a'];
    (0..n).map(|_| u.choose(&POOL).copied()).collect()
}

/// Little-endian values for `spec`, within the ranges the quantizer writes: shifts, zero points and
/// multipliers valid, weights, biases and tables anything; f32 mostly moderate, now and then any bits
/// (NaN, infinities, subnormals, huge).
fn values(u: &mut Unstructured<'_>, spec: &Spec) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(spec.len() * spec.dtype.size());
    for _ in 0..spec.len() {
        match spec.dtype {
            DType::I8 => out.push(u.arbitrary()?),
            DType::I16 => out.extend_from_slice(&u.arbitrary::<i16>()?.to_le_bytes()),
            DType::I32 => {
                let v: i32 = match spec.part {
                    "shift" | "shift_ih" | "shift_hh" => u.int_in_range(-31..=30)?,
                    "zp" => u.int_in_range(-128..=127)?,
                    "mult" | "mult_ih" | "mult_hh" => u.int_in_range(1 << 30..=i32::MAX)?,
                    _ => u.arbitrary()?,
                };
                out.extend_from_slice(&v.to_le_bytes());
            }
            DType::F32 => {
                let v: f32 = if spec.part == "scale" {
                    f32::from(u.int_in_range(1u16..=1000)?) / 100.0
                } else if u.ratio(1, 16)? {
                    f32::from_bits(u.arbitrary()?)
                } else {
                    f32::from(u.int_in_range(-1000i16..=1000)?) / 100.0
                };
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
    Ok(out)
}

/// `len` pseudo-random bytes from `seed` (xorshift): fuzzer-like input for tests and seeds.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Small models built from `0..count` seeds of [`noise`], as the structured target would build them:
/// seeds for the raw-bytes target's corpus.
pub fn seeds(count: u64) -> Vec<Vec<u8>> {
    (0..count).filter_map(|seed| build(&mut Unstructured::new(&noise(seed, 4096))).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_built_models_parse_and_run() {
        let models = seeds(200);
        assert!(models.len() > 190, "{} of 200 built", models.len());
        let parsed = models.iter().enumerate().filter(|(i, m)| exercise(m, *i as u8)).count();
        // About half have one of the deliberate faults; the rest must parse.
        assert!(parsed > models.len() / 2 - 20, "only {parsed} of {} parsed", models.len());
        eprintln!("{parsed} of {} built models parsed and ran", models.len());
    }

    #[test]
    fn a_valid_small_model_reads_within_its_limits() {
        let arch = Arch {
            height: 4,
            width: 4,
            conv1: 1,
            conv2: 1,
            dense1: 1,
            lstm1: 1,
            lstm2: 1,
            classes: 2,
            max_label_len: 1,
        };
        for precision in [Precision::F32, Precision::Int8] {
            let mut w = ModelWriter::new(precision, arch, "a");
            for spec in names::tensors(precision, &arch) {
                let v: Vec<u8> = match (spec.dtype, spec.part) {
                    (DType::I32, "zp" | "shift" | "shift_ih" | "shift_hh") => vec![0; 4 * spec.len()],
                    (DType::I32, "mult" | "mult_ih" | "mult_hh") => (1i32 << 30).to_le_bytes().repeat(spec.len()),
                    (DType::F32, _) => 0.5f32.to_le_bytes().repeat(spec.len()),
                    _ => vec![1; spec.len() * spec.dtype.size()],
                };
                w.add_raw(&spec.name(), spec.dtype, spec.shape(), v);
            }
            let bytes = w.finish().unwrap();
            assert!(exercise(&bytes, 0), "{precision:?} model built from the schema does not parse");
        }
    }
}
