//! x86-64 kernels with SSE2 (part of every x86-64 CPU, so no detection): PMADDWD multiplies eight i16
//! pairs and adds neighbours, the x86 twin of SMLAD. Per two groups of four weights: the eight weight bytes
//! sign-extended once, then per column one load and one PMADDWD.
//! Exact integer arithmetic like the others, checked against the portable kernel by the proptest.
#![allow(unsafe_code)]

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
///
/// # Safety
/// SSE2 must be available: it is on every x86-64 CPU.
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
