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

use crate::block::{block_len, load};
use crate::format::names;
use crate::format::{Arch, ModelFile, Precision};
use crate::net::{Kernels, Mac, Net, KERNEL_ROWS, LSTM_STEPS_AT_ONCE, ROWS_AT_ONCE};
use crate::Error;

/// Marker for the int8 precision.
pub struct I8;

/// Fractional bits of LSTM gate pre-activations.
pub const GATE_FRAC: u32 = 12;
/// Fractional bits of the LSTM cell state.
pub const CELL_FRAC: u32 = 11;
pub use crate::format::names::LUT_LEN;

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
    let n = (31 - shift).clamp(1, 62) as u32;
    let prod = i64::from(acc) * i64::from(mult) + (1i64 << (n - 1));
    (prod >> n).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// Little-endian i32 values in borrowed bytes.
#[derive(Clone, Copy, Debug)]
struct I32s<'a>(&'a [u8]);

impl<'a> I32s<'a> {
    fn get(&self, i: usize) -> i32 {
        self.0.get(4 * i..4 * i + 4).and_then(|b| b.try_into().ok()).map_or(0, i32::from_le_bytes)
    }
    /// The values from index `i` on.
    fn from(self, i: usize) -> impl Iterator<Item = i32> + 'a {
        let rest = self.0.get(4 * i..).unwrap_or(&[]);
        rest.chunks_exact(4).map(|b| b.try_into().map_or(0, i32::from_le_bytes))
    }
}

/// A table of 513 Q15 values (little-endian i16) over [−8, 8).
#[derive(Clone, Copy, Debug)]
pub struct Lut<'a>(&'a [u8; 2 * LUT_LEN]);

impl<'a> Lut<'a> {
    /// The table in `bytes`, if they are exactly [`LUT_LEN`] little-endian i16.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        bytes.try_into().ok().map(Lut)
    }
    /// Entries `i` and `i + 1` (`i` < 512, so both are in the table: no check needed).
    #[inline]
    fn pair(&self, i: usize) -> (i32, i32) {
        let at = |j: usize| match self.0.get(2 * j..2 * j + 2) {
            Some(&[lo, hi]) => i32::from(i16::from_le_bytes([lo, hi])),
            _ => 0,
        };
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

/// A quantized conv 3×3 or dense layer: weights `[out, segments, segment_len]` int8.
pub struct LinearI8<'a> {
    w: &'a [u8],
    b: I32s<'a>,
    mult: I32s<'a>,
    shift: I32s<'a>,
    zp_in: i32,
    zp_out: i32,
    outputs: usize,
    segments: usize,
    segment_len: usize,
    relu: bool,
}

impl<'a> LinearI8<'a> {
    fn load(file: &ModelFile<'a>, name: &'static str, relu: bool) -> Result<Self, Error> {
        let shape_spec = names::spec(Precision::Int8, &file.arch, name, "weight").ok_or(Error::MissingTensor)?;
        let shape = shape_spec.shape();
        let outputs = *shape.first().ok_or(Error::ShapeMismatch)?;
        let segment_len = *shape.last().ok_or(Error::ShapeMismatch)?;
        let per_out: usize = shape.iter().skip(1).product();
        let zp = I32s(bytes(file, name, "zp")?);
        let shift = I32s(bytes(file, name, "shift")?);
        check_shifts(shift, outputs)?;
        let (zp_in, zp_out) = (zp.get(0), zp.get(1));
        if !(-128..=127).contains(&zp_in) || !(-128..=127).contains(&zp_out) {
            return Err(Error::BadTensor);
        }
        Ok(LinearI8 {
            w: bytes(file, name, "weight")?,
            b: I32s(bytes(file, name, "bias")?),
            mult: I32s(bytes(file, name, "mult")?),
            shift,
            zp_in,
            zp_out,
            outputs,
            segments: per_out / segment_len.max(1),
            segment_len,
            relu,
        })
    }
}

/// Where input `j` of a group of four sits in an int8 [block](crate::block). On Arm, SXTB16 splits a
/// weight word into its bytes 0 and 2 (one register) and 1 and 3 (another), so the inputs are stored in
/// that order; elsewhere (x86 widens weights in order) they stay in order. Either order is its own
/// inverse: weight `j` meets slot `LANES[j]`, and slot `p` holds input `LANES[p]`.
pub const LANES: [usize; 4] = if cfg!(target_arch = "arm") { [0, 2, 1, 3] } else { [0, 1, 2, 3] };

/// `acc[c] += Σ_k w[k] · x_c[k]` over one weight row of `k` int8 weights, for each column `c` of
/// `block` (`acc.len()` columns of `x − zp` in i16). `w` starts at the row and may run on to the end
/// of its tensor: a kernel may then read the row's last group whole, whose extra weights meet the
/// block's zero padding. The DSP kernel with the `dsp` feature on Arm, else [`dot_block_portable`];
/// both wrap (never panic) on sums beyond i32, which only a hostile model's rows can reach.
#[inline]
pub fn dot_block(w: &[u8], k: usize, block: &[i16], acc: &mut [i32]) {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    let done = dsp::dot_block(w, k, block, acc);
    // SAFETY: SSE2 is part of the x86-64 baseline: every CPU this code runs on has it.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    let done = unsafe { sse2::dot_block(w, k, block, acc) };
    #[cfg(not(any(all(feature = "dsp", target_arch = "arm"), target_arch = "x86_64")))]
    let done = 0;
    if 4 * done < k {
        portable_groups(w, k, block, acc, done);
    }
}

/// The portable kernel: the reference every target computes bit for bit.
pub fn dot_block_portable(w: &[u8], k: usize, block: &[i16], acc: &mut [i32]) {
    portable_groups(w, k, block, acc, 0);
}

/// Two consecutive weight rows (`w[..k]` and `w[k..2k]`) against one column: each input load serves
/// both rows. Used for the LSTMs' recurrent half, which has a single column (the state).
#[inline]
pub fn dot_rows2(w: &[u8], k: usize, block: &[i16]) -> [i32; 2] {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    if let Some(acc) = dsp::dot_rows2(w, k, block) {
        return acc;
    }
    let (mut a, mut b) = ([0], [0]);
    dot_block(w, k, block, &mut a);
    dot_block(w.get(k..).unwrap_or(&[]), k, block, &mut b);
    [a[0], b[0]]
}

/// The portable reference of [`dot_rows2`].
pub fn dot_rows2_portable(w: &[u8], k: usize, block: &[i16]) -> [i32; 2] {
    let (mut a, mut b) = ([0], [0]);
    dot_block_portable(w, k, block, &mut a);
    dot_block_portable(w.get(k..).unwrap_or(&[]), k, block, &mut b);
    [a[0], b[0]]
}

