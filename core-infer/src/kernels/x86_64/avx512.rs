//! The 512-bit kernels (AVX-512F): the f32 dot products of `avx2.rs` with sixteen lanes per FMA, and f32
//! conv 3×3 + pool straight from the input columns ([`conv_pool_f32`]). On a CPU with two 512-bit FMA
//! units (Intel Xeon from Skylake-SP on) that is twice the multiply-adds per cycle; they are chosen within
//! [`super::Level::Best`] only, so the benches can measure them against the 256-bit kernels
//! (`Level::Ymm`) on one CPU. Sums equal the 256-bit kernels' up to rounding (another order).
//!
//! No int8 kernel here: `vpdpbusd` on 512-bit registers (conv2 + pool with 2 and 4 rows per pass, the LSTM
//! rows) measured no faster than on 256-bit ones on the Xeon of 2026-12-03 (the whole int8 model 1.30 ms
//! against 1.29 ms), so the 256-bit `vnni.rs` kernels stay the best int8 path.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::avx2::groups;

cpufeatures::new!(cpuid_avx512f, "avx512f");

/// Whether this CPU (and OS: ZMM state) runs AVX-512F code, within the [`super::limit`].
pub fn available() -> bool {
    cpuid_avx512f::get() && super::allowed(super::Level::Best)
}

/// `acc[r][c] += Σ w_r[j] · x_c[j]` for the rows of little-endian f32 weights `w_r` (`w` in bytes, rows `4k`
/// bytes apart; `acc.len()` of them, a multiple of four) and 1, 2 or 4 columns of the f32 block, four rows
/// per pass as `avx2::dot_rows4_f32` computes them (the same bounds for the last four: see
/// `avx2::groups`), sixteen lanes per FMA. The LSTMs hand over a whole chunk of gate rows, so the call is
/// paid once per chunk. Returns the groups of four it ran on every row (0 when the CPU lacks AVX-512F, for
/// another column count or a row count not a multiple of four; the caller finishes the rest).
pub fn rows_f32(w: &[u8], k: usize, block: &[f32], cols: usize, acc: &mut [[f32; 4]]) -> usize {
    let rows = acc.len();
    // (the last four rows' bounds; the rows before them lie wholly before those)
    let before = rows.saturating_sub(4) * k;
    let groups = groups((w.len() / 4).saturating_sub(before), k, block.len(), cols);
    if groups == 0 || rows == 0 || !rows.is_multiple_of(4) || !available() || !matches!(cols, 1 | 2 | 4) {
        return 0;
    }
    // SAFETY: the CPU has AVX-512F (checked above); every read below is within the bounds `groups`
    // checked: row r's groups at `4(r·k + g)` floats and the block's `4·groups·cols` floats.
    unsafe { rows_body(w.as_ptr().cast::<f32>(), k, block.as_ptr(), cols, groups, acc) };
    groups
}

/// Each four rows of `acc` through the column count's kernel.
#[target_feature(enable = "avx512f")]
unsafe fn rows_body(w: *const f32, k: usize, x: *const f32, cols: usize, groups: usize, acc: &mut [[f32; 4]]) {
    // One column (the LSTMs' recurrent products): sixteen rows at a time where there are sixteen, one
    // reduction for all their sums.
    let mut done = 0;
    if cols == 1 {
        for acc in acc.chunks_exact_mut(16) {
            let Ok(acc) = <&mut [[f32; 4]; 16]>::try_from(acc) else { return };
            // SAFETY (caller): these rows are within the bounds `rows_f32` checked.
            unsafe { f32_one_column16(w.add(done * k), k, x, groups, acc) };
            done += 16;
        }
    }
    let Some(acc) = acc.get_mut(done..) else { return };
    for (i, acc) in acc.chunks_exact_mut(4).enumerate() {
        let Ok(acc) = <&mut [[f32; 4]; 4]>::try_from(acc) else { return };
        // SAFETY (caller): rows done + 4i.. are within the bounds `rows_f32` checked.
        unsafe {
            let w = w.add((done + 4 * i) * k);
            match cols {
                1 => f32_one_column(w, k, x, groups, acc),
                2 => f32_two_columns(w, k, x, groups, acc),
                _ => f32_four_columns(w, k, x, groups, acc),
            }
        }
    }
}

