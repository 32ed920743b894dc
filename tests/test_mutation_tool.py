"""benchmarks/mutation.py plants the bugs it says it plants (the score means something)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("mutation", ROOT / "benchmarks" / "mutation.py")
mutation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mutation)

SOURCE = '''
def f(a, b):
    """Docstring 1 + 2."""
    if a < b and not a:
        raise ValueError(f"bad {a + 1}")
    return a + b * 2.0
'''


def test_points_cover_operators_and_skip_messages():
    kinds = [k for _, k, _ in mutation.points(ast.parse(SOURCE))]
    assert sorted(kinds) == sorted(["And", "Lt", "not", "Add", "Mult", "constant 2.0"])


def test_each_mutant_changes_behaviour():
    ns = {}
    exec(SOURCE, ns)
    for index, _kind, _line in mutation.points(ast.parse(SOURCE)):
        mutated, what = mutation.mutate(SOURCE, index)
        assert mutated != ast.unparse(ast.parse(SOURCE)), what
        mns = {}
        exec(mutated, mns)
        results = []
        for a, b in [(0, 1), (2, 3), (3, 2), (0, 0)]:
            for fn in (ns["f"], mns["f"]):
                try:
                    results.append(fn(a, b))
                except ValueError:
                    results.append("raised")
        assert results[0::2] != results[1::2], what


def test_every_listed_module_exists_and_has_tests():
    for module, tests in mutation.MODULES.items():
        assert (ROOT / "graphc" / module).exists(), module
        assert tests and all((ROOT / t.split("::")[0]).exists() for t in tests), module
    assert list(mutation.MODULES)[-1].startswith("backends/")  # measured last


def test_ci_slice_every_sampled_mutant_is_killed():
    """The CI-sized slice: a fixed sample of mutants of passes/prune.py against its by-hand
    tests, run for real (each in a fresh copy). The full run is a benchmark (docs/testing.md)."""
    r = mutation.measure("passes/prune.py", sample=4, seed=0, select="", timeout=120,
                         tests=["tests/test_passes_by_hand.py"])
    assert r["mutants"] == 4
    assert r["killed"] == r["mutants"], r["survivors"]