/// `acc[r][c] += Σ_j w_r[j] · x_c[j]` for the weight rows `w_r = w[r·k ..][..k]` (`r < acc.len()`) and
/// the `cols` columns of `block`: what a layer computes for up to [`ROWS_AT_ONCE`] outputs. With the Arm
/// DSP kernels all rows go through one many-rows pass (`dsp::rows`); on x86-64 with AVX2 four rows go
/// through one kernel pass (`avx2`); elsewhere rows go one at a time through [`dot_block`], or two at a
/// time through [`dot_rows2`] when there is one column. Always inlined, so that each caller's column
/// count picks its kernel variant at compile time.
#[inline(always)]
pub fn dot_rows(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        // The rows the DSP pass can run; the rest (a last row too near the tensor's end) go through the
        // generic loops, once in the program rather than inlined at every call (flash).
        #[inline(never)]
        fn rest(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) {
            dot_rows_generic(w, k, block, cols, acc);
        }
        let done = dsp::rows(w, k, block, cols, acc);
        if done < acc.len() {
            rest(w.get(done * k..).unwrap_or(&[]), k, block, cols, acc.get_mut(done..).unwrap_or(&mut []));
        }
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    dot_rows_generic(w, k, block, cols, acc);
}

/// [`dot_rows`] but the DSP pass: AVX2 where the CPU has it, else row pairs or single rows.
#[inline(always)]
fn dot_rows_generic(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) {
    #[cfg(target_arch = "x86_64")]
    if let Ok(acc4) = <&mut [[i32; 4]; KERNEL_ROWS]>::try_from(&mut *acc) {
        let done = crate::avx2::rows4_i8(w, k, block, cols, acc4);
        if done > 0 {
            if 4 * done < k {
                for (r, a) in acc4.iter_mut().enumerate() {
                    let a = a.get_mut(..cols).unwrap_or(&mut []);
                    portable_groups(w.get(r * k..).unwrap_or(&[]), k, block, a, done);
                }
            }
            return;
        }
    }
    if cols == 1 {
        for (pair, a) in acc.chunks_mut(2).enumerate() {
            let w = w.get(2 * pair * k..).unwrap_or(&[]);
            let sums = if a.len() == 2 { dot_rows2(w, k, block) } else { dot_rows1(w, k, block) };
            for (a, s) in a.iter_mut().zip(sums) {
                a[0] = a[0].wrapping_add(s);
            }
        }
        return;
    }
    for (r, a) in acc.iter_mut().enumerate() {
        let w = w.get(r * k..).unwrap_or(&[]);
        // (a column count known here lets the compiler pick the kernel's variant once, outside the loop)
        match cols {
            4 => dot_block(w, k, block, a),
            2 => dot_block(w, k, block, a.get_mut(..2).unwrap_or(&mut [])),
            _ => dot_block(w, k, block, a.get_mut(..cols).unwrap_or(&mut [])),
        }
    }
}

/// The inputs of one dot-product pass, prepared once for all weight rows: a [block](crate::block) of
/// `x − zp` in i16 (every target), or on x86-64 with AVX-VNNI or AVX512-VNNI the columns one after the
/// other as unsigned bytes `x ⊕ 0x80` with the offset `128 + zp` (`avx2::rows4_u8`: half the bytes, no
/// widening).
pub enum Prepared<'b> {
    Block(&'b [i16]),
    #[cfg(target_arch = "x86_64")]
    Bytes(&'b [u8], i32),
}

/// Prepares `columns` (`n` int8 inputs each, zero point `zp`) in `block` (at least [`block_len`]`(n,
/// columns.len())` slots; `None` if shorter): as bytes where [`dot_prepared`] has the kernel for them (x86-64
/// with a VNNI extension, `n` a multiple of 32), else as a block.
pub fn prepare<'b>(block: &'b mut [i16], n: usize, columns: &[&[i8]], zp: i32) -> Option<Prepared<'b>> {
    let block = block.get_mut(..block_len(n, columns.len()))?;
    #[cfg(target_arch = "x86_64")]
    if n.is_multiple_of(32) && crate::avx2::DotBytes::get().is_some() {
        let bytes = bytemuck::cast_slice_mut::<i16, u8>(block).get_mut(..n * columns.len())?;
        for (dst, x) in bytes.chunks_exact_mut(n.max(1)).zip(columns) {
            for (d, &v) in dst.iter_mut().zip(*x) {
                *d = v as u8 ^ 0x80;
            }
        }
        return Some(Prepared::Bytes(bytes, 128 + zp));
    }
    load(block, n, columns, LANES, |a| i16::from(a) - zp as i16); // zp checked to be in -128..=127 at load
    Some(Prepared::Block(block))
}

/// [`dot_rows`] on [`prepare`]d inputs: the unsigned-byte kernel for four rows of 1 or 2 columns, else a
/// plain loop over the bytes (fewer rows; never on the seed's model).
#[inline(always)]
pub fn dot_prepared(w: &[u8], k: usize, x: &Prepared<'_>, cols: usize, acc: &mut [[i32; 4]]) {
    match x {
        Prepared::Block(block) => dot_rows(w, k, block, cols, acc),
        #[cfg(target_arch = "x86_64")]
        &Prepared::Bytes(bytes, offset) => {
            if let Ok(acc4) = <&mut [[i32; 4]; KERNEL_ROWS]>::try_from(&mut *acc) {
                if crate::avx2::rows4_u8(w, k, bytes, cols, offset, acc4) {
                    return;
                }
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let row = w.get(r * k..(r + 1) * k).unwrap_or(&[]);
                for (a, x) in a.iter_mut().zip(bytes.chunks_exact(k.max(1))).take(cols) {
                    let dot = row.iter().zip(x).map(|(&w, &u)| i32::from(w as i8) * (i32::from(u) - offset));
                    *a = dot.fold(*a, i32::wrapping_add);
                }
            }
        }
    }
}

/// [`crate::block::put`] of `x − zp` (zp in −128..=127): the DSP kernel where it applies (whole groups,
/// with the `dsp` feature on Arm), else the portable `put`, which is its reference.
#[inline]
pub fn put_inputs(block: &mut [i16], cols: usize, col: usize, k0: usize, x: &[i8], zp: i32) {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    if dsp::widen(block, cols, col, k0, x, zp) {
        return;
    }
    crate::block::put(block, cols, col, k0, x, LANES, |a| i16::from(a) - zp as i16);
}

/// One weight row against one column, as [`dot_rows2`] returns it (for an odd last row).
fn dot_rows1(w: &[u8], k: usize, block: &[i16]) -> [i32; 2] {
    let mut a = [0];
    dot_block(w, k, block, &mut a);
    [a[0], 0]
}

