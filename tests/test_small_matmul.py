"""The CPU helpers' loops for small matrix products (small_matmul, and matmul2d around it):
every transpose combination and shape class against numpy, within reassociation error."""

from __future__ import annotations

import numpy as np
import pytest

from graphc.backends import cache
from graphc.backends.numba_templates import helpers_module

# (m, k, n): one row, one column, k = 1 (outer products), k < 8 and k >= 8 with n not a
# multiple of 4 (the four-at-a-time dots' tail), odd sizes, empty, and two above SMALL
SHAPES = [(1, 1, 1), (1, 7, 1), (1, 10, 257), (257, 10, 1), (1, 33, 5), (5, 33, 1),
          (33, 1, 17), (3, 2, 5), (7, 5, 3), (13, 9, 11), (32, 16, 16), (16, 32, 1),
          (2, 31, 17), (9, 64, 6), (0, 5, 3), (4, 0, 3), (4, 5, 0), (40, 50, 30), (64, 64, 10)]
LAYOUTS = [(False, False), (False, True), (True, False), (True, True)]


@pytest.fixture(scope="module")
def helpers64():
    return cache.load(helpers_module(np.dtype("float64")), "helpers_float64")


def _operands(m, k, n, ta, tb, dtype, seed=0):
    rng = np.random.default_rng(seed + 7 * m + 11 * k + 13 * n)
    a, b = rng.normal(size=(m, k)), rng.normal(size=(k, n))
    pa = np.ascontiguousarray((a.T if ta else a), dtype)
    pb = np.ascontiguousarray((b.T if tb else b), dtype)
    return a, b, pa, pb


@pytest.mark.parametrize("ta,tb", LAYOUTS, ids=["nn", "nt", "tn", "tt"])
@pytest.mark.parametrize("fn", ["small_matmul", "matmul2d"])
def test_float64_within_1e12_of_numpy(helpers64, fn, ta, tb):
    """Elementwise within 1e-12 of |a| @ |b| (the scale of a sum's rounding error, so
    cancellation cannot hide or fake a difference) and 1e-12 relative overall."""
    for m, k, n in SHAPES:
        a, b, pa, pb = _operands(m, k, n, ta, tb, np.float64)
        out = np.full((m, n), np.nan)
        getattr(helpers64, fn)(pa, ta, pb, tb, out)
        ref = a @ b
        assert np.all(np.abs(out - ref) <= 1e-12 * (np.abs(a) @ np.abs(b))), (m, k, n)
        if ref.size:
            assert np.max(np.abs(out - ref)) <= 1e-12 * np.max(np.abs(ref)), (m, k, n)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (True, True)],
                         ids=["nn", "tn", "tt"])
def test_loops_without_dots_sum_in_order(helpers64, ta, tb):
    """Where no dot product is used (n > 1 for a @ b; a.T @ b; a.T @ b.T), each out[i, j]
    is the in-order sum over p, bit for bit: no fastmath reaches these loops."""
    for m, k, n in [(7, 5, 3), (13, 9, 11), (2, 31, 17), (33, 2, 16), (5, 33, 1)]:
        if n == 1 and not ta:
            continue  # a column b is a dot product, which may reassociate
        a, b, pa, pb = _operands(m, k, n, ta, tb, np.float64, seed=1)
        out = np.empty((m, n))
        helpers64.small_matmul(pa, ta, pb, tb, out)
        ref = a[:, :1] * b[:1]
        for p in range(1, k):
            ref = ref + a[:, p:p + 1] * b[p:p + 1]
        assert np.array_equal(out, ref), (m, k, n)


@pytest.mark.parametrize("ta,tb", LAYOUTS, ids=["nn", "nt", "tn", "tt"])
def test_nan_and_inf_propagate_in_every_layout(helpers64, ta, tb):
    """"reassoc" alone must not let the compiler assume finite values: a NaN in row i of
    op(a) makes row i of the result NaN, an inf there makes it inf (positive b)."""
    for m, k, n in [(5, 9, 6), (3, 16, 1), (4, 1, 5), (1, 12, 9)]:
        a, b, _, _ = _operands(m, k, n, ta, tb, np.float64, seed=2)
        b = np.abs(b) + 0.5
        for bad, want in ((np.nan, np.isnan), (np.inf, np.isposinf)):
            a2 = a.copy()
            a2[m - 1, k // 2] = bad
            pa = np.ascontiguousarray(a2.T if ta else a2)
            pb = np.ascontiguousarray(b.T if tb else b)
            out = np.zeros((m, n))
            helpers64.small_matmul(pa, ta, pb, tb, out)
            assert want(out[m - 1]).all() and np.isfinite(out[:m - 1]).all(), (m, k, n, bad)


@pytest.mark.parametrize("ta,tb", LAYOUTS, ids=["nn", "nt", "tn", "tt"])
def test_float32_close_to_float64_product(ta, tb):
    helpers = cache.load(helpers_module(np.dtype("float32")), "helpers_float32")
    for m, k, n in SHAPES:
        a, b, pa, pb = _operands(m, k, n, ta, tb, np.float32, seed=3)
        a, b = a.astype(np.float32).astype(np.float64), b.astype(np.float32).astype(np.float64)
        out = np.full((m, n), np.nan, np.float32)
        helpers.small_matmul(pa, ta, pb, tb, out)
        assert np.all(np.abs(out - a @ b) <= 4e-6 * (np.abs(a) @ np.abs(b))), (m, k, n)
