"""Max and average pooling over 2-D windows (PyTorch's max_pool2d, avg_pool2d) and their
gradients, each an op with a NumPy reference on `conv.windows` and a CPU kernel of its
own (pool_kernels.py). Max pooling's gradient goes to each window's first maximum."""

from __future__ import annotations

import numpy as np

from graphc.ir import format_shape
from graphc.ops.conv import out_size, pad, pair, scatter_windows, windows
from graphc.ops.pool_kernels import POOL_SOURCE
from graphc.ops.registry import Attr, KernelCode, Op, OpaqueKernel, register
from graphc.sugar import F


def _geometry(shape, a, who: str):
    """Checks x [N, C, H, W]; the output shape, kernel, stride, dilation and paddings."""
    if len(shape) != 4:
        raise ValueError(f"{who} needs x [N, C, H, W], got {format_shape(shape)}")
    kernel = pair(a["kernel_size"], "kernel_size")
    stride = kernel if a["stride"] is None else pair(a["stride"], "stride")
    padding = pair(a["padding"], "padding")
    dil = pair(a.get("dilation", 1), "dilation")
    if min(kernel) < 1 or min(stride) < 1 or min(dil) < 1:
        raise ValueError(f"{who}: kernel_size {list(kernel)}, stride {list(stride)} and "
                         f"dilation {list(dil)} must be >= 1")
    span = [d * (k - 1) + 1 for d, k in zip(dil, kernel)]
    if min(padding) < 0 or any(2 * p > s for p, s in zip(padding, span)):
        raise ValueError(f"{who}: padding {list(padding)} must be >= 0 and at most half the "
                         f"window {span} (as in PyTorch)")
    oh = out_size(shape[2], 2 * padding[0], span[0], stride[0], f"{who} {list(kernel)}", "H")
    ow = out_size(shape[3], 2 * padding[1], span[1], stride[1], f"{who} {list(kernel)}", "W")
    pads = (padding[0], padding[0], padding[1], padding[1])
    return (*shape[:2], oh, ow), kernel, stride, dil, pads


POOL_ATTRS = {
    "kernel_size": Attr("json", doc="an int or [kh, kw]"),
    "stride": Attr("json", None, doc="an int or [sh, sw]; null: the kernel size"),
    "padding": Attr("json", 0, doc="an int or [ph, pw], at most half the kernel"),
}
MAX_ATTRS = {**POOL_ATTRS, "dilation": Attr("json", 1, doc="an int or [dh, dw]")}
AVG_ATTRS = {**POOL_ATTRS, "count_include_pad": Attr(
    "bool", True, doc="divide by the whole window (true) or by its unpadded part")}


def _cols(x, a, who, fill=0.0):
    _, kernel, stride, dil, pads = _geometry(x.shape, a, who)
    return windows(pad(x, pads, fill), kernel, stride, dil), (kernel, stride, dil, pads)


def _padded(shape, pads):
    return (shape[0], shape[1], shape[2] + pads[0] + pads[1], shape[3] + pads[2] + pads[3])


# ---- max pooling ------------------------------------------------------------------------

def _max_ref(x, **a):
    cols, _ = _cols(x, a, "max_pool2d", -np.inf)
    return cols.max(axis=(-2, -1))


def _max_grad_ref(x, g, **a):
    cols, (kernel, stride, dil, pads) = _cols(x, a, "max_pool2d", -np.inf)
    flat = cols.reshape(*cols.shape[:4], -1)
    first = flat.argmax(axis=-1)  # the first maximum, as PyTorch's kernel picks
    hit = np.arange(flat.shape[-1]) == first[..., None]
    routed = (hit * g[..., None]).reshape(cols.shape)
    return scatter_windows(routed, _padded(x.shape, pads), stride, dil, pads, x.shape)


def _shape(who):
    def rule(shapes, a):
        out = _geometry(shapes[0], a, who)[0]
        if len(shapes) == 2 and tuple(shapes[1]) != out:
            raise ValueError(f"{who}_grad: g is {format_shape(shapes[1])}, the pooled "
                             f"shape {format_shape(out)}")
        return out if len(shapes) == 1 else tuple(shapes[0])
    return rule


