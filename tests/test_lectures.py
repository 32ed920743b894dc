"""Golden tests: the lectures' worked examples (shared/design/lectures.md), reproduced by
graphc's own specs and ops, to the decimals the decks print."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import graphc
from graphc import F
from graphc.cli import main as cli
from graphc.optim import SGD

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def two(x) -> float:
    """A value to two decimals, as the decks print it."""
    return round(float(x), 2)


def trace_of(name: str, dtype: str = "float64", **inputs):
    return graphc.compile(EXAMPLES / name, backend="numpy", dtype=dtype).trace(**inputs)


# ---- worked example 1: the sigmoid neuron ---------------------------------------------

NEURON_VALUES = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3, "t0": -2, "t1": 6,
                 "t01": 4, "t012": 1, "nt": -1, "e": 0.37, "d": 1.37, "f": 0.73}
NEURON_GRADS = {"w0": -0.20, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.20,
                "t0": 0.20, "t1": 0.20, "t01": 0.20, "t012": 0.20, "nt": -0.20,
                "e": -0.53, "d": -0.53, "f": 1.00}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_neuron_decomposed_node_by_node(dtype):
    t = trace_of("neuron.json", dtype)
    assert {k: two(v) for k, v in t.values.items()} == NEURON_VALUES
    assert {k: two(v) for k, v in t.grads.items()} == NEURON_GRADS
    assert two(t.loss) == 0.73


def test_neuron_backward_runs_in_reverse_order():
    t = trace_of("neuron.json")
    forward = [t.program[i].name for kind, i in t.steps if kind == "forward"]
    named = [n for n in forward if n in NEURON_VALUES and not n.startswith(("w", "x"))]
    assert named == ["t0", "t1", "t01", "t012", "nt", "e", "d", "f"]
    when = {i: k for k, (kind, i) in enumerate(t.steps) if kind == "backward"}
    assert when, "the trace records the backward steps"
    ids = t.program.by_name()
    pos = {name: when[t.program.grad_map[ids[name]]] for name in NEURON_GRADS}
    # each gradient is known before the gradients of the values feeding its node
    assert pos["f"] < pos["d"] == pos["e"] < pos["nt"] < pos["t012"] == pos["t01"]
    assert pos["t01"] == pos["t0"] == pos["t1"] == pos["w2"]
    assert pos["t0"] < min(pos["w0"], pos["x0"], pos["w1"], pos["x1"])


def test_neuron_with_sigmoid_node_same_gradients():
    t = trace_of("neuron_sigmoid.json")
    assert two(t.values["f"]) == 0.73
    assert two(t.values["z"]) == 1.00
    for k in ("w0", "x0", "w1", "x1", "w2"):
        assert two(t.grads[k]) == NEURON_GRADS[k], k
    assert two(t.grads["z"]) == 0.20


def test_sigmoid_local_derivative_is_a_graph_node():
    """σ(z)(1 - σ(z)) = 0.73 * 0.27 = 0.20, computed by the backward graph's own nodes."""
    t = trace_of("neuron_sigmoid.json")
    prog = t.program
    f_id = prog.by_name()["f"]
    one_minus = [n.id for n in prog if n.op == "sub" and n.args[-1] == f_id]
    assert len(one_minus) == 1
    assert two(t.by_id[one_minus[0]]) == 0.27
    local = [n.id for n in prog if n.op == "mul" and set(n.args) == {f_id, one_minus[0]}]
    assert len(local) == 1
    assert two(t.by_id[local[0]]) == 0.20
    assert two(t.values["f"]) * two(t.by_id[one_minus[0]]) == pytest.approx(0.1971)


def test_neuron_json_gradients_equal_sigmoid_node_gradients():
    a, b = trace_of("neuron.json"), trace_of("neuron_sigmoid.json")
    for k in ("w0", "x0", "w1", "x1", "w2"):
        assert float(a.grads[k]) == pytest.approx(float(b.grads[k]), abs=1e-12)
    assert float(a.grads["t012"]) == pytest.approx(float(b.grads["z"]), abs=1e-12)


