"""Optimizer steps against values worked out by hand, with no torch and without graphc's
own update statements (`update_lines()`), on the NumPy reference and on the compiled
train step.

`by_hand` below is PyTorch's documented algorithm for each optimizer, one element at a
time in plain Python floats: a bug shared by the reference and the compiled kernels (both
run `update_lines()`) shows up here even where torch is not installed."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc
from graphc import optim
from tests.test_cpu_backend import TINY, tiny_batch

# ---- a few steps written out with pencil and paper ---------------------------------------


def _one(opt, p, gs):
    """`opt`'s steps on one scalar parameter p with gradients gs; p after each step."""
    params, out = {"w": np.array([p])}, []
    for g in gs:
        opt.step(params, {"w": np.array([g])})
        out.append(float(params["w"][0]))
    return out


def test_sgd_by_hand():
    # p = 1, g = 2: p - 0.1 * 2 = 0.8; then g = -1: 0.8 + 0.1 = 0.9
    assert _one(optim.SGD(lr=0.1), 1.0, [2.0, -1.0]) == pytest.approx([0.8, 0.9], abs=1e-15)
    # weight decay 0.5 adds 0.5 p = 0.5 to g: 1 - 0.1 * 2.5 = 0.75
    assert _one(optim.SGD(lr=0.1, weight_decay=0.5), 1.0, [2.0]) == pytest.approx([0.75])
    # maximize climbs: 1 + 0.1 * 2 = 1.2
    assert _one(optim.SGD(lr=0.1, maximize=True), 1.0, [2.0]) == pytest.approx([1.2])


def test_momentum_by_hand():
    # buffer starts at the first gradient: b1 = 2, p1 = 1 - 0.1 * 2 = 0.8
    # b2 = 0.9 * 2 + 1 = 2.8, p2 = 0.8 - 0.28 = 0.52
    # b3 = 0.9 * 2.8 + 0 = 2.52, p3 = 0.52 - 0.252 = 0.268
    got = _one(optim.SGD(lr=0.1, momentum=0.9), 1.0, [2.0, 1.0, 0.0])
    assert got == pytest.approx([0.8, 0.52, 0.268], abs=1e-14)
    # dampening 0.5 halves every gradient after the first: b2 = 1.8 + 0.5 = 2.3
    got = _one(optim.SGD(lr=0.1, momentum=0.9, dampening=0.5), 1.0, [2.0, 1.0])
    assert got == pytest.approx([0.8, 0.8 - 0.23], abs=1e-14)


def test_nesterov_by_hand():
    # b1 = 2, step g + 0.9 b1 = 3.8: p1 = 1 - 0.38 = 0.62
    # b2 = 0.9 * 2 + 1 = 2.8, step 1 + 0.9 * 2.8 = 3.52: p2 = 0.62 - 0.352 = 0.268
    got = _one(optim.SGD(lr=0.1, momentum=0.9, nesterov=True), 1.0, [2.0, 1.0])
    assert got == pytest.approx([0.62, 0.268], abs=1e-14)


def test_adam_by_hand():
    # step 1: m = 0.1 g, v = 0.001 g^2, bias corrections 0.1 and 0.001: the step is
    # lr * g / (|g| + eps), lr times the sign of g
    assert _one(optim.Adam(lr=0.1), 1.0, [2.0]) == pytest.approx([1 - 0.1 * 2 / (2 + 1e-8)])
    # step 2 with g = (2, 1): m = 0.9 * 0.2 + 0.1 = 0.28, v = 0.999 * 0.004 + 0.001
    # = 0.004996, corrections 1 - 0.81 = 0.19 and 1 - 0.998001 = 0.001999
    m_hat, v_hat = 0.28 / 0.19, 0.004996 / 0.001999
    want = 1 - 0.1 * 2 / (2 + 1e-8) - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert _one(optim.Adam(lr=0.1), 1.0, [2.0, 1.0])[1] == pytest.approx(want, rel=1e-13)
    # L2 weight decay (Adam) adds wd p to g; with one step, only the sign of g + wd p counts
    got = _one(optim.Adam(lr=0.1, weight_decay=10.0), 1.0, [-2.0])  # g + 10 p = 8
    assert got == pytest.approx([1 - 0.1 * 8 / (8 + 1e-8)])


