"""graphc doctor: the BLAS core-type check and the report."""

import json
import subprocess
import sys

from click.testing import CliRunner

from graphc.cli import main
from graphc.doctor import Blas, best_core_type, blas_warning

AVX512 = {"avx", "avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512dq"}


def openblas(core):
    return [Blas("openblas", "0.3.31", 2, core, "/x/libopenblas.so")]


def test_core_type_the_cpu_deserves():
    assert best_core_type(AVX512) == "SkylakeX"
    assert best_core_type(AVX512 | {"avx512_bf16"}) == "Cooperlake"
    assert best_core_type({"avx", "avx2", "fma"}) == "Haswell"
    assert best_core_type({"sse2"}) is None


def test_warns_when_openblas_runs_below_the_cpu(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    line = blas_warning(openblas("Haswell"), AVX512)
    assert "Haswell kernels" in line and "SkylakeX" in line
    assert "OPENBLAS_CORETYPE=Haswell" in line and "env -u OPENBLAS_CORETYPE" in line


def test_no_warning_when_the_core_type_matches():
    assert blas_warning(openblas("SkylakeX"), AVX512) is None
    assert blas_warning(openblas("Haswell"), {"avx", "avx2", "fma"}) is None
    assert blas_warning(openblas("Zen"), {"avx", "avx2", "fma"}) is None
    assert blas_warning([Blas("mkl", "2024", 2, None, "")], AVX512) is None


def test_a_skylakex_openblas_on_a_bf16_cpu_loses_nothing():
    """OpenBLAS's Cooperlake kernels differ from SkylakeX's only in bf16 products."""
    assert blas_warning(openblas("SkylakeX"), AVX512 | {"avx512_bf16"}) is None
    assert blas_warning(openblas("Haswell"), AVX512 | {"avx512_bf16"}) is not None


def test_a_low_detected_core_type_gets_the_variable_as_its_fix(monkeypatch):
    monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    line = blas_warning(openblas("Sandybridge"), AVX512)
    assert "its own core detection" in line and "export OPENBLAS_CORETYPE=SkylakeX" in line


def test_doctor_reports_each_part():
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    for key in ("graphc", "numpy", "numba", "blas", "blas env", "renderer", "cuda", "cache"):
        assert key in report
    assert report["blas"] and "threads" in report["blas"][0]


def test_a_low_core_type_is_reported_by_the_real_command():
    """A BLAS forced to Prescott kernels on any x86 CPU with AVX is flagged, with the fix."""
    import pytest

    from graphc.doctor import cpu_flags

    if best_core_type(cpu_flags()) is None:
        pytest.skip("this CPU has no AVX: no core type to fall short of (rule tested above)")
    env = {"OPENBLAS_CORETYPE": "Prescott", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", "from graphc.cli import main; main()", "doctor"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "blas check" in out.stdout and "OPENBLAS_CORETYPE=Prescott" in out.stdout
