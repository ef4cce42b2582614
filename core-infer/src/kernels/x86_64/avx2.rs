//! x86-64 kernels for CPUs with AVX2 and FMA (int8 also with AVX-VNNI where the CPU has it), chosen at
//! run time (CPUID through `cpufeatures`, which needs no `std`). Each computes exactly what the portable
//! code computes (int8 bit for bit; f32 to rounding), which proptests check:
//! - dot products: four weight rows against a [block](crate::block) of 1, 2 or 4 columns in one pass, so
//!   every input load serves four rows and every weight load up to four columns (int8 `vpmaddwd` or
//!   `vpdpwssd` on i16 blocks, f32 FMA); with AVX-VNNI, int8 inputs as unsigned bytes against int8 weights
//!   (`vpdpbusd`, 32 products per instruction: [`super::vnni::rows_u8`], and conv2 + pool in [`super::vnni::conv_pool_u8`]);
//! - conv1 + pool, eight output channels per register ([`conv1_pool_i8`], [`conv1_pool_f32`]), with the
//!   int8 requantization eight channels at a time (with AVX-VNNI the int8 one is
//!   [`super::vnni::conv1_pool_u8`]'s);
//! - the LSTMs' gate requantization ([`requantize_add`], in 32-bit lanes for the usual multipliers below a
//!   half) and cells ([`lstm_cell_i8`], [`lstm_cell_f32`]), eight units at a time.
//!
//! The network calls them through the selection functions of `kernels` (`mod.rs`), which fall back to the
//! reference elsewhere and finish what a kernel leaves (a row's partial last group of four, the units past a multiple of eight).
//!
//! Block layout recap: group `g` of column `c` is the four slots at `(g · cols + c) · 4`. With two
//! columns or more, each 128-bit half of a register holds one group of two neighbouring columns ("a unit");
//! a 256-bit register pairs group `g` (low half) with group `g + 2` (high half), so that one weight load
//! of four groups, split in-lane (`vpshufd`, no lane crossing), serves both halves.
#![allow(unsafe_code)]

use crate::format::names::LUT_LEN;
use crate::kernels::QuantLinear as ConvI8;
use core::arch::x86_64::*;

cpufeatures::new!(cpuid_avx2_fma, "avx2", "fma");

/// Whether this CPU (and OS) runs AVX2 and FMA code; CPUID is read once, then cached.
pub fn available() -> bool {
    cpuid_avx2_fma::get() && super::allowed(super::Level::Avx2)
}

/// Whether the CPU itself has AVX-VNNI ([`vnni`]), whatever the [`super::limit`].
pub(super) fn cpu_vnni() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering};
    static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 no, 2 yes
    match STATE.load(Ordering::Relaxed) {
        0 => {
            // (CPUID exists on every x86-64 CPU; leaf 7 is only read when the CPU reports it.)
            let has = cpuid_avx2_fma::get() && __cpuid(0).eax >= 7 && __cpuid_count(7, 1).eax & (1 << 4) != 0;
            STATE.store(if has { 2 } else { 1 }, Ordering::Relaxed);
            has
        }
        state => state == 2,
    }
}

/// Whether the CPU also has AVX-VNNI (`vpdpwssd`: multiply i16 pairs, add neighbours and accumulate in
/// one instruction). `cpufeatures` does not know this feature, so CPUID leaf 7, sub-leaf 1, EAX bit 4 is
/// read here (once; the OS side, YMM state, is what [`available`] checked).
pub fn vnni() -> bool {
    cpu_vnni() && super::allowed(super::Level::Ymm)
}

/// `acc + Σ` of neighbouring i16 products of `a` and `b`, per i32 lane: two instructions with AVX2, one
/// with AVX-VNNI. The kernels are written once over it and instantiated in a function compiled for each.
trait Madd {
    /// # Safety
    /// Only inlined into a function compiled with the implementor's features.
    unsafe fn madd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i;
    /// # Safety
    /// As [`Madd::madd`].
    unsafe fn madd128(acc: __m128i, a: __m128i, b: __m128i) -> __m128i;
}

struct Avx2;
pub(super) struct AvxVnni;

impl Madd for Avx2 {
    #[inline(always)]
    unsafe fn madd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY (caller): AVX2 is enabled where this is inlined.
        unsafe { _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)) }
    }
    #[inline(always)]
    unsafe fn madd128(acc: __m128i, a: __m128i, b: __m128i) -> __m128i {
        // SAFETY (caller): as above.
        unsafe { _mm_add_epi32(acc, _mm_madd_epi16(a, b)) }
    }
}

impl Madd for AvxVnni {
    #[inline(always)]
    unsafe fn madd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY (caller): AVX-VNNI is enabled where this is inlined.
        unsafe { _mm256_dpwssd_avx_epi32(acc, a, b) }
    }
    #[inline(always)]
    unsafe fn madd128(acc: __m128i, a: __m128i, b: __m128i) -> __m128i {
        // SAFETY (caller): as above.
        unsafe { _mm_dpwssd_avx_epi32(acc, a, b) }
    }
}

/// The groups of four a kernel runs on four rows of `k` weights at stride `k` (`w_len` of them) and a
/// block of `block_len` slots for `cols` columns: all of them, the last one whole even if `k` is not a
/// multiple of 4 when the weights run on that far (inside a tensor they do: the extra weights then meet
/// the block's zero padding, as in the Cortex-M4 kernel); else the whole groups only; 0 if the block is
/// too short. Every read of the kernels below stays within these bounds.
pub(super) fn groups(w_len: usize, k: usize, block_len: usize, cols: usize) -> usize {
    let fits = |groups: usize| w_len >= 3 * k + 4 * groups && block_len >= 4 * groups * cols;
    [k.div_ceil(4), k / 4].into_iter().find(|&g| fits(g)).unwrap_or(0)
}

/// `acc[r][c] += Σ w_r[j] · x_c[j]` for the four int8 weight rows `w_r = w[r·k ..]` over their whole
/// groups of four (see [`groups`]), and returns how many groups it ran (0 when `cols` is not 1, 2 or 4
/// or the slices are too short; the caller finishes the rest). Wrapping i32 sums, like the portable kernel.
///
/// # Safety
/// The CPU must have AVX2 ([`available`]).
#[target_feature(enable = "avx2")]
pub unsafe fn dot_rows4_i8(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]; 4]) -> usize {
    // SAFETY: AVX2 is enabled here.
    unsafe { i8_rows4::<Avx2>(w, k, block, cols, acc) }
}

