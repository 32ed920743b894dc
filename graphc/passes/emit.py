"""The IR emitter: records ops into a Program, inferring shapes as it goes.

Lowering, composite layers and gradient rules all build nodes through it, so every
node in every Program has passed the same arity, attribute, dtype and shape checks.
"""

from __future__ import annotations

from typing import Any

from graphc.errors import SpecError
from graphc.ir import FLOAT, Node, Program, Shape, format_shape
from graphc.ops import REGISTRY
from graphc.sugar import Ref


class IREmitter:
    def __init__(self, program: Program, place: str | None = None, source: str | None = None):
        self.program, self.place, self.source = program, place, source
        self.group: str | None = None  # composite being expanded
        self.backward = False  # gradient nodes are anonymous: they have no spec name
        self._consts: dict[float, str] = {}
        self._names: dict[str, int] = {}

    # Emitter protocol ---------------------------------------------------------------
    def shape_of(self, ref: Ref) -> Shape:
        return self.program[ref.id].shape

    def dtype_of(self, ref: Ref) -> str:
        return self.program[ref.id].dtype

    def emit(self, op_name: str, args: list[Any], attrs: dict[str, Any] | None = None) -> Ref:
        op = REGISTRY[op_name]
        refs = [a if isinstance(a, Ref) else self.const(a) for a in args]
        try:
            if op.variadic and op.kind == "elementwise":
                attrs = {**(attrs or {}), "n": len(refs)}
            bound = op.bind(attrs)
            if op.kind == "composite":
                return self._expand(op, refs, bound)
            for j, r in enumerate(refs):
                if self.dtype_of(r) != FLOAT and j not in op.int_inputs:
                    raise ValueError(f"input {j} of op {op.name!r} must be a float tensor, "
                                     f"not {self.dtype_of(r)}")
            shape = op.shape([self.shape_of(r) for r in refs], bound)
        except (ValueError, KeyError) as e:
            shapes = ", ".join(format_shape(self.shape_of(r)) for r in refs)
            msg = e.args[0] if e.args else str(e)
            raise SpecError(f"{msg}" + (f" (op {op.name!r}, input shapes {shapes})"
                                        if op.name not in msg or "shape" not in msg else ""),
                            place=self.place, source=self.source) from None
        node = Node(id=self.program.new_id(), op=op.name, args=tuple(r.id for r in refs),
                    attrs=bound, shape=tuple(shape), dtype=FLOAT, name=self._auto_name(op.name),
                    group=self.group, grad_of=None)
        self.program.add(node)
        return Ref(self, node.id)

    # Sources --------------------------------------------------------------------------
    def source_node(self, op: str, shape: Shape, dtype: str, name: str | None,
                    doc: str | None = None, **attrs: Any) -> Ref:
        node = Node(id=self.program.new_id(), op=op, args=(), attrs=attrs, shape=tuple(shape),
                    dtype=dtype, name=name, group=self.group, doc=doc)
        self.program.add(node)
        return Ref(self, node.id)

    def const(self, value: Any) -> Ref:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"expected a value or a number, got {value!r}", place=self.place,
                            source=self.source)
        value = float(value)
        if value not in self._consts:
            self._consts[value] = self.source_node("const", (), FLOAT, None, value=value).id
        return Ref(self, self._consts[value])

    # Naming -------------------------------------------------------------------------
    def _auto_name(self, op: str) -> str | None:
        """Nodes inside a composite are named `<layer>.<op>` (then `_1`, `_2`, ...)."""
        if self.group is None or self.backward:
            return None
        base = f"{self.group}.{op}"
        k = self._names.get(base, 0)
        self._names[base] = k + 1
        return base if k == 0 else f"{base}_{k}"

    def rename(self, ref: Ref, name: str, doc: str | None = None) -> None:
        n = self.program[ref.id]  # (positional Node(...) is 3x faster than replace here)
        self.program.nodes[ref.id] = Node(n.id, n.op, n.args, n.attrs, n.shape, n.dtype, name,
                                          n.group, n.grad_of, doc)

    # Composites -----------------------------------------------------------------------
    def _expand(self, op, refs: list[Ref], attrs: dict[str, Any]) -> Ref:
        layer_id = self.group_id_for_expansion
        outer, self.group = self.group, layer_id
        try:
            return op.expand(refs, attrs, Layer(self, layer_id))
        finally:
            self.group = outer

    group_id_for_expansion: str | None = None


class Layer:
    """What a composite's expansion sees: it creates params named `<layer>.<name>`."""

    def __init__(self, emitter: IREmitter, layer_id: str | None):
        self.emitter, self.id = emitter, layer_id

    def param(self, name: str, shape: Shape, init: Any) -> Ref:
        from graphc import init as initializers

        full = f"{self.id}.{name}"
        program = self.emitter.program
        if full in program.params:
            raise ValueError(f"parameter {full!r} is defined twice")
        try:
            initializers.check(init, shape)
        except ValueError as e:
            raise ValueError(f"{full}: {e}") from None
        ref = self.emitter.source_node("param", shape, FLOAT, full)
        program.params[full] = ref.id
        program.param_init[full] = init
        return ref
