"""The op registry: every op is one `Op` declaration, and everything else reads it.

A declaration holds the op's inputs and attributes, shape rule, NumPy reference,
gradient rule (written with the same ops, so the backward pass is a graph), kernel (a
scalar expression, kernel fields, or an opaque kernel of its own per target), diagram
symbol, formula and the input domain its tests sample from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.errors import did_you_mean
from graphc.ir import Shape, broadcast_shapes

REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    """An attribute: kind is int, size (a positive int: units, sizes), float, bool, str,
    axis, axes, shape or json."""

    kind: str
    default: Any = REQUIRED
    choices: tuple | None = None
    doc: str = ""

    def check(self, value: Any) -> Any:
        """The value, normalized; raises ValueError with a readable reason."""
        k = self.kind
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"must be one of {', '.join(map(repr, self.choices))}, "
                             f"not {value!r}")
        if k == "float" and _is_number(value):
            return float(value)
        if k == "int" and _is_int(value):
            return int(value)
        if k == "size" and _is_int(value) and value > 0:
            return int(value)
        if k == "bool" and isinstance(value, bool):
            return value
        if k == "str" and isinstance(value, str):
            return value
        if k == "axis" and _is_int(value):
            return int(value)
        if k == "axes" and (value is None or _is_int(value)):
            return value if value is None else int(value)
        if k == "axes" and isinstance(value, (list, tuple)) and all(map(_is_int, value)):
            return tuple(int(v) for v in value)
        if k == "shape" and isinstance(value, (list, tuple)) and all(map(_is_int, value)):
            return tuple(int(v) for v in value)
        if k == "json":
            return value
        wanted = {"axes": "an integer, a list of integers or null", "shape": "a list of integers",
                  "axis": "an integer", "size": "a positive integer"}.get(
                      k, f"a{'n' if k[0] in 'aeiou' else ''} {k}")
        raise ValueError(f"must be {wanted}, not {value!r}")

    def json_schema(self) -> dict:
        s: dict[str, Any] = {
            "float": {"type": "number"}, "int": {"type": "integer"},
            "size": {"type": "integer", "minimum": 1},
            "bool": {"type": "boolean"}, "str": {"type": "string"},
            "axis": {"type": "integer"},
            "axes": {"anyOf": [{"type": "integer"}, {"type": "null"},
                               {"type": "array", "items": {"type": "integer"}}]},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "json": {},
        }[self.kind]
        if self.choices is not None:
            s = {"enum": list(self.choices)}
        if self.doc:
            s = {**s, "description": self.doc}
        return s


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True)
class KernelCode:
    """An opaque kernel's code for one target. `source` holds its helper functions, each
    decorated with a line `{jit}` (the target's decorator); `call(args, out, attrs,
    shapes)` returns the statements that compute the array named `out` from the node's
    args (array names, in order, with their shapes; it may read only the `reads` ones).
    A kernel with `scratch` gets a fifth argument: the names of its scratch arrays."""

    source: str
    call: Callable[[list[str], str, dict, list[Shape]], list[str]]

    @property
    def names(self) -> tuple[str, ...]:
        """The functions `source` defines (what a generated module imports)."""
        return tuple(re.findall(r"^def (\w+)\(", self.source, flags=re.M))


@dataclass(frozen=True)
class OpaqueKernel:
    """A kernel an op owns (convolution, pooling): the planner sees one step that reads
    the args at positions `reads` (None: all; the others only give a shape), writes the
    node's whole array and costs about `flops(in_shapes, out_shape, attrs)` = (shape, k), i.e. k
    operations per element of that shape; `code` holds its code per target ("cpu").
    `scratch(in_shapes, out_shape, attrs)`, when given, lists the shapes of the
    temporary arrays the kernel needs (im2col buffers): the backend allocates them once,
    in the per-thread workspace beside the graph's own arrays, and passes them to the
    call, so that a steady-state step allocates nothing inside the kernel. Their
    contents are undefined on entry and dead after the call (other steps reuse them)."""

    reads: tuple[int, ...] | None
    flops: Callable[[list[Shape], Shape, dict], tuple[Shape, int]]
    code: dict[str, KernelCode]
    scratch: Callable[[list[Shape], Shape, dict], list[Shape]] | None = None


@dataclass
class Op:
    name: str
    family: str
    inputs: tuple[str, ...]  # input names; a trailing "*" name takes any number
    formula: str  # what `graphc ops` prints: the op's definition
    symbol: str  # the label of its node in diagrams
    kind: str  # elementwise | reduce | matmul | softmax | shape | composite
    shape: Callable[[list[Shape], dict], Shape] | None = None
    ref: Callable[..., np.ndarray] | None = None  # NumPy forward: ref(*arrays, **attrs)
    grad: Callable | None = None  # grad(g, xs, y, attrs) -> [contribution or None per input]
    expand: Callable | None = None  # composite: expand(xs, attrs, layer) -> output Ref
    attrs: dict[str, Attr] = field(default_factory=dict)
    expr: str | Callable[[dict], str] | None = None  # elementwise: one scalar expression
    gradient: str = ""  # the gradient rule, as text for the docs
    domain: tuple[str, ...] = ()  # per input: real, positive, nonzero, labels, probs, unit
    int_inputs: tuple[int, ...] = ()  # positions that accept integer tensors
    internal: bool = False  # made by passes; not allowed in specs
    min_inputs: int | None = None
    # what compiled backends need beyond `expr` (reduction steps, index maps, softmax
    # value); the keys are documented in graphc/backends/codegen.py
    kernel: dict[str, Any] = field(default_factory=dict)
    opaque: OpaqueKernel | None = None  # a kernel of its own, per target (see above)

    @property
    def variadic(self) -> bool:
        return bool(self.inputs) and self.inputs[-1].endswith("*")

    @property
    def arity(self) -> tuple[int, int | None]:
        if self.variadic:
            return (self.min_inputs or 1, None)
        return (self.min_inputs if self.min_inputs is not None else len(self.inputs),
                len(self.inputs))

    def bind(self, attrs: Mapping[str, Any] | None) -> dict[str, Any]:
        """Attributes with defaults filled in; raises KeyError/ValueError naming the attr
        (its `attr` is the attribute's key, for the JSON path of the message)."""
        attrs = dict(attrs or {})
        for key in attrs:
            if key not in self.attrs:
                hint = did_you_mean(key, self.attrs)
                known = ", ".join(self.attrs) or "none"
                raise KeyError(f"unknown attribute {key!r} of op {self.name!r} "
                               f"({hint or 'its attributes: ' + known})")
        out = {}
        for key, spec in self.attrs.items():
            if key in attrs:
                try:
                    out[key] = spec.check(attrs[key])
                except ValueError as e:
                    err = ValueError(f"attribute {key!r} of op {self.name!r} {e}")
                    err.attr = key  # type: ignore[attr-defined]
                    raise err from None
            elif spec.default is REQUIRED:
                raise ValueError(f"op {self.name!r} needs attribute {key!r}"
                                 + (f" ({spec.doc})" if spec.doc else ""))
            else:
                out[key] = spec.default
        return out

    def expression(self, attrs: Mapping[str, Any]) -> str:
        return self.expr(attrs) if callable(self.expr) else self.expr  # type: ignore[return-value]


REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in REGISTRY:
        raise RuntimeError(f"op {op.name!r} registered twice")
    REGISTRY[op.name] = op
    return op


def get(name: str) -> Op:
    return REGISTRY[name]


def public_ops() -> list[Op]:
    return [op for op in REGISTRY.values() if not op.internal]


# ---- elementwise ops: one scalar expression serves NumPy, Numba and CUDA -------------

def _sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(z):
    return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))


def _erf(z):
    import scipy.special  # imported on first use: it costs 0.2 s at start-up

    return scipy.special.erf(z)


# The functions an elementwise expression may call, as NumPy ufuncs. Compiled backends
# provide scalar functions of the same names.
EXPR_FUNCTIONS: dict[str, Callable] = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1, "sqrt": np.sqrt,
    "abs": np.abs, "tanh": np.tanh, "erf": _erf, "where": np.where,
    "maximum": np.maximum, "minimum": np.minimum, "sigmoid": _sigmoid, "softplus": _softplus,
}


def numeric_attrs(op: Op, attrs: Mapping[str, Any]) -> dict[str, float]:
    """The attributes an elementwise expression reads as variables."""
    return {k: v for k, v in attrs.items() if op.attrs[k].kind in ("float", "int")}


def _expr_ref(op: Op) -> Callable[..., np.ndarray]:
    cache: dict[str, Callable] = {}

    def ref(*xs: np.ndarray, **attrs: Any) -> np.ndarray:
        source = op.expression(attrs)
        if source not in cache:
            params = ", ".join(list(op.inputs) + list(numeric_attrs(op, attrs)))
            cache[source] = eval(f"lambda {params}: {source}", dict(EXPR_FUNCTIONS))
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return np.asarray(cache[source](*xs, **numeric_attrs(op, attrs)))

    return ref


def broadcast_rule(shapes: list[Shape], attrs: dict) -> Shape:
    return broadcast_shapes(*shapes)


def elementwise(name: str, inputs: tuple[str, ...], expr: str | Callable[[dict], str], *,
                family: str, symbol: str, formula: str, gradient: str = "",
                grad: Callable | None = None,
                deriv: Sequence[str | Callable[[dict], str]] | None = None,
                attrs: dict[str, Attr] | None = None, domain: tuple[str, ...] | None = None,
                internal: bool = False, min_inputs: int | None = None) -> Op:
    """Register an elementwise op.

    Its gradient is either `grad` (a rule with graph ops) or `deriv`: one expression per
    input for the local derivative, in terms of the inputs and the output `y`. Each `deriv`
    becomes a hidden elementwise op named ``<name>'`` (``<name>'<input>`` for several
    inputs) and the contribution is ``g * <name>'(inputs, y)``, which fuses like any
    elementwise op.
    """
    op = Op(name=name, family=family, inputs=inputs, formula=formula, symbol=symbol,
            kind="elementwise", shape=broadcast_rule, attrs=attrs or {}, expr=expr,
            gradient=gradient, domain=domain or ("real",) * len(inputs), internal=internal,
            min_inputs=min_inputs)
    op.ref = _expr_ref(op)
    if deriv is not None:
        assert "y" not in inputs, "derivative expressions call the output y"
        parts = []
        for i, d in enumerate(deriv):
            dname = f"{name}'" if len(inputs) == 1 else f"{name}'{inputs[i]}"
            parts.append(dname)
            elementwise(dname, inputs + ("y",), d, family=family, symbol=dname,
                        formula=f"∂{name}/∂{inputs[i]}", attrs=attrs, internal=True)

        def grad(g, xs, y, a, parts=parts):
            return [g * g.emitter.emit(p, [*xs, y], a) for p in parts]

    op.grad = grad
    return register(op)
