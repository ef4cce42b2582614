//! The stack: a guard against overflow, and its high-water mark by painting.
//!
//! cortex-m-rt puts the stack at the top of RAM, growing down towards the statics. Unguarded, an
//! overflow would silently overwrite them (the scratch buffer, the model's working memory). So the
//! lowest 2 KiB the stack could reach are an MPU region with no access: the first store into them
//! faults, and the HardFault handler (below, on a fresh stack) reports a stack overflow and exits non-zero.
//! On Armv8-M (the Cortex-M33) the core's stack limit register MSPLIM does the same job: it is set to the
//! guard's top, and a push below it raises a stack-overflow UsageFault (escalated to HardFault) before
//! anything is written. On RISC-V a locked PMP region with no permissions guards it (a locked region binds
//! machine mode too), and the trap entry, on a fresh stack, says so.
//! A function whose frame exceeds the guard could step over it, so large buffers are statics here (the
//! scratch, which the picture borrows, and the image being drawn). The largest frames left are the parsed model's (a few
//! KB, moved by value during `Model::parse`), taken near the top of the stack, far from the guard.
//!
//! The free RAM above the guard is painted with a pattern at start-up; the lowest word the stack
//! overwrote since gives the high-water mark.

const PAINT: u32 = 0x5A5A_A5A5;
/// Bytes of the guard region (a power of two, aligned to its size, as the MPU requires).
const GUARD: usize = 2048;
/// The MPU's RASR.SIZE field for [`GUARD`]: the region holds 2^(SIZE + 1) bytes.
#[cfg(all(target_arch = "arm", not(armv8m)))]
const GUARD_SIZE_FIELD: u32 = GUARD.trailing_zeros() - 1;

extern "C" {
    /// End of .bss/.data (cortex-m-rt): the lowest address the stack could ever reach.
    static __sheap: u32;
    /// Top of the stack (cortex-m-rt).
    static _stack_start: u32;
}

/// `(guard start, stack top)`: the guard is `[start, start + GUARD)`, the stack may use the rest.
fn bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken; nothing is read through them.
    let heap = core::ptr::addr_of!(__sheap) as usize;
    (heap.next_multiple_of(GUARD), core::ptr::addr_of!(_stack_start) as usize)
}

/// The guard region's address range.
pub fn guard() -> core::ops::Range<usize> {
    let (start, _) = bounds();
    start..start + GUARD
}

/// Armv8-M: the stack may not go below the guard's top (MSPLIM).
#[cfg(armv8m)]
pub fn enable_guard() {
    let limit = guard().end as u32;
    // SAFETY: the limit lies below the live stack (the guard is under all of it); only pushes below it,
    // an overflow, fault.
    unsafe { core::arch::asm!("msr MSPLIM, {0}", "isb", in(reg) limit, options(nostack, preserves_flags)) };
}

/// Makes the guard region inaccessible (MPU region 0; everything else keeps the default memory map).
#[cfg(all(target_arch = "arm", not(armv8m)))]
pub fn enable_guard() {
    let start = guard().start as u32;
    // RASR: XN (bit 28), AP = 0b000 no access (bits 26:24), SIZE (bits 5:1), ENABLE (bit 0).
    let rasr = (1 << 28) | (GUARD_SIZE_FIELD << 1) | 1;
    // SAFETY: region 0 covers only the guard bytes no code uses; PRIVDEFENA (bit 2) keeps the default
    // map for everything else, so no other access changes. HardFault runs with the MPU off (HFNMIENA = 0).
    unsafe {
        let mpu = &*cortex_m::peripheral::MPU::PTR;
        mpu.rnr.write(0);
        mpu.rbar.write(start);
        mpu.rasr.write(rasr);
        mpu.ctrl.write((1 << 2) | 1);
    }
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
}