def test_adamw_by_hand():
    # decoupled: p (1 - lr wd) first, 1 * (1 - 0.1 * 0.5) = 0.95, then the Adam step 0.1
    got = _one(optim.AdamW(lr=0.1, weight_decay=0.5), 1.0, [2.0])
    assert got == pytest.approx([0.95 - 0.1 * 2 / (2 + 1e-8)])


def test_amsgrad_by_hand():
    # betas 0.5, g = 4 then 0: the second moment falls (8, then 4) and amsgrad keeps 8
    opt = optim.Adam(lr=0.1, betas=(0.5, 0.5), amsgrad=True)
    got = _one(opt, 0.0, [4.0, 0.0])
    # step 2: m = 0.5 * 2 = 1, v = 0.5 * 8 = 4, max = max(8, 4) = 8;
    # corrections 0.75 and 0.75: 1/0.75 / (sqrt(8 / 0.75) + eps)
    step2 = 0.1 * (1 / 0.75) / (math.sqrt(8 / 0.75) + 1e-8)
    assert got == pytest.approx([-0.1 * 4 / (4 + 1e-8), -0.1 * 4 / (4 + 1e-8) - step2])
    np.testing.assert_allclose(opt.state["w"]["max_exp_avg_sq"], [8.0])


def test_rmsprop_by_hand():
    # v1 = 0.01 * 4 = 0.04, p1 = 1 - 0.01 * 2 / (0.2 + 1e-8)
    assert _one(optim.RMSprop(), 1.0, [2.0]) == pytest.approx([1 - 0.01 * 2 / (0.2 + 1e-8)])
    # centered, alpha 0.5: v1 = 2, mean of g = 1, avg = sqrt(2 - 1) + eps = 1 + eps
    got = _one(optim.RMSprop(lr=0.1, alpha=0.5, centered=True), 1.0, [2.0])
    assert got == pytest.approx([1 - 0.1 * 2 / (1 + 1e-8)])
    # momentum 0.5: buffer b1 = g / avg = 2 / 0.2 = 10 (alpha 0.99), b2 = 5 + 0 = 5
    avg = math.sqrt(0.04) + 1e-8
    got = _one(optim.RMSprop(lr=0.01, momentum=0.5), 1.0, [2.0, 0.0])
    assert got == pytest.approx([1 - 0.01 * 2 / avg, 1 - 0.01 * 2 / avg * 1.5])


def test_adagrad_by_hand():
    # sum = 4, p1 = 1 - 0.1 * 2 / 2 = 0.9; sum = 5, lr decayed 0.1 / (1 + 1 * 0.5)
    got = _one(optim.Adagrad(lr=0.1, lr_decay=0.5, eps=0.0), 1.0, [2.0, 1.0])
    assert got == pytest.approx([0.9, 0.9 - (0.1 / 1.5) * 1 / math.sqrt(5)], abs=1e-15)
    # an initial accumulator of 5: sum = 9, p1 = 1 - 0.1 * 2 / 3
    got = _one(optim.Adagrad(lr=0.1, initial_accumulator_value=5.0, eps=0.0), 1.0, [2.0])
    assert got == pytest.approx([1 - 0.2 / 3], abs=1e-15)


