"""The fixed parts of a generated module, as source text: imports, the scalar helpers
and matmul (one cached module per dtype for the CPU backend, pasted into standalone
modules) and per-thread workspaces; numba_wrappers holds the Python side."""

from __future__ import annotations

import os
import re

import numba
import numpy as np

from graphc.ops.modes import RNG_NAMES, RNG_SOURCE
from graphc.version import __version__

JIT = '@njit(cache=True, error_model="numpy", nogil=True)'
FASTJIT = JIT[:-1] + ', fastmath={"reassoc"})'  # for dot products only: see HELPERS


IMPORTS = '''
import glob
import math
import os
import sys
import threading

import numpy as np
from numba import njit
'''

# Helpers every kernel may call. The CPU backend keeps them in one cached module per
# dtype that its generated modules import (so they compile once); `graphc compile`
# pastes them into the module it writes, which must stand alone.
HELPERS = '''
F = np.{dtype}  # the model's float type
inf = math.inf
exp, log, log1p, expm1 = math.exp, math.log, math.log1p, math.expm1
sqrt, erf = math.sqrt, math.erf
{tanh}


{jit}
def where(c, a, b):
    return a if c else b


{jit}
def maximum(a, b):
    return a if a >= b or a != a else b


{jit}
def minimum(a, b):
    return a if a <= b or a != a else b


{jit}
def sigmoid(x):
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


{jit}
def softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


{rng}


{jit}
def clip_gradients(G, max_norm, max_value):
    """As torch.nn.utils.clip_grad_value_ then clip_grad_norm_ (inf: off)."""
    if max_value < inf:
        for i in range(G.size):
            G[i] = min(max(G[i], -max_value), max_value)
    if max_norm < inf:
        total = 0.0
        for i in range(G.size):
            total += float(G[i]) * float(G[i])
        coef = max_norm / (math.sqrt(total) + 1e-6)
        if coef < 1.0:
            for i in range(G.size):
                G[i] = G[i] * coef


# The loops for products too small for a BLAS call, one loop order per layout: the
# innermost loop runs along contiguous memory and, except in the dot products, carries no
# dependency from one step to the next (an i-p-j loop for a·b re-reads the row it just
# stored, k times in a row: that store-to-load chain, not arithmetic, bounded it). Each
# out[i, j] still sums its k terms in order p = 0..k-1, as plain loops do.
{jit}
def _mm_nn(a, b, out):
    """out = a @ b in p-i-j order (rows of b against scalars of a); a column b: dots."""
    m, n = out.shape
    k = a.shape[1]
    if n == 1:
        col = b.reshape(k)  # a 1-d view: its unit stride is known, so the dot vectorizes
        for i in range(m):
            out[i, 0] = _dot_nn(a, i, col, k)
        return
    for i in range(m):
        x = a[i, 0]
        for j in range(n):
            out[i, j] = x * b[0, j]
    for p in range(1, k):
        for i in range(m):
            x = a[i, p]
            for j in range(n):
                out[i, j] += x * b[p, j]


{jit}
def _mm_tn(a, b, out):
    """out = a.T @ b in p-i-j order (both operands read by rows); n = 1: p-i."""
    m, n = out.shape
    k = a.shape[0]
    if n == 1:
        y = b[0, 0]
        for i in range(m):
            out[i, 0] = a[0, i] * y
        for p in range(1, k):
            y = b[p, 0]
            for i in range(m):
                out[i, 0] += a[p, i] * y
        return
    for i in range(m):
        x = a[0, i]
        for j in range(n):
            out[i, j] = x * b[0, j]
    for p in range(1, k):
        for i in range(m):
            x = a[p, i]
            for j in range(n):
                out[i, j] += x * b[p, j]


{jit}
def _mm_nt(a, b, out):
    """out = a @ b.T: dot products of two contiguous rows, four columns of out at a time
    (one row of a read once for four of b); k = 1: an outer product."""
    m, n = out.shape
    k = a.shape[1]
    if k == 1:
        for i in range(m):
            x = a[i, 0]
            for j in range(n):
                out[i, j] = x * b[j, 0]
        return
    for i in range(m):
        j = 0
        if k >= 8:
            while j + 4 <= n:
                _dot4_nt(a, i, b, j, k, out)
                j += 4
        for j in range(j, n):
            out[i, j] = _dot_nt(a, i, b, j, k)


{jit}
def _mm_tt(a, b, out):
    """out = a.T @ b.T (no graphc kernel asks for it; plain loops, in order)."""
    m, n = out.shape
    k = a.shape[0]
    for i in range(m):
        for j in range(n):
            s = a[0, i] * b[j, 0]
            for p in range(1, k):
                s += a[p, i] * b[j, p]
            out[i, j] = s


# The dot products alone may reassociate their sums ("reassoc" and nothing else: no
# contraction into FMAs, no assumptions about NaN or inf): without it a float reduction
# cannot be vectorized. Results then differ from the in-order sum by reassociation only,
# within a few ulps times k of the terms' magnitudes (tests/test_small_matmul.py).
{fastjit}
def _dot_nn(a, i, col, k):
    s = a[i, 0] * col[0]
    for p in range(1, k):
        s += a[i, p] * col[p]
    return s


{fastjit}
def _dot_nt(a, i, b, j, k):
    s = a[i, 0] * b[j, 0]
    for p in range(1, k):
        s += a[i, p] * b[j, p]
    return s


{fastjit}
def _dot4_nt(a, i, b, j, k, out):
    x = a[i, 0]
    s0, s1, s2, s3 = x * b[j, 0], x * b[j + 1, 0], x * b[j + 2, 0], x * b[j + 3, 0]
    for p in range(1, k):
        x = a[i, p]
        s0 += x * b[j, p]
        s1 += x * b[j + 1, p]
        s2 += x * b[j + 2, p]
        s3 += x * b[j + 3, p]
    out[i, j], out[i, j + 1], out[i, j + 2], out[i, j + 3] = s0, s1, s2, s3


{jit}
def small_matmul(a, ta, b, tb, out):
    """out = op(a) @ op(b) by loops (op transposing where ta / tb)."""
    k = a.shape[0] if ta else a.shape[1]
    if k == 0 or out.size == 0:
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = 0.0
    elif ta:
        if tb:
            _mm_tt(a, b, out)
        else:
            _mm_tn(a, b, out)
    elif tb:
        _mm_nt(a, b, out)
    else:
        _mm_nn(a, b, out)


def _numpy_blas(name, *args):
    """numpy's own 64-bit-integer CBLAS routine `name` (numpy 2 exports it with a
    `scipy_` prefix, numpy 1.2x without), or None: compiled steps and numpy then share
    one thread pool (two OpenBLAS pools in one process slow each other down badly)."""
    try:
        import ctypes

        import llvmlite.binding as llvm
        from numba import types
        here = os.path.dirname(np.__file__)
        for path in sorted(glob.glob(os.path.join(here, "..", "numpy.libs", "*openblas*"))
                           + glob.glob(os.path.join(here, ".dylibs", "*openblas*"))):
            lib = ctypes.CDLL(path)
            for symbol in (name, name.replace("scipy_", "")):
                if hasattr(lib, symbol):
                    address = ctypes.cast(getattr(lib, symbol), ctypes.c_void_p).value
                    llvm.add_symbol(symbol, address)
                    return types.ExternalFunction(symbol, types.void(*args))
    except (OSError, ImportError, AttributeError):
        pass
    return None


def _blas_types():
    from numba import types

    return types.int32, types.int64, types.{dtype}, types.voidptr


I32, I64, R, P = _blas_types()
gemm = _numpy_blas("scipy_cblas_{blas}gemm64_", I32, I32, I32, I64, I64, I64, R, P, I64, P,
                   I64, R, P, I64)
gemv = _numpy_blas("scipy_cblas_{blas}gemv64_", I32, I32, I64, I64, R, P, I64, P, I64, R, P,
                   I64)
SMALL = 4096  # products with fewer multiply-adds use plain loops, not a BLAS call
ROW, NO, YES = 101, 111, 112  # CBLAS: row-major; no transpose; transpose

MATMUL = "void({dtype}[:, ::1], boolean, {dtype}[:, ::1], boolean, {dtype}[:, ::1])"

BLAS = {blas_choice!r}  # "numpy": numpy's own OpenBLAS; "scipy": the one np.dot uses in Numba

if BLAS == "numpy" and gemm is not None and gemv is not None:
    @njit(MATMUL, cache=True, error_model="numpy", nogil=True)
    def matmul2d(a, ta, b, tb, out):
        """out = op(a) @ op(b), op transposing where ta / tb, by numpy's own BLAS: a
        matrix-vector product for a single row or column, loops when small or k = 1."""
        m, n = out.shape
        k = a.shape[0] if ta else a.shape[1]
        if m * n * k < SMALL or k == 1:
            small_matmul(a, ta, b, tb, out)
        elif m == 1:  # out = a @ B: B's rows (or columns) against the vector a
            if tb:
                gemv(ROW, NO, n, k, 1.0, b.ctypes.data, k, a.ctypes.data, 1, 0.0,
                     out.ctypes.data, 1)
            else:
                gemv(ROW, YES, k, n, 1.0, b.ctypes.data, n, a.ctypes.data, 1, 0.0,
                     out.ctypes.data, 1)
        elif n == 1:  # out = A @ b
            if ta:
                gemv(ROW, YES, k, m, 1.0, a.ctypes.data, m, b.ctypes.data, 1, 0.0,
                     out.ctypes.data, 1)
            else:
                gemv(ROW, NO, m, k, 1.0, a.ctypes.data, k, b.ctypes.data, 1, 0.0,
                     out.ctypes.data, 1)
        else:
            gemm(ROW, YES if ta else NO, YES if tb else NO, m, n, k, 1.0, a.ctypes.data,
                 max(a.shape[1], 1), b.ctypes.data, max(b.shape[1], 1), 0.0,
                 out.ctypes.data, max(n, 1))
else:
    @njit(MATMUL, cache=True, error_model="numpy", nogil=True)
    def matmul2d(a, ta, b, tb, out):
        """out = op(a) @ op(b) by the BLAS numba uses (SciPy's): see docs/performance.md."""
        m, n = out.shape
        k = a.shape[0] if ta else a.shape[1]
        if m * n * k < SMALL or k == 1:
            small_matmul(a, ta, b, tb, out)
        elif ta and tb:
            np.dot(a.T, b.T, out)
        elif ta:
            np.dot(a.T, b, out)
        elif tb:
            np.dot(a, b.T, out)
        else:
            np.dot(a, b, out)
'''

