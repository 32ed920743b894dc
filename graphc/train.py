"""Training a Model: `fit` (mini-batches shuffled once per epoch, gradient accumulation,
clipping, schedules, validation, early stopping, a tqdm progress bar) and `History`.

Data arrive as arrays named after the spec's inputs (or .npz / .csv files, see
`graphc.data`); the spec's `train` object gives the defaults. When the loss turns NaN or
inf, the epoch is replayed to the bad step and the NumPy reference names the first node
that produced it; the params are left as they were before that step.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphc import data as datamod
from graphc import epochs
from graphc import optim as optimmod
from graphc import schedules as schedmod
from graphc.errors import GraphcError, InputError, SpecError, did_you_mean
from graphc.history import History, _progress
from graphc.train_options import DEFAULTS, TRAIN_KEYS, train_options  # noqa: F401 (re-exported)

__all__ = ["History", "LRFinderResult", "TrainingError", "check_train", "fit", "lr_find",
           "save_if_finite", "train_options"]

class TrainingError(GraphcError, RuntimeError):
    """Training cannot go on (the loss became NaN or inf); `history` holds the epochs done."""

    def __init__(self, message: str, history: History | None = None):
        super().__init__(message)
        self.history = history


def check_train(graph: Any) -> dict[str, Any]:
    """The spec's `train` object checked as `fit` will read it (optimizer, schedule, early
    stopping included), before any data: `graphc check` calls it, so that a bad object is
    reported with its file and key instead of failing later in `graphc train`."""
    try:
        o = train_options(graph)
        opt = optimmod.from_spec(o["optimizer"])
        schedmod.from_spec(o["schedule"], opt, epochs=o["epochs"], steps_per_epoch=1)
        _EarlyStopping.make(o["early_stopping"], True)
    except SpecError as e:
        raise e.with_source(graph.source) from None
    return o


def fit(model: Any, data: Any, epochs: int | None = None, batch_size: int | None = None,
        optimizer: Any = None, schedule: Any = None, validation: Any = None,
        clip_grad_norm: float | None = None, clip_grad_value: float | None = None,
        accumulate: int | None = None, shuffle: bool | None = None, seed: int | None = None,
        verbose: bool = False, early_stopping: Any = None, checkpoint: str | Path | None = None,
        drop_last: bool | None = None, target: str | None = None, workers: int | None = None,
        address: str | None = None, sync_every: int | None = None) -> History:
    """Train `model` in place and return its History.

    `data` and `validation` are dicts of arrays named after the spec's inputs, or .npz /
    .csv paths (`target` names a CSV's target column); `validation` may also be a fraction
    to hold out. `batch_size` is the batch of one optimizer step; `accumulate=k` computes
    it as k micro-batches whose gradients are averaged (weighted by size), which equals one
    step on the whole batch up to rounding. `optimizer` and `schedule` are objects or the
    spec's words ({"name": "adam", "lr": 1e-3}); schedule=False (or "none") switches off
    the spec's schedule. `early_stopping` is a patience or
    {"patience", "monitor", "min_delta", "restore_best"}; `checkpoint` is a params file
    written whenever the monitored value improves (never with non-finite params).
    `workers=N` trains data-parallel on N Ray actors (`address` of a running cluster, else
    a local one); `sync_every=k` averages params every k local steps instead of gradients
    every step (see docs/scale-out.md).
    """
    o = train_options(model.graph, epochs=epochs, batch_size=batch_size, optimizer=optimizer,
                      schedule=schedule, clip_grad_norm=clip_grad_norm,
                      clip_grad_value=clip_grad_value, accumulate=accumulate, shuffle=shuffle,
                      seed=seed, early_stopping=early_stopping, drop_last=drop_last)
    if model.program.loss is None:
        raise InputError(f"{model.graph.name}: the spec has no loss, so there is nothing to "
                         "train (add \"loss\": \"<name of a scalar node>\")")
    train = datamod.prepare(model, data, "data", target=target)
    rng = np.random.default_rng(o["seed"])
    if isinstance(validation, float):
        train, val = train.split(validation, rng)
    else:
        val = None if validation is None else datamod.prepare(model, validation, "validation",
                                                               target=target)
    steps_per_epoch = train.steps(o["batch_size"], o["drop_last"])
    if o["schedule"] is False or o["schedule"] == "none":
        o["schedule"] = None  # switch off the spec's schedule
    try:
        opt = optimmod.from_spec(o["optimizer"])
        if not opt.lr > 0 or not math.isfinite(opt.lr):
            raise SpecError(f"the learning rate must be a positive number, got {opt.lr}",
                            "train.optimizer.lr", "e.g. 0.001")
        sched = schedmod.from_spec(o["schedule"], opt, epochs=o["epochs"],
                                   steps_per_epoch=steps_per_epoch)
        stopper = _EarlyStopping.make(o["early_stopping"], val is not None)
    except SpecError as e:
        raise e.with_source(model.graph.source) from None
    head = datamod.find_head(model)
    loop = _Loop(model, opt, o, train)
    if workers is not None or sync_every is not None:
        from graphc.distributed import DataParallel

        loop.parallel = DataParallel(model, train, opt, 1 if workers is None else workers,
                                     address, sync_every)
    hist = History(metric=head.metric if head else None, info={
        "model": model.graph.name, "optimizer": opt.to_spec(), "batch_size": o["batch_size"],
        "accumulate": o["accumulate"], "samples": train.n, "backend": model.backend_name,
        "schedule": o["schedule"] if isinstance(o["schedule"], (dict, str)) else
        type(sched).__name__ if sched else None})
    if loop.parallel is not None:
        hist.info["workers"] = loop.parallel.size
    bar = _progress(o["epochs"], steps_per_epoch, verbose)
    try:
        for epoch in range(1, o["epochs"] + 1):
            row = loop.epoch(epoch, rng, sched, bar, hist)
            if loop.parallel is not None:
                loop.parallel.pull(opt)  # validation, checkpoints and stopping see them
            if not loop.params_finite():
                loop.diagnose(len(loop.batches_of_epoch) - 1, hist, epoch)
            if val is not None:
                row["val_loss"], metric = datamod.evaluate(model, val, head)
                if head is not None:
                    row[f"val_{head.metric}"] = metric
            hist.rows.append(row)
            bar.epoch_done(row)
            if isinstance(sched, schedmod.ReduceLROnPlateau):
                sched.step(row.get("val_loss", row["loss"]))
            elif sched is not None and sched.interval == "epoch":
                sched.step()
            if stopper is not None:
                improved = stopper.update(row, model)
                if improved:
                    hist.best_epoch = epoch
                    if checkpoint is not None:
                        save_if_finite(model, checkpoint)
                if stopper.should_stop():
                    hist.stopped_early = True
                    break
            elif checkpoint is not None:
                save_if_finite(model, checkpoint)
        if stopper is not None and stopper.restore_best and stopper.best_params is not None:
            model.params = stopper.best_params
    finally:
        bar.close()
        if loop.parallel is not None:
            loop.parallel.close()
    return hist


def save_if_finite(model: Any, path: str | Path) -> bool:
    """Save the params unless one holds NaN or inf: a broken model never replaces a file."""
    if all(np.all(np.isfinite(p)) for p in model.params.values()):
        model.save(path)
        return True
    return False


class _Loop:
    """The steps of one epoch, replayable: a snapshot at the epoch's start and the
    hyper-parameters of every step make a bad step reproducible for diagnosis."""

    parallel: Any = None  # a graphc.distributed.DataParallel with workers=N
    replaying = False  # a diagnosis replays on the driver

    def __init__(self, model: Any, opt: Any, o: dict, train: datamod.Dataset):
        self.model, self.opt, self.o, self.train = model, opt, o, train
        self.batches_of_epoch: list[np.ndarray | None] = []
        self.hypers: list[dict[str, float]] = []

    def step(self, idx: np.ndarray | None) -> float:
        if self.parallel is not None and not self.replaying:
            return self.parallel.step(idx, self.opt, self.o, idx is self.batches_of_epoch[-1])
        batch = self.train.batch(idx)
        o, model = self.o, self.model
        n = self.train.rows(idx)
        k = o["accumulate"] if o["accumulate"] < n else n
        if k <= 1:
            return model.train_step(self.opt, clip_grad_norm=o["clip_grad_norm"],
                                    clip_grad_value=o["clip_grad_value"], **batch)
        total, acc = 0.0, None
        for part in np.array_split(np.arange(n), k):
            loss, grads = model.grad(**self.train.sub(batch, part))
            w = len(part) / n
            total += w * loss
            acc = ({g: w * v for g, v in grads.items()} if acc is None
                   else {g: acc[g] + w * v for g, v in grads.items()})
        optimmod.clip_gradients(acc, o["clip_grad_norm"], o["clip_grad_value"])
        self.opt.step(model.params, acc)
        return total

    def epoch(self, epoch: int, rng: np.random.Generator, sched: Any, bar: Any,
              hist: History) -> dict[str, Any]:
        self.snapshot = (copy.deepcopy(self.model.params), copy.deepcopy(self.opt.state),
                         self.opt.t)
        self.batches_of_epoch = list(self.train.batches(self.o["batch_size"], self.o["shuffle"],
                                                        self.o["drop_last"], rng))
        self.hypers = []
        lr0, t0 = self.opt.lr, time.perf_counter()
        per_batch = sched is not None and getattr(sched, "interval", "epoch") == "batch" \
            and not isinstance(sched, schedmod.ReduceLROnPlateau)
        if self.compiled():
            with np.errstate(all="ignore"):
                total, seen = self._compiled_epoch(sched if per_batch else None, bar, hist,
                                                   epoch, t0)
        else:
            total, seen = self._stepwise(sched if per_batch else None, bar, hist, epoch, t0)
        elapsed = time.perf_counter() - t0
        return {"epoch": epoch, "loss": total / max(seen, 1), "lr": lr0,
                "time": round(elapsed, 6), "samples_per_s": round(seen / max(elapsed, 1e-9), 1)}

    def compiled(self) -> bool:
        """Can this epoch run as compiled calls (graphc.epochs)? Not with workers, gradient
        accumulation, or a model whose step keeps state."""
        return (self.parallel is None and self.o["accumulate"] == 1 and self.train.n is not None
                and epochs.fusable(self.model))

    def _compiled_epoch(self, sched: Any, bar: Any, hist: History, epoch: int,
                        t0: float) -> tuple[float, int]:
        """The epoch's steps in compiled chunks (the whole epoch, or a progress bar's
        update interval); a per-batch schedule's rates are computed ahead for all."""
        for _ in self.batches_of_epoch:
            self.hypers.append(dict(self.opt.hyper))
            if sched is not None:
                sched.step()
        sizes = [len(idx) for idx in self.batches_of_epoch]
        done_rows = np.cumsum(sizes)

        def progress(start: int, stop: int, losses: np.ndarray) -> None:
            for j in range(start, stop):
                bar.batch_done(float(losses[j]), self.hypers[j]["lr"], int(done_rows[j]),
                               time.perf_counter() - t0)

        losses, done = epochs.run_epoch(
            self.model, self.opt, self.train.arrays, self.train.batched, self.batches_of_epoch,
            self.hypers, self.o["clip_grad_norm"], self.o["clip_grad_value"],
            chunk=getattr(bar, "every", None), on_chunk=progress)
        if done < len(sizes) or not math.isfinite(losses[done - 1]):
            self.diagnose(done - 1, hist, epoch)
        total = 0.0
        for loss, rows in zip(losses.tolist(), sizes):
            total += loss * rows  # as the step-by-step loop adds them
        return total, int(done_rows[-1])

    def _stepwise(self, sched: Any, bar: Any, hist: History, epoch: int,
                  t0: float) -> tuple[float, int]:
        total, seen = 0.0, 0
        per_batch = sched is not None
        with np.errstate(all="ignore"):  # non-finite losses get a diagnosis instead
            for j, idx in enumerate(self.batches_of_epoch):
                self.hypers.append(dict(self.opt.hyper))
                loss = self.step(idx)
                if not math.isfinite(loss):
                    self.diagnose(j, hist, epoch)
                rows = self.train.rows(idx)
                total, seen = total + loss * rows, seen + rows
                if per_batch:
                    sched.step()
                bar.batch_done(loss, self.opt.lr, seen, time.perf_counter() - t0)
        return total, seen

    def params_finite(self) -> bool:
        return all(np.all(np.isfinite(p)) for p in self.model.params.values())

    def _replay(self, upto: int) -> None:
        """Params and optimizer state as they were before step `upto` of this epoch."""
        params, state, t = self.snapshot
        self.model.params = copy.deepcopy(params)
        self.opt.state, self.opt.t = copy.deepcopy(state), t
        self.replaying = True
        for i in range(upto):
            self.opt.hyper.update(self.hypers[i])
            self.step(self.batches_of_epoch[i])
        self.replaying = False
        if upto < len(self.hypers):
            self.opt.hyper.update(self.hypers[upto])

    def diagnose(self, j: int, hist: History, epoch: int | None = None) -> None:
        """Find what made step j's loss (or the params after it) non-finite; raise."""
        epoch = epoch or len(hist.rows)
        where = f"epoch {epoch}, step {j + 1}"
        self._replay(j)
        batch = self.train.batch(self.batches_of_epoch[j])
        culprit = datamod.first_non_finite(self.model, batch)
        if culprit is None:
            msg = (f"{where}: the update made the params non-finite although every value "
                   "and gradient of the step was finite (the rate is too large)")
        elif culprit.startswith("param ") and j > 0:
            self._replay(j - 1)
            earlier = datamod.first_non_finite(
                self.model, self.train.batch(self.batches_of_epoch[j - 1]))
            msg = (f"{where}: {culprit}; step {j} produced "
                   + (earlier if earlier else "it in its update, with finite gradients "
                      "(the rate is too large)"))
            self._replay(j - 1)
        else:
            msg = f"{where}: the loss became NaN or inf; the first non-finite value is {culprit}"
        raise TrainingError(msg + ". The params are left as they were before that step; "
                            "try a lower learning rate, clip_grad_norm, or check the data",
                            hist)


