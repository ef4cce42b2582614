//! The unsigned-byte kernels: `vpdpbusd` multiplies 32 unsigned bytes by 32 int8 weights and adds them
//! up by four into eight i32 lanes, with AVX-VNNI (VEX) or AVX512-VNNI + AVX512-VL on 256-bit registers.
//! An int8 input `v` with zero point `zp` enters as the byte `v ⊕ 0x80`, its offset `128 + zp` summed
//! separately, so nothing is widened: twice the products per instruction of the i16 kernels in
//! `avx2.rs`. Each computes exactly what the reference computes (wrapping i32 sums): the dot products
//! of 1 or 2 columns ([`rows_u8`]: the LSTMs' and dense layers'), conv2 + pool ([`conv_pool_u8`]) and
//! conv1 + pool ([`conv1_pool_u8`], three taps per broadcast).
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::avx2::{channels_fit, cpu_vnni, AvxVnni, Requant8, CONV_MAX_OUT};
use crate::kernels::QuantLinear as ConvI8;

cpufeatures::new!(cpuid_avx512vl, "avx512f", "avx512vl");
cpufeatures::new!(cpuid_avx2, "avx2", "fma");

/// The instruction set a CPU offers for `vpdpbusd` (unsigned bytes times signed bytes, summed by four into
/// i32 lanes), which the unsigned-byte kernels ([`rows_u8`], [`conv_pool_u8`]) need: AVX-VNNI (VEX
/// encoded; AMD Zen 4 and later, Intel from Alder Lake and Sapphire Rapids) or AVX512-VNNI with AVX512-VL
/// on 256-bit registers (Intel servers from Cascade Lake, AMD Zen 4 and later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DotBytes {
    AvxVnni,
    Avx512Vnni,
}

impl DotBytes {
    /// Every variant this CPU runs, the preferred one first (tests cover each).
    pub fn all() -> impl Iterator<Item = DotBytes> {
        [DotBytes::AvxVnni, DotBytes::Avx512Vnni].into_iter().filter(|v| v.runs())
    }
    /// The variant the kernels use on this CPU, if any.
    pub fn get() -> Option<DotBytes> {
        DotBytes::all().next()
    }
    /// Whether this CPU runs the variant (CPUID read once, then cached: the kernels ask on every call).
    fn runs(self) -> bool {
        use core::sync::atomic::{AtomicU8, Ordering};
        static MASK: AtomicU8 = AtomicU8::new(0x80); // 0x80: not read yet; else bit 0 AVX-VNNI, bit 1 AVX512
        let mut mask = MASK.load(Ordering::Relaxed);
        if mask == 0x80 {
            // (CPUID leaf 7 exists where AVX2 does; the OS side, ZMM state for AVX-512, is cpufeatures's check)
            // (the CPU's own features, whatever the limit, which applies below)
            let avx512 = cpuid_avx2::get() && cpuid_avx512vl::get() && __cpuid_count(7, 0).ecx & (1 << 11) != 0;
            mask = u8::from(cpu_vnni()) | u8::from(avx512) << 1;
            MASK.store(mask, Ordering::Relaxed);
        }
        let bit = match self {
            DotBytes::AvxVnni => 1,
            DotBytes::Avx512Vnni => 2,
        };
        mask & bit != 0 && super::allowed(super::Level::Ymm)
    }
}

/// `acc + Σ` of four neighbouring products of the unsigned bytes of `a` and the signed bytes of `b`, per
/// i32 lane (`vpdpbusd`, either encoding); the unsigned-byte kernels are written once over it.
trait DotBytesOp {
    /// # Safety
    /// Only inlined into a function compiled with the implementor's features.
    unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i;
}

struct Avx512Vnni;

impl DotBytesOp for AvxVnni {
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY (caller): AVX-VNNI is enabled where this is inlined.
        unsafe { _mm256_dpbusd_avx_epi32(acc, a, b) }
    }
}

