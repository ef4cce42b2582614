//! Cortex-M4/M7 (Armv7E-M) kernels with the DSP extension. Per group of four weights: one load of the
//! weight word, two SXTB16 to split it into i16 pairs, then per column two SMLAD (two multiply-adds
//! each), the inputs of two columns loaded by one LDM (one LDRD per column for one or three columns).
//! With four columns that is 13 instructions for 16 multiply-adds. Here: the block kernels
//! ([`dot_block`], [`rows`], [`dot_rows2`]'s two-row pass), the fused conv + pool + requantize window
//! ([`pooled_rows`], its channel loop one `asm!` block), the input widening ([`widen`]) and the copy of
//! converted inputs ([`copy_groups4`]). The arithmetic is exact (wrapping) integer arithmetic, so results
//! equal the reference kernels' ([`crate::kernels::reference`]) bit for bit: the firmware's self-test
//! compares them at start-up, and its outputs are diffed with the host's.
#![allow(unsafe_code)]

use core::arch::asm;

#[cfg(doc)]
use crate::kernels::reference::requantize;
use crate::kernels::QuantLinear;

/// One group of four weights as assembly text: the weight word, split by two SXTB16, then per
/// column one LDRD of its four inputs and two SMLAD.
macro_rules! group {
    ($($c:ident)+) => {
        concat!(
            "ldr {w}, [{wp}], #4\n",
            "sxtb16 {t}, {w}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            $(
                "ldrd {x0}, {x1}, [{xp}], #8\n",
                "smlad {", stringify!($c), "}, {t}, {x0}, {", stringify!($c), "}\n",
                "smlad {", stringify!($c), "}, {w}, {x1}, {", stringify!($c), "}\n",
            )+
        )
    };
}

/// One weight word split into its i16 pairs (`$t`: bytes 0 and 2, `$w`: 1 and 3), then two columns:
/// one LDM of their four input words into r0-r3 and four SMLAD into `$a` and `$b`. The registers are
/// given as template text: `asm!` operands (`"{w}"`) or fixed registers (`"r12"`).
macro_rules! ldm_group {
    ($w:literal, $t:literal, $wp:literal, $xp:literal, $a:literal, $b:literal) => {
        concat!(
            "ldr ", $w, ", [", $wp, "], #4\n",
            "sxtb16 ", $t, ", ", $w, "\n",
            "sxtb16 ", $w, ", ", $w, ", ror #8\n",
            ldm_columns!($w, $t, $xp, $a, $b),
        )
    };
}

/// Two more columns against the same weight halves: one LDM, four SMLAD.
macro_rules! ldm_columns {
    ($w:literal, $t:literal, $xp:literal, $a:literal, $b:literal) => {
        concat!(
            "ldm ", $xp, "!, {{r0, r1, r2, r3}}\n",
            "smlad ", $a, ", ", $t, ", r0, ", $a, "\n",
            "smlad ", $a, ", ", $w, ", r1, ", $a, "\n",
            "smlad ", $b, ", ", $t, ", r2, ", $b, "\n",
            "smlad ", $b, ", ", $w, ", r3, ", $b, "\n",
        )
    };
}

/// One group of four weights against four columns, their inputs loaded two columns at a time by LDM
/// into r0-r3: one weight load, two SXTB16, two LDM and eight SMLAD, 13 instructions for 16
/// multiply-adds (the LDRD form, [`group!`], takes 15).
macro_rules! group4 {
    () => {
        concat!(
            ldm_group!("{w}", "{t}", "{wp}", "{xp}", "{c0}", "{c1}"),
            ldm_columns!("{w}", "{t}", "{xp}", "{c2}", "{c3}"),
        )
    };
}

/// The same against two columns: one LDM of r0-r3 holds both columns' inputs (8 instructions for 8
/// multiply-adds; [`group!`] takes 9).
macro_rules! group2 {
    () => {
        ldm_group!("{w}", "{t}", "{wp}", "{xp}", "{c0}", "{c1}")
    };
}

