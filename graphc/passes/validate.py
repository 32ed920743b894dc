"""validate: semantic checks of a spec Graph before lowering.

Before: the spec's structure matches the schema. After: names are unique and printable,
every reference resolves, every op exists with the right arity and attributes, the
nodes form a DAG, and outputs and loss name values. Returns the nodes' topological order.
"""

from __future__ import annotations

from graphc import init as initializers
from graphc.errors import SpecError, did_you_mean
from graphc.ops import REGISTRY, public_ops
from graphc.spec import Graph


def node_place(graph: Graph, index: int) -> str:
    return f"nodes[{index}] (id {graph.nodes[index]['id']!r})"


def validate(graph: Graph) -> list[int]:
    """Raise SpecError at the first problem; return node indices in a valid order."""
    src = graph.source
    where: dict[str, str] = {}

    def claim(name: str, place: str) -> None:
        if not name.isprintable() or not name.strip():
            raise SpecError(f"name {name!r} is empty or holds unprintable characters",
                            place=place, source=src)
        if name in where:
            raise SpecError(f"name {name!r} is already used by {where[name]}", place=place,
                            source=src, hint="names are unique across inputs, params and nodes")
        where[name] = place

    for name in graph.inputs:
        claim(name, f"inputs.{name}")
    for name, p in graph.params.items():
        claim(name, f"params.{name}")
        try:
            initializers.check(p.get("init", "zeros"), tuple(p["shape"]))
        except ValueError as e:
            raise SpecError(str(e), place=f"params.{name}.init", source=src) from None
    for i, node in enumerate(graph.nodes):
        claim(node["id"], node_place(graph, i))

    edges: list[tuple[int, int]] = []
    index = {n["id"]: i for i, n in enumerate(graph.nodes)}
    public = [op.name for op in public_ops()]
    for i, node in enumerate(graph.nodes):
        place = node_place(graph, i)
        op = REGISTRY.get(node["op"])
        if op is None or op.internal:
            raise SpecError(f"unknown op {node['op']!r}", place=f"{place}.op", source=src,
                            hint=did_you_mean(node["op"], public) or "see `graphc ops`")
        args = node.get("inputs", [])
        lo, hi = op.arity
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else (f"at least {lo}" if hi is None else f"{lo} to {hi}")
            raise SpecError(f"op {op.name!r} takes {want} input{'s' if want != '1' else ''} "
                            f"({', '.join(op.inputs)}), got {len(args)}",
                            place=f"{place}.inputs", source=src)
        for j, arg in enumerate(args):
            if isinstance(arg, str):
                layer = _layer_of(arg, index, graph)
                if arg not in where and layer is not None:  # e.g. "fc1.W": checked at lowering
                    edges.append((index[layer], i))
                elif arg not in where:
                    raise SpecError(f"unknown name {arg!r}", place=f"{place}.inputs[{j}]",
                                    source=src, hint=did_you_mean(arg, where)
                                    or "inputs name an input, a param, a node or a number")
                if arg in index:
                    edges.append((index[arg], i))
        try:
            op.bind(node.get("attrs"))
        except (KeyError, ValueError) as e:
            key = getattr(e, "attr", None)
            raise SpecError(e.args[0], place=f"{place}.attrs" + (f".{key}" if key else ""),
                            source=src) from None

    if all(a < b for a, b in edges):
        order = list(range(len(graph.nodes)))  # already in order: the common case, and fast
    else:
        order = _order(graph, edges, index)
    for k, name in enumerate(graph.outputs):
        if name not in where and _layer_of(name, index, graph) is None:
            raise SpecError(f"unknown name {name!r}", place=f"outputs[{k}]", source=src,
                            hint=did_you_mean(name, where))
    if graph.loss is not None and graph.loss not in where \
            and _layer_of(graph.loss, index, graph) is None:
        raise SpecError(f"unknown name {graph.loss!r}", place="loss", source=src,
                        hint=did_you_mean(graph.loss, where))
    return order


def _layer_of(name: str, index: dict[str, int], graph: Graph) -> str | None:
    """The composite layer whose param or internal value `name` would be (`fc1.W`)."""
    head = name
    while "." in head:
        head = head.rsplit(".", 1)[0]
        op = REGISTRY.get(graph.nodes[index[head]]["op"]) if head in index else None
        if op is not None and op.kind == "composite":  # an unknown op: reported at its node
            return head
    return None


def _order(graph: Graph, edges: list[tuple[int, int]], index: dict[str, int]) -> list[int]:
    """A topological order that keeps the spec's order where it can; explains a cycle."""
    import networkx as nx  # only specs out of order need it (it costs 0.2 s to import)

    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(graph.nodes)))
    dag.add_edges_from(edges)
    if not nx.is_directed_acyclic_graph(dag):
        cycle = [graph.nodes[a]["id"] for a, _ in nx.find_cycle(dag)]
        raise SpecError("the nodes form a cycle: " + " -> ".join(map(repr, cycle + cycle[:1])),
                        place=node_place(graph, index[cycle[0]]), source=graph.source,
                        hint="a node cannot depend on its own output")
    return list(nx.lexicographical_topological_sort(dag))
