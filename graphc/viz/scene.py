"""What a forward diagram shows, before any DOT: drawn units (sources, ops, layers,
outputs), the wires that carry each value between them, and where gradients fork.

Built from a Program (and a Trace's values, when there is one); `dot` draws a Scene,
`step` walks it to make step-through frames. DOT names are derived from IR ids only,
never from spec names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.ir import Program
from graphc.spec import Graph

SOURCES = ("input", "param", "state")  # state: running statistics (batch norm)
AUTO_COLLAPSE = 40  # collapse layers by default when a graph has more primitive ops


@dataclass
class Unit:
    """One drawn node: a source, an op, a collapsed layer, or an output/loss terminal."""

    key: str  # DOT name: n_v7, grp3, out0
    kind: str  # source | op | group | terminal
    ids: list[str]  # the IR nodes it draws (forward)
    group: str | None = None  # cluster (layer id) it sits in when layers are expanded
    name: str | None = None  # layer id (group) or output/loss name (terminal)
    roles: tuple[str, ...] = ()  # terminal: ("output",), ("loss",) or both


@dataclass
class Wire:
    """A value travelling from its producer's unit to a consumer unit."""

    value: str  # IR id of the value
    dst: str  # unit key of the consumer
    contribs: list[str]  # ids of the gradient contributions flowing back along it
    consumer: str | None = None  # IR id of the consuming node (None for terminals)


@dataclass
class Scene:
    graph: Graph
    program: Program
    forward: list[str]  # forward ids in schedule order
    values: dict[str, np.ndarray] | None  # by IR id (forward and backward), from a trace
    units: dict[str, Unit] = field(default_factory=dict)
    unit_of: dict[str, str] = field(default_factory=dict)  # IR id -> unit key
    wires: list[Wire] = field(default_factory=list)
    consts: list[tuple[str, str, str]] = field(default_factory=list)  # (key, const id, unit)
    collapsed: bool = False

    # queries ----------------------------------------------------------------------
    def producer(self, value: str) -> str:
        return self.unit_of[value]

    def wires_of(self, value: str) -> list[Wire]:
        return [w for w in self.wires if w.value == value]

    def carried(self) -> list[str]:
        """Values that leave their unit, in schedule order (each gets a label node)."""
        seen = {w.value for w in self.wires}
        return [i for i in self.forward if i in seen]

    def is_fork(self, value: str) -> bool:
        """A value whose gradient is the sum of several contributions."""
        return sum(len(w.contribs) for w in self.wires_of(value)) >= 2

    def grad_id(self, value: str) -> str | None:
        return self.program.grad_map.get(value)

    def value(self, node_id: str | None) -> np.ndarray | None:
        if node_id is None or self.values is None:
            return None
        return self.values.get(node_id)

    def grad(self, value: str) -> np.ndarray | None:
        return self.value(self.grad_id(value))

    def wire_grad(self, wire: Wire) -> np.ndarray | None:
        parts = [self.value(c) for c in wire.contribs]
        if not parts or any(p is None for p in parts):
            return None
        return parts[0] if len(parts) == 1 else np.sum(parts, axis=0)

    def label(self, node_id: str) -> str:
        """How a value is called in captions: its spec name, or its constant, or its id."""
        n = self.program[node_id]
        if n.name is not None:
            return n.name
        if n.op == "const":
            return f"{n.attrs['value']:g}"
        return node_id

    def layer(self, unit: Unit) -> dict[str, Any]:
        """The spec node of a collapsed layer ({} when the graph does not have it)."""
        return next((n for n in self.graph.nodes if n.get("id") == unit.name), {})

    def params_of(self, unit: Unit) -> list[str]:
        return [i for i in unit.ids if self.program[i].op == "param"]

    def output_of(self, unit: Unit) -> str:
        """The IR id whose value a unit stands for (a layer's last node)."""
        return unit.ids[-1]


