//! Cortex-M55 (Armv8.1-M) Helium kernels, behind the `mve` feature (built with `-C target-cpu=cortex-m55`).
//!
//! One instruction does the work: `VMLADAVA.S8 Rda, Qn, Qm` multiplies 16 int8 weights by 16 int8 inputs
//! and adds the 16 products to a scalar i32 accumulator. The inputs stay int8 as they are (no widening
//! to i16, unlike the DSP kernels' blocks): `Σ w · (x − zp)` is computed as `Σ w · x − zp · Σ w`, with
//! `Σ w` from `VADDVA.S8` (once per conv column; skipped for a zero point 0); in wrapping i32 arithmetic the two are equal, so every result
//! is the reference kernels' bit for bit (the firmware's self-test compares them at every start). The
//! loops are tail-predicated (`DLSTP.8` / `LETP`): any length, the last 16-byte step masked, no bytes read
//! past the slices.
//!
//! Here: [`rows`], weight rows against 1 to 4 int8 columns (the LSTM products, through
//! [`crate::kernels::dot_prepared`]), and [`conv_pool`], a conv 3×3 + 2×2 max-pool window by window
//! (conv2). Per 16 inputs and four columns: one weight load, four input loads and four `VMLADAVA`, 10
//! instructions with the loop's `LETP` for 64 multiply-adds (the DSP kernels take 52).
#![allow(unsafe_code)]

use core::arch::asm;

use crate::format::le::Le;
use crate::kernels::reference::requantize;
use crate::kernels::QuantLinear;

