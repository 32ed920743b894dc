"""The CUDA backend on Numba's CUDA simulator against the NumPy reference: every registered
op (forward and gradient), every example's forward and loss, device-resident training
with every optimizer, and the cuBLAS call path with its NumPy stand-in. Tiny shapes:
the simulator runs each thread in Python. Run by tests/test_cuda.py in a process of its
own (NUMBA_ENABLE_CUDASIM=1 before numba is imported)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from numba import config

import graphc
from graphc import optim
from graphc.backends.cuda.blas import NumpyCublas
from graphc.backends.numba_cuda import CudaBackend
from graphc.errors import InputError
from graphc.passes import grad_program
from tests.opcases import build, cases, ops_under_test

pytestmark = pytest.mark.skipif(not config.ENABLE_CUDASIM,
                                reason="simulator tests run through tests/test_cuda.py")

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
TOL = 1e-10  # float64, relative to the largest reference value


def rel_err(ref, got) -> float:
    ref, got = np.asarray(ref, np.float64), np.asarray(got, np.float64)
    assert ref.shape == got.shape, (ref.shape, got.shape)
    if ref.size == 0:
        return 0.0
    return float(np.max(np.abs(ref - got)) / max(np.max(np.abs(ref)), 1e-6))


def compare(spec, values: dict, backend=None) -> dict[str, float]:
    """Outputs, loss and gradients (params and float inputs) of the training program:
    the CUDA backend's relative error against the reference, by name."""
    ref = graphc.compile(spec, backend="numpy", dtype="float64")
    fwd = ref.mode_program(True)
    wrt = [n for n, i in fwd.inputs.items() if fwd[i].dtype == "float"] \
        if fwd.loss is not None else []
    prog = grad_program(fwd, wrt, keep_outputs=True) if fwd.loss is not None else fwd
    results = [*prog.outputs.values()]
    names = [f"value {o}" for o in prog.outputs]
    if prog.loss is not None:
        results += [prog.loss, *prog.grads.values()]
        names += ["loss", *(f"grad {g}" for g in prog.grads)]
    feeds = ref.feeds(prog, values)
    got = (backend or CudaBackend()).compile(prog, ref.dtype, results)(feeds)
    want = ref.backend.compile(prog, ref.dtype, results)(feeds)
    return {n: rel_err(w, g) for n, w, g in zip(names, want, got)}


OP_CASES = [(name, k) for name in ops_under_test() for k in range(len(cases(name)))
            if k == 0 or name in ("sum", "max", "softmax", "matmul", "concat", "conv2d",
                                  "max_pool2d", "avg_pool2d")]


@pytest.mark.parametrize("name,k", OP_CASES, ids=[f"{n}-{k}" for n, k in OP_CASES])
def test_op_forward_and_gradient(name, k):
    shapes, attrs = cases(name)[k]
    g, values = build(name, shapes, attrs, seed=k)
    errors = compare(g, values)
    bad = {n: e for n, e in errors.items() if not e <= TOL}
    assert errors and not bad, bad


def example_inputs(spec: dict, rng, batch: int = 2) -> dict:
    values = {}
    for name, inp in spec["inputs"].items():
        shape = [batch if isinstance(d, str) else d for d in inp["shape"]]
        if inp.get("dtype", "float").startswith("int"):
            values[name] = rng.integers(0, 2, shape)
        else:
            values[name] = rng.uniform(0.1, 0.9, shape)
    return values


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_forward_and_loss(path):
    """Products through the cuBLAS stand-in: the tiled kernels' barriers are too slow in
    the simulator for 784-wide layers (they are tested on small ops above)."""
    spec = json.loads(path.read_text())
    spec.pop("train", None)
    values = example_inputs(spec, np.random.default_rng(1), batch=1)
    errors = compare(spec, values, CudaBackend(cublas=NumpyCublas()))
    bad = {n: e for n, e in errors.items() if not e <= TOL}
    assert errors and not bad, bad


TINY = {"graphc": 1, "name": "tiny mlp",
        "inputs": {"x": {"shape": ["B", 5]}, "y": {"shape": ["B"], "dtype": "int64"}},
        "nodes": [{"id": "h", "op": "dense", "inputs": ["x"],
                   "attrs": {"units": 4, "activation": "tanh"}},
                  {"id": "logits", "op": "dense", "inputs": ["h"], "attrs": {"units": 3}},
                  {"id": "loss", "op": "cross_entropy", "inputs": ["logits", "y"]}],
        "outputs": ["logits"], "loss": "loss"}
OPTIMIZERS = {"sgd": lambda: optim.SGD(lr=0.1),
              "momentum": lambda: optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.01),
              "adam": lambda: optim.Adam(lr=0.01),
              "adamw": lambda: optim.AdamW(lr=0.01, weight_decay=0.1),
              "rmsprop": lambda: optim.RMSprop(lr=0.01),
              "adagrad": lambda: optim.Adagrad(lr=0.1)}