def test_neuron_cli_run_prints_the_lecture_numbers():
    r = CliRunner().invoke(cli, ["run", str(EXAMPLES / "neuron.json"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert two(out["outputs"]["f"]) == 0.73
    assert {k: two(v) for k, v in out["grads"].items()} == {
        k: NEURON_GRADS[k] for k in ("w0", "w1", "w2", "x0", "x1")}


# ---- forks: gradients are summed -------------------------------------------------------

def test_fork_sums_the_two_gradients():
    t = trace_of("fork.json")
    assert float(t.values["L"]) == 5.0
    assert float(t.grads["a"]) == 5.0  # 2 + 3
    parts = t.program.contributions[t.program.by_name()["a"]]
    assert sorted(float(t.by_id[c]) for _, c in parts) == [2.0, 3.0]


def test_multiple_uses_sum_at_every_fork():
    t = trace_of("multiple_uses.json")
    prog = t.program
    assert float(t.values["h"]) == 9.0 and float(t.values["L"]) == 81.0
    assert float(t.grads["h"]) == 9.0  # 2 + 3 + 4 from three consumers
    assert float(t.grads["x"]) == 54.0  # mul(x, x): 9 * x + 9 * x
    h_parts = prog.contributions[prog.by_name()["h"]]
    assert sorted(float(t.by_id[c]) for _, c in h_parts) == [2.0, 3.0, 4.0]
    x_parts = prog.contributions[prog.by_name()["x"]]
    assert [float(t.by_id[c]) for _, c in x_parts] == [27.0, 27.0]
    sums = [n for n in prog if n.op == "accumulate"]
    assert sorted(n.attrs["n"] for n in sums) == [2, 3]
    # at x = -2 the same graph gives dL/dx = 9 * 2x = -36
    assert float(trace_of("multiple_uses.json", x=-2.0).grads["x"]) == -36.0


# ---- worked examples 2 and 3: parameter counts ----------------------------------------

def check_total(spec: str) -> int:
    r = CliRunner().invoke(cli, ["check", str(EXAMPLES / spec)])
    assert r.exit_code == 0, r.output
    m = re.search(r"^\s+total\s+([\d,]+)\s*$", r.output, re.M)
    assert m, r.output
    return int(m.group(1).replace(",", ""))


def test_parameter_count_formula():
    d, H, K, L = 100 * 100, 300, 1000, 10
    p = d * H + (L - 1) * H**2 + H * K
    assert (d * H, (L - 1) * H**2, H * K, p) == (3_000_000, 810_000, 300_000, 4_110_000)
    assert check_total("param_count.json") == p
    m = graphc.compile(EXAMPLES / "param_count.json", backend="numpy")
    sizes = {k: v.size for k, v in m.params.items()}
    assert sum(sizes.values()) == p
    assert sizes["h1.W"] == d * H and sizes["logits.W"] == H * K
    assert sum(v for k, v in sizes.items() if k not in ("h1.W", "logits.W")) == (L - 1) * H**2
    assert not any(k.endswith(".b") for k in sizes)  # the lectures ignore biases


def test_mnist_mlp_parameter_count():
    assert check_total("mnist_mlp.json") == 203_530
    m = graphc.compile(EXAMPLES / "mnist_mlp.json", backend="numpy")
    assert sum(v.size for v in m.params.values()) == 784 * 256 + 256 + 256 * 10 + 10 == 203_530


# ---- worked example 4: convolution shapes ---------------------------------------------

def test_convolution_shapes():
    """3 x 32 x 32 images and 6 filters 3 x 5 x 5: 2 x 6 x 28 x 28 maps, 456 params."""
    assert check_total("conv_shapes.json") == 6 * (3 * 5 * 5 + 1) == 456
    r = CliRunner().invoke(cli, ["check", str(EXAMPLES / "conv_shapes.json")])
    assert re.search(r"^\s+maps\s+float\[2, 6, 28, 28\]\s*$", r.output, re.M), r.output
    m = graphc.compile(EXAMPLES / "conv_shapes.json", backend="numpy", dtype="float64")
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32))
    maps = m.forward(x=x)["maps"]
    assert maps.shape == (2, 6, 28, 28)
    w, b = m.params["maps.W"], m.params["maps.b"]
    # one output number is the 75-dimensional dot product of a filter and a patch, + bias
    assert maps[1, 4, 10, 7] == pytest.approx(np.dot(w[4].ravel(),
                                                     x[1, :, 10:15, 7:12].ravel()) + b[4])
    one = graphc.compile({**json.loads((EXAMPLES / "conv_shapes.json").read_text()),
                          "nodes": [{"id": "maps", "op": "conv", "inputs": ["x"],
                                     "attrs": {"filters": 1, "kernel_size": 5}}]},
                         backend="numpy")
    assert one.forward(x=x)["maps"].shape[1:] == (1, 28, 28)


# ---- worked example 5: L1 versus L2 ----------------------------------------------------

L1_L2_TABLE = [  # w, sum |w|, sum w^2 (rows of the lectures' table; w exact)
    ((3.0, 0.25, 0.5), 3.75, 9.31),
    ((5.0, -2.0, -1.0), 8.0, 30.0),
    ((10 / 3, 0.0, 0.0), 3.33, 11.11),
    ((30 / 14, 20 / 14, 10 / 14), 4.29, 7.14),
]


@pytest.fixture(scope="module")
def penalty_model():
    return graphc.compile(EXAMPLES / "penalty_l2.json", backend="numpy", dtype="float64")


@pytest.mark.parametrize("w,l1,l2", L1_L2_TABLE)
def test_l1_l2_table_row(penalty_model, w, l1, l2):
    penalty_model.params["w"] = np.array(w)
    out = penalty_model.forward()
    assert two(out["q"]) == 10.0  # every row solves 3 w1 + 2 w2 + w3 = 10
    assert two(out["l1"]) == l1
    assert two(out["l2"]) == l2


def test_l1_prefers_the_sparse_row_and_l2_the_spread_one(penalty_model):
    l1s, l2s = [], []
    for w, _, _ in L1_L2_TABLE:
        penalty_model.params["w"] = np.array(w)
        out = penalty_model.forward()
        l1s.append(float(out["l1"]))
        l2s.append(float(out["l2"]))
    assert int(np.argmin(l1s)) == 2  # (10/3, 0, 0)
    assert int(np.argmin(l2s)) == 3  # 10 x / |x|^2


@pytest.mark.parametrize("kind,loss,grad", [
    ("l1", 0.1 * 3.75, [0.1, 0.1, 0.1]),  # C sign(w)
    ("l2", 0.1 * 9.3125, [0.6, 0.05, 0.1]),  # 2 C w
])
def test_penalized_loss_and_gradient(kind, loss, grad):
    m = graphc.compile(EXAMPLES / f"penalty_{kind}.json", backend="numpy", dtype="float64")
    value, grads = m.grad()  # at the first row the fit is exact, so only C * penalty is left
    assert value == pytest.approx(loss)
    np.testing.assert_allclose(grads["w"], grad, atol=1e-12)


@pytest.mark.parametrize("kind", ["l1", "l2"])
def test_training_with_each_penalty_lands_near_its_point(kind):
    """Gradient descent from the first row: L1 goes to the sparse solution, L2 to the
    direction of x. Exactly, the minima are (10/3 - C/9, 0, 0) and 10 x / (14 + 2C)."""
    m = graphc.compile(EXAMPLES / f"penalty_{kind}.json", backend="numpy", dtype="float64")
    opt = SGD(lr=0.02)  # the spec's "train" settings
    for _ in range(2000):
        m.train_step(opt)
    w = m.params["w"]
    if kind == "l1":  # subgradient steps keep w2, w3 jittering around 0 by about lr * C
        np.testing.assert_allclose(w, [10 / 3 - 0.1 / 9, 0, 0], atol=0.01)
        np.testing.assert_allclose(w, [3.33, 0, 0], atol=0.015)
    else:
        np.testing.assert_allclose(w, 10 * np.array([3, 2, 1]) / 14.2, atol=1e-3)
        np.testing.assert_allclose(w, [2.14, 1.43, 0.71], atol=0.04)


# ---- worked example 6: Swish and GELU --------------------------------------------------

X = np.linspace(-6, 6, 241)


def activation_graph(beta: float):
    b = graphc.Builder("swish and gelu")
    x = b.input("x", [len(X)])
    outs = [
        b.name("gelu_sigmoid", F.gelu(x, approximate="sigmoid")),
        b.name("by_formula", x * F.sigmoid(1.702 * x)),
        b.name("gelu", F.gelu(x)),
        b.name("swish", F.swish(x, beta=beta)),
        b.name("relu", F.relu(x)),
        b.name("silu", F.silu(x)),
        b.name("swish1", F.swish(x)),
    ]
    total = b.name("total", F.sum(F.concat(*outs)))
    return graphc.compile(b.build(outputs=outs, loss=total), backend="numpy", dtype="float64")


def test_gelu_sigmoid_is_x_sigmoid_1702x():
    m = activation_graph(1.0)
    out = m.forward(x=X)
    np.testing.assert_allclose(out["gelu_sigmoid"], out["by_formula"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(out["gelu_sigmoid"], X / (1 + np.exp(-1.702 * X)), rtol=1e-12)
    # the approximation stays within 0.021 of the exact GELU x Φ(x)
    assert np.max(np.abs(out["gelu_sigmoid"] - out["gelu"])) < 0.021
    # and its derivative is the formula's derivative
    s = 1 / (1 + np.exp(-1.702 * X))
    t = m.trace(x=X)
    gid = t.program.by_name()["gelu_sigmoid"]
    deriv = [n.id for n in t.program
             if n.op == "gelu'" and n.attrs.get("approximate") == "sigmoid"]
    assert deriv and t.program[deriv[0]].args[0] == t.program[gid].args[0]
    np.testing.assert_allclose(t.by_id[deriv[0]], s * (1 + 1.702 * X * (1 - s)), rtol=1e-12)


def test_silu_is_swish_with_beta_one():
    out = activation_graph(1.0).forward(x=X)
    np.testing.assert_allclose(out["silu"], out["swish1"], rtol=1e-12)


def test_swish_approaches_relu_as_beta_grows():
    gaps = []
    for beta in (1.0, 10.0, 100.0, 1000.0):
        out = activation_graph(beta).forward(x=X)
        gaps.append(float(np.max(np.abs(out["swish"] - out["relu"]))))
        # max |x σ(βx) - relu(x)| = 0.2785 / β (at βx ≈ ±1.28)
        assert gaps[-1] <= 0.2785 / beta + 1e-12
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-3
    assert gaps[0] == pytest.approx(0.2785, abs=1e-3)


def test_activation_zoo_matches_the_lectures_formulas():
    t = trace_of("activations.json")
    x = t.values["x"]
    sig = 1 / (1 + np.exp(-x))
    expected = {
        "sigmoid": sig, "tanh": np.tanh(x), "relu": np.maximum(x, 0),
        "leaky_relu": np.where(x > 0, x, 0.1 * x), "prelu": np.where(x > 0, x, 0.25 * x),
        "elu": np.where(x > 0, x, np.exp(x) - 1), "swish": x * sig, "swish_learned": x * sig,
        "silu": x * sig, "gelu_sigmoid": x / (1 + np.exp(-1.702 * x)),
        "gelu": np.array([v * 0.5 * (1 + math.erf(v / math.sqrt(2))) for v in x]),
        "softplus": np.log1p(np.exp(x)), "mish": x * np.tanh(np.log1p(np.exp(x))),
    }
    for name, want in expected.items():
        np.testing.assert_allclose(t.values[name], want, rtol=1e-12, atol=1e-14, err_msg=name)
    # PReLU's slope and Swish's beta are learnable: the gradients of a sum of outputs
    assert float(t.grads["alpha"]) == pytest.approx(float(np.sum(np.minimum(x, 0))))
    assert float(t.grads["beta"]) == pytest.approx(float(np.sum(x * x * sig * (1 - sig))))


# ---- concepts: logistic regression, linear collapse ------------------------------------

def test_logistic_regression_starts_at_ln2():
    m = graphc.compile(EXAMPLES / "logistic_regression.json", backend="numpy", dtype="float64")
    loss, grads = m.grad()
    assert loss == pytest.approx(math.log(2))
    assert float(grads["b"]) == pytest.approx(0.25)  # mean(p - y) = (4 * 0.5 - 1) / 4
    np.testing.assert_allclose(grads["w"], [0.0, 0.0], atol=1e-15)


def test_two_linear_layers_collapse_into_one():
    out = graphc.compile(EXAMPLES / "linear_collapse.json", backend="numpy",
                         dtype="float64").forward()
    np.testing.assert_allclose(out["y"], out["y_one"], rtol=1e-12)
    assert out["y"].shape == (2, 2) and np.abs(out["y"]).max() > 0.1


# ---- worked example 7: momentum as a moving average ------------------------------------

def momentum_path(samples: np.ndarray, beta: float) -> np.ndarray:
    """V_t of SGD(momentum=beta, dampening=beta), read off the param's steps (lr = 1)."""
    opt = SGD(lr=1.0, momentum=beta, dampening=beta)
    p = {"theta": np.zeros(1)}
    out = []
    for s in samples:
        before = p["theta"].copy()
        opt.step(p, {"theta": np.array([s])})
        out.append(float(before[0] - p["theta"][0]))  # theta <- theta - alpha V_t
    return np.array(out)


def test_momentum_is_the_lectures_moving_average():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 2 * np.pi, 200)
    samples = np.cos(t) + rng.normal(0, 0.5, t.size)
    roughness = []
    for beta in (0.5, 0.9, 0.98):
        v = momentum_path(samples, beta)
        ema = [samples[0]]  # PyTorch (and graphc) start the buffer at the first gradient
        for s in samples[1:]:
            ema.append(beta * ema[-1] + (1 - beta) * s)
        np.testing.assert_allclose(v, ema, rtol=1e-12, atol=1e-12)
        roughness.append(float(np.std(np.diff(v))))
    # higher beta smooths more
    assert roughness[0] > roughness[1] > roughness[2]
    assert roughness[2] < 0.1 * float(np.std(np.diff(samples)))
