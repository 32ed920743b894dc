"""`load`: a spec (file, JSON text, dict, or Graph) -> a validated Graph, lowered once.

It runs the front end and then the lower pass (every semantic and shape check), so it
sits just above passes; the package root adds ONNX files on top of it.
"""

from __future__ import annotations

from typing import Any

from graphc import spec
from graphc.passes import lower
from graphc.spec import Graph


def load(src: Any) -> Graph:
    """A validated Graph from a spec file path, JSON text, a dict, or a Graph."""
    if isinstance(src, Graph):
        return src
    data, source = spec.read(src)
    graph = spec.from_dict(data, source)
    lower(graph)  # every semantic and shape check happens here, once, at load time
    return graph
