"""graphc -> ONNX: the lowered forward graph (evaluation mode), one or a few ONNX nodes
per graphc primitive, params as initializers, symbolic dims as dim_params, names kept."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphc.errors import CompileError
from graphc.ir import Node, Program
from graphc.ops.conv import conv_attrs, pair

OPSET = 20  # every op below exists there, and onnxruntime 1.32 runs all of it
ELEM = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE,
        "int32": TensorProto.INT32, "int64": TensorProto.INT64}
SAME = {"add": "Add", "sub": "Sub", "mul": "Mul", "div": "Div", "pow": "Pow",
        "maximum": "Max", "minimum": "Min", "neg": "Neg", "exp": "Exp", "log": "Log",
        "sqrt": "Sqrt", "abs": "Abs", "reciprocal": "Reciprocal", "relu": "Relu",
        "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus", "mish": "Mish",
        "matmul": "MatMul", "prelu": "PRelu"}
REDUCE = {"sum": "ReduceSum", "mean": "ReduceMean", "max": "ReduceMax"}


class Writer:
    def __init__(self, program: Program, params: dict[str, np.ndarray], float_type: str):
        self.p, self.params, self.float = program, params, float_type
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.names: dict[str, str] = {}  # graphc id -> ONNX name
        self.taken: set[str] = set()

    def name(self, node: Node) -> str:
        if node.id not in self.names:
            base = node.name if node.name is not None else node.id
            out, k = base, 1
            while out in self.taken:
                out, k = f"{base}_{k}", k + 1
            self.taken.add(out)
            self.names[node.id] = out
        return self.names[node.id]

    def tmp(self, base: str) -> str:
        out, k = f"{base}/t", 1
        while out in self.taken:
            out, k = f"{base}/t{k}", k + 1
        self.taken.add(out)
        return out

    def const(self, base: str, value: Any, dtype: str | None = None) -> str:
        arr = np.asarray(value, dtype=dtype or self.float)
        name = self.tmp(base + "/const")
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def add(self, op: str, ins: list[str], out: str, **attrs) -> str:
        self.nodes.append(helper.make_node(op, ins, [out], name=out, **attrs))
        return out

    def value_info(self, node: Node) -> onnx.ValueInfoProto:
        dtype = self.float if node.is_float else node.dtype
        return helper.make_tensor_value_info(self.name(node), ELEM[dtype], list(node.shape))

    def node(self, n: Node) -> None:
        out = self.name(n)
        ins = [self.names[a] for a in n.args]
        a = n.attrs
        if n.op == "input":
            return
        if n.op in ("param", "state"):  # state: batch norm's running statistics
            self.inits.append(numpy_helper.from_array(
                np.asarray(self.params[n.name], dtype=self.float), out))
        elif n.op == "const":
            self.inits.append(numpy_helper.from_array(
                np.asarray(a["value"], dtype=self.float if n.is_float else n.dtype), out))
        elif n.op in SAME:
            self.add(SAME[n.op], ins, out)
        elif n.op == "square":
            self.add("Mul", [ins[0], ins[0]], out)
        elif n.op == "leaky_relu":
            self.add("LeakyRelu", ins, out, alpha=float(a["alpha"]))
        elif n.op == "elu":
            self.add("Elu", ins, out, alpha=float(a["alpha"]))
        elif n.op == "silu":
            self.add("Mul", [ins[0], self.add("Sigmoid", ins, self.tmp(out))], out)
        elif n.op == "gelu" and a["approximate"] in ("none", "tanh"):
            self.add("Gelu", ins, out, approximate=a["approximate"])
        elif n.op == "gelu":  # x σ(1.702 x)
            scaled = self.add("Mul", [ins[0], self.const(out, 1.702)], self.tmp(out))
            self.add("Mul", [ins[0], self.add("Sigmoid", [scaled], self.tmp(out))], out)
        elif n.op == "transpose":
            perm = list(reversed(range(len(n.shape)))) if a["axes"] is None else \
                [int(x) % len(n.shape) for x in a["axes"]]
            self.add("Transpose", ins, out, perm=perm)
        elif n.op == "reshape":
            self.add("Reshape", [ins[0], self.const(out, list(a["shape"]), "int64")], out)
        elif n.op == "reshape_like":
            shape = self.add("Shape", [ins[1]], self.tmp(out))
            self.add("Reshape", [ins[0], shape], out)
        elif n.op == "expand":
            self.add("Expand", [ins[0], self.add("Shape", [ins[1]], self.tmp(out))], out)
        elif n.op == "concat":
            self.add("Concat", ins, out, axis=int(a["axis"]))
        elif n.op in REDUCE:
            ndim = len(self.p[n.args[0]].shape)
            axes = list(range(ndim)) if a["axis"] is None else \
                [int(x) % ndim for x in np.atleast_1d(a["axis"])]
            self.add(REDUCE[n.op], [ins[0], self.const(out, axes, "int64")], out,
                     keepdims=int(bool(a["keepdims"])))
        elif n.op in ("softmax", "log_softmax"):
            self.add("Softmax" if n.op == "softmax" else "LogSoftmax", ins, out,
                     axis=int(a["axis"]))
        elif n.op == "one_hot":
            depth = self.const(out, int(a["classes"]), "int64")
            values = self.const(out, [0.0, 1.0])
            self.add("OneHot", [ins[0], depth, values], out, axis=-1)
        elif n.op == "size":
            shape = self.add("Shape", [ins[0]], self.tmp(out))
            size = self.add("ReduceProd", [shape], self.tmp(out), keepdims=0)
            self.add("Cast", [size], out, to=ELEM[self.float])
        elif n.op == "conv2d":
            kernel = list(self.p[n.args[1]].shape[2:])
            stride, dil, pads = conv_attrs(a, kernel)
            self.add("Conv", ins, out, kernel_shape=kernel, strides=list(stride),
                     dilations=list(dil), group=int(a["groups"]),
                     pads=[pads[0], pads[2], pads[1], pads[3]])  # begins, then ends
        elif n.op in ("max_pool2d", "avg_pool2d"):
            kernel = list(pair(a["kernel_size"], "kernel_size"))
            stride = kernel if a["stride"] is None else list(pair(a["stride"], "stride"))
            ph, pw = pair(a["padding"], "padding")
            common = dict(kernel_shape=kernel, strides=stride, pads=[ph, pw, ph, pw])
            if n.op == "max_pool2d":
                self.add("MaxPool", ins, out, dilations=list(pair(a["dilation"], "dilation")),
                         **common)
            else:
                self.add("AveragePool", ins, out,
                         count_include_pad=int(a["count_include_pad"]), **common)
        elif n.op == "zeros_like":
            self.add("Mul", [ins[0], self.const(out, 0.0)], out)
        else:
            raise CompileError(f"node {n.name or n.id!r}: graphc's {n.op!r} has no ONNX "
                               f"export yet (export the outputs that do not need it)")


def fused_losses(program: Program, layers: list[dict]) -> dict[str, tuple]:
    """graphc's plain cross_entropy layers that ONNX's SoftmaxCrossEntropyLoss computes
    (integer labels, 2-D logits, no smoothing), by the id of the layer's output node:
    (logits id, labels id, reduction, ids of the layer's other nodes)."""
    names, out = program.by_name(), {}
    for layer in layers:
        at = layer.get("attrs", {})
        if layer["op"] != "cross_entropy" or at.get("label_smoothing", 0.0) or \
                at.get("reduction", "mean") not in ("mean", "sum") or layer["id"] not in names:
            continue
        logits, labels = (names.get(i) for i in layer["inputs"])
        if logits is None or labels is None or program[labels].dtype not in ("int32", "int64") \
                or len(program[logits].shape) != 2:
            continue
        top = names[layer["id"]]
        inner = {n.id for n in program if n.group == layer["id"]} - {top}
        if any(a in inner for n in program if n.id not in inner | {top} for a in n.args):
            continue  # another node reads a value inside the layer: write it op by op
        out[top] = (logits, labels, at.get("reduction", "mean"), inner)
    return out


def write(program: Program, params: dict[str, np.ndarray], float_type: str = "float32",
          opset: int = OPSET, doc: str | None = None,
          layers: list[dict] | None = None) -> onnx.ModelProto:
    """The ONNX model of a lowered, pruned forward program; `layers` (the spec's nodes)
    lets plain cross-entropy layers be written as one SoftmaxCrossEntropyLoss."""
    w = Writer(program, params, float_type)
    fused = fused_losses(program, layers or [])
    skip = {i for f in fused.values() for i in f[3]}
    inputs = []
    used = {a for n in program if n.id not in skip for a in n.args} | \
        set(program.outputs.values()) | {f[k] for f in fused.values() for k in (0, 1)}
    for n in program:
        if n.id in skip or (n.op in ("input", "param", "state") and n.id not in used
                            and n.id != program.loss):
            continue  # e.g. the labels, when the loss is left out
        w.name(n)
        if n.op == "input":
            inputs.append(w.value_info(n))
        if n.id in fused:
            logits, labels, reduction, _ = fused[n.id]
            w.add("SoftmaxCrossEntropyLoss", [w.names[logits], w.names[labels]], w.name(n),
                  reduction=reduction)
            continue
        w.node(n)
    outputs = []
    for spec_name, node_id in {**program.outputs,
                               **({"loss": program.loss} if program.loss else {})}.items():
        out = w.names[node_id]
        node = program[node_id]
        if out in {i.name for i in inputs} | {t.name for t in w.inits} or \
                any(o.name == out for o in outputs):
            out = w.add("Identity", [out], w.tmp(spec_name))
        vi = w.value_info(node)
        vi.name = out
        outputs.append(vi)
    graph = helper.make_graph(w.nodes, program.name, inputs, outputs, w.inits,
                              doc_string=doc or "")
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="graphc")
    model.ir_version = min(model.ir_version, 10)  # what onnxruntime 1.32 reads
    if program.loss:  # so that graphc reads it back as the loss to train
        helper.set_model_props(model, {"graphc.loss": w.names[program.loss]})
    return model
