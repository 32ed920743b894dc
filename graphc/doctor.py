"""What this machine gives graphc: versions, the BLAS and its core type, the renderer,
CUDA, the module cache. `graphc doctor` prints it; `blas_warning()` is the one line that
`graphc train` and the benchmarks print when the BLAS runs below what the CPU supports
(an OPENBLAS_CORETYPE set too low halves sgemm on an AVX-512 CPU).
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

# OpenBLAS core types by the instruction set their kernels use (higher is faster).
CORE_RANK = {
    "katmai": 0, "coppermine": 0, "northwood": 0, "prescott": 0, "atom": 0, "core2": 0,
    "penryn": 0, "dunnington": 0, "nehalem": 1, "barcelona": 1,
    "bobcat": 1, "bulldozer": 2, "piledriver": 2, "steamroller": 2, "excavator": 2,
    "sandybridge": 2, "haswell": 3, "zen": 3, "skylakex": 4,
    # Cooper Lake and Sapphire Rapids add bf16 (and AMX) kernels; their float32 and float64
    # products are SkylakeX's, so a SkylakeX OpenBLAS on such a CPU loses nothing here
    "cooperlake": 4, "sapphirerapids": 4,
}
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def _cpuinfo(field: str) -> str:
    """The first `field` line of Linux's /proc/cpuinfo ("" elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    for line in text.splitlines():
        if line.split(":", 1)[0].strip() == field:
            return line.split(":", 1)[1].strip()
    return ""


def cpu_flags() -> set[str]:
    """The CPU's feature flags (empty where /proc/cpuinfo does not exist)."""
    return set(_cpuinfo("flags").split())


def best_core_type(flags: set[str]) -> str | None:
    """The OpenBLAS core type this CPU's instruction set deserves."""
    if {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags:
        return "Cooperlake" if "avx512_bf16" in flags else "SkylakeX"
    if {"avx2", "fma"} <= flags:
        return "Haswell"
    if "avx" in flags:
        return "Sandybridge"
    return None


@dataclass(frozen=True)
class Blas:
    library: str  # "openblas", "mkl", ...
    version: str
    threads: int
    core_type: str | None  # what OpenBLAS runs ("Haswell"), None if not OpenBLAS
    path: str


def blas() -> list[Blas]:
    """The BLAS libraries loaded into this process (numpy's first)."""
    import numpy  # noqa: F401  (loads numpy's BLAS so threadpoolctl sees it)
    from threadpoolctl import threadpool_info

    return [Blas(i.get("internal_api", "?"), str(i.get("version")), int(i.get("num_threads", 0)),
                 i.get("architecture"), i.get("filepath", ""))
            for i in threadpool_info() if i.get("user_api") == "blas"]


def blas_warning(libs: list[Blas] | None = None, flags: set[str] | None = None) -> str | None:
    """One line when OpenBLAS runs kernels below the CPU's instruction set, with the fix."""
    libs = blas() if libs is None else libs
    best = best_core_type(cpu_flags() if flags is None else flags)
    if best is None:
        return None
    for lib in libs:
        running = (lib.core_type or "").lower()
        if running in CORE_RANK and CORE_RANK[running] < CORE_RANK[best.lower()]:
            if os.environ.get("OPENBLAS_CORETYPE"):
                cause = "OPENBLAS_CORETYPE=" + os.environ["OPENBLAS_CORETYPE"]
                fix = ("unset OPENBLAS_CORETYPE (env -u OPENBLAS_CORETYPE -u "
                       "OPENBLAS_L2_SIZE ...)")
            else:
                cause = "its own core detection"
                fix = f"export OPENBLAS_CORETYPE={best}, or a newer numpy (its OpenBLAS)"
            return (f"warning: OpenBLAS runs {lib.core_type} kernels on a CPU that supports "
                    f"{best} ({cause}); products may run at about half speed. Fix: {fix}.")
    return None


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _dir_size(path: Path) -> tuple[int, int]:
    files = size = 0
    if path.is_dir():
        for p in path.rglob("*"):
            if p.is_file():
                files += 1
                size += p.stat().st_size
    return files, size


def cuda_status() -> str:
    """Whether `backend="cuda"` can run here, and on what."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "simulator (NUMBA_ENABLE_CUDASIM=1): correct but slow, tiny sizes only"
    if _version("numba-cuda") is None:
        return "not installed (pip install 'graphc[cuda]')"
    import ctypes.util

    if ctypes.util.find_library("cuda") is None and not Path("/dev/nvidiactl").exists():
        return ("numba-cuda installed, no NVIDIA driver here (set NUMBA_ENABLE_CUDASIM=1 "
                "for the simulator)")
    try:
        from numba import cuda

        if cuda.is_available():
            gpu = cuda.get_current_device()
            name = gpu.name.decode() if isinstance(gpu.name, bytes) else gpu.name
            return f"GPU: {name} (compute capability {gpu.compute_capability})"
    except Exception as e:  # a broken driver is exactly what doctor must report, not raise
        return f"numba-cuda installed, no usable GPU ({type(e).__name__}: {e})"
    return "numba-cuda installed, no GPU found (set NUMBA_ENABLE_CUDASIM=1 for the simulator)"


def report() -> list[tuple[str, str]]:
    """(label, value) rows for `graphc doctor`."""
    from graphc.backends.cache import cache_dir
    from graphc.viz.render import renderers

    rows = [("graphc", _version("graphc") or "(not installed; running from source)"),
            ("python", f"{platform.python_version()} ({sys.executable})"),
            ("platform", f"{platform.system()} {platform.machine()}")]
    for dist in ("numpy", "numba", "llvmlite", "scipy", "graphviz", "graphviz-pure",
                 "numba-cuda", "onnx", "ray", "torch"):
        rows.append((dist, _version(dist) or "not installed"))
    flags = cpu_flags()
    best = best_core_type(flags)
    rows.append(("cpu", f"{_cpuinfo('model name') or platform.machine()}; instruction set "
                        f"for BLAS: {best or 'unknown'}"))
    libs = blas()
    for lib in libs:
        rows.append(("blas", f"{lib.library} {lib.version}, {lib.threads} threads, core type "
                             f"{lib.core_type or '?'} ({lib.path})"))
    env = ", ".join(f"{k}={os.environ[k]}" for k in OPENBLAS_VARS if k in os.environ)
    rows.append(("blas env", env or "OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset"))
    warning = blas_warning(libs, flags)
    if warning:
        rows.append(("blas check", warning))
    found = renderers()
    rows.append(("renderer", ", ".join(f"{r.name} ({r.path})" for r in found)
                 or "none (pip install graphviz-pure, or apt-get install graphviz)"))
    rows.append(("cuda", cuda_status()))
    where = cache_dir()
    files, size = _dir_size(where)
    rows.append(("cache", f"{where} ({files} files, {size / 1e6:.1f} MB)"))
    return rows
