"""ONNX's arithmetic read as graphc ops: elementwise and activation operators, MatMul and
Gemm, Softmax, the Reduce* family, BatchNormalization and SoftmaxCrossEntropyLoss."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from graphc.onnx.reader_core import (
    INT_TYPES,
    Value,
    bshape,
    const,
    consts,
    handles,
    ints,
    norm,
    out_float,
)

if TYPE_CHECKING:
    from graphc.onnx.reader import Reader


NUMPY_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
                "Pow": np.power, "Max": np.maximum, "Min": np.minimum}
GRAPHC_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow",
                 "Max": "maximum", "Min": "minimum", "Sum": "add"}


@handles("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean")
def _binary(r: Reader, node, args, at):
    op = node.op_type
    if consts(args):  # shape arithmetic, folded
        fn = NUMPY_BINARY.get(op, np.add)
        out = args[0].const
        for a in args[1:]:
            if op == "Div" and out.dtype.kind in "iu":
                out = out // a.const
            else:
                out = fn(out, a.const)
        if op == "Mean":
            out = out / len(args)
        return const(out, args[0].dtype if out.dtype.kind != "f" else None)
    if any(a.const is None and a.dtype in INT_TYPES.values() for a in args):
        raise r.error(f"{op} of integer tensors",
                      hint="graphc computes in floats; integer tensors are class labels")
    names = [r.tensor(a) for a in args]
    shape = bshape(*(a.shape for a in args))
    acc = names[0]
    for k, b in enumerate(names[1:]):
        last = k == len(names) - 2 and op != "Mean"
        acc = r.emit(GRAPHC_BINARY.get(op, "add"), [acc, b],
                     out=node.output[0] if last else None)
    if len(names) == 1:
        acc = r.emit("add", [acc, 0.0], out=node.output[0])
    if op == "Mean":
        acc = r.emit("div", [acc, float(len(names))], out=node.output[0])
    return out_float(r, shape, acc)


UNARY = {"Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Abs": "abs",
         "Reciprocal": "reciprocal", "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
         "Softplus": "softplus", "Mish": "mish"}


@handles(*UNARY)
def _unary(r: Reader, node, args, at):
    (x,) = args
    if x.const is not None and node.op_type in ("Neg", "Abs"):
        return const(-x.const if node.op_type == "Neg" else np.abs(x.const), x.dtype)
    return out_float(r, x.shape, r.emit(UNARY[node.op_type], [r.tensor(x)], out=node.output[0]))


@handles("LeakyRelu", "Elu", "Selu", "Gelu", "PRelu", "Swish", "HardSigmoid", "Clip")
def _activation(r: Reader, node, args, at):
    x, out, op = args[0], node.output[0], node.op_type
    xn = r.tensor(x)
    if op == "LeakyRelu":
        y = r.emit("leaky_relu", [xn], out=out, alpha=float(at.get("alpha", 0.01)))
    elif op == "Elu":
        y = r.emit("elu", [xn], out=out, alpha=float(at.get("alpha", 1.0)))
    elif op == "Selu":
        e = r.emit("elu", [xn], alpha=float(at.get("alpha", 1.67326319217681884765625)))
        y = r.emit("mul", [e, float(at.get("gamma", 1.05070102214813232421875))], out=out)
    elif op == "Gelu":
        y = r.emit("gelu", [xn], out=out, approximate=at.get("approximate", b"none").decode()
                   if isinstance(at.get("approximate"), bytes) else at.get("approximate", "none"))
    elif op == "PRelu":
        slope = args[1]
        if slope.const is not None and len(slope.shape) > len(x.shape):
            raise r.error("PRelu's slope has more axes than its input")
        y = r.emit("prelu", [xn, r.tensor(slope)], out=out)
    elif op == "Swish":
        y = r.emit("swish", [xn], out=out, beta=float(at.get("alpha", 1.0)))
    elif op == "HardSigmoid":
        lin = r.emit("add", [r.emit("mul", [xn, float(at.get("alpha", 0.2))]),
                             float(at.get("beta", 0.5))])
        y = r.emit("minimum", [r.emit("maximum", [lin, 0.0]), 1.0], out=out)
    else:  # Clip(x, min, max), bounds optional
        lo = args[1] if len(args) > 1 else None
        hi = args[2] if len(args) > 2 else None
        y = xn
        for bound, fn in ((lo, "maximum"), (hi, "minimum")):
            if bound is not None:  # a constant, or a scalar computed or fed at run time
                b = float(bound.const) if bound.const is not None else r.tensor(bound)
                y = r.emit(fn, [y, b])
        if y == xn:
            y = r.emit("add", [xn, 0.0])
        y = r.rename(y, out)
    return out_float(r, x.shape, y)



@handles("MatMul")
def _matmul(r: Reader, node, args, at):
    a, b = args
    shape = _matmul_shape(r, a.shape, b.shape)
    name = r.emit("matmul", [r.tensor(a), r.tensor(b)], out=node.output[0])
    return out_float(r, shape, name)


def _matmul_shape(r: Reader, sa: tuple, sb: tuple) -> tuple:
    from graphc.ops.linalg import _matmul_shape as shape_of

    try:
        return shape_of([tuple(sa), tuple(sb)], {})
    except ValueError as e:
        raise r.error(str(e)) from None


@handles("Gemm")
def _gemm(r: Reader, node, args, at):
    a, b = args[0], args[1]
    c = args[2] if len(args) > 2 else None
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    names, shapes = [], []
    for v, flag in ((a, at.get("transA", 0)), (b, at.get("transB", 0))):
        shapes.append(tuple(v.shape[::-1]) if flag else tuple(v.shape))
        if flag and r.single_use(v):  # stored transposed: graphc's [in, out] layout
            names.append(r.param(v, v.const.T))
        elif flag:
            names.append(r.emit("transpose", [r.tensor(v)], axes=[1, 0]))
        else:
            names.append(r.tensor(v))
    shape = (shapes[0][0], shapes[1][1])
    y = r.emit("matmul", names)
    if alpha != 1.0:
        y = r.emit("mul", [y, alpha])
    if c is not None and beta != 0.0:
        cn = r.tensor(c)
        if beta != 1.0:
            cn = r.emit("mul", [cn, beta])
        y = r.emit("add", [y, cn])
    return out_float(r, shape, r.rename(y, node.output[0]))


@handles("Softmax", "LogSoftmax")
def _softmax(r: Reader, node, args, at):
    x = args[0]
    axis = norm(at.get("axis", -1), len(x.shape))
    op = "softmax" if node.op_type == "Softmax" else "log_softmax"
    return out_float(r, x.shape, r.emit(op, [r.tensor(x)], out=node.output[0], axis=axis))


REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
          "ReduceSumSquare": "sum", "ReduceL1": "sum", "ReduceL2": "sum"}


@handles(*REDUCE)
def _reduce(r: Reader, node, args, at):
    x = args[0]
    op = node.op_type
    axes = ints(r, args[1], "axes") if len(args) > 1 and args[1] is not None \
        else at.get("axes")
    keep = bool(at.get("keepdims", 1))
    nd = len(x.shape)
    if not axes:
        if at.get("noop_with_empty_axes", 0):
            return x
        axes = list(range(nd))
    axes = sorted(norm(a, nd) for a in axes)
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
    if any(x.shape[a] == 0 for a in axes):  # nothing to reduce: the identity element
        empty = {"ReduceMax": -np.inf, "ReduceMin": np.inf, "ReduceMean": np.nan}.get(op, 0.0)
        if not all(isinstance(d, int) for d in shape):
            raise r.error(f"{op} over an empty axis with symbolic dims")
        return Value(shape, r.float, const=np.full(shape, empty, dtype=r.float))
    xn = r.tensor(x)
    if op == "ReduceSumSquare":
        xn = r.emit("square", [xn])
    elif op == "ReduceL1":
        xn = r.emit("abs", [xn])
    elif op == "ReduceL2":
        xn = r.emit("square", [xn])
    elif op == "ReduceMin":
        xn = r.emit("neg", [xn])
    y = r.emit(REDUCE[op] if op != "ReduceMin" else "max", [xn], axis=axes, keepdims=keep)
    if op == "ReduceMin":
        y = r.emit("neg", [y])
    elif op == "ReduceL2":
        y = r.emit("sqrt", [y])
    return out_float(r, shape, r.rename(y, node.output[0]))


@handles("BatchNormalization")
def _batchnorm(r: Reader, node, args, at):
    """Evaluation mode normalizes by the running statistics; training mode (opset 14 on)
    by the batch's (biased variance, as ONNX defines it), and its optional outputs 1 and 2
    are the running statistics moved by `momentum` (the weight of the old value)."""
    x, scale, bias, mean, var = args[:5]
    training = bool(at.get("training_mode", 0))
    extra = [o for o in node.output[1:] if o and o in r.needed]
    if extra and r.opset < 14:
        raise r.error("BatchNormalization's training outputs (mean, var, saved_mean, "
                      f"saved_var) of opset {r.opset}",
                      hint="export with opset 14 or later, where training_mode says it")
    eps = float(at.get("epsilon", 1e-5))
    nd = len(x.shape)
    shape = [-1] + [1] * (nd - 2)  # per channel, broadcast over the spatial axes

    def per_channel(v: Value, trainable: bool):
        """v as [C, 1, ...]; a trainable scale or shift stays a [C] param (PyTorch's shape)."""
        if v.const is not None and not (trainable and r.single_use(v)):
            arr = np.asarray(v.const, dtype=float).reshape(shape)
            return r.ref(Value(arr.shape, r.float, const=arr), v.init)
        return r.emit("reshape", [r.tensor(v)], shape=shape) if nd > 2 else r.tensor(v)

    xn = r.tensor(x)
    if training:  # the batch's statistics over every axis but the channels'
        axes = [0, *range(2, nd)]
        m = r.emit("mean", [xn], axis=axes, keepdims=True)
        centered = r.emit("sub", [xn, m])
        v = r.emit("mean", [r.emit("square", [centered])], axis=axes, keepdims=True)
    else:
        centered = r.emit("sub", [xn, per_channel(mean, False)])
        v = per_channel(var, False)
    std = r.emit("sqrt", [r.emit("add", [v, eps])])
    y = r.emit("mul", [r.emit("div", [centered, std]), per_channel(scale, True)])
    y = r.emit("add", [y, per_channel(bias, True)])
    outs = [out_float(r, x.shape, r.rename(y, node.output[0]))]
    if training and extra:
        momentum, channels = float(at.get("momentum", 0.9)), scale.shape[0]
        for k, (batch, running) in enumerate(((m, mean), (v, var)), start=1):
            if k >= len(node.output) or node.output[k] not in extra:
                outs.append(None)
                continue
            if running.const is not None and running.name is None:  # a constant, not a param
                old = r.ref(Value(running.shape, r.float,
                                  const=np.asarray(running.const, float)), running.init)
            else:
                old = r.tensor(running)
            new = r.emit("reshape", [batch], shape=[channels])
            moved = r.emit("add", [r.emit("mul", [old, momentum]),
                                   r.emit("mul", [new, 1.0 - momentum])])
            outs.append(out_float(r, (channels,), r.rename(moved, node.output[k])))
    return outs


@handles("SoftmaxCrossEntropyLoss")
def _cross_entropy(r: Reader, node, args, at):
    scores, labels = args[0], args[1]
    if len(args) > 2 and args[2] is not None or "ignore_index" in at:
        raise r.error("SoftmaxCrossEntropyLoss with weights or ignore_index")
    if len(scores.shape) != 2:
        raise r.error("SoftmaxCrossEntropyLoss over more than two axes")
    red = at.get("reduction", b"mean")
    red = red.decode() if isinstance(red, bytes) else red
    if red not in ("mean", "sum"):
        raise r.error(f"SoftmaxCrossEntropyLoss with reduction {red!r}",
                      hint="graphc's cross_entropy reduces by mean or sum")
    name = r.emit("cross_entropy", [r.tensor(scores), r.tensor(labels)], out=node.output[0],
                  reduction=red)
    return out_float(r, () if red != "none" else scores.shape[:1], name)


