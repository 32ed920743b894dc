"""Training: fit against its definitions (accumulation, clipping, shuffling, schedules,
early stopping), data checks, NaN diagnosis, the LR finder, `graphc train` end to end."""

from __future__ import annotations

import copy
import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import graphc
from graphc import optim, schedules
from graphc.cli import main
from graphc.data import Dataset, evaluate, find_head, prepare
from graphc.errors import InputError, SpecError
from graphc.train import History, TrainingError, fit, lr_find

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "examples" / "train"
DATA = TRAIN / "data"
PNG = b"\x89PNG"


def _digits_spec(units: int = 32) -> dict:
    spec = json.loads((TRAIN / "digits_mlp.json").read_text())
    spec["nodes"][0]["attrs"]["units"] = units
    return spec


@pytest.fixture(scope="module")
def digits():
    def load(part):
        with np.load(DATA / f"digits_{part}.npz") as f:
            return {"x": f["x"], "y": f["y"]}
    return {p: load(p) for p in ("train", "val", "test")}


def _model(spec=None, dtype="float64", **kw):
    return graphc.compile(spec or _digits_spec(), backend="numpy", dtype=dtype, **kw)


def _small(digits, n=64):
    return {k: v[:n] for k, v in digits["train"].items()}


# ---- fit against its definitions -------------------------------------------------------

def test_fit_learns_digits_and_reports_accuracy(digits):
    m = _model(dtype="float32")
    h = m.fit(digits["train"], epochs=8, validation=digits["val"])
    assert h["epoch"] == list(range(1, 9)) and h.metric == "accuracy"
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] > 0.9
    assert all(r["samples_per_s"] > 0 and r["time"] > 0 for r in h.rows)
    assert h["lr"][0] == pytest.approx(0.003)  # the spec's train object gave the optimizer
    loss, acc = evaluate(m, prepare(m, digits["test"]), find_head(m))
    assert acc > 0.9 and loss < h["loss"][0]


@pytest.mark.parametrize("opt", [{"name": "sgd", "lr": 0.5, "momentum": 0.9},
                                 {"name": "adam", "lr": 0.01}])
def test_accumulation_equals_one_step_on_the_whole_batch(digits, opt):
    data = _small(digits, 40)  # batches of 20, micro-batches of 7, 7, 6
    runs = []
    for k in (1, 3):
        m = _model()
        m.fit(data, epochs=2, batch_size=20, accumulate=k, shuffle=False, optimizer=opt)
        runs.append(m.params)
    for name in runs[0]:
        np.testing.assert_allclose(runs[1][name], runs[0][name], rtol=1e-9, atol=1e-12)


def test_accumulation_by_definition(digits):
    data = _small(digits, 10)
    m = _model()
    start = copy.deepcopy(m.params)
    m.fit(data, epochs=1, batch_size=10, accumulate=3, shuffle=False,
          optimizer={"name": "sgd", "lr": 0.1})
    ref = _model()
    total = None
    for part in (slice(0, 4), slice(4, 7), slice(7, 10)):  # np.array_split(10, 3)
        _, g = ref.grad(x=data["x"][part], y=data["y"][part])
        w = (part.stop - part.start) / 10
        total = {k: w * v for k, v in g.items()} if total is None else \
            {k: total[k] + w * v for k, v in g.items()}
    for k in start:
        np.testing.assert_allclose(m.params[k], start[k] - 0.1 * total[k], rtol=1e-12)


def test_clip_grad_norm_by_definition(digits):
    data = _small(digits, 16)
    m = _model()
    start = copy.deepcopy(m.params)
    _, g = m.grad(**data)
    norm = np.sqrt(sum(np.sum(v ** 2) for v in g.values()))
    m.fit(data, epochs=1, batch_size=16, shuffle=False, clip_grad_norm=0.01,
          optimizer={"name": "sgd", "lr": 1.0})
    for k in start:
        np.testing.assert_allclose(m.params[k], start[k] - g[k] * 0.01 / (norm + 1e-6),
                                   rtol=1e-9)
    m2 = _model()
    m2.fit(data, epochs=1, batch_size=16, clip_grad_value=1e-4, optimizer={"name": "sgd",
                                                                           "lr": 1.0})
    for k in start:
        np.testing.assert_allclose(m2.params[k], start[k] - np.clip(g[k], -1e-4, 1e-4),
                                   rtol=1e-9)


