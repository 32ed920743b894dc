"""How the op tests build a small spec around any registered op: input shapes,
attributes and values sampled from the op's declared domain."""

from __future__ import annotations

import numpy as np

from graphc.ops import REGISTRY

# Attributes to test each op with (ops that need none are tested with their defaults).
ATTR_CASES: dict[str, list[dict]] = {
    "leaky_relu": [{"alpha": 0.1}],
    "elu": [{"alpha": 0.7}],
    "gelu": [{"approximate": "none"}, {"approximate": "tanh"}, {"approximate": "sigmoid"}],
    "transpose": [{}, {"axes": [1, 0, 2]}],
    "reshape": [{"shape": [-1, 6]}, {"shape": [4, 3, 2]}],
    "concat": [{"axis": 0}, {"axis": -1}],
    "sum": [{}, {"axis": 1}, {"axis": [0, 2], "keepdims": True}],
    "mean": [{}, {"axis": -1}, {"axis": 0, "keepdims": True}],
    "max": [{}, {"axis": 1}, {"axis": -1, "keepdims": True}],
    "softmax": [{}, {"axis": 0}],
    "log_softmax": [{}, {"axis": 1}],
    "mse": [{}, {"reduction": "sum"}],
    "sse": [{}],
    "l1_loss": [{}],
    "huber": [{"delta": 0.5}],
    "cross_entropy": [{}, {"label_smoothing": 0.1, "reduction": "sum"}],
    "binary_cross_entropy": [{}],
    "bce_with_logits": [{}],
    "l1_penalty": [{"scale": 0.5}],
    "l2_penalty": [{}],
    "dense": [{"units": 3, "activation": "tanh", "init": "normal"},
              {"units": 2, "use_bias": False}],
    "swish": [{"beta": 1.5}],
    "dropout": [{"p": 0.4}, {"p": 0.0}],
    "batch_norm": [{}, {"momentum": 0.5, "eps": 0.01}],
    "flatten": [{}, {"start_axis": 2}],
}

# Input shapes per op, several cases each; elementwise binary cases broadcast.
BINARY_SHAPES = [((2, 3), (2, 3)), ((2, 3), (3,)), ((4, 1, 3), (2, 1)), ((), (2, 2))]
SHAPE_CASES: dict[str, list[tuple]] = {
    "matmul": [((2, 3), (3, 4)), ((3,), (3, 2)), ((2, 3), (3,)), ((3,), (3,)),
               ((2, 2, 3), (3, 4)), ((2, 1, 2, 3), (3, 3, 2))],
    "transpose": [((2, 3, 4),)],
    "reshape": [((2, 3, 4),)],
    "concat": [((2, 3), (2, 3), (2, 3))],
    "sum": [((2, 3, 4),)], "mean": [((2, 3, 4),)], "max": [((2, 3, 4),)],
    "softmax": [((3, 4),)], "log_softmax": [((3, 4),)],
    "cross_entropy": [((4, 5), "labels:(4,)"), ((4, 5), (4, 5))],
    "l1_penalty": [((2, 3), (4,))], "l2_penalty": [((3,), (2, 2), ())],
    "dense": [((4, 5),)], "l1_loss": [((2, 3), (2, 3))], "huber": [((2, 3), (2, 3))],
    "swish": [((2, 3),), ((2, 3), ())], "prelu": [((2, 3), (3,))],
    "dropout": [((3, 4),)], "flatten": [((2, 3, 2, 2),)],
    "batch_norm": [((4, 3),), ((3, 2, 2, 3),), ((4, 3), (3,), (3,))],
}


# Ops whose attributes constrain their shapes (a conv's groups): (shapes, attrs) per case.
EXPLICIT_CASES: dict[str, list[tuple[tuple, dict]]] = {
    "conv2d": [
        (((2, 3, 5, 5), (4, 3, 3, 3), (4,)), {}),
        (((2, 3, 6, 5), (4, 3, 3, 2), (4,)), {"stride": [2, 1], "padding": [1, 2],
                                             "dilation": [1, 2]}),
        (((1, 4, 5, 5), (6, 2, 3, 3)), {"groups": 2, "padding": "same"}),
        (((1, 2, 5, 6), (3, 2, 2, 4), (3,)), {"padding": "same"}),  # padded unevenly
        (((2, 3, 7, 7), (2, 3, 3, 3)), {"padding": "valid", "stride": 3}),
        (((1, 4, 6, 6), (4, 1, 3, 3), (4,)), {"groups": 4, "padding": 1, "dilation": 2}),
    ],
    "max_pool2d": [
        (((2, 3, 4, 4),), {"kernel_size": 2}),
        (((1, 2, 5, 7),), {"kernel_size": 2}),  # 2 x 2 windows leaving a row and column
        (((1, 2, 5, 6),), {"kernel_size": [3, 2], "stride": [2, 1], "padding": 1}),
        (((1, 2, 7, 7),), {"kernel_size": 3, "stride": 2, "dilation": 2, "padding": 1}),
    ],
    "avg_pool2d": [
        (((2, 3, 4, 4),), {"kernel_size": 2}),
        (((1, 2, 5, 6),), {"kernel_size": 3, "stride": 2, "padding": 1}),
        (((1, 2, 5, 6),), {"kernel_size": [3, 2], "stride": 1, "padding": [1, 1],
                           "count_include_pad": False}),
    ],
    "conv": [
        (((2, 3, 6, 6),), {"filters": 4, "kernel_size": 3, "activation": "relu",
                           "init": "normal"}),
        (((1, 4, 5, 5),), {"filters": 2, "kernel_size": [2, 3], "stride": 2, "groups": 2,
                           "padding": "valid", "use_bias": False}),
    ],
}


