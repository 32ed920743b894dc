"""The peers bench_cpu.py measures graphc against, each timed in a process of its own
(`python peers.py KIND SPEC ARRAYS BUDGET` prints JSON): PyTorch eager, JAX jit and the
hand-fused Numba step of handfused.py, all from graphc's initial params.
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def median_times(fns: dict, budget: float, rounds: int = 5) -> dict[str, float]:
    """Median seconds per call of each function. They take turns in `rounds` rounds of
    `budget / rounds` seconds each, so that a change in the machine's load hits all."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        for _ in range(3):
            fn()
    for _ in range(rounds):
        for key, fn in fns.items():
            start, n = time.perf_counter(), 0
            while n < 3 or time.perf_counter() - start < budget / rounds / len(fns):
                t = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t)
                n += 1
    return {k: float(np.median(v)) for k, v in times.items()}


def _dense(spec: dict) -> list[dict]:
    return [n for n in spec["nodes"] if n["op"] == "dense"]


def torch_model(spec: dict, params: dict):
    """The same MLP in PyTorch, with graphc's initial params."""
    import torch

    layers = []
    for node in _dense(spec):
        w = torch.tensor(params[f"{node['id']}.W"].T.copy())
        lin = torch.nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(torch.tensor(params[f"{node['id']}.b"]))
        layers.append(lin)
        act = node["attrs"]["activation"]
        if act != "none":
            layers.append({"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh(),
                           "sigmoid": torch.nn.Sigmoid()}[act])
    net = torch.nn.Sequential(*layers)
    loss_fn = torch.nn.BCELoss() if spec["nodes"][-1]["op"] == "binary_cross_entropy" \
        else torch.nn.CrossEntropyLoss()
    return net, loss_fn


def bench_torch(spec: dict, params: dict, data: dict, budget: float) -> dict[str, float]:
    """PyTorch eager: the train step (zero_grad, forward, backward, SGD) and no-grad
    inference, with its own threads."""
    import torch

    net, loss_fn = torch_model(spec, params)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    tx, ty = torch.from_numpy(data["x"]), torch.from_numpy(data["y"])

    def torch_step():
        opt.zero_grad()
        out = loss_fn(net(tx), ty)
        out.backward()
        opt.step()

    def torch_forward():
        with torch.no_grad():
            net(tx)

    return median_times({"torch train": torch_step, "torch forward": torch_forward}, budget)


def jax_step(spec: dict, params: dict):
    """The same MLP's SGD step and forward under jax.jit."""
    import jax
    import jax.numpy as jnp

    dense = _dense(spec)
    act = jnp.tanh if dense[0]["attrs"]["activation"] == "tanh" else jax.nn.relu
    bce = spec["nodes"][-1]["op"] == "binary_cross_entropy"
    p0 = [(jnp.asarray(params[f"{n['id']}.W"]), jnp.asarray(params[f"{n['id']}.b"]))
          for n in dense]

    def forward(p, x):
        h = x
        for k, (w, b) in enumerate(p):
            h = h @ w + b
            if k < len(p) - 1:
                h = act(h)
        return h

    def loss_fn(p, x, y):
        h = forward(p, x)
        if bce:
            prob = jax.nn.sigmoid(h)
            return -jnp.mean(y * jnp.maximum(jnp.log(prob), -100.0)
                             + (1 - y) * jnp.maximum(jnp.log(1 - prob), -100.0))
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def train(p, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        return jax.tree_util.tree_map(lambda a, b: a - 0.01 * b, p, g), loss

    return p0, jax.jit(train, donate_argnums=0), jax.jit(forward)


def bench_jax(spec: dict, params: dict, data: dict, budget: float) -> dict[str, float]:
    """JAX jit on the CPU (XLA's own kernels, not OpenBLAS): step and forward, each
    waited for (block_until_ready)."""
    import jax

    p0, train, forward = jax_step(spec, params)
    x, y = jax.device_put(data["x"]), jax.device_put(data["y"])
    box = [p0]

    def step():
        box[0], loss = train(box[0], x, y)
        loss.block_until_ready()

    return median_times({"jax train": step,
                         "jax forward": lambda: forward(box[0], x).block_until_ready()}, budget)


def bench_handfused(spec: dict, params: dict, data: dict, budget: float) -> dict[str, float]:
    from handfused import HandFused

    hf = HandFused(spec, {k: v.copy() for k, v in params.items()}, len(data["x"]))
    x, y = data["x"], HandFused.labels(data["y"])
    return median_times({"hand train": lambda: hf(x, y)}, budget)


PEERS = {"torch": bench_torch, "jax": bench_jax, "hand": bench_handfused}


def main() -> None:
    kind, spec, path, budget = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    data = {k[5:]: v for k, v in arrays.items() if k.startswith("data/")}
    params = {k: v for k, v in arrays.items() if not k.startswith("data/")}
    print(json.dumps(PEERS[kind](spec, params, data, float(budget))))


if __name__ == "__main__":
    main()