def test_shuffling_is_seeded_and_once_per_epoch():
    ds = Dataset({"x": np.arange(10.0)}, ("x",), 10, "t")
    rng = np.random.default_rng(0)
    epochs = [np.concatenate(list(ds.batches(4, True, False, rng))) for _ in range(3)]
    for e in epochs:
        assert sorted(e) == list(range(10))
    assert not np.array_equal(epochs[0], epochs[1])
    again = np.random.default_rng(0)
    assert np.array_equal(np.concatenate(list(ds.batches(4, True, False, again))), epochs[0])
    assert [len(b) for b in ds.batches(4, False, True, rng)] == [4, 4]
    assert ds.steps(4) == 3 and ds.steps(4, drop_last=True) == 2


def test_same_seed_same_params_other_seed_differs(digits):
    data = _small(digits, 96)
    runs = [_model() for _ in range(3)]
    for m, seed in zip(runs, (5, 5, 6)):
        m.fit(data, epochs=2, batch_size=16, seed=seed)
    assert all(np.array_equal(runs[0].params[k], runs[1].params[k]) for k in runs[0].params)
    assert not np.array_equal(runs[0].params["hidden.W"], runs[2].params["hidden.W"])


def test_schedules_in_fit(digits):
    data = _small(digits, 32)
    h = _model().fit(data, epochs=5, batch_size=32, optimizer={"name": "sgd", "lr": 0.1},
                     schedule={"name": "step", "step_size": 2, "gamma": 0.5})
    assert h["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    m = _model()
    opt = optim.SGD(lr=0.1, momentum=0.9)
    m.fit(data, epochs=3, batch_size=8, optimizer=opt,
          schedule={"name": "onecycle", "max_lr": 0.5})  # per batch: 3 x 4 steps
    ref = optim.SGD(lr=0.1, momentum=0.9)
    sched = schedules.OneCycleLR(ref, max_lr=0.5, total_steps=12)
    for _ in range(12):
        sched.step()
    assert opt.lr == ref.lr and opt.hyper["momentum"] == ref.hyper["momentum"]
    h = _model().fit(data, epochs=4, batch_size=32, validation=_small(digits, 20),
                     optimizer={"name": "sgd", "lr": 0.1},
                     schedule={"name": "plateau", "mode": "max", "factor": 0.5, "patience": 0})
    assert h["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.025])  # val loss falls: "worse" in max


def test_early_stopping_restores_the_best_params(digits):
    data = _small(digits, 32)
    m = _model()
    h = m.fit(data, epochs=10, batch_size=32, early_stopping={
        "patience": 1, "monitor": "loss", "min_delta": 1e9})
    assert len(h) == 3 and h.stopped_early and h.best_epoch == 1
    once = _model()
    once.fit(data, epochs=1, batch_size=32)
    for k in once.params:
        np.testing.assert_array_equal(m.params[k], once.params[k])


def test_history_saves_json_csv_and_plot(digits, tmp_path):
    h = _model().fit(_small(digits), epochs=2, validation=_small(digits, 20))
    h.save(tmp_path / "h.json")
    back = History.load(tmp_path / "h.json")
    assert back.rows == h.rows and back.metric == "accuracy"
    assert back.info["optimizer"]["name"] == "adamw"
    h.save(tmp_path / "h.csv")
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["epoch", "loss", "lr"] and len(lines) == 3
    h.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:4] == PNG
    with pytest.raises(InputError, match=".json or .csv"):
        h.save(tmp_path / "h.txt")


def test_checkpoint_is_written_when_the_monitored_value_improves(digits, tmp_path):
    m = _model()
    path = tmp_path / "best.npz"
    h = m.fit(_small(digits), epochs=3, validation=_small(digits, 20), checkpoint=path)
    assert path.exists() and h.best_epoch is not None
    other = _model()
    other.load(path)
    assert set(other.params) == set(m.params)
    # the file holds the best epoch's params: its validation loss is the one recorded
    val = _small(digits, 20)
    best = h.best_epoch
    assert other.grad(**val)[0] == pytest.approx(h["val_loss"][best - 1], rel=1e-9)
    if best == h["epoch"][-1]:
        for k, v in m.params.items():
            np.testing.assert_array_equal(other.params[k], v)
    # and training goes on from it exactly as from the params it was saved from
    again = _model()
    again.params.update({k: v.copy() for k, v in other.params.items()})
    h1 = other.fit(_small(digits), epochs=1, seed=5)
    h2 = again.fit(_small(digits), epochs=1, seed=5)
    assert h1["loss"] == h2["loss"]
    for k, v in other.params.items():
        np.testing.assert_array_equal(again.params[k], v)


# ---- NaN and divergence ----------------------------------------------------------------

LOG_SPEC = {
    "graphc": 1, "name": "logs",
    "inputs": {"x": {"shape": ["B", 2]}, "y": {"shape": ["B"]}},
    "params": {"w": {"shape": [2], "init": [1.0, 1.0]}},
    "nodes": [{"id": "z", "op": "matmul", "inputs": ["x", "w"]},
              {"id": "logz", "op": "log", "inputs": ["z"]},
              {"id": "loss", "op": "mse", "inputs": ["logz", "y"]}],
    "outputs": ["logz"], "loss": "loss"}


def test_nan_names_the_first_node_and_keeps_the_params_before_it():
    x = np.array([[1.0, 1.0], [2.0, 1.0], [1.0, 0.5], [-3.0, 1.0]])
    m = _model(LOG_SPEC)
    with pytest.raises(TrainingError) as e:
        m.fit({"x": x, "y": np.zeros(4)}, epochs=2, batch_size=2, shuffle=False,
              optimizer={"name": "sgd", "lr": 0.01})
    msg = str(e.value)
    assert "epoch 1, step 2" in msg and "node 'logz'" in msg and "op log" in msg
    assert "'z' in [-1.9" in msg  # the offending input's range is shown
    assert np.all(np.isfinite(m.params["w"]))


def test_divergence_from_a_huge_rate_is_reported(tmp_path):
    spec = copy.deepcopy(LOG_SPEC)
    spec["nodes"][1] = {"id": "logz", "op": "mul", "inputs": ["z", 3.0]}
    m = _model(spec, dtype="float32")
    good = tmp_path / "good.npz"
    m.save(good)
    x = np.ones((8, 2))
    with pytest.raises(TrainingError) as e:
        m.fit({"x": x, "y": np.zeros(8)}, epochs=50, batch_size=8, checkpoint=good,
              optimizer={"name": "sgd", "lr": 1e3})
    assert "inf" in str(e.value) or "NaN" in str(e.value)
    assert e.value.history is not None
    other = _model(spec, dtype="float32")
    other.load(good)  # checkpoints may have improved first, but what is on disk is finite
    assert all(np.all(np.isfinite(v)) for v in other.params.values())


# ---- data ------------------------------------------------------------------------------

def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays,words", [
    ({"x": np.zeros((5, 64))}, ["no array for input 'y'", "it has 'x'"]),
    ({"x": np.zeros((5, 64)), "Y": np.zeros(5, int)}, ["did you mean 'Y'"]),
    ({"x": np.zeros((5, 64)), "y": np.zeros(4, int)}, ["'y' has 4 rows, but 'x' has 5"]),
    ({"x": np.zeros((5, 63)), "y": np.zeros(5, int)},
     ["input 'x': expected shape [B, 64], got [5, 63]: axis 1 is 63, the model wants 64"]),
    ({"x": np.full((5, 64), "a"), "y": np.zeros(5, int)}, ["'x' holds <U1 values"]),
    ({"x": np.zeros((5, 64)), "y": np.array([0, 1, 10, 2, 3])},
     ["label 10 at index 2", "10 classes (labels 0..9)"]),
    ({"x": np.zeros((5, 64)), "y": np.array([0, 1, -1, 2, 3])}, ["label -1"]),
    ({"x": np.zeros((5, 64)), "y": np.array([0, 1.5, 1, 2, 3])}, ["integer labels"]),
    ({"x": np.pad(np.array([[np.nan]]), ((0, 4), (0, 63))), "y": np.zeros(5, int)},
     ["'x' holds nan at index [0, 0]", "clean the data"]),
    ({"x": np.zeros((0, 64)), "y": np.zeros(0, int)}, ["no rows"]),
])
def test_bad_data_files_get_one_clear_message(tmp_path, arrays, words):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(InputError) as e:
        fit(_model(), path, epochs=1)
    assert str(e.value).startswith(str(path))
    for w in words:
        assert w in str(e.value)


