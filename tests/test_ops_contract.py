"""The contract every registered op keeps, checked for each op the registry holds:
shape rule = reference, gradient = central differences (float64), docs present."""

import numpy as np
import pytest

import graphc
from graphc.backends.numpy_interp import evaluate
from graphc.ops import REGISTRY
from graphc.passes import grad_program
from tests.opcases import build, cases, ops_under_test

CASES = [pytest.param(name, shapes, attrs, id=f"{name}-{i}")
         for name in ops_under_test() for i, (shapes, attrs) in enumerate(cases(name))]


def _bind(program, values):
    return {program.inputs[k]: np.asarray(v) for k, v in values.items()}


@pytest.mark.parametrize("name,shapes,attrs", CASES)
def test_shape_rule_matches_reference(name, shapes, attrs):
    graph, values = build(name, shapes, attrs)
    model = graphc.compile(graph, backend="numpy", dtype="float64")
    for training in (False, True):  # (the programs differ for ops with modes)
        program = model.mode_program(training)
        values_by_id = evaluate(program, model.feeds(program, values), np.float64)
        for node in program:
            assert values_by_id[node.id].shape == node.shape, (node.describe())


@pytest.mark.parametrize("name,shapes,attrs", CASES)
def test_vjp_against_finite_differences(name, shapes, attrs):
    graph, values = build(name, shapes, attrs)
    model = graphc.compile(graph, backend="numpy", dtype="float64")
    wrt = [k for k in values if k.startswith("in") and values[k].dtype.kind == "f"]
    _, grads = _grad(model, wrt=wrt, **values)
    targets = {**{k: values[k] for k in wrt}, **model.params}
    eps = 1e-6
    for key, base in targets.items():
        base = np.array(base, dtype=np.float64)
        numeric = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            plus, minus = base.copy(), base.copy()
            plus[idx] += eps
            minus[idx] -= eps
            numeric[idx] = (_loss(model, key, plus, values) - _loss(model, key, minus, values)) / (
                2 * eps)
        np.testing.assert_allclose(grads[key], numeric, rtol=1e-5, atol=1e-7,
                                   err_msg=f"{name}: gradient of {key}")


def _grad(model, wrt=(), **values):
    """A training call at step 0: random draws (dropout's masks) are the same each time."""
    model.step = 0
    return model.grad(wrt=wrt, **values)


def _loss(model, key, value, values):
    if key in model.params:
        saved, model.params[key] = model.params[key], value
        try:
            return _grad(model, **values)[0]
        finally:
            model.params[key] = saved
    return _grad(model, **{**values, key: value})[0]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_declaration_is_complete(name):
    op = REGISTRY[name]
    assert op.formula and op.symbol and op.family
    if op.kind == "composite":
        assert op.expand is not None
    else:
        assert op.shape is not None and op.ref is not None
    if not op.internal:
        assert op.kind == "composite" or op.grad is not None, "public ops are differentiable"
        assert op.gradient, "the docs print each op's gradient rule"
    if op.kind == "elementwise":
        assert op.expr is not None, "elementwise ops give one scalar expression for kernels"


def test_every_internal_op_used_by_gradients_has_a_reference():
    for op in REGISTRY.values():
        if op.internal:
            assert op.ref is not None and op.shape is not None, op.name


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "bce_with_logits", "log_softmax",
                                  "softmax", "cross_entropy", "binary_cross_entropy", "elu",
                                  "mish", "silu", "gelu", "swish"])
def test_stable_for_large_inputs(name):
    """No overflow to inf/nan for |x| up to 1e4, values and gradients."""
    x = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]])
    inputs = {"x": {"shape": [1, 5]}}
    args = ["x"]
    if name in ("bce_with_logits", "binary_cross_entropy"):
        inputs["t"] = {"shape": [1, 5]}
        args.append("t")
    if name == "cross_entropy":
        inputs["t"] = {"shape": [1], "dtype": "int64"}
        args.append("t")
    spec = {"graphc": 1, "name": "big", "inputs": inputs,
            "nodes": [{"id": "y", "op": name, "inputs": args},
                      {"id": "L", "op": "sum", "inputs": ["y"]}],
            "outputs": ["y"], "loss": "L"}
    feeds = {"x": x}
    if name == "binary_cross_entropy":
        feeds["x"] = np.array([[0.0, 1e-30, 0.5, 1 - 1e-12, 1.0]])
    if "t" in inputs:
        feeds["t"] = np.array([1]) if name == "cross_entropy" else np.full((1, 5), 0.5)
    for dtype in ("float32", "float64"):
        model = graphc.compile(spec, backend="numpy", dtype=dtype)
        t = model.trace(wrt=["x"], **feeds)
        assert np.all(np.isfinite(t.values["y"])), (name, dtype, t.values["y"])
        assert np.all(np.isfinite(t.grads["x"])), (name, dtype, t.grads["x"])


@pytest.mark.parametrize("name,shapes,attrs", CASES)
def test_grad_program_for_each_op_only_holds_known_ops(name, shapes, attrs):
    graph, values = build(name, shapes, attrs)
    wrt = [k for k in values if k.startswith("in") and values[k].dtype.kind == "f"]
    prog = grad_program(graphc.compile(graph, backend="numpy").mode_program(True), wrt)
    assert {n.op for n in prog} <= {*REGISTRY, "input", "param", "const", "state", "step"}, name
    assert set(prog.grads) >= set(wrt), name
