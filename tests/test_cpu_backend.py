"""The Numba CPU backend against the NumPy reference: every registered op, every example,
random graphs, the fused train step with every optimizer, the module cache across
processes, and `graphc compile`'s standalone module in a process without graphc.

Numba compiles slowly, so cases are merged into a few big specs and compiled once per
module (fixtures), with small shapes.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from opcases import build, cases, ops_under_test

import graphc
from graphc.backends.numba_cpu import CpuBackend
from graphc.backends.numba_source import Entry, module_source
from graphc.errors import InputError
from graphc.optim import SGD, Adagrad, Adam, AdamW, RMSprop
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
    error of the CPU backend against the reference, from one compiled kernel. The training
    mode's program: it has the random draws and the state updates evaluation drops."""
    ref = graphc.compile(spec, backend="numpy", dtype=dtype)
    wrt = [n for n, i in spec["inputs"].items() if not i.get("dtype", "f").startswith("int")]
    prog = grad_program(ref.mode_program(True), wrt, keep_outputs=True)
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


def examples_spec(skip: tuple[str, ...] = ()) -> tuple[dict, dict]:
    rng = np.random.default_rng(1)
    parts = []
    for path in sorted(EXAMPLES.glob("*.json")):
        if path.stem in skip:
            continue
        d = json.loads(path.read_text())
        d.pop("train", None)
        parts.append((f"{path.stem}/", d, example_inputs(d, rng)))
    return merge(parts)


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
        if kind == "examples":  # in float32, param_count is mnist_mlp, deeper and wider
            skip = ("param_count",) if dtype == "float32" else ()
            return compare_all(*examples_spec(skip=skip), dtype)
        if kind == "train":
            return train_errors(*arg)
        return compare_all(*merge([(f"g{s}/", *random_graph(s)) for s in range(8)]), dtype)
    except Exception:
        return traceback.format_exc()


@pytest.fixture(scope="module")
def equivalence() -> dict[tuple, dict[str, float] | str]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    jobs = [("examples", d, ()) for d in TOL] + [("random", "float64", ())]
    jobs += [("train", "float64", (kind,)) for kind in OPTIMIZERS]
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
    skipped = {"param_count"} if dtype == "float32" else set()
    assert {n.split("/")[0].split()[-1] for n in errors if "/" in n} == {
        p.stem for p in EXAMPLES.glob("*.json")} - skipped


def test_random_graphs_match_reference(equivalence):
    check(equivalence["random", "float64", ()], "float64")


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


# ---- the fused train step ------------------------------------------------------------------

TINY = {"graphc": 1, "name": "tiny", "inputs": {"x": {"shape": ["B", 3]},
                                                 "y": {"shape": ["B"], "dtype": "int64"}},
        "nodes": [{"id": "h", "op": "dense", "inputs": ["x"],
                   "attrs": {"units": 4, "activation": "tanh", "init": "normal"}},
                  {"id": "logits", "op": "dense", "inputs": ["h"], "attrs": {"units": 3}},
                  {"id": "loss", "op": "cross_entropy", "inputs": ["logits", "y"]}],
        "outputs": ["logits"], "loss": "loss"}


def tiny_batch(n: int = 6, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=(n, 3)), "y": rng.integers(0, 3, n)}


