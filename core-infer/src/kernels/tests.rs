//! The shared kernel suite: every kernel set this machine runs, against definitions written out here
//! (exact i64 sums over the plain inputs, the 64-bit requantization, libm), bit for bit for int8. Each
//! kernel family lists its implementations by name ([`block_kernels`], [`row4_kernels`]); an
//! implementation the CPU lacks is skipped and said so on stderr, and `kernel_inventory` prints how many
//! ran (`cargo test -p core-infer kernel_inventory -- --nocapture`).
use super::*;
use crate::block::{put, zero_tail};
#[cfg(target_arch = "x86_64")]
use crate::kernels::x86_64::{avx2, sse2, vnni};
use proptest::prelude::*;
use std::vec::Vec;

fn table(f: impl Fn(f64) -> f64) -> Vec<u8> {
    (0..LUT_LEN).flat_map(|k| (((f(-8.0 + k as f64 / 32.0)) * 32767.0).round() as i16).to_le_bytes()).collect()
}
use crate::format::names::LUT_LEN;

/// The definition: `Σ_j w[r·k + j] · (x_c[j] − zp)` exactly, for row `r` and column `c`.
fn definition(w: &[u8], k: usize, r: usize, x: &[i8], zp: i32) -> i64 {
    definition_of(w, k, k, r, x, zp)
}

/// [`definition`] over the first `n` inputs of the rows only (what a kernel that ran `n / 4` groups did).
fn definition_of(w: &[u8], k: usize, n: usize, r: usize, x: &[i8], zp: i32) -> i64 {
    (0..n).map(|j| i64::from(w[r * k + j] as i8) * (i64::from(x[j]) - i64::from(zp))).sum()
}

/// `cols` columns of `k` inputs `x − zp` in a word-aligned block (the DSP kernels need the alignment).
fn block_of(x: &[i8], k: usize, cols: usize, zp: i32) -> Vec<i16> {
    let mut block = std::vec![0i16; block_len(k, cols)];
    zero_tail(&mut block, cols, k, LANES);
    for c in 0..cols {
        put(&mut block, cols, c, 0, &x[c * k..(c + 1) * k], LANES, |a| i16::from(a) - zp as i16);
    }
    block
}

/// A one-row kernel: `acc[c] += row · column c` for the block's `acc.len()` columns.
type BlockKernel = fn(&[u8], usize, &[i16], &mut [i32]);

/// Every implementation of the one-row block dot product this machine runs, by name.
fn block_kernels() -> Vec<(&'static str, BlockKernel)> {
    let mut all: Vec<(&'static str, BlockKernel)> =
        std::vec![("reference", reference::dot_block_portable), ("selected (dot_block)", dot_block)];
    #[cfg(target_arch = "x86_64")]
    all.push(("sse2 + reference tail", |w, k, block, acc| {
        // SAFETY: SSE2 is part of the x86-64 baseline.
        #[allow(unsafe_code)]
        let done = unsafe { sse2::dot_block(w, k, block, acc) };
        reference::portable_groups(w, k, block, acc, done);
    }));
    all
}

/// A four-row kernel: `acc[r][c] += row r · column c`, returning the groups of four it ran (0: declined).
type Row4Kernel = fn(&[u8], usize, &[i16], usize, &mut [[i32; 4]; 4]) -> usize;

/// Says `what` on stderr once per test run.
#[allow(dead_code)]
fn skipped(what: &'static str) {
    static SAID: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&what) {
        said.push(what);
        std::eprintln!("SKIPPED: {what}");
    }
}

