#!/usr/bin/env bash
# Builds and runs firmware-example in QEMU (Cortex-M4F, mps2-an386; --core CORE for another: m3, m7, m33, m55, rv32).
#   tools/firmware.sh run    build, run, show the decoded defmt log
#   tools/firmware.sh profile  build with the `profile` feature, run, print the per-stage `time:` lines
#   tools/firmware.sh test   run and diff against firmware-example/expected.txt (minus `time:` and
#                            `calibration:` lines), check the instruction counter's calibration line
#                            (a loop of a known instruction count, timed at every start), report ELF
#                            sizes; run the profile build (its outputs must match too, and its stages
#                            must add up to its total); run the product build (--no-default-features: no drawing,
#                            the footprint a product ships) and check its lines too; then check that a corrupted model, a stack overflow (the
#                            stack-overflow-demo feature, caught by the MPU guard) and too little scratch
#                            (small-scratch-demo) each make the run fail with its message
#   tools/firmware.sh matrix  `test` on every supported core, then one table (a row per core: instructions,
#                            flash, RAM); exits non-zero unless every core's output matches expected.txt
# --core CORE (run, profile, test): m4 (default; thumbv7em-none-eabihf, DSP kernels, QEMU mps2-an386),
#   m7 (the same build on mps2-an500's Cortex-M7), m3 (thumbv7m-none-eabi, portable kernels, mps2-an385),
#   m33 (thumbv8m.main-none-eabihf with the DSP extension, DSP kernels, mps2-an505's memory map:
#   memory/mps2-an505.x), m55 (thumbv8m.main-none-eabihf with target-cpu cortex-m55, the Helium kernels with
#   the DSP ones, QEMU mps3-an547: memory/mps3-an547.x), rv32 (riscv32imac-unknown-none-elf, portable
#   kernels, qemu-system-riscv32's virt machine: memory/qemu-virt-rv32.x, minstret counts instructions).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT/firmware-example"

# The thumb toolchain is chosen in one place: tools/cargo-thumb.sh (rustup's target, else Debian's rustc-web).
cargo_thumb() {
    bash "$ROOT/tools/cargo-thumb.sh" "$@"
}

CORE=m4
args=()
while [ $# -gt 0 ]; do
    case $1 in
    --core) CORE=${2:?--core needs a core: m3, m4, m7, m33, m55 or rv32}; shift 2 ;;
    *) args+=("$1"); shift ;;
    esac
done
set -- "${args[@]+"${args[@]}"}"
# Per core: Rust target, QEMU board and CPU, and whether the DSP kernels apply.
case $CORE in
m4) triple=thumbv7em-none-eabihf machine=mps2-an386 cpu=cortex-m4 dsp=1 ;;
m7) triple=thumbv7em-none-eabihf machine=mps2-an500 cpu=cortex-m7 dsp=1 ;;
m3) triple=thumbv7m-none-eabi machine=mps2-an385 cpu=cortex-m3 dsp= ;;
m33) triple=thumbv8m.main-none-eabihf machine=mps2-an505 cpu=cortex-m33 dsp=1 ;;
m55) triple=thumbv8m.main-none-eabihf machine=mps3-an547 cpu=cortex-m55 dsp=1 mve=1
    # The same Rust target as the M33's, compiled for the M55 (Helium): cargo appends this to the
    # target's rustflags in .cargo/config.toml, and the last target-cpu wins.
    export CARGO_TARGET_THUMBV8M_MAIN_NONE_EABIHF_RUSTFLAGS="-C target-cpu=cortex-m55" ;;
rv32) triple=riscv32imac-unknown-none-elf machine=virt cpu=rv32 dsp= ;;
*) echo "unknown core '$CORE': supported m3, m4, m7, m33, m55, rv32" >&2; exit 2 ;;
esac
export THUMB_TARGET=$triple QEMU_MACHINE=$machine QEMU_CPU=$cpu
# Build directories: the thumbv7em builds (M4, M7: the same ELF) in target/, other targets beside.
base=target
[ "$triple" = thumbv7em-none-eabihf ] || base=target/$CORE
kernels=${dsp:+dsp}${mve:+,mve}
demo=(--no-default-features --features "draw,self-test${kernels:+,$kernels}")
product=(--no-default-features ${kernels:+--features $kernels})

