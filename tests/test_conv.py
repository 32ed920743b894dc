"""Convolution and pooling: the conv layer against torch.nn.Conv2d, every conv and pool
case of tests/opcases.py on the compiled CPU backend against the reference (float64 and
float32, symbolic batch), symbolic image sizes, ties in max pooling, the op-owned kernel
step in the plan, and the messages for inputs that do not fit.

(Values and all gradients of every case against torch's autograd and against central
differences run in tests/test_ops_torch.py and tests/test_ops_contract.py, which take
their cases from tests/opcases.py.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc.errors import SpecError
from tests.opcases import EXPLICIT_CASES, build

try:
    import torch
except ImportError:  # tests/ci_guard.py fails CI on the skip
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch, the reference")

CONV_OPS = ("conv2d", "max_pool2d", "avg_pool2d", "conv")
CASES = [(name, k) for name in CONV_OPS for k in range(len(EXPLICIT_CASES[name]))]
TOL = {"float64": 1e-10, "float32": 1e-5}


def spec_of(nodes, **inputs):
    return {"graphc": 1, "name": "conv test", "inputs": {k: {"shape": v} for k, v in
                                                          inputs.items()},
            "nodes": nodes, "outputs": [nodes[-1]["id"]]}


# ---- the conv layer against torch ----------------------------------------------------

@needs_torch
@pytest.mark.parametrize("attrs", [
    {"filters": 4, "kernel_size": 3, "padding": 1, "activation": "tanh", "init": "normal",
     "bias_init": "normal"},
    {"filters": 6, "kernel_size": [3, 2], "stride": [2, 1], "dilation": [1, 2], "groups": 3,
     "use_bias": False, "padding": "valid"},
])
def test_conv_layer_matches_torch_conv2d(attrs):
    spec = spec_of([{"id": "h", "op": "conv", "inputs": ["x"], "attrs": attrs},
                    {"id": "L", "op": "sum", "inputs": ["h"]}], x=["B", 3, 7, 6])
    spec["loss"], spec["outputs"] = "L", ["h"]
    model = graphc.compile(spec, backend="numpy", dtype="float64")
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 6))
    loss, grads = model.grad(wrt=["x"], x=x)
    conv = torch.nn.Conv2d(3, attrs["filters"], attrs["kernel_size"],
                           stride=attrs.get("stride", 1), padding=attrs.get("padding", 0),
                           dilation=attrs.get("dilation", 1), groups=attrs.get("groups", 1),
                           bias=attrs.get("use_bias", True)).double()
    assert model.params["h.W"].shape == tuple(conv.weight.shape)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(model.params["h.W"]))
        if conv.bias is not None:
            conv.bias.copy_(torch.tensor(model.params["h.b"]))
    xt = torch.tensor(x, requires_grad=True)
    act = torch.tanh if attrs.get("activation") == "tanh" else (lambda t: t)
    out = act(conv(xt))
    out.sum().backward()
    np.testing.assert_allclose(model.forward(x=x)["h"], out.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(loss, out.sum().item(), rtol=1e-10)
    np.testing.assert_allclose(grads["h.W"], conv.weight.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(grads["x"], xt.grad.numpy(), rtol=1e-9, atol=1e-12)
    if conv.bias is not None:
        np.testing.assert_allclose(grads["h.b"], conv.bias.grad.numpy(), rtol=1e-9)
    else:
        assert "h.b" not in model.params


@needs_torch
@pytest.mark.parametrize("init", ["he_normal", "xavier_normal"])
def test_conv_layer_init_uses_torch_fans(init):
    """fan_in = C/groups * kh * kw, fan_out = filters * kh * kw (torch's rule)."""
    spec = spec_of([{"id": "h", "op": "conv", "inputs": ["x"],
                     "attrs": {"filters": 64, "kernel_size": 5, "groups": 2, "init": init}}],
                   x=["B", 32, 9, 9])
    w = graphc.compile(spec, backend="numpy").params["h.W"]
    fan_in, fan_out = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(w.shape))
    assert (fan_in, fan_out) == (16 * 25, 64 * 25)
    want = np.sqrt(2 / fan_in) if init == "he_normal" else np.sqrt(2 / (fan_in + fan_out))
    assert abs(w.std() / want - 1) < 0.05, (w.std(), want)


