#!/usr/bin/env python3
"""The reports and checks of the tools/ scripts, in one place (standard library only; `sheet` needs Pillow).

    python3 tools/report.py elf-sizes ELF MODEL_BYTES IMAGE_BYTES LABEL   flash and static RAM of a firmware ELF
    python3 tools/report.py calibration LINE        exit 1 unless the counter measured its known loop
    python3 tools/report.py profile LOG             exit 1 unless the profile's stages add up to its total
    python3 tools/report.py bench FIRMWARE_LOG      the performance table (tools/bench.sh)
    python3 tools/report.py layers                  the per-stage host table, GMAC/s against the CPU's peak (tools/bench.sh)
    python3 tools/report.py pycaptcha RUN...        the Python-captcha table (tools/pycaptcha.sh)
    python3 tools/report.py splits KIND DIR...      the splits or folds table and summary (tools/splits.sh)
    python3 tools/report.py stylecaptcha OUT        the many-style table (tools/stylecaptcha.sh)
    python3 tools/report.py sheet GLOB OUT          a contact sheet of the first 24 images (Pillow)
"""
import glob
import json
import os
import re
import struct
import sys


def first_epoch(hist, accuracy):
    """The first epoch of a run's history whose validation accuracy reached `accuracy`, or None."""
    return next((e for e in hist if e["val"]["sequence"] >= accuracy), None)


def seconds_to(hist, epoch):
    """Training seconds up to and including `epoch`."""
    return sum(e["seconds"] for e in hist if e["epoch"] <= epoch["epoch"])


def elf_sizes(elf, model, images, label):
    """Flash and static RAM of one firmware build, from its ELF section headers."""
    model, images = int(model), int(images)
    d = open(elf, 'rb').read()
    shoff, = struct.unpack_from('<I', d, 0x20); shentsize, shnum, shstrndx = struct.unpack_from('<HHH', d, 0x2e)
    secs = [struct.unpack_from('<IIIIIIIIII', d, shoff + i * shentsize) for i in range(shnum)]
    strtab = secs[shstrndx][4]
    name = lambda s: d[strtab + s[0]: d.index(b'\0', strtab + s[0])].decode()
    size = {name(s): s[5] for s in secs}
    # `.assets`: the model and the test images (in flash, or on the M55's board in the SRAM standing for it)
    flash = sum(size.get(n, 0) for n in ('.vector_table', '.text', '.rodata', '.assets', '.data'))
    ram = sum(size.get(n, 0) for n in ('.data', '.bss', '.uninit'))
    print(f"{label}: flash {flash} bytes (model {model}, test images {images}, code and the rest {flash - model - images}); "
          f"static RAM {ram} bytes (of 128 KiB; the stack takes the rest)")


def calibration(line):
    """0 if the instruction counter measured its known loop within the stated tolerance."""
    known, measured, _, tolerance = map(int, re.match(
        r"calibration: (\d+) instructions measured as (\d+) \(timer reads (\d+), tolerance (\d+)\)", line).groups())
    return 0 if abs(measured - known) <= tolerance else 1


def profile(path):
    """0 if the per-stage profile adds up to the instructions measured per inference."""
    log = open(path).read()
    totals = [int(x) for x in re.findall(r"^time: (\d+) instructions$", log, re.M)]
    stages = re.findall(r"^time: (\S+) (\d+) instructions for (\d+) multiply-adds$", log, re.M)
    mean = sum(totals) / len(totals)
    inference = sum(int(n) for name, n, _ in stages if name != "ctc-decode")
    print(f"profile: stages add up to {inference} of the {mean:.0f} instructions measured per inference")
    # Each probe read is a few dozen instructions; the stages cover the whole inference but for them.
    return 0 if 0 <= mean - inference <= 0.001 * mean else 1