@pytest.mark.parametrize("options,words", [
    ({"batch_size": 0}, ["train.batch_size", "positive integer"]),
    ({"epochs": -1}, ["train.epochs"]),
    ({"accumulate": 64, "batch_size": 8}, ["cannot exceed batch_size"]),
    ({"clip_grad_norm": -1.0}, ["train.clip_grad_norm"]),
    ({"optimizer": {"name": "sgd", "lr": 0.0}}, ["learning rate must be a positive number"]),
    ({"optimizer": {"name": "sgd", "lr": float("nan")}}, ["train.optimizer.lr", "got nan"]),
    ({"schedule": {"name": "step"}}, ["train.schedule", "step_size"]),
    ({"early_stopping": {"patience": 2, "monitor": "val_loss"}}, ["no validation data"]),
])
def test_nonsense_options_get_one_clear_message(digits, options, words):
    with pytest.raises((SpecError, InputError)) as e:
        fit(_model(), _small(digits), **options)
    for w in words:
        assert w in str(e.value)


def test_unknown_train_key_in_the_spec():
    spec = _digits_spec()
    spec["train"]["batchsize"] = 3
    with pytest.raises(SpecError, match="train.batchsize.*did you mean 'batch_size'"):
        fit(_model(spec), {"x": np.zeros((2, 64)), "y": np.zeros(2, int)})


