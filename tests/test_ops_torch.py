"""Each op's value and gradient against PyTorch (an optional test dependency)."""

import numpy as np
import pytest

import graphc
from tests.opcases import build, cases

torch = pytest.importorskip("torch")
tF = torch.nn.functional


def _ce(x, t, label_smoothing=0.0, reduction="mean"):
    return tF.cross_entropy(x, t if t.dtype == torch.int64 else t,
                            label_smoothing=label_smoothing, reduction=reduction)


def _gelu(x, approximate="none"):
    if approximate == "sigmoid":
        return x * torch.sigmoid(1.702 * x)
    return tF.gelu(x, approximate=approximate)


def _reduce(fn):
    def run(x, axis=None, keepdims=False):
        if axis is None:
            axis = tuple(range(x.ndim))
        return fn(x, dim=axis, keepdim=keepdims)
    return run


def _max(x, axis=None, keepdims=False):
    axes = tuple(range(x.ndim)) if axis is None else axis
    return torch.amax(x, dim=axes, keepdim=keepdims)


TORCH = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
    "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum,
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
    "square": torch.square, "abs": torch.abs, "reciprocal": torch.reciprocal,
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
    "leaky_relu": lambda x, alpha=0.01: tF.leaky_relu(x, alpha),
    "prelu": lambda x, a: torch.where(x > 0, x, a * x),
    "elu": lambda x, alpha=1.0: tF.elu(x, alpha), "silu": tF.silu, "gelu": _gelu,
    "mish": tF.mish, "softplus": tF.softplus,
    "swish": lambda x, b=None, beta=1.0: x * torch.sigmoid((beta if b is None else b) * x),
    "matmul": torch.matmul,
    "transpose": lambda x, axes=None: x.permute(
        *(reversed(range(x.ndim)) if axes is None else axes)),
    "reshape": lambda x, shape: x.reshape(shape),
    "concat": lambda *xs, axis=0: torch.cat(xs, dim=axis),
    "sum": _reduce(torch.sum), "mean": _reduce(torch.mean), "max": _max,
    "softmax": lambda x, axis=-1: torch.softmax(x, axis),
    "log_softmax": lambda x, axis=-1: torch.log_softmax(x, axis),
    "mse": lambda a, b, reduction="mean": tF.mse_loss(*torch.broadcast_tensors(a, b),
                                                      reduction=reduction),
    "sse": lambda a, b, reduction="sum": 0.5 * tF.mse_loss(
        *torch.broadcast_tensors(a, b), reduction=reduction),
    "l1_loss": lambda a, b, reduction="mean": tF.l1_loss(a, b, reduction=reduction),
    "huber": lambda a, b, delta=1.0, reduction="mean": tF.huber_loss(
        a, b, delta=delta, reduction=reduction),
    "cross_entropy": _ce,
    "binary_cross_entropy": lambda p, t, reduction="mean": tF.binary_cross_entropy(
        *torch.broadcast_tensors(p, t), reduction=reduction),
    "bce_with_logits": lambda x, t, reduction="mean": tF.binary_cross_entropy_with_logits(
        *torch.broadcast_tensors(x, t), reduction=reduction),
    "l1_penalty": lambda *ws, scale=1.0: scale * sum(w.abs().sum() for w in ws),
    "l2_penalty": lambda *ws, scale=1.0: scale * sum((w * w).sum() for w in ws),
}

CASES = [pytest.param(name, shapes, attrs, id=f"{name}-{i}")
         for name in sorted(TORCH) for i, (shapes, attrs) in enumerate(cases(name))]


def test_every_public_op_but_dense_has_a_torch_reference():
    from tests.opcases import ops_under_test

    assert set(ops_under_test()) - set(TORCH) == {"dense"}  # dense has params: see below


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
