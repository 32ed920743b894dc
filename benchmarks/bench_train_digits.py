"""One epoch of the digits MLP (examples/train/digits_mlp.json: 64-256-10, AdamW, label-
smoothed cross-entropy, batch 32, shuffled) with graphc against PyTorch eager doing the
same (issue 5's target: at least 5x faster than PyTorch at batch 32 on the cpu backend).

Each contender runs in its own process, so that two BLAS thread pools never share one
(docs: facts.md, "BLAS and threads"). Prints median ms per epoch and us per step, the
ratio to the fastest PyTorch setting, and the validation accuracy each run reached.

    python benchmarks/bench_train_digits.py [--epochs 30] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "train" / "digits_mlp.json"
DATA = ROOT / "examples" / "train" / "data"


def load(part: str) -> tuple[np.ndarray, np.ndarray]:
    with np.load(DATA / f"digits_{part}.npz") as f:
        return f["x"], f["y"]


def run_graphc(backend: str, how: str, epochs: int, batch: int, threads: int | None) -> dict:
    if threads is not None:  # as torch.set_num_threads: every BLAS pool in the process
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    import graphc
    from graphc.data import evaluate, find_head, prepare
    from graphc.optim import AdamW

    x, y = load("train")
    model = graphc.compile(SPEC, backend=backend)
    opt = AdamW(lr=0.003, weight_decay=0.01)
    times = []
    if how == "fit":  # what users call: batching, shuffling, NaN checks, history
        h = model.fit({"x": x, "y": y}, epochs=epochs, batch_size=batch, optimizer=opt,
                      schedule=False, seed=0)
        times = h["time"]
    else:  # the bare loop, written as PyTorch users write theirs
        rng = np.random.default_rng(0)
        for _ in range(epochs):
            t = time.perf_counter()
            perm = rng.permutation(len(y))
            for s in range(0, len(y), batch):
                idx = perm[s:s + batch]
                model.train_step(opt, x=x[idx], y=y[idx])
            times.append(time.perf_counter() - t)
    xv, yv = load("val")
    acc = evaluate(model, prepare(model, {"x": xv, "y": yv}), find_head(model))[1]
    return {"times": times, "steps": -(-len(y) // batch), "val_accuracy": acc}


def run_torch(threads: int, epochs: int, batch: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    x, y = (torch.from_numpy(a) for a in load("train"))
    net = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = torch.optim.AdamW(net.parameters(), lr=0.003, weight_decay=0.01)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    times = []
    for _ in range(epochs):
        t = time.perf_counter()
        perm = torch.randperm(len(y))
        for s in range(0, len(y), batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
            loss.item()  # graphc returns each step's loss as a float too
        times.append(time.perf_counter() - t)
    xv, yv = (torch.from_numpy(a) for a in load("val"))
    with torch.no_grad():
        acc = float((net(xv).argmax(-1) == yv).float().mean())
    return {"times": times, "steps": -(-len(y) // batch), "val_accuracy": acc}


CONTENDERS = {
    "graphc cpu, fit": ("graphc", "cpu", "fit", None),
    "graphc cpu, fit, 1 thread": ("graphc", "cpu", "fit", 1),
    "graphc cpu, train_step loop": ("graphc", "cpu", "loop", None),
    "graphc numpy, fit": ("graphc", "numpy", "fit", None),
    "PyTorch eager, 1 thread": ("torch", 1),
    "PyTorch eager, 2 threads": ("torch", 2),
}


def worker(name: str, epochs: int, batch: int) -> None:
    spec = CONTENDERS[name]
    if spec[0] == "graphc":
        out = run_graphc(spec[1], spec[2], epochs, batch, spec[3])
    else:
        out = run_torch(spec[1], epochs, batch)
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.epochs, args.batch_size)
    results = {}
    for name in CONTENDERS:
        epochs = max(3, args.epochs // 5) if "numpy" in name else args.epochs
        r = subprocess.run([sys.executable, __file__, "--worker", name, "--epochs", str(epochs),
                            "--batch-size", str(args.batch_size)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            print(f"{name}: failed\n{r.stderr[-2000:]}")
            continue
        out = json.loads(r.stdout.strip().splitlines()[-1])
        out["median"] = statistics.median(out["times"][1:])  # the first epoch compiles
        out["best"] = min(out["times"][1:])
        results[name] = out
    torch_best = min((v["median"] for k, v in results.items() if k.startswith("PyTorch")),
                     default=None)
    print(f"digits MLP 64-256-10, AdamW, batch {args.batch_size}, "
          f"{next(iter(results.values()))['steps']} steps per epoch; median of "
          f"{args.epochs - 1} epochs after the first")
    print(f"{'contender':<30} {'ms/epoch':>9} {'best':>7} {'us/step':>8} {'vs PyTorch':>11} "
          f"{'val acc':>8}")
    for name, v in results.items():
        ratio = f"{torch_best / v['median']:.1f}x" if torch_best else "-"
        print(f"{name:<30} {1e3 * v['median']:>9.2f} {1e3 * v['best']:>7.2f} "
              f"{1e6 * v['median'] / v['steps']:>8.1f} {ratio:>11} "
              f"{100 * v['val_accuracy']:>7.1f}%")
    print("(ms/epoch: median; best: the fastest epoch; vs PyTorch: the faster PyTorch setting's "
          "median over this one's)")


if __name__ == "__main__":
    main()