def op_kernels(ops: set[str] | None = None) -> list:
    """The CPU code of every op's opaque kernel (registry.KernelCode), each source once;
    with `ops`, only those ops' kernels (what a standalone module pastes in)."""
    from graphc.ops import REGISTRY

    seen: dict[str, object] = {}
    for name, op in REGISTRY.items():
        if ops is not None and name not in ops:
            continue
        code = op.opaque.code.get("cpu") if op.opaque is not None else None
        if code is not None:
            seen.setdefault(code.source, code)
    return list(seen.values())


HELPER_NAMES = ("F", "inf", "exp", "log", "log1p", "expm1", "sqrt", "tanh", "erf", "where",
                "maximum", "minimum", "sigmoid", "softplus", "clip_gradients", "matmul2d",
                *RNG_NAMES)


def helper_names() -> tuple[str, ...]:
    """What a generated module imports from the helpers: the fixed helpers and the
    functions of every op's kernels (an op registered later adds its own)."""
    return (*HELPER_NAMES, *(name for code in op_kernels() for name in code.names))

RUNTIME = '''
# Numba's SSA pass recurses about once per loop of a kernel: big graphs need more room.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 20000))
_local = threading.local()  # workspaces per thread, entry point and dims


def _workspace(name, dims, shapes):
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    ws = cache.get((name, dims))
    if ws is None:
        if len(cache) > 8:  # batch sizes come and go: keep a few
            cache.pop(next(iter(cache)))
        ws = cache[name, dims] = tuple(np.empty(shape, F) for shape in shapes)
    return ws
'''


