"""Dropout and batch norm: layers that train differently than they evaluate, declared on
the IR's mode, state and random draws (docs/modes-and-state.md). Semantics are PyTorch's."""

from graphc.ir import format_shape
from graphc.ops.registry import Attr, Op, register
from graphc.sugar import F


def _dropout(xs, at, layer):
    (x,) = xs
    p = at["p"]
    if not 0 <= p < 1:
        raise ValueError(f"dropout's p must be in [0, 1), got {p} (p is the share dropped)")
    if p == 0:
        return F.add(x, 0.0)  # a node of its own, so the layer keeps its name
    u = layer.random(x)
    kept = F.select(F.relu(u - p), x * (1 / (1 - p)), 0.0)  # kept where u > p
    return F.select(layer.mode(), kept, x)


register(Op(name="dropout", family="composite", inputs=("x",), symbol="dropout",
            kind="composite", expand=_dropout,
            formula="training: y = x * (u > p) / (1 - p), u uniform in [0, 1), new at every "
                    "step; evaluation: y = x",
            gradient="from the primitives it expands into: g * mask / (1 - p) in training",
            attrs={"p": Attr("float", 0.5, doc="the probability of zeroing an element")}))


def _batch_norm(xs, at, layer):
    x = xs[0]
    if x.ndim < 2:
        raise ValueError(f"batch_norm needs an input [N, C, ...], got {format_shape(x.shape)}")
    channels = x.shape[1]
    if not isinstance(channels, int):
        raise ValueError(f"batch_norm needs a known number of channels (axis 1), got "
                         f"{format_shape(x.shape)}")
    if len(xs) == 2:
        raise ValueError("batch_norm takes [x] or [x, gamma, beta]")
    momentum, eps = at["momentum"], at["eps"]
    if not 0 <= momentum <= 1:
        raise ValueError(f"batch_norm's momentum must be in [0, 1], got {momentum}")
    if not eps > 0:
        raise ValueError(f"batch_norm's eps must be > 0, got {eps}")
    gamma, beta = xs[1:] if len(xs) == 3 else (layer.param("gamma", (channels,), "ones"),
                                               layer.param("beta", (channels,), "zeros"))
    mean_run = layer.state("running_mean", (channels,), "zeros")
    var_run = layer.state("running_var", (channels,), "ones")
    axes = [0, *range(2, x.ndim)]
    per_channel = [channels] + [1] * (x.ndim - 2)  # broadcasts against x over axis 1

    def channel(v):
        return v if x.ndim == 2 else F.reshape(v, shape=per_channel)

    mean = F.mean(x, axis=axes, keepdims=True)
    centered = x - mean
    var = F.mean(F.square(centered), axis=axes, keepdims=True)
    n = F.size(x, axes=axes)
    flat = [channels]
    layer.update(mean_run, mean_run * (1 - momentum) + F.reshape(mean, shape=flat) * momentum)
    unbiased = F.reshape(var, shape=flat) * (n / (n - 1))
    layer.update(var_run, var_run * (1 - momentum) + unbiased * momentum)
    trained = centered / F.sqrt(var + eps)
    evaluated = (x - channel(mean_run)) / F.sqrt(channel(var_run) + eps)
    return F.select(layer.mode(), trained, evaluated) * channel(gamma) + channel(beta)


register(Op(name="batch_norm", family="composite", inputs=("x", "gamma", "beta"),
            min_inputs=1, symbol="batch norm", kind="composite", expand=_batch_norm,
            formula="y = gamma (x - mean) / sqrt(var + eps) + beta over every axis but 1: "
                    "the batch's statistics in training (the running ones move by momentum, "
                    "the variance unbiased), the running ones in evaluation",
            gradient="from the primitives it expands into",
            attrs={"momentum": Attr("float", 0.1, doc="weight of the batch in the running "
                                                       "statistics"),
                   "eps": Attr("float", 1e-5)}))