# clipping is the same code for every optimizer: checked with two of them
TRAIN_CASES = [(name, None) for name in OPTIMIZERS] + [
    (name, clip) for name in ("sgd", "adam") for clip in ("norm", "value")]


@pytest.mark.parametrize("name,clip", TRAIN_CASES)
def test_train_steps_match_numpy(name, clip):
    ref = graphc.compile(TINY, backend="numpy", dtype="float64")
    dev = graphc.compile(TINY, backend="cuda", dtype="float64")
    dev.params = ref.params
    o_ref, o_dev = OPTIMIZERS[name](), OPTIMIZERS[name]()
    kw = {"norm": {"clip_grad_norm": 0.05}, "value": {"clip_grad_value": 0.01}}.get(clip, {})
    rng = np.random.default_rng(3)
    for _ in range(3):
        x, y = rng.standard_normal((3, 5)), rng.integers(0, 3, 3)
        want = ref.train_step(o_ref, x=x, y=y, **kw)
        got = dev.train_step(o_dev, x=x, y=y, **kw)
        assert abs(got - want) <= 1e-12 * max(1.0, abs(want))
    for p in ref.params:  # read back from the device
        assert rel_err(ref.params[p], dev.params[p]) <= 1e-12, p
        for s in o_ref.state.get(p, {}):
            assert rel_err(o_ref.state[p][s], o_dev.state[p][s]) <= 1e-12, (p, s)
    assert o_dev.t == o_ref.t == 3


def test_params_written_on_the_host_go_to_the_device():
    dev = graphc.compile(TINY, backend="cuda", dtype="float64")
    ref = graphc.compile(TINY, backend="numpy", dtype="float64")
    o_dev, o_ref = optim.SGD(lr=0.1), optim.SGD(lr=0.1)
    x, y = np.ones((2, 5)), np.array([0, 2])
    dev.train_step(o_dev, x=x, y=y)
    dev.params["h.b"] = np.full(4, 0.5)  # an assignment between steps
    dev.params["h.W"][0, 0] = 7.0  # and an in-place write
    ref.params = {k: v.copy() for k, v in dev.params.items()}
    assert dev.train_step(o_dev, x=x, y=y) == pytest.approx(ref.train_step(o_ref, x=x, y=y),
                                                           abs=1e-12)
    assert rel_err(ref.params["h.W"], dev.params["h.W"]) <= 1e-12


def test_float32_training_is_close():
    ref = graphc.compile(TINY, backend="numpy", dtype="float32")
    dev = graphc.compile(TINY, backend="cuda", dtype="float32")
    dev.params = ref.params
    o_ref, o_dev = optim.Adam(lr=0.01), optim.Adam(lr=0.01)
    x, y = np.linspace(-1, 1, 15, dtype=np.float32).reshape(3, 5), np.array([0, 1, 2])
    for _ in range(2):
        assert dev.train_step(o_dev, x=x, y=y) == pytest.approx(
            ref.train_step(o_ref, x=x, y=y), rel=1e-5)
    assert rel_err(ref.params["logits.W"], dev.params["logits.W"]) <= 1e-5


def test_bad_labels_are_one_input_error():
    dev = graphc.compile(TINY, backend="cuda", dtype="float64")
    with pytest.raises(InputError, match="out of range"):
        dev.train_step(optim.SGD(lr=0.1), x=np.ones((2, 5)), y=np.array([0, 3]))
    with pytest.raises(InputError, match="out of range"):
        dev.grad(x=np.ones((2, 5)), y=np.array([-1, 0]))


def test_products_go_through_the_cublas_call_path():
    """Layer (c): the generated module's gemm launches, through blas.Gemm, with the
    stand-in that reads and writes the simulator's memory column-major, as cuBLAS."""
    lib = NumpyCublas()
    spec = dict(TINY, name="tiny cublas")
    values = {"x": np.random.default_rng(0).standard_normal((3, 5)), "y": np.array([0, 1, 2])}
    errors = compare(spec, values, CudaBackend(cublas=lib))
    assert errors and max(errors.values()) <= TOL, errors
    gemms = [c for c in lib.calls if c[0] == "gemm"]
    # forward: x @ W1, h @ W2; backward: two weight gradients and one input gradient
    assert len(gemms) >= 5
    assert ("gemm", 0, 0, 4, 3, 5, 4, 5, 4) in gemms  # x [3,5] @ W1 [5,4]: C^T = W1^T x^T