def test_other_data_sources(tmp_path):
    m = _model()
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    for source, words in [(tmp_path / "none.npz", "no such file"), (bad, "not a readable"),
                          (tmp_path, "no such file"), ([1, 2], "expected a dict"),
                          ({"z": np.zeros(3)}, "'z' is not an input")]:
        with pytest.raises(InputError, match=words):
            prepare(m, source)
    txt = tmp_path / "d.txt"
    txt.write_text("1")
    with pytest.raises(InputError, match=".npz .* or .csv"):
        prepare(m, txt)


CSV_SPEC = {
    "graphc": 1, "name": "tabular",
    "inputs": {"x": {"shape": ["B", 3]}, "y": {"shape": ["B", 1]}},
    "nodes": [{"id": "pred", "op": "dense", "inputs": ["x"], "attrs": {"units": 1}},
              {"id": "loss", "op": "mse", "inputs": ["pred", "y"]}],
    "outputs": ["pred"], "loss": "loss",
    "train": {"optimizer": {"name": "sgd", "lr": 0.1}, "batch_size": 8, "epochs": 60}}


def _csv(tmp_path, header, rows, name="t.csv"):
    path = tmp_path / name
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]))
    return path


def test_csv_with_a_named_target_column(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    price = x @ np.array([1.0, -2.0, 0.5]) + 3.0
    path = _csv(tmp_path, ["a", "b", "c", "price"], np.column_stack([x, price]).round(6))
    m = _model(CSV_SPEC)
    h = m.fit(path, target="price", validation=path)
    assert h.metric == "rmse" and h["val_rmse"][-1] < 0.05
    np.testing.assert_allclose(m.params["pred.W"][:, 0], [1.0, -2.0, 0.5], atol=0.05)
    same = _csv(tmp_path, ["y", "a", "b", "c"], np.column_stack([price, x]), "y.csv")
    assert prepare(m, same).arrays["y"].shape == (64, 1)  # a column named after the input
    for header, rows, target, words in [
        (["a", "b", "c", "price"], [[1, 2, "x", 4]], "price", "line 2, column 'c': 'x'"),
        (["a", "b", "c", "price"], [[1, 2, 3, 4]], "prise", "did you mean 'price'"),
        (["a", "b", "c", "price"], [[1, 2, 3, 4]], None, "name the target column"),
        (["a", "b", "price"], [[1, 2, 3]], "price", "expected shape [B, 3]"),
        (["a", "b", "c", "price"], [[1, 2, 3]], "price", "line 2 has 3 cells"),
    ]:
        with pytest.raises(InputError, match=words.replace("[", r"\[")):
            prepare(m, _csv(tmp_path, header, rows, "bad.csv"), target=target)


def test_validation_fraction_holds_out_rows(digits):
    h = _model().fit(_small(digits, 50), epochs=1, validation=0.2)
    assert h.info["samples"] == 40 and h["val_accuracy"][0] is not None


# ---- the lectures' L1 versus L2, the LR finder -----------------------------------------

def test_l1_selects_l2_spreads():
    example = runpy.run_path(str(TRAIN / "l1_vs_l2.py"))
    np.testing.assert_allclose(example["train"]("l2"), [2.14, 1.43, 0.71], atol=0.01)
    np.testing.assert_allclose(example["train"]("l1"), [3.33, 0.0, 0.0], atol=0.01)


def test_lr_finder_sweeps_restores_and_suggests(digits, tmp_path):
    m = _model()
    before = copy.deepcopy(m.params)
    r = lr_find(m, digits["train"], num_steps=60, start_lr=1e-5, end_lr=1e5,
                optimizer={"name": "sgd", "lr": 0.1})
    assert 20 < len(r.rates) < 60  # it stopped when the loss blew up
    ratios = np.diff(np.log(r.rates))
    np.testing.assert_allclose(ratios, np.log(1e10) / 59, rtol=1e-9)
    assert 1e-5 < r.suggestion < 10 and min(r.smoothed) < r.smoothed[0]
    for k in before:
        np.testing.assert_array_equal(m.params[k], before[k])
    r.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:4] == PNG
    with pytest.raises(InputError, match="start_lr < end_lr"):
        lr_find(m, digits["train"], start_lr=1.0, end_lr=0.1)


