"""dropout, batch_norm and flatten in both modes, against PyTorch in float64 on every
backend: values, gradients, running statistics, masks, and their messages."""

import numpy as np
import pytest

import graphc
from graphc.errors import SpecError
from tests.conftest import EXAMPLES

try:  # only the comparison with torch needs it: the other tests run without torch
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch, the reference "
                                 "(pip install torch)")
BACKENDS = ["numpy", "cpu"]


def bn_spec(shape, **attrs):
    return {"graphc": 1, "name": "bn", "inputs": {"x": {"shape": shape},
                                                  "t": {"shape": ["B", int(np.prod(shape[1:]))]}},
            "nodes": [{"id": "bn", "op": "batch_norm", "inputs": ["x"], "attrs": attrs},
                      {"id": "f", "op": "flatten", "inputs": ["bn"]},
                      {"id": "L", "op": "mse", "inputs": ["f", "t"]}],
            "outputs": ["f"], "loss": "L"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [["B", 3], ["B", 3, 4, 5]], ids=["2d", "4d"])
@needs_torch
def test_batch_norm_trains_and_evaluates_as_torch(backend, shape):
    rng = np.random.default_rng(0)
    m = graphc.compile(bn_spec(shape, momentum=0.3, eps=1e-3), backend=backend,
                       dtype="float64")
    m.params = {"bn.gamma": rng.normal(size=3), "bn.beta": rng.normal(size=3)}
    bn = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
        3, momentum=0.3, eps=1e-3).double()
    with torch.no_grad():
        bn.weight.copy_(torch.tensor(m.params["bn.gamma"]))
        bn.bias.copy_(torch.tensor(m.params["bn.beta"]))
    for step in range(3):  # the running statistics move at every training call
        x = rng.normal(size=(6, *shape[1:])) * 3 + step
        t = rng.normal(size=(6, int(np.prod(shape[1:]))))
        X = torch.tensor(x, requires_grad=True)
        loss = torch.nn.functional.mse_loss(bn(X).flatten(1), torch.tensor(t))
        bn.zero_grad()
        loss.backward()
        value, grads = m.grad(["x"], x=x, t=t)
        assert value == pytest.approx(loss.item(), rel=1e-12)
        np.testing.assert_allclose(grads["x"], X.grad.numpy(), rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(grads["bn.gamma"], bn.weight.grad.numpy(), rtol=1e-9)
        np.testing.assert_allclose(grads["bn.beta"], bn.bias.grad.numpy(), rtol=1e-9)
        np.testing.assert_allclose(m.state["bn.running_mean"], bn.running_mean.numpy(),
                                   rtol=1e-12)
        np.testing.assert_allclose(m.state["bn.running_var"], bn.running_var.numpy(),
                                   rtol=1e-12)  # the unbiased variance, as PyTorch keeps it
    assert m.step == 3
    bn.eval()
    x = rng.normal(size=(2, *shape[1:]))
    np.testing.assert_allclose(m.forward(x=x)["f"],
                               bn(torch.tensor(x)).flatten(1).detach().numpy(), rtol=1e-10)
    assert m.step == 3  # evaluation leaves the step and the state alone


def test_batch_norm_with_gamma_and_beta_as_inputs():
    spec = {"graphc": 1, "name": "bn3", "inputs": {"x": {"shape": ["B", 2]}},
            "params": {"g": {"shape": [2], "init": [2.0, 3.0]},
                       "b": {"shape": [2], "init": [1.0, -1.0]}},
            "nodes": [{"id": "bn", "op": "batch_norm", "inputs": ["x", "g", "b"]}],
            "outputs": ["bn"]}
    m = graphc.compile(spec, backend="numpy", dtype="float64")
    assert sorted(m.params) == ["b", "g"] and sorted(m.state) == ["bn.running_mean",
                                                                  "bn.running_var"]
    y = m.forward(training=True, x=np.array([[0.0, 1.0], [2.0, 5.0]]))["bn"]
    np.testing.assert_allclose(y, [[-1.0, -4.0], [3.0, 2.0]], atol=1e-4)  # ±1 · g + b


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_masks_scale_and_gradient(backend):
    spec = {"graphc": 1, "name": "drop", "seed": 7, "inputs": {"x": {"shape": ["B", 50]}},
            "nodes": [{"id": "d", "op": "dropout", "inputs": ["x"], "attrs": {"p": 0.3}},
                      {"id": "L", "op": "sum", "inputs": ["d"]}],
            "outputs": ["d"], "loss": "L"}
    m = graphc.compile(spec, backend=backend, dtype="float64")
    x = np.random.default_rng(0).uniform(1, 2, size=(40, 50))
    assert np.array_equal(m.forward(x=x)["d"], x)  # evaluation: the identity
    t = m.trace(training=True, x=x)  # what the next training call draws, recorded
    kept = t.values["d.random"] > 0.3
    _, grads = m.grad(["x"], x=x)
    np.testing.assert_allclose(grads["x"], kept / 0.7)
    assert abs(kept.mean() - 0.7) < 0.02  # 2,000 draws
    y1 = m.forward(training=True, x=x)["d"]
    assert set(np.round(np.unique(y1 / x), 12)) == {0.0, round(1 / 0.7, 12)}
    assert not np.array_equal(y1 == 0, ~kept)  # a new step draws a new mask
    other = graphc.compile(spec, backend="numpy" if backend == "cpu" else "cpu",
                           dtype="float64")
    other.step = 1
    assert np.array_equal(other.forward(training=True, x=x)["d"], y1)  # same on every backend


def test_flatten_keeps_the_batch_symbolic():
    spec = {"graphc": 1, "name": "fl", "inputs": {"x": {"shape": ["N", 2, 3, 4]}},
            "nodes": [{"id": "f1", "op": "flatten", "inputs": ["x"]},
                      {"id": "f2", "op": "flatten", "inputs": ["x"], "attrs": {"start_axis": 2}}],
            "outputs": ["f1", "f2"]}
    m = graphc.compile(spec, backend="cpu")
    shapes = {n.name: n.shape for n in m.program if n.name in ("f1", "f2")}
    assert shapes == {"f1": ("N", 24), "f2": ("N", 2, 12)}
    x = np.arange(96, dtype=np.float32).reshape(4, 2, 3, 4)
    out = m.forward(x=x)
    np.testing.assert_array_equal(out["f1"], x.reshape(4, 24))
    np.testing.assert_array_equal(out["f2"], x.reshape(4, 2, 12))


@pytest.mark.parametrize("node,message", [
    ({"op": "dropout", "attrs": {"p": 1.0}}, "dropout's p must be in [0, 1), got 1.0"),
    ({"op": "dropout", "attrs": {"p": -0.1}}, "dropout's p must be in [0, 1)"),
    ({"op": "batch_norm", "attrs": {"momentum": 2}}, "momentum must be in [0, 1], got 2"),
    ({"op": "batch_norm", "attrs": {"eps": 0}}, "eps must be > 0"),
    ({"op": "flatten", "attrs": {"start_axis": 3}}, "start_axis 3 is out of range"),
])
def test_bad_attributes_name_the_node(node, message):
    spec = {"graphc": 1, "name": "bad", "inputs": {"x": {"shape": ["B", 4]}},
            "nodes": [{"id": "n", "inputs": ["x"], **node}], "outputs": ["n"]}
    with pytest.raises(SpecError) as e:
        graphc.load(spec)
    assert message in str(e.value) and "nodes[0]" in str(e.value)


def test_batch_norm_needs_channels():
    spec = {"graphc": 1, "name": "bad", "inputs": {"x": {"shape": ["B"]}},
            "nodes": [{"id": "n", "op": "batch_norm", "inputs": ["x"]}], "outputs": ["n"]}
    with pytest.raises(SpecError, match=r"batch_norm needs an input \[N, C, ...\], got \[B\]"):
        graphc.load(spec)


def test_digits_example_trains_evaluates_and_saves_its_state(tmp_path):
    m = graphc.compile(EXAMPLES / "train" / "digits_bn_dropout.json", backend="cpu")
    data = np.load(EXAMPLES / "train" / "data" / "digits_train.npz")
    test = np.load(EXAMPLES / "train" / "data" / "digits_test.npz")
    m.fit({"x": data["x"], "y": data["y"]}, epochs=5)
    acc = (m.forward(x=test["x"])["probs"].argmax(1) == test["y"]).mean()
    assert acc > 0.95
    assert not np.allclose(m.state["bn.running_mean"], 0)
    m.save(tmp_path / "p.npz")
    again = graphc.compile(EXAMPLES / "train" / "digits_bn_dropout.json", backend="numpy")
    again.load(tmp_path / "p.npz")
    np.testing.assert_allclose(again.state["bn.running_var"], m.state["bn.running_var"])
    np.testing.assert_allclose(again.forward(x=test["x"][:5])["probs"],
                               m.forward(x=test["x"][:5])["probs"], rtol=1e-4, atol=1e-6)
