"""ONNX in and out (`pip install graphc[onnx]`): a front end beside `graphc.spec` and a
writer beside `Graph.to_json`. graphc derives the backward graph itself, so only the
forward graph crosses.

    g = graphc.onnx.load("model.onnx")      # a graphc.Graph, initializers as params
    graphc.onnx.export(g_or_model, "m.onnx")
    graphc.onnx.backend                     # onnx.backend.base.Backend over graphc
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from graphc.errors import GraphcError, SpecError

try:
    import onnx as _onnx
except ImportError:  # pragma: no cover - the extra is missing
    _onnx = None


def _need_onnx() -> Any:
    if _onnx is None:
        raise GraphcError("ONNX support needs the onnx package: pip install 'graphc[onnx]'")
    return _onnx


def read(src: Any) -> tuple[Any, str | None]:
    """An onnx.ModelProto and its source name from a path, bytes or a ModelProto."""
    onnx = _need_onnx()
    if isinstance(src, onnx.ModelProto):
        return src, None
    if isinstance(src, (bytes, bytearray)):
        return onnx.load_from_string(bytes(src)), None
    path = Path(src)
    if not path.exists():
        raise SpecError("no such file", source=str(path), hint="check the path")
    try:
        return onnx.load(str(path)), str(path)
    except Exception as e:  # noqa: BLE001 - protobuf's errors are not ONNX's
        raise SpecError(f"not a readable ONNX model ({type(e).__name__}: {e})",
                        source=str(path)) from None


def to_spec(src: Any, outputs: list[str] | None = None) -> dict[str, Any]:
    """The graphc spec dict (params' values inline) of an ONNX model."""
    from graphc.onnx.reader import read_model

    model, source = read(src)
    return read_model(model, source, outputs=outputs)


def load(src: Any, outputs: list[str] | None = None):
    """A validated graphc.Graph of an ONNX model (a path, bytes or onnx.ModelProto);
    `outputs` keeps only some of the model's outputs (e.g. a classifier's probabilities
    without its integer label)."""
    from graphc import spec
    from graphc.onnx.reader import read_model
    from graphc.passes import lower

    model, source = read(src)
    graph = spec.from_dict(read_model(model, source, outputs=outputs), source, imported=True)
    lower(graph)
    return graph


def export(model: Any, path: str | Path | None = None, *, opset: int | None = None,
           loss: bool = False, dtype: str | None = None):
    """The ONNX model of a Graph (params from its initializers) or a Model (its current
    params and state): the forward graph in evaluation mode. Written to `path` when given;
    `loss=True` adds the loss as an output."""
    onnx = _need_onnx()
    from graphc.onnx.writer import OPSET, write
    from graphc.passes import forward_program, prune, specialize
    from graphc.runtime import Model, init_params, init_state

    if isinstance(model, Model):
        program, float_type = model.mode_program(False), dtype or model.dtype.name
        params = {**model.params, **model.state}
        graph = model.graph
    else:
        from graphc.loader import load as load_graph

        graph = load_graph(model)
        program = specialize(forward_program(graph), False)
        float_type = dtype or "float32"
        params = {**init_params(program, float_type), **init_state(program, float_type)}
    keep = [*program.outputs.values(), *([program.loss] if loss and program.loss else [])]
    program = prune(program.copy(), keep)
    if not loss:
        program.loss = None
    proto = write(program, params, float_type, opset or OPSET, program.doc,
                  layers=list(graph.nodes) if loss else None)
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save(proto, str(path))
    return proto


def __getattr__(name: str) -> Any:
    if name == "backend":
        return importlib.import_module("graphc.onnx.backend")
    raise AttributeError(f"module 'graphc.onnx' has no attribute {name!r}")
