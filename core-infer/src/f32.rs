//! The f32 precision: the reference the int8 path and the other runtimes are measured against.
//! Weights stay in the model bytes and are read little-endian in place (model data is only 1-byte aligned).

use crate::block::{block_len, load};
use crate::format::le::Le;
use crate::format::names;
use crate::format::{ModelFile, Precision};
use crate::kernels::{self, INPUT_ROWS, RECUR_ROWS};
use crate::net::{Kernels, Mac, LSTM_STEPS_AT_ONCE, LSTM_STEPS_SIZED};
use crate::Error;

/// f32 blocks keep each group of four inputs in order.
const LANES: [usize; 4] = [0, 1, 2, 3];

/// Marker for the f32 precision.
pub struct F32;

/// f32 values stored little-endian in borrowed bytes.
type F32s<'a> = Le<'a, f32>;

/// The values of `layer.part`, checked against the schema ([`names::spec`]).
fn f32s<'a>(file: &ModelFile<'a>, layer: &'static str, part: &'static str) -> Result<F32s<'a>, Error> {
    Ok(F32s::new(file.get(&names::spec(Precision::F32, &file.arch, layer, part).ok_or(Error::MissingTensor)?)?.data))
}

/// A conv 3×3 or dense layer: weights `[out, segments, segment_len]`, bias `[out]`, optional ReLU.
pub struct LinearF32<'a> {
    w: F32s<'a>,
    b: F32s<'a>,
    outputs: usize,
    segments: usize,
    segment_len: usize,
    relu: bool,
}

impl Mac for LinearF32<'_> {
    type Act = f32;
    type In = f32;
    type Acc = f32;
    const LANES: [usize; 4] = LANES;
    fn segment_len(&self) -> usize {
        self.segment_len
    }
    fn outputs(&self) -> usize {
        self.outputs
    }
    fn input(&self, x: f32) -> f32 {
        x
    }
    fn init(&self, o: usize) -> f32 {
        self.b.get(o)
    }
    fn mac_rows(&self, o: usize, block: &[f32], cols: usize, acc: &mut [[f32; 4]]) {
        let len = self.segments * self.segment_len;
        kernels::rows_f32(self.w.bytes().get(4 * o * len..).unwrap_or(&[]), len, block, cols, acc);
    }
    fn finish(&self, _o: usize, acc: f32) -> f32 {
        if self.relu {
            acc.max(0.0)
        } else {
            acc
        }
    }
    #[cfg(target_arch = "x86_64")]
    fn conv_pool_kernel(&self, cols: [Option<&[f32]>; 4], out: &mut [f32]) -> bool {
        let (w, b, n) = (self.w.bytes(), self.b.bytes(), self.outputs);
        let windows = out.len() / n.max(1);
        let patches = |i| crate::net::conv1_patches(self, cols, i);
        let conv1 = self.segment_len == 1;
        self.segments == 9
            && if conv1 {
                kernels::x86_64::avx2::conv1_pool_f32(w, b, n, self.relu, windows, patches, out)
            } else {
                kernels::x86_64::avx512::conv_pool_f32(w, b, n, self.segment_len, self.relu, cols, out)
            }
    }
}

pub struct LstmF32<'a> {
    w_ih: F32s<'a>,
    w_hh: F32s<'a>,
    b: F32s<'a>,
    n_in: usize,
    hidden: usize,
}

impl Kernels for F32 {
    type Act = f32;
    type In = f32;
    type Cell = f32;
    type Gate = f32;
    type Linear<'a> = LinearF32<'a>;
    type Lstm<'a> = LstmF32<'a>;