/// [`dot_block_portable`] from group `g0` on: whole groups with the column count known at compile time
/// (fixed-size arrays, no bounds checks, so the compiler vectorizes), then a partial last group.
#[inline]
fn portable_groups(w: &[u8], k: usize, block: &[i16], acc: &mut [i32], g0: usize) {
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

/// x86-64 kernels with SSE2 (part of every x86-64 CPU, so no detection): PMADDWD multiplies eight i16
/// pairs and adds neighbours, the x86 twin of SMLAD. Per two groups of four weights: the eight weight bytes
/// sign-extended once, then per column one load and one PMADDWD.
/// Exact integer arithmetic like the others, checked against the portable kernel by the proptest.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod sse2 {
    use core::arch::x86_64::*;

    /// The block's i16 values at `at` (eight of them), or zeros if they are not all there.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn load8(block: &[i16], at: usize) -> __m128i {
        match block.get(at..at + 8) {
            // SAFETY: the slice holds the 16 bytes read; `loadu` accepts any alignment.
            Some(x) => unsafe { _mm_loadu_si128(x.as_ptr().cast()) },
            None => _mm_setzero_si128(),
        }
    }

    /// The horizontal sum of four i32 lanes.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn sum4(v: __m128i) -> i32 {
        let v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b01_00_11_10));
        let v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b10_11_00_01));
        _mm_cvtsi128_si32(v)
    }

    /// Weights `8p .. 8p + 8` (two groups, in order: LANES on x86), sign-extended to i16.
    #[inline]
    #[target_feature(enable = "sse2")]
    fn weights(w: &[u8], p: usize) -> __m128i {
        let bytes = w.get(8 * p..8 * p + 8).and_then(|b| b.try_into().ok()).map_or(0, i64::from_le_bytes);
        let v = _mm_cvtsi64_si128(bytes);
        _mm_srai_epi16(_mm_unpacklo_epi8(v, v), 8)
    }

    /// Runs the pairs of whole groups of the row and returns how many groups it ran.
    #[target_feature(enable = "sse2")]
    pub fn dot_block(w: &[u8], k: usize, block: &[i16], acc: &mut [i32]) -> usize {
        let cols = acc.len();
        let pairs = (k / 8).min(w.len() / 8).min(block.len() / (8 * cols.max(1)));
        // (Three columns would need partial loads at the block's end: left to the portable kernel.)
        if pairs == 0 || !matches!(cols, 1 | 2 | 4) {
            return 0;
        }
        let step = 8 * cols;
        if cols == 1 {
            let mut s = _mm_setzero_si128();
            for p in 0..pairs {
                s = _mm_add_epi32(s, _mm_madd_epi16(load8(block, p * step), weights(w, p)));
            }
            if let Some(a) = acc.first_mut() {
                *a = a.wrapping_add(sum4(s));
            }
            return 2 * pairs;
        }
        // Two columns per register: lanes 0, 1 belong to the even column, 2, 3 to the odd one.
        let mut s = [_mm_setzero_si128(); 2];
        for p in 0..pairs {
            let wv = weights(w, p);
            for (half, w) in [_mm_unpacklo_epi64(wv, wv), _mm_unpackhi_epi64(wv, wv)].into_iter().enumerate() {
                let base = p * step + half * 4 * cols;
                for (j, s) in s.iter_mut().enumerate().take(cols.div_ceil(2)) {
                    *s = _mm_add_epi32(*s, _mm_madd_epi16(load8(block, base + 8 * j), w));
                }
            }
        }
        for (c, a) in acc.iter_mut().enumerate() {
            let v = s.get(c / 2).copied().unwrap_or(_mm_setzero_si128());
            // this column's two lanes: 0 and 1, or 2 and 3
            let v = if c % 2 == 0 { v } else { _mm_srli_si128(v, 8) };
            let v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b01_01_01_01));
            *a = a.wrapping_add(_mm_cvtsi128_si32(v));
        }
        2 * pairs
    }
}

/// Cortex-M4/M7 (Armv7E-M) kernels with the DSP extension. Per group of four weights: one load of the
/// weight word, two SXTB16 to split it into i16 pairs, then per column one LDRD of its four inputs and
/// two SMLAD (two multiply-adds each). With four columns that is 15 instructions for 16 multiply-adds.
/// The arithmetic is exact (wrapping) integer arithmetic, so results equal [`dot_block_portable`]'s
/// bit for bit: the firmware compares the two kernels at start-up and diffs its outputs with the host's.
#[cfg(all(feature = "dsp", target_arch = "arm"))]
#[allow(unsafe_code)]
mod dsp {
    use core::arch::asm;

    /// One group of four weights as assembly text: the weight word, split by two SXTB16, then per
    /// column one LDRD of its four inputs and two SMLAD.
    macro_rules! group {
        ($($c:ident)+) => {
            concat!(
                "ldr {w}, [{wp}], #4\n",
                "sxtb16 {t}, {w}\n",
                "sxtb16 {w}, {w}, ror #8\n",
                $(
                    "ldrd {x0}, {x1}, [{xp}], #8\n",
                    "smlad {", stringify!($c), "}, {t}, {x0}, {", stringify!($c), "}\n",
                    "smlad {", stringify!($c), "}, {w}, {x1}, {", stringify!($c), "}\n",
                )+
            )
        };
    }

    /// `$unroll` (1 or 4) groups. Written out rather than `.rept`, so that LLVM, which sizes inline
    /// assembly by its lines, knows how long the loop is when it places its own branches around it.
    macro_rules! unrolled {
        (1, $($c:ident)+) => { group!($($c)+) };
        (4, $($c:ident)+) => { concat!(group!($($c)+), group!($($c)+), group!($($c)+), group!($($c)+)) };
    }

    /// The kernel loop: `$n` ≥ 1 iterations of `$unroll` groups of four weights, one accumulator per
    /// column.
    macro_rules! columns {
        ($wp:ident, $xp:ident, $n:expr, $unroll:tt, $($c:ident)+) => {
            // SAFETY (callers): `$wp` has 4 · $n · $unroll readable bytes, `$xp` 8 · columns · $n · $unroll,
            // word-aligned. Only registers besides; flags are clobbered (no preserves_flags).
            unsafe {
                asm!(
                    "2:",
                    unrolled!($unroll, $($c)+),
                    "subs {n}, {n}, #1",
                    "bne.w 2b", // (.w: the unrolled loop may be longer than a 16-bit branch reaches)
                    wp = inout(reg) $wp,
                    xp = inout(reg) $xp,
                    n = inout(reg) $n => _,
                    $($c = inout(reg) $c,)+
                    w = out(reg) _,
                    t = out(reg) _,
                    x0 = out(reg) _,
                    x1 = out(reg) _,
                    options(nostack, readonly),
                )
            }
        };
    }

