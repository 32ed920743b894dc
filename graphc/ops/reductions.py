"""Reductions, and softmax / log-softmax (stable: they subtract the maximum first)."""

import numpy as np

from graphc.ops.registry import Attr, KernelCode, Op, OpaqueKernel, register
from graphc.sugar import F

AXIS_ATTRS = {"axis": Attr("axes", None, doc="an axis, a list of axes, or null for all"),
              "keepdims": Attr("bool", False)}


def norm_axes(axis, ndim: int) -> tuple[int, ...]:
    """Axes as a sorted tuple of non-negative ints; raises ValueError when out of range."""
    axes = range(ndim) if axis is None else ([axis] if isinstance(axis, int) else axis)
    for a in axes:
        if not -max(ndim, 1) <= a < max(ndim, 1):  # a scalar takes 0 or -1, as in PyTorch
            raise ValueError(f"axis {a} is out of range for {ndim} dimensions")
    return tuple(sorted({a % ndim for a in axes})) if ndim else ()


def _reduce_shape(shapes, a):
    (s,) = shapes
    axes = norm_axes(a["axis"], len(s))
    if a["keepdims"]:
        return tuple(1 if i in axes else d for i, d in enumerate(s))
    return tuple(d for i, d in enumerate(s) if i not in axes)


def _keep(g, x, at):
    """g with the reduced axes put back as length 1 (a no-op for keepdims=True)."""
    if at["keepdims"]:
        return g
    axes = norm_axes(at["axis"], x.ndim)
    return F.expand_dims(g, axes=list(axes)) if axes else g


def _reduction(name, symbol, formula, gradient, ref, grad, kernel):
    kernel = {**kernel, "axes": lambda at, ndim: norm_axes(at["axis"], ndim)}
    register(Op(name=name, family="reductions", inputs=("x",), symbol=symbol, kind="reduce",
                formula=formula, gradient=gradient, attrs=dict(AXIS_ATTRS),
                shape=_reduce_shape, kernel=kernel,
                ref=lambda x, axis, keepdims: np.asarray(
                    ref(x, axis=norm_axes(axis, x.ndim), keepdims=keepdims)),
                grad=grad))


_reduction("sum", "Σ", "y = Σ x over `axis`", "dx = g broadcast back to x",
           np.sum, lambda g, xs, y, at: [F.expand(_keep(g, xs[0], at), xs[0])],
           {"init": "0.0", "step": "acc + x", "final": "acc"})
_reduction("mean", "mean", "y = mean of x over `axis`", "dx = g broadcast back to x / n",
           np.mean, lambda g, xs, y, at: [F.expand(_keep(g, xs[0], at), xs[0]) / F.size(
               xs[0], axes=list(norm_axes(at["axis"], xs[0].ndim)))],
           {"init": "0.0", "step": "acc + x", "final": "acc / n"})


def _max_grad(g, xs, y, at):
    x = xs[0]
    ax = list(norm_axes(at["axis"], x.ndim))
    mask = F.eq(x, _keep(y, x, at))
    return [_keep(g, x, at) * mask / F.sum(mask, axis=ax, keepdims=True)]


_reduction("max", "max", "y = max of x over `axis`",
           "dx = g where x is the maximum (split evenly between ties)", np.max, _max_grad,
           {"init": "-inf", "step": "maximum(acc, x)", "final": "acc"})

SOFTMAX_ATTRS = {"axis": Attr("axis", -1)}


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


# The CPU kernel of both: each row (the axis, at every other index) in three passes.
SOFTMAX_SOURCE = '''
{jit}
def softmax_cpu(x, out, axis, take_log):
    """out = softmax(x) (log_softmax with `take_log`) along `axis`, stably (x - max)."""
    pre = 1
    for d in range(axis):
        pre *= x.shape[d]
    n = x.shape[axis]
    post = x.size // (pre * n) if pre * n else 0
    xs = x.reshape(pre, n, post)
    ys = out.reshape(pre, n, post)
    for i in range(pre):
        for k in range(post):
            m = -inf
            for j in range(n):
                m = maximum(m, xs[i, j, k])
            s = 0.0
            for j in range(n):
                s += exp(xs[i, j, k] - m)
            for j in range(n):
                ys[i, j, k] = xs[i, j, k] - m - log(s) if take_log else exp(xs[i, j, k] - m) / s
'''


def _softmax_kernel(log: bool) -> OpaqueKernel:
    def call(args, out, a, shapes):
        return [f"softmax_cpu({args[0]}, {out}, {a['axis'] % len(shapes[0])}, {log})"]

    return OpaqueKernel(reads=(0,), flops=lambda shapes, out, a: (out, 5),
                        code={"cpu": KernelCode(SOFTMAX_SOURCE, call)})


def _axis_shape(shapes, a):
    norm_axes(a["axis"], len(shapes[0]))
    return shapes[0]


register(Op(name="softmax", family="reductions", inputs=("x",), symbol="softmax",
            kind="softmax", formula="y_j = e^(x_j - m) / Σ_k e^(x_k - m), m = max x",
            gradient="dx = y * (g - Σ g*y)", attrs=dict(SOFTMAX_ATTRS), shape=_axis_shape,
            ref=_softmax, kernel={"value": "exp(x - m) / s"}, opaque=_softmax_kernel(False),
            grad=lambda g, xs, y, at: [y * (g - F.sum(g * y, axis=at["axis"], keepdims=True))]))
register(Op(name="log_softmax", family="reductions", inputs=("x",), symbol="log softmax",
            kind="softmax", formula="y_j = x_j - m - ln Σ_k e^(x_k - m), m = max x",
            gradient="dx = g - e^y * Σ g", attrs=dict(SOFTMAX_ATTRS), shape=_axis_shape,
            ref=_log_softmax, kernel={"value": "x - m - log(s)"},
            opaque=_softmax_kernel(True),
            grad=lambda g, xs, y, at: [
                g - F.exp(y) * F.sum(g, axis=at["axis"], keepdims=True)]))