def forward_ids(program: Program, steps: list[tuple[str, str]] | None) -> list[str]:
    if steps:
        return [i for kind, i in steps if kind == "forward"]
    return [n.id for n in program if n.grad_of is None]


def build_scene(graph: Graph, program: Program, forward: list[str],
                values: dict[str, np.ndarray] | None, collapse: bool | None) -> Scene:
    """Group the forward nodes into drawn units and connect them with wires."""
    prims = [i for i in forward if program[i].op not in (*SOURCES, "const")]
    if collapse is None:
        collapse = len(prims) > AUTO_COLLAPSE
    sc = Scene(graph=graph, program=program, forward=forward, values=values, collapsed=collapse)
    group_key: dict[str, str] = {}
    for i in forward:
        n = program[i]
        if n.op == "const":
            continue
        if collapse and n.group is not None:
            if n.group not in group_key:
                group_key[n.group] = f"grp{len(group_key)}"
                sc.units[group_key[n.group]] = Unit(group_key[n.group], "group", [],
                                                    name=n.group)
            key = group_key[n.group]
            sc.units[key].ids.append(i)
        else:
            key = f"n_{i}"
            kind = "source" if n.op in SOURCES else "op"
            sc.units[key] = Unit(key, kind, [i], group=n.group)
        sc.unit_of[i] = key

    pending = _contribution_queues(program)
    for unit in list(sc.units.values()):
        merged: dict[str, Wire] = {}
        for i in unit.ids:
            n = program[i]
            for a in n.args:
                contribs = pending.get((a, i), [])
                c = [contribs.pop(0)] if contribs else []
                if program[a].op == "const":
                    sc.consts.append((f"c{len(sc.consts)}", a, unit.key))
                    continue
                if sc.unit_of[a] == unit.key:
                    continue
                if unit.kind == "group" and a in merged:  # one wire per value into a layer
                    merged[a].contribs.extend(c)
                    continue
                w = Wire(a, unit.key, c, consumer=i)
                merged[a] = w
                sc.wires.append(w)
    _add_terminals(sc)
    return sc


def _contribution_queues(program: Program) -> dict[tuple[str, str], list[str]]:
    """(value, consumer) -> contribution ids, in the order of the consumer's arguments."""
    out: dict[tuple[str, str], list[str]] = {}
    for value, parts in program.contributions.items():
        for consumer, cid in parts:
            out.setdefault((value, consumer), []).append(cid)
    # autodiff records a consumer's contributions in argument order: keep that order
    return out


def _add_terminals(sc: Scene) -> None:
    prog = sc.program
    roles: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for name, i in prog.outputs.items():
        roles.setdefault(i, []).append("output")
        names.setdefault(i, name)
    if prog.loss is not None:
        roles.setdefault(prog.loss, []).append("loss")
        names.setdefault(prog.loss, sc.graph.loss or sc.label(prog.loss))
    for k, (i, r) in enumerate(roles.items()):
        key = f"out{k}"
        sc.units[key] = Unit(key, "terminal", [], name=names[i], roles=tuple(r))
        seed = prog.grad_map.get(i) if "loss" in r else None
        sc.wires.append(Wire(i, key, [seed] if seed else []))


def scene(graph: Graph, trace: Any = None, *, view: str = "values", collapse: bool | None = None,
          program: Program | None = None, forward: list[str] | None = None) -> Scene:
    """The Scene of a Graph and a Trace of it (values on every edge), or, without a trace,
    of a `program` handed over (the structure; `forward` names its forward nodes when it
    holds a backward graph too). viz computes neither: graphc.teach does."""
    if trace is not None:
        prog = trace.program
        return build_scene(graph, prog, forward_ids(prog, trace.steps), trace.by_id, collapse)
    if program is None:
        raise ValueError("viz draws a Trace or a Program computed by its caller: pass trace= "
                         "or program= (graphc.viz(graph) computes them for you)")
    fwd = forward if forward is not None else forward_ids(program, None)
    return build_scene(graph, program, fwd, None, collapse)