    /// Runs the whole groups it can and returns how many it ran (the caller finishes the rest).
    pub fn dot_block(w: &[u8], k: usize, block: &[i16], acc: &mut [i32]) -> usize {
        // LDRD needs word-aligned addresses.
        if !(block.as_ptr() as usize).is_multiple_of(4) || acc.is_empty() || acc.len() > 4 {
            return 0;
        }
        // The row's groups, its last one whole when the tensor holds the bytes; within the block.
        let groups = if w.len() >= k.next_multiple_of(4) { k.div_ceil(4) } else { k / 4 };
        let groups = groups.min(block.len() / (4 * acc.len()));
        let (mut wp, mut xp) = (w.as_ptr(), block.as_ptr());
        let (n4, n1) = (groups / 4, groups % 4);
        let [mut c0, mut c1, mut c2, mut c3] = [0i32; 4];
        // The groups four at a time (unrolled), then the rest one at a time.
        macro_rules! run {
            ($($c:ident)+) => {{
                if n4 > 0 {
                    columns!(wp, xp, n4, 4, $($c)+);
                }
                if n1 > 0 {
                    columns!(wp, xp, n1, 1, $($c)+);
                }
            }};
        }
        match acc.len() {
            1 => run!(c0),
            2 => run!(c0 c1),
            3 => run!(c0 c1 c2),
            _ => run!(c0 c1 c2 c3),
        }
        for (a, c) in acc.iter_mut().zip([c0, c1, c2, c3]) {
            *a = a.wrapping_add(c);
        }
        let _ = (wp, xp); // advanced by the last run, not needed after it
        groups
    }

    /// Rows `w[..k]` and `w[k..2k]` against one column, for `k` a multiple of 4 (else `None`). Per group:
    /// one LDRD of the inputs, then per row a weight load, two SXTB16 and two SMLAD.
    pub fn dot_rows2(w: &[u8], k: usize, block: &[i16]) -> Option<[i32; 2]> {
        let groups = k / 4;
        if !(block.as_ptr() as usize).is_multiple_of(4)
            || !k.is_multiple_of(4)
            || w.len() < 2 * k
            || block.len() < k
            || groups == 0
        {
            return None;
        }
        // SAFETY: checked above: `w` holds both rows, `block` is word-aligned and holds the groups.
        Some(unsafe { rows2(w.as_ptr(), block.as_ptr(), k, groups, [0, 0]) })
    }

    /// [`dot_rows2`]'s loop, adding to `[c0, c1]`.
    ///
    /// # Safety
    /// `wp` and `wp + k` have `4 · groups` readable bytes, `xp` is word-aligned with `8 · groups`, `groups ≥ 1`.
    #[inline(always)]
    unsafe fn rows2(
        mut wp: *const u8,
        mut xp: *const i16,
        k: usize,
        groups: usize,
        [mut c0, mut c1]: [i32; 2],
    ) -> [i32; 2] {
        let mut n = groups;
        // SAFETY: by the caller's contract; registers only otherwise.
        unsafe {
            asm!(
                "2:",
                "ldrd {x0}, {x1}, [{xp}], #8",
                "ldr {w}, [{wp}, {k}]",
                "sxtb16 {t}, {w}",
                "sxtb16 {w}, {w}, ror #8",
                "smlad {c1}, {t}, {x0}, {c1}",
                "smlad {c1}, {w}, {x1}, {c1}",
                "ldr {w}, [{wp}], #4",
                "sxtb16 {t}, {w}",
                "sxtb16 {w}, {w}, ror #8",
                "smlad {c0}, {t}, {x0}, {c0}",
                "smlad {c0}, {w}, {x1}, {c0}",
                "subs {n}, {n}, #1",
                "bne 2b",
                wp = inout(reg) wp,
                xp = inout(reg) xp,
                n = inout(reg) n,
                k = in(reg) k,
                c0 = inout(reg) c0,
                c1 = inout(reg) c1,
                w = out(reg) _,
                t = out(reg) _,
                x0 = out(reg) _,
                x1 = out(reg) _,
                options(nostack, readonly),
            )
        };
        let _ = (wp, xp, n);
        [c0, c1]
    }

    /// [`crate::block::put`] of `x − zp` for whole groups: per four inputs one load, two SXTB16 (which
    /// leave them in [`super::LANES`] order) and two SSUB16. Returns false, doing nothing, unless `k0`
    /// and `x.len()` are multiples of 4, the block is word-aligned and holds every group written.
    pub fn widen(block: &mut [i16], cols: usize, col: usize, k0: usize, x: &[i8], zp: i32) -> bool {
        let groups = x.len() / 4;
        let first = (k0 / 4 * cols + col) * 4; // slot of input k0
        let last_end = first + groups.saturating_sub(1) * 4 * cols + 4;
        if !k0.is_multiple_of(4)
            || !x.len().is_multiple_of(4)
            || !(block.as_ptr() as usize).is_multiple_of(4)
            || last_end > block.len()
            || col >= cols
        {
            return false;
        }
        // zp fits i16 (checked at load): both halves hold it.
        let zp2 = u32::from(zp as i16 as u16) * 0x0001_0001;
        let mut dst = block.as_mut_ptr().wrapping_add(first).cast::<u32>();
        for four in x.chunks_exact(4) {
            let word = <[i8; 4]>::try_from(four).map_or(0, |b| u32::from_le_bytes(b.map(|v| v as u8)));
            let (even, odd): (u32, u32);
            // SAFETY: registers only (SSUB16 sets the GE flags, which nothing reads).
            unsafe {
                asm!(
                    "sxtb16 {e}, {w}",
                    "sxtb16 {o}, {w}, ror #8",
                    "ssub16 {e}, {e}, {z}",
                    "ssub16 {o}, {o}, {z}",
                    w = in(reg) word,
                    z = in(reg) zp2,
                    e = out(reg) even,
                    o = out(reg) odd,
                    options(pure, nomem, nostack),
                );
            }
            // SAFETY: `dst` walks the groups' slots, word-aligned, the last ending within `block` (checked).
            unsafe {
                dst.write(even);
                dst.add(1).write(odd);
            }
            dst = dst.wrapping_add(2 * cols);
        }
        true
    }