def test_conv_layer_counts_the_lectures_parameters():
    spec = spec_of([{"id": "c", "op": "conv", "inputs": ["x"],
                     "attrs": {"filters": 6, "kernel_size": 5}}], x=[2, 3, 32, 32])
    model = graphc.compile(spec, backend="numpy")
    assert sum(p.size for p in model.params.values()) == 456
    assert model.forward(x=np.zeros((2, 3, 32, 32)))["c"].shape == (2, 6, 28, 28)


# ---- the compiled CPU backend against the reference ------------------------------------

def _symbolic_batch(name: str, k: int, batch: str):
    """The case's spec with the batch axis of its input (and the cotangent) symbolic."""
    shapes, attrs = EXPLICIT_CASES[name][k]
    graph, values = build(name, shapes, attrs, seed=k)
    spec = graph.to_json()
    for key in ("in0", "cot"):
        spec["inputs"][key]["shape"][0] = batch
    return spec, values


@pytest.fixture(scope="module")
def cpu_errors():
    from tests.test_cpu_backend import compare_all, merge

    parts = [(f"{name}#{k}/", *_symbolic_batch(name, k, f"N{i}"))
             for i, (name, k) in enumerate(CASES)]
    spec, values = merge(parts)
    return {dtype: compare_all(spec, values, dtype) for dtype in TOL}


@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("name,k", CASES, ids=[f"{n}-{k}" for n, k in CASES])
def test_cpu_matches_reference(cpu_errors, dtype, name, k):
    errors = {n: e for n, e in cpu_errors[dtype].items() if f" {name}#{k}/" in n}
    assert any(n.startswith("grad") for n in errors) and any(
        n.startswith("value") for n in errors), errors
    bad = {n: e for n, e in errors.items() if not e <= TOL[dtype]}
    assert not bad, bad


def test_cpu_runs_any_batch_and_image_size():
    """Symbolic N, H and W: the output size is a derived dim, the kernel reads sizes from
    the arrays, so one compiled model serves every size."""
    nodes = [{"id": "c", "op": "conv2d", "inputs": ["x", "w"],
              "attrs": {"stride": 2, "padding": 1}},
             {"id": "p", "op": "max_pool2d", "inputs": ["c"], "attrs": {"kernel_size": 2}},
             {"id": "L", "op": "sum", "inputs": ["p"]}]
    spec = spec_of(nodes, x=["N", 2, "H", "W"])
    spec["outputs"] = ["p"]
    spec["params"] = {"w": {"shape": [3, 2, 3, 3], "init": "normal"}}
    spec["loss"] = "L"
    ref = graphc.compile(spec, backend="numpy", dtype="float64")
    cpu = graphc.compile(spec, backend="cpu", dtype="float64")
    rng = np.random.default_rng(0)
    for n, h, w in [(1, 9, 9), (3, 12, 7)]:
        x = rng.normal(size=(n, 2, h, w))
        want, got = ref.forward(x=x)["p"], cpu.forward(x=x)["p"]
        assert want.shape == (n, 3, ((h + 1) // 2) // 2, ((w + 1) // 2) // 2)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        (lr, gr), (lc, gc) = ref.grad(x=x), cpu.grad(x=x)
        assert lc == pytest.approx(lr, rel=1e-12)
        np.testing.assert_allclose(gc["w"], gr["w"], rtol=1e-10, atol=1e-12)


def test_plan_runs_conv_as_one_opaque_step():
    from graphc.backends.codegen import Plan
    from graphc.backends.numba_source import Entry, KernelWriter

    spec = spec_of([{"id": "c", "op": "conv2d", "inputs": ["x", "w", "b"],
                     "attrs": {"padding": "same"}},
                    {"id": "r", "op": "relu", "inputs": ["c"]},
                    {"id": "p", "op": "avg_pool2d", "inputs": ["r"],
                     "attrs": {"kernel_size": 2}}],
                   x=["N", 3, 8, 8], w=[4, 3, 3, 3], b=[4])
    prog = graphc.compile(spec, backend="numpy").mode_program(False)
    plan = Plan(prog, list(prog.outputs.values()))
    kinds = [s.kind for s in plan.steps]
    assert kinds.count("opaque") == 2 and "loop" in kinds, kinds  # relu: a loop between
    flops, _, _ = plan.costs()
    assert "d0" in str(flops)  # per batch element
    source = KernelWriter(Entry("forward", prog, plan.results), np.dtype("float64")).write()
    assert "conv2d_wide_cpu(" in source  # stride 1: the padded-run kernels
    assert "avg_pool2d_cpu(" in source


def test_op_owned_kernels_are_declared_in_their_op_files():
    """Every opaque kernel has CPU code whose functions the generated modules import;
    concat and softmax, like the convolutions, are steps of their own in the plan."""
    from graphc.backends.codegen import Plan
    from graphc.backends.numba_templates import helper_names, helpers
    from graphc.ops import REGISTRY

    owned = {n for n, op in REGISTRY.items() if op.opaque is not None}
    assert {"conv2d", "conv2d_grad_input", "conv2d_grad_weight", "max_pool2d",
            "max_pool2d_grad", "avg_pool2d", "avg_pool2d_grad", "concat", "softmax",
            "log_softmax"} == owned
    source = helpers(np.dtype("float32"))
    for name in owned:
        code = REGISTRY[name].opaque.code["cpu"]
        assert set(code.names) <= set(helper_names())
        assert all(f"def {f}(" in source for f in code.names), name
    spec = spec_of([{"id": "j", "op": "concat", "inputs": ["a", "b"], "attrs": {"axis": 1}},
                    {"id": "s", "op": "softmax", "inputs": ["j"]}], a=["N", 2], b=["N", 3])
    prog = graphc.compile(spec, backend="numpy").mode_program(False)
    plan = Plan(prog, list(prog.outputs.values()))
    assert [s.kind for s in plan.steps] == ["opaque", "opaque"]


# ---- pooling details ---------------------------------------------------------------------

@needs_torch
def test_max_pool_ties_route_the_gradient_like_torch():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1:3, 1:3] = 1.0  # overlapping windows, each with several equal maxima
    spec = spec_of([{"id": "p", "op": "max_pool2d", "inputs": ["x"],
                     "attrs": {"kernel_size": 3, "stride": 1, "padding": 1}},
                    {"id": "L", "op": "sum", "inputs": ["p"]}], x=[1, 1, 4, 4])
    spec["loss"] = "L"
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, 3, 1, 1).sum().backward()
    for backend in ("numpy", "cpu"):
        _, grads = graphc.compile(spec, backend=backend, dtype="float64").grad(wrt=["x"], x=x)
        np.testing.assert_array_equal(grads["x"], xt.grad.numpy(), err_msg=backend)


