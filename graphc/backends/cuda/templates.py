"""CUDA kernels as readable source text, for the generated module to paste in.

Each function returns the source of one `@cuda.jit(cache=True)` kernel (compiled lazily,
on its first launch). Bodies are the ops' scalar expressions (`loops.substitute` with
`cast="F"`, so float literals are float32 and no float64 arithmetic creeps in); index
variables are `i0, i1, ...` as in the CPU backend's loops. Launch shapes are in each
kernel's docstring. Block sizes are powers of two and literals (shared arrays need them).
"""

from __future__ import annotations

from graphc.passes.loops import substitute

JIT = "@cuda.jit(cache=True)"
DEVICE = "@cuda.jit(device=True, inline=\"always\")"

# What every generated CUDA module starts with: the scalar functions the ops'
# expressions call, as float32-clean device functions (`F` is the model's float type).
PRELUDE = '''
import math

import numpy as np
from numba import cuda
from numba import {dtype} as F

inf = math.inf
exp, log, log1p, expm1 = math.exp, math.log, math.log1p, math.expm1
sqrt, erf, tanh = math.sqrt, math.erf, math.tanh


{device}
def maximum(a, b):
    return a if a >= b or a != a else b


{device}
def minimum(a, b):
    return a if a <= b or a != a else b


{device}
def sigmoid(x):
    if x >= F(0.0):
        return F(1.0) / (F(1.0) + math.exp(-x))
    e = math.exp(x)
    return e / (F(1.0) + e)


{device}
def softplus(x):
    return max(x, F(0.0)) + math.log1p(math.exp(-abs(x)))
'''


def prelude(dtype: str = "float32") -> str:
    return PRELUDE.format(dtype=dtype, device=DEVICE).strip("\n")


def module(kernels: list[str], dtype: str = "float32", doc: str = "CUDA kernels") -> str:
    """A module of `kernels` after the prelude (what `cache.load` imports)."""
    return "\n\n\n".join([f'"""{doc}"""', prelude(dtype), *kernels]) + "\n"


def _indent(lines: list[str], n: int) -> list[str]:
    return [" " * n + line if line else "" for line in lines]


def unflatten(flat: str, dims: list[str], var: str = "i") -> list[str]:
    """Statements splitting flat index `flat` into `i0, i1, ...` over `dims` (row-major)."""
    if not dims:
        return []
    if len(dims) == 1:
        return [f"{var}0 = {flat}"]
    lines, rest = [], "r_"
    lines.append(f"{rest} = {flat}")
    for k in reversed(range(1, len(dims))):
        lines.append(f"{var}{k} = {rest} % {dims[k]}")
        lines.append(f"{rest} = {rest} // {dims[k]}")
    lines.append(f"{var}0 = {rest}")
    return lines


def size_of(dims: list[str]) -> str:
    return " * ".join(dims) or "1"


def elementwise(name: str, args: list[str], dims: list[str], body: list[str],
                doc: str = "") -> str:
    """A grid-stride loop over the elements of `dims`; `body` is what one element does
    (a fused chain of ops: locals, then stores). Launch: any grid, e.g. [blocks, 256]."""
    lines = [JIT, f"def {name}({', '.join(args)}):",
             f'    """{doc or "elementwise"}: one thread per element, grid-stride."""',
             f"    n = {size_of(dims)}",
             "    for e in range(cuda.grid(1), n, cuda.gridsize(1)):"]
    lines += _indent(unflatten("e", dims) + body, 8)
    return "\n".join(lines)


def _tree(block: int, combine: str, sh: str = "sh") -> list[str]:
    """Combine `block` values in shared array `sh` into sh[0] (thread `t` of the block)."""
    step = substitute(combine, {"acc": f"{sh}[t]", "x": f"{sh}[t + s]"})
    return ["cuda.syncthreads()", f"s = {block // 2}", "while s > 0:", "    if t < s:",
            f"        {sh}[t] = {step}", "    cuda.syncthreads()", "    s //= 2"]


def _split(flat: str, axes: list[int], dims: list[str]) -> list[str]:
    """Statements setting `i<axis>` for each of `axes` from flat index `flat` over `dims`."""
    out = []
    for line in unflatten(flat, dims, "q"):
        for j, axis in enumerate(axes):
            line = line.replace(f"q{j} =", f"i{axis} =")
        out.append(line.replace("r_", f"{flat}_"))
    return out