    /// [`super::dot_rows`] for any number of rows (`acc.len()`) in one lean loop: row `r`'s weights at
    /// `w[r · k..]`, its last group read whole, one column at a time for 2 or 4 columns, two rows at a
    /// time for one. Returns how many rows it ran, from the first: all but those whose last group ends
    /// beyond `w`; none where it cannot run (a block that is not word-aligned or too short, a column
    /// count other than 1, 2 and 4, one column with `k` not a multiple of 4, or `k` = 0).
    pub fn rows(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) -> usize {
        let groups = k.div_ceil(4);
        if groups == 0
            || !(block.as_ptr() as usize).is_multiple_of(4)
            || block.len() < 4 * groups * cols
            || !matches!(cols, 1 | 2 | 4)
            || (cols == 1 && !k.is_multiple_of(4))
        {
            return 0;
        }
        // Row r reads w[r·k .. r·k + 4·groups].
        let fit = w.len().checked_sub(4 * groups).map_or(0, |room| room / k + 1);
        let rows = acc.len().min(fit);
        let Some(acc) = acc.get_mut(..rows) else { return 0 };
        let (n4, n1) = (groups / 4, groups % 4);
        let row = |r: usize| {
            // SAFETY: r < rows, and the last row's last group ends within `w` (checked above).
            unsafe { w.as_ptr().add(r * k) }
        };
        // Each arm: the columns! loops (SAFETY: the row's 4 · groups bytes are in `w`, the block holds
        // 4 · groups · cols word-aligned i16, both checked above).
        match cols {
            4 => {
                for (r, a) in acc.iter_mut().enumerate() {
                    let (mut wp, mut xp) = (row(r), block.as_ptr());
                    let [mut c0, mut c1, mut c2, mut c3] = *a;
                    if n4 > 0 {
                        columns!(wp, xp, n4, 4, c0 c1 c2 c3);
                    }
                    if n1 > 0 {
                        columns!(wp, xp, n1, 1, c0 c1 c2 c3);
                    }
                    let _ = (wp, xp); // advanced by the last loop, not needed after it
                    *a = [c0, c1, c2, c3];
                }
            }
            2 => {
                for (r, a) in acc.iter_mut().enumerate() {
                    let (mut wp, mut xp) = (row(r), block.as_ptr());
                    let [mut c0, mut c1, c2, c3] = *a;
                    if n4 > 0 {
                        columns!(wp, xp, n4, 4, c0 c1);
                    }
                    if n1 > 0 {
                        columns!(wp, xp, n1, 1, c0 c1);
                    }
                    let _ = (wp, xp);
                    *a = [c0, c1, c2, c3];
                }
            }
            _ => {
                let mut pairs = acc.chunks_exact_mut(2);
                for (p, ab) in (&mut pairs).enumerate() {
                    if let [a, b] = ab {
                        // SAFETY: rows 2p and 2p + 1 are within `w` (checked above), as is the block.
                        [a[0], b[0]] = unsafe { rows2(row(2 * p), block.as_ptr(), k, groups, [a[0], b[0]]) };
                    }
                }
                if let [a] = pairs.into_remainder() {
                    let (mut wp, mut xp, mut c0) = (row(rows - 1), block.as_ptr(), a[0]);
                    columns!(wp, xp, groups, 1, c0);
                    let _ = (wp, xp);
                    a[0] = c0;
                }
            }
        }
        rows
    }
}

impl Mac for LinearI8<'_> {
    type Act = i8;
    type In = i16;
    type Acc = i32;
    const LANES: [usize; 4] = LANES;
    fn segment_len(&self) -> usize {
        self.segment_len
    }
    fn outputs(&self) -> usize {
        self.outputs
    }
    fn input(&self, x: i8) -> i16 {
        i16::from(x) - self.zp_in as i16 // zp_in checked to be in -128..=127 at load
    }
    fn init(&self, o: usize) -> i32 {
        self.b.get(o)
    }
    fn mac_rows(&self, o: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) {
        let len = self.segments * self.segment_len;
        dot_rows(self.w.get(o * len..).unwrap_or(&[]), len, block, cols, acc);
    }
    fn finish(&self, o: usize, acc: i32) -> i8 {
        self.output(acc, self.mult.get(o), self.shift.get(o))
    }
    fn finish_pooled(&self, o: usize, acc: &[[i32; 4]], out: &mut [i8]) {
        // `finish` of each window's largest, walking the multipliers and shifts instead of indexing them.
        for (((v, a), mult), shift) in out.iter_mut().zip(acc).zip(self.mult.from(o)).zip(self.shift.from(o)) {
            *v = self.output(a[0].max(a[1]).max(a[2].max(a[3])), mult, shift);
        }
    }
    fn gather(&self, block: &mut [i16], cols: usize, col: usize, k0: usize, x: &[i8]) {
        put_inputs(block, cols, col, k0, x, self.zp_in);
    }
    #[cfg(target_arch = "x86_64")]
    fn conv_pool_kernel(&self, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
        let layer = self.as_conv();
        if self.segments != 9 {
            false
        } else if self.segment_len == 1 {
            let windows = out.len() / self.outputs.max(1);
            crate::avx2::conv1_pool_i8(&layer, windows, |i| crate::net::conv1_patches(self, cols, i), out)
        } else {
            self.zp_in == -128 && crate::avx2::conv_pool_u8(&layer, cols, out)
        }
    }
}

