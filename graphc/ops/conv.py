"""2-D convolution (PyTorch's conv2d) and its two gradients, each with a NumPy reference
(windows of `sliding_window_view`, contracted by einsum) and an opaque CPU kernel of its
own. The gradients are ops of their own, so the backward pass stays a graph: the input's
is a transposed convolution, the weight's a correlation of the input with the gradient.
"""

from __future__ import annotations

import numpy as np

from graphc import dims
from graphc.errors import InputError
from graphc.ir import format_shape
from graphc.ops.conv_kernels import CONV_SOURCE
from graphc.ops.registry import Attr, KernelCode, Op, OpaqueKernel, register
from graphc.sugar import F

# ---- attributes -------------------------------------------------------------------------


def pair(value, what: str) -> tuple[int, int]:
    """An int or a pair of ints, as a pair; raises ValueError naming the attribute."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        return (int(value[0]), int(value[1]))
    raise ValueError(f"{what} must be an integer or a pair of integers, not {value!r}")


def conv_attrs(a: dict, kernel: tuple[int, int]) -> tuple:
    """(stride, dilation, (top, bottom, left, right) padding) from conv2d's attributes."""
    stride, dil = pair(a["stride"], "stride"), pair(a["dilation"], "dilation")
    if min(stride) < 1 or min(dil) < 1:
        raise ValueError(f"stride {list(stride)} and dilation {list(dil)} must be >= 1")
    p = a["padding"]
    if p == "valid":
        pads = (0, 0, 0, 0)
    elif p == "same":
        if stride != (1, 1):
            raise ValueError(f"padding 'same' needs stride 1, got {list(stride)} "
                             "(as in PyTorch; give the padding as numbers)")
        total = [d * (k - 1) for d, k in zip(dil, kernel)]  # the extra one goes last
        pads = (total[0] // 2, total[0] - total[0] // 2, total[1] // 2, total[1] - total[1] // 2)
    else:
        ph, pw = pair(p, "padding (or 'same', 'valid')")
        if min(ph, pw) < 0:
            raise ValueError(f"padding {[ph, pw]} must be >= 0")
        pads = (ph, ph, pw, pw)
    return stride, dil, pads


def out_size(size, pad: int, span: int, stride: int, what: str, axis: str):
    """Output length along one axis: (size + pad - span) // stride + 1; `span` is the
    dilated kernel's extent. Symbolic sizes give a derived dim (`(H - 5)//2 + 1`)."""
    if isinstance(size, int):
        if size + pad < span:  # an InputError (a ValueError) when a run binds the size
            raise InputError(f"the {what} window spans {span} along {axis} but the padded "
                             f"input is only {size + pad} long; pad the input or use a "
                             "smaller window")
        return (size + pad - span) // stride + 1
    return dims.add(dims.floordiv(dims.add(size, pad - span), stride), 1)


def windows(xp: np.ndarray, kernel, stride, dil) -> np.ndarray:
    """The view [N, C, OH, OW, KH, KW] of padded `xp`: each output pixel's input patch."""
    span = [d * (k - 1) + 1 for d, k in zip(dil, kernel)]
    v = np.lib.stride_tricks.sliding_window_view(xp, span, axis=(2, 3))
    return v[:, :, ::stride[0], ::stride[1], ::dil[0], ::dil[1]]


def scatter_windows(cols: np.ndarray, padded: tuple, stride, dil, pads, like) -> np.ndarray:
    """The adjoint of `windows`: cols [N, C, OH, OW, KH, KW] added back into an array of
    the padded shape `padded` (one vectorized add per kernel position), then unpadded."""
    out = np.zeros(padded, dtype=cols.dtype)
    oh, ow, kh, kw = cols.shape[2:]
    for i in range(kh):
        for j in range(kw):
            r, c = i * dil[0], j * dil[1]
            out[:, :, r:r + stride[0] * (oh - 1) + 1:stride[0],
                c:c + stride[1] * (ow - 1) + 1:stride[1]] += cols[:, :, :, :, i, j]
    t, _, left, _ = pads
    return out[:, :, t:t + like[2], left:left + like[3]]


def pad(x: np.ndarray, pads, value=0.0) -> np.ndarray:
    t, b, left, r = pads
    return np.pad(x, ((0, 0), (0, 0), (t, b), (left, r)), constant_values=value)


CONV_ATTRS = {
    "stride": Attr("json", 1, doc="an int or [sh, sw]"),
    "padding": Attr("json", 0, doc="an int, [ph, pw], 'valid' or 'same' (stride 1)"),
    "dilation": Attr("json", 1, doc="an int or [dh, dw]: the spacing of kernel taps"),
    "groups": Attr("size", 1, doc="channel groups: in and out channels split evenly"),
}


def _geometry(xs_shape, ws_shape, a, who: str = "conv2d"):
    """Checks x [N, C, H, W] against w [F, C/groups, KH, KW]; the output shape and the
    attributes, normalized."""
    if len(xs_shape) != 4 or len(ws_shape) != 4:
        raise ValueError(f"{who} needs x [N, C, H, W] and w [F, C/groups, KH, KW], got "
                         f"x {format_shape(xs_shape)} and w {format_shape(ws_shape)}")
    n, c, h, w = xs_shape
    f, cg, kh, kw = ws_shape
    if not all(isinstance(d, int) for d in (c, f, cg, kh, kw)):
        raise ValueError(f"{who} needs known channel and kernel sizes, got x "
                         f"{format_shape(xs_shape)} and w {format_shape(ws_shape)}")
    g = a["groups"]
    if g < 1 or c % g or f % g:
        raise ValueError(f"{who}: groups={g} must divide the input's {c} channels and the "
                         f"{f} filters")
    if cg != c // g:
        raise ValueError(f"{who}: w has {cg} input channels per group but x has {c} "
                         f"channels in {g} group(s), i.e. {c // g} per group")
    stride, dil, pads = conv_attrs(a, (kh, kw))
    oh = out_size(h, pads[0] + pads[1], dil[0] * (kh - 1) + 1, stride[0], "kernel", "H")
    ow = out_size(w, pads[2] + pads[3], dil[1] * (kw - 1) + 1, stride[1], "kernel", "W")
    return (n, f, oh, ow), stride, dil, pads


def _conv_shape(shapes, a):
    out, *_ = _geometry(shapes[0], shapes[1], a)
    if len(shapes) == 3 and tuple(shapes[2]) != (out[1],):
        raise ValueError(f"conv2d's bias must be [{out[1]}] (one per filter), got "
                         f"{format_shape(shapes[2])}")
    return out


def _grouped(x: np.ndarray, g: int) -> np.ndarray:
    """[N, C, ...] -> [N, G, C/G, ...]."""
    return x.reshape(x.shape[0], g, x.shape[1] // g, *x.shape[2:])


def _conv_ref(x, w, b=None, *, stride, padding, dilation, groups):
    _, st, dil, pads = _geometry(x.shape, w.shape, dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups))
    cols = _grouped(windows(pad(x, pads), w.shape[2:], st, dil), groups)
    wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])
    y = np.einsum("ngchwij,gfcij->ngfhw", cols, wg, optimize=True)
    y = y.reshape(x.shape[0], w.shape[0], *y.shape[3:])
    return y if b is None else y + b[:, None, None]


