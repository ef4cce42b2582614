/* Reset and vector table for the Cortex-M4F of QEMU's mps2-an386, with newlib's semihosting (rdimon).
 * The few lines a C startup needs: the FPU on (the library is built for the hard-float ABI), .data copied
 * from flash, .bss zeroed, semihosting opened, main's result passed to the host as the exit code. */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t _sidata[], _sdata[], _edata[], _sbss[], _ebss[], _stack_top[];
extern void initialise_monitor_handles(void);
extern int main(void);

void Reset_Handler(void) {
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10 and CP11 full access */
    __asm volatile("dsb\n isb");
    for (uint32_t *s = _sidata, *d = _sdata; d < _edata;) *d++ = *s++;
    for (uint32_t *d = _sbss; d < _ebss;) *d++ = 0;
    initialise_monitor_handles();
    exit(main());
}

static void Fault_Handler(void) {
    exit(3); /* a fault ends the run with a failure, not a hang */
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))_stack_top, Reset_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    Fault_Handler,
};