def test_clipping_by_hand():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0], [4.0]])}
    norm = optim.clip_gradients(grads, max_norm=1.0)
    assert norm == 5.0  # the norm before clipping
    coef = 1.0 / (5.0 + 1e-6)  # torch's clip_grad_norm_ adds 1e-6
    np.testing.assert_allclose(grads["a"], [3 * coef, 0.0], rtol=1e-15)
    np.testing.assert_allclose(grads["b"], [[0.0], [4 * coef]], rtol=1e-15)
    grads = {"a": np.array([3.0, -0.2]), "b": np.array([-4.0])}
    norm = optim.clip_gradients(grads, max_norm=10.0, max_value=1.0)  # value first
    assert norm == pytest.approx(math.sqrt(1 + 0.04 + 1), rel=1e-15)
    np.testing.assert_array_equal(grads["a"], [1.0, -0.2])
    np.testing.assert_array_equal(grads["b"], [-1.0])  # a norm below max_norm: unchanged


# ---- many steps: PyTorch's pseudo-code, one element at a time ------------------------------


def by_hand(name: str, kw: dict, p: float, gs: list[float]) -> list[float]:
    """p after each step of torch.optim.<name>(**kw), following the algorithm box in
    PyTorch's documentation, in plain floats."""
    lr = kw.get("lr", {"SGD": 1e-3, "Adagrad": 1e-2, "RMSprop": 1e-2}.get(name, 1e-3))
    wd = kw.get("weight_decay", 0.01 if name == "AdamW" else 0.0)
    maximize, out = kw.get("maximize", False), []
    if name == "SGD":
        mu, damp, nesterov, b = kw.get("momentum", 0.0), kw.get("dampening", 0.0), \
            kw.get("nesterov", False), None
        for g in gs:
            g = -g if maximize else g
            g += wd * p
            if mu:
                b = g if b is None else mu * b + (1 - damp) * g
                g = g + mu * b if nesterov else b
            p -= lr * g
            out.append(p)
    elif name == "Adagrad":
        decay, eps, s = kw.get("lr_decay", 0.0), kw.get("eps", 1e-10), \
            kw.get("initial_accumulator_value", 0.0)
        for t, g in enumerate(gs, 1):
            g = -g if maximize else g
            g += wd * p
            s += g * g
            p -= lr / (1 + (t - 1) * decay) * g / (math.sqrt(s) + eps)
            out.append(p)
    elif name == "RMSprop":
        alpha, eps, mu = kw.get("alpha", 0.99), kw.get("eps", 1e-8), kw.get("momentum", 0.0)
        v = ga = b = 0.0
        for g in gs:
            g = -g if maximize else g
            g += wd * p
            v = alpha * v + (1 - alpha) * g * g
            if kw.get("centered"):
                ga = alpha * ga + (1 - alpha) * g
                avg = math.sqrt(v - ga * ga) + eps
            else:
                avg = math.sqrt(v) + eps
            if mu:
                b = mu * b + g / avg
                p -= lr * b
            else:
                p -= lr * g / avg
            out.append(p)
    else:  # Adam, AdamW
        b1, b2 = kw.get("betas", (0.9, 0.999))
        eps = kw.get("eps", 1e-8)
        decoupled = name == "AdamW" or kw.get("decoupled_weight_decay", False)
        m = v = vmax = 0.0
        for t, g in enumerate(gs, 1):
            g = -g if maximize else g
            if decoupled:
                p *= 1 - lr * wd
            else:
                g += wd * p
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat = m / (1 - b1 ** t)
            vmax = max(vmax, v) if kw.get("amsgrad") else v
            v_hat = vmax / (1 - b2 ** t)
            p -= lr * m_hat / (math.sqrt(v_hat) + eps)
            out.append(p)
    return out


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "dampening": 0.8}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True, "weight_decay": 0.1}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "weight_decay": 0.1,
                 "initial_accumulator_value": 0.2, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.9, "maximize": True}),
    ("RMSprop", {"lr": 0.01, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.003, "centered": True, "momentum": 0.5, "eps": 1e-6}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1, "eps": 1e-3}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True, "maximize": True}),
]


def _gradients(steps: int, n: int, seed: int = 0) -> np.ndarray:
    # gradients that shrink and flip sign now and then, so that amsgrad's max matters
    rng = np.random.default_rng(seed)
    return np.array([rng.normal(size=n) * (1.0 + 2.0 * (s % 3 == 0)) for s in range(steps)])


