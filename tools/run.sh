#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, train on synthetic captchas (the embedded default:
# no files needed), export the model files, and run the int8 model just trained on a Cortex-M4F in QEMU.
# Outputs go to runs/synthetic/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash tools/setup.sh all
cargo run --release -p host-trainer
echo "== the int8 model just trained, on a Cortex-M4F (QEMU mps2-an386) =="
CRNN_MODEL="$ROOT/runs/synthetic/model-int8.crnn" bash tools/firmware.sh run
