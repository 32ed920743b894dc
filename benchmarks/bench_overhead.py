"""What a single call costs beyond its kernel: `train_step` and `forward` of the 2-16-16-1
model at batch 32, then the same calls with the compiled kernels replaced by no-ops (what
is left is graphc's Python). Run it with PYTHONPATH pointing at two checkouts in turn to
compare them in one session.

    python benchmarks/bench_overhead.py
"""

from __future__ import annotations

import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_cpu import batch_of, mlp  # noqa: E402

import graphc  # noqa: E402


def main() -> None:
    spec = mlp("overhead", [2, 16, 16, 1], "tanh", "bce")
    d = batch_of(spec, 32, np.random.default_rng(0))
    m = graphc.compile(spec, backend="cpu")
    opt = graphc.optim.SGD(lr=0.0)
    x = d["x"]
    for _ in range(3):
        m.train_step(opt, **d)
        m.forward(x=x)

    def per_call(fn) -> float:
        return min(timeit.repeat(fn, number=20000, repeat=5)) / 20000 * 1e6

    def step():
        m.train_step(opt, **d)

    def forward():
        m.forward(x=x)

    full = per_call(step), per_call(forward)
    trainer = next(iter(m.backend._trainers.values()))
    trainer.module.train_step_kernel = lambda *args: 0.0
    run = m._compiled[next(k for k in m._compiled if k[0] == "evaluate")]
    run.kernel.fn = lambda *args: (np.zeros((32, 1), np.float32),)
    print(f"{graphc.__file__}: train_step {full[0]:.1f} µs, forward {full[1]:.1f} µs; "
          f"kernels replaced by no-ops: train_step {per_call(step):.2f} µs, forward "
          f"{per_call(forward):.2f} µs")


if __name__ == "__main__":
    main()