def _ints(a, with_dilation: bool) -> str:
    _, kernel, stride, dil, pads = _geometry((1, 1, 10**9, 10**9), a, "pool")
    ints = (*kernel, *stride, pads[0], pads[2]) + (tuple(dil) if with_dilation else (
        int(a["count_include_pad"]),))
    return ", ".join(map(str, ints))


def _kernel(fn: str, reads: tuple[int, ...], flops: int, dilation: bool) -> OpaqueKernel:
    """`fn(reads..., out, kh, kw, sh, sw, ph, pw, dh, dw | count_include_pad)`: about
    `flops` operations per tap, over the pooled shape."""
    def call(args, out, a, shapes):
        return [f"{fn}({''.join(args[i] + ', ' for i in reads)}{out}, {_ints(a, dilation)})"]

    def cost(shapes, out, a):
        kernel = pair(a["kernel_size"], "kernel_size")
        pooled = out if len(shapes) == 1 else shapes[-1]
        return pooled, flops * kernel[0] * kernel[1]

    return OpaqueKernel(reads=reads, flops=cost, code={"cpu": KernelCode(POOL_SOURCE, call)})


register(Op(name="max_pool2d", family="conv", inputs=("x",), symbol="max pool",
            kind="window", attrs=dict(MAX_ATTRS), shape=_shape("max_pool2d"), ref=_max_ref,
            formula="y[n, c, i, j] = max over the window at (i·sh - ph, j·sw - pw) of x "
                    "(padding counts as -inf; PyTorch's max_pool2d)",
            gradient="dx = max_pool2d_grad(x, g): each window's g added at its first maximum",
            grad=lambda g, xs, y, a: [F.max_pool2d_grad(xs[0], g, **a)],
            opaque=_kernel("max_pool2d_cpu", (0,), 1, True)))
register(Op(name="max_pool2d_grad", family="internal", internal=True, inputs=("x", "g"),
            symbol="max pool∂", kind="window", attrs=dict(MAX_ATTRS),
            shape=_shape("max_pool2d"), ref=_max_grad_ref,
            formula="dx = g of each window added at the window's first maximum of x",
            gradient="none: used only in first derivatives",
            opaque=_kernel("max_pool2d_grad_cpu", (0, 1), 1, True)))


# ---- average pooling --------------------------------------------------------------------

def _divisor(shape, a, who="avg_pool2d"):
    """How many values each window averages: the whole window, or its unpadded part."""
    ones = np.ones((1, 1, *shape[2:]))
    cols, (kernel, *_) = _cols(ones, a, who)
    if a["count_include_pad"]:
        return float(kernel[0] * kernel[1])
    return cols.sum(axis=(-2, -1))


def _avg_ref(x, **a):
    cols, _ = _cols(x, a, "avg_pool2d")
    return cols.sum(axis=(-2, -1)) / _divisor(x.shape, a)


def _avg_grad_ref(like, g, **a):
    _, kernel, stride, dil, pads = _geometry(like.shape, a, "avg_pool2d")
    share = g / _divisor(like.shape, a)
    cols = np.broadcast_to(share[..., None, None], (*share.shape, *kernel))
    return scatter_windows(cols, _padded(like.shape, pads), stride, dil, pads, like.shape)


register(Op(name="avg_pool2d", family="conv", inputs=("x",), symbol="avg pool",
            kind="window", attrs=dict(AVG_ATTRS), shape=_shape("avg_pool2d"), ref=_avg_ref,
            formula="y[n, c, i, j] = mean over the window at (i·sh - ph, j·sw - pw) of x "
                    "(zero padding counted unless count_include_pad is false; PyTorch's "
                    "avg_pool2d)",
            gradient="dx = avg_pool2d_grad(g): each window's g / its count spread over it",
            grad=lambda g, xs, y, a: [F.avg_pool2d_grad(xs[0], g, **a)],
            opaque=_kernel("avg_pool2d_cpu", (0,), 1, False)))
register(Op(name="avg_pool2d_grad", family="internal", internal=True, inputs=("like", "g"),
            symbol="avg pool∂", kind="window", attrs=dict(AVG_ATTRS),
            shape=_shape("avg_pool2d"), ref=_avg_grad_ref,
            formula="dx = each window's g divided by its count, spread over the window",
            gradient="dg = avg_pool2d(c)",
            grad=lambda c, xs, y, a: [None, F.avg_pool2d(c, **a)],
            opaque=_kernel("avg_pool2d_grad_cpu", (1,), 1, False)))
