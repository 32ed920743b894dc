"""Layers: composite ops that expand into primitives and create params `<id>.<name>`."""

from graphc.errors import did_you_mean
from graphc.ir import format_shape
from graphc.ops.conv import pair
from graphc.ops.registry import REGISTRY, Attr, Op, register
from graphc.sugar import F


def activations() -> list[str]:
    """Names usable as `dense`'s activation: one-input elementwise ops and `swish`."""
    return sorted(op.name for op in REGISTRY.values()
                  if op.family == "activations" and op.arity[0] == 1 and not op.internal)


def _activation(act: str) -> str:
    if act not in ("none", *activations()):
        hint = did_you_mean(act, activations())
        raise ValueError(f"unknown activation {act!r} ({hint or 'choose one of: none, '}"
                         + ("" if hint else ", ".join(activations())) + ")")
    return act


def _dense(xs, at, layer):
    (x,) = xs
    fan_in = x.shape[-1] if x.ndim else None
    if not isinstance(fan_in, int):
        raise ValueError(f"dense needs an input whose last axis has a known size, "
                         f"got {format_shape(x.shape)}")
    act = _activation(at["activation"])
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


def _conv(xs, at, layer):
    (x,) = xs
    channels = x.shape[1] if x.ndim == 4 else None
    if not isinstance(channels, int):
        raise ValueError(f"conv needs an input [N, C, H, W] with a known C, got "
                         f"{format_shape(x.shape)}")
    act = _activation(at["activation"])
    groups = at["groups"]
    if groups < 1 or channels % groups or at["filters"] % groups:
        raise ValueError(f"conv: groups={groups} must divide the input's {channels} channels "
                         f"and the {at['filters']} filters")
    kernel = pair(at["kernel_size"], "kernel_size")
    if min(kernel) < 1:
        raise ValueError(f"conv: kernel_size {list(kernel)} must be >= 1")
    w = layer.param("W", (at["filters"], channels // groups, *kernel), at["init"])
    args = [x, w] + ([layer.param("b", (at["filters"],), at["bias_init"])]
                     if at["use_bias"] else [])
    z = F.conv2d(*args, stride=at["stride"], padding=at["padding"],
                 dilation=at["dilation"], groups=groups)
    return z if act == "none" else getattr(F, act)(z)


register(Op(name="conv", family="composite", inputs=("x",), symbol="conv",
            kind="composite", expand=_conv,
            formula="y = activation(conv2d(x, W, b)), W: [filters, C/groups, kh, kw], "
                    "b: [filters]",
            gradient="from the primitives it expands into",
            attrs={"filters": Attr("size", doc="output channels"),
                   "kernel_size": Attr("json", doc="an int or [kh, kw]"),
                   "stride": Attr("json", 1, doc="an int or [sh, sw]"),
                   "padding": Attr("json", 0, doc="an int, [ph, pw], 'valid' or 'same'"),
                   "dilation": Attr("json", 1, doc="an int or [dh, dw]"),
                   "groups": Attr("size", 1, doc="channel groups"),
                   "activation": Attr("str", "none", doc="an activation op's name, or none"),
                   "use_bias": Attr("bool", True),
                   "init": Attr("json", "he_uniform", doc="initializer of W (fans as "
                                "PyTorch: in = C/groups*kh*kw, out = filters*kh*kw)"),
                   "bias_init": Attr("json", "zeros", doc="initializer of b")}))


def _swish(xs, at, layer):
    beta = xs[1] if len(xs) > 1 else at["beta"]
    return xs[0] * F.sigmoid(beta * xs[0])


register(Op(name="swish", family="activations", inputs=("x", "beta"), min_inputs=1,
            symbol="swish", kind="composite", expand=_swish,
            formula="y = x σ(beta x); beta is the attribute or a second (learnable) input",
            gradient="from the primitives it expands into",
            attrs={"beta": Attr("float", 1.0)}))