OPTIMIZERS = {
    "sgd": lambda: SGD(lr=0.1),
    "sgd-momentum-dampening": lambda: SGD(lr=0.1, momentum=0.9, dampening=0.5),
    "sgd-nesterov-decay": lambda: SGD(lr=0.1, momentum=0.8, nesterov=True, weight_decay=0.01),
    "adam-amsgrad": lambda: Adam(lr=0.05, amsgrad=True, weight_decay=0.01),
    "adamw": lambda: AdamW(lr=0.05),
    "rmsprop-centered-momentum": lambda: RMSprop(lr=0.01, centered=True, momentum=0.5),
    "adagrad": lambda: Adagrad(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
}
CLIPS = [{}, {"clip_grad_norm": 0.5}, {"clip_grad_value": 0.05},
         {"clip_grad_norm": 0.5, "clip_grad_value": 0.05}]


def train_errors(kind: str) -> dict[str, float]:
    """Four fused steps (clipping, and a learning rate change) against the reference."""
    ref = graphc.compile(TINY, backend="numpy", dtype="float64")
    cpu = graphc.compile(TINY, backend="cpu", dtype="float64")
    opt_ref, opt = OPTIMIZERS[kind](), OPTIMIZERS[kind]()
    errors = {}
    for step in range(4):
        batch = tiny_batch(seed=step)
        clip = CLIPS[(step + len(kind)) % len(CLIPS)]
        if step == 2:  # a schedule changes the learning rate: nothing recompiles
            opt_ref.lr = opt.lr = opt.lr / 2
        want = ref.train_step(opt_ref, **clip, **batch)
        errors[f"loss {step}"] = rel_err(want, cpu.train_step(opt, **clip, **batch))
    errors["steps"] = float(opt.t != opt_ref.t or opt.t != 4)
    for name, p in ref.params.items():
        errors[f"param {name}"] = rel_err(p, cpu.params[name])
        for slot, s in opt_ref.state[name].items():
            errors[f"slot {name} {slot}"] = rel_err(s, opt.state[name][slot])
    (trainer,) = cpu.backend._trainers.values()
    errors["compiled once"] = float(len(trainer.module.train_step_kernel.signatures) != 1)
    return errors


@pytest.mark.parametrize("kind", list(OPTIMIZERS))
def test_train_step_matches_reference(equivalence, kind):
    check(equivalence["train", "float64", (kind,)], "float64")


def test_train_step_float32_and_in_place():
    ref = graphc.compile(TINY, backend="numpy", dtype="float32")
    cpu = graphc.compile(TINY, backend="cpu", dtype="float32")
    opt_ref, opt = SGD(lr=0.1, momentum=0.9), SGD(lr=0.1, momentum=0.9)
    cpu.train_step(opt, **tiny_batch())
    ref.train_step(opt_ref, **tiny_batch())
    arrays = {k: v for k, v in cpu.params.items()}
    slots = {k: v["momentum_buffer"] for k, v in opt.state.items()}
    before = {k: v.copy() for k, v in arrays.items()}
    for step in range(1, 4):
        ref.train_step(opt_ref, **tiny_batch(seed=step))
        cpu.train_step(opt, **tiny_batch(seed=step))
    for k, p in ref.params.items():
        assert cpu.params[k] is arrays[k]  # updated in place, same arrays every step
        assert opt.state[k]["momentum_buffer"] is slots[k]
        assert not np.array_equal(before[k], p)
        assert rel_err(p, cpu.params[k]) < 1e-5
        assert rel_err(opt_ref.state[k]["momentum_buffer"], slots[k]) < 1e-5
    # replacing a param array by hand: the next step uses it
    cpu.params["h.W"], ref.params["h.W"] = np.zeros((3, 4), np.float32), np.zeros((3, 4))
    ref.train_step(opt_ref, **tiny_batch(seed=9))
    cpu.train_step(opt, **tiny_batch(seed=9))
    assert rel_err(ref.params["h.W"], cpu.params["h.W"]) < 1e-5


def test_steady_state_step_allocates_nothing():
    import tracemalloc

    m = graphc.compile(TINY, backend="cpu")
    opt = Adam(lr=1e-3)
    batch = {k: np.ascontiguousarray(v, np.float32 if k == "x" else np.int64)
             for k, v in tiny_batch(4096).items()}
    for _ in range(3):
        m.train_step(opt, **batch)
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = tracemalloc.get_traced_memory()[0]
    for _ in range(20):
        m.train_step(opt, **batch)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # one [B, 4] array of this batch is 4096 * 4 * 4 = 64 KiB: a step allocates none
    assert peak - start < 16384 and current - start < 4096


NRT_COUNT = """
import json
import sys
import numpy as np
from numba import types
from numba.core.runtime import rtsys
import graphc
from graphc.optim import AdamW
spec = json.load(open(sys.argv[1]))
for node in spec["nodes"]:  # batch norm's running stats leave the fused step: drop it
    node["inputs"] = ["pool1" if i == "bn" else i for i in node["inputs"]]
spec["nodes"] = [n for n in spec["nodes"] if n["op"] != "batch_norm"]
m = graphc.compile(spec, backend="cpu")
opt = AdamW(lr=0.01)
with np.load(sys.argv[2]) as f:
    x, y = f["x"][:int(sys.argv[3])], f["y"][:int(sys.argv[3])]
for _ in range(3):
    m.train_step(opt, x=x, y=y)
before = rtsys.get_allocation_stats()
for _ in range(20):
    m.train_step(opt, x=x, y=y)
after = rtsys.get_allocation_stats()
kernel = next(iter(m.backend._trainers.values())).module.train_step_kernel
arrays = sum(isinstance(t, types.Array) for t in kernel.signatures[-1])
print(after.alloc - before.alloc, after.free - before.free, arrays)
"""


@pytest.mark.parametrize("spec", ["digits_mlp", "digits_cnn"])
def test_steady_state_step_allocates_nothing_inside_numba(spec):
    """tracemalloc cannot see what compiled code allocates; Numba's own counters can
    (NUMBA_NRT_STATS). Over 20 warm train steps the only NRT allocations are the one
    header per array argument that Numba makes when an array crosses into the kernel
    (the buffer stays the caller's): no array is allocated inside, so the count does
    not depend on the batch. For the CNN (digits_cnn without its batch norm, whose
    running statistics keep a model off the fused step) this holds because the
    convolutions' im2col buffers are workspace scratch (OpaqueKernel.scratch), not
    np.empty per call."""
    data = EXAMPLES / "train" / "data" / "digits_train.npz"
    env = {**os.environ, "NUMBA_NRT_STATS": "1"}
    counts = []
    for batch in (16, 64):
        r = subprocess.run([sys.executable, "-c", NRT_COUNT,
                            str(EXAMPLES / "train" / f"{spec}.json"), str(data), str(batch)],
                           capture_output=True, text=True, env=env, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-3000:]
        allocs, frees, arrays = map(int, r.stdout.split()[-3:])
        assert allocs == frees == 20 * arrays, (spec, batch, allocs, frees, arrays)
        counts.append(allocs)
    assert counts[0] == counts[1]


# ---- one model, many calls -------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_models():
    return (graphc.compile(TINY, backend="numpy", dtype="float64"),
            graphc.compile(TINY, backend="cpu", dtype="float64"))


def test_cpu_is_the_default_backend():
    assert graphc.compile(TINY).backend_name == "cpu"


def test_any_batch_size_without_recompiling(tiny_models):
    ref, cpu = tiny_models
    for n in (1, 7, 2, 33, 0):
        batch = tiny_batch(n, seed=n)
        assert rel_err(ref.forward(**batch)["logits"], cpu.forward(**batch)["logits"]) < 1e-10
        if n:
            assert cpu.grad(**batch)[0] == pytest.approx(ref.grad(**batch)[0], rel=1e-10)
    assert len(cpu._compiled) == 2  # forward and grad, each compiled for one signature
    for fn in cpu._compiled.values():
        assert len(fn.kernel.module.run_kernel.signatures) == 1


def test_threads_share_a_model(tiny_models):
    from concurrent.futures import ThreadPoolExecutor

    ref, cpu = tiny_models
    batches = [tiny_batch(n, seed=n) for n in range(1, 17)]
    want = [ref.forward(**b)["logits"] for b in batches]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda b: cpu.forward(**b)["logits"], batches * 4))
    assert all(rel_err(w, g) < 1e-10 for w, g in zip(want * 4, got))


