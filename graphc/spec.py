"""JSON <-> Graph: parsing with line/column errors, the JSON Schema (generated from the
op registry), and `Graph`, the spec as users wrote it (composites unexpanded)."""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np

from graphc import init as initializers
from graphc.errors import SpecError, did_you_mean
from graphc.ops import REGISTRY, public_ops

FORMAT = 1
# how Jupyter draws a Graph: set by the package root (graphc.teach), so no upward import
DISPLAY: Callable[[Graph], str] | None = None
TOP_KEYS = ("graphc", "name", "doc", "seed", "inputs", "params", "nodes", "outputs", "loss",
            "train")
DTYPES = ("float32", "float64", "int32", "int64")


@dataclass
class Graph:
    """A model as its spec says it: names, ops and attributes, composites unexpanded.

    `graphc.load` returns one, validated; `to_json()` gives back an equivalent spec.
    """

    name: str
    inputs: dict[str, dict[str, Any]]
    nodes: list[dict[str, Any]]
    outputs: list[str]
    params: dict[str, dict[str, Any]] = field(default_factory=dict)
    loss: str | None = None
    doc: str | None = None
    seed: int = 0
    train: dict[str, Any] | None = None
    source: str | None = field(default=None, compare=False)  # file name, for messages
    _program: Any = field(default=None, compare=False, repr=False)  # lowered, once

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"graphc": FORMAT, "name": self.name}
        if self.doc is not None:
            out["doc"] = self.doc
        if self.seed:
            out["seed"] = self.seed
        out["inputs"] = copy.deepcopy(self.inputs)
        if self.params:
            out["params"] = copy.deepcopy(self.params)
        out["nodes"] = copy.deepcopy(self.nodes)
        out["outputs"] = list(self.outputs)
        if self.loss is not None:
            out["loss"] = self.loss
        if self.train is not None:
            out["train"] = copy.deepcopy(self.train)
        return out

    def to_json_text(self) -> str:
        return dumps(self.to_json())

    def node(self, node_id: str) -> dict[str, Any]:
        return next(n for n in self.nodes if n["id"] == node_id)

    def _repr_svg_(self) -> str | None:  # Jupyter shows a Graph as its diagram
        return DISPLAY(self) if DISPLAY is not None else None


def dumps(spec: dict[str, Any]) -> str:
    """A spec as JSON text laid out as the examples are: one input, param or node a line."""
    def one(v: Any) -> str:
        return json.dumps(v, ensure_ascii=False)

    order = ["graphc", "name", "doc", "seed", "inputs", "params", "nodes", "outputs", "loss"]
    keys = sorted(spec, key=lambda k: order.index(k) if k in order else len(order))
    parts = []
    for key, value in ((k, spec[k]) for k in keys):
        if key in ("inputs", "params") and isinstance(value, dict) and value:
            body = ",\n".join(f"    {one(k)}: {one(v)}" for k, v in value.items())
            parts.append(f"  {one(key)}: {{\n{body}\n  }}")
        elif key == "nodes" and isinstance(value, list) and value:
            body = ",\n".join(f"    {one(n)}" for n in value)
            parts.append(f"  {one(key)}: [\n{body}\n  ]")
        else:
            parts.append(f"  {one(key)}: {one(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def parse_text(text: str, source: str | None = None) -> dict[str, Any]:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise SpecError(f"invalid JSON: {e.msg}", place=f"line {e.lineno}, column {e.colno}",
                        source=source) from None