    fn linear<'a>(
        file: &ModelFile<'a>,
        layer: &'static str,
        sizes: (usize, usize, usize),
        relu: bool,
    ) -> Result<LinearF32<'a>, Error> {
        let (outputs, segments, segment_len) = sizes;
        let w = f32s(file, layer, "weight")?;
        let b = f32s(file, layer, "bias")?;
        Ok(LinearF32 { w, b, outputs, segments, segment_len, relu })
    }
    fn lstm<'a>(
        file: &ModelFile<'a>,
        prefix: &'static str,
        (n_in, hidden): (usize, usize),
    ) -> Result<LstmF32<'a>, Error> {
        Ok(LstmF32 {
            w_ih: f32s(file, prefix, "w_ih")?,
            w_hh: f32s(file, prefix, "w_hh")?,
            b: f32s(file, prefix, "bias")?,
            n_in,
            hidden,
        })
    }

    fn pixel(p: u8) -> f32 {
        f32::from(p) / 255.0
    }

    /// Four on x86-64, where the four-column dot products read each weight once for four steps (the
    /// int8 kernels there take two).
    const STEPS_AT_ONCE: usize = if cfg!(target_arch = "x86_64") { 4 } else { LSTM_STEPS_AT_ONCE };

    fn lstm_input(l: &LstmF32<'_>, xs: &[&[f32]], gates: &mut [f32], block: &mut [f32]) {
        // The steps' inputs as the columns of one block: each weight row is read once for all of them.
        let cols = xs.len().min(Self::STEPS_AT_ONCE);
        let Some(xb) = block.get_mut(..block_len(l.n_in, cols)) else { return };
        load(xb, l.n_in, xs.get(..cols).unwrap_or(xs), LANES, |a| a);
        let n = 4 * l.hidden;
        for r0 in (0..n).step_by(INPUT_ROWS) {
            let mut acc = [[0f32; 4]; INPUT_ROWS];
            let Some(acc) = acc.get_mut(..INPUT_ROWS.min(n - r0)) else { return };
            kernels::rows_f32(l.w_ih.bytes().get(4 * r0 * l.n_in..).unwrap_or(&[]), l.n_in, xb, cols, acc);
            for (r, a) in (r0..).zip(&*acc) {
                for (step, &a) in a.iter().enumerate().take(cols) {
                    if let Some(g) = gates.get_mut(step * n + r) {
                        *g = l.b.get(r) + a;
                    }
                }
            }
        }
    }

    fn lstm_recur(l: &LstmF32<'_>, gates: &mut [f32], h: &mut [f32], c: &mut [f32], block: &mut [f32]) {
        let Some(hb) =
            block.get_mut(block_len(l.n_in, LSTM_STEPS_SIZED)..).and_then(|b| b.get_mut(..block_len(l.hidden, 1)))
        else {
            return;
        };
        load(hb, l.hidden, &[&*h], LANES, |a| a);
        for (q, g) in gates.chunks_mut(RECUR_ROWS).enumerate() {
            let mut acc = [[0f32; 4]; RECUR_ROWS];
            let Some(acc) = acc.get_mut(..g.len()) else { return };
            kernels::rows_f32(
                l.w_hh.bytes().get(4 * q * RECUR_ROWS * l.hidden..).unwrap_or(&[]),
                l.hidden,
                hb,
                1,
                acc,
            );
            for (g, a) in g.iter_mut().zip(&*acc) {
                *g += a[0];
            }
        }
        kernels::lstm_cell_f32(gates, h, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::put;
    use proptest::prelude::*;

    proptest! {
        /// conv1 + pool through the layer's own kernel (the AVX2/FMA one where the CPU has it) equals the
        /// definition to rounding: per window and channel, the largest of the four positions' `bias + Σ w · x`,
        /// through ReLU or not, for channel counts the kernel takes or declines and padding columns.
        #[test]
        fn conv1_pool_matches_definition(
            outputs in prop::sample::select(std::vec![8usize, 32, 64, 12]),
            w in proptest::collection::vec(-1f32..1.0, 9 * 64),
            bias in proptest::collection::vec(-1f32..1.0, 64),
            relu: bool,
            x in proptest::collection::vec(0f32..1.0, 4 * 25),
            present in any::<[bool; 4]>(),
        ) {
            let wb: std::vec::Vec<u8> = w[..9 * outputs].iter().flat_map(|v| v.to_le_bytes()).collect();
            let bb: std::vec::Vec<u8> = bias[..outputs].iter().flat_map(|v| v.to_le_bytes()).collect();
            let layer = LinearF32 { w: F32s::new(&wb), b: F32s::new(&bb), outputs, segments: 9, segment_len: 1, relu };
            let cols: [Option<&[f32]>; 4] = core::array::from_fn(|c| present[c].then(|| &x[25 * c..25 * (c + 1)]));
            let windows = 12;
            let mut block = std::vec![0f32; crate::net::conv_block_len(1)];
            let mut got = std::vec![0f32; windows * outputs];
            crate::net::conv_pool(&layer, cols, &mut block, &mut got);
            // pixel row y − 1 of input column c, 0 (the padding) outside: written here, not taken from the
            // network's own gathering
            let input = |c: usize, y: usize| -> f64 {
                match (y.checked_sub(1), cols[c]) {
                    (Some(iy), Some(col)) if iy < 25 => f64::from(col[iy]),
                    _ => 0.0,
                }
            };
            for i in 0..windows {
                for o in 0..outputs {
                    let best = (0..4).map(|j| {
                        let (y, dx) = (2 * i + j % 2, j / 2);
                        (0..9).fold(f64::from(bias[o]), |acc, t| acc + f64::from(w[9 * o + t]) * input(dx + t % 3, y + t / 3))
                    }).fold(f64::NEG_INFINITY, f64::max);
                    let want = if relu { best.max(0.0) } else { best };
                    let g = f64::from(got[i * outputs + o]);
                    prop_assert!((g - want).abs() <= 1e-5, "window {}, channel {}: {} vs {}", i, o, g, want);
                }
            }
            #[cfg(target_arch = "x86_64")]
            if kernels::x86_64::avx2::available() {
                prop_assert_eq!(layer.conv_pool_kernel(cols, &mut std::vec![0f32; windows * outputs]), outputs % 8 == 0);
            }
        }

        /// conv2-like layers (16-48 input channels, 3×3, then the 2×2 pool) equal their f64 definition, for
        /// any present columns (absent ones are the padding) and an odd row count; on a CPU with AVX-512F,
        /// through the direct kernel wherever its shapes allow (channels multiples of 4).
        #[test]
        fn conv_pool_matches_definition(
            outputs in prop::sample::select(std::vec![4usize, 8, 64, 6]),
            cin in prop::sample::select(std::vec![16usize, 32, 48]),
            w in proptest::collection::vec(-1f32..1.0, 9 * 48 * 64),
            bias in proptest::collection::vec(-1f32..1.0, 64),
            relu: bool,
            x in proptest::collection::vec(0f32..1.0, 4 * 37 * 48),
            present in any::<[bool; 4]>(),
        ) {
            let rows_in = 37; // 18 windows: more than one group of the direct kernel's

            let k = 9 * cin;
            let wb: std::vec::Vec<u8> = w[..k * outputs].iter().flat_map(|v| v.to_le_bytes()).collect();
            let bb: std::vec::Vec<u8> = bias[..outputs].iter().flat_map(|v| v.to_le_bytes()).collect();
            let layer = LinearF32 { w: F32s::new(&wb), b: F32s::new(&bb), outputs, segments: 9, segment_len: cin, relu };
            let col_len = rows_in * cin;
            let cols: [Option<&[f32]>; 4] =
                core::array::from_fn(|c| present[c].then(|| &x[col_len * c..col_len * (c + 1)]));
            let windows = rows_in / 2;
            let mut block = std::vec![0f32; crate::net::conv_block_len(cin) + crate::net::conv_cache_len(cin)];
            let mut got = std::vec![0f32; windows * outputs];
            crate::net::conv_pool(&layer, cols, &mut block, &mut got);
            // channel ci of input row y − 1 of column c, 0 (the padding) outside
            let input = |c: usize, y: usize, ci: usize| -> f64 {
                match (y.checked_sub(1), cols[c]) {
                    (Some(iy), Some(col)) if iy < rows_in => f64::from(col[iy * cin + ci]),
                    _ => 0.0,
                }
            };
            for i in 0..windows {
                for o in 0..outputs {
                    let best = (0..4).map(|j| {
                        let (y, dx) = (2 * i + j % 2, j / 2);
                        (0..k).fold(f64::from(bias[o]), |acc, t| {
                            let (tap, ci) = (t / cin, t % cin);
                            acc + f64::from(w[k * o + t]) * input(dx + tap % 3, y + tap / 3, ci)
                        })
                    }).fold(f64::NEG_INFINITY, f64::max);
                    let want = if relu { best.max(0.0) } else { best };
                    let g = f64::from(got[i * outputs + o]);
                    prop_assert!((g - want).abs() <= 1e-4, "window {}, channel {}: {} vs {}", i, o, g, want);
                }
            }
            #[cfg(target_arch = "x86_64")]
            if kernels::x86_64::avx512::available() {
                let ran = layer.conv_pool_kernel(cols, &mut std::vec![0f32; windows * outputs]);
                prop_assert_eq!(ran, outputs % 4 == 0 && present.iter().any(|&p| p));
            }
        }

        /// 1-36 rows against 1-4 columns (rows of 1, 2 or 4 columns through AVX-512F in one call, one
        /// column sixteen rows at a time, or four at a time through AVX2/FMA, where the CPU has them; the
        /// rest through the portable loop) equal f64 sums to rounding, for any row length; the weights may run on past the last row,
        /// as inside a tensor.
        #[test]
        fn rows_match_f64(
            w in proptest::collection::vec(-1f32..1.0, 0..12000),
            x in proptest::collection::vec(-4f32..4.0, 4 * 330),
            rows_n in prop::sample::select(std::vec![1usize, 2, 3, 4, 5, 8, 16, 20, 32, 36]),
            cols in 1usize..=4,
            extra in 0usize..4,
        ) {
            let k = (w.len().saturating_sub(extra) / 36).min(330);
            let wb: std::vec::Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut block = std::vec![0f32; block_len(k, cols)];
            for c in 0..cols {
                put(&mut block, cols, c, 0, &x[c * k..(c + 1) * k], LANES, |v| v);
            }
            let mut acc = std::vec![[0.5f32; 4]; rows_n];
            kernels::rows_f32(&wb, k, &block, cols, &mut acc);
            for (r, acc) in acc.iter().enumerate() {
                for (c, &got) in acc.iter().enumerate().take(cols) {
                    let terms = (0..k).map(|j| f64::from(w[r * k + j]) * f64::from(x[c * k + j]));
                    let (exact, size): (f64, f64) = terms.fold((0.5, 0.5), |(s, a), t| (s + t, a + t.abs()));
                    prop_assert!((f64::from(got) - exact).abs() <= 1e-6 * size, "row {r}, column {c}: {got} vs {exact}");
                }
            }
        }
    }
}