def _grad_input_ref(g, w, like, *, stride, padding, dilation, groups):
    _, st, dil, pads = _geometry(like.shape, w.shape, dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups))
    wg = w.reshape(groups, w.shape[0] // groups, *w.shape[1:])
    cols = np.einsum("ngfhw,gfcij->ngchwij", _grouped(g, groups), wg, optimize=True)
    cols = cols.reshape(g.shape[0], like.shape[1], *cols.shape[3:])
    padded = (like.shape[0], like.shape[1], like.shape[2] + pads[0] + pads[1],
              like.shape[3] + pads[2] + pads[3])
    return scatter_windows(cols, padded, st, dil, pads, like.shape)


def _grad_weight_ref(x, g, like, *, stride, padding, dilation, groups):
    _, st, dil, pads = _geometry(x.shape, like.shape, dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups))
    cols = _grouped(windows(pad(x, pads), like.shape[2:], st, dil), groups)
    dw = np.einsum("ngfhw,ngchwij->gfcij", _grouped(g, groups), cols, optimize=True)
    return dw.reshape(like.shape)


def _conv_grad(g, xs, y, a):
    x, w = xs[:2]
    out = [F.conv2d_grad_input(g, w, x, **a), F.conv2d_grad_weight(x, g, w, **a)]
    return out + ([F.sum(g, axis=[0, 2, 3])] if len(xs) == 3 else [])


