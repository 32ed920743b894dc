"""The CPU (Numba) kernels of conv2d and its gradients, as source text that the backend
compiles once per dtype (`{jit}` is its decorator). Direct loops: the innermost runs
along an output row over the columns whose taps fall inside the input, so it has no
branch and vectorizes. `sh, sw` stride, `ph, pw` top and left padding, `dh, dw`
dilation, `groups` channel groups; the sizes come from the arrays (symbolic N works)."""

CONV_SOURCE = '''
{jit}
def conv_cols(ow, width, sw, pw, kx, dw):
    """The output columns [lo, hi) whose tap kx reads inside the input row."""
    off = kx * dw - pw  # input column = ox * sw + off
    lo = 0 if off >= 0 else (-off + sw - 1) // sw
    hi = (width - 1 - off) // sw + 1 if width - 1 - off >= 0 else 0
    return lo, max(lo, min(ow, hi))


{jit}
def conv2d_cpu(x, w, out, sh, sw, ph, pw, dh, dw, groups):
    """out = conv2d(x, w) (cross-correlation, PyTorch's conv2d without bias)."""
    n_, c_, h_, w_ = x.shape
    f_, cg, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    fg = f_ // groups
    out[...] = 0.0
    for n in range(n_):
        for f in range(f_):
            c0 = (f // fg) * cg
            for c in range(cg):
                for ky in range(kh):
                    for oy in range(oh):
                        iy = oy * sh - ph + ky * dh
                        if iy < 0 or iy >= h_:
                            continue
                        for kx in range(kw):
                            lo, hi = conv_cols(ow, w_, sw, pw, kx, dw)
                            wv = w[f, c, ky, kx]
                            off = kx * dw - pw
                            for ox in range(lo, hi):
                                out[n, f, oy, ox] += wv * x[n, c0 + c, iy, ox * sw + off]


{jit}
def add_channel_bias(out, b):
    """out[n, f, ...] += b[f]."""
    for n in range(out.shape[0]):
        for f in range(out.shape[1]):
            bf = b[f]
            for i in range(out.shape[2]):
                for j in range(out.shape[3]):
                    out[n, f, i, j] += bf


{jit}
def conv2d_input_cpu(g, w, out, sh, sw, ph, pw, dh, dw, groups):
    """out = the gradient of conv2d's input: g scattered back through w."""
    n_, c_, h_, w_ = out.shape
    f_, cg, kh, kw = w.shape
    oh, ow = g.shape[2], g.shape[3]
    fg = f_ // groups
    out[...] = 0.0
    for n in range(n_):
        for f in range(f_):
            c0 = (f // fg) * cg
            for c in range(cg):
                for ky in range(kh):
                    for oy in range(oh):
                        iy = oy * sh - ph + ky * dh
                        if iy < 0 or iy >= h_:
                            continue
                        for kx in range(kw):
                            lo, hi = conv_cols(ow, w_, sw, pw, kx, dw)
                            wv = w[f, c, ky, kx]
                            off = kx * dw - pw
                            for ox in range(lo, hi):
                                out[n, c0 + c, iy, ox * sw + off] += wv * g[n, f, oy, ox]


{jit}
def conv2d_weight_cpu(x, g, out, sh, sw, ph, pw, dh, dw, groups):
    """out = the gradient of conv2d's weight: g correlated with x."""
    n_, c_, h_, w_ = x.shape
    f_, cg, kh, kw = out.shape
    oh, ow = g.shape[2], g.shape[3]
    fg = f_ // groups
    out[...] = 0.0
    for n in range(n_):
        for f in range(f_):
            c0 = (f // fg) * cg
            for c in range(cg):
                for ky in range(kh):
                    for kx in range(kw):
                        lo, hi = conv_cols(ow, w_, sw, pw, kx, dw)
                        off = kx * dw - pw
                        acc = 0.0
                        for oy in range(oh):
                            iy = oy * sh - ph + ky * dh
                            if iy < 0 or iy >= h_:
                                continue
                            for ox in range(lo, hi):
                                acc += g[n, f, oy, ox] * x[n, c0 + c, iy, ox * sw + off]
                        out[f, c, ky, kx] += acc
'''