@pytest.mark.parametrize("attrs", [{"kernel_size": 2}, {"kernel_size": 3, "stride": 2}],
                         ids=["2x2", "general"])
def test_max_pool_nan_and_ties_match_the_reference_on_cpu(attrs):
    """NaN wins a window and ties go to the first maximum, in the 2 x 2 kernel (loops of
    known length) and the general one alike."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(2, 3, 7, 7)).astype(float)  # many ties
    x[0, 0, 0, 0] = x[1, 2, 3, 4] = x[1, 2, 3, 5] = x[0, 1, 6, 6] = np.nan
    spec = spec_of([{"id": "p", "op": "max_pool2d", "inputs": ["x"], "attrs": attrs},
                    {"id": "L", "op": "sum", "inputs": ["p"]}], x=[2, 3, 7, 7])
    spec["loss"], spec["outputs"] = "L", ["p"]
    got = {}
    for backend in ("numpy", "cpu"):
        model = graphc.compile(spec, backend=backend, dtype="float64")
        _, grads = model.grad(wrt=["x"], x=x)
        got[backend] = (model.forward(x=x)["p"], grads["x"])
    assert np.isnan(got["cpu"][0]).any()
    for ref, cpu in zip(got["numpy"], got["cpu"]):
        np.testing.assert_array_equal(cpu, ref)


# ---- inputs that do not fit --------------------------------------------------------------

BAD = [
    ("conv2d", dict(x=[1, 3, 4, 4], w=[2, 3, 5, 5]), {},
     ["kernel window spans 5 along H", "padded input is only 4", "[1,3,4,4]", "[2,3,5,5]"]),
    ("conv2d", dict(x=[1, 3, 8, 8], w=[4, 1, 3, 3]), {"groups": 2},
     ["groups=2 must divide", "3 channels"]),
    ("conv2d", dict(x=[1, 3, 8, 8], w=[4, 2, 3, 3]), {},
     ["w has 2 input channels per group", "x has 3 channels"]),
    ("conv2d", dict(x=[1, 3, 8, 8], w=[4, 3, 3, 3], b=[3]), {}, ["bias must be [4]"]),
    ("conv2d", dict(x=[1, 3, 8, 8], w=[4, 3, 3, 3]), {"padding": "same", "stride": 2},
     ["padding 'same' needs stride 1"]),
    ("conv2d", dict(x=[3, 8, 8], w=[4, 3, 3, 3]), {}, ["needs x [N, C, H, W]", "[3,8,8]"]),
    ("conv2d", dict(x=[1, 3, 8, 8], w=[4, 3, 3, 3]), {"stride": [1, 2, 3]},
     ["stride must be an integer or a pair"]),
    ("max_pool2d", dict(x=[1, 2, 3, 3]), {"kernel_size": 4},
     ["window spans 4", "padded input is only 3", "[1,2,3,3]"]),
    ("avg_pool2d", dict(x=[1, 2, 6, 6]), {"kernel_size": 2, "padding": 2},
     ["at most half the window"]),
]


@pytest.mark.parametrize("op,shapes,attrs,expected", BAD, ids=[f"{b[0]}-{i}"
                                                                for i, b in enumerate(BAD)])
def test_bad_inputs_name_the_node_and_shapes(op, shapes, attrs, expected):
    spec = spec_of([{"id": "layer 1", "op": op, "inputs": list(shapes), "attrs": attrs}],
                   **shapes)
    with pytest.raises(SpecError) as info:
        graphc.compile(spec, backend="numpy")
    message = str(info.value)
    assert "\n" not in message and "layer 1" in message, message
    for part in expected:
        assert part in message, (part, message)


def test_conv_layer_rejects_inputs_without_channels():
    spec = spec_of([{"id": "c", "op": "conv", "inputs": ["x"],
                     "attrs": {"filters": 2, "kernel_size": 3}}], x=["B", 10])
    with pytest.raises(SpecError, match=r"id .c.\): conv needs an input \[N, C, H, W\].*\[B,10\]"):
        graphc.compile(spec, backend="numpy")


# ---- ONNX export -----------------------------------------------------------------------

@pytest.mark.parametrize("name,k", CASES[:-2], ids=[f"{n}-{k}" for n, k in CASES[:-2]])
def test_onnx_export_runs_in_onnxruntime(name, k, tmp_path):
    """Conv, MaxPool and AveragePool as written for onnxruntime give the reference's
    values (strides, paddings incl. uneven 'same', dilation, groups, count_include_pad)."""
    import onnxruntime as ort

    import graphc.onnx
    shapes, attrs = EXPLICIT_CASES[name][k]
    graph, values = build(name, shapes, attrs, seed=k)
    spec = graph.to_json()
    spec.pop("loss")
    spec["nodes"] = spec["nodes"][:1]
    del spec["inputs"]["cot"]
    model = graphc.compile(spec, backend="numpy", dtype="float32")
    path = tmp_path / "m.onnx"
    graphc.onnx.export(model, path)
    feeds = {k: v.astype(np.float32) for k, v in values.items() if k.startswith("in")}
    got = ort.InferenceSession(str(path)).run(None, feeds)[0]
    np.testing.assert_allclose(got, model.forward(**feeds)["y"], rtol=1e-4, atol=1e-5)


# ---- training ----------------------------------------------------------------------------

def test_fused_train_step_with_convolutions_matches_reference():
    """A CNN without state trains in one compiled call; its updates are the reference's."""
    from graphc.optim import Adam

    spec = spec_of([{"id": "image", "op": "reshape", "inputs": ["x"],
                     "attrs": {"shape": [-1, 1, 6, 6]}},
                    {"id": "c", "op": "conv", "inputs": ["image"],
                     "attrs": {"filters": 3, "kernel_size": 3, "padding": "same",
                               "activation": "tanh"}},
                    {"id": "p", "op": "avg_pool2d", "inputs": ["c"], "attrs": {"kernel_size": 2}},
                    {"id": "m", "op": "max_pool2d", "inputs": ["p"],
                     "attrs": {"kernel_size": 2, "stride": 1}},
                    {"id": "f", "op": "flatten", "inputs": ["m"]},
                    {"id": "logits", "op": "dense", "inputs": ["f"], "attrs": {"units": 3}},
                    {"id": "loss", "op": "cross_entropy", "inputs": ["logits", "y"]}],
                   x=["B", 36])
    spec["inputs"]["y"] = {"shape": ["B"], "dtype": "int64"}
    spec["loss"], spec["outputs"] = "loss", ["logits"]
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(5, 36)), rng.integers(0, 3, 5)
    models = [graphc.compile(spec, backend=b, dtype="float64") for b in ("numpy", "cpu")]
    opts = [Adam(lr=0.05), Adam(lr=0.05)]
    for _ in range(3):
        losses = [m.train_step(o, x=x, y=y) for m, o in zip(models, opts)]
        assert losses[1] == pytest.approx(losses[0], rel=1e-10)
    for name, p in models[0].params.items():
        np.testing.assert_allclose(models[1].params[name], p, rtol=1e-9, atol=1e-12,
                                   err_msg=name)


