"""Ops against values worked out by hand (no torch): what the PyTorch comparisons leave to
their arguments, such as each op's default attributes, which the torch tests always pass
explicitly. Written to kill mutants benchmarks/mutation.py found surviving (docs/testing.md)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import graphc


def one_op(op: str, shapes: dict, attrs: dict | None = None, loss_of: str = "y") -> dict:
    node = {"id": "y", "op": op, "inputs": list(shapes), **({"attrs": attrs} if attrs else {})}
    return {"graphc": 1, "name": op, "inputs": {k: {"shape": list(v)} for k, v in shapes.items()},
            "nodes": [node, {"id": "L", "op": "sum", "inputs": [loss_of]}],
            "outputs": ["y"], "loss": "L"}


def value_and_grad(op, feeds, attrs=None, backend="numpy"):
    m = graphc.compile(one_op(op, {k: np.shape(v) for k, v in feeds.items()}, attrs),
                       backend=backend, dtype="float64")
    y = m.forward(**feeds)["y"]
    _, grads = m.grad(wrt=list(feeds), **feeds)
    return y, grads


X = np.array([-2.0, -0.5, 0.5, 3.0])


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_activation_defaults_are_torchs(backend):
    """leaky_relu's slope defaults to 0.01 and elu's alpha to 1.0, as in torch.nn."""
    y, g = value_and_grad("leaky_relu", {"x": X}, backend=backend)
    np.testing.assert_allclose(y, [-0.02, -0.005, 0.5, 3.0], rtol=1e-15)
    np.testing.assert_allclose(g["x"], [0.01, 0.01, 1.0, 1.0], rtol=1e-15)
    y, g = value_and_grad("elu", {"x": X}, backend=backend)
    np.testing.assert_allclose(y, [math.expm1(-2.0), math.expm1(-0.5), 0.5, 3.0], rtol=1e-15)
    np.testing.assert_allclose(g["x"], [math.exp(-2.0), math.exp(-0.5), 1.0, 1.0], rtol=1e-14)


# ---- the compiled kernels of internal ops, by hand ------------------------------------------
# Gradients run ops no spec names (expand, sum_to, expand_dims, slice, one_hot); their cpu
# kernels are index expressions, checked here against numpy sums written out by hand.

def _merged():
    names = {"a": [2, 3], "a2": [2, 2], "c": [4, 1, 3], "d": [2, 1], "z": [2, 4],
             "ws": [2], "wc": [2, 5], "wm": [4, 2, 3], "wsm": [2, 4], "wls": [2, 4]}
    inputs = {k: {"shape": v} for k, v in names.items()}
    inputs["t"] = {"shape": [2], "dtype": "int64"}
    nodes = [("s", "sum", ["a"], {"axis": -1}), ("cat", "concat", ["a", "a2"], {"axis": 1}),
             ("m", "mul", ["c", "d"], None), ("sm", "softmax", ["z"], None),
             ("ls", "log_softmax", ["z"], None), ("ce", "cross_entropy", ["z", "t"], None)]
    terms = []
    for node, w in [("s", "ws"), ("cat", "wc"), ("m", "wm"), ("sm", "wsm"), ("ls", "wls")]:
        nodes += [(f"{node}_w", "mul", [node, w], None), (f"{node}_t", "sum", [f"{node}_w"], None)]
        terms.append(f"{node}_t")
    nodes.append(("L", "add", [terms[0], terms[1]], None))
    for k, term in enumerate([*terms[2:], "ce"]):
        nodes.append((f"L{k}", "add", ["L" if k == 0 else f"L{k - 1}", term], None))
    return {"graphc": 1, "name": "internals", "inputs": inputs,
            "nodes": [{"id": i, "op": op, "inputs": args, **({"attrs": a} if a else {})}
                      for i, op, args, a in nodes],
            "outputs": ["s", "cat", "m", "sm", "ls", "ce"], "loss": f"L{len(terms) - 2}"}


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_internal_ops_values_and_gradients_by_hand(backend):
    spec = _merged()
    rng = np.random.default_rng(3)
    f = {k: rng.normal(size=v["shape"]) for k, v in spec["inputs"].items() if k != "t"}
    f["t"] = np.array([3, 0])
    m = graphc.compile(spec, backend=backend, dtype="float64")
    out = m.forward(**f)
    _, g = m.grad(wrt=["a", "a2", "c", "d", "z"], **f)
    z = f["z"]
    e = np.exp(z - z.max(-1, keepdims=True))
    sm = e / e.sum(-1, keepdims=True)
    want = {"s": f["a"].sum(-1), "cat": np.hstack([f["a"], f["a2"]]), "m": f["c"] * f["d"],
            "sm": sm, "ls": np.log(sm), "ce": -np.log(sm[[0, 1], [3, 0]]).mean()}
    for k, w in want.items():
        np.testing.assert_allclose(out[k], w, rtol=1e-12, atol=1e-14, err_msg=k)
    wc, wm, wsm, wls = f["wc"], f["wm"], f["wsm"], f["wls"]
    onehot = np.eye(4)[f["t"]]
    grads = {"a": f["ws"][:, None] + wc[:, :3], "a2": wc[:, 3:],
             "c": (wm * f["d"]).sum(axis=1, keepdims=True),
             "d": (wm * f["c"]).sum(axis=(0, 2))[:, None],
             "z": sm * (wsm - (wsm * sm).sum(-1, keepdims=True))
             + wls - sm * wls.sum(-1, keepdims=True) + (sm - onehot) / 2}
    for k, w in grads.items():
        assert g[k].shape == w.shape, k
        np.testing.assert_allclose(g[k], w, rtol=1e-11, atol=1e-13, err_msg=f"grad {k}")


@pytest.mark.parametrize("labels,bad", [([0, 4], 4), ([-1, 2], -1), ([5, 1], 5)])
def test_out_of_range_labels_are_named(labels, bad):
    """one_hot's check: labels lie in 0..classes-1; the message names the first bad one."""
    from graphc.errors import InputError

    spec = {"graphc": 1, "name": "ce", "inputs": {"z": {"shape": ["B", 4]},
                                                 "t": {"shape": ["B"], "dtype": "int64"}},
            "nodes": [{"id": "ce", "op": "cross_entropy", "inputs": ["z", "t"]}],
            "outputs": ["ce"], "loss": "ce"}
    m = graphc.compile(spec, backend="numpy", dtype="float64")
    with pytest.raises(InputError, match=rf"label {bad} is out of range.*0\.\.3 for 4 classes"):
        m.grad(z=np.zeros((2, 4)), t=np.array(labels))
    loss, _ = m.grad(z=np.zeros((2, 4)), t=np.array([0, 3]))  # the edges are in range
    assert float(loss) == pytest.approx(math.log(4))


