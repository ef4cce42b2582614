#!/usr/bin/env bash
# core-infer's C API (core-infer/capi): its header, its host test and its Cortex-M4F example.
#
#   tools/capi.sh test       the header is current; the host C test (gcc, x86-64) and the C firmware under
#                            QEMU mps2-an386 both print the `model:`/`test N:` lines of
#                            firmware-example/expected.txt (diffed) and every API check holds; footprints
#   tools/capi.sh host       the host C test only
#   tools/capi.sh firmware   the C firmware only (build, run under QEMU, diff)
#   tools/capi.sh header     regenerate core-infer/capi/include/core_infer.h after changing src/lib.rs
#
# The library is a no_std static library: `cargo build` in core-infer/capi (its own workspace) writes
# target/[TRIPLE/]release/libcore_infer_capi.a; its build fails when the checked-in header is stale.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CAPI=$ROOT/core-infer/capi
BUILD=$ROOT/target/capi
what=${1:-test}
log() { printf '\033[1m[capi]\033[0m %s\n' "$*" >&2; }

fixtures() {
    cargo run --quiet --release --manifest-path "$ROOT/Cargo.toml" -p captcha-synth --example fixtures -- "$BUILD"
}

# The lines the C programs print: those of expected.txt that do not need the Rust generator or defmt.
expected() { grep -E '^(model|test [0-9]+):' "$ROOT/firmware-example/expected.txt"; }

host() {
    log "host: library, header check, C test"
    (cd "$CAPI" && cargo build --quiet --release)
    fixtures
    gcc -std=c11 -Wall -Wextra -Werror -O2 -I"$CAPI/include" "$CAPI/tests/host_test.c" \
        "$CAPI/target/release/libcore_infer_capi.a" -lm -o "$BUILD/host_test"
    "$BUILD/host_test" "$ROOT/models/synthetic/model-int8.crnn" "$BUILD" > "$BUILD/host.txt"
    diff -u <(expected) "$BUILD/host.txt"
    log "host: matches expected.txt ($(wc -l < "$BUILD/host.txt") lines)"
}

firmware() {
    bash "$ROOT/tools/setup.sh" firmware >/dev/null
    log "firmware: library for thumbv7em-none-eabihf (int8 only, DSP kernels), C build, QEMU"
    (cd "$CAPI" && bash "$ROOT/tools/cargo-thumb.sh" build --quiet --release --no-default-features --features dsp)
    fixtures
    local lib=$CAPI/target/thumbv7em-none-eabihf/release/libcore_infer_capi.a
    make --no-print-directory -s -C "$ROOT/firmware-example/c" LIB="$lib" IMAGES="$BUILD/images.bin" \
        LABELS="$BUILD/labels.txt" build/firmware.elf
    local elf=$ROOT/firmware-example/c/build/firmware.elf rc=0
    timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -kernel "$elf" > "$BUILD/firmware.txt" || rc=$?
    cat "$BUILD/firmware.txt"
    [ "$rc" -eq 0 ] || { echo "error: the C firmware exited with $rc" >&2; exit 1; }
    diff -u <(expected) "$BUILD/firmware.txt"
    read -r text data bss _ < <(arm-none-eabi-size "$elf" | tail -n 1)
    log "firmware: matches expected.txt; flash $((text + data)) bytes (model included), RAM $((data + bss)) bytes of statics (stack beside)"
}

mkdir -p "$BUILD"
case "$what" in
    test) host; firmware ;;
    host) host ;;
    firmware) firmware ;;
    header) (cd "$CAPI" && CRNN_CAPI_WRITE_HEADER=1 cargo build --release) ;;
    *) echo "usage: tools/capi.sh [test|host|firmware|header]" >&2; exit 2 ;;
esac
