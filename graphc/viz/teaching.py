"""What the teaching views add to a diagram, from records handed in (viz computes nothing):
the quiz's blanks and questions, one step's diff, optimizer state, memory, gradient marks.

Each returns Options fields (`blank`, `notes`, `tooltips`); graphc.teach runs what they show.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from graphc.viz.dot import Mask
from graphc.viz.scene import Scene
from graphc.viz.step import Frame, frames
from graphc.viz.style import fmt, fmt_array, fmt_grad

QUIZ_PARTS = ("all", "backward")


def _wanted(sc: Scene, ids: Iterable[str], nodes: Iterable[str] | None) -> list[str]:
    if nodes is None:
        return list(ids)
    names = set(nodes)
    known = {sc.program[i].name for i in sc.forward if sc.program[i].name is not None}
    unknown = sorted(names - known)
    if unknown:
        raise ValueError(f"--quiz-nodes: no node {', '.join(map(repr, unknown))}; the graph "
                         f"has: {', '.join(sorted(known))}")
    return [i for i in ids if sc.program[i].name in names]


def quiz_blanks(sc: Scene, part: str = "all", nodes: Iterable[str] | None = None) -> frozenset:
    """Mask keys drawn as empty boxes: every computed value (not inputs and params, which
    the exercise gives) and every gradient; `part="backward"`: the gradients only;
    `nodes`: only those spec names' numbers."""
    if part not in QUIZ_PARTS:
        raise ValueError(f"quiz part must be one of {', '.join(QUIZ_PARTS)}, not {part!r}")
    keys: set[str] = set()
    given = ("input", "param", "const")
    if part == "all":
        keys |= {f"v:{i}" for i in _wanted(sc, sc.forward, nodes)
                 if sc.program[i].op not in given}
    for v in _wanted(sc, sc.forward, nodes):
        if sc.grad_id(v) is None:
            continue
        keys.add(f"g:{v}")
        keys |= {f"g:{v}#{j}" for j in range(len(sc.wires_of(v)))}
    return frozenset(keys)


def questions(sc: Scene, blank: frozenset, digits: int = 2) -> list[dict[str, Any]]:
    """The quiz stepper's questions: each blank gradient in the order the backward pass
    derives it (scalars only), with its prompt, its answer and the tolerance of a check."""
    out, asked = [], set()
    loss = sc.graph.loss or "L"
    for f in frames(sc, digits):
        for key in sorted(f.mask.grads or (), key=lambda k: (k in asked, k)):
            if key in asked or f"g:{key}" not in blank:
                continue
            asked.add(key)
            v, _, j = key.partition("#")
            g = sc.wire_grad(sc.wires_of(v)[int(j)]) if j else sc.grad(v)
            if g is None or np.ndim(g) != 0:
                continue
            prompt = f"∂{loss}/∂{sc.label(v)}"
            if j:
                w = sc.wires_of(v)[int(j)]
                through = sc.label(w.consumer) if w.consumer else loss
                prompt += f" (the part through {through})"
            out.append({"key": key, "prompt": prompt, "answer": fmt(float(g), digits),
                        "value": float(g), "tol": 0.5 * 10 ** -digits + 1e-9,
                        "node": f"val_{v}" if not j else f"br_{v}_{j}"})
    return out


def step_notes(sc: Scene, before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
               digits: int = 2, steps: int = 1) -> dict[str, list[tuple[str, str]]]:
    """Each param's value before and after the step(s) and the change, coloured by sign."""
    notes: dict[str, list[tuple[str, str]]] = {}
    by_name = {sc.program[i].name: i for i in sc.program.params.values()}
    for name, b in before.items():
        if name not in by_name:
            continue
        a = np.asarray(after[name])
        d = a - np.asarray(b)
        total = float(np.sum(d))
        role = "up" if total > 0 else "down" if total < 0 else "note"
        label = "step" if steps == 1 else f"{steps} steps"
        if np.ndim(d) == 0:
            sign = "+" if float(d) > 0 else ""
            rows = [(f"{label}: {fmt(float(b), digits)} → {fmt(float(a), digits)}", role),
                    (f"Δ {sign}{fmt(float(d), digits)}", role)]
        else:
            rows = [(f"{label}: Δ {fmt_array(d, digits)}", role),
                    (f"‖Δ‖ {fmt(float(np.linalg.norm(d)), digits)}", role)]
        notes[f"u:{by_name[name]}"] = rows
    return notes


