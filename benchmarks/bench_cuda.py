"""Benchmark graphc's CUDA backend against PyTorch CUDA eager and PyTorch with CUDA graphs.

One run measures, in the same process and taking turns, the train step (forward,
backward, SGD; the batch copied in from the host and the loss copied out, as graphc's
train_step does) of 784-256-10 ReLU cross-entropy at batch 64 and 1024 and of 2-16-16-1
tanh BCE at batch 32, in float32. Prints a table of medians and ratios. Usage, on a
machine with an NVIDIA GPU and `pip install "graphc[cuda]" torch`:

    python benchmarks/bench_cuda.py [--budget SECONDS] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cpu import batch_of, mlp  # noqa: E402

import graphc  # noqa: E402

WORKLOADS = [  # name, sizes, activation, loss, batch, graphc's target (us per step)
    ("784-256-10 ReLU CE", [784, 256, 10], "relu", "ce", 64, 40),
    ("784-256-10 ReLU CE", [784, 256, 10], "relu", "ce", 1024, 70),
    ("2-16-16-1 tanh BCE", [2, 16, 16, 1], "tanh", "bce", 32, 20),
]


def no_gpu_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed (pip install torch, a CUDA build)"
    if not torch.cuda.is_available():
        return "PyTorch sees no CUDA GPU"
    from graphc.backends.cuda.available import require
    from graphc.errors import CompileError

    try:
        if require() != "gpu":
            return "NUMBA_ENABLE_CUDASIM is set: the simulator is not a GPU; unset it"
    except CompileError as e:
        return str(e)
    return None


def torch_model(sizes, act, loss, params: dict):
    import torch

    layers = []
    for k in range(len(sizes) - 1):
        lin = torch.nn.Linear(sizes[k], sizes[k + 1])
        name = f"h{k}" if k < len(sizes) - 2 else "out"
        with torch.no_grad():  # the same starting point as graphc's model
            lin.weight.copy_(torch.from_numpy(params[f"{name}.W"].T.copy()))
            lin.bias.copy_(torch.from_numpy(params[f"{name}.b"].copy()))
        layers.append(lin)
        if k < len(sizes) - 2:
            layers.append(torch.nn.ReLU() if act == "relu" else torch.nn.Tanh())
    if loss == "bce":
        layers.append(torch.nn.Sigmoid())
    net = torch.nn.Sequential(*layers).cuda()
    crit = torch.nn.BCELoss() if loss == "bce" else torch.nn.CrossEntropyLoss()
    return net, crit


def torch_steps(make, batch: dict):
    """(eager step, CUDA-graph step), each on a model of its own from `make()`; each
    copies the batch in and the loss out."""
    import torch

    net, crit = make()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    xs, ys = (torch.from_numpy(batch[k]).pin_memory() for k in ("x", "y"))

    def eager() -> float:
        x, y = xs.cuda(non_blocking=True), ys.cuda(non_blocking=True)
        opt.zero_grad(set_to_none=True)
        loss = crit(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    net, crit = make()
    gopt = torch.optim.SGD(net.parameters(), lr=0.1)
    sx, sy = xs.cuda(), ys.cuda()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm up on a side stream, as torch's docs say
        for _ in range(3):
            gopt.zero_grad(set_to_none=True)
            crit(net(sx), sy).backward()
            gopt.step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    gopt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        static_loss = crit(net(sx), sy)
        static_loss.backward()
        gopt.step()

    def graphed() -> float:
        sx.copy_(xs, non_blocking=True)
        sy.copy_(ys, non_blocking=True)
        graph.replay()
        return static_loss.item()

    return eager, graphed


def medians(fns: dict, budget: float, rounds: int = 5) -> dict[str, float]:
    """Median seconds per call; the functions take turns, so load changes hit all."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(10):
            fn()
    for _ in range(rounds):
        for key, fn in fns.items():
            start = time.perf_counter()
            while len(times[key]) < 5 or time.perf_counter() - start < budget / rounds / len(fns):
                t = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t)
    return {k: float(np.median(v)) for k, v in times.items()}


def run(budget: float) -> list[dict]:
    rows = []
    rng = np.random.default_rng(0)
    for name, sizes, act, loss, batch, target in WORKLOADS:
        spec = mlp(name, sizes, act, loss)
        data = batch_of(spec, batch, rng)
        model = graphc.compile(spec, backend="cuda", dtype="float32")
        cpu = graphc.compile(spec, backend="cpu", dtype="float32")
        cpu.params = {k: v.copy() for k, v in model.params.items()}
        start = {k: v.copy() for k, v in model.params.items()}
        opt, cpu_opt = graphc.optim.SGD(lr=0.1), graphc.optim.SGD(lr=0.1)
        first = model.train_step(opt, **data)
        check = abs(first - cpu.train_step(cpu_opt, **data))  # the same numbers as cpu
        eager, graphed = torch_steps(partial(torch_model, sizes, act, loss, start), data)
        step = partial(model.train_step, opt, **data)
        t = medians({"graphc": step, "eager": eager, "graph": graphed}, budget)
        rows.append({"workload": name, "batch": batch, "graphc_us": t["graphc"] * 1e6,
                     "torch_eager_us": t["eager"] * 1e6, "torch_graph_us": t["graph"] * 1e6,
                     "target_us": target, "first_step_vs_cpu": check})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--budget", type=float, default=6.0, help="seconds per workload")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    why = no_gpu_reason()
    if why:
        sys.exit(f"bench_cuda: needs a CUDA GPU: {why}")
    import torch

    print(f"# {torch.cuda.get_device_name()}, torch {torch.__version__}, graphc "
          f"{graphc.__version__}; medians of train steps (batch in, loss out), float32")
    rows = run(args.budget)
    head = (f"{'workload':<22}{'batch':>6}{'graphc us':>11}{'eager us':>10}{'graph us':>10}"
            f"{'vs eager':>10}{'vs graph':>10}{'target':>8}{'|d loss| vs cpu':>17}")
    print(head)
    for r in rows:
        print(f"{r['workload']:<22}{r['batch']:>6}{r['graphc_us']:>11.1f}"
              f"{r['torch_eager_us']:>10.1f}{r['torch_graph_us']:>10.1f}"
              f"{r['torch_eager_us'] / r['graphc_us']:>9.2f}x"
              f"{r['torch_graph_us'] / r['graphc_us']:>9.2f}x{r['target_us']:>7}us"
              f"{r['first_step_vs_cpu']:>17.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
