"""ONNX -> graphc spec: each ONNX node becomes graphc nodes, initializers become params
with their values, and the shape arithmetic exporters emit (Shape, Gather, Concat, ...)
is folded away at import, so the graph graphc sees is the model's real computation."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphc.errors import SpecError
from graphc.onnx import reader_conv

OPSETS = (13, 28)  # the default-domain opsets read (older models are converted up)
FLOAT_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64"}
INT_TYPES = {onnx.TensorProto.INT64: "int64", onnx.TensorProto.INT32: "int32"}
SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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


class Reader:
    def __init__(self, model: onnx.ModelProto, source: str | None,
                 known: dict[str, np.ndarray] | None = None,
                 outputs: list[str] | None = None):
        self.model, self.source, self.known = model, source, known or {}
        self.outputs = outputs
        self.inputs: dict[str, dict] = {}
        self.params: dict[str, dict] = {}
        self.nodes: list[dict] = []
        self.values: dict[str, Value] = {}
        self.used: set[str] = set()
        self.node_label = ""
        self.float = "float32"

    # -- emitting graphc nodes ------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}/{k}", k + 1
        self.used.add(name)
        return name

    def emit(self, op: str, args: list, out: str | None = None, **attrs) -> str:
        """A graphc node `op(args)`; args are graphc names or Python numbers."""
        node_id = self.fresh(out or f"{self.node_label}/{op}")
        node = {"id": node_id, "op": op, "inputs": list(args)}
        if attrs:
            node["attrs"] = attrs
        self.nodes.append(node)
        return node_id

    def ref(self, v: Value, name: str | None = None) -> str | float:
        """A graphc name (or a number) for v; constants become an input with its value."""
        if v.name is not None:
            return v.name
        c = v.const
        if c.dtype == object:
            raise self.error("a shape computed from symbolic dims feeds the computation")
        if c.ndim == 0 and v.dtype not in INT_TYPES.values():
            return float(c)
        name = self.fresh(name or v.init or f"{self.node_label}/const")
        entry = {"shape": list(c.shape), "value": c.tolist(),
                 "doc": "a constant of the ONNX model"}
        if v.dtype in INT_TYPES.values():
            entry["dtype"] = v.dtype
        self.inputs[name] = entry
        v.name = name
        return name

    def error(self, message: str, hint: str | None = None) -> SpecError:
        return Unsupported(message, place=f"ONNX node {self.node_label!r}", hint=hint,
                           source=self.source)

    # -- the graph -----------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        g = self.model.graph
        inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        inits.update(self.known)  # inputs whose values are fixed (ONNX backend tests)
        floats = [a.dtype for a in inits.values() if a.dtype.kind == "f"]
        for vi in g.input:
            t = vi.type.tensor_type
            if vi.name not in inits and t.elem_type == onnx.TensorProto.DOUBLE:
                floats.append(np.dtype("float64"))
        self.float = "float64" if any(d == np.float64 for d in floats) else "float32"
        for vi in g.input:
            if vi.name in inits:
                continue
            self.node_label = vi.name
            shape, dtype = self.value_info(vi)
            entry: dict[str, Any] = {"shape": list(shape)}
            if dtype in INT_TYPES.values():
                entry["dtype"] = dtype
            self.used.add(vi.name)
            self.inputs[vi.name] = entry
            self.values[vi.name] = Value(shape, dtype, name=vi.name)
        uses = _uses(g)
        for name, arr in inits.items():
            self.values[name] = Value(arr.shape, _dtype_name(arr.dtype), const=arr, init=name)
        self.uses = uses
        wanted = [o for o in g.output if self.outputs is None or o.name in self.outputs]
        missing = sorted(set(self.outputs or ()) - {o.name for o in g.output})
        if missing:
            raise SpecError(f"the model has no output {missing[0]!r}", source=self.source,
                            hint="its outputs: " + ", ".join(o.name for o in g.output))
        needed = _needed(g, [o.name for o in wanted])
        for node in g.node:
            if not any(o in needed for o in node.output):
                continue  # computes only outputs that were not asked for
            self.node_label = node.name or (node.output[0] if node.output else node.op_type)
            handler = HANDLERS.get((node.domain or "", node.op_type))
            if handler is None:
                others = [o.name for o in g.output if o.name not in node.output
                          and not (set(node.output) & _needed(g, [o.name]))]
                hint = f"load only the outputs graphc can compute, e.g. outputs={others}" \
                    if others else "the operators graphc reads are listed in docs/onnx.md"
                raise self.error(f"graphc cannot express the ONNX operator {node.op_type}"
                                 + (f" (domain {node.domain})" if node.domain else ""),
                                 hint=hint)
            args = [self.values[i] if i else None for i in node.input]
            outs = handler(self, node, args, _attrs(node))
            outs = outs if isinstance(outs, list) else [outs]
            for name, v in zip(node.output, outs):
                if name and v is not None:
                    self.values[name] = v
            for name, v in zip(node.output, outs + [None] * len(node.output)):
                if name and v is None and name in needed:
                    raise self.error(f"{node.op_type}'s output {name!r} is not supported")
        outputs = []
        for vi in wanted:
            self.node_label = vi.name
            v = self.values[vi.name]
            name = self.ref(v) if v.name is None else v.name
            if name in self.inputs or name in self.params or not isinstance(name, str):
                name = self.emit("add", [name, 0.0], out=vi.name)  # an output is a node
            outputs.append(self.rename(name, vi.name))
        spec: dict[str, Any] = {"graphc": 1, "name": g.name or "onnx_model",
                                "inputs": self.inputs, "nodes": self.nodes, "outputs": outputs}
        if g.doc_string:
            spec["doc"] = g.doc_string.strip().splitlines()[0]
        if self.params:
            spec["params"] = self.params
        return spec

    def rename(self, name: str, want: str) -> str:
        """Keep the ONNX output's name: the node computing it gets that id if it is free."""
        if name == want:
            return name
        node = next((n for n in self.nodes if n["id"] == name), None)
        if node is None or want in self.used:
            return name
        self.used.add(want)
        node["id"] = want
        for n in self.nodes:
            n["inputs"] = [want if a == name else a for a in n["inputs"]]
        for v in self.values.values():
            if v.name == name:
                v.name = want
        return want

    def value_info(self, vi) -> tuple[tuple, str]:
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise self.error("graphc inputs are tensors, not sequences or maps")
        dtype = FLOAT_TYPES.get(t.elem_type) or INT_TYPES.get(t.elem_type)
        if dtype is None:
            raise self.error(f"graphc has no {_type_name(t.elem_type)} tensors",
                             hint="graphc computes in float32/float64 with int32/int64 labels")
        if not t.HasField("shape"):
            raise self.error(f"input {vi.name!r} has no shape")
        dims = []
        for k, d in enumerate(t.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                p = d.dim_param if SYMBOL.match(d.dim_param or "") else f"d{k}"
                dims.append(p)
        return tuple(dims), dtype

    def param(self, v: Value, values: np.ndarray | None = None) -> str:
        """A float initializer as a trainable graphc param (its values, its name)."""
        arr = v.const if values is None else values
        v.name = self.fresh(v.init)
        v.shape = arr.shape
        self.params[v.name] = {"shape": list(arr.shape), "init": arr.astype(float).tolist()}
        return v.name

    def tensor(self, v: Value | None) -> str | float:
        """A graphc name for an operand: float initializers become params."""
        if v is None:
            raise self.error("a required input is missing")
        if v.name is None and v.init and v.const.dtype.kind == "f" and v.const.ndim > 0:
            return self.param(v)
        return self.ref(v)

    def single_use(self, v: Value) -> bool:
        """An initializer only this node reads, so it may be stored transformed."""
        return bool(v.init) and v.name is None and v.const.dtype.kind == "f" \
            and self.uses.get(v.init, 0) == 1


# -- helpers ---------------------------------------------------------------------------
def _needed(g, outputs: list[str]) -> set[str]:
    """The values the given outputs depend on."""
    producer = {o: n for n in g.node for o in n.output}
    need, todo = set(), list(outputs)
    while todo:
        v = todo.pop()
        if v in need:
            continue
        need.add(v)
        if v in producer:
            todo.extend(i for i in producer[v].input if i)
    return need


def _uses(g) -> dict[str, int]:
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    for o in g.output:
        uses[o.name] = uses.get(o.name, 0) + 1
    return uses


def _attrs(node) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _dtype_name(dt: np.dtype) -> str:
    return str(dt) if str(dt) in ("float32", "float64", "int32", "int64") else str(dt)


def _type_name(elem: int) -> str:
    return onnx.TensorProto.DataType.Name(elem).lower()


def _norm(axis: int, ndim: int) -> int:
    return axis + ndim if axis < 0 else axis


def _out_float(r: Reader, shape: tuple, name: str) -> Value:
    return Value(tuple(shape), r.float, name=name)


def _bshape(*shapes: tuple) -> tuple:
    from graphc.ir import broadcast_shapes

    return broadcast_shapes(*shapes)


def _const(arr: Any, dtype: str | None = None) -> Value:
    a = np.asarray(arr)
    if a.dtype != object and dtype:
        a = a.astype(dtype)
    return Value(a.shape, dtype or _dtype_name(a.dtype), const=a)


def _consts(args: list[Value | None]) -> bool:
    return all(a is None or a.const is not None for a in args)


def _ints(r: Reader, v: Value | None, what: str) -> list[int] | None:
    if v is None:
        return None
    if v.const is None:
        raise NeedsConstant(f"{what} must be known when the model is read, not computed at "
                            "run time", place=f"ONNX node {r.node_label!r}", source=r.source,
                            hint="make it an initializer or a Constant")
    return [int(x) if not isinstance(x, str) else x for x in np.asarray(v.const).ravel()]


# -- handlers: (reader, node, input Values, attributes) -> output Value(s) ------------
Handler = Callable[[Reader, Any, list, dict], Any]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(*op_types: str, domain: str = ""):
    def deco(fn):
        for t in op_types:
            HANDLERS[(domain, t)] = fn
        return fn
    return deco


NUMPY_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
                "Pow": np.power, "Max": np.maximum, "Min": np.minimum}
