"""Issue 8: senseless sizes refused with their place (item 3), a call too big for memory
refused before it runs (4), close names suggested (5), and non-finite values refused
(7). Every message is graphc's own, one line, naming the place."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from click.testing import CliRunner

import graphc
from graphc import runtime
from graphc.cli import main, parse_sets
from graphc.errors import did_you_mean

DENSE = {"graphc": 1, "name": "d",
         "inputs": {"x": {"shape": ["B", 2]}, "y": {"shape": ["B", 1]}},
         "nodes": [{"id": "h1", "op": "dense", "inputs": ["x"], "attrs": {"units": 3}},
                   {"id": "out", "op": "dense", "inputs": ["h1"], "attrs": {"units": 1}},
                   {"id": "loss", "op": "mse", "inputs": ["out", "y"]}],
         "outputs": ["out"], "loss": "loss"}


def spec_with(path: str, value):
    """DENSE with the value at a dotted path (list indices as numbers) replaced."""
    s = copy.deepcopy(DENSE)
    *head, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    target = s
    for p in head:
        target = target[p]
    target[last] = value
    return s


def load_error(spec) -> graphc.SpecError:
    with pytest.raises(graphc.SpecError) as err:
        graphc.load(spec)
    assert "\n" not in str(err.value)
    return err.value


# ---- item 3: sizes and shapes ---------------------------------------------------------

@pytest.mark.parametrize("units", [-5, 0, 2.0, True, "3", None])
def test_dense_units_must_be_a_positive_int(units):
    e = load_error(spec_with("nodes.0.attrs.units", units))
    assert e.place == "nodes[0] (id 'h1').attrs.units"
    assert f"attribute 'units' of op 'dense' must be a positive integer, not {units!r}" \
        in str(e)


def test_units_minus_five_fails_graphc_check(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(graphc.spec.dumps(spec_with("nodes.0.attrs.units", -5)))
    r = CliRunner().invoke(main, ["check", str(path)])
    assert r.exit_code == 1 and "-15" not in r.output
    assert r.output.strip() == (f"error: {path}: nodes[0] (id 'h1').attrs.units: attribute "
                                "'units' of op 'dense' must be a positive integer, not -5")


@pytest.mark.parametrize("entry", [1.0, 0, -2, True, "not a name", None])
def test_input_shape_entries_are_positive_ints_or_names(entry):
    e = load_error(spec_with("inputs.x.shape", ["B", entry]))
    assert e.place == "inputs.x.shape[1]"


def test_shape_entry_message():
    e = load_error(spec_with("inputs.x.shape", ["B", 1.0]))
    assert str(e) == "inputs.x.shape[1]: shape entries are positive integers or names such " \
                     "as B, not 1.0"


@pytest.mark.parametrize("entry", [2.0, 0, "B"])
def test_param_shape_entries_are_positive_ints(entry):
    s = copy.deepcopy(DENSE)
    s["params"] = {"w": {"shape": [entry]}}
    e = load_error(s)
    assert e.place == "params.w.shape[0]" and "positive integers, not" in str(e)


@pytest.mark.parametrize("seed", [1.5, -1, True, "7"])
def test_seed_is_a_non_negative_int(seed):
    e = load_error({**DENSE, "seed": seed})
    assert e.place == "seed" and f"not {seed!r}" in str(e)


def test_symbolic_and_positive_shapes_still_load():
    g = graphc.load(spec_with("inputs.x.shape", ["B", 2]))
    assert graphc.compile(g, backend="numpy").forward(x=np.ones((4, 2)))["out"].shape == (4, 1)


# ---- item 4: memory -------------------------------------------------------------------

BIG = {"graphc": 1, "name": "big", "inputs": {"x": {"shape": ["B", 2]}},
       "nodes": [{"id": "wide", "op": "dense", "inputs": ["x"], "attrs": {"units": 50000}}],
       "outputs": ["wide"]}


def test_estimate_names_the_largest_array():
    m = graphc.compile(BIG, backend="numpy", dtype="float64")
    total, node, most = runtime.memory_need(m.mode_program(False), {"B": 200_000}, m.dtype)
    assert node.name == "wide.matmul" and most == 200_000 * 50_000 * 8
    assert most < total < 2.1 * most  # x @ W, then + b: two arrays of that size


def test_a_batch_too_big_is_refused_before_it_runs(monkeypatch):
    monkeypatch.setattr(runtime, "available_memory", lambda: 2**30)  # 1 GiB
    m = graphc.compile(BIG, backend="numpy", dtype="float64")
    x = np.zeros((200_000, 2))  # 3 MiB; the output alone would be 75 GiB
    with pytest.raises(graphc.InputError) as err:
        m.forward(x=x)
    text = str(err.value)
    assert text.startswith("this call (B = 200,000) needs about 149.0 GiB for its arrays, "
                           "more than the 1.0 GiB of memory available; the largest is "
                           "'wide.matmul' float64[200000, 50000] (74.5 GiB); use a smaller "
                           "batch")
    assert "\n" not in text
    assert m.forward(x=x[:100])["wide"].shape == (100, 50_000)  # a smaller batch runs


def test_memory_is_checked_once_per_batch_size(monkeypatch):
    calls = []
    monkeypatch.setattr(runtime, "available_memory", lambda: calls.append(1) or 2**40)
    m = graphc.compile(BIG, backend="numpy", dtype="float32")
    assert len(calls) == 1  # the params, at compile
    for _ in range(3):
        m.forward(x=np.zeros((10, 2)))
    assert len(calls) == 2
    m.forward(x=np.zeros((11, 2)))
    assert len(calls) == 3


def test_params_too_big_are_refused_at_compile(monkeypatch):
    monkeypatch.setattr(runtime, "available_memory", lambda: 2**30)
    s = copy.deepcopy(BIG)
    s["inputs"]["x"]["shape"] = ["B", 100_000]
    with pytest.raises(graphc.InputError, match=r"^allocating the params needs about 18.6 GiB "
                       r".* the largest is 'wide.W' float32\[100000, 50000\] \(18.6 GiB\); "
                       r"make the layers smaller$"):
        graphc.compile(s, backend="numpy")


def test_graphc_run_refuses_a_huge_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "available_memory", lambda: 2**30)
    spec = tmp_path / "big.json"
    spec.write_text(graphc.spec.dumps(BIG))
    np.save(tmp_path / "x.npy", np.zeros((200_000, 2)))
    for backend in ("numpy", "cpu"):
        r = CliRunner().invoke(main, ["run", str(spec), "--set", f"x=@{tmp_path / 'x.npy'}",
                                      "--backend", backend])
        assert r.exit_code == 1, r.output
        assert r.output.startswith("error: this call (B = 200,000) needs about")
        assert "the largest is 'wide.matmul' float64[200000, 50000]" in r.output
        assert r.output.count("\n") == 1 and "Traceback" not in r.output


def test_graphc_train_refuses_a_huge_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "available_memory", lambda: 2**30)
    s = copy.deepcopy(BIG)
    s["inputs"]["y"] = {"shape": ["B", 1]}
    s["nodes"] += [{"id": "out", "op": "dense", "inputs": ["wide"], "attrs": {"units": 1}},
                   {"id": "loss", "op": "mse", "inputs": ["out", "y"]}]
    s["outputs"], s["loss"] = ["out"], "loss"
    spec = tmp_path / "big.json"
    spec.write_text(graphc.spec.dumps(s))
    np.savez(tmp_path / "d.npz", x=np.zeros((200_000, 2)), y=np.zeros((200_000, 1)))
    r = CliRunner().invoke(main, ["train", str(spec), "--data", str(tmp_path / "d.npz"),
                                  "--batch-size", "200000", "--epochs", "1"])
    assert r.exit_code == 1, r.output
    assert "error: this call (B = 200,000) needs about" in r.output
    assert "use a smaller batch" in r.output and "Traceback" not in r.output


# ---- item 5: suggestions --------------------------------------------------------------

def test_unknown_name_suggests_the_closest():
    e = load_error(spec_with("nodes.1.inputs", ["h9"]))
    assert str(e) == "nodes[1] (id 'out').inputs[0]: unknown name 'h9' (did you mean 'h1'?)"


def test_an_op_differing_in_case_suggests_that_op():
    e = load_error(spec_with("nodes.2.op", "Relu"))
    assert "unknown op 'Relu' (did you mean 'relu'?)" in str(e)
    assert did_you_mean("MSE", ["mae", "mse"]) == "did you mean 'mse'?"
    assert did_you_mean("zzz", ["relu", "tanh"]) is None


# ---- item 7: non-finite values --------------------------------------------------------

@pytest.mark.parametrize("text,word", [("NaN", "NaN"), ("nan", "NaN"), ("Infinity", "Infinity"),
                                       ("-inf", "-Infinity"), ("[1, NaN]", "NaN")])
def test_set_refuses_non_finite_values(text, word):
    with pytest.raises(graphc.InputError) as err:
        parse_sets((f"x0={text}",))
    assert str(err.value) == f"--set x0: {word} is not a finite number; pass finite values"


def test_set_refuses_non_finite_npy(tmp_path):
    np.save(tmp_path / "x.npy", np.array([1.0, np.nan]))
    with pytest.raises(graphc.InputError, match="^--set x: NaN is not a finite number"):
        parse_sets((f"x=@{tmp_path / 'x.npy'}",))
    assert parse_sets(("x=[1, 2.5]",)) == {"x": [1, 2.5]}


def test_graphc_run_refuses_nan_like_nan(examples):
    for text in ("NaN", "nan"):
        r = CliRunner().invoke(main, ["run", str(examples / "neuron.json"), "--set",
                                      f"x0={text}"])
        assert r.exit_code == 1
        assert r.output == "error: --set x0: NaN is not a finite number; pass finite values\n"


@pytest.mark.parametrize("value", [math.nan, math.inf, [1.0, -math.inf]])
def test_spec_default_values_must_be_finite(value):
    s = spec_with("inputs.x", {"shape": [2] if isinstance(value, list) else [],
                               "value": value})
    e = load_error(s)
    assert e.place == "inputs.x.value" and "is not a finite number" in str(e)


def test_nan_in_spec_json_text_is_refused():
    text = graphc.spec.dumps(spec_with("inputs.x", {"shape": [], "value": 1.0}))
    e = load_error(text.replace("1.0", "NaN"))
    assert str(e).startswith("<string>: inputs.x.value: NaN is not a finite number")