impl LinearI8<'_> {
    /// The layer as the x86-64 conv kernels read it.
    #[cfg(target_arch = "x86_64")]
    fn as_conv(&self) -> crate::avx2::ConvI8<'_> {
        crate::avx2::ConvI8 {
            w: self.w,
            bias: self.b.0,
            mult: self.mult.0,
            shift: self.shift.0,
            outputs: self.outputs,
            cin: self.segment_len,
            zp_out: self.zp_out,
            lo: self.lowest(),
        }
    }
    /// The int8 output of accumulator `acc` with its multiplier and shift: requantized, shifted by the
    /// output zero point, clamped to [`LinearI8::lowest`]..=127.
    #[inline(always)]
    fn output(&self, acc: i32, mult: i32, shift: i32) -> i8 {
        self.zp_out.saturating_add(requantize(acc, mult, shift)).clamp(self.lowest(), 127) as i8
    }
    /// The lowest output: the zero point (real 0) with ReLU, else −128.
    fn lowest(&self) -> i32 {
        if self.relu {
            self.zp_out
        } else {
            -128
        }
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

impl<'a> LstmI8<'a> {
    fn load(file: &ModelFile<'a>, prefix: &'static str) -> Result<Self, Error> {
        let w_ih_spec = names::spec(Precision::Int8, &file.arch, prefix, "w_ih").ok_or(Error::MissingTensor)?;
        let w_ih = w_ih_spec.shape();
        let (hidden, n_in) = (w_ih.first().map_or(0, |r| r / 4), w_ih.last().copied().unwrap_or(0));
        let i32s = |part: &'static str| Ok::<_, Error>(I32s(bytes(file, prefix, part)?));
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
}

impl Kernels for I8 {
    type Act = i8;
    type In = i16;
    type Cell = i16;
    type Gate = i32;
    type Conv<'a> = LinearI8<'a>;
    type Dense<'a> = LinearI8<'a>;
    type Lstm<'a> = LstmI8<'a>;

    fn load<'a>(file: &ModelFile<'a>) -> Result<Net<'a, Self>, Error> {
        let a: Arch = file.arch;
        let [c1, d1, l1, l2] = [a.conv1, a.dense1, a.lstm1, a.lstm2].map(usize::from);
        // The longest dot product (dense1's features, usually) must fit i32: 255 · 255 per term.
        if a.features().max(9 * c1).max(d1).max(2 * l1).max(2 * l2) > 32_000 {
            return Err(Error::Capacity);
        }
        let lstm = |prefix| LstmI8::load(file, prefix);
        Ok(Net {
            conv1: LinearI8::load(file, "conv1", true)?,
            conv2: LinearI8::load(file, "conv2", true)?,
            dense1: LinearI8::load(file, "dense1", true)?,
            lstm1: [lstm("lstm1.fwd")?, lstm("lstm1.bwd")?],
            lstm2: [lstm("lstm2.fwd")?, lstm("lstm2.bwd")?],
            dense2: LinearI8::load(file, "dense2", false)?,
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
                for q in (0..len).step_by(ROWS_AT_ONCE) {
                    let mut acc = [[0i32; 4]; ROWS_AT_ONCE];
                    let Some(acc) = acc.get_mut(..ROWS_AT_ONCE.min(len - q)) else { return };
                    dot_prepared(l.w_ih.get((r0 + q) * l.n_in..).unwrap_or(&[]), l.n_in, &xb, cols, acc);
                    for (r, a) in (q..).zip(&*acc) {
                        for (step, (sums, &a)) in sums.iter_mut().zip(a).enumerate().take(cols) {
                            if COLLECTED > 0 {
                                if let Some(s) = sums.get_mut(r) {
                                    *s = a;
                                }
                            } else if let Some(g) = gates.get_mut(step * rows + r0 + r) {
                                *g = l.b.get(r0 + r).saturating_add(requantize(a, mult, shift));
                            }
                        }
                    }
                }
                let bias = I32s(l.b.0.get(4 * r0..).unwrap_or(&[]));
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
            block.get_mut(block_len(l.n_in, LSTM_STEPS_AT_ONCE)..).and_then(|b| prepare(b, l.hidden, &[&*h], 0))
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
        #[cfg(target_arch = "x86_64")]
        let done = crate::avx2::lstm_cell_i8([i, f, g, o], h, c, l.sigmoid.0, l.tanh.0);
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        let rest = [i, f, g, o].map(|q| q.get(done..).unwrap_or(&[]));
        let (h, c) = (h.get_mut(done..).unwrap_or(&mut []), c.get_mut(done..).unwrap_or(&mut []));
        cell(l.sigmoid, l.tanh, rest, h, c);
    }
}

/// LSTM gate rows handled together: on x86-64 their sums are collected ([`COLLECTED`]) and requantized
/// by [`requantize_add`], eight at a time (a multiple of eight: the AVX2 step).
const GATE_CHUNK: usize = 64;

/// Gate rows of the recurrent half per kernel pass: [`KERNEL_ROWS`] (the x86-64 kernels' four), or a
/// whole chunk with the Arm DSP kernels, which loop over the rows themselves.
const RECUR_ROWS: usize = if cfg!(all(feature = "dsp", target_arch = "arm")) { GATE_CHUNK } else { KERNEL_ROWS };

/// Gate sums collected per chunk: all of them on x86-64; none elsewhere, where each sum is requantized
/// right after its kernel pass (collecting them cost the Cortex-M4 1.6 M instructions per inference when
/// measured, before the many-rows DSP pass; that figure read 1 M then, counted at 25 per tick, not 40).
const COLLECTED: usize = if cfg!(target_arch = "x86_64") { GATE_CHUNK } else { 0 };

/// `dst[i] = base.saturating_add(requantize(acc[i], mult, shift))` with `base` = `bias[i]` when given, else
/// `dst[i]`: LSTM gate pre-activations from their accumulators. Eight at a time with AVX2 on x86-64.
fn requantize_add(dst: &mut [i32], acc: &[i32], bias: Option<I32s<'_>>, mult: i32, shift: i32) {
    #[cfg(target_arch = "x86_64")]
    let done = crate::avx2::requantize_add(dst, acc, bias.map(|b| b.0), mult, shift);
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    let (dst, acc) = (dst.get_mut(done..).unwrap_or(&mut []), acc.get(done..).unwrap_or(&[]));
    // (one loop per case: a branch per entry cost the Cortex-M4 1.6 M instructions per inference, true count)
    match bias {
        Some(b) => {
            for (i, (d, &a)) in (done..).zip(dst.iter_mut().zip(acc)) {
                *d = b.get(i).saturating_add(requantize(a, mult, shift));
            }
        }
        None => {
            for (d, &a) in dst.iter_mut().zip(acc) {
                *d = d.saturating_add(requantize(a, mult, shift));
            }
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

/// The dequantization scale of dense2's output (for scores shown to people and tests).
pub(crate) fn scores_scale(file: &ModelFile<'_>) -> Result<(f32, i32), Error> {
    let s = bytes(file, "scores", "scale")?;
    let scale = s.try_into().map(f32::from_le_bytes).map_err(|_| Error::BadTensor)?;
    let zp = I32s(bytes(file, "dense2", "zp")?).get(1);
    if !scale.is_finite() || scale <= 0.0 {
        return Err(Error::BadTensor);
    }
    Ok((scale, zp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{put, zero_tail};
    use proptest::prelude::*;

    fn table(f: impl Fn(f64) -> f64) -> std::vec::Vec<u8> {
        (0..LUT_LEN).flat_map(|k| (((f(-8.0 + k as f64 / 32.0)) * 32767.0).round() as i16).to_le_bytes()).collect()
    }

    proptest! {
        /// The block kernel (the DSP one on Arm with the `dsp` feature, the portable one elsewhere) equals
        /// the plain i64 sum, exactly, for any int8 weights, inputs, zero point, row length and column count,
        /// also when the weights run on past the row (as they do inside a tensor).
        #[test]
        fn dot_block_is_exact(
            w in proptest::collection::vec(any::<i8>(), 0..300),
            x in proptest::collection::vec(any::<i8>(), 4 * 300),
            zp in -128i32..=127,
            cols in 1usize..=4,
            extra in 0usize..4,
        ) {
            let k = w.len().saturating_sub(extra);
            let wb: std::vec::Vec<u8> = w.iter().map(|&v| v as u8).collect();
            let mut words = std::vec![0u32; block_len(k, cols)];
            let block: &mut [i16] = bytemuck::cast_slice_mut(&mut words);
            let block = &mut block[..block_len(k, cols)];
            zero_tail(block, cols, k, LANES);
            for c in 0..cols {
                put(block, cols, c, 0, &x[c * k..(c + 1) * k], LANES, |a| i16::from(a) - zp as i16);
            }
            let mut got = std::vec![0i32; cols];
            let mut reference = std::vec![0i32; cols];
            dot_block(&wb, k, block, &mut got);
            dot_block_portable(&wb, k, block, &mut reference);
            for c in 0..cols {
                let exact: i64 = (0..k).map(|i| i64::from(w[i]) * (i64::from(x[c * k + i]) - i64::from(zp))).sum();
                prop_assert_eq!(i64::from(got[c]), exact);
                prop_assert_eq!(i64::from(reference[c]), exact);
            }
        }

        /// Two rows at once equal the two rows one by one, for any row length.
        #[test]
        fn dot_rows2_is_two_rows(w in proptest::collection::vec(any::<u8>(), 0..600), x in proptest::collection::vec(-255i16..=255, 300)) {
            let k = w.len() / 2;
            let mut block = std::vec![0i16; block_len(k, 1)];
            put(&mut block, 1, 0, 0, &x[..k], LANES, |v| v);
            let (mut a, mut b) = ([0], [0]);
            dot_block_portable(&w, k, &block, &mut a);
            dot_block_portable(&w[k..], k, &block, &mut b);
            prop_assert_eq!(dot_rows2(&w, k, &block), [a[0], b[0]]);
            prop_assert_eq!(dot_rows2_portable(&w, k, &block), [a[0], b[0]]);
        }

        /// Up to four rows at once (the AVX2 kernel on x86-64 CPUs that have it) equal the rows one by one
        /// through the portable kernel, bit for bit, for any row length and 1-4 columns; the weights may run
        /// on past the last row, as inside a tensor.
        #[test]
        fn dot_rows_is_rows_one_by_one(
            w in proptest::collection::vec(any::<u8>(), 0..1300),
            x in proptest::collection::vec(-255i16..=255, 4 * 320),
            rows in 1usize..=4,
            cols in 1usize..=4,
            extra in 0usize..8,
        ) {
            let k = (w.len().saturating_sub(extra) / 4).min(320);
            let mut block = std::vec![0i16; block_len(k, cols)];
            for c in 0..cols {
                put(&mut block, cols, c, 0, &x[c * k..(c + 1) * k], LANES, |v| v);
            }
            let mut got = std::vec![[7i32, -3, 5, 11]; rows];
            dot_rows(&w, k, &block, cols, &mut got);
            for (r, got) in got.iter().enumerate() {
                let mut want = [7i32, -3, 5, 11];
                dot_block_portable(&w[r * k..], k, &block, &mut want[..cols]);
                prop_assert_eq!(got, &want, "row {} of {}, k {}, {} columns", r, rows, k, cols);
            }
        }

        /// conv1 + pool through the layer's own kernel (the AVX2 one where the CPU has it) equals the
        /// definition: per window and channel, the largest of the four positions' `bias + Σ w · x`
        /// (wrapping), finished, for any weights, biases, requantization (the whole shift range), zero
        /// points, ReLU or not, channel counts the kernel takes or declines, and padding columns.
        #[test]
        fn conv1_pool_matches_definition(
            outputs in prop::sample::select(std::vec![8usize, 16, 32, 64, 12]),
            w in proptest::collection::vec(any::<u8>(), 9 * 64),
            bias in proptest::collection::vec(any::<i32>(), 64),
            mult in proptest::collection::vec(any::<i32>(), 64),
            shift in proptest::collection::vec(-31i32..=30, 64),
            zp in (-128i32..=127, -128i32..=127),
            relu: bool,
            x in proptest::collection::vec(any::<i8>(), 4 * 25),
            present in any::<[bool; 4]>(),
        ) {
            let le = |v: &[i32]| -> std::vec::Vec<u8> { v[..outputs].iter().flat_map(|v| v.to_le_bytes()).collect() };
            let (b, m, sh) = (le(&bias), le(&mult), le(&shift));
            let layer = LinearI8 {
                w: &w[..9 * outputs], b: I32s(&b), mult: I32s(&m), shift: I32s(&sh), zp_in: zp.0, zp_out: zp.1,
                outputs, segments: 9, segment_len: 1, relu,
            };
            let cols: [Option<&[i8]>; 4] = core::array::from_fn(|c| present[c].then(|| &x[25 * c..25 * (c + 1)]));
            let windows = 12; // rows 0..24 of 25: the odd last row is dropped, as the pool drops it
            let mut block = std::vec![0i16; crate::net::conv_block_len(1)];
            let mut got = std::vec![0i8; windows * outputs];
            crate::net::conv_pool(&layer, cols, &mut block, &mut got);
            let mut direct = std::vec![0i8; windows * outputs];
            let ran = layer.conv_pool_kernel(cols, &mut direct);
            for i in 0..windows {
                let near = crate::net::neighbourhood(&layer, cols, i);
                for o in 0..outputs {
                    let best = (0..4).map(|j| {
                        let (dy, dx) = (j % 2, j / 2);
                        (0..9).fold(bias[o], |acc, t| {
                            acc.wrapping_add(i32::from(w[9 * o + t] as i8) * i32::from(near[dx + t % 3][dy + t / 3]))
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
            if crate::avx2::available() {
                prop_assert_eq!(ran, outputs % 8 == 0);
            } else {
                std::eprintln!("SKIPPED in part: no AVX2, the conv1 kernel is not tested on this CPU");
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
            let layer = LinearI8 {
                w: &w[..k * outputs], b: I32s(&b), mult: I32s(&m), shift: I32s(&sh), zp_in: zp.0, zp_out: zp.1,
                outputs, segments: 9, segment_len: cin, relu,
            };
            let rows = 7; // three windows; the odd last row is dropped
            let cols: [Option<&[i8]>; 4] =
                core::array::from_fn(|c| present[c].then(|| &x[rows * cin * c..rows * cin * (c + 1)]));
            let windows = rows / 2;
            let mut block = std::vec![0i16; crate::net::conv_block_len(cin)];
            let mut got = std::vec![0i8; windows * outputs];
            crate::net::conv_pool(&layer, cols, &mut block, &mut got);
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
                use crate::avx2::{conv_pool_u8_with, DotBytes};
                let ran = layer.conv_pool_kernel(cols, &mut std::vec![0i8; windows * outputs]);
                prop_assert_eq!(ran, zp.0 == -128 || DotBytes::get().is_none());
                for v in DotBytes::all().filter(|_| zp.0 == -128) {
                    let mut out = std::vec![0i8; windows * outputs];
                    prop_assert!(conv_pool_u8_with(v, &layer.as_conv(), cols, &mut out));
                    prop_assert_eq!(&out, &got, "{:?}", v);
                }
                if DotBytes::all().count() < 2 {
                    std::eprintln!("SKIPPED in part: this CPU lacks AVX-VNNI or AVX512-VNNI; that conv variant is not tested on it");
                }
            }
        }

        /// The LSTM cell (eight units at a time with AVX2 on x86-64) equals the portable one bit for bit,
        /// for gate pre-activations in and beyond the tables' range and any cell state.
        #[test]
        fn lstm_cell_matches_portable(
            gates in proptest::collection::vec(
                prop_oneof![4 => -(10i32 << GATE_FRAC)..(10 << GATE_FRAC), 1 => (8 << GATE_FRAC) - 2..(8 << GATE_FRAC) + 1],
                4 * 37,
            ),
            c in proptest::collection::vec(any::<i16>(), 37),
            units in 0usize..=37,
        ) {
            let (sig, tanh) = (table(|x| 1.0 / (1.0 + (-x).exp())), table(f64::tanh));
            let (sig, tanh) = (Lut::new(&sig).unwrap(), Lut::new(&tanh).unwrap());
            let q: [&[i32]; 4] = core::array::from_fn(|k| &gates[37 * k..37 * k + units]);
            let (mut h, mut cs) = (std::vec![0i8; units], c[..units].to_vec());
            let (mut h_ref, mut c_ref) = (h.clone(), cs.clone());
            cell(sig, tanh, q, &mut h_ref, &mut c_ref);
            #[cfg(target_arch = "x86_64")]
            let done = crate::avx2::lstm_cell_i8(q, &mut h, &mut cs, sig.0, tanh.0);
            #[cfg(not(target_arch = "x86_64"))]
            let done = 0;
            #[cfg(target_arch = "x86_64")]
            if crate::avx2::available() {
                prop_assert_eq!(done, units / 8 * 8);
            }
            cell(sig, tanh, q.map(|g| &g[done..]), &mut h[done..], &mut cs[done..]);
            prop_assert_eq!(h, h_ref);
            prop_assert_eq!(cs, c_ref);
        }

        /// Prepared inputs (unsigned bytes with an offset on x86-64 with AVX-VNNI or AVX512-VNNI, else a
        /// block) through [`dot_prepared`] equal the portable kernel on the block of `x − zp`, bit for bit,
        /// for any zero point, 1 or 2 columns and 1-4 rows (four take the kernel, fewer the plain loop);
        /// so does every unsigned-byte variant the CPU runs on four rows.
        #[test]
        fn prepared_rows_match_portable(
            w in proptest::collection::vec(any::<u8>(), 4 * 256),
            x in proptest::collection::vec(any::<i8>(), 2 * 256),
            n in prop::sample::select(std::vec![32usize, 64, 96, 256, 36]),
            zp in prop::sample::select(std::vec![-128i32, 0, 127, -5]),
            cols in 1usize..=2,
            rows in 1usize..=4,
        ) {
            let columns: std::vec::Vec<&[i8]> = (0..cols).map(|c| &x[c * n..(c + 1) * n]).collect();
            let mut block = std::vec![0i16; block_len(n, cols)];
            let prepared = prepare(&mut block, n, &columns, zp).unwrap();
            #[cfg(target_arch = "x86_64")]
            if crate::avx2::DotBytes::get().is_some() {
                prop_assert_eq!(matches!(prepared, Prepared::Bytes(..)), n % 32 == 0);
            }
            let mut got = std::vec![[3i32, -9, 0, 0]; rows];
            dot_prepared(&w, n, &prepared, cols, &mut got);
            let mut reference = std::vec![0i16; block_len(n, cols)];
            load(&mut reference, n, &columns, LANES, |a| i16::from(a) - zp as i16);
            let mut want = [[3i32, -9, 0, 0]; 4];
            for (r, want) in want.iter_mut().enumerate() {
                dot_block_portable(&w[r * n..], n, &reference, &mut want[..cols]);
            }
            for (r, got) in got.iter().enumerate() {
                prop_assert_eq!(got, &want[r], "row {} of {}, n {}, {} columns, zp {}", r, rows, n, cols, zp);
            }
            #[cfg(target_arch = "x86_64")]
            if let Prepared::Bytes(bytes, offset) = prepared {
                for v in crate::avx2::DotBytes::all() {
                    let mut acc = [[3i32, -9, 0, 0]; 4];
                    prop_assert!(crate::avx2::rows4_u8_with(v, &w, n, bytes, cols, offset, &mut acc));
                    prop_assert_eq!(acc, want, "{:?}", v);
                }
            }
            #[cfg(target_arch = "x86_64")]
            if crate::avx2::DotBytes::all().count() < 2 {
                std::eprintln!("SKIPPED in part: this CPU lacks AVX-VNNI or AVX512-VNNI; that rows variant is not tested on it");
            }
        }

        /// Requantize-and-add (eight at a time with AVX2 on x86-64) equals the scalar definition, with a
        /// bias or in place, over the whole shift range and at i32's limits.
        #[test]
        fn requantize_add_matches_scalar(
            acc in proptest::collection::vec(prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX)], 0..40),
            base in proptest::collection::vec(prop_oneof![any::<i32>(), -1000i32..1000, Just(i32::MIN), Just(i32::MAX)], 40),
            mult: i32,
            shift in -31i32..=30,
            with_bias: bool,
        ) {
            let n = acc.len();
            let bias: std::vec::Vec<u8> = base.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut got = if with_bias { std::vec![0i32; n] } else { base[..n].to_vec() };
            requantize_add(&mut got, &acc, with_bias.then_some(I32s(&bias)), mult, shift);
            for i in 0..n {
                prop_assert_eq!(got[i], base[i].saturating_add(requantize(acc[i], mult, shift)), "at {}", i);
            }
        }

        /// Requantization equals its definition (the 64-bit product plus half, shifted, clamped), written
        /// here independently of its fast path, over every shift and the whole i32 range of both factors.
        #[test]
        fn requantize_matches_its_64_bit_definition(
            acc in prop_oneof![any::<i32>(), -300i32..300, Just(i32::MIN), Just(i32::MAX)],
            mult in prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX), Just(0)],
            shift in -31i32..=30,
        ) {
            let n = 31 - shift; // 1..=62
            let exact = (i128::from(acc) * i128::from(mult) + (1i128 << (n - 1))) >> n;
            let want = exact.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i32;
            prop_assert_eq!(requantize(acc, mult, shift), want, "acc {} mult {} shift {}", acc, mult, shift);
        }

        /// Requantization equals the exact product rounded, for the multipliers the quantizer makes.
        #[test]
        fn requantize_matches_exact_rounding(acc in -(1i32 << 24)..(1 << 24), mult in (1i32 << 30)..i32::MAX, shift in -20i32..8) {
            let exact = f64::from(acc) * f64::from(mult) * 2f64.powi(shift - 31);
            let got = requantize(acc, mult, shift);
            prop_assert!((f64::from(got) - exact).abs() <= 0.5 + 1e-9, "{got} vs {exact}");
        }

        /// Table sigmoid and tanh against libm, over the whole Q3.12 input range and beyond.
        #[test]
        fn tables_match_float(z in -(9i32 << GATE_FRAC)..(9 << GATE_FRAC)) {
            let (sig, tanh) = (table(|x| 1.0 / (1.0 + (-x).exp())), table(f64::tanh));
            let x = f64::from(z) / f64::from(1 << GATE_FRAC);
            let s = f64::from(Lut::new(&sig).unwrap().eval(z)) / 32767.0;
            let t = f64::from(Lut::new(&tanh).unwrap().eval(z)) / 32767.0;
            // interpolation error of a 1/32 grid: at most h²/8 · max|f''| ≈ 1e-4 for tanh, plus rounding
            prop_assert!((s - 1.0 / (1.0 + (-x).exp())).abs() < 4e-4, "sigmoid({x}) = {s}");
            prop_assert!((t - x.tanh()).abs() < 4e-4, "tanh({x}) = {t}");
        }
    }

    #[test]
    fn pixels_map_to_int8_around_zero_point() {
        assert_eq!((I8::pixel(0), I8::pixel(128), I8::pixel(255)), (-128, 0, 127));
    }
}
