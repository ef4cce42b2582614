#!/usr/bin/env bash
# Cargo runner of firmware-example: runs an ELF on QEMU's Cortex-M4F board (mps2-an386; QEMU_MACHINE and
# QEMU_CPU choose another, as tools/firmware.sh --core does; QEMU_MACHINE=virt: qemu-system-riscv32) with
# semihosting, with -icount shift=0 so SysTick counts instructions exactly, and decodes the defmt
# stream (semihosting stdout) with defmt-print. Exits with the firmware's exit code.
set -uo pipefail
elf=$1
if [ "${QEMU_MACHINE:-}" = virt ]; then
    # RV32: QEMU's virt machine, no firmware (-bios none: the reset vector jumps to the ELF at 0x8000_0000).
    qemu-system-riscv32 -machine virt -bios none -nographic -monitor none -serial none \
        -icount shift=0 -semihosting-config enable=on,target=native -kernel "$elf" \
        | defmt-print -e "$elf" --log-format "{s}"
else
    qemu-system-arm -machine "${QEMU_MACHINE:-mps2-an386}" -cpu "${QEMU_CPU:-cortex-m4}" -nographic -monitor none -serial none \
        -icount shift=0 -semihosting-config enable=on,target=native -kernel "$elf" \
        | defmt-print -e "$elf" --log-format "{s}"
fi
exit "${PIPESTATUS[0]}"
