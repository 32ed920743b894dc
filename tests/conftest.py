"""Shared test helpers. Numba's cache goes to a per-session temporary directory so that
tests never read or pollute the user's cache."""

import os
import tempfile

os.environ.setdefault("GRAPHC_CACHE_DIR", tempfile.mkdtemp(prefix="graphc-test-cache-"))

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

# tests.ci_guard: under CI=true a skipped test fails the run; tests.simulator: the CUDA
# simulator layer starts in a process of its own as soon as collection asks for it
pytest_plugins = ["tests.ci_guard"] + (
    [] if os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0") else ["tests.simulator"])

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def examples() -> Path:
    return EXAMPLES

# The CUDA simulator tests need NUMBA_ENABLE_CUDASIM=1 before numba is imported, so they
# run in a process of their own (tests/test_cuda.py starts it) unless this one is it.
collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0") \
    else ["cuda_sim"]
