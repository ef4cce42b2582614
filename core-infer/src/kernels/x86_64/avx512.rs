//! The 512-bit kernels (AVX-512F): the f32 dot products of `avx2.rs` with sixteen lanes per FMA. On a CPU
//! with two 512-bit FMA units (Intel Xeon from Skylake-SP on) that is twice the multiply-adds per cycle;
//! they are chosen within [`super::Level::Best`] only, so the benches can measure them against the
//! 256-bit kernels (`Level::Ymm`) on one CPU. Sums equal the 256-bit kernels' up to rounding (another
//! order).
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
    for (i, acc) in acc.chunks_exact_mut(4).enumerate() {
        let Ok(acc) = <&mut [[f32; 4]; 4]>::try_from(acc) else { return };
        // SAFETY (caller): rows 4i.. are within the bounds `rows_f32` checked.
        unsafe {
            let w = w.add(4 * i * k);
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
