//! The Cortex-M55's Helium kernels (`core_infer::kernels::mve`) against their definitions, at every start
//! (the `self-test` and `mve` features), as `kernel_self_test` checks the DSP kernels: random weights,
//! inputs, zero points and requantization parameters, lengths that are and are not multiples of the
//! 16-byte vector, and windows at the image's edges.

use core_infer::kernels::{mve, requantize, QuantLinear};

/// A xorshift byte stream (the same every start).
struct Bytes(u32);

impl Bytes {
    fn next(&mut self) -> u8 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 as u8
    }
    fn word(&mut self) -> i32 {
        i32::from_le_bytes([self.next(), self.next(), self.next(), self.next()])
    }
}

/// The first case where a kernel differs from its definition, if any.
pub fn run() -> Option<&'static str> {
    let mut rng = Bytes(0x9e37_79b9);
    rows(&mut rng).or_else(|| conv(&mut rng))
}

/// `mve::rows`: 1 to 5 rows of 1 to 70 weights against 1 to 4 columns, `acc += Σ w · (x − zp)` wrapping.
fn rows(rng: &mut Bytes) -> Option<&'static str> {
    let (mut w, mut x) = ([0u8; 5 * 70], [0i8; 4 * 70]);
    for k in 1..=70 {
        for rows in 1..=5 {
            for cols in 1..=4 {
                w.iter_mut().for_each(|v| *v = rng.next());
                x.iter_mut().for_each(|v| *v = rng.next() as i8);
                // a zero point 0 half the time (the recurrent half's case, which takes its own pass)
                let zp = if rng.next() % 2 == 0 { 0 } else { i32::from(rng.next() as i8) };
                let start: [[i32; 4]; 5] = core::array::from_fn(|_| core::array::from_fn(|_| rng.word()));
                let mut got = start;
                if !mve::rows(&w[..rows * k], k, &x[..cols * k], cols, zp, &mut got[..rows]) {
                    return Some("mve::rows declined a valid shape");
                }
                for r in 0..rows {
                    for c in 0..4 {
                        let mut want = start[r][c];
                        if c < cols {
                            for j in 0..k {
                                let p = i32::from(w[r * k + j] as i8) * (i32::from(x[c * k + j]) - zp);
                                want = want.wrapping_add(p);
                            }
                        }
                        if got[r][c] != want {
                            return Some("mve::rows");
                        }
                    }
                }
            }
        }
    }
    None
}

/// Rows of the input columns in the conv cases: two pooled rows, the first window with the top edge in
/// it, the second with the bottom edge.
const ROWS_IN: usize = 4;
/// Largest input channel count and output count of the conv cases.
const CIN: usize = 32;
const OUT: usize = 8;

/// `mve::conv_pool` (16 and 32 input channels) and `mve::conv1_pool` (one) on windows with the image's
/// edges in them, against the definition of a 3×3 'same' conv, the 2×2 max and the int8 output.
fn conv(rng: &mut Bytes) -> Option<&'static str> {
    let mut w = [0u8; OUT * 9 * CIN];
    let mut input = [[0i8; ROWS_IN * CIN]; 4];
    let mut params = [[0u8; 4 * OUT]; 3];
    for case in 0..24 {
        let cin = [1, 16, 32][case % 3];
        let n = [4, 8][case / 3 % 2];
        w.iter_mut().for_each(|v| *v = rng.next());
        input.iter_mut().flatten().for_each(|v| *v = rng.next() as i8);
        for (i, p) in params.iter_mut().enumerate() {
            for v in p.chunks_exact_mut(4) {
                let raw = rng.word();
                // bias (small, as trained), Q31 multiplier, shift in −31..=−2 (conv1's kernel needs it;
                // conv_pool also takes the rest: every fourth case anywhere in −31..=30)
                let shift = if case % 4 == 3 && cin > 1 { raw.rem_euclid(62) - 31 } else { raw.rem_euclid(30) - 31 };
                v.copy_from_slice(&[raw >> 12, raw & i32::MAX, shift][i].to_le_bytes());
            }
        }
        let (zp_in, zp_out) = (i32::from(rng.next() as i8), i32::from(rng.next() as i8));
        let lo = if rng.next() % 2 == 0 { zp_out } else { -128 };
        let [bias, mult, shift] = &params;
        let q = QuantLinear { w: &w[..n * 9 * cin], bias, mult, shift, outputs: n, cin, zp_out, lo };
        // The left edge (column x − 1 outside the image) in odd cases.
        let col = |c: usize| (case % 2 == 0 || c > 0).then(|| &input[c][..ROWS_IN * cin]);
        let cols = [col(0), col(1), col(2), col(3)];
        let mut got = [0i8; 2 * OUT];
        let ran = if cin == 1 {
            mve::conv1_pool(&q, zp_in, cols, &mut got[..2 * n])
        } else {
            mve::conv_pool(&q, zp_in, cols, &mut got[..2 * n])
        };
        if !ran {
            return Some("a Helium conv kernel declined a valid layer");
        }
        let word = |t: &[u8], o: usize| i32::from_le_bytes([t[4 * o], t[4 * o + 1], t[4 * o + 2], t[4 * o + 3]]);
        for i in 0..2usize {
            for o in 0..n {
                let mut best = i32::MIN;
                for j in 0..4 {
                    // conv position (row 2i + j % 2, column j / 2): tap (ky, kx) reads row y + ky − 1 of
                    // column j / 2 + kx, x − zp_in, or 0 outside the image
                    let mut acc = word(bias, o);
                    for seg in 0..9 {
                        let (ky, kx) = (seg / 3, seg % 3);
                        let row = (2 * i + j % 2 + ky).checked_sub(1).filter(|&r| r < ROWS_IN);
                        for c in 0..cin {
                            let x = match (cols[j / 2 + kx], row) {
                                (Some(col), Some(r)) => i32::from(col[r * cin + c]) - zp_in,
                                _ => 0,
                            };
                            acc = acc.wrapping_add(i32::from(w[(o * 9 + seg) * cin + c] as i8) * x);
                        }
                    }
                    best = best.max(acc);
                }
                let want = zp_out.saturating_add(requantize(best, word(mult, o), word(shift, o))).clamp(lo, 127);
                if i32::from(got[i * n + o]) != want {
                    return Some(if cin == 1 { "mve::conv1_pool" } else { "mve::conv_pool" });
                }
            }
        }
    }
    None
}
