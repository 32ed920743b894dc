"""A training run's record: `History` (one row per epoch; JSON, CSV, a plot) and the tqdm
progress bars `fit` shows while it trains."""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graphc.errors import InputError


@dataclass
class History:
    """One row per epoch: epoch, loss (mean training loss), val_loss, val_<metric>, lr,
    time (s of training), samples_per_s. `history["loss"]` is a column."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    metric: str | None = None  # "accuracy" or "rmse"
    info: dict[str, Any] = field(default_factory=dict)
    best_epoch: int | None = None
    stopped_early: bool = False

    def __getitem__(self, key: str) -> list[Any]:
        return [r.get(key) for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def columns(self) -> list[str]:
        cols: list[str] = []
        for r in self.rows:
            cols += [k for k in r if k not in cols]
        return cols

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.rows, "metric": self.metric, "best_epoch": self.best_epoch,
                "stopped_early": self.stopped_early, "info": self.info}

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns(), lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows)
        return buf.getvalue()

    def save(self, path: str | Path) -> None:
        """JSON (.json) or CSV (.csv), by extension."""
        path = Path(path)
        if path.suffix.lower() == ".csv":
            text = self.to_csv()
        elif path.suffix.lower() == ".json":
            text = json.dumps(self.to_dict(), indent=1, default=_jsonable) + "\n"
        else:
            raise InputError(f"{path}: a history file ends in .json or .csv")
        path.write_text(text)

    @classmethod
    def load(cls, path: str | Path) -> History:
        d = json.loads(Path(path).read_text())
        return cls(rows=d["epochs"], metric=d.get("metric"), info=d.get("info", {}),
                   best_epoch=d.get("best_epoch"), stopped_early=d.get("stopped_early", False))

    def plot(self, path: str | Path | None = None):
        """Loss curves (and the metric) against epochs; writes a PNG when given a path."""
        from graphc.plots import plot_history

        return plot_history(self, path)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} to JSON")



class _NoBar:
    def batch_done(self, *a: Any) -> None: ...
    def epoch_done(self, row: dict) -> None: ...
    def close(self) -> None: ...


class _Bar(_NoBar):
    """Two tqdm bars: epochs, and batches with loss, rate and throughput."""

    def __init__(self, epochs: int, steps: int):
        from tqdm.auto import tqdm

        self.tqdm, self.steps = tqdm, steps
        self.outer = tqdm(total=epochs, unit="epoch", desc="epochs", file=sys.stderr,
                          dynamic_ncols=True)
        self.inner = None
        self.every = max(1, steps // 50)

    def batch_done(self, loss: float, lr: float, seen: int, elapsed: float) -> None:
        if self.inner is None:
            self.inner = self.tqdm(total=self.steps, unit="batch", leave=False, file=sys.stderr,
                                   dynamic_ncols=True, desc="batches")
            self.n = 0
        self.n += 1
        if self.n % self.every == 0 or self.n == self.steps:
            self.inner.set_postfix(loss=f"{loss:.4g}", lr=f"{lr:.3g}",
                                   samples_s=f"{seen / max(elapsed, 1e-9):,.0f}", refresh=False)
            self.inner.update(self.n - self.inner.n)

    def epoch_done(self, row: dict) -> None:
        if self.inner is not None:
            self.inner.close()
            self.inner = None
        shown = {k: _fmt(k, v) for k, v in row.items()
                 if k not in ("epoch", "time", "samples_per_s")}
        self.outer.set_postfix(shown, refresh=False)
        self.outer.update(1)
        self.tqdm.write("  ".join([f"epoch {row['epoch']}"] + [
            f"{k} {_fmt(k, v)}" for k, v in row.items() if k != "epoch"]), file=sys.stderr)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
        self.outer.close()


def _fmt(key: str, v: Any) -> str:
    if key.endswith("accuracy"):
        return f"{100 * v:.2f}%"
    if key == "samples_per_s":
        return f"{v:,.0f}/s"
    if key == "time":
        return f"{v:.2f}s"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _progress(epochs: int, steps: int, verbose: bool) -> _NoBar:
    return _Bar(epochs, steps) if verbose else _NoBar()