GRAPHC_BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "Pow": "pow",
                 "Max": "maximum", "Min": "minimum", "Sum": "add"}


@handles("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean")
def _binary(r: Reader, node, args, at):
    op = node.op_type
    if _consts(args):  # shape arithmetic, folded
        fn = NUMPY_BINARY.get(op, np.add)
        out = args[0].const
        for a in args[1:]:
            if op == "Div" and out.dtype.kind in "iu":
                out = out // a.const
            else:
                out = fn(out, a.const)
        if op == "Mean":
            out = out / len(args)
        return _const(out, args[0].dtype if out.dtype.kind != "f" else None)
    if any(a.const is None and a.dtype in INT_TYPES.values() for a in args):
        raise r.error(f"{op} of integer tensors",
                      hint="graphc computes in floats; integer tensors are class labels")
    names = [r.tensor(a) for a in args]
    shape = _bshape(*(a.shape for a in args))
    acc = names[0]
    for k, b in enumerate(names[1:]):
        last = k == len(names) - 2 and op != "Mean"
        acc = r.emit(GRAPHC_BINARY.get(op, "add"), [acc, b],
                     out=node.output[0] if last else None)
    if len(names) == 1:
        acc = r.emit("add", [acc, 0.0], out=node.output[0])
    if op == "Mean":
        acc = r.emit("div", [acc, float(len(names))], out=node.output[0])
    return _out_float(r, shape, acc)