/// [`dot_rows4_i8`] with AVX-VNNI.
///
/// # Safety
/// The CPU must have AVX2 and AVX-VNNI ([`vnni`]).
#[target_feature(enable = "avx2,avxvnni")]
pub unsafe fn dot_rows4_i8_vnni(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]; 4]) -> usize {
    // SAFETY: AVX2 and AVX-VNNI are enabled here.
    unsafe { i8_rows4::<AvxVnni>(w, k, block, cols, acc) }
}

/// The body of both int8 entry points, inlined into each (so it compiles with their features).
#[inline(always)]
unsafe fn i8_rows4<M: Madd>(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]; 4]) -> usize {
    let groups = groups(w.len(), k, block.len(), cols);
    if groups == 0 {
        return 0;
    }
    // SAFETY: `groups` checked every read: four rows of `groups · 4` bytes at stride `k` and `groups · 4 ·
    // cols` block slots; the caller's features cover the intrinsics.
    unsafe {
        match cols {
            1 => i8_one_column::<M>(w.as_ptr(), k, block.as_ptr(), groups, acc),
            2 => i8_units::<M, 1>(w.as_ptr(), k, block.as_ptr(), groups, acc),
            4 => i8_units::<M, 2>(w.as_ptr(), k, block.as_ptr(), groups, acc),
            _ => return 0,
        }
    }
    groups
}

/// Four weights at `p` (one group), sign-extended to i16 (the block's lane order on x86 is the natural
/// one), in both 64-bit halves.
#[inline(always)]
unsafe fn i8_group(p: *const u8) -> __m128i {
    // SAFETY (caller): `p` has 4 readable bytes; AVX2 is enabled where this is inlined.
    unsafe {
        let v = _mm_cvtepi8_epi16(_mm_cvtsi32_si128(p.cast::<i32>().read_unaligned()));
        _mm_unpacklo_epi64(v, v)
    }
}

/// Sixteen weights at `p` (four groups) as i16: groups 0, 1 in the low half, 2, 3 in the high.
#[inline(always)]
unsafe fn i8_groups4(p: *const u8) -> __m256i {
    // SAFETY (caller): `p` has 16 readable bytes; AVX2 is enabled where this is inlined.
    unsafe { _mm256_cvtepi8_epi16(_mm_loadu_si128(p.cast())) }
}

/// The sum of the four i32 lanes of `v` in lanes 0, 1 (first column) and 2, 3 (second).
#[inline(always)]
unsafe fn pair_sums(v: __m128i) -> [i32; 2] {
    // SAFETY (caller): AVX2 is enabled where this is inlined.
    unsafe {
        let s = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b10_11_00_01));
        [_mm_cvtsi128_si32(s), _mm_extract_epi32(s, 2)]
    }
}

/// One column: four groups are one 256-bit register of inputs and, per row, one of weights.
#[inline(always)]
unsafe fn i8_one_column<M: Madd>(w: *const u8, k: usize, x: *const i16, groups: usize, acc: &mut [[i32; 4]; 4]) {
    // SAFETY (all reads): within the bounds `dot_rows4_i8` checked.
    unsafe {
        let mut s = [_mm256_setzero_si256(); 4];
        let chunks = groups / 4;
        for q in 0..chunks {
            let xv = _mm256_loadu_si256(x.add(16 * q).cast());
            for (r, s) in s.iter_mut().enumerate() {
                *s = M::madd(*s, xv, i8_groups4(w.add(r * k + 16 * q)));
            }
        }
        let mut t = [_mm_setzero_si128(); 4];
        for g in 4 * chunks..groups {
            let xv = _mm_loadl_epi64(x.add(4 * g).cast());
            for (r, t) in t.iter_mut().enumerate() {
                *t = M::madd128(*t, xv, i8_group(w.add(r * k + 4 * g)));
            }
        }
        for ((a, s), t) in acc.iter_mut().zip(s).zip(t) {
            let v = _mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)), t);
            let [lo, hi] = pair_sums(v);
            a[0] = a[0].wrapping_add(lo.wrapping_add(hi));
        }
    }
}

/// `2 · U` columns: unit `u` (columns `2u`, `2u + 1`) of groups `g` and `g + 2` share a register.
#[inline(always)]
unsafe fn i8_units<M: Madd, const U: usize>(
    w: *const u8,
    k: usize,
    x: *const i16,
    groups: usize,
    acc: &mut [[i32; 4]; 4],
) {
    let stride = 8 * U; // slots per group
                        // SAFETY (all reads): within the bounds `dot_rows4_i8` checked.
    unsafe {
        let mut s = [[_mm256_setzero_si256(); U]; 4];
        let chunks = groups / 4;
        for q in 0..chunks {
            let base = x.add(4 * stride * q);
            let mut even = [_mm256_setzero_si256(); U]; // groups 0 and 2 of the four
            let mut odd = [_mm256_setzero_si256(); U]; // groups 1 and 3
            for (u, (even, odd)) in even.iter_mut().zip(&mut odd).enumerate() {
                let at = |g: usize| base.add(g * stride + 8 * u).cast::<__m128i>();
                *even = _mm256_loadu2_m128i(at(2), at(0));
                *odd = _mm256_loadu2_m128i(at(3), at(1));
            }
            for (r, s) in s.iter_mut().enumerate() {
                let wv = i8_groups4(w.add(r * k + 16 * q));
                let (w02, w13) = (_mm256_shuffle_epi32(wv, 0b01_00_01_00), _mm256_shuffle_epi32(wv, 0b11_10_11_10));
                for ((s, &even), &odd) in s.iter_mut().zip(&even).zip(&odd) {
                    *s = M::madd(M::madd(*s, even, w02), odd, w13);
                }
            }
        }
        let mut t = [[_mm_setzero_si128(); U]; 4];
        for g in 4 * chunks..groups {
            for (r, t) in t.iter_mut().enumerate() {
                let wv = i8_group(w.add(r * k + 4 * g));
                for (u, t) in t.iter_mut().enumerate() {
                    let xv = _mm_loadu_si128(x.add(g * stride + 8 * u).cast());
                    *t = M::madd128(*t, xv, wv);
                }
            }
        }
        for ((a, s), t) in acc.iter_mut().zip(s).zip(t) {
            for (u, (s, t)) in s.into_iter().zip(t).enumerate() {
                let v = _mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1)), t);
                for (j, sum) in pair_sums(v).into_iter().enumerate() {
                    if let Some(a) = a.get_mut(2 * u + j) {
                        *a = a.wrapping_add(sum);
                    }
                }
            }
        }
    }
}

