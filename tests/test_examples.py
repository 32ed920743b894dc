"""Every example in examples/ is a valid spec that runs: schema, round trip, `graphc check`,
forward, gradients; small ones run without arguments; the Python neuron equals the JSON one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

import graphc
from graphc.cli import main as cli
from graphc.gradcheck import gradcheck
from graphc.spec import schema

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPECS = sorted(EXAMPLES.glob("*.json"))
LARGE_INPUT = 100  # numbers per row above which an input may go without a default value


def test_the_lectures_examples_are_there():
    names = {p.stem for p in SPECS}
    assert {"neuron", "neuron_sigmoid", "fork", "multiple_uses", "mnist_mlp", "param_count",
            "logistic_regression", "mlp_softmax", "activations", "linear_collapse",
            "penalty_l1", "penalty_l2", "conv_shapes"} <= names


@pytest.fixture(scope="module")
def validator():
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def sample_inputs(g: graphc.Graph, batch: int = 2) -> dict[str, np.ndarray]:
    """Values for the inputs that have no default: symbolic dims = batch, labels 0."""
    rng = np.random.default_rng(0)
    out = {}
    for name, spec in g.inputs.items():
        if "value" in spec:
            continue
        shape = [d if isinstance(d, int) else batch for d in spec["shape"]]
        if spec.get("dtype", "float").startswith("int"):
            out[name] = np.zeros(shape, dtype=spec["dtype"])
        else:
            out[name] = rng.standard_normal(shape)
    return out


def row_size(spec: dict) -> int:
    return int(np.prod([d for d in spec["shape"] if isinstance(d, int)]))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_is_valid_and_round_trips(path, validator):
    raw = json.loads(path.read_text(encoding="utf-8"))
    errors = list(validator.iter_errors(raw))
    assert not errors, [e.message for e in errors]
    g = graphc.load(path)
    assert g.doc, "an example says what it shows in its doc"
    again = graphc.load(g.to_json())
    assert again == g
    assert graphc.load(g.to_json_text()) == g
    assert g.to_json() == raw  # nothing is lost or added on the way through
    r = CliRunner().invoke(cli, ["check", str(path)])
    assert r.exit_code == 0 and ": ok" in r.output, r.output


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_example_runs_forward_and_backward(path):
    g = graphc.load(path)
    m = graphc.compile(g, backend="numpy", dtype="float64")
    inputs = sample_inputs(g)
    out = m.forward(**inputs)
    assert list(out) == g.outputs
    for name, value in out.items():
        assert np.all(np.isfinite(value)), name
    if g.loss is not None:
        t = m.trace(training=True, **inputs)  # what the next training call computes
        loss, grads = m.grad(**inputs)
        assert np.isfinite(loss)
        assert set(grads) == set(m.params)
        for name, grad in grads.items():
            assert grad.shape == m.params[name].shape and np.all(np.isfinite(grad)), name
        assert t.loss == pytest.approx(loss)


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_small_examples_run_without_arguments(path):
    """Default values make `graphc run` and diagrams work with no --set."""
    g = graphc.load(path)
    missing = [n for n, s in g.inputs.items() if "value" not in s]
    if missing:
        assert all(row_size(g.inputs[n]) > LARGE_INPUT for n in missing
                   if not g.inputs[n].get("dtype", "").startswith("int")), missing
        return
    r = CliRunner().invoke(cli, ["run", str(path), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert set(out["outputs"]) == set(g.outputs)
    if g.loss is not None:
        assert isinstance(out["loss"], float)
        checks = gradcheck(g)
        assert checks and all(c.ok for c in checks), [(c.name, c.max_rel) for c in checks]


# ---- the neuron written in Python -----------------------------------------------------

def run_neuron_py(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXAMPLES / "neuron.py"), *args],
                          capture_output=True, text=True, check=True, timeout=120)


def test_neuron_py_prints_the_same_json_as_neuron_json():
    printed = json.loads(run_neuron_py().stdout)
    assert printed == json.loads((EXAMPLES / "neuron.json").read_text(encoding="utf-8"))
    assert graphc.load(printed) == graphc.load(EXAMPLES / "neuron.json")


def test_neuron_py_writes_the_spec(tmp_path):
    out = tmp_path / "neuron.json"
    run_neuron_py("-o", str(out))
    assert graphc.load(out) == graphc.load(EXAMPLES / "neuron.json")


def test_neuron_py_same_values_and_gradients():
    import runpy

    built = runpy.run_path(str(EXAMPLES / "neuron.py"))["build"]()
    a = graphc.compile(built, backend="numpy", dtype="float64").trace()
    b = graphc.compile(EXAMPLES / "neuron.json", backend="numpy", dtype="float64").trace()
    assert a.values.keys() == b.values.keys() and a.grads.keys() == b.grads.keys()
    for k in b.values:
        assert float(a.values[k]) == float(b.values[k]), k
        assert float(a.grads[k]) == float(b.grads[k]), k
    assert a.steps == b.steps


def test_neuron_py_run_prints_the_figure():
    lines = run_neuron_py("--run").stdout.splitlines()
    assert any(line.split() == ["f", "=", "0.73", "df/df", "=", "1.00"] for line in lines)
    assert any(line.split() == ["x1", "=", "-2.00", "df/dx1", "=", "-0.59"] for line in lines)


# ---- LeNet-5 and the train / evaluation modes -----------------------------------------

try:
    import torch
except ImportError:  # tests/ci_guard.py fails CI on the skip
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch, the reference")


def torch_lenet5():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10)).double()


@needs_torch
def test_lenet5_has_torchs_parameter_count_and_logits():
    m = graphc.compile(EXAMPLES / "lenet5.json", backend="numpy", dtype="float64")
    ref = torch_lenet5()
    n_torch = sum(p.numel() for p in ref.parameters())
    assert sum(p.size for p in m.params.values()) == n_torch == 61_706
    layers = {"conv1": ref[0], "conv2": ref[3], "fc1": ref[7], "fc2": ref[9], "logits": ref[11]}
    for name, layer in layers.items():
        w = layer.weight.detach().numpy()
        m.params[f"{name}.W"] = w if w.ndim == 4 else w.T  # dense's W is [in, units]
        m.params[f"{name}.b"] = layer.bias.detach().numpy()
    x = np.random.default_rng(1).standard_normal((3, 1, 28, 28))
    logits = m.forward(x=x)["logits"]
    assert logits.shape == (3, 10)
    np.testing.assert_allclose(logits, ref(torch.from_numpy(x)).detach().numpy(), atol=1e-10)


def test_lenet5_check_prints_its_shapes():
    r = CliRunner().invoke(cli, ["check", str(EXAMPLES / "lenet5.json"), "--nodes"])
    assert r.exit_code == 0, r.output
    lines = [line.split() for line in r.output.splitlines()]
    assert ["conv1", "float[B,", "6,", "28,", "28]", "relu(conv1.conv2d)"] in lines
    assert ["pool2", "float[B,", "16,", "5,", "5]", "max_pool2d(conv2)"] in lines
    assert ["total", "61,706"] in lines


def run_json(name: str, *flags: str) -> dict:
    r = CliRunner().invoke(cli, ["run", str(EXAMPLES / name), "--json", *flags])
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_dropout_example_masks_in_training_and_not_in_evaluation():
    train, evaluated = run_json("dropout_modes.json", "--train"), run_json(
        "dropout_modes.json", "--eval")
    y = np.array(train["outputs"]["dropped"])
    assert set(np.unique(y)) == {0.0, 2.0}  # zeroed or scaled by 1 / (1 - p)
    np.testing.assert_array_equal(np.array(train["grads"]["x"]), y)  # the same mask
    assert np.array(evaluated["outputs"]["dropped"]).tolist() == [[1.0] * 4] * 2
    assert evaluated["loss"] == 8.0 and train["loss"] == y.sum()


def test_batch_norm_example_uses_batch_statistics_only_in_training():
    train, evaluated = run_json("batch_norm_modes.json", "--train"), run_json(
        "batch_norm_modes.json", "--eval")
    x = np.array([[1, 10], [2, 20], [3, 30], [4, 40]], dtype=float)
    want = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5)
    np.testing.assert_allclose(train["outputs"]["bn"], want, rtol=1e-12)
    np.testing.assert_allclose(evaluated["outputs"]["bn"], x / np.sqrt(1 + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(train["state"]["bn.running_mean"], 0.1 * x.mean(0))
    np.testing.assert_allclose(train["state"]["bn.running_var"], 0.9 + 0.1 * x.var(0, ddof=1))
    assert "state" not in evaluated


def test_run_without_a_mode_flag_keeps_forward_and_grad_defaults():
    plain = run_json("dropout_modes.json")
    assert np.array(plain["outputs"]["dropped"]).tolist() == [[1.0] * 4] * 2  # evaluated
    assert set(np.unique(plain["grads"]["x"])) == {0.0, 2.0}  # trained