def ops_under_test() -> list[str]:
    """Every public op: a new op is tested as soon as it is registered."""
    return sorted(op.name for op in REGISTRY.values() if not op.internal)


def cases(name: str) -> list[tuple[tuple, dict]]:
    if name in EXPLICIT_CASES:
        return list(EXPLICIT_CASES[name])
    op = REGISTRY[name]
    shapes = SHAPE_CASES.get(name)
    if shapes is None:
        n = len(op.inputs)
        shapes = BINARY_SHAPES if n == 2 else [((2, 3),), ((),)]
    return [(s, a) for s in shapes for a in ATTR_CASES.get(name, [{}])]


def sample(domain: str, shape: tuple, rng: np.random.Generator, classes: int = 5) -> np.ndarray:
    """Values away from kinks and singularities, so finite differences are accurate."""
    if domain == "positive":
        return rng.uniform(0.5, 2.0, shape)
    if domain in ("nonzero", "distinct"):
        return rng.choice([-1.0, 1.0], shape) * rng.uniform(0.3, 2.0, shape)
    if domain == "unit":
        return rng.uniform(0.1, 0.9, shape)
    if domain == "probs":
        p = rng.uniform(0.1, 1.0, shape)
        return p / p.sum(axis=-1, keepdims=True)
    return rng.normal(0.0, 1.0, shape)


def build(name: str, shapes: tuple, attrs: dict, seed: int = 0):
    """A spec computing loss = sum(op(inputs) * c) with a random cotangent c, and the
    input values; the gradient of this loss is the op's vector-Jacobian product."""
    import graphc

    op = REGISTRY[name]
    rng = np.random.default_rng(seed)
    inputs, values, args = {}, {}, []
    for i, shape in enumerate(shapes):
        domain = op.domain[min(i, len(op.domain) - 1)] if op.domain else "real"
        key = f"in{i}"
        if isinstance(shape, str):  # "labels:(4,)": integer class labels
            shape = eval(shape.split(":")[1])
            inputs[key] = {"shape": list(shape), "dtype": "int64"}
            values[key] = rng.integers(0, shapes[0][-1], shape)
        else:
            inputs[key] = {"shape": list(shape)}
            values[key] = sample(domain, shape, rng)
        args.append(key)
    if name in ("maximum", "minimum"):  # operands on interleaved grids: never tied
        values["in0"] = rng.choice([0.0, 2.0, 4.0], shapes[0]) + rng.uniform(-.3, .3, shapes[0])
        values["in1"] = rng.choice([1.0, 3.0, 5.0], shapes[1]) + rng.uniform(-.3, .3, shapes[1])
    if name in ("l1_loss", "huber"):  # |prediction - target| away from 0 and from delta
        d = rng.choice([-1.0, 1.0], shapes[0]) * rng.choice([0.2, 1.0], shapes[0])
        values["in1"] = values["in0"] + d + rng.uniform(-0.05, 0.05, shapes[0])
    spec = {"graphc": 1, "name": f"test {name}", "inputs": inputs,
            "nodes": [{"id": "y", "op": name, "inputs": args, "attrs": attrs}],
            "outputs": ["y"]}
    graph = graphc.load(spec)
    out_shape = graph._program[graph._program.outputs["y"]].shape
    spec["inputs"]["cot"] = {"shape": list(out_shape)}
    spec["nodes"] += [{"id": "yc", "op": "mul", "inputs": ["y", "cot"]},
                      {"id": "L", "op": "sum", "inputs": ["yc"]}]
    spec["loss"] = "L"
    values["cot"] = rng.normal(size=out_shape)
    return graphc.load(spec), values
