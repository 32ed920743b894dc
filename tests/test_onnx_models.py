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
