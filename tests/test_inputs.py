"""graphc.inputs, the one place user values become checked input arrays: what Model and
graphc.data call, and the fast path a fused train step may take."""

from __future__ import annotations

import numpy as np
import pytest

import graphc
from graphc.errors import InputError
from graphc.inputs import bind_inputs, coerce, ready_arrays
from graphc.ir import FLOAT

F32 = np.dtype("float32")


def test_coerce_converts_and_binds_symbolic_dims():
    dims: dict = {}
    a = coerce("x", [[1, 2], [3, 4]], FLOAT, ("B", 2), F32, dims)
    assert a.dtype == F32 and a.shape == (2, 2) and dims == {"B": (2, "x")}
    labels = coerce("y", np.array([1.0, 0.0]), "int64", ("B",), F32, dims)
    assert labels.dtype == np.int64


@pytest.mark.parametrize("value, kind, shape, message", [
    ("abc", FLOAT, (), "expected numbers"),
    ([[1, 2], [3]], FLOAT, ("B", 2), "not a number or a regular array"),
    ([0.5, 1.0], "int64", ("B",), "integer labels"),
    ([1.0, 2.0], FLOAT, ("B", 2), r"expected shape \[B, 2\] \(2 axes\), got \[2\]"),
    ([[1.0, 2.0, 3.0]] * 2, FLOAT, ("B", 2), "axis 1 is 3, the model wants 2"),
    ([[1.0, 2.0]] * 3, FLOAT, ("B", 2), r"axis 0 \(B\) is 3, but B is 2 in input 'x'"),
])
def test_coerce_names_the_input_and_the_axis(value, kind, shape, message):
    with pytest.raises(InputError, match=message):
        coerce("z", value, kind, shape, F32, {"B": (2, "x")})


def test_model_and_data_share_the_checks(examples):
    m = graphc.compile(examples / "mnist_mlp.json", backend="numpy")
    bad = {"x": np.zeros((4, 10), np.float32), "y": np.zeros(4, np.int64)}
    with pytest.raises(InputError) as direct:
        bind_inputs(m.graph, m.program, bad, m.dtype)
    with pytest.raises(InputError) as through_model:
        m.forward(**bad)
    with pytest.raises(InputError) as through_data:
        from graphc.data import prepare

        prepare(m, bad)
    assert str(direct.value) in str(through_model.value)
    assert str(direct.value) in str(through_data.value)


def test_ready_arrays_takes_only_arrays_a_kernel_can_use_as_they_are():
    wanted = [("x", F32, ("B", 3)), ("y", np.dtype("int64"), ("B",))]
    x, y = np.zeros((4, 3), F32), np.zeros(4, np.int64)
    assert [a is b for a, b in zip(ready_arrays(wanted, {"x": x, "y": y}), (x, y))] == [1, 1]
    assert ready_arrays(wanted, {"y": y, "x": x}) is not None  # order of `wanted`, not given
    for other in ({"x": x.astype(np.float64), "y": y},  # dtype
                  {"x": np.asfortranarray(np.zeros((4, 3), F32)), "y": y},  # order
                  {"x": x, "y": np.zeros(5, np.int64)},  # B is 4 in x
                  {"x": x[:, :2], "y": y},  # shape
                  {"x": x.tolist(), "y": y},  # not an array
                  {"x": x}):  # missing
        assert ready_arrays(wanted, other) is None