def test_the_standalone_module_runs_on_its_own(tmp_path):
    """graphc compile --backend cuda's module: forward and loss_and_grad by name, from
    the params file beside it, and `call` on host arrays by node id."""
    from graphc.backends import cache
    from graphc.standalone import standalone_cuda as standalone

    built = standalone(graphc.load(TINY), "float64", device="simulator")
    module = cache.load(built["source"], "standalone_tiny", tmp_path)
    np.savez(Path(module.__file__).parent / module.PARAMS_FILE, **built["params"])
    params = module.init_params()
    ref = graphc.compile(TINY, backend="numpy", dtype="float64")
    ref.params = params
    x, y = np.random.default_rng(2).standard_normal((3, 5)), np.array([1, 0, 2])
    out = module.forward(params, x=x)
    np.testing.assert_allclose(out["logits"], ref.forward(x=x)["logits"], rtol=1e-12)
    loss, grads = module.loss_and_grad(params, x=x, y=y)
    want_loss, want = ref.grad(x=x, y=y)
    assert loss == pytest.approx(want_loss, rel=1e-12) and grads.keys() == want.keys()
    for k in want:
        assert rel_err(want[k], grads[k]) <= 1e-12, k
    fwd = ref.mode_program(False)
    feeds = {fwd.inputs["x"]: x, **{fwd.params[k]: v for k, v in params.items()}}
    np.testing.assert_allclose(module.call("forward", feeds)[0], out["logits"])


def test_graphc_run_on_cuda(examples):
    from click.testing import CliRunner

    from graphc.cli import main

    args = ["run", str(examples / "neuron.json"), "--json"]
    want = json.loads(CliRunner().invoke(main, args).output)
    r = CliRunner().invoke(main, [*args, "--backend", "cuda"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.output)
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-12)
    assert got["grads"].keys() == want["grads"].keys() and got["grads"]


def test_two_optimizers_take_turns_on_one_model():
    """Each trainer holds the params on the device; the other's newer values reach it."""
    ref = graphc.compile(TINY, backend="numpy", dtype="float64")
    dev = graphc.compile(TINY, backend="cuda", dtype="float64")
    dev.params = ref.params
    opts = [(optim.SGD(lr=0.1), optim.SGD(lr=0.1)), (optim.Adam(lr=0.01), optim.Adam(lr=0.01))]
    x, y = np.linspace(-1, 1, 10).reshape(2, 5), np.array([2, 0])
    for k in range(4):
        o_ref, o_dev = opts[k % 2]
        assert dev.train_step(o_dev, x=x, y=y) == pytest.approx(
            ref.train_step(o_ref, x=x, y=y), abs=1e-12)
    assert rel_err(ref.params["h.W"], dev.params["h.W"]) <= 1e-12


def test_scalar_params_train_and_read_back():
    spec = {"graphc": 1, "name": "scalar params",
            "inputs": {"x": {"shape": ["B"]}, "t": {"shape": ["B"]}},
            "params": {"w": {"shape": [], "init": 2.0}, "b": {"shape": [], "init": -1.0}},
            "nodes": [{"id": "wx", "op": "mul", "inputs": ["w", "x"]},
                      {"id": "y", "op": "add", "inputs": ["wx", "b"]},
                      {"id": "loss", "op": "mse", "inputs": ["y", "t"]}],
            "outputs": ["y"], "loss": "loss"}
    ref = graphc.compile(spec, backend="numpy", dtype="float64")
    dev = graphc.compile(spec, backend="cuda", dtype="float64")
    o_ref, o_dev = optim.Adam(lr=0.1), optim.Adam(lr=0.1)
    x = np.linspace(0, 1, 5)
    for _ in range(3):
        assert dev.train_step(o_dev, x=x, t=3 * x + 1) == pytest.approx(
            ref.train_step(o_ref, x=x, t=3 * x + 1), abs=1e-12)
    assert repr(dev.params) == repr(ref.params)  # even repr reads the device's values
    assert float(dev.params["w"]) == pytest.approx(float(ref.params["w"]), abs=1e-12)


def test_a_large_whole_sum_uses_every_block_and_atomics(monkeypatch):
    """From `atomics_from` elements (65,536 on CUDA; 64 here, the simulator is slow)."""
    import dataclasses

    from graphc.backends.cuda import writer
    from graphc.passes.schedule import ATOMICS, CUDA, schedule

    small = dataclasses.replace(CUDA, atomics_from=64)
    monkeypatch.setattr(writer, "CUDA", small)
    spec = {"graphc": 1, "name": "big sum", "inputs": {"x": {"shape": [30, 25]}},
            "nodes": [{"id": "s", "op": "mean", "inputs": ["x"]},
                      {"id": "q", "op": "sum", "inputs": ["x"], "attrs": {"axis": 1}}],
            "outputs": ["s", "q"]}
    m = graphc.compile(spec, backend="numpy", dtype="float64")
    prog = m.mode_program(False)
    kernels = schedule(prog, list(prog.outputs.values()), small).kernels
    assert [k.strategy == ATOMICS for k in kernels if k.reduced] == [True, False]
    assert not any(k.strategy == ATOMICS for k in schedule(
        prog, list(prog.outputs.values()), CUDA).kernels)
    x = np.random.default_rng(5).standard_normal((30, 25))
    errors = compare(spec, {"x": x})
    assert max(errors.values()) <= TOL, errors
    source = next(v for k, v in sys.modules.items() if k.startswith("graphc_cuda_big_sum"))
    assert "cuda.atomic.add" in Path(source.__file__).read_text()
