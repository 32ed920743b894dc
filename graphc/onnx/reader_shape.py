"""ONNX's shape and data-movement operators: Reshape, Flatten, (Un)squeeze, Transpose,
Concat, and the shape arithmetic exporters emit (Shape, Gather, Slice, Cast, Constant,
ConstantOfShape), folded at import when every operand is known."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphc.onnx.reader_core import (
    FLOAT_TYPES,
    Value,
    bshape,
    const,
    consts,
    handles,
    ints,
    norm,
    out_float,
    type_name,
)

if TYPE_CHECKING:
    from graphc.onnx.reader import Reader


@handles("Identity", "Dropout")
def _identity(r: Reader, node, args, at):
    x = args[0]
    if node.op_type == "Dropout" and len(args) > 2 and args[2] is not None:
        if args[2].const is None or bool(args[2].const):
            raise r.error("Dropout in training mode", hint="graphc reads dropout in "
                          "evaluation mode (an identity); export the model in eval mode")
    return [x, None]


@handles("Constant")
def _constant(r: Reader, node, args, at):
    (key, value), = at.items()
    if key == "value":
        return const(numpy_helper.to_array(value))
    if key in ("value_float", "value_int"):
        return const(np.asarray(value), "float32" if key == "value_float" else "int64")
    if key in ("value_floats", "value_ints"):
        return const(np.asarray(value), "float32" if key == "value_floats" else "int64")
    raise r.error(f"Constant with {key} is not supported")


@handles("Shape")
def _shape(r: Reader, node, args, at):
    shape = list(args[0].shape)
    lo, hi = at.get("start", 0), at.get("end", len(shape))
    part = shape[lo:hi]
    if any(isinstance(d, str) for d in part):
        return Value((len(part),), "int64", const=np.asarray(part, dtype=object))
    return const(np.asarray(part, dtype=np.int64), "int64")


@handles("Cast", "CastLike")
def _cast(r: Reader, node, args, at):
    x = args[0]
    to = at.get("to") if node.op_type == "Cast" else \
        onnx.helper.np_dtype_to_tensor_dtype(args[1].const.dtype if args[1].const is not None
                                             else np.dtype(args[1].dtype))
    if x.const is not None:
        if x.const.dtype == object:
            return x
        return const(x.const.astype(helper.tensor_dtype_to_np_dtype(to)))
    if to in FLOAT_TYPES and x.dtype in FLOAT_TYPES.values():
        return x  # graphc computes every float in one compile dtype
    raise r.error(f"Cast of a computed value to {type_name(to)}")


@handles("Gather")
def _gather(r: Reader, node, args, at):
    data, idx = args
    if data.const is None or idx.const is None:
        raise r.error("Gather of a computed value (graphc folds Gather on shapes only)")
    return Value(None, data.dtype, const=np.take(data.const, idx.const, axis=at.get("axis", 0)))


@handles("Unsqueeze", "Squeeze")
def _squeeze(r: Reader, node, args, at):
    x = args[0]
    axes = ints(r, args[1], "axes") if len(args) > 1 and args[1] is not None else at.get("axes")
    nd = len(x.shape) + (len(axes) if node.op_type == "Unsqueeze" else 0)
    if node.op_type == "Unsqueeze":
        shape = list(x.shape)
        for a in sorted(norm(a, nd) for a in axes):
            shape.insert(a, 1)
    else:
        drop = {norm(a, nd) for a in axes} if axes else \
            {i for i, d in enumerate(x.shape) if d == 1}
        shape = [d for i, d in enumerate(x.shape) if i not in drop]
    if x.const is not None:
        return Value(tuple(shape), x.dtype, const=np.asarray(x.const).reshape(
            [d if not isinstance(d, str) else -1 for d in shape]))
    return _reshape_to(r, x, shape, node.output[0])


def _reshape_to(r: Reader, x: Value, shape: list, out: str) -> Value:
    target = [d if isinstance(d, int) else -1 for d in shape]
    if target.count(-1) > 1:
        raise r.error(f"reshape to {shape}: graphc infers at most one symbolic dim")
    name = r.emit("reshape", [r.tensor(x)], out=out, shape=target)
    return out_float(r, tuple(shape), name)


@handles("Reshape")
def _reshape(r: Reader, node, args, at):
    x, shape_v = args
    target = ints(r, shape_v, "Reshape's shape")
    shape = []
    for i, d in enumerate(target):
        if d == 0 and not at.get("allowzero", 0):
            d = x.shape[i]
        shape.append(d)
    if x.const is not None:
        return const(np.asarray(x.const).reshape([d if isinstance(d, int) else -1
                                                  for d in shape]), x.dtype)
    known = [d for d in shape if isinstance(d, int) and d != -1]
    if -1 in shape:  # infer it, symbolically if need be
        sym = [d for d in x.shape if isinstance(d, str)]
        fixed = math.prod(d for d in x.shape if isinstance(d, int))
        rest = fixed // max(math.prod(known), 1)
        shape[shape.index(-1)] = sym[0] if sym and rest == 1 and len(sym) == 1 else \
            (rest if not sym else -1)
    return _reshape_to(r, x, shape, node.output[0])


@handles("Flatten")
def _flatten(r: Reader, node, args, at):
    x = args[0]
    axis = norm(at.get("axis", 1), len(x.shape))
    head, tail = x.shape[:axis], x.shape[axis:]
    def size(ds):
        syms = [d for d in ds if isinstance(d, str)]
        if not syms:
            return math.prod(ds)
        if len(syms) == 1 and math.prod(d for d in ds if isinstance(d, int)) == 1:
            return syms[0]
        raise r.error("Flatten over symbolic dims graphc cannot name")
    return _reshape_to(r, x, [size(head), size(tail)], node.output[0])


@handles("Transpose")
def _transpose(r: Reader, node, args, at):
    x = args[0]
    perm = list(at.get("perm", reversed(range(len(x.shape)))))
    if x.const is not None:
        return const(np.transpose(x.const, perm), x.dtype)
    name = r.emit("transpose", [r.tensor(x)], out=node.output[0], axes=perm)
    return out_float(r, tuple(x.shape[p] for p in perm), name)


@handles("Concat")
def _concat(r: Reader, node, args, at):
    axis = at["axis"]
    if consts(args):
        parts = [np.atleast_1d(a.const) for a in args]
        obj = any(p.dtype == object for p in parts)
        out = np.concatenate([p.astype(object) if obj else p for p in parts], axis=axis)
        return Value(out.shape, args[0].dtype, const=out)
    nd = len(args[0].shape)
    ax = norm(axis, nd)
    shape = list(args[0].shape)
    sizes = [a.shape[ax] for a in args]
    shape[ax] = sum(sizes) if all(isinstance(s, int) for s in sizes) else "?"
    name = r.emit("concat", [r.tensor(a) for a in args], out=node.output[0], axis=ax)
    return out_float(r, tuple(shape), name)


@handles("Slice")
def _slice(r: Reader, node, args, at):
    x = args[0]
    if not consts(args):
        raise r.error("Slice of a computed value (graphc folds Slice on shapes only)")
    starts, ends = ints(r, args[1], "starts"), ints(r, args[2], "ends")
    axes = ints(r, args[3], "axes") if len(args) > 3 and args[3] is not None \
        else list(range(len(starts)))
    steps = ints(r, args[4], "steps") if len(args) > 4 and args[4] is not None \
        else [1] * len(starts)
    idx = [slice(None)] * x.const.ndim
    for s, e, a, k in zip(starts, ends, axes, steps):
        idx[a] = slice(s, e, k)
    return Value(None, x.dtype, const=x.const[tuple(idx)])


@handles("ConstantOfShape")
def _constant_of_shape(r: Reader, node, args, at):
    shape = ints(r, args[0], "ConstantOfShape's shape")
    value = numpy_helper.to_array(at["value"]) if "value" in at else np.zeros(1, np.float32)
    return const(np.full(shape, value.ravel()[0], dtype=value.dtype))




@handles("Expand")
def _expand(r: Reader, node, args, at):
    """x broadcast to a known shape: x + zeros (graphc broadcasts in its elementwise ops)."""
    x = args[0]
    target = ints(r, args[1], "Expand's shape")
    if x.const is not None and x.const.dtype != object:
        return const(x.const * np.ones(target, dtype=x.const.dtype), x.dtype)
    if any(isinstance(d, str) for d in target):
        raise r.error("Expand to a shape with symbolic dims")
    shape = bshape(tuple(x.shape), tuple(target))
    if tuple(shape) == tuple(x.shape):
        return x
    zeros = r.ref(Value(tuple(shape), r.float, const=np.zeros(shape)), f"{r.node_label}/zeros")
    return out_float(r, shape, r.emit("add", [r.tensor(x), zeros], out=node.output[0]))


BOOLEAN = ("Less", "LessOrEqual", "Greater", "GreaterOrEqual", "Equal", "Not", "And", "Or",
           "Xor", "Where", "IsNaN", "IsInf")


@handles(*BOOLEAN)
def _boolean(r: Reader, node, args, at):
    raise r.error(f"graphc has no bool tensors, which {node.op_type} "
                  + ("selects by" if node.op_type == "Where" else "computes"),
                  hint="graphc computes in float32/float64 with int32/int64 labels")