# sizes ELF LABEL: flash and static RAM of one build.
sizes() {
    local elf=$1 label=$2
    local model images
    model=$(stat -c %s ../models/synthetic/model-int8.crnn)
    images=$((4 * 200 * 50))
    if command -v rust-size >/dev/null 2>&1; then rust-size -A "$elf" | grep -E '^\.(text|rodata|data|bss|uninit)'; fi
    python3 "$ROOT/tools/report.py" elf-sizes "$elf" "$model" "$images" "$label"
}

# check_calibration LOG: the counter must have measured the known loop within its stated tolerance.
check_calibration() {
    local line
    line=$(grep -m1 '^calibration:' "$1") || { echo "FAIL: no calibration line" >&2; exit 1; }
    python3 "$ROOT/tools/report.py" calibration "$line" || { echo "FAIL: the instruction counter disagrees with the known loop: $line" >&2; exit 1; }
    echo "instruction counter proven: $line"
}

# outputs_match LOG WHAT: every line but `time:`, `calibration:` and `decode:` (the profile's decoders) equals expected.txt, or the test fails.
outputs_match() {
    if grep -v -E '^(time|calibration|decode):' "$1" | diff -u expected.txt -; then
        echo "$2 output matches expected.txt"
    else
        echo "FAIL: the $2 output differs from expected.txt" >&2; exit 1
    fi
}

# profile LOG: the per-stage build; its stages must add up to its total (within the probe's reads).
profile() {
    CARGO_TARGET_DIR=$base/profile cargo_thumb run --release "${demo[@]}" --features profile >"$1" 2>"$1.build" || {
        cat "$1.build" "$1"; echo "FAIL: the profile build failed" >&2; exit 1
    }
    rm -f "$1.build"
    python3 "$ROOT/tools/report.py" profile "$1"
}

case "${1:-run}" in
run)
    CARGO_TARGET_DIR=$base cargo_thumb run --release "${demo[@]}"
    ;;
profile)
    log=$(mktemp)
    profile "$log" || { cat "$log"; echo "FAIL: the profile's stages do not add up to its total" >&2; exit 1; }
    grep -E '^(calibration|time|decode):' "$log"
    rm -f "$log"
    ;;
