"""`m.params[name] = array` copies into the model's storage on every backend (issue 8
item 2): training updates the new values, never the caller's array."""

import copy
import pickle

import numpy as np
import pytest

import graphc
from graphc.optim import SGD

SPEC = {"graphc": 1, "name": "tiny", "inputs": {"x": {"shape": ["B", 3]},
                                                "y": {"shape": ["B"], "dtype": "int64"}},
        "nodes": [{"id": "h1", "op": "dense", "inputs": ["x"], "attrs": {"units": 4,
                                                                          "activation": "tanh"}},
                  {"id": "logits", "op": "dense", "inputs": ["h1"], "attrs": {"units": 3}},
                  {"id": "loss", "op": "cross_entropy", "inputs": ["logits", "y"]}],
        "outputs": ["logits"], "loss": "loss"}


def batch(n=8):
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(n, 3)), "y": rng.integers(0, 3, n)}


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_assigned_params_train_and_the_callers_array_stays(backend):
    models = [graphc.compile(SPEC, backend=backend, dtype="float64") for _ in range(2)]
    for m in models:
        m.reset_params(seed=1)
    mine = {k: np.full(v.shape, 0.25) for k, v in models[0].params.items()}
    keep = {k: v.copy() for k, v in mine.items()}
    for k, v in mine.items():
        models[0].params[k] = v  # one by one, as when loading someone else's weights
    models[1].params = keep       # the whole dict at once
    for m in models:
        for _ in range(3):
            m.train_step(SGD(lr=0.5, momentum=0.9), **batch())
    for k in mine:
        assert np.array_equal(mine[k], keep[k]), "training wrote into the caller's array"
        assert not np.allclose(models[0].params[k], 0.25), f"{k} did not train"
        np.testing.assert_allclose(models[0].params[k], models[1].params[k], rtol=1e-12)


def test_same_training_on_both_backends_after_assignment():
    ref, cpu = (graphc.compile(SPEC, backend=b, dtype="float64") for b in ("numpy", "cpu"))
    for m in (ref, cpu):
        m.train_step(SGD(lr=0.1), **batch())  # the cpu backend has bound its storage
        m.params["h1.b"] = [0.5, -0.5, 1.0, 2.0]
        m.params["h1.W"] = np.linspace(-1, 1, 12).reshape(3, 4)
        m.params["logits.W"] = np.ones((4, 3))
        m.params["logits.b"] = np.zeros(3)
        m.train_step(SGD(lr=0.1), **batch())
    for k in ref.params:
        np.testing.assert_allclose(cpu.params[k], ref.params[k], rtol=1e-10, atol=1e-12)


def test_assignment_is_checked():
    m = graphc.compile(SPEC, backend="numpy")
    with pytest.raises(graphc.InputError, match=r"param 'h1.b' has shape \[4\], got \[3\]"):
        m.params["h1.b"] = np.zeros(3)
    with pytest.raises(graphc.InputError, match=r"no param named 'h1.B' \(did you mean 'h1.b'\?\)"):
        m.params["h1.B"] = np.zeros(4)
    with pytest.raises(graphc.InputError, match="not a number or a regular array"):
        m.params["h1.b"] = [[1, 2], [3]]
    with pytest.raises(graphc.InputError, match="params: missing param 'logits.b'"):
        m.params = {k: v for k, v in m.params.items() if k != "logits.b"}
    with pytest.raises(graphc.InputError, match="params: unknown param 'extra'"):
        m.params = {**m.params, "extra": np.zeros(2)}


def test_params_copy_and_pickle_whole():
    m = graphc.compile(SPEC, backend="numpy")
    for clone in (copy.deepcopy(m.params), pickle.loads(pickle.dumps(m.params))):
        assert type(clone) is type(m.params) and clone.keys() == m.params.keys()
        assert all(np.array_equal(clone[k], m.params[k]) for k in clone)
        clone["h1.b"] = np.ones(4)
        assert not np.array_equal(m.params["h1.b"], np.ones(4))
