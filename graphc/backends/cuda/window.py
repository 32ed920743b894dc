"""CUDA kernels for the window ops (conv2d and its gradients, max and average pooling and
theirs): direct loops, a thread per output element (grid-stride), gathers rather than
scatters so that no two threads write one element. Attributes come in as int arguments,
in the order the op files' CPU kernels take them (conv.kernel_ints, pool._ints)."""

from __future__ import annotations

from graphc.backends.cuda.templates import JIT

SOURCE = '''
{jit}
def conv2d_k(x, w, b, has_bias, y, sh, sw, ph, pw, dh, dw, groups):
    """y = conv2d(x, w) (+ b): a thread per output element."""
    n_, c_, h_, w_ = x.shape
    f_, cg, kh, kw = w.shape
    oh, ow = y.shape[2], y.shape[3]
    fg = f_ // groups
    for e in range(cuda.grid(1), n_ * f_ * oh * ow, cuda.gridsize(1)):
        j = e % ow
        r = e // ow
        i = r % oh
        r = r // oh
        f = r % f_
        n = r // f_
        acc = b[f] if has_bias else F(0.0)
        base = (f // fg) * cg
        for c in range(cg):
            for u in range(kh):
                hi = i * sh - ph + u * dh
                if hi >= 0 and hi < h_:
                    for v in range(kw):
                        wi = j * sw - pw + v * dw
                        if wi >= 0 and wi < w_:
                            acc += w[f, c, u, v] * x[n, base + c, hi, wi]
        y[n, f, i, j] = acc


{jit}
def conv2d_input_k(g, w, dx, sh, sw, ph, pw, dh, dw, groups):
    """dx = the transposed convolution of g with w: a thread per element of dx, summing
    the outputs whose windows read it."""
    n_, c_, h_, w_ = dx.shape
    f_, cg, kh, kw = w.shape
    oh, ow = g.shape[2], g.shape[3]
    fg = f_ // groups
    for e in range(cuda.grid(1), n_ * c_ * h_ * w_, cuda.gridsize(1)):
        wi = e % w_
        r = e // w_
        hi = r % h_
        r = r // h_
        cc = r % c_
        n = r // c_
        grp = cc // cg
        c = cc % cg
        acc = F(0.0)
        for fl in range(fg):
            f = grp * fg + fl
            for u in range(kh):
                t = hi + ph - u * dh
                if t >= 0 and t % sh == 0 and t // sh < oh:
                    i = t // sh
                    for v in range(kw):
                        s = wi + pw - v * dw
                        if s >= 0 and s % sw == 0 and s // sw < ow:
                            acc += w[f, c, u, v] * g[n, f, i, s // sw]
        dx[n, cc, hi, wi] = acc


{jit}
def conv2d_weight_k(x, g, dw_, sh, sw, ph, pw, dh, dw, groups):
    """dw = the correlation of x with g: a thread per weight element."""
    n_, c_, h_, w_ = x.shape
    f_, cg, kh, kw = dw_.shape
    oh, ow = g.shape[2], g.shape[3]
    fg = f_ // groups
    for e in range(cuda.grid(1), f_ * cg * kh * kw, cuda.gridsize(1)):
        v = e % kw
        r = e // kw
        u = r % kh
        r = r // kh
        c = r % cg
        f = r // cg
        cc = (f // fg) * cg + c
        acc = F(0.0)
        for n in range(n_):
            for i in range(oh):
                hi = i * sh - ph + u * dh
                if hi >= 0 and hi < h_:
                    for j in range(ow):
                        wi = j * sw - pw + v * dw
                        if wi >= 0 and wi < w_:
                            acc += g[n, f, i, j] * x[n, cc, hi, wi]
        dw_[f, c, u, v] = acc


{device}
def _first_max(x, n, c, i, j, kh, kw, sh, sw, ph, pw, dh, dw):
    """The flat position (row * W + column) of a window's first maximum."""
    h_, w_ = x.shape[2], x.shape[3]
    best = F(-inf)
    at = -1
    for u in range(kh):
        hi = i * sh - ph + u * dh
        if hi >= 0 and hi < h_:
            for v in range(kw):
                wi = j * sw - pw + v * dw
                if wi >= 0 and wi < w_:
                    if x[n, c, hi, wi] > best or at < 0:
                        best = x[n, c, hi, wi]
                        at = hi * w_ + wi
    return at


{jit}
def max_pool2d_k(x, y, kh, kw, sh, sw, ph, pw, dh, dw):
    """y = the maximum of each window (padding never wins): a thread per output."""
    n_, c_, oh, ow = y.shape
    w_ = x.shape[3]
    for e in range(cuda.grid(1), n_ * c_ * oh * ow, cuda.gridsize(1)):
        j = e % ow
        r = e // ow
        i = r % oh
        r = r // oh
        c = r % c_
        n = r // c_
        at = _first_max(x, n, c, i, j, kh, kw, sh, sw, ph, pw, dh, dw)
        y[n, c, i, j] = x[n, c, at // w_, at % w_]


{jit}
def max_pool2d_grad_k(x, g, dx, kh, kw, sh, sw, ph, pw, dh, dw):
    """dx: each window's g at its first maximum, gathered per element of x."""
    n_, c_, h_, w_ = x.shape
    oh, ow = g.shape[2], g.shape[3]
    for e in range(cuda.grid(1), n_ * c_ * h_ * w_, cuda.gridsize(1)):
        wi = e % w_
        r = e // w_
        hi = r % h_
        r = r // h_
        c = r % c_
        n = r // c_
        acc = F(0.0)
        for u in range(kh):
            t = hi + ph - u * dh
            if t >= 0 and t % sh == 0 and t // sh < oh:
                for v in range(kw):
                    s = wi + pw - v * dw
                    if s >= 0 and s % sw == 0 and s // sw < ow:
                        i = t // sh
                        j = s // sw
                        if _first_max(x, n, c, i, j, kh, kw, sh, sw, ph, pw, dh,
                                      dw) == hi * w_ + wi:
                            acc += g[n, c, i, j]
        dx[n, c, hi, wi] = acc


{device}
def _divisor(h_, w_, i, j, kh, kw, sh, sw, ph, pw, include_pad):
    if include_pad:
        return F(kh * kw)
    rows = min(i * sh - ph + kh, h_) - max(i * sh - ph, 0)
    cols = min(j * sw - pw + kw, w_) - max(j * sw - pw, 0)
    return F(rows * cols)


{jit}
def avg_pool2d_k(x, y, kh, kw, sh, sw, ph, pw, include_pad):
    """y = the mean of each window: a thread per output."""
    n_, c_, oh, ow = y.shape
    h_, w_ = x.shape[2], x.shape[3]
    for e in range(cuda.grid(1), n_ * c_ * oh * ow, cuda.gridsize(1)):
        j = e % ow
        r = e // ow
        i = r % oh
        r = r // oh
        c = r % c_
        n = r // c_
        acc = F(0.0)
        for u in range(kh):
            hi = i * sh - ph + u
            if hi >= 0 and hi < h_:
                for v in range(kw):
                    wi = j * sw - pw + v
                    if wi >= 0 and wi < w_:
                        acc += x[n, c, hi, wi]
        y[n, c, i, j] = acc / _divisor(h_, w_, i, j, kh, kw, sh, sw, ph, pw, include_pad)


{jit}
def avg_pool2d_grad_k(g, dx, kh, kw, sh, sw, ph, pw, include_pad):
    """dx: each window's g divided among its elements, gathered per element of x."""
    n_, c_, h_, w_ = dx.shape
    oh, ow = g.shape[2], g.shape[3]
    for e in range(cuda.grid(1), n_ * c_ * h_ * w_, cuda.gridsize(1)):
        wi = e % w_
        r = e // w_
        hi = r % h_
        r = r // h_
        c = r % c_
        n = r // c_
        acc = F(0.0)
        for u in range(kh):
            t = hi + ph - u
            if t >= 0 and t % sh == 0 and t // sh < oh:
                for v in range(kw):
                    s = wi + pw - v
                    if s >= 0 and s % sw == 0 and s // sw < ow:
                        i = t // sh
                        j = s // sw
                        acc += g[n, c, i, j] / _divisor(h_, w_, i, j, kh, kw, sh, sw, ph,
                                                        pw, include_pad)
        dx[n, c, hi, wi] = acc
'''


