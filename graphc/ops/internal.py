"""Ops that passes create and specs cannot name: gradient accumulation at forks,
sum-back-to-shape for broadcast operands, and helpers of gradient rules."""

import numpy as np

from graphc.errors import InputError
from graphc.ir import Shape, format_shape
from graphc.ops.registry import Attr, Op, elementwise, register


def _internal(**kw) -> Op:
    return register(Op(internal=True, family="internal", **kw))


def _accumulate_shape(shapes: list[Shape], attrs: dict) -> Shape:
    if any(s != shapes[0] for s in shapes):
        raise ValueError("accumulated gradients differ in shape: "
                         + ", ".join(map(format_shape, shapes)))
    return shapes[0]


_internal(name="accumulate", inputs=("x*",), symbol="Σ", kind="elementwise",
          formula="y = x0 + x1 + ... (the sum of gradients at a fork)",
          shape=_accumulate_shape, ref=lambda *xs, n: sum(xs[1:], xs[0]),
          expr=lambda a: " + ".join(f"x{i}" for i in range(a["n"])),
          attrs={"n": Attr("int", doc="number of inputs")})


def _sum_to_shape(shapes, a):
    (s,) = shapes
    return tuple(1 if i in a["axes"] else d for i, d in enumerate(s[a["lead"]:]))


def _sum_to(x, lead, axes):
    y = x.sum(axis=tuple(range(lead)) + tuple(lead + i for i in axes), keepdims=True)
    return y.reshape(y.shape[lead:])


_internal(name="sum_to", inputs=("x",), symbol="Σ→shape", kind="reduce",
          formula="sum a broadcast gradient back to its operand's shape",
          shape=_sum_to_shape, ref=_sum_to,
          kernel={"init": "0.0", "step": "acc + x", "final": "acc",
                  "axes": lambda a, ndim: (*range(a["lead"]), *(a["lead"] + i for i in a["axes"]))},
          attrs={"lead": Attr("int", doc="leading axes to sum away"),
                 "axes": Attr("axes", doc="axes (after the leading ones) summed, kept as 1")})

def _broadcast_index(idx, src, dst, a):
    """Index of x (shape src) read by output index idx (shape dst), NumPy broadcasting."""
    lead = len(dst) - len(src)
    return ["0" if d == 1 and dst[lead + k] != 1 else idx[lead + k] for k, d in enumerate(src)]


_internal(name="expand", inputs=("x", "like"), symbol="expand", kind="shape",
          formula="y = x broadcast to the shape of `like`",
          shape=lambda s, a: s[1], ref=lambda x, like: np.broadcast_to(x, like.shape),
          kernel={"index": _broadcast_index})


def _expand_dims_axes(a, ndim):
    axes = [a["axes"]] if isinstance(a["axes"], int) else a["axes"]
    return {i % ndim for i in axes}


def _expand_dims_shape(shapes, a):
    out = list(shapes[0])
    axes = (a["axes"],) if isinstance(a["axes"], int) else a["axes"]
    n = len(out) + len(axes)
    for ax in sorted(i % n for i in axes):
        out.insert(ax, 1)
    return tuple(out)


_internal(name="expand_dims", inputs=("x",), symbol="expand_dims", kind="shape",
          formula="insert axes of length 1", shape=_expand_dims_shape,
          ref=lambda x, axes: np.expand_dims(x, axes), attrs={"axes": Attr("axes")},
          kernel={"index": lambda idx, src, dst, a: [
              i for k, i in enumerate(idx) if k not in _expand_dims_axes(a, len(dst))]})
_internal(name="reshape_like", inputs=("x", "like"), symbol="reshape", kind="shape",
          formula="y = x reshaped to the shape of `like`",
          shape=lambda s, a: s[1], ref=lambda x, like: x.reshape(like.shape),
          kernel={"reshape": True})
_internal(name="zeros_like", inputs=("x",), symbol="0", kind="shape",
          formula="y = 0 with the shape of x", shape=lambda s, a: s[0], ref=np.zeros_like,
          kernel={"expr": "0.0"})


def _size(x, axes):
    axes = range(x.ndim) if axes is None else axes
    return np.asarray(float(np.prod([x.shape[i] for i in axes])))


_internal(name="size", inputs=("x",), symbol="#", kind="shape",
          formula="y = number of elements of x along `axes` (all when null)",
          shape=lambda s, a: (), ref=_size, attrs={"axes": Attr("axes", None)},
          kernel={"count": lambda a, ndim: range(ndim) if a["axes"] is None else a["axes"]})


def _one_hot(labels, classes):
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        bad = labels[(labels < 0) | (labels >= classes)].flat[0]
        raise InputError(f"label {int(bad)} is out of range: labels must lie in "
                         f"0..{classes - 1} for {classes} classes")
    return np.eye(classes)[labels]


_internal(name="one_hot", inputs=("labels",), symbol="one-hot", kind="custom",
          formula="y[..., k] = 1 if labels == k else 0", int_inputs=(0,),
          shape=lambda s, a: (*s[0], a["classes"]), ref=_one_hot,
          attrs={"classes": Attr("int")},
          kernel={"index": lambda idx, src, dst, a: idx[:-1],  # labels[i..., k]: k is last
                  "expr": "where(labels == k, 1.0, 0.0)", "axis_names": {"k": -1},
                  "check": "labels >= 0 and labels < classes"})


def _slice_shape(shapes, a):
    out = list(shapes[0])
    out[a["axis"]] = a["stop"] - a["start"]
    return tuple(out)


_internal(name="slice", inputs=("x",), symbol="slice", kind="shape",
          formula="y = x[start:stop] along `axis`", shape=_slice_shape,
          ref=lambda x, axis, start, stop: np.take(x, np.arange(start, stop), axis=axis),
          attrs={"axis": Attr("axis"), "start": Attr("int"), "stop": Attr("int")},
          kernel={"index": lambda idx, src, dst, a: [
              f"{i} + {a['start']}" if k == a["axis"] % len(src) and a["start"] else i
              for k, i in enumerate(idx)]})

elementwise("eq", ("a", "b"), "where(a == b, 1.0, 0.0)", family="internal", symbol="==",
            formula="y = 1 where a == b else 0", internal=True)
