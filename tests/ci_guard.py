"""Under CI (the environment variable CI=true, as .ci/run and GitHub set it), a skipped
test fails the run: CI installs torch, ray, playwright, chromium, Graphviz and
graphviz-pure, so a skip there means a reference or a renderer went missing and the tests
that use it silently stopped running. Loaded by tests/conftest.py.

A skip that CI may take needs a reason starting with one of `ALLOWED_IN_CI` (none so far:
a GPU test would be the first, "needs a CUDA GPU")."""

from __future__ import annotations

import os

import pytest

ALLOWED_IN_CI: tuple[str, ...] = ("needs a CUDA GPU",)
# the modules that skip without an optional dependency; CI must run every one of them
MUST_RUN_IN_CI = ("test_ops_torch.py", "test_optim.py", "test_regularization.py",
                  "test_viz_browser.py", "test_distributed.py", "test_viz.py")

_skipped: list[tuple[str, str]] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # (path, line, "Skipped: why")
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _record(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = _reason(report)
        if not reason.startswith(ALLOWED_IN_CI):
            _skipped.append((report.nodeid, reason))


def pytest_collectreport(report) -> None:  # a module skipped as a whole
    _record(report)


def pytest_runtest_logreport(report) -> None:
    _record(report)


def pytest_terminal_summary(terminalreporter) -> None:
    if in_ci() and _skipped:
        terminalreporter.section("tests skipped under CI=true (CI must run them)", red=True)
        for nodeid, reason in _skipped:
            terminalreporter.line(f"{nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus) -> None:
    if in_ci() and _skipped and exitstatus in (pytest.ExitCode.OK,
                                               pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