def update_frames(sc: Scene, before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray],
                  optimizer: str, lines: list[str], digits: int = 2,
                  steps: int = 1) -> list[Frame]:
    """The stepper's last frames: each param's update, the optimizer's rule as caption."""
    by_name = {sc.program[i].name: i for i in sc.program.params.values()}
    out = []
    label = "one step" if steps == 1 else f"{steps} steps"
    for name, b in before.items():
        pid = by_name.get(name)
        if pid is None or pid not in sc.unit_of:
            continue
        a, d = np.asarray(after[name]), np.asarray(after[name]) - np.asarray(b)
        if np.ndim(d) == 0:
            sign = "+" if float(d) > 0 else ""
            change = (f"{name}: {fmt(float(b), digits)} → {fmt(float(a), digits)}"
                      f"  (Δ {sign}{fmt(float(d), digits)})")
        else:
            change = f"{name}: Δ {fmt_grad(d, digits)}"
        out.append(Frame("update", f"{label} of {optimizer} updates {name}",
                         [change, *lines], Mask(None, None, sc.unit_of[pid], set()),
                         sc.unit_of[pid], notes=True))
    return out


def state_notes(sc: Scene, state: Mapping[str, Mapping[str, np.ndarray]],
                effective: Mapping[str, np.ndarray] | None = None,
                digits: int = 2) -> dict[str, list[tuple[str, str]]]:
    """An optimizer's state beside each param (moments, momentum, sums) and its effective
    step size; `state` is {param: {slot: array}}."""
    notes: dict[str, list[tuple[str, str]]] = {}
    by_name = {sc.program[i].name: i for i in sc.program.params.values()}
    for name, slots in state.items():
        if name not in by_name:
            continue
        rows = [(f"{slot} {fmt_grad(np.asarray(x), digits)}", "note") for slot, x in slots.items()]
        if effective is not None and name in effective:
            rows.append((f"effective step {fmt_grad(np.asarray(effective[name]), digits)}",
                         "note"))
        notes.setdefault(f"u:{by_name[name]}", []).extend(rows)
    return notes


def memory_notes(sc: Scene, kept: Mapping[str, int]) -> dict[str, list[tuple[str, str]]]:
    """Under each value the backward pass keeps: how many bytes."""
    from graphc.viz.style import fmt_bytes

    return {f"v:{i}": [(f"kept {fmt_bytes(b)}", "note")] for i, b in kept.items()}


def check_marks(sc: Scene, checks: Mapping[str, tuple[bool, float, str]]
                ) -> tuple[dict[str, list[tuple[str, str]]], dict[str, str]]:
    """✓ or ✗ beside each gradient checked against central differences; the relative error
    (and why, at a non-differentiable point) on hover. `checks`: {value id: (ok, rel, why)}."""
    notes, tips = {}, {}
    for v, (ok, rel, why) in checks.items():
        mark = "✓" if ok else "✗"
        notes[f"g:{v}"] = [(mark, "ok" if ok else "bad")]
        tip = f"∂/∂{sc.label(v)}: relative error {rel:.1e} against central differences"
        tips[f"val_{v}"] = tip + (f"; {why}" if why else "")
        if sc.is_fork(v):
            tips[f"fork_{v}"] = tips[f"val_{v}"]
    return notes, tips


__all__ = ["QUIZ_PARTS", "check_marks", "memory_notes", "questions", "quiz_blanks",
           "state_notes", "step_notes", "update_frames"]
