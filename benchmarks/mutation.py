"""Mutation score of the test suite over graphc's core: plant one small bug (a mutant) at
a time in a copy of the repository, run the tests that cover that module, and count the
mutants the tests catch ("killed"). Surviving mutants are listed with their line.

    nice -n 15 python benchmarks/mutation.py --sample 30 optim.py   # CI-sized, fixed seed
    nice -n 15 python benchmarks/mutation.py --full                  # every mutant: hours
    python benchmarks/mutation.py passes/prune.py --lines 28 --tests tests/test_passes_by_hand.py

The operators are the classic ones (as in mutmut and cosmic-ray): arithmetic and
comparison operators swapped, `and`/`or` swapped, True/False flipped, numbers changed,
`not` dropped. Each mutant runs in a fresh copy, so a crash never leaves the checkout
mutated. The kernel writers under backends/ come last (they are being rewritten). `--lines`
runs every mutant on those lines (does a new test kill a survivor?). Results: docs/testing.md."""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T = "tests/"
OPS = [T + "test_ops_contract.py", T + "test_ops_torch.py", T + "test_ops_by_hand.py"]
CONV = [T + "test_conv.py::" + t for t in (
    "test_conv_layer_matches_torch_conv2d", "test_conv_layer_init_uses_torch_fans",
    "test_conv_layer_counts_the_lectures_parameters",
    "test_max_pool_ties_route_the_gradient_like_torch",
    "test_bad_inputs_name_the_node_and_shapes", "test_conv_layer_rejects_inputs_without_channels")]
PASSES = [T + "test_autodiff.py", T + "test_passes_by_hand.py", T + "test_ops_contract.py",
          T + "test_builder_and_spec.py", T + "test_errors.py"]
# module (under graphc/) -> the tests that cover it (files or pytest node ids); narrow on
# purpose: every mutant runs them all, and killing it is what they are for
MODULES: dict[str, list[str]] = {
    "optim.py": [T + "test_optim_by_hand.py", T + "test_optim.py"],
    "schedules.py": [T + "test_schedules_by_hand.py", T + "test_optim.py"],
    "schedules_decay.py": [T + "test_schedules_by_hand.py", T + "test_optim.py"],
    "schedules_cyclic.py": [T + "test_schedules_by_hand.py", T + "test_optim.py"],
    "inputs.py": [T + "test_inputs.py", T + "test_hardening.py"],
    "epochs.py": [T + "test_epoch.py"],
    "ops/elementwise.py": OPS,
    "ops/activations.py": OPS,
    "ops/losses.py": [*OPS, T + "test_oracles_cpu.py"],
    "ops/reductions.py": OPS,
    "ops/linalg.py": OPS,
    "ops/composite.py": OPS,
    "ops/internal.py": [*OPS, T + "test_autodiff.py"],
    "ops/modes.py": [*OPS, T + "test_state.py"],
    "ops/regularization.py": [*OPS, T + "test_regularization.py"],
    "ops/conv.py": [*OPS, *CONV],
    "ops/pool.py": [*OPS, *CONV],
    "ops/registry.py": [*OPS, T + "test_errors.py"],
    "passes/autodiff.py": PASSES,
    "passes/simplify.py": PASSES,
    "passes/prune.py": PASSES,
    "passes/lower.py": PASSES,
    "passes/emit.py": PASSES,
    "passes/specialize.py": [*PASSES, T + "test_state.py"],
    "passes/pipeline.py": [*PASSES, T + "test_cli.py"],
    "passes/broadcast_check.py": PASSES,
    "passes/validate.py": [T + "test_errors.py", T + "test_builder_and_spec.py"],
    "backends/numpy_interp.py": [T + "test_ops_contract.py", T + "test_autodiff.py",
                                 T + "test_errors.py"],
    "viz/dot.py": [T + "test_viz.py", T + "test_viz_snapshots.py"],
    "passes/schedule.py": [T + "test_schedule.py"],
    "passes/plan.py": [T + "test_schedule.py", T + "test_oracles_cpu.py",
                       T + "test_cpu_backend.py"],
    "passes/loops.py": [T + "test_schedule.py", T + "test_oracles_cpu.py",
                        T + "test_cpu_backend.py"],
    # the kernel writers: their covering tests compile kernels, so each mutant is slow
    "backends/numba_source.py": [T + "test_oracles_cpu.py", T + "test_cpu_backend.py"],
    "backends/numba_kernel.py": [T + "test_oracles_cpu.py", T + "test_cpu_backend.py",
                                 T + "test_generated_comments.py"],
    "backends/numba_templates.py": [T + "test_oracles_cpu.py", T + "test_cpu_backend.py"],
    "backends/numba_wrappers.py": [T + "test_oracles_cpu.py", T + "test_cpu_backend.py"],
    "backends/epoch.py": [T + "test_epoch.py"],
}

SWAP = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
        ast.Pow: ast.Mult, ast.FloorDiv: ast.Div, ast.Mod: ast.Mult,
        ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
        ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
        ast.In: ast.NotIn, ast.NotIn: ast.In, ast.And: ast.Or, ast.Or: ast.And}


