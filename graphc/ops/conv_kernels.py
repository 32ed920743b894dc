"""The CPU (Numba) kernels of conv2d and its gradients, as source text that the backend
compiles once per dtype into its helpers module (`{jit}` is its decorator), beside
`matmul2d` (numpy's own BLAS). Each is im2col + one matrix product per channel group:
the patches of every image go into the columns of `cols` [C/groups * KH * KW,
N * OH * OW], so the product's sizes are the filters, the patch length and the whole
batch's pixels (the weight's gradient is one product over the batch too; direct loops
were 10 to 50 times slower: their inner loops run along an output row, only OW long).
At stride 1 the `_wide` kernels below copy each patch row as one run of the padded image
instead. `cols`, the product's rows and the padded image are scratch arrays that the
backend allocates once (OpaqueKernel.scratch), so a call allocates nothing; the bias is
added as the output is written. `sh, sw` stride, `ph, pw` top and left padding, `dh, dw`
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
    (0 in the padding); with `add`, the adjoint: x[...] += cols[...] (col2im). Plain
    element loops only: on small images the rows are a few elements long, where a slice
    assignment costs more than the copy."""
    h, w = x.shape[2], x.shape[3]
    cg = cols.shape[0] // (kh * kw)
    for c in range(cg):
        for ky in range(kh):
            for kx in range(kw):
                r = (c * kh + ky) * kw + kx
                lo, hi = conv_cols(ow, w, sw, pw, kx, dw)
                off = kx * dw - pw
                for n in range(x.shape[0]):
                    for oy in range(oh):
                        base = (n * oh + oy) * ow
                        iy = oy * sh - ph + ky * dh
                        if iy >= 0 and iy < h:
                            if add:
                                for ox in range(lo, hi):
                                    x[n, c0 + c, iy, ox * sw + off] += cols[r, base + ox]
                            else:
                                for ox in range(lo):
                                    cols[r, base + ox] = 0.0
                                for ox in range(lo, hi):
                                    cols[r, base + ox] = x[n, c0 + c, iy, ox * sw + off]
                                for ox in range(hi, ow):
                                    cols[r, base + ox] = 0.0
                        elif not add:
                            for ox in range(ow):
                                cols[r, base + ox] = 0.0


{jit}
def to_rows(a, rows, f0, to, b, bias):
    """rows[f, (n, i)] = a[n, f0 + f, i...] for the group's channels, or back (`to`),
    adding b[f0 + f] on the way with `bias` (the conv's bias, fused into this pass)."""
    n_, fg = a.shape[0], rows.shape[0]
    flat = a.reshape(n_, a.shape[1], -1)
    p = flat.shape[2]
    for n in range(n_):
        for f in range(fg):
            if to:
                add = b[f0 + f] if bias else 0.0
                for i in range(p):
                    flat[n, f0 + f, i] = rows[f, n * p + i] + add
            else:
                for i in range(p):
                    rows[f, n * p + i] = flat[n, f0 + f, i]


{jit}
def conv2d_cpu(x, w, b, bias, out, cols, res, sh, sw, ph, pw, dh, dw, groups):
    """out = conv2d(x, w) (+ b with `bias`; PyTorch's conv2d: cross-correlation). `cols`
    [C/groups * KH * KW, N * OH * OW] and `res` [F/groups, N * OH * OW]: scratch."""
    f_, cg, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    fg = f_ // groups
    for g in range(groups):
        im2col(x, cols, g * cg, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, False)
        wg = w[g * fg:(g + 1) * fg].reshape(fg, cg * kh * kw)
        matmul2d(wg, False, cols, False, res)
        to_rows(out, res, g * fg, True, b, bias)


{jit}
def conv2d_input_cpu(g, w, out, cols, rows, sh, sw, ph, pw, dh, dw, groups):
    """out = the gradient of conv2d's input: wᵀ @ g per group, scattered back (col2im)."""
    f_, cg, kh, kw = w.shape
    oh, ow = g.shape[2], g.shape[3]
    fg = f_ // groups
    out[...] = 0.0
    for k in range(groups):
        to_rows(g, rows, k * fg, False, w[:, 0, 0, 0], False)
        wg = w[k * fg:(k + 1) * fg].reshape(fg, cg * kh * kw)
        matmul2d(wg, True, rows, False, cols)
        im2col(out, cols, k * cg, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, True)


{jit}
def conv2d_weight_cpu(x, g, out, cols, rows, sh, sw, ph, pw, dh, dw, groups):
    """out = the gradient of conv2d's weight: g @ colsᵀ per group (over the whole batch)."""
    f_, cg, kh, kw = out.shape
    oh, ow = g.shape[2], g.shape[3]
    fg = f_ // groups
    for k in range(groups):
        im2col(x, cols, k * cg, kh, kw, oh, ow, sh, sw, ph, pw, dh, dw, False)
        to_rows(g, rows, k * fg, False, out[:, 0, 0, 0], False)
        matmul2d(rows, False, cols, True, out[k * fg:(k + 1) * fg].reshape(fg, cg * kh * kw))


# ---- stride 1: patches as contiguous runs of the padded image --------------------------
# A stride-1 convolution's output rows, laid at the padded width Wp, are contiguous runs
# of the padded input: with xp the image padded to [Hp, Wp] (flat), the tap (ky, kx) of
# every output pixel of image n is xp[ky dh Wp + kx dw + j] for j < ln = (OH - 1) Wp +
# OW. So im2col is one run copy per (channel, tap, image) instead of one per output row
# (on 4 x 4 images, 4 elements each), at the price of Wp - OW junk columns per row in the
# product, which the output ignores and the gradients set to 0.