/// `$unroll` (1 or 4) copies of a group. Written out rather than `.rept`, so that LLVM, which sizes
/// inline assembly by its lines, knows how long the loop is when it places its own branches around it.
macro_rules! unrolled {
    (1, $g:ident $($c:ident)*) => { $g!($($c)*) };
    (3, $g:ident $($c:ident)*) => { concat!($g!($($c)*), $g!($($c)*), $g!($($c)*)) };
    (4, $g:ident $($c:ident)*) => { concat!($g!($($c)*), $g!($($c)*), $g!($($c)*), $g!($($c)*)) };
}


/// The kernel loop: `$n` ≥ 1 iterations of `$unroll` groups of four weights, one accumulator per
/// column. Four and two columns take the LDM forms (four columns use all twelve registers an `asm!`
/// block may have, so their loop keeps its end address on the stack: three instructions per
/// iteration, as `subs`/`bne` take two); one and three the LDRD form.
macro_rules! columns {
    ($wp:ident, $xp:ident, $n:expr, $unroll:tt, $c0:ident $c1:ident $c2:ident $c3:ident) => {{
        let end = $wp.wrapping_add(4 * $unroll * $n);
        // SAFETY (callers): `$wp` has 4 · $n · $unroll readable bytes, `$xp` 32 · $n · $unroll,
        // word-aligned; the stack word is released before the block ends. Flags are clobbered.
        unsafe {
            asm!(
                "sub sp, #8",
                "str r0, [sp]",
                "2:",
                unrolled!($unroll, group4),
                "ldr r0, [sp]",
                "cmp {wp}, r0",
                "bne.w 2b", // (.w: the unrolled loop may be longer than a 16-bit branch reaches)
                "add sp, #8",
                wp = inout(reg) $wp,
                xp = inout(reg) $xp,
                c0 = inout(reg) $c0,
                c1 = inout(reg) $c1,
                c2 = inout(reg) $c2,
                c3 = inout(reg) $c3,
                w = out(reg) _,
                t = out(reg) _,
                inout("r0") end => _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                options(readonly),
            )
        }
    }};
    ($wp:ident, $xp:ident, $n:expr, $unroll:tt, $c0:ident $c1:ident) => {
        // SAFETY (callers): `$wp` has 4 · $n · $unroll readable bytes, `$xp` 16 · $n · $unroll,
        // word-aligned. Only registers besides; flags are clobbered (no preserves_flags).
        unsafe {
            asm!(
                "2:",
                unrolled!($unroll, group2),
                "subs {n}, {n}, #1",
                "bne.w 2b",
                wp = inout(reg) $wp,
                xp = inout(reg) $xp,
                n = inout(reg) $n => _,
                c0 = inout(reg) $c0,
                c1 = inout(reg) $c1,
                w = out(reg) _,
                t = out(reg) _,
                out("r0") _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                options(nostack, readonly),
            )
        }
    };
    ($wp:ident, $xp:ident, $n:expr, $unroll:tt, $($c:ident)+) => {
        // SAFETY (callers): `$wp` has 4 · $n · $unroll readable bytes, `$xp` 8 · columns · $n · $unroll,
        // word-aligned. Only registers besides; flags are clobbered (no preserves_flags).
        unsafe {
            asm!(
                "2:",
                unrolled!($unroll, group $($c)+),
                "subs {n}, {n}, #1",
                "bne.w 2b",
                wp = inout(reg) $wp,
                xp = inout(reg) $xp,
                n = inout(reg) $n => _,
                $($c = inout(reg) $c,)+
                w = out(reg) _,
                t = out(reg) _,
                x0 = out(reg) _,
                x1 = out(reg) _,
                options(nostack, readonly),
            )
        }
    };
}

