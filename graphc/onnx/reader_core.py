"""What every ONNX operator handler shares: the Value flowing through an import, the
errors for what graphc cannot express, small shape helpers and the handler table that
reader_math, reader_shape, reader_ml and reader_conv fill."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from graphc.errors import SpecError

if TYPE_CHECKING:
    from graphc.onnx.reader import Reader

FLOAT_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}
INT_TYPES = {onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32"}


@dataclass
class Value:
    """A tensor flowing through the import: a graphc value (`name`), or a constant
    known at import time (`const`; an object array when it holds symbolic dims)."""

    shape: tuple | None
    dtype: str
    name: str | None = None
    const: np.ndarray | None = None
    init: str | None = None  # the initializer it came from

    def __post_init__(self):
        if self.shape is None:
            self.shape = tuple(np.shape(self.const))


class Unsupported(SpecError):
    """An ONNX operator, attribute or type graphc cannot express."""


class NeedsConstant(Unsupported):
    """A shape or axes operand computed at run time: graphc's graphs are static."""



def dtype_name(dt: np.dtype) -> str:
    return str(dt) if str(dt) in ("float32", "float64", "int32", "int64") else str(dt)


def type_name(elem: int) -> str:
    return onnx.TensorProto.DataType.Name(elem).lower()


def norm(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


def out_float(r: Reader, shape: tuple, name: str) -> Value:
    return Value(tuple(shape), r.float, name=name)


def bshape(*shapes: tuple) -> tuple:
    from graphc.ir import broadcast_shapes

    return broadcast_shapes(*shapes)


def const(arr: Any, dtype: str | None = None) -> Value:
    a = np.asarray(arr)
    if a.dtype != object and dtype:
        a = a.astype(dtype)
    return Value(a.shape, dtype or dtype_name(a.dtype), const=a)


def consts(args: list[Value | None]) -> bool:
    return all(a is None or a.const is not None for a in args)


def ints(r: Reader, v: Value | None, what: str) -> list[int] | None:
    if v is None:
        return None
    if v.const is None:
        raise NeedsConstant(f"{what} must be known when the model is read, not computed at "
                            "run time", place=f"ONNX node {r.node_label!r}", source=r.source,
                            hint="make it an initializer or a Constant")
    return [int(x) if not isinstance(x, str) else x for x in np.asarray(v.const).ravel()]


# -- handlers: (reader, node, input Values, attributes) -> output Value(s) ------------
Handler = Callable[[Any, Any, list, dict], Any]  # (reader, node, input Values, attrs)
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(*op_types: str, domain: str = ""):
    def deco(fn):
        for t in op_types:
            HANDLERS[(domain, t)] = fn
        return fn
    return deco

