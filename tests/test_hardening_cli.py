"""Issue 8's hardening: the builder's layer params, train-object checks, broadcast warnings,
shape messages, output paths, broken pipes, gradcheck's sampled inputs, stale hypers."""

import numpy as np
import pytest

import graphc
from graphc import F


def _l2_mlp_json():
    return {
        "graphc": 1, "name": "l2", "seed": 1,
        "inputs": {"x": {"shape": ["B", 4]}, "y": {"shape": ["B"], "dtype": "int64"}},
        "nodes": [
            {"id": "h1", "op": "dense", "inputs": ["x"],
             "attrs": {"units": 5, "activation": "relu"}},
            {"id": "out", "op": "dense", "inputs": ["h1"], "attrs": {"units": 3}},
            {"id": "ce", "op": "cross_entropy", "inputs": ["out", "y"]},
            {"id": "sq", "op": "mul", "inputs": ["h1.W", "h1.W"]},
            {"id": "l2", "op": "sum", "inputs": ["sq"]},
            {"id": "pen", "op": "mul", "inputs": ["l2", 0.01]},
            {"id": "loss", "op": "add", "inputs": ["ce", "pen"]},
        ],
        "outputs": ["out"], "loss": "loss",
    }


def test_builder_refers_to_layer_params_like_json():
    b = graphc.Builder("l2", seed=1)
    x = b.input("x", ["B", 4])
    y = b.input("y", ["B"], dtype="int64")
    h1 = b.node("dense", x, id="h1", units=5, activation="relu")
    out = b.node("dense", h1, id="out", units=3)
    ce = b.name("ce", F.cross_entropy(out, y))
    W = b.param("h1.W")
    sq = b.name("sq", W * W)
    l2 = b.name("l2", F.sum(sq))
    pen = b.name("pen", l2 * 0.01)
    loss = b.name("loss", ce + pen)
    g = b.build(outputs=[out], loss=loss)
    want = graphc.load(_l2_mlp_json())
    assert g == want
    feed = {"x": np.linspace(-1, 1, 8).reshape(2, 4), "y": [0, 2]}
    got_loss, got_grads = graphc.compile(g, backend="numpy").grad(**feed)
    want_loss, want_grads = graphc.compile(want, backend="numpy").grad(**feed)
    assert got_loss == pytest.approx(want_loss)
    np.testing.assert_allclose(got_grads["h1.W"], want_grads["h1.W"])


def test_builder_layer_param_follows_rename_and_needs_a_layer():
    b = graphc.Builder("r")
    x = b.input("x", ["B", 2])
    h = b.node("dense", x, units=2)
    W = b.param(f"{h.id}.W")
    s = F.sum(W)
    b.name("h", h)
    assert b.spec["nodes"][-1]["inputs"] == ["h.W"]
    assert s.id == b.spec["nodes"][-1]["id"]
    with pytest.raises(graphc.SpecError, match="no layer named 'nope'"):
        b.param("nope.W")


def test_fit_takes_a_lambda_schedule():
    m = graphc.compile("examples/logistic_regression.json", backend="numpy")
    opt = graphc.optim.SGD(lr=0.1)
    sched = graphc.schedules.LambdaLR(opt, lambda e: 0.5 ** e)
    data = {"x": np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float), "y": np.array([0, 0, 0, 1.])}
    hist = m.fit(data, epochs=3, batch_size=4, optimizer=opt, schedule=sched)
    assert [r["lr"] for r in hist.rows] == pytest.approx([0.1, 0.05, 0.025])
