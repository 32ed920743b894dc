"""Benchmark graphc's Numba CPU backend against the NumPy reference and PyTorch eager.

One run measures the fused train step (forward, backward, SGD) and forward-only inference
of each workload with graphc's cpu and numpy backends (in this process, taking turns) and,
each in a fresh process, the peers of peers.py: PyTorch eager, JAX jit and a hand-fused
Numba step; numpy's own sgemm at 2048^3; graphc's cold and warm compile. It prints a table
of median times with graphc's ratio to the best peer, then runs the rows again in a
subprocess with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (what a user's machine has).
Usage (the peers need `pip install graphc[bench]`):

    python benchmarks/bench_cpu.py [--quick] [--only NAME] [--as-set-only]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import graphc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from peers import median_times  # noqa: E402


def mlp(name: str, sizes: list[int], act: str, loss: str) -> dict:
    """A dense MLP spec: sizes[0] inputs, hidden layers with `act`, then the output."""
    nodes, prev = [], "x"
    for k, units in enumerate(sizes[1:-1]):
        nodes.append({"id": f"h{k}", "op": "dense", "inputs": [prev],
                      "attrs": {"units": units, "activation": act, "init": "he_uniform"}})
        prev = f"h{k}"
    out_act = "sigmoid" if loss == "bce" else "none"
    nodes.append({"id": "out", "op": "dense", "inputs": [prev],
                  "attrs": {"units": sizes[-1], "activation": out_act}})
    if loss == "bce":
        y = {"shape": ["B", 1]}
        nodes.append({"id": "loss", "op": "binary_cross_entropy", "inputs": ["out", "y"]})
    else:
        y = {"shape": ["B"], "dtype": "int64"}
        nodes.append({"id": "loss", "op": "cross_entropy", "inputs": ["out", "y"]})
    return {"graphc": 1, "name": name, "inputs": {"x": {"shape": ["B", sizes[0]]}, "y": y},
            "nodes": nodes, "outputs": ["out"], "loss": "loss"}


WORKLOADS = [  # name, sizes, activation, loss, batch, target speed-up over torch
    ("2-16-16-1 tanh BCE", [2, 16, 16, 1], "tanh", "bce", 32, 10.0),
    ("784-256-10 ReLU CE", [784, 256, 10], "relu", "ce", 1, 3.0),
    ("784-256-10 ReLU CE", [784, 256, 10], "relu", "ce", 64, 1.5),
    ("784-256-10 ReLU CE", [784, 256, 10], "relu", "ce", 1024, 1.9),
    ("64-(8x64)-10 ReLU CE", [64] + [64] * 8 + [10], "relu", "ce", 64, 2.5),
]


def batch_of(spec: dict, n: int, rng: np.random.Generator) -> dict:
    x = rng.normal(size=(n, spec["inputs"]["x"]["shape"][1])).astype(np.float32)
    if spec["inputs"]["y"].get("dtype") == "int64":
        classes = spec["nodes"][-2]["attrs"]["units"]
        return {"x": x, "y": rng.integers(0, classes, n).astype(np.int64)}
    return {"x": x, "y": rng.integers(0, 2, (n, 1)).astype(np.float32)}


def bench_workload(name, sizes, act, loss, batch, budget, peers=("torch", "jax", "hand")):
    """graphc (cpu and numpy backends) in this process, taking turns; each peer in a fresh
    one, so that no one's idle BLAS or OpenMP threads spin while another computes."""
    spec = mlp(name, sizes, act, loss)
    rng = np.random.default_rng(0)
    data = batch_of(spec, batch, rng)
    row = {"workload": name, "batch": batch}
    cpu = graphc.compile(spec, backend="cpu")
    ref = graphc.compile(spec, backend="numpy")
    opt_cpu, opt_ref = graphc.optim.SGD(lr=0.01), graphc.optim.SGD(lr=0.01)
    x = {"x": data["x"]}
    row.update(median_times({
        "cpu train": lambda: cpu.train_step(opt_cpu, **data),
        "numpy train": lambda: ref.train_step(opt_ref, **data),
        "cpu forward": lambda: cpu.forward(**x),
        "numpy forward": lambda: ref.forward(**x)}, budget))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "arrays.npz")
        np.savez(path, **ref.params, **{f"data/{k}": v for k, v in data.items()})
        for kind in peers:
            proc = subprocess.run([sys.executable, os.path.join(HERE, "peers.py"), kind,
                                   json.dumps(spec), path, str(budget)],
                                  capture_output=True, text=True)
            if proc.returncode == 0:
                row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
            else:  # e.g. not installed: the row says so instead of failing the run
                row[f"{kind} error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
    # FLOPs of the three (or more) GEMMs per layer, for the GEMM throughput figure
    row["gemm flops"] = sum(2 * batch * a * b * (3 if k else 2)
                            for k, (a, b) in enumerate(zip(sizes, sizes[1:])))
    return row


def sgemm_gflops(n: int = 2048, reps: int = 7) -> float:
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    a @ b
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2 * n ** 3 / float(np.median(times)) / 1e9


COMPILE_SCRIPT = """
import time, json, sys
t0 = time.perf_counter()
import numpy as np
import graphc
t1 = time.perf_counter()
spec = json.loads(sys.argv[1])
m = graphc.compile(spec, backend="cpu")
rng = np.random.default_rng(0)
data = {"x": rng.normal(size=(64, 784)).astype(np.float32),
        "y": rng.integers(0, 10, 64).astype(np.int64)}
m.train_step(graphc.optim.SGD(lr=0.01), **data)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first_step": t2 - t1}))
"""


FLOOR_SCRIPT = """
import os, sys, time
t0 = time.perf_counter()
import numba
t1 = time.perf_counter()
path = os.path.join(sys.argv[1], "floor_mod.py")
with open(path, "w") as f:
    f.write("from numba import njit\\n@njit(cache=True)\\ndef f(x):\\n    return x + 1\\n")
sys.path.insert(0, sys.argv[1])
import floor_mod
floor_mod.f(1)
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def numba_floor() -> tuple[float, float]:
    """What any Numba program pays in a new process: import numba, then the first call of
    a trivial cached function (Numba's own start-up: its registries, SciPy's BLAS)."""
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(2):  # the second run loads the trivial function from its cache
            proc = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, folder],
                                  capture_output=True, text=True, check=True)
    imp, first = map(float, proc.stdout.split())
    return imp, first


def compile_times() -> dict[str, float]:
    """Fresh processes: an empty cache (cold), the same cache again (warm); and a new
    model whose helpers are already cached (what every model after the first pays)."""
    spec = mlp("compile bench", [784, 256, 10], "relu", "ce")
    other = mlp("compile bench 2", [784, 256, 10], "relu", "ce")
    other["nodes"][0]["attrs"]["init"] = "he_normal"
    out = {}
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "GRAPHC_CACHE_DIR": folder}
        for key, s in (("cold", spec), ("warm", spec), ("new model", other)):
            proc = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT, json.dumps(s)],
                                  env=env, capture_output=True, text=True, check=True)
            out[key] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


TRAP_SCRIPT = """
import json, sys
import numpy as np
import graphc
sys.path.insert(0, sys.argv[1])
from bench_cpu import batch_of, mlp
from peers import median_times
spec = mlp("trap", [784, 256, 10], "relu", "ce")
m = graphc.compile(spec, backend="cpu")
data = batch_of(spec, 64, np.random.default_rng(0))
opt = graphc.optim.SGD(lr=0.01)
a = np.random.default_rng(1).random((256, 256), dtype=np.float32)
print(json.dumps(median_times({"step": lambda: m.train_step(opt, **data),
                               "matmul": lambda: a @ a,
                               "both": lambda: (m.train_step(opt, **data), a @ a)}, 3.0)))
"""


def blas_trap() -> dict[str, dict[str, float]]:
    """A train step and a numpy matmul, alone and taking turns, in a fresh process: with
    graphc's matmuls on numpy's own BLAS (the default), and on SciPy's (GRAPHC_BLAS=scipy,
    what Numba's np.dot uses), which puts two OpenBLAS thread pools in one process."""
    out = {}
    here = os.path.dirname(os.path.abspath(__file__))
    for choice in ("numpy", "scipy"):
        env = {**os.environ, "GRAPHC_BLAS": choice}
        proc = subprocess.run([sys.executable, "-c", TRAP_SCRIPT, here], env=env,
                              capture_output=True, text=True, check=True)
        out[choice] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def fmt_us(t: float) -> str:
    return f"{t * 1e6:,.1f}"


def print_table(rows: list[dict]) -> None:
    """Train steps against every peer (ratio: the best peer's time over graphc's), then
    forward calls."""
    def us(r: dict, key: str) -> str:
        return fmt_us(r[key]) if key in r else "n/a"

    head = ("workload", "batch", "graphc train µs", "numpy", "PyTorch eager", "JAX jit",
            "hand-fused Numba", "best peer / graphc", "torch/graphc (target)",
            "graphc fwd µs", "torch fwd", "JAX fwd")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    targets = {(w[0], w[4]): w[5] for w in WORKLOADS}
    for r in rows:
        peers = {k: r[k] for k in ("torch train", "jax train", "hand train") if k in r}
        best = min(peers, key=peers.get) if peers else None
        ratio = f"{peers[best] / r['cpu train']:.2f}x ({best.split()[0]})" if best else "n/a"
        target = targets[r["workload"], r["batch"]]
        torch = (f"{r['torch train'] / r['cpu train']:.2f}x ({target}x)"
                 if "torch train" in r else "n/a")
        print(f"| {r['workload']} | {r['batch']} | {fmt_us(r['cpu train'])} | "
              f"{us(r, 'numpy train')} | {us(r, 'torch train')} | {us(r, 'jax train')} | "
              f"{us(r, 'hand train')} | {ratio} | {torch} | {fmt_us(r['cpu forward'])} | "
              f"{us(r, 'torch forward')} | {us(r, 'jax forward')} |")
    for r in rows:
        for k in ("torch error", "jax error", "hand error"):
            if k in r:
                print(f"{r['workload']} batch {r['batch']}: {k.split()[0]} failed: {r[k]}")


def environment() -> str:
    return ", ".join(f"{k}={os.environ.get(k, '(unset)')}"
                     for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing budgets")
    parser.add_argument("--only", help="run the workloads whose name contains this")
    parser.add_argument("--no-compile", action="store_true", help="skip compile timings")
    parser.add_argument("--as-set-only", action="store_true",
                        help="skip the second run with the OpenBLAS variables unset")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    budget = 0.5 if args.quick else 2.0
    label = ("OpenBLAS variables UNSET (a user's default)" if args.child
             else "OpenBLAS variables as this environment sets them")
    print(f"== {label}: {environment()}")
    print(f"graphc {graphc.__version__}, numpy {np.__version__}, {os.cpu_count()} cores")
    from graphc.doctor import blas_warning

    if warning := blas_warning():
        print(warning)
    gflops = sgemm_gflops()
    print(f"numpy sgemm 2048^3: {gflops:,.0f} GFLOP/s")
    rows = [bench_workload(*w[:5], budget) for w in WORKLOADS
            if not args.only or args.only in w[0]]
    print_table(rows)
    for r in rows:
        if r["batch"] == 1024:
            achieved = r["gemm flops"] / r["cpu train"] / 1e9
            print(f"{r['workload']} batch 1024: train step GEMMs at {achieved:,.0f} GFLOP/s "
                  f"= {achieved / gflops:.0%} of numpy's 2048^3 sgemm (target 60%)")
    if args.child:
        return
    for choice, t in blas_trap().items():
        print(f"BLAS pools, matmuls on {choice}'s OpenBLAS: 784-256-10 batch 64 step "
              f"{fmt_us(t['step'])} µs alone, numpy 256^3 matmul {fmt_us(t['matmul'])} µs "
              f"alone, both taking turns {fmt_us(t['both'])} µs "
              f"({t['both'] / (t['step'] + t['matmul']):.1f}x the sum)")
    if not args.no_compile:
        c = compile_times()
        print(f"784-256-10 compile, fresh processes: cold (empty cache) first step "
              f"{c['cold']['first_step']:.2f} s; warm cache first step "
              f"{c['warm']['first_step']:.2f} s; a new model with helpers cached "
              f"{c['new model']['first_step']:.2f} s (import graphc: "
              f"{c['warm']['import']:.2f} s, not included)")
        imp, first = numba_floor()
        print(f"Numba's own floor in a fresh process: import numba {imp:.2f} s, first call "
              f"of a trivial cached @njit function {first:.2f} s")
    if not args.as_set_only:
        env = {k: v for k, v in os.environ.items()
               if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        extra = [a for a in sys.argv[1:] if a in ("--quick",)]
        if args.only:
            extra += ["--only", args.only]
        sys.stdout.flush()
        subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *extra],
                       env=env, check=True)


if __name__ == "__main__":
    main()