/// The f32 twin of [`dot_rows4_i8`]: four rows of little-endian f32 weights (`w` in bytes, rows `4k`
/// bytes apart) against 1, 2 or 4 block columns, with FMA. Returns the groups it ran (see [`groups`]; a
/// non-finite weight just past a row would make that row's sum NaN, which only a broken model has).
///
/// # Safety
/// The CPU must have AVX2 and FMA ([`available`]).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn dot_rows4_f32(w: &[u8], k: usize, block: &[f32], cols: usize, acc: &mut [[f32; 4]; 4]) -> usize {
    let groups = groups(w.len() / 4, k, block.len(), cols);
    if groups == 0 {
        return 0;
    }
    // SAFETY: as for the int8 kernel, in units of f32.
    unsafe {
        let w = w.as_ptr().cast::<f32>();
        match cols {
            1 => f32_one_column(w, k, block.as_ptr(), groups, acc),
            2 => f32_units::<1>(w, k, block.as_ptr(), groups, acc),
            4 => f32_units::<2>(w, k, block.as_ptr(), groups, acc),
            _ => return 0,
        }
    }
    groups
}

/// The sums of the low and the high four lanes of `v`.
#[inline]
#[target_feature(enable = "avx2")]
fn half_sums(v: __m256) -> [f32; 2] {
    let s = _mm256_hadd_ps(v, v);
    let s = _mm256_hadd_ps(s, s);
    [_mm256_cvtss_f32(s), _mm_cvtss_f32(_mm256_extractf128_ps(s, 1))]
}

/// One column: two groups per register.
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_one_column(w: *const f32, k: usize, x: *const f32, groups: usize, acc: &mut [[f32; 4]; 4]) {
    // SAFETY (all reads, unaligned loads): within the bounds `dot_rows4_f32` checked.
    unsafe {
        let mut s = [_mm256_setzero_ps(); 4];
        let pairs = groups / 2;
        for p in 0..pairs {
            let xv = _mm256_loadu_ps(x.add(8 * p));
            for (r, s) in s.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w.add(r * k + 8 * p)), *s);
            }
        }
        let mut t = [_mm_setzero_ps(); 4];
        if groups % 2 == 1 {
            let g = groups - 1;
            let xv = _mm_loadu_ps(x.add(4 * g));
            for (r, t) in t.iter_mut().enumerate() {
                *t = _mm_fmadd_ps(xv, _mm_loadu_ps(w.add(r * k + 4 * g)), *t);
            }
        }
        for ((a, s), t) in acc.iter_mut().zip(s).zip(t) {
            let [lo, hi] = half_sums(s);
            let t = _mm_hadd_ps(t, t);
            a[0] += lo + hi + _mm_cvtss_f32(_mm_hadd_ps(t, t));
        }
    }
}

/// `2 · U` columns: a group of unit `u` (columns `2u`, `2u + 1`) is one register; its four weights are
/// loaded into both halves.
#[target_feature(enable = "avx2,fma")]
unsafe fn f32_units<const U: usize>(w: *const f32, k: usize, x: *const f32, groups: usize, acc: &mut [[f32; 4]; 4]) {
    let stride = 8 * U; // slots per group
                        // SAFETY (all reads, unaligned loads): within the bounds `dot_rows4_f32` checked.
    unsafe {
        let mut s = [[_mm256_setzero_ps(); U]; 4];
        for g in 0..groups {
            let mut xv = [_mm256_setzero_ps(); U];
            for (u, xv) in xv.iter_mut().enumerate() {
                *xv = _mm256_loadu_ps(x.add(g * stride + 8 * u));
            }
            for (r, s) in s.iter_mut().enumerate() {
                let p = w.add(r * k + 4 * g);
                let wv = _mm256_loadu2_m128(p, p);
                for (s, &xv) in s.iter_mut().zip(&xv) {
                    *s = _mm256_fmadd_ps(xv, wv, *s);
                }
            }
        }
        for (a, s) in acc.iter_mut().zip(s) {
            for (u, s) in s.into_iter().enumerate() {
                for (j, sum) in half_sums(s).into_iter().enumerate() {
                    if let Some(a) = a.get_mut(2 * u + j) {
                        *a += sum;
                    }
                }
            }
        }
    }
}

/// `e^x` in eight lanes, for the f32 LSTM cell: `x = n · ln 2 + r` with `|r| ≤ ln 2 / 2`, `e^r` by its
/// Taylor polynomial to `r^7` (truncation below 2^-24 relative), `2^n` built in the exponent bits.
/// `x` is clamped to [−87.3, 88.3], where `2^n` stays a normal float, so results are finite and positive.
#[inline(always)]
unsafe fn exp8(x: __m256) -> __m256 {
    // SAFETY (caller): AVX2 and FMA are enabled where this is inlined.
    unsafe {
        let set = _mm256_set1_ps;
        let x = _mm256_min_ps(_mm256_max_ps(x, set(-87.3)), set(88.3));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
            x,
            set(core::f32::consts::LOG2_E),
        ));
        // ln 2 in two parts, the first exact in few bits, so that n · LN2_HI is exact (Cody and Waite)
        let r = _mm256_fnmadd_ps(n, set(0.693_145_75), x);
        let r = _mm256_fnmadd_ps(n, set(1.428_606_8e-6), r);
        let mut p = set(1.0 / 5040.0);
        for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
            p = _mm256_fmadd_ps(p, r, set(c));
        }
        let two_n = _mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)));
        _mm256_mul_ps(p, _mm256_castsi256_ps(two_n))
    }
}

/// `1 / (1 + e^−x)` in eight lanes.
#[inline(always)]
unsafe fn sigmoid8(x: __m256) -> __m256 {
    // SAFETY (caller): as for `exp8`.
    unsafe {
        let one = _mm256_set1_ps(1.0);
        _mm256_div_ps(one, _mm256_add_ps(one, exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))))
    }
}

/// `tanh x = 2 σ(2x) − 1` in eight lanes (absolute error a few 1e-8, which is what the cell needs).
#[inline(always)]
unsafe fn tanh8(x: __m256) -> __m256 {
    // SAFETY (caller): as for `exp8`.
    unsafe {
        let two = _mm256_set1_ps(2.0);
        _mm256_fmsub_ps(two, sigmoid8(_mm256_mul_ps(two, x)), _mm256_set1_ps(1.0))
    }
}

