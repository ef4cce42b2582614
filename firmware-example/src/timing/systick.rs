//! The Cortex-M boards' counter: SysTick on the core clock, wrap-safe through its interrupt.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;

/// SysTick interrupts taken: each one is a period of `RELOAD + 1` ticks.
static WRAPS: AtomicU32 = AtomicU32::new(0);
const RELOAD: u32 = 0x00FF_FFFF;
/// 1 ns per instruction (icount shift 0) × 25 MHz SysTick = 40 instructions per tick (mps2-an385,
/// an386, an500); checked by `super::calibrate` at every start. A ratio, `INSTRUCTIONS_PER_TICK.0 /
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

