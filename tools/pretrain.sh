#!/usr/bin/env bash
# Builds models/pretrained/, the weights `train` starts from by default (`train --init auto`): a model
# trained on synthetic captchas drawn in 100+ fonts that none of the benchmark styles uses (URW base35,
# Open Sans, Lato, Carlito, Caladea, Roboto, Cantarell, Comfortaa, Linux Libertine; tools/stylecaptcha.sh
# draws with DejaVu, Liberation and FreeFont), so that training on a couple of thousand captchas of a new
# style starts from glyph shapes it has seen in many fonts instead of from nothing.
#   tools/pretrain.sh [COUNT]     draw COUNT captchas (default 40000), train on them (at most 20 minutes),
#                                 copy the result's init.ot and model.json to models/pretrained/
# Each captcha: 4 to 6 characters of 0-9, a-z and A-Z (every alphabet the model may meet later shares
# those rows), each in its own font, size, colour and rotation (or one colour for all), on a plain,
# gradient or noisy background of any colour, crossed by lines and arcs, dotted, sometimes warped,
# blurred or speckled; 216x48, so `train`'s 32 rows give 144 columns (24 per character for 6).
# Images: runs/pretrain/images (seed 5; kept: delete the folder to redraw); the run: runs/pretrain/run.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
COUNT=${1:-40000}
case "$COUNT" in ''|*[!0-9]*) echo "error: COUNT must be a whole number, not '$COUNT'" >&2; exit 2 ;; esac
bash tools/setup.sh host >/dev/null
PYTHON=$(bash tools/setup.sh pretrain)

images=runs/pretrain/images
if [ ! -f "$images/.complete" ]; then
    rm -rf "$images"
    mkdir -p "$images"
    "$PYTHON" - "$images" "$COUNT" 5 <<'PY'
import glob, math, os, random, sys
from PIL import Image, ImageDraw, ImageFilter, ImageFont

out, count, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
patterns = ["/usr/share/fonts/opentype/urw-base35/*.otf", "/usr/share/fonts/truetype/open-sans/*.ttf",
            "/usr/share/fonts/truetype/lato/*.ttf", "/usr/share/fonts/truetype/crosextra/*.ttf",
            "/usr/share/fonts/truetype/roboto/unhinted/*.ttf", "/usr/share/fonts/truetype/roboto/unhinted/RobotoTTF/*.ttf",
            "/usr/share/fonts/opentype/cantarell/*.otf", "/usr/share/fonts/truetype/comfortaa/*.ttf",
            "/usr/share/fonts/opentype/linux-libertine/*.otf"]
symbols = ("D050000L", "StandardSymbols", "LinBiolinum_K")  # no letters, or keycaps
fonts = sorted({f for p in patterns for f in glob.glob(p) if not os.path.basename(f).startswith(symbols)})
if len(fonts) < 40:
    sys.exit(f"only {len(fonts)} fonts found: run tools/setup.sh pretrain")
print(f"{len(fonts)} fonts", file=sys.stderr)
alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
W, H = 216, 48

def colour():
    return tuple(rng.randrange(256) for _ in range(3))

def far(from_, d):  # a colour at least d apart (L1, RGB) from from_
    while True:
        c = colour()
        if sum(abs(a - b) for a, b in zip(c, from_)) >= d:
            return c

def background():
    bg = colour()
    kind = rng.random()
    if kind < 0.5:
        return Image.new("RGB", (W, H), bg), bg
    if kind < 0.8:  # a gradient, left to right or top to bottom
        other = tuple(min(255, max(0, v + rng.randint(-80, 80))) for v in bg)
        across = rng.random() < 0.5
        ends = Image.new("RGB", (2, 1) if across else (1, 2), bg)
        ends.putpixel((1, 0) if across else (0, 1), other)
        return ends.resize((W, H), Image.BILINEAR), bg
    img = Image.new("RGB", (W, H), bg)  # noisy: blotches of nearby colours
    d = ImageDraw.Draw(img)
    for _ in range(rng.randint(20, 60)):
        x, y, r = rng.randrange(W), rng.randrange(H), rng.randint(3, 12)
        c = tuple(min(255, max(0, v + rng.randint(-50, 50))) for v in bg)
        d.ellipse((x - r, y - r, x + r, y + r), fill=c)
    return img, bg

