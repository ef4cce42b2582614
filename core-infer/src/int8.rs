//! The int8 precision: integer-only arithmetic from the u8 pixels to the class scores, identical on every
//! target (no float, wrapping-free i32/i64 arithmetic, ties rounded the same way everywhere).
//!
//! Quantization (the scheme of TFLM and CMSIS-NN: per-channel int8 weights, per-tensor int8 activations;
//! parameters computed by the host's quantizer; the requantization rounds once, not as TFLM does, see
//! [`requantize`]):
//! - weights: symmetric int8, per output channel for conv and dense, per gate for the LSTMs;
//! - activations: int8 with a per-tensor scale and zero point (`real = scale · (q − zp)`); the input pixel
//!   `p` is `p − 128` (scale 1/255, zero point −128); LSTM outputs use scale 1/127, zero point 0;
//! - conv and dense: `acc = bias + Σ w · (x − zp_in)` in i32, then `zp_out + acc · M` clamped to int8
//!   (ReLU clamps at `zp_out`), with `M = mult · 2^(shift − 31)` applied by [`requantize`];
//! - LSTM: gate pre-activations in Q3.12 (i32), sigmoid and tanh from 513-entry Q15 tables over [−8, 8)
//!   with linear interpolation, cell state Q4.11 in i16.
//!
//! The tensors of an int8 file, quantization parameters included, are listed in [`crate::format::names`].

use crate::block::block_len;
use crate::format::le::Le;
use crate::format::names;
use crate::format::{Arch, ModelFile, Precision};
use crate::kernels::{
    self, dot_prepared, dot_rows, prepare, put_inputs, requantize_add, QuantLinear, COLLECTED, GATE_CHUNK, LANES,
    INPUT_ROWS, RECUR_ROWS,
};
use crate::net::{Kernels, Mac, LSTM_STEPS_AT_ONCE, LSTM_STEPS_SIZED};
use crate::Error;

pub use crate::kernels::reference::{requantize, Lut, CELL_FRAC, GATE_FRAC};

/// Marker for the int8 precision.
pub struct I8;

pub use crate::format::names::LUT_LEN;

/// Little-endian i32 values in borrowed bytes.
type I32s<'a> = Le<'a, i32>;

/// The bytes of `layer.part`, checked against the schema ([`names::spec`]).
fn bytes<'a>(file: &ModelFile<'a>, layer: &'static str, part: &'static str) -> Result<&'a [u8], Error> {
    Ok(file.get(&names::spec(Precision::Int8, &file.arch, layer, part).ok_or(Error::MissingTensor)?)?.data)
}

/// Checks that every shift keeps [`requantize`] within its documented range.
fn check_shifts(shifts: I32s<'_>, n: usize) -> Result<(), Error> {
    if (0..n).all(|i| (-31..=30).contains(&shifts.get(i))) {
        Ok(())
    } else {
        Err(Error::BadTensor)
    }
}

/// A quantized conv 3×3 or dense layer: weights `[out, segments, segment_len]` int8, as the kernels read
/// it (`q`), with its input zero point and segment count.
pub struct LinearI8<'a> {
    q: QuantLinear<'a>,
    zp_in: i32,
    segments: usize,
    /// Every shift in −31..=−2 ([`kernels::one_word_shifts`], found at load).
    one_word: bool,
}

