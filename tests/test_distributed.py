"""Data-parallel training on Ray (graphc.distributed): the same result as one process, a
dying worker, params averaging, errors. One local Ray session is shared by the module."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest

import graphc
from graphc import distributed
from graphc.errors import InputError

ray = pytest.importorskip("ray")  # the `ray` extra: pip install 'graphc[ray]'

SPEC = {
    "graphc": 1, "name": "small_mlp",
    "inputs": {"x": {"shape": ["B", 6]}, "y": {"shape": ["B"], "dtype": "int64"}},
    "nodes": [
        {"id": "h", "op": "dense", "inputs": ["x"], "attrs": {"units": 8, "activation": "tanh"}},
        {"id": "logits", "op": "dense", "inputs": ["h"], "attrs": {"units": 3}},
        {"id": "loss", "op": "cross_entropy", "inputs": ["logits", "y"]}],
    "outputs": ["logits"], "loss": "loss"}


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    yield
    if started:
        ray.shutdown()


def _data(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6))
    return {"x": x, "y": (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0.5)}


def _pair(backend: str, **options):
    """(single-process model and history, data-parallel model and history)."""
    out = []
    for workers in (None, options.pop("workers", 2)):
        m = graphc.compile(SPEC, backend=backend, dtype="float64")
        h = m.fit(_data(120), workers=workers, **copy.deepcopy(options))
        out.append((m, h))
    return out


def _close(a: dict, b: dict, tol: float = 1e-11) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=tol, atol=tol, err_msg=k)


def test_numpy_backend_equals_one_process_with_every_option():
    """Validation, a per-batch schedule, clipping, accumulation and early stopping."""
    (m1, h1), (m2, h2) = _pair(
        "numpy", epochs=4, batch_size=25, optimizer={"name": "adam", "lr": 0.05},
        schedule={"name": "onecycle", "max_lr": 0.05}, clip_grad_norm=0.5, accumulate=3,
        validation=_data(40, seed=1), early_stopping={"patience": 1, "restore_best": True})
    _close(m1.params, m2.params)
    for col in ("loss", "val_loss", "val_accuracy", "lr"):
        np.testing.assert_allclose(h1[col], h2[col], rtol=1e-11, err_msg=col)
    assert h2.info["workers"] == 2 and h1.best_epoch == h2.best_epoch
    assert h1[col] and m2.params["h.W"].dtype == np.float64


def test_cpu_backend_equals_one_process_and_leaves_the_optimizer_as_one_process_does():
    out = []
    for workers in (None, 2):
        m = graphc.compile(SPEC, backend="cpu", dtype="float64")
        opt = graphc.optim.SGD(lr=0.1, momentum=0.9)
        h = m.fit(_data(120), epochs=2, batch_size=32, optimizer=opt, clip_grad_value=0.3,
                  workers=workers)
        out.append((m, h, opt))
    (m1, h1, o1), (m2, h2, o2) = out
    _close(m1.params, m2.params)
    np.testing.assert_allclose(h1["loss"], h2["loss"], rtol=1e-11)
    assert h2["loss"][1] < h2["loss"][0]
    assert o1.t == o2.t == 8
    _close({k: v["momentum_buffer"] for k, v in o1.state.items()},
           {k: v["momentum_buffer"] for k, v in o2.state.items()})


def test_sync_every_one_with_plain_sgd_is_gradient_averaging():
    """Averaging params after every local SGD step equals averaging gradients (equal
    shards); sync_every=3 is another algorithm, which still trains."""
    opts = dict(epochs=2, batch_size=30, optimizer={"name": "sgd", "lr": 0.2})
    (m1, _), (m2, _) = _pair("numpy", sync_every=1, **opts)
    _close(m1.params, m2.params)
    m3 = graphc.compile(SPEC, backend="numpy", dtype="float64")
    h3 = m3.fit(_data(120), workers=2, sync_every=3, **opts)
    assert h3["loss"][1] < h3["loss"][0]
    assert not np.allclose(m3.params["h.W"], m1.params["h.W"])


def test_a_dying_worker_leaves_the_last_completed_step(monkeypatch):
    # 120 rows, batch 30: 4 steps an epoch; worker 1's process exits in step 6
    opts = dict(batch_size=30, optimizer={"name": "adam", "lr": 0.05})
    m = graphc.compile(SPEC, backend="numpy", dtype="float64")
    monkeypatch.setattr(distributed, "FAIL_AT", (1, 6))
    with pytest.raises(distributed.WorkerError, match="a worker process died") as e:
        m.fit(_data(120), epochs=3, workers=2, **opts)
    assert e.value.step == 5 and "after optimizer step 5" in str(e.value)
    d, opt = _data(120), graphc.optim.Adam(lr=0.05)
    one = graphc.compile(SPEC, backend="numpy", dtype="float64")
    rng = np.random.default_rng(0)  # fit's shuffling, seed 0
    order = np.concatenate([rng.permutation(120), rng.permutation(120)])
    for i in range(5):
        one.train_step(opt, **{k: v[order[30 * i:30 * i + 30]] for k, v in d.items()})
    _close(m.params, one.params)


def test_errors():
    m = graphc.compile(SPEC, backend="numpy", dtype="float64")
    with pytest.raises(InputError, match="workers must be a positive integer"):
        m.fit(_data(20), workers=0)
    with pytest.raises(InputError, match="needs 9 CPUs, one per worker"):
        m.fit(_data(20), workers=9)
    with pytest.raises(InputError, match="sync_every must be a positive integer"):
        m.fit(_data(20), workers=2, sync_every=0)


def test_without_ray_the_message_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r"pip install 'graphc\[ray\]'"):
        distributed.connect(None, 2)


def test_cli_train_with_workers(tmp_path):
    from click.testing import CliRunner

    from graphc.cli import main

    spec = tmp_path / "mlp.json"
    spec.write_text(graphc.load(SPEC).to_json_text())
    np.savez(tmp_path / "d.npz", **_data(60))
    r = CliRunner().invoke(main, ["train", str(spec), "--data", str(tmp_path / "d.npz"),
                                  "--epochs", "2", "--workers", "2", "-q", "--backend", "numpy",
                                  "-o", str(tmp_path / "p.npz")])
    assert r.exit_code == 0, r.output
    assert "2 Ray workers" in r.output and (tmp_path / "p.npz").exists()
    r = CliRunner().invoke(main, ["train", str(spec), "--data", str(tmp_path / "d.npz"),
                                  "--workers", "0", "-q"])
    assert r.exit_code != 0 and "workers must be a positive integer" in r.output


def test_nan_is_diagnosed_as_in_one_process():
    from graphc.train import TrainingError

    spec = {"graphc": 1, "name": "logs",
            "inputs": {"x": {"shape": ["B", 2]}, "y": {"shape": ["B"]}},
            "params": {"w": {"shape": [2], "init": [1.0, 1.0]}},
            "nodes": [{"id": "z", "op": "matmul", "inputs": ["x", "w"]},
                      {"id": "logz", "op": "log", "inputs": ["z"]},
                      {"id": "loss", "op": "mse", "inputs": ["logz", "y"]}],
            "outputs": ["logz"], "loss": "loss"}
    d = {"x": np.array([[1.0, 1.0], [2.0, 1.0], [1.0, 0.5], [-3.0, 1.0]]), "y": np.zeros(4)}
    out = []
    for workers in (None, 2):
        m = graphc.compile(spec, backend="numpy", dtype="float64")
        with pytest.raises(TrainingError) as e:
            m.fit(d, epochs=2, batch_size=2, shuffle=False, workers=workers,
                  optimizer={"name": "sgd", "lr": 0.01})
        out.append((str(e.value), m.params))
    assert out[0][0] == out[1][0] and "epoch 1, step 2" in out[1][0]
    _close(out[0][1], out[1][1])
