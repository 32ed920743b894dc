"""The IR emitter: records ops into a Program, inferring shapes as it goes.

Lowering, composite layers and gradient rules all build nodes through it, so every
node in every Program has passed the same arity, attribute, dtype and shape checks.
"""

from __future__ import annotations

from typing import Any

from graphc.errors import SpecError
from graphc.ir import FLOAT, Node, Program, Shape, format_shape
from graphc.ops import REGISTRY
from graphc.ops.modes import rng_key
from graphc.sugar import Ref


class IREmitter:
    def __init__(self, program: Program, place: str | None = None, source: str | None = None):
        self.program, self.place, self.source = program, place, source
        self.group: str | None = None  # composite being expanded
        self.backward = False  # gradient nodes are anonymous: they have no spec name
        self._consts: dict[float, str] = {}
        self._names: dict[str, int] = {}
        self.drawn: set[str] = set()  # the names random draws are keyed by

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

    def singleton(self, op: str, dtype: str) -> Ref:
        """The program's one `mode` (float: 1 training, 0 evaluation) or `step` node."""
        node_id = getattr(self.program, op)
        if node_id is None:
            outer, self.group = self.group, None
            node_id = self.source_node(op, (), dtype, None).id
            self.group = outer
            setattr(self.program, op, node_id)
        return Ref(self, node_id)

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

    def state(self, name: str, shape: Shape, init: Any) -> Ref:
        """A non-trainable buffer `<layer>.<name>` (e.g. a running mean): `init` as for a
        param; `Model.state` holds it; training calls write what `update` says into it."""
        from graphc import init as initializers

        full = f"{self.id}.{name}"
        program = self.emitter.program
        if full in program.state or full in program.params:
            raise ValueError(f"state {full!r} is defined twice")
        if not all(isinstance(d, int) for d in shape):
            raise ValueError(f"state {full!r} needs a known shape, got {format_shape(shape)}")
        try:
            initializers.check(init, shape)
        except ValueError as e:
            raise ValueError(f"{full}: {e}") from None
        ref = self.emitter.source_node("state", shape, FLOAT, full)
        program.state[full] = ref.id
        program.state_init[full] = init
        return ref

    def update(self, state: Ref, value: Ref) -> None:
        """After a training call, the buffer `state` holds `value` (evaluation leaves
        it alone)."""
        program = self.emitter.program
        node = program[state.id]
        if node.op != "state":
            raise ValueError(f"update: {node.name or node.id} is not a state buffer")
        if program[value.id].shape != node.shape:
            raise ValueError(f"update of state {node.name!r}: value has shape "
                             f"{format_shape(program[value.id].shape)}, the buffer "
                             f"{format_shape(node.shape)}")
        program.updates[node.name] = value.id

    def mode(self) -> Ref:
        """A scalar: 1.0 in training, 0.0 in evaluation. Choose with `select(mode, a, b)`;
        passes.specialize turns it into a constant and keeps only the chosen side."""
        return self.emitter.singleton("mode", FLOAT)

    def random(self, like: Ref, name: str = "random") -> Ref:
        """Uniform numbers in [0, 1) shaped like `like`, new at each training step and the
        same on every backend and in every process (keyed by seed, `<layer>.<name>`)."""
        full = f"{self.id}.{name}"
        drawn = self.emitter.drawn
        if full in drawn:
            raise ValueError(f"random: {full!r} draws twice; give each draw its own name")
        drawn.add(full)
        step = self.emitter.singleton("step", "int64")
        key = rng_key(self.emitter.program.seed, full)
        return self.emitter.emit("random", [step, like], {"key": key, "ndim": like.ndim})
