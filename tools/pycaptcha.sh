#!/usr/bin/env bash
# The default recipe on captchas from another generator than the ones it was developed on: 3,000 colour
# captchas drawn by the Python `captcha` library (PyPI, pinned: warped and rotated glyphs, 36 characters,
# labels of 4-6, noise dots and a curve, 160x60), trained with a 10-minute limit; with --seed-recipe, also
# with the seed's recipe (no batch norm, no contrast stretch, no moving average) for comparison. A benchmark,
# not a test.
#   tools/pycaptcha.sh [--seed-recipe]
# The images go to runs/pycaptcha/data, drawn from fixed seeds (the library's own randomness is replaced by a
# seeded generator), so every machine with these library versions draws the same set; the runs go to
# runs/pycaptcha/{default,seed-recipe} (kept: a second call only summarizes; delete a folder to retrain it).
# The table also goes to runs/pycaptcha-report.md. About 11 minutes per run here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash tools/setup.sh host >/dev/null

PYTHON=$(bash tools/setup.sh pycaptcha)  # the pinned library's venv

DATA=runs/pycaptcha/data
if [ ! -f "$DATA/.complete" ]; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    "$PYTHON" - "$DATA" <<'PY'
import random, sys
import captcha.image
from captcha.image import ImageCaptcha

out = sys.argv[1]
draw = random.Random(1)  # the library draws with `secrets`; this makes it repeatable


class SeededSecrets:
    randbelow = draw.randrange
    randbits = draw.getrandbits
    choice = draw.choice


captcha.image.secrets = SeededSecrets
labels = random.Random(7)
alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
generator = ImageCaptcha(width=160, height=60)
seen = {}
for _ in range(3000):
    text = "".join(labels.choice(alphabet) for _ in range(labels.randint(4, 6)))
    seen[text] = seen.get(text, 0) + 1
    name = text if seen[text] == 1 else f"{text}_{seen[text]}"  # LABEL_2.png: a second image of LABEL
    generator.write(text, f"{out}/{name}.png")
PY
    touch "$DATA/.complete"
fi

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
