"""Losses (each returns a scalar) and penalties, as composites of primitive ops.

Written as compositions, their gradients come from the primitives' rules, and they stay
stable because the primitives are: log_softmax and softplus never overflow.
"""

from graphc.ir import format_shape
from graphc.ops.registry import Attr, Op, elementwise, register
from graphc.sugar import F

REDUCTION = {"reduction": Attr("str", "mean", choices=("mean", "sum"))}


def _reduce(v, at):
    return F.mean(v) if at["reduction"] == "mean" else F.sum(v)


def _loss(name, inputs, formula, expand, attrs=None, domain=None, symbol=None, **kw):
    register(Op(name=name, family="losses", inputs=inputs, formula=formula,
                symbol=symbol or name, kind="composite", expand=expand,
                attrs={**REDUCTION, **(attrs or {})},
                domain=domain or ("real",) * len(inputs),
                gradient="from the primitives it expands into", **kw))


_loss("mse", ("prediction", "target"), "L = mean((prediction - target)²)",
      lambda xs, at, layer: _reduce(F.square(xs[0] - xs[1]), at), symbol="MSE")
_loss("sse", ("prediction", "target"), "L = ½ Σ (prediction - target)²",
      lambda xs, at, layer: 0.5 * _reduce(F.square(xs[0] - xs[1]), at),
      attrs={"reduction": Attr("str", "sum", choices=("mean", "sum"))}, symbol="SSE")
_loss("l1_loss", ("prediction", "target"), "L = mean(|prediction - target|)",
      lambda xs, at, layer: _reduce(F.abs(xs[0] - xs[1]), at), symbol="L1",
      domain=("distinct", "distinct"))


def _huber(xs, at, layer):
    a = F.abs(xs[0] - xs[1])
    q = F.minimum(a, at["delta"])  # |d| clipped at delta: ½q² + delta(|d| - q) is Huber
    return _reduce(0.5 * F.square(q) + at["delta"] * (a - q), at)


_loss("huber", ("prediction", "target"),
      "L = mean(½d² if |d| < delta else delta (|d| - ½ delta)), d = prediction - target",
      _huber, attrs={"delta": Attr("float", 1.0)}, symbol="Huber",
      domain=("distinct", "distinct"))


def _cross_entropy(xs, at, layer):
    logits, labels = xs
    classes = logits.shape[-1] if logits.ndim else None
    if not isinstance(classes, int):
        raise ValueError(f"logits need a last axis of known size (classes), got "
                         f"{format_shape(logits.shape)}")
    if labels.dtype.startswith("int"):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(f"integer labels must have shape {format_shape(logits.shape[:-1])} "
                             f"for logits {format_shape(logits.shape)}, got "
                             f"{format_shape(labels.shape)}")
        target = F.one_hot(labels, classes=classes)
    elif labels.shape != logits.shape:
        raise ValueError(f"probability labels must have the logits' shape "
                         f"{format_shape(logits.shape)}, got {format_shape(labels.shape)}")
    else:
        target = labels
    if at["label_smoothing"]:
        target = target * (1.0 - at["label_smoothing"]) + at["label_smoothing"] / classes
    per_row = -F.sum(target * F.log_softmax(logits, axis=-1), axis=-1)
    return _reduce(per_row, at)


_loss("cross_entropy", ("logits", "labels"),
      "L = mean over rows of -Σ_k t_k log_softmax(logits)_k, t = one-hot(labels) or "
      "probabilities, smoothed: t (1 - ε) + ε/K", _cross_entropy,
      attrs={"label_smoothing": Attr("float", 0.0)}, domain=("real", "labels"),
      int_inputs=(1,), symbol="CE")


# BCE's terms as one elementwise op, so that its derivative can be PyTorch's: logs clamped
# at -100 and p(1 - p) at 1e-12 keep p = 0 and p = 1 finite in both directions.
elementwise("bce_terms", ("p", "t"),
            "-(t * maximum(log(p), -100.0) + (1.0 - t) * maximum(log(1.0 - p), -100.0))",
            family="losses", symbol="BCE", internal=True,
            formula="-(y log p + (1 - y) log(1 - p)), logs clamped at -100",
            deriv=("(p - t) / maximum(p * (1.0 - p), 1e-12)",
                   "maximum(log(1.0 - p), -100.0) - maximum(log(p), -100.0)"))


def _bce(xs, at, layer):
    return _reduce(F.bce_terms(*xs), at)


_loss("binary_cross_entropy", ("probability", "target"),
      "L = mean(-(y log p + (1 - y) log(1 - p))), logs clamped at -100", _bce,
      domain=("unit", "unit"), symbol="BCE")
_loss("bce_with_logits", ("logits", "target"),
      "L = mean(softplus(x) - x y) = BCE(σ(x), y), computed without overflow",
      lambda xs, at, layer: _reduce(F.softplus(xs[0]) - xs[0] * xs[1], at),
      domain=("real", "unit"), symbol="BCE(logits)")


def _penalty(name, formula, f):
    register(Op(name=name, family="penalties", inputs=("w*",), formula=formula,
                symbol=name.replace("_penalty", "").upper(), kind="composite",
                gradient="from the primitives it expands into",
                attrs={"scale": Attr("float", 1.0, doc="C, the penalty's weight")},
                domain=("nonzero",), expand=lambda xs, at, layer: _scaled(
                    _sum_all([F.sum(f(w)) for w in xs]), at["scale"])))


def _scaled(total, scale):
    return total if scale == 1.0 else scale * total


def _sum_all(terms):
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    return total


_penalty("l1_penalty", "P = scale * Σ_inputs Σ |w|", F.abs)
_penalty("l2_penalty", "P = scale * Σ_inputs Σ w²", F.square)
