"""The passes against facts worked out by hand on tiny graphs (no torch): which node holds
which gradient, the axes a broadcast gradient is summed over, what simplify and prune
leave. Written to kill the mutants benchmarks/mutation.py found surviving (docs/testing.md)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.passes import differentiate
from graphc.passes.pipeline import forward_program


def spec(inputs: dict, nodes: list, loss: str, outputs=None) -> dict:
    return {"graphc": 1, "name": "t", "inputs": {k: {"shape": list(v)} for k, v in
                                                  inputs.items()},
            "nodes": [{"id": i, "op": op, "inputs": list(args), **({"attrs": a} if a else {})}
                      for i, op, args, a in nodes],
            "outputs": outputs or [loss], "loss": loss}


def program(s: dict):
    return forward_program(graphc.load(s), training=True)


def test_every_gradient_node_names_its_forward_node():
    """grad_of ties a backward node to the forward value whose gradient it holds (the
    diagrams and traces draw it there); the seed gradient, the constant 1, ties to none."""
    s = spec({"a": [2, 3], "b": [2, 3]},
             [("p", "mul", ["a", "b"], None), ("q", "exp", ["p"], None),
              ("L", "sum", ["q"], None)], "L")
    prog = differentiate(program(s), wrt=["a", "b"])
    marked = {n.grad_of: n.id for n in prog if n.grad_of is not None}
    for fwd, grad in prog.grad_map.items():
        if prog[grad].op == "const":
            assert prog[grad].grad_of is None, fwd
        else:
            assert prog[grad].grad_of == fwd, (fwd, grad)
    ids = {n.name: n.id for n in prog if n.name is not None and n.grad_of is None}
    assert set(marked) == {ids[k] for k in "abpq"}  # inputs and intermediates, not the loss
    assert prog[prog.grad_map[prog.loss]].op == "const"


@pytest.mark.parametrize("a_shape,b_shape", [
    ((1, 3, 5), (3, 1)),  # b: a leading axis added and its last axis broadcast
    ((2, 3, 5), (1, 5)),  # b: the leading axis and its size-1 axis
    ((4, 1, 3), (2, 1)),  # both broadcast
])
def test_broadcast_gradient_is_summed_back_by_hand(a_shape, b_shape):
    """d/db sum(a * b) = a summed over every axis b was broadcast along, in b's shape."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=a_shape), rng.normal(size=b_shape)
    s = spec({"a": a_shape, "b": b_shape},
             [("p", "mul", ["a", "b"], None), ("L", "sum", ["p"], None)], "L")
    m = graphc.compile(s, backend="numpy", dtype="float64")
    _, grads = m.grad(wrt=["a", "b"], a=a, b=b)
    full = np.broadcast_shapes(a_shape, b_shape)
    want_b = np.broadcast_to(a, full)
    lead = len(full) - len(b_shape)
    want_b = want_b.sum(axis=tuple(range(lead)))
    want_b = want_b.sum(axis=tuple(i for i, d in enumerate(b_shape) if d == 1), keepdims=True)
    want_a = np.broadcast_to(b, full).sum(
        axis=tuple(range(len(full) - len(a_shape))))
    want_a = want_a.sum(axis=tuple(i for i, d in enumerate(a_shape) if d == 1), keepdims=True)
    assert grads["b"].shape == b_shape and grads["a"].shape == a_shape
    np.testing.assert_allclose(grads["b"], want_b, rtol=1e-12)
    np.testing.assert_allclose(grads["a"], want_a, rtol=1e-12)


def _pipeline(s: dict):
    from graphc.passes import grad_program
    fwd = program(s)
    return fwd, grad_program(fwd, wrt=list(fwd.inputs), keep_outputs=False)


def test_simplify_drops_the_seed_times_one_and_keeps_gradients_marked():
    """L = sigmoid(x), x a scalar: dL/dx = 1 * (y (1 - y)); simplify drops the `* 1`, so
    the gradient is the node y (1 - y), which now holds x's gradient (grad_of = x)."""
    fwd, prog = _pipeline(spec({"x": []}, [("L", "sigmoid", ["x"], None)], "L"))
    x = fwd.inputs["x"]
    g = prog[prog.grads["x"]]
    assert g.op == "mul" and {prog[a].op for a in g.args} == {"sigmoid", "sub"}  # y (1 - y)
    assert g.grad_of == x and prog.grad_map[x] == g.id
    for n in prog:
        if n.op == "mul":
            assert all(prog[a].op != "const" or prog[a].attrs["value"] != 1.0
                       for a in n.args), n


