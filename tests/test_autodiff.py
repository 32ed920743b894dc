"""Ahead-of-time reverse mode: forks sum, broadcasts reduce, nothing extra is built."""

import numpy as np
import pytest

import graphc
from graphc.passes import differentiate, forward_program, grad_program


def spec(nodes, inputs=None, params=None, outputs=None, loss="L"):
    s = {"graphc": 1, "name": "t", "inputs": inputs or {"x": {"shape": [3]}},
         "nodes": nodes, "outputs": outputs or [nodes[-1]["id"]], "loss": loss}
    if params:
        s["params"] = params
    return s


def test_fork_gradient_is_an_explicit_sum(examples):
    model = graphc.compile(examples / "fork.json", backend="numpy", dtype="float64")
    t = model.trace()
    assert t.grads["a"] == pytest.approx(5.0)  # 2 from b = 2a, 3 from c = 3a
    prog = t.program
    a = prog.inputs["a"]
    acc = prog[prog.grad_map[a]]
    assert acc.op == "accumulate" and len(acc.args) == 2
    parts = sorted(float(t.by_id[c]) for _, c in prog.contributions[a])
    assert parts == [2.0, 3.0]


def test_repeated_operand_counts_twice():
    s = spec([{"id": "sq", "op": "mul", "inputs": ["x", "x"]},
              {"id": "L", "op": "sum", "inputs": ["sq"]}])
    x = np.array([1.0, -2.0, 3.0])
    _, g = graphc.compile(s, backend="numpy", dtype="float64").grad(wrt=["x"], x=x)
    np.testing.assert_allclose(g["x"], 2 * x)


def test_three_consumers_and_a_diamond():
    s = spec([{"id": "a", "op": "exp", "inputs": ["x"]},
              {"id": "b", "op": "mul", "inputs": ["a", "x"]},
              {"id": "c", "op": "tanh", "inputs": ["a"]},
              {"id": "d", "op": "add", "inputs": ["b", "c"]},
              {"id": "e", "op": "mul", "inputs": ["d", "a"]},
              {"id": "L", "op": "sum", "inputs": ["e"]}])
    x = np.array([0.1, -0.4, 0.7])
    _, g = graphc.compile(s, backend="numpy", dtype="float64").grad(wrt=["x"], x=x)
    a = np.exp(x)
    # L = (a x + tanh a) a; dL/dx = a'(x)(dL/da) + a*a with a' = a
    dLda = (x + (1 - np.tanh(a) ** 2)) * a + (a * x + np.tanh(a))
    np.testing.assert_allclose(g["x"], dLda * a + a * a, rtol=1e-12)
    prog = grad_program(forward_program(graphc.load(s)), ["x"])
    a_id = prog.by_name()["a"]
    assert prog[prog.grad_map[a_id]].op == "accumulate"
    assert len(prog[prog.grad_map[a_id]].args) == 3


def test_broadcast_operand_gets_a_sum_to_node():
    s = spec([{"id": "y", "op": "add", "inputs": ["X", "b"]},
              {"id": "L", "op": "sum", "inputs": ["y"]}],
             inputs={"X": {"shape": ["B", 3]}}, params={"b": {"shape": [3], "init": "zeros"}})
    prog = grad_program(forward_program(graphc.load(s)), keep_outputs=False)
    gb = prog[prog.grads["b"]]
    assert gb.op == "sum_to" and gb.shape == (3,)
    _, g = graphc.compile(s, backend="numpy").grad(X=np.ones((5, 3)))
    np.testing.assert_allclose(g["b"], [5, 5, 5])


def test_only_what_requested_gradients_need_is_built():
    s = spec([{"id": "h", "op": "dense", "inputs": ["x"], "attrs": {"units": 4}},
              {"id": "L", "op": "sum", "inputs": ["h"]}], inputs={"x": {"shape": ["B", 3]}})
    fwd = forward_program(graphc.load(s))
    params_only = grad_program(fwd, keep_outputs=False)
    with_x = grad_program(fwd, ["x"], keep_outputs=False)
    assert len(params_only) < len(with_x)
    x_id = fwd.inputs["x"]
    assert x_id not in params_only.grad_map and x_id in with_x.grad_map


def test_unconnected_param_gets_zero_gradient():
    s = spec([{"id": "L", "op": "sum", "inputs": ["x"]}],
             params={"unused": {"shape": [2, 2], "init": "ones"}})
    _, g = graphc.compile(s, backend="numpy").grad(x=np.ones(3))
    np.testing.assert_array_equal(g["unused"], np.zeros((2, 2)))


def test_backward_graph_is_made_of_registered_ops_and_revalidates():
    m = graphc.compile(graphc.load(spec(
        [{"id": "h", "op": "dense", "inputs": ["x"], "attrs": {"units": 4, "activation": "gelu"}},
         {"id": "p", "op": "softmax", "inputs": ["h"]},
         {"id": "L", "op": "cross_entropy", "inputs": ["h", "y"]}],
        inputs={"x": {"shape": ["B", 3]}, "y": {"shape": ["B"], "dtype": "int64"}})),
        backend="numpy")
    prog = m.grad_program(["x"])
    from graphc.ops import REGISTRY
    for node in prog:
        assert node.op in REGISTRY or node.op in ("input", "param", "const")
        for a in node.args:
            assert list(prog.nodes).index(a) < list(prog.nodes).index(node.id), "schedule order"
        if node.op in REGISTRY:  # every node's shape is what its op's rule says
            op = REGISTRY[node.op]
            assert tuple(op.shape([prog[a].shape for a in node.args], dict(node.attrs))) \
                == node.shape


def test_errors_when_nothing_to_differentiate():
    s = spec([{"id": "y", "op": "exp", "inputs": ["x"]}], loss=None)
    del s["loss"]
    with pytest.raises(graphc.SpecError, match="no loss"):
        differentiate(forward_program(graphc.load(s)))
    s2 = spec([{"id": "L", "op": "cross_entropy", "inputs": ["z", "y"]}],
              inputs={"z": {"shape": [2, 3]}, "y": {"shape": [2], "dtype": "int64"}})
    m = graphc.compile(s2, backend="numpy")
    with pytest.raises(graphc.SpecError, match="integer input 'y'"):
        m.grad(wrt=["y"], z=np.zeros((2, 3)), y=[0, 1])
    with pytest.raises(graphc.SpecError, match="did you mean 'z'"):
        m.grad(wrt=["zz"], z=np.zeros((2, 3)), y=[0, 1])


def test_trace_records_forward_then_backward_in_order(examples):
    t = graphc.compile(examples / "neuron.json", backend="numpy").trace()
    phases = [p for p, _ in t.steps]
    assert phases == sorted(phases, key=lambda p: p != "forward")
    assert phases.count("backward") >= 5
    forward_names = [t.program[i].name for p, i in t.steps if p == "forward"]
    assert forward_names.index("t0") < forward_names.index("f")


def test_simplify_drops_multiplications_by_the_seed(examples):
    """The backward graph of the neuron reads like the lecture's: no `1 *` steps."""
    t = graphc.compile(examples / "neuron.json", backend="numpy").trace()
    prog = t.program
    for node in prog:
        if node.op == "mul":
            assert not any(prog[a].op == "const" and prog[a].attrs["value"] == 1.0
                           for a in node.args), node.describe()
    assert round(float(t.grads["w0"]), 2) == -0.20
