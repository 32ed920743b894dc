"""The cuBLAS call path, without a GPU: `Gemm` hands a NumPy stand-in exactly the
column-major arguments and raw addresses cuBLAS would get, for every transpose."""

import itertools

import numpy as np
import pytest

from graphc.backends.cuda.blas import Gemm, NumpyCublas, gemm_args, pointer


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("ta,tb", list(itertools.product([False, True], repeat=2)))
@pytest.mark.parametrize("m,k,n", [(3, 5, 7), (1, 4, 2), (6, 1, 3)])
def test_gemm_matches_numpy(ta, tb, m, k, n, dtype):
    rng = np.random.default_rng(m * 100 + k * 10 + n)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype)
    lib = NumpyCublas()
    gemm = Gemm(lib, dtype)
    gemm(a, ta, b, tb, c)
    want = (a.T if ta else a) @ (b.T if tb else b)
    np.testing.assert_allclose(c, want, rtol=1e-5, atol=1e-5)
    # cuBLAS sees the transposed problem: its first operand is B, its m is our n
    (call,) = lib.calls
    assert call == ("gemm", int(tb), int(ta), n, m, k, b.shape[1], a.shape[1], n)


def test_accumulate_adds_to_c():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    c = np.ones((4, 2))
    Gemm(NumpyCublas(), "float64")(a, False, b, False, c, accumulate=True)
    np.testing.assert_allclose(c, 1 + a @ b)


def test_slices_are_addressed_by_their_own_pointer():
    """A param that is a slice of the flat buffer is passed by its own first element."""
    flat = np.zeros(20)
    w = flat[5:11].reshape(2, 3)
    a = np.arange(4.0).reshape(2, 2)
    Gemm(NumpyCublas(), "float64")(a, True, np.ones((2, 3)), False, w)
    np.testing.assert_allclose(flat[5:11].reshape(2, 3), a.T @ np.ones((2, 3)))
    assert np.all(flat[:5] == 0) and np.all(flat[11:] == 0)
    assert pointer(w) == pointer(flat) + 5 * 8


def test_shape_errors():
    with pytest.raises(ValueError, match="inner dimensions"):
        gemm_args((2, 3), False, (4, 5), False)
    with pytest.raises(ValueError, match="result has shape"):
        Gemm(NumpyCublas(), "float64")(np.ones((2, 3)), False, np.ones((3, 4)), False,
                                       np.ones((4, 2)))


def test_nvmath_bindings_take_the_same_arguments():
    """The real bindings import without a GPU and have the signature the stand-in has."""
    cublas = pytest.importorskip("nvmath.bindings.cublas")
    doc = cublas.sgemm.__doc__
    assert "sgemm(intptr_t handle, int transa, int transb, int m, int n, int k, " \
           "intptr_t alpha, intptr_t a, int lda, intptr_t b, int ldb, intptr_t beta, " \
           "intptr_t c, int ldc)" in doc
    assert (int(cublas.Operation.N), int(cublas.Operation.T)) == (0, 1)