def reduce(name: str, args: list[str], dims: list[str], reduced: list[int], body: list[str],
           value: str, init: str, step: str, final: str, out: str, block: int = 128,
           doc: str = "") -> str:
    """One block per output element (grid-stride over them), its threads striding over
    the reduced elements, then a shared-memory tree. `body` computes `value` at index
    `i0, i1, ...` of `dims`; `out` is a flat array of the kept elements; `final` reads
    `acc` and `n` (the count). Launch: [blocks, block]."""
    kept = [d for k, d in enumerate(dims) if k not in reduced]
    red = [d for k, d in enumerate(dims) if k in reduced]
    kept_at = _split("o", [k for k in range(len(dims)) if k not in reduced], kept)
    red_at = _split("r", list(reduced), red)
    acc = substitute(step, {"acc": "acc", "x": value})
    fin = substitute(final, {"acc": "sh[0]", "n": f"F({size_of(red)})"}, "F")
    lines = [JIT, f"def {name}({', '.join(args)}):",
             f'    """{doc or "reduction"}: a block per output element, a tree per block."""',
             f"    sh = cuda.shared.array({block}, F)",
             "    t = cuda.threadIdx.x",
             f"    for o in range(cuda.blockIdx.x, {size_of(kept)}, cuda.gridDim.x):",
             f"        acc = F({substitute(init, {})})",
             f"        for r in range(t, {size_of(red)}, {block}):"]
    lines[-2:-2] = _indent(kept_at, 8)
    lines += _indent(red_at + body + [f"acc = {acc}"], 12)
    lines += _indent(["sh[t] = acc"] + _tree(block, step) + ["if t == 0:",
                                                           f"    {out}[o] = {fin}",
                                                           "cuda.syncthreads()"], 8)
    return "\n".join(lines)


def sum_atomic(name: str, args: list[str], dims: list[str], body: list[str], value: str,
               out: str, scale: str = "F(1.0)", block: int = 128, doc: str = "") -> str:
    """All of `dims` summed into `out[0]` (zeroed before the launch): a grid-stride
    partial sum per thread, a tree per block, one atomic add per block (times `scale`,
    e.g. 1/n for a mean). Launch: [blocks, block]."""
    lines = [JIT, f"def {name}({', '.join(args)}):",
             f'    """{doc or "sum"}: grid-stride partial sums, a tree, an atomic add."""',
             f"    sh = cuda.shared.array({block}, F)",
             "    t = cuda.threadIdx.x",
             "    acc = F(0.0)",
             f"    for e in range(cuda.grid(1), {size_of(dims)}, cuda.gridsize(1)):"]
    lines += _indent(unflatten("e", dims) + body + [f"acc += {value}"], 8)
    lines += _indent(["sh[t] = acc"] + _tree(block, "acc + x") + [
        "if t == 0:", f"    cuda.atomic.add({out}, 0, sh[0] * {scale})"], 4)
    return "\n".join(lines)


def softmax_rows(name: str, value: str, block: int = 128, doc: str = "") -> str:
    """`y[i, j] = value(x[i, j], m, s)` per row of 2-D `x` (m: the row's max, s: its sum
    of exp(x - m)): softmax is `exp(x - m) / s`, log_softmax `x - m - log(s)`.
    Launch: [rows (or fewer), block]."""
    v = substitute(value, {"x": "x[i, j]", "m": "m", "s": "s"}, "F")
    lines = [JIT, "def " + name + "(x, y):",
             f'    """{doc or "row softmax"}: a block per row, two trees (max, sum)."""',
             f"    sh = cuda.shared.array({block}, F)",
             "    t = cuda.threadIdx.x",
             "    n = x.shape[1]",
             "    for i in range(cuda.blockIdx.x, x.shape[0], cuda.gridDim.x):"]
    lines += _indent([
        "acc = F(-inf)",
        f"for j in range(t, n, {block}):", "    acc = maximum(acc, x[i, j])",
        "sh[t] = acc", *_tree(block, "maximum(acc, x)"),
        "m = sh[0]", "cuda.syncthreads()",
        "acc = F(0.0)",
        f"for j in range(t, n, {block}):", "    acc += math.exp(x[i, j] - m)",
        "sh[t] = acc", *_tree(block, "acc + x"),
        "s = sh[0]", "cuda.syncthreads()",
        f"for j in range(t, n, {block}):", f"    y[i, j] = {v}"], 8)
    return "\n".join(lines)


def cross_entropy_rows(name: str, block: int = 128) -> str:
    """Mean cross-entropy of 2-D logits `x` against integer `labels`, added into
    `loss[0]` (zeroed first), and its gradient `dx = (softmax(x) - onehot) / rows` for a
    fused train step. Launch: [rows (or fewer), block]."""
    lines = [JIT, f"def {name}(x, labels, loss, dx):",
             '    """Cross-entropy forward and backward: a block per row."""',
             f"    sh = cuda.shared.array({block}, F)",
             "    t = cuda.threadIdx.x",
             "    rows, n = x.shape",
             "    scale = F(1.0) / F(rows)",
             "    for i in range(cuda.blockIdx.x, rows, cuda.gridDim.x):"]
    lines += _indent([
        "acc = F(-inf)",
        f"for j in range(t, n, {block}):", "    acc = maximum(acc, x[i, j])",
        "sh[t] = acc", *_tree(block, "maximum(acc, x)"),
        "m = sh[0]", "cuda.syncthreads()",
        "acc = F(0.0)",
        f"for j in range(t, n, {block}):", "    acc += math.exp(x[i, j] - m)",
        "sh[t] = acc", *_tree(block, "acc + x"),
        "s = sh[0]", "cuda.syncthreads()",
        "k = labels[i]",
        "if t == 0:", "    cuda.atomic.add(loss, 0, (m + math.log(s) - x[i, k]) * scale)",
        f"for j in range(t, n, {block}):",
        "    p = math.exp(x[i, j] - m) / s",
        "    dx[i, j] = (p - F(1.0) if j == k else p) * scale"], 8)
    return "\n".join(lines)