/// Runs the whole groups it can and returns how many it ran (the caller finishes the rest).
pub fn dot_block(w: &[u8], k: usize, block: &[i16], acc: &mut [i32]) -> usize {
    // LDRD needs word-aligned addresses.
    if !(block.as_ptr() as usize).is_multiple_of(4) || acc.is_empty() || acc.len() > 4 {
        return 0;
    }
    // The row's groups, its last one whole when the tensor holds the bytes; within the block.
    let groups = if w.len() >= k.next_multiple_of(4) { k.div_ceil(4) } else { k / 4 };
    let groups = groups.min(block.len() / (4 * acc.len()));
    let (mut wp, mut xp) = (w.as_ptr(), block.as_ptr());
    let (n4, n1) = (groups / 4, groups % 4);
    let [mut c0, mut c1, mut c2, mut c3] = [0i32; 4];
    // The groups four at a time (unrolled), then the rest one at a time.
    macro_rules! run {
        ($($c:ident)+) => {{
            if n4 > 0 {
                columns!(wp, xp, n4, 4, $($c)+);
            }
            if n1 > 0 {
                columns!(wp, xp, n1, 1, $($c)+);
            }
        }};
    }
    match acc.len() {
        1 => run!(c0),
        2 => run!(c0 c1),
        3 => run!(c0 c1 c2),
        _ => run!(c0 c1 c2 c3),
    }
    for (a, c) in acc.iter_mut().zip([c0, c1, c2, c3]) {
        *a = a.wrapping_add(c);
    }
    let _ = (wp, xp); // advanced by the last run, not needed after it
    groups
}

/// Rows `w[..k]` and `w[k..2k]` against one column, for `k` a multiple of 4 (else `None`). Per group:
/// one LDRD of the inputs, then per row a weight load, two SXTB16 and two SMLAD.
pub fn dot_rows2(w: &[u8], k: usize, block: &[i16]) -> Option<[i32; 2]> {
    let groups = k / 4;
    if !(block.as_ptr() as usize).is_multiple_of(4)
        || !k.is_multiple_of(4)
        || w.len() < 2 * k
        || block.len() < k
        || groups == 0
    {
        return None;
    }
    // SAFETY: checked above: `w` holds both rows, `block` is word-aligned and holds the groups.
    Some(unsafe { rows2(w.as_ptr(), block.as_ptr(), k, groups, [0, 0]) })
}

/// One group of two rows (`w` at `{wp}` and `{wp} + {k}`) against the inputs in `$x0`, `$x1`: per row
/// a weight load, two SXTB16 and two SMLAD.
macro_rules! pair_group {
    ($x0:literal, $x1:literal) => {
        concat!(
            "ldr {w}, [{wp}, {k}]\n",
            "sxtb16 {t}, {w}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {c1}, {t}, ", $x0, ", {c1}\n",
            "smlad {c1}, {w}, ", $x1, ", {c1}\n",
            "ldr {w}, [{wp}], #4\n",
            "sxtb16 {t}, {w}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad {c0}, {t}, ", $x0, ", {c0}\n",
            "smlad {c0}, {w}, ", $x1, ", {c0}\n",
        )
    };
}

