"""The CUDA backend's building blocks without a GPU: the simulator layer (in a pytest
process of its own), PTX for sm_90 of every kernel template with no float64 in float32
kernels, and the error when neither a GPU nor the simulator is there."""

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from tests.cuda_kernels import catalogue, source

ROOT = Path(__file__).resolve().parent.parent
SIM = os.environ.get("NUMBA_ENABLE_CUDASIM", "") not in ("", "0")


@pytest.mark.skipif(SIM, reason="this process is the simulator: pytest collects them directly")
def test_simulator_layer(request):
    """tests/cuda_sim/ on Numba's CUDA simulator, in a process that sets the variable
    before numba is imported (started at collection by tests/simulator.py)."""
    from tests.simulator import KEY, Run

    run = request.config.stash.get(KEY, None) or Run()
    rc, out = run.result()
    assert rc == 0, out[-6000:]
    assert re.search(r"\d+ passed", out) and "skipped" not in out, out[-500:]


def _ptx_ready():
    if SIM:
        return "compile_ptx does not work inside a simulator process"
    try:
        from numba import cuda

        def probe(x):
            x[0] = 1.0

        cuda.compile_ptx(probe, "void(float32[::1])", cc=(9, 0))
    except Exception as e:  # no NVVM: numba-cuda[cu13] and cuda-toolkit are missing
        return f"no NVVM for compile_ptx ({type(e).__name__}: pip install " \
               "'numba-cuda[cu13]==0.30.4' 'cuda-toolkit==13.0.*')"
    return None


F64 = re.compile(r"\.f64\b|%fd\d")  # a float64 instruction or register


@pytest.fixture(scope="module")
def templates():
    why = _ptx_ready()
    if why:
        pytest.skip(why)
    from graphc.backends import cache

    return cache.load(source(block=128, tile=16), "cuda_templates_ptx", tempfile.mkdtemp())


@pytest.mark.parametrize("name,sig", [(n, s) for n, _, s in catalogue()])
def test_ptx_sm90_without_float64(templates, name, sig):
    from numba import cuda

    ptx, _ = cuda.compile_ptx(getattr(templates, name).py_func, sig, cc=(9, 0))
    assert ".target sm_90" in ptx
    bad = [line.strip() for line in ptx.splitlines() if F64.search(line)]
    assert not bad, f"{name}: float64 in a float32 kernel: {bad[:5]}"


def test_f64_detector_sees_a_python_float_literal(templates):
    """The check above can fail: a bare 0.5 makes float64 arithmetic."""
    from numba import cuda

    def leaky(x):
        x[0] = x[0] * 0.5 + 1e-300

    ptx, _ = cuda.compile_ptx(leaky, "void(float32[::1])", cc=(9, 0))
    assert any(F64.search(line) for line in ptx.splitlines())


