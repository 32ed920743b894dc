"""scikit-learn's models as skl2onnx writes them (domain ai.onnx.ml): LinearRegressor,
LinearClassifier's scores and Normalizer."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from graphc.onnx.reader_core import Value, handles, out_float

if TYPE_CHECKING:
    from graphc.onnx.reader import Reader


@handles("LinearRegressor", "LinearClassifier", domain="ai.onnx.ml")
def _linear(r: Reader, node, args, at):
    """scikit-learn's linear models as skl2onnx writes them: x @ coefᵀ + intercept."""
    x = args[0]
    n_in = x.shape[-1]
    coef = np.asarray(at["coefficients"], dtype=float).reshape(-1, n_in).T
    bias = np.asarray(at.get("intercepts", [0.0] * coef.shape[1]), dtype=float)
    post = at.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else post
    w = r.param(Value(coef.shape, r.float, const=coef, init=f"{r.node_label}.coef"))
    b = r.param(Value(bias.shape, r.float, const=bias, init=f"{r.node_label}.intercept"))
    y = r.emit("add", [r.emit("matmul", [r.tensor(x), w]), b])
    if post == "LOGISTIC":
        y = r.emit("sigmoid", [y])
    elif post == "SOFTMAX":
        y = r.emit("softmax", [y], axis=-1)
    elif post != "NONE":
        raise r.error(f"{node.op_type} with post_transform {post}")
    out = node.output[-1] if node.op_type == "LinearClassifier" else node.output[0]
    value = out_float(r, (x.shape[0], coef.shape[1]), r.rename(y, out))
    return [None, value] if node.op_type == "LinearClassifier" else value


@handles("Normalizer", domain="ai.onnx.ml")
def _normalizer(r: Reader, node, args, at):
    x = args[0]
    norm = at.get("norm", b"MAX")
    norm = norm.decode() if isinstance(norm, bytes) else norm
    xn = r.tensor(x)
    if norm == "L1":
        d = r.emit("sum", [r.emit("abs", [xn])], axis=-1, keepdims=True)
    elif norm == "L2":
        d = r.emit("sqrt", [r.emit("sum", [r.emit("square", [xn])], axis=-1, keepdims=True)])
    else:
        d = r.emit("max", [r.emit("abs", [xn])], axis=-1, keepdims=True)
    return out_float(r, x.shape, r.emit("div", [xn, d], out=node.output[0]))


