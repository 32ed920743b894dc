"""Ops against values worked out by hand (no torch): what the PyTorch comparisons leave to
their arguments, such as each op's default attributes, which the torch tests always pass
explicitly. Written to kill mutants benchmarks/mutation.py found surviving (docs/testing.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc


def one_op(op: str, shapes: dict, attrs: dict | None = None, loss_of: str = "y") -> dict:
    node = {"id": "y", "op": op, "inputs": list(shapes), **({"attrs": attrs} if attrs else {})}
    return {"graphc": 1, "name": op, "inputs": {k: {"shape": list(v)} for k, v in shapes.items()},
            "nodes": [node, {"id": "L", "op": "sum", "inputs": [loss_of]}],
            "outputs": ["y"], "loss": "L"}


def value_and_grad(op, feeds, attrs=None, backend="numpy"):
    m = graphc.compile(one_op(op, {k: np.shape(v) for k, v in feeds.items()}, attrs),
                       backend=backend, dtype="float64")
    y = m.forward(**feeds)["y"]
    _, grads = m.grad(wrt=list(feeds), **feeds)
    return y, grads


X = np.array([-2.0, -0.5, 0.5, 3.0])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_activation_defaults_are_torchs(backend):
    """leaky_relu's slope defaults to 0.01 and elu's alpha to 1.0, as in torch.nn."""
    y, g = value_and_grad("leaky_relu", {"x": X}, backend=backend)
    np.testing.assert_allclose(y, [-0.02, -0.005, 0.5, 3.0], rtol=1e-15)
    np.testing.assert_allclose(g["x"], [0.01, 0.01, 1.0, 1.0], rtol=1e-15)
    y, g = value_and_grad("elu", {"x": X}, backend=backend)
    np.testing.assert_allclose(y, [math.expm1(-2.0), math.expm1(-0.5), 0.5, 3.0], rtol=1e-15)
    np.testing.assert_allclose(g["x"], [math.exp(-2.0), math.exp(-0.5), 1.0, 1.0], rtol=1e-14)
