"""Graph (+ Trace) -> graphviz.Digraph, in the lectures' visual grammar.

Values travel on edges: each edge carries its forward value above the line (green) and
its gradient below (red). Op nodes are small and show the op's symbol; a value with
several consumers passes a Σ node where the backward pass sums their contributions.
Spec names appear only inside escaped HTML-like labels; DOT names come from IR ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import graphviz
import numpy as np

from graphc.ir import numel
from graphc.ops import REGISTRY
from graphc.viz.maps import CONV_OPS, image_path, shape_tooltip, strip_of
from graphc.viz.scene import Scene, Unit
from graphc.viz.style import Theme, esc, fmt, fmt_array, fmt_grad, fmt_int, fmt_shape, role_color

HIDDEN = "transparent"  # text not computed yet in a frame: laid out, not shown


@dataclass
class Options:
    """What a diagram shows (see `graphc.viz.viz` for the user-facing names)."""

    theme: Theme
    values: bool = True
    grads: bool = True
    digits: int = 2
    rankdir: str = "auto"  # LR, TB, or auto: TB for long chains, LR otherwise
    title: bool = True
    caption: tuple[str, ...] = ()  # lines under the title (a frame's arithmetic, on slides)
    blank: frozenset[str] = frozenset()  # quiz: "v:ID" / "g:KEY" numbers drawn as empty boxes
    # teaching views' extra rows, by "v:ID" (under a value), "g:KEY" (beside a gradient) or
    # "u:UNIT" (inside a unit's box): (text, role), role one of style.ROLES
    notes: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    tooltips: dict[str, str] = field(default_factory=dict)  # DOT node name -> hover text
    maps: bool = False  # 4-D values and gradients as strips of heatmaps (graphc.viz.maps)


@dataclass
class Mask:
    """A step-through frame's view: what has been computed so far, and the focus."""

    values: set[str] | None = None  # forward ids whose values are shown (None: all)
    # gradients shown (None: all), by what they sit on, never by backward node id (an add
    # passes one gradient node to several edges, each derived at its own frame): a forward
    # value id `v` for its total gradient, `v#j` for the branch of its j-th wire at a fork
    grads: set[str] | None = None
    current: str | None = None  # DOT name of the current node
    hot: set[str] = field(default_factory=set)  # DOT names drawn highlighted

    def shows_value(self, i: str) -> bool:
        return self.values is None or i in self.values

    def shows_grad(self, key: str) -> bool:
        return self.grads is None or key in self.grads


class Diagram(graphviz.Digraph):
    """A graphviz.Digraph that renders through graphc's renderer choice, so that it shows
    inline in Jupyter (and `pipe`s) with graphviz-pure when there is no system Graphviz."""

    def pipe(self, format: str | None = None, renderer: str | None = None,  # noqa: A002
             formatter: str | None = None, neato_no_op: bool | int | None = None,
             quiet: bool = False, *, engine: str | None = None,
             encoding: str | None = None) -> bytes | str:
        from graphc.viz.render import FORMATS, render

        fmt = format or self.format
        if renderer or formatter or neato_no_op or engine not in (None, "dot") \
                or fmt not in FORMATS:
            return super().pipe(format, renderer, formatter, neato_no_op, quiet,
                                engine=engine, encoding=encoding)
        out = render(self.source, fmt)
        return out.decode(encoding) if encoding else out


DEEP = 14  # drawn nodes along the longest path beyond which `auto` lays out top to bottom


def new_digraph(opts: Options, rankdir: str = "LR") -> graphviz.Digraph:
    t = opts.theme
    dot = Diagram(name="graphc")  # the graph's DOT name is never a spec name
    dot.attr(rankdir=rankdir, nodesep="0.25", ranksep="0.3", bgcolor="white",
             fontname=t.font, fontsize="12", newrank="true")
    dot.attr("node", fontname=t.font, fontsize="12", color=t.line, penwidth="1.2")
    dot.attr("edge", fontname=t.font, fontsize="11", color=t.line, arrowsize="0.6")
    return dot


LARGE = 120  # nodes beyond which layout effort is capped (seconds, not minutes)
HUGE = 1000