def test_numpy_backend_keeps_the_models_dtype_on_every_node():
    """Refs may compute in float64 (np.eye in one_hot, sizes); every float node of a
    float32 model is float32 in the trace, as the compiled backends' are."""
    spec = _merged()
    rng = np.random.default_rng(0)
    f = {k: rng.normal(size=v["shape"]).astype(np.float32)
         for k, v in spec["inputs"].items() if k != "t"}
    f["t"] = np.array([1, 2])
    m = graphc.compile(spec, backend="numpy", dtype="float32")
    t = m.trace(wrt=["z"], **f)
    assert t.values.pop("t").dtype == np.int64  # the labels stay integers
    assert len(t.values) > 20 and all(v.dtype == np.float32 for v in t.values.values()), {
        k: v.dtype for k, v in t.values.items() if v.dtype != np.float32}
    assert all(v.dtype == np.float32 for v in t.grads.values())


# ---- shape rules at their boundaries (what is just allowed, what just is not) ---------------

def _compiles(op, shapes, attrs=None):
    from graphc.errors import SpecError

    s = one_op(op, shapes, attrs)
    try:
        graphc.compile(s, backend="numpy")
    except SpecError:
        return False
    return True


@pytest.mark.parametrize("op,shapes,attrs,ok", [
    ("sum", {"x": [2, 3]}, {"axis": -2}, True), ("sum", {"x": [2, 3]}, {"axis": 1}, True),
    ("sum", {"x": [2, 3]}, {"axis": 2}, False), ("sum", {"x": [2, 3]}, {"axis": -3}, False),
    ("sum", {"x": [3]}, {"axis": 1}, False), ("sum", {"x": [3]}, {"axis": -1}, True),
    ("sum", {"x": []}, {"axis": 0}, True), ("sum", {"x": []}, {"axis": -1}, True),  # torch's
    ("sum", {"x": []}, {"axis": 1}, False), ("sum", {"x": []}, {"axis": -2}, False),
    ("matmul", {"a": [3], "b": []}, None, False), ("matmul", {"a": [], "b": [3]}, None, False),
    ("matmul", {"a": [3], "b": [3]}, None, True),
    ("reshape", {"x": [2, 3]}, {"shape": [-1, -1]}, False),
    ("reshape", {"x": [2, 3]}, {"shape": [-1, 3]}, True),
    ("reshape", {"x": ["B", 2]}, {"shape": [-1]}, False),  # 2B: not a dimension we can name
    ("reshape", {"x": ["B", 2]}, {"shape": [-1, 2]}, True),
    ("reshape", {"x": ["B", "T"]}, {"shape": [-1]}, False),  # B T: one -1 cannot name it
    ("reshape", {"x": [2, 3]}, {"shape": [-2, -3]}, False),
    ("concat", {"a": [2], "b": [3]}, {"axis": 0}, True),
    ("concat", {"a": [], "b": []}, {"axis": 0}, False),
    ("conv", {"x": ["B", 1, 4, 4]}, {"filters": 2, "kernel_size": 1}, True),
    ("conv", {"x": ["B", 1, 4, 4]}, {"filters": 2, "kernel_size": 0}, False),
    ("max_pool2d", {"x": ["B", 1, 4, 4]}, {"kernel_size": 2, "stride": 1}, True),
    ("max_pool2d", {"x": ["B", 1, 4, 4]}, {"kernel_size": 2, "stride": 0}, False),
    ("max_pool2d", {"x": ["B", 1, 4, 4]}, {"kernel_size": 2, "dilation": 0}, False),
    ("max_pool2d", {"x": ["B", 1, 4, 4]}, {"kernel_size": 0}, False),
])
def test_shape_rule_boundaries(op, shapes, attrs, ok):
    assert _compiles(op, shapes, attrs) is ok


