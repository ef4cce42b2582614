#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set up, train on synthetic captchas (the embedded default:
# no files needed), export the model files, and (when the firmware is present) run the int8 model on a
# Cortex-M4F in QEMU. Outputs go to runs/synthetic/.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash tools/setup.sh all
cargo run --release -p host-trainer
if [ -f firmware-example/Cargo.toml ]; then
    bash tools/firmware.sh run
fi
