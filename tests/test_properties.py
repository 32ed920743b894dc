"""Property-based tests: broadcasting shapes and small random graphs, against NumPy and
central differences (float64)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import graphc

BINARY = ["add", "sub", "mul", "div", "maximum", "pow"]
UNARY = ["tanh", "sigmoid", "exp", "square", "softplus", "silu", "neg", "gelu"]


def finite_difference(model, name, base, values, eps=1e-6):
    out = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        plus, minus = base.copy(), base.copy()
        plus[idx] += eps
        minus[idx] -= eps
        out[idx] = (model.grad(**{**values, name: plus})[0]
                    - model.grad(**{**values, name: minus})[0]) / (2 * eps)
    return out


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(BINARY),
       shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       seed=st.integers(0, 2**16))
def test_broadcasting_binary_ops(op, shapes, seed):
    (sa, sb), out = shapes.input_shapes, shapes.result_shape
    rng = np.random.default_rng(seed)
    a = np.asarray(rng.uniform(0.5, 2.0, sa))
    b = np.asarray(rng.uniform(0.5, 2.0, sb) + (3.0 if op == "maximum" else 0.0)
                   * rng.integers(0, 2, sb))
    spec = {"graphc": 1, "name": "bc", "inputs": {"a": {"shape": list(sa)},
                                                 "b": {"shape": list(sb)}},
            "nodes": [{"id": "y", "op": op, "inputs": ["a", "b"]},
                      {"id": "w", "op": "mul", "inputs": ["y", "c"]},
                      {"id": "L", "op": "sum", "inputs": ["w"]}],
            "outputs": ["y"], "loss": "L"}
    spec["inputs"]["c"] = {"shape": list(out)}
    c = np.asarray(rng.normal(size=out))
    m = graphc.compile(spec, backend="numpy", dtype="float64")
    assert m.forward(a=a, b=b, c=c)["y"].shape == out
    _, g = m.grad(wrt=["a", "b"], a=a, b=b, c=c)
    vals = {"a": a, "b": b, "c": c}
    for k in ("a", "b"):
        assert g[k].shape == vals[k].shape
        np.testing.assert_allclose(g[k], finite_difference(m, k, vals[k], vals),
                                   rtol=1e-5, atol=1e-7)


@st.composite
def random_graphs(draw):
    """A random DAG over a [2, 3] input and a [3] param: every node reads one or two
    earlier values, so forks and reuse happen often."""
    n = draw(st.integers(2, 8))
    names, nodes = ["x", "w"], []
    for i in range(n):
        if draw(st.booleans()):
            op = draw(st.sampled_from(["add", "mul", "sub"]))
            args = [draw(st.sampled_from(names)), draw(st.sampled_from(names))]
        else:
            op = draw(st.sampled_from(UNARY))
            args = [draw(st.sampled_from(names))]
        nodes.append({"id": f"n{i}", "op": op, "inputs": args})
        names.append(f"n{i}")
    # the loss reads several values, so that many paths lead to it
    tail = draw(st.lists(st.sampled_from(names[2:]), min_size=1, max_size=3))
    for j, t in enumerate(tail):
        nodes.append({"id": f"s{j}", "op": "mean" if j % 2 else "sum", "inputs": [t]})
    total = "s0"
    for j in range(1, len(tail)):
        nodes.append({"id": f"t{j}", "op": "add", "inputs": [total, f"s{j}"]})
        total = f"t{j}"
    nodes.append({"id": "L", "op": "tanh", "inputs": [total]})
    return {"graphc": 1, "name": "random", "inputs": {"x": {"shape": [2, 3]}},
            "params": {"w": {"shape": [3], "init": "normal"}}, "nodes": nodes,
            "outputs": ["L"], "loss": "L"}


@settings(max_examples=30, deadline=None)
@given(spec=random_graphs(), seed=st.integers(0, 2**16))
def test_random_graphs_match_finite_differences(spec, seed):
    x = np.random.default_rng(seed).uniform(-1, 1, (2, 3))
    m = graphc.compile(spec, backend="numpy", dtype="float64")
    _, g = m.grad(wrt=["x"], x=x)
    np.testing.assert_allclose(g["x"], finite_difference(m, "x", x, {"x": x}),
                               rtol=1e-4, atol=1e-6)
    w = m.params["w"].copy()

    def loss_at(wv):
        m.params["w"] = wv
        return m.grad(x=x)[0]

    num = np.array([(loss_at(w + e) - loss_at(w - e)) / 2e-6 for e in np.eye(3) * 1e-6])
    m.params["w"] = w
    np.testing.assert_allclose(g["w"], num, rtol=1e-4, atol=1e-6)