UNARY = {"Neg": "neg", "Exp": "exp", "Log": "log", "Sqrt": "sqrt", "Abs": "abs",
         "Reciprocal": "reciprocal", "Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh",
         "Softplus": "softplus", "Mish": "mish"}


@handles(*UNARY)
def _unary(r: Reader, node, args, at):
    (x,) = args
    if x.const is not None and node.op_type in ("Neg", "Abs"):
        return _const(-x.const if node.op_type == "Neg" else np.abs(x.const), x.dtype)
    return _out_float(r, x.shape, r.emit(UNARY[node.op_type], [r.tensor(x)], out=node.output[0]))


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
            if bound is not None:
                if bound.const is None:
                    raise r.error("Clip's bounds must be constants")
                y = r.emit(fn, [y, float(bound.const)])
        if y == xn:
            y = r.emit("add", [xn, 0.0])
        y = r.rename(y, out)
    return _out_float(r, x.shape, y)


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
        return _const(numpy_helper.to_array(value))
    if key in ("value_float", "value_int"):
        return _const(np.asarray(value), "float32" if key == "value_float" else "int64")
    if key in ("value_floats", "value_ints"):
        return _const(np.asarray(value), "float32" if key == "value_floats" else "int64")
    raise r.error(f"Constant with {key} is not supported")


@handles("Shape")
def _shape(r: Reader, node, args, at):
    shape = list(args[0].shape)
    lo, hi = at.get("start", 0), at.get("end", len(shape))
    part = shape[lo:hi]
    if any(isinstance(d, str) for d in part):
        return Value((len(part),), "int64", const=np.asarray(part, dtype=object))
    return _const(np.asarray(part, dtype=np.int64), "int64")


