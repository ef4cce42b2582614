#!/usr/bin/env bash
# Cargo runner of firmware-example: runs an ELF on QEMU's Cortex-M4F board (mps2-an386; QEMU_MACHINE and
# QEMU_CPU choose another, as tools/firmware.sh --core does) with
# semihosting, with -icount shift=0 so SysTick counts instructions exactly, and decodes the defmt
# stream (semihosting stdout) with defmt-print. Exits with the firmware's exit code.
set -uo pipefail
elf=$1
qemu-system-arm -machine "${QEMU_MACHINE:-mps2-an386}" -cpu "${QEMU_CPU:-cortex-m4}" -nographic -monitor none -serial none \
    -icount shift=0 -semihosting-config enable=on,target=native -kernel "$elf" \
    | defmt-print -e "$elf" --log-format "{s}"
exit "${PIPESTATUS[0]}"
