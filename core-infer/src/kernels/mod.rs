//! The kernels: every inner loop of the network, by instruction set, and the one place that picks them.
//!
//! - [`reference`](mod@reference): the portable kernels, THE reference: every other kernel computes exactly what its
//!   reference computes (int8 bit for bit; f32 to rounding), which the shared suite (`tests.rs`) checks on
//!   every kernel set the machine runs.
//! - `x86_64/`: `sse2.rs` (the x86-64 baseline: the int8 block dot product), `avx2.rs` (AVX2 and FMA,
//!   with AVX-VNNI's `vpdpwssd` on i16 blocks: four-row dot products of both precisions, conv1 + pool,
//!   the LSTM gate requantization and cells), `vnni.rs` (`vpdpbusd` on unsigned bytes, AVX-VNNI or
//!   AVX512-VNNI: conv1 + pool, conv2 + pool and the LSTM products), `avx512.rs` (AVX-512F: the f32 four-row dot
//!   products on 512-bit registers, f32 conv2 + pool straight from the input columns); chosen at run time by CPUID (`cpufeatures`, no std).
//! - `arm/dsp.rs`: the Armv7E-M DSP kernels (SMLAD, SXTB16 through `asm!`; the `dsp` feature).
//! - `arm/mve.rs`: the Cortex-M55's Helium kernels (VMLADAVA on int8 through `asm!`; the `mve` feature, which
//!   keeps the DSP kernels for the rest): the conv windows and the LSTM products.
//!
//! This module is the selection point: each function below runs the fastest kernel this target (and CPU)
//! has for as much of the work as it takes, then finishes the rest (a partial last group, rows or units
//! past the kernel's step) with the reference, here and nowhere else. The lane and row constants of the
//! targets are here too. Kernels take slices and return numbers or fill slices: they know nothing of the
//! layers or the network ([`crate::int8`], `crate::f32` and [`crate::net`] call them).

use crate::block::{block_len, load};

#[cfg(all(feature = "dsp", target_arch = "arm"))]
mod arm;
/// The Helium kernels themselves, for the firmware's start-up self-test.
#[cfg(all(feature = "mve", target_arch = "arm"))]
pub use arm::mve;
pub mod reference;
#[cfg(test)]
mod tests;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;
/// Caps the x86-64 kernels at a level (SSE2, AVX2 without VNNI, everything): for measuring each on one CPU.
#[cfg(target_arch = "x86_64")]
pub use x86_64::{limit, Level};

pub use reference::{dot_block_portable, dot_rows2_portable, requantize, Lut, CELL_FRAC, GATE_FRAC};

/// An int8 conv 3×3 or dense layer as the kernels read it: the file's little-endian tensors, its output
/// zero point and lowest output. `crate::int8::LinearI8` holds one.
#[derive(Clone, Copy, Debug)]
pub struct QuantLinear<'a> {
    /// `[outputs, segments, cin]` int8 (a conv's segments are its 3×3 taps; a dense layer has one).
    pub w: &'a [u8],
    /// i32 `[outputs]` each: bias, requantization multiplier (Q31) and shift.
    pub bias: &'a [u8],
    pub mult: &'a [u8],
    pub shift: &'a [u8],
    pub outputs: usize,
    /// Inputs per segment: a conv's input channels.
    pub cin: usize,
    pub zp_out: i32,
    /// `zp_out` with ReLU, else −128.
    pub lo: i32,
}

/// Most weight rows a kernel takes in one pass over a block: the x86-64 AVX2 kernels then load each
/// input once for four rows. An LSTM's recurrent half hands its gate rows over four at a time (a whole
/// chunk of 64 with the Arm DSP kernels, whose many-rows pass takes them two at a time).
pub const KERNEL_ROWS: usize = 4;