/// [`dot_rows2`]'s loop, adding to `[c0, c1]`: four groups per iteration while they last (two LDM of
/// r0-r3 load their inputs: 44 instructions per 32 multiply-adds), then one at a time (LDRD: 13 per 8).
///
/// # Safety
/// `wp` and `wp + k` have `4 · groups` readable bytes, `xp` is word-aligned with `8 · groups`, `groups ≥ 1`.
#[inline(always)]
unsafe fn rows2(
    mut wp: *const u8,
    mut xp: *const i16,
    k: usize,
    groups: usize,
    [mut c0, mut c1]: [i32; 2],
) -> [i32; 2] {
    let (n4, mut n1) = (groups / 4, groups % 4);
    if n4 > 0 {
        let mut n = n4;
        // SAFETY: by the caller's contract (16 · n4 weight bytes per row, 32 · n4 input bytes); registers
        // only otherwise.
        unsafe {
            asm!(
                "2:",
                "ldm {xp}!, {{r0, r1, r2, r3}}",
                pair_group!("r0", "r1"),
                pair_group!("r2", "r3"),
                "ldm {xp}!, {{r0, r1, r2, r3}}",
                pair_group!("r0", "r1"),
                pair_group!("r2", "r3"),
                "subs {n}, {n}, #1",
                "bne.w 2b",
                wp = inout(reg) wp,
                xp = inout(reg) xp,
                n = inout(reg) n,
                k = in(reg) k,
                c0 = inout(reg) c0,
                c1 = inout(reg) c1,
                w = out(reg) _,
                t = out(reg) _,
                out("r0") _,
                out("r1") _,
                out("r2") _,
                out("r3") _,
                options(nostack, readonly),
            )
        };
        let _ = n;
    }
    if n1 > 0 {
        // SAFETY: the rest of the same rows and inputs; registers only otherwise.
        unsafe {
            asm!(
                "2:",
                "ldrd {x0}, {x1}, [{xp}], #8",
                "ldr {w}, [{wp}, {k}]",
                "sxtb16 {t}, {w}",
                "sxtb16 {w}, {w}, ror #8",
                "smlad {c1}, {t}, {x0}, {c1}",
                "smlad {c1}, {w}, {x1}, {c1}",
                "ldr {w}, [{wp}], #4",
                "sxtb16 {t}, {w}",
                "sxtb16 {w}, {w}, ror #8",
                "smlad {c0}, {t}, {x0}, {c0}",
                "smlad {c0}, {w}, {x1}, {c0}",
                "subs {n}, {n}, #1",
                "bne 2b",
                wp = inout(reg) wp,
                xp = inout(reg) xp,
                n = inout(reg) n1,
                k = in(reg) k,
                c0 = inout(reg) c0,
                c1 = inout(reg) c1,
                w = out(reg) _,
                t = out(reg) _,
                x0 = out(reg) _,
                x1 = out(reg) _,
                options(nostack, readonly),
            )
        };
    }
    let _ = (wp, xp, n1);
    [c0, c1]
}

/// [`crate::block::put`] of `x − zp` for whole groups: per four inputs one load, two SXTB16 (which
/// leave them in [`crate::kernels::LANES`] order) and two SSUB16. Returns false, doing nothing, unless `k0`
/// and `x.len()` are multiples of 4, the block is word-aligned and holds every group written.
pub fn widen(block: &mut [i16], cols: usize, col: usize, k0: usize, x: &[i8], zp: i32) -> bool {
    let groups = x.len() / 4;
    let first = (k0 / 4 * cols + col) * 4; // slot of input k0
    let last_end = first + groups.saturating_sub(1) * 4 * cols + 4;
    if !k0.is_multiple_of(4)
        || !x.len().is_multiple_of(4)
        || !(block.as_ptr() as usize).is_multiple_of(4)
        || last_end > block.len()
        || col >= cols
    {
        return false;
    }
    // zp fits i16 (checked at load): both halves hold it.
    let zp2 = u32::from(zp as i16 as u16) * 0x0001_0001;
    let mut dst = block.as_mut_ptr().wrapping_add(first).cast::<u32>();
    for four in x.chunks_exact(4) {
        let word = <[i8; 4]>::try_from(four).map_or(0, |b| u32::from_le_bytes(b.map(|v| v as u8)));
        let (even, odd): (u32, u32);
        // SAFETY: registers only (SSUB16 sets the GE flags, which nothing reads).
        unsafe {
            asm!(
                "sxtb16 {e}, {w}",
                "sxtb16 {o}, {w}, ror #8",
                "ssub16 {e}, {e}, {z}",
                "ssub16 {o}, {o}, {z}",
                w = in(reg) word,
                z = in(reg) zp2,
                e = out(reg) even,
                o = out(reg) odd,
                options(pure, nomem, nostack),
            );
        }
        // SAFETY: `dst` walks the groups' slots, word-aligned, the last ending within `block` (checked).
        unsafe {
            dst.write(even);
            dst.add(1).write(odd);
        }
        dst = dst.wrapping_add(2 * cols);
    }
    true
}

