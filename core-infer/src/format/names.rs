//! The one schema of tensor names, dtypes and shapes a model file holds, per precision: what the loaders
//! of the f32 and int8 precisions ask the file for, and what the fuzzer (`tools/fuzz-models`) walks to
//! build whole files. The host trainer's files are checked to hold exactly these tensors, in this order
//! (`core-infer/tests/schema.rs`).
//!
//! A name is `layer.part`: `conv1.weight`, `lstm2.bwd.w_hh`, `lut.sigmoid`. Every file has, per layer:
//!
//! | tensor | f32 | int8 | meaning |
//! |---|---|---|---|
//! | `conv1.weight` | `[c1, 3, 3, 1]` | same, i8 | output channel, kernel row (over the height), kernel column, input channel |
//! | `conv2.weight` | `[c2, 3, 3, c1]` | same, i8 | |
//! | `dense1.weight` | `[d1, features]` | same, i8 | input `h · c2 + c`: pooled row major, conv2 channel minor ([`Arch::features`]) |
//! | `dense2.weight` | `[classes, 2·l2]` | same, i8 | input: LSTM2's forward half, then its backward half |
//! | `{conv1,conv2,dense1,dense2}.bias` | f32 `[out]` | i32 `[out]` | int8: in the accumulator's scale |
//! | `lstmN.{fwd,bwd}.w_ih` | `[4L, in]` | same, i8 | gates i, f, g, o (PyTorch order) |
//! | `lstmN.{fwd,bwd}.w_hh` | `[4L, L]` | same, i8 | |
//! | `lstmN.{fwd,bwd}.bias` | f32 `[4L]` | i32 `[4L]` | `b_ih + b_hh`; int8: Q3.12 |
//!
//! and an int8 file the quantization parameters besides:
//!
//! | tensor | dtype, shape | meaning |
//! |---|---|---|
//! | `{conv1,conv2,dense1,dense2}.mult`, `.shift` | i32 `[out]` | requantization multiplier (Q31) and shift per output |
//! | `{conv1,conv2,dense1,dense2}.zp` | i32 `[2]` | zero points of the input and output activations |
//! | `lstmN.{fwd,bwd}.mult_ih`, `.shift_ih`, `.mult_hh`, `.shift_hh` | i32 `[4]` | per gate, accumulators → Q3.12 |
//! | `lstmN.{fwd,bwd}.zp` | i32 `[1]` | zero point of the LSTM input |
//! | `lut.sigmoid`, `lut.tanh` | i16 `[513]` | Q15 values at −8 + k/32 |
//! | `scores.scale` | f32 `[1]` | dense2's output scale, only to dequantize scores for people and tests |

use super::{Arch, DType, Precision};

/// The conv and dense layers, in network order.
pub const LINEAR: [&str; 4] = ["conv1", "conv2", "dense1", "dense2"];
/// The LSTM directions, in network order.
pub const LSTMS: [&str; 4] = ["lstm1.fwd", "lstm1.bwd", "lstm2.fwd", "lstm2.bwd"];
/// Entries of each int8 activation table (`lut.sigmoid`, `lut.tanh`): −8 + k/32 for k = 0..=512, plus
/// one so that interpolation at the last entry reads a neighbour.
pub const LUT_LEN: usize = 513;

/// One tensor a file must hold: its name (`layer.part`), dtype and shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub layer: &'static str,
    pub part: &'static str,
    pub dtype: DType,
    dims: [usize; 4],
    rank: usize,
}

impl Spec {
    fn new(layer: &'static str, part: &'static str, dtype: DType, shape: &[usize]) -> Self {
        let mut dims = [1; 4];
        for (d, &s) in dims.iter_mut().zip(shape) {
            *d = s;
        }
        Spec { layer, part, dtype, dims, rank: shape.len().min(4) }
    }

