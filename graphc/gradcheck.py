"""Analytic gradients against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import FLOAT
from graphc.spec import Graph


@dataclass
class Check:
    name: str
    checked: int  # elements compared
    size: int
    max_abs: float  # largest |analytic - numeric|
    max_rel: float  # largest |analytic - numeric| / max(|analytic|, |numeric|, 1)
    ok: bool


def gradcheck(graph: Graph, inputs: Mapping[str, Any] | None = None, *, eps: float = 1e-6,
              tol: float = 1e-5, max_elements: int = 20, wrt_inputs: bool = True,
              seed: int = 0) -> list[Check]:
    """Compare every param's (and float input's) gradient with central differences.

    At most `max_elements` randomly chosen elements per tensor are perturbed, so that
    large models stay quick; `tol` bounds the relative error.
    """
    from graphc.runtime import Model

    model = Model(graph, backend="numpy", dtype="float64")
    prog = model.program
    inputs = dict(inputs or {})
    wrt = [n for n, i in prog.inputs.items() if prog[i].dtype == FLOAT] if wrt_inputs else []
    for name in wrt:  # defaults become explicit, so that they can be perturbed
        if name not in inputs and "value" in graph.inputs[name]:
            inputs[name] = graph.inputs[name]["value"]
    wrt = [n for n in wrt if n in inputs]
    _, grads = model.grad(wrt=wrt, **inputs)
    values = {**{k: np.array(v, dtype=np.float64) for k, v in model.params.items()},
              **{k: np.array(inputs[k], dtype=np.float64) for k in wrt}}
    rng = np.random.default_rng(seed)

    def loss_at(name: str, arr: np.ndarray) -> float:
        if name in model.params:
            saved, model.params[name] = model.params[name], arr
            try:
                return model.grad(**inputs)[0]
            finally:
                model.params[name] = saved
        return model.grad(**{**inputs, name: arr})[0]

    out = []
    for name, base in values.items():
        flat = np.arange(base.size)
        picks = flat if base.size <= max_elements else rng.choice(flat, max_elements, replace=False)
        numeric = np.empty(len(picks))
        for k, i in enumerate(picks):
            idx = np.unravel_index(i, base.shape)
            plus, minus = base.copy(), base.copy()
            plus[idx] += eps
            minus[idx] -= eps
            numeric[k] = (loss_at(name, plus) - loss_at(name, minus)) / (2 * eps)
        analytic = np.asarray(grads[name], dtype=np.float64).reshape(-1)[picks]
        diff = np.abs(analytic - numeric)
        rel = diff / np.maximum(np.maximum(np.abs(analytic), np.abs(numeric)), 1.0)
        max_rel = float(rel.max()) if rel.size else 0.0
        out.append(Check(name, len(picks), base.size, float(diff.max()) if diff.size else 0.0,
                         max_rel, bool(max_rel <= tol)))
    return out
