"""Benchmark graphc's ONNX import against its JSON front end, and an imported model's
inference against onnxruntime, every ratio measured in the same run.

1. Import + compile: in fresh processes with an empty module cache (cold) and again with
   the cache filled (warm), the time from a spec path to a first forward, for the
   784-256-10 MLP and LeNet-5, from their JSON specs and from ONNX files graphc exported.
2. Inference of the imported 784-256-10 MLP (graphc's own export, and PyTorch's when torch
   is installed) at batch 1 and 64: onnxruntime's CPU session, graphc's `Model.forward`,
   the module `graphc compile` writes, and the compiled kernel alone (no input checks).
   Ratios are onnxruntime's time over graphc's (above 1: graphc is faster).
3. With --unset-blas-env, section 2 again in a child process without OPENBLAS_CORETYPE and
   OPENBLAS_L2_SIZE (as on a user's machine: OpenBLAS then picks its AVX-512 kernels).

    python benchmarks/bench_onnx.py [--repeat N] [--skip-compile] [--unset-blas-env]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import graphc
import graphc.onnx as gx

ROOT = Path(__file__).resolve().parent.parent
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

COMPILE = """
import sys, time
import numpy as np
import graphc
t = time.perf_counter()
if sys.argv[1].endswith(".onnx"):
    import onnx  # once per process (most of it ml_dtypes' NumPy type registration)
t_onnx, t = time.perf_counter() - t, time.perf_counter()
model = graphc.compile(sys.argv[1], backend="cpu")
model.forward(x=np.zeros([2] + list(model.graph.inputs["x"]["shape"][1:]), np.float32))
print(t_onnx, time.perf_counter() - t)
"""


def median_time(fn, repeat: int) -> float:
    for _ in range(max(repeat // 20, 5)):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def compile_times(tmp: Path) -> None:
    """Spec path -> first forward, in fresh processes: cold (empty cache), then warm."""
    print("spec path -> compiled -> first forward, in a fresh process (s): cold cache / warm "
          "cache; `import onnx` is timed apart")
    for stem in ("mnist_mlp", "lenet5"):
        src = ROOT / "examples" / f"{stem}.json"
        onnx_path = tmp / f"{stem}.onnx"
        gx.export(src, onnx_path)
        row = {}
        for kind, path in (("json", src), ("onnx", onnx_path)):
            env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp / f"cache-{stem}-{kind}"),
                   "PYTHONPATH": str(ROOT)}
            runs = [subprocess.run([sys.executable, "-c", COMPILE, str(path)], env=env,
                                   check=True, capture_output=True, text=True).stdout.split()
                    for _ in range(2)]
            row[kind] = [float(r[-1]) for r in runs]
            t_onnx = max(float(r[-2]) for r in runs)
        (jc, jw), (oc, ow) = row["json"], row["onnx"]
        print(f"  {stem:>9}: json {jc:5.2f} / {jw:5.2f}   onnx {oc:5.2f} / {ow:5.2f}   "
              f"onnx - json {oc - jc:+.2f} / {ow - jw:+.2f}   (import onnx: {t_onnx:.2f})")


def torch_mlp(path: Path) -> bool:
    """PyTorch's 784-256-10 MLP exported by its legacy exporter (False without torch)."""
    try:
        import torch
    except ImportError:
        return False
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                              torch.nn.Linear(256, 10), torch.nn.Softmax(dim=1)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 784),), str(path), input_names=["x"],
                          output_names=["probs"], dynamic_axes={"x": {0: "B"}}, dynamo=False)
    return True


def standalone_module(graph, folder: Path):
    """The module `graphc compile` writes, imported."""
    from graphc.standalone import standalone

    built = standalone(graph, "float32")
    path = folder / f"{built['name']}.py"
    path.write_text(built["source"])
    np.savez(folder / f"{built['name']}_params.npz", **built["params"])
    spec = importlib.util.spec_from_file_location(built["name"], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def inference(tmp: Path, repeat: int) -> None:
    import onnxruntime as ort

    models = {"graphc-exported": tmp / "mnist.onnx"}
    gx.export(graphc.compile(ROOT / "examples" / "mnist_mlp.json", backend="numpy"),
              models["graphc-exported"])
    if torch_mlp(tmp / "torch.onnx"):
        models["torch-exported"] = tmp / "torch.onnx"
    print(f"{'784-256-10 MLP':>16} {'batch':>5} {'onnxruntime':>11} {'forward':>9} "
          f"{'module':>9} {'kernel':>9}   ort/forward ort/module ort/kernel")
    for label, path in models.items():
        graph = gx.load(path)
        model = graphc.compile(graph, backend="cpu")
        module = standalone_module(graph, Path(tempfile.mkdtemp(dir=tmp)))
        params = module.init_params()
        params = {k: model.params[k] for k in params}  # the same values as the model's
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        for batch in (1, 64):
            x = rng.normal(size=(batch, 784)).astype(np.float32)
            ref = sess.run(None, {"x": x})[0]
            got = model.forward(x=x)["probs"]
            assert np.abs(got - ref).max() < 1e-5, "graphc and onnxruntime disagree"
            assert np.abs(module.forward(params, x=x)["probs"] - ref).max() < 1e-5
            t = timings(sess, model, module, params, x, repeat)
            us = {k: v * 1e6 for k, v in t.items()}
            print(f"{label:>16} {batch:>5} {us['ort']:>9.1f}us {us['forward']:>7.1f}us "
                  f"{us['module']:>7.1f}us {us['kernel']:>7.1f}us   "
                  f"{t['ort'] / t['forward']:>10.2f}x {t['ort'] / t['module']:>9.2f}x "
                  f"{t['ort'] / t['kernel']:>9.2f}x")


def timings(sess, model, module, params: dict, x: np.ndarray, repeat: int) -> dict:
    """Seconds per call: onnxruntime, Model.forward, the standalone module, the kernel."""
    return {"ort": median_time(lambda: sess.run(None, {"x": x}), repeat),
            "forward": median_time(lambda: model.forward(x=x), repeat),
            "module": median_time(lambda: module.forward(params, x=x), repeat),
            "kernel": median_time(_kernel(model, x), repeat)}


def _kernel(model, x):
    """The compiled forward alone, on arrays already bound (what Model.forward adds to it
    is input checking, feeds and the result dict)."""
    model.forward(x=x)
    key = next(k for k in model._compiled if k[0] == "evaluate")
    program, run = model._programs[key], model._compiled[key]
    feeds = model.feeds(program, {"x": x})
    return lambda: run(feeds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1000)
    ap.add_argument("--skip-compile", action="store_true", help="skip section 1")
    ap.add_argument("--unset-blas-env", action="store_true",
                    help="also run section 2 without OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE")
    args = ap.parse_args()
    blas = {k: os.environ[k] for k in BLAS_ENV if k in os.environ}
    print(f"OpenBLAS settings: {blas or 'not set'}")
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_compile:
            compile_times(Path(tmp))
        inference(Path(tmp), args.repeat)
    if args.unset_blas_env and blas:
        env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
        print("\nthe same, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset in this command:")
        subprocess.run([sys.executable, __file__, "--skip-compile", "--repeat",
                        str(args.repeat)], env=env, check=True)


if __name__ == "__main__":
    main()
