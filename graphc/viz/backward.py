"""The derived backward graph drawn: every node the compiler built, forward (grey) and
backward (red), each gradient in the same rank as the value it belongs to, so that the
backward pass runs back along the forward one (and a 200-layer graph lays out in seconds).
"""

from __future__ import annotations

import graphviz
import numpy as np

from graphc.ops import REGISTRY
from graphc.viz.dot import (
    Options,
    _cluster_key,
    _font,
    _limit_effort,
    _row,
    _strip,
    _table,
    new_digraph,
)
from graphc.viz.scene import Scene
from graphc.viz.style import esc, fmt_array, fmt_shape


def draw_backward(sc: Scene, opts: Options, clusters: bool = False) -> graphviz.Digraph:
    """Every node the compiler built, forward (grey) and backward (red): the Σ
    accumulations at forks and the sums back to broadcast shapes included."""
    t = opts.theme
    prog = sc.program
    fwd = set(sc.forward)
    loss = sc.graph.loss or "L"
    dot = new_digraph(opts, "TB" if opts.rankdir == "TB" else "LR")
    if opts.title:
        dot.attr(label=_table([_row(_font(esc(sc.graph.name), t.line, 14, bold=True)),
                               _row(_font("the backward graph: forward nodes grey, "
                                          "backward nodes red", t.muted, 10))]), labelloc="t")
    groups: dict[str | None, list[tuple[str, dict]]] = {}
    for n in prog:
        back = n.id not in fwd
        sym = REGISTRY[n.op].symbol if n.op in REGISTRY else n.op
        if n.op in ("input", "param", "state"):
            sym = n.name
        elif n.op == "const":
            sym = f"{n.attrs['value']:g}"
        if n.grad_of is not None:
            note = f"∂{loss}/∂{sc.label(n.grad_of)}"
        elif not back and n.name is not None and n.op not in ("input", "param", "state"):
            note = n.name
        else:
            note = ""
        rows = [_row(_font(esc(sym), t.grad if back else t.line, 12, bold=True))]
        if note:
            rows.append(_row(_font(esc(note), t.grad if back else t.muted, 9)))
        if n.shape:
            rows.append(_row(_font(esc(fmt_shape(n.shape)), t.muted, 9)))
        value = sc.value(n.id)
        if opts.values and value is not None:
            color = t.grad if back else t.value
            rows.append(_row(_font(esc(fmt_array(value, opts.digits)), color, 10)))
            if opts.maps and np.ndim(value) == 4:  # dL/dvalue too: backward nodes in red
                caption, strip = _strip(value, opts, True, n.op == "param" or (
                    n.grad_of is not None and prog[n.grad_of].op == "param"), "")
                rows += strip + [_row(_font(esc(caption), color, 9))]
        attrs = dict(id=f"b_{n.id}", shape="box", style="rounded,filled", margin="0.06,0.03",
                     fillcolor=t.op, color=t.backward if back else t.muted, label=_table(rows))
        if n.op in ("input", "param"):
            attrs["fillcolor"] = t.input if n.op == "input" else t.param
        if n.op == "accumulate":
            attrs.update(fillcolor=t.loss, penwidth="2")
        groups.setdefault(n.group if clusters else None, []).append((f"b_{n.id}", attrs))
    for group, members in groups.items():
        target = dot
        if group is not None:
            ctx = dot.subgraph(name=f"cluster_{_cluster_key(sc, group)}")
            target = ctx.__enter__()
            target.attr(label=_table([_row(_font(esc(group), t.line, 11, bold=True))]),
                        style="rounded", color=t.muted, labeljust="l")
        for key, attrs in members:
            target.node(key, **attrs)
        if group is not None:
            ctx.__exit__(None, None, None)
    for n in prog:
        back = n.id not in fwd
        for a in n.args:
            dot.edge(f"b_{a}", f"b_{n.id}", color=t.grad if back else t.muted)
    for v, g in prog.grad_map.items():  # ∂L/∂v beside v: no edge spans the whole graph
        if v in fwd and g not in fwd and v in prog.nodes and g in prog.nodes:
            dot.body.append(f"\t{{rank=same; b_{v}; b_{g}}}\n")
    _limit_effort(dot, len(prog))
    return dot


__all__ = ["draw_backward"]