/// Conv, dense and LSTM-input outputs computed in one pass: [`KERNEL_ROWS`] on x86-64; 64 with the Arm
/// DSP kernels, which loop over any number of rows without returning (the calls per row cost the
/// Cortex-M4 more than the rows' multiply-adds in conv1); one elsewhere.
pub const ROWS_AT_ONCE: usize = if cfg!(target_arch = "x86_64") {
    KERNEL_ROWS
} else if cfg!(all(feature = "dsp", target_arch = "arm")) {
    64
} else {
    1
};

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
    let done = arm::dsp::dot_block(w, k, block, acc);
    // SAFETY: SSE2 is part of the x86-64 baseline: every CPU this code runs on has it.
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    let done = unsafe { x86_64::sse2::dot_block(w, k, block, acc) };
    #[cfg(not(any(all(feature = "dsp", target_arch = "arm"), target_arch = "x86_64")))]
    let done = 0;
    if 4 * done < k {
        reference::portable_groups(w, k, block, acc, done);
    }
}

/// Two consecutive weight rows (`w[..k]` and `w[k..2k]`) against one column: each input load serves
/// both rows. Used for the LSTMs' recurrent half, which has a single column (the state).
#[inline]
pub fn dot_rows2(w: &[u8], k: usize, block: &[i16]) -> [i32; 2] {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    if let Some(acc) = arm::dsp::dot_rows2(w, k, block) {
        return acc;
    }
    let (mut a, mut b) = ([0], [0]);
    dot_block(w, k, block, &mut a);
    dot_block(w.get(k..).unwrap_or(&[]), k, block, &mut b);
    [a[0], b[0]]
}

/// `acc[r][c] += Σ_j w_r[j] · x_c[j]` for the weight rows `w_r = w[r·k ..][..k]` (`r < acc.len()`) and
/// the `cols` columns of `block`: what a layer computes for up to [`ROWS_AT_ONCE`] outputs. With the Arm
/// DSP kernels all rows go through one many-rows pass (`arm::dsp::rows`); on x86-64 with AVX2 four rows go
/// through one kernel pass (`avx2`); elsewhere rows go one at a time through [`dot_block`], or two at a
/// time through [`dot_rows2`] when there is one column. Always inlined, so that each caller's column
/// count picks its kernel variant at compile time.
#[inline(always)]
pub fn dot_rows(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    {
        // The rows the DSP pass cannot run (none on the seed's model; a kernel it declines) go through
        // the reference, once in the program rather than inlined at every call (flash).
        #[inline(never)]
        fn rest(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) {
            for (r, a) in acc.iter_mut().enumerate() {
                let row = w.get(r * k..).unwrap_or(&[]);
                dot_block_portable(row, k, block, a.get_mut(..cols).unwrap_or(&mut []));
            }
        }
        let done = arm::dsp::rows(w, k, block, cols, acc);
        if done < acc.len() {
            rest(w.get(done * k..).unwrap_or(&[]), k, block, cols, acc.get_mut(done..).unwrap_or(&mut []));
        }
    }
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    dot_rows_generic(w, k, block, cols, acc);
}

/// One 2×2 pooling window of a conv for every output channel of `q` (`out.len()` ≤ `q.outputs`): `out[o]`
/// = the int8 output (requantized, plus the zero point, clamped to `q.lo..=127`) of the largest over the
/// four columns `c` of `bias[o] + Σ w_o · x_c`, the columns' `k` inputs in `block`; `fast`: every shift
/// of `q` is in −31..=−2 ([`one_word_shifts`]). Runs where a target has the fused kernel (Arm DSP) and
/// returns whether it ran; the caller's generic loops (kernel pass,
/// then [`crate::net::Mac::finish_pooled`]) are its reference.
#[inline(always)]
pub fn pooled_rows(q: &QuantLinear<'_>, k: usize, block: &[i16], out: &mut [i8], fast: bool) -> bool {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    return arm::dsp::pooled_rows(q, k, block, out, fast);
    #[cfg(not(all(feature = "dsp", target_arch = "arm")))]
    {
        let _ = (q, k, block, out, fast);
        false
    }
}