def test_a_forward_value_that_is_a_gradient_stays_a_forward_value():
    """L = exp(x): dL/dx = 1 * exp(x) is the forward value L itself. It is x's gradient
    (grads, grad_map) but stays a forward node: no grad_of, its name kept; and grad_map
    names only nodes that prune kept."""
    fwd, prog = _pipeline(spec({"x": []}, [("L", "exp", ["x"], None)], "L"))
    x = fwd.inputs["x"]
    assert prog.grads["x"] == prog.loss == prog.grad_map[x]
    assert all(n.grad_of is None for n in prog if n.name is not None)
    assert [n.op for n in prog] == ["input", "exp"]  # the seed and the `* 1` are gone
    assert set(prog.grad_map.values()) <= set(prog.nodes), prog.grad_map
    m = graphc.compile(spec({"x": []}, [("L", "exp", ["x"], None)], "L"), backend="numpy",
                       dtype="float64")
    loss, grads = m.grad(wrt=["x"], x=np.array(0.5))
    assert float(grads["x"]) == pytest.approx(np.exp(0.5)) == float(loss)


def test_neg_of_neg_in_the_backward_graph_is_removed():
    """L = sum(-(-x)): the backward pass negates g twice; simplify passes g straight on."""
    s = spec({"x": [3]}, [("a", "neg", ["x"], None), ("b", "neg", ["a"], None),
                          ("L", "sum", ["b"], None)], "L")
    fwd, prog = _pipeline(s)
    backward = [n for n in prog if n.id not in fwd.nodes]
    assert [n.op for n in backward] == ["const", "expand_dims", "expand"]
    assert prog.grads["x"] == backward[-1].id
    assert set(prog.grad_map.values()) <= set(prog.nodes)
    m = graphc.compile(s, backend="numpy", dtype="float64")
    np.testing.assert_array_equal(m.grad(wrt=["x"], x=np.arange(3.0))[1]["x"], np.ones(3))


def test_lower_gives_each_spec_node_one_node_and_passes_through_unchanged_values():
    """A one-node op lowers to that node under the spec's id, nothing added; dropout with
    p = 0 returns its input, so lower adds y = x + 0 to give the spec's name a node."""
    prog = program(spec({"x": [2, 3]}, [("y", "relu", ["x"], None), ("L", "sum", ["y"], None)],
                        "L", outputs=["y"]))
    assert [(n.op, n.name) for n in prog] == [("input", "x"), ("relu", "y"), ("sum", "L")]
    s = spec({"x": [2, 3]}, [("y", "dropout", ["x"], {"p": 0.0}), ("L", "sum", ["y"], None)],
             "L", outputs=["y"])
    prog = program(s)
    y = prog[prog.outputs["y"]]
    assert y.op == "add" and prog[y.args[1]].op == "const"
    assert prog[y.args[1]].attrs["value"] == 0.0
    x = np.arange(6.0).reshape(2, 3)
    m = graphc.compile(s, backend="numpy", dtype="float64")
    np.testing.assert_array_equal(m.forward(x=x)["y"], x)


@pytest.mark.parametrize("op,a,b,axes", [
    ("mul", ["B"], ["B", 1], "0 and 1"),
    ("add", ["B", 1, 3], ["B", 1], "0 and 1"),   # right-aligned: [B, 1, 3] with [1, B, 1]
    ("sub", [3, "B", 1], ["B"], "1 and 2"),
    ("add", ["B", "B"], ["B"], None),            # an operand has B on both axes already
    ("mul", ["B", "B"], ["B", "B"], None),
    ("add", ["B", 3], ["B", 1], None),           # B on one axis only
    ("matmul", ["B", 3], [3, "B"], None),        # not elementwise: a [B, B] product is meant
])
def test_squared_broadcasts_by_hand(op, a, b, axes):
    from graphc.passes.broadcast_check import squared_broadcasts

    prog = forward_program_quiet(spec({"a": a, "b": b},
                                      [("y", op, ["a", "b"], None), ("L", "sum", ["y"], None)],
                                      "L"))
    found = squared_broadcasts(prog)
    if axes is None:
        assert found == []
    else:
        (message,) = found
        assert f"node 'y' ({op}): a [{', '.join(map(str, a))}] and b " \
               f"[{', '.join(map(str, b))}] broadcast to " in message, message
        assert f"so dimension B stands on axes {axes};" in message


