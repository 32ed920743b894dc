"""State buffers, the train/evaluation mode, counter-based random draws and derived
symbolic dims: one test-only op (tests/state_ops.py) that uses all three, on numpy and
cpu, in this process and in another."""

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest

import graphc
from graphc import dims
from graphc.errors import SpecError
from graphc.ops import modes
from tests import state_ops

BACKENDS = ("numpy", "cpu")


@pytest.fixture(scope="module", autouse=True)
def toy_ops():
    state_ops.register()
    yield
    state_ops.unregister()


def model(backend, **kw):
    return graphc.compile(state_ops.spec(**kw), backend=backend, dtype="float64")


def test_rng_source_gives_the_same_numbers_in_numpy_and_numba():
    ns = {"np": np, "numba": numba}
    exec(modes.RNG_SOURCE.replace("\ndef ", "\n@numba.njit\ndef "), ns)
    mix, uniform = ns["rng_mix"], ns["rng_uniform"]

    @numba.njit
    def draw(key, step, n, m):
        out = np.empty((n, m))
        for i0 in range(n):
            for i1 in range(m):
                out[i0, i1] = uniform(mix(mix(mix(key, step), i0), i1))
        return out

    key = modes.rng_key(7, "drop.random")
    ref = modes._random_ref(np.int64(3), np.zeros((40, 50)), key, 2)
    assert np.array_equal(draw(key, 3, 40, 50), ref)
    assert np.array_equal(ref.astype(np.float32).astype(np.float64), ref)  # exact in f32
    assert not np.array_equal(ref, modes._random_ref(np.int64(4), np.zeros((40, 50)), key, 2))
    big = modes._random_ref(np.int64(0), np.zeros((500, 400)), key, 2)
    assert 0 <= big.min() and big.max() < 1
    assert abs(big.mean() - 0.5) < 0.005 and abs((big < 0.1).mean() - 0.1) < 0.005


def test_rng_key_depends_on_seed_and_node_only():
    assert modes.rng_key(0, "a") == modes.rng_key(0, "a")
    assert len({modes.rng_key(s, n) for s in (0, 1) for n in ("a", "b")}) == 4
    assert 0 <= modes.rng_key(0, "a") < 2 ** 63


@pytest.mark.parametrize("backend", BACKENDS)
def test_evaluation_reads_the_buffer_and_draws_nothing(backend):
    m = model(backend)
    x = state_ops.data()["x"]
    m.state["n.running"][:] = [1.0, 2.0, 3.0]
    out = m.forward(x=x)["h"]
    np.testing.assert_allclose(out, (x + [1.0, 2.0, 3.0]) @ m.params["W"])
    assert m.step == 0 and list(m.state["n.running"]) == [1.0, 2.0, 3.0]
    ops = {n.op for n in m.mode_program(False)}
    assert not ops & {"mode", "select", "random", "step"} and not m.mode_program(False).updates


@pytest.mark.parametrize("backend", BACKENDS)
def test_training_updates_state_and_step(backend):
    m = model(backend)
    x = state_ops.data()["x"]
    m.forward(training=True, x=x)
    np.testing.assert_allclose(m.state["n.running"], 0.5 * x.mean(axis=0))
    m.grad(**state_ops.data())
    np.testing.assert_allclose(m.state["n.running"], 0.75 * x.mean(axis=0))
    assert m.step == 2


def test_numpy_and_cpu_draw_the_same_numbers_and_gradients():
    runs = {}
    for backend in BACKENDS:
        m = model(backend)
        outs = [m.forward(training=True, x=state_ops.data()["x"])["h"] for _ in range(3)]
        runs[backend] = outs, m.grad(**state_ops.data()), dict(m.state)
    (a, (la, ga), sa), (b, (lb, gb), sb) = runs["numpy"], runs["cpu"]
    for u, v in zip(a, b):
        np.testing.assert_allclose(u, v, rtol=1e-12)
    assert not np.allclose(a[0], a[1])  # a new draw each training step
    assert la == pytest.approx(lb, rel=1e-12)
    np.testing.assert_allclose(ga["W"], gb["W"], rtol=1e-12)
    np.testing.assert_allclose(sa["n.running"], sb["n.running"], rtol=1e-12)


def test_trace_in_training_shows_the_next_draws_without_changing_anything():
    m = model("numpy")
    m.forward(training=True, x=state_ops.data()["x"])
    before = m.state["n.running"].copy()
    t = m.trace(training=True, **state_ops.data())
    assert m.step == 1 and np.array_equal(m.state["n.running"], before)
    u = t.values["n.random"]
    x = state_ops.data()["x"]
    np.testing.assert_allclose(t.values["n"], x + (u - 0.5))
    out = m.forward(training=True, x=x)["h"]  # the step the trace showed
    np.testing.assert_allclose(out, t.values["h"])
    assert "n.random" not in m.trace(**state_ops.data()).values  # evaluation draws nothing


