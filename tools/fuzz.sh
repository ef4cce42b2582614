#!/usr/bin/env bash
# Fuzzes core-infer's model parser and inference (the targets of core-infer/fuzz, whose bodies are in
# tools/fuzz-models) for RUNS executions each, then prints per target: executions, executions per second,
# crashes. Not part of CI (the test command replays the kept corpus instead): it needs nightly and
# cargo-fuzz, which this script installs when missing (rustup and crates.io).
#
#   tools/fuzz.sh [RUNS] [TARGET...]   default 100000 runs of each of: structured parse_recognize
#   tools/fuzz.sh --keep [RUNS]        then merge what found new code paths into the kept corpus
#   FUZZ_SANITIZER=none tools/fuzz.sh  without AddressSanitizer: about 3x the executions per second
#                                      (overflow checks stay on), for the long runs
#
# Each target reads the kept corpus (core-infer/fuzz/corpus/TARGET, in git, small) and grows a working
# corpus (core-infer/fuzz/work/TARGET, not in git); crashes land in core-infer/fuzz/artifacts/TARGET.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
keep=0
if [ "${1:-}" = "--keep" ]; then keep=1; shift; fi
RUNS=${1:-100000}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(structured parse_recognize)
case "$RUNS" in ''|*[!0-9]*) echo "error: RUNS must be a whole number, not '$RUNS'" >&2; exit 2 ;; esac

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

sanitizer=${FUZZ_SANITIZER:-address}
cd "$ROOT/core-infer"
summary=()
status=0
for t in "${TARGETS[@]}"; do
    kept=fuzz/corpus/$t work=fuzz/work/$t artifacts=fuzz/artifacts/$t
    mkdir -p "$kept" "$work" "$artifacts"
    if [ -z "$(ls -A "$kept")" ]; then
        cargo run -q --release --manifest-path "$ROOT/Cargo.toml" -p fuzz-models --bin seed-corpus -- "$t" "$kept" 16
    fi
    before=$(find "$artifacts" -type f | wc -l)
    log=$(mktemp)
    # AddressSanitizer: core-infer's only unsafe code is the SIMD kernels' loads, from bounds-checked
    # slices; ASan checks that claim. --debug-assertions turns on overflow checks: an arithmetic overflow
    # on hostile input is a crash. -timeout: an input running over 10 s counts as a hang; -max_len keeps
    # inputs to a few kilobytes (a small model and its values).
    set +e
    cargo +nightly fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" "$work" "$kept" -- \
        -runs="$RUNS" -max_len=8192 -timeout=10 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    grep -E "^#[0-9]+ +DONE|Done [0-9]+ runs|ERROR|panicked" "$log" | tail -5 || true
    after=$(find "$artifacts" -type f | wc -l)
    execs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" | tail -1 || true)
    secs=$(grep -oE "Done [0-9]+ runs in [0-9]+ second" "$log" | grep -oE "in [0-9]+" | grep -oE "[0-9]+" | tail -1 || true)
    rate=$(grep -oE "stat::average_exec_per_sec: *[0-9]+" "$log" | grep -oE "[0-9]+$" | tail -1 || true)
    [ -z "$execs" ] || [ -z "$secs" ] || [ "$secs" -eq 0 ] || rate=$((execs / secs))
    summary+=("$t: ${execs:-?} executions, ${rate:-?} exec/s, $((after - before)) crashes (${secs:-?} s, $sanitizer sanitizer; exit $rc)")
    [ "$rc" -eq 0 ] || { status=$rc; echo "--- $t log tail:"; tail -40 "$log"; }
    if [ "$keep" = 1 ] && [ "$rc" -eq 0 ]; then
        cargo +nightly fuzz run --sanitizer "$sanitizer" --debug-assertions "$t" -- -merge=1 "$kept" "$work" >/dev/null 2>&1
        echo "$t: kept corpus now $(ls "$kept" | wc -l) inputs, $(du -sk "$kept" | cut -f1) KiB"
    fi
    rm -f "$log"
done
printf 'fuzz: %s\n' "${summary[@]}"
exit "$status"