/// A whole conv 3×3 + 2×2 max-pool column (`net::conv_pool`'s arguments but the block, its results exactly)
/// by a kernel of this target where it has one for the layer: the Helium window kernels with the `mve`
/// feature on Arm (one for many input channels, one for a single one). Returns whether it ran. (x86-64's two are chosen in `crate::int8`, per layer.)
#[inline]
pub fn conv_pool_int8(q: &QuantLinear<'_>, zp_in: i32, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    return arm::mve::conv_pool(q, zp_in, cols, out) || arm::mve::conv1_pool(q, zp_in, cols, out);
    #[cfg(not(all(feature = "mve", target_arch = "arm")))]
    {
        let _ = (q, zp_in, cols, out);
        false
    }
}

/// Whether every shift of `q` (its `outputs` of them) takes [`requantize`]'s one-word form (−31..=−2):
/// the fused conv window ([`pooled_rows`]) requires it.
pub fn one_word_shifts(q: &QuantLinear<'_>) -> bool {
    let shifts = crate::format::le::Le::<i32>::new(q.shift);
    q.shift.len() >= 4 * q.outputs && (0..q.outputs).all(|o| (-31..=-2).contains(&shifts.get(o)))
}

/// [`dot_rows`] but the DSP pass: AVX2 where the CPU has it, else row pairs or single rows.
#[cfg_attr(all(feature = "dsp", target_arch = "arm"), allow(dead_code))]
#[inline(always)]
fn dot_rows_generic(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) {
    #[cfg(target_arch = "x86_64")]
    if let Ok(acc4) = <&mut [[i32; 4]; KERNEL_ROWS]>::try_from(&mut *acc) {
        let done = x86_64::avx2::rows4_i8(w, k, block, cols, acc4);
        if done > 0 {
            if 4 * done < k {
                for (r, a) in acc4.iter_mut().enumerate() {
                    let a = a.get_mut(..cols).unwrap_or(&mut []);
                    reference::portable_groups(w.get(r * k..).unwrap_or(&[]), k, block, a, done);
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
/// other as unsigned bytes `x ⊕ 0x80` with the offset `128 + zp` (`x86_64::vnni::rows_u8`: half the bytes, no
/// widening), or with the Cortex-M55's Helium kernels the columns one after the other as they are, int8,
/// with their zero point (`arm::mve::rows`).
pub enum Prepared<'b> {
    Block(&'b [i16]),
    #[cfg(target_arch = "x86_64")]
    Bytes(&'b [u8], i32),
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    Int8(&'b [i8], i32),
}

/// Prepares `columns` (`n` int8 inputs each, zero point `zp`) in `block` (at least [`block_len`]`(n,
/// columns.len())` slots; `None` if shorter): as bytes where [`dot_prepared`] has the kernel for them (x86-64
/// with a VNNI extension, `n` a multiple of 32; Helium, 1 to 4 columns), else as a block.
pub fn prepare<'b>(block: &'b mut [i16], n: usize, columns: &[&[i8]], zp: i32) -> Option<Prepared<'b>> {
    let block = block.get_mut(..block_len(n, columns.len()))?;
    #[cfg(all(feature = "mve", target_arch = "arm"))]
    if n > 0 && (1..=4).contains(&columns.len()) {
        let bytes = bytemuck::cast_slice_mut::<i16, i8>(block).get_mut(..n * columns.len())?;
        for (dst, x) in bytes.chunks_exact_mut(n).zip(columns) {
            dst.copy_from_slice(x.get(..n)?);
        }
        return Some(Prepared::Int8(bytes, zp));
    }
    #[cfg(target_arch = "x86_64")]
    if n.is_multiple_of(32) && x86_64::vnni::DotBytes::get().is_some() {
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
/// plain loop over the bytes (fewer rows; never on the seed's model); the Helium kernel for int8 columns,
/// else the definition (rows shorter than the weights say; never on a checked model).
#[inline(always)]
pub fn dot_prepared(w: &[u8], k: usize, x: &Prepared<'_>, cols: usize, acc: &mut [[i32; 4]]) {
    match x {
        // (x86-64: four rows per kernel pass, whatever the caller hands over)
        #[cfg(target_arch = "x86_64")]
        Prepared::Block(block) => {
            for (i, acc) in acc.chunks_mut(KERNEL_ROWS).enumerate() {
                dot_rows(w.get(i * KERNEL_ROWS * k..).unwrap_or(&[]), k, block, cols, acc);
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Prepared::Block(block) => dot_rows(w, k, block, cols, acc),
        #[cfg(all(feature = "mve", target_arch = "arm"))]
        &Prepared::Int8(bytes, zp) => {
            if !arm::mve::rows(w, k, bytes, cols, zp, acc) {
                for (r, a) in acc.iter_mut().enumerate() {
                    let row = w.get(r * k..(r + 1) * k).unwrap_or(&[]);
                    for (a, x) in a.iter_mut().zip(bytes.chunks_exact(k.max(1))).take(cols) {
                        let dot = row.iter().zip(x).map(|(&w, &x)| i32::from(w as i8) * (i32::from(x) - zp));
                        *a = dot.fold(*a, i32::wrapping_add);
                    }
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        &Prepared::Bytes(bytes, offset) => {
            if x86_64::vnni::rows_u8(w, k, bytes, cols, offset, acc) {
                return;
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
    if arm::dsp::widen(block, cols, col, k0, x, zp) {
        return;
    }
    crate::block::put(block, cols, col, k0, x, LANES, |a| i16::from(a) - zp as i16);
}

/// [`crate::block::copy_groups`] of int8 kernel inputs (i16): the DSP kernel into four-column blocks
/// where it applies (whole pairs of groups, with the `dsp` feature on Arm), else the portable copy, its
/// reference. Not inlined (measured faster so, on the Cortex-M4).
#[inline(never)]
pub fn copy_inputs(block: &mut [i16], cols: usize, col: usize, k0: usize, src: &[i16]) {
    #[cfg(all(feature = "dsp", target_arch = "arm"))]
    if cols == 4 && arm::dsp::copy_groups4(block, col, k0, src) {
        return;
    }
    crate::block::copy_groups(block, cols, col, k0, src);
}

/// One weight row against one column, as [`dot_rows2`] returns it (for an odd last row).
#[cfg_attr(all(feature = "dsp", target_arch = "arm"), allow(dead_code))]
fn dot_rows1(w: &[u8], k: usize, block: &[i16]) -> [i32; 2] {
    let mut a = [0];
    dot_block(w, k, block, &mut a);
    [a[0], 0]
}

/// LSTM gate rows handled together: on x86-64 their sums are collected ([`COLLECTED`]) and requantized
/// by [`requantize_add`], eight at a time (a multiple of eight: the AVX2 step).
pub const GATE_CHUNK: usize = 64;

/// Gate rows of the recurrent half per kernel call: a whole chunk with the Arm DSP kernels and on x86-64,
/// whose kernels loop over the rows themselves (four at a time on x86-64: [`dot_prepared`]), else
/// [`KERNEL_ROWS`].
pub const RECUR_ROWS: usize =
    if cfg!(any(all(feature = "dsp", target_arch = "arm"), target_arch = "x86_64")) { GATE_CHUNK } else { KERNEL_ROWS };

/// Gate rows of the input half per kernel call: a whole chunk on x86-64 (as [`RECUR_ROWS`]), else
/// [`ROWS_AT_ONCE`].
pub const INPUT_ROWS: usize = if cfg!(target_arch = "x86_64") { GATE_CHUNK } else { ROWS_AT_ONCE };

/// Gate sums collected per chunk: all of them on x86-64; none elsewhere, where each sum is requantized
/// right after its kernel pass (collecting them cost the Cortex-M4 1.6 M instructions per inference when
/// measured, before the many-rows DSP pass; that figure read 1 M then, counted at 25 per tick, not 40).
pub const COLLECTED: usize = if cfg!(target_arch = "x86_64") { GATE_CHUNK } else { 0 };

/// `dst[i] = base.saturating_add(requantize(acc[i], mult, shift))` with `base` = `bias[i]` (little-endian
/// i32) when given, else `dst[i]`: LSTM gate pre-activations from their accumulators. Eight at a time with
/// AVX2 on x86-64; the rest by [`reference::requantize_add`].
pub fn requantize_add(dst: &mut [i32], acc: &[i32], bias: Option<&[u8]>, mult: i32, shift: i32) {
    #[cfg(target_arch = "x86_64")]
    let done = x86_64::avx2::requantize_add(dst, acc, bias, mult, shift);
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    let (dst, acc) = (dst.get_mut(done..).unwrap_or(&mut []), acc.get(done..).unwrap_or(&[]));
    reference::requantize_add(dst, acc, bias.map(|b| b.get(4 * done..).unwrap_or(&[])), mult, shift);
}

/// The LSTM state update ([`reference::cell`]): eight units at a time with AVX2 on x86-64, the rest (and
/// every unit elsewhere) by the reference.
pub fn cell(sigmoid: Lut<'_>, tanh: Lut<'_>, [i, f, g, o]: [&[i32]; 4], h: &mut [i8], c: &mut [i16]) {
    #[cfg(target_arch = "x86_64")]
    let done = x86_64::avx2::lstm_cell_i8([i, f, g, o], h, c, sigmoid.bytes(), tanh.bytes());
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    let rest = [i, f, g, o].map(|q| q.get(done..).unwrap_or(&[]));
    let (h, c) = (h.get_mut(done..).unwrap_or(&mut []), c.get_mut(done..).unwrap_or(&mut []));
    reference::cell(sigmoid, tanh, rest, h, c);
}

/// `acc[r][c] += Σ w_r · x_c` for the f32 weight rows `w_r` (`k` each, little-endian bytes from `w`) and
/// the `cols` columns of `block`: all rows in one AVX-512F call, or four rows per AVX2/FMA pass, on x86-64
/// CPUs that have them, else (and for a partial last group) [`reference::rows_f32_from`] row by row.
#[cfg(feature = "f32")]
pub fn rows_f32(w: &[u8], k: usize, block: &[f32], cols: usize, acc: &mut [[f32; 4]]) {
    #[cfg(target_arch = "x86_64")]
    {
        let done = x86_64::avx512::rows_f32(w, k, block, cols, acc);
        if done > 0 {
            return reference::rows_f32_from(w, k, block, cols, acc, done);
        }
        // four rows per AVX2 pass
        for (i, acc) in acc.chunks_mut(KERNEL_ROWS).enumerate() {
            let w = w.get(4 * i * KERNEL_ROWS * k..).unwrap_or(&[]);
            let done = <&mut [[f32; 4]; KERNEL_ROWS]>::try_from(&mut *acc)
                .map_or(0, |acc4| x86_64::avx2::rows4_f32(w, k, block, cols, acc4));
            reference::rows_f32_from(w, k, block, cols, acc, done);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    reference::rows_f32_from(w, k, block, cols, acc, 0);
}

/// The f32 LSTM cell on the gates `[i | f | g | o]` (`4 · h.len()` values): eight units at a time with
/// AVX2/FMA on x86-64, the rest with libm ([`reference::lstm_cell_f32`]).
#[cfg(feature = "f32")]
pub fn lstm_cell_f32(gates: &[f32], h: &mut [f32], c: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    let done = x86_64::avx2::lstm_cell(gates, h, c);
    #[cfg(not(target_arch = "x86_64"))]
    let done = 0;
    reference::lstm_cell_f32(gates, h, c, done);
}
