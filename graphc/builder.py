"""The Python way to write specs: operators and `F.<op>` record spec nodes.

    b = graphc.Builder("neuron")
    x0, w0 = b.input("x0", [], value=-1.0), b.param("w0", [], init=2.0)
    ...
    f = b.name("f", F.sigmoid(w0 * x0 + w1 * x1 + w2))
    graph = b.build(outputs=[f], loss=f)

The result is the same `graphc.Graph` that `graphc.load` gives for the equivalent JSON,
and `graph.to_json()` is that JSON.
"""

from __future__ import annotations

from typing import Any

from graphc.errors import SpecError
from graphc.ir import Shape
from graphc.spec import FORMAT, Graph
from graphc.sugar import Ref


class Builder:
    def __init__(self, name: str, doc: str | None = None, seed: int = 0):
        self.spec: dict[str, Any] = {"graphc": FORMAT, "name": name, "inputs": {}, "nodes": []}
        if doc is not None:
            self.spec["doc"] = doc
        if seed:
            self.spec["seed"] = seed
        self._names: set[str] = set()
        self._counts: dict[str, int] = {}

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise SpecError(f"name {name!r} is already used", place=name)
        self._names.add(name)
        return name

    def input(self, name: str, shape: Shape, dtype: str | None = None, value: Any = None,
              doc: str | None = None) -> Ref:
        entry: dict[str, Any] = {"shape": list(shape)}
        if dtype is not None:
            entry["dtype"] = dtype
        if value is not None:
            entry["value"] = value.tolist() if hasattr(value, "tolist") else value
        if doc is not None:
            entry["doc"] = doc
        self.spec["inputs"][self._claim(name)] = entry
        return Ref(self, name)

    def param(self, name: str, shape: Shape | None = None, init: Any = "zeros",
              doc: str | None = None) -> Ref:
        """Declare a param; `b.param("h1.W")` (no shape) refers to a layer's own param."""
        if shape is None:
            return self.layer_param(name)
        entry: dict[str, Any] = {"shape": list(shape), "init": init}
        if doc is not None:
            entry["doc"] = doc
        self.spec.setdefault("params", {})[self._claim(name)] = entry
        return Ref(self, name)

    def layer_param(self, name: str) -> Ref:
        """A composite layer's param such as "h1.W", usable in expressions as in JSON."""
        layer, dot, _ = name.rpartition(".")
        if not dot or not any(n["id"] == layer for n in self.spec["nodes"]):
            raise SpecError(f"no layer named {layer or name!r} has been recorded yet; "
                            "write b.param(\"<layer>.<param>\") after the layer, e.g. \"h1.W\"",
                            place=name)
        return Ref(self, name)

    def node(self, op: str, *inputs: Any, id: str | None = None, doc: str | None = None,
             **attrs: Any) -> Ref:
        """Record one node; `id` defaults to `<op>_<n>`."""
        if id is None:
            n = self._counts.get(op, 0)
            while f"{op}_{n}" in self._names:
                n += 1
            self._counts[op] = n + 1
            id = f"{op}_{n}"
        args = []
        for a in inputs:
            if isinstance(a, Ref):
                if a.emitter is not self:
                    raise SpecError(f"value {a.id!r} belongs to another Builder", place=id)
                args.append(a.id)
            elif isinstance(a, (int, float)) and not isinstance(a, bool):
                args.append(a)
            else:
                raise SpecError(f"input {a!r} is neither a recorded value nor a number", place=id)
        entry: dict[str, Any] = {"id": self._claim(id), "op": op, "inputs": args}
        if attrs:
            entry["attrs"] = {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()}
        if doc is not None:
            entry["doc"] = doc
        self.spec["nodes"].append(entry)
        return Ref(self, id)

    # the Emitter protocol, so that operators and F.<op> record nodes here
    def emit(self, op: str, args: list[Any], attrs: dict[str, Any] | None = None) -> Ref:
        return self.node(op, *args, **(attrs or {}))

    def shape_of(self, ref: Ref) -> Shape:
        raise TypeError("shapes are known once the spec is built: use graphc.load(builder.build())")

    dtype_of = shape_of

    def name(self, name: str, ref: Ref) -> Ref:
        """Give the node `ref` the id `name` (a node's id is its spec name)."""
        for node in self.spec["nodes"]:
            if node["id"] == ref.id:
                self._names.discard(ref.id)
                node["id"] = self._claim(name)
                old = ref.id
                for other in self.spec["nodes"]:
                    other["inputs"] = [_renamed(a, old, name) for a in other["inputs"]]
                ref.id = name
                return ref
        raise SpecError(f"{ref.id!r} is an input or param; only nodes can be renamed")

    def build(self, outputs: list[Ref | str], loss: Ref | str | None = None,
              train: dict[str, Any] | None = None) -> Graph:
        """The validated Graph (raises SpecError as `graphc.load` does)."""
        import copy

        from graphc.loader import load

        spec = copy.deepcopy(self.spec)
        spec["outputs"] = [o.id if isinstance(o, Ref) else o for o in outputs]
        if loss is not None:
            spec["loss"] = loss.id if isinstance(loss, Ref) else loss
        if train is not None:
            spec["train"] = train
        return load(spec)


def _renamed(arg: Any, old: str, new: str) -> Any:
    """`old` itself and its layer params (`old.W`) follow a rename."""
    if arg == old:
        return new
    if isinstance(arg, str) and arg.startswith(old + "."):
        return new + arg[len(old):]
    return arg
