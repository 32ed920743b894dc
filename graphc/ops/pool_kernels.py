"""The CPU (Numba) kernels of max and average pooling and their gradients, as source
text compiled once per dtype (`{jit}` is its decorator). `kh, kw` window, `sh, sw`
stride, `ph, pw` padding, `dh, dw` dilation; sizes come from the arrays. Each window's
taps inside the input are a range computed up front (`pool_taps`), so the loops over
them have no branch; everything else is written inline (calls per window cost 5x)."""

POOL_SOURCE = '''
{jit}
def pool_taps(o, s, p, d, k, size):
    """The taps [lo, hi) of a window at output o that fall inside an axis of `size`."""
    start = o * s - p
    lo = 0 if start >= 0 else (-start + d - 1) // d
    hi = min(k, (size - 1 - start) // d + 1) if size - 1 - start >= 0 else 0
    return start, lo, max(lo, hi)


{jit}
def max_pool2d_cpu(x, out, kh, kw, sh, sw, ph, pw, dh, dw):
    """out = each window's maximum (NaN wins, as in torch)."""
    for oy in range(out.shape[2]):
        y0, ylo, yhi = pool_taps(oy, sh, ph, dh, kh, x.shape[2])
        for ox in range(out.shape[3]):
            x0, xlo, xhi = pool_taps(ox, sw, pw, dw, kw, x.shape[3])
            for n in range(out.shape[0]):
                for c in range(out.shape[1]):
                    best = x[n, c, y0 + ylo * dh, x0 + xlo * dw]
                    for ky in range(ylo, yhi):
                        for kx in range(xlo, xhi):
                            v = x[n, c, y0 + ky * dh, x0 + kx * dw]
                            if v > best or (v != v and best == best):
                                best = v
                    out[n, c, oy, ox] = best


{jit}
def max_pool2d_grad_cpu(x, g, out, kh, kw, sh, sw, ph, pw, dh, dw):
    """out = g of each window added at its first maximum."""
    out[...] = 0.0
    for oy in range(g.shape[2]):
        y0, ylo, yhi = pool_taps(oy, sh, ph, dh, kh, x.shape[2])
        for ox in range(g.shape[3]):
            x0, xlo, xhi = pool_taps(ox, sw, pw, dw, kw, x.shape[3])
            for n in range(g.shape[0]):
                for c in range(g.shape[1]):
                    by, bx = y0 + ylo * dh, x0 + xlo * dw
                    best = x[n, c, by, bx]
                    for ky in range(ylo, yhi):
                        for kx in range(xlo, xhi):
                            iy, ix = y0 + ky * dh, x0 + kx * dw
                            v = x[n, c, iy, ix]
                            if v > best or (v != v and best == best):
                                best, by, bx = v, iy, ix
                    out[n, c, by, bx] += g[n, c, oy, ox]


{jit}
def avg_pool2d_cpu(x, out, kh, kw, sh, sw, ph, pw, include_pad):
    """out = each window's sum over its count (the whole window with include_pad)."""
    for oy in range(out.shape[2]):
        y0, ylo, yhi = pool_taps(oy, sh, ph, 1, kh, x.shape[2])
        for ox in range(out.shape[3]):
            x0, xlo, xhi = pool_taps(ox, sw, pw, 1, kw, x.shape[3])
            count = kh * kw if include_pad else (yhi - ylo) * (xhi - xlo)
            for n in range(out.shape[0]):
                for c in range(out.shape[1]):
                    s = 0.0
                    for iy in range(y0 + ylo, y0 + yhi):
                        for ix in range(x0 + xlo, x0 + xhi):
                            s += x[n, c, iy, ix]
                    out[n, c, oy, ox] = s / count


{jit}
def avg_pool2d_grad_cpu(g, out, kh, kw, sh, sw, ph, pw, include_pad):
    """out = each window's g over its count, spread over the window."""
    out[...] = 0.0
    for oy in range(g.shape[2]):
        y0, ylo, yhi = pool_taps(oy, sh, ph, 1, kh, out.shape[2])
        for ox in range(g.shape[3]):
            x0, xlo, xhi = pool_taps(ox, sw, pw, 1, kw, out.shape[3])
            count = kh * kw if include_pad else (yhi - ylo) * (xhi - xlo)
            for n in range(g.shape[0]):
                for c in range(g.shape[1]):
                    share = g[n, c, oy, ox] / count
                    for iy in range(y0 + ylo, y0 + yhi):
                        for ix in range(x0 + xlo, x0 + xhi):
                            out[n, c, iy, ix] += share
'''
