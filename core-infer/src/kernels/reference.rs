//! The portable kernels: THE reference. Plain Rust, no `unsafe`, the same on every target; every
//! other kernel computes exactly what the function here computes (int8 bit for bit), and the shared
//! suite (`kernels/tests.rs`) checks each against it and each of these against a definition written
//! out independently (exact i64 sums, the 64-bit requantization, float functions).

use super::LANES;
use crate::format::le::Le;
pub use crate::format::names::LUT_LEN;

/// Fractional bits of LSTM gate pre-activations.
pub const GATE_FRAC: u32 = 12;

/// Fractional bits of the LSTM cell state.
pub const CELL_FRAC: u32 = 11;

/// `round(acc · mult · 2^(shift − 31))`, rounding halves up; `mult` in Q31, `shift` in −31..=30: the
/// 64-bit product plus `2^(n − 1)`, shifted right by `n = 31 − shift` (floor), clamped to i32. Unlike
/// TFLM's `MultiplyByQuantizedMultiplier` there is one rounding, not two (TFLM rounds the doubled high
/// word, then again in the shift), so results can differ from TFLM's by one.
#[inline]
pub fn requantize(acc: i32, mult: i32, shift: i32) -> i32 {
    if (-31..=-2).contains(&shift) {
        let n = (31 - shift) as u32; // 33..=62
                                     // n ≥ 33: the same value from the product's high word alone (the quantizer's usual case, M < 1/2): the
                                     // rounding term has no low word, so ⌊(P + 2^(n−1)) / 2^n⌋ = ⌊(hi + 2^(n−33)) / 2^(n−32)⌋ for
                                     // P = hi · 2^32 + lo, 0 ≤ lo < 2^32. |hi| ≤ 2^30, so neither the sum nor the result can overflow,
                                     // and no clamp is needed. A Cortex-M4 does it in four instructions instead of about twenty.
        let hi = ((i64::from(acc) * i64::from(mult)) >> 32) as i32;
        return (hi + (1 << (n - 33))) >> (n - 32);
    }
    if shift == -1 {
        // n = 32: the product's high word rounded (SMMULR on a Cortex-M4: one instruction, not about
        // thirty); |P| ≤ 2^62, so the result is within ±2^30 and needs no clamp.
        return ((i64::from(acc) * i64::from(mult) + (1 << 31)) >> 32) as i32;
    }
    requantize_wide(acc, mult, shift)
}

/// [`requantize`] in 64 bits, for the shifts its one-word forms do not take (−1 ..= 30 but −1 itself:
/// multipliers of a half or more). Out of line: rare, and about thirty instructions on a Cortex-M4
/// that every inlined copy would repeat (flash).
#[inline(never)]
fn requantize_wide(acc: i32, mult: i32, shift: i32) -> i32 {
    let n = (31 - shift).clamp(1, 62) as u32;
    let prod = i64::from(acc) * i64::from(mult) + (1i64 << (n - 1));
    (prod >> n).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// A table of 513 Q15 values (little-endian i16) over [−8, 8).
#[derive(Clone, Copy, Debug)]
pub struct Lut<'a>(&'a [u8; 2 * LUT_LEN]);

impl<'a> Lut<'a> {
    /// The table in `bytes`, if they are exactly [`LUT_LEN`] little-endian i16.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.try_into().ok().map(Lut)
    }
    /// The table's bytes (for the vectorized kernels).
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// Entries `i` and `i + 1` (`i` < 512, so both are in the table: no check needed).
    #[inline]
    fn pair(&self, i: usize) -> (i32, i32) {
        let at = |j: usize| i32::from(Le::<i16>::new(self.0).get(j));
        (at(i & 511), at((i & 511) + 1))
    }
    /// The function at `z` (Q3.12), linearly interpolated, in Q15.
    #[inline]
    pub fn eval(&self, z: i32) -> i32 {
        // index step 1/32 = 2^7 in Q12; offset 8.0 = 2^15
        let u = (z.clamp(-(8 << GATE_FRAC), (8 << GATE_FRAC) - 1) + (8 << GATE_FRAC)) as u32;
        let (i, frac) = ((u >> 7) as usize, (u & 127) as i32);
        let (a, b) = self.pair(i);
        a + (((b - a) * frac + 64) >> 7)
    }
}

