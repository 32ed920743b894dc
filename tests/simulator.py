"""The CUDA simulator layer (tests/cuda_sim/) in a pytest process of its own, started as
soon as collection shows it will be needed, so that its minutes of simulated kernels run
beside the rest of the suite instead of after it; tests/test_cuda.py waits for it."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST = "tests/test_cuda.py::test_simulator_layer"
TIMEOUT_S = 900


class Run:
    def __init__(self):
        env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": str(ROOT)}
        self.out = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-x", "-p", "no:cacheprovider",
             str(ROOT / "tests" / "cuda_sim")],
            cwd=ROOT, env=env, stdout=self.out, stderr=subprocess.STDOUT, text=True)

    def result(self) -> tuple[int, str]:
        """(exit status, output) once the run ends."""
        try:
            rc = self.proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.out.seek(0)
        return rc, self.out.read()


KEY = pytest.StashKey[Run]()


def pytest_collection_finish(session):
    if any(item.nodeid == TEST for item in session.items):
        session.config.stash[KEY] = Run()


def pytest_unconfigure(config):
    run = config.stash.get(KEY, None)
    if run is not None and run.proc.poll() is None:  # the session stopped early (-x, ^C)
        run.proc.kill()