/// [`crate::block::copy_groups`] into a four-column block for whole pairs of groups: per two groups one
/// LDM of their four words and two STRD (each to its column's slot, 32 bytes apart). Returns false,
/// doing nothing, unless `k0` is a multiple of 4, `src` holds a whole, non-zero number of group pairs,
/// both are word-aligned and every slot written is in `block`.
pub fn copy_groups4(block: &mut [i16], col: usize, k0: usize, src: &[i16]) -> bool {
    let pairs = src.len() / 8;
    let first = (k0 / 4 * 4 + col) * 4;
    if pairs == 0
        || !src.len().is_multiple_of(8)
        || !k0.is_multiple_of(4)
        || col >= 4
        || !(block.as_ptr() as usize).is_multiple_of(4)
        || !(src.as_ptr() as usize).is_multiple_of(4)
        || first + 16 * (2 * pairs - 1) + 4 > block.len()
    {
        return false;
    }
    let (mut dst, mut from, mut n) = (block.as_mut_ptr().wrapping_add(first), src.as_ptr(), pairs);
    // SAFETY: `from` walks `src`'s 16 bytes per pair, `dst` the written slots, all within `block`
    // (checked above), word-aligned; r0-r3 are clobbered.
    unsafe {
        asm!(
            "2:",
            "ldm {from}!, {{r0, r1, r2, r3}}",
            "strd r0, r1, [{dst}], #32",
            "strd r2, r3, [{dst}], #32",
            "subs {n}, {n}, #1",
            "bne 2b",
            from = inout(reg) from,
            dst = inout(reg) dst,
            n = inout(reg) n,
            out("r0") _,
            out("r1") _,
            out("r2") _,
            out("r3") _,
            options(nostack),
        )
    };
    let _ = (dst, from, n);
    true
}

/// [`crate::kernels::dot_rows`] for any number of rows (`acc.len()`) in one lean loop: row `r`'s weights at
/// `w[r · k..]`, its last group read whole, one column at a time for 2 or 4 columns, two rows at a
/// time for one. Returns how many rows it ran, from the first: all but those whose last group ends
/// beyond `w` (none in the seed's dense and LSTM layers); none where it cannot run (a block that is not
/// word-aligned or too short, a column count other than 1, 2 and 4, one column with `k` not a multiple
/// of 4, or `k` = 0).
#[inline(never)] // (one copy for every layer: flash; and inlined it measured slower)
pub fn rows(w: &[u8], k: usize, block: &[i16], cols: usize, all: &mut [[i32; 4]]) -> usize {
    let groups = k.div_ceil(4);
    if groups == 0
        || !(block.as_ptr() as usize).is_multiple_of(4)
        || block.len() < 4 * groups * cols
        || !matches!(cols, 1 | 2 | 4)
        || (cols == 1 && !k.is_multiple_of(4))
    {
        return 0;
    }
    rows_fitting(w, k, groups, block, cols, all)
}

/// Longest row (bytes, whole groups) [`pooled_rows`] copies to run it when its last group ends past the
/// tensor (conv1's last channel).
const PADDED: usize = 16;

/// [`rows`] for the rows whose last group ends within `w` (checked arguments); returns how many.
#[inline(always)]
fn rows_fitting(w: &[u8], k: usize, groups: usize, block: &[i16], cols: usize, acc: &mut [[i32; 4]]) -> usize {
    // Row r reads w[r·k .. r·k + 4·groups].
    let fit = w.len().checked_sub(4 * groups).map_or(0, |room| room / k + 1);
    let rows = acc.len().min(fit);
    let Some(acc) = acc.get_mut(..rows) else { return 0 };
    let (n4, n1) = (groups / 4, groups % 4);
    let row = |r: usize| {
        // SAFETY: r < rows, and the last row's last group ends within `w` (checked above).
        unsafe { w.as_ptr().add(r * k) }
    };
    // Each arm: the columns! loops (SAFETY: the row's 4 · groups bytes are in `w`, the block holds
    // 4 · groups · cols word-aligned i16, both checked above).
    match cols {
        4 => {
            for (r, a) in acc.iter_mut().enumerate() {
                let (mut wp, mut xp) = (row(r), block.as_ptr());
                let [mut c0, mut c1, mut c2, mut c3] = *a;
                if n4 > 0 {
                    columns!(wp, xp, n4, 4, c0 c1 c2 c3);
                }
                if n1 > 0 {
                    columns!(wp, xp, n1, 1, c0 c1 c2 c3);
                }
                let _ = (wp, xp); // advanced by the last loop, not needed after it
                *a = [c0, c1, c2, c3];
            }
        }
        2 => {
            for (r, a) in acc.iter_mut().enumerate() {
                let (mut wp, mut xp) = (row(r), block.as_ptr());
                let [mut c0, mut c1, c2, c3] = *a;
                // (one group per iteration: two columns are only a dense or LSTM layer's last steps)
                columns!(wp, xp, groups, 1, c0 c1);
                let _ = (wp, xp);
                *a = [c0, c1, c2, c3];
            }
        }
        _ => {
            let mut pairs = acc.chunks_exact_mut(2);
            for (p, ab) in (&mut pairs).enumerate() {
                if let [a, b] = ab {
                    // SAFETY: rows 2p and 2p + 1 are within `w` (checked above), as is the block.
                    [a[0], b[0]] = unsafe { rows2(row(2 * p), block.as_ptr(), k, groups, [a[0], b[0]]) };
                }
            }
            // an odd last row is left to the caller (the reference: no layer of the seed's model has one)
            return rows - pairs.into_remainder().len();
        }
    }
    rows
}

