"""The driver graphc.teach and the layering around it: viz reads a Graph and a Trace and
never imports runtime, backends, optim, train, the driver or the package root."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import graphc
from graphc.passes import forward_program
from graphc.teach import scene_for, trace_of
from graphc.viz import scene, viz

ROOT = Path(graphc.__file__).parent
FORBIDDEN = ("graphc.runtime", "graphc.backends", "graphc.teach", "graphc.optim",
             "graphc.train", "graphc.gradcheck", "graphc.cli")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            if node.module == "graphc":  # from graphc import x
                out |= {f"graphc.{a.name}" for a in node.names}
    return out


def test_viz_never_imports_runtime_backends_or_the_driver():
    files = sorted((ROOT / "viz").glob("*.py"))
    assert len(files) >= 6
    for f in files:
        bad = {m for m in _imports(f) if m == "graphc" or m.startswith(FORBIDDEN)}
        assert not bad, f"{f.name} imports {sorted(bad)}"


def test_the_front_end_does_not_import_viz():
    assert not {m for m in _imports(ROOT / "spec.py") if m.startswith("graphc.viz")}


def test_importing_viz_alone_loads_no_runtime():
    code = ("import sys; import graphc.viz.dot, graphc.viz.step, graphc.viz.html; "
            "print(sorted(m for m in sys.modules if m.startswith(('graphc.runtime', "
            "'graphc.backends', 'graphc.teach'))))")  # the root imports optim
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"


def test_viz_draws_a_graph_and_a_trace_handed_to_it(examples):
    graph = graphc.load(examples / "neuron.json")
    trace = trace_of(graph)
    d = viz(graph, trace)  # the pure entry: nothing computed inside viz
    assert "0.73" in d.source and "-0.20" in d.source
    structure = viz(graph, program=forward_program(graph))  # no trace: the structure only
    assert "0.73" not in structure.source and "w0" in structure.source
    with pytest.raises(ValueError, match="trace= or program="):
        viz(graph)  # viz computes nothing itself
    assert scene(graph, trace).values is trace.by_id
    assert graphc.viz(graph).source == d.source  # the driver traces with the defaults


def test_driver_without_values_draws_structure(examples):
    sc = scene_for(examples / "mnist_mlp.json")
    assert sc.values is None and sc.units
