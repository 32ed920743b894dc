"""The command line end to end: CliRunner for detail, a real subprocess for the wiring."""

import json
import subprocess
import sys

import numpy as np
from click.testing import CliRunner

from graphc.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_check_prints_shapes_and_parameter_counts(examples):
    r = run("check", examples / "mnist_mlp.json")
    assert r.exit_code == 0, r.output
    assert "hidden.W" in r.output and "float[784, 256]" in r.output and "200,704" in r.output
    assert "total" in r.output and "203,530" in r.output
    assert "probs" in r.output and "float[B, 10]" in r.output


def test_run_json_gives_outputs_loss_and_gradients(examples):
    r = run("run", examples / "neuron.json", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert round(out["outputs"]["f"], 2) == 0.73 and round(out["loss"], 2) == 0.73
    assert {k: round(v, 2) for k, v in out["grads"].items()} == \
        {"w0": -0.2, "w1": -0.39, "w2": 0.2, "x0": 0.39, "x1": -0.59}
    only_params = json.loads(run("run", examples / "mnist_mlp.json", "--json", "--set",
                                 "x=" + json.dumps([[0.0] * 784]), "--set", "y=[1]").output)
    assert set(only_params["grads"]) == {"hidden.W", "hidden.b", "logits.W", "logits.b"}
    x_too = json.loads(run("run", examples / "mnist_mlp.json", "--json", "--wrt", "all",
                           "--set", "x=" + json.dumps([[0.0] * 784]), "--set", "y=[1]").output)
    assert np.shape(x_too["grads"]["x"]) == (1, 784)


def test_run_with_set_values_and_npy(examples, tmp_path):
    r = run("run", examples / "neuron.json", "--json", "--set", "x0=1", "--set", "x1=0")
    f = json.loads(r.output)["outputs"]["f"]
    assert abs(f - 1 / (1 + np.exp(-(2 - 3)))) < 1e-12
    np.save(tmp_path / "x0.npy", np.array(1.0))
    r2 = run("run", examples / "neuron.json", "--json", "--set", f"x0=@{tmp_path / 'x0.npy'}",
             "--set", "x1=0")
    assert json.loads(r2.output)["outputs"]["f"] == f


def test_run_human_output(examples):
    r = run("run", examples / "neuron.json")
    assert r.exit_code == 0
    assert "f = 0.7311" in r.output and "df/dw0 = -0.1966" in r.output


def test_gradcheck_passes_and_fails(examples, tmp_path):
    r = run("gradcheck", examples / "mnist_mlp.json", "--set",
            "x=" + json.dumps(np.random.default_rng(0).normal(size=(2, 784)).round(3).tolist()),
            "--set", "y=[3, 4]", "--max-elements", "3")
    assert r.exit_code == 0, r.output
    assert "hidden.W" in r.output and "all 5 gradients agree" in r.output
    # a kink exactly at the evaluation point: relu at 0 has no derivative
    spec = {"graphc": 1, "name": "kink", "inputs": {"x": {"shape": [], "value": 0.0}},
            "nodes": [{"id": "L", "op": "relu", "inputs": ["x"]}], "outputs": ["L"],
            "loss": "L"}
    path = tmp_path / "kink.json"
    path.write_text(json.dumps(spec))
    bad = run("gradcheck", path)
    assert bad.exit_code == 1 and "MISMATCH" in bad.output
    assert "error: gradients of x" in bad.output


def test_ops_and_schema():
    r = run("ops")
    assert r.exit_code == 0
    for name in ("relu", "cross_entropy", "matmul", "dense", "l2_penalty"):
        assert f"  {name}(" in r.output
    assert "accumulate" not in r.output  # internal ops are not part of the spec language
    one = run("ops", "gelu")
    assert "approximate" in one.output and "relu(" not in one.output
    schema = json.loads(run("schema").output)
    assert schema["title"].startswith("graphc") and "dense" in json.dumps(schema)


def test_real_subprocess(examples):
    proc = subprocess.run([sys.executable, "-m", "graphc.cli", "run", "--json",
                           str(examples / "fork.json")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outputs"]["L"] == 5.0
    # this checkout's CLI, not whichever `graphc` is first on PATH
    help_text = subprocess.run([sys.executable, "-m", "graphc.cli", "--help"],
                               capture_output=True, text=True).stdout
    for cmd in ("check", "run", "gradcheck", "ops", "schema"):
        assert cmd in help_text