/// The f32 LSTM cell update for the first multiple of 8 units: `c = σ(f) c + σ(i) tanh(g)`,
/// `h = σ(o) tanh(c)`, from the gate pre-activations `gates = [i | f | g | o]` (`h.len()` each). Returns
/// the units done; the caller updates the rest (libm's scalar functions).
///
/// # Safety
/// The CPU must have AVX2 and FMA ([`available`]).
#[target_feature(enable = "avx2,fma")]
pub unsafe fn lstm_cell_f32(gates: &[f32], h: &mut [f32], c: &mut [f32]) -> usize {
    let n = h.len();
    let units = if c.len() == n && gates.len() >= 4 * n { n - n % 8 } else { 0 };
    // SAFETY: every load and store below is within `gates[..4n]`, `h[..n]` and `c[..n]` (checked above).
    unsafe {
        let (gp, hp, cp) = (gates.as_ptr(), h.as_mut_ptr(), c.as_mut_ptr());
        for u in (0..units).step_by(8) {
            let gate = |q: usize| _mm256_loadu_ps(gp.add(q * n + u));
            let (i, f, g, o) = (sigmoid8(gate(0)), sigmoid8(gate(1)), tanh8(gate(2)), sigmoid8(gate(3)));
            let cell = _mm256_fmadd_ps(f, _mm256_loadu_ps(cp.add(u)), _mm256_mul_ps(i, g));
            _mm256_storeu_ps(cp.add(u), cell);
            _mm256_storeu_ps(hp.add(u), _mm256_mul_ps(o, tanh8(cell)));
        }
    }
    units
}

/// Most output channels the conv kernels take: their per-channel constants (and conv1's weights, rearranged
/// for the kernel) live on the stack.
pub const CONV_MAX_OUT: usize = 64;

/// conv1 + ReLU + 2×2 max-pool for `windows` pooling windows, all output channels at once: the
/// portable path's results (`int8::LinearI8::finish` of the window's largest accumulator) bit for bit.
/// `patches(i)` is window `i`'s four 3×3 patches (`net::conv1_patches`, inputs minus the zero point); `out`
/// gets `outputs` values per window. The portable path passes the 9 taps of one channel through a dot
/// product kernel 4 rows at a time; here eight channels share a register, a tap pair is one broadcast
/// and one `vpmaddwd`, the pooling is `vpmaxsd` and the requantization runs eight channels at a time.
/// Returns false, doing nothing, without AVX2, for more than [`CONV_MAX_OUT`] channels or a count not
/// a multiple of eight, or when a slice is too short.
pub fn conv1_pool_i8(l: &ConvI8<'_>, windows: usize, patches: impl Fn(usize) -> [[i16; 9]; 4], out: &mut [i8]) -> bool {
    let n = l.outputs;
    if !available() || l.cin != 1 || !channels_fit(l) || out.len() < windows * n {
        return false;
    }
    // SAFETY: the CPU has the features each variant is compiled for; the slices were checked above.
    unsafe {
        if vnni() {
            conv1_vnni(l, windows, &patches, out);
        } else {
            conv1_avx2(l, windows, &patches, out);
        }
    }
    true
}

/// Whether a conv's output channels suit the kernels (a multiple of eight, at most [`CONV_MAX_OUT`]) and
/// its tensors hold them.
pub(super) fn channels_fit(l: &ConvI8<'_>) -> bool {
    let n = l.outputs;
    let tensors = l.w.len() >= 9 * l.cin * n && [l.bias, l.mult, l.shift].iter().all(|t| t.len() >= 4 * n);
    n != 0 && n.is_multiple_of(8) && n <= CONV_MAX_OUT && tensors
}

#[target_feature(enable = "avx2")]
unsafe fn conv1_avx2(l: &ConvI8<'_>, windows: usize, patches: &impl Fn(usize) -> [[i16; 9]; 4], out: &mut [i8]) {
    // SAFETY: AVX2 is enabled here; the caller checked the slices.
    unsafe { conv1_body::<Avx2>(l, windows, patches, out) }
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn conv1_vnni(l: &ConvI8<'_>, windows: usize, patches: &impl Fn(usize) -> [[i16; 9]; 4], out: &mut [i8]) {
    // SAFETY: AVX2 and AVX-VNNI are enabled here; the caller checked the slices.
    unsafe { conv1_body::<AvxVnni>(l, windows, patches, out) }
}

/// Eight channels' requantization constants (see `reference::requantize`): the multipliers, and per
/// 64-bit lane (even channels, odd channels) the shift `n`, the rounding term `2^(n−1)` and `2^(63−n)`.
#[derive(Clone, Copy)]
pub(super) struct Requant8 {
    mult: __m256i,
    n: [__m256i; 2],
    round: [__m256i; 2],
    unbias: [__m256i; 2],
}

impl Requant8 {
    /// # Safety
    /// AVX2 enabled where inlined; `mult` and `shift` hold 32 bytes from `at`.
    #[inline(always)]
    pub(super) unsafe fn new(mult: &[u8], shift: &[u8], at: usize) -> Self {
        // SAFETY (caller): as documented.
        unsafe {
            let load = |t: &[u8]| _mm256_loadu_si256(t.as_ptr().add(at).cast());
            Self::of(load(mult), load(shift))
        }
    }

    /// From eight multipliers and eight shifts (in −31..=30) in i32 lanes.
    ///
    /// # Safety
    /// AVX2 enabled where inlined.
    #[inline(always)]
    unsafe fn of(mult: __m256i, shift: __m256i) -> Self {
        // SAFETY (caller): AVX2 is enabled.
        unsafe {
            let n = _mm256_min_epi32(
                _mm256_max_epi32(_mm256_sub_epi32(_mm256_set1_epi32(31), shift), _mm256_set1_epi32(1)),
                _mm256_set1_epi32(62),
            );
            let n = [_mm256_and_si256(n, _mm256_set1_epi64x(0xffff_ffff)), _mm256_srli_epi64(n, 32)];
            let one = _mm256_set1_epi64x(1);
            let top = _mm256_set1_epi64x(i64::MIN);
            Requant8 {
                mult,
                n,
                round: [
                    _mm256_sllv_epi64(one, _mm256_sub_epi64(n[0], one)),
                    _mm256_sllv_epi64(one, _mm256_sub_epi64(n[1], one)),
                ],
                unbias: [_mm256_srlv_epi64(top, n[0]), _mm256_srlv_epi64(top, n[1])],
            }
        }
    }

    /// `clamp(zp + round(acc · M), lo, 127)` per i32 lane, as `LinearI8::finish` computes it: the product
    /// in i64 (`vpmuldq` on even lanes, then odd ones), the arithmetic shift by `n` done as a logical one
    /// with the sign bit flipped (`(p ⊕ 2^63) >> n − 2^(63−n)`; AVX2 has no 64-bit arithmetic shift), and
    /// the clamp in i64, where it equals the i32 saturation followed by the int8 clamp.
    ///
    /// # Safety
    /// AVX2 enabled where inlined.
    #[inline(always)]
    pub(super) unsafe fn apply(&self, acc: __m256i, zp: i32, lo: i32) -> __m256i {
        // SAFETY (caller): AVX2 is enabled.
        unsafe {
            let (min, max) = (_mm256_set1_epi64x(i64::from(lo - zp)), _mm256_set1_epi64x(i64::from(127 - zp)));
            // (no closures here: they would not inherit the caller's target features, so the intrinsics in
            // them would not be inlined)
            let Requant8 { n: [n0, n1], round: [r0, r1], unbias: [u0, u1], .. } = *self;
            let even = shift_clamp(_mm256_mul_epi32(acc, self.mult), r0, n0, u0, (min, max));
            let odd = shift_clamp(
                _mm256_mul_epi32(_mm256_srli_epi64(acc, 32), _mm256_srli_epi64(self.mult, 32)),
                r1,
                n1,
                u1,
                (min, max),
            );
            let v = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0b1010_1010);
            _mm256_add_epi32(v, _mm256_set1_epi32(zp))
        }
    }
}

