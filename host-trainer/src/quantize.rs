//! Post-training quantization to core-infer's int8 format (see `core_infer::int8` for the scheme):
//! symmetric int8 weights per output channel (per gate for the LSTMs), i32 biases, int8 activations whose
//! scales and zero points come from calibration on training images, Q31 multipliers and shifts, and the
//! sigmoid/tanh tables. The device then computes with integers only.

use anyhow::{anyhow, Context};
use core_infer::format::ModelWriter;
use core_infer::int8::{GATE_FRAC, LUT_LEN};
use core_infer::Precision;
use tch::Tensor;

use crate::export::Weights;
use crate::model::Trained;

/// Real range of one activation tensor seen during calibration.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Range {
    pub min: f32,
    pub max: f32,
}

/// Ranges of the quantized activations: conv1, conv2, dense1 (after ReLU) and dense2 (the logits).
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Calibration {
    pub conv1: Range,
    pub conv2: Range,
    pub dense1: Range,
    pub dense2: Range,
}

/// Runs the float model on `pixels` (`n` images) and records the activation ranges.
pub fn calibrate(model: &Trained, pixels: &[u8], n: usize) -> anyhow::Result<Calibration> {
    let taps = tch::no_grad(|| model.net.taps(&crate::model::images_tensor(&model.spec, pixels, n)));
    let range = |t: &Tensor| Range { min: t.min().double_value(&[]) as f32, max: t.max().double_value(&[]) as f32 };
    Ok(Calibration { conv1: range(&taps[0]), conv2: range(&taps[1]), dense1: range(&taps[2]), dense2: range(&taps[3]) })
}

/// An int8 activation: `real = scale · (q − zp)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Act {
    pub(crate) scale: f64,
    pub(crate) zp: i32,
}

impl Act {
    /// Covers `[min(r.min, 0), max(r.max, 0)]` with 256 levels, zero exactly representable.
    pub(crate) fn from_range(r: Range) -> Self {
        let (lo, hi) = (f64::from(r.min.min(0.0)), f64::from(r.max.max(0.0)));
        let scale = ((hi - lo) / 255.0).max(1e-8);
        let zp = (-128.0 - lo / scale).round().clamp(-128.0, 127.0) as i32;
        Act { scale, zp }
    }
}

/// `m` as a Q31 multiplier and a shift: `m ≈ mult · 2^(shift − 31)`.
pub fn quantize_multiplier(m: f64) -> (i32, i32) {
    if m <= 0.0 || !m.is_finite() {
        return (0, 0);
    }
    let mut shift = m.log2().floor() as i32 + 1; // m = frac · 2^shift, frac in [0.5, 1)
    let mut mult = (m / 2f64.powi(shift) * 2f64.powi(31)).round() as i64;
    if mult == 1 << 31 {
        mult /= 2;
        shift += 1;
    }
    if shift < -31 {
        return (0, 0);
    }
    (mult as i32, shift.min(30))
}

/// The LSTMs' outputs: scale 1/127, zero point 0 (`core_infer::int8`).
pub(crate) const HIDDEN: Act = Act { scale: 1.0 / 127.0, zp: 0 };

