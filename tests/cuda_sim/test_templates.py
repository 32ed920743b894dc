"""Each CUDA kernel template against NumPy on Numba's CUDA simulator (tiny shapes, not
multiples of the block). Run in a process of its own with NUMBA_ENABLE_CUDASIM=1, which
tests/test_cuda.py does; the main run does not collect this folder."""

import tempfile

import numpy as np
import pytest

from graphc.backends import cache
from graphc.backends.cuda.blas import Gemm, NumpyCublas
from graphc.backends.cuda.device import DeviceState
from tests.cuda_kernels import BLOCK, TILE, optimizers, source

cuda = pytest.importorskip("numba.cuda")
from numba import config  # noqa: E402

pytestmark = pytest.mark.skipif(not config.ENABLE_CUDASIM,
                                reason="simulator tests run through tests/test_cuda.py")

RNG = np.random.default_rng(0)
SHAPE = (5, 37)  # 37 > BLOCK and not a multiple of it


@pytest.fixture(scope="module")
def k():
    return cache.load(source(), "cuda_templates", tempfile.mkdtemp())


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def test_elementwise_fused_bias_relu(k):
    x, b = rand(*SHAPE), rand(SHAPE[1])
    y = cuda.device_array(SHAPE, np.float32)
    k.bias_relu[1, BLOCK](cuda.to_device(x), cuda.to_device(b), y)
    np.testing.assert_array_equal(y.copy_to_host(), np.maximum(x + b, 0))


