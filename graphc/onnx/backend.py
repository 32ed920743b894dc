"""`graphc.onnx.backend`: ONNX's backend interface over graphc, so that ONNX's own node
tests (`onnx.backend.test.BackendTest`) run against graphc's import and compiler.

    rep = graphc.onnx.backend.prepare(model)       # numpy backend; backend="cpu" compiles
    outputs = rep.run([x, ...])                     # in the graph's input order
"""

from __future__ import annotations

import unittest
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

from graphc.onnx.reader import read_model
from graphc.onnx.reader_core import FLOAT_TYPES, INT_TYPES, NeedsConstant, Unsupported
from graphc.runtime import Model
from graphc.spec import from_dict

TYPES = {**FLOAT_TYPES, **INT_TYPES}


class GraphcRep(BackendRep):
    """A compiled graphc Model answering ONNX's run(inputs) -> outputs."""

    def __init__(self, model: onnx.ModelProto, backend: str):
        self.onnx, self.backend = model, backend
        inits = {t.name for t in model.graph.initializer}
        self.inputs = [i.name for i in model.graph.input if i.name not in inits]
        self.out_types = [onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type)
                          for o in model.graph.output]
        doubles = [i.type.tensor_type.elem_type for i in model.graph.input] + \
            [t.data_type for t in model.graph.initializer]
        self.dtype = "float64" if onnx.TensorProto.DOUBLE in doubles else "float32"
        self.compiled: dict[Any, tuple] = {}
        try:
            self.compiled[None] = self.compile({})
        except NeedsConstant:
            # axes or a shape fed as an input: compile per value, once it is known
            self.fixed = [i.name for i in model.graph.input if i.name not in inits
                          and i.type.tensor_type.elem_type in INT_TYPES]

    def compile(self, known: dict[str, np.ndarray]) -> tuple:
        spec = read_model(self.onnx, known=known)
        graph = from_dict(spec, imported=True)  # ONNX's tests feed empty tensors
        return Model(graph, backend=self.backend, dtype=self.dtype), spec["outputs"]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        if isinstance(inputs, dict):
            feeds = dict(inputs)
        else:
            inputs = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
            feeds = dict(zip(self.inputs, inputs))
        key, known = None, {}
        if None not in self.compiled:
            known = {n: np.asarray(feeds.pop(n)) for n in self.fixed}
            key = tuple((n, a.tobytes()) for n, a in known.items())
            if key not in self.compiled:
                try:
                    self.compiled[key] = self.compile(known)
                except Unsupported as e:
                    raise unittest.SkipTest(f"unsupported: {e}") from None
        model, outputs = self.compiled[key]
        got = model.forward(**feeds)
        return tuple(np.asarray(got[name]).astype(t, copy=False)
                     for name, t in zip(outputs, self.out_types))


class GraphcBackend(Backend):
    """graphc as an ONNX backend: device "CPU"; `backend=` picks graphc's backend."""

    @classmethod
    def is_compatible(cls, model, device: str = "CPU", **kwargs) -> bool:
        return device == "CPU"

    @classmethod
    def prepare(cls, model, device: str = "CPU", backend: str = "numpy", **kwargs):
        super().prepare(model, device, **kwargs)
        types = [v.type.tensor_type.elem_type for v in [*model.graph.input, *model.graph.output]]
        types += [t.data_type for t in model.graph.initializer]
        unknown = sorted({onnx.TensorProto.DataType.Name(t).lower() for t in types
                          if t not in TYPES})
        if unknown:  # a dtype graphc has no use for: not a failure of graphc's
            raise unittest.SkipTest(f"graphc has no {', '.join(unknown)} tensors")
        try:
            return GraphcRep(model, backend)
        except Unsupported as e:
            raise unittest.SkipTest(f"unsupported: {e}") from None

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


prepare = GraphcBackend.prepare
run_model = GraphcBackend.run_model
run_node = GraphcBackend.run_node
supports_device = GraphcBackend.supports_device