/// One column: the block is the input itself, four groups per register; the last register's lanes past
/// the groups are masked off (masked loads read nothing there).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn f32_one_column(w: *const f32, k: usize, x: *const f32, groups: usize, acc: &mut [[f32; 4]; 4]) {
    // SAFETY (caller): the bounds of `rows_f32`; lanes past `4 · groups` are masked off.
    unsafe {
        let mut s = [_mm512_setzero_ps(); 4];
        let n = 4 * groups; // floats per row
        for at in (0..n).step_by(16) {
            let mask: __mmask16 = if n - at >= 16 { 0xffff } else { (1u16 << (n - at)) - 1 };
            let xv = _mm512_maskz_loadu_ps(mask, x.add(at));
            for (r, s) in s.iter_mut().enumerate() {
                *s = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mask, w.add(r * k + at)), *s);
            }
        }
        for (a, s) in acc.iter_mut().zip(s) {
            a[0] += _mm512_reduce_add_ps(s);
        }
    }
}

/// [`f32_one_column`] for sixteen rows: sixteen sums, added into `acc[r][0]` through one [`sum16`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn f32_one_column16(w: *const f32, k: usize, x: *const f32, groups: usize, acc: &mut [[f32; 4]; 16]) {
    // SAFETY (caller): the bounds of `rows_f32`; lanes past `4 · groups` are masked off.
    unsafe {
        let mut s = [[_mm512_setzero_ps(); 4]; 4]; // row 4a + b in s[a][b]
        let n = 4 * groups; // floats per row
        for at in (0..n).step_by(16) {
            let mask: __mmask16 = if n - at >= 16 { 0xffff } else { (1u16 << (n - at)) - 1 };
            let xv = _mm512_maskz_loadu_ps(mask, x.add(at));
            for (a, s) in s.iter_mut().enumerate() {
                for (b, s) in s.iter_mut().enumerate() {
                    *s = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mask, w.add((4 * a + b) * k + at)), *s);
                }
            }
        }
        let mut sums = [0f32; 16];
        _mm512_storeu_ps(sums.as_mut_ptr(), sum16(s));
        for (a, sum) in acc.iter_mut().zip(sums) {
            a[0] += sum;
        }
    }
}

/// Two columns: a group is eight slots (four inputs of column 0, then of column 1), so a register holds
/// two groups, and each row's eight weights of those groups are spread to match, `[w0..4, w0..4, w4..8,
/// w4..8]`. An odd last group takes the lower half.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn f32_two_columns(w: *const f32, k: usize, x: *const f32, groups: usize, acc: &mut [[f32; 4]; 4]) {
    // SAFETY (caller): the bounds of `rows_f32`: group g's slots are `x[8g..8g + 8]`, its weights
    // `w[r·k + 4g..][..4]`.
    unsafe {
        let mut s = [_mm512_setzero_ps(); 4];
        for g in (0..groups / 2).map(|p| 2 * p) {
            let xv = _mm512_loadu_ps(x.add(8 * g));
            for (r, s) in s.iter_mut().enumerate() {
                let wv = _mm512_castps256_ps512(_mm256_loadu_ps(w.add(r * k + 4 * g)));
                *s = _mm512_fmadd_ps(xv, _mm512_shuffle_f32x4::<0b01_01_00_00>(wv, wv), *s);
            }
        }
        if groups % 2 == 1 {
            let g = groups - 1;
            let xv = _mm512_maskz_loadu_ps(0x00ff, x.add(8 * g));
            for (r, s) in s.iter_mut().enumerate() {
                *s = _mm512_fmadd_ps(xv, _mm512_broadcast_f32x4(_mm_loadu_ps(w.add(r * k + 4 * g))), *s);
            }
        }
        for (a, s) in acc.iter_mut().zip(s) {
            // the two groups' halves added: [column 0's four partial sums, column 1's]
            let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(s)));
            let h = _mm256_add_ps(_mm512_castps512_ps256(s), high);
            a[0] += sum4(_mm256_castps256_ps128(h));
            a[1] += sum4(_mm256_extractf128_ps::<1>(h));
        }
    }
}

/// Four columns: a group is sixteen slots (four inputs of each column), one register, against the row's
/// four weights in every quarter. The groups alternate between two sets of sums, so that eight FMA
/// chains hide the FMA latency.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn f32_four_columns(w: *const f32, k: usize, x: *const f32, groups: usize, acc: &mut [[f32; 4]; 4]) {
    // SAFETY (caller): the bounds of `rows_f32`: group g's slots are `x[16g..16g + 16]`.
    unsafe {
        let (mut even, mut odd) = ([_mm512_setzero_ps(); 4], [_mm512_setzero_ps(); 4]);
        for g in (0..groups / 2).map(|p| 2 * p) {
            group(w, k, x, g, &mut even);
            group(w, k, x, g + 1, &mut odd);
        }
        if groups % 2 == 1 {
            group(w, k, x, groups - 1, &mut even);
        }
        for ((a, s0), s1) in acc.iter_mut().zip(even).zip(odd) {
            let s = _mm512_add_ps(s0, s1);
            // each quarter's four lanes summed into all four of them, then one lane per quarter
            let s = _mm512_add_ps(s, _mm512_permute_ps::<0b10_11_00_01>(s));
            let s = _mm512_add_ps(s, _mm512_permute_ps::<0b01_00_11_10>(s));
            let mut lanes = [0f32; 16];
            _mm512_storeu_ps(lanes.as_mut_ptr(), s);
            for (a, lane) in a.iter_mut().zip(lanes.iter().step_by(4)) {
                *a += lane;
            }
        }
    }
}