def glyph(ch, font, fill, angle):
    # drawn on its baseline, rotated, then cut to its ink's columns but to the same rows for every glyph
    # of a size (ascender to descender), so that x and X, o and O keep their heights
    size = font.size
    g = Image.new("RGBA", (2 * size, 2 * size), (0, 0, 0, 0))
    ImageDraw.Draw(g).text((size // 2, int(1.3 * size)), ch, font=font, fill=fill + (255,), anchor="ls")
    g = g.rotate(angle, resample=Image.BICUBIC, expand=False)
    box = g.getbbox()
    return g.crop((box[0], int(0.4 * size), box[2], int(1.65 * size))) if box else None

def warp(img):  # a gentle sine warp: each column moved up or down, then each row left or right
    ax, ay = rng.uniform(0, 3), rng.uniform(0, 3)
    fx, fy = rng.uniform(0.02, 0.08), rng.uniform(0.02, 0.08)
    res = img.copy()
    for x in range(W):
        res.paste(img.crop((x, 0, x + 1, H)), (x, int(ay * math.sin(fx * x * 6.28))))
    img, res = res, res.copy()
    for y in range(H):
        res.paste(img.crop((0, y, W, y + 1)), (int(ax * math.sin(fy * y * 6.28)), y))
    return res

seen = {}
fonts_cache = {}
for n in range(count):
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(4, 6)))
    img, bg = background()
    d = ImageDraw.Draw(img)
    ink = far(bg, rng.choice((150, 200, 250)))
    one_colour = rng.random() < 0.4
    one_font = rng.random() < 0.3
    font_file = rng.choice(fonts)
    size = rng.randint(24, 36)
    glyphs = []
    for ch in text:
        f = font_file if one_font else rng.choice(fonts)
        s = size if one_font else int(size * rng.uniform(0.85, 1.15))
        font = fonts_cache.setdefault((f, s), ImageFont.truetype(f, s))
        g = glyph(ch, font, ink if one_colour else far(bg, 150), rng.uniform(-25, 25) * rng.random())
        if g is not None:
            glyphs.append(g)
    gap = rng.randint(-4, 6)
    total = sum(g.width for g in glyphs) + gap * (len(glyphs) - 1)
    scale = min(1.0, (W - 8) / max(1, total), (H - 2) / max(g.height for g in glyphs))
    if scale < 1.0:
        glyphs = [g.resize((max(1, int(g.width * scale)), max(1, int(g.height * scale))), Image.BICUBIC) for g in glyphs]
        total = sum(g.width for g in glyphs) + gap * (len(glyphs) - 1)
    x = rng.randint(2, max(2, W - total - 2))
    for _ in range(rng.randint(0, 25)):  # dots and rings under the text
        cx, cy, r = rng.randrange(W), rng.randrange(H), rng.randint(1, 5)
        c = far(bg, 60)
        if rng.random() < 0.6:
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c)
        else:
            d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=c)
    for g in glyphs:
        y = (H - g.height) // 2 + rng.randint(-3, 3)
        img.paste(g, (x, y), g)
        x += g.width + gap
    for _ in range(rng.randint(0, 4)):  # lines and arcs across
        c = ink if rng.random() < 0.3 else far(bg, 80)
        w = rng.choice((1, 1, 2, 3))
        if rng.random() < 0.6:
            d.line([(rng.randrange(W), rng.randrange(H)) for _ in range(2)], fill=c, width=w)
        else:
            x0, y0 = rng.randrange(-W // 2, W // 2), rng.randrange(-H, H // 2)
            d.arc((x0, y0, x0 + rng.randint(W // 2, 2 * W), y0 + rng.randint(H, 3 * H)),
                  rng.randint(0, 360), rng.randint(0, 360), fill=c, width=w)
    if rng.random() < 0.3:
        img = warp(img)
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    if rng.random() < 0.2:  # speckle
        px = img.load()
        for _ in range(rng.randint(50, 400)):
            px[rng.randrange(W), rng.randrange(H)] = colour()
    seen[text] = seen.get(text, 0) + 1
    name = text if seen[text] == 1 else f"{text}_{seen[text]}"
    img.save(f"{out}/{name}.png")
    if (n + 1) % 5000 == 0:
        print(f"{n + 1} of {count} drawn", file=sys.stderr)
PY
    touch "$images/.complete"
fi
"$PYTHON" tools/report.py sheet "$images/*.png" runs/pretrain/sheet.png
run=runs/pretrain/run
if [ ! -f "$run/metrics.json" ]; then
    cargo run --release -q -p host-trainer -- train --data "$images" --out "$run" --init none --max-minutes 20 --patience 5 --qat never
fi
mkdir -p models/pretrained
cp "$run/init.ot" models/pretrained/init.ot
# (without the path of the images it trained on, which only this machine has)
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); s.pop("data", None); json.dump(s, open(sys.argv[2], "w"), indent=2)' \
    "$run/model.json" models/pretrained/model.json
python3 - "$run/metrics.json" <<'PY' | tee models/pretrained/README.md
import json, sys
m = json.load(open(sys.argv[1]))
b = m["best"]
print("# The weights `train` starts from (`--init auto`)\n")
print("Made by `tools/pretrain.sh` (synthetic captchas in fonts no benchmark style uses; see the script).")
print(f"{m['train_images']} training and {m['val_images']} validation images, alphabet `{m['alphabet']}`,")
colour = "colour (each pixel's distance from the background)" if m["colour"] else "grey"
print(f"image size {m['image_size']}, {colour} input; best epoch {m['best_epoch']} of {m['epochs_run']},")
print(f"validation {100 * b['val']['sequence']:.2f}% read (CER {b['val']['cer']:.4f}), {m['seconds_total']:.0f} s.")
PY
