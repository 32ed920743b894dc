"""Claims of docs/generated-module.md that only a test of the claim itself can keep:
the kernels release the GIL (Numba's dispatcher flags), the module written by
`graphc compile` runs with numpy and numba alone and reuses Numba's cache in a new process,
and products run on numpy's OpenBLAS, the one BLAS (and thread pool) in the process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

import graphc
from tests.test_cpu_backend import TINY, tiny_batch

ROOT = Path(__file__).resolve().parent.parent


def test_every_kernel_releases_the_gil():
    """Threads run kernels at once only if Numba compiled them with nogil=True."""
    m = graphc.compile(TINY, backend="cpu", dtype="float64")
    m.forward(**tiny_batch())
    m.grad(**tiny_batch())
    m.train_step(graphc.optim.SGD(lr=0.1), **tiny_batch())
    dispatchers = [fn.kernel.module.run_kernel for fn in m._compiled.values()]
    dispatchers += [t.module.train_step_kernel for t in m.backend._trainers.values()]
    assert len(dispatchers) == 3
    for d in dispatchers:
        assert d.targetoptions.get("nogil") is True, d.targetoptions
        assert d.targetoptions.get("nopython") is True


# A process where scipy and graphc cannot be imported: only numpy, numba and the stdlib.
SCRIPT = r"""
import json, os, sys

class Forbid:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("scipy", "graphc"):
            raise ImportError(f"{name} is forbidden: the module must need numpy and numba only")

sys.meta_path.insert(0, Forbid())
sys.path.insert(0, os.getcwd())
import numpy as np
import {module} as model

params = model.init_params()
x = np.array([[0.5, 1.0], [-1.0, 0.5], [0.0, -1.5], [1.5, -0.5]])
y = np.array([0, 1, 2, 0])
out = model.forward(params, x=x)
state = model.init_state(params)
losses = [float(model.train_step(params, state, x=x, y=y)) for _ in range(3)]
kernels = [model.forward_kernel, model.train_step_kernel]
print(json.dumps({
    "losses": losses,
    "hits": sum(sum(k.stats.cache_hits.values()) for k in kernels),
    "misses": sum(sum(k.stats.cache_misses.values()) for k in kernels),
    "forbidden_loaded": sorted(m for m in sys.modules
                               if m.split(".")[0] in ("scipy", "graphc") and sys.modules[m]),
}))
"""


def test_standalone_module_needs_numpy_and_numba_only_and_reuses_the_cache(tmp_path):
    from graphc.cli import main

    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["compile", str(ROOT / "examples" / "mlp_softmax.json"),
                                       "-o", str(out), "--dtype", "float64"])
    assert result.exit_code == 0, result.output
    (module,) = out.glob("*.py")

    def run() -> dict:
        proc = subprocess.run([sys.executable, "-I", "-c", SCRIPT.replace("{module}", module.stem)],
                              cwd=out, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["forbidden_loaded"] == [] and second["forbidden_loaded"] == []
    assert first["misses"] >= 2 and first["hits"] == 0  # compiled, and written to the cache
    assert second["hits"] >= 2 and second["misses"] == 0  # the new process loads it
    assert second["losses"] == first["losses"]
    # and the numbers are graphc's: the same steps on the reference backend
    ref = graphc.compile(ROOT / "examples" / "mlp_softmax.json", backend="numpy",
                         dtype="float64")
    ref.load(out / f"{module.stem}_params.npz")
    opt = graphc.optim.Adam(lr=0.01)  # the spec's train.optimizer
    feeds = {"x": np.array([[0.5, 1.0], [-1.0, 0.5], [0.0, -1.5], [1.5, -0.5]]),
             "y": np.array([0, 1, 2, 0])}
    want = [ref.train_step(opt, **feeds) for _ in range(3)]
    np.testing.assert_allclose(first["losses"], want, rtol=1e-10)


# graphc's own process with scipy forbidden: Numba's np.dot (SciPy's BLAS) cannot run, so
# products that match numpy went through numpy's OpenBLAS, the one BLAS loaded.
BLAS_SCRIPT = r"""
import json, sys

class Forbid:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "scipy":
            raise ImportError("scipy is forbidden: products must use numpy's OpenBLAS")

sys.meta_path.insert(0, Forbid())
import numpy as np
import threadpoolctl
import graphc

rng = np.random.default_rng(0)
feeds = {"x": rng.normal(size=(64, 784)), "y": rng.integers(0, 10, 64)}
cpu = graphc.compile("examples/mnist_mlp.json", backend="cpu", dtype="float64")
ref = graphc.compile("examples/mnist_mlp.json", backend="numpy", dtype="float64")
ref.params = {k: v.copy() for k, v in cpu.params.items()}
(g_cpu, d_cpu), (g_ref, d_ref) = cpu.grad(**feeds), ref.grad(**feeds)
one = {k: feeds[k][:1] for k in feeds}  # a single row: the matrix-vector product
print(json.dumps({
    "loss": [float(g_cpu), float(g_ref)],
    "grad_err": max(float(np.abs(d_cpu[k] - d_ref[k]).max()) for k in d_ref),
    "row_err": max(float(np.abs(cpu.forward(**one)[k] - ref.forward(**one)[k]).max())
                   for k in ref.forward(**one)),
    "blas": [(i["internal_api"], i["filepath"]) for i in threadpoolctl.threadpool_info()
             if i["user_api"] == "blas"],
}))
"""


def test_products_use_numpys_openblas_alone():
    proc = subprocess.run([sys.executable, "-c", BLAS_SCRIPT], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert abs(got["loss"][0] - got["loss"][1]) < 1e-10 * abs(got["loss"][1])
    assert got["grad_err"] < 1e-10 and got["row_err"] < 1e-10
    assert len(got["blas"]) == 1, got["blas"]  # one BLAS, so one thread pool
    api, path = got["blas"][0]
    assert api == "openblas" and "numpy" in Path(path).parent.name, path
