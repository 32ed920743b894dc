"""Layers: composite ops that expand into primitives and create params `<id>.<name>`."""

from graphc.errors import did_you_mean
from graphc.ir import format_shape
from graphc.ops.registry import REGISTRY, Attr, Op, register
from graphc.sugar import F


def activations() -> list[str]:
    """Names usable as `dense`'s activation: one-input elementwise ops and `swish`."""
    return sorted(op.name for op in REGISTRY.values()
                  if op.family == "activations" and op.arity[0] == 1 and not op.internal)


def _dense(xs, at, layer):
    (x,) = xs
    fan_in = x.shape[-1] if x.ndim else None
    if not isinstance(fan_in, int):
        raise ValueError(f"dense needs an input whose last axis has a known size, "
                         f"got {format_shape(x.shape)}")
    act = at["activation"]
    if act not in ("none", *activations()):
        hint = did_you_mean(act, activations())
        raise ValueError(f"unknown activation {act!r} ({hint or 'choose one of: none, '}"
                         + ("" if hint else ", ".join(activations())) + ")")
    w = layer.param("W", (fan_in, at["units"]), at["init"])
    z = x @ w
    if at["use_bias"]:
        z = z + layer.param("b", (at["units"],), at["bias_init"])
    return z if act == "none" else getattr(F, act)(z)


register(Op(name="dense", family="composite", inputs=("x",), symbol="dense",
            kind="composite", expand=_dense,
            formula="y = activation(x @ W + b), W: [in, units], b: [units]",
            gradient="from the primitives it expands into",
            attrs={"units": Attr("size", doc="output features"),
                   "activation": Attr("str", "none", doc="an activation op's name, or none"),
                   "use_bias": Attr("bool", True),
                   "init": Attr("json", "xavier_uniform", doc="initializer of W"),
                   "bias_init": Attr("json", "zeros", doc="initializer of b")}))


def _swish(xs, at, layer):
    beta = xs[1] if len(xs) > 1 else at["beta"]
    return xs[0] * F.sigmoid(beta * xs[0])


register(Op(name="swish", family="activations", inputs=("x", "beta"), min_inputs=1,
            symbol="swish", kind="composite", expand=_swish,
            formula="y = x σ(beta x); beta is the attribute or a second (learnable) input",
            gradient="from the primitives it expands into",
            attrs={"beta": Attr("float", 1.0)}))
