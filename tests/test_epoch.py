"""Whole epochs in one compiled call: `fit` on the cpu backend's epoch driver gives the same
losses and params as step-by-step `fit` (same seed: same batches, same order), and
`Model.train_epoch` checks what it is given."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc import epochs
from graphc.errors import InputError

SPEC = {"graphc": 1, "name": "epoch test", "seed": 3,
        "inputs": {"x": {"shape": ["B", 3]}, "y": {"shape": ["B"], "dtype": "int64"}},
        "nodes": [{"id": "h", "op": "dense", "inputs": ["x"],
                   "attrs": {"units": 8, "activation": "tanh"}},
                  {"id": "out", "op": "dense", "inputs": ["h"], "attrs": {"units": 3}},
                  {"id": "loss", "op": "cross_entropy", "inputs": ["out", "y"]}],
        "outputs": ["out"], "loss": "loss"}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(70, 3)).astype(np.float32)  # 70 rows: batches of 16 end ragged
    return {"x": x, "y": (x.sum(1) > 0).astype(np.int64) + (x[:, 0] > 1)}


def _fit(data, stepwise: bool, monkeypatch, **options):
    m = graphc.compile(SPEC, backend="cpu")
    with monkeypatch.context() as mp:
        if stepwise:
            mp.setattr(epochs, "fusable", lambda model: False)
        calls = []
        real = epochs.run_epoch
        mp.setattr(epochs, "run_epoch", lambda *a, **k: calls.append(1) or real(*a, **k))
        hist = m.fit(data, epochs=3, batch_size=16, seed=5, **options)
    return m, hist, len(calls)


@pytest.mark.parametrize("optimizer", [{"name": "sgd", "lr": 0.1, "momentum": 0.9},
                                       {"name": "adam", "lr": 0.01}])
@pytest.mark.parametrize("schedule", [None, {"name": "onecycle", "max_lr": 0.05},
                                      {"name": "step", "step_size": 1, "gamma": 0.5}])
def test_compiled_epochs_equal_stepwise_fit(data, monkeypatch, optimizer, schedule):
    fast, h_fast, calls = _fit(data, False, monkeypatch, optimizer=optimizer,
                               schedule=schedule)
    slow, h_slow, _ = _fit(data, True, monkeypatch, optimizer=optimizer, schedule=schedule)
    assert calls == 3  # one compiled call per epoch
    assert fast.step == slow.step == 15  # 5 batches (the last of 6 rows) x 3 epochs
    np.testing.assert_allclose(h_fast["loss"], h_slow["loss"], rtol=1e-6)
    assert h_fast["lr"] == h_slow["lr"]
    for k in fast.params:
        np.testing.assert_allclose(fast.params[k], slow.params[k], rtol=1e-5, atol=1e-7)
    assert not np.allclose(fast.params["out.W"], graphc.compile(SPEC).params["out.W"])


def test_progress_bar_chunks_and_clipping_keep_the_result(data, monkeypatch):
    fast, h_fast, _ = _fit(data, False, monkeypatch, optimizer={"name": "sgd", "lr": 0.5},
                           clip_grad_norm=0.1, verbose=True)
    slow, h_slow, _ = _fit(data, True, monkeypatch, optimizer={"name": "sgd", "lr": 0.5},
                           clip_grad_norm=0.1)
    np.testing.assert_allclose(h_fast["loss"], h_slow["loss"], rtol=1e-6)
    for k in fast.params:
        np.testing.assert_allclose(fast.params[k], slow.params[k], rtol=1e-5, atol=1e-7)


def test_train_epoch_equals_train_steps_with_rates(data):
    a, b = graphc.compile(SPEC), graphc.compile(SPEC)
    oa, ob = graphc.optim.Adam(lr=0.01), graphc.optim.Adam(lr=0.01)
    batches = [np.arange(k, min(k + 32, 70)) for k in range(0, 70, 32)]
    rates = [0.02, 0.01, 0.005]
    losses = a.train_epoch(oa, batches=batches, lr=rates, **data)
    want = []
    for idx, r in zip(batches, rates):
        ob.lr = r
        want.append(b.train_step(ob, x=data["x"][idx], y=data["y"][idx]))
    np.testing.assert_allclose(losses, want, rtol=1e-6)
    np.testing.assert_allclose(a.params["h.W"], b.params["h.W"], rtol=1e-5, atol=1e-7)
    assert oa.lr == 0.01 and oa.t == ob.t == 3  # the rates applied to those steps only


def test_train_epoch_numpy_backend_runs_the_same_steps(data):
    a, b = graphc.compile(SPEC), graphc.compile(SPEC, backend="numpy")
    la = a.train_epoch(graphc.optim.SGD(lr=0.1), batch_size=16, seed=2, **data)
    lb = b.train_epoch(graphc.optim.SGD(lr=0.1), batch_size=16, seed=2, **data)
    assert len(la) == len(lb) == 5
    np.testing.assert_allclose(la, lb, rtol=1e-4)


def test_train_epoch_stops_at_a_non_finite_loss(data):
    m = graphc.compile(SPEC)
    losses = m.train_epoch(graphc.optim.SGD(lr=np.inf), batch_size=8, **data)
    assert 1 <= len(losses) < 9 and not np.isfinite(losses[-1])
    assert np.all(np.isfinite(losses[:-1]))


@pytest.mark.parametrize("kwargs, words", [
    ({"lr": [0.1]}, "one per step"),
    ({"batches": [np.arange(4), np.arange(8)]}, "same number of rows"),
    ({"batches": [np.arange(60, 75)]}, "must lie in"),
])
def test_train_epoch_bad_arguments_say_what_to_give(data, kwargs, words):
    with pytest.raises(InputError, match=words):
        graphc.compile(SPEC).train_epoch(graphc.optim.SGD(lr=0.1), **kwargs, **data)


# ---- the train step's fast path sees every way params and state can change ------------

def _pair():
    a, b = graphc.compile(SPEC), graphc.compile(SPEC, backend="numpy")
    b.params = a.params
    return a, b


def test_fast_train_step_sees_replaced_params_and_slots(data):
    a, b = _pair()
    oa, ob = graphc.optim.Adam(lr=0.01), graphc.optim.Adam(lr=0.01)
    batch = {"x": data["x"][:16], "y": data["y"][:16]}
    for _ in range(3):
        a.train_step(oa, **batch), b.train_step(ob, **batch)
    new = {k: v * 0.5 for k, v in a.params.items()}
    a.params, b.params = new, new  # a new dict
    dict.update(a.params, {"h.b": np.ones(8, np.float32)})  # bypasses ParamDict's copy
    dict.update(b.params, {"h.b": np.ones(8, np.float32)})
    oa.load_state_dict(ob.state_dict())  # slot arrays replaced
    la, lb = a.train_step(oa, **batch), b.train_step(ob, **batch)
    np.testing.assert_allclose(la, lb, rtol=1e-5)
    for k in a.params:
        np.testing.assert_allclose(a.params[k], b.params[k], rtol=1e-4, atol=1e-6)


def test_fast_train_step_follows_the_optimizers_changes(data):
    a, b = _pair()
    oa, ob = graphc.optim.SGD(lr=0.1), graphc.optim.SGD(lr=0.1)
    batch = {"x": data["x"][:16], "y": data["y"][:16]}
    a.train_step(oa, **batch), b.train_step(ob, **batch)
    for opt in (oa, ob):  # a weight decay from 0: the update lines change
        opt.hyper["weight_decay"] = 0.5
        opt.lr = 0.05
    for _ in range(2):
        np.testing.assert_allclose(a.train_step(oa, **batch), b.train_step(ob, **batch),
                                   rtol=1e-5)
    np.testing.assert_allclose(a.params["out.W"], b.params["out.W"], rtol=1e-4, atol=1e-6)


def test_quick_forward_equals_the_checked_one_and_still_checks(data):
    a, b = _pair()
    x = data["x"][:5]
    np.testing.assert_allclose(a.forward(x=x)["out"], b.forward(x=x)["out"], rtol=1e-5)
    np.testing.assert_allclose(a.forward(x=x.astype(np.float64))["out"],  # converted
                               b.forward(x=x)["out"], rtol=1e-5)
    with pytest.raises(InputError, match="axis 1 is 4"):
        a.forward(x=np.zeros((5, 4), np.float32))
    with pytest.raises(InputError, match="unknown input"):
        a.forward(x=x, z=x)
