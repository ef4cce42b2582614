#!/usr/bin/env bash
# The default recipe on a style none of the project's generators draws and nothing was tuned on: each
# captcha has a background of a random colour (light or dark) and each character its own colour (some pairs
# keep little contrast in grayscale) and its own font (DejaVu, Liberation and FreeFont families, regular,
# bold, italic, condensed), rotated, on a line that wanders; thin lines cross it and circles dot it.
# 4 characters of 36 (a-z, 0-9), 256x64. A benchmark, not a test.
#   tools/stylecaptcha.sh [COUNT]     train on COUNT images (default 2000), evaluate int8 on 200 fresh ones
# Images: runs/stylecaptcha/train (seed 1) and runs/stylecaptcha/fresh (seed 2), drawn with a seeded
# generator (the same set on every machine with these fonts and this Pillow); the run goes to
# runs/stylecaptcha/default (kept: a second call only evaluates and summarizes; delete it to retrain), the
# table to runs/stylecaptcha-report.md, a contact sheet of the first 24 to runs/stylecaptcha/sheet.png.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
COUNT=${1:-2000}
case "$COUNT" in ''|*[!0-9]*) echo "error: COUNT must be a whole number, not '$COUNT'" >&2; exit 2 ;; esac
bash tools/setup.sh host >/dev/null
PYTHON=$(bash tools/setup.sh styles)

draw() { # draw DIR COUNT SEED
    [ -f "$1/.complete" ] && return 0
    rm -rf "$1"
    mkdir -p "$1"
    "$PYTHON" - "$1" "$2" "$3" <<'PY'
import glob, math, random, sys
from PIL import Image, ImageDraw, ImageFont

out, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
fonts = sorted(f for pattern in ("/usr/share/fonts/truetype/dejavu/*.ttf",
                                 "/usr/share/fonts/truetype/liberation/*.ttf",
                                 "/usr/share/fonts/truetype/freefont/*.ttf") for f in glob.glob(pattern))
if len(fonts) < 6:
    sys.exit(f"only {len(fonts)} fonts found: run tools/setup.sh styles")
alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
W, H = 256, 64

def colour():
    return tuple(rng.randrange(256) for _ in range(3))

def far(c, from_, d=120):  # a colour at least d apart (L1, RGB) from from_: visible in colour, not always in grey
    while sum(abs(a - b) for a, b in zip(c, from_)) < d:
        c = colour()
    return c

seen = {}
for _ in range(count):
    text = "".join(rng.choice(alphabet) for _ in range(4))
    bg = colour()
    img = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(10, 25)):  # circles, filled or rings
        x, y, r = rng.randrange(W), rng.randrange(H), rng.randint(2, 7)
        c = far(colour(), bg, 60)
        if rng.random() < 0.5:
            d.ellipse((x - r, y - r, x + r, y + r), fill=c)
        else:
            d.ellipse((x - r, y - r, x + r, y + r), outline=c, width=1)
    x = rng.randint(4, 24)
    for ch in text:
        font = ImageFont.truetype(rng.choice(fonts), rng.randint(28, 42))
        glyph = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text((8, 4), ch, font=font, fill=far(colour(), bg) + (255,))
        glyph = glyph.rotate(rng.uniform(-25, 25), resample=Image.BICUBIC, expand=False)
        y = rng.randint(-6, 8)
        img.paste(glyph, (x, y), glyph)
        x += rng.randint(40, 54)
    for _ in range(rng.randint(2, 4)):  # thin lines across the text
        pts = [(rng.randrange(W), rng.randrange(H)) for _ in range(2)]
        d.line(pts, fill=far(colour(), bg, 60), width=rng.choice((1, 1, 2)))
    seen[text] = seen.get(text, 0) + 1
    name = text if seen[text] == 1 else f"{text}_{seen[text]}"
    img.save(f"{out}/{name}.png")
PY
    touch "$1/.complete"
}

draw runs/stylecaptcha/train "$COUNT" 1
draw runs/stylecaptcha/fresh 200 2
"$PYTHON" tools/report.py sheet "runs/stylecaptcha/fresh/*.png" runs/stylecaptcha/sheet.png
out=runs/stylecaptcha/default
if [ -f "$out/metrics.json" ]; then
    echo "already trained ($out)"
else
    cargo run --release -q -p host-trainer -- train --data runs/stylecaptcha/train --max-minutes 10 --out "$out"
fi
# post-training quantization's int8 file, where quantization-aware fine-tuning replaced it
ptq=(); [ -f "$out/model-int8-post-training.crnn" ] && ptq=(--model "$out/model-int8-post-training.crnn")
fresh=$(cargo run --release -q -p host-trainer -- eval --model "$out/model.crnn" --model "$out/model-int8.crnn" "${ptq[@]}" \
    --data runs/stylecaptcha/fresh --json runs/stylecaptcha/fresh-eval.json | tail -2)
echo "$fresh"
python3 tools/report.py stylecaptcha "$out" | tee runs/stylecaptcha-report.md