def test_bad_inputs_say_what_is_wrong(tiny_models):
    ref, cpu = tiny_models
    batch = tiny_batch(4)
    bad = {**batch, "y": np.array([0, 1, 7, 2])}
    with pytest.raises(InputError) as want:
        ref.grad(**bad)
    with pytest.raises(InputError) as got:
        cpu.grad(**bad)
    assert str(got.value) == str(want.value) and "label 7" in str(got.value)
    opt = SGD(lr=0.1)
    before = {k: v.copy() for k, v in cpu.params.items()}
    with pytest.raises(InputError, match="label 7"):
        cpu.train_step(opt, **bad)
    assert opt.t == 0 and all(np.array_equal(before[k], cpu.params[k]) for k in before)
    with pytest.raises(InputError, match="expected shape"):
        cpu.forward(x=np.ones((4, 5)))
    with pytest.raises(InputError, match=re.escape("axis 0 (B) is 5, but B is 4 in input 'x'")):
        cpu.train_step(opt, x=np.ones((4, 3)), y=np.zeros(5, int))
    saved = cpu.params["h.W"].copy()
    with pytest.raises(InputError, match=re.escape("param 'h.W' has shape [3, 4], got [2, 2]")):
        cpu.params["h.W"] = np.ones((2, 2))  # a wrong shape: refused as it is assigned
    np.testing.assert_array_equal(cpu.params["h.W"], saved)
    with pytest.raises(InputError, match=re.escape("param 'h.W' has shape [3, 4], got [2, 2]")):
        cpu.params = {**cpu.params, "h.W": np.ones((2, 2))}
    assert cpu.forward(**batch)["logits"].shape == (len(batch["x"]), 3)


