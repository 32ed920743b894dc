"""The visual inspector: annotated diagrams of a graph's values and gradients, and
step-through frames of one forward and backward pass.

    graphc.viz(graph_or_model, trace=None, view="values")   # -> graphviz.Digraph

viz reads a Graph and a Trace and nothing else; when given a spec whose inputs all have
default values and no trace, it runs the NumPy reference (float64) to get one.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping
from typing import Any

import graphviz

from graphc.viz.dot import Mask, Options, draw, draw_backward
from graphc.viz.scene import Scene, build_scene, forward_ids
from graphc.viz.style import THEMES, get_theme

VIEWS = ("forward", "values", "backward")


def viz(graph_or_model: Any, trace: Any = None, *, view: str = "values", values: bool = True,
        grads: bool = True, collapse: bool | None = None, theme: str = "default",
        digits: int = 2, rankdir: str = "auto", title: bool = True,
        inputs: Mapping[str, Any] | None = None) -> graphviz.Digraph:
    """A diagram of a graph (a Graph, a Model, or anything `graphc.load` accepts).

    view: "forward" (values only), "values" (values above each edge, gradients below) or
    "backward" (the derived backward graph, Σ and sum_to nodes included).
    collapse: draw each layer as one box (True), as a cluster of its primitives (False),
    or decide by size (None). inputs: values for the spec's inputs when no trace is
    given (the spec's "value" defaults fill in the rest).
    """
    sc = scene_for(graph_or_model, trace, view=view, collapse=collapse, inputs=inputs,
                   compute=values or grads)
    opts = make_options(view=view, values=values, grads=grads, theme=theme, digits=digits,
                        rankdir=rankdir, title=title)
    if view == "backward":
        return draw_backward(sc, opts, clusters=collapse is False)
    return draw(sc, opts)


def make_options(view: str = "values", values: bool = True, grads: bool = True,
                 theme: str = "default", digits: int = 2, rankdir: str = "auto",
                 title: bool = True) -> Options:
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of: {', '.join(VIEWS)}")
    if rankdir not in ("auto", "LR", "TB"):
        raise ValueError(f"rankdir must be auto, LR or TB, not {rankdir!r}")
    return Options(theme=get_theme(theme), values=values, grads=grads and view != "forward",
                   digits=int(digits), rankdir=rankdir, title=title)


def scene_for(graph_or_model: Any, trace: Any = None, *, view: str = "values",
              collapse: bool | None = None, inputs: Mapping[str, Any] | None = None,
              compute: bool = True) -> Scene:
    """The Scene of a graph or model: its trace (given or computed) and drawn units."""
    from graphc.passes import forward_program, grad_program
    from graphc.runtime import Model

    if isinstance(graph_or_model, Model):
        graph, model = graph_or_model.graph, graph_or_model
    else:
        import graphc

        graph, model = graphc.load(graph_or_model), None
    if trace is None and compute and (inputs is not None or _has_defaults(graph)):
        if model is None:
            model = Model(graph, backend="numpy", dtype="float64")
        trace = model.trace(**dict(inputs or {}))
    if trace is not None:
        program, fwd, values = trace.program, forward_ids(trace.program, trace.steps), trace.by_id
    else:
        program = forward_program(graph) if model is None else model.program
        if view == "backward" and program.loss is not None:
            float_inputs = [n for n, i in program.inputs.items() if program[i].is_float]
            program = grad_program(program, float_inputs, keep_all=True)
        fwd, values = forward_ids(program, None), None
        if view == "backward":
            base = forward_program(graph) if model is None else model.program
            fwd = list(base.nodes)
    return build_scene(graph, program, fwd, values, collapse)


def _has_defaults(graph: Any) -> bool:
    """True when every input the graph reads has a default value (so it can be run)."""
    from graphc.passes import forward_program

    prog = forward_program(graph)
    used = {a for n in prog for a in n.args}
    return all("value" in graph.inputs[name] for name, i in prog.inputs.items() if i in used)


class _CallableModule(types.ModuleType):
    """`graphc.viz` is both this package and the function: importing the package
    replaces the attribute `graphc.viz`, so the package itself must be callable."""

    def __call__(self, graph_or_model: Any, trace: Any = None, **options: Any):
        return viz(graph_or_model, trace=trace, **options)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["THEMES", "VIEWS", "Mask", "Options", "Scene", "scene_for", "viz"]