def test_flatten_keeps_the_symbolic_dimension_where_it_stands():
    m = graphc.compile(one_op("flatten", {"x": [3, "B", 2, 2]}, {"start_axis": 2}),
                       backend="numpy", dtype="float64")
    assert m.program[m.program.outputs["y"]].shape == (3, "B", 4)
    x = np.arange(48.0).reshape(3, 4, 2, 2)
    np.testing.assert_array_equal(m.forward(x=x)["y"], x.reshape(3, 4, 4))


def test_dense_activations_are_the_one_input_activations_and_swish():
    from graphc.ops.composite import activations

    assert activations() == ["elu", "gelu", "leaky_relu", "mish", "relu", "sigmoid", "silu",
                             "softplus", "swish", "tanh"]  # prelu takes two inputs


def test_composite_defaults_by_hand():
    """swish's beta defaults to 1 (y = x sigmoid(x)); conv pads nothing by default."""
    y, g = value_and_grad("swish", {"x": X})
    s = 1 / (1 + np.exp(-X))
    np.testing.assert_allclose(y, X * s, rtol=1e-14)
    np.testing.assert_allclose(g["x"], s * (1 + X * (1 - s)), rtol=1e-13)
    m = graphc.compile(one_op("conv", {"x": ["B", 1, 5, 5]}, {"filters": 2, "kernel_size": 3}),
                       backend="numpy", dtype="float64")
    assert m.program[m.program.outputs["y"]].shape == ("B", 2, 3, 3)


# ---- the registry: attribute kinds, schemas, arity ------------------------------------------

@pytest.mark.parametrize("kind,value", [("int", "3"), ("int", True), ("str", 3), ("str", True),
                                        ("bool", 1), ("bool", "yes"), ("float", True)])