/// `Σ_j a[j] · b_i[j]` over `j < k` for one vector of signed bytes against four: one weight row against
/// four columns, or (the product being symmetric) one column against four weight rows.
///
/// # Safety
/// `k ≥ 1`; `a` and each `b[i]` are valid for `k` byte reads.
#[inline(always)]
unsafe fn one_by_four(a: *const u8, k: usize, b: [*const u8; 4]) -> [i32; 4] {
    let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
    // SAFETY (caller): the loop reads `k` bytes from each pointer, the last step predicated to what is left.
    // VMLADAVA takes even accumulator registers: r0, r2, r4, r8.
    unsafe {
        asm!(
            "dlstp.8 lr, {k}",
            "2:",
            "vldrb.8 q0, [{a}], #16",
            "vldrb.8 q1, [{b0}], #16",
            "vmladava.s8 r0, q0, q1",
            "vldrb.8 q2, [{b1}], #16",
            "vmladava.s8 r2, q0, q2",
            "vldrb.8 q3, [{b2}], #16",
            "vmladava.s8 r4, q0, q3",
            "vldrb.8 q1, [{b3}], #16",
            "vmladava.s8 r8, q0, q1",
            "letp lr, 2b",
            k = in(reg) k,
            a = inout(reg) a => _,
            b0 = inout(reg) b[0] => _,
            b1 = inout(reg) b[1] => _,
            b2 = inout(reg) b[2] => _,
            b3 = inout(reg) b[3] => _,
            inout("r0") a0,
            inout("r2") a1,
            inout("r4") a2,
            inout("r8") a3,
            out("lr") _,
            out("q0") _,
            out("q1") _,
            out("q2") _,
            out("q3") _,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// `Σ_j w[j]` over `j < k` (signed bytes).
///
/// # Safety
/// `k ≥ 1`; `w` is valid for `k` byte reads.
#[inline(always)]
unsafe fn weight_sum(w: *const u8, k: usize) -> i32 {
    let mut sum = 0i32;
    // SAFETY (caller): as in `one_by_four`.
    unsafe {
        asm!(
            "dlstp.8 lr, {k}",
            "2:",
            "vldrb.8 q0, [{w}], #16",
            "vaddva.s8 r0, q0",
            "letp lr, 2b",
            k = in(reg) k,
            w = inout(reg) w => _,
            inout("r0") sum, // (an even register, as VADDVA requires)
            out("lr") _,
            out("q0") _,
            options(nostack, readonly),
        );
    }
    sum
}

/// `dst[..n] = src[..n]` by 16-byte vectors, or `dst[..n] = value` with no `src`.
///
/// # Safety
/// `n ≥ 1`; `dst` valid for `n` byte writes, `src` (when given) for `n` byte reads.
#[inline(always)]
unsafe fn copy_or_fill(dst: *mut i8, src: Option<*const i8>, value: i8, n: usize) {
    // SAFETY (caller): the loops write (and read) `n` bytes, the last step predicated to what is left.
    unsafe {
        match src {
            Some(src) => asm!(
                "dlstp.8 lr, {n}",
                "2:",
                "vldrb.8 q0, [{src}], #16",
                "vstrb.8 q0, [{dst}], #16",
                "letp lr, 2b",
                n = in(reg) n,
                src = inout(reg) src => _,
                dst = inout(reg) dst => _,
                out("lr") _,
                out("q0") _,
                options(nostack),
            ),
            None => asm!(
                "vdup.8 q0, {v}",
                "dlstp.8 lr, {n}",
                "2:",
                "vstrb.8 q0, [{dst}], #16",
                "letp lr, 2b",
                v = in(reg) i32::from(value),
                n = in(reg) n,
                dst = inout(reg) dst => _,
                out("lr") _,
                out("q0") _,
                options(nostack),
            ),
        }
    }
}

/// `acc[r][c] += Σ_j w_r[j] · (x_c[j] − zp)` (wrapping) for the weight rows `w_r = w[r·k ..][..k]`
/// (`r < acc.len()`) and the columns `x_c = x[c·k ..][..k]` (`c < cols`): what
/// [`crate::kernels::dot_prepared`] computes on columns prepared as int8. One column with zero point 0
/// (the LSTMs' recurrent half) goes four rows per pass, each input load serving them all; otherwise row by
/// row against all the columns. Returns false, doing nothing, unless `k ≥ 1`, `cols` is 1 to 4 and the
/// slices hold what the shapes say.
pub fn rows(w: &[u8], k: usize, x: &[i8], cols: usize, zp: i32, acc: &mut [[i32; 4]]) -> bool {
    let fits = |len: usize, n: usize| n.checked_mul(k).is_some_and(|need| len >= need);
    if k == 0 || !(1..=4).contains(&cols) || !fits(x.len(), cols) || !fits(w.len(), acc.len()) {
        return false;
    }
    let wp = w.as_ptr();
    let column = |c: usize| x.get(c.min(cols - 1) * k..).unwrap_or(&[]).as_ptr().cast::<u8>();
    let mut r = 0;
    if cols == 1 && zp == 0 {
        while r + 4 <= acc.len() {
            // SAFETY: rows r..r + 4 end within `w` (checked above), and the column holds `k` bytes.
            let sums = unsafe { one_by_four(column(0), k, core::array::from_fn(|i| wp.add((r + i) * k))) };
            for (a, s) in acc.iter_mut().skip(r).zip(sums) {
                a[0] = a[0].wrapping_add(s);
            }
            r += 4;
        }
    }
    for (r, a) in acc.iter_mut().enumerate().skip(r) {
        // (missing columns repeat the last one: their sums are dropped)
        // SAFETY: row r ends within `w`, and every column pointer has `k` bytes after it (checked above).
        let sums = unsafe { one_by_four(wp.add(r * k), k, core::array::from_fn(column)) };
        // SAFETY: as above.
        let offset = if zp == 0 { 0 } else { zp.wrapping_mul(unsafe { weight_sum(wp.add(r * k), k) }) };
        for (a, s) in a.iter_mut().zip(sums).take(cols) {
            *a = a.wrapping_add(s.wrapping_sub(offset));
        }
    }
    true
}

/// Longest patch (`9 · cin`) [`conv_pool`] takes: its four patches live on the stack (2.3 KiB; on
/// Armv8-M the stack limit register catches an overflow whatever the frame's size).
pub const CONV_MAX_K: usize = 9 * 64;

/// Most output channels [`conv_pool`] takes (their offsets `bias − zp · Σ w` live on the stack).
pub const CONV_MAX_OUT: usize = 128;

/// A conv 3×3 + 2×2 max-pool for one pooled column, as `net::conv_pool` takes it (`cols`: the input
/// columns x − 1 ..= x + 2, `None` outside the image; `out`: the pooled rows' channels) and with exactly
/// its results: per window, the four 3×3×cin patches cut as int8 (the input zero point `zp_in` outside
/// the image, whose `x − zp_in` is the generic path's zero), then per output channel one pass over its
/// weights against the four patches, the largest sum requantized. Returns false, doing nothing, for
/// fewer than 16 input channels (conv1: the DSP kernels take its nine-tap rows in fewer instructions),
/// patches longer than [`CONV_MAX_K`], more than [`CONV_MAX_OUT`] outputs or tensors shorter than the
/// shapes say.
pub fn conv_pool(q: &QuantLinear<'_>, zp_in: i32, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
    let (n, cin) = (q.outputs, q.cin);
    let k = 9 * cin;
    if n == 0 || n > CONV_MAX_OUT || cin < 16 || k > CONV_MAX_K || q.w.len() < n * k {
        return false;
    }
    if q.bias.len() < 4 * n || q.mult.len() < 4 * n || q.shift.len() < 4 * n {
        return false;
    }
    let (mult, shift) = (Le::<i32>::new(q.mult), Le::<i32>::new(q.shift));
    // Each channel's sum before its products: bias − zp · Σ w (wrapping), once per column.
    let mut base = [0i32; CONV_MAX_OUT];
    for ((o, b), bias) in base.iter_mut().enumerate().zip(Le::<i32>::new(q.bias).from(0)).take(n) {
        // SAFETY: output o's weights are `w[o·k ..][..k]`, within `w` (checked above).
        *b = bias.wrapping_sub(zp_in.wrapping_mul(unsafe { weight_sum(q.w.as_ptr().add(o * k), k) }));
    }
    let pad = zp_in as i8; // zp checked to be in -128..=127 at load
    let mut patches = [[0i8; CONV_MAX_K]; 4];
    for (i, out_row) in out.chunks_exact_mut(n).enumerate() {
        // Patch j is conv position (row 2i + j % 2, column j / 2 of the window); its tap (ky, kx) is input
        // row 2i + j % 2 + ky − 1 of column j / 2 + kx.
        for (j, patch) in patches.iter_mut().enumerate() {
            for (seg, dst) in patch.chunks_exact_mut(cin).take(9).enumerate() {
                let (y, col) = (2 * i + j % 2 + seg / 3, cols.get(j / 2 + seg % 3).copied().flatten());
                let src = y.checked_sub(1).and_then(|iy| col?.get(iy * cin..(iy + 1) * cin));
                // SAFETY: `dst` and `src` (when there is one) hold `cin` ≥ 16 bytes.
                unsafe { copy_or_fill(dst.as_mut_ptr(), src.map(<[i8]>::as_ptr), pad, cin) };
            }
        }
        let p = patches.each_ref().map(|p| p.as_ptr().cast::<u8>());
        for ((o, v), &base) in out_row.iter_mut().enumerate().zip(&base) {
            // SAFETY: output o's weights are within `w` (checked above); each patch holds CONV_MAX_K ≥ k bytes.
            let sums = unsafe { one_by_four(q.w.as_ptr().add(o * k), k, p) };
            let best = sums.iter().map(|&s| base.wrapping_add(s)).fold(i32::MIN, i32::max);
            *v = q.zp_out.saturating_add(requantize(best, mult.get(o), shift.get(o))).clamp(q.lo, 127) as i8;
        }
    }
    true
}

/// Most output channels [`conv1_pool`] takes (its per-column table lives on the stack: 48 bytes each).
pub const CONV1_MAX_OUT: usize = 64;

/// Vectors per group of four output channels in [`conv1_pool`]'s table: the nine taps' weights, then the
/// bias, the multiplier and the rounding shift (`shift + 1`, negative: VRSHL shifts right by its size).
const CONV1_GROUP: usize = 12;

/// [`conv_pool`] for a one-input-channel conv (conv1: nine taps per patch, too short a row for
/// `VMLADAVA`), vectorized over output channels instead: four channels per vector, the four patches of a
/// window in four i32 accumulators, each tap one weight load, one `LDM` of the four patches' inputs and
/// four `VMLA` (vector by scalar); then the 2×2 max, the bias and the one-word requantization in vector
/// form (`VMULH` for the product's high word, `VRSHL` for the rounding shift: [`requantize`]'s first
/// branch exactly), the zero point by `VQADD` (saturating, as `saturating_add`), the clamp, and a
/// narrowing store of the four int8 outputs. Returns false, doing nothing, unless the layer has one input
/// channel, a multiple of 4 outputs up to [`CONV1_MAX_OUT`], every shift in −31..=−2 and tensors as long as
/// the shapes say.
pub fn conv1_pool(q: &QuantLinear<'_>, zp_in: i32, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
    let n = q.outputs;
    if q.cin != 1 || n == 0 || !n.is_multiple_of(4) || n > CONV1_MAX_OUT || q.w.len() < 9 * n {
        return false;
    }
    if q.bias.len() < 4 * n || q.mult.len() < 4 * n || q.shift.len() < 4 * n {
        return false;
    }
    let (bias, mult, shift) = (Le::<i32>::new(q.bias), Le::<i32>::new(q.mult), Le::<i32>::new(q.shift));
    if !(0..n).all(|o| (-31..=-2).contains(&shift.get(o))) {
        return false;
    }
    // The table, group by group: [tap 0 .. tap 8 weights, bias, mult, shift + 1], four lanes each.
    let mut table = [[0i32; 4]; CONV1_GROUP * CONV1_MAX_OUT / 4];
    for (g, group) in table.chunks_exact_mut(CONV1_GROUP).take(n / 4).enumerate() {
        for lane in 0..4 {
            let o = 4 * g + lane;
            let taps = q.w.get(9 * o..9 * o + 9).unwrap_or(&[]).iter().map(|&w| i32::from(w as i8));
            for (v, value) in group.iter_mut().zip(taps.chain([bias.get(o), mult.get(o), shift.get(o) + 1])) {
                if let Some(v) = v.get_mut(lane) {
                    *v = value;
                }
            }
        }
    }
    // x[t][j]: tap t (row t / 3, column t % 3 around it) of patch j (conv position row 2i + j % 2,
    // column j / 2 of the window), as x − zp (0 outside the image).
    let mut x = [[0i32; 4]; 9];
    for (i, out_row) in out.chunks_exact_mut(n).enumerate() {
        // near[c][r]: input row 2i − 1 + r of column c, less the zero point.
        let mut near = [[0i32; 4]; 4];
        for (near, col) in near.iter_mut().zip(cols) {
            for (r, v) in near.iter_mut().enumerate() {
                if let Some(&a) = (2 * i + r).checked_sub(1).and_then(|y| col?.get(y)) {
                    *v = i32::from(a) - zp_in;
                }
            }
        }
        for (t, xt) in x.iter_mut().enumerate() {
            for (j, v) in xt.iter_mut().enumerate() {
                *v = near.get(j / 2 + t % 3).and_then(|c| c.get(j % 2 + t / 3)).copied().unwrap_or(0);
            }
        }
        // SAFETY: `table` holds n / 4 ≥ 1 groups of CONV1_GROUP vectors, read in order; `x` holds the
        // 36 inputs, read once per group; `out_row` holds n bytes, four written per group.
        unsafe {
            asm!(
                "dls lr, {groups}",
                "2:",
                "mov {xp}, {x}",
                // tap 0 starts the accumulators, taps 1 to 8 add to them
                "ldm {xp}!, {{r0, r1, r2, r3}}",
                "vldrw.u32 q4, [{tab}], #16",
                "vmul.i32 q0, q4, r0",
                "vmul.i32 q1, q4, r1",
                "vmul.i32 q2, q4, r2",
                "vmul.i32 q3, q4, r3",
                ".rept 8",
                "ldm {xp}!, {{r0, r1, r2, r3}}",
                "vldrw.u32 q4, [{tab}], #16",
                "vmla.i32 q0, q4, r0",
                "vmla.i32 q1, q4, r1",
                "vmla.i32 q2, q4, r2",
                "vmla.i32 q3, q4, r3",
                ".endr",
                // the 2×2 max, the bias, then requantize(acc, mult, shift) for shift in −31..=−2
                "vmax.s32 q0, q0, q1",
                "vmax.s32 q2, q2, q3",
                "vmax.s32 q0, q0, q2",
                "vldrw.u32 q4, [{tab}], #16",
                "vadd.i32 q0, q0, q4",
                "vldrw.u32 q4, [{tab}], #16",
                "vmulh.s32 q0, q0, q4",
                "vldrw.u32 q4, [{tab}], #16",
                "vrshl.s32 q0, q0, q4",
                // zp_out + r (saturating), clamped to lo..=127, stored as bytes
                "vqadd.s32 q0, q0, {zp}",
                "vdup.32 q4, {lo}",
                "vmax.s32 q0, q0, q4",
                "vdup.32 q4, {hi}",
                "vmin.s32 q0, q0, q4",
                "vstrb.32 q0, [r5], #4",
                "le lr, 2b",
                groups = in(reg) n / 4,
                x = in(reg) x.as_ptr(),
                xp = out(reg) _,
                tab = inout(reg) table.as_ptr() => _,
                // (a narrowing store takes a low base register)
                inout("r5") out_row.as_mut_ptr() => _,
                zp = in(reg) q.zp_out,
                lo = in(reg) q.lo,
                hi = in(reg) 127i32,
                out("r0") _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                out("lr") _,
                out("q0") _,
                out("q1") _,
                out("q2") _,
                out("q3") _,
                out("q4") _,
                options(nostack),
            );
        }
    }
    true
}