/// The portable kernel: the reference every target computes bit for bit.
pub fn dot_block_portable(w: &[u8], k: usize, block: &[i16], acc: &mut [i32]) {
    portable_groups(w, k, block, acc, 0);
}

/// The portable reference of [`super::dot_rows2`].
pub fn dot_rows2_portable(w: &[u8], k: usize, block: &[i16]) -> [i32; 2] {
    let (mut a, mut b) = ([0], [0]);
    dot_block_portable(w, k, block, &mut a);
    dot_block_portable(w.get(k..).unwrap_or(&[]), k, block, &mut b);
    [a[0], b[0]]
}

/// [`dot_block_portable`] from group `g0` on: whole groups with the column count known at compile time
/// (fixed-size arrays, no bounds checks, so the compiler vectorizes), then a partial last group.
#[inline]
pub(super) fn portable_groups(w: &[u8], k: usize, block: &[i16], acc: &mut [i32], g0: usize) {
    let cols = acc.len().max(1);
    let row = w.get(4 * g0..k.max(4 * g0)).unwrap_or(&[]);
    let xs = block.get(4 * g0 * cols..).unwrap_or(&[]);
    // With the DSP kernels this code only finishes rows and checks them: the small generic loop will do
    // (it saves 8 KB of flash).
    if cfg!(all(feature = "dsp", target_arch = "arm")) {
        return groups_any(row, xs, acc);
    }
    let whole = row.len() / 4;
    match acc.len() {
        1 => groups::<1>(row, xs, acc),
        2 => groups::<2>(row, xs, acc),
        3 => groups::<3>(row, xs, acc),
        4 => groups::<4>(row, xs, acc),
        _ => groups_any(row, xs, acc),
    }
    let tail = row.get(4 * whole..).unwrap_or(&[]);
    if !tail.is_empty() {
        groups_any(tail, xs.get(4 * whole * cols..).unwrap_or(&[]), acc);
    }
}

/// The whole groups of `row` for `C` columns.
#[inline]
fn groups<const C: usize>(row: &[u8], xs: &[i16], acc: &mut [i32]) {
    let mut sums = [0i32; C];
    for (wg, xg) in row.chunks_exact(4).zip(xs.chunks_exact(4 * C)) {
        let &[w0, w1, w2, w3] = wg else { continue };
        // the weights in the block's lane order
        let w = [w0, w1, w2, w3];
        let wl = LANES.map(|j| w.get(j).map_or(0, |&v| i32::from(v as i8)));
        for (sum, x) in sums.iter_mut().zip(xg.chunks_exact(4)) {
            let &[x0, x1, x2, x3] = x else { continue };
            let [a, b, c, d] = wl;
            *sum = sum.wrapping_add(a * i32::from(x0) + b * i32::from(x1) + c * i32::from(x2) + d * i32::from(x3));
        }
    }
    for (a, s) in acc.iter_mut().zip(sums) {
        *a = a.wrapping_add(s);
    }
}

/// Groups of `row` (the last may be partial) for any number of columns.
fn groups_any(row: &[u8], xs: &[i16], acc: &mut [i32]) {
    let cols = acc.len().max(1);
    for (wg, xg) in row.chunks(4).zip(xs.chunks_exact(4 * cols)) {
        for (a, x) in acc.iter_mut().zip(xg.chunks_exact(4)) {
            let mut sum = 0i32;
            for (&wj, &lane) in wg.iter().zip(&LANES) {
                sum += i32::from(wj as i8) * i32::from(x.get(lane).copied().unwrap_or(0));
            }
            *a = a.wrapping_add(sum);
        }
    }
}

/// The LSTM state update from the gate pre-activations `[i, f, g, o]` (Q3.12): cell state Q4.11, output
/// `h · 127`, for `h.len()` units. The portable reference (x86-64 runs eight units at a time with AVX2).
pub fn cell(sigmoid: Lut<'_>, tanh: Lut<'_>, [i, f, g, o]: [&[i32]; 4], h: &mut [i8], c: &mut [i16]) {
    for ((((h, c), &i), &f), (&g, &o)) in h.iter_mut().zip(c.iter_mut()).zip(i).zip(f).zip(g.iter().zip(o)) {
        let (i, f, g, o) = (sigmoid.eval(i), sigmoid.eval(f), tanh.eval(g), sigmoid.eval(o));
        // Q15 · Q11 >> 15 = Q11; Q15 · Q15 >> 19 = Q11
        let cell = ((f * i32::from(*c) + (1 << 14)) >> 15) + ((i * g + (1 << 18)) >> 19);
        *c = cell.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        let t = tanh.eval(i32::from(*c) << (GATE_FRAC - CELL_FRAC));
        // h · 127 from Q30
        let hq = (i64::from(o * t) * 127 + (1 << 29)) >> 30;
        *h = hq.clamp(-127, 127) as i8;
    }
}

