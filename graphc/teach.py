"""The driver of graphc's diagrams: loads a spec, runs what the views show (a float64
NumPy trace, later finite differences, a training step) and hands viz a Graph and records.

viz itself reads a Graph and a Trace and never runs anything; this module may.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import graphviz

from graphc.spec import Graph
from graphc.viz import draw_view, make_options
from graphc.viz.scene import Scene, scene


def load_graph(graph_or_model: Any) -> tuple[Graph, Any]:
    """(Graph, Model or None) of anything `graphc.load` accepts, or of a Model."""
    from graphc.runtime import Model

    if isinstance(graph_or_model, Model):
        return graph_or_model.graph, graph_or_model
    if isinstance(graph_or_model, Graph):
        return graph_or_model, None
    from graphc import spec
    from graphc.passes import lower

    data, source = spec.read(graph_or_model)
    graph = spec.from_dict(data, source)
    lower(graph)
    return graph, None


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
    program = None if model is None or trace is not None else model.program
    return scene(graph, trace, view=view, collapse=collapse, program=program)


def viz(graph_or_model: Any, trace: Any = None, *, view: str = "values", values: bool = True,
        grads: bool = True, collapse: bool | None = None, theme: str = "default",
        digits: int = 2, rankdir: str = "auto", title: bool = True,
        inputs: Mapping[str, Any] | None = None) -> graphviz.Digraph:
    """`graphc.viz`: a diagram of a graph (a Graph, a Model, or anything `graphc.load`
    accepts), traced by the NumPy reference when no trace is given and it can be run.

    view: "forward" (values only), "values" (values above each edge, gradients below) or
    "backward" (the derived backward graph, Σ and sum_to nodes included).
    collapse: draw each layer as one box (True), as a cluster of its primitives (False),
    or decide by size (None). inputs: values for the spec's inputs when no trace is
    given (the spec's "value" defaults fill in the rest).
    """
    opts = make_options(view=view, values=values, grads=grads, theme=theme, digits=digits,
                        rankdir=rankdir, title=title)
    sc = scene_for(graph_or_model, trace, view=view, collapse=collapse, inputs=inputs,
                   compute=values or grads)
    return draw_view(sc, opts, view, collapse)


def repr_svg(graph: Graph) -> str:
    """What Jupyter shows for a Graph (registered as its `_repr_svg_` by the package root)."""
    return viz(graph)._repr_image_svg_xml()


__all__ = ["has_defaults", "load_graph", "reference", "repr_svg", "scene_for", "trace_of",
           "viz"]