/// Every four-row i16 kernel this CPU runs, by name (the AVX2 `vpmaddwd` one and the AVX-VNNI `vpdpwssd` one).
fn row4_kernels() -> Vec<(&'static str, Row4Kernel)> {
    #[allow(unused_mut)]
    let mut all: Vec<(&'static str, Row4Kernel)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if avx2::available() {
            // SAFETY: the CPU has AVX2 (checked above).
            #[allow(unsafe_code)]
            all.push(("avx2", |w, k, b, cols, acc| unsafe { avx2::dot_rows4_i8(w, k, b, cols, acc) }));
        } else {
            skipped("this CPU has no AVX2; the AVX2 four-row kernel is not tested on it");
        }
        if avx2::vnni() {
            // SAFETY: the CPU has AVX2 and AVX-VNNI (checked above).
            #[allow(unsafe_code)]
            all.push(("avx-vnni", |w, k, b, cols, acc| unsafe { avx2::dot_rows4_i8_vnni(w, k, b, cols, acc) }));
        } else {
            skipped("this CPU has no AVX-VNNI; the vpdpwssd four-row kernel is not tested on it");
        }
    }
    all
}

#[test]
fn kernel_inventory() {
    let blocks = block_kernels().len();
    let rows = row4_kernels().len();
    #[cfg(target_arch = "x86_64")]
    let bytes = vnni::DotBytes::all().count();
    #[cfg(not(target_arch = "x86_64"))]
    let bytes = 0;
    std::eprintln!(
        "kernel suite on this machine: {blocks} block kernels (of 3 on x86-64), {rows} four-row i16 kernels \
         (of 2), {bytes} unsigned-byte variants (of 2) run against the definitions"
    );
    assert!(blocks >= 2);
}

