//! Instructions per inference from SysTick. Under `qemu-system-arm -icount shift=0` the 25 MHz SysTick
//! ticks once per 25 instructions (1 ns each), so ticks × 25 is an exact instruction count (QEMU's DWT
//! cycle counter reads 0). On a board the same code measures core clock cycles / 25.

use core::sync::atomic::{AtomicU32, Ordering};

use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;

static WRAPS: AtomicU32 = AtomicU32::new(0);
const RELOAD: u32 = 0x00FF_FFFF;
const INSTRUCTIONS_PER_TICK: u64 = 25;

pub struct Timer {
    syst: Option<SYST>,
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
            syst
        });
        Timer { syst }
    }

    /// Instructions since `start` (wrap-safe: the SysTick interrupt counts the 2^24-tick periods).
    pub fn now(&mut self) -> u64 {
        loop {
            let before = WRAPS.load(Ordering::Acquire);
            let current = SYST::get_current();
            if WRAPS.load(Ordering::Acquire) == before {
                let ticks = u64::from(before) * u64::from(RELOAD + 1) + u64::from(RELOAD - current);
                return ticks * INSTRUCTIONS_PER_TICK;
            }
        }
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