impl Mac for LinearI8<'_> {
    type Act = i8;
    type In = i16;
    type Acc = i32;
    const LANES: [usize; 4] = LANES;
    fn segment_len(&self) -> usize {
        self.q.cin
    }
    fn outputs(&self) -> usize {
        self.q.outputs
    }
    fn input(&self, x: i8) -> i16 {
        i16::from(x) - self.zp_in as i16 // zp_in checked to be in -128..=127 at load
    }
    fn init(&self, o: usize) -> i32 {
        I32s::new(self.q.bias).get(o)
    }
    fn mac_rows(&self, o: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) {
        let len = self.segments * self.q.cin;
        dot_rows(self.q.w.get(o * len..).unwrap_or(&[]), len, block, cols, acc);
    }
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    fn dense_rows(&self, o: usize, xs: &[i8], n_in: usize, cols: usize, acc: &mut [[i32; 4]]) -> bool {
        let len = self.segments * self.q.cin;
        len == n_in && kernels::mve::rows(self.q.w.get(o * len..).unwrap_or(&[]), len, xs, cols, self.zp_in, acc)
    }
    fn finish(&self, o: usize, acc: i32) -> i8 {
        self.output(acc, I32s::new(self.q.mult).get(o), I32s::new(self.q.shift).get(o))
    }
    fn finish_pooled(&self, o: usize, acc: &[[i32; 4]], out: &mut [i8]) {
        // `finish` of each window's largest, walking the multipliers and shifts instead of indexing them.
        for (((v, a), mult), shift) in
            out.iter_mut().zip(acc).zip(I32s::new(self.q.mult).from(o)).zip(I32s::new(self.q.shift).from(o))
        {
            *v = self.output(a[0].max(a[1]).max(a[2].max(a[3])), mult, shift);
        }
    }
    fn pooled_window(&self, block: &[i16], out: &mut [i8]) -> bool {
        kernels::pooled_rows(&self.q, self.segments * self.q.cin, block, out, self.one_word)
    }
    fn copy(&self, block: &mut [i16], cols: usize, col: usize, k0: usize, src: &[i16]) {
        kernels::copy_inputs(block, cols, col, k0, src);
    }
    fn gather(&self, block: &mut [i16], cols: usize, col: usize, k0: usize, x: &[i8]) {
        put_inputs(block, cols, col, k0, x, self.zp_in);
    }
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    fn conv_pool_kernel(&self, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
        self.segments == 9 && kernels::conv_pool_int8(&self.q, self.zp_in, cols, out)
    }
    #[cfg(target_arch = "x86_64")]
    fn conv_pool_kernel(&self, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
        if self.segments != 9 {
            false
        } else if self.q.cin == 1 {
            if kernels::x86_64::vnni::conv1_pool_u8(&self.q, self.zp_in, cols, out) {
                return true;
            }
            let windows = out.len() / self.q.outputs.max(1);
            kernels::x86_64::avx2::conv1_pool_i8(&self.q, windows, |i| crate::net::conv1_patches(self, cols, i), out)
        } else {
            self.zp_in == -128 && kernels::x86_64::vnni::conv_pool_u8(&self.q, cols, out)
        }
    }
}

impl LinearI8<'_> {
    /// The int8 output of accumulator `acc` with its multiplier and shift: requantized, shifted by the
    /// output zero point, clamped to the lowest output (`q.lo`)..=127.
    #[inline(always)]
    fn output(&self, acc: i32, mult: i32, shift: i32) -> i8 {
        self.q.zp_out.saturating_add(requantize(acc, mult, shift)).clamp(self.q.lo, 127) as i8
    }
}

/// One quantized LSTM direction: int8 `w_ih [4L, In]`, `w_hh [4L, L]`, Q3.12 bias, per-gate requantization.
pub struct LstmI8<'a> {
    w_ih: &'a [u8],
    w_hh: &'a [u8],
    b: I32s<'a>,
    mult_ih: I32s<'a>,
    shift_ih: I32s<'a>,
    mult_hh: I32s<'a>,
    shift_hh: I32s<'a>,
    zp_in: i32,
    n_in: usize,
    hidden: usize,
    sigmoid: Lut<'a>,
    tanh: Lut<'a>,
}

impl Kernels for I8 {
    type Act = i8;
    type In = i16;
    type Cell = i16;
    type Gate = i32;
    type Linear<'a> = LinearI8<'a>;
    type Lstm<'a> = LstmI8<'a>;