proptest! {
/// Every block kernel equals the definition exactly, for any int8 weights, inputs, zero point, row
/// length and 1-4 columns, also when the weights run on past the row (as inside a tensor), and adds
/// to what the accumulators held.
#[test]
fn every_block_kernel_equals_the_definition(
    w in proptest::collection::vec(any::<u8>(), 0..300),
    x in proptest::collection::vec(any::<i8>(), 4 * 300),
    zp in -128i32..=127,
    cols in 1usize..=4,
    extra in 0usize..4,
    start in any::<[i16; 4]>(),
) {
    let k = w.len().saturating_sub(extra);
    let block = block_of(&x, k, cols, zp);
    for (name, kernel) in block_kernels() {
        let mut got: Vec<i32> = start[..cols].iter().map(|&s| i32::from(s)).collect();
        kernel(&w, k, &block, &mut got);
        for (c, &got) in got.iter().enumerate() {
            let want = i64::from(start[c]) + definition(&w, k, 0, &x[c * k..], zp);
            prop_assert_eq!(i64::from(got), want, "{}: column {} of {}, k {}", name, c, cols, k);
        }
    }
}

/// Every four-row kernel equals the definition on the groups it says it ran (all of them, the last
/// whole only when the weights run on that far), for 1, 2 and 4 columns.
#[test]
fn every_row4_kernel_equals_the_definition(
    w in proptest::collection::vec(any::<u8>(), 4..1300),
    x in proptest::collection::vec(any::<i8>(), 4 * 330),
    zp in -128i32..=127,
    cols in prop::sample::select(std::vec![1usize, 2, 4]),
    extra in 0usize..4,
) {
    let k = ((w.len() - extra) / 4).min(330);
    let block = block_of(&x, k, cols, zp);
    let whole = if w.len() >= 3 * k + 4 * k.div_ceil(4) { k.div_ceil(4) } else { k / 4 };
    for (name, kernel) in row4_kernels() {
        let mut acc = [[0i32; 4]; 4];
        let done = kernel(&w, k, &block, cols, &mut acc);
        prop_assert_eq!(done, whole, "{}", name);
        for (r, acc) in acc.iter().enumerate() {
            for (c, &got) in acc.iter().enumerate().take(cols) {
                let want = definition_of(&w, k, (4 * done).min(k), r, &x[c * k..], zp);
                prop_assert_eq!(i64::from(got), want, "{}: row {}, column {}", name, r, c);
            }
        }
    }
}

/// The selected many-rows pass (`dot_rows`: the four-row kernels or the DSP pass where they run) and
/// the two-row pass and its reference equal the definition, row by row, for any row length; the
/// weights may run on past the last row, as inside a tensor.
#[test]
fn selected_row_passes_equal_the_definition(
    w in proptest::collection::vec(any::<u8>(), 0..1300),
    x in proptest::collection::vec(any::<i8>(), 4 * 320),
    zp in -128i32..=127,
    rows in 1usize..=4,
    cols in 1usize..=4,
    extra in 0usize..8,
) {
    let k = (w.len().saturating_sub(extra) / 4).min(320);
    let block = block_of(&x, k, cols, zp);
    let mut got = std::vec![[7i32, -3, 5, 11]; rows];
    dot_rows(&w, k, &block, cols, &mut got);
    for (r, got) in got.iter().enumerate() {
        for (c, &got) in got.iter().enumerate().take(cols) {
            let want = [7i64, -3, 5, 11][c] + definition(&w, k, r, &x[c * k..], zp);
            prop_assert_eq!(i64::from(got), want, "row {} of {}, column {}, k {}", r, rows, c, k);
        }
    }
    if w.len() >= 2 * k {
        let one = block_of(&x, k, 1, zp);
        let want = [0, 1].map(|r| definition(&w, k, r, &x, zp));
        prop_assert_eq!(dot_rows2(&w, k, &one).map(i64::from), want, "dot_rows2, k {}", k);
        prop_assert_eq!(dot_rows2_portable(&w, k, &one).map(i64::from), want, "dot_rows2_portable, k {}", k);
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
    reference::cell(sig, tanh, q, &mut h_ref, &mut c_ref);
    #[cfg(target_arch = "x86_64")]
    if avx2::available() {
    let (mut h8, mut c8) = (h.clone(), cs.clone());
    let done = avx2::lstm_cell_i8(q, &mut h8, &mut c8, sig.bytes(), tanh.bytes());
    prop_assert_eq!(done, units / 8 * 8);
    prop_assert_eq!(&h8[..done], &h_ref[..done]);
    prop_assert_eq!(&c8[..done], &c_ref[..done]);
    }
    super::cell(sig, tanh, q, &mut h, &mut cs);
    prop_assert_eq!(h, h_ref);
    prop_assert_eq!(cs, c_ref);
}

/// Prepared inputs (unsigned bytes with an offset on x86-64 with AVX-VNNI or AVX512-VNNI, else a
/// block) through [`dot_prepared`] equal the portable kernel on the block of `x − zp`, bit for bit,
/// for any zero point, 1 or 2 columns and 1-8 rows (four and eight take the kernel, others the plain
/// loop); so does every unsigned-byte variant the CPU runs on four and eight rows.
#[test]
fn prepared_rows_match_portable(
    w in proptest::collection::vec(any::<u8>(), 8 * 256),
    x in proptest::collection::vec(any::<i8>(), 2 * 256),
    n in prop::sample::select(std::vec![32usize, 64, 96, 256, 36]),
    zp in prop::sample::select(std::vec![-128i32, 0, 127, -5]),
    cols in 1usize..=2,
    rows in 1usize..=8,
) {
    let columns: std::vec::Vec<&[i8]> = (0..cols).map(|c| &x[c * n..(c + 1) * n]).collect();
    let mut block = std::vec![0i16; block_len(n, cols)];
    let prepared = prepare(&mut block, n, &columns, zp).unwrap();
    #[cfg(target_arch = "x86_64")]
    if vnni::DotBytes::get().is_some() {
    prop_assert_eq!(matches!(prepared, Prepared::Bytes(..)), n % 32 == 0);
    }
    let mut got = std::vec![[3i32, -9, 0, 0]; rows];
    dot_prepared(&w, n, &prepared, cols, &mut got);
    let mut reference = std::vec![0i16; block_len(n, cols)];
    load(&mut reference, n, &columns, LANES, |a| i16::from(a) - zp as i16);
    let mut want = [[3i32, -9, 0, 0]; 8];
    for (r, want) in want.iter_mut().enumerate() {
    dot_block_portable(&w[r * n..], n, &reference, &mut want[..cols]);
    }
    for (r, got) in got.iter().enumerate() {
    prop_assert_eq!(got, &want[r], "row {} of {}, n {}, {} columns, zp {}", r, rows, n, cols, zp);
    }
    #[cfg(target_arch = "x86_64")]
    if let Prepared::Bytes(bytes, offset) = prepared {
    for v in vnni::DotBytes::all() {
        // four rows, and eight in one call
        for rows in [4, 8] {
            let mut acc = std::vec![[3i32, -9, 0, 0]; rows];
            prop_assert!(vnni::rows_u8_with(v, &w, n, bytes, cols, offset, &mut acc));
            prop_assert_eq!(&acc[..], &want[..rows], "{:?}", v);
        }
    }
    }
    #[cfg(target_arch = "x86_64")]
    if vnni::DotBytes::all().count() < 2 {
    skipped("this CPU lacks AVX-VNNI or AVX512-VNNI; that unsigned-byte rows variant is not tested on it");
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
    super::requantize_add(&mut got, &acc, with_bias.then_some(&bias[..]), mult, shift);
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
}}

/// An int8 LSTM cell: the state update from the gates.
type CellKernel = fn(Lut<'_>, Lut<'_>, [&[i32]; 4], &mut [i8], &mut [i16]);

proptest! {
    /// The int8 LSTM cell (every implementation: the reference, and the selected one, AVX2 where the CPU
    /// has it) against the cell's real-number definition, `c' = σ(f)·c + σ(i)·tanh(g)`,
    /// `h = σ(o)·tanh(c')`, with the gates in Q3.12, `c` in Q4.11 and `h` as `127·h`: within the tables'
    /// interpolation error (4e-4 each) and the fixed-point roundings, over gates in and beyond the
    /// tables' range and cell states of any size.
    #[test]
    fn lstm_cell_matches_the_real_definition(
        gates in proptest::collection::vec(-(10i32 << GATE_FRAC)..(10 << GATE_FRAC), 4 * 19),
        c in proptest::collection::vec(any::<i16>(), 19),
    ) {
        let (sig, tanh) = (table(|x| 1.0 / (1.0 + (-x).exp())), table(f64::tanh));
        let (sig, tanh) = (Lut::new(&sig).unwrap(), Lut::new(&tanh).unwrap());
        let q: [&[i32]; 4] = core::array::from_fn(|k| &gates[19 * k..19 * (k + 1)]);
        let sigmoid = |z: i32| 1.0 / (1.0 + (-f64::from(z) / 4096.0).exp());
        let tanh_q12 = |z: i32| (f64::from(z) / 4096.0).tanh();
        let implementations: [(&str, CellKernel); 2] = [("reference", reference::cell), ("selected", super::cell)];
        for (name, cell) in implementations {
            let (mut h, mut cs) = (std::vec![0i8; 19], c.clone());
            cell(sig, tanh, q, &mut h, &mut cs);
            for u in 0..19 {
                let c0 = f64::from(c[u]) / 2048.0;
                let c1 = sigmoid(q[1][u]) * c0 + sigmoid(q[0][u]) * tanh_q12(q[2][u]);
                let dc = (c0.abs() + 2.0) * 5e-4 + 2.0 / 2048.0;
                let want_c = (c1 * 2048.0).clamp(-32768.0, 32767.0);
                prop_assert!((f64::from(cs[u]) - want_c).abs() <= 2048.0 * dc, "{}: c {} vs {}", name, cs[u], want_c);
                // tanh reads the state from its table's range, [−8, 8)
                let want_h = 127.0 * sigmoid(q[3][u]) * (c1.clamp(-8.0, 8.0)).tanh();
                prop_assert!((f64::from(h[u]) - want_h).abs() <= 127.0 * (1e-3 + dc) + 1.0, "{}: h {} vs {}", name, h[u], want_h);
            }
        }
    }
}
