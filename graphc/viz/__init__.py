"""The visual inspector: annotated diagrams of a graph's values and gradients, and
step-through frames of one forward and backward pass.

    graphc.viz(graph_or_model, trace=None, view="values")   # -> graphviz.Digraph

viz reads a Graph and a Trace (or, for the structure alone, a Program) that its caller
computed, and nothing else: it never runs a model or a pass. `graphc.viz`, called as a
function, goes through the driver `graphc.teach`, which computes them.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

from graphc.spec import Graph
from graphc.viz.scene import Scene, build_scene, forward_ids, scene
from graphc.viz.style import THEMES, get_theme

VIEWS = ("forward", "values", "backward")
DRIVER: Callable[..., Any] | None = None  # set by the package root: graphc.teach.viz
_LAZY = {"Mask", "Options", "draw", "draw_backward"}  # graphviz loads on the first diagram


def viz(graph: Graph, trace: Any = None, *, view: str = "values", values: bool = True,
        grads: bool = True, collapse: bool | None = None, theme: str = "default",
        digits: int = 2, rankdir: str = "auto", title: bool = True, maps: bool = False,
        program: Any = None, forward: list[str] | None = None) -> Any:
    """A diagram (graphviz.Digraph) of a Graph and a Trace of it, or of a Program (the
    structure only), both computed by the caller."""
    opts = make_options(view=view, values=values, grads=grads, theme=theme, digits=digits,
                        rankdir=rankdir, title=title, maps=maps)
    sc = scene(graph, trace, view=view, collapse=collapse, program=program, forward=forward)
    return draw_view(sc, opts, view, collapse)


def draw_view(sc: Scene, opts: Any, view: str, collapse: bool | None = None) -> Any:
    """The diagram of a Scene in one of VIEWS."""
    from graphc.viz.backward import draw_backward
    from graphc.viz.dot import draw

    if view == "backward":
        return draw_backward(sc, opts, clusters=collapse is False)
    return draw(sc, opts)


def make_options(view: str = "values", values: bool = True, grads: bool = True,
                 theme: str = "default", digits: int = 2, rankdir: str = "auto",
                 title: bool = True, maps: bool = False) -> Any:
    from graphc.viz.dot import Options

    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; choose one of: {', '.join(VIEWS)}")
    if rankdir not in ("auto", "LR", "TB"):
        raise ValueError(f"rankdir must be auto, LR or TB, not {rankdir!r}")
    return Options(theme=get_theme(theme), values=values, grads=grads and view != "forward",
                   digits=int(digits), rankdir=rankdir, title=title, maps=maps)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from graphc.viz import backward, dot

        return getattr(backward if name == "draw_backward" else dot, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _CallableModule(types.ModuleType):
    """`graphc.viz` is both this package and the function: importing the package
    replaces the attribute `graphc.viz`, so the package itself must be callable."""

    def __call__(self, graph_or_model: Any, trace: Any = None, **options: Any) -> Any:
        if DRIVER is not None:
            return DRIVER(graph_or_model, trace=trace, **options)
        return viz(graph_or_model, trace=trace, **options)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["DRIVER", "THEMES", "VIEWS", "Mask", "Options", "Scene", "build_scene", "draw_view",
           "forward_ids", "make_options", "scene", "viz"]