/// `clamp((p + round) >> n, min, max)` per i64 lane, the arithmetic shift done as a logical one with the
/// sign bit flipped: `((p + round) ⊕ 2^63) >> n − 2^(63−n)` (`unbias`); AVX2 has no 64-bit arithmetic shift.
///
/// # Safety
/// AVX2 enabled where inlined.
#[inline(always)]
unsafe fn shift_clamp(
    p: __m256i,
    round: __m256i,
    n: __m256i,
    unbias: __m256i,
    (min, max): (__m256i, __m256i),
) -> __m256i {
    // SAFETY (caller): AVX2 is enabled.
    unsafe {
        let flipped = _mm256_xor_si256(_mm256_add_epi64(p, round), _mm256_set1_epi64x(i64::MIN));
        clamp64(_mm256_sub_epi64(_mm256_srlv_epi64(flipped, n), unbias), (min, max))
    }
}

/// `clamp(s, min, max)` per i64 lane.
///
/// # Safety
/// AVX2 enabled where inlined.
#[inline(always)]
unsafe fn clamp64(s: __m256i, (min, max): (__m256i, __m256i)) -> __m256i {
    // SAFETY (caller): AVX2 is enabled.
    unsafe {
        let s = _mm256_blendv_epi8(s, min, _mm256_cmpgt_epi64(min, s));
        _mm256_blendv_epi8(s, max, _mm256_cmpgt_epi64(s, max))
    }
}

/// The body of both conv1 variants. Channel block `b` holds channels `8b .. 8b + 8`; tap pair `p` is taps
/// `2p`, `2p + 1` (tap `ky · 3 + kx`, a tenth tap of weight zero completing the last pair).
#[inline(always)]
unsafe fn conv1_body<M: Madd>(
    l: &ConvI8<'_>,
    windows: usize,
    patches: &impl Fn(usize) -> [[i16; 9]; 4],
    out: &mut [i8],
) {
    let blocks = l.outputs / 8;
    let tap = |c: usize, t: usize| if t < 9 { l.w.get(9 * c + t).map_or(0, |&v| i16::from(v as i8)) } else { 0 };
    // SAFETY: AVX2 (and the variant's feature) is enabled where this is inlined; every pointer read is
    // within the first `outputs` entries of a tensor, which the caller checked.
    unsafe {
        let mut wv = [[_mm256_setzero_si256(); 5]; CONV_MAX_OUT / 8];
        let mut quant: [Option<Requant8>; CONV_MAX_OUT / 8] = Default::default();
        let mut bias = [_mm256_setzero_si256(); CONV_MAX_OUT / 8];
        for (b, ((ws, q), bv)) in wv.iter_mut().zip(&mut quant).zip(&mut bias).enumerate().take(blocks) {
            for (p, v) in ws.iter_mut().enumerate() {
                // lanes 2c, 2c + 1: channel 8b + c's weights of taps 2p, 2p + 1
                let lanes: [i16; 16] = core::array::from_fn(|i| tap(8 * b + i / 2, 2 * p + i % 2));
                *v = _mm256_loadu_si256(lanes.as_ptr().cast());
            }
            *q = Some(Requant8::new(l.mult, l.shift, 32 * b));
            *bv = _mm256_loadu_si256(l.bias.as_ptr().add(32 * b).cast());
        }
        for (i, out) in out.chunks_exact_mut(l.outputs).take(windows).enumerate() {
            // Each position's tap pairs as i32 lanes of two i16, ready to broadcast.
            let pairs = patches(i).map(|patch| {
                let x = |t: usize| patch.get(t).copied().unwrap_or(0);
                core::array::from_fn::<i32, 5, _>(|p| i32::from(x(2 * p) as u16) | (i32::from(x(2 * p + 1)) << 16))
            });
            for ((ws, (q, &bv)), out) in wv.iter().zip(quant.iter().zip(&bias)).zip(out.chunks_exact_mut(8)) {
                let Some(q) = q else { break };
                let mut best = _mm256_set1_epi32(i32::MIN);
                for pj in &pairs {
                    let mut acc = bv;
                    for (&x, &w) in pj.iter().zip(ws) {
                        acc = M::madd(acc, _mm256_set1_epi32(x), w);
                    }
                    best = _mm256_max_epi32(best, acc);
                }
                let mut v = [0i32; 8];
                _mm256_storeu_si256(v.as_mut_ptr().cast(), q.apply(best, l.zp_out, l.lo));
                for (o, v) in out.iter_mut().zip(v) {
                    *o = v as i8;
                }
            }
        }
    }
}