/// Symmetric int8 values of `w` with one scale per group of `group` consecutive values.
pub(crate) fn quantize_groups(w: &[f32], group: usize) -> (Vec<i8>, Vec<f64>) {
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::new();
    for chunk in w.chunks(group) {
        let max = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 { f64::from(max) / 127.0 } else { 1.0 };
        q.extend(chunk.iter().map(|&v| (f64::from(v) / scale).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    (q, scales)
}

/// Builds the int8 model file from float weights and calibration ranges.
pub fn quantize(weights: &Weights, cal: &Calibration) -> anyhow::Result<Vec<u8>> {
    let a = weights.arch;
    let mut w = ModelWriter::new(Precision::Int8, a, &weights.alphabet);
    w.input(weights.input);
    let input = Act { scale: 1.0 / 255.0, zp: -128 };
    let (conv1, conv2, dense1) = (Act::from_range(cal.conv1), Act::from_range(cal.conv2), Act::from_range(cal.dense1));
    let hidden = HIDDEN;
    let logits = Act::from_range(cal.dense2);
    for (name, x, y) in
        [("conv1", input, conv1), ("conv2", conv1, conv2), ("dense1", conv2, dense1), ("dense2", hidden, logits)]
    {
        let t = weights.get(&format!("{name}.weight"))?;
        let b = weights.get(&format!("{name}.bias"))?;
        let outputs = t.shape[0];
        let (q, scales) = quantize_groups(&t.data, t.data.len() / outputs);
        let bias: Vec<i32> =
            b.data.iter().zip(&scales).map(|(&b, s)| (f64::from(b) / (s * x.scale)).round() as i32).collect();
        let (mult, shift): (Vec<i32>, Vec<i32>) =
            scales.iter().map(|s| quantize_multiplier(s * x.scale / y.scale)).unzip();
        w.add_i8(&format!("{name}.weight"), &t.shape, &q);
        w.add_i32(&format!("{name}.bias"), &[outputs], &bias);
        w.add_i32(&format!("{name}.mult"), &[outputs], &mult);
        w.add_i32(&format!("{name}.shift"), &[outputs], &shift);
        w.add_i32(&format!("{name}.zp"), &[2], &[x.zp, y.zp]);
    }
    let q12 = f64::from(1u32 << GATE_FRAC);
    for (layer, x) in [("lstm1", dense1), ("lstm2", hidden)] {
        for dir in ["fwd", "bwd"] {
            let p = format!("{layer}.{dir}");
            let (w_ih, w_hh, bias) = (
                weights.get(&format!("{p}.w_ih"))?,
                weights.get(&format!("{p}.w_hh"))?,
                weights.get(&format!("{p}.bias"))?,
            );
            let (q_ih, s_ih) = quantize_groups(&w_ih.data, w_ih.data.len() / 4);
            let (q_hh, s_hh) = quantize_groups(&w_hh.data, w_hh.data.len() / 4);
            let (m_ih, sh_ih): (Vec<i32>, Vec<i32>) =
                s_ih.iter().map(|s| quantize_multiplier(s * x.scale * q12)).unzip();
            let (m_hh, sh_hh): (Vec<i32>, Vec<i32>) =
                s_hh.iter().map(|s| quantize_multiplier(s * hidden.scale * q12)).unzip();
            let b: Vec<i32> = bias.data.iter().map(|&v| (f64::from(v) * q12).round() as i32).collect();
            w.add_i8(&format!("{p}.w_ih"), &w_ih.shape, &q_ih);
            w.add_i8(&format!("{p}.w_hh"), &w_hh.shape, &q_hh);
            w.add_i32(&format!("{p}.bias"), &bias.shape, &b);
            w.add_i32(&format!("{p}.mult_ih"), &[4], &m_ih);
            w.add_i32(&format!("{p}.shift_ih"), &[4], &sh_ih);
            w.add_i32(&format!("{p}.mult_hh"), &[4], &m_hh);
            w.add_i32(&format!("{p}.shift_hh"), &[4], &sh_hh);
            w.add_i32(&format!("{p}.zp"), &[1], &[x.zp]);
        }
    }
    w.add_i16("lut.sigmoid", &[LUT_LEN], &lut(|z| 1.0 / (1.0 + (-z).exp())));
    w.add_i16("lut.tanh", &[LUT_LEN], &lut(f64::tanh));
    w.add_f32("scores.scale", &[1], &[logits.scale as f32]);
    let bytes = w.finish().map_err(|e| anyhow!("cannot write the int8 model: {e}"))?;
    core_infer::Model::parse(&bytes).map_err(|e| anyhow!("the int8 model does not parse: {e}"))?;
    Ok(bytes)
}

/// `f` at −8 + k/32, k = 0..=512, in Q15.
fn lut(f: impl Fn(f64) -> f64) -> Vec<i16> {
    (0..LUT_LEN).map(|k| (f(-8.0 + k as f64 / 32.0) * 32767.0).round() as i16).collect()
}

/// Calibrates on (up to [`CALIBRATION_IMAGES`] of) `calibration` images: the int8 model file and its ranges.
pub fn int8_model(
    model: &Trained,
    weights: &Weights,
    calibration: &crate::data::Dataset,
) -> anyhow::Result<(Vec<u8>, Calibration)> {
    let (pixels, n) = calibration_images(calibration);
    let cal = calibrate(model, pixels, n)?;
    Ok((quantize(weights, &cal)?, cal))
}

/// How many training images calibration runs through the float model.
pub const CALIBRATION_IMAGES: usize = 256;

/// The images calibration runs on: the pixels of the first (up to) [`CALIBRATION_IMAGES`], and how many.
pub fn calibration_images(data: &crate::data::Dataset) -> (&[u8], usize) {
    let n = data.len().min(CALIBRATION_IMAGES);
    (&data.pixels[..n * data.height * data.width * data.channels()], n)
}

/// Calibrates on (up to [`CALIBRATION_IMAGES`] of) `calibration` images and writes `model-int8.crnn` into `dir`.
pub fn write(
    model: &Trained,
    weights: &Weights,
    calibration: &crate::data::Dataset,
    dir: &std::path::Path,
) -> anyhow::Result<Calibration> {
    let (bytes, cal) = int8_model(model, weights, calibration)?;
    crate::io::write_atomic(&dir.join("model-int8.crnn"), &bytes).context("writing the int8 model")?;
    Ok(cal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipliers_round_trip() {
        for m in [1e-6, 0.0123, 0.5, 0.99999, 1.0, 3.7, 1000.0] {
            let (mult, shift) = quantize_multiplier(m);
            let back = f64::from(mult) * 2f64.powi(shift - 31);
            assert!((back - m).abs() / m < 1e-9, "{m}: {mult} {shift}");
            assert_eq!(
                core_infer::int8::requantize(1 << 20, mult, shift),
                ((1u64 << 20) as f64 * m).round() as i32
            );
        }
    }

    #[test]
    fn activations_keep_zero_exact() {
        let a = Act::from_range(Range { min: 0.0, max: 6.0 });
        assert_eq!(a.zp, -128);
        let b = Act::from_range(Range { min: -3.0, max: 5.0 });
        assert!((f64::from(-128 - b.zp) * b.scale + 3.0).abs() < b.scale, "{b:?}");
    }
}