    fn check(a: &Arch) -> Result<(), Error> {
        let [c1, d1, l1, l2] = [a.conv1, a.dense1, a.lstm1, a.lstm2].map(usize::from);
        // The longest dot product (dense1's features, usually) must fit i32: 255 · 255 per term.
        if a.features().max(9 * c1).max(d1).max(2 * l1).max(2 * l2) > 32_000 {
            return Err(Error::Capacity);
        }
        Ok(())
    }
    fn linear<'a>(
        file: &ModelFile<'a>,
        layer: &'static str,
        sizes: (usize, usize, usize),
        relu: bool,
    ) -> Result<LinearI8<'a>, Error> {
        let (outputs, segments, segment_len) = sizes;
        let zp = I32s::new(bytes(file, layer, "zp")?);
        let shift = I32s::new(bytes(file, layer, "shift")?);
        check_shifts(shift, outputs)?;
        let (zp_in, zp_out) = (zp.get(0), zp.get(1));
        if !(-128..=127).contains(&zp_in) || !(-128..=127).contains(&zp_out) {
            return Err(Error::BadTensor);
        }
        let q = QuantLinear {
            w: bytes(file, layer, "weight")?,
            bias: bytes(file, layer, "bias")?,
            mult: bytes(file, layer, "mult")?,
            shift: shift.bytes(),
            outputs,
            cin: segment_len,
            zp_out,
            lo: if relu { zp_out } else { -128 }, // with ReLU the zero point (real 0) is the lowest output
        };
        Ok(LinearI8 { q, zp_in, segments, one_word: kernels::one_word_shifts(&q) })
    }
    fn lstm<'a>(
        file: &ModelFile<'a>,
        prefix: &'static str,
        (n_in, hidden): (usize, usize),
    ) -> Result<LstmI8<'a>, Error> {
        let i32s = |part: &'static str| Ok::<_, Error>(I32s::new(bytes(file, prefix, part)?));
        let (shift_ih, shift_hh) = (i32s("shift_ih")?, i32s("shift_hh")?);
        check_shifts(shift_ih, 4)?;
        check_shifts(shift_hh, 4)?;
        let zp_in = i32s("zp")?.get(0);
        if !(-128..=127).contains(&zp_in) {
            return Err(Error::BadTensor);
        }
        Ok(LstmI8 {
            w_ih: bytes(file, prefix, "w_ih")?,
            w_hh: bytes(file, prefix, "w_hh")?,
            b: i32s("bias")?,
            mult_ih: i32s("mult_ih")?,
            shift_ih,
            mult_hh: i32s("mult_hh")?,
            shift_hh,
            zp_in,
            n_in,
            hidden,
            sigmoid: Lut::new(bytes(file, "lut", "sigmoid")?).ok_or(Error::ShapeMismatch)?,
            tanh: Lut::new(bytes(file, "lut", "tanh")?).ok_or(Error::ShapeMismatch)?,
        })
    }

    fn pixel(p: u8) -> i8 {
        (i16::from(p) - 128) as i8
    }

    // `COLLECTED > 0` is constant per target (false on Arm): the branch it picks is the target's path.
    #[allow(clippy::absurd_extreme_comparisons)]
    fn lstm_input(l: &LstmI8<'_>, xs: &[&[i8]], gates: &mut [i32], block: &mut [i16]) {
        // The steps' inputs, prepared once, as the columns of one block: each weight row is read once.
        let cols = xs.len().min(LSTM_STEPS_AT_ONCE);
        let Some(xb) = prepare(block, l.n_in, xs.get(..cols).unwrap_or(xs), l.zp_in) else { return };
        let rows = 4 * l.hidden;
        // Gate by gate (i, f, g, o), each with its own requantization, GATE_CHUNK rows at a time.
        for gate in 0..4 {
            let (mult, shift) = (l.mult_ih.get(gate), l.shift_ih.get(gate));
            let end = (gate + 1) * l.hidden;
            for r0 in (gate * l.hidden..end).step_by(GATE_CHUNK) {
                let len = GATE_CHUNK.min(end - r0);
                let mut sums = [[0i32; COLLECTED]; LSTM_STEPS_AT_ONCE];
                for q in (0..len).step_by(INPUT_ROWS) {
                    let mut acc = [[0i32; 4]; INPUT_ROWS];
                    let Some(acc) = acc.get_mut(..INPUT_ROWS.min(len - q)) else { return };
                    dot_prepared(l.w_ih.get((r0 + q) * l.n_in..).unwrap_or(&[]), l.n_in, &xb, cols, acc);
                    if COLLECTED > 0 {
                        for (r, a) in (q..).zip(&*acc) {
                            for (sums, &a) in sums.iter_mut().zip(a).take(cols) {
                                if let Some(s) = sums.get_mut(r) {
                                    *s = a;
                                }
                            }
                        }
                        continue;
                    }
                    // requantized right away, walking each step's gates and the biases (no index per sum)
                    let at = r0 + q;
                    for (step, g) in gates.chunks_mut(rows.max(1)).enumerate().take(cols) {
                        let Some(g) = g.get_mut(at..at + acc.len()) else { continue };
                        for ((g, a), b) in g.iter_mut().zip(&*acc).zip(l.b.from(at)) {
                            *g = b.saturating_add(requantize(a.get(step).copied().unwrap_or(0), mult, shift));
                        }
                    }
                }
                let bias = l.b.bytes().get(4 * r0..).unwrap_or(&[]);
                for (step, sums) in sums.iter().enumerate().take(cols).filter(|_| COLLECTED > 0) {
                    let at = step * rows + r0;
                    if let (Some(g), Some(sums)) = (gates.get_mut(at..at + len), sums.get(..len)) {
                        requantize_add(g, sums, Some(bias), mult, shift);
                    }
                }
            }
        }
    }

    // `COLLECTED > 0` is constant per target (false on Arm): the branch it picks is the target's path.
    #[allow(clippy::absurd_extreme_comparisons)]
    fn lstm_recur(l: &LstmI8<'_>, gates: &mut [i32], h: &mut [i8], c: &mut [i16], block: &mut [i16]) {
        // The previous state (zero point 0), prepared once for all 4L gate rows.
        let Some(hb) =
            block.get_mut(block_len(l.n_in, LSTM_STEPS_SIZED)..).and_then(|b| prepare(b, l.hidden, &[&*h], 0))
        else {
            return;
        };
        for (gate, quarter) in gates.chunks_mut(l.hidden.max(1)).enumerate().take(4) {
            let (mult, shift) = (l.mult_hh.get(gate), l.shift_hh.get(gate));
            for (q, g) in quarter.chunks_mut(GATE_CHUNK).enumerate() {
                let mut sums = [0i32; COLLECTED];
                for (p, gp) in g.chunks_mut(RECUR_ROWS).enumerate() {
                    let r0 = gate * l.hidden + q * GATE_CHUNK + p * RECUR_ROWS;
                    let mut acc = [[0i32; 4]; RECUR_ROWS];
                    let Some(acc) = acc.get_mut(..gp.len()) else { return };
                    dot_prepared(l.w_hh.get(r0 * l.hidden..).unwrap_or(&[]), l.hidden, &hb, 1, acc);
                    if COLLECTED > 0 {
                        for (s, a) in sums.iter_mut().skip(p * RECUR_ROWS).zip(&*acc) {
                            *s = a[0];
                        }
                    } else {
                        for (g, a) in gp.iter_mut().zip(&*acc) {
                            *g = g.saturating_add(requantize(a[0], mult, shift));
                        }
                    }
                }
                if COLLECTED > 0 {
                    requantize_add(g, sums.get(..g.len()).unwrap_or(&[]), None, mult, shift);
                }
            }
        }
        let mut quarters = gates.chunks_exact(l.hidden);
        let (Some(i), Some(f), Some(g), Some(o)) = (quarters.next(), quarters.next(), quarters.next(), quarters.next())
        else {
            return;
        };
        kernels::cell(l.sigmoid, l.tanh, [i, f, g, o], h, c);
    }
}

