"""ONNX Runtime on the same model and images as the criterion bench (tests/benches/latency.rs writes them to
target/peers/): single-image latency with one thread (f32, and int8 quantized by ONNX Runtime itself: static
QDQ where it works on this graph, else dynamic), and throughput of batches of 64 on two threads.
Run by tools/bench.sh with the venv of `tools/setup.sh ort`; writes target/peers/ort.json.
    python tools/ort_bench.py [PEERS_DIR]
"""
import json
import os
import sys
import time

import numpy as np
import onnxruntime as ort
from onnxruntime import quantization as q

peers = sys.argv[1] if len(sys.argv) > 1 else "target/peers"
shape = json.load(open(os.path.join(peers, "shape.json")))
n, h, w = shape["n"], shape["h"], shape["w"]
images = np.fromfile(os.path.join(peers, "images.f32"), dtype="<f4").reshape(n, 1, h, w)
f32_path = os.path.join(peers, "model.onnx")


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def mean_seconds(run, min_seconds=3.0, min_runs=20):
    """Mean wall time of `run()` after a warm-up, over at least `min_runs` runs and `min_seconds`."""
    for _ in range(5):
        run()
    runs, start = 0, time.perf_counter()
    while runs < min_runs or time.perf_counter() - start < min_seconds:
        run()
        runs += 1
    return (time.perf_counter() - start) / runs


def latency_ms(path):
    s = session(path, 1)
    name = s.get_inputs()[0].name
    one = images[:1]
    return 1e3 * mean_seconds(lambda: s.run(None, {name: one}))


def fastest_ms(path, blocks=25, per_block=10):
    """The fastest and the median block's mean time per run, in ms: blocks of `per_block` runs, as the
    round-robin pass of tests/benches/latency.rs measures core-infer (on a shared machine a plain mean moves
    by a quarter between identical runs)."""
    s = session(path, 1)
    name = s.get_inputs()[0].name
    one = images[:1]
    for _ in range(5):
        s.run(None, {name: one})
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(per_block):
            s.run(None, {name: one})
        times.append((time.perf_counter() - start) / per_block)
    times.sort()
    return 1e3 * times[0], 1e3 * times[len(times) // 2]


class Calibration(q.CalibrationDataReader):
    def __init__(self, name):
        self.items = iter([{name: images[i : i + 1]} for i in range(n)])

    def get_next(self):
        return next(self.items, None)


result = {"onnxruntime": ort.__version__, "images": n, "height": h, "width": w}
result["f32_ms"] = latency_ms(f32_path)
result["f32_fastest_ms"], result["f32_median_ms"] = fastest_ms(f32_path)

# int8 by ONNX Runtime's own tools: static QDQ (calibrated on the 64 images) if it quantizes and runs this
# graph, else dynamic (weights int8, activations quantized at run time).
pre = os.path.join(peers, "model-pre.onnx")
try:
    q.quant_pre_process(f32_path, pre)
except Exception:  # the pre-processing is optional
    pre = f32_path
int8 = {}
try:
    path = os.path.join(peers, "model-int8-static.onnx")
    name = session(pre, 1).get_inputs()[0].name
    q.quantize_static(pre, path, Calibration(name), quant_format=q.QuantFormat.QDQ,
                      activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8)
    int8["static QDQ"] = latency_ms(path)
except Exception as e:
    int8["static QDQ failed"] = str(e).splitlines()[0][:200]
try:
    path = os.path.join(peers, "model-int8-dynamic.onnx")
    q.quantize_dynamic(pre, path, weight_type=q.QuantType.QInt8)
    int8["dynamic"] = latency_ms(path)
except Exception as e:
    int8["dynamic failed"] = str(e).splitlines()[0][:200]
result["int8"] = int8
timed = {k: v for k, v in int8.items() if isinstance(v, float)}
if timed:
    best = min(timed, key=timed.get)
    result["int8_best"] = [best, timed[best]]

# Throughput: the 64 images as one batch, two threads (the graph's batch dimension is dynamic).
s = session(f32_path, 2)
name = s.get_inputs()[0].name
try:
    result["batch64_2threads_images_per_s"] = n / mean_seconds(lambda: s.run(None, {name: images}), 3.0, 5)
except Exception as e:  # a graph exported for batch 1 only
    result["batch64_failed"] = str(e).splitlines()[0][:200]

json.dump(result, open(os.path.join(peers, "ort.json"), "w"), indent=1)
print(json.dumps(result, indent=1))