# ---- the command line ------------------------------------------------------------------

def _digits_cli_spec(tmp_path):
    path = tmp_path / "digits.json"
    spec = _digits_spec(32)
    spec["train"]["epochs"] = 3
    path.write_text(json.dumps(spec))
    return str(path)


def test_graphc_train_end_to_end(tmp_path):
    spec = _digits_cli_spec(tmp_path)
    out, hist, plot = tmp_path / "p.npz", tmp_path / "h.csv", tmp_path / "c.png"
    r = CliRunner().invoke(main, [
        "train", spec, "--data", str(DATA / "digits_train.npz"), "--val",
        str(DATA / "digits_val.npz"), "--test", str(DATA / "digits_test.npz"),
        "--backend", "numpy", "--lr", "0.01", "--batch-size", "64", "-o", str(out),
        "--history", str(hist), "--plot", str(plot), "-q"])
    assert r.exit_code == 0, r.output
    assert "trained 3 epochs" in r.output and "val_accuracy" in r.output
    assert "test (" in r.output and "accuracy" in r.output
    m = _model(json.loads(Path(spec).read_text()))
    m.load(out)
    acc = evaluate(m, prepare(m, DATA / "digits_test.npz"), find_head(m))[1]
    assert acc > 0.85
    assert hist.read_text().startswith("epoch,loss,lr") and plot.read_bytes()[:4] == PNG


@pytest.mark.parametrize("args,words", [
    (["--data", "missing.npz"], "missing.npz: no such file"),
    (["--data", str(DATA / "digits_train.npz"), "-o", "p.txt"], "p.txt: a params file ends"),
    (["--data", str(DATA / "digits_train.npz"), "--history", "h.yaml"], "h.yaml"),
    (["--data", str(DATA / "digits_train.npz"), "--lr", "-1"],
     "train.optimizer.lr: the learning rate must be a positive number, got -1.0"),
    (["--data", str(DATA / "digits_train.npz"), "--optimizer", "adma"], "did you mean 'adam'"),
    (["--data", str(DATA / "digits_train.npz"), "--batch-size", "0"], "train.batch_size"),
    ([], "pass --data FILE"),
])
def test_graphc_train_errors(tmp_path, args, words):
    r = CliRunner().invoke(main, ["train", _digits_cli_spec(tmp_path), "--backend", "numpy",
                                  "-q", *args])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert words in r.output and r.output.count("error:") == 1