def layers():
    """The per-stage criterion estimates (tests/benches/layers.rs) as GMAC/s against this CPU's peak."""
    macs = json.load(open("target/criterion/layers-macs.json"))
    times = {}
    for root, _, files in os.walk("target/criterion/layers"):
        if "benchmark.json" in files and os.path.basename(root) == "new":
            name = json.load(open(os.path.join(root, "benchmark.json")))["function_id"]
            times[name] = json.load(open(os.path.join(root, "estimates.json")))["mean"]["point_estimate"] / 1e9
    info = open("/proc/cpuinfo").read()
    model = re.search(r"model name\s*: (.*)", info).group(1)
    mhz = float(re.search(r"cpu MHz\s*: ([0-9.]+)", info).group(1))
    flags = set(re.search(r"flags\s*: (.*)", info).group(1).split())
    # Multiply-adds per cycle of one core with two vector pipes (256-bit, or 512-bit where the CPU has
    # AVX-512, as on Intel's Xeon Gold/Platinum and AMD Zen 5; core-infer's 512-bit kernels then run):
    # f32 FMA 2 x 8 (x 16); int8 2 x 32 (x 64) with VNNI's vpdpbusd, else 2 x 16 (vpmaddwd on i16, AVX2).
    vnni = bool(flags & {"avx_vnni", "avx512_vnni"})
    wide = "avx512f" in flags
    f32_lanes = 16 if wide else 8
    int8_lanes = (64 if wide and "avx512_vnni" in flags else 32) if vnni else 16
    peak = {"f32": 2 * f32_lanes * mhz / 1e3, "int8": 2 * int8_lanes * mhz / 1e3}
    print(f"CPU: {model}, {mhz:.0f} MHz (nominal; turbo may pass 100%), {'VNNI' if vnni else 'no VNNI'}; "
          f"peak per core (two {512 if wide else 256}-bit pipes): f32 {peak['f32']:.1f}, "
          f"int8 {peak['int8']:.1f} GMAC/s")
    print("| stage | multiply-adds | f32 µs | f32 GMAC/s | of peak | int8 µs | int8 GMAC/s | of peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    stages = [n.split(" ", 1)[1] for n in macs if n.startswith("f32 ")]
    for stage in stages:
        row = [stage, f"{macs['f32 ' + stage]:,}"]
        for precision in ("f32", "int8"):
            t, n = times.get(f"{precision} {stage}"), macs[f"{precision} {stage}"]
            if t is None:
                row += ["-", "-", "-"]
                continue
            rate = n / t / 1e9 if t > 0 else 0
            row += [f"{t * 1e6:.0f}", f"{rate:.2f}", f"{100 * rate / peak[precision]:.0f}%"]
        print("| " + " | ".join(row) + " |")
    return 0


def bench(path):
    """The performance table with its targets (tools/bench.sh), from the firmware log and the runs."""
    log = open(path).read()
    def crit(name):
        p = f"target/criterion/single image/{name}/new/estimates.json"
        return json.load(open(p))["mean"]["point_estimate"] / 1e6 if os.path.exists(p) else None
    names = ["core-infer f32", "core-infer int8", "core-infer f32, 256-bit only", "core-infer int8, 256-bit only",
             "core-infer f32, AVX2 only", "core-infer int8, AVX2 only", "core-infer f32, SSE2 only",
             "core-infer int8, SSE2 only", "tract-onnx f32", "tch f32"]
    # The round-robin pass's fastest rounds where the bench wrote them (robust on a shared machine), else
    # criterion's means.
    rr = json.load(open("target/peers/latency.json")) if os.path.exists("target/peers/latency.json") else {}
    lat = {n: rr[n]["min_ms"] if n in rr else crit(n) for n in names}
    how = "fastest of the round-robin rounds" if rr else "criterion means"
    instr = [int(x) for x in re.findall(r"time: (\d+) instructions", log)]
    sizes = r"flash (\d+) bytes \(model (\d+), test images (\d+), code and the rest (\d+)\); static RAM (\d+) bytes"
    # The product build (no drawing equipment) is what the RAM and flash targets are about.
    stack = int(re.search(r"product build time: stack high-water (\d+) bytes", log).group(1))
    flash, model, images, code, static = map(int, re.search(r"product build: " + sizes, log).groups())
    demo = re.search(r"demo build \(draws captchas\): " + sizes, log)
    demo_stack = int(re.search(r"^time: stack high-water (\d+) bytes", log, re.M).group(1))
    rows = []
    def row(what, value, target, ok):
        met = "" if not target else ("yes" if ok else "no")
        rows.append(f"| {what} | {value} | {target} | {met} |")
    mi = sum(instr) / len(instr) / 1e6
    row("Cortex-M4 instructions per inference", f"{mi:.1f} M", "≤ 80 M", mi <= 80)
    ram = static + stack
    row("device RAM (product build): statics + stack high-water", f"{ram / 1024:.1f} KiB ({static} + {stack} B)", "≤ 48 KiB", ram <= 48 * 1024)
    row("flash (product build): model + code, test images apart", f"{(model + code) / 1024:.1f} KiB ({model} + {code} B; images {images} B)", "≤ 480 KiB", model + code <= 480 * 1024)
    if demo:
        _, dmodel, _, dcode, dstatic = map(int, demo.groups())
        rows.append(f"| demo build (+ on-device captcha drawing): RAM, flash | {(dstatic + demo_stack) / 1024:.1f} KiB, "
                    f"{(dmodel + dcode) / 1024:.1f} KiB | test equipment, no target | |")
    ort = json.load(open("target/peers/ort.json")) if os.path.exists("target/peers/ort.json") else {}
    if ort:
        lat[f"ONNX Runtime {ort['onnxruntime']} f32"] = ort["f32_fastest_ms"] if rr and "f32_fastest_ms" in ort else ort["f32_ms"]
        if "int8_best" in ort:
            lat[f"ONNX Runtime int8 ({ort['int8_best'][0]}; its mean)"] = ort["int8_best"][1]
    fmt = lambda v: "n/a" if v is None else f"{v:.2f} ms"
    for n, v in lat.items():
        row(f"host latency ({how}), {n}", fmt(v), "", True)
    t, i8, f = lat["tract-onnx f32"], lat["core-infer int8"], lat["core-infer f32"]
    o = lat.get(f"ONNX Runtime {ort['onnxruntime']} f32") if ort else None
    if None not in (t, i8, f):
        row("tract-onnx f32 / core-infer int8", f"{t / i8:.2f}x", "", True)
        row("tract-onnx f32 / core-infer f32", f"{t / f:.2f}x", "", True)
    if None not in (o, i8, f):
        row("ONNX Runtime f32 / core-infer int8 (one thread, batch 1)", f"{o / i8:.2f}x", "≥ 2x", o / i8 >= 2)
        row("ONNX Runtime f32 / core-infer f32 (one thread, batch 1)", f"{o / f:.2f}x", "≥ 1x", o / f >= 1)
    for k, v in ort.get("int8", {}).items():
        if not isinstance(v, float):
            rows.append(f"| ONNX Runtime int8, {k} | {v} | | |")
    p = "target/criterion/throughput/core-infer int8, 64 images, 2 threads/new/estimates.json"
    mine = 64 / (json.load(open(p))["mean"]["point_estimate"] / 1e9) if os.path.exists(p) else None
    theirs = ort.get("batch64_2threads_images_per_s")
    if mine:
        row("throughput, core-infer int8 on 2 threads (64 images)", f"{mine:.0f} images/s", "", True)
    if theirs:
        row("throughput, ONNX Runtime f32, batch 64, 2 threads", f"{theirs:.0f} images/s", "", True)
    if mine and theirs:
        row("throughput, core-infer int8 / ONNX Runtime", f"{mine / theirs:.2f}x", "≥ 1x", mine >= theirs)
    runs = ["runs/captcha_images_v2/metrics.json", "models/captcha_images_v2/metrics.json"]
    mp = next((p for p in runs if os.path.exists(p)), None)
    if mp:
        mj = json.load(open(mp))
        hist = mj.get("history", [])
        hit = first_epoch(hist, 0.99)
        best = max((e["val"]["sequence"] for e in hist), default=mj["best"]["val"]["sequence"])
        if hit:
            secs = seconds_to(hist, hit)
            row("training to 99% validation accuracy (real data)", f"{secs:.0f} s (epoch {hit['epoch']})", "≤ 600 s", secs <= 600)
        else:
            row("training to 99% validation accuracy (real data)", f"not reached (best {100 * best:.2f}%)", "≤ 600 s", False)
        row(f"training, seconds per epoch ({mp})", f"{mj['seconds_per_epoch']:.1f} s", "", True)
    else:
        row("training to 99% validation accuracy (real data)", "no run (tools/bench.sh --train)", "≤ 600 s", False)
    # Other 90/10 splits (tools/splits.sh writes the summary): one split's 94 images are a noisy measure.
    if os.path.exists("runs/splits-summary.json"):
        sp = json.load(open("runs/splits-summary.json"))
        n, secs = sp["splits"], sp["seconds_to_99"]
        row(f"training over {n} splits (tools/splits.sh): 99% reached on", f"{len(secs)} of {n}"
            + (f", after {sum(secs) / len(secs):.0f} s on average, {max(secs):.0f} s at most" if secs else "")
            + f"; mean best accuracy {100 * sp['mean_best_accuracy']:.2f}%", "≤ 600 s", len(secs) == n and max(secs) <= 600)
    # 10-fold cross-validation (tools/splits.sh --folds): every image read by a model that did not train on it.
    if os.path.exists("runs/folds-summary.json"):
        cv = json.load(open("runs/folds-summary.json"))
        acc = 1 - cv["wrong"] / cv["images_read"]
        row(f"out-of-fold accuracy over {cv['folds']} of 10 folds (tools/splits.sh --folds), int8",
            f"{100 * acc:.2f}% ({cv['wrong']} wrong of {cv['images_read']})", "≥ 99%", acc >= 0.99)
    print("| figure | measured | target | met |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    # Where the device's instructions go (the profile build: tools/firmware.sh profile), per stage.
    cal = re.search(r"^calibration: .*$", log, re.M)
    stages = re.findall(r"^profile: (\S+) (\d+) instructions for (\d+) multiply-adds$", log, re.M)
    if stages:
        print()
        print(f"Cortex-M4 per stage (QEMU mps2-an386, -icount shift=0; counter check: `{cal.group(0) if cal else 'missing'}`)")
        print()
        print("| stage | instructions | multiply-adds | instructions per multiply-add |")
        print("|---|---:|---:|---:|")
        for name, n, macs in stages:
            n, macs = int(n), int(macs)
            print(f"| {name} | {n:,} | {macs:,} | {n / macs:.2f} |" if macs else f"| {name} | {n:,} | 0 | |")
        n = sum(int(n) for name, n, _ in stages if name != "ctc-decode")
        macs = sum(int(m) for _, _, m in stages)
        print(f"| network (all but the decode) | {n:,} | {macs:,} | {n / macs:.2f} |")


def pycaptcha(runs):
    """The table of the Python-captcha runs (tools/pycaptcha.sh)."""
    print("| recipe | left the blank plateau (first epoch reading 1%) | accuracy at epoch 10 | best epoch | "
          "validation accuracy f32 / int8 (CER) | epochs, seconds |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        m = json.load(open(f"runs/pycaptcha/{run}/metrics.json"))
        hist = m["history"]
        left = (first_epoch(hist, 0.01) or {}).get("epoch")
        at10 = next((e["val"]["sequence"] for e in hist if e["epoch"] == 10), None)
        f32, int8 = m["core_infer_f32"], m["core_infer_int8"]
        print(f"| {run} | {left if left else 'not within the run'} | "
              f"{'-' if at10 is None else f'{100 * at10:.2f}%'} | {m['best_epoch']} | "
              f"{100 * f32['sequence']:.2f}% / {100 * int8['sequence']:.2f}% ({f32['cer']:.4f}) | "
              f"{m['epochs_run']}, {m['seconds_total']:.0f} s |")


def splits(kind, dirs):
    """The table of several splits or folds and the summary tools/bench.sh reads (tools/splits.sh)."""
    rows, accs, hits, read, n_wrong_all = [], [], [], 0, 0
    for d in dirs:
        m = json.load(open(f"{d}/metrics.json"))
        hist, best = m["history"], m["best"]
        hit = first_epoch(hist, 0.99)
        if hit:
            secs = seconds_to(hist, hit)
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


def stylecaptcha(out):
    """The table of the many-style run and its 200 fresh images (tools/stylecaptcha.sh)."""
    m = json.load(open(f"{out}/metrics.json"))
    ev = json.load(open("runs/stylecaptcha/fresh-eval.json"))
    hist = m["history"]
    left = (first_epoch(hist, 0.01) or {}).get("epoch")
    qat = m.get("quantization_aware")
    ptq = ""
    if qat:
        kept = f"epoch {qat['best_epoch']} kept" if qat["best_epoch"] else "none kept"
        fresh_ptq = f", 200 fresh {100 * ev[2]['accuracy']['sequence']:.2f}%" if len(ev) > 2 else ""
        ptq = (f"{100 * qat['post_training']['sequence']:.2f}% validation{fresh_ptq}; "
               f"{len(qat['history'])} epochs, {qat['seconds']:.0f} s, {kept}")
    print("| style | images | left the plateau (1% read) | best epoch | validation f32 / int8 | 200 fresh f32 / int8 (CER int8) "
          "| int8 before quantization-aware fine-tuning | epochs, seconds |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| per-character colour and font, clutter, 4 of 36, 256x64 | {m['images']} | {left or 'not within the run'} | "
          f"{m['best_epoch']} | {100 * m['core_infer_f32']['sequence']:.2f}% / {100 * m['core_infer_int8']['sequence']:.2f}% | "
          f"{100 * ev[0]['accuracy']['sequence']:.2f}% / {100 * ev[1]['accuracy']['sequence']:.2f}% ({ev[1]['accuracy']['cer']:.4f}) | "
          f"{ptq or 'not needed (int8 within half a point)'} | {m['epochs_run']}, {m['seconds_total']:.0f} s |")


def sheet(pattern, out):
    """A contact sheet of the first 24 images matching `pattern` (4 across), written to `out`."""
    from PIL import Image
    files = sorted(glob.glob(pattern))[:24]
    if not files:
        sys.exit(f"no images match {pattern}")
    w, h = Image.open(files[0]).size
    sheet = Image.new("RGB", (4 * w, 6 * h), "white")
    for i, f in enumerate(files):
        sheet.paste(Image.open(f).convert("RGB"), (i % 4 * w, i // 4 * h))
    sheet.save(out)


COMMANDS = {
    "elf-sizes": (lambda a: elf_sizes(a[0], a[1], a[2], a[3]), 4),
    "calibration": (lambda a: calibration(a[0]), 1),
    "profile": (lambda a: profile(a[0]), 1),
    "bench": (lambda a: bench(a[0]), 1),
    "layers": (lambda a: layers(), 0),
    "pycaptcha": (lambda a: pycaptcha(a), 1),
    "splits": (lambda a: splits(a[0], a[1:]), 2),
    "stylecaptcha": (lambda a: stylecaptcha(a[0]), 1),
    "sheet": (lambda a: sheet(a[0], a[1]), 2),
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS or len(sys.argv) - 2 < COMMANDS[sys.argv[1]][1]:
        sys.exit(__doc__)
    run, _ = COMMANDS[sys.argv[1]]
    sys.exit(run(sys.argv[2:]) or 0)
