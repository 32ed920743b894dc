"""ONNX -> graphc spec: each ONNX node becomes graphc nodes, initializers become params
with their values, and the shape arithmetic exporters emit (Shape, Gather, Concat, ...)
is folded away at import, so the graph graphc sees is the model's real computation."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphc.errors import SpecError
from graphc.onnx import reader_conv, reader_math, reader_ml, reader_shape  # noqa: F401
from graphc.onnx.reader_core import (
    FLOAT_TYPES,
    HANDLERS,
    INT_TYPES,
    Unsupported,
    Value,
    dtype_name,
    type_name,
)

OPSETS = (13, 28)  # the default-domain opsets read (older models are converted up)
SYMBOL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LOSS_KEY = "graphc.loss"  # metadata naming the output graphc's export wrote as the loss


class Reader:
    def __init__(self, model: onnx.ModelProto, source: str | None,
                 known: dict[str, np.ndarray] | None = None,
                 outputs: list[str] | None = None):
        self.model, self.source, self.known = model, source, known or {}
        self.outputs = outputs
        self.inputs: dict[str, dict] = {}
        self.params: dict[str, dict] = {}
        self.nodes: list[dict] = []
        self.values: dict[str, Value] = {}
        self.used: set[str] = set()
        self.node_label = ""
        self.float = "float32"
        self.needed: set[str] = set()  # the ONNX values the wanted outputs depend on
        self.opset = max(13, next((o.version for o in model.opset_import
                                   if o.domain in ("", "ai.onnx")), 13))

    # -- emitting graphc nodes ------------------------------------------------------
    def fresh(self, base: str) -> str:
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}/{k}", k + 1
        self.used.add(name)
        return name

    def emit(self, op: str, args: list, out: str | None = None, **attrs) -> str:
        """A graphc node `op(args)`; args are graphc names or Python numbers."""
        node_id = self.fresh(out or f"{self.node_label}/{op}")
        node = {"id": node_id, "op": op, "inputs": list(args)}
        if attrs:
            node["attrs"] = attrs
        self.nodes.append(node)
        return node_id

    def ref(self, v: Value, name: str | None = None) -> str | float:
        """A graphc name (or a number) for v; constants become an input with its value."""
        if v.name is not None:
            return v.name
        c = v.const
        if c.dtype == object:
            raise self.error("a shape computed from symbolic dims feeds the computation")
        if c.ndim == 0 and v.dtype not in INT_TYPES.values():
            return float(c)
        name = self.fresh(name or v.init or f"{self.node_label}/const")
        entry = {"shape": list(c.shape), "value": c.tolist(),
                 "doc": "a constant of the ONNX model"}
        if v.dtype in INT_TYPES.values():
            entry["dtype"] = v.dtype
        self.inputs[name] = entry
        v.name = name
        return name

    def error(self, message: str, hint: str | None = None) -> SpecError:
        return Unsupported(message, place=f"ONNX node {self.node_label!r}", hint=hint,
                           source=self.source)

    # -- the graph -----------------------------------------------------------------
    def read(self) -> dict[str, Any]:
        g = self.model.graph
        inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        inits.update(self.known)  # inputs whose values are fixed (ONNX backend tests)
        floats = [a.dtype for a in inits.values() if a.dtype.kind == "f"]
        for vi in g.input:
            t = vi.type.tensor_type
            if vi.name not in inits and t.elem_type == onnx.TensorProto.DOUBLE:
                floats.append(np.dtype("float64"))
        self.float = "float64" if any(d == np.float64 for d in floats) else "float32"
        for vi in g.input:
            if vi.name in inits:
                continue
            self.node_label = vi.name
            shape, dtype = self.value_info(vi)
            entry: dict[str, Any] = {"shape": list(shape)}
            if dtype in INT_TYPES.values():
                entry["dtype"] = dtype
            self.used.add(vi.name)
            self.inputs[vi.name] = entry
            self.values[vi.name] = Value(shape, dtype, name=vi.name)
        uses = _uses(g)
        for name, arr in inits.items():
            self.values[name] = Value(arr.shape, dtype_name(arr.dtype), const=arr, init=name)
        self.uses = uses
        wanted = [o for o in g.output if self.outputs is None or o.name in self.outputs]
        missing = sorted(set(self.outputs or ()) - {o.name for o in g.output})
        if missing:
            raise SpecError(f"the model has no output {missing[0]!r}", source=self.source,
                            hint="its outputs: " + ", ".join(o.name for o in g.output))
        needed = self.needed = _needed(g, [o.name for o in wanted])
        for node in g.node:
            if not any(o in needed for o in node.output):
                continue  # computes only outputs that were not asked for
            self.node_label = node.name or (node.output[0] if node.output else node.op_type)
            handler = HANDLERS.get((node.domain or "", node.op_type))
            if handler is None:
                others = [o.name for o in g.output if o.name not in node.output
                          and not (set(node.output) & _needed(g, [o.name]))]
                hint = f"load only the outputs graphc can compute, e.g. outputs={others}" \
                    if others else "the operators graphc reads are listed in docs/onnx.md"
                raise self.error(f"graphc cannot express the ONNX operator {node.op_type}"
                                 + (f" (domain {node.domain})" if node.domain else ""),
                                 hint=hint)
            args = [self.values[i] if i else None for i in node.input]
            outs = handler(self, node, args, _attrs(node))
            outs = outs if isinstance(outs, list) else [outs]
            for name, v in zip(node.output, outs):
                if name and v is not None:
                    self.values[name] = v
            for name, v in zip(node.output, outs + [None] * len(node.output)):
                if name and v is None and name in needed:
                    raise self.error(f"{node.op_type}'s output {name!r} is not supported")
        outputs = []
        for vi in wanted:
            self.node_label = vi.name
            v = self.values[vi.name]
            name = self.ref(v) if v.name is None else v.name
            if name in self.inputs or name in self.params or not isinstance(name, str):
                name = self.emit("add", [name, 0.0], out=vi.name)  # an output is a node
            outputs.append(self.rename(name, vi.name))
        spec: dict[str, Any] = {"graphc": 1, "name": g.name or "onnx_model",
                                "inputs": self.inputs, "nodes": self.nodes, "outputs": outputs}
        if g.doc_string:
            spec["doc"] = g.doc_string.strip().splitlines()[0]
        if self.params:
            spec["params"] = self.params
        loss = self.loss([vi.name for vi in wanted], outputs)
        if loss is not None:
            spec["loss"] = loss
        return spec

    def loss(self, onnx_names: list[str], outputs: list[str]) -> str | None:
        """The output to train: the one graphc's export marked (metadata `graphc.loss`),
        else a lone scalar output of SoftmaxCrossEntropyLoss; it stays an output too."""
        marked = {p.key: p.value for p in self.model.metadata_props}.get(LOSS_KEY)
        producer = {o: n.op_type for n in self.model.graph.node for o in n.output}
        found = [out for name, out in zip(onnx_names, outputs) if name == marked] or \
            [out for name, out in zip(onnx_names, outputs)
             if producer.get(name) == "SoftmaxCrossEntropyLoss" and self.values[name].shape == ()]
        return found[0] if len(found) == 1 else None

    def rename(self, name: str, want: str) -> str:
        """Keep the ONNX output's name: the node computing it gets that id if it is free."""
        if name == want:
            return name
        node = next((n for n in self.nodes if n["id"] == name), None)
        if node is None or want in self.used:
            return name
        self.used.add(want)
        node["id"] = want
        for n in self.nodes:
            n["inputs"] = [want if a == name else a for a in n["inputs"]]
        for v in self.values.values():
            if v.name == name:
                v.name = want
        return want

    def value_info(self, vi) -> tuple[tuple, str]:
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type"):
            raise self.error("graphc inputs are tensors, not sequences or maps")
        dtype = FLOAT_TYPES.get(t.elem_type) or INT_TYPES.get(t.elem_type)
        if dtype is None:
            raise self.error(f"graphc has no {type_name(t.elem_type)} tensors",
                             hint="graphc computes in float32/float64 with int32/int64 labels")
        if not t.HasField("shape"):
            raise self.error(f"input {vi.name!r} has no shape")
        dims = []
        for k, d in enumerate(t.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            else:
                p = d.dim_param if SYMBOL.match(d.dim_param or "") else f"d{k}"
                dims.append(p)
        return tuple(dims), dtype

    def param(self, v: Value, values: np.ndarray | None = None) -> str:
        """A float initializer as a trainable graphc param (its values, its name)."""
        arr = v.const if values is None else values
        v.name = self.fresh(v.init)
        v.shape = arr.shape
        self.params[v.name] = {"shape": list(arr.shape), "init": arr.astype(float).tolist()}
        return v.name

    def tensor(self, v: Value | None) -> str | float:
        """A graphc name for an operand: float initializers become params."""
        if v is None:
            raise self.error("a required input is missing")
        if v.name is None and v.init and v.const.dtype.kind == "f" and v.const.ndim > 0:
            return self.param(v)
        return self.ref(v)

    def single_use(self, v: Value) -> bool:
        """An initializer only this node reads, so it may be stored transformed."""
        return bool(v.init) and v.name is None and v.const.dtype.kind == "f" \
            and self.uses.get(v.init, 0) == 1


# -- helpers ---------------------------------------------------------------------------
def _needed(g, outputs: list[str]) -> set[str]:
    """The values the given outputs depend on."""
    producer = {o: n for n in g.node for o in n.output}
    need, todo = set(), list(outputs)
    while todo:
        v = todo.pop()
        if v in need:
            continue
        need.add(v)
        if v in producer:
            todo.extend(i for i in producer[v].input if i)
    return need


def _uses(g) -> dict[str, int]:
    uses: dict[str, int] = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    for o in g.output:
        uses[o.name] = uses.get(o.name, 0) + 1
    return uses


def _attrs(node) -> dict[str, Any]:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}



def read_model(model: onnx.ModelProto, source: str | None = None,
               known: dict[str, np.ndarray] | None = None,
               outputs: list[str] | None = None) -> dict[str, Any]:
    """The graphc spec dict of an ONNX model (raises SpecError naming what it cannot read).
    `known` fixes some inputs' values, e.g. the axes a test feeds as an input; `outputs`
    picks the model outputs to read (all by default)."""
    version = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    if version is None:
        raise SpecError("the model imports no default-domain opset", source=source)
    if version < OPSETS[0]:
        try:
            model = onnx.version_converter.convert_version(model, OPSETS[0])
        except Exception as e:  # noqa: BLE001 - onnx raises plain RuntimeErrors
            raise SpecError(f"opset {version} could not be converted to {OPSETS[0]}: {e}",
                            source=source, hint="re-export the model with opset 13 or "
                            "later") from None
    elif version > OPSETS[1]:
        raise SpecError(f"opset {version} is newer than graphc reads ({OPSETS[1]})",
                        source=source, hint=f"re-export with opset {OPSETS[1]} or older")
    try:
        model = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes are only a help here
        pass
    return Reader(model, source, known, outputs).read()
