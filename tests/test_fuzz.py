"""A fixed slice of benchmarks/fuzz.py: every example spec, mutated at random, goes through
load, compile, forward, grad, train_step and fit; only graphc's own errors may come out.
The long run: python benchmarks/fuzz.py --cases 20000."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest

import graphc

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("fuzz", ROOT / "benchmarks" / "fuzz.py")
fuzz = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fuzz)

CASES = 1200


def test_mutated_examples_raise_only_graphc_errors():
    out = fuzz.fuzz(CASES, seed=0)
    assert out["foreign"] == 0, "\n\n".join(f"{k}\n{v}" for k, v in out["kinds"].items())
    assert out["cases"] == CASES == out["accepted"] + out["rejected"]
    assert out["accepted"] > CASES // 20 and out["rejected"] > CASES // 2  # both paths taken


def test_every_example_is_mutated():
    names = [n for n, _ in fuzz.examples()]
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "examples").rglob("*.json")}
    assert set(names) == on_disk and len(names) >= 15
    rng = random.Random(0)
    for _, base in fuzz.examples():
        assert any(fuzz.mutate(base, rng) != base for _ in range(3))


def test_a_foreign_exception_is_counted(monkeypatch):
    def load(s):
        raise KeyError("planted")

    monkeypatch.setattr(graphc, "load", load)
    out = fuzz.fuzz(5, seed=1)
    assert out["foreign"] == 5 and out["accepted"] == out["rejected"] == 0
    (kind, text), = out["kinds"].items()  # one kind, with its case and traceback
    assert kind.startswith("KeyError at test_fuzz.py:") and "planted" in text


def test_memory_is_restored_after_fuzzing():
    before = fuzz.runtime.available_memory
    fuzz.fuzz(2)
    assert fuzz.runtime.available_memory is before


NEURON = {"graphc": 1, "name": "n", "inputs": {"x0": {"shape": [], "value": -1.0}},
          "params": {"w0": {"shape": [], "init": 2.0}},
          "nodes": [{"id": "t0", "op": "mul", "inputs": ["w0", "x0"]}],
          "outputs": ["t0"], "loss": "t0"}


def neuron(**changes):
    s = {**NEURON, **changes}
    return {k: v for k, v in s.items() if v is not ...}


# what the fuzz found, each once a foreign exception: (spec, place, words of the message)
FOUND = {
    "no nodes (KeyError)": (neuron(nodes=...), "(top level)", "'nodes' is a required property"),
    "nodes null (TypeError)": (neuron(nodes=None), "nodes", "must be an array of nodes"),
    "init holds an object (TypeError)": (
        neuron(params={"w0": {"shape": [2], "init": [{"a": 1}, 2]}}), "params.w0.init",
        "not a regular nested list of numbers"),
    "init option a string (TypeError)": (
        neuron(params={"w0": {"shape": [2], "init": {"name": "normal", "std": "x"}}}),
        "params.w0.init", "option 'std' of initializer 'normal' must be a finite number"),
    "seed 0.0 (TypeError)": (neuron(seed=0.0), "seed", "must be a non-negative integer"),
    "units 0 (ZeroDivisionError)": (
        neuron(nodes=[{"id": "t0", "op": "dense", "inputs": ["x0"], "attrs": {"units": 0}}]),
        "nodes[0] (id 't0').attrs.units", "must be a positive integer, not 0"),
    "a layer's value before an unknown op (KeyError)": (
        neuron(nodes=[{"id": "a", "op": "add", "inputs": ["h.W", "x0"]},
                      {"id": "h", "op": "DENSE", "inputs": ["x0"]}], outputs=["a"]),
        "nodes[0] (id 'a').inputs[0]", "unknown name 'h.W'"),
}


@pytest.mark.parametrize("case", FOUND)
def test_what_the_fuzz_found_is_a_spec_error(case):
    spec, place, words = FOUND[case]
    with pytest.raises(graphc.SpecError) as err:
        graphc.load(spec)
    assert err.value.place == place and words in str(err.value)


def test_an_output_that_is_an_input_runs():  # was KeyError 'v0' in the NumPy backend
    m = graphc.compile(neuron(outputs=["x0", "t0"]), backend="numpy")
    assert m.forward() == {"x0": -1.0, "t0": -2.0}
    assert m.grad()[1]["w0"] == -1.0