# ---- kernels: im2col + BLAS (conv_kernels.py), attributes passed as literal ints --------

def kernel_ints(a: dict, kernel) -> str:
    """stride, top and left padding, dilation and groups: the kernels' int arguments."""
    stride, dil, pads = conv_attrs(a, kernel)
    return ", ".join(map(str, (*stride, pads[0], pads[2], *dil, a["groups"])))


def _wide(a: dict, kernel) -> bool:
    """Stride 1: the kernels that copy each patch row as a run of the padded image."""
    return conv_attrs(a, kernel)[0] == (1, 1)


def _scratch(x_at: int, w_at: int, out_at: int):
    """The scratch of a convolution kernel: cols [C/groups * KH * KW, N * OH * OW] and
    the product's rows [F/groups, N * OH * OW]; at stride 1, the padded image [N, C * Hp
    * Wp] first, and N * ln columns (output rows at the padded width Wp, see
    conv_kernels.py). `x_at`, `w_at`, `out_at`: the args (-1: the output) with the
    input's, the weight's and the convolution output's shapes."""
    def scratch(shapes, out, a):
        pick = [out if k < 0 else shapes[k] for k in (x_at, w_at, out_at)]
        (n, c, *_), (f, cg, kh, kw), (_, _, oh, ow) = pick
        k, fg = cg * kh * kw, f // a["groups"]
        if not _wide(a, (kh, kw)):
            pixels = dims.mul(n, oh, ow)
            return [(k, pixels), (fg, pixels)]
        _, dil, _ = conv_attrs(a, (kh, kw))
        hp, wp = dims.add(oh, dil[0] * (kh - 1)), dims.add(ow, dil[1] * (kw - 1))
        cols = dims.mul(n, dims.add(dims.mul(dims.add(oh, -1), wp), ow))
        return [(n, dims.mul(c, hp, wp)), (k, cols), (fg, cols)]

    return scratch


def _kernel(fn: str, reads: tuple[int, ...], w_at: int, flops_of: int,
            scratch) -> OpaqueKernel:
    """`fn(read0, read1, [bias, has_bias,] out, scratch..., ints...)`, or at stride 1
    its `_wide` version (without the stride ints); conv2d's bias (if any) is added as
    its output is written. `w_at`: the arg holding the weight's shape; `flops_of`: the
    arg (or -1: the output) over whose elements it does 2 * C/groups * KH * KW
    operations."""
    def call(args, out, a, shapes, scratch_names):
        bias = []
        if len(reads) == 3:  # conv2d: without a bias, any 1-d view stands in for it
            bias = [args[2], "True"] if len(args) == 3 else [f"{args[1]}[:, 0, 0, 0]",
                                                               "False"]
        ints = kernel_ints(a, shapes[w_at][2:])
        name = fn
        if _wide(a, shapes[w_at][2:]):
            name = fn.replace("_cpu", "_wide_cpu")
            ints = ints.split(", ", 2)[2]  # no stride
        return [f"{name}({', '.join([args[reads[0]], args[reads[1]], *bias, out])}, "
                f"{', '.join(scratch_names)}, {ints})"]

    def flops(shapes, out, a):
        w = shapes[w_at]
        return (out if flops_of < 0 else shapes[flops_of]), 2 * w[1] * w[2] * w[3]

    return OpaqueKernel(reads=reads, flops=flops, scratch=scratch,
                        code={"cpu": KernelCode(CONV_SOURCE, call)})


