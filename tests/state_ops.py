"""Test-only ops built on state, mode and randomness (tests/test_state.py): the way
batch norm and dropout are declared, in miniature. `register()` adds them; `unregister()`
takes them out again, so no other test sees them."""

from __future__ import annotations

import numpy as np

from graphc import dims
from graphc.ops import REGISTRY
from graphc.ops.registry import Attr, Op
from graphc.ops.registry import register as register_op
from graphc.sugar import F

NAMES = ("noisy", "trim")


def _noisy(xs, at, layer):
    """Training: x + (u - 1/2) * scale with u uniform, and the running mean of x's rows
    moves toward this batch's; evaluation: x + running mean (no draw, no update)."""
    (x,) = xs
    width = x.shape[-1]
    running = layer.state("running", (width,), "zeros")
    u = layer.random(x)
    layer.update(running, running * (1 - at["momentum"]) + F.mean(x, axis=0) * at["momentum"])
    return F.select(layer.mode(), x + (u - 0.5) * at["scale"], x + running)


def _trim_shape(shapes, at):
    (s,) = shapes
    return (dims.sub(s[0], 2), *s[1:])


def register() -> None:
    if "noisy" in REGISTRY:
        return
    register_op(Op(name="noisy", family="composite", inputs=("x",), symbol="noisy",
                   kind="composite", expand=_noisy, formula="test only",
                   attrs={"scale": Attr("float", 1.0), "momentum": Attr("float", 0.5)}))
    # a view whose first axis is 2 shorter: a derived symbolic dim (`B - 2`)
    register_op(Op(name="trim", family="linalg", inputs=("x",), symbol="trim", kind="shape",
                   formula="y = x[1:-1]", shape=_trim_shape,
                   ref=lambda x: x[1:-1],
                   grad=lambda g, xs, y, a: [None],
                   kernel={"index": lambda idx, src, dst, a: [f"{idx[0]} + 1", *idx[1:]]}))


def unregister() -> None:
    for name in NAMES:
        REGISTRY.pop(name, None)


def spec(scale: float = 1.0, seed: int = 0) -> dict:
    return {"graphc": 1, "name": "noisy model", "seed": seed,
            "inputs": {"x": {"shape": ["B", 3]}, "y": {"shape": ["B", 2]}},
            "params": {"W": {"shape": [3, 2], "init": "normal"}},
            "nodes": [{"id": "n", "op": "noisy", "inputs": ["x"], "attrs": {"scale": scale}},
                      {"id": "h", "op": "matmul", "inputs": ["n", "W"]},
                      {"id": "L", "op": "mse", "inputs": ["h", "y"]}],
            "outputs": ["h"], "loss": "L"}


def data(n: int = 5) -> dict:
    rng = np.random.default_rng(1)
    return {"x": rng.normal(size=(n, 3)), "y": rng.normal(size=(n, 2))}


if __name__ == "__main__":  # another process: print the draws of two training calls
    import sys

    import graphc

    register()
    m = graphc.compile(spec(), backend=sys.argv[1], dtype="float64")
    for _ in range(2):
        out = m.forward(training=True, x=data()["x"])["h"]
    t = m.trace(training=True, **data())
    print(np.asarray(t.values["n.random"]).tobytes().hex(), out.tobytes().hex())
