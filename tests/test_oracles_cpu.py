"""The stability promise, by value: logits of +-1000 through softmax, log-softmax,
cross-entropy, sigmoid, softplus and BCE-with-logits on the cpu and numpy backends, in
float32 and float64, against closed forms (not against the other backend, and not only
"finite"). A log-sum-exp that forgets the row maximum gives NaN or inf here."""

from __future__ import annotations

import numpy as np
import pytest

import graphc

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
