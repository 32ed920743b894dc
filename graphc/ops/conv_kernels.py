"""The CPU (Numba) kernels of conv2d and its gradients, as source text that the backend
compiles once per dtype into its helpers module (`{jit}` is its decorator), beside
`matmul2d` (numpy's own BLAS). Each is im2col + one matrix product per channel group:
the patches of every image go into the columns of `cols` [C/groups * KH * KW,
N * OH * OW], so the product's sizes are the filters, the patch length and the whole
batch's pixels (direct loops were 10 to 50 times slower: their inner loops run along an
output row, only OW long). `sh, sw` stride, `ph, pw` top and left padding, `dh, dw`
dilation, `groups` channel groups; sizes come from the arrays (symbolic N works)."""

CONV_SOURCE = '''
{jit}
def conv_cols(ow, width, sw, pw, kx, dw):
    """The output columns [lo, hi) whose tap kx reads inside the input row."""
    off = kx * dw - pw  # input column = ox * sw + off
    lo = 0 if off >= 0 else (-off + sw - 1) // sw
    hi = (width - 1 - off) // sw + 1 if width - 1 - off >= 0 else 0
    return min(lo, ow), max(min(lo, ow), min(ow, hi))


{jit}
def im2col(x, cols, c0, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, add):
    """cols[(c, ky, kx), (n, oy, ox)] = x[n, c0 + c, oy sh - ph + ky dh, ox sw - pw + kx dw]
    (0 in the padding); with `add`, the adjoint: x[...] += cols[...] (col2im)."""
    h, w = x.shape[2], x.shape[3]
    cg = cols.shape[0] // (kh * kw)
    for c in range(cg):
        for ky in range(kh):
            for kx in range(kw):
                row = cols[(c * kh + ky) * kw + kx]
                lo, hi = conv_cols(ow, w, sw, pw, kx, dw)
                off = kx * dw - pw
                for n in range(x.shape[0]):
                    for oy in range(oh):
                        base = (n * oh + oy) * ow
                        iy = oy * sh - ph + ky * dh
                        inside = iy >= 0 and iy < h
                        if add:
                            if inside:
                                for ox in range(lo, hi):
                                    x[n, c0 + c, iy, ox * sw + off] += row[base + ox]
                            continue
                        if not inside:
                            row[base:base + ow] = 0.0
                            continue
                        row[base:base + lo] = 0.0
                        for ox in range(lo, hi):
                            row[base + ox] = x[n, c0 + c, iy, ox * sw + off]
                        row[base + hi:base + ow] = 0.0


{jit}
def to_rows(a, rows, f0, to):
    """rows[f, (n, i)] = a[n, f0 + f, i...] for the group's channels (or back, `to`)."""
    n_, fg = a.shape[0], rows.shape[0]
    flat = a.reshape(n_, a.shape[1], -1)
    p = flat.shape[2]
    for n in range(n_):
        for f in range(fg):
            if to:
                flat[n, f0 + f, :] = rows[f, n * p:(n + 1) * p]
            else:
                rows[f, n * p:(n + 1) * p] = flat[n, f0 + f, :]


{jit}
def conv2d_cpu(x, w, out, sh, sw, ph, pw, dh, dw, groups):
    """out = conv2d(x, w) (cross-correlation, PyTorch's conv2d without bias)."""
    f_, cg, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    fg = f_ // groups
    cols = np.empty((cg * kh * kw, x.shape[0] * oh * ow), x.dtype)
    res = np.empty((fg, x.shape[0] * oh * ow), x.dtype)
    for g in range(groups):
        im2col(x, cols, g * cg, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, False)
        wg = w[g * fg:(g + 1) * fg].reshape(fg, cg * kh * kw)
        matmul2d(wg, False, cols, False, res)
        to_rows(out, res, g * fg, True)


{jit}
def add_channel_bias(out, b):
    """out[n, f, ...] += b[f]."""
    flat = out.reshape(out.shape[0], out.shape[1], -1)
    for n in range(flat.shape[0]):
        for f in range(flat.shape[1]):
            flat[n, f, :] += b[f]


{jit}
def conv2d_input_cpu(g, w, out, sh, sw, ph, pw, dh, dw, groups):
    """out = the gradient of conv2d's input: wᵀ @ g per group, scattered back (col2im)."""
    f_, cg, kh, kw = w.shape
    oh, ow = g.shape[2], g.shape[3]
    fg = f_ // groups
    cols = np.empty((cg * kh * kw, g.shape[0] * oh * ow), g.dtype)
    rows = np.empty((fg, g.shape[0] * oh * ow), g.dtype)
    out[...] = 0.0
    for k in range(groups):
        to_rows(g, rows, k * fg, False)
        wg = w[k * fg:(k + 1) * fg].reshape(fg, cg * kh * kw)
        matmul2d(wg, True, rows, False, cols)
        im2col(out, cols, k * cg, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, True)


{jit}
def conv2d_weight_cpu(x, g, out, sh, sw, ph, pw, dh, dw, groups):
    """out = the gradient of conv2d's weight: g @ colsᵀ per group."""
    f_, cg, kh, kw = out.shape
    oh, ow = g.shape[2], g.shape[3]
    fg = f_ // groups
    cols = np.empty((cg * kh * kw, x.shape[0] * oh * ow), x.dtype)
    rows = np.empty((fg, x.shape[0] * oh * ow), x.dtype)
    for k in range(groups):
        im2col(x, cols, k * cg, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, False)
        to_rows(g, rows, k * fg, False)
        matmul2d(rows, False, cols, True, out[k * fg:(k + 1) * fg].reshape(fg, cg * kh * kw))
'''