@dataclass
class _EarlyStopping:
    patience: int
    monitor: str
    min_delta: float = 0.0
    restore_best: bool = True
    best: float = math.inf
    bad: int = 0
    best_params: dict | None = None

    @classmethod
    def make(cls, spec: Any, has_val: bool) -> _EarlyStopping | None:
        default = "val_loss" if has_val else "loss"
        if spec is None or spec is False:
            return None if not has_val else cls(patience=10 ** 9, monitor=default,
                                                restore_best=False)
        if isinstance(spec, bool) or isinstance(spec, int):
            spec = {"patience": 5 if spec is True else spec}
        if not isinstance(spec, Mapping):
            raise SpecError(f"expected a patience or an object, got {spec!r}",
                            "train.early_stopping")
        keys = ("patience", "monitor", "min_delta", "restore_best")
        for k in spec:
            if k not in keys:
                raise SpecError(f"unknown option {k!r}", f"train.early_stopping.{k}",
                                did_you_mean(k, keys) or f"options: {', '.join(keys)}")
        kinds = {"patience": (int, "a non-negative integer"), "monitor": (str, "a string"),
                 "min_delta": ((int, float), "a number"), "restore_best": (bool, "true or false")}
        for k, v in spec.items():
            kind, what = kinds[k]
            if (not isinstance(v, kind) or (isinstance(v, bool) and k != "restore_best")
                    or (k == "patience" and v < 0)):
                raise SpecError(f"expected {what}, got {v!r}", f"train.early_stopping.{k}")
        out = cls(patience=int(spec.get("patience", 5)), monitor=spec.get("monitor", default),
                  min_delta=float(spec.get("min_delta", 0.0)),
                  restore_best=bool(spec.get("restore_best", True)))
        if out.monitor.startswith("val_") and not has_val:
            raise SpecError(f"monitors {out.monitor!r}, but there is no validation data",
                            "train.early_stopping.monitor")
        return out

    def _value(self, row: dict) -> float:
        if self.monitor not in row:
            raise SpecError(f"cannot monitor {self.monitor!r}; the history has "
                            f"{', '.join(row)}", "train.early_stopping.monitor")
        v = row[self.monitor]
        return -v if self.monitor.endswith("accuracy") else v

    def update(self, row: dict, model: Any) -> bool:
        v = self._value(row)
        if v < self.best - self.min_delta:
            self.best, self.bad = v, 0
            if self.restore_best:
                self.best_params = copy.deepcopy(model.params)
            return True
        self.bad += 1
        return False

    def should_stop(self) -> bool:
        return self.bad > self.patience


from graphc.lr_finder import LRFinderResult, lr_find  # noqa: E402  (it imports train_options)