{jit}
def pad_planes(x, xp, ph, pw, hp, wp, crop):
    """xp[n, (c hp + y + ph) wp + x + pw] = x[n, c, y, x], 0 around it; or, with `crop`,
    the other way: x = the inside of xp."""
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            base = c * hp * wp
            if not crop:
                for i in range(hp * wp):
                    xp[n, base + i] = 0.0
            for y in range(x.shape[2]):
                row = base + (y + ph) * wp + pw
                if crop:
                    for i in range(x.shape[3]):
                        x[n, c, y, i] = xp[n, row + i]
                else:
                    for i in range(x.shape[3]):
                        xp[n, row + i] = x[n, c, y, i]


{jit}
def wide_cols(xp, cols, c0, kh, kw, dh, dw, hp, wp, ln, add):
    """cols[(c, ky, kx), n ln + j] = xp[n, (c0 + c) hp wp + ky dh wp + kx dw + j]; with
    `add`, the adjoint: xp[...] += cols[...]."""
    cg = cols.shape[0] // (kh * kw)
    for c in range(cg):
        for ky in range(kh):
            for kx in range(kw):
                r = (c * kh + ky) * kw + kx
                src = (c0 + c) * hp * wp + ky * dh * wp + kx * dw
                for n in range(xp.shape[0]):
                    if add:
                        for j in range(ln):
                            xp[n, src + j] += cols[r, n * ln + j]
                    else:
                        for j in range(ln):
                            cols[r, n * ln + j] = xp[n, src + j]


{jit}
def wide_rows(a, rows, f0, wp, ln, to, b, bias):
    """rows[f, n ln + oy wp + ox] = a[n, f0 + f, oy, ox], 0 in the junk columns; or back
    (`to`), adding b[f0 + f] with `bias`."""
    oh, ow = a.shape[2], a.shape[3]
    for n in range(a.shape[0]):
        for f in range(rows.shape[0]):
            for oy in range(oh):
                at = n * ln + oy * wp
                if to and bias:
                    add = b[f0 + f]
                    for ox in range(ow):
                        a[n, f0 + f, oy, ox] = rows[f, at + ox] + add
                elif to:
                    for ox in range(ow):
                        a[n, f0 + f, oy, ox] = rows[f, at + ox]
                else:
                    for ox in range(ow):
                        rows[f, at + ox] = a[n, f0 + f, oy, ox]
                    if oy < oh - 1:
                        for ox in range(ow, wp):
                            rows[f, at + ox] = 0.0


{jit}
def conv2d_wide_cpu(x, w, b, bias, out, xp, cols, res, ph, pw, dh, dw, groups):
    """conv2d_cpu at stride 1: `xp` [N, C Hp Wp], `cols` [C/groups KH KW, N ln], `res`
    [F/groups, N ln] scratch."""
    f_, cg, kh, kw = w.shape
    oh, ow = out.shape[2], out.shape[3]
    hp, wp = oh + dh * (kh - 1), ow + dw * (kw - 1)
    ln = (oh - 1) * wp + ow
    fg = f_ // groups
    pad_planes(x, xp, ph, pw, hp, wp, False)
    for g in range(groups):
        wide_cols(xp, cols, g * cg, kh, kw, dh, dw, hp, wp, ln, False)
        wg = w[g * fg:(g + 1) * fg].reshape(fg, cg * kh * kw)
        matmul2d(wg, False, cols, False, res)
        wide_rows(out, res, g * fg, wp, ln, True, b, bias)


{jit}
def conv2d_input_wide_cpu(g, w, out, xp, cols, rows, ph, pw, dh, dw, groups):
    """conv2d_input_cpu at stride 1 (scratch as conv2d_wide_cpu's)."""
    f_, cg, kh, kw = w.shape
    oh, ow = g.shape[2], g.shape[3]
    hp, wp = oh + dh * (kh - 1), ow + dw * (kw - 1)
    ln = (oh - 1) * wp + ow
    fg = f_ // groups
    xp[...] = 0.0
    for k in range(groups):
        wide_rows(g, rows, k * fg, wp, ln, False, w[:, 0, 0, 0], False)
        wg = w[k * fg:(k + 1) * fg].reshape(fg, cg * kh * kw)
        matmul2d(wg, True, rows, False, cols)
        wide_cols(xp, cols, k * cg, kh, kw, dh, dw, hp, wp, ln, True)
    pad_planes(out, xp, ph, pw, hp, wp, True)


{jit}
def conv2d_weight_wide_cpu(x, g, out, xp, cols, rows, ph, pw, dh, dw, groups):
    """conv2d_weight_cpu at stride 1 (scratch as conv2d_wide_cpu's)."""
    f_, cg, kh, kw = out.shape
    oh, ow = g.shape[2], g.shape[3]
    hp, wp = oh + dh * (kh - 1), ow + dw * (kw - 1)
    ln = (oh - 1) * wp + ow
    fg = f_ // groups
    pad_planes(x, xp, ph, pw, hp, wp, False)
    for k in range(groups):
        wide_cols(xp, cols, k * cg, kh, kw, dh, dw, hp, wp, ln, False)
        wide_rows(g, rows, k * fg, wp, ln, False, out[:, 0, 0, 0], False)
        matmul2d(rows, False, cols, True, out[k * fg:(k + 1) * fg].reshape(fg, cg * kh * kw))
'''