/// One group of four weights against four columns with the fixed registers of [`pooled_asm`]: weights
/// at r4, the block at r5, the sums in r8-r11, r12 and lr the weight halves, r0-r3 the inputs.
macro_rules! group4_fixed {
    () => {
        concat!(ldm_group!("r12", "lr", "r4", "r5", "r8", "r9"), ldm_columns!("r12", "lr", "r5", "r10", "r11"))
    };
}

/// The channel loop of [`pooled_rows`], all of it in one `asm!` block: per channel the bias into four
/// sums, `$groups` (the kernel: three groups straight for conv1, or a loop of four), the largest of the
/// four, then the requantization's one-word form (the product's high word plus `2^(s − 1)`, shifted by
/// `s = −shift − 1`, as [`requantize`] computes it for shifts in −31..=−2), the output zero point added
/// (saturating), clamped to `lo..=127` (SSAT, then the lower bound). Its state lives in a 48-byte frame
/// it pushes: bias, multiplier, shift and output pointers, the channel count, the block, zero point,
/// lowest output, the weight pointer's correction per row and the bytes a row reads.
macro_rules! pooled_asm {
    ($wp:expr, $regs:expr, $kernel:expr) => {{
        let [bias, mult, shift, out, n, block, zp, lo, delta, bytes] = $regs;
        // SAFETY (callers): `n` ≥ 1 channels; the weight rows from `$wp` (each `bytes` read, then
        // `delta` more to the next row), `n` words at each of `bias`, `mult`, `shift`, `n` bytes at
        // `out`, the block's `4 · bytes` word-aligned i16; the frame is released before the end.
        unsafe {
            asm!(
                "push {{r0, r1, r2, r3, r8, r9, r10, r11, r12, lr}}",
                "sub sp, #8",
                // frame: [0] loop end, [8] bias, [12] mult, [16] shift, [20] out, [24] n, [28] block,
                // [32] zp, [36] lo, [40] delta, [44] bytes
                "3:",
                "ldr r5, [sp, #28]",
                "ldr r0, [sp, #8]",
                "ldr r8, [r0], #4",
                "str r0, [sp, #8]",
                "mov r9, r8",
                "mov r10, r8",
                "mov r11, r8",
                $kernel,
                "ldr r0, [sp, #40]",
                "add r4, r4, r0",
                "cmp r9, r8",
                "it gt",
                "movgt r8, r9",
                "cmp r11, r10",
                "it gt",
                "movgt r10, r11",
                "cmp r10, r8",
                "it gt",
                "movgt r8, r10",
                "ldrd r0, r1, [sp, #12]",
                "ldr r2, [r0], #4",
                "ldr r3, [r1], #4",
                "strd r0, r1, [sp, #12]",
                "mvn r3, r3",
                "sub r0, r3, #1",
                "movs r1, #1",
                "lsl r1, r1, r0",
                "smmla r8, r8, r2, r1",
                "asr r8, r8, r3",
                "ldrd r0, r1, [sp, #32]",
                "qadd r8, r8, r0",
                "ssat r8, #8, r8",
                "cmp r8, r1",
                "it lt",
                "movlt r8, r1",
                "ldr r0, [sp, #20]",
                "strb r8, [r0], #1",
                "str r0, [sp, #20]",
                "ldr r0, [sp, #24]",
                "subs r0, r0, #1",
                "str r0, [sp, #24]",
                "bne.w 3b",
                "add sp, #48",
                inout("r4") $wp => _,
                inout("r0") bias => _,
                inout("r1") mult => _,
                inout("r2") shift => _,
                inout("r3") out => _,
                inout("r8") n => _,
                inout("r9") block => _,
                inout("r10") zp => _,
                inout("r11") lo => _,
                inout("r12") delta => _,
                inout("lr") bytes => _,
                out("r5") _,
            )
        }
    }};
}

