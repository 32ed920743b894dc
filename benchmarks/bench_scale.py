"""Scale-out on Ray: the averaging overhead of a data-parallel step, and samples/s of
data-parallel steps on 1, 2 and 4 workers against one process, measured in the same run.

    python benchmarks/bench_scale.py            # a few minutes on 2 cores
    python benchmarks/bench_scale.py --quick    # fewer steps and sizes

Overhead: the driver's wall time of a step minus the slowest worker's compute in it
(gradient of its shard, and the update), for examples/mnist_mlp.json (203,530 params) at
batch 64 with 2 workers: what the Compiled Graph's messages and the reduction cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import graphc  # noqa: E402
from graphc import data as datamod  # noqa: E402
from graphc import distributed, optim  # noqa: E402


def mlp(width: int, depth: int = 2) -> dict:
    nodes, prev = [], "x"
    for i in range(depth):
        nodes.append({"id": f"h{i}", "op": "dense", "inputs": [prev],
                      "attrs": {"units": width, "activation": "relu"}})
        prev = f"h{i}"
    nodes += [{"id": "logits", "op": "dense", "inputs": [prev], "attrs": {"units": 10}},
              {"id": "loss", "op": "cross_entropy", "inputs": ["logits", "y"]}]
    return {"graphc": 1, "name": f"mlp_784_{width}x{depth}_10",
            "inputs": {"x": {"shape": ["B", 784]}, "y": {"shape": ["B"], "dtype": "int64"}},
            "nodes": nodes, "outputs": ["logits"], "loss": "loss"}


def data(rows: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((rows, 784)).astype(np.float32),
            "y": rng.integers(0, 10, rows)}


def overhead(steps: int, workers: int = 2, batch: int = 64) -> dict:
    m = graphc.compile(ROOT / "examples" / "mnist_mlp.json")
    train = datamod.prepare(m, data(batch * 50))
    opts = {"accumulate": 1, "clip_grad_norm": None, "clip_grad_value": None}
    opt = optim.Adam(lr=1e-3)
    rng = np.random.default_rng(1)
    batches = [rng.choice(train.n, batch, replace=False) for _ in range(steps + 20)]
    # one process, for reference: the fused step, and gradient + NumPy update
    ref, ref1 = [], []
    for idx in batches:
        t = time.perf_counter()
        m.train_step(opt, **train.batch(idx))
        ref.append(time.perf_counter() - t)
    with threadpool_limits(1):  # as in a worker (Ray sets OMP_NUM_THREADS=1 per CPU)
        for idx in batches:
            t = time.perf_counter()
            m.train_step(opt, **train.batch(idx))
            ref1.append(time.perf_counter() - t)
    split = []
    for idx in batches:
        t = time.perf_counter()
        _, g = m.grad(**train.batch(idx[:batch // workers]))
        opt.step(m.params, g)
        split.append(time.perf_counter() - t)
    dp = distributed.DataParallel(m, train, opt, workers)
    try:
        wall = []
        for idx in batches:
            t = time.perf_counter()
            dp.step(idx, opt, opts)
            wall.append(time.perf_counter() - t)
        busy = np.array(dp.ray.get([w.compute_times.remote() for w in dp.workers])).max(axis=0)
    finally:
        dp.close()
    wall_a, busy_a = np.array(wall[20:]), busy[20:]
    return {"params": sum(p.size for p in m.params.values()),
            "one_process_ms": 1e3 * np.median(ref[20:]),
            "one_thread_ms": 1e3 * np.median(ref1[20:]),
            "grad_and_update_ms": 1e3 * np.median(split[20:]),
            "step_ms": 1e3 * np.median(wall_a), "compute_ms": 1e3 * np.median(busy_a),
            "overhead_ms": 1e3 * np.median(wall_a - busy_a),
            "overhead_p10_ms": 1e3 * np.percentile(wall_a - busy_a, 10),
            "overhead_p90_ms": 1e3 * np.percentile(wall_a - busy_a, 90)}


def throughput(spec: dict, workers: int | None, batch: int, steps: int,
               threads: int | None = None) -> tuple[float, float]:
    """samples/s from the median step (robust to the other jobs on a shared machine): one
    process's fused train_step, or a data-parallel step on `workers` Ray workers; and the
    median ms of compute in a step (the slowest worker's, for workers)."""
    m = graphc.compile(spec)
    train = datamod.prepare(m, data(batch * 8))
    opts = {"accumulate": 1, "clip_grad_norm": None, "clip_grad_value": None}
    opt = optim.Adam(lr=1e-3)
    rng = np.random.default_rng(2)
    batches = [rng.choice(train.n, batch, replace=False) for _ in range(steps + 2)]
    times = []
    if workers is None:
        with threadpool_limits(threads):
            for idx in batches:
                b = train.batch(idx)
                t = time.perf_counter()
                m.train_step(opt, **b)
                times.append(time.perf_counter() - t)
        step = float(np.median(times[2:]))
        return batch / step, 1e3 * step
    dp = distributed.DataParallel(m, train, opt, workers)
    try:
        for idx in batches:
            t = time.perf_counter()
            dp.step(idx, opt, opts)
            times.append(time.perf_counter() - t)
        busy = np.array(dp.ray.get([w.compute_times.remote() for w in dp.workers])).max(axis=0)
    finally:
        dp.close()
    return batch / float(np.median(times[2:])), 1e3 * float(np.median(busy[2:]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    import ray

    t = time.perf_counter()
    ray.init(num_cpus=max(4, os.cpu_count() or 1), include_dashboard=False,
             log_to_driver=False, logging_level="ERROR")
    print(f"# Ray {ray.__version__} local, {os.cpu_count()} cores; ray.init took "
          f"{time.perf_counter() - t:.1f} s; OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}")

    o = overhead(100 if args.quick else 300)
    print(f"\n## averaging overhead: mnist_mlp ({o['params']:,} params), batch 64, 2 workers")
    print("| one process, fused step: BLAS as set / 1 thread | grad of 32 rows + NumPy Adam "
          "| data-parallel step | slowest worker's compute | overhead median (p10-p90) |")
    print("|---|---|---|---|---|")
    print(f"| {o['one_process_ms']:.2f} / {o['one_thread_ms']:.2f} ms | "
          f"{o['grad_and_update_ms']:.2f} ms | {o['step_ms']:.2f} ms | "
          f"{o['compute_ms']:.2f} ms | {o['overhead_ms']:.2f} ms "
          f"({o['overhead_p10_ms']:.2f}-{o['overhead_p90_ms']:.2f}) |")

    batch, steps = 512, 8 if args.quick else 20
    spec = mlp(1024)
    as_set, _ = throughput(spec, None, batch, steps)
    base, base_ms = throughput(spec, None, batch, steps, threads=1)
    print(f"\n## throughput: 784-1024-1024-10, batch {batch}, Adam, float32 (median of "
          f"{steps} steps)")
    print("| run | samples/s | vs one process, 1 BLAS thread | compute a step |")
    print("|---|---|---|---|")
    print(f"| one process, BLAS threads as set | {as_set:,.0f} | {as_set / base:.2f}x | |")
    print(f"| one process, 1 BLAS thread | {base:,.0f} | 1.00x | {base_ms:.1f} ms |")
    for n in (1, 2, 4):
        s, ms = throughput(spec, n, batch, steps)
        print(f"| {n} Ray worker{'s' if n > 1 else ''} | {s:,.0f} | {s / base:.2f}x | "
              f"{ms:.1f} ms (slowest worker) |")

    widths = (128, 1024) if args.quick else (64, 256, 512, 1024, 2048)
    print(f"\n## where 2 workers pay: 784-W-W-10, batch {batch}")
    print("| W | params | one process (1 BLAS thread) samples/s | 2 workers samples/s "
          "| ratio |")
    print("|---|---|---|---|---|")
    for w in widths:
        spec = mlp(w)
        n_params = 784 * w + w + w * w + w + 10 * w + 10
        one, _ = throughput(spec, None, batch, steps, threads=1)
        two, _ = throughput(spec, 2, batch, steps)
        print(f"| {w} | {n_params:,} | {one:,.0f} | {two:,.0f} | {two / one:.2f}x |")
    ray.shutdown()


if __name__ == "__main__":
    main()
