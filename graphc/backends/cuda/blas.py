"""Products through cuBLAS: row-major device arrays in, raw pointers to cuBLAS out.

cuBLAS is column-major. A row-major `[m, k]` array is, read column-major, its transpose
`[k, m]` with leading dimension k; so row-major `C = op(A) op(B)` is column-major
`C^T = op(B)^T op(A)^T`: `gemm(op_b, op_a, n, m, k, B, ldb, A, lda, C, n)`, with each
operand's leading dimension the length of its stored rows. `Gemm` takes any object with
cuBLAS's `sgemm`/`dgemm` signature (nvmath-python's low-level bindings on a GPU, or the
NumPy stand-in `NumpyCublas` in tests), so the arguments are checked without a GPU.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

N, T = 0, 1  # cublasOperation_t: CUBLAS_OP_N, CUBLAS_OP_T


def pointer(a: Any) -> int:
    """The raw address of a device array's first element (the simulator's arrays are
    NumPy arrays underneath, a NumPy array is its own)."""
    iface = getattr(a, "__cuda_array_interface__", None)
    if iface is None:
        inner = getattr(a, "_ary", a)  # numba's simulator wraps a NumPy array
        iface = inner.__array_interface__
    return int(iface["data"][0])


def gemm_args(a_shape: tuple[int, int], ta: bool, b_shape: tuple[int, int], tb: bool
              ) -> tuple[int, int, int, int, int, int, int, int]:
    """Column-major (transa, transb, m, n, k, lda, ldb, ldc) for row-major
    `C = op(A) @ op(B)`, where cuBLAS's first operand is B and its second is A."""
    m = a_shape[1] if ta else a_shape[0]
    k = a_shape[0] if ta else a_shape[1]
    kb = b_shape[1] if tb else b_shape[0]
    n = b_shape[0] if tb else b_shape[1]
    if k != kb:
        raise ValueError(f"gemm: inner dimensions differ ({k} and {kb})")
    return (T if tb else N, T if ta else N, n, m, k, max(b_shape[1], 1), max(a_shape[1], 1),
            max(n, 1))


class Gemm:
    """`c = op(a) @ op(b)` (`+ c` with `accumulate`) for row-major C-contiguous device
    arrays, by `lib` (default: nvmath's cuBLAS bindings, a handle created on first use)."""

    def __init__(self, lib: Any = None, dtype: str = "float32"):
        if lib is None:
            from nvmath.bindings import cublas as lib  # type: ignore[no-redef]
        self.lib = lib
        self.np_dtype = np.dtype(dtype)
        self.fn = lib.sgemm if self.np_dtype == np.float32 else lib.dgemm
        self.handle = lib.create()
        # alpha and beta live in host memory (cuBLAS's default pointer mode): 1, 0 and 1
        self.scalars = np.array([1.0, 0.0, 1.0], self.np_dtype)
        size = self.np_dtype.itemsize
        base = self.scalars.ctypes.data
        self.one, self.zero = base, base + size

    def set_stream(self, stream: Any) -> None:
        """Put later products on `stream` (a numba stream, or its raw handle)."""
        handle = getattr(stream, "handle", stream)
        self.lib.set_stream(self.handle, int(getattr(handle, "value", handle) or 0))

    def __call__(self, a: Any, ta: bool, b: Any, tb: bool, c: Any,
                 accumulate: bool = False) -> None:
        op_b, op_a, cm, cn, k, ld_b, ld_a, ldc = gemm_args(a.shape, ta, b.shape, tb)
        if (cn, cm) != tuple(c.shape):
            raise ValueError(f"gemm: result has shape {list(c.shape)}, expected [{cn}, {cm}]")
        self.fn(self.handle, op_b, op_a, cm, cn, k, self.one, pointer(b), ld_b,
                pointer(a), ld_a, self.one if accumulate else self.zero, pointer(c), ldc)


class NumpyCublas:
    """A stand-in for cuBLAS's gemm that reads and writes memory at the raw addresses it
    is given, column-major, as cuBLAS does; `calls` records each call's arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def create(self) -> int:
        return 1

    def set_stream(self, handle: int, stream: int) -> None:
        self.calls.append(("set_stream", handle, stream))

    def sgemm(self, *args: Any) -> None:
        self._gemm(np.float32, *args)

    def dgemm(self, *args: Any) -> None:
        self._gemm(np.float64, *args)

    def _gemm(self, dtype, handle, transa, transb, m, n, k, alpha, a, lda, b, ldb, beta,
              c, ldc) -> None:
        self.calls.append(("gemm", transa, transb, m, n, k, lda, ldb, ldc))
        assert handle == 1, "gemm called without the handle create() returned"
        al, be = (_matrix(p, dtype, 1, 1, 1)[0, 0] for p in (alpha, beta))
        # column-major op(A): m x k; stored A is (m x k) if N else (k x m), ld >= its rows
        ra, ca = (m, k) if transa == N else (k, m)
        rb, cb = (k, n) if transb == N else (n, k)
        assert lda >= max(ra, 1) and ldb >= max(rb, 1) and ldc >= max(m, 1), "bad ld"
        A = _matrix(a, dtype, ra, ca, lda)
        B = _matrix(b, dtype, rb, cb, ldb)
        C = _matrix(c, dtype, m, n, ldc)
        A = A if transa == N else A.T
        B = B if transb == N else B.T
        C[...] = al * (A @ B) + (be * C if be != 0 else 0)


def _matrix(address: int, dtype, rows: int, cols: int, ld: int) -> np.ndarray:
    """The column-major `rows x cols` matrix with leading dimension `ld` at `address`,
    as a writable NumPy view of that memory."""
    size = np.dtype(dtype).itemsize
    count = ld * (cols - 1) + rows if rows and cols else 0
    buf = (ctypes.c_char * (count * size)).from_address(address)
    flat = np.frombuffer(buf, dtype, count)
    return np.lib.stride_tricks.as_strided(flat, (rows, cols), (size, ld * size))