@pytest.mark.parametrize("name,kwargs", CASES, ids=lambda c: str(c))
def test_numpy_steps_match_by_hand(name, kwargs):
    gs = _gradients(9, 6)
    p0 = np.random.default_rng(1).normal(size=6)
    params = {"w": p0.reshape(2, 3).copy()}
    opt = getattr(optim, name)(**kwargs)
    got = []
    for g in gs:
        opt.step(params, {"w": g.reshape(2, 3)})
        got.append(params["w"].ravel().copy())
    want = np.array([by_hand(name, kwargs, float(p0[i]), list(gs[:, i])) for i in range(6)]).T
    np.testing.assert_allclose(np.array(got), want, rtol=1e-11, atol=1e-14)
    assert opt.t == len(gs)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numpy_steps_keep_the_dtype(dtype):
    params = {"w": np.ones(3, dtype)}
    opt = optim.Adam(lr=0.1)
    opt.step(params, {"w": np.array([1.0, -2.0, 3.0])})
    assert params["w"].dtype == dtype and opt.state["w"]["exp_avg"].dtype == dtype
    np.testing.assert_allclose(params["w"], [0.9, 1.1, 0.9], rtol=1e-6)


# ---- the compiled train step: gradients from the reference, steps by hand ---------------

TRAIN_CASES = [CASES[i] for i in (0, 2, 3, 4, 6, 8, 10, 12, 14, 16)]


@pytest.fixture(scope="module")
def reference():
    return graphc.compile(TINY, backend="numpy", dtype="float64")


@pytest.mark.parametrize("name,kwargs", TRAIN_CASES, ids=lambda c: str(c))
def test_compiled_train_step_matches_by_hand(reference, name, kwargs):
    """Three fused steps on the cpu backend; each step's gradient from the NumPy
    reference's backward graph, the update from `by_hand`."""
    cpu = graphc.compile(TINY, backend="cpu", dtype="float64")
    cpu.params.update({k: v.copy() for k, v in reference.params.items()})
    start = {k: v.copy() for k, v in cpu.params.items()}
    opt = getattr(optim, name)(**kwargs)
    grads_per_step = []
    for step in range(3):
        batch = tiny_batch(seed=step)
        reference.params.update({k: v.copy() for k, v in cpu.params.items()})
        loss, grads = reference.grad(**batch)
        grads_per_step.append(grads)
        assert cpu.train_step(opt, **batch) == pytest.approx(loss, rel=1e-10)
    # the loss of each step uses the params before it: check the final params element-wise
    for k, p0 in start.items():
        gs = np.array([g[k].ravel() for g in grads_per_step])
        want = [by_hand(name, kwargs, float(p), list(gs[:, i]))[-1]
                for i, p in enumerate(p0.ravel())]
        np.testing.assert_allclose(cpu.params[k].ravel(), want, rtol=1e-9, atol=1e-12,
                                   err_msg=f"{name} {kwargs}: {k}")
    assert opt.t == 3


def test_compiled_train_step_float32_adam_by_hand(reference):
    cpu = graphc.compile(TINY, backend="cpu", dtype="float32")
    cpu.params.update({k: v.astype(np.float32) for k, v in reference.params.items()})
    p0 = {k: v.astype(np.float64) for k, v in cpu.params.items()}
    reference.params.update(p0)
    batch = tiny_batch(seed=4)
    _, grads = reference.grad(**batch)
    cpu.train_step(optim.Adam(lr=0.01), **batch)
    for k, p in p0.items():
        # one Adam step moves every element by lr times the sign of its gradient
        want = p - 0.01 * np.sign(grads[k]) * (np.abs(grads[k]) > 1e-6)
        big = np.abs(grads[k]) > 1e-3
        np.testing.assert_allclose(cpu.params[k][big], want[big], rtol=1e-5, atol=1e-6)