def test_an_attribute_of_the_wrong_kind_is_refused(kind, value):
    from graphc.ops.registry import Attr

    with pytest.raises(ValueError, match=f"must be an? {kind}, not"):
        Attr(kind).check(value)


def test_attribute_kinds_accept_their_own():
    from graphc.ops.registry import Attr

    assert Attr("int").check(3) == 3 and Attr("bool").check(False) is False
    assert Attr("str").check("x") == "x" and Attr("float").check(2) == 2.0
    assert Attr("str", "a", choices=("a", "b")).json_schema() == {"enum": ["a", "b"]}
    assert Attr("int", doc="n").json_schema() == {"type": "integer", "description": "n"}


def test_an_ops_kernel_code_cannot_be_changed_in_place():
    """Every model compiled in the process shares the registry's kernel code."""
    import dataclasses

    from graphc.ops import REGISTRY

    code = REGISTRY["conv2d"].opaque.code["cpu"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        code.source = "def other(): pass"


def test_variadic_ops_take_one_input_and_unknown_attributes_are_named():
    from graphc.errors import SpecError

    m = graphc.compile(one_op("concat", {"a": [2]}, {"axis": 0}), backend="numpy",
                       dtype="float64")
    np.testing.assert_array_equal(m.forward(a=np.array([1.0, 2.0]))["y"], [1.0, 2.0])
    with pytest.raises(SpecError, match="unknown attribute 'alpha' of op 'relu'.*attributes: none"):
        graphc.compile(one_op("relu", {"x": [2]}, {"alpha": 0.1}), backend="numpy")


# ---- random draws and modes --------------------------------------------------------------

def test_rng_key_is_the_documented_hash():
    """63 bits of blake2b(seed NUL node), little-endian: the same in every process."""
    import hashlib

    from graphc.ops.modes import rng_key

    digest = hashlib.blake2b(b"7\0drop", digest_size=8).digest()
    assert rng_key(7, "drop") == int.from_bytes(digest, "little") // 2
    assert rng_key(7, "drop") != rng_key(8, "drop") != rng_key(7, "other")


def test_dropout_gradient_is_the_mask_over_one_minus_p():
    """Training: y = x * mask / (1 - p), so with x = 1 the gradient of sum(y) is y itself:
    0 where dropped, 1 / (1 - p) = 2 where kept (a wrong branch of select gives 1)."""
    m = graphc.compile(one_op("dropout", {"x": [4, 50]}, {"p": 0.5}), backend="numpy",
                       dtype="float64")
    t = m.trace(wrt=["x"], training=True, x=np.ones((4, 50)))
    y, g = t.values["y"], t.grads["x"]
    assert set(np.unique(y)) == {0.0, 2.0}
    np.testing.assert_array_equal(g, y)


@pytest.mark.parametrize("ndim,ok", [(8, True), (9, False)])
def test_draws_have_at_most_eight_axes(ndim, ok):
    assert _compiles("dropout", {"x": [2] + [1] * (ndim - 2) + [3]}, {"p": 0.5}) is ok


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_gradient_of_a_sum_is_the_cotangent_spread_back(backend):
    """d/dx sum(x) = 1 everywhere and d/dx sum(x, axis=0) = g[None, :]: the gradient is an
    `expand` of the cotangent, materialized as the result (a kernel of its own on cpu)."""
    spec = {"graphc": 1, "name": "spread", "inputs": {"x": {"shape": [2, 3]},
                                                     "w": {"shape": [3]}},
            "nodes": [{"id": "s", "op": "sum", "inputs": ["x"], "attrs": {"axis": 0}},
                      {"id": "sw", "op": "mul", "inputs": ["s", "w"]},
                      {"id": "L", "op": "sum", "inputs": ["sw"]}],
            "outputs": ["s"], "loss": "L"}
    m = graphc.compile(spec, backend=backend, dtype="float64")
    w = np.array([1.0, -2.0, 3.0])
    _, g = m.grad(wrt=["x", "w"], x=np.arange(6.0).reshape(2, 3), w=w)
    np.testing.assert_array_equal(g["x"], np.broadcast_to(w, (2, 3)))
    np.testing.assert_array_equal(g["w"], [3.0, 5.0, 7.0])
    y, g = value_and_grad("sum", {"x": np.ones((2, 3))}, backend=backend)
    np.testing.assert_array_equal(g["x"], np.ones((2, 3)))


@pytest.mark.parametrize("shape", [[-1, -1], [-2, 3], [3, -1, -1]])
def test_reshape_names_what_its_shape_may_hold(shape):
    from graphc.errors import SpecError

    with pytest.raises(SpecError, match=r"may hold one -1 and otherwise sizes >= 0"):
        graphc.compile(one_op("reshape", {"x": [2, 3]}, {"shape": shape}), backend="numpy")


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_avg_pool_by_hand(backend):
    """2x2 windows, stride 2: each output the mean of its window, each input's gradient
    1/4 of its window's cotangent (here the cotangent of sum: 1)."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y, g = value_and_grad("avg_pool2d", {"x": x}, {"kernel_size": 2}, backend=backend)
    np.testing.assert_allclose(y, [[[[2.5, 4.5], [10.5, 12.5]]]], rtol=1e-15)
    np.testing.assert_allclose(g["x"], np.full((1, 1, 4, 4), 0.25), rtol=1e-15)


def test_pool_cost_is_per_pooled_element_and_tap():
    """The schedule's cost of a pool kernel: the pooled shape, and flops per element =
    flops per tap times the taps (kh kw); a gradient kernel's pooled shape is g's."""
    from graphc.ops import REGISTRY

    a = {"kernel_size": 3}
    shape, flops = REGISTRY["avg_pool2d"].opaque.flops([(1, 2, 9, 9)], (1, 2, 3, 3), a)
    assert tuple(shape) == (1, 2, 3, 3) and flops == 9
    shape, _ = REGISTRY["avg_pool2d_grad"].opaque.flops([(1, 2, 9, 9), (1, 2, 3, 3)],
                                                        (1, 2, 9, 9), a)
    assert tuple(shape) == (1, 2, 3, 3)


@pytest.mark.parametrize("x,w,attrs,out,scratch", [
    # stride 2: im2col columns [C/G·KH·KW, N·OH·OW] and product rows [F/G, N·OH·OW]
    ((2, 4, 9, 9), (6, 2, 3, 3), {"stride": 2, "groups": 2}, (2, 6, 4, 4),
     [(18, 32), (3, 32)]),
    # stride 1: the padded image [N, C·Hp·Wp], then N·((OH-1)·Wp + OW) columns
    ((2, 4, 5, 5), (6, 2, 3, 3), {"padding": 1, "groups": 2}, (2, 6, 5, 5),
     [(2, 196), (18, 66), (3, 66)]),
    ((1, 2, 6, 6), (4, 2, 3, 3), {"padding": 2, "dilation": 2}, (1, 4, 6, 6),
     [(1, 200), (18, 56), (4, 56)]),
    ((1, 2, 6, 7), (4, 2, 3, 3), {"padding": [2, 1], "dilation": [2, 1]}, (1, 4, 6, 7),
     [(1, 180), (18, 52), (4, 52)]),  # Hp = 6 + 2·2, Wp = 7 + 1·2
])
def test_conv_kernels_declare_their_cost_and_scratch_by_hand(x, w, attrs, out, scratch):
    """Each convolution kernel's declared work (2·C/G·KH·KW operations per element of the
    convolution's output, or of g for the gradients) and its scratch shapes, by hand."""
    from graphc.ops import REGISTRY

    a = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, **attrs}
    assert tuple(REGISTRY["conv2d"].shape([x, w], a)) == out
    k = 2 * w[1] * w[2] * w[3]
    for op, shapes, result in (("conv2d", [x, w], out), ("conv2d_grad_input", [out, w, x], x),
                               ("conv2d_grad_weight", [x, out, w], w)):
        kernel = REGISTRY[op].opaque
        over, flops = kernel.flops(shapes, result, a)
        assert (tuple(over), flops) == (out, k), op
        sizes = kernel.scratch(shapes, result, a)
        assert [tuple(s) for s in sizes] == scratch, op
        assert all(type(d) is int for s in sizes for d in s), (op, sizes)  # array sizes