/// The int8 LSTM cell (`reference::cell`) for the first multiple of eight of `h.len()` units,
/// eight at a time, bit for bit as the portable code computes it: gate pre-activations `i`, `f`, `g`, `o`
/// (Q3.12) through the Q15 tables (`sigmoid`, `tanh`: 513 little-endian i16 each; one `vpgatherdd`
/// fetches both neighbours of an entry), cell state Q4.11, output `h · 127`. Returns the units done (0
/// without AVX2 or with a table too short).
pub fn lstm_cell_i8(gates: [&[i32]; 4], h: &mut [i8], c: &mut [i16], sigmoid: &[u8], tanh: &[u8]) -> usize {
    let n = h.len().min(c.len()).min(gates.iter().map(|g| g.len()).min().unwrap_or(0)) / 8 * 8;
    if !available() || sigmoid.len() < 2 * LUT_LEN || tanh.len() < 2 * LUT_LEN {
        return 0;
    }
    // SAFETY: the CPU has AVX2; `n` units are within every slice, the tables have 513 entries.
    unsafe { cell_i8(gates, h, c, sigmoid, tanh, n) };
    n
}

/// A Q15 table (513 entries over [−8, 8)) at eight Q3.12 points, linearly interpolated as `Lut::eval`:
/// entry `u >> 7` and its successor come in one 32-bit gather at byte `2 · (u >> 7)`.
///
/// # Safety
/// AVX2 enabled where inlined; `table` holds 513 i16 (the gather reads at most byte 1025).
#[inline(always)]
unsafe fn lut8(table: &[u8], z: __m256i) -> __m256i {
    // SAFETY (caller): as documented; the index is at most 511.
    unsafe {
        let z = _mm256_min_epi32(_mm256_max_epi32(z, _mm256_set1_epi32(-(8 << 12))), _mm256_set1_epi32((8 << 12) - 1));
        let u = _mm256_add_epi32(z, _mm256_set1_epi32(8 << 12));
        let pair = _mm256_i32gather_epi32::<2>(table.as_ptr().cast(), _mm256_srli_epi32(u, 7));
        let (a, b) = (_mm256_srai_epi32(_mm256_slli_epi32(pair, 16), 16), _mm256_srai_epi32(pair, 16));
        let frac = _mm256_and_si256(u, _mm256_set1_epi32(127));
        let step = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_sub_epi32(b, a), frac), _mm256_set1_epi32(64));
        _mm256_add_epi32(a, _mm256_srai_epi32(step, 7))
    }
}

#[target_feature(enable = "avx2")]
unsafe fn cell_i8(gates: [&[i32]; 4], h: &mut [i8], c: &mut [i16], sigmoid: &[u8], tanh: &[u8], n: usize) {
    let [gi, gf, gg, go] = gates.map(<[i32]>::as_ptr);
    // SAFETY: AVX2 is enabled; units `u .. u + 8` with `u + 8 ≤ n` are within every slice (the caller).
    unsafe {
        for u in (0..n).step_by(8) {
            let load = |p: *const i32| _mm256_loadu_si256(p.add(u).cast());
            let (i, f, g, o) = (load(gi), load(gf), load(gg), load(go));
            let (i, f, g, o) = (lut8(sigmoid, i), lut8(sigmoid, f), lut8(tanh, g), lut8(sigmoid, o));
            let cp = c.as_mut_ptr().add(u);
            let c0 = _mm256_cvtepi16_epi32(_mm_loadu_si128(cp.cast()));
            // Q15 · Q11 >> 15 = Q11; Q15 · Q15 >> 19 = Q11 (each product below 2^30)
            let fc = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(f, c0), _mm256_set1_epi32(1 << 14)), 15);
            let ig = _mm256_srai_epi32(_mm256_add_epi32(_mm256_mullo_epi32(i, g), _mm256_set1_epi32(1 << 18)), 19);
            let cell = _mm256_add_epi32(fc, ig);
            // saturated to i16 (the pack), back in order
            let packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(cell, cell), 0b00_00_10_00);
            _mm_storeu_si128(cp.cast(), _mm256_castsi256_si128(packed));
            let cell = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(packed));
            let t = lut8(tanh, _mm256_slli_epi32(cell, 1));
            // h · 127 = (o · t · 127 + 2^29) >> 30 in i64 (o · t below 2^30); the result fits a byte, so the low
            // 32 bits of a logical shift are the arithmetic shift's
            let ot = _mm256_mullo_epi32(o, t);
            let (k, round) = (_mm256_set1_epi32(127), _mm256_set1_epi64x(1 << 29));
            let even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(ot, k), round), 30);
            let odd = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(ot, 32), k), round), 30);
            let hq = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0b1010_1010);
            let hq = _mm256_min_epi32(_mm256_max_epi32(hq, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
            let mut v = [0i32; 8];
            _mm256_storeu_si256(v.as_mut_ptr().cast(), hq);
            for (h, v) in h.get_mut(u..u + 8).into_iter().flatten().zip(v) {
                *h = v as i8;
            }
        }
    }
}

/// `dst[i] = base.saturating_add(requantize(acc[i], mult, shift))` (`reference::requantize`), `base` being
/// `bias[i]` (little-endian i32) when given, else `dst[i]`, for the first multiple of eight of the
/// entries, eight at a time: the LSTM gates' requantization. Returns the entries done (0 without AVX2 or
/// for a shift outside −31..=30).
pub fn requantize_add(dst: &mut [i32], acc: &[i32], bias: Option<&[u8]>, mult: i32, shift: i32) -> usize {
    let n = dst.len().min(acc.len()).min(bias.map_or(usize::MAX, |b| b.len() / 4)) / 8 * 8;
    if !available() || !(-31..=30).contains(&shift) {
        return 0;
    }
    // SAFETY: the CPU has AVX2; `n` entries are within every slice.
    unsafe { requantize_add_avx2(dst, acc, bias, mult, shift, n) };
    n
}

