"""Training through `fit` on a TensorFlow-Playground-sized model (2-16-16-1 tanh, BCE,
batch 32, SGD): µs per step with whole epochs compiled (graphc's default), step by step
(Model.train_step in a Python loop) and PyTorch eager's loop (one thread), each in its
own process.

    python benchmarks/bench_fit.py [--rows 3200] [--epochs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def dataset(rows: int) -> dict:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 2)).astype(np.float32)
    return {"x": x, "y": (x[:, :1] * x[:, 1:] > 0).astype(np.float32)}


def run_graphc(how: str, rows: int, epochs: int) -> dict:
    from bench_cpu import mlp

    import graphc

    spec = mlp("playground", [2, 16, 16, 1], "tanh", "bce")
    data = dataset(rows)
    m = graphc.compile(spec, backend="cpu")
    opt = {"name": "sgd", "lr": 0.05}
    if how == "stepwise":
        from graphc import epochs as epochmod

        epochmod.fusable = lambda model: False  # fit's step-by-step loop
    m.fit(data, epochs=1, batch_size=32, optimizer=opt)  # compile, warm up
    t = time.perf_counter()
    h = m.fit(data, epochs=epochs, batch_size=32, optimizer=opt)
    wall = time.perf_counter() - t
    steps = epochs * -(-rows // 32)
    return {"us per step": wall / steps * 1e6, "median epoch s": float(np.median(h["time"])),
            "loss": h["loss"][-1]}


def run_torch(rows: int, epochs: int) -> dict:
    import torch

    torch.set_num_threads(1)  # its fastest setting for a model this small, and the steadiest
    torch.manual_seed(0)
    data = dataset(rows)
    x, y = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])
    net = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16),
                              torch.nn.Tanh(), torch.nn.Linear(16, 1), torch.nn.Sigmoid())
    opt, loss_fn = torch.optim.SGD(net.parameters(), lr=0.05), torch.nn.BCELoss()
    times = []
    for _ in range(epochs + 1):
        t = time.perf_counter()
        for idx in torch.randperm(rows).split(32):
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t)
    steps = -(-rows // 32)
    return {"us per step": float(np.median(times[1:])) / steps * 1e6,
            "median epoch s": float(np.median(times[1:])), "loss": float(loss)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3200)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        out = (run_torch(args.rows, args.epochs) if args.worker == "torch"
               else run_graphc(args.worker, args.rows, args.epochs))
        print(json.dumps(out))
        return
    from graphc.doctor import blas_warning

    if warning := blas_warning():
        print(warning)
    rows = {}
    for who in ("compiled", "stepwise", "torch"):
        proc = subprocess.run([sys.executable, __file__, "--worker", who, "--rows",
                               str(args.rows), "--epochs", str(args.epochs)],
                              capture_output=True, text=True)
        if proc.returncode:
            print(f"{who} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        rows[who] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"2-16-16-1 tanh BCE, batch 32, {args.rows} rows, SGD; µs per step (whole fit call "
          f"over {args.epochs} epochs)")
    torch_us = rows.get("torch", {}).get("us per step")
    for who, r in rows.items():
        ratio = f" ({torch_us / r['us per step']:.1f}x PyTorch)" if torch_us else ""
        print(f"  {who:9s} {r['us per step']:8.1f} µs/step{ratio}  final loss {r['loss']:.4f}")
    if "compiled" in rows:
        ok = rows["compiled"]["us per step"] <= 7.0
        print(f"  target <= 7 µs a step through fit: {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