def test_the_seed_changes_the_draws():
    x = state_ops.data()["x"]
    a = model("numpy", seed=0).trace(training=True, x=x, y=state_ops.data()["y"])
    b = model("numpy", seed=1).trace(training=True, x=x, y=state_ops.data()["y"])
    assert not np.allclose(a.values["n.random"], b.values["n.random"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_another_process_draws_the_same_numbers(backend):
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{root / 'tests'}"}
    out = subprocess.run([sys.executable, str(root / "tests" / "state_ops.py"), backend],
                         capture_output=True, text=True, env=env, check=True).stdout.split()
    m = model(backend)
    for _ in range(2):
        h = m.forward(training=True, x=state_ops.data()["x"])["h"]
    t = m.trace(training=True, **state_ops.data())
    assert out == [np.asarray(t.values["n.random"]).tobytes().hex(), h.tobytes().hex()]


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_step_and_fit_update_params_and_state(backend):
    m = model(backend)
    w = m.params["W"].copy()
    opt = graphc.optim.SGD(lr=0.1)
    m.train_step(opt, **state_ops.data())
    assert m.step == 1 and not np.allclose(m.params["W"], w)
    assert np.any(m.state["n.running"] != 0)
    m.fit(state_ops.data(20), epochs=2, batch_size=5, optimizer=opt, verbose=False)
    assert m.step == 9


def test_save_and_load_carry_the_state(tmp_path):
    m = model("numpy")
    m.forward(training=True, x=state_ops.data()["x"])
    m.save(tmp_path / "m.npz")
    fresh = model("numpy")
    fresh.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(fresh.state["n.running"], m.state["n.running"])
    np.testing.assert_array_equal(fresh.params["W"], m.params["W"])
    np.savez(tmp_path / "old.npz", W=m.params["W"])
    with pytest.raises(graphc.InputError, match="no array for state buffer 'n.running'"):
        fresh.load(tmp_path / "old.npz")


def test_specialize_keeps_a_named_choice_and_drops_the_other_side():
    m = model("numpy")
    for training in (True, False):
        prog = m.mode_program(training)
        assert prog.mode is None and "n" in prog.by_name()
        assert ("random" in {n.op for n in prog}) == training
    assert "update 'n.running'" in m.mode_program(True).dump()


def test_a_layer_cannot_update_what_is_not_state_or_draw_twice_under_one_name():
    from graphc.ir import FLOAT, Program
    from graphc.passes.emit import IREmitter, Layer

    prog = Program("p")
    em = IREmitter(prog)
    x = em.source_node("input", (2,), FLOAT, "x")
    layer = Layer(em, "l")
    with pytest.raises(ValueError, match="not a state buffer"):
        layer.update(x, x)
    s = layer.state("s", (2,), "zeros")
    with pytest.raises(ValueError, match="shape"):
        layer.update(s, em.const(1.0))
    with pytest.raises(ValueError, match="defined twice"):
        layer.state("s", (2,), "zeros")
    with pytest.raises(ValueError, match="known shape"):
        layer.state("t", ("B",), "zeros")
    layer.random(x)
    with pytest.raises(ValueError, match="draws twice"):
        layer.random(x)


# ---- derived symbolic dims ------------------------------------------------------------

def test_dim_algebra_is_canonical():
    assert dims.sub("H", 2) == "H - 2" == dims.canonical("H + 1 - 3")
    conv = dims.add(dims.floordiv(dims.sub("H", 3), 2), 1)
    assert conv == "(H - 3)//2 + 1" and dims.evaluate(conv, {"H": 11}) == 5
    assert dims.mul("C", "H", "W") == "C*H*W" and dims.sub(dims.add("H", 1), "H") == 1
    assert dims.names(conv) == ["H"] and dims.render(conv, {"H": "d0"}) == "((d0 - 3) // 2 + 1)"
    with pytest.raises(ValueError, match="not a dimension"):
        dims.canonical("H / 2")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_derived_dim_compiles_and_runs(backend):
    spec = {"graphc": 1, "name": "trimmed",
            "inputs": {"x": {"shape": ["B", 4]}},
            "nodes": [{"id": "t", "op": "trim", "inputs": ["x"]},
                      {"id": "e", "op": "exp", "inputs": ["t"]},
                      {"id": "s", "op": "sum", "inputs": ["e"], "attrs": {"axis": 1}}],
            "outputs": ["t", "s"]}
    g = graphc.load(spec)
    assert g._program[g._program.outputs["t"]].shape == ("B - 2", 4)
    m = graphc.compile(g, backend=backend, dtype="float64")
    x = np.arange(24.0).reshape(6, 4) / 10
    out = m.forward(x=x)
    np.testing.assert_allclose(out["t"], x[1:-1])
    np.testing.assert_allclose(out["s"], np.exp(x[1:-1]).sum(axis=1))


def test_a_dim_from_no_input_is_a_clear_error():
    from graphc.backends.codegen import Plan
    from graphc.errors import CompileError
    from graphc.ir import Node, Program

    prog = Program("p")
    prog.add(Node("v0", "const", (), {"value": 1.0}, (), "float"))
    prog.add(Node("v1", "trim", ("v0",), {}, ("K - 2",), "float"))
    with pytest.raises(CompileError, match="dimension 'K'"):
        Plan(prog, ["v1"])


def test_state_names_clash_with_params_is_a_spec_error():
    spec = state_ops.spec()
    spec["params"]["n.running"] = {"shape": [3]}
    with pytest.raises(SpecError):
        graphc.load(spec)
