//! Instructions from a hardware counter, and the check that proves the count at every start.
//!
//! Cortex-M (`systick.rs`): under `qemu-system-arm -icount shift=0` every instruction takes 1 ns of
//! virtual time, and the mps2 boards' SysTick on the core clock runs at 25 MHz: one tick is 40
//! instructions ([`INSTRUCTIONS_PER_TICK`]; on mps2-an505, the Cortex-M33's board, 20 MHz: 50; on
//! mps3-an547, the M55's, 32 MHz: 31.25). QEMU's DWT cycle counter reads 0, so it is not used. On a
//! board the same code counts core clock cycles / 40, and the calibration line then shows the loop's
//! cycles per instruction instead of agreeing.
//! RISC-V (`minstret.rs`): the `minstret` CSR counts retired instructions, one per instruction.
//! Neither is taken on trust: [`calibrate`] times a loop whose instruction count is known from its code,
//! the firmware prints both numbers, and it fails (as does `tools/firmware.sh test`) unless they agree.

use core::arch::asm;

#[cfg(target_arch = "riscv32")]
mod minstret;
#[cfg(target_arch = "arm")]
mod systick;
#[cfg(target_arch = "riscv32")]
pub use minstret::{Timer, INSTRUCTIONS_PER_TICK};
#[cfg(target_arch = "arm")]
pub use systick::{Timer, INSTRUCTIONS_PER_TICK};

/// Iterations of the calibration loop: 2 instructions each, 4 M instructions in all.
const CALIBRATION_ITERATIONS: u32 = 2_000_000;

/// A timed workload of a known length, against the timer.
pub struct Calibration {
    /// Instructions the workload executes, from its code.
    pub known: u64,
    /// What the timer measured, the cost of its own reads subtracted.
    pub measured: u64,
    /// What two timer reads back to back measure (subtracted above).
    pub overhead: u64,
    /// How far `measured` may be from `known`: one tick of quantization at each end of each of the two
    /// measurements (the workload's and the overhead's), plus the loop's two set-up instructions.
    pub tolerance: u64,
}

impl Calibration {
    pub fn agrees(&self) -> bool {
        self.measured.abs_diff(self.known) <= self.tolerance
    }
}

/// Times [`CALIBRATION_ITERATIONS`] of a `subs`/`bne` loop (RISC-V: `addi`/`bnez`): exactly two
/// instructions per iteration (the last branch, not taken, is executed all the same), so `2 × iterations`
/// instructions, besides the one or two that put the count in a register.
#[inline(never)]
pub fn calibrate(timer: &mut Timer) -> Calibration {
    let t0 = timer.now();
    let t1 = timer.now();
    let overhead = t1 - t0;
    let start = timer.now();
    // SAFETY: a register-only countdown loop; it touches no memory and changes only the flags.
    #[cfg(target_arch = "arm")]
    unsafe {
        asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
            n = inout(reg) CALIBRATION_ITERATIONS => _,
            options(nomem, nostack),
        );
    }
    // SAFETY: a register-only countdown loop; it touches no memory.
    #[cfg(target_arch = "riscv32")]
    unsafe {
        asm!(
            "2:",
            "addi {n}, {n}, -1",
            "bnez {n}, 2b",
            n = inout(reg) CALIBRATION_ITERATIONS => _,
            options(nomem, nostack),
        );
    }
    let end = timer.now();
    let known = 2 * u64::from(CALIBRATION_ITERATIONS);
    Calibration {
        known,
        measured: (end - start).saturating_sub(overhead),
        overhead,
        tolerance: 4 * INSTRUCTIONS_PER_TICK.0.div_ceil(INSTRUCTIONS_PER_TICK.1) + 2,
    }
}
