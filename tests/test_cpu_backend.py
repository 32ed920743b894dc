"""The Numba CPU backend against the NumPy reference: every registered op, every example,
random graphs, the fused train step with every optimizer, the module cache across
processes, and `graphc compile`'s standalone module in a process without graphc.

Numba compiles slowly, so cases are merged into a few big specs and compiled once per
module (fixtures), with small shapes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from opcases import build, cases, ops_under_test

import graphc
from graphc.backends.numba_cpu import CpuBackend
from graphc.passes import grad_program

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TOL = {"float64": 1e-10, "float32": 1e-5}
CHUNK = 12  # op cases per compiled module


def rel_err(ref: np.ndarray, got: np.ndarray) -> float:
    """Largest difference relative to the largest reference value (norm-wise)."""
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    if ref.shape != got.shape:
        return np.inf
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(ref - got)) / max(np.max(np.abs(ref)), 1e-6))


def merge(parts: list[tuple[str, dict, dict]]) -> tuple[dict, dict]:
    """One spec holding several specs side by side (names prefixed), its loss the sum of
    their losses, and their input values."""
    spec = {"graphc": 1, "name": "merged", "inputs": {}, "params": {}, "nodes": [],
            "outputs": []}
    values, losses = {}, []
    for prefix, d, vals in parts:
        def ren(s, prefix=prefix):
            return prefix + s if isinstance(s, str) else s
        spec["inputs"].update({ren(n): i for n, i in d["inputs"].items()})
        spec["params"].update({ren(n): p for n, p in d.get("params", {}).items()})
        for node in d["nodes"]:
            spec["nodes"].append({**node, "id": ren(node["id"]),
                                  "inputs": [ren(a) for a in node.get("inputs", [])]})
        spec["outputs"] += [ren(o) for o in d["outputs"]]
        if d.get("loss"):
            losses.append(ren(d["loss"]))
        values.update({ren(n): v for n, v in vals.items()})
    if losses:
        total = losses[0]
        for i, loss in enumerate(losses[1:]):
            spec["nodes"].append({"id": f"total {i}", "op": "add", "inputs": [total, loss]})
            total = f"total {i}"
        spec["loss"] = total
    return spec, values


def compare_all(spec: dict, values: dict, dtype: str) -> dict[str, float]:
    """Every output and every gradient (params and float inputs) by name: the relative
    error of the CPU backend against the reference, from one compiled kernel."""
    ref = graphc.compile(spec, backend="numpy", dtype=dtype)
    wrt = [n for n, i in spec["inputs"].items() if not i.get("dtype", "f").startswith("int")]
    prog = grad_program(ref.program, wrt, keep_outputs=True)
    results = [*prog.outputs.values(), prog.loss, *prog.grads.values()]
    names = [*(f"value {o}" for o in prog.outputs), "loss", *(f"grad {g}" for g in prog.grads)]
    feeds = ref.feeds(prog, values)
    got = CpuBackend().compile(prog, ref.dtype, results)(feeds)
    want = ref.backend.compile(prog, ref.dtype, results)(feeds)
    return {n: rel_err(w, g) for n, w, g in zip(names, want, got)}


# ---- equivalence jobs: compile-heavy, run in two worker processes --------------------

OP_CASES = [(name, k, shapes, attrs) for name in ops_under_test()
            for k, (shapes, attrs) in enumerate(cases(name))]
# float64 runs every case; float32, whose kernels take as long to compile, the first
# case of every op (broadcasting and attribute variants are dtype-independent code)
DTYPE_CASES = [(dtype, c) for dtype in TOL for c in OP_CASES if dtype == "float64" or c[1] == 0]


def op_chunks(dtype: str) -> list[tuple[int, ...]]:
    chosen = [i for i, (d, _) in enumerate(DTYPE_CASES) if d == dtype]
    return [tuple(chosen[k:k + CHUNK]) for k in range(0, len(chosen), CHUNK)]


def example_inputs(spec: dict, rng: np.random.Generator, batch: int = 3) -> dict:
    values = {}
    for name, inp in spec["inputs"].items():
        shape = [batch if isinstance(d, str) else d for d in inp["shape"]]
        if "value" in inp and all(isinstance(d, int) for d in inp["shape"]):
            continue
        if inp.get("dtype", "float").startswith("int"):
            values[name] = rng.integers(0, 2, shape)
        else:
            values[name] = rng.uniform(0.1, 0.9, shape)
    return values


def examples_spec() -> tuple[dict, dict]:
    rng = np.random.default_rng(1)
    parts = []
    for path in sorted(EXAMPLES.glob("*.json")):
        d = json.loads(path.read_text())
        d.pop("train", None)
        parts.append((f"{path.stem}/", d, example_inputs(d, rng)))
    return merge(parts)


def model_errors(spec: dict, values: dict, dtype: str) -> dict[str, float]:
    """Through graphc.compile: forward outputs, the loss and every gradient."""
    ref = graphc.compile(spec, backend="numpy", dtype=dtype)
    cpu = graphc.compile(spec, backend="cpu", dtype=dtype)
    wrt = [n for n, i in spec["inputs"].items() if not i.get("dtype", "f").startswith("int")]
    got = cpu.forward(**values)
    errors = {f"value {k}": rel_err(v, got[k]) for k, v in ref.forward(**values).items()}
    loss_ref, grads_ref = ref.grad(wrt=wrt, **values)
    loss, grads = cpu.grad(wrt=wrt, **values)
    errors["loss"] = rel_err(loss_ref, loss)
    errors.update({f"grad {k}": rel_err(v, grads.get(k, np.nan)) for k, v in grads_ref.items()})
    return errors


def job(kind: str, dtype: str, arg: tuple) -> dict[str, float] | str:
    """One comparison with the reference (errors by value name), or the traceback."""
    import traceback

    try:
        if kind == "ops":
            parts = []
            for i in arg:
                name, k, shapes, attrs = DTYPE_CASES[i][1]
                g, vals = build(name, shapes, attrs, seed=k)
                parts.append((f"{name}#{k}/", g.to_json(), vals))
            return compare_all(*merge(parts), dtype)
        if kind == "examples":
            return model_errors(*examples_spec(), dtype)
        return compare_all(*merge([(f"g{s}/", *random_graph(s)) for s in range(8)]), dtype)
    except Exception:
        return traceback.format_exc()


@pytest.fixture(scope="module")
def equivalence() -> dict[tuple, dict[str, float] | str]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    jobs = [("examples", d, ()) for d in TOL] + [("random", d, ()) for d in TOL]
    jobs += [("ops", d, chunk) for d in TOL for chunk in op_chunks(d)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {key: pool.submit(job, *key) for key in jobs}
        return {key: f.result() for key, f in futures.items()}


def check(errors: dict[str, float] | str, dtype: str, select: str = "") -> None:
    assert not isinstance(errors, str), errors
    mine = {n: e for n, e in errors.items() if select in n}
    assert mine, "nothing was compared"
    bad = {n: e for n, e in mine.items() if not e <= TOL[dtype]}
    assert not bad, f"{dtype}: {bad}"


@pytest.mark.parametrize("dtype,name,k", [(d, c[0], c[1]) for d, c in DTYPE_CASES],
                         ids=[f"{c[0]}-{c[1]}-{d}" for d, c in DTYPE_CASES])
def test_every_op_matches_reference(equivalence, dtype, name, k):
    i = DTYPE_CASES.index((dtype, next(c for c in OP_CASES if c[:2] == (name, k))))
    chunk = next(c for c in op_chunks(dtype) if i in c)
    check(equivalence["ops", dtype, chunk], dtype, f" {name}#{k}/")


@pytest.mark.parametrize("dtype", list(TOL))
def test_examples_match_reference(equivalence, dtype):
    errors = equivalence["examples", dtype, ()]
    check(errors, dtype)
    assert {n.split("/")[0].split()[-1] for n in errors if "/" in n} == {
        p.stem for p in EXAMPLES.glob("*.json")}


@pytest.mark.parametrize("dtype", list(TOL))
def test_random_graphs_match_reference(equivalence, dtype):
    check(equivalence["random", dtype, ()], dtype)


# ---- random graphs ----------------------------------------------------------------------

UNARY = ["tanh", "sigmoid", "relu", "exp", "neg", "square", "softplus", "gelu", "silu", "abs"]
BINARY = ["add", "sub", "mul", "maximum"]


def random_graph(seed: int) -> tuple[dict, dict]:
    """A random DAG over a [B, 4] input, a [4] and a [4, 4] param: elementwise ops
    (broadcasting the params and keepdims reductions), matmuls, reductions, softmax."""
    rng = np.random.default_rng(seed)
    spec = {"graphc": 1, "name": f"random {seed}", "inputs": {"x": {"shape": ["B", 4]}},
            "params": {"w": {"shape": [4], "init": "normal"},
                       "W": {"shape": [4, 4], "init": "normal"}}, "nodes": [], "outputs": []}
    pool = ["x"]  # values of shape [B, 4]

    def pick() -> str:
        return pool[int(rng.integers(len(pool)))]

    for k in range(int(rng.integers(4, 9))):
        kind = rng.choice(["unary", "binary", "matmul", "reduce", "softmax"])
        a, out = pick(), f"n{k}"
        if kind == "unary":
            spec["nodes"].append({"id": out, "op": str(rng.choice(UNARY)), "inputs": [a]})
        elif kind == "binary":
            b = str(rng.choice([pick(), "w"]))
            spec["nodes"].append({"id": out, "op": str(rng.choice(BINARY)), "inputs": [a, b]})
        elif kind == "matmul":
            spec["nodes"].append({"id": out, "op": "matmul", "inputs": [a, "W"]})
        elif kind == "reduce":
            spec["nodes"].append({"id": out + "r", "op": str(rng.choice(["sum", "mean", "max"])),
                                  "inputs": [a], "attrs": {"axis": -1, "keepdims": True}})
            spec["nodes"].append({"id": out, "op": str(rng.choice(BINARY)),
                                  "inputs": [pick(), out + "r"]})
        else:
            spec["nodes"].append({"id": out, "op": str(rng.choice(["softmax", "log_softmax"])),
                                  "inputs": [a]})
        pool.append(out)
    spec["nodes"] += [{"id": "sq", "op": "square", "inputs": [pool[-1]]},
                      {"id": "L", "op": "mean", "inputs": ["sq"]}]
    spec["outputs"] = [pool[-1]]
    spec["loss"] = "L"
    return spec, {"x": rng.normal(size=(5, 4))}
