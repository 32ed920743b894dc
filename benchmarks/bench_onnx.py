"""Benchmark graphc's ONNX import and an imported model's inference against onnxruntime.

In one run, on the same machine state: the time to read an ONNX model into a graphc Graph
next to loading the same model's JSON spec, and forward-only inference of the imported
784-256-10 MLP (graphc cpu backend, numpy backend) against onnxruntime's CPU provider at
batch 1 and 64. Prints median times and ratios. Usage:

    python benchmarks/bench_onnx.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import graphc
import graphc.onnx as gx

ROOT = Path(__file__).resolve().parent.parent


def median_time(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    blas = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
            if k in os.environ}
    print(f"OpenBLAS settings: {blas or 'not set'}")

    src = ROOT / "examples" / "mnist_mlp.json"
    trained = graphc.compile(src, backend="numpy")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mnist.onnx"
        gx.export(trained, path)
        t_json = median_time(lambda: graphc.load(src), 20)
        t_onnx = median_time(lambda: gx.load(path), 20)
        print(f"load: json spec {t_json * 1e3:.1f} ms, onnx {t_onnx * 1e3:.1f} ms "
              f"({t_onnx / t_json:.1f}x)")
        graph = gx.load(path)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        models = {b: graphc.compile(graph, backend=b) for b in ("cpu", "numpy")}
        print(f"{'batch':>5} {'onnxruntime':>12} {'graphc cpu':>11} {'numpy':>9} "
              f"{'ort/cpu':>8}")
        rng = np.random.default_rng(0)
        for batch in (1, 64):
            x = rng.normal(size=(batch, 784)).astype(np.float32)
            ref = sess.run(None, {"x": x})[0]
            got = models["cpu"].forward(x=x)["probs"]
            assert np.abs(got - ref).max() < 1e-5, "graphc and onnxruntime disagree"
            t_ort = median_time(lambda x=x: sess.run(None, {"x": x}), args.repeat)
            t = {b: median_time(lambda m=m, x=x: m.forward(x=x), args.repeat)
                 for b, m in models.items()}
            print(f"{batch:>5} {t_ort * 1e6:>10.0f}us {t['cpu'] * 1e6:>9.0f}us "
                  f"{t['numpy'] * 1e6:>7.0f}us {t_ort / t['cpu']:>7.2f}x")


if __name__ == "__main__":
    main()
