"""Training plots with matplotlib (an optional dependency: pip install graphc[train]).

Figures are built with `matplotlib.figure.Figure`, never pyplot, so nothing depends on a
display or changes the user's backend; Jupyter shows a returned Figure inline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from graphc.errors import InputError


def _figure(ncols: int, width: float = 5.0):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise InputError("plots need matplotlib: pip install 'graphc[train]'") from None
    fig = Figure(figsize=(width * ncols, 3.8), layout="constrained")
    return fig, [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]


def _save(fig: Any, path: str | Path | None) -> Any:
    if path is not None:
        path = Path(path)
        if path.suffix.lower() not in (".png", ".svg", ".pdf"):
            raise InputError(f"{path}: a plot file ends in .png, .svg or .pdf")
        fig.savefig(path, dpi=120)
    return fig


def plot_history(history: Any, path: str | Path | None = None) -> Any:
    """Training and validation loss per epoch, and the validation metric beside them."""
    metric = f"val_{history.metric}" if history.metric else None
    has_metric = metric is not None and any(v is not None for v in history[metric])
    fig, axes = _figure(2 if has_metric else 1)
    epochs = history["epoch"]
    ax = axes[0]
    ax.plot(epochs, history["loss"], marker="o", ms=3, label="training loss")
    if any(v is not None for v in history["val_loss"]):
        ax.plot(epochs, history["val_loss"], marker="o", ms=3, label="validation loss")
    if history.best_epoch:
        ax.axvline(history.best_epoch, color="grey", ls=":", lw=1, label="best epoch")
    ax.set(xlabel="epoch", ylabel="loss", title=history.info.get("model", "loss"))
    ax.legend()
    ax.grid(alpha=0.3)
    if has_metric:
        values = history[metric]
        if history.metric == "accuracy":
            values = [100 * v for v in values]
        axes[1].plot(epochs, values, marker="o", ms=3, color="C2")
        axes[1].set(xlabel="epoch", ylabel=("validation accuracy (%)" if history.metric ==
                                            "accuracy" else f"validation {history.metric}"))
        axes[1].grid(alpha=0.3)
    return _save(fig, path)


def plot_lr_find(result: Any, path: str | Path | None = None) -> Any:
    """Loss against learning rate (log scale), smoothed, with the suggested rate marked."""
    fig, (ax,) = _figure(1, 6.0)
    ax.plot(result.rates, result.losses, color="C0", alpha=0.3, label="loss")
    ax.plot(result.rates, result.smoothed, color="C0", label="smoothed loss")
    if result.suggestion:
        ax.axvline(result.suggestion, color="C3", ls="--",
                   label=f"suggested lr {result.suggestion:.2g}")
    ax.set_xscale("log")
    ax.set(xlabel="learning rate", ylabel="loss", title="LR finder: one mini-batch per rate")
    if result.smoothed:  # from the lowest loss up to the highest before it: the blow-up is cut
        best = min(range(len(result.smoothed)), key=result.smoothed.__getitem__)
        lo, hi = result.smoothed[best], max(result.smoothed[:best + 1])
        pad = (hi - lo) or abs(lo) or 1.0
        ax.set_ylim(lo - 0.1 * pad, hi + 0.3 * pad)
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def plot_compare(histories: Mapping[str, Any], path: str | Path | None = None) -> Any:
    """Several runs side by side: training loss per epoch, validation loss per epoch, and
    training loss against seconds of training (what a step costs matters too)."""
    fig, axes = _figure(3, 4.2)
    for i, (label, h) in enumerate(histories.items()):
        seconds = [sum(h["time"][:k + 1]) for k in range(len(h))]
        axes[0].plot(h["epoch"], h["loss"], color=f"C{i}", label=label)
        if any(v is not None for v in h["val_loss"]):
            axes[1].plot(h["epoch"], h["val_loss"], color=f"C{i}", label=label)
        axes[2].plot(seconds, h["loss"], color=f"C{i}", label=label)
    for ax, (xlabel, ylabel) in zip(axes, (("epoch", "training loss"),
                                           ("epoch", "validation loss"),
                                           ("seconds of training", "training loss"))):
        ax.set(xlabel=xlabel, ylabel=ylabel, yscale="log")
        if xlabel.startswith("seconds"):
            ax.set_xscale("log")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend()
    return _save(fig, path)
