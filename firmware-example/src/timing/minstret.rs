//! The RISC-V counter: `minstret`, the machine-mode count of retired instructions (64 bits in two CSRs on
//! RV32). Under `qemu-system-riscv32 -icount shift=0` QEMU derives it from its exact instruction count
//! (without `-icount` it would follow the host's clock instead).

/// One count per instruction.
pub const INSTRUCTIONS_PER_TICK: (u64, u64) = (1, 1);

pub struct Timer {
    /// The raw reading at start, so that [`Timer::now`] counts from there.
    base: u64,
}

impl Timer {
    pub fn start() -> Self {
        Timer { base: riscv::register::minstret::read64() }
    }

    /// Instructions since [`Timer::start`].
    pub fn now(&mut self) -> u64 {
        riscv::register::minstret::read64() - self.base
    }

    pub fn stop(&mut self) {}
}
