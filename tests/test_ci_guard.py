"""tests/ci_guard.py: under CI=true a skip fails the run; elsewhere it stays a skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ci_guard

ROOT = Path(__file__).resolve().parent.parent

SUITE = {
    "test_runs.py": "def test_fine():\n    assert 1 + 1 == 2\n",
    "test_skips.py": "import pytest\n\n\ndef test_needs_torch():\n"
                     "    pytest.skip('needs torch, the reference')\n",
    "test_module.py": "import pytest\n\nnothere = pytest.importorskip('no_such_module_x')\n",
    "test_gpu.py": "import pytest\n\n\n@pytest.mark.skipif(True, reason='needs a CUDA GPU')\n"
                   "def test_gpu():\n    pass\n",
}


def _run(tmp_path: Path, ci: str | None, *files: str) -> subprocess.CompletedProcess:
    for name, text in SUITE.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.ci_guard",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                           *(str(tmp_path / f) for f in files)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("files", [("test_runs.py", "test_skips.py"),
                                   ("test_runs.py", "test_module.py")])
def test_a_skip_fails_under_ci(tmp_path, files):
    proc = _run(tmp_path, "true", *files)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "tests skipped under CI=true" in proc.stdout
    assert ("needs torch" in proc.stdout) or ("no_such_module_x" in proc.stdout)


def test_a_skip_is_a_skip_outside_ci(tmp_path):
    proc = _run(tmp_path, None, "test_runs.py", "test_skips.py", "test_module.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 passed, 2 skipped" in proc.stdout
    assert "tests skipped under CI" not in proc.stdout


def test_allowed_reasons_and_real_failures(tmp_path):
    proc = _run(tmp_path, "true", "test_runs.py", "test_gpu.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a reason CI accepts
    (tmp_path / "test_bad.py").write_text("def test_bad():\n    assert False\n")
    proc = _run(tmp_path, "true", "test_bad.py", "test_skips.py")
    assert proc.returncode == 1 and "1 failed" in proc.stdout  # a failure stays a failure


def test_the_optional_modules_exist_and_skip_only_for_a_dependency():
    """The modules CI must run are there; each names what to install when it skips."""
    for name in ci_guard.MUST_RUN_IN_CI:
        text = (ROOT / "tests" / name).read_text()
        assert "def test_" in text, name
    for name in ("test_ops_torch.py", "test_optim.py", "test_regularization.py"):
        text = (ROOT / "tests" / name).read_text()
        assert "importorskip" not in text, f"{name} must not skip as a whole without torch"

