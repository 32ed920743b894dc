"""Imports flow one way (docs/architecture.md, "Who may import whom"): every graphc module's
imports, those inside functions included, checked against the layer table below, and no
import cycle among graphc modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import graphc

ROOT = Path(graphc.__file__).parent

# Layers from the bottom up: a module may import its own layer and the layers before it,
# unless `may` lists exactly which layers it may import. A name matches a module or a
# package ("graphc.ops" covers graphc.ops.*); the longest match wins.
LAYERS: list[tuple[str, tuple[str, ...], tuple[str, ...] | None]] = [
    ("core", ("graphc.errors", "graphc.ir", "graphc.dims", "graphc.version", "graphc.sugar",
              "graphc.init", "graphc.inputs"), None),
    ("ops", ("graphc.ops", "graphc.opdoc"), None),
    ("front ends", ("graphc.spec", "graphc.onnx.reader", "graphc.onnx.reader_conv",
                    "graphc.onnx.reader_core", "graphc.onnx.reader_math", "graphc.onnx.reader_ml",
                    "graphc.onnx.reader_shape"), None),
    ("passes", ("graphc.passes",), None),
    # builder.build validates what it built as load does: through the lower pass
    ("loading", ("graphc.loader", "graphc.builder"), None),
    ("backends", ("graphc.backends", "graphc.onnx.writer"), None),
    ("training", ("graphc.data", "graphc.optim", "graphc.schedules", "graphc.schedules_decay",
                  "graphc.schedules_cyclic", "graphc.train", "graphc.distributed",
                  "graphc.plots", "graphc.epochs", "graphc.history", "graphc.lr_finder",
                  "graphc.train_options"), None),
    # graphc.onnx's export reads a Model; graphc.standalone initializes params and picks
    # the optimizer of `graphc compile`'s module
    ("runtime", ("graphc.runtime", "graphc.standalone", "graphc.gradcheck", "graphc.onnx"),
     None),
    # viz reads a Graph and a Trace or Program handed to it: never passes, runtime, backends
    ("viz", ("graphc.viz",), ("core", "ops", "front ends", "viz")),
    ("drivers", ("graphc.teach", "graphc.teach_views", "graphc.doctor", "graphc.onnx.backend"),
     None),
    ("cli", ("graphc.cli", "graphc.cli_compile", "graphc.cli_convert", "graphc.cli_doctor",
             "graphc.cli_train", "graphc.cli_viz", "graphc.__main__"), None),
    ("root", ("graphc",), None),
]
# the package root only re-exports; the command line, its other face, may call it
ROOT_IMPORTERS = ("cli",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports(name: str) -> list[tuple[str, int]]:
    """(graphc module imported, line) for every import in the module, at any depth (but
    not under `if TYPE_CHECKING:`, which only type checkers read)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for block in ast.walk(tree) if _type_checking(block)
                   for stmt in block.body for n in ast.walk(stmt)}  # never run
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            for a in node.names:  # `from graphc import spec` imports the module graphc.spec
                sub = f"{base}.{a.name}"
                out.append((sub if sub in MODULES else base, node.lineno))
    return [(_known(m), line) for m, line in out if m == "graphc" or m.startswith("graphc.")]


def _type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _known(m: str) -> str:
    while m not in MODULES and "." in m:
        m = m.rpartition(".")[0]
    return m


def layer_of(name: str) -> str:
    best, layer = -1, None
    for lname, members, _ in LAYERS:
        for m in members:  # the root is graphc/__init__.py only, not every graphc module
            inside = name.startswith(m + ".") and m != "graphc"
            if (name == m or inside) and len(m) > best:
                best, layer = len(m), lname
    assert layer is not None, f"{name} is in no layer: add it to LAYERS in {__file__}"
    return layer


def allowed(layer: str) -> set[str]:
    names = [n for n, _, _ in LAYERS]
    may = dict((n, m) for n, _, m in LAYERS)[layer]
    return set(may) if may is not None else set(names[: names.index(layer) + 1])


def test_every_module_has_a_layer():
    assert len(MODULES) > 60
    for name in MODULES:
        layer_of(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_follow_the_table(name):
    mine = layer_of(name)
    bad = []
    for target, line in imports(name):
        theirs = layer_of(target)
        if theirs == "root" and mine not in ("root", *ROOT_IMPORTERS):
            bad.append(f"{MODULES[name].relative_to(ROOT.parent)}:{line} imports the package "
                       f"root ({target}); import the module that defines the name instead")
        elif theirs != "root" and theirs not in allowed(mine):
            bad.append(f"{MODULES[name].relative_to(ROOT.parent)}:{line}: {name} ({mine}) "
                       f"imports {target} ({theirs}), which it may not (docs/architecture.md)")
    assert not bad, "\n".join(bad)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` (a list of nodes, the first repeated at the end), else None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == 1:
                return path[path.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_no_import_cycle():
    graph = {name: {t for t, _ in imports(name) if t != name} for name in MODULES}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_imports_only_type_checkers_read_are_not_counted(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                   "    from graphc.runtime import Model\n"
                                   "def f():\n    from graphc.ir import Node\n")
    monkeypatch.setitem(MODULES, "graphc.m", tmp_path / "m.py")
    assert imports("graphc.m") == [("graphc.ir", 5)]


def test_the_checks_catch_a_violation():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert "runtime" not in allowed("viz") and "backends" not in allowed("viz")
    assert "runtime" not in allowed("training") and "passes" in allowed("backends")
    assert layer_of("graphc.onnx.reader") == "front ends" and layer_of("graphc.onnx") == "runtime"
    assert layer_of("graphc") == "root" and layer_of("graphc.passes.lower") == "passes"


def test_the_backends_implement_the_declared_protocol():
    from graphc.backends import get
    from graphc.backends.protocol import Backend, FusedTraining, fused_step

    cpu, ref = get("cpu"), get("numpy")
    assert isinstance(cpu, Backend) and isinstance(ref, Backend)
    assert isinstance(cpu, FusedTraining) and fused_step(cpu) == cpu.train_step
    assert not isinstance(ref, FusedTraining) and fused_step(ref) is None