def test_graphc_train_never_overwrites_a_good_model_with_a_broken_one(tmp_path):
    spec = tmp_path / "logs.json"
    spec.write_text(json.dumps(LOG_SPEC))
    data = _npz(tmp_path, x=np.array([[1.0, 1.0], [-3.0, 1.0]]), y=np.zeros(2))
    out = tmp_path / "params.npz"
    out.write_bytes(b"a good model")
    r = CliRunner().invoke(main, ["train", str(spec), "--data", str(data), "-o", str(out),
                                  "--backend", "numpy", "-q", "--history",
                                  str(tmp_path / "h.json")])
    assert r.exit_code == 1 and "node 'logz'" in r.output and "Traceback" not in r.output
    assert out.read_bytes() == b"a good model"


def test_graphc_lr_find(tmp_path):
    spec = _digits_cli_spec(tmp_path)
    r = CliRunner().invoke(main, ["lr-find", spec, "--data", str(DATA / "digits_train.npz"),
                                  "--steps", "30", "--backend", "numpy", "-o",
                                  str(tmp_path / "lr.png"), "-q"])
    assert r.exit_code == 0, r.output
    assert "suggested learning rate" in r.output and (tmp_path / "lr.png").exists()
    r = CliRunner().invoke(main, ["lr-find", spec, "--data", str(DATA / "digits_train.npz"),
                                  "--steps", "10", "--backend", "numpy", "--json"])
    assert len(json.loads(r.output)["rates"]) == 10


def test_graphc_train_in_a_real_process(tmp_path):
    out = tmp_path / "p.npz"  # and p.history.json beside it
    r = subprocess.run([sys.executable, "-m", "graphc.cli", "train", _digits_cli_spec(tmp_path),
                        "--data", str(DATA / "digits_train.npz"), "--epochs", "1",
                        "--backend", "numpy", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "epochs" in r.stderr  # the progress bar goes to stderr
    assert out.exists() and "wrote" in r.stdout
    assert History.load(tmp_path / "p.history.json")["epoch"] == [1]


# ---- the compiled backend ----------------------------------------------------------------

def test_cpu_backend_trains_digits_like_the_reference(digits):
    spec = _digits_spec(32)
    runs = {}
    for backend in ("cpu", "numpy"):
        m = graphc.compile(spec, backend=backend, dtype="float64")
        h = m.fit(digits["train"], epochs=2, validation=digits["val"])
        runs[backend] = (m, h)
    (cpu, hc), (ref, hr) = runs["cpu"], runs["numpy"]
    for k in ref.params:  # 80 fused AdamW steps agree with NumPy's
        np.testing.assert_allclose(cpu.params[k], ref.params[k], rtol=1e-7, atol=1e-9)
    assert hc["val_accuracy"] == hr["val_accuracy"] and hc["val_accuracy"][-1] > 0.85
    m = graphc.compile(spec, backend="cpu", dtype="float64")  # grads + NumPy update
    m.fit(digits["train"], epochs=2, accumulate=2)
    for k in ref.params:
        np.testing.assert_allclose(m.params[k], ref.params[k], rtol=1e-6, atol=1e-8)


def test_readme_promise_about_98_percent_on_digits(digits):
    """README: `graphc train examples/train/digits_mlp.json` reaches ~98% on sklearn's
    digits; with the spec's own optimizer, schedule and 40 epochs (about 7 s on cpu)."""
    m = graphc.compile(TRAIN / "digits_mlp.json", backend="cpu")
    h = m.fit(digits["train"], validation=digits["val"])
    assert h["epoch"][-1] == 40
    assert h["val_accuracy"][-1] >= 0.97
    assert evaluate(m, prepare(m, digits["test"]), find_head(m))[1] >= 0.97