/// One conv + pool window for every output channel of `q` (`out.len()` of them): per channel the four
/// positions' sums (columns of `block`, `k` inputs each, from the bias), their largest, its
/// requantization and clamping, in one `asm!` loop over the channels (nothing stored between the kernel
/// pass, the pool and the requantization; the generic path stores four sums per channel and reads them
/// back). `fast` says every shift of `q` is in −31..=−2 (the quantizer's usual case, checked at load),
/// whose one-word requantization the loop does. Returns false, doing nothing, where it cannot run: other
/// shifts, a row length other than nine or a multiple of sixteen, a block not word-aligned or too short,
/// tensors too short.
#[inline(never)] // (one copy for both convs: flash)
pub fn pooled_rows(q: &QuantLinear<'_>, k: usize, block: &[i16], out: &mut [i8], fast: bool) -> bool {
    let groups = k.div_ceil(4);
    let n = out.len();
    let fit = q.w.len().checked_sub(4 * groups).map_or(0, |room| room / k.max(1) + 1).min(n);
    if !fast
        || !(groups == 3 || (k.is_multiple_of(16) && groups >= 4))
        || !(block.as_ptr() as usize).is_multiple_of(4)
        || block.len() < 16 * groups
        || q.bias.len() < 4 * n
        || q.mult.len() < 4 * n
        || q.shift.len() < 4 * n
        || (fit < n && 4 * groups > PADDED)
    {
        return false;
    }
    // Channels [from, to) with rows from `wp` (`k` apart).
    let run = |wp: *const u8, from: usize, to: usize, out: &mut [i8]| {
        if to <= from {
            return;
        }
        let at = |t: &[u8]| t.as_ptr().wrapping_add(4 * from) as usize;
        let regs = [
            at(q.bias),
            at(q.mult),
            at(q.shift),
            out.as_mut_ptr().wrapping_add(from) as usize,
            to - from,
            block.as_ptr() as usize,
            q.zp_out as usize,
            q.lo as usize,
            k.wrapping_sub(4 * groups), // the row's end past what the kernel read (conv1: 9 − 12)
            4 * groups,
        ];
        if groups == 3 {
            pooled_asm!(wp, regs, concat!(group4_fixed!(), group4_fixed!(), group4_fixed!()));
        } else {
            pooled_asm!(
                wp,
                regs,
                concat!(
                    "ldr r0, [sp, #44]\n",
                    "add r0, r0, r4\n",
                    "str r0, [sp, #0]\n",
                    "2:\n",
                    group4_fixed!(),
                    group4_fixed!(),
                    group4_fixed!(),
                    group4_fixed!(),
                    "ldr r0, [sp, #0]\n",
                    "cmp r4, r0\n",
                    "bne.w 2b\n",
                )
            );
        }
    };
    // The rows within the tensor straight from it; the last ones, whose final group would end past it
    // (conv1's last channel: nine weights read as twelve), each from a zero-padded copy.
    run(q.w.as_ptr(), 0, fit, out);
    for o in fit..n {
        let mut padded = [0u8; PADDED];
        let src = q.w.get(o * k..).unwrap_or(&[]);
        let len = src.len().min(k);
        if let (Some(d), Some(s)) = (padded.get_mut(..len), src.get(..len)) {
            d.copy_from_slice(s);
        }
        run(padded.as_ptr(), o, o + 1, out);
    }
    true
}