def test_no_gpu_no_simulator_is_one_compile_error():
    code = ("from graphc.backends.cuda.available import require\n"
            "from graphc.errors import CompileError\n"
            "try:\n    print(require())\n"
            "except CompileError as e:\n    print('CompileError:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120).stdout
    if out.strip() == "gpu":
        pytest.skip("this machine has a GPU")
    assert out.startswith("CompileError:") and "NUMBA_ENABLE_CUDASIM=1" in out, out
    assert "GPU" in out or "graphc[cuda]" in out, out


def test_simulator_set_after_numba_import_is_explained():
    code = ("import numba, os\nos.environ['NUMBA_ENABLE_CUDASIM'] = '1'\n"
            "from graphc.backends.cuda.available import require\n"
            "from graphc.errors import CompileError\n"
            "try:\n    print(require())\n"
            "except CompileError as e:\n    print('CompileError:', e)\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    out = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120).stdout
    assert out.startswith("CompileError:") and "after numba was imported" in out, out


# ---- layer (b) for the generated modules: every kernel of a few examples, for sm_90 ------

PTX_EXAMPLES = ["mnist_mlp", "lenet5", "residual_block", "dropout_modes"]


def _generated(name: str, dtype: str) -> tuple:
    import graphc
    from graphc.backends import cache
    from graphc.backends.numba_cuda import module_source
    from graphc.standalone import standalone_cuda as standalone

    graph = graphc.load(ROOT / "examples" / f"{name}.json")
    built = standalone(graph, dtype)
    sigs: dict = {}
    source = module_source(graph.name, np.dtype(dtype), built["module_entries"], "gpu",
                           signatures=sigs)
    return cache.load(source, f"ptx_{name}", tempfile.mkdtemp()), sigs


@pytest.fixture(scope="module")
def generated():
    why = _ptx_ready()
    if why:
        pytest.skip(why)
    return {(n, d): _generated(n, d) for n in PTX_EXAMPLES for d in ("float32", "float64")}


@pytest.mark.parametrize("name", PTX_EXAMPLES)
def test_generated_kernels_compile_for_sm90(generated, name):
    from numba import cuda

    module, sigs = generated[name, "float32"]
    kernels = [k for k in sigs if not k.startswith(("gemm_", "conv2d", "max_pool", "avg_pool",
                                                    "softmax", "log_softmax", "grad_sq"))]
    assert len(kernels) >= 2, kernels
    for k in sigs:  # the shared kernels too: they are in every module
        ptx, _ = cuda.compile_ptx(getattr(module, k).py_func, sigs[k], cc=(9, 0))
        assert ".target sm_90" in ptx, k
        bad = [line.strip() for line in ptx.splitlines() if F64.search(line)]
        assert not bad, f"{name}: {k}: float64 in a float32 kernel: {bad[:3]}"


def test_float64_modules_compile_and_use_float64(generated):
    from numba import cuda

    module, sigs = generated["mnist_mlp", "float64"]
    name = next(k for k in sigs if k.startswith("train_step_k") and "[:, ::1]" in sigs[k])
    ptx, _ = cuda.compile_ptx(getattr(module, name).py_func, sigs[name], cc=(9, 0))
    assert any(F64.search(line) for line in ptx.splitlines())


# ---- graphc compile --backend cuda ---------------------------------------------------------

def test_compile_writes_the_cuda_module_and_dumps_its_schedule(tmp_path):
    import ast

    from click.testing import CliRunner

    from graphc.cli import main

    spec = ROOT / "examples" / "mnist_mlp.json"
    r = CliRunner().invoke(main, ["compile", str(spec), "-o", str(tmp_path), "--backend",
                                  "cuda", "--dump-after", "schedule"])
    assert r.exit_code == 0, r.output
    assert "# schedule for cuda: train_step" in r.output
    assert "a shared-memory tree over the reduced" in r.output
    source = (tmp_path / "mnist_mlp.py").read_text()
    ast.parse(source)
    for entry in ("forward", "loss_and_grad", "train_step"):
        assert f"def {entry}_launch(" in source and f"def {entry}_buffers(" in source
    assert "@cuda.jit(cache=True)" in source and "def train_step_update(" in source
    assert (tmp_path / "mnist_mlp_params.npz").exists()


def test_spec_names_reach_the_cuda_module_only_escaped(tmp_path):
    import ast
    import json

    import graphc
    from graphc.standalone import standalone_cuda as standalone

    evil = 'h"""); import os; os.system("echo pwned") # \\'
    spec = json.loads((ROOT / "examples" / "mnist_mlp.json").read_text())
    spec["name"] = evil
    spec["nodes"][0]["id"] = evil
    spec["nodes"][1]["inputs"] = [evil]
    source = standalone(graphc.load(spec))["source"]
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "system"]
    assert not calls
    assert "pwned" in source  # it is there, as a comment or a string


@pytest.mark.parametrize("name", ["dropout_modes", "batch_norm_modes"])
def test_training_mode_kernels_compile_without_float64(name):
    """Random draws (dropout) and running statistics (batch norm) appear only in the
    training program: its kernels too compile for sm_90, float32 throughout."""
    why = _ptx_ready()
    if why:
        pytest.skip(why)
    from numba import cuda

    import graphc
    from graphc.backends import cache
    from graphc.backends.numba_cuda import module_source

    m = graphc.compile(ROOT / "examples" / f"{name}.json", backend="numpy")
    fwd = m.mode_program(True)
    results = [*fwd.outputs.values(), *fwd.updates.values()]
    sigs: dict = {}
    source = module_source(name, np.dtype("float32"), [("run", fwd, results, None)], "gpu",
                           signatures=sigs)
    module = cache.load(source, f"ptx_train_{name}", tempfile.mkdtemp())
    mine = [k for k in sigs if k.startswith("run_")]
    assert mine and (name != "dropout_modes" or "rng_mix(" in source)
    for k in mine:
        ptx, _ = cuda.compile_ptx(getattr(module, k).py_func, sigs[k], cc=(9, 0))
        bad = [line.strip() for line in ptx.splitlines() if F64.search(line)]
        assert not bad, f"{name}: {k}: {bad[:3]}"
