"""lower: spec Graph -> typed forward Program.

Before: the Graph passed `validate`. After: composites are expanded into primitives
(their internals named `<id>.<op>`, grouped under the layer id), number literals are
`const` nodes, every node has a shape (symbolic dims allowed) and a dtype, and the
loss, if any, is a scalar.
"""

from __future__ import annotations

import numpy as np

from graphc.errors import SpecError, did_you_mean
from graphc.ir import FLOAT, Program, format_shape
from graphc.passes.emit import IREmitter
from graphc.passes.validate import node_place, validate
from graphc.spec import Graph
from graphc.sugar import Ref


def lower(graph: Graph) -> Program:
    """The lowered Program (computed once per Graph; passes copy before changing it)."""
    if graph._program is None:
        graph._program = _lower(graph)
    return graph._program


def _lower(graph: Graph) -> Program:
    order = validate(graph)
    src = graph.source
    prog = Program(name=graph.name, doc=graph.doc, seed=graph.seed)
    em = IREmitter(prog, source=src)
    refs: dict[str, Ref] = {}
    for name, inp in graph.inputs.items():
        dtype = inp.get("dtype", "float32")
        dtype = dtype if dtype.startswith("int") else FLOAT
        refs[name] = em.source_node("input", tuple(inp["shape"]), dtype, name, doc=inp.get("doc"))
        prog.inputs[name] = refs[name].id
        if "value" in inp:
            _check_value(inp["value"], inp["shape"], f"inputs.{name}.value", src)
    for name, p in graph.params.items():
        refs[name] = em.source_node("param", tuple(p["shape"]), FLOAT, name, doc=p.get("doc"))
        prog.params[name] = refs[name].id
        prog.param_init[name] = p.get("init", "zeros")
    first_index = len(prog.nodes)
    for i in order:
        node = graph.nodes[i]
        em.place = node_place(graph, i)
        em.group_id_for_expansion = node["id"]
        args = [_ref(refs, a, f"{em.place}.inputs[{j}]", src) if isinstance(a, str) else a
                for j, a in enumerate(node.get("inputs", []))]
        first_new = prog.counter
        out = em.emit(node["op"], args, node.get("attrs"))
        if int(out.id[1:]) < first_new:
            out = em.emit("add", [out, 0.0])  # a layer that returns a named value unchanged
        em.rename(out, node["id"], node.get("doc"))
        refs[node["id"]] = out
        for new in list(prog.nodes.values())[first_index:]:  # a layer's params and internals
            if new.name is not None and new.name not in refs:
                refs[new.name] = Ref(em, new.id)
        first_index = len(prog.nodes)
    prog.outputs = {name: _ref(refs, name, f"outputs[{k}]", src).id
                    for k, name in enumerate(graph.outputs)}
    if graph.loss is not None:
        prog.loss = _ref(refs, graph.loss, "loss", src).id
        shape = prog[prog.loss].shape
        if shape != ():
            raise SpecError(f"the loss must be a scalar, but {graph.loss!r} has shape "
                            f"{format_shape(shape)}", place="loss", source=src,
                            hint="reduce it with a sum or mean node, or use a loss op")
    return prog


def _ref(refs: dict[str, Ref], name: str, place: str, src: str | None) -> Ref:
    if name not in refs:
        raise SpecError(f"unknown name {name!r}", place=place, source=src,
                        hint=did_you_mean(name, refs))
    return refs[name]


def _check_value(value, shape, place: str, src: str | None) -> None:
    try:
        got = np.asarray(value, dtype=float).shape
    except (ValueError, TypeError):
        raise SpecError("value is not a number or a regular nested list", place=place,
                        source=src) from None
    if len(got) != len(shape) or any(isinstance(d, int) and d != g for d, g in zip(shape, got)):
        raise SpecError(f"value has shape {list(got)}, the input is declared "
                        f"{format_shape(tuple(shape))}", place=place, source=src)
