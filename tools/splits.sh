#!/usr/bin/env bash
# Trains the default recipe on the real captchas several times, each validating on other images, and prints
# one table: best validation accuracy, CER, the epoch and the seconds at which 99% was first reached, and the
# images read wrong. One split's 94 validation images are a noisy measure (99% means no error at all);
# several say what the recipe does on captchas it has not seen. A benchmark, not a test.
#   tools/splits.sh [SEED...]   one 90/10 split per seed (other split, initial weights and batch order);
#                               default seeds: 1 2 3 4 5 and 42 (the default split)
#   tools/splits.sh --folds [K...]  10-fold cross-validation: seed 42, folds 0-9 (`train --fold K`; fold 0
#                               is the default split), so every image is validated exactly once, by a model
#                               that never trained on it: the out-of-fold accuracy over all 936 (over the
#                               folds named, when some are: the ten take 1-2 hours here)
# Runs go to runs/splits/seed-N or runs/folds/fold-K (kept: a second call only summarizes what is already
# trained and resumes what was interrupted; delete a folder to retrain it); the table also goes to
# runs/splits-report.md (runs/folds-report.md), its figures (for tools/bench.sh) to runs/splits-summary.json
# (runs/folds-summary.json). 3-8 minutes per run here (early stopping on the validation loss ends some runs
# after 30 epochs, others only at 100).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash tools/setup.sh host >/dev/null

DATA=${CAPTCHA_DATA:-$ROOT/../shared/data/captcha_images_v2}
if [ ! -d "$DATA" ]; then
    echo "splits.sh: no data at $DATA (set CAPTCHA_DATA)" >&2
    exit 1
fi
# Each run K trains with "${FLAGS[@]}" K into $PREFIX$K.
if [ "${1:-}" = "--folds" ]; then
    shift
    KIND=folds PREFIX=runs/folds/fold- FLAGS=(--seed 42 --fold) RUNS=("$@")
    [ ${#RUNS[@]} -gt 0 ] || RUNS=(0 1 2 3 4 5 6 7 8 9)
else
    KIND=splits PREFIX=runs/splits/seed- FLAGS=(--seed) RUNS=("$@")
    [ ${#RUNS[@]} -gt 0 ] || RUNS=(1 2 3 4 5 42)
fi

for k in "${RUNS[@]}"; do
    out=$PREFIX$k
    if [ -f "$out/metrics.json" ]; then
        echo "$out: already trained"
        continue
    fi
    echo "== $out =="
    args=("${FLAGS[@]}" "$k")
    # An interrupted run continues from its last finished epoch.
    if [ -f "$out/checkpoint.json" ]; then args+=(--resume); fi
    cargo run --release -q -p host-trainer -- train --data "$DATA" "${args[@]}" --out "$out"
done

mkdir -p runs
dirs=()
for k in "${RUNS[@]}"; do dirs+=("$PREFIX$k"); done
python3 tools/report.py splits "$KIND" "${dirs[@]}" | tee "runs/$KIND-report.md"