/// The dequantization scale of dense2's output (for scores shown to people and tests).
pub(crate) fn scores_scale(file: &ModelFile<'_>) -> Result<(f32, i32), Error> {
    let s = bytes(file, "scores", "scale")?;
    let scale = s.try_into().map(f32::from_le_bytes).map_err(|_| Error::BadTensor)?;
    let zp = I32s::new(bytes(file, "dense2", "zp")?).get(1);
    if !scale.is_finite() || scale <= 0.0 {
        return Err(Error::BadTensor);
    }
    Ok((scale, zp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A layer over the given little-endian tensors.
    fn layer<'a>(
        w: &'a [u8],
        [b, m, sh]: [&'a [u8]; 3],
        zp: (i32, i32),
        outputs: usize,
        cin: usize,
        relu: bool,
    ) -> LinearI8<'a> {
        let lo = if relu { zp.1 } else { -128 };
        let q = QuantLinear { w, bias: b, mult: m, shift: sh, outputs, cin, zp_out: zp.1, lo };
        LinearI8 { q, zp_in: zp.0, segments: 9, one_word: kernels::one_word_shifts(&q) }
    }

    proptest! {
        /// conv1 + pool through the layer's own kernel (the AVX2 one where the CPU has it) equals the
        /// definition: per window and channel, the largest of the four positions' `bias + Σ w · x`
        /// (wrapping), finished, for any weights, biases, requantization (the whole shift range), zero
        /// points, ReLU or not, channel counts the kernel takes or declines, and padding columns.
        #[test]
        fn conv1_pool_matches_definition(
            outputs in prop::sample::select(std::vec![8usize, 16, 32, 64, 12]),
            w in proptest::collection::vec(any::<u8>(), 9 * 64),
            // (half the cases in a model's ranges, where few outputs saturate and every unit of the
            // accumulator shows; the rest anywhere)
            bias in proptest::collection::vec(prop_oneof![-(1i32 << 16)..(1 << 16), any::<i32>()], 64),
            mult in proptest::collection::vec(prop_oneof![(1i32 << 30)..i32::MAX, any::<i32>()], 64),
            shift in proptest::collection::vec(prop_oneof![-12i32..=-6, -31i32..=30], 64),
            zp in (-128i32..=127, -128i32..=127),
            relu: bool,
            x in proptest::collection::vec(any::<i8>(), 4 * 25),
            present in any::<[bool; 4]>(),
            rows in 24usize..=25,
        ) {
            let le = |v: &[i32]| -> std::vec::Vec<u8> { v[..outputs].iter().flat_map(|v| v.to_le_bytes()).collect() };
            let (b, m, sh) = (le(&bias), le(&mult), le(&shift));
            let layer = layer(&w[..9 * outputs], [&b, &m, &sh], zp, outputs, 1, relu);
            let cols: [Option<&[i8]>; 4] = core::array::from_fn(|c| present[c].then(|| &x[rows * c..rows * (c + 1)]));
            // 24 rows: the last window's lower neighbours are padding; 25: the odd last row is only a
            // neighbour, as the pool drops it
            let windows = 12;
            let mut block = std::vec![0i16; crate::net::conv_block_len(1)];
            let mut got = std::vec![0i8; windows * outputs];
            crate::net::conv_pool(&layer, cols, &mut block, &mut got);
            let mut direct = std::vec![0i8; windows * outputs];
            let ran = layer.conv_pool_kernel(cols, &mut direct);
            // pixel row y − 1 of input column c minus the zero point, 0 (the padding) outside: written here,
            // not taken from the network's own gathering
            let input = |c: usize, y: usize| -> i32 {
                match (y.checked_sub(1), cols[c]) {
                    (Some(iy), Some(col)) if iy < rows => i32::from(col[iy]) - zp.0,
                    _ => 0,
                }
            };
            for i in 0..windows {
                for o in 0..outputs {
                    let best = (0..4).map(|j| {
                        let (y, dx) = (2 * i + j % 2, j / 2);
                        (0..9).fold(bias[o], |acc, t| {
                            acc.wrapping_add(i32::from(w[9 * o + t] as i8) * input(dx + t % 3, y + t / 3))
                        })
                    }).max().unwrap();
                    let want = layer.finish(o, best);
                    prop_assert_eq!(got[i * outputs + o], want, "window {}, channel {}", i, o);
                    if ran {
                        prop_assert_eq!(direct[i * outputs + o], want);
                    }
                }
            }
            // The kernel must have run where it can (else this test only saw the generic path).
            #[cfg(target_arch = "x86_64")]
            if kernels::x86_64::avx2::available() {
                prop_assert_eq!(ran, outputs % 8 == 0);
            } else {
                std::eprintln!("SKIPPED in part: no AVX2, the conv1 kernel is not tested on this CPU");
            }
            // Each x86-64 conv1 kernel on its own (the layer's picks the first that runs): the AVX2 one
            // on the patches, and every unsigned-byte variant this CPU runs.
            #[cfg(target_arch = "x86_64")]
            {
                use crate::kernels::x86_64::{avx2, vnni::{conv1_pool_u8_with, DotBytes}};
                let mut out = std::vec![0i8; windows * outputs];
                if avx2::conv1_pool_i8(&layer.q, windows, |i| crate::net::conv1_patches(&layer, cols, i), &mut out) {
                    prop_assert_eq!(&out, &got, "the AVX2 conv1 kernel");
                }
                for v in DotBytes::all() {
                    let mut out = std::vec![0i8; windows * outputs];
                    prop_assert_eq!(conv1_pool_u8_with(v, &layer.q, zp.0, cols, &mut out), outputs % 8 == 0);
                    if outputs % 8 == 0 {
                        prop_assert_eq!(&out, &got, "{:?}", v);
                    }
                }
                if DotBytes::all().count() < 2 {
                    std::eprintln!("SKIPPED in part: this CPU lacks AVX-VNNI or AVX512-VNNI; that conv1 variant is not tested on it");
                }
            }
        }

        /// conv + pool with 32 or 64 input channels through the layer's own kernel (on x86-64 with
        /// AVX-VNNI the unsigned-byte one when the input zero point is −128) equals the definition, for
        /// any weights, biases, requantization, output zero point, ReLU or not, and padding columns.
        #[test]
        fn conv_pool_matches_definition(
            cin in prop::sample::select(std::vec![32usize, 64]),
            outputs in prop::sample::select(std::vec![8usize, 16, 64]),
            w in proptest::collection::vec(any::<u8>(), 9 * 64 * 64),
            bias in proptest::collection::vec(any::<i32>(), 64),
            mult in proptest::collection::vec(any::<i32>(), 64),
            shift in proptest::collection::vec(-31i32..=30, 64),
            zp in (prop::sample::select(std::vec![-128i32, -128, -128, -100, 0]), -128i32..=127),
            relu: bool,
            x in proptest::collection::vec(any::<i8>(), 4 * 7 * 64),
            present in any::<[bool; 4]>(),
        ) {
            let le = |v: &[i32]| -> std::vec::Vec<u8> { v[..outputs].iter().flat_map(|v| v.to_le_bytes()).collect() };
            let (b, m, sh) = (le(&bias), le(&mult), le(&shift));
            let k = 9 * cin;
            let layer = layer(&w[..k * outputs], [&b, &m, &sh], zp, outputs, cin, relu);
            let rows = 7; // three windows; the odd last row is dropped
            let cols: [Option<&[i8]>; 4] =
                core::array::from_fn(|c| present[c].then(|| &x[rows * cin * c..rows * cin * (c + 1)]));
            let windows = rows / 2;
            let mut block = std::vec![0i16; crate::net::conv_block_len(cin)];
            let mut got = std::vec![0i8; windows * outputs];
            crate::net::conv_pool(&layer, cols, &mut block, &mut got);
            // With room for the converted input rows (the network's block has it) the cached path runs:
            // it must give the same (both are checked against the definition below).
            let mut roomy = std::vec![0i16; crate::net::conv_block_len(cin) + crate::net::conv_cache_len(cin)];
            let mut cached = std::vec![0i8; windows * outputs];
            crate::net::conv_pool(&layer, cols, &mut roomy, &mut cached);
            prop_assert_eq!(&cached, &got, "the cached rows path");
            let input = |c: usize, y: usize, ci: usize| -> i32 {
                // row y − 1 of input column c, zero (x = zp) outside
                match (y.checked_sub(1), cols[c]) {
                    (Some(iy), Some(col)) if iy < rows => i32::from(col[iy * cin + ci]) - zp.0,
                    _ => 0,
                }
            };
            for i in 0..windows {
                for o in 0..outputs {
                    let best = (0..4).map(|j| {
                        let (y, dx) = (2 * i + j % 2, j / 2);
                        (0..k).fold(bias[o], |acc, t| {
                            let (seg, ci) = (t / cin, t % cin);
                            let wv = i32::from(w[o * k + t] as i8);
                            acc.wrapping_add(wv * input(dx + seg % 3, y + seg / 3, ci))
                        })
                    }).max().unwrap();
                    prop_assert_eq!(got[i * outputs + o], layer.finish(o, best), "window {}, channel {}", i, o);
                }
            }
            // Every unsigned-byte variant this CPU runs (AVX-VNNI, AVX512-VNNI) gives the same.
            #[cfg(target_arch = "x86_64")]
            {
                use crate::kernels::x86_64::vnni::{conv_pool_u8_with, DotBytes};
                let ran = layer.conv_pool_kernel(cols, &mut std::vec![0i8; windows * outputs]);
                prop_assert_eq!(ran, zp.0 == -128 && DotBytes::get().is_some());
                for v in DotBytes::all().filter(|_| zp.0 == -128) {
                    let mut out = std::vec![0i8; windows * outputs];
                    prop_assert!(conv_pool_u8_with(v, &layer.q, cols, &mut out));
                    prop_assert_eq!(&out, &got, "{:?}", v);
                }
                if DotBytes::all().count() < 2 {
                    std::eprintln!("SKIPPED in part: this CPU lacks AVX-VNNI or AVX512-VNNI; that conv variant is not tested on it");
                }
            }
        }
    }

    #[test]
    fn pixels_map_to_int8_around_zero_point() {
        assert_eq!((I8::pixel(0), I8::pixel(128), I8::pixel(255)), (-128, 0, 127));
    }
}