def test_digits_cnn_example_learns(examples):
    """examples/train/digits_cnn.json on the cpu backend: a few epochs reach 95% on the
    test split (its 40 epochs reach about 99%, docs/training.md)."""
    m = graphc.compile(examples / "train" / "digits_cnn.json", backend="cpu")
    data = np.load(examples / "train" / "data" / "digits_train.npz")
    test = np.load(examples / "train" / "data" / "digits_test.npz")
    m.fit({"x": data["x"], "y": data["y"]}, epochs=6)
    acc = (m.forward(x=test["x"])["probs"].argmax(1) == test["y"]).mean()
    assert acc > 0.95, acc
    assert m.params["conv1.W"].shape == (16, 1, 3, 3)
    assert m.params["conv2.W"].shape == (32, 16, 3, 3)


def test_the_docs_example_of_an_op_owned_kernel_runs():
    """docs/generated-module.md's `cumsum_rows`: a new op's kernel joins the helpers."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "docs" / "generated-module.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "OpaqueKernel" in b]
    exec(compile(block, "generated-module.md", "exec"), {})
    from graphc.ops import REGISTRY

    assert "cumsum_rows" not in REGISTRY


# ---- other ways in and out ---------------------------------------------------------------

@needs_torch
def test_torch_exported_cnn_loads_and_matches_torch(tmp_path):
    """Conv (groups, stride, 'same'), MaxPool, AveragePool and a global pool from
    torch.onnx.export, read back by graphc, give torch's values on the cpu backend."""
    import warnings

    from torch import nn

    import graphc.onnx

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 4, 3, padding="same"), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=2),
                        nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten()).double().eval()
    x = torch.randn(3, 2, 10, 10, dtype=torch.float64)
    path = tmp_path / "cnn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["y"],
                          dynamo=False, opset_version=17, dynamic_axes={"x": {0: "B"}})
    graph = graphc.onnx.load(path)
    ops = {n["op"] for n in graph.to_json()["nodes"]}
    assert {"conv2d", "max_pool2d", "avg_pool2d"} <= ops, ops
    model = graphc.compile(graph, backend="cpu", dtype="float64")
    (out,) = model.forward(x=x.numpy()).values()
    np.testing.assert_allclose(out, net(x).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_standalone_module_computes_convolutions_without_graphc(tmp_path):
    """`graphc compile` pastes the op kernels' helpers into the module it writes."""
    import subprocess
    import sys

    from click.testing import CliRunner

    from graphc.cli import main

    spec = Path(__file__).resolve().parent.parent / "examples" / "conv_shapes.json"
    result = CliRunner().invoke(main, ["compile", str(spec), "-o", str(tmp_path),
                                       "--dtype", "float64"])
    assert result.exit_code == 0, result.output
    script = ("import sys; sys.path.insert(0, '.'); import numpy as np, conv_shapes as m; "
              "p = m.init_params(); x = np.linspace(-1, 1, 6144).reshape(2, 3, 32, 32); "
              "np.save('y.npy', m.forward(p, x=x)['maps']); "
              "print(any(k.split('.')[0] == 'graphc' for k in sys.modules))")
    proc = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"
    ref = graphc.compile(spec, backend="numpy", dtype="float64")
    ref.load(tmp_path / "conv_shapes_params.npz")
    x = np.linspace(-1, 1, 6144).reshape(2, 3, 32, 32)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), ref.forward(x=x)["maps"],
                               rtol=1e-12, atol=1e-12)