def source() -> str:
    from graphc.backends.cuda.templates import DEVICE

    return SOURCE.format(jit=JIT, device=DEVICE).strip("\n")


def launch(op: str, args: list[str], out: str, attrs: dict, shapes: list) -> str | None:
    """The launch statement of `op`'s kernel (args and out are device array expressions),
    or None for an op without one here."""
    from graphc.ops.conv import kernel_ints
    from graphc.ops.pool import _ints

    if op == "conv2d":
        bias = [args[2], "True"] if len(args) == 3 else [f"{args[1]}.reshape(-1)", "False"]
        ints = kernel_ints(attrs, shapes[1][2:])
        return f"conv2d_k[grid({out}.size), BLOCK]({args[0]}, {args[1]}, " \
               f"{', '.join(bias)}, {out}, {ints})"
    if op in ("conv2d_grad_input", "conv2d_grad_weight"):
        fn = "conv2d_input_k" if op == "conv2d_grad_input" else "conv2d_weight_k"
        ints = kernel_ints(attrs, shapes[1 if op == "conv2d_grad_input" else 2][2:])
        return f"{fn}[grid({out}.size), BLOCK]({args[0]}, {args[1]}, {out}, {ints})"
    if op in ("max_pool2d", "max_pool2d_grad"):
        reads = ", ".join(args[:1 if op == "max_pool2d" else 2])
        return f"{op}_k[grid({out}.size), BLOCK]({reads}, {out}, {_ints(attrs, True)})"
    if op == "avg_pool2d":
        return f"avg_pool2d_k[grid({out}.size), BLOCK]({args[0]}, {out}, {_ints(attrs, False)})"
    if op == "avg_pool2d_grad":
        return f"avg_pool2d_grad_k[grid({out}.size), BLOCK]({args[1]}, {out}, " \
               f"{_ints(attrs, False)})"
    return None
