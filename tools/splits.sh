#!/usr/bin/env bash
# Trains the default recipe on the real captchas once per seed (each seed is another 90/10 split, other initial
# weights and batch order) and prints one table: best validation accuracy, CER, the epoch and the seconds at
# which 99% was first reached. One split's 94 validation images are a noisy measure (99% means no error at
# all); several splits say what the recipe does on captchas it has not seen. A benchmark, not a test.
#   tools/splits.sh [SEED...]     default seeds: 1 2 3 4 5 and 42 (the default split)
# Runs go to runs/splits/seed-N (kept: a second call only summarizes the seeds already trained; delete a
# folder to retrain it); the table also goes to runs/splits-report.md, its figures (for tools/bench.sh) to
# runs/splits-summary.json. 3-8 minutes per seed here (early stopping on the validation loss ends some runs
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
SEEDS=("$@")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(1 2 3 4 5 42)

for seed in "${SEEDS[@]}"; do
    out=runs/splits/seed-$seed
    if [ -f "$out/metrics.json" ]; then
        echo "seed $seed: already trained ($out)"
        continue
    fi
    echo "== seed $seed =="
    cargo run --release -q -p host-trainer -- train --data "$DATA" --seed "$seed" --out "$out"
done

mkdir -p runs
python3 - "${SEEDS[@]}" <<'PY' | tee runs/splits-report.md
import json, sys
rows, accs, hits = [], [], []
for seed in sys.argv[1:]:
    m = json.load(open(f"runs/splits/seed-{seed}/metrics.json"))
    hist = m["history"]
    best = m["best"]
    hit = next((e for e in hist if e["val"]["sequence"] >= 0.99), None)
    if hit:
        secs = sum(e["seconds"] for e in hist if e["epoch"] <= hit["epoch"])
        hits.append(secs)
        reached = f"epoch {hit['epoch']}, {secs:.0f} s"
    else:
        reached = "not reached"
    accs.append(best["val"]["sequence"])
    wrong = round((1 - best["val"]["sequence"]) * m["val_images"])
    rows.append(f"| {seed} | {100 * best['val']['sequence']:.2f}% ({wrong} wrong of {m['val_images']}) "
                f"| {best['val']['cer']:.4f} | {best['epoch']} | {reached} | {m['seconds_total']:.0f} s |")
print("| seed (split) | best validation accuracy | CER | best epoch | 99% first reached | whole run |")
print("|---|---|---|---|---|---|")
print("\n".join(rows))
print(f"\nmean best validation accuracy over {len(accs)} splits: {100 * sum(accs) / len(accs):.2f}%; "
      f"99% reached on {len(hits)} of {len(accs)}"
      + (f", after {sum(hits) / len(hits):.0f} s on average" if hits else ""))
# The figures tools/bench.sh reports.
summary = {"splits": len(accs), "mean_best_accuracy": sum(accs) / len(accs), "seconds_to_99": hits}
json.dump(summary, open("runs/splits-summary.json", "w"), indent=1)
PY
