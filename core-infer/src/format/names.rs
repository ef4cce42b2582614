//! The one schema of tensor names, dtypes and shapes a model file holds, per precision: what the loaders
//! of the f32 and int8 precisions ask the file for, and what the fuzzer (`tools/fuzz-models`) walks to
//! build whole files. The host trainer's files are checked to hold exactly these tensors, in this order
//! (`core-infer/tests/schema.rs`).
//!
//! A name is `layer.part`: `conv1.weight`, `lstm2.bwd.w_hh`, `lut.sigmoid`. Every file has, per layer:
//!
//! | tensor | f32 | int8 | meaning |
//! |---|---|---|---|
//! | `conv1.weight` | `[c1, 3, 3, 1]` | same, i8 | output channel, kernel row, kernel column, input channel |
//! | `conv2.weight` | `[c2, 3, 3, c1]` | same, i8 | |
//! | `dense1.weight` | `[d1, features]` | same, i8 | features: pooled row × conv2 channel ([`Arch::features`]) |
//! | `dense2.weight` | `[classes, 2·l2]` | same, i8 | |
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

use super::{Arch, DType, Precision, MAX_TENSORS};

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

/// Every tensor of a `precision` file for `arch`, in the order the host trainer writes them.
pub fn tensors(precision: Precision, arch: &Arch) -> heapless::Vec<Spec, MAX_TENSORS> {
    let a = arch;
    let [c1, c2, d1, l1, l2, k] = [a.conv1, a.conv2, a.dense1, a.lstm1, a.lstm2, a.classes].map(usize::from);
    let linear: [(&'static str, [usize; 4], usize); 4] = [
        ("conv1", [c1, 3, 3, 1], 4),
        ("conv2", [c2, 3, 3, c1], 4),
        ("dense1", [d1, a.features(), 1, 1], 2),
        ("dense2", [k, 2 * l2, 1, 1], 2),
    ];
    let lstms: [(&'static str, usize, usize); 4] =
        [("lstm1.fwd", d1, l1), ("lstm1.bwd", d1, l1), ("lstm2.fwd", 2 * l1, l2), ("lstm2.bwd", 2 * l1, l2)];
    let (weight, wide) = match precision {
        Precision::F32 => (DType::F32, DType::F32),
        Precision::Int8 => (DType::I8, DType::I32),
    };
    let int8 = precision == Precision::Int8;
    let mut out = heapless::Vec::new();
    // At most 4·5 + 4·8 + 3 = 55 entries: within MAX_TENSORS, so no push can fail.
    let mut put = |s: Spec| {
        let _ = out.push(s);
    };
    for (layer, dims, rank) in linear {
        let shape = dims.get(..rank).unwrap_or(&[]);
        let [outputs, ..] = dims;
        put(Spec::new(layer, "weight", weight, shape));
        put(Spec::new(layer, "bias", wide, &[outputs]));
        if int8 {
            put(Spec::new(layer, "mult", DType::I32, &[outputs]));
            put(Spec::new(layer, "shift", DType::I32, &[outputs]));
            put(Spec::new(layer, "zp", DType::I32, &[2]));
        }
    }
    for (layer, n_in, hidden) in lstms {
        put(Spec::new(layer, "w_ih", weight, &[4 * hidden, n_in]));
        put(Spec::new(layer, "w_hh", weight, &[4 * hidden, hidden]));
        put(Spec::new(layer, "bias", wide, &[4 * hidden]));
        if int8 {
            for part in ["mult_ih", "shift_ih", "mult_hh", "shift_hh"] {
                put(Spec::new(layer, part, DType::I32, &[4]));
            }
            put(Spec::new(layer, "zp", DType::I32, &[1]));
        }
    }
    if int8 {
        put(Spec::new("lut", "sigmoid", DType::I16, &[LUT_LEN]));
        put(Spec::new("lut", "tanh", DType::I16, &[LUT_LEN]));
        put(Spec::new("scores", "scale", DType::F32, &[1]));
    }
    out
}

/// The spec of `layer.part` in `specs` (a [`tensors`] list).
pub fn find<'s>(specs: &'s [Spec], layer: &str, part: &str) -> Option<&'s Spec> {
    specs.iter().find(|s| s.layer == layer && s.part == part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed() -> Arch {
        Arch { height: 50, width: 200, conv1: 32, conv2: 64, dense1: 64, lstm1: 128, lstm2: 64, classes: 20, max_label_len: 5 }
    }

    #[test]
    fn names_are_unique_short_and_matched_exactly() {
        for precision in [Precision::F32, Precision::Int8] {
            let specs = tensors(precision, &seed());
            assert_eq!(specs.len(), if precision == Precision::F32 { 20 } else { 55 });
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
        let f32_params: usize = tensors(Precision::F32, &seed()).iter().map(Spec::len).sum();
        assert_eq!(f32_params, 432_725 - 129);
    }
}
