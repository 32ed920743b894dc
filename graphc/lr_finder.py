"""The learning-rate finder: a sweep of exponentially growing rates, one mini-batch each,
that suggests a rate and leaves the model as it was."""

from __future__ import annotations

import copy
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graphc import data as datamod
from graphc import optim as optimmod
from graphc.errors import InputError
from graphc.train_options import train_options


@dataclass
class LRFinderResult:
    """Rates tried (growing exponentially, one mini-batch each) and the losses they gave."""

    rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggestion: float | None  # a tenth of the rate at the smoothed loss's minimum

    def plot(self, path: str | Path | None = None):
        from graphc.plots import plot_lr_find

        return plot_lr_find(self, path)

    def to_dict(self) -> dict[str, Any]:
        return {"rates": self.rates, "losses": self.losses, "smoothed": self.smoothed,
                "suggestion": self.suggestion}


def lr_find(model: Any, data: Any, batch_size: int | None = None, optimizer: Any = None,
            start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100,
            smooth: float = 0.98, diverge: float = 4.0, seed: int = 0,
            target: str | None = None, verbose: bool = False) -> LRFinderResult:
    """Sweep the rate from start_lr to end_lr exponentially, one mini-batch per rate, and
    stop when the smoothed loss exceeds `diverge` times its best. The params and the
    optimizer are restored afterwards: the sweep only looks."""
    if not 0 < start_lr < end_lr or not math.isfinite(end_lr):
        raise InputError(f"the sweep needs 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
    if int(num_steps) < 2:
        raise InputError(f"num_steps must be at least 2, got {num_steps}")
    o = train_options(model.graph, batch_size=batch_size, optimizer=optimizer, seed=seed)
    train = datamod.prepare(model, data, "data", target=target)
    opt = optimmod.from_spec(copy.deepcopy(o["optimizer"]) if not isinstance(
        o["optimizer"], optimmod.Optimizer) else o["optimizer"].to_spec())
    saved = copy.deepcopy(model.params)
    rng = np.random.default_rng(o["seed"])
    batches: list[Any] = []
    rates, losses, smoothed = [], [], []
    avg, best = 0.0, math.inf
    bar = None
    if verbose:
        from tqdm.auto import tqdm
        bar = tqdm(total=int(num_steps), unit="rate", desc="lr-find", file=sys.stderr)
    try:
        for i in range(int(num_steps)):
            if not batches:
                batches = list(train.batches(o["batch_size"], True, False, rng))[::-1]
            lr = start_lr * (end_lr / start_lr) ** (i / (num_steps - 1))
            opt.lr = lr
            with np.errstate(all="ignore"):
                loss = model.train_step(opt, **train.batch(batches.pop()))
            if not math.isfinite(loss):
                break
            avg = smooth * avg + (1 - smooth) * loss
            s = avg / (1 - smooth ** (i + 1))
            rates.append(lr)
            losses.append(loss)
            smoothed.append(s)
            if bar is not None:
                bar.set_postfix(lr=f"{lr:.2e}", loss=f"{s:.4g}", refresh=False)
                bar.update(1)
            best = min(best, s)
            if s > diverge * best:
                break
    finally:
        model.params = saved
        if bar is not None:
            bar.close()
    suggestion = rates[int(np.argmin(smoothed))] / 10 if rates else None
    return LRFinderResult(rates, losses, smoothed, suggestion)
