"""ONNX's BatchNormalization in training mode: PyTorch's training-mode export read back
gives torch's batch-statistics values and gradients; the running-statistics outputs
follow ONNX's definition (ONNX's reference evaluator); opset 13's form is refused."""

import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import graphc
import graphc.onnx as gx
from graphc.errors import SpecError

torch = pytest.importorskip("torch")


def cnn():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                              torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(144, 10))
    with torch.no_grad():
        net[1].weight.normal_()
        net[1].bias.normal_()
    return net.train()


def test_torch_training_mode_export_matches_torch_values_and_gradients(tmp_path):
    net = cnn()
    path = tmp_path / "train.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(5, 1, 8, 8),), str(path), input_names=["x"],
                          output_names=["logits"], dynamo=False, opset_version=17,
                          training=torch.onnx.TrainingMode.TRAINING,
                          do_constant_folding=False, dynamic_axes={"x": {0: "B"}})
    spec = gx.to_spec(path)
    assert {"1.weight", "1.bias"} <= set(spec["params"])  # batch norm's scale and shift train
    spec["inputs"]["y"] = {"shape": ["B"], "dtype": "int64"}
    spec["nodes"].append({"id": "loss", "op": "cross_entropy", "inputs": ["logits", "y"]})
    spec["loss"] = "loss"
    x = torch.randn(7, 1, 8, 8, dtype=torch.float64)  # another batch size than the export's
    y = torch.tensor([0, 3, 9, 1, 1, 7, 2])
    net = net.double()
    loss = torch.nn.functional.cross_entropy(net(x), y)  # batch statistics: training mode
    loss.backward()
    model = graphc.compile(spec, backend="numpy", dtype="float64")
    got = model.forward(x=x.numpy())["logits"]
    np.testing.assert_allclose(got, net(x).detach().numpy(), rtol=1e-10, atol=1e-12)
    value, grads = model.grad(x=x.numpy(), y=y.numpy())
    assert value == pytest.approx(loss.item(), rel=1e-10)
    for name, p in net.named_parameters():  # gradients through the batch's statistics
        want = p.grad.numpy().T if name == "4.weight" else p.grad.numpy()  # Gemm's [in, out]
        np.testing.assert_allclose(grads[name], want, rtol=1e-8, atol=1e-12, err_msg=name)
    # the compiled kernels agree (float32: the common case)
    fast = graphc.compile(spec, backend="cpu").forward(x=x.numpy().astype(np.float32))
    np.testing.assert_allclose(fast["logits"], got, rtol=1e-4, atol=1e-5)


def bn_model(opset, training, outputs=("y", "mean_out", "var_out")):
    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 5])
    inits = [numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "scale"),
             numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "bias"),
             numpy_helper.from_array(rng.normal(size=3).astype(np.float32), "mean"),
             numpy_helper.from_array(rng.uniform(0.5, 2, size=3).astype(np.float32), "var")]
    attrs = {"epsilon": 1e-3, "momentum": 0.8}
    if training is not None:
        attrs["training_mode"] = training
    node = helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"],
                            list(outputs), name="bn", **attrs)
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph([node], "g", [x], outs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


@pytest.mark.parametrize("training", [0, 1])
def test_running_statistics_outputs_follow_onnx(training):
    proto = bn_model(15, training, outputs=("y",) if not training else
                     ("y", "mean_out", "var_out"))
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(6, 3, 4, 5)).astype(np.float32)
    ref = ReferenceEvaluator(proto).run(None, {"x": x})
    ours = graphc.compile(gx.load(proto), backend="cpu").forward(x=x)
    assert list(ours) == [o.name for o in proto.graph.output]
    for name, want in zip(ours, ref):
        np.testing.assert_allclose(ours[name], want, rtol=1e-5, atol=1e-5, err_msg=name)
    # training mode normalizes by the batch's statistics: each channel's mean is its bias
    bias = numpy_helper.to_array(proto.graph.initializer[1])
    close = np.allclose(ours["y"].mean(axis=(0, 2, 3)), bias, atol=1e-4)
    assert close == bool(training)


def test_opset_13_training_outputs_are_refused():
    proto = bn_model(13, None, outputs=("y", "m", "v", "sm", "sv"))
    with pytest.raises(SpecError) as e:
        gx.load(proto)
    assert "ONNX node 'bn'" in str(e.value) and "opset 13" in str(e.value)
    assert "opset 14 or later" in str(e.value)
    # Y alone is evaluation mode in opset 13, and reads
    assert "y" in graphc.compile(gx.load(proto, outputs=["y"]), backend="numpy").forward(
        x=np.ones((2, 3, 4, 5), np.float32))