@handles("Cast", "CastLike")
def _cast(r: Reader, node, args, at):
    x = args[0]
    to = at.get("to") if node.op_type == "Cast" else \
        onnx.helper.np_dtype_to_tensor_dtype(args[1].const.dtype if args[1].const is not None
                                             else np.dtype(args[1].dtype))
    if x.const is not None:
        if x.const.dtype == object:
            return x
        return _const(x.const.astype(helper.tensor_dtype_to_np_dtype(to)))
    if to in FLOAT_TYPES and x.dtype in FLOAT_TYPES.values():
        return x  # graphc computes every float in one compile dtype
    raise r.error(f"Cast of a computed value to {_type_name(to)}")


@handles("Gather")
def _gather(r: Reader, node, args, at):
    data, idx = args
    if data.const is None or idx.const is None:
        raise r.error("Gather of a computed value (graphc folds Gather on shapes only)")
    return Value(None, data.dtype, const=np.take(data.const, idx.const, axis=at.get("axis", 0)))


@handles("Unsqueeze", "Squeeze")
def _squeeze(r: Reader, node, args, at):
    x = args[0]
    axes = _ints(r, args[1], "axes") if len(args) > 1 and args[1] is not None else at.get("axes")
    nd = len(x.shape) + (len(axes) if node.op_type == "Unsqueeze" else 0)
    if node.op_type == "Unsqueeze":
        shape = list(x.shape)
        for a in sorted(_norm(a, nd) for a in axes):
            shape.insert(a, 1)
    else:
        drop = {_norm(a, nd) for a in axes} if axes else \
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
    return _out_float(r, tuple(shape), name)