TANH = {
    "float64": "tanh = math.tanh",
    # libm's tanh is a call Numba cannot vectorize; this rational approximation (Eigen's
    # float tanh, error below 4e-7) is plain arithmetic, about ten times faster in a loop
    "float32": """

{jit}
def tanh(x):
    x = max(min(x, F(7.905311)), F(-7.905311))
    x2 = x * x
    p = x2 * F(-2.76076847742355e-16) + F(2.00018790482477e-13)
    p = x2 * p + F(-8.60467152213735e-11)
    p = x2 * p + F(5.12229709037114e-08)
    p = x2 * p + F(1.48572235717979e-05)
    p = x2 * p + F(6.37261928875436e-04)
    p = x2 * p + F(4.89352455891786e-03)
    q = x2 * F(1.19825839466702e-06) + F(1.18534705686654e-04)
    q = x2 * q + F(2.26843463243900e-03)
    q = x2 * q + F(4.89352518554385e-03)
    return x * p / q""",
}


def blas_choice() -> str:
    """Which BLAS compiled matmuls call: numpy's own OpenBLAS, unless $GRAPHC_BLAS says
    "scipy" (the library Numba's np.dot uses; for comparisons, see docs/performance.md)."""
    return "scipy" if os.environ.get("GRAPHC_BLAS", "").lower() == "scipy" else "numpy"


