#!/usr/bin/env bash
# Builds and runs firmware-example in QEMU (Cortex-M4F, mps2-an386).
#   tools/firmware.sh run    build, run, show the decoded defmt log
#   tools/firmware.sh test   run and diff against firmware-example/expected.txt (minus `time:` lines),
#                            report ELF sizes; run the product build (--no-default-features: no drawing,
#                            the footprint a product ships) and check its lines too; then check that a corrupted model, a stack overflow (the
#                            stack-overflow-demo feature, caught by the MPU guard) and too little scratch
#                            (small-scratch-demo) each make the run fail with its message
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/firmware-example"

cargo_thumb() {
    if rustup target list --installed 2>/dev/null | grep -q thumbv7em-none-eabihf; then
        cargo "$@"
    else
        RUSTC_BOOTSTRAP=1 RUSTC=/usr/bin/rustc /usr/bin/cargo "$@" -Zbuild-std=core
    fi
}

# sizes ELF LABEL: flash and static RAM of one build.
sizes() {
    local elf=$1 label=$2
    local model images
    model=$(stat -c %s ../models/synthetic/model-int8.crnn)
    images=$((4 * 200 * 50))
    if command -v rust-size >/dev/null 2>&1; then rust-size -A "$elf" | grep -E '^\.(text|rodata|data|bss|uninit)'; fi
    python3 - "$elf" "$model" "$images" "$label" <<'PY'
import struct, sys
elf, model, images, label = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
d = open(elf, 'rb').read()
shoff, = struct.unpack_from('<I', d, 0x20); shentsize, shnum, shstrndx = struct.unpack_from('<HHH', d, 0x2e)
secs = [struct.unpack_from('<IIIIIIIIII', d, shoff + i * shentsize) for i in range(shnum)]
strtab = secs[shstrndx][4]
name = lambda s: d[strtab + s[0]: d.index(b'\0', strtab + s[0])].decode()
size = {name(s): s[5] for s in secs}
flash = sum(size.get(n, 0) for n in ('.vector_table', '.text', '.rodata', '.data'))
ram = sum(size.get(n, 0) for n in ('.data', '.bss', '.uninit'))
print(f"{label}: flash {flash} bytes (model {model}, test images {images}, code and the rest {flash - model - images}); "
      f"static RAM {ram} bytes (of 128 KiB; the stack takes the rest)")
PY
}

case "${1:-run}" in
run)
    cargo_thumb run --release
    ;;
test)
    log=$(mktemp)
    cargo_thumb run --release | tee "$log"
    grep -v '^time:' "$log" | diff -u expected.txt - && echo "firmware output matches expected.txt"
    sizes target/thumbv7em-none-eabihf/release/firmware-example "demo build (draws captchas)"
    # The product build: the same model and test images, without the drawing equipment.
    CARGO_TARGET_DIR=target/product cargo_thumb run --release --no-default-features >"$log" 2>&1 || {
        cat "$log"; echo "FAIL: the product build (--no-default-features) failed" >&2; exit 1
    }
    grep -E '^(model|test) ' expected.txt | diff -u - <(grep -E '^(model|test) ' "$log") \
        && echo "product build output matches expected.txt"
    grep -E '^time:' "$log" | sed 's/^time:/product build time:/'
    sizes target/product/thumbv7em-none-eabihf/release/firmware-example "product build"
    # A corrupted model (one flipped byte) must make the run exit non-zero.
    bad=$(mktemp --suffix=.crnn)
    python3 -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[5000]^=0xff; open(sys.argv[2],'wb').write(b)" \
        ../models/synthetic/model-int8.crnn "$bad"
    if CRNN_MODEL=$bad CARGO_TARGET_DIR=target/broken cargo_thumb run --release >"$log" 2>&1; then
        cat "$log"; echo "FAIL: the firmware accepted a corrupted model" >&2; exit 1
    fi
    if ! grep -qi "checksum" "$log"; then
        cat "$log"; echo "FAIL: the corrupted model failed, but not with a checksum error" >&2; exit 1
    fi
    echo "corrupted model refused as expected: $(grep -i -m1 checksum "$log")"
    # A stack overflow must hit the MPU guard and make the run exit non-zero, saying so.
    if CARGO_TARGET_DIR=target/overflow cargo_thumb run --release --features stack-overflow-demo >"$log" 2>&1; then
        cat "$log"; echo "FAIL: the stack overflow demo exited 0" >&2; exit 1
    fi
    if ! grep -q "stack overflow" "$log"; then
        cat "$log"; echo "FAIL: the stack overflow demo failed, but not with the guard's message" >&2; exit 1
    fi
    echo "stack overflow caught as expected: $(grep -m1 'stack overflow' "$log")"
    # Too little scratch for the model (the small-scratch-demo feature) must be refused with a message.
    if CARGO_TARGET_DIR=target/small-scratch cargo_thumb run --release --features small-scratch-demo >"$log" 2>&1; then
        cat "$log"; echo "FAIL: a build with too little scratch ran the model" >&2; exit 1
    fi
    if ! grep -q "bytes of scratch" "$log"; then
        cat "$log"; echo "FAIL: the small-scratch build failed, but not with the scratch message" >&2; exit 1
    fi
    echo "too little scratch refused as expected: $(grep -m1 'bytes of scratch' "$log")"
    rm -f "$bad" "$log"
    ;;
*) echo "usage: $0 [run|test]" >&2; exit 2 ;;
esac
