"""LeNet-5 with batch norm as PyTorch exports it (legacy exporter with and without constant
folding, which folds batch norm into the convolution; dynamo exporter), read by graphc:
its values are PyTorch's and onnxruntime's."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphc
import graphc.onnx as gx

torch = pytest.importorskip("torch")


def lenet5():
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.BatchNorm2d(6), nn.ReLU(),
                        nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84),
                        nn.ReLU(), nn.Linear(84, 10))
    with torch.no_grad():  # statistics that are not the identity's
        net[1].running_mean.normal_()
        net[1].running_var.uniform_(0.5, 2.0)
        net[1].weight.normal_()
    return net.eval()


@pytest.mark.parametrize("exporter", ["legacy", "legacy-folded", "dynamo"])
def test_torch_lenet5_matches_torch_and_onnxruntime(tmp_path, exporter):
    net, path = lenet5(), tmp_path / "lenet5.onnx"
    x = torch.randn(2, 1, 28, 28)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            torch.onnx.export(net, (x,), str(path), input_names=["x"],
                              output_names=["logits"], dynamo=True, verbose=False,
                              dynamic_shapes=({0: torch.export.Dim("B")},))
        else:
            torch.onnx.export(net, (x,), str(path), input_names=["x"],
                              output_names=["logits"], dynamo=False, opset_version=17,
                              do_constant_folding=exporter == "legacy-folded",
                              dynamic_axes={"x": {0: "B"}})
    folded = "BatchNormalization" not in {n.op_type for n in onnx.load(str(path)).graph.node}
    assert folded == (exporter != "legacy")
    graph = gx.load(path)
    assert isinstance(graph.inputs["x"]["shape"][0], str)  # the batch stays free
    x = torch.randn(5, 1, 28, 28)  # another batch size than the export's
    ours = graphc.compile(graph, backend="numpy").forward(x=x.numpy())["logits"]
    np.testing.assert_allclose(ours, net(x).detach().numpy(), rtol=1e-5, atol=1e-6)
    theirs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
        None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_torch_1d_convolutions_and_pools_read_as_2d(tmp_path):
    """Conv1d, MaxPool1d and AvgPool1d become graphc's 2-D ops over [N, C, 1, L]; the
    conv's weight is a param [O, I, 1, k] under PyTorch's name."""
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv1d(3, 4, 5, padding=2, stride=2), nn.ReLU(), nn.MaxPool1d(2),
                        nn.Conv1d(4, 2, 3, dilation=2, groups=2), nn.AvgPool1d(3, stride=1,
                                                                               padding=1),
                        nn.Flatten()).double().eval()
    path = tmp_path / "c1d.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn(2, 3, 40, dtype=torch.float64),), str(path),
                          input_names=["x"], output_names=["y"], dynamo=False,
                          opset_version=17, dynamic_axes={"x": {0: "B"}})
    graph = gx.load(path)
    assert graph.params["0.weight"]["shape"] == [4, 3, 1, 5]
    x = torch.randn(3, 3, 40, dtype=torch.float64)
    ours = graphc.compile(graph, backend="numpy", dtype="float64").forward(x=x.numpy())["y"]
    np.testing.assert_allclose(ours, net(x).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_1d_window_over_two_symbolic_dims_is_one_clear_error():
    from onnx import TensorProto, helper, numpy_helper

    from graphc.errors import SpecError

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "L"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((2, 3, 3), np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c1")], "g",
                              [x], [y], [w])
    with pytest.raises(SpecError) as e:
        gx.load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert "ONNX node 'c1'" in str(e.value) and "two symbolic dims" in str(e.value)
    assert "give the length a fixed size" in str(e.value)
