"""Each op's value and gradient against PyTorch (an optional test dependency)."""

import numpy as np
import pytest

import graphc
from tests.opcases import build, cases
from tests.torch_refs import COVERED, references

try:
    import torch
except ImportError:  # the coverage test still runs; tests/ci_guard.py fails CI on the skips
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch, the reference "
                                 "(pip install torch)")
TORCH = references(torch) if torch is not None else {}

CASES = [pytest.param(name, shapes, attrs, id=f"{name}-{i}")
         for name in sorted(COVERED) for i, (shapes, attrs) in enumerate(cases(name))]


def test_every_public_op_but_the_layers_has_a_torch_reference():
    from tests.opcases import ops_under_test

    # dense and conv have params: see below and tests/test_conv.py
    assert set(ops_under_test()) - COVERED == {"dense", "conv"}
    assert COVERED <= set(ops_under_test())


@needs_torch
def test_covered_names_the_references():
    assert set(TORCH) == COVERED


@needs_torch
@pytest.mark.parametrize("name,shapes,attrs", CASES)
def test_value_and_gradient_match_torch(name, shapes, attrs):
    graph, values = build(name, shapes, attrs)
    model = graphc.compile(graph, backend="numpy", dtype="float64")
    float_inputs = [k for k in values if k.startswith("in") and values[k].dtype.kind == "f"]
    trace = model.trace(wrt=float_inputs, **values)
    tensors = {k: torch.tensor(v, requires_grad=k in float_inputs) for k, v in values.items()
               if k.startswith("in")}
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in attrs.items()}
    out = TORCH[name](*tensors.values(), **kwargs)
    (out * torch.tensor(values["cot"])).sum().backward()
    np.testing.assert_allclose(trace.values["y"], out.detach().numpy(), rtol=1e-10, atol=1e-12)
    for k in float_inputs:
        np.testing.assert_allclose(trace.grads[k], tensors[k].grad.numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=f"gradient of {k}")


@needs_torch
def test_dense_matches_torch_linear():
    spec = {"graphc": 1, "name": "d", "inputs": {"x": {"shape": ["B", 5]}},
            "nodes": [{"id": "h", "op": "dense", "inputs": ["x"],
                       "attrs": {"units": 3, "activation": "tanh", "init": "normal",
                                 "bias_init": "normal"}},
                      {"id": "L", "op": "sum", "inputs": ["h"]}],
            "outputs": ["h"], "loss": "L"}
    model = graphc.compile(spec, backend="numpy", dtype="float64")
    x = np.random.default_rng(1).normal(size=(4, 5))
    loss, grads = model.grad(x=x)
    lin = torch.nn.Linear(5, 3).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(model.params["h.W"].T))
        lin.bias.copy_(torch.tensor(model.params["h.b"]))
    torch.tanh(lin(torch.tensor(x))).sum().backward()
    np.testing.assert_allclose(grads["h.W"], lin.weight.grad.numpy().T, rtol=1e-10)
    np.testing.assert_allclose(grads["h.b"], lin.bias.grad.numpy(), rtol=1e-10)