test)
    log=$(mktemp)
    echo "core $CORE: $triple on QEMU $machine ($cpu)${dsp:+, DSP kernels}${mve:+ and Helium kernels}"
    CARGO_TARGET_DIR=$base cargo_thumb run --release "${demo[@]}" | tee "$log"
    check_calibration "$log"
    outputs_match "$log" "firmware"
    sizes "$base/$triple/release/firmware-example" "demo build (draws captchas)"
    # The per-stage profile: same outputs, stages that add up to the total.
    profile "$log" || { cat "$log"; echo "FAIL: the profile's stages do not add up to its total" >&2; exit 1; }
    check_calibration "$log"
    outputs_match "$log" "profile build"
    grep -E '^time: \S+ [0-9]+ instructions for' "$log" | sed 's/^time:/profile:/'
    # The product build: the same model and test images, without the drawing equipment.
    CARGO_TARGET_DIR=$base/product cargo_thumb run --release "${product[@]}" >"$log" 2>&1 || {
        cat "$log"; echo "FAIL: the product build (--no-default-features) failed" >&2; exit 1
    }
    if grep -E '^(model|test) ' expected.txt | diff -u - <(grep -E '^(model|test) ' "$log"); then
        echo "product build output matches expected.txt"
    else
        echo "FAIL: the product build's output differs from expected.txt" >&2; exit 1
    fi
    check_calibration "$log"
    grep -E '^time:' "$log" | sed 's/^time:/product build time:/'
    sizes "$base/product/$triple/release/firmware-example" "product build"
    # A corrupted model (one flipped byte) must make the run exit non-zero.
    bad=$(mktemp --suffix=.crnn)
    python3 -c "import sys; b=bytearray(open(sys.argv[1],'rb').read()); b[5000]^=0xff; open(sys.argv[2],'wb').write(b)" \
        ../models/synthetic/model-int8.crnn "$bad"
    if CRNN_MODEL=$bad CARGO_TARGET_DIR=$base/broken cargo_thumb run --release "${demo[@]}" >"$log" 2>&1; then
        cat "$log"; echo "FAIL: the firmware accepted a corrupted model" >&2; exit 1
    fi
    if ! grep -qi "checksum" "$log"; then
        cat "$log"; echo "FAIL: the corrupted model failed, but not with a checksum error" >&2; exit 1
    fi
    echo "corrupted model refused as expected: $(grep -i -m1 checksum "$log")"
    # A stack overflow must hit the MPU guard and make the run exit non-zero, saying so.
    if CARGO_TARGET_DIR=$base/overflow cargo_thumb run --release "${demo[@]}" --features stack-overflow-demo >"$log" 2>&1; then
        cat "$log"; echo "FAIL: the stack overflow demo exited 0" >&2; exit 1
    fi
    if ! grep -q "stack overflow" "$log"; then
        cat "$log"; echo "FAIL: the stack overflow demo failed, but not with the guard's message" >&2; exit 1
    fi
    echo "stack overflow caught as expected: $(grep -m1 'stack overflow' "$log")"
    # Too little scratch for the model (the small-scratch-demo feature) must be refused with a message.
    if CARGO_TARGET_DIR=$base/small-scratch cargo_thumb run --release "${demo[@]}" --features small-scratch-demo >"$log" 2>&1; then
        cat "$log"; echo "FAIL: a build with too little scratch ran the model" >&2; exit 1
    fi
    if ! grep -q "bytes of scratch" "$log"; then
        cat "$log"; echo "FAIL: the small-scratch build failed, but not with the scratch message" >&2; exit 1
    fi
    echo "too little scratch refused as expected: $(grep -m1 'bytes of scratch' "$log")"
    rm -f "$bad" "$log"
    ;;
matrix)
    # `test` per core; the table from each run's product-build lines.
    fail=0
    rows=()
    for core in m3 m4 m7 m33 m55 rv32; do
        log=$(mktemp)
        start=$(date +%s)
        if bash "$ROOT/tools/firmware.sh" test --core "$core" >"$log" 2>&1; then status=matches; else status=FAIL; fail=1; fi
        secs=$(($(date +%s) - start))
        instr=$(grep -m1 -oE '^product build time: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo '-')
        stack=$(grep -m1 -oE '^product build time: stack high-water [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
        sizes=$(grep -m1 '^product build: flash' "$log" || true)
        flash=$(sed -nE 's/.*flash ([0-9]+) bytes \(model ([0-9]+), test images ([0-9]+).*/\1 \2 \3/p' <<<"$sizes")
        ram=$(sed -nE 's/.*static RAM ([0-9]+) bytes.*/\1/p' <<<"$sizes")
        read -r f m i <<<"${flash:-0 0 0}"
        line=$(grep -m1 '^core ' "$log" || echo "core $core")
        rows+=("$(printf '| %s | %s | %s | %s | %s | %s | %s s |' "$core" "${line#core $core: }" "$instr" \
            "$((f - i)) ($m model)" "$((${ram:-0} + stack)) (${ram:-0} + $stack stack)" "$status" "$secs")")
        [ "$status" = matches ] || { echo "== $core failed:" >&2; tail -30 "$log" >&2; }
        rm -f "$log"
    done
    echo "| core | build | instructions per inference (product build) | flash bytes (product, test images apart) | RAM bytes (statics + stack high-water) | output vs expected.txt | time |"
    echo "|---|---|---:|---:|---:|---|---:|"
    printf '%s\n' "${rows[@]}"
    exit "$fail"
    ;;
*) echo "usage: $0 [run|profile|test|matrix] [--core m3|m4|m7|m33|m55|rv32]" >&2; exit 2 ;;
esac
