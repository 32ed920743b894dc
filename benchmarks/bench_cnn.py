"""The digits CNN (examples/train/digits_cnn.json: conv 16 - max pool - batch norm - conv
32 - max pool - flatten - dense 10, AdamW, label-smoothed cross-entropy) at batch 64,
and LeNet-5 (1 x 28 x 28: conv 6@5x5 pad 2 - relu - max pool 2 - conv 16@5x5 - relu -
max pool 2 - flatten - dense 120 relu - dense 84 relu - dense 10, AdamW, cross-entropy;
examples/lenet5.json when there is one, else the spec below) at batch 64 and 256: the
median time of one train step and of one forward (inference) with graphc's cpu backend,
against PyTorch eager running the same network (`torch.nn.Conv2d`, ..., `zero_grad`,
`backward`, `AdamW.step`; `no_grad` for inference). Each contender runs in a process of
its own, so that two BLAS or OpenMP thread pools never compete; ratios are PyTorch's
time over graphc's, measured in this run. LeNet-5 reads random images (speed only).

    python benchmarks/bench_cnn.py [--steps 300] [--batch-size 64] [--models digits,lenet5]
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
LENET = ROOT / "examples" / "lenet5.json"
DATA = ROOT / "examples" / "train" / "data"


def lenet5_spec() -> dict | Path:
    """LeNet-5 (examples/lenet5.json if it exists)."""
    if LENET.exists():
        return LENET

    def conv(i, src, filters, pad):
        return {"id": f"conv{i}", "op": "conv", "inputs": [src],
                "attrs": {"filters": filters, "kernel_size": 5, "padding": pad,
                          "activation": "relu", "init": "he_uniform"}}

    def pool(i):
        return {"id": f"pool{i}", "op": "max_pool2d", "inputs": [f"conv{i}"],
                "attrs": {"kernel_size": 2}}

    def dense(name, src, units, act):
        return {"id": name, "op": "dense", "inputs": [src],
                "attrs": {"units": units, "activation": act}}

    return {"graphc": 1, "name": "lenet5", "seed": 0,
            "inputs": {"x": {"shape": ["B", 784]}, "y": {"shape": ["B"], "dtype": "int64"}},
            "nodes": [{"id": "image", "op": "reshape", "inputs": ["x"],
                       "attrs": {"shape": [-1, 1, 28, 28]}},
                      conv(1, "image", 6, 2), pool(1), conv(2, "pool1", 16, 0), pool(2),
                      {"id": "flat", "op": "flatten", "inputs": ["pool2"]},
                      dense("fc1", "flat", 120, "relu"), dense("fc2", "fc1", 84, "relu"),
                      dense("logits", "fc2", 10, "none"),
                      {"id": "probs", "op": "softmax", "inputs": ["logits"]},
                      {"id": "loss", "op": "cross_entropy", "inputs": ["logits", "y"]}],
            "outputs": ["probs"], "loss": "loss"}


def batches(batch: int, steps: int, model: str = "digits"):
    rng = np.random.default_rng(0)
    if model == "lenet5":
        pool = 4 * batch  # a few distinct batches, drawn in turn
        x = rng.random((pool, 784), dtype=np.float32)
        y = rng.integers(0, 10, pool)
        return [(x[k * batch % pool:][:batch], y[k * batch % pool:][:batch])
                for k in range(steps)]
    with np.load(DATA / "digits_train.npz") as f:
        x, y = f["x"], f["y"]
    return [(x[idx], y[idx]) for idx in (rng.choice(len(y), batch, replace=False)
                                         for _ in range(steps))]


def timed(fn, data) -> list[float]:
    out = []
    for xb, yb in data:
        t = time.perf_counter()
        fn(xb, yb)
        out.append(time.perf_counter() - t)
    return out


def run_graphc(steps: int, batch: int, threads: int | None, model_name: str) -> dict:
    if threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    import graphc
    from graphc.optim import AdamW

    model = graphc.compile(SPEC if model_name == "digits" else lenet5_spec(), backend="cpu")
    opt = AdamW(lr=0.01, weight_decay=0.01)
    data = batches(batch, steps, model_name)
    t = time.perf_counter()
    model.train_step(opt, x=data[0][0], y=data[0][1])
    model.forward(x=data[0][0])
    first = time.perf_counter() - t
    train = timed(lambda xb, yb: model.train_step(opt, x=xb, y=yb), data)
    infer = timed(lambda xb, yb: model.forward(x=xb), data)
    return {"train": train, "infer": infer, "first": first}


def run_torch(steps: int, batch: int, threads: int, model_name: str) -> dict:
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if model_name == "digits":
        net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                            nn.BatchNorm2d(16), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(128, 10))
        loss_fn, side = nn.CrossEntropyLoss(label_smoothing=0.1), 8
    else:
        net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                            nn.Linear(84, 10))
        loss_fn, side = nn.CrossEntropyLoss(), 28
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.01)
    data = [(torch.from_numpy(x).reshape(-1, 1, side, side), torch.from_numpy(y))
            for x, y in batches(batch, steps, model_name)]

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


def bench(model: str, batch: int, steps: int) -> None:
    results = {}
    for name in CONTENDERS:
        r = subprocess.run([sys.executable, __file__, "--worker", name, "--steps", str(steps),
                            "--batch-size", str(batch), "--models", model],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print(f"{name}: failed\n{r.stderr[-2000:]}")
            continue
        out = json.loads(r.stdout.strip().splitlines()[-1])
        results[name] = {k: statistics.median(out[k]) for k in ("train", "infer")}
        results[name]["first"] = out["first"]
    best = {k: min((v[k] for n, v in results.items() if n.startswith("PyTorch")),
                   default=None) for k in ("train", "infer")}
    title = ("digits CNN (6,122 params)" if model == "digits"
             else "LeNet-5 (61,706 params, random 28 x 28 images)")
    print(f"{title}, batch {batch}: median of {steps} steps; ratios: the faster PyTorch "
          "setting's median over this one's")
    print(f"{'contender':<26} {'train us':>9} {'vs PyTorch':>11} {'infer us':>9} "
          f"{'vs PyTorch':>11} {'first s':>8}")
    for name, v in results.items():
        ratios = [f"{best[k] / v[k]:.2f}x" if best[k] else "-" for k in ("train", "infer")]
        print(f"{name:<26} {1e6 * v['train']:>9.0f} {ratios[0]:>11} {1e6 * v['infer']:>9.0f} "
              f"{ratios[1]:>11} {v['first']:>8.2f}")
    print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64,
                        help="the digits CNN's batch (LeNet-5 runs at 64 and 256)")
    parser.add_argument("--models", default="digits,lenet5")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, threads = CONTENDERS[args.worker]
        run = run_graphc if kind == "graphc" else run_torch
        print(json.dumps(run(args.steps, args.batch_size, threads, args.models)))
        return
    for model in args.models.split(","):
        for batch in ([args.batch_size] if model == "digits" else [64, 256]):
            bench(model, batch, args.steps if model == "digits" or batch == 64
                  else max(args.steps // 3, 20))
    print("(first s: the first train step and forward, compiling or loading from the cache)")


if __name__ == "__main__":
    main()