impl DotBytesOp for Avx512Vnni {
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY (caller): AVX512-VNNI and AVX512-VL are enabled where this is inlined.
        unsafe { _mm256_dpbusd_epi32(acc, a, b) }
    }
}

/// Longest patch (`9 · cin`) [`conv_pool_u8`] takes: its four patches live on the stack.
pub const CONV_MAX_K: usize = 9 * 64;

/// A conv 3×3 + 2×2 max-pool for one pooled column whose inputs are int8 with zero point −128 (every
/// ReLU output is), with AVX-VNNI's `vpdpbusd`: `x − zp` is then `x ⊕ 0x80` as an unsigned byte, so the
/// patches are the input rows with their top bits flipped (no widening to i16), and one instruction
/// multiplies 32 of them by 32 int8 weights and adds them up by four into eight i32 lanes: twice the
/// `vpdpwssd` path's products per instruction, and no weight widening. Takes `cols` and `out` as
/// `net::conv_pool` does and computes exactly what it does (wrapping sums, the pool's largest
/// accumulator requantized). Returns false, doing nothing, without AVX-VNNI, for input channels not a
/// multiple of 32 or above [`CONV_MAX_K`] / 9, or output channels [`channels_fit`] refuses.
pub fn conv_pool_u8(l: &ConvI8<'_>, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
    DotBytes::get().is_some_and(|v| conv_pool_u8_with(v, l, cols, out))
}

/// [`conv_pool_u8`] with the given instruction set (which must be one of [`DotBytes::all`]).
pub fn conv_pool_u8_with(v: DotBytes, l: &ConvI8<'_>, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
    let k = 9 * l.cin;
    if !v.runs() || l.cin == 0 || !l.cin.is_multiple_of(32) || k > CONV_MAX_K {
        return false;
    }
    if !channels_fit(l) {
        return false;
    }
    // SAFETY: the CPU has the variant's features (checked above); the tensors were checked above.
    unsafe {
        match v {
            DotBytes::AvxVnni => conv_u8_avxvnni(l, cols, out),
            DotBytes::Avx512Vnni => conv_u8_avx512vnni(l, cols, out),
        }
    }
    true
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn conv_u8_avxvnni(l: &ConvI8<'_>, cols: [Option<&[i8]>; 4], out: &mut [i8]) {
    // SAFETY: the features are enabled here; the caller checked the tensors.
    unsafe { conv_u8::<AvxVnni>(l, cols, out) }
}

#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn conv_u8_avx512vnni(l: &ConvI8<'_>, cols: [Option<&[i8]>; 4], out: &mut [i8]) {
    // SAFETY: the features are enabled here; the caller checked the tensors.
    unsafe { conv_u8::<Avx512Vnni>(l, cols, out) }
}

/// Tallest column [`conv1_pool_u8`] takes: its rows live on the stack.
pub const CONV1_MAX_ROWS: usize = 1024;

/// conv1 (one input channel) + 2×2 max-pool for one pooled column, with `vpdpbusd`: the int8 path's
/// results (`int8::LinearI8::finish` of the window's largest accumulator) bit for bit. `cols` are the
/// four input columns (`net::conv_pool`'s: None outside the image) of int8 inputs with zero point `zp`;
/// `out` gets `outputs` values for each of its `out.len() / outputs` windows.
///
/// The four columns are laid out row by row, four bytes a row, as unsigned bytes `x ⊕ 0x80` (padding:
/// `zp ⊕ 0x80`, the input whose `x − zp` is 0), so the three taps of one kernel row at any of the two
/// conv columns are the first three bytes of one unaligned i32: broadcast, one `vpdpbusd` multiplies them
/// by eight channels' three weights (a fourth weight 0 meets the fourth byte). A conv position is three
/// broadcasts and three `vpdpbusd` per eight channels (the AVX2 kernel: five pairs, each built from the
/// patch first); the offset `128 + zp` these bytes carry is `(128 + zp) · Σ w` per channel, taken off the
/// bias once. Returns false, doing nothing, without AVX-VNNI or AVX512-VNNI, for another input channel
/// count, output channels [`channels_fit`] refuses, columns of another length or taller than
/// [`CONV1_MAX_ROWS`], or more windows than the columns' rows make.
pub fn conv1_pool_u8(l: &ConvI8<'_>, zp: i32, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
    DotBytes::get().is_some_and(|v| conv1_pool_u8_with(v, l, zp, cols, out))
}

