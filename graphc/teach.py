"""The driver of graphc's diagrams: loads a spec, runs what the views show (a float64
NumPy trace, later finite differences, a training step) and hands viz a Graph and records.

viz itself reads a Graph and a Trace and never runs anything; this module may.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import graphviz
import numpy as np

from graphc.spec import Graph
from graphc.viz import draw_view, make_options
from graphc.viz.scene import Scene, scene


def load_graph(graph_or_model: Any) -> tuple[Graph, Any]:
    """(Graph, Model or None) of anything `graphc.load` accepts, or of a Model."""
    from graphc.loader import load
    from graphc.runtime import Model

    if isinstance(graph_or_model, Model):
        return graph_or_model.graph, graph_or_model
    return load(graph_or_model), None


def has_defaults(graph: Graph) -> bool:
    """True when every input the graph reads has a default value (so it can be run)."""
    from graphc.passes import forward_program

    prog = forward_program(graph)
    used = {a for n in prog for a in n.args}
    return all("value" in graph.inputs[name] for name, i in prog.inputs.items() if i in used)


def reference(graph: Graph) -> Any:
    """The NumPy reference model of `graph`, in float64: what every view's numbers come from."""
    from graphc.runtime import Model

    return Model(graph, backend="numpy", dtype="float64")


def trace_of(graph: Graph, model: Any = None, inputs: Mapping[str, Any] | None = None) -> Any:
    """A Trace of one forward and backward pass (None when inputs are missing)."""
    if inputs is None and not has_defaults(graph):
        return None
    model = model or reference(graph)
    return model.trace(**dict(inputs or {}))


def scene_for(graph_or_model: Any, trace: Any = None, *, view: str = "values",
              collapse: bool | None = None, inputs: Mapping[str, Any] | None = None,
              compute: bool = True) -> Scene:
    """The Scene of a graph or model, tracing it first when it can be run and none is given."""
    graph, model = load_graph(graph_or_model)
    if trace is None and compute:
        trace = trace_of(graph, model, inputs)
    if trace is not None:
        return scene(graph, trace, view=view, collapse=collapse)
    program, forward = structure(graph, None if model is None else model.program, view)
    return scene(graph, view=view, collapse=collapse, program=program, forward=forward)


def structure(graph: Graph, program: Any = None, view: str = "values") -> tuple[Any, list[str]]:
    """What a diagram without values draws: `program` (a compiled model's) or the graph's
    forward program, with the derived backward graph for view "backward"; and the ids of
    its forward nodes."""
    from graphc.passes import forward_program, grad_program

    base = program or forward_program(graph)
    if view == "backward":
        prog = base
        if base.loss is not None:
            float_inputs = [n for n, i in base.inputs.items() if base[i].is_float]
            prog = grad_program(base, float_inputs, keep_all=True)
        return prog, list(base.nodes)
    return base, [n.id for n in base if n.grad_of is None]


def viz(graph_or_model: Any, trace: Any = None, *, view: str = "values", values: bool = True,
        grads: bool = True, collapse: bool | None = None, theme: str = "default",
        digits: int = 2, rankdir: str = "auto", title: bool = True, maps: bool = False,
        inputs: Mapping[str, Any] | None = None, **views: Any) -> graphviz.Digraph:
    """`graphc.viz`: a diagram of a graph (a Graph, a Model, or anything `graphc.load`
    accepts), traced by the NumPy reference when no trace is given and it can be run.

    view: "forward" (values only), "values" (values above each edge, gradients below) or
    "backward" (the derived backward graph, Σ and sum_to nodes included).
    collapse: draw each layer as one box (True), as a cluster of its primitives (False),
    or decide by size (None). maps: 4-D values, gradients and conv filters as strips of
    heatmaps. inputs: values for the spec's inputs when no trace is
    given (the spec's "value" defaults fill in the rest). Teaching views (docs/viz.md):
    quiz=True (quiz_part="backward", quiz_nodes=[...]), check_grads=True,
    step_diff=True / show_state=True (optimizer="sgd:lr=0.1", steps=1), memory=True (batch).
    """
    opts = make_options(view=view, values=values, grads=grads, theme=theme, digits=digits,
                        rankdir=rankdir, title=title, maps=maps)
    unknown = sorted(set(views) - set(VIEW_OPTIONS))
    if unknown:
        raise TypeError(f"viz() got unknown options {unknown}; teaching views: "
                        f"{', '.join(VIEW_OPTIONS)}")
    if views.get("step_diff") or views.get("show_state"):
        graph, model = load_graph(graph_or_model)
        graph_or_model = model or reference(graph)
    sc = scene_for(graph_or_model, trace, view=view, collapse=collapse, inputs=inputs,
                   compute=values or grads or bool(views))
    if any(views.values()):
        from graphc.runtime import Model

        model = graph_or_model if isinstance(graph_or_model, Model) else None
        quiz = {k: views.pop(k) for k in ("quiz", "quiz_part", "quiz_nodes") if k in views}
        opts = teaching(sc, opts, model, inputs=inputs, **views)[0]
        if quiz.get("quiz"):
            opts = teaching(sc, opts, **quiz)[0]
    return draw_view(sc, opts, view, collapse)


