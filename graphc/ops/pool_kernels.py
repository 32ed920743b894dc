"""The CPU (Numba) kernels of max and average pooling and their gradients, as source
text compiled once per dtype (`{jit}` is its decorator). `kh, kw` window, `sh, sw`
stride, `ph, pw` padding, `dh, dw` dilation; sizes come from the arrays."""

POOL_SOURCE = '''
{jit}
def max_pool2d_at(x, n, c, oy, ox, kh, kw, sh, sw, ph, pw, dh, dw):
    """(value, row, column) of the first maximum of one window (NaN wins, as in torch)."""
    best, by, bx = -np.inf, -1, -1
    for ky in range(kh):
        iy = oy * sh - ph + ky * dh
        if iy < 0 or iy >= x.shape[2]:
            continue
        for kx in range(kw):
            ix = ox * sw - pw + kx * dw
            if ix < 0 or ix >= x.shape[3]:
                continue
            v = x[n, c, iy, ix]
            if v > best or (v != v and best == best) or by < 0:
                best, by, bx = v, iy, ix
    return best, by, bx


{jit}
def max_pool2d_cpu(x, out, kh, kw, sh, sw, ph, pw, dh, dw):
    for n in range(out.shape[0]):
        for c in range(out.shape[1]):
            for oy in range(out.shape[2]):
                for ox in range(out.shape[3]):
                    out[n, c, oy, ox] = max_pool2d_at(x, n, c, oy, ox, kh, kw, sh, sw,
                                                      ph, pw, dh, dw)[0]


{jit}
def max_pool2d_grad_cpu(x, g, out, kh, kw, sh, sw, ph, pw, dh, dw):
    out[...] = 0.0
    for n in range(g.shape[0]):
        for c in range(g.shape[1]):
            for oy in range(g.shape[2]):
                for ox in range(g.shape[3]):
                    _, iy, ix = max_pool2d_at(x, n, c, oy, ox, kh, kw, sh, sw, ph, pw, dh, dw)
                    out[n, c, iy, ix] += g[n, c, oy, ox]


{jit}
def avg_pool2d_count(h, w, oy, ox, kh, kw, sh, sw, ph, pw, include_pad):
    """How many values the window at (oy, ox) averages."""
    if include_pad:
        return kh * kw
    y0, x0 = oy * sh - ph, ox * sw - pw
    rows = min(y0 + kh, h) - max(y0, 0)
    cols = min(x0 + kw, w) - max(x0, 0)
    return rows * cols


{jit}
def avg_pool2d_cpu(x, out, kh, kw, sh, sw, ph, pw, include_pad):
    h, w = x.shape[2], x.shape[3]
    for n in range(out.shape[0]):
        for c in range(out.shape[1]):
            for oy in range(out.shape[2]):
                for ox in range(out.shape[3]):
                    y0, x0 = oy * sh - ph, ox * sw - pw
                    s = 0.0
                    for iy in range(max(y0, 0), min(y0 + kh, h)):
                        for ix in range(max(x0, 0), min(x0 + kw, w)):
                            s += x[n, c, iy, ix]
                    count = avg_pool2d_count(h, w, oy, ox, kh, kw, sh, sw, ph, pw,
                                             include_pad)
                    out[n, c, oy, ox] = s / count


{jit}
def avg_pool2d_grad_cpu(g, out, kh, kw, sh, sw, ph, pw, include_pad):
    h, w = out.shape[2], out.shape[3]
    out[...] = 0.0
    for n in range(g.shape[0]):
        for c in range(g.shape[1]):
            for oy in range(g.shape[2]):
                for ox in range(g.shape[3]):
                    y0, x0 = oy * sh - ph, ox * sw - pw
                    count = avg_pool2d_count(h, w, oy, ox, kh, kw, sh, sw, ph, pw,
                                             include_pad)
                    share = g[n, c, oy, ox] / count
                    for iy in range(max(y0, 0), min(y0 + kh, h)):
                        for ix in range(max(x0, 0), min(x0 + kw, w)):
                            out[n, c, iy, ix] += share
'''
