"""graphc's fused train-step kernel against the hand-fused step of handfused.py, both
called straight (no Python wrapper around either), taking turns in one process: what is
left between them is code generation, not call overhead. One BLAS thread: graphc calls
numpy's OpenBLAS, the hand-fused np.dot SciPy's, and two pools' idle threads spinning in
one process would slow whichever runs next.

    python benchmarks/bench_kernels.py
"""

from __future__ import annotations

import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_cpu import WORKLOADS, batch_of, mlp  # noqa: E402
from handfused import HandFused, step  # noqa: E402

import graphc  # noqa: E402


def kernels(sizes, act, loss, batch):
    spec = mlp("kernels", sizes, act, loss)
    data = batch_of(spec, batch, np.random.default_rng(0))
    m = graphc.compile(spec, backend="cpu")
    opt = graphc.optim.SGD(lr=0.0)  # lr 0: every call sees the same params
    m.train_step(opt, **data)
    m.train_step(opt, **data)
    tr = m.backend.trainer(m, opt)
    arrays = tr.arrays(m, data)
    ws = tr.workspace(arrays)
    dims = [arrays[k].shape[axis] for k, axis in tr.dim_at]
    args = (*dims, *arrays, *tr.state.args, *ws, 0.0, 0.0, 0.0, 0.0, 1.0, np.inf, np.inf)
    kernel = tr.module.train_step_kernel
    hf = HandFused(spec, {k: v.copy() for k, v in m.params.items()}, batch)
    y = HandFused.labels(data["y"])
    hargs = (hf.ws, hf.bs, hf.acts, hf.grads, hf.gws, data["x"], y, hf.act, hf.bce, 0.0)

    def graphc_call():
        kernel(*args)

    def hand_call():
        step(*hargs)

    def python_call():
        m.train_step(opt, **data)

    return {"graphc kernel": graphc_call, "hand-fused kernel": hand_call,
            "graphc train_step": python_call}


def main() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    for name, sizes, act, loss, batch, _ in WORKLOADS:
        fns = kernels(sizes, act, loss, batch)
        best = {k: [] for k in fns}
        for _ in range(7):  # rounds, taking turns
            for k, fn in fns.items():
                n = max(3, int(0.02 / max(timeit.timeit(fn, number=3) / 3, 1e-7)))
                best[k].append(timeit.timeit(fn, number=n) / n)
        t = {k: float(np.median(v)) * 1e6 for k, v in best.items()}
        print(f"{name}, batch {batch}: " + ", ".join(f"{k} {v:,.1f} µs" for k, v in t.items())
              + f"; hand/graphc kernel {t['hand-fused kernel'] / t['graphc kernel']:.2f}x, "
              f"call overhead {t['graphc train_step'] - t['graphc kernel']:.1f} µs")


if __name__ == "__main__":
    main()
