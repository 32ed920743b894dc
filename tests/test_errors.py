"""Bad input of every kind gets one clear message naming the place: SpecError/InputError
in Python, one `error:` line and exit 1 on the command line, never a traceback."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import graphc
from graphc.cli import main

GOOD = {"graphc": 1, "name": "ok",
        "inputs": {"x": {"shape": ["B", 3], "value": [[1, 2, 3]]}},
        "nodes": [{"id": "h", "op": "dense", "inputs": ["x"],
                   "attrs": {"units": 2, "activation": "relu"}},
                  {"id": "L", "op": "sum", "inputs": ["h"]}],
        "outputs": ["h"], "loss": "L"}


def bad(**changes):
    s = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *keys, last = path.split("__")
        target = s
        for k in keys:
            target = target[int(k)] if k.isdigit() else target[k]
        if value is DELETE:
            del target[int(last) if last.isdigit() else last]
        else:
            target[int(last) if last.isdigit() else last] = value
    return s


DELETE = object()

CASES = {
    "unknown op": (bad(nodes__0__op="densse"), "nodes[0] (id 'h').op", "did you mean 'dense'"),
    "unknown name": (bad(nodes__1__inputs=["hh"]), "nodes[1] (id 'L').inputs[0]",
                     "did you mean 'h'"),
    "unknown attribute": (bad(nodes__0__attrs={"unit": 2}), "nodes[0] (id 'h').attrs",
                          "did you mean 'units'"),
    "attribute type": (bad(nodes__0__attrs={"units": "two"}), "nodes[0] (id 'h').attrs",
                       "must be a positive integer"),
    "missing attribute": (bad(nodes__0__attrs={}), "nodes[0] (id 'h').attrs",
                          "needs attribute 'units'"),
    "unknown activation": (bad(nodes__0__attrs={"units": 2, "activation": "rleu"}),
                           "nodes[0] (id 'h')", "did you mean 'relu'"),
    "arity": (bad(nodes__1__inputs=["h", "x"]), "nodes[1] (id 'L').inputs", "takes 1 input"),
    "cycle": (bad(nodes__0__inputs=["L"]), "nodes[0] (id 'h')", "cycle"),
    "shape mismatch": (bad(nodes__1={"id": "L", "op": "matmul", "inputs": ["h", "x"]}),
                       "nodes[1] (id 'L')", "inner dimensions differ"),
    "non-scalar loss": (bad(nodes__1={"id": "L", "op": "exp", "inputs": ["h"]}), "loss",
                        "must be a scalar"),
    "duplicate name": (bad(nodes__1__id="x"), "nodes[1] (id 'x')", "already used"),
    "unknown top-level key": (bad(output=["h"]), "(top level)", "did you mean 'outputs'"),
    "missing key": (bad(outputs=DELETE), "(top level)", "'outputs' is a required property"),
    "wrong format": (bad(graphc=2), "graphc", "unsupported format 2"),
    "bad shape": (bad(inputs__x__shape=[-1, 3]), "inputs.x.shape[0]", ""),
    "unknown input key": (bad(inputs__x__shpe=[3]), "inputs.x", "did you mean 'shape'"),
    "unknown node key": (bad(nodes__0__attr={}), "nodes[0]", "did you mean 'attrs'"),
    "unknown output": (bad(outputs=["hh"]), "outputs[0]", "did you mean 'h'"),
    "unknown loss": (bad(loss="LL"), "loss", "did you mean 'L'"),
    "bad init": (bad(params={"w": {"shape": [2], "init": "xavier"}}), "params.w.init",
                 "did you mean 'xavier_normal'"),
    "value shape": (bad(inputs__x__value=[[1, 2]]), "inputs.x.value", "shape [1, 2]"),
    "unprintable name": (bad(nodes__1__id="a\nb", loss="a\nb"), "nodes[1]", "unprintable"),
    "internal op": (bad(nodes__1={"id": "L", "op": "accumulate", "inputs": ["h"]}),
                    "nodes[1] (id 'L').op", "unknown op 'accumulate'"),
}


@pytest.mark.parametrize("case", CASES)
def test_spec_error_names_place_and_hint(case):
    spec, place, text = CASES[case]
    with pytest.raises(graphc.SpecError) as err:
        graphc.load(spec)
    assert err.value.place is not None and err.value.place.startswith(place), str(err.value)
    assert text in str(err.value)


@pytest.mark.parametrize("case", CASES)
def test_cli_reports_one_error_line(case, tmp_path):
    spec, place, text = CASES[case]
    path = tmp_path / "model.json"
    path.write_text(json.dumps(spec))
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: {place}"), result.output
    assert "Traceback" not in result.output


def test_malformed_json_gives_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "graphc": 1,\n  "name": "x",,\n}')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert result.output.startswith(f"error: {path}: line 3, column 15: invalid JSON")


def test_missing_file_and_directory(tmp_path):
    result = CliRunner().invoke(main, ["run", str(tmp_path / "nope.json")])
    assert result.exit_code == 1 and "no such file" in result.output
    with pytest.raises(graphc.SpecError, match="no such file"):
        graphc.load(tmp_path / "nope.json")


@pytest.mark.parametrize("arg,text", [
    ("x=[[1,2]]", "expected shape [B, 3], got [1, 2]: axis 1 is 2, the model wants 3"),
    ("x=[[1,2,3]", "not a JSON number or list"),
    ("x", "expected NAME=VALUE"),
    ("xx=[[1,2,3]]", "unknown input 'xx' (did you mean 'x'?)"),
    ("x=\"a\"", "expected a number or a nested list"),
    ("x=[[1,2],[3]]", "not a regular array"),
    ("x=@missing.npy", "cannot read 'missing.npy'"),
])
def test_bad_set(arg, text, tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(GOOD))
    result = CliRunner().invoke(main, ["run", str(path), "--set", arg])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and text in result.output, result.output


def test_usage_errors_exit_2(tmp_path):
    assert CliRunner().invoke(main, ["run"]).exit_code == 2
    assert CliRunner().invoke(main, ["run", "x.json", "--dtype", "float16"]).exit_code == 2
    assert CliRunner().invoke(main, ["nosuchcommand"]).exit_code == 2


def test_runtime_input_errors():
    m = graphc.compile(GOOD, backend="numpy")
    two = {"graphc": 1, "name": "two", "inputs": {"x": {"shape": ["B", 3]}, "z": {"shape": ["B"]}},
           "nodes": [{"id": "s", "op": "sum", "inputs": ["x"], "attrs": {"axis": 1}},
                     {"id": "q", "op": "add", "inputs": ["s", "z"]}], "outputs": ["q"]}
    with pytest.raises(graphc.InputError, match=re.escape(
            "input 'z': expected shape [B], got [2]: axis 0 (B) is 2, but B is 1 in input 'x'")):
        graphc.compile(two, backend="numpy").forward(x=np.ones((1, 3)), z=np.ones(2))
    with pytest.raises(graphc.InputError, match=re.escape(
            "input 'x': expected shape [B, 3], got [2, 4]: axis 1 is 4, the model wants 3")):
        graphc.compile(two, backend="numpy").forward(x=np.ones((2, 4)), z=np.ones(2))
    with pytest.raises(graphc.InputError, match="missing input 'y'"):
        s = json.loads(json.dumps(GOOD))
        s["inputs"]["y"] = {"shape": ["B", 2]}
        s["nodes"][1] = {"id": "L", "op": "mse", "inputs": ["h", "y"]}
        graphc.compile(s, backend="numpy").grad()
    with pytest.raises(graphc.InputError, match="label 7 is out of range"):
        ce = {"graphc": 1, "name": "ce", "inputs": {"z": {"shape": [2, 3]},
                                                   "y": {"shape": [2], "dtype": "int64"}},
              "nodes": [{"id": "L", "op": "cross_entropy", "inputs": ["z", "y"]}],
              "outputs": ["L"], "loss": "L"}
        graphc.compile(ce, backend="numpy").grad(z=np.zeros((2, 3)), y=[0, 7])
    with pytest.raises(graphc.InputError, match="non-integers"):
        graphc.compile(ce, backend="numpy").grad(z=np.zeros((2, 3)), y=[0.5, 1])
    assert m.forward()["h"].shape == (1, 2)  # the spec's default value is used


def test_real_process_prints_no_traceback(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad(nodes__0__op="densse")))
    proc = subprocess.run([sys.executable, "-m", "graphc.cli", "check", str(path)],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error:") and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_names_are_data_not_code():
    """Any printable name works: quotes, backslashes, braces, code."""
    weird = ['x"); import os #', "a\\b", "{{c}}", "</script>", "ünï cødé ✓", "v7"]
    nodes, prev = [], "x"
    for name in weird[1:]:
        nodes.append({"id": name, "op": "tanh", "inputs": [prev]})
        prev = name
    nodes.append({"id": "loss", "op": "sum", "inputs": [prev]})
    s = {"graphc": 1, "name": weird[0], "inputs": {"x": {"shape": [2]}}, "nodes": nodes,
         "outputs": [prev], "loss": "loss"}
    t = graphc.compile(s, backend="numpy").trace(x=[0.5, -0.5])
    assert set(weird[1:]) <= set(t.values)
    assert graphc.load(graphc.load(s).to_json()) == graphc.load(s)


def test_backend_options(tmp_path):
    m = graphc.compile(GOOD, backend="cpu", dtype="float64", cache_dir=str(tmp_path))
    np.testing.assert_allclose(m.forward()["h"],
                               graphc.compile(GOOD, backend="numpy", dtype="float64")
                               .forward()["h"], rtol=1e-12)
    assert any(p.name.startswith("graphc_") for p in tmp_path.iterdir())
    with pytest.raises(graphc.CompileError, match="takes no options"):
        graphc.compile(GOOD, backend="numpy", cache_dir=str(tmp_path))
    with pytest.raises(graphc.CompileError, match="unknown option of backend 'cpu'"):
        graphc.compile(GOOD, backend="cpu", cache_dirr=str(tmp_path))
