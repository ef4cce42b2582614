//! Instructions from SysTick, and the check that proves the count at every start.
//!
//! Under `qemu-system-arm -icount shift=0` every instruction takes 1 ns of virtual time, and the mps2
//! boards' SysTick on the core clock runs at 25 MHz: one tick is 40 instructions
//! ([`INSTRUCTIONS_PER_TICK`]; on mps2-an505, the Cortex-M33's board, 20 MHz: 50; on mps3-an547, the
//! M55's, 32 MHz: 31.25). That constant is not taken on trust: [`calibrate`] times a loop whose
//! instruction count is known from its code, the firmware prints both numbers, and it fails (as does
//! `tools/firmware.sh test`) unless they agree. QEMU's DWT cycle counter reads 0, so it is not used.
//! On a board the same code counts core clock cycles / 40, and the calibration line then shows the
//! loop's cycles per instruction instead of agreeing.

use core::arch::asm;
use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;

/// SysTick interrupts taken: each one is a period of `RELOAD + 1` ticks.
static WRAPS: AtomicU32 = AtomicU32::new(0);
const RELOAD: u32 = 0x00FF_FFFF;
/// 1 ns per instruction (icount shift 0) × 25 MHz SysTick = 40 instructions per tick (mps2-an385,
/// an386, an500); checked by [`calibrate`] at every start. A ratio, `INSTRUCTIONS_PER_TICK.0 /
/// INSTRUCTIONS_PER_TICK.1`, since not every board's clock divides 1 GHz.
#[cfg(not(armv8m))]
pub const INSTRUCTIONS_PER_TICK: (u64, u64) = (40, 1);
/// mps2-an505 (the Cortex-M33's board) clocks its SysTick at 20 MHz: 50 instructions per tick.
#[cfg(all(armv8m, not(an547)))]
pub const INSTRUCTIONS_PER_TICK: (u64, u64) = (50, 1);
/// mps3-an547 (the Cortex-M55's board) clocks it at 32 MHz: 31.25 instructions per tick.
#[cfg(an547)]
pub const INSTRUCTIONS_PER_TICK: (u64, u64) = (125, 4);

pub struct Timer {
    syst: Option<SYST>,
    /// The raw reading at start, so that [`Timer::now`] counts from there.
    base: u64,
}

impl Timer {
    pub fn start() -> Self {
        let syst = cortex_m::Peripherals::take().map(|p| {
            let mut syst = p.SYST;
            syst.set_clock_source(SystClkSource::Core);
            syst.set_reload(RELOAD);
            syst.clear_current();
            syst.enable_interrupt();
            syst.enable_counter();
            // The cleared counter reads 0 until its first reload, which would read as a whole period
            // elapsed: wait for the reload (one tick), so that every reading from here on is a count.
            while SYST::get_current() == 0 {}
            syst
        });
        let mut timer = Timer { syst, base: 0 };
        timer.base = timer.raw();
        timer
    }

    /// Ticks since the counter started (wrap-safe: the SysTick interrupt counts the periods).
    fn raw(&self) -> u64 {
        loop {
            let before = WRAPS.load(Ordering::Acquire);
            let current = SYST::get_current();
            if WRAPS.load(Ordering::Acquire) == before {
                return u64::from(before) * u64::from(RELOAD + 1) + u64::from(RELOAD - current);
            }
        }
    }

    /// Instructions since [`Timer::start`], to one tick ([`INSTRUCTIONS_PER_TICK`]).
    pub fn now(&mut self) -> u64 {
        let (num, den) = INSTRUCTIONS_PER_TICK;
        (self.raw() - self.base) * num / den
    }

    pub fn stop(&mut self) {
        if let Some(syst) = self.syst.as_mut() {
            syst.disable_counter();
        }
    }
}

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::AcqRel);
}

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

/// Times [`CALIBRATION_ITERATIONS`] of a `subs`/`bne` loop: exactly two instructions per iteration (the
/// last `bne`, not taken, is executed all the same), so `2 × iterations` instructions, besides the one or
/// two that put the count in a register.
#[inline(never)]
pub fn calibrate(timer: &mut Timer) -> Calibration {
    let t0 = timer.now();
    let t1 = timer.now();
    let overhead = t1 - t0;
    let start = timer.now();
    // SAFETY: a register-only countdown loop; it touches no memory and changes only the flags.
    unsafe {
        asm!(
            "2:",
            "subs {n}, {n}, #1",
            "bne 2b",
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