def helpers(dtype: np.dtype, ops: set[str] | None = None) -> str:
    """The helpers' source for `dtype` (a module of its own, or pasted into one: then
    with the kernels of the `ops` it uses only)."""
    return HELPERS.format(dtype=dtype.name, jit=JIT, fastjit=FASTJIT, blas_choice=blas_choice(),
                          tanh=TANH[dtype.name].format(jit=JIT),
                          rng=re.sub("^def ", JIT + "\ndef ", RNG_SOURCE.strip("\n"), flags=re.M),
                          blas="s" if dtype == np.float32 else "d").strip("\n") + "".join(
        "\n\n\n" + code.source.replace("{jit}", JIT).strip("\n") for code in op_kernels(ops)
        if code.source.strip())


def docstring(text: str) -> str:
    """A module docstring that stays one string whatever names it quotes."""
    return '"""' + text.replace("\\", "\\\\").replace('"', '\\"') + '\n"""'


def helpers_module(dtype: np.dtype) -> str:
    return docstring(f"Scalar helpers and matmul for graphc's generated {dtype.name} "
                     f"modules.\nBuilt with {versions()}.") + "\n\n" + IMPORTS + "\n\n" \
        + helpers(dtype) + "\n"


def header(dtype: np.dtype, helper_module: str | None, ops: set[str] | None = None) -> str:
    """Imports, helpers (imported from `helper_module`, else pasted in: with the kernels of
    the `ops` the module uses) and workspaces."""
    if helper_module is None:
        middle = helpers(dtype, ops)
    else:
        middle = f"from {helper_module} import (  # noqa: F401\n    " + ", ".join(
            helper_names()) + ",\n)"
    return IMPORTS.strip("\n") + "\n\n" + middle + "\n\n\n" + RUNTIME.strip("\n")


def versions() -> str:
    return f"graphc {__version__}, numba {numba.__version__}, numpy {np.__version__}"
