"""Independent oracles for the compiled (cpu) backend: every op against PyTorch
directly, and the stability promise, by value: logits of +-1000 through softmax, log-softmax,
cross-entropy, sigmoid, softplus and BCE-with-logits on the cpu and numpy backends, in
float32 and float64, against closed forms (not against the other backend, and not only
"finite"). A log-sum-exp that forgets the row maximum gives NaN or inf here."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from tests.torch_refs import COVERED

X = np.array([[1000.0, 0.0, -1000.0, 999.0, 1000.0],
              [-1000.0, -999.0, 5.0, 0.5, -1000.0]])
T = np.array([3, 1])
TB = np.array([[1.0, 0.0, 1.0, 0.5, 0.0], [0.0, 1.0, 0.25, 1.0, 1.0]])

SPEC = {"graphc": 1, "name": "extremes",
        "inputs": {"x": {"shape": ["B", 5]}, "t": {"shape": ["B"], "dtype": "int64"},
                   "tb": {"shape": ["B", 5]}},
        "nodes": [{"id": "ls", "op": "log_softmax", "inputs": ["x"]},
                  {"id": "sm", "op": "softmax", "inputs": ["x"]},
                  {"id": "ce", "op": "cross_entropy", "inputs": ["x", "t"]},
                  {"id": "sg", "op": "sigmoid", "inputs": ["x"]},
                  {"id": "sp", "op": "softplus", "inputs": ["x"]},
                  {"id": "bl", "op": "bce_with_logits", "inputs": ["x", "tb"]}],
        "outputs": ["ls", "sm", "ce", "sg", "sp", "bl"], "loss": "ce"}


def closed_forms() -> dict[str, np.ndarray]:
    """Written out by hand for these numbers: row 0's log-sum-exp is
    1000 + log(2 + e^-1), row 1's 5 + log(1 + e^-4.5) (the rest underflow)."""
    lse = np.array([[1000 + np.log(2 + np.exp(-1.0))], [5 + np.log1p(np.exp(-4.5))]])
    ls = X - lse
    sp = np.where(X > 0, X, 0.0) + np.log1p(np.exp(-np.abs(X)))
    return {"ls": ls, "sm": np.exp(ls), "ce": -(ls[0, 3] + ls[1, 1]) / 2,
            "sg": np.where(X >= 0, 1 / (1 + np.exp(-np.abs(X))),
                           np.exp(-np.abs(X)) / (1 + np.exp(-np.abs(X)))),
            "sp": sp, "bl": np.mean(sp - TB * X),
            "grad x": (np.exp(ls) - np.eye(5)[T]) / 2}


TOL = {"float64": 1e-12, "float32": 2e-6}


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_logits_give_the_closed_form_values(backend, dtype):
    m = graphc.compile(SPEC, backend=backend, dtype=dtype)
    feeds = {"x": X, "t": T, "tb": TB}
    out = m.forward(**feeds)
    loss, grads = m.grad(wrt=["x"], **feeds)
    want = closed_forms()
    got = {**{k: np.asarray(v, np.float64) for k, v in out.items()},
           "grad x": np.asarray(grads["x"], np.float64)}
    assert float(loss) == pytest.approx(want["ce"], rel=TOL[dtype])
    for k, w in want.items():
        # relative to the values' scale (log-softmax reaches -2000)
        scale = max(1.0, float(np.max(np.abs(w))))
        np.testing.assert_allclose(got[k], w, rtol=TOL[dtype], atol=TOL[dtype] * scale,
                                   err_msg=f"{backend} {dtype}: {k}")


# ---- every op on the compiled backend against PyTorch directly ------------------------------

try:
    import torch
except ImportError:  # tests/ci_guard.py fails CI on this skip
    torch = None


@pytest.fixture(scope="module")
def cpu_op_results():
    """The first case of every op torch defines, merged into one spec compiled once on
    the cpu backend (float64): each output and each input's gradient by case."""
    from graphc.backends.numba_cpu import CpuBackend
    from graphc.passes import grad_program
    from tests.opcases import build, cases
    from tests.test_cpu_backend import merge
    parts, meta = [], {}
    for name in sorted(COVERED):
        shapes, attrs = cases(name)[0]
        g, vals = build(name, shapes, attrs, seed=7)
        parts.append((f"{name}/", g.to_json(), vals))
        meta[name] = (attrs, vals)
    spec, values = merge(parts)
    ref = graphc.compile(spec, backend="numpy", dtype="float64")
    wrt = [n for n, i in spec["inputs"].items() if not i.get("dtype", "f").startswith("int")]
    prog = grad_program(ref.mode_program(False), wrt, keep_outputs=True)
    names = [*(f"value {o}" for o in prog.outputs), *(f"grad {g}" for g in prog.grads)]
    got = CpuBackend().compile(prog, ref.dtype, [*prog.outputs.values(),
                                                 *prog.grads.values()])(ref.feeds(prog, values))
    return dict(zip(names, got)), meta


@pytest.mark.skipif(torch is None, reason="needs torch, the reference (pip install torch)")
@pytest.mark.parametrize("name", sorted(COVERED))
def test_cpu_op_matches_torch(cpu_op_results, name):
    from tests.torch_refs import references

    got, meta = cpu_op_results
    attrs, vals = meta[name]
    ins = {k: torch.tensor(v, requires_grad=v.dtype.kind == "f") for k, v in vals.items()
           if k.startswith("in")}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in attrs.items()}
    out = references(torch)[name](*ins.values(), **kwargs)
    (out * torch.tensor(vals["cot"])).sum().backward()
    np.testing.assert_allclose(got[f"value {name}/y"], out.detach().numpy(), rtol=1e-10,
                               atol=1e-12, err_msg=f"{name}: value")
    for k, t in ins.items():
        if t.requires_grad:
            np.testing.assert_allclose(got[f"grad {name}/{k}"], t.grad.numpy(), rtol=1e-9,
                                       atol=1e-12, err_msg=f"{name}: gradient of {k}")


@pytest.mark.parametrize("backend", ["cpu", "numpy"])
def test_scalar_params_train_by_hand(backend):
    """The lectures' neuron f = sigmoid(w0 x0 + w1 x1 + w2) at w = (2, -3, -3), x = (-1, -2):
    f = sigmoid(1) and df/dw = s(1 - s) * (x0, x1, 1), so one SGD step of lr 1 moves each
    scalar param by minus that (a compiled step keeps scalar gradients apart)."""
    m = graphc.compile("examples/neuron.json", backend=backend, dtype="float64")
    s = 1 / (1 + np.exp(-1.0))
    loss = m.train_step(graphc.optim.SGD(lr=1.0))
    assert float(loss) == pytest.approx(s, rel=1e-12)
    d = s * (1 - s)
    want = {"w0": 2.0 + d, "w1": -3.0 + 2 * d, "w2": -3.0 - d}
    for k, v in want.items():
        assert float(m.params[k]) == pytest.approx(v, rel=1e-12), k