/// Paints from above the guard up to 256 bytes below the current stack pointer.
#[inline(never)]
pub fn paint() {
    let low = guard().end;
    let sp = stack_pointer() - 256;
    let mut addr = low;
    while addr < sp {
        // SAFETY: [low, sp) is RAM no one uses yet: above all statics and the guard, below the live stack.
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// Bytes of stack used so far at most.
pub fn high_water() -> usize {
    let (_, top) = bounds();
    let mut addr = guard().end;
    // SAFETY: reads words of RAM between the guard and the stack top, all mapped and accessible.
    while addr < top && unsafe { core::ptr::read_volatile(addr as *const u32) } == PAINT {
        addr += 4;
    }
    top - addr
}

/// Recurses with a large frame until the stack hits the guard (the `stack-overflow-demo` feature).
#[cfg(feature = "stack-overflow-demo")]
#[inline(never)]
#[allow(unconditional_recursion)]
pub fn overflow(depth: u32) -> u32 {
    let frame = core::hint::black_box([depth; 64]);
    frame[(depth % 64) as usize] + overflow(depth + 1)
}

/// The current stack pointer.
#[inline(always)]
fn stack_pointer() -> usize {
    #[cfg(target_arch = "arm")]
    return cortex_m::register::msp::read() as usize;
    #[cfg(target_arch = "riscv32")]
    {
        let sp: usize;
        // SAFETY: reads a register.
        unsafe { core::arch::asm!("mv {0}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
        sp
    }
}

// HardFault: switch to a fresh stack first (the old one may sit in the guard, where any push faults
// again), then report from Rust. Replaces cortex-m-rt's `HardFault` (its default is `PROVIDE`d).
#[cfg(target_arch = "arm")]
core::arch::global_asm!(
    ".section .HardFault.user, \"ax\"",
    ".global HardFault",
    ".type HardFault,%function",
    ".thumb_func",
    "HardFault:",
    "    mrs r0, MSP",
    "    ldr r1, =_stack_start",
    "    msr MSP, r1",
    "    b {report}",
    report = sym hard_fault_report,
);

/// Says what faulted and exits non-zero. `sp` is the stack pointer at the fault.
#[cfg(target_arch = "arm")]
extern "C" fn hard_fault_report(sp: u32) -> ! {
    // SAFETY: reads of the System Control Block's fault status and address registers.
    let (cfsr, mmfar) =
        unsafe { ((*cortex_m::peripheral::SCB::PTR).cfsr.read(), core::ptr::read_volatile(0xE000_ED34 as *const u32)) };
    let guard = guard();
    let mm_address_valid = cfsr & (1 << 7) != 0;
    // UFSR.STKOF (Armv8-M): a push crossed MSPLIM.
    let stack_limit = cfsr & (1 << 20) != 0;
    let in_guard = |a: usize| a + 64 >= guard.start && a < guard.end + 64;
    if stack_limit || in_guard(sp as usize) || (mm_address_valid && guard.contains(&(mmfar as usize))) {
        defmt::error!("stack overflow: the stack reached its guard at {=usize:08x} (sp {=u32:08x})", guard.start, sp);
    } else {
        defmt::error!("HardFault: CFSR {=u32:08x}, sp {=u32:08x}", cfsr, sp);
    }
    cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// RISC-V: the guard as PMP entry 0, NAPOT (a naturally aligned power of two: `pmpaddr` holds the
/// base and, in its low ones, the size), locked (so machine mode obeys it), with no read, write or
/// execute permission. Every other address keeps machine mode's default: all access.
#[cfg(target_arch = "riscv32")]
pub fn enable_guard() {
    let start = guard().start; // a multiple of GUARD (`bounds`)
    let napot = (start | (GUARD / 2 - 1)) >> 2;
    // pmpcfg0 byte 0: L (bit 7) | A = NAPOT (bits 4:3 = 0b11) | R = W = X = 0; entries 1-3 off.
    let cfg: usize = 0x98;
    // SAFETY: entry 0 covers only the guard bytes no code uses; nothing else changes.
    unsafe { core::arch::asm!("csrw pmpaddr0, {0}", "csrw pmpcfg0, {1}", in(reg) napot, in(reg) cfg, options(nostack)) };
}

// RISC-V trap entry (riscv-rt's `_start_trap`, which this replaces, would save registers on the stack
// that may sit in the guard): the stack pointer at the trap, then a fresh stack, then the report. The
// firmware takes no interrupts, so every trap is a fault.
#[cfg(target_arch = "riscv32")]
core::arch::global_asm!(
    ".section .trap.start, \"ax\"",
    ".global _start_trap",
    ".p2align 2",
    "_start_trap:",
    "    mv a3, sp",
    "    la sp, _stack_start",
    "    csrr a0, mcause",
    "    csrr a1, mtval",
    "    csrr a2, mepc",
    "    j {report}",
    report = sym trap_report,
);

/// Says what trapped and exits non-zero: a load or store access fault (mcause 5, 7) in the guard is the
/// stack overflow.
#[cfg(target_arch = "riscv32")]
extern "C" fn trap_report(mcause: usize, mtval: usize, mepc: usize, sp: usize) -> ! {
    let guard = guard();
    if (mcause == 5 || mcause == 7) && guard.contains(&mtval) {
        defmt::error!("stack overflow: the stack reached its guard at {=usize:08x} (sp {=usize:08x})", guard.start, sp);
    } else {
        defmt::error!("trap: mcause {=usize}, mtval {=usize:08x}, mepc {=usize:08x}, sp {=usize:08x}", mcause, mtval, mepc, sp);
    }
    crate::exit(false)
}