#[target_feature(enable = "avx2")]
unsafe fn requantize_add_avx2(dst: &mut [i32], acc: &[i32], bias: Option<&[u8]>, mult: i32, shift: i32, n: usize) {
    if (-31..=-2).contains(&shift) {
        // SAFETY: AVX2 is enabled here; the caller's bounds.
        return unsafe { requantize_add_high_word(dst, acc, bias, mult, shift, n) };
    }
    // SAFETY: AVX2 is enabled here.
    let q = unsafe { Requant8::of(_mm256_set1_epi32(mult), _mm256_set1_epi32(shift)) };
    let Requant8 { mult: m, n: [nv, _], round: [round, _], unbias: [unbias, _] } = q;
    let one = _mm256_set1_epi32(1);
    let i32s = (_mm256_set1_epi64x(i64::from(i32::MIN)), _mm256_set1_epi64x(i64::from(i32::MAX)));
    // SAFETY: AVX2 is enabled; entries `i .. i + 8` with `i + 8 ≤ n` are within every slice (the caller).
    unsafe {
        for i in (0..n).step_by(8) {
            let (a, base) = acc_and_base(acc, bias, dst, i);
            // requantize per 64-bit lane (even entries, then odd), clamped to i32, plus the base sign-extended
            // (`vpmuldq` by one), clamped again: the saturating add
            let even = shift_clamp(_mm256_mul_epi32(a, m), round, nv, unbias, i32s);
            let odd = shift_clamp(_mm256_mul_epi32(_mm256_srli_epi64(a, 32), m), round, nv, unbias, i32s);
            let even = clamp64(_mm256_add_epi64(even, _mm256_mul_epi32(base, one)), i32s);
            let odd = clamp64(_mm256_add_epi64(odd, _mm256_mul_epi32(_mm256_srli_epi64(base, 32), one)), i32s);
            let v = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0b1010_1010);
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), v);
        }
    }
}

/// Entries `i .. i + 8` of `acc`, and of `bias` (little-endian i32) if given, else of `dst`: what
/// [`requantize_add`] adds up.
///
/// # Safety
/// AVX2 enabled where inlined; the entries within the slices.
#[inline(always)]
unsafe fn acc_and_base(acc: &[i32], bias: Option<&[u8]>, dst: &[i32], i: usize) -> (__m256i, __m256i) {
    // SAFETY (caller): as documented.
    unsafe {
        let base = match bias {
            Some(b) => _mm256_loadu_si256(b.as_ptr().add(4 * i).cast()),
            None => _mm256_loadu_si256(dst.as_ptr().add(i).cast()),
        };
        (_mm256_loadu_si256(acc.as_ptr().add(i).cast()), base)
    }
}

/// [`requantize_add`] for the shifts −31..=−2 (multipliers below a half: the quantizer's usual case), in
/// 32-bit lanes as `reference::requantize` computes them there: the product's high word (`vpmuldq` on even
/// and odd lanes, the high words blended into one register), rounded and shifted arithmetically by
/// `n − 32`, then added to the base with i32 saturation (overflow where both addends' signs differ from
/// the sum's). A third of the general path's instructions, which needs 64-bit lanes for the shift and the
/// clamps.
///
/// # Safety
/// AVX2 enabled where called; `n` entries (a multiple of eight) within every slice; `shift` in −31..=−2.
#[target_feature(enable = "avx2")]
unsafe fn requantize_add_high_word(dst: &mut [i32], acc: &[i32], bias: Option<&[u8]>, mult: i32, shift: i32, n: usize) {
    let right = (31 - shift - 32) as u32; // n − 32: 1..=30
    let m = _mm256_set1_epi32(mult);
    let round = _mm256_set1_epi32(1 << (right - 1));
    let count = _mm_cvtsi32_si128(right as i32);
    let max = _mm256_set1_epi32(i32::MAX);
    // SAFETY: AVX2 is enabled; entries `i .. i + 8` with `i + 8 ≤ n` are within every slice (the caller).
    unsafe {
        for i in (0..n).step_by(8) {
            let (a, base) = acc_and_base(acc, bias, dst, i);
            let even = _mm256_mul_epi32(a, m);
            let odd = _mm256_mul_epi32(_mm256_srli_epi64(a, 32), m);
            let hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0b1010_1010);
            let r = _mm256_sra_epi32(_mm256_add_epi32(hi, round), count);
            let sum = _mm256_add_epi32(base, r);
            let overflow = _mm256_and_si256(_mm256_xor_si256(base, sum), _mm256_xor_si256(r, sum));
            // i32::MAX for a positive base, i32::MIN for a negative one
            let saturated = _mm256_xor_si256(_mm256_srai_epi32(base, 31), max);
            let v = _mm256_castps_si256(_mm256_blendv_ps(
                _mm256_castsi256_ps(sum),
                _mm256_castsi256_ps(saturated),
                _mm256_castsi256_ps(overflow),
            ));
            _mm256_storeu_si256(dst.as_mut_ptr().add(i).cast(), v);
        }
    }
}

/// The f32 twin of [`conv1_pool_i8`]: conv1 (`w` `[outputs, 3, 3, 1]` and `bias`, little-endian f32) +
/// 2×2 max-pool (+ ReLU when `relu`) for `windows` windows, eight channels per register, one FMA per tap
/// with the input broadcast. Sums in the generic path's order (bias, then taps 0-8), so results equal it
/// but for FMA's single rounding. Returns false, doing nothing, without AVX2/FMA, for channel counts not
/// a multiple of eight or above [`CONV_MAX_OUT`], or short slices.
#[allow(clippy::too_many_arguments)]
pub fn conv1_pool_f32(
    w: &[u8],
    bias: &[u8],
    outputs: usize,
    relu: bool,
    windows: usize,
    patches: impl Fn(usize) -> [[f32; 9]; 4],
    out: &mut [f32],
) -> bool {
    let n = outputs;
    let fits = w.len() >= 36 * n && bias.len() >= 4 * n && out.len() >= windows * n;
    if !available() || n == 0 || !n.is_multiple_of(8) || n > CONV_MAX_OUT || !fits {
        return false;
    }
    // SAFETY: the CPU has AVX2 and FMA; the slices were checked above.
    unsafe { conv1_f32(w, bias, n, relu, windows, &patches, out) };
    true
}