@handles("Reshape")
def _reshape(r: Reader, node, args, at):
    x, shape_v = args
    target = _ints(r, shape_v, "Reshape's shape")
    shape = []
    for i, d in enumerate(target):
        if d == 0 and not at.get("allowzero", 0):
            d = x.shape[i]
        shape.append(d)
    if x.const is not None:
        return _const(np.asarray(x.const).reshape([d if isinstance(d, int) else -1
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
    axis = _norm(at.get("axis", 1), len(x.shape))
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
        return _const(np.transpose(x.const, perm), x.dtype)
    name = r.emit("transpose", [r.tensor(x)], out=node.output[0], axes=perm)
    return _out_float(r, tuple(x.shape[p] for p in perm), name)


@handles("Concat")
def _concat(r: Reader, node, args, at):
    axis = at["axis"]
    if _consts(args):
        parts = [np.atleast_1d(a.const) for a in args]
        obj = any(p.dtype == object for p in parts)
        out = np.concatenate([p.astype(object) if obj else p for p in parts], axis=axis)
        return Value(out.shape, args[0].dtype, const=out)
    nd = len(args[0].shape)
    ax = _norm(axis, nd)
    shape = list(args[0].shape)
    sizes = [a.shape[ax] for a in args]
    shape[ax] = sum(sizes) if all(isinstance(s, int) for s in sizes) else "?"
    name = r.emit("concat", [r.tensor(a) for a in args], out=node.output[0], axis=ax)
    return _out_float(r, tuple(shape), name)


@handles("Slice")
def _slice(r: Reader, node, args, at):
    x = args[0]
    if not _consts(args):
        raise r.error("Slice of a computed value (graphc folds Slice on shapes only)")
    starts, ends = _ints(r, args[1], "starts"), _ints(r, args[2], "ends")
    axes = _ints(r, args[3], "axes") if len(args) > 3 and args[3] is not None \
        else list(range(len(starts)))
    steps = _ints(r, args[4], "steps") if len(args) > 4 and args[4] is not None \
        else [1] * len(starts)
    idx = [slice(None)] * x.const.ndim
    for s, e, a, k in zip(starts, ends, axes, steps):
        idx[a] = slice(s, e, k)
    return Value(None, x.dtype, const=x.const[tuple(idx)])


@handles("ConstantOfShape")
def _constant_of_shape(r: Reader, node, args, at):
    shape = _ints(r, args[0], "ConstantOfShape's shape")
    value = numpy_helper.to_array(at["value"]) if "value" in at else np.zeros(1, np.float32)
    return _const(np.full(shape, value.ravel()[0], dtype=value.dtype))


@handles("MatMul")
def _matmul(r: Reader, node, args, at):
    a, b = args
    shape = _matmul_shape(r, a.shape, b.shape)
    name = r.emit("matmul", [r.tensor(a), r.tensor(b)], out=node.output[0])
    return _out_float(r, shape, name)


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
    return _out_float(r, shape, r.rename(y, node.output[0]))


@handles("Softmax", "LogSoftmax")
def _softmax(r: Reader, node, args, at):
    x = args[0]
    axis = _norm(at.get("axis", -1), len(x.shape))
    op = "softmax" if node.op_type == "Softmax" else "log_softmax"
    return _out_float(r, x.shape, r.emit(op, [r.tensor(x)], out=node.output[0], axis=axis))


REDUCE = {"ReduceSum": "sum", "ReduceMean": "mean", "ReduceMax": "max", "ReduceMin": "min",
          "ReduceSumSquare": "sum", "ReduceL1": "sum", "ReduceL2": "sum"}


@handles(*REDUCE)
def _reduce(r: Reader, node, args, at):
    x = args[0]
    op = node.op_type
    axes = _ints(r, args[1], "axes") if len(args) > 1 and args[1] is not None \
        else at.get("axes")
    keep = bool(at.get("keepdims", 1))
    nd = len(x.shape)
    if not axes:
        if at.get("noop_with_empty_axes", 0):
            return x
        axes = list(range(nd))
    axes = sorted(_norm(a, nd) for a in axes)
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
    return _out_float(r, shape, r.rename(y, node.output[0]))


@handles("BatchNormalization")
def _batch_norm(r: Reader, node, args, at):
    x, scale, bias, mean, var = args[:5]
    if at.get("training_mode", 0):
        raise r.error("BatchNormalization in training mode",
                      hint="export the model in evaluation mode (model.eval())")
    eps = float(at.get("epsilon", 1e-5))
    nd = len(x.shape)
    shape = [-1] + [1] * (nd - 2)  # per channel, broadcast over the spatial axes

    def per_channel(v: Value, trainable: bool):
        if v.const is not None:
            arr = np.asarray(v.const, dtype=float).reshape(shape)
            if trainable and r.single_use(v):
                return r.param(v, arr)
            return r.ref(Value(arr.shape, r.float, const=arr), v.init)
        return r.emit("reshape", [r.tensor(v)], shape=shape) if nd > 2 else r.tensor(v)

    centered = r.emit("sub", [r.tensor(x), per_channel(mean, False)])
    std = r.emit("sqrt", [r.emit("add", [per_channel(var, False), eps])])
    y = r.emit("mul", [r.emit("div", [centered, std]), per_channel(scale, True)])
    y = r.emit("add", [y, per_channel(bias, True)])
    return [_out_float(r, x.shape, r.rename(y, node.output[0]))]


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
    return _out_float(r, () if red != "none" else scores.shape[:1], name)


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
    value = _out_float(r, (x.shape[0], coef.shape[1]), r.rename(y, out))
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
    return _out_float(r, x.shape, r.emit("div", [xn, d], out=node.output[0]))


def _reads_conv(fn: Callable) -> Handler:
    def handler(r, node, args, at):
        return _out_float(r, *fn(r, node, args, at))
    return handler


HANDLERS[("", "Conv")] = _reads_conv(reader_conv.conv)
HANDLERS[("", "MaxPool")] = HANDLERS[("", "AveragePool")] = _reads_conv(reader_conv.pool)
HANDLERS[("", "GlobalAveragePool")] = HANDLERS[("", "GlobalMaxPool")] = _reads_conv(
    reader_conv.global_pool)
for _op in ("ConvTranspose", "LRN"):
    def _no_cnn(r, node, args, at):
        raise r.error(f"graphc has no {node.op_type} op yet",
                      hint="graphc reads Conv, MaxPool and AveragePool (docs/onnx.md)")
    HANDLERS[("", _op)] = _no_cnn


def read_model(model: onnx.ModelProto, source: str | None = None,
               known: dict[str, np.ndarray] | None = None,
               outputs: list[str] | None = None) -> dict[str, Any]:
    """The graphc spec dict of an ONNX model (raises SpecError naming what it cannot read).
    `known` fixes some inputs' values, e.g. the axes a test feeds as an input; `outputs`
    picks the model outputs to read (all by default)."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if version is None:
        raise SpecError("the model imports no default-domain opset", source=source)
    if version < OPSETS[0]:
        try:
            model = onnx.version_converter.convert_version(model, OPSETS[0])
        except Exception as e:  # noqa: BLE001 - onnx raises plain RuntimeErrors
            raise SpecError(f"opset {version} could not be converted to {OPSETS[0]}: {e}",
                            source=source, hint="re-export the model with opset 13 or "
                            "later") from None
    elif version > OPSETS[1]:
        raise SpecError(f"opset {version} is newer than graphc reads ({OPSETS[1]})",
                        source=source, hint=f"re-export with opset {OPSETS[1]} or older")
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes are only a help here
        pass
    return Reader(model, source, known, outputs).read()
