"""Backends turn a scheduled Program into something that runs: `compile(program, dtype,
results)` returns a function from feeds (arrays by node id) to the result arrays."""

from __future__ import annotations

import importlib.util

from graphc.backends.protocol import Backend
from graphc.errors import CompileError, did_you_mean

BACKENDS = ("numpy", "cpu", "cuda")


def get(name: str, **options) -> Backend:
    """A backend by name; options go to its constructor (cpu: cache_dir)."""
    if options and name != "cpu":
        raise CompileError(f"backend {name!r} takes no options "
                           f"(got {', '.join(sorted(options))})")
    if name == "numpy":
        from graphc.backends.numpy_interp import NumpyBackend
        return NumpyBackend()
    if name == "cpu":
        from graphc.backends.numba_cpu import CpuBackend
        try:
            return CpuBackend(**options)
        except TypeError:
            raise CompileError(f"unknown option of backend 'cpu': {', '.join(sorted(options))} "
                               "(it takes cache_dir)") from None
    if name == "cuda":
        if importlib.util.find_spec("graphc.backends.numba_cuda") is None:
            raise CompileError("the cuda backend is not in this version of graphc yet; "
                               "use backend='cpu' (Numba) or 'numpy'")
        from graphc.backends.numba_cuda import CudaBackend
        return CudaBackend()
    raise CompileError(f"unknown backend {name!r} "
                     f"({did_you_mean(name, BACKENDS) or 'choose numpy, cpu or cuda'})")