register(Op(name="conv2d", family="conv", inputs=("x", "w", "b"), min_inputs=2,
            symbol="conv", kind="window", attrs=dict(CONV_ATTRS),
            formula="y[n, f, i, j] = b[f] + Σ_c,u,v w[f, c, u, v] · x_pad[n, g·C/G + c, "
                    "i·sh + u·dh, j·sw + v·dw] (PyTorch's conv2d: cross-correlation; "
                    "x [N, C, H, W], w [F, C/groups, KH, KW], b [F])",
            gradient="dx = conv2d_grad_input(g, w) (a transposed convolution), "
                     "dw = conv2d_grad_weight(x, g), db = sum(g) over N, H, W",
            shape=_conv_shape, ref=_conv_ref, grad=_conv_grad,
            opaque=_kernel("conv2d_cpu", (0, 1, 2), 1, -1, _scratch(0, 1, -1))))


def _grad_input_grad(c, xs, y, a):
    g, w, like = xs
    return [F.conv2d(c, w, **a), F.conv2d_grad_weight(c, g, w, **a), None]


def _grad_weight_grad(c, xs, y, a):
    x, g, like = xs
    return [F.conv2d_grad_input(g, c, x, **a), F.conv2d(x, c, **a), None]


def _checked_g(x, w, g, a, who: str) -> None:
    """Refuse a `g` that is not the shape of the convolution of x by w."""
    out, *_ = _geometry(x, w, a, who)
    if tuple(g) != out:
        raise ValueError(f"{who}: g is {format_shape(g)}, the convolution's output "
                         f"{format_shape(out)}")


def _grad_input_shape(shapes, a):  # (g, w, like): dx has the shape of x (`like`)
    _checked_g(shapes[2], shapes[1], shapes[0], a, "conv2d_grad_input")
    return tuple(shapes[2])


def _grad_weight_shape(shapes, a):  # (x, g, like): dw has the shape of w (`like`)
    _checked_g(shapes[0], shapes[2], shapes[1], a, "conv2d_grad_weight")
    return tuple(shapes[2])


register(Op(name="conv2d_grad_input", family="internal", internal=True,
            inputs=("g", "w", "like"), symbol="conv2dᵀ", kind="window",
            attrs=dict(CONV_ATTRS), shape=_grad_input_shape, ref=_grad_input_ref,
            formula="dx = the transposed convolution of g with w, shaped like x",
            gradient="dg = conv2d(c, w), dw = conv2d_grad_weight(c, g)",
            grad=_grad_input_grad,
            opaque=_kernel("conv2d_input_cpu", (0, 1), 1, 0, _scratch(2, 1, 0))))
register(Op(name="conv2d_grad_weight", family="internal", internal=True,
            inputs=("x", "g", "like"), symbol="conv2d∂w", kind="window",
            attrs=dict(CONV_ATTRS), shape=_grad_weight_shape, ref=_grad_weight_ref,
            formula="dw[f, c, u, v] = Σ_n,i,j g[n, f, i, j] · x_pad[n, c, i·sh + u·dh, "
                    "j·sw + v·dw], shaped like w",
            gradient="dx = conv2d_grad_input(g, c), dg = conv2d(x, c)",
            grad=_grad_weight_grad,
            opaque=_kernel("conv2d_weight_cpu", (0, 1), 2, 1, _scratch(0, 2, 1))))