VIEW_OPTIONS = ("quiz", "quiz_part", "quiz_nodes", "check_grads", "optimizer", "step_diff",
                "steps", "show_state", "memory", "batch", "dtype")


def teaching(sc: Scene, opts: Any, model: Any = None, *, quiz: bool = False,
             quiz_part: str = "all", quiz_nodes: list[str] | None = None,
             check_grads: bool = False, optimizer: str | None = None, step_diff: bool = False,
             steps: int = 1, show_state: bool = False, memory: bool = False,
             batch: int | None = None, dtype: str = "float32",
             inputs: Mapping[str, Any] | None = None) -> tuple[Any, list[Any]]:
    """`opts` with what the chosen teaching views add (blanks, notes, tooltips), and the
    stepper's extra frames (a training step's updates), computed here: a training step for
    --step-diff and --show-state, central differences for --check-grads, the backward
    graph's kept values for --memory."""
    from dataclasses import replace

    from graphc.errors import InputError
    from graphc.viz import teaching as tv

    notes: dict[str, list[tuple[str, str]]] = {}
    tips: dict[str, str] = {}
    extra: list[Any] = []
    needs_trace = quiz or check_grads or step_diff or show_state
    if needs_trace and sc.values is None:
        raise InputError("this view needs values: pass --set NAME=VALUE for the inputs "
                         "without a default \"value\"")
    blank = frozenset()
    if quiz:
        try:
            blank = tv.quiz_blanks(sc, quiz_part, quiz_nodes)
        except ValueError as e:
            raise InputError(str(e)) from None
        blank = blank - {f"g:{sc.program.loss}"}  # the seed ∂L/∂L = 1 is given
    if check_grads:
        from graphc.teach_views import grad_checks

        trace = _as_trace(sc)
        n, t = tv.check_marks(sc, grad_checks(trace, sc.forward))
        notes.update(n)
        tips.update(t)
    if step_diff or show_state:
        from graphc.teach_views import parse_optimizer, train_steps

        if model is None:
            raise InputError("--step-diff and --show-state need the model: give the spec")
        opt = parse_optimizer(optimizer or "sgd:lr=0.1")
        run = train_steps(model, opt, inputs, steps)
        extra = tv.update_frames(sc, run.before, run.after, optimizer or "sgd:lr=0.1",
                                 opt.update_lines(),
                                 opts.digits, run.steps)
        if step_diff:
            notes.update(tv.step_notes(sc, run.before, run.after, opts.digits, run.steps))
        if show_state:
            for k, rows in tv.state_notes(sc, run.state, run.effective, opts.digits).items():
                notes.setdefault(k, []).extend(rows)
    if memory:
        from graphc.teach_views import memory as memory_of

        m = memory_of(sc.graph, batch or _batch_of(sc), dtype)
        notes.update(tv.memory_notes(sc, m.kept))
        from graphc.viz.style import fmt_bytes

        extra = (f"memory kept for the backward pass: {fmt_bytes(m.total)} "
                 f"(peak {fmt_bytes(m.peak)}) at batch {m.batch}",)
        opts = replace(opts, caption=opts.caption + extra, title=True)
    return replace(opts, blank=blank, notes={**opts.notes, **notes},
                   tooltips={**opts.tooltips, **tips}), extra


def _as_trace(sc: Scene) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(program=sc.program, by_id=sc.values)


def _batch_of(sc: Scene) -> int:
    """The batch size of the traced inputs (a symbolic first dimension), else 1."""
    for i in sc.program.inputs.values():
        n = sc.program[i]
        v = sc.value(i)
        if n.shape and not isinstance(n.shape[0], int) and v is not None and np.ndim(v):
            return int(np.shape(v)[0])
    return 1


def repr_svg(graph: Graph) -> str:
    """What Jupyter shows for a Graph (registered as its `_repr_svg_` by the package root)."""
    return viz(graph)._repr_image_svg_xml()


__all__ = ["has_defaults", "load_graph", "reference", "repr_svg", "scene_for", "structure",
           "teaching", "trace_of", "viz"]
