//! Stack high-water mark by painting: fill the free RAM between the end of static data and the stack
//! pointer with a pattern at start-up, and later find the lowest word the stack overwrote.

const PAINT: u32 = 0x5A5A_A5A5;

extern "C" {
    /// End of .bss/.data (cortex-m-rt): the lowest address the stack could ever reach.
    static __sheap: u32;
    /// Top of the stack (cortex-m-rt).
    static _stack_start: u32;
}

fn bounds() -> (usize, usize) {
    // Only the addresses of the linker symbols are taken; nothing is read through them.
    (core::ptr::addr_of!(__sheap) as usize, core::ptr::addr_of!(_stack_start) as usize)
}

/// Paints from the end of static data up to 256 bytes below the current stack pointer.
#[inline(never)]
pub fn paint() {
    let (low, _) = bounds();
    let sp = cortex_m::register::msp::read() as usize - 256;
    let mut addr = low;
    while addr < sp {
        // SAFETY: [low, sp) is RAM no one uses yet: above all statics, below the live stack.
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// Bytes of stack used so far at most.
pub fn high_water() -> usize {
    let (low, top) = bounds();
    let mut addr = low;
    // SAFETY: reads words of RAM between the statics and the stack top, all mapped.
    while addr < top && unsafe { core::ptr::read_volatile(addr as *const u32) } == PAINT {
        addr += 4;
    }
    top - addr
}
