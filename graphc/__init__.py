"""graphc: a declarative computation-graph compiler for neural networks.

    g = graphc.load("spec.json")             # or a dict, JSON text, or graphc.Builder
    m = graphc.compile(g)                    # backend "cpu" (Numba), "numpy" or "cuda"
    m.forward(x=X); m.grad(x=X, y=Y); m.trace(x=X, y=Y)
"""

from __future__ import annotations

from typing import Any

from graphc.errors import CompileError, GraphcError, InputError, SpecError
from graphc.spec import Graph
from graphc.sugar import F
from graphc.version import __version__


def load(src: Any) -> Graph:
    """A validated Graph from a spec file path, JSON text, a dict, or a Graph; a path
    ending in .onnx is read by graphc.onnx."""
    import os

    from graphc import loader

    if isinstance(src, (str, os.PathLike)) and str(src).lower().endswith(".onnx"):
        from graphc import onnx

        return onnx.load(src)
    return loader.load(src)


def compile(graph: Any, backend: str = "cpu", dtype: str = "float32", **options: Any):
    """A runnable Model of `graph` (a Graph or anything `load` accepts)."""
    from graphc.runtime import Model

    return Model(load(graph), backend=backend, dtype=dtype, **options)


def _viz(graph_or_model: Any, trace: Any = None, **options: Any):
    """A graphviz.Digraph of a graph, with values and gradients when given a trace."""
    from graphc.teach import viz

    return viz(graph_or_model, trace=trace, **options)


def _repr_svg(graph: Graph) -> str:
    from graphc.teach import repr_svg

    return repr_svg(graph)


from graphc import optim, schedules, viz  # noqa: E402  (viz: graphviz loads on first use)
from graphc import spec as _spec  # noqa: E402
from graphc.builder import Builder  # noqa: E402  (needs the names above)

# hooks, so that neither the front end nor viz imports upward: `graphc.viz(...)` and a
# Graph in Jupyter go through the driver graphc.teach, which runs the NumPy reference
viz.DRIVER = _viz
_spec.DISPLAY = _repr_svg

def __getattr__(name: str) -> Any:
    if name == "onnx":  # graphc.onnx needs the optional onnx package: imported on first use
        import importlib

        return importlib.import_module("graphc.onnx")
    raise AttributeError(f"module 'graphc' has no attribute {name!r}")


__all__ = ["Builder", "CompileError", "F", "Graph", "GraphcError", "InputError", "SpecError",
           "compile", "load", "optim", "schedules", "viz", "__version__"]
