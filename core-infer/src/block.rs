//! Input blocks: the layout every dot-product kernel reads its inputs from.
//!
//! A block holds `cols` input vectors ("columns") of `n` values each, already in the form the kernel
//! multiplies (`f32`, or `x − zero point` widened to `i16` for int8), so that each value is converted
//! once per block instead of once per output channel. The values are grouped by four: group `g` of
//! column `c` is the four slots at `(g · cols + c) · 4`, so a kernel walking one weight row reads the
//! four columns' inputs for the same four weights side by side (one weight word, four accumulators).
//! Within a group, input `j` sits in slot `lanes[j]`: int8 on Arm uses `[0, 2, 1, 3]`, the order in
//! which the SXTB16 instruction splits a weight word into its even and odd bytes.
//! `n` is padded to a multiple of four; the padding slots hold zero, so a kernel may run over them.

/// Slots of a block of `cols` columns of `n` inputs.
pub const fn block_len(n: usize, cols: usize) -> usize {
    n.next_multiple_of(4) * cols
}

/// The slot of input `k` of column `col`.
#[inline]
fn slot(k: usize, col: usize, cols: usize, lanes: [usize; 4]) -> usize {
    ((k / 4) * cols + col) * 4 + lanes.get(k % 4).copied().unwrap_or(k % 4)
}

/// Writes `f(x[i])` as input `k0 + i` of column `col`. Slots outside `block` are skipped (the callers
/// size blocks from the model's layout, so that only happens for inconsistent sizes, never a panic).
#[inline]
pub fn put<A: Copy, I: Copy>(
    block: &mut [I],
    cols: usize,
    col: usize,
    k0: usize,
    x: &[A],
    lanes: [usize; 4],
    f: impl Fn(A) -> I,
) {
    // Single values up to a group boundary, then whole groups (one bounds check per four), then the rest.
    let head = ((4 - k0 % 4) % 4).min(x.len());
    let (first, rest) = x.split_at(head);
    for (i, &a) in first.iter().enumerate() {
        if let Some(v) = block.get_mut(slot(k0 + i, col, cols, lanes)) {
            *v = f(a);
        }
    }
    let k = k0 + head;
    let mut groups = rest.chunks_exact(4);
    for (g, four) in (&mut groups).enumerate() {
        let base = ((k / 4 + g) * cols + col) * 4;
        if let Some(dst) = block.get_mut(base..base + 4) {
            for (&lane, &a) in lanes.iter().zip(four) {
                if let Some(v) = dst.get_mut(lane) {
                    *v = f(a);
                }
            }
        }
    }
    let k = k + rest.len() - groups.remainder().len();
    for (i, &a) in groups.remainder().iter().enumerate() {
        if let Some(v) = block.get_mut(slot(k + i, col, cols, lanes)) {
            *v = f(a);
        }
    }
}

/// Copies `src`, inputs already in the block's form and lane order for one column (a one-column block's
/// whole groups), to inputs `k0 ..` of column `col` (`k0` a multiple of 4): four slots at a time.
#[inline]
pub fn copy_groups<I: Copy>(block: &mut [I], cols: usize, col: usize, k0: usize, src: &[I]) {
    let first = (k0 / 4 * cols + col) * 4;
    let dst = block.get_mut(first..).unwrap_or(&mut []);
    for (d, s) in dst.chunks_mut(4 * cols).zip(src.chunks_exact(4)) {
        if let Some(d) = d.get_mut(..4) {
            d.copy_from_slice(s);
        }
    }
}

/// Sets inputs `k0 .. k0 + len` of column `col` to `value` (padding).
pub fn fill<I: Copy>(block: &mut [I], cols: usize, col: usize, k0: usize, len: usize, lanes: [usize; 4], value: I) {
    for k in k0..k0 + len {
        if let Some(v) = block.get_mut(slot(k, col, cols, lanes)) {
            *v = value;
        }
    }
}

/// Fills a whole block: column `c` holds `f` of `columns[c]` (each of `n` inputs), the padding is zeroed.
pub fn load<A: Copy, I: Copy + Default>(
    block: &mut [I],
    n: usize,
    columns: &[&[A]],
    lanes: [usize; 4],
    f: impl Fn(A) -> I + Copy,
) {
    let cols = columns.len();
    zero_tail(block, cols, n, lanes);
    for (col, x) in columns.iter().enumerate() {
        put(block, cols, col, 0, x.get(..n).unwrap_or(x), lanes, f);
    }
}

/// Zeroes the padding slots after input `n` of every column (needed when `n` is not a multiple of 4).
pub fn zero_tail<I: Copy + Default>(block: &mut [I], cols: usize, n: usize, lanes: [usize; 4]) {
    for col in 0..cols {
        fill(block, cols, col, n, n.next_multiple_of(4) - n, lanes, I::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_places_every_input_in_its_slot() {
        let lanes = [0, 2, 1, 3];
        for cols in 1..=4 {
            for k0 in 0..6 {
                for len in 0..11 {
                    let n = k0 + len;
                    let mut block = std::vec![-1i32; block_len(n, cols)];
                    let x: std::vec::Vec<i32> = (0..len as i32).collect();
                    put(&mut block, cols, cols - 1, k0, &x, lanes, |a| a * 10);
                    for (i, &a) in x.iter().enumerate() {
                        assert_eq!(block[slot(k0 + i, cols - 1, cols, lanes)], a * 10);
                    }
                    let written = block.iter().filter(|&&v| v >= 0).count();
                    assert_eq!(written, len, "cols {cols} k0 {k0} len {len}: something else was overwritten");
                }
            }
        }
    }

    #[test]
    fn zero_tail_clears_only_padding() {
        let mut block = [7i16; 24];
        zero_tail(&mut block, 2, 9, [0, 2, 1, 3]);
        // groups of 4: g0 c0, g0 c1, g1 c0, g1 c1, g2 c0, g2 c1; n = 9 leaves 1 input in group 2
        assert_eq!(&block[..16], &[7; 16]);
        assert_eq!(&block[16..24], &[7, 0, 0, 0, 7, 0, 0, 0]);
        // n = 10: inputs 8 and 9 stay, in slots 0 and 2 of the paired lanes
        let mut block = [7i16; 12];
        zero_tail(&mut block, 1, 10, [0, 2, 1, 3]);
        assert_eq!(&block[8..12], &[7, 0, 7, 0]);
    }

    #[test]
    fn out_of_range_writes_are_skipped() {
        let mut block = [0u8; 4];
        put(&mut block, 1, 0, 2, &[1u8, 2, 3, 4, 5], [0, 1, 2, 3], |a| a);
        assert_eq!(block, [0, 0, 1, 2]);
    }
}