/// Group `g` of four columns into the four rows' sums.
///
/// # Safety
/// As for [`f32_four_columns`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn group(w: *const f32, k: usize, x: *const f32, g: usize, s: &mut [__m512; 4]) {
    // SAFETY (caller): group g's slots and weights are within the bounds `rows_f32` checked.
    unsafe {
        let xv = _mm512_loadu_ps(x.add(16 * g));
        for (r, s) in s.iter_mut().enumerate() {
            *s = _mm512_fmadd_ps(xv, _mm512_broadcast_f32x4(_mm_loadu_ps(w.add(r * k + 4 * g))), *s);
        }
    }
}

/// The sum of the four lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn sum4(v: __m128) -> f32 {
    let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps::<0b01>(v, v)))
}

/// Input channels [`conv_pool_f32`] takes at most (the padding rows it reads are this long).
pub const CONV_MAX_CIN: usize = 64;

/// Conv 3×3 (`w` `[outputs, 3, 3, cin]` and `bias`, little-endian f32) + 2×2 max-pool (+ ReLU when
/// `relu`) of one pooled output column, as `net::conv_pool` computes it, but read straight from the four
/// input columns `cols` (`rows_in × cin` each; `None` is padding): no patches are gathered. Each pass
/// computes four output channels of one pooling window, sixteen accumulators (four channels × four
/// positions), sixteen input channels per FMA: per step four weight and four input loads feed sixteen
/// FMAs, where the gathered dot products load five times per four. The four channels' weights then
/// serve [`WINDOW_GROUP`] windows while they are in L1. The sixteen sums come out of one
/// transposing reduction; the pool's maximum is taken before the bias is added (the same value but for
/// rounding). Returns false, doing nothing, without AVX-512F, for `cin` not a multiple of 16 or above
/// [`CONV_MAX_CIN`], outputs not a multiple of four, or slices that do not fit.
pub fn conv_pool_f32(
    w: &[u8],
    bias: &[u8],
    outputs: usize,
    cin: usize,
    relu: bool,
    cols: [Option<&[f32]>; 4],
    out: &mut [f32],
) -> bool {
    let n = outputs;
    let Some(rows_in) = cols.iter().flatten().next().map(|c| c.len() / cin.max(1)) else { return false };
    let windows = out.len() / n.max(1);
    let fits = w.len() >= 4 * 9 * cin * n
        && bias.len() >= 4 * n
        && out.len() == windows * n
        && 2 * windows <= rows_in
        && cols.iter().flatten().all(|c| c.len() == rows_in * cin);
    let shapes = n > 0 && n.is_multiple_of(4) && cin > 0 && cin.is_multiple_of(16) && cin <= CONV_MAX_CIN;
    if !shapes || !fits || !available() {
        return false;
    }
    // SAFETY: the CPU has AVX-512F; the bounds were checked above.
    unsafe { conv_pool_body(w.as_ptr().cast::<f32>(), bias, n, cin, relu, cols, rows_in, out) };
    true
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
unsafe fn conv_pool_body(
    w: *const f32,
    bias: &[u8],
    n: usize,
    cin: usize,
    relu: bool,
    cols: [Option<&[f32]>; 4],
    rows_in: usize,
    out: &mut [f32],
) {
    let padding = [0f32; CONV_MAX_CIN];
    let k = 9 * cin;
    let bias_at = |o: usize| bias.get(4 * o..4 * o + 4).and_then(|v| v.try_into().ok()).map_or(0.0, f32::from_le_bytes);
    let windows = out.len() / n;
    // Windows a few at a time, each four channels' weights (4 · 9 · cin floats) then run over all of them:
    // the weights stay in L1 instead of streaming all channels' from L2 once per window.
    for first in (0..windows).step_by(WINDOW_GROUP) {
        let group = WINDOW_GROUP.min(windows - first);
        // Position j of window i is row 2i + j % 2 of column j / 2; its tap (ky, kx) reads input row
        // 2i + j % 2 + ky − 1 of column j / 2 + kx (padding outside).
        let mut at = [[padding.as_ptr(); 36]; WINDOW_GROUP];
        for (i, at) in (first..).zip(at.iter_mut().take(group)) {
            for (p, at) in at.iter_mut().enumerate() {
                let (j, ky, kx) = (p / 9, p % 9 / 3, p % 3);
                let row = (2 * i + j % 2 + ky).checked_sub(1).filter(|&r| r < rows_in);
                if let (Some(row), Some(col)) = (row, cols.get(j / 2 + kx).copied().flatten()) {
                    // SAFETY: row < rows_in and the column holds rows_in · cin floats (checked by the caller).
                    *at = unsafe { col.as_ptr().add(row * cin) };
                }
            }
        }
        for o in (0..n).step_by(4) {
            for (i, at) in (first..).zip(at.iter().take(group)) {
                let mut acc = [[_mm512_setzero_ps(); 4]; 4]; // [channel][position]
                for tap in 0..9 {
                    for v in (0..cin).step_by(16) {
                        // SAFETY: every `at` points at cin readable floats; channel o + 3 < n, whose
                        // weights the caller checked.
                        unsafe {
                            let mut x = [_mm512_setzero_ps(); 4];
                            for (x, at) in x.iter_mut().zip(at.iter().skip(tap).step_by(9)) {
                                *x = _mm512_loadu_ps(at.add(v));
                            }
                            for (r, acc) in acc.iter_mut().enumerate() {
                                let wv = _mm512_loadu_ps(w.add((o + r) * k + tap * cin + v));
                                for (a, x) in acc.iter_mut().zip(x) {
                                    *a = _mm512_fmadd_ps(wv, x, *a);
                                }
                            }
                        }
                    }
                }
                let sums = sum16(acc);
                // the window's largest of each channel's four positions, in every lane of its quarter
                let best = _mm512_max_ps(sums, _mm512_permute_ps::<0b10_11_00_01>(sums));
                let best = _mm512_max_ps(best, _mm512_permute_ps::<0b01_00_11_10>(best));
                let mut lanes = [0f32; 16];
                // SAFETY: `lanes` holds sixteen f32.
                unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), best) };
                let Some(out) = out.get_mut(i * n + o..i * n + o + 4) else { return };
                for ((r, out), best) in out.iter_mut().enumerate().zip(lanes.iter().step_by(4)) {
                    let v = best + bias_at(o + r);
                    *out = if relu { v.max(0.0) } else { v };
                }
            }
        }
    }
}

