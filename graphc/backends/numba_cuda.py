"""The Numba CUDA backend: the CUDA schedule rendered as a generated module (kernels and
their launches, loaded through the cache as a real file), run with device buffers that
are allocated once; training keeps params, gradients and optimizer slots on the device."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from graphc.backends import cache
from graphc.backends.cuda import available, window
from graphc.backends.cuda import templates as T
from graphc.backends.cuda.writer import EntryWriter
from graphc.backends.numba_templates import versions
from graphc.backends.numpy_interp import evaluate
from graphc.errors import InputError
from graphc.ir import FLOAT, Program
from graphc.ops.modes import RNG_SOURCE

# launch shapes: the simulator runs every thread in Python, so it gets few and small
SIZES = {"gpu": dict(block=256, rblock=128, max_blocks=1024, tile=16),
         "simulator": dict(block=32, rblock=32, max_blocks=2, tile=4)}

ZERO = '''
{jit}
def zero_first(a):
    """a[0] = 0: before an atomic sum adds into it."""
    if cuda.grid(1) == 0:
        a[0] = 0
'''

AXIS_SOFTMAX = '''
{jit}
def {name}(x, y):
    """{op} along the middle axis of 3-D x: a thread per (outer, inner) pair."""
    outer, n, inner = x.shape
    for e in range(cuda.grid(1), outer * inner, cuda.gridsize(1)):
        o = e // inner
        k = e % inner
        m = F(-inf)
        for j in range(n):
            m = maximum(m, x[o, j, k])
        s = F(0.0)
        for j in range(n):
            s += math.exp(x[o, j, k] - m)
        for j in range(n):
            y[o, j, k] = {value}
'''

RUNTIME = '''
def grid(n):
    """Blocks for a grid-stride kernel over n elements."""
    return max(1, min(MAX_BLOCKS, (n + BLOCK - 1) // BLOCK))


def rgrid(n):
    """Blocks for a reduction with n outputs (a block each, grid-stride)."""
    return max(1, min(MAX_BLOCKS, n))


GEMMS = {(False, False): gemm_nn, (False, True): gemm_nt, (True, False): gemm_tn,
         (True, True): gemm_tt}


def tiled_matmul(a, ta, b, tb, c):
    """c = op(a) @ op(b) by the shared-memory tiled kernels (where cuBLAS is not used)."""
    m, n = c.shape
    GEMMS[ta, tb][((n + TILE - 1) // TILE, (m + TILE - 1) // TILE), (TILE, TILE)](a, b, c)


_BUFFERS = {}


def call(entry, x, matmul=None, buffers=None, given=None, n_out=None, **options):
    """Run `entry` on host arrays `x` (by node id): check them, copy them in, launch its
    kernels, copy the first `n_out` results out. Device arrays are made once per set of
    sizes and kept in `buffers` (those in `given` are the caller's, e.g. params)."""
    g = globals()
    bad = g[entry + "_checks"](x)
    if bad is not None:
        raise ValueError(bad)
    dims = g[entry + "_dims"](x)
    buffers = _BUFFERS if buffers is None else buffers
    a = buffers.get((entry, dims))
    if a is None:
        a = buffers[entry, dims] = g[entry + "_buffers"](dict(given or {}), *dims)
    for name in g[entry.upper() + "_ARGS"]:
        if name in x:
            d = a[name]
            d.copy_to_device(np.ascontiguousarray(x[name], d.dtype).reshape(d.shape))
    g[entry + "_launch"](a, *dims, matmul or tiled_matmul, **options)
    out = g[entry.upper() + "_OUT"][:n_out]
    return [a[n].copy_to_host().reshape(()) if s else a[n].copy_to_host() for n, s in out]
'''


def shared_signatures(dtype: str) -> dict[str, str]:
    """The Numba signatures of the module's shared kernels (for compile_ptx)."""
    a1, a2, a3, a4 = (f"{dtype}[{', '.join([':'] * (n - 1) + ['::1'])}]" for n in (1, 2, 3, 4))
    ints = lambda n: ", int64" * n  # noqa: E731
    sigs = {"softmax_rows": f"void({a2}, {a2})", "log_softmax_rows": f"void({a2}, {a2})",
            "softmax_axis": f"void({a3}, {a3})", "log_softmax_axis": f"void({a3}, {a3})",
            "grad_sq_sum": f"void({a1}, {a1})", "zero_first": f"void({a1})",
            "conv2d_k": f"void({a4}, {a4}, {a1}, boolean, {a4}{ints(7)})",
            "conv2d_input_k": f"void({a4}, {a4}, {a4}{ints(7)})",
            "conv2d_weight_k": f"void({a4}, {a4}, {a4}{ints(7)})",
            "max_pool2d_k": f"void({a4}, {a4}{ints(8)})",
            "max_pool2d_grad_k": f"void({a4}, {a4}, {a4}{ints(8)})",
            "avg_pool2d_k": f"void({a4}, {a4}{ints(7)})",
            "avg_pool2d_grad_k": f"void({a4}, {a4}{ints(7)})"}
    for g in ("nn", "nt", "tn", "tt"):
        sigs[f"gemm_{g}"] = f"void({a2}, {a2}, {a2})"
    return sigs


def module_source(title: str, dtype: np.dtype, entries: list[tuple], device: str,
                  doc: str = "", signatures: dict[str, str] | None = None) -> str:
    """The whole module: prelude, shared kernels, then per entry its kernels, host
    functions and constants. `entries`: (name, program, results, training or None);
    `signatures`, when given, receives each kernel's Numba signature."""
    sizes = SIZES[device]
    dt = np.dtype(dtype).name
    writers = []
    for entry, prog, results, train in entries:
        w = EntryWriter(entry, prog, results, dt, sizes["rblock"], train)
        w.write()
        writers.append(w)
    head = (f"Generated by graphc from the spec {title!r} ({dt}, launch sizes for the "
            f"{device}); do not edit.\nBuilt with {versions()}.\n{doc}")
    # the draws' top 24 bits times 2**-24 are exact in float32 too: no float64 in kernels
    rng = RNG_SOURCE.strip("\n").replace("def ", T.DEVICE + "\ndef ").replace(
        "np.float64(h >> np.uint64(40)) * 5.9604644775390625e-08",
        "F(h >> np.uint64(40)) * F(5.9604644775390625e-08)")
    shared = [T.softmax_rows("softmax_rows", "exp(x - m) / s", sizes["rblock"]),
              T.softmax_rows("log_softmax_rows", "x - m - log(s)", sizes["rblock"])]
    for op, value in (("softmax", "math.exp(x[o, j, k] - m) / s"),
                      ("log_softmax", "x[o, j, k] - m - math.log(s)")):
        shared.append(AXIS_SOFTMAX.format(jit=T.JIT, name=f"{op}_axis", op=op,
                                          value=value).strip("\n"))
    for ta in (False, True):
        for tb in (False, True):
            name = f"gemm_{'t' if ta else 'n'}{'t' if tb else 'n'}"
            shared.append(T.gemm(name, ta, tb, sizes["tile"]))
    shared.append(T.grad_sq_sum(block=sizes["rblock"]))
    shared.append(window.source())
    shared.append(ZERO.format(jit=T.JIT).strip("\n"))
    consts = "\n".join([f"FT = np.dtype({dt!r})  # the float type of host arrays",
                        f"BLOCK = {sizes['block']}  # threads per block (elementwise)",
                        f"RBLOCK = {sizes['rblock']}  # threads per block (reductions)",
                        f"MAX_BLOCKS = {sizes['max_blocks']}",
                        f"TILE = {sizes['tile']}  # of the tiled gemm"])
    parts = ['"""' + head.replace("\\", "\\\\").replace('"', '\\"') + '\n"""',
             T.prelude(dt), rng, consts, *shared, RUNTIME.strip("\n")]
    if signatures is not None:
        signatures.update(shared_signatures(dt))
    for w in writers:
        parts += w.kernels
        if signatures is not None:
            signatures.update(w.signatures)
        if w.train:
            parts.append(w.update_kernel())
            if signatures is not None:
                a1 = f"{dt}[::1]"
                signatures[f"{w.name}_update"] = f"void({a1}, {a1}, {dt}[:, ::1], {a1}, {a1})"
        parts += [w.host(), w.constants()]
    return "\n\n\n".join(parts) + "\n"


DICT_API = '''

OUTPUT_NAMES = {outputs}
PARAMS_FILE = {params_file}


def init_params():
    """The initial params by name, from the .npz file beside this module."""
    import os

    with np.load(os.path.join(os.path.dirname(__file__), PARAMS_FILE)) as f:
        return {{k: f[k] for k in f.files}}


def _feeds(entry, params, inputs):
    g = globals()
    x = {{i: np.asarray(inputs[k]) for k, i in g[entry.upper() + "_INPUTS"].items()
         if k in inputs}}
    x.update({{i: np.asarray(params[k]) for k, i in g[entry.upper() + "_PARAMS"].items()}})
    return x


def forward(params, /, **inputs):
    """The outputs by name, for params (a dict) and inputs by name."""
    return dict(zip(OUTPUT_NAMES, call("forward", _feeds("forward", params, inputs))))


def loss_and_grad(params, /, **inputs):
    """The loss and the gradient of every param, by name."""
    loss, *grads = call("loss_and_grad", _feeds("loss_and_grad", params, inputs))
    return float(loss), dict(zip(LOSS_AND_GRAD_PARAMS, grads))
'''


def _dtype_of(kind: str, dtype: np.dtype) -> np.dtype:
    return dtype if kind == FLOAT else np.dtype(kind)


class CudaBackend:
    """`compile` and `train_step` (runtime.Model's protocol) on a GPU or the simulator;
    `cublas`: a cuBLAS-like library object for products (tests pass NumpyCublas)."""

    name = "cuda"

    def __init__(self, cache_dir: str | None = None, cublas: Any = None):
        self.device = available.require()
        self.cache_dir, self.cublas = cache_dir, cublas
        self._trainers: dict[Any, Any] = {}
        self._gemm: dict[str, Any] = {}

    def load(self, title: str, dtype: np.dtype, entries: list[tuple]) -> ModuleType:
        source = module_source(title, dtype, entries, self.device)
        return cache.load(source, f"cuda_{title}", self.cache_dir)

    def matmul(self, module: ModuleType, dtype: np.dtype) -> Callable:
        """cuBLAS on a GPU (or the given stand-in); else the module's tiled kernels."""
        key = np.dtype(dtype).name
        if key not in self._gemm:
            from graphc.backends.cuda.blas import Gemm

            if self.cublas is not None:
                self._gemm[key] = Gemm(self.cublas, key)
            elif self.device == "gpu":
                try:
                    self._gemm[key] = Gemm(None, key)
                except ImportError:  # no nvmath-python: the tiled kernels
                    self._gemm[key] = None
            else:
                self._gemm[key] = None
        return self._gemm[key] or module.tiled_matmul

    def compile(self, program: Program, dtype: np.dtype, results: Sequence[str]
                ) -> Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]:
        """A function from feeds (host arrays by node id) to the host arrays of
        `results`: copy in, launch, copy out."""
        dtype = np.dtype(dtype)
        module = self.load(program.name, dtype, [("run", program, list(results), None)])
        matmul = self.matmul(module, dtype)
        args = [(i, _dtype_of(program[i].dtype, dtype), tuple(program[i].shape))
                for i in module.RUN_ARGS]
        params = set(program.params.values())
        buffers: dict = {}

        def run(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            x = {}
            for i, dt, shape in args:
                a = np.asarray(feeds[i], dt)
                if i in params and a.shape != shape:
                    raise InputError(f"param {program[i].name!r} has shape {list(a.shape)}, "
                                     f"the model wants {list(shape)}")
                x[i] = a
            try:
                return module.call("run", x, matmul, buffers)
            except ValueError as e:  # an input check: the reference says what is wrong
                evaluate(program, feeds, dtype)
                raise InputError(str(e)) from None

        run.module = module  # type: ignore[attr-defined]
        return run

    def train_step(self, model: Any, optimizer: Any, inputs: Mapping[str, Any],
                   clip_grad_norm: float | None = None,
                   clip_grad_value: float | None = None) -> float:
        """Forward, backward, clipping and the update on the device; the batch goes in
        and the loss comes out."""
        from graphc.backends.cuda.resident import Trainer

        lines = tuple(optimizer.update_lines())
        key = (id(model), id(optimizer), lines, tuple(optimizer.slots))
        trainer = self._trainers.get(key)
        if trainer is None or trainer.optimizer is not optimizer:
            trainer = self._trainers[key] = Trainer(self, model, optimizer, lines)
            while len(self._trainers) > 4:
                self._trainers.pop(next(iter(self._trainers)))
        norm = math.inf if clip_grad_norm is None else float(clip_grad_norm)
        value = math.inf if clip_grad_value is None else float(clip_grad_value)
        return trainer.step(model, optimizer, inputs, norm, value)