def test_elementwise_scalar_functions(k):
    x = rand(*SHAPE) * 3
    y = cuda.device_array(SHAPE, np.float32)
    k.tanh_sigmoid[2, BLOCK](cuda.to_device(x), y)
    t = np.tanh(x) * 0.5 + 1 / (1 + np.exp(-x)) - np.logaddexp(0, x)
    np.testing.assert_allclose(y.copy_to_host(), np.maximum(t, np.minimum(np.exp(x), 2)),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("blocks", [1, 3])
def test_tree_reductions(k, blocks):
    x = rand(*SHAPE)
    out = cuda.device_array(SHAPE[1], np.float32)
    k.mean0[blocks, BLOCK](cuda.to_device(x), out)
    np.testing.assert_allclose(out.copy_to_host(), x.mean(0), rtol=1e-5, atol=1e-6)
    out = cuda.device_array(SHAPE[0], np.float32)
    k.max1[blocks, BLOCK](cuda.to_device(x), out)
    np.testing.assert_array_equal(out.copy_to_host(), x.max(1))


def test_atomic_sum_over_blocks(k):
    x = rand(*SHAPE)
    out = cuda.to_device(np.zeros(1, np.float32))
    k.sumsq[3, BLOCK](cuda.to_device(x), out)
    np.testing.assert_allclose(out.copy_to_host()[0], 0.5 * (x * x).sum(), rtol=1e-5)


def test_softmax_and_log_softmax(k):
    x = rand(*SHAPE) * 20  # large logits: the max is subtracted first
    ref = x - x.max(1, keepdims=True)
    ref = ref - np.log(np.exp(ref).sum(1, keepdims=True))
    for kernel, want in ((k.softmax, np.exp(ref)), (k.log_softmax, ref)):
        y = cuda.device_array(SHAPE, np.float32)
        kernel[2, BLOCK](cuda.to_device(x), y)
        np.testing.assert_allclose(y.copy_to_host(), want, rtol=1e-5, atol=1e-6)


def test_cross_entropy_forward_and_backward(k):
    x = rand(*SHAPE) * 5
    labels = RNG.integers(0, SHAPE[1], SHAPE[0]).astype(np.int64)
    loss = cuda.to_device(np.zeros(1, np.float32))
    dx = cuda.device_array(SHAPE, np.float32)
    k.cross_entropy[2, BLOCK](cuda.to_device(x), cuda.to_device(labels), loss, dx)
    lsm = x - x.max(1, keepdims=True)
    lsm = lsm - np.log(np.exp(lsm).sum(1, keepdims=True))
    rows = np.arange(SHAPE[0])
    np.testing.assert_allclose(loss.copy_to_host()[0], -lsm[rows, labels].mean(), rtol=1e-5)
    want = np.exp(lsm)
    want[rows, labels] -= 1
    np.testing.assert_allclose(dx.copy_to_host(), want / SHAPE[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ta,tb", [(False, False), (False, True), (True, False), (True, True)])
def test_tiled_gemm(k, ta, tb):
    m, kk, n = 5, 7, 6  # none a multiple of the tile
    a = rand(*((kk, m) if ta else (m, kk)))
    b = rand(*((n, kk) if tb else (kk, n)))
    c = cuda.device_array((m, n), np.float32)
    kernel = getattr(k, f"gemm_{'t' if ta else 'n'}{'t' if tb else 'n'}")
    kernel[((n + TILE - 1) // TILE, (m + TILE - 1) // TILE), (TILE, TILE)](
        cuda.to_device(a), cuda.to_device(b), c)
    want = (a.T if ta else a) @ (b.T if tb else b)
    np.testing.assert_allclose(c.copy_to_host(), want, rtol=1e-5, atol=1e-5)


def test_tiled_gemm_accumulates(k):
    a, b, c0 = rand(3, 5), rand(2, 5), rand(3, 2)
    c = cuda.to_device(c0)
    k.gemm_acc[(1, 1), (TILE, TILE)](cuda.to_device(a), cuda.to_device(b), c)
    np.testing.assert_allclose(c.copy_to_host(), c0 + a @ b.T, rtol=1e-5, atol=1e-5)


def test_cublas_path_on_simulator_arrays():
    """The stand-in reads and writes the simulator's device memory by raw address."""
    a, b = rand(4, 3), rand(4, 5)
    c = cuda.device_array((3, 5), np.float32)
    Gemm(NumpyCublas())(cuda.to_device(a), True, cuda.to_device(b), False, c)
    np.testing.assert_allclose(c.copy_to_host(), a.T @ b, rtol=1e-5, atol=1e-6)


LAYOUT = [("W", (3, 4)), ("b", (4,)), ("s", ())]


@pytest.mark.parametrize("name", list(optimizers()))
@pytest.mark.parametrize("clip", [None, (0.5, None), (None, 0.3)])
def test_update_kernel_matches_optimizer(k, name, clip):
    """Three steps of the one-kernel update over the flat buffer = graphc.optim's."""
    ref, dev = optimizers()[name], optimizers()[name]
    params = {n: rand(*s) for n, s in LAYOUT}
    state = DeviceState(cuda, LAYOUT, slots=dev.slots, hyper=list(dev.hyper),
                        slot_init=dev.slot_init)
    state.write(params)
    host = {n: v.copy() for n, v in params.items()}
    norm, value = clip or (None, None)
    kernel = getattr(k, f"update_{name}")
    for t in range(1, 4):
        grads = {n: rand(*s) for n, s in LAYOUT}
        for n, g in grads.items():
            state.grad(n).copy_to_device(g.reshape(state.grad(n).shape))
        state.set_hyper(dev.hyper, t, norm, value)
        if norm is not None:
            k.grad_sq_sum[1, BLOCK](state.G, state.C)
        kernel[1, BLOCK](state.P, state.G, state.S, state.H, state.C)
        from graphc.optim import clip_gradients
        clip_gradients(grads, norm, value)
        ref.step(host, grads)
    got = state.read()
    for n in host:
        np.testing.assert_allclose(got[n], host[n], rtol=2e-5, atol=2e-6, err_msg=n)
    for n, slots in state.read_slots().items():
        for s, v in slots.items():
            np.testing.assert_allclose(v, ref.state[n][s], rtol=2e-5, atol=2e-6)


def test_device_state_layout_and_staging():
    state = DeviceState(cuda, LAYOUT, slots=("m",), hyper=["lr"], slot_init={"m": 0.5})
    params = {n: rand(*s) for n, s in LAYOUT}
    state.write(params)
    assert state.offsets == {"W": (0, 12), "b": (12, 16), "s": (16, 17)}
    np.testing.assert_array_equal(state.param("W").copy_to_host(), params["W"])
    np.testing.assert_array_equal(state.slot("b", "m").copy_to_host(), np.full(4, 0.5))
    with pytest.raises(ValueError, match="param 'b' has shape"):
        state.write({**params, "b": np.zeros(3)})
    x = rand(2, 3)
    buf = state.stage("x", x)
    assert state.stage("x", x * 2) is buf  # same shape: the same buffer, refilled
    np.testing.assert_array_equal(buf.copy_to_host(), x * 2)
    assert state.stage("x", x[:1]) is not buf  # a smaller last batch gets its own
