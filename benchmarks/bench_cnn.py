"""The digits CNN (examples/train/digits_cnn.json: conv 16 - max pool - batch norm - conv
32 - max pool - flatten - dense 10, AdamW, label-smoothed cross-entropy) at batch 64:
the median time of one train step and of one forward (inference) with graphc's cpu
backend, against PyTorch eager running the same network (`torch.nn.Conv2d`, ...,
`zero_grad`, `backward`, `AdamW.step`; `no_grad` for inference). Each contender runs in
a process of its own, so that two BLAS or OpenMP thread pools never compete; ratios are
PyTorch's time over graphc's, measured in this run.

    python benchmarks/bench_cnn.py [--steps 300] [--batch-size 64]
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
SPEC = ROOT / "examples" / "train" / "digits_cnn.json"
DATA = ROOT / "examples" / "train" / "data"


def batches(batch: int, steps: int):
    with np.load(DATA / "digits_train.npz") as f:
        x, y = f["x"], f["y"]
    rng = np.random.default_rng(0)
    return [(x[idx], y[idx]) for idx in (rng.choice(len(y), batch, replace=False)
                                         for _ in range(steps))]


def timed(fn, data) -> list[float]:
    out = []
    for xb, yb in data:
        t = time.perf_counter()
        fn(xb, yb)
        out.append(time.perf_counter() - t)
    return out


def run_graphc(steps: int, batch: int, threads: int | None) -> dict:
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    import graphc
    from graphc.optim import AdamW

    model = graphc.compile(SPEC, backend="cpu")
    opt = AdamW(lr=0.01, weight_decay=0.01)
    data = batches(batch, steps)
    t = time.perf_counter()
    model.train_step(opt, x=data[0][0], y=data[0][1])
    model.forward(x=data[0][0])
    first = time.perf_counter() - t
    train = timed(lambda xb, yb: model.train_step(opt, x=xb, y=yb), data)
    infer = timed(lambda xb, yb: model.forward(x=xb), data)
    return {"train": train, "infer": infer, "first": first}


def run_torch(steps: int, batch: int, threads: int) -> dict:
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.BatchNorm2d(16), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    data = [(torch.from_numpy(x).reshape(-1, 1, 8, 8), torch.from_numpy(y))
            for x, y in batches(batch, steps)]

    def step(xb, yb):
        net.train()
        opt.zero_grad()
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        loss.item()  # graphc returns each step's loss as a float too

    def infer(xb, yb):
        net.eval()
        with torch.no_grad():
            net(xb).softmax(-1)

    t = time.perf_counter()
    step(*data[0])
    first = time.perf_counter() - t
    return {"train": timed(step, data), "infer": timed(infer, data), "first": first}


CONTENDERS = {
    "graphc cpu": ("graphc", None),
    "graphc cpu, 1 thread": ("graphc", 1),
    "PyTorch eager, 1 thread": ("torch", 1),
    "PyTorch eager, 2 threads": ("torch", 2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, threads = CONTENDERS[args.worker]
        run = run_graphc if kind == "graphc" else run_torch
        print(json.dumps(run(args.steps, args.batch_size, threads)))
        return
    results = {}
    for name in CONTENDERS:
        r = subprocess.run([sys.executable, __file__, "--worker", name, "--steps",
                            str(args.steps), "--batch-size", str(args.batch_size)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{name}: failed\n{r.stderr[-2000:]}")
            continue
        out = json.loads(r.stdout.strip().splitlines()[-1])
        results[name] = {k: statistics.median(out[k]) for k in ("train", "infer")}
        results[name]["first"] = out["first"]
    best = {k: min((v[k] for n, v in results.items() if n.startswith("PyTorch")),
                   default=None) for k in ("train", "infer")}
    print(f"digits CNN (6,122 params), batch {args.batch_size}: median of {args.steps} "
          "steps; ratios: the faster PyTorch setting's median over this one's")
    print(f"{'contender':<26} {'train us':>9} {'vs PyTorch':>11} {'infer us':>9} "
          f"{'vs PyTorch':>11} {'first s':>8}")
    for name, v in results.items():
        ratios = [f"{best[k] / v[k]:.2f}x" if best[k] else "-" for k in ("train", "infer")]
        print(f"{name:<26} {1e6 * v['train']:>9.0f} {ratios[0]:>11} {1e6 * v['infer']:>9.0f} "
              f"{ratios[1]:>11} {v['first']:>8.2f}")
    print("(first s: the first train step and forward, compiling or loading from the cache)")


if __name__ == "__main__":
    main()