/// [`conv1_pool_u8`] with the given instruction set (which must be one of [`DotBytes::all`]).
pub fn conv1_pool_u8_with(v: DotBytes, l: &ConvI8<'_>, zp: i32, cols: [Option<&[i8]>; 4], out: &mut [i8]) -> bool {
    let windows = out.len() / l.outputs.max(1);
    // (no column at all: every input is padding)
    let h = cols.iter().flatten().map(|c| c.len()).next().unwrap_or(2 * windows);
    let same = cols.iter().flatten().all(|c| c.len() == h);
    let fits = l.cin == 1 && channels_fit(l) && same && h <= CONV1_MAX_ROWS && 2 * windows <= h;
    if !v.runs() || !fits || !(-128..=127).contains(&zp) {
        return false;
    }
    // Row r of the buffer is input row r − 1 (rows 0 and h + 1: padding), one byte per column, and
    // four bytes of slack: the last row's second conv column reads one byte past it.
    let mut rows = [0u8; 4 * (CONV1_MAX_ROWS + 3)];
    let pad = zp as u8 ^ 0x80;
    let used = rows.get_mut(..4 * (h + 3)).unwrap_or(&mut []);
    for (dx, col) in cols.iter().enumerate() {
        let column = col.unwrap_or(&[]).iter().map(|&x| x as u8 ^ 0x80);
        let mut values = core::iter::once(pad).chain(column);
        for b in used.iter_mut().skip(dx).step_by(4) {
            *b = values.next().unwrap_or(pad);
        }
    }
    // SAFETY: the CPU has the variant's features (checked above); the tensors were checked above, and
    // the windows read rows below `2 · windows + 3 <= h + 3`.
    unsafe {
        match v {
            DotBytes::AvxVnni => conv1_u8_avxvnni(l, zp, &rows, windows, out),
            DotBytes::Avx512Vnni => conv1_u8_avx512vnni(l, zp, &rows, windows, out),
        }
    }
    true
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn conv1_u8_avxvnni(l: &ConvI8<'_>, zp: i32, rows: &[u8], windows: usize, out: &mut [i8]) {
    // SAFETY: the features are enabled here; the caller checked the tensors and the rows.
    unsafe { conv1_u8::<AvxVnni>(l, zp, rows, windows, out) }
}

#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn conv1_u8_avx512vnni(l: &ConvI8<'_>, zp: i32, rows: &[u8], windows: usize, out: &mut [i8]) {
    // SAFETY: the features are enabled here; the caller checked the tensors and the rows.
    unsafe { conv1_u8::<Avx512Vnni>(l, zp, rows, windows, out) }
}

