"""The CPU (Numba) kernels of max and average pooling and their gradients, as source
text compiled once per dtype (`{jit}` is its decorator). `kh, kw` window, `sh, sw`
stride, `ph, pw` padding, `dh, dw` dilation; sizes come from the arrays. Each window's
taps inside the input are a range computed up front (`pool_taps`), so the loops over
them have no branch; the loops run image by image and channel by channel, so each plane
is read in order; everything else is written inline (calls per window cost 5x). 2 x 2
max pooling at stride 2 has a kernel of its own (`max_pool2x2`), its loops of known
length unrolled: 20x faster than the general loops on the digits CNN's 8 x 8 images."""

POOL_SOURCE = '''
{jit}
def pool_taps(o, s, p, d, k, size):
    """The taps [lo, hi) of a window at output o that fall inside an axis of `size`."""
    start = o * s - p
    if d == 1:  # no division (the loops call this once per window)
        lo, hi = max(0, -start), min(k, size - start)
        return start, lo, max(lo, hi)
    lo = 0 if start >= 0 else (-start + d - 1) // d
    hi = min(k, (size - 1 - start) // d + 1) if size - 1 - start >= 0 else 0
    return start, lo, max(lo, hi)


{jit}
def max_pool2x2(x, out, grad, g):
    """max_pool2d_cpu (or, with `grad`, max_pool2d_grad_cpu, g the pooled gradient) for
    2 x 2 windows at stride 2 that all lie inside x: loops of known length, which LLVM
    unrolls (20x faster than the general loops on 8 x 8 images). The windows do not
    overlap, so the gradient may write each window whole; the first maximum's tap `k`
    is picked by selects, not branches (3x faster on random images, where a branch on
    which value wins is mispredicted about every other time)."""
    if grad:
        out[...] = 0.0  # rows and columns no window covers
    # the gradient: one store per window while x fits in cache (measured: 43 against
    # 86 us on [64, 16, 8, 8]), else every element written once, in order (323 against
    # 646 us on [64, 6, 28, 28])
    small = x.size <= 131072
    for n in range(g.shape[0]):
        for c in range(g.shape[1]):
            for oy in range(g.shape[2]):
                for ox in range(g.shape[3]):
                    k = 0
                    best = x[n, c, 2 * oy, 2 * ox]
                    for t in range(1, 4):
                        v = x[n, c, 2 * oy + t // 2, 2 * ox + t % 2]
                        take = (not (v <= best)) & (best == best)  # v > best, or NaN
                        best = v if take else best
                        k = t if take else k
                    if grad and small:
                        out[n, c, 2 * oy + k // 2, 2 * ox + k % 2] = g[n, c, oy, ox]
                    elif grad:
                        gv = g[n, c, oy, ox]
                        for t in range(4):
                            out[n, c, 2 * oy + t // 2, 2 * ox + t % 2] = gv if k == t else 0.0
                    else:
                        out[n, c, oy, ox] = best


{jit}
def pool2x2(x, pooled, kh, kw, sh, sw, ph, pw, dh, dw):
    """Whether max_pool2x2 does this pooling of x to `pooled` [N, C, OH, OW]."""
    return (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
            and 2 * pooled.shape[2] <= x.shape[2] and 2 * pooled.shape[3] <= x.shape[3])


{jit}
def max_pool2d_cpu(x, out, kh, kw, sh, sw, ph, pw, dh, dw):
    """out = each window's maximum (NaN wins, as in torch)."""
    if pool2x2(x, out, kh, kw, sh, sw, ph, pw, dh, dw):
        max_pool2x2(x, out, False, out)
        return
    for n in range(out.shape[0]):
        for c in range(out.shape[1]):
            for oy in range(out.shape[2]):
                y0, ylo, yhi = pool_taps(oy, sh, ph, dh, kh, x.shape[2])
                for ox in range(out.shape[3]):
                    x0, xlo, xhi = pool_taps(ox, sw, pw, dw, kw, x.shape[3])
                    best = x[n, c, y0 + ylo * dh, x0 + xlo * dw]
                    for ky in range(ylo, yhi):
                        for kx in range(xlo, xhi):
                            v = x[n, c, y0 + ky * dh, x0 + kx * dw]
                            if not (v <= best) and best == best:  # v > best, or NaN
                                best = v
                    out[n, c, oy, ox] = best


{jit}
def max_pool2d_grad_cpu(x, g, out, kh, kw, sh, sw, ph, pw, dh, dw):
    """out = g of each window added at its first maximum."""
    if pool2x2(x, g, kh, kw, sh, sw, ph, pw, dh, dw):
        max_pool2x2(x, out, True, g)
        return
    out[...] = 0.0
    for n in range(g.shape[0]):
        for c in range(g.shape[1]):
            for oy in range(g.shape[2]):
                y0, ylo, yhi = pool_taps(oy, sh, ph, dh, kh, x.shape[2])
                for ox in range(g.shape[3]):
                    x0, xlo, xhi = pool_taps(ox, sw, pw, dw, kw, x.shape[3])
                    by, bx = y0 + ylo * dh, x0 + xlo * dw
                    best = x[n, c, by, bx]
                    for ky in range(ylo, yhi):
                        for kx in range(xlo, xhi):
                            iy, ix = y0 + ky * dh, x0 + kx * dw
                            v = x[n, c, iy, ix]
                            if not (v <= best) and best == best:  # v > best, or NaN
                                best, by, bx = v, iy, ix
                    out[n, c, by, bx] += g[n, c, oy, ox]


{jit}
def avg_pool2d_cpu(x, out, kh, kw, sh, sw, ph, pw, include_pad):
    """out = each window's sum over its count (the whole window with include_pad)."""
    for n in range(out.shape[0]):
        for c in range(out.shape[1]):
            for oy in range(out.shape[2]):
                y0, ylo, yhi = pool_taps(oy, sh, ph, 1, kh, x.shape[2])
                for ox in range(out.shape[3]):
                    x0, xlo, xhi = pool_taps(ox, sw, pw, 1, kw, x.shape[3])
                    count = kh * kw if include_pad else (yhi - ylo) * (xhi - xlo)
                    s = 0.0
                    for iy in range(y0 + ylo, y0 + yhi):
                        for ix in range(x0 + xlo, x0 + xhi):
                            s += x[n, c, iy, ix]
                    out[n, c, oy, ox] = s / count


{jit}
def avg_pool2d_grad_cpu(g, out, kh, kw, sh, sw, ph, pw, include_pad):
    """out = each window's g over its count, spread over the window."""
    out[...] = 0.0
    for n in range(g.shape[0]):
        for c in range(g.shape[1]):
            for oy in range(g.shape[2]):
                y0, ylo, yhi = pool_taps(oy, sh, ph, 1, kh, out.shape[2])
                for ox in range(g.shape[3]):
                    x0, xlo, xhi = pool_taps(ox, sw, pw, 1, kw, out.shape[3])
                    count = kh * kw if include_pad else (yhi - ylo) * (xhi - xlo)
                    share = g[n, c, oy, ox] / count
                    for iy in range(y0 + ylo, y0 + yhi):
                        for ix in range(x0 + xlo, x0 + xhi):
                            out[n, c, iy, ix] += share
'''