# ---- the module cache, across processes -----------------------------------------------------

CACHE_SCRIPT = """
import json, sys
import numpy as np
import graphc
spec = json.loads(sys.argv[1])
m = graphc.compile(spec, backend="cpu")
opt = graphc.optim.SGD(lr=0.1)
rng = np.random.default_rng(0)
batch = {"x": rng.normal(size=(5, 3)), "y": rng.integers(0, 3, 5)}
loss = m.train_step(opt, **batch)
logits = m.forward(**batch)["logits"]
(trainer,) = m.backend._trainers.values()
stats = trainer.module.train_step_kernel.stats
print(json.dumps({"loss": loss, "logits": logits.tolist(),
                  "hits": sum(stats.cache_hits.values()),
                  "misses": sum(stats.cache_misses.values())}))
"""


def run_cached(folder: Path, n: int = 1) -> list[dict]:
    """Run CACHE_SCRIPT in `n` processes at once, all with the cache in `folder`."""
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(folder)}
    procs = [subprocess.Popen([sys.executable, "-c", CACHE_SCRIPT, json.dumps(TINY)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(n)]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_cache_is_shared_across_processes_and_survives_corruption(tmp_path):
    first = run_cached(tmp_path, 2)  # two processes compile the same model at once
    assert first[0]["misses"] == first[1]["misses"] == 1
    assert first[0]["loss"] == first[1]["loss"] and first[0]["logits"] == first[1]["logits"]
    (again,) = run_cached(tmp_path)
    assert again["hits"] == 1 and again["misses"] == 0  # compiled code loaded from disk
    assert again["loss"] == first[0]["loss"] and again["logits"] == first[0]["logits"]
    # damage Numba's files, then every file: modules are rewritten, Numba's recompiled
    for suffixes in ((".nbi", ".nbc"), (".py", ".nbi", ".nbc")):
        damaged = 0
        for path in tmp_path.rglob("*"):
            if path.suffix in suffixes:
                path.write_bytes(b"garbage" + path.read_bytes()[: path.stat().st_size // 2])
                damaged += 1
        assert damaged >= 6
        (repaired,) = run_cached(tmp_path)
        assert repaired["loss"] == first[0]["loss"]
        assert repaired["logits"] == first[0]["logits"]


def test_cache_dir_is_configurable(tmp_path, monkeypatch):
    from graphc.backends import cache

    assert cache.cache_dir(tmp_path / "a") == tmp_path / "a"
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path / "b"))
    assert cache.cache_dir() == tmp_path / "b"
    monkeypatch.delenv("GRAPHC_CACHE_DIR")
    assert "graphc" in str(cache.cache_dir())
    backend = CpuBackend(cache_dir=str(tmp_path / "c"))
    prog = graphc.compile(TINY, backend="numpy").program
    backend.compile(prog, np.dtype("float64"), list(prog.outputs.values()))
    assert len(list((tmp_path / "c").glob("graphc_tiny_*/*.py"))) == 1
    assert cache.clear(tmp_path / "c") >= 1 and not list((tmp_path / "c").glob("graphc_*"))


# ---- graphc compile: a standalone module, and names that try to break out ---------------

WEIRD = {"graphc": 1, "name": 'we"ird """ model \\ */',
         "inputs": {'in"""put': {"shape": ["B", 2]},
                    "la'bel": {"shape": ["B"], "dtype": "int64"}, "s'c": {"shape": []}},
         "params": {"*/ W \\ '": {"shape": [2, 3], "init": "normal"},
                    "print('hi')": {"shape": [3], "init": 0.1}},
         "nodes": [{"id": "h # not a comment", "op": "matmul",
                    "inputs": ['in"""put', "*/ W \\ '"]},
                   {"id": "\\n out", "op": "add", "inputs": ["h # not a comment", "print('hi')"]},
                   {"id": "scaled", "op": "mul", "inputs": ["\\n out", "s'c"]},
                   {"id": "ünï'\"\"\"", "op": "cross_entropy", "inputs": ["scaled", "la'bel"]}],
         "outputs": ["\\n out"], "loss": "ünï'\"\"\""}
WEIRD_NAMES = ['we"ird """ model \\ */', 'in"""put', "la'bel", "*/ W \\ '", "print('hi')",
               "h # not a comment", "\\n out", "ünï'\"\"\""]


def assert_names_only_in_comments_and_strings(source: str) -> None:
    doc = ast.get_docstring(ast.parse(source))
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            if tok.type == tokenize.STRING and "f" not in tok.string[:2].lower():
                assert isinstance(ast.literal_eval(tok.string), str)
            continue
        for name in WEIRD_NAMES:
            assert name not in tok.string, (name, tok)
    for name in WEIRD_NAMES:  # and every one of them is there, escaped
        assert repr(name) in source or repr(name) in doc, name


def test_generated_code_never_pastes_a_name(tmp_path):
    from graphc.standalone import standalone

    built = standalone(graphc.load(WEIRD), "float32")
    assert_names_only_in_comments_and_strings(built["source"])
    prog = graphc.compile(WEIRD, backend="numpy").grad_program()
    entry = Entry("run", prog, [prog.loss, *prog.grads.values()])
    assert_names_only_in_comments_and_strings(module_source(WEIRD["name"], np.dtype("f4"),
                                                            [entry]))
    assert built["source"] == standalone(graphc.load(WEIRD), "float32")["source"]


STANDALONE_SCRIPT = """
import json, os, sys
sys.modules["graphc"] = None  # graphc must not be needed
sys.path.insert(0, os.getcwd())
import numpy as np
import {module} as model
data = np.load("data.npz")
inputs = {{'in\"\"\"put': data["x"], "la'bel": data["y"], "s'c": 1.5}}
params = model.init_params()
out = model.forward(params, **{{'in\"\"\"put': data["x"]}})
loss, grads = model.loss_and_grad(params, **inputs)
state = model.init_state(params)
losses = [model.train_step(params, state, **inputs) for _ in range(2)]
arrays = {{**{{"grad " + k: v for k, v in grads.items()}},
          **{{"param " + k: v for k, v in params.items()}}}}
np.savez("result.npz", out=out["\\\\n out"], loss=loss, losses=losses, **arrays)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("graphc") and sys.modules[m])))
"""


def test_graphc_compile_writes_a_standalone_module(tmp_path):
    from graphc.cli import main

    spec_file = tmp_path / "weird.json"
    spec_file.write_text(json.dumps(WEIRD))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compile", str(spec_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    for word in ("parameters", "kernels", "fused", "FLOPs", "bytes", "train_step"):
        assert word in result.output
    (module,) = out.glob("*.py")
    assert (out / f"{module.stem}_params.npz").exists()
    # the reference numbers, from graphc itself, before the module runs without it
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 2)).astype(np.float32), rng.integers(0, 3, 5)
    np.savez(out / "data.npz", x=x, y=y)
    ref = graphc.compile(WEIRD, backend="numpy", dtype="float32")
    ref.load(out / f"{module.stem}_params.npz")
    inputs = {'in"""put': x, "la'bel": y, "s'c": 1.5}
    want_out = ref.forward(**inputs)["\\n out"]
    want_loss, want_grads = ref.grad(**inputs)
    opt = graphc.optim.SGD()
    want_losses = [ref.train_step(opt, **inputs) for _ in range(2)]
    proc = subprocess.run([sys.executable, "-I", "-c", STANDALONE_SCRIPT.format(
        module=module.stem)], cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
    got = np.load(out / "result.npz")
    assert rel_err(want_out, got["out"]) < 1e-5
    assert rel_err(want_loss, got["loss"]) < 1e-5
    assert rel_err(want_losses, got["losses"]) < 1e-5
    for k, v in want_grads.items():
        assert rel_err(v, got["grad " + k]) < 1e-5, k
    for k, v in ref.params.items():
        assert rel_err(v, got["param " + k]) < 1e-5, k


def test_graphc_compile_options_and_errors(tmp_path):
    from graphc.cli import main

    runner = CliRunner()
    spec = str(EXAMPLES / "mlp_softmax.json")
    result = runner.invoke(main, ["compile", spec, "-o", str(tmp_path), "--dump-after", "lower"])
    assert result.exit_code == 0 and "# after lower" in result.output and "= input" in result.output
    result = runner.invoke(main, ["compile", spec, "-o", str(tmp_path), "--dump-after", "plan",
                                  "--dtype", "float64"])
    assert result.exit_code == 0 and "train_step: matmul" in result.output
    result = runner.invoke(main, ["compile", spec, "-o", str(tmp_path), "--backend", "cuda"])
    assert result.exit_code == 0 and "train_step:" in result.output  # the CUDA module
    bad = tmp_path / "bad.json"
    bad.write_text('{"graphc": 1, "name": "b", "inputs": {}, "nodes": [{"id": "y", "op": "relu",'
                   ' "inputs": ["nope"]}], "outputs": ["y"]}')
    result = runner.invoke(main, ["compile", str(bad), "-o", str(tmp_path)])
    assert result.exit_code == 1 and "nope" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("dtype", list(TOL))
def test_matmul_helper_every_shape_and_transpose(dtype):
    """BLAS for big products (gemv for one row or column), loops for small ones or k = 1."""
    from graphc.backends import cache
    from graphc.backends.numba_templates import helpers_module

    helpers = cache.load(helpers_module(np.dtype(dtype)), f"helpers_{dtype}")
    rng = np.random.default_rng(0)
    for m, k, n in [(1, 784, 256), (300, 200, 1), (1, 300, 1), (784, 1, 256), (5, 7, 3),
                    (64, 784, 256), (1, 50, 400), (400, 50, 1), (0, 30, 600), (40, 0, 600)]:
        for ta in (False, True):
            for tb in (False, True):
                a, b = rng.normal(size=(m, k)).astype(dtype), rng.normal(size=(k, n)).astype(dtype)
                out = np.full((m, n), np.nan, dtype)
                helpers.matmul2d(np.ascontiguousarray(a.T) if ta else a, ta,
                                 np.ascontiguousarray(b.T) if tb else b, tb, out)
                assert rel_err(a.astype(np.float64) @ b, out) < TOL[dtype] * 10, (m, k, n)
