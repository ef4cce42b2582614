#!/usr/bin/env bash
# Fuzzes core-infer's model parser and inference (core-infer/fuzz, target parse_recognize) for a fixed
# number of executions, then prints the executions and the crashes found. Not part of CI: it needs nightly
# (installed here) and cargo-fuzz (installed by this script from crates.io when missing).
#
#   tools/fuzz.sh [RUNS]     default 5000 executions (about 3 minutes: most run the whole network); crashes land in core-infer/fuzz/artifacts/
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-5000}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz

cd "$ROOT/core-infer"
corpus=fuzz/corpus/parse_recognize
artifacts=fuzz/artifacts/parse_recognize
mkdir -p "$corpus" "$artifacts"
# Seeds: the start of the shipped model as raw bytes (mode 0), and one patch to it (mode 1, see the target).
{ printf '\000'; head -c 4000 ../models/synthetic/model-int8.crnn; } > "$corpus/seed-raw-header"
printf '\001\100\000\000\000\001' > "$corpus/seed-one-patch"
before=$(find "$artifacts" -type f | wc -l)

log=$(mktemp)
# AddressSanitizer: core-infer's only unsafe code is the SIMD kernels' loads (SSE2, AVX2, AVX-VNNI here), from
# bounds-checked slices; ASan checks that claim. Otherwise what can go wrong is a panic (indexing, arithmetic
# overflow: debug assertions are on) or a hang, which libFuzzer catches by itself.
# -timeout: an input running over 10 s counts as a hang; -max_len keeps inputs to header-sized files
# and up to 800 patches.
set +e
cargo +nightly fuzz run --sanitizer address --debug-assertions parse_recognize "$corpus" -- -runs="$RUNS" -max_len=4096 -timeout=10 2>&1 | tee "$log" \
    | grep -E "^#[0-9]+ +(pulse|DONE)|Done [0-9]+ runs|ERROR|panicked"
status=${PIPESTATUS[0]}
set -e
after=$(find "$artifacts" -type f | wc -l)
runs=$(grep -oE "Done [0-9]+ runs in [0-9]+ second" "$log" | tail -1 || true)
echo "fuzz: ${runs:-no summary (see above)}; crashes: $((after - before)) new, $after in $artifacts; exit $status"
rm -f "$log"
exit "$status"
