#!/usr/bin/env bash
# The default recipe on captchas from another generator than the ones it was developed on: colour captchas
# drawn by the Python `captcha` library (PyPI, pinned: warped and rotated glyphs, 36 characters, labels of
# 4-6, noise dots and a curve, 160x60), trained with a 10-minute limit. A benchmark, not a test.
#   tools/pycaptcha.sh [--seed-recipe]   3,000 images (300 of them the validation split); with
#                                        --seed-recipe, also the seed's recipe (no batch norm, no contrast
#                                        stretch, no moving average) for comparison
#   tools/pycaptcha.sh --fresh           2,000 images to train on, then `eval` of the f32 and int8 models on
#                                        200 fresh ones drawn from other seeds (the protocol of issue 25)
# The images go to runs/pycaptcha/{data,train2000,fresh}, drawn from fixed seeds (the library's own
# randomness is replaced by a seeded generator), so every machine with these library versions draws the same
# sets; the runs go to runs/pycaptcha/{default,seed-recipe,fresh-default} (kept: a second call only
# summarizes; delete a folder to retrain it). The table also goes to runs/pycaptcha-report.md (with --fresh:
# runs/pycaptcha-fresh-report.md). About 11 minutes per run here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
case "${1:-}" in
    "" | --seed-recipe | --fresh) ;;
    *) echo "error: unknown option '$1' (expected --seed-recipe or --fresh)" >&2; exit 2 ;;
esac
bash tools/setup.sh host >/dev/null

PYTHON=$(bash tools/setup.sh pycaptcha)  # the pinned library's venv

draw() { # draw DIR COUNT DRAW_SEED LABEL_SEED
    [ -f "$1/.complete" ] && return 0
    rm -rf "$1"
    mkdir -p "$1"
    "$PYTHON" - "$@" <<'PY'
import random, sys
import captcha.image
from captcha.image import ImageCaptcha

out, count, draw_seed, label_seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
draw = random.Random(draw_seed)  # the library draws with `secrets`; this makes it repeatable


class SeededSecrets:
    randbelow = draw.randrange
    randbits = draw.getrandbits
    choice = draw.choice


captcha.image.secrets = SeededSecrets
labels = random.Random(label_seed)
alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
generator = ImageCaptcha(width=160, height=60)
seen = {}
for _ in range(count):
    text = "".join(labels.choice(alphabet) for _ in range(labels.randint(4, 6)))
    seen[text] = seen.get(text, 0) + 1
    name = text if seen[text] == 1 else f"{text}_{seen[text]}"  # LABEL_2.png: a second image of LABEL
    generator.write(text, f"{out}/{name}.png")
PY
    touch "$1/.complete"
}

if [ "${1:-}" = "--fresh" ]; then
    draw runs/pycaptcha/train2000 2000 11 17
    draw runs/pycaptcha/fresh 200 21 27
    out=runs/pycaptcha/fresh-default
    if [ -f "$out/metrics.json" ]; then
        echo "already trained ($out)"
    else
        cargo run --release -q -p host-trainer -- train --data runs/pycaptcha/train2000 --max-minutes 10 --out "$out"
    fi
    # post-training quantization's int8 file, where quantization-aware fine-tuning replaced it
    ptq=(); [ -f "$out/model-int8-post-training.crnn" ] && ptq=(--model "$out/model-int8-post-training.crnn")
    cargo run --release -q -p host-trainer -- eval --model "$out/model.crnn" --model "$out/model-int8.crnn" "${ptq[@]}" \
        --data runs/pycaptcha/fresh --json runs/pycaptcha/fresh-eval.json | tee runs/pycaptcha-fresh-report.md
    exit 0
fi

DATA=runs/pycaptcha/data
draw "$DATA" 3000 1 7

RUNS=(default)
[ "${1:-}" = "--seed-recipe" ] && RUNS+=(seed-recipe)
for run in "${RUNS[@]}"; do
    out=runs/pycaptcha/$run
    if [ -f "$out/metrics.json" ]; then
        echo "$run: already trained ($out)"
        continue
    fi
    flags=()
    [ "$run" = seed-recipe ] && flags=(--no-batch-norm --no-stretch --ema 0)
    echo "== $run =="
    cargo run --release -q -p host-trainer -- train --data "$DATA" --max-minutes 10 --out "$out" "${flags[@]}"
done

python3 tools/report.py pycaptcha "${RUNS[@]}" | tee runs/pycaptcha-report.md