def _limit_effort(dot: graphviz.Digraph, nodes: int) -> None:
    """Large graphs: fewer network-simplex and crossing-minimization passes; beyond
    HUGE nodes (a 200-layer backward graph: 2,400 nodes, 8,700 with Graphviz's virtual
    ones) positioning is capped hard: 28 s -> 6 s on this machine, under load."""
    if nodes > HUGE:
        dot.attr(nslimit="0.02", nslimit1="2", mclimit="0.5")
    elif nodes > LARGE:
        dot.attr(nslimit="2", nslimit1="2", mclimit="0.5")


def _font(text: str, color: str, size: int | None = None, bold: bool = False) -> str:
    size_attr = f' point-size="{size}"' if size else ""
    body = f"<b>{text}</b>" if bold else text
    return f'<font color="{color}"{size_attr}>{body}</font>'


def _table(rows: list[str], **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return (f'<<table border="0" cellborder="0" cellspacing="0" cellpadding="1"{extra}>'
            + "".join(rows) + "</table>>")


def _row(cell: str, **attrs: str) -> str:
    extra = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f"<tr><td{extra}>{cell}</td></tr>"


def _title(name: str, opts: Options, grads: bool, vertical: bool = False) -> str:
    t = opts.theme
    rows = [_row(_font(esc(name), t.line, 14, bold=True))]
    if grads:
        where = ("left of", "right") if vertical else ("above", "below")
        rows.append(_row(_font(f"value {where[0]} each edge", t.value, 10)
                         + _font(" · ", t.muted, 10) + _font(f"gradient {where[1]}", t.grad, 10)))
    rows += [_row(_font(esc(line), t.line, 12)) for line in opts.caption]
    return _table(rows)


# ---- the forward diagram ------------------------------------------------------------

def draw(sc: Scene, opts: Options, mask: Mask | None = None) -> graphviz.Digraph:
    """The forward diagram of a Scene, values and gradients on its edges."""
    mask = mask or Mask()
    t = opts.theme
    show_grads = opts.grads and sc.values is not None and bool(sc.program.grad_map)
    rankdir = opts.rankdir
    if rankdir == "auto":
        rankdir = "TB" if depth(sc) > DEEP else "LR"
    vertical = rankdir == "TB"
    enter, leave = (":m:n", ":m:s") if vertical else (":m:w", ":m:e")
    dot = new_digraph(opts, rankdir)
    if opts.title:
        dot.attr(label=_title(sc.graph.name, opts, show_grads, vertical), labelloc="t")
    clusters: dict[str | None, list[tuple[str, dict]]] = {}
    edges: list[tuple[str, str, dict]] = []

    def node(key: str, cluster: str | None, **attrs: str) -> None:
        if key == mask.current:
            attrs.update(fillcolor=t.highlight, style=_filled(attrs), penwidth="3",
                         color=t.line, **{"class": "gc-current"})
        elif key in mask.hot:
            attrs.update(color=t.highlight, penwidth="2.5", **{"class": "gc-hot"})
        if key in opts.tooltips:
            attrs["tooltip"] = opts.tooltips[key]
        clusters.setdefault(cluster, []).append((key, {"id": key, **attrs}))

    def edge(tail: str, head: str, **attrs: str) -> None:
        ends = {tail.split(":")[0], head.split(":")[0]}
        if ends <= mask.hot | {mask.current}:
            attrs.update(color=t.highlight, penwidth="2.5")
        edges.append((tail, head, {"id": f"e{len(edges)}", **attrs}))

    for unit in sc.units.values():
        node(unit.key, unit.group if not sc.collapsed else None, **_unit_attrs(sc, unit, opts,
                                                                               show_grads, mask))
    for key, const, dst in sc.consts:
        value = sc.program[const].attrs["value"]
        node(key, sc.units[dst].group, shape="plaintext", margin="0", width="0", height="0",
             label=_table([_row(_font(esc(f"{value:g}"), t.muted, 10))]))
        edge(key, dst, color=t.muted, arrowsize="0.4")

    for v in sc.carried():
        unit = sc.units[sc.producer(v)]
        cl = unit.group if not sc.collapsed else None
        wires = sc.wires_of(v)
        top = _value_rows(sc, v, unit, opts, mask)
        grad = _grad_rows(sc, v, sc.grad(v), opts, mask) if show_grads else []
        tail = unit.key
        if top or grad:
            node(f"val_{v}", cl, **_label_node(top, grad, t, vertical))
            edge(unit.key, f"val_{v}{enter}", arrowhead="none")
            tail = f"val_{v}{leave}"
        if show_grads and sc.is_fork(v):
            fork = f"fork_{v}"
            node(fork, cl, shape="circle", width="0.3", height="0.3", fixedsize="true",
                 label=_table([_row(_font("Σ", t.grad, 12, bold=True))]), color=t.grad)
            edge(tail, fork, arrowhead="none")
            for j, w in enumerate(wires):
                if not w.contribs:
                    edge(fork, w.dst)
                    continue
                br = f"br_{v}_{j}"
                g = _grad_rows(sc, f"{v}#{j}", sc.wire_grad(w), opts, mask)
                top = _value_rows(sc, v, unit, opts, mask, name=False)
                node(br, cl, **_label_node(top, g, t, vertical))
                edge(fork, f"{br}{enter}", arrowhead="none")
                edge(f"{br}{leave}", w.dst)
        else:
            for w in wires:
                edge(tail, w.dst)

    for cluster, members in clusters.items():
        if cluster is None:
            for key, attrs in members:
                dot.node(key, **attrs)
            continue
        with dot.subgraph(name=f"cluster_{_cluster_key(sc, cluster)}") as c:
            layer = next((n for n in sc.graph.nodes if n.get("id") == cluster), {})
            c.attr(label=_table([_row(_font(esc(cluster), t.line, 11, bold=True)
                                      + _font(" " + esc(layer.get("op", "")), t.muted, 10))]),
                   style="rounded,filled", fillcolor=t.group, color=t.muted, labeljust="l")
            for key, attrs in members:
                c.node(key, **attrs)
    for tail, head, attrs in edges:
        dot.edge(tail, head, **attrs)
    _limit_effort(dot, sum(len(m) for m in clusters.values()))
    dot.edge_ends = [(a["id"], tl.split(":")[0], hd.split(":")[0]) for tl, hd, a in edges]
    return dot


def _cluster_key(sc: Scene, group: str) -> str:
    """A DOT-safe key for a layer: the position of its first node, not its name."""
    first = next(i for i in sc.forward if sc.program[i].group == group)
    return first


def _filled(attrs: dict) -> str:
    style = attrs.get("style", "")
    return style if "filled" in style else ",".join(filter(None, [style, "filled"]))


def _value_rows(sc: Scene, v: str, producer: Unit, opts: Options, mask: Mask,
                name: bool = True) -> list[str]:
    t = opts.theme
    n = sc.program[v]
    rows = []
    head = []
    if name and producer.kind != "source" and n.name is not None:
        head.append(_font(esc(n.name), t.muted, 9))
    if n.shape:
        head.append(_font(esc(_shape_arithmetic(sc, v)), t.muted, 9))
    if head:
        rows.append(_row(" ".join(head)))
    value = sc.value(v)
    if opts.values and value is not None:
        if f"v:{v}" in opts.blank:
            rows.append(_blank(t))
        else:
            color = t.value if mask.shows_value(v) else HIDDEN
            rows.append(_row(_font(esc(fmt_array(value, opts.digits)), color)))
            if opts.maps and name and np.ndim(value) == 4:
                caption, strip = _strip(value, opts, mask.shows_value(v), n.op == "param",
                                        f"v:{v}")
                rows += [_row(_font(esc(caption), color, 9))] + strip  # maps by the edge
    if name:
        rows += _note_rows(opts, f"v:{v}", mask.shows_value(v))
    return rows


def _shape_arithmetic(sc: Scene, v: str) -> str:
    """A conv or pool node's shape in -> out (the lectures' arithmetic), else its shape."""
    n = sc.program[v]
    if n.op in CONV_OPS and n.args:
        return f"{fmt_shape(sc.program[n.args[0]].shape)} → {fmt_shape(n.shape)}"
    return fmt_shape(n.shape)


def _strip(a: np.ndarray, opts: Options, shown: bool, weight: bool,
           key: str) -> tuple[str, list[str]]:
    """A strip of heatmaps (hidden ones keep their place) and the caption of its shared
    scale; each image is tagged `key` for the stepper (graphc.viz.maps.inline)."""
    s = strip_of(a, weight)
    if not s.images:
        return "", []
    cells = [f'<td fixedsize="true" width="{s.width}" height="{s.height}">'
             + (f'<img src="{image_path(data, key)}"/>' if shown else "") + "</td>"
             for data in s.images]
    if s.more:
        cells.append(f"<td>{_font(f'+{s.more} more', opts.theme.muted if shown else HIDDEN, 9)}"
                     "</td>")
    strip = ('<table border="0" cellborder="0" cellspacing="1" cellpadding="0"><tr>'
             + "".join(cells) + "</tr></table>")
    what = "filters" if weight else "channels"
    scale = f"{fmt(s.vmin, opts.digits)} … {fmt(s.vmax, opts.digits)}"
    return f"{len(s.images)} of {s.channels} {what} · scale {scale}", [_row(strip)]


def _blank(t: Theme) -> str:
    """A box to write a number into (a quiz)."""
    return _row(_font("?", "white", 9), border="1", color=t.muted, width="40", height="14")


def _note_rows(opts: Options, key: str, shown: bool = True) -> list[str]:
    return [_row(_font(esc(text), role_color(opts.theme, role) if shown else HIDDEN, 9))
            for text, role in opts.notes.get(key, ())]


def _grad_rows(sc: Scene, key: str, g: np.ndarray | None, opts: Options,
               mask: Mask) -> list[str]:
    if g is None:
        return []
    if f"g:{key}" in opts.blank:
        return [_blank(opts.theme)]
    color = opts.theme.grad if mask.shows_grad(key) else HIDDEN
    text, strip = fmt_grad(g, opts.digits), []
    if opts.maps and np.ndim(g) == 4:  # its scale in the same text: one tag in a stepper
        weight = sc.program[key.partition("#")[0]].op == "param"
        caption, strip = _strip(g, opts, mask.shows_grad(key), weight, f"g:{key}")
        text += " · " + caption
    cell = _font(esc(text), color)
    cell += "".join(" " + _font(esc(text), role_color(opts.theme, role)
                                if color != HIDDEN else HIDDEN)
                    for text, role in opts.notes.get(f"g:{key}", ()))
    return strip + [_row(cell)]


def _label_node(top: list[str], bottom: list[str], t: Theme, vertical: bool = False) -> dict:
    """A value written on its edge: the edge enters and leaves at the middle line, the
    value above it and the gradient below (left and right of it, top to bottom)."""
    if not vertical:
        line = _row("", port="m", sides="B", border="1", color=t.line, height="1")
        return dict(shape="plain", label=_table(top + [line] + bottom))
    inner = '<table border="0" cellborder="0" cellspacing="0" cellpadding="1">{}</table>'
    left, right = (inner.format("".join(rows)) if rows else "" for rows in (top, bottom))
    cells = (f'<td align="right">{left}</td>'
             f'<td port="m" sides="L" border="1" color="{t.line}" width="1"></td>'
             f'<td align="left">{right}</td>')
    return dict(shape="plain", label=f"<{inner.format('<tr>' + cells + '</tr>')}>")


def depth(sc: Scene) -> int:
    """Drawn nodes along the longest path from a source to an output."""
    d: dict[str, int] = {}
    for key in sc.units:
        d[key] = 1 + max((d.get(sc.producer(w.value), 0) for w in sc.wires if w.dst == key),
                         default=0)
    return max(d.values(), default=0)


def _unit_attrs(sc: Scene, unit: Unit, opts: Options, show_grads: bool, mask: Mask) -> dict:
    t = opts.theme
    if unit.kind == "op":
        n = sc.program[unit.ids[0]]
        sym = REGISTRY[n.op].symbol
        small = len(sym) <= 3
        tip = {"tooltip": _conv_tooltip(sc, n)} if n.op in CONV_OPS else {}
        return dict(shape="circle" if small else "box", style="rounded,filled",
                    fillcolor=t.op, fixedsize="true" if small else "false",
                    width=("0.42" if len(sym) <= 2 else "0.52") if small else "0.3",
                    height="0.3", margin="0.04,0.02", **tip,
                    label=_table([_row(_font(esc(sym), t.line, 14 if small else 11))]))
    if unit.kind == "source":
        n = sc.program[unit.ids[0]]
        rows = [_row(_font(esc(n.name), t.line, 13, bold=True))]
        note = n.op + (" " + fmt_shape(n.shape) if n.shape else "")
        if n.dtype.startswith("int"):
            note += " " + n.dtype
        rows.append(_row(_font(esc(note), t.muted, 9)))
        rows += _note_rows(opts, f"u:{n.id}")
        fill = t.input if n.op == "input" else t.param
        return dict(shape="box", style="rounded,filled", fillcolor=fill, margin="0.08,0.04",
                    label=_table(rows))
    if unit.kind == "terminal":
        rows = [_row(_font(esc(unit.name), t.line, 13, bold=True)),
                _row(_font(" · ".join(unit.roles), t.muted, 9))]
        loss = "loss" in unit.roles
        return dict(shape="box", style="rounded,filled", fillcolor=t.loss if loss else t.output,
                    peripheries="2" if loss else "1", margin="0.08,0.04", label=_table(rows))
    return _group_attrs(sc, unit, opts, show_grads, mask)


def _conv_tooltip(sc: Scene, n) -> str:
    shapes = [sc.program[a].shape for a in n.args]
    try:
        return shape_tooltip(n.op, n.attrs, shapes[0], shapes[1] if len(shapes) > 1 else None)
    except (KeyError, ValueError, TypeError):  # a shape the formula does not cover
        return n.op


def _group_attrs(sc: Scene, unit: Unit, opts: Options, show_grads: bool, mask: Mask) -> dict:
    """A collapsed layer: its name, op and attributes, shapes in -> out, parameters."""
    t = opts.theme
    layer = sc.layer(unit)
    rows = [_row(_font(esc(unit.name), t.line, 13, bold=True))]
    attrs = ", ".join(f"{k}={v}" for k, v in (layer.get("attrs") or {}).items())
    op = layer.get("op", "layer")
    rows.append(_row(_font(esc(f"{op}({attrs})" if attrs else op), t.muted, 10)))
    ins = [w for w in sc.wires if w.dst == unit.key]
    shapes_in = ", ".join(fmt_shape(sc.program[w.value].shape) for w in ins) or "()"
    out = sc.program[sc.output_of(unit)]
    rows.append(_row(_font(esc(f"{shapes_in} → {fmt_shape(out.shape)}"), t.muted, 10)))
    params = sc.params_of(unit)
    if params:
        count = sum(numel(sc.program[p].shape) or 0 for p in params)
        rows.append(_row(_font(f"{fmt_int(count)} params", t.line, 10)))
        for p in params:
            n = sc.program[p]
            short = n.name[len(unit.name) + 1:] if n.name.startswith(f"{unit.name}.") else n.name
            cell = _font(esc(f"{short} {fmt_shape(n.shape)}"), t.muted, 9)
            g = sc.grad(p)
            value = sc.value(p)
            maps = opts.maps and value is not None and np.ndim(value) == 4
            strips: list[str] = []
            if show_grads and g is not None and f"g:{p}" in opts.blank:
                cell += " " + _font("‖g‖ ____", t.muted, 9)
            elif show_grads and g is not None:
                color = t.grad if mask.shows_grad(p) else HIDDEN
                text = fmt_grad(g, opts.digits)
                if maps:  # the gradient's strip, then its text: one text per param
                    caption, strips = _strip(g, opts, mask.shows_grad(p), True, f"g:{p}")
                    strips.append(_row(_font(esc(f"{text} · {caption}"), color, 9)))
                else:
                    cell += " " + _font(esc(text), color, 9)
            rows.append(_row(cell))
            rows += _note_rows(opts, f"u:{p}")
            if maps:
                caption, strip = _strip(value, opts, True, True, "")  # known from the start
                rows += [_row(_font(esc(caption), t.muted, 9))] + strip + strips
    convs = [sc.program[i] for i in unit.ids if sc.program[i].op in CONV_OPS]
    tip = {"tooltip": _conv_tooltip(sc, convs[0])} if convs else {}
    return dict(shape="box", style="rounded,filled", fillcolor=t.group, margin="0.1,0.05",
                label=_table(rows), **tip)


__all__ = ["Mask", "Options", "draw"]