#[target_feature(enable = "avx2,fma")]
unsafe fn conv1_f32(
    w: &[u8],
    bias: &[u8],
    n: usize,
    relu: bool,
    windows: usize,
    patches: &impl Fn(usize) -> [[f32; 9]; 4],
    out: &mut [f32],
) {
    let f32_at =
        |b: &[u8], i: usize| b.get(4 * i..4 * i + 4).and_then(|v| v.try_into().ok()).map_or(0.0, f32::from_le_bytes);
    // Channel block b, tap t: the eight channels' weights; and the blocks' biases.
    let mut wv = [[_mm256_setzero_ps(); 9]; CONV_MAX_OUT / 8];
    let mut bv = [_mm256_setzero_ps(); CONV_MAX_OUT / 8];
    for (b, (ws, bv)) in wv.iter_mut().zip(&mut bv).enumerate().take(n / 8) {
        for (t, v) in ws.iter_mut().enumerate() {
            let lanes: [f32; 8] = core::array::from_fn(|c| f32_at(w, 9 * (8 * b + c) + t));
            // SAFETY: AVX is enabled; `lanes` holds eight f32.
            *v = unsafe { _mm256_loadu_ps(lanes.as_ptr()) };
        }
        let lanes: [f32; 8] = core::array::from_fn(|c| f32_at(bias, 8 * b + c));
        // SAFETY: as above.
        *bv = unsafe { _mm256_loadu_ps(lanes.as_ptr()) };
    }
    let zero = _mm256_setzero_ps();
    for (i, out) in out.chunks_exact_mut(n).take(windows).enumerate() {
        let x = patches(i);
        for ((ws, &bias), out) in wv.iter().zip(&bv).zip(out.chunks_exact_mut(8)) {
            let mut best = _mm256_set1_ps(f32::NEG_INFINITY);
            for x in &x {
                let mut acc = bias;
                for (&x, &w) in x.iter().zip(ws) {
                    acc = _mm256_fmadd_ps(_mm256_set1_ps(x), w, acc);
                }
                best = _mm256_max_ps(best, acc);
            }
            if relu {
                best = _mm256_max_ps(best, zero);
            }
            // SAFETY: `out` holds eight f32.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr(), best) };
        }
    }
}

/// [`lstm_cell_f32`] if this CPU has AVX2 and FMA, else nothing (0 units done).
pub fn lstm_cell(gates: &[f32], h: &mut [f32], c: &mut [f32]) -> usize {
    // SAFETY: the CPU has the features the function is compiled for.
    if available() {
        unsafe { lstm_cell_f32(gates, h, c) }
    } else {
        0
    }
}

/// [`dot_rows4_i8_vnni`] or [`dot_rows4_i8`], the best this CPU runs, else nothing (0 groups run).
pub fn rows4_i8(w: &[u8], k: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]; 4]) -> usize {
    // SAFETY: the CPU has the features each kernel is compiled for.
    unsafe {
        if vnni() {
            dot_rows4_i8_vnni(w, k, block, cols, acc)
        } else if available() {
            dot_rows4_i8(w, k, block, cols, acc)
        } else {
            0
        }
    }
}

/// [`dot_rows4_f32`] if this CPU has AVX2 and FMA, else nothing (0 groups run).
pub fn rows4_f32(w: &[u8], k: usize, block: &[f32], cols: usize, acc: &mut [[f32; 4]; 4]) -> usize {
    // SAFETY: the CPU has the features the kernel is compiled for.
    if available() {
        unsafe { dot_rows4_f32(w, k, block, cols, acc) }
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The CI machines have AVX2; say so loudly where one does not, as the kernels then go untested here.
    fn skip() -> bool {
        static SAY: std::sync::Once = std::sync::Once::new();
        SAY.call_once(|| {
            if !available() {
                std::eprintln!("SKIPPED: this CPU has no AVX2/FMA; the AVX2 kernels are not tested on it");
            } else if !vnni() {
                std::eprintln!("SKIPPED in part: this CPU has no AVX-VNNI; that int8 variant is not tested on it");
            }
        });
        !available()
    }

    proptest! {
        /// The vectorized f32 LSTM cell equals the scalar one (libm's expf and tanhf) to a few 1e-7, over
        /// gate values far into saturation.
        #[test]
        fn lstm_cell_matches_libm(
            gates in proptest::collection::vec(-30f32..30.0, 4 * 24),
            c0 in proptest::collection::vec(-6f32..6.0, 24),
        ) {
            if skip() {
                return Ok(());
            }
            let (mut h, mut c) = (std::vec![0f32; 24], c0.clone());
            prop_assert_eq!(lstm_cell(&gates, &mut h, &mut c), 24);
            let sigmoid = |x: f32| 1.0 / (1.0 + libm::expf(-x));
            for u in 0..24 {
                let (i, f, g, o) = (gates[u], gates[24 + u], gates[48 + u], gates[72 + u]);
                let cell = sigmoid(f) * c0[u] + sigmoid(i) * libm::tanhf(g);
                let hidden = sigmoid(o) * libm::tanhf(cell);
                prop_assert!((c[u] - cell).abs() <= 1e-6 * (1.0 + cell.abs()), "c: {} vs {}", c[u], cell);
                prop_assert!((h[u] - hidden).abs() <= 1e-6, "h: {} vs {}", h[u], hidden);
            }
        }

        /// The f32 kernels' four rows equal f64 sums over their whole groups, to rounding.
        #[test]
        fn f32_rows_match_f64(
            w in proptest::collection::vec(-1f32..1.0, 4..1300),
            x in proptest::collection::vec(-4f32..4.0, 4 * 330),
            cols in prop::sample::select(std::vec![1usize, 2, 4]),
        ) {
            if skip() {
                return Ok(());
            }
            let k = w.len() / 4;
            let wb: std::vec::Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut block = std::vec![0f32; crate::block::block_len(k, cols)];
            for c in 0..cols {
                crate::block::put(&mut block, cols, c, 0, &x[c * k..(c + 1) * k], [0, 1, 2, 3], |v| v);
            }
            // (the 512-bit kernel too, where the CPU has AVX-512F: the same bounds, the same sums)
            type Kernel = fn(&[u8], usize, &[f32], usize, &mut [[f32; 4]; 4]) -> usize;
            let mut kernels: std::vec::Vec<(&str, Kernel)> = std::vec![("avx2", rows4_f32)];
            if super::super::avx512::available() {
                kernels.push(("avx-512", |w, k, b, cols, acc| super::super::avx512::rows_f32(w, k, b, cols, acc)));
            }
            for (name, kernel) in kernels {
                let mut acc = [[0f32; 4]; 4];
                let done = kernel(&wb, k, &block, cols, &mut acc);
                let whole = if w.len() >= 3 * k + 4 * k.div_ceil(4) { k.div_ceil(4) } else { k / 4 };
                prop_assert_eq!(done, whole, "{}", name);
                for (r, acc) in acc.iter().enumerate() {
                    for (c, &got) in acc.iter().enumerate().take(cols) {
                        let terms = (0..(4 * done).min(k)).map(|j| f64::from(w[r * k + j]) * f64::from(x[c * k + j]));
                        let (exact, size): (f64, f64) = terms.fold((0.0, 0.0), |(s, a), t| (s + t, a + t.abs()));
                        let close = (f64::from(got) - exact).abs() <= 1e-6 * size + 1e-6;
                        prop_assert!(close, "{name}, row {r}, column {c}: {got} vs {exact}");
                    }
                }
            }
        }
    }
}
