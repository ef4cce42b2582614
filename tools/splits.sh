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
python3 - "$KIND" "${dirs[@]}" <<'PY' | tee "runs/$KIND-report.md"
import json, os, sys
kind, dirs = sys.argv[1], sys.argv[2:]
rows, accs, hits, read, n_wrong_all = [], [], [], 0, 0
for d in dirs:
    m = json.load(open(f"{d}/metrics.json"))
    hist, best = m["history"], m["best"]
    hit = next((e for e in hist if e["val"]["sequence"] >= 0.99), None)
    if hit:
        secs = sum(e["seconds"] for e in hist if e["epoch"] <= hit["epoch"])
        hits.append(secs)
        reached = f"epoch {hit['epoch']}, {secs:.0f} s"
    else:
        reached = "not reached"
    accs.append(best["val"]["sequence"])
    read += m["val_images"]
    # The device's (int8) wrong readings; runs from before metrics.json listed them show only the count.
    wrong = m.get("wrong")
    n_wrong = len(wrong) if wrong is not None else round((1 - best["val"]["sequence"]) * m["val_images"])
    n_wrong_all += n_wrong
    listed = ", ".join(f"`{t}` as `{p}`" for _, t, p in wrong) if wrong else ("none" if n_wrong == 0 else "?")
    rows.append(f"| {os.path.basename(d)} | {100 * best['val']['sequence']:.2f}% ({n_wrong} wrong of "
                f"{m['val_images']}) | {best['val']['cer']:.4f} | {best['epoch']} | {reached} "
                f"| {m['seconds_total']:.0f} s | {listed} |")
print(f"| {'fold' if kind == 'folds' else 'seed (split)'} | best validation accuracy | CER | best epoch "
      "| 99% first reached | whole run | read wrong (int8) |")
print("|---|---|---|---|---|---|---|")
print("\n".join(rows))
print(f"\nmean best validation accuracy over {len(accs)} {kind}: {100 * sum(accs) / len(accs):.2f}%; "
      f"99% reached on {len(hits)} of {len(accs)}"
      + (f", after {sum(hits) / len(hits):.0f} s on average" if hits else ""))
if kind == "folds":
    print(f"\nout-of-fold (every image read once by a model that did not train on it), int8: "
          f"{100 * (1 - n_wrong_all / read):.2f}% of {read} images ({n_wrong_all} wrong)")
# The figures tools/bench.sh reports.
summary = {kind: len(accs), "mean_best_accuracy": sum(accs) / len(accs), "seconds_to_99": hits,
           "images_read": read, "wrong": n_wrong_all}
json.dump(summary, open(f"runs/{kind}-summary.json", "w"), indent=1)
PY
