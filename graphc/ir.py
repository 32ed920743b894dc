"""The typed intermediate representation every pass and backend works on.

A `Program` is a flat list of `Node`s in schedule order. Node ids are deterministic
(`v0`, `v1`, ...) and never derived from spec names; spec names live in `Node.name`.
A `Trace` records one run of a Program: what viz draws, whoever computed it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

Dim = int | str
Shape = tuple[Dim, ...]

FLOAT = "float"  # a float of the model's compile dtype (float32 or float64)
INT_DTYPES = ("int32", "int64")
FLOAT_DTYPES = ("float32", "float64")
# values a Program does not compute: inputs, params, constants, state buffers, the
# train/evaluation mode (1.0 / 0.0; passes.specialize makes it a constant) and the
# training step that random draws are keyed by
SOURCE_OPS = ("input", "param", "const", "state", "mode", "step")
FED_OPS = ("input", "param", "state", "mode", "step")  # given to a backend as arrays


def format_shape(shape: Shape) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting over possibly symbolic shapes; raises ValueError on mismatch."""
    if all(s == shapes[0] for s in shapes[1:]):
        return shapes[0]
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for i in range(ndim):
        dims = {s[len(s) - ndim + i] for s in shapes if len(s) - ndim + i >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ValueError("cannot broadcast " + " with ".join(format_shape(s) for s in shapes))
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def numel(shape: Shape) -> int | None:
    """Number of elements, or None if a dimension is symbolic."""
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


@dataclass(frozen=True)
class Node:
    id: str
    op: str
    args: tuple[str, ...]
    attrs: Mapping[str, Any]
    shape: Shape
    dtype: str
    name: str | None = None  # the spec name this value answers to, if any
    group: str | None = None  # id of the composite layer this node was expanded from
    grad_of: str | None = None  # for a backward node holding a gradient: the forward id
    doc: str | None = None

    @property
    def is_float(self) -> bool:
        return self.dtype == FLOAT

    def describe(self) -> str:
        """One line, e.g. ``v7: float[B,256] = relu v6   # fc1``."""
        attrs = " ".join(f"{k}={v!r}" for k, v in self.attrs.items() if k != "value")
        if self.op == "const":
            attrs = repr(self.attrs["value"])
        rhs = " ".join([self.op, *self.args] + ([attrs] if attrs else []))
        note = self.name if self.name is not None else (
            f"grad of {self.grad_of}" if self.grad_of else None)
        line = f"{self.id}: {self.dtype}{format_shape(self.shape)} = {rhs}"
        return f"{line}   # {note!r}" if note is not None else line


@dataclass
class Program:
    """A scheduled graph: forward nodes first, then (after autodiff) backward nodes."""

    name: str
    nodes: dict[str, Node] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)  # spec name -> id
    params: dict[str, str] = field(default_factory=dict)  # spec name -> id
    outputs: dict[str, str] = field(default_factory=dict)  # spec name -> id
    loss: str | None = None
    grads: dict[str, str] = field(default_factory=dict)  # spec name -> id of its gradient
    grad_map: dict[str, str] = field(default_factory=dict)  # forward id -> its gradient's id
    # forward id -> [(consumer id, id of that consumer's gradient contribution)]
    contributions: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    param_init: dict[str, Any] = field(default_factory=dict)  # spec name -> init spec
    # non-trainable buffers (batch norm's running statistics): spec name -> id, their
    # initial values, and what a training call writes into each (name -> id of the value)
    state: dict[str, str] = field(default_factory=dict)
    state_init: dict[str, Any] = field(default_factory=dict)
    updates: dict[str, str] = field(default_factory=dict)
    mode: str | None = None  # id of the `mode` node, if an op reads it
    step: str | None = None  # id of the `step` node, if a random draw reads it
    doc: str | None = None
    seed: int = 0
    counter: int = 0  # next free node number

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def __len__(self) -> int:
        return len(self.nodes)

    def new_id(self) -> str:
        self.counter += 1
        return f"v{self.counter - 1}"

    def add(self, node: Node) -> Node:
        self.nodes[node.id] = node
        return node

    def copy(self, nodes: Iterable[Node] | None = None) -> Program:
        new = dataclasses.replace(
            self, nodes=dict(self.nodes), inputs=dict(self.inputs), params=dict(self.params),
            outputs=dict(self.outputs), grads=dict(self.grads), grad_map=dict(self.grad_map),
            contributions={k: list(v) for k, v in self.contributions.items()},
            param_init=dict(self.param_init), state=dict(self.state),
            state_init=dict(self.state_init), updates=dict(self.updates))
        if nodes is not None:
            new.nodes = {n.id: n for n in nodes}
        return new

    def fed(self) -> list[str]:
        """Ids of the values a backend is given besides params: inputs, state, step."""
        extra = [i for i in (self.mode, self.step) if i is not None and i in self.nodes]
        return [*self.inputs.values(), *self.state.values(), *extra]

    def by_name(self) -> dict[str, str]:
        """Spec name -> id for every named forward value."""
        return {n.name: n.id for n in self if n.name is not None and n.grad_of is None}

    def consumers(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {i: [] for i in self.nodes}
        for n in self:
            for a in n.args:
                users[a].append(n.id)
        return users

    def dump(self) -> str:
        updates = [f"update {name!r} = {i}" for name, i in self.updates.items()]
        return "\n".join([n.describe() for n in self] + updates)


@dataclass
class Trace:
    """Every forward value and every gradient of one run, node by node.

    `values` and `grads` are keyed by spec names (composite internals such as
    `fc1.matmul` included); `by_id` holds every node's value by IR id, backward nodes
    too; `steps` lists ("forward" | "backward", id) in the order they were computed.
    It lives here, below runtime (which fills it) and viz (which draws it).
    """

    program: Program
    by_id: dict[str, Any]
    values: dict[str, Any] = field(default_factory=dict)
    grads: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple[str, str]] = field(default_factory=list)
    loss: float | None = None

    def grad_of_id(self, node_id: str) -> Any:
        g = self.program.grad_map.get(node_id)
        if g is None:
            return None
        return self.by_id[g] if g in self.by_id else None