    pub fn shape(&self) -> &[usize] {
        self.dims.get(..self.rank).unwrap_or(&[])
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape().iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `name` is this tensor's `layer.part`, compared without building the string.
    pub fn is_named(&self, name: &[u8]) -> bool {
        let (layer, part) = (self.layer.as_bytes(), self.part.as_bytes());
        name.len() == layer.len() + 1 + part.len()
            && name.starts_with(layer)
            && name.get(layer.len()) == Some(&b'.')
            && name.ends_with(part)
    }

    /// The full name, `layer.part`.
    #[cfg(any(feature = "std", test))]
    pub fn name(&self) -> std::string::String {
        std::format!("{}.{}", self.layer, self.part)
    }
}

/// The parts of a conv or dense layer, and those only an int8 file has.
const LINEAR_PARTS: [&str; 2] = ["weight", "bias"];
const LINEAR_INT8_PARTS: [&str; 3] = ["mult", "shift", "zp"];
/// The parts of an LSTM direction, and those only an int8 file has.
const LSTM_PARTS: [&str; 3] = ["w_ih", "w_hh", "bias"];
const LSTM_INT8_PARTS: [&str; 5] = ["mult_ih", "shift_ih", "mult_hh", "shift_hh", "zp"];
/// The tensors only an int8 file has, beside its layers'.
const INT8_EXTRA: [(&str, &str); 3] = [("lut", "sigmoid"), ("lut", "tanh"), ("scores", "scale")];

/// The spec of `layer.part` in a `precision` file for `arch`, or `None` if such a file has no such
/// tensor. Computed on demand: no table on a microcontroller's stack.
pub fn spec(precision: Precision, arch: &Arch, layer: &'static str, part: &'static str) -> Option<Spec> {
    let int8 = precision == Precision::Int8;
    let (weight, wide) = if int8 { (DType::I8, DType::I32) } else { (DType::F32, DType::F32) };
    if let Some(dims) = linear_dims(arch, layer) {
        let rank = if dims[3] == 0 { 2 } else { 4 };
        let [outputs, ..] = dims;
        return Some(match part {
            "weight" => Spec::new(layer, part, weight, dims.get(..rank).unwrap_or(&[])),
            "bias" => Spec::new(layer, part, wide, &[outputs]),
            "mult" | "shift" if int8 => Spec::new(layer, part, DType::I32, &[outputs]),
            "zp" if int8 => Spec::new(layer, part, DType::I32, &[2]), // the input's and the output's
            _ => return None,
        });
    }
    if let Some((n_in, hidden)) = lstm_sizes(arch, layer) {
        return Some(match part {
            "w_ih" => Spec::new(layer, part, weight, &[4 * hidden, n_in]),
            "w_hh" => Spec::new(layer, part, weight, &[4 * hidden, hidden]),
            "bias" => Spec::new(layer, part, wide, &[4 * hidden]),
            "mult_ih" | "shift_ih" | "mult_hh" | "shift_hh" if int8 => Spec::new(layer, part, DType::I32, &[4]),
            "zp" if int8 => Spec::new(layer, part, DType::I32, &[1]),
            _ => return None,
        });
    }
    match (layer, part) {
        ("lut", "sigmoid" | "tanh") if int8 => Some(Spec::new(layer, part, DType::I16, &[LUT_LEN])),
        ("scores", "scale") if int8 => Some(Spec::new(layer, part, DType::F32, &[1])),
        _ => None,
    }
}

/// The weight dimensions of conv or dense `layer` (`[outputs, 3, 3, C_in]`, or `[outputs, inputs, 0, 0]` for
/// a dense layer), or `None` if it is not one of [`LINEAR`].
fn linear_dims(a: &Arch, layer: &str) -> Option<[usize; 4]> {
    let [c1, c2, d1, l2, k] = [a.conv1, a.conv2, a.dense1, a.lstm2, a.classes].map(usize::from);
    match layer {
        "conv1" => Some([c1, 3, 3, 1]),
        "conv2" => Some([c2, 3, 3, c1]),
        "dense1" => Some([d1, a.features(), 0, 0]),
        "dense2" => Some([k, 2 * l2, 0, 0]),
        _ => None,
    }
}

/// Conv or dense `layer`'s sizes as the layers compute them: `(outputs, segments, segment_len)`, a weight
/// row being `segments` runs of `segment_len` (a conv: its 9 taps of `C_in`; a dense layer: one run).
pub fn linear_sizes(arch: &Arch, layer: &str) -> Option<(usize, usize, usize)> {
    let [outputs, d1, d2, d3] = linear_dims(arch, layer)?;
    Some(if layer.starts_with("conv") { (outputs, d1 * d2, d3) } else { (outputs, 1, d1) })
}

/// LSTM direction `layer`'s `(inputs, hidden units)`, or `None` if it is not one of [`LSTMS`].
pub fn lstm_sizes(a: &Arch, layer: &str) -> Option<(usize, usize)> {
    let [d1, l1, l2] = [a.dense1, a.lstm1, a.lstm2].map(usize::from);
    match layer {
        "lstm1.fwd" | "lstm1.bwd" => Some((d1, l1)),
        "lstm2.fwd" | "lstm2.bwd" => Some((2 * l1, l2)),
        _ => None,
    }
}

/// Every tensor of a `precision` file for `arch`, in the order the host trainer writes them: per conv
/// and dense layer, then per LSTM direction, its parts; then an int8 file's tables and score scale.
pub fn tensors(precision: Precision, arch: &Arch) -> impl Iterator<Item = Spec> + '_ {
    let int8 = precision == Precision::Int8;
    let extra: &[&'static str] = if int8 { &LINEAR_INT8_PARTS } else { &[] };
    let lstm_extra: &[&'static str] = if int8 { &LSTM_INT8_PARTS } else { &[] };
    let linear = LINEAR.iter().flat_map(move |&l| LINEAR_PARTS.iter().chain(extra).map(move |&p| (l, p)));
    let lstms = LSTMS.iter().flat_map(move |&l| LSTM_PARTS.iter().chain(lstm_extra).map(move |&p| (l, p)));
    let tail = INT8_EXTRA.iter().copied().filter(move |_| int8);
    linear.chain(lstms).chain(tail).filter_map(move |(layer, part)| spec(precision, arch, layer, part))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Arch {
        Arch {
            height: 50,
            width: 200,
            conv1: 32,
            conv2: 64,
            dense1: 64,
            lstm1: 128,
            lstm2: 64,
            classes: 20,
            max_label_len: 5,
        }
    }

    #[test]
    fn names_are_unique_short_and_matched_exactly() {
        for precision in [Precision::F32, Precision::Int8] {
            let specs: std::vec::Vec<Spec> = tensors(precision, &seed()).collect();
            assert_eq!(specs.len(), if precision == Precision::F32 { 20 } else { 55 });
            assert!(specs.len() <= super::super::MAX_TENSORS);
            for s in &specs {
                assert_eq!(spec(precision, &seed(), s.layer, s.part).as_ref(), Some(s));
            }
            assert_eq!(spec(precision, &seed(), "conv1", "w_ih"), None);
            for (i, s) in specs.iter().enumerate() {
                let name = s.name();
                assert!(name.len() <= super::super::MAX_NAME_LEN, "{name}");
                assert!(s.is_named(name.as_bytes()));
                assert!(!s.is_named(&name.as_bytes()[1..]) && !s.is_named(std::format!("{name}x").as_bytes()));
                for t in specs.iter().skip(i + 1) {
                    assert_ne!(name, t.name());
                    assert!(!t.is_named(name.as_bytes()));
                }
            }
        }
    }

    #[test]
    fn the_seed_network_has_the_seed_parameter_count() {
        // The seed's Keras summary counts 432,725 trainable parameters with 21 classes (its StringLookup
        // adds an out-of-vocabulary class; Keras LSTMs have one bias per gate, as the folded bias here).
        // With 20 classes one dense2 row fewer: 128 weights and a bias.
        let f32_params: usize = tensors(Precision::F32, &seed()).map(|s| s.len()).sum();
        assert_eq!(f32_params, 432_725 - 129);
    }
}