def gemm(name: str, ta: bool, tb: bool, tile: int = 16, accumulate: bool = False) -> str:
    """`c = op(a) @ op(b)` (`+ c` when accumulating), op transposing where `ta` / `tb`:
    shared-memory tiles of `tile` x `tile`, the fallback where cuBLAS is not used (the
    simulator). Launch: [(ceil(n / tile), ceil(m / tile)), (tile, tile)]."""
    a_at = "a[kk, row]" if ta else "a[row, kk]"
    b_at = "b[col, kk]" if tb else "b[kk, col]"
    k_of = "a.shape[0]" if ta else "a.shape[1]"
    lines = [JIT, f"def {name}(a, b, c):",
             f'    """c {"+" if accumulate else ""}= {"a.T" if ta else "a"} @ '
             f'{"b.T" if tb else "b"}, in {tile}x{tile} shared-memory tiles."""',
             f"    sa = cuda.shared.array(({tile}, {tile}), F)",
             f"    sb = cuda.shared.array(({tile}, {tile}), F)",
             "    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y",
             f"    row = cuda.blockIdx.y * {tile} + ty",
             f"    col0 = cuda.blockIdx.x * {tile}",
             "    col = col0 + tx",
             "    m, n = c.shape",
             f"    k = {k_of}",
             "    acc = F(0.0)",
             f"    for k0 in range(0, k, {tile}):",
             "        # each thread loads one element of each tile (zero outside the matrix)",
             "        kk = k0 + tx",
             f"        sa[ty, tx] = {a_at} if row < m and kk < k else F(0.0)",
             "        kk = k0 + ty",
             f"        sb[ty, tx] = {b_at} if col < n and kk < k else F(0.0)",
             "        cuda.syncthreads()",
             f"        for q in range({tile}):",
             "            acc += sa[ty, q] * sb[q, tx]",
             "        cuda.syncthreads()",
             "    if row < m and col < n:",
             f"        c[row, col] = {'c[row, col] + ' if accumulate else ''}acc"]
    return "\n".join(lines)


def _statements(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        target, expr = (s.strip() for s in line.split("=", 1))
        out.append(f"{target} = {substitute(expr, {}, 'F')}")
    return out


def update(name: str, lines: list[str], slots: tuple[str, ...], hyper: list[str],
           optimizer: str = "optimizer") -> str:
    """The optimizer's statements (`Optimizer.update_lines()`) for every element of the
    flat param buffer `P`, its gradient `G` and slots `S[k]`. `H` holds the hyper-parameters
    in `hyper`'s order, then `t`: a device array, so a schedule changes `lr` without a
    recompile and a captured CUDA graph reads the new value. `C` = (max_norm, max_value,
    sum of squared clipped gradients): clipping as torch's clip_grad_value_ then
    clip_grad_norm_ (inf: off). Launch: any grid."""
    head = [f"{h} = H[{k}]" for k, h in enumerate(hyper)] + [f"t = H[{len(hyper)}]"]
    body = ["g = G[i]",
            "g = min(max(g, -C[1]), C[1])",
            "g = g * coef", "p = P[i]"]
    body += [f"{s} = S[{k}, i]" for k, s in enumerate(slots)]
    body += _statements(lines)
    body += ["P[i] = p"] + [f"S[{k}, i] = {s}" for k, s in enumerate(slots)]
    src = [JIT, f"def {name}(P, G, S, H, C):",
           f'    """{optimizer}: its update for every param element, one thread each."""']
    src += _indent(head + ["coef = F(1.0)", "if C[0] < F(inf):",
                           "    coef = min(C[0] / (math.sqrt(C[2]) + F(1e-6)), F(1.0))",
                           "for i in range(cuda.grid(1), P.size, cuda.gridsize(1)):"], 4)
    src += _indent(body, 8)
    return "\n".join(src)


def grad_sq_sum(name: str = "grad_sq_sum", block: int = 128) -> str:
    """C[2] += the sum of squares of the value-clipped gradients (for clip_grad_norm_;
    C[2] is zeroed first). Launch: [blocks, block]."""
    return sum_atomic(name, ["G", "C"], ["G.size"],
                      ["g = min(max(G[i0], -C[1]), C[1])"], "g * g", "C[2:]",
                      block=block, doc="sum of squared gradients").replace(
        "cuda.atomic.add(C[2:], 0,", "cuda.atomic.add(C, 2,")