def read(src: Any) -> tuple[dict[str, Any], str | None]:
    """A spec dict and its source name from a path, a JSON string or a dict."""
    if isinstance(src, dict):
        return copy.deepcopy(src), None
    if isinstance(src, (str, os.PathLike)):
        text = str(src)
        if isinstance(src, str) and text.lstrip().startswith("{"):
            return parse_text(text, "<string>"), "<string>"
        path = Path(src)
        if not path.exists():
            raise SpecError("no such file", source=str(path),
                            hint="check the path, or pass the spec as a dict or JSON text")
        if path.is_dir():
            raise SpecError("is a directory, not a spec file", source=str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SpecError(f"cannot read: {e}", source=str(path)) from None
        return parse_text(text, str(path)), str(path)
    raise SpecError(f"cannot load a spec from {type(src).__name__}",
                    hint="pass a file path, a JSON string, a dict or a graphc.Graph")


def from_dict(spec: dict[str, Any], source: str | None = None,
              imported: bool = False) -> Graph:
    """Check the spec's structure against the schema and build a Graph (not yet
    checked semantically: see graphc.passes.validate). `imported=True` (a spec read from
    ONNX) lets input shapes hold 0 and constants be infinite: ONNX models may take empty
    tensors and hold -inf (the max of an empty set); in a written spec both are mistakes."""
    check_structure(spec, source, imported)
    return Graph(name=spec["name"], doc=spec.get("doc"), seed=spec.get("seed", 0),
                 inputs=spec["inputs"], params=spec.get("params", {}), nodes=spec["nodes"],
                 outputs=spec["outputs"], loss=spec.get("loss"), train=spec.get("train"),
                 source=source)


def json_path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def check_structure(spec: Any, source: str | None = None, imported: bool = False) -> None:
    if not isinstance(spec, dict):
        raise SpecError(f"a spec is a JSON object, not {type(spec).__name__}", source=source)
    for key in spec:
        if key not in TOP_KEYS:
            hint = did_you_mean(key, TOP_KEYS) or "known keys: " + ", ".join(TOP_KEYS)
            raise SpecError(f"unknown key {key!r}", place="(top level)", source=source, hint=hint)
    if "graphc" in spec and spec["graphc"] != FORMAT:
        raise SpecError(f"unsupported format {spec['graphc']!r}", place="graphc", source=source,
                        hint=f"this graphc reads format {FORMAT}")
    if "nodes" not in spec:
        raise SpecError("'nodes' is a required property", place="(top level)", source=source,
                        hint='add "nodes": [...], the list of operations')
    # nodes are checked by hand: jsonschema takes seconds on a 10,000-node spec
    _check_nodes(spec["nodes"], source)
    _check_numbers(spec, source, imported)
    rest = {k: v for k, v in spec.items() if k != "nodes"}
    rest["nodes"] = []
    errors = sorted(_validator().iter_errors(rest),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        e = jsonschema.exceptions.best_match(errors)
        msg = e.message
        hint = None
        if e.validator == "additionalProperties" and isinstance(e.instance, dict):
            allowed = list(e.schema.get("properties", {}))
            extra = [k for k in e.instance if k not in allowed]
            msg = f"unknown key {extra[0]!r}" if extra else msg
            hint = (did_you_mean(extra[0], allowed) if extra else None) or \
                "known keys: " + ", ".join(allowed)
        raise SpecError(msg, place=json_path(e.absolute_path), hint=hint, source=source)


def _check_numbers(spec: dict[str, Any], source: str | None, imported: bool = False) -> None:
    """What the schema lets through: its "integer" takes 2.0, and JSON or a dict can hold
    NaN. Sizes are positive ints, the seed a non-negative int, values finite numbers.
    Runs before the schema, whose messages for these are vaguer; skips what is not even
    the right type (the schema reports that)."""
    seed = spec.get("seed", 0)
    if type(seed) is not int or seed < 0:
        raise SpecError(f"seed must be a non-negative integer, not {seed!r}", place="seed",
                        source=source)
    for key, symbols in (("inputs", True), ("params", False)):
        entries = spec.get(key)
        for name, entry in entries.items() if isinstance(entries, dict) else ():
            if not isinstance(entry, dict):
                continue  # the schema says what it should be
            if isinstance(entry.get("shape"), list):
                check_shape(entry["shape"], f"{key}.{name}.shape", source, symbols,
                            imported and key == "inputs")
            if "value" in entry and not imported:
                check_finite(entry["value"], f"{key}.{name}.value", source)


def check_shape(shape: list, place: str, source: str | None, symbols: bool = True,
                empty: bool = False) -> None:
    """Shape entries are positive ints (0 too, with `empty`) or, for inputs, symbol
    names such as B."""
    for k, d in enumerate(shape):
        if type(d) is int and d >= (0 if empty else 1) \
                or symbols and isinstance(d, str) and d.isidentifier():
            continue
        what = "non-negative" if empty else "positive"
        what = f"{what} integers or names such as B" if symbols else f"{what} integers"
        raise SpecError(f"shape entries are {what}, not {d!r}", place=f"{place}[{k}]",
                        source=source)


def check_finite(value: Any, place: str, source: str | None) -> None:
    """A number or a regular nested list of finite numbers (NaN and infinities refused)."""
    try:
        a = np.asarray(value, dtype=float)
    except (ValueError, TypeError, OverflowError):
        raise SpecError("value is not a number or a regular nested list of numbers",
                        place=place, source=source) from None
    if not np.isfinite(a).all():
        bad = a.flat[int(np.argmin(np.isfinite(a).ravel()))]
        word = "NaN" if bad != bad else ("Infinity" if bad > 0 else "-Infinity")  # JSON's words
        raise SpecError(f"{word} is not a finite number", place=place, source=source,
                        hint="values must be finite; leave the value out to pass it at run time")


NODE_KEYS = ("id", "op", "inputs", "attrs", "doc")


def _check_nodes(nodes: Any, source: str | None) -> None:
    """The node part of the schema, checked directly (same rules, same places)."""
    if not isinstance(nodes, list):
        raise SpecError("must be an array of nodes", place="nodes", source=source)
    for i, node in enumerate(nodes):
        place = f"nodes[{i}]"
        if not isinstance(node, dict):
            raise SpecError("a node is an object with id, op and inputs", place=place,
                            source=source)
        for key in node:
            if key not in NODE_KEYS:
                raise SpecError(f"unknown key {key!r}", place=place, source=source,
                                hint=did_you_mean(key, NODE_KEYS)
                                or "known keys: " + ", ".join(NODE_KEYS))
        for key in ("id", "op"):
            if key not in node:
                raise SpecError(f"{key!r} is a required property", place=place, source=source)
            if not isinstance(node[key], str) or not node[key]:
                raise SpecError(f"{key} must be a non-empty string, not {node[key]!r}",
                                place=f"{place}.{key}", source=source)
        args = node.get("inputs", [])
        if not isinstance(args, list):
            raise SpecError("inputs must be an array of names and numbers",
                            place=f"{place}.inputs", source=source)
        for j, a in enumerate(args):
            if isinstance(a, bool) or not isinstance(a, (str, int, float)):
                raise SpecError(f"{a!r} is neither a name nor a number",
                                place=f"{place}.inputs[{j}]", source=source)
        if not isinstance(node.get("attrs", {}), dict):
            raise SpecError("attrs must be an object", place=f"{place}.attrs", source=source)
        if not isinstance(node.get("doc", ""), str):
            raise SpecError("doc must be a string", place=f"{place}.doc", source=source)


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(structural=True))


def schema(structural: bool = False) -> dict[str, Any]:
    """The JSON Schema of the spec format. `structural=True` leaves op names and
    attributes to the semantic checks, which give better messages."""
    least = 0 if structural else 1  # structural: check_shape says it (ONNX may hold 0)
    dim = {"anyOf": [{"type": "integer", "minimum": least},
                     {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
                      "description": "a symbolic dimension, e.g. B"}]}
    init = {"anyOf": [{"type": "number"}, {"type": "array"},
                      {"enum": list(initializers.NAMES)},
                      {"type": "object", "required": ["name"],
                       "properties": {"name": {"enum": list(initializers.NAMES)}}}]}
    node: dict[str, Any] = {
        "type": "object", "required": ["id", "op"], "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "minLength": 1},
            "op": {"type": "string"} if structural else
            {"enum": sorted(op.name for op in public_ops())},
            "inputs": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                            {"type": "number"}]}},
            "attrs": {"type": "object"},
            "doc": {"type": "string"}}}
    if not structural:
        node["allOf"] = [
            {"if": {"properties": {"op": {"const": op.name}}},
             "then": {"properties": {"attrs": {
                 "type": "object", "additionalProperties": False,
                 "properties": {k: a.json_schema() for k, a in op.attrs.items()}}},
                 "description": op.formula}}
            for op in sorted(public_ops(), key=lambda o: o.name)]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://graphc.dev/schema/spec-1.json",
        "title": "graphc model spec, format 1",
        "type": "object", "required": ["graphc", "name", "inputs", "nodes", "outputs"],
        "additionalProperties": False,
        "properties": {
            "graphc": {"const": FORMAT},
            "name": {"type": "string", "minLength": 1},
            "doc": {"type": "string"},
            "seed": {"type": "integer", "minimum": 0},
            "inputs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/input"}},
            "params": {"type": "object", "additionalProperties": {"$ref": "#/$defs/param"}},
            "nodes": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            "outputs": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "loss": {"type": "string"},
            "train": {"type": "object"}},
        "$defs": {
            "shape": {"type": "array", "items": dim},
            "input": {"type": "object", "required": ["shape"], "additionalProperties": False,
                      "properties": {"shape": {"$ref": "#/$defs/shape"},
                                     "dtype": {"enum": list(DTYPES)},
                                     "value": {"type": ["number", "array"]},
                                     "doc": {"type": "string"}}},
            "param": {"type": "object", "required": ["shape"], "additionalProperties": False,
                      "properties": {"shape": {"type": "array",
                                               "items": {"type": "integer",
                                                         "minimum": least}},
                                     "init": {} if structural else init,
                                     "doc": {"type": "string"}}},
            "node": node}}


def ops_by_family() -> dict[str, list]:
    out: dict[str, list] = {}
    for op in public_ops():
        out.setdefault(op.family, []).append(op)
    return out


assert REGISTRY  # ops are registered by importing graphc.ops above
