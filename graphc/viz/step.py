"""Step-through frames of one forward and backward pass, in a fixed order.

1. forward: each source (input, param), then each op or layer in schedule order;
   the caption is the arithmetic the node performs, with its numbers.
2. backward: the loss (gradient 1), then each op or layer in reverse schedule order,
   captioned "upstream gradient × local derivative = result" for each of its inputs;
   right after the last contribution to a forked value arrives, a Σ frame sums them.

Each frame shows only what has been computed so far (later numbers are laid out but
invisible, so the diagram does not move between frames) and highlights its node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from graphc.ops import REGISTRY
from graphc.viz.dot import Mask
from graphc.viz.scene import Scene, Unit, Wire
from graphc.viz.style import fmt, fmt_array, fmt_grad, fmt_shape, is_small

INFIX = {"+", "−", "×", "÷", "^"}
PREFIX = {"−x": "−{}", "1/x": "1/{}", "x²": "{}²", "|x|": "|{}|", "ᵀ": "{}ᵀ", "@": "{} @ {}"}


@dataclass
class Frame:
    phase: str  # "forward" or "backward"
    title: str  # e.g. "t0 = w0 × x0"
    caption: list[str]  # the arithmetic, one line each
    mask: Mask
    node: str  # DOT name of the highlighted node
    notes: bool = False  # draw the teaching views' notes (a training step's frames)


def frames(sc: Scene, digits: int = 2) -> list[Frame]:
    """Every frame of the stepper for a traced Scene."""
    if sc.values is None:
        raise ValueError("step-through frames need values: give a trace, or inputs "
                         "(--set NAME=VALUE) or default \"value\"s in the spec")
    w = _Writer(sc, digits)
    return w.forward() + (w.backward() if sc.program.loss is not None
                          and sc.program.grad_map else [])


class _Writer:
    def __init__(self, sc: Scene, digits: int):
        self.sc, self.d = sc, digits
        self.loss = sc.graph.loss or "L"

    # numbers and names --------------------------------------------------------------
    def n(self, x: np.ndarray | float, paren: bool = False) -> str:
        a = np.asarray(x)
        if a.ndim == 0:
            s = fmt(float(a), self.d) if a.dtype.kind == "f" else str(a.item())
            return f"({s})" if paren and s.startswith("-") else s
        return fmt_array(a, self.d)

    def name(self, i: str) -> str:
        return self.sc.label(i)

    def dl(self, i: str) -> str:
        return f"∂{self.loss}/∂{self.name(i)}"

    def scalar(self, *xs: np.ndarray | None) -> bool:
        return all(x is not None and np.asarray(x).ndim == 0 for x in xs)

    # forward ------------------------------------------------------------------------
    def forward(self) -> list[Frame]:
        sc, out, seen = self.sc, [], set()
        for unit in sc.units.values():
            if unit.kind == "terminal":
                continue
            seen.update(unit.ids)
            hot = {f"val_{w.value}" for w in sc.wires if w.dst == unit.key}
            hot |= {f"val_{i}" for i in unit.ids}
            title, caption = self.forward_caption(unit)
            out.append(Frame("forward", title, caption, Mask(set(seen), set(), unit.key, hot),
                             unit.key))
        return out

    def expression(self, node_id: str, numbers: bool) -> str:
        n = self.sc.program[node_id]
        op = REGISTRY[n.op]
        args = [self.n(self.sc.value(a), paren=True) if numbers else self.name(a)
                for a in n.args]
        if op.symbol in INFIX and len(args) == 2:
            return f"{args[0]} {op.symbol} {args[1]}"
        if op.symbol in PREFIX and len(args) == PREFIX[op.symbol].count("{}"):
            return PREFIX[op.symbol].format(*args)
        if numbers:  # a function call needs no parentheses around a negative argument
            args = [self.n(self.sc.value(a)) for a in n.args]
        attrs = [f"{k}={v}" for k, v in n.attrs.items() if k != "n" and v is not None]
        return f"{op.symbol}({', '.join(args + ([] if numbers else attrs))})"

    def forward_caption(self, unit: Unit) -> tuple[str, list[str]]:
        sc = self.sc
        if unit.kind == "source":
            n = sc.program[unit.ids[0]]
            v = sc.value(n.id)
            kind = "an input" if n.op == "input" else "a parameter"
            return (f"{n.name} = {self.n(v)}", [f"{n.name} is {kind}: {n.name} = {self.n(v)}"
                                                + ("" if np.ndim(v) == 0 else
                                                   f"   {fmt_shape(np.shape(v))}")])
        if unit.kind == "group":
            return self.group_forward(unit)
        i = unit.ids[0]
        y = sc.value(i)
        expr = self.expression(i, numbers=False)
        title = f"{self.name(i)} = {expr}"
        if self.scalar(y, *[sc.value(a) for a in sc.program[i].args]):
            return title, [f"{title} = {self.expression(i, numbers=True)} = {self.n(y)}"]
        shapes = " , ".join(fmt_shape(np.shape(sc.value(a))) for a in sc.program[i].args)
        return title, [f"{title}    {shapes} → {fmt_shape(np.shape(y))}",
                       f"{self.name(i)} = {fmt_array(y, self.d)}"]

    def group_forward(self, unit: Unit) -> tuple[str, list[str]]:
        sc = self.sc
        layer = sc.layer(unit)
        ins = [w.value for w in sc.wires if w.dst == unit.key]
        names = [str(a) for a in layer.get("inputs", [])] or [self.name(a) for a in ins]
        attrs = ", ".join(f"{k}={v}" for k, v in (layer.get("attrs") or {}).items())
        call = f"{layer.get('op', 'layer')}({', '.join(names)}"
        call += f"; {attrs})" if attrs else ")"
        y_id = sc.output_of(unit)
        y = sc.value(y_id)
        lines = [f"{unit.name} = {call}    "
                 + ", ".join(fmt_shape(np.shape(sc.value(a))) for a in ins)
                 + f" → {fmt_shape(np.shape(y))}",
                 f"{unit.name} = {fmt_array(y, self.d)}"]
        params = sc.params_of(unit)
        if params:
            shapes = [f"{sc.program[p].name} {fmt_shape(sc.program[p].shape)}" for p in params]
            lines.append("with " + ", ".join(shapes))
        return f"{unit.name} = {call}", lines

    # backward -----------------------------------------------------------------------
    def backward(self) -> list[Frame]:
        """Each edge's gradient appears at the frame that derives it: what is revealed is
        tracked by edge (value, or fork branch), not by backward node, since an add hands
        one gradient node to all its inputs."""
        sc = self.sc
        prog = sc.program
        values = set(sc.forward)
        shown: set[str] = set()  # Mask.grads keys: value ids and fork branches "v#j"
        done: set[tuple[str, int]] = set()  # wires whose contribution has been derived
        out: list[Frame] = []
        term = next(u for u in sc.units.values() if "loss" in u.roles)
        self._derive(next(w for w in sc.wires if w.dst == term.key), shown, done)
        lname = self.name(prog.loss)
        out.append(Frame("backward", f"{self.dl(prog.loss)} = 1",
                         [f"The backward pass starts at the loss: ∂{self.loss}/∂{lname} = 1"],
                         Mask(values, set(shown), term.key, {f"val_{prog.loss}"}), term.key))
        for unit in reversed([u for u in sc.units.values() if u.kind in ("op", "group")]):
            y = sc.output_of(unit)
            wires = [w for w in sc.wires if w.dst == unit.key and w.contribs]
            if sc.grad_id(y) is None or not wires:
                continue
            for w in wires:
                self._derive(w, shown, done)
            shown.update(p for p in sc.params_of(unit) if sc.grad_id(p))
            hot = {f"val_{y}"} | {f"val_{w.value}" for w in wires}
            hot |= {f"br_{w.value}_{j}" for w in wires
                    for j, x in enumerate(sc.wires_of(w.value)) if x is w}
            title, caption = self.backward_caption(unit, wires)
            out.append(Frame("backward", title, caption, Mask(values, set(shown), unit.key, hot),
                             unit.key))
            for w in wires:  # a fork whose last contribution just arrived: sum them
                a = w.value
                branches = [(a, j) for j, x in enumerate(sc.wires_of(a)) if x.contribs]
                if sc.is_fork(a) and a not in shown and set(branches) <= done:
                    shown.add(a)
                    out.append(self.fork_frame(a, values, shown))
        return out

    def _derive(self, w: Wire, shown: set[str], done: set[tuple[str, int]]) -> None:
        """Wire `w`'s gradient contribution is derived now: show it on its edge."""
        j = next(k for k, x in enumerate(self.sc.wires_of(w.value)) if x is w)
        done.add((w.value, j))
        shown.add(f"{w.value}#{j}" if self.sc.is_fork(w.value) else w.value)

    def backward_caption(self, unit: Unit, wires: list[Wire]) -> tuple[str, list[str]]:
        sc = self.sc
        y = sc.output_of(unit)
        g = sc.grad(y)
        lines = []
        if unit.kind == "group":
            lines.append(f"back through layer {unit.name}: {self.dl(y)} = {fmt_grad(g, self.d)}")
            for w in wires:
                lines.append(f"{self.dl(w.value)} = {fmt_grad(sc.wire_grad(w), self.d)}")
            for p in sc.params_of(unit):
                if sc.grad(p) is not None:
                    lines.append(f"{self.dl(p)} = {fmt_grad(sc.grad(p), self.d)}")
            return f"back through {unit.name}", lines
        op = REGISTRY[sc.program[y].op]
        for w in wires:
            c = sc.wire_grad(w)
            a = w.value
            local = f"∂{self.name(y)}/∂{self.name(a)}"
            part = f" (the part through {self.name(y)})" if sc.is_fork(a) else ""
            head = f"{self.dl(a)}{part} = {self.dl(y)} × {local}"
            g_arr, c_arr = np.asarray(g), np.asarray(c)
            if self.scalar(g, c):
                gf = float(g)
                if gf != 0.0:
                    lines.append(f"{head} = {self.n(g)} × {self.n(c / gf, paren=True)}"
                                 f" = {self.n(c)}")
                else:
                    lines.append(f"{head} = 0 × {local} = {self.n(c)}")
            elif (op.kind == "elementwise" and g_arr.shape == c_arr.shape and is_small(g_arr)
                  and np.all(g_arr != 0)):  # upstream ⊙ local derivative, element by element
                lines.append(f"{head} = {fmt_array(g_arr, self.d)} ⊙ "
                             f"{fmt_array(c_arr / g_arr, self.d)} = {fmt_array(c_arr, self.d)}")
            else:
                lines.append(f"{head}:  {fmt_grad(g, self.d)} → {fmt_grad(c, self.d)}"
                             f"   {fmt_shape(np.shape(c))}")
        if op.gradient:
            lines.append(f"local derivative of {op.symbol} ({op.name}): {op.gradient}")
        return f"{self.dl(y)} flows back through {op.symbol}", lines

    def fork_frame(self, a: str, values: set[str], known: set[str]) -> Frame:
        sc = self.sc
        wires = [w for w in sc.wires_of(a) if w.contribs]
        terms = [f"{self.dl(self._consumer(w))} × ∂{self.name(self._consumer(w))}/∂{self.name(a)}"
                 for w in wires]
        grads = [sc.wire_grad(w) for w in wires]
        total = sc.grad(a)
        line1 = f"{self.dl(a)} = " + " + ".join(terms)
        if self.scalar(total, *grads):
            line2 = "= " + " + ".join(self.n(x, paren=True) for x in grads) + f" = {self.n(total)}"
        elif all(is_small(x) for x in grads):
            line2 = "= " + " + ".join(fmt_array(x, self.d) for x in grads) + \
                    f" = {fmt_array(total, self.d)}"
        else:
            line2 = "= Σ of " + ", ".join(fmt_grad(x, self.d) for x in grads) + \
                    f" = {fmt_grad(total, self.d)}"
        hot = {f"val_{a}"} | {f"br_{a}_{j}" for j in range(len(sc.wires_of(a)))}
        caption = [f"{self.name(a)} feeds {len(wires)} consumers: "
                   "the backward pass sums their contributions", line1, line2]
        return Frame("backward", f"Σ at the fork of {self.name(a)}", caption,
                     Mask(values, set(known), f"fork_{a}", hot), f"fork_{a}")

    def _consumer(self, w: Wire) -> str:
        if w.consumer is not None:
            unit = self.sc.units[w.dst]
            return self.sc.output_of(unit) if unit.kind == "group" else w.consumer
        return self.sc.program.loss or w.value
