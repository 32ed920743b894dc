"""Issue 8's hardening: the builder's layer params, train-object checks, broadcast warnings,
shape messages, output paths, broken pipes, gradcheck's sampled inputs, stale hypers."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import graphc
from graphc import F
from graphc.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _l2_mlp_json():
    return {
        "graphc": 1, "name": "l2", "seed": 1,
        "inputs": {"x": {"shape": ["B", 4]}, "y": {"shape": ["B"], "dtype": "int64"}},
        "nodes": [
            {"id": "h1", "op": "dense", "inputs": ["x"],
             "attrs": {"units": 5, "activation": "relu"}},
            {"id": "out", "op": "dense", "inputs": ["h1"], "attrs": {"units": 3}},
            {"id": "ce", "op": "cross_entropy", "inputs": ["out", "y"]},
            {"id": "sq", "op": "mul", "inputs": ["h1.W", "h1.W"]},
            {"id": "l2", "op": "sum", "inputs": ["sq"]},
            {"id": "pen", "op": "mul", "inputs": ["l2", 0.01]},
            {"id": "loss", "op": "add", "inputs": ["ce", "pen"]},
        ],
        "outputs": ["out"], "loss": "loss",
    }


def test_builder_refers_to_layer_params_like_json():
    b = graphc.Builder("l2", seed=1)
    x = b.input("x", ["B", 4])
    y = b.input("y", ["B"], dtype="int64")
    h1 = b.node("dense", x, id="h1", units=5, activation="relu")
    out = b.node("dense", h1, id="out", units=3)
    ce = b.name("ce", F.cross_entropy(out, y))
    W = b.param("h1.W")
    sq = b.name("sq", W * W)
    l2 = b.name("l2", F.sum(sq))
    pen = b.name("pen", l2 * 0.01)
    loss = b.name("loss", ce + pen)
    g = b.build(outputs=[out], loss=loss)
    want = graphc.load(_l2_mlp_json())
    assert g == want
    feed = {"x": np.linspace(-1, 1, 8).reshape(2, 4), "y": [0, 2]}
    got_loss, got_grads = graphc.compile(g, backend="numpy").grad(**feed)
    want_loss, want_grads = graphc.compile(want, backend="numpy").grad(**feed)
    assert got_loss == pytest.approx(want_loss)
    np.testing.assert_allclose(got_grads["h1.W"], want_grads["h1.W"])


def test_builder_layer_param_follows_rename_and_needs_a_layer():
    b = graphc.Builder("r")
    x = b.input("x", ["B", 2])
    h = b.node("dense", x, units=2)
    W = b.param(f"{h.id}.W")
    s = F.sum(W)
    b.name("h", h)
    assert b.spec["nodes"][-1]["inputs"] == ["h.W"]
    assert s.id == b.spec["nodes"][-1]["id"]
    with pytest.raises(graphc.SpecError, match="no layer named 'nope'"):
        b.param("nope.W")


def test_fit_takes_a_lambda_schedule():
    m = graphc.compile(EXAMPLES / "logistic_regression.json", backend="numpy")
    opt = graphc.optim.SGD(lr=0.1)
    sched = graphc.schedules.LambdaLR(opt, lambda e: 0.5 ** e)
    data = {"x": np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float), "y": np.array([0, 0, 0, 1.])}
    hist = m.fit(data, epochs=3, batch_size=4, optimizer=opt, schedule=sched)
    assert [r["lr"] for r in hist.rows] == pytest.approx([0.1, 0.05, 0.025])


def _small_mlp(optimizer):
    spec = _l2_mlp_json()
    spec["nodes"] = spec["nodes"][:3]
    spec["loss"] = "ce"
    spec["train"] = {"optimizer": optimizer}
    return spec


def _compiled_module(tmp_path, spec, name):
    import importlib.util

    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**spec, "name": name}))
    r = CliRunner().invoke(main, ["compile", str(path), "-o", str(tmp_path / name)])
    assert r.exit_code == 0, r.output
    mod_spec = importlib.util.spec_from_file_location(name, tmp_path / name / f"{name}.py")
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


def test_generated_module_takes_a_weight_decay_set_after_compiling(tmp_path):
    batch = {"x": np.linspace(-2, 2, 12).reshape(3, 4).astype(np.float32),
             "y": np.array([0, 2, 1])}
    later = _compiled_module(tmp_path, _small_mlp({"name": "sgd", "lr": 0.1,
                                                   "momentum": 0.9}), "later")
    fresh = _compiled_module(tmp_path, _small_mlp({"name": "sgd", "lr": 0.1, "momentum": 0.9,
                                                   "weight_decay": 0.5}), "fresh")
    p_later, p_fresh, p_none = later.init_params(), fresh.init_params(), later.init_params()
    s_later, s_fresh = later.init_state(p_later), fresh.init_state(p_fresh)
    s_none = later.init_state(p_none)
    s_later.hyper["weight_decay"] = 0.5
    for _ in range(3):
        later.train_step(p_later, s_later, **batch)
        fresh.train_step(p_fresh, s_fresh, **batch)
        later.train_step(p_none, s_none, **batch)
    for k in p_fresh:
        np.testing.assert_allclose(p_later[k], p_fresh[k], rtol=1e-5, atol=1e-6)
    assert not np.allclose(p_none["h1.W"], p_fresh["h1.W"])  # the decay did something


def test_generated_module_refuses_a_momentum_it_compiled_out(tmp_path):
    mod = _compiled_module(tmp_path, _small_mlp({"name": "sgd", "lr": 0.1}), "plain")
    params = mod.init_params()
    state = mod.init_state(params)
    state.hyper["momentum"] = 0.9
    with pytest.raises(ValueError, match=r"state.hyper\['momentum'\] = 0.9: this module was "
                       "compiled with momentum 0"):
        mod.train_step(params, state, x=np.zeros((2, 4), np.float32), y=np.array([0, 1]))


def test_optimizer_weight_decay_and_momentum_after_construction():
    params = {"w": np.ones(3)}
    opt = graphc.optim.Adam(lr=0.1)
    opt.hyper["weight_decay"] = 1.0
    opt.step(params, {"w": np.zeros(3)})
    assert params["w"][0] < 1.0  # the L2 term alone moved it
    sgd = graphc.optim.SGD(lr=0.1)
    sgd.hyper["momentum"] = 0.9
    with pytest.raises(ValueError, match="momentum was 0 when this SGD was built"):
        sgd.step(params, {"w": np.zeros(3)})


# ---- item 6: the train object is checked by `graphc check`, words and places ours ------

def _with_train(tmp_path, train, name="spec"):
    spec = json.loads(open(EXAMPLES / "logistic_regression.json").read())
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({**spec, "train": train}))
    return path


@pytest.mark.parametrize("train,message", [
    ({"optimizer": {"name": "sgd", "lr": 0.1, "momentun": 0.9}},
     "train.optimizer.momentun: SGD has no argument 'momentun' (did you mean 'momentum'?)"),
    ({"schedule": {"name": "cosin"}},
     "train.schedule.name: unknown schedule 'cosin' (did you mean 'cosine'?)"),
    ({"optimizer": {"name": "sgd", "lr": -1}},
     "train.optimizer.lr: the learning rate must be a positive number, got -1 (e.g. 0.001)"),
    ({"schedule": {"name": "StepLR"}},
     "train.schedule: StepLR needs 'step_size' (add it, e.g. "
     '{"name": "StepLR", "step_size": 10})'),
    ({"schedule": {"name": "cyclic"}}, "train.schedule: cyclic needs 'base_lr' and 'max_lr'"),
    ({"schedule": {"name": "step", "step_size": "ten"}},
     "train.schedule.step_size: expected an integer, got 'ten'"),
    ({"schedule": {"name": "multistep", "milestones": 3}},
     "train.schedule.milestones: expected a list of integers, got 3"),
    ({"schedule": {"name": "LambdaLR"}},
     "train.schedule.name: 'LambdaLR' takes a Python function, which a spec cannot hold "
     "(build it in Python and pass it to fit, e.g. "
     "schedule=graphc.schedules.LambdaLR(opt, lambda e: 0.95 ** e))"),
    ({"epochz": 3}, "train.epochz: unknown training option 'epochz' (did you mean 'epochs'?)"),
    ({"early_stopping": {"patience": "x"}},
     "train.early_stopping.patience: expected a non-negative integer, got 'x'"),
    ({"optimizer": {"name": "adam", "betas": [0.9, 1.5]}},
     "train.optimizer.betas: betas[1] must lie in [0, 1), got 1.5"),
])
def test_check_reports_a_bad_train_object_with_file_and_key(tmp_path, train, message):
    path = _with_train(tmp_path, train)
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 1
    assert r.output.startswith(f"error: {path}: {message}"), r.output
    assert r.output.count("\n") == 1 and "__init__" not in r.output
    assert "positional argument" not in r.output


def test_train_names_the_file_too(tmp_path):
    path = _with_train(tmp_path, {"schedule": {"name": "StepLR"}})
    r = CliRunner().invoke(main, ["train", str(path), "-q", "--backend", "numpy"])
    assert r.exit_code == 1
    assert f"error: {path}: train.schedule: StepLR needs 'step_size'" in r.output


def test_check_accepts_a_good_train_object(tmp_path):
    path = _with_train(tmp_path, {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9},
                                  "schedule": {"name": "step", "step_size": 2},
                                  "early_stopping": {"patience": 3}})
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 0, r.output


# ---- item 9: the generated module names the axis that differs and both sizes ---------

@pytest.fixture(scope="module")
def plain_module(tmp_path_factory):
    return _compiled_module(tmp_path_factory.mktemp("plain"),
                            _small_mlp({"name": "sgd", "lr": 0.1}), "plain")


def test_generated_module_names_the_axis_that_differs(plain_module):
    mod = plain_module
    params = mod.init_params()
    with pytest.raises(ValueError) as e:
        mod.forward(params, x=np.zeros((64, 10), np.float32))
    assert str(e.value) == ("input 'x': expected shape [B, 4], got [64, 10]: axis 1 is 10, "
                            "the model wants 4")
    with pytest.raises(ValueError) as e:
        mod.loss_and_grad(params, x=np.zeros((3, 4), np.float32), y=np.zeros(2, np.int64))
    assert str(e.value) == ("input 'y': expected shape [B], got [2]: axis 0 (B) is 2, "
                            "but B is 3 in input 'x'")
    with pytest.raises(ValueError) as e:
        mod.forward(params, x=np.zeros(4, np.float32))
    assert str(e.value) == "input 'x': expected shape [B, 4] (2 axes), got [4] (1 axis)"


# ---- item 10: -o is a directory; a .py path is refused ---------------------------------

def test_compile_refuses_a_py_output_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["compile", str(EXAMPLES / "neuron.json"), "-o",
                                  "build/neuron.py"])
    assert r.exit_code == 1
    assert r.output == ("error: -o build/neuron.py: expected a directory, not a .py file: "
                        "graphc compile writes sigmoid_neuron_decomposed.py and "
                        "sigmoid_neuron_decomposed_params.npz into it (try -o build)\n")
    assert not (tmp_path / "build").exists()


# ---- item 11: a reader that goes away early is no error --------------------------------

def test_check_into_a_pipe_closed_early_exits_quietly(tmp_path):
    import os
    import subprocess
    import sys

    n = 3000  # ~100 KB of output, more than a pipe holds, so the writer meets the closed end
    spec = {"graphc": 1, "name": "wide", "inputs": {f"x{i}": {"shape": [1]} for i in range(n)},
            "nodes": [{"id": "s", "op": "add", "inputs": ["x0", "x1"]}], "outputs": ["s"]}
    path = tmp_path / "wide.json"
    path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "graphc", "check", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    first = proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    rc = proc.wait(timeout=120)
    assert first == b"wide: ok\n"
    assert err == ""  # no "error: Broken pipe", no "Exception ignored"
    assert rc == 141


# ---- item 12: gradcheck samples the inputs it was not given ----------------------------

def test_gradcheck_samples_missing_inputs_and_says_so():
    r = CliRunner().invoke(main, ["gradcheck", str(EXAMPLES / "mnist_mlp.json")])
    assert r.exit_code == 0, r.output
    lines = r.output.split("\n")
    assert lines[0] == ("no values given for x [3, 784], y [3] (labels 0..9): checking at "
                        "seeded random ones (--set NAME=VALUE to choose)")
    assert lines[-2] == "all 5 gradients agree within 1e-05" and lines[-1] == ""
    assert [ln.split()[0] for ln in lines[2:-2]] == ["hidden.W", "hidden.b", "logits.W",
                                                    "logits.b", "x"]
    again = CliRunner().invoke(main, ["gradcheck", str(EXAMPLES / "mnist_mlp.json")])
    assert again.output == r.output  # seeded


def test_sampled_inputs_follow_given_dims_labels_and_domains():
    from graphc.gradcheck import sample_inputs

    g = graphc.load(EXAMPLES / "mnist_mlp.json")
    inputs, said = sample_inputs(g, {"x": np.zeros((5, 784))})
    assert inputs["y"].shape == (5,) and inputs["y"].min() >= 0 and inputs["y"].max() <= 9
    assert said == ["y [5] (labels 0..9)"]
    b = graphc.Builder("logs")
    x = b.input("x", ["B", 2])
    loss = b.name("loss", F.sum(F.log(x)))
    inputs, _ = sample_inputs(b.build(outputs=[loss], loss=loss), {})
    assert inputs["x"].shape == (3, 2) and (inputs["x"] > 0).all()  # log's domain


def test_gradcheck_mismatch_and_refusal_lines_end_with_a_newline():
    r = CliRunner().invoke(main, ["gradcheck", str(EXAMPLES / "neuron.json"), "--tol", "0"])
    assert r.exit_code == 1 and r.output.endswith("by more than 0\n")
    r = CliRunner().invoke(main, ["gradcheck", str(EXAMPLES / "activations.json")])
    assert r.output.endswith("\n")


# ---- item 13: graphviz-pure comes with graphc ------------------------------------------

def test_graphviz_pure_is_a_default_dependency_and_render_still_names_it():
    import re

    text = (EXAMPLES.parent / "pyproject.toml").read_text()  # tomllib is Python 3.11+
    deps = re.search(r"^dependencies = \[(.*?)^\]", text, re.S | re.M).group(1)
    assert re.search(r'^\s*"graphviz-pure>=', deps, re.M)
    assert re.search(r'^render = \["graphviz-pure>=[^"]*"\]', text, re.M)


# ---- item 8: a broadcast that squares a symbolic dimension is reported -----------------

def _broadcast_spec(y_shape):
    return {"graphc": 1, "name": "bc",
            "inputs": {"x": {"shape": ["B", 3]}, "y": {"shape": y_shape}},
            "nodes": [{"id": "score", "op": "dense", "inputs": ["x"], "attrs": {"units": 1}},
                      {"id": "prod", "op": "mul", "inputs": ["y", "score"]},
                      {"id": "loss", "op": "mean", "inputs": ["prod"]}],
            "outputs": ["score"], "loss": "loss"}


SQUARED = ("node 'prod' (mul): y [B] and score [B, 1] broadcast to [B, B], so dimension B "
           "stands on axes 0 and 1; give the operands the same shape unless a [B, B] result "
           "is meant")


def test_compile_warns_when_a_broadcast_squares_the_batch():
    from graphc.errors import ShapeWarning

    with pytest.warns(ShapeWarning) as caught:
        m = graphc.compile(_broadcast_spec(["B"]), backend="numpy")
    assert [str(w.message) for w in caught] == [SQUARED]
    assert m.forward(x=np.ones((4, 3)), y=np.ones(4))["score"].shape == (4, 1)  # still runs
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", ShapeWarning)
        graphc.compile(_broadcast_spec(["B", 1]), backend="numpy")  # shapes agree: quiet
        b = graphc.Builder("pairs")  # [B, B] operands: the result's axes are theirs
        d = b.input("d", ["B", "B"])
        graphc.compile(b.build(outputs=[b.name("dd", d * d + F.sum(d, axis=1))]),
                       backend="numpy")


def test_check_prints_the_warning_with_the_file_and_lists_nodes(tmp_path):
    path = tmp_path / "bc.json"
    path.write_text(json.dumps(_broadcast_spec(["B"])))
    r = CliRunner().invoke(main, ["check", str(path), "--nodes"])
    assert r.exit_code == 0, r.output
    assert f"warning: {path}: {SQUARED}\n" in r.output
    nodes = r.output[r.output.index("nodes\n"):].splitlines()[1:]
    assert [ln.split()[:2] for ln in nodes if ln.startswith("  ")] == [
        ["score.matmul", "float[B,"], ["score", "float[B,"], ["prod", "float[B,"],
        ["loss", "float[]"]]
    assert "  prod                     float[B, B]          mul(y, score)" in nodes


# ---- item 18: what the docs say about cuda is what happens ------------------------------

def test_cuda_backend_is_documented_as_it_behaves():
    text = (EXAMPLES.parent / "docs" / "python-api.md").read_text()
    row = next(ln for ln in text.splitlines() if ln.startswith('| `"cuda"` |'))
    assert "cuda.md" in row and "NUMBA_ENABLE_CUDASIM=1" in row
    try:  # without a GPU (and without the simulator): the error the row quotes
        graphc.compile(EXAMPLES / "neuron.json", backend="cuda")
    except graphc.CompileError as e:
        assert str(e) in row
