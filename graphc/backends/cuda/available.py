"""Can CUDA kernels run here? A GPU through numba-cuda, or Numba's CUDA simulator; if
neither, one CompileError that says which is missing and how to get it."""

from __future__ import annotations

import importlib.util
import os
import sys

from graphc.errors import CompileError

SIM_VAR = "NUMBA_ENABLE_CUDASIM"
INSTALL = 'pip install "graphc[cuda]"'


def simulator_requested() -> bool:
    return os.environ.get(SIM_VAR, "") not in ("", "0")


def require() -> str:
    """'gpu' or 'simulator', whichever this process will run CUDA kernels on."""
    if importlib.util.find_spec("numba") is None:
        raise CompileError(f"the cuda backend needs numba-cuda: {INSTALL}")
    numba_loaded = "numba" in sys.modules
    if simulator_requested() and numba_loaded:
        from numba import config

        if not config.ENABLE_CUDASIM:
            raise CompileError(f"{SIM_VAR}=1 was set after numba was imported, so the "
                               "simulator is off; set it before Python starts (e.g. "
                               f"`{SIM_VAR}=1 python ...`)")
    if simulator_requested():
        return "simulator"
    if importlib.util.find_spec("numba_cuda") is None:
        raise CompileError(f"the cuda backend needs the numba-cuda package: {INSTALL} "
                           f"(or set {SIM_VAR}=1 before numba is imported for the simulator)")
    from numba import config, cuda

    if config.ENABLE_CUDASIM:
        return "simulator"
    try:
        ok = cuda.is_available()
    except Exception:  # a broken driver install: say the same as for none
        ok = False
    if not ok:
        raise CompileError("no CUDA GPU is usable here (numba-cuda found no device or "
                           "driver); run on a machine with an NVIDIA GPU, or set "
                           f"{SIM_VAR}=1 before numba is imported to run on Numba's CUDA "
                           "simulator (slow: tiny sizes only)")
    return "gpu"