def forward_program_quiet(s: dict):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return program(s)


def test_a_layers_internals_are_numbered_per_op():
    """Inside a layer the k-th node of an op is `<layer>.<op>`, then `_1`, `_2`, ..."""
    s = spec({"x": ["B", 3]}, [("bn", "batch_norm", ["x"], None), ("L", "sum", ["bn"], None)],
             "L")
    from graphc.passes.lower import lower

    names = [n.name for n in lower(graphc.load(s)) if n.name and n.name.startswith("bn.")]
    by_op: dict[str, list[str]] = {}
    for name in names:
        op = name.split(".", 1)[1].split("_")[0] if name[-1].isdigit() else name.split(".", 1)[1]
        by_op.setdefault(op, []).append(name)
    repeated = {op: ns for op, ns in by_op.items() if len(ns) > 1}
    assert repeated  # batch norm repeats ops (mul, sub, ...): the numbering is exercised
    for op, ns in repeated.items():
        assert ns == [f"bn.{op}"] + [f"bn.{op}_{k}" for k in range(1, len(ns))], ns


def test_pipeline_specializes_only_when_asked_and_keeps_what_it_promises():
    from graphc.passes import grad_program

    s = spec({"x": ["B", 3]}, [("d", "dropout", ["x"], {"p": 0.5}), ("L", "sum", ["d"], None)],
             "L")
    assert forward_program(graphc.load(s), training=True).mode is None  # fixed: a constant
    assert forward_program(graphc.load(s)).mode is not None  # training=None: stays a node
    # grad_program's defaults: outputs kept (keep_outputs=True), not every value (keep_all)
    s = spec({"x": []}, [("L", "exp", ["x"], None), ("z", "neg", ["x"], None)], "L",
             outputs=["L", "z"])
    fwd = program(s)
    prog = grad_program(fwd, wrt=["x"])
    assert fwd.outputs["z"] in prog.nodes  # off the loss's path, kept as an output
    assert all(n.op != "const" for n in prog)  # the seed 1 is not needed once simplified
    assert any(n.op == "const" for n in grad_program(fwd, wrt=["x"], keep_all=True))


def test_a_fork_keeps_each_consumers_contribution():
    """x feeds two nodes: its gradient is the Σ of two contributions, both kept (traces and
    the backward diagram show them), each a node of the pruned program."""
    from graphc.passes import grad_program

    s = spec({"x": [3]}, [("p", "exp", ["x"], None), ("q", "mul", ["x", "p"], None),
                          ("L", "sum", ["q"], None)], "L")
    fwd = program(s)
    for keep_all in (False, True):
        prog = grad_program(fwd, wrt=["x"], keep_all=keep_all)
        x = fwd.inputs["x"]
        parts = prog.contributions[x]
        ids = {n.name: n.id for n in fwd if n.name}
        assert sorted(c for c, _ in parts) == sorted([ids["p"], ids["q"]])  # the consumers
        assert len(parts) == 2 and all(g in prog.nodes for _, g in parts), parts
        assert prog[prog.grads["x"]].op == "accumulate"
        assert set(prog[prog.grads["x"]].args) == {g for _, g in parts}


@pytest.mark.parametrize("ref", ["nothere.W", "h.W", "a.b.c"])
def test_a_dotted_name_that_is_no_layers_is_an_unknown_name(ref):
    """`fc1.W` names a layer's param; a dotted name whose head is no layer (unknown, or a
    plain op) is reported as unknown, by validate, with the place and a hint."""
    from graphc.errors import SpecError

    s = spec({"x": [2]}, [("h", "relu", ["x"], None), ("y", "add", ["x", ref], None),
                          ("L", "sum", ["y"], None)], "L")
    with pytest.raises(SpecError, match=rf"unknown name '{ref}'") as e:
        graphc.load(s)
    assert str(e.value).startswith("nodes[1] (id 'y').inputs[1]: ")  # validate's place


def test_a_layer_id_with_a_dot_still_owns_its_params():
    s = spec({"x": [2, 3]}, [("enc.fc", "dense", ["x"], {"units": 2}),
                             ("y", "add", ["enc.fc", "enc.fc.b"], None),
                             ("L", "sum", ["y"], None)], "L")
    m = graphc.compile(s, backend="numpy", dtype="float64")
    assert set(m.params) == {"enc.fc.W", "enc.fc.b"}