/// The body of both [`conv1_pool_u8`] variants.
///
/// # Safety
/// Inlined into a function compiled with `D`'s features (and AVX2); `l`'s tensors checked by
/// `channels_fit`; `rows` holds `4 · (2 · windows + 3)` bytes at least.
#[inline(always)]
unsafe fn conv1_u8<D: DotBytesOp>(l: &ConvI8<'_>, zp: i32, rows: &[u8], windows: usize, out: &mut [i8]) {
    let n = l.outputs;
    let weight = |c: usize, t: usize| l.w.get(9 * c + t).map_or(0, |&v| v as i8);
    // SAFETY (caller): the features are enabled; every tensor read is within the first `n` entries.
    unsafe {
        // kernel row ky of channel block b: lane c holds channel 8b + c's weights (ky, 0..3) and a 0
        let mut wv = [[_mm256_setzero_si256(); 3]; CONV_MAX_OUT / 8];
        let mut quant: [Option<Requant8>; CONV_MAX_OUT / 8] = Default::default();
        let mut bias = [_mm256_setzero_si256(); CONV_MAX_OUT / 8];
        for (b, ((ws, q), bv)) in wv.iter_mut().zip(&mut quant).zip(&mut bias).enumerate().take(n / 8) {
            let mut sums = [0i32; 8];
            for (ky, v) in ws.iter_mut().enumerate() {
                let lanes: [i8; 32] =
                    core::array::from_fn(|i| if i % 4 < 3 { weight(8 * b + i / 4, 3 * ky + i % 4) } else { 0 });
                *v = _mm256_loadu_si256(lanes.as_ptr().cast());
                for (s, w) in sums.iter_mut().zip(lanes.chunks_exact(4)) {
                    *s += w.iter().map(|&w| i32::from(w)).sum::<i32>();
                }
            }
            *q = Some(Requant8::new(l.mult, l.shift, 32 * b));
            // the bytes' offset, 128 + zp per input, taken off once: bias − (128 + zp) · Σ w
            let offset = _mm256_mullo_epi32(_mm256_loadu_si256(sums.as_ptr().cast()), _mm256_set1_epi32(128 + zp));
            *bv = _mm256_sub_epi32(_mm256_loadu_si256(l.bias.as_ptr().add(32 * b).cast()), offset);
        }
        // (no closure for the broadcast: it would not inherit this function's features, and the intrinsic in
        // it would not be inlined)
        let row = rows.as_ptr();
        for (i, out) in out.chunks_exact_mut(n).take(windows).enumerate() {
            for ((ws, (q, &bv)), out) in wv.iter().zip(quant.iter().zip(&bias)).zip(out.chunks_exact_mut(8)) {
                let Some(q) = q else { break };
                let mut best = _mm256_set1_epi32(i32::MIN);
                // conv positions (row 2i + dy, column x of the two): kernel row ky reads buffer row 2i + dy + ky
                for x in 0..2 {
                    for dy in 0..2 {
                        let mut acc = bv;
                        for (ky, &w) in ws.iter().enumerate() {
                            let taps = row.add(4 * (2 * i + dy + ky) + x).cast::<i32>().read_unaligned();
                            acc = D::dpbusd(acc, _mm256_set1_epi32(taps), w);
                        }
                        best = _mm256_max_epi32(best, acc);
                    }
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

/// The eight sums of the eight vectors' i32 lanes, in order.
///
/// # Safety
/// AVX2 enabled where inlined.
#[inline(always)]
unsafe fn sums8(v: &[__m256i; 8]) -> __m256i {
    // SAFETY (caller): AVX2 is enabled.
    unsafe {
        let [a, b, c, d, e, f, g, h] = *v;
        let (ab, cd, ef, gh) =
            (_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d), _mm256_hadd_epi32(e, f), _mm256_hadd_epi32(g, h));
        let (lo, hi) = (_mm256_hadd_epi32(ab, cd), _mm256_hadd_epi32(ef, gh));
        // low 128 bits: the first four vectors' low-half sums, then the last four's; high 128: their high halves
        _mm256_add_epi32(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31))
    }
}

/// The body of both [`conv_pool_u8`] variants.
///
/// # Safety
/// Inlined into a function compiled with `D`'s features (and AVX2); `l`'s tensors checked by `channels_fit`.
#[inline(always)]
unsafe fn conv_u8<D: DotBytesOp>(l: &ConvI8<'_>, cols: [Option<&[i8]>; 4], out: &mut [i8]) {
    let (n, cin, k) = (l.outputs, l.cin, 9 * l.cin);
    let chunks = k / 32;
    let mut quant: [Option<Requant8>; CONV_MAX_OUT / 8] = Default::default();
    for (b, q) in quant.iter_mut().enumerate().take(n / 8) {
        // SAFETY: `channels_fit` checked the tensors hold `n` entries.
        *q = Some(unsafe { Requant8::new(l.mult, l.shift, 32 * b) });
    }
    let mut bias = [0i32; CONV_MAX_OUT];
    for (b, bytes) in bias.iter_mut().zip(l.bias.chunks_exact(4)) {
        *b = bytes.try_into().map_or(0, i32::from_le_bytes);
    }
    // Patch j (conv position row 2i + j % 2, column j / 2 of the window), k unsigned bytes.
    let mut patches = [[_mm256_setzero_si256(); CONV_MAX_K / 32]; 4];
    let mut best = [0i32; CONV_MAX_OUT];
    let flip = _mm256_set1_epi8(i8::MIN);
    for (i, out) in out.chunks_exact_mut(n).enumerate() {
        for (j, patch) in patches.iter_mut().enumerate() {
            let (y, dx) = (2 * i + j % 2, j / 2);
            // tap (ky, kx) holds input row y + ky − 1 of column dx + kx: `cin / 32` vectors
            for (seg, dst) in patch.chunks_exact_mut(cin / 32).take(9).enumerate() {
                let (ky, kx) = (seg / 3, seg % 3);
                // (plain branches, no closures: those would not inherit AVX2 and their calls stay)
                let col = match cols.get(dx + kx) {
                    Some(Some(col)) => col,
                    _ => &[][..],
                };
                let row = y + ky; // the input row plus one
                let src = if row == 0 { &[][..] } else { col.get((row - 1) * cin..row * cin).unwrap_or(&[]) };
                if src.len() == cin {
                    for (q, d) in dst.iter_mut().enumerate() {
                        // SAFETY: the 32 bytes at 32·q < cin are within `src`.
                        *d = _mm256_xor_si256(unsafe { _mm256_loadu_si256(src.as_ptr().add(32 * q).cast()) }, flip);
                    }
                } else {
                    dst.fill(_mm256_setzero_si256()); // padding: x = zp, x − zp = 0
                }
            }
        }
        for (pair, best) in best.chunks_exact_mut(2).take(n / 2).enumerate() {
            let mut acc = [_mm256_setzero_si256(); 8];
            // SAFETY: rows 2·pair and 2·pair + 1 are within the `k · n` weights `channels_fit` checked.
            let (w0, w1) = unsafe { (l.w.as_ptr().add(2 * pair * k), l.w.as_ptr().add((2 * pair + 1) * k)) };
            for q in 0..chunks {
                // SAFETY: as above, 32 bytes at 32·q < k of each row.
                let (a, b) =
                    unsafe { (_mm256_loadu_si256(w0.add(32 * q).cast()), _mm256_loadu_si256(w1.add(32 * q).cast())) };
                let (row0, row1) = acc.split_at_mut(4);
                for ((patch, s0), s1) in patches.iter().zip(row0).zip(row1) {
                    let x = patch.get(q).copied().unwrap_or(_mm256_setzero_si256());
                    *s0 = D::dpbusd(*s0, x, a);
                    *s1 = D::dpbusd(*s1, x, b);
                }
            }
            // [row 0 at positions 0..4, row 1 at positions 0..4] plus each row's bias, then each row's
            // largest (in both halves' lane 0 after two in-lane max steps)
            let (b0, b1) = (bias.get(2 * pair).copied().unwrap_or(0), bias.get(2 * pair + 1).copied().unwrap_or(0));
            let v = _mm256_add_epi32(sums8(&acc), _mm256_setr_epi32(b0, b0, b0, b0, b1, b1, b1, b1));
            let v = _mm256_max_epi32(v, _mm256_shuffle_epi32(v, 0b10_11_00_01));
            let v = _mm256_max_epi32(v, _mm256_shuffle_epi32(v, 0b01_00_11_10));
            if let [m0, m1] = best {
                *m0 = _mm256_extract_epi32(v, 0);
                *m1 = _mm256_extract_epi32(v, 4);
            }
        }
        for ((q, m), out) in quant.iter().zip(best.chunks_exact(8)).zip(out.chunks_exact_mut(8)) {
            let Some(q) = q else { break };
            let mut v = [0i32; 8];
            // SAFETY: `m` and `v` hold eight i32 each.
            unsafe {
                _mm256_storeu_si256(
                    v.as_mut_ptr().cast(),
                    q.apply(_mm256_loadu_si256(m.as_ptr().cast()), l.zp_out, l.lo),
                )
            };
            for (o, v) in out.iter_mut().zip(v) {
                *o = v as i8;
            }
        }
    }
}

/// `acc[r][c] += Σ_j w_r[j] · (x_c[j] − offset)` for the int8 weight rows `w_r = w[r·k ..][..k]`
/// (`r < acc.len()`, a multiple of four) and `cols` (1 or 2) columns of `k` unsigned bytes
/// `x_c = x[c·k ..][..k]`, four rows per pass with `vpdpbusd` (32 products per instruction, no
/// widening). An int8 input `v` with zero point `zp` enters as the byte `v ⊕ 0x80` with
/// `offset = 128 + zp`, since `v − zp = (v + 128) − (128 + zp)`; the offset's share, `offset · Σ w_r`, is
/// summed by one more `vpdpbusd` per row (none when the offset is 0) and subtracted. The LSTMs hand over a
/// whole chunk of gate rows, so the call (and the CPU check) is paid once per chunk, not per four rows.
/// Wrapping i32 sums, equal to the portable kernel's. Returns false, doing nothing, without AVX-VNNI or
/// AVX512-VNNI, for `k` not a multiple of 32, a row count not a multiple of four, other column counts, an
/// offset outside 0..=255 or short slices.
pub fn rows_u8(w: &[u8], k: usize, x: &[u8], cols: usize, offset: i32, acc: &mut [[i32; 4]]) -> bool {
    DotBytes::get().is_some_and(|v| rows_u8_with(v, w, k, x, cols, offset, acc))
}

/// [`rows_u8`] with the given instruction set (which must be one of [`DotBytes::all`]).
pub fn rows_u8_with(
    v: DotBytes,
    w: &[u8],
    k: usize,
    x: &[u8],
    cols: usize,
    offset: i32,
    acc: &mut [[i32; 4]],
) -> bool {
    let rows = acc.len();
    let fits = k != 0 && k.is_multiple_of(32) && w.len() >= rows * k && x.len() >= cols * k;
    if !v.runs() || !fits || !rows.is_multiple_of(4) || !(0..=255).contains(&offset) || !(1..=2).contains(&cols) {
        return false;
    }
    let (w, x) = (w.as_ptr(), x.as_ptr());
    // SAFETY: the CPU has the variant's features (checked above); the slices were checked above.
    unsafe {
        match v {
            DotBytes::AvxVnni => u8_rows4_avxvnni(w, k, x, cols, offset, acc),
            DotBytes::Avx512Vnni => u8_rows4_avx512vnni(w, k, x, cols, offset, acc),
        }
    }
    true
}

#[target_feature(enable = "avx2,avxvnni")]
unsafe fn u8_rows4_avxvnni(w: *const u8, k: usize, x: *const u8, cols: usize, offset: i32, acc: &mut [[i32; 4]]) {
    // SAFETY: the features are enabled here; the caller checked the slices.
    unsafe { u8_rows4_cols::<AvxVnni>(w, k, x, cols, offset, acc) }
}

#[target_feature(enable = "avx2,avx512vnni,avx512vl")]
unsafe fn u8_rows4_avx512vnni(w: *const u8, k: usize, x: *const u8, cols: usize, offset: i32, acc: &mut [[i32; 4]]) {
    // SAFETY: the features are enabled here; the caller checked the slices.
    unsafe { u8_rows4_cols::<Avx512Vnni>(w, k, x, cols, offset, acc) }
}

/// The column count and whether there is an offset, as compile-time parameters of the kernel body, which
/// runs on each four rows of `acc` (rows `4i..4i + 4` from `w + 4i·k`).
#[inline(always)]
unsafe fn u8_rows4_cols<D: DotBytesOp>(
    w: *const u8,
    k: usize,
    x: *const u8,
    cols: usize,
    offset: i32,
    acc: &mut [[i32; 4]],
) {
    // SAFETY (caller): as for `u8_rows4`, for each four rows.
    unsafe {
        for (i, acc) in acc.chunks_exact_mut(4).enumerate() {
            let Ok(acc) = <&mut [[i32; 4]; 4]>::try_from(acc) else { return };
            let w = w.add(4 * i * k);
            match (cols, offset) {
                (1, 0) => u8_rows4::<D, 1, false>(w, k, x, offset, acc),
                (1, _) => u8_rows4::<D, 1, true>(w, k, x, offset, acc),
                (2, 0) => u8_rows4::<D, 2, false>(w, k, x, offset, acc),
                _ => u8_rows4::<D, 2, true>(w, k, x, offset, acc),
            }
        }
    }
}

/// The body of [`rows_u8`] for four rows and `C` columns, with or without an offset.
///
/// # Safety
/// Inlined into a function compiled with `D`'s features (and AVX2); four rows of `k` bytes from `w` at
/// stride `k` and `C` columns of `k` bytes from `x`, `k` a multiple of 32.
#[inline(always)]
unsafe fn u8_rows4<D: DotBytesOp, const C: usize, const OFFSET: bool>(
    w: *const u8,
    k: usize,
    x: *const u8,
    offset: i32,
    acc: &mut [[i32; 4]; 4],
) {
    // SAFETY (caller): the features are enabled; rows `r · k + 32q .. + 32` and columns `c · k + 32q .. + 32`
    // for `32q < k` are within the slices `rows_u8` checked.
    unsafe {
        let zero = _mm256_setzero_si256();
        let off = _mm256_set1_epi8(offset as u8 as i8);
        let (mut s, mut corr) = ([[zero; C]; 4], [zero; 4]);
        for q in 0..k / 32 {
            let mut xv = [zero; C];
            for (c, xv) in xv.iter_mut().enumerate() {
                *xv = _mm256_loadu_si256(x.add(c * k + 32 * q).cast());
            }
            for (r, (s, corr)) in s.iter_mut().zip(&mut corr).enumerate() {
                let wv = _mm256_loadu_si256(w.add(r * k + 32 * q).cast());
                for (s, &xv) in s.iter_mut().zip(&xv) {
                    *s = D::dpbusd(*s, xv, wv);
                }
                if OFFSET {
                    *corr = D::dpbusd(*corr, off, wv);
                }
            }
        }
        let [c0, c1, c2, c3] = corr;
        let mut v = [0i32; 8];
        if C == 1 {
            let [[a0], [a1], [a2], [a3]] = s.map(|r| [r.first().copied().unwrap_or(zero)]);
            // lanes 0..4: the rows' sums; 4..8: their offset terms
            let t = sums8(&[a0, a1, a2, a3, c0, c1, c2, c3]);
            _mm256_storeu_si256(v.as_mut_ptr().cast(), _mm256_sub_epi32(t, _mm256_permute2x128_si256(t, t, 0x11)));
            for (a, v) in acc.iter_mut().zip(v) {
                a[0] = a[0].wrapping_add(v);
            }
        } else {
            let [[a0, b0], [a1, b1], [a2, b2], [a3, b3]] =
                s.map(|r| [r.first().copied().unwrap_or(zero), r.get(1).copied().unwrap_or(zero)]);
            // lanes 2r, 2r + 1: row r's two columns; the offset term of row r in both
            let t = sums8(&[a0, b0, a1, b1, a2, b2, a3, b3]);
            let o = _mm256_permutevar8x32_epi32(
                sums8(&[c0, c1, c2, c3, zero, zero, zero, zero]),
                _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3),
            );
            _mm256_storeu_si256(v.as_mut_ptr().cast(), _mm256_sub_epi32(t, o));
            for (a, v) in acc.iter_mut().zip(v.chunks_exact(2)) {
                for (a, &v) in a.iter_mut().zip(v) {
                    *a = a.wrapping_add(v);
                }
            }
        }
    }
}