/// `dst[i] = base.saturating_add(requantize(acc[i], mult, shift))`, `base` = `bias[i]` (little-endian i32)
/// when given, else `dst[i]`.
pub fn requantize_add(dst: &mut [i32], acc: &[i32], bias: Option<&[u8]>, mult: i32, shift: i32) {
    // (one loop per case: a branch per entry cost the Cortex-M4 1.6 M instructions per inference, true count)
    match bias {
        Some(b) => {
            let b = Le::<i32>::new(b).from(0);
            for ((d, &a), b) in dst.iter_mut().zip(acc).zip(b) {
                *d = b.saturating_add(requantize(a, mult, shift));
            }
        }
        None => {
            for (d, &a) in dst.iter_mut().zip(acc) {
                *d = d.saturating_add(requantize(a, mult, shift));
            }
        }
    }
}

// ---- f32 ----

/// [`crate::kernels::rows_f32`] from group `g0` of every row on (0: the whole rows): the reference of the
/// f32 dot products, `acc[r][c] += Σ w_r · x_c` in the block's group order.
#[cfg(feature = "f32")]
pub fn rows_f32_from(w: &[u8], k: usize, block: &[f32], cols: usize, acc: &mut [[f32; 4]], g0: usize) {
    if 4 * g0 >= k {
        return;
    }
    let xs = block.get(4 * g0 * cols..).unwrap_or(&[]);
    for (r, a) in acc.iter_mut().enumerate() {
        let row = w.get(4 * (r * k + 4 * g0)..4 * (r + 1) * k).unwrap_or(&[]);
        match cols {
            1 => groups_f32::<1>(row, xs, a),
            2 => groups_f32::<2>(row, xs, a),
            3 => groups_f32::<3>(row, xs, a),
            _ => groups_f32::<4>(row, xs, a),
        }
    }
}

/// `acc[c] += Σ w · x_c` over a weight row (little-endian f32 bytes) and `C` block columns, the column
/// count known at compile time so the compiler keeps the sums in registers and vectorizes.
#[cfg(feature = "f32")]
#[inline]
fn groups_f32<const C: usize>(row: &[u8], block: &[f32], acc: &mut [f32]) {
    let mut sums = [0f32; C];
    for (w, x) in row.chunks(16).zip(block.chunks_exact(4 * C)) {
        let mut w4 = [0f32; 4];
        for (v, b) in w4.iter_mut().zip(Le::<f32>::new(w).from(0)) {
            *v = b;
        }
        let [w0, w1, w2, w3] = w4;
        for (sum, x) in sums.iter_mut().zip(x.chunks_exact(4)) {
            let &[x0, x1, x2, x3] = x else { continue };
            *sum += (w0 * x0 + w1 * x1) + (w2 * x2 + w3 * x3);
        }
    }
    for (a, s) in acc.iter_mut().zip(sums) {
        *a += s;
    }
}

/// The logistic function with libm (the reference of the vectorized one).
#[cfg(feature = "f32")]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// The f32 LSTM cell for units `from..` of the gates `[i | f | g | o]` (`4 · h.len()` values), with libm.
#[cfg(feature = "f32")]
pub fn lstm_cell_f32(gates: &[f32], h: &mut [f32], c: &mut [f32], from: usize) {
    let n = h.len();
    let mut quarters = gates.chunks_exact(n.max(1));
    let (Some(i), Some(f), Some(g), Some(o)) = (quarters.next(), quarters.next(), quarters.next(), quarters.next())
    else {
        return;
    };
    let units = h.iter_mut().zip(c.iter_mut()).zip(i).zip(f).zip(g.iter().zip(o)).skip(from);
    for ((((h, c), &i), &f), (&g, &o)) in units {
        *c = sigmoid(f) * *c + sigmoid(i) * libm::tanhf(g);
        *h = sigmoid(o) * libm::tanhf(*c);
    }
}
