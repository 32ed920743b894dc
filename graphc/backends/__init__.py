"""Backends turn a scheduled Program into something that runs: `compile(program, dtype,
results)` returns a function from feeds (arrays by node id) to the result arrays."""

from __future__ import annotations

import importlib.util

from graphc.errors import CompileError, did_you_mean

BACKENDS = ("numpy", "cpu", "cuda")


def get(name: str):
    if name == "numpy":
        from graphc.backends.numpy_interp import NumpyBackend
        return NumpyBackend()
    if name == "cpu":
        from graphc.backends.numba_cpu import CpuBackend
        return CpuBackend()
    if name == "cuda":
        if importlib.util.find_spec("graphc.backends.numba_cuda") is None:
            raise CompileError("the cuda backend is not in this version of graphc yet; "
                               "use backend='cpu' (Numba) or 'numpy'")
        from graphc.backends.numba_cuda import CudaBackend
        return CudaBackend()
    raise CompileError(f"unknown backend {name!r} "
                     f"({did_you_mean(name, BACKENDS) or 'choose numpy, cpu or cuda'})")