def _skip(node: ast.AST, parents: dict) -> bool:
    """Docstrings, and the arguments of raise (messages): not behaviour worth a mutant."""
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.Raise, ast.JoinedStr)):
            return True
    return False


def points(tree: ast.Module) -> list[tuple[int, str, int]]:
    """Every mutation point: (index of the node in ast.walk order, kind, line)."""
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    out = []
    for i, node in enumerate(ast.walk(tree)):
        if _skip(node, parents):
            continue
        if isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in SWAP:
            out.append((i, type(node.op).__name__, node.lineno))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in SWAP:
            out.append((i, type(node.ops[0]).__name__, node.lineno))
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
            out.append((i, f"constant {node.value!r}", node.lineno))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            out.append((i, "not", node.lineno))
    return out


def mutate(source: str, index: int) -> tuple[str, str]:
    """The source with node `index` mutated, and a description of the change."""
    tree = ast.parse(source)
    node = list(ast.walk(tree))[index]
    if isinstance(node, (ast.BinOp, ast.BoolOp)):
        new = SWAP[type(node.op)]
        what = f"{type(node.op).__name__} -> {new.__name__}"
        node.op = new()
    elif isinstance(node, ast.Compare):
        new = SWAP[type(node.ops[0])]
        what = f"{type(node.ops[0]).__name__} -> {new.__name__}"
        node.ops[0] = new()
    elif isinstance(node, ast.Constant):
        v = node.value
        node.value = (not v) if isinstance(v, bool) else (v + 1 if v in (0, 0.0) else v * 2)
        what = f"{v!r} -> {node.value!r}"
    else:  # not x -> x
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        parent = parents[node]
        for field, value in ast.iter_fields(parent):
            if value is node:
                setattr(parent, field, node.operand)
            elif isinstance(value, list):
                setattr(parent, field, [node.operand if v is node else v for v in value])
        what = "not x -> x"
    return ast.unparse(tree), what


def run_tests(copy: Path, tests: list[str], select: str, timeout: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(copy),
           "GRAPHC_CACHE_DIR": tempfile.mkdtemp(prefix="graphc-mut-cache-")}
    env.pop("CI", None)  # a skip is not a failure here
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           *(["-k", select] if select else []), *tests]
    try:
        return subprocess.run(cmd, cwd=copy, env=env, capture_output=True,
                              timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return -1  # a mutant that hangs the tests is caught too


def measure(module: str, sample: int | None, seed: int, select: str, timeout: int,
            tests: list[str] | None = None, lines: list[int] | None = None) -> dict:
    tests = [t for t in tests or MODULES[module] if (ROOT / t.split("::")[0]).exists()
             or print(f"{module}: {t} is not there; measuring without it", flush=True)]
    path = ROOT / "graphc" / module
    source = path.read_text()
    everything = points(ast.parse(source))
    chosen = everything if sample is None else random.Random(f"{seed}:{module}").sample(
        everything, min(sample, len(everything)))
    if lines:  # every mutant on these lines (to check that a new test kills them)
        chosen = [p for p in everything if p[2] in lines]
    with tempfile.TemporaryDirectory(prefix="graphc-mut-") as tmp:
        copy = Path(tmp)
        for part in ("graphc", "tests", "examples", "pyproject.toml", "docs"):
            src = ROOT / part
            (shutil.copytree if src.is_dir() else shutil.copy)(
                src, copy / part, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                     if src.is_dir() else {}))
        target = copy / "graphc" / module
        if run_tests(copy, tests, select, timeout) != 0:
            raise SystemExit(f"{module}: the unmutated tests fail; fix them first")
        survivors, killed = [], 0
        for index, _kind, line in sorted(chosen, key=lambda p: p[2]):
            mutated, what = mutate(source, index)
            target.write_text(mutated)
            rc = run_tests(copy, tests, select, timeout)
            if rc == 0:
                survivors.append({"line": line, "change": what,
                                  "code": source.splitlines()[line - 1].strip()})
            else:
                killed += 1
        target.write_text(source)
    n = len(chosen)
    return {"module": module, "mutants": n, "of": len(everything), "killed": killed,
            "score": killed / n if n else 1.0, "survivors": survivors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("modules", nargs="*", help="modules under graphc/ (default: all)")
    ap.add_argument("--sample", type=int, default=30, help="mutants per module (CI slice)")
    ap.add_argument("--full", action="store_true", help="every mutant")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-k", dest="select", default="", help="pytest -k for the test files")
    ap.add_argument("--tests", nargs="*", help="test files instead of the module's own")
    ap.add_argument("--lines", type=int, nargs="*", help="only the mutants on these lines")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    results = []
    for module in args.modules or list(MODULES):
        start = time.time()
        r = measure(module, None if args.full else args.sample, args.seed, args.select,
                    args.timeout, args.tests, args.lines)
        results.append(r)
        print(f"{module}: {r['killed']}/{r['mutants']} killed ({100 * r['score']:.0f}%), "
              f"{r['of']} mutation points, {time.time() - start:.0f} s", flush=True)
        for s in r["survivors"]:
            print(f"  survived line {s['line']}: {s['change']}   | {s['code']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