/// Pooling windows [`conv_pool_f32`] runs each four channels' weights over.
const WINDOW_GROUP: usize = 16;

/// The sixteen lane sums of `acc[r][j]`, as lane `4r + j` of one register: each row's four registers
/// folded to one per 128-bit quarter ([`fold4`]), then the quarters of the four rows transposed and added.
#[inline]
#[target_feature(enable = "avx512f")]
fn sum16(acc: [[__m512; 4]; 4]) -> __m512 {
    let [q0, q1, q2, q3] = [fold4(acc[0]), fold4(acc[1]), fold4(acc[2]), fold4(acc[3])];
    // quarters: [q0.0, q0.1, q1.0, q1.1] + [q0.2, q0.3, q1.2, q1.3], the same of q2 and q3
    let u01 =
        _mm512_add_ps(_mm512_shuffle_f32x4::<0b01_00_01_00>(q0, q1), _mm512_shuffle_f32x4::<0b11_10_11_10>(q0, q1));
    let u23 =
        _mm512_add_ps(_mm512_shuffle_f32x4::<0b01_00_01_00>(q2, q3), _mm512_shuffle_f32x4::<0b11_10_11_10>(q2, q3));
    // [u01.0, u01.2, u23.0, u23.2] + [u01.1, u01.3, u23.1, u23.3]: quarter r is row r's four sums
    _mm512_add_ps(_mm512_shuffle_f32x4::<0b10_00_10_00>(u01, u23), _mm512_shuffle_f32x4::<0b11_01_11_01>(u01, u23))
}

/// Per 128-bit quarter, the sums of that quarter's four lanes of `a`, `b`, `c` and `d`, in that order.
#[inline]
#[target_feature(enable = "avx512f")]
fn fold4([a, b, c, d]: [__m512; 4]) -> __m512 {
    // [a0+a2, b0+b2, a1+a3, b1+b3] per quarter, the same of c and d, then [Σa, Σb, Σc, Σd]
    let ab = _mm512_castps_pd(_mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b)));
    let cd = _mm512_castps_pd(_mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d)));
    _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(ab, cd)), _mm512_castpd_ps(_mm512_unpackhi_pd(ab, cd)))
}
