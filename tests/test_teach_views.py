"""The teaching views (contract section 9): quiz and answer key, gradient-check marks, one
step's diff, optimizer state and memory, through `graphc viz` and `graphc check --memory`,
each checked against numbers worked out by hand here."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner

import graphc
from graphc.cli import main
from graphc.teach import scene_for
from graphc.teach_views import grad_checks, memory, parse_optimizer
from graphc.viz.teaching import questions, quiz_blanks

NEURON_ANSWERS = {"0.73", "-0.20", "0.39", "-0.39", "-0.59", "0.20"}  # f and the grads


def cli(*args):
    r = CliRunner().invoke(main, [*map(str, args)])
    return r


def svg_texts(path) -> list[str]:
    return ["".join(e.itertext()) for e in ET.parse(path).getroot().iter()
            if e.tag.endswith("text")]


def test_quiz_hides_the_neurons_numbers_and_the_key_has_them(examples, tmp_path):
    out = tmp_path / "quiz.svg"
    r = cli("viz", examples / "neuron.json", "--quiz", "-o", out)
    assert r.exit_code == 0, r.output
    key = tmp_path / "quiz.key.svg"
    assert r.output == f"wrote {out}\nwrote {key} (the answer key)\n"
    quiz, answers = svg_texts(out), svg_texts(key)
    assert NEURON_ANSWERS <= set(answers) and "answer key" in answers
    assert not NEURON_ANSWERS & set(quiz)
    dot = tmp_path / "quiz.dot"  # nowhere: not in a tooltip or an attribute either
    assert cli("viz", examples / "neuron.json", "--quiz", "-o", dot).exit_code == 0
    for number in NEURON_ANSWERS:
        assert number not in dot.read_text(encoding="utf-8")
        assert number in (tmp_path / "quiz.key.dot").read_text(encoding="utf-8")
    assert {"-1.00", "-2.00", "2.00", "-3.00"} <= set(quiz)  # inputs and params are given
    assert "6.00" not in quiz and "1.37" not in quiz  # computed values are blank too


def test_quiz_backward_only_and_chosen_nodes(examples, tmp_path):
    out = tmp_path / "q.dot"
    assert cli("viz", examples / "neuron.json", "--quiz", "--quiz-part", "backward",
               "-o", out).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert "0.73" in text and "6.00" in text  # forward values stay
    assert "-0.59" not in text and "-0.53" not in text
    r = cli("viz", examples / "neuron.json", "--quiz", "--quiz-part", "backward",
            "--quiz-nodes", "w0,x0,w1", "-o", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    assert "-0.20" in text  # ∂f/∂nt stays; only ∂f/∂w0 (also -0.20) is asked
    assert "0.39" not in text and "-0.39" not in text and "-0.59" in text
    r = cli("viz", examples / "neuron.json", "--quiz", "--quiz-nodes", "w9", "-o", out)
    assert r.exit_code == 1 and r.output.startswith("error: --quiz-nodes: no node 'w9'")


def test_quiz_questions_come_in_backward_order_with_their_answers(examples):
    sc = scene_for(examples / "neuron.json")
    blank = quiz_blanks(sc, "backward") - {f"g:{sc.program.loss}"}
    qs = {q["prompt"]: q["answer"] for q in questions(sc, blank)}
    order = [q["prompt"] for q in questions(sc, blank)]
    assert order[0] == "∂f/∂d" and order.index("∂f/∂t012") < order.index("∂f/∂w0")
    assert {qs["∂f/∂w0"], qs["∂f/∂x0"], qs["∂f/∂w1"], qs["∂f/∂x1"], qs["∂f/∂w2"]} == {
        "-0.20", "0.39", "-0.39", "-0.59", "0.20"}
    assert qs["∂f/∂x1"] == "-0.59" and qs["∂f/∂w2"] == "0.20"


def test_one_sgd_step_at_lr_1_moves_the_neurons_weights(examples, tmp_path):
    out = tmp_path / "s.svg"
    r = cli("viz", examples / "neuron.json", "--step-diff", "--optimizer", "sgd:lr=1",
            "-o", out)
    assert r.exit_code == 0, r.output
    texts = svg_texts(out)
    for line in ("step: 2.00 → 2.20", "step: -3.00 → -2.61", "step: -3.00 → -3.20",
                 "Δ +0.20", "Δ +0.39", "Δ -0.20"):
        assert line in texts, line
    assert "2.00" in texts and "-0.20" in texts  # the edges show the values before the step


def _neuron_grad(w, x=(-1.0, -2.0)):
    f = 1 / (1 + math.exp(-(w[0] * x[0] + w[1] * x[1] + w[2])))
    return np.array([x[0], x[1], 1.0]) * f * (1 - f)


def test_two_momentum_steps_match_the_hand_computed_update(examples, tmp_path):
    w = np.array([2.0, -3.0, -3.0])
    g1 = _neuron_grad(w)
    b = g1
    w1 = w - 0.5 * b  # torch's SGD: the first buffer is the gradient itself
    b = 0.9 * b + _neuron_grad(w1)
    w2 = w1 - 0.5 * b
    out = tmp_path / "m.dot"
    r = cli("viz", examples / "neuron.json", "--step-diff", "--steps", "2", "--digits", "6",
            "--optimizer", "sgd:lr=0.5,momentum=0.9", "--show-state", "-o", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    for k, name in enumerate(("w0", "w1", "w2")):
        assert f"2 steps: {w[k]:.6f} → {w2[k]:.6f}" in text, name
        assert f"momentum_buffer {b[k]:.6f}" in text, name


def test_adam_state_is_drawn_beside_each_param(examples, tmp_path):
    out = tmp_path / "a.dot"
    r = cli("viz", examples / "neuron.json", "--show-state", "--optimizer", "adam:lr=0.1",
            "--digits", "6", "-o", out)
    assert r.exit_code == 0, r.output
    text = out.read_text(encoding="utf-8")
    g = _neuron_grad([2.0, -3.0, -3.0])
    for gk in g:  # after one step: m = (1 - b1) g, v = (1 - b2) g²
        assert f"exp_avg {0.1 * gk:.6f}" in text and f"exp_avg_sq {0.001 * gk * gk:.6f}" in text
    assert text.count("effective step") == 3


def test_check_grads_marks_every_gradient_and_a_relu_kink(examples, tmp_path):
    out = tmp_path / "c.svg"
    assert cli("viz", examples / "neuron.json", "--check-grads", "-o", out).exit_code == 0
    texts = svg_texts(out)
    assert texts.count("✓") == 13 and "✗" not in texts
    spec = {"graphc": 1, "name": "kink", "inputs": {"x": {"shape": [], "value": 0.0},
                                                    "y": {"shape": [], "value": 2.0}},
            "nodes": [{"id": "r", "op": "relu", "inputs": ["x"]},
                      {"id": "a", "op": "abs", "inputs": ["y"]},
                      {"id": "L", "op": "add", "inputs": ["r", "a"]}],
            "outputs": ["L"], "loss": "L"}
    sc = scene_for(spec)
    checks = grad_checks(type("T", (), {"program": sc.program, "by_id": sc.values})(),
                         sc.forward)
    by_name = {sc.program[v].name: c for v, c in checks.items()}
    assert not by_name["x"][0] and "not differentiable here" in by_name["x"][2]
    assert by_name["y"][0] and by_name["a"][0] and by_name["L"][0]
    (tmp_path / "k.json").write_text(__import__("json").dumps(spec))
    assert cli("viz", tmp_path / "k.json", "--check-grads", "-o", tmp_path / "k.dot"
               ).exit_code == 0
    text = (tmp_path / "k.dot").read_text(encoding="utf-8")
    assert "✗" in text and "not differentiable here" in text and text.count("✓") >= 3


def test_memory_counts_what_the_backward_pass_keeps(examples):
    m = memory(graphc.load(examples / "mnist_mlp.json"), batch=64)
    kept = {m.names[i]: b for i, b in m.kept.items()}
    assert kept["x"] == 64 * 784 * 4  # x is read by ∂L/∂W = xᵀ g
    assert kept["hidden"] == 64 * 256 * 4
    assert all(not name.endswith((".W", ".b")) for name in kept)  # params are not "kept"
    assert m.total == sum(kept.values())
    assert m.peak >= m.total
    m64 = memory(graphc.load(examples / "mnist_mlp.json"), batch=64, dtype="float64")
    assert m64.total == 2 * m.total


def test_check_memory_prints_the_same_numbers(examples, tmp_path):
    r = cli("check", examples / "mnist_mlp.json", "--memory", "--batch", "64")
    assert r.exit_code == 0, r.output
    m = memory(graphc.load(examples / "mnist_mlp.json"), batch=64)
    assert re.search(r"^x\s+\[64,784\]\s+200,704$", r.output, re.M)
    assert "total kept" in r.output and f"{m.total:,}" in r.output and f"{m.peak:,}" in r.output
    out = tmp_path / "m.dot"
    r = cli("viz", examples / "mnist_mlp.json", "--memory", "--batch", "64", "-o", out)
    assert r.exit_code == 0, r.output
    assert "kept 196.0 KiB" in out.read_text(encoding="utf-8")  # x: 200,704 B


def test_bad_optimizer_and_usage(examples, tmp_path):
    r = cli("viz", examples / "neuron.json", "--step-diff", "--optimizer", "sgd:lr",
            "-o", tmp_path / "x.svg")
    assert r.exit_code == 1 and "write NAME:key=value" in r.output
    r = cli("viz", examples / "neuron.json", "--optimizer", "sgd", "-o", tmp_path / "x.svg")
    assert r.exit_code == 2 and "--optimizer goes with --step-diff" in r.output
    with pytest.raises(graphc.SpecError, match="unknown optimizer"):
        parse_optimizer("sgdd:lr=1")


def test_check_grads_catches_a_wrong_gradient(examples):
    from graphc.teach import trace_of

    g = graphc.load(examples / "mnist_mlp.json")
    rng = np.random.default_rng(0)
    trace = trace_of(g, inputs={"x": rng.normal(size=(4, 784)), "y": np.array([1, 2, 3, 4])})
    fwd = [i for kind, i in trace.steps if kind == "forward"]
    assert all(ok for ok, _, _ in grad_checks(trace, fwd).values())
    w = trace.program.params["hidden.W"]
    gid = trace.program.grad_map[w]
    trace.by_id[gid] = trace.by_id[gid].copy()
    trace.by_id[gid][3, 7] += 0.05  # one element of a 784x256 gradient off
    checks = grad_checks(trace, fwd)
    assert not checks[w][0] and checks[w][1] > 1e-4
    assert sum(not ok for ok, _, _ in checks.values()) == 1


def test_frames_for_slides_carry_each_view(examples, tmp_path):
    r = cli("viz", examples / "neuron.json", "--check-grads", "--step-diff", "--optimizer",
            "sgd:lr=1", "--frames", tmp_path / "fr")
    assert r.exit_code == 0 and "wrote 25 frames" in r.output, r.output

    def visible(k):
        root = ET.parse(tmp_path / "fr" / f"frame_{k:03d}.svg").getroot()
        return ["".join(e.itertext()) for e in root.iter() if e.tag.endswith("text")
                and e.get("fill") not in ("transparent", "#fffffe", None)]  # hidden: not yet

    assert "✓" not in visible(1) and "step: 2.00 → 2.20" not in visible(22)
    assert visible(22).count("✓") == 13  # the backward pass done: every mark shown
    assert "step: 2.00 → 2.20" in visible(23) and "Δ +0.20" in visible(23)
    r = cli("viz", examples / "neuron.json", "--quiz", "--frames", tmp_path / "q")
    assert r.exit_code == 0
    last = ET.parse(tmp_path / "q" / "frame_022.svg").getroot()
    texts = {"".join(e.itertext()) for e in last.iter()}
    assert not NEURON_ANSWERS & texts  # a quiz's slides stay blank


def test_each_view_from_python(examples):
    n = examples / "neuron.json"
    assert "step: -3.00 → -2.61" in graphc.viz(n, step_diff=True, optimizer="sgd:lr=1").source
    quiz = graphc.viz(n, quiz=True).source
    assert not any(x in quiz for x in NEURON_ANSWERS)
    assert "0.73" in graphc.viz(n, quiz=True, quiz_part="backward").source
    assert graphc.viz(n, check_grads=True).source.count("✓") == 13
    assert "exp_avg" in graphc.viz(n, show_state=True, optimizer="adam").source
    assert "kept 196.0 KiB" in graphc.viz(examples / "mnist_mlp.json", memory=True,
                                          batch=64).source
    with pytest.raises(TypeError, match="unknown options"):
        graphc.viz(n, qiz=True)
