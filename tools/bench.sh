#!/usr/bin/env bash
# One table of the performance figures with their targets (issue: performance). Nothing here is a test.
#   tools/bench.sh            host latencies (criterion; ONNX Runtime from PyPI beside it), firmware instructions/RAM/flash (QEMU), and the
#                             training figures of the last real-data run in runs/captcha_images_v2 (or of
#                             the committed models/captcha_images_v2)
#   tools/bench.sh --train    also trains on ../shared/data/captcha_images_v2 first (about 5 minutes)
# Writes the table to stdout and to runs/bench-report.md.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash tools/setup.sh all >/dev/null

DATA=${CAPTCHA_DATA:-$ROOT/../shared/data/captcha_images_v2}
if [ "${1:-}" = "--train" ]; then
    cargo run --release -p host-trainer -- train --data "$DATA" --out runs/captcha_images_v2 --epochs 60
fi

echo "== host latency (criterion, one thread) and throughput (two threads) =="
cargo bench -p equivalence-tests --bench latency
echo "== ONNX Runtime on the same model and images (tools/ort_bench.py) =="
"$(bash tools/setup.sh ort)" tools/ort_bench.py target/peers
echo "== host int8 kernel: SIMD vs portable (criterion) =="
cargo bench -p equivalence-tests --bench kernels
echo "== where the host's time goes: each stage, both precisions (criterion) =="
cargo bench -p equivalence-tests --bench layers
mkdir -p runs
python3 tools/report.py layers | tee runs/layers-report.md

echo "== firmware in QEMU =="
fwlog=$(mktemp)
bash tools/firmware.sh test | tee "$fwlog"

mkdir -p runs
python3 tools/report.py bench "$fwlog" | tee runs/bench-report.md
rm -f "$fwlog"
