"""Analytic gradients against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import FLOAT
from graphc.ops import REGISTRY
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
    step, state = model.step, dict(model.state)

    def grad(wrt=(), **feeds):  # every call at the same step: the same dropout masks
        model.step, model.state = step, dict(state)
        return model.grad(wrt=wrt, **feeds)

    _, grads = grad(wrt=wrt, **inputs)
    values = {**{k: np.array(v, dtype=np.float64) for k, v in model.params.items()},
              **{k: np.array(inputs[k], dtype=np.float64) for k in wrt}}
    rng = np.random.default_rng(seed)

    def loss_at(name: str, arr: np.ndarray) -> float:
        if name in model.params:
            saved = model.params[name].copy()  # assignment copies into the model's array
            model.params[name] = arr
            try:
                return grad(**inputs)[0]
            finally:
                model.params[name] = saved
        return grad(**{**inputs, name: arr})[0]

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


def sample_inputs(graph: Graph, given: Mapping[str, Any], *, seed: int = 0,
                  size: int = 3) -> tuple[dict[str, Any], list[str]]:
    """Seeded random values for the inputs the loss reads that have neither a value here
    nor a default in the spec, so that gradcheck runs on any spec; returns the inputs and
    one phrase per sampled input. Symbolic dims take the size other inputs give them, else
    `size`; labels (inputs that become one-hot) lie in 0..classes-1; float inputs follow
    the input domain of the ops that read them (positive for log, in (0, 1) for BCE)."""
    from graphc.passes import forward_program

    prog = forward_program(graph)
    used = {a for n in prog for a in n.args}
    inputs = dict(given)
    dims: dict[str, int] = {}
    for name, i in prog.inputs.items():
        value = inputs.get(name, graph.inputs[name].get("value"))
        if value is not None:
            for d, n in zip(prog[i].shape, np.shape(value)):
                if isinstance(d, str):
                    dims.setdefault(d, n)
    domains = {}
    for node in graph.nodes:
        op = REGISTRY.get(node["op"])
        for k, arg in enumerate(node.get("inputs", [])):
            if op is not None and op.domain and isinstance(arg, str):
                domains.setdefault(arg, op.domain[min(k, len(op.domain) - 1)])
    rng = np.random.default_rng(seed)
    said = []
    for name, i in prog.inputs.items():
        if i not in used or name in inputs or "value" in graph.inputs[name]:
            continue
        shape = tuple(dims.setdefault(d, size) if isinstance(d, str) else d
                      for d in prog[i].shape)
        if prog[i].dtype == FLOAT:
            inputs[name] = _sample(domains.get(name, "real"), shape, rng)
            said.append(f"{name} {_shape(shape)}")
        else:
            classes = [n.attrs["classes"] for n in prog if n.op == "one_hot" and i in n.args]
            k = classes[0] if classes else 2
            inputs[name] = rng.integers(0, k, shape)
            said.append(f"{name} {_shape(shape)} (labels 0..{k - 1})")
    return inputs, said


def _sample(domain: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain == "unit":
        return rng.uniform(0.1, 0.9, shape)
    if domain == "nonzero":
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.5, 2.0, shape)
    if domain == "probs":
        p = rng.uniform(0.1, 1.0, shape)
        return p / p.sum(axis=-1, keepdims=True) if p.ndim else p
    return rng.normal(size=shape)


def _shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"
