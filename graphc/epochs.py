"""Whole epochs of mini-batch steps: one compiled call per chunk of steps where the backend
has one (the cpu backend's epoch driver), else a loop of `Model.train_step` calls with the
same batches, order and hyper-parameters; `fit` and `Model.train_epoch` use it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from graphc.errors import InputError
from graphc.inputs import bind_inputs


def fusable(model: Any) -> bool:
    """Can `model` run whole epochs compiled? (a backend with an epoch driver, and a train
    step without state updates or random draws, which the fused step needs too)."""
    if getattr(model.backend, "train_epoch", None) is None:
        return False
    prog = model.grad_program((), True)
    return not prog.updates and prog.step is None


def run_epoch(model: Any, optimizer: Any, arrays: Mapping[str, np.ndarray],
              batched: Sequence[str], batches: Sequence[np.ndarray],
              hypers: Sequence[Mapping[str, float]] | None = None,
              clip_grad_norm: float | None = None, clip_grad_value: float | None = None,
              chunk: int | None = None,
              on_chunk: Callable[[int, int, np.ndarray], None] | None = None
              ) -> tuple[np.ndarray, int]:
    """Train on `batches` (row indices into the `batched` arrays) in order; step j uses
    hypers[j] (the optimizer's hyper-parameters, default: as they are). Stops after the
    first non-finite loss. Returns the steps' losses and how many steps ran; `on_chunk`
    (start, stop, losses) is called after every `chunk` steps."""
    steps = len(batches)
    losses = np.zeros(steps)
    if steps == 0:
        return losses, 0
    if hypers is None:
        hypers = [dict(optimizer.hyper)] * steps
    chunk = steps if chunk is None else max(1, int(chunk))
    after = dict(optimizer.hyper)  # what the caller's schedule left: restored at the end
    try:
        if fusable(model):
            return losses, _compiled(model, optimizer, arrays, batched, batches, hypers,
                                     clip_grad_norm, clip_grad_value, chunk, on_chunk, losses)
        c0 = 0
        for j, idx in enumerate(batches):
            optimizer.hyper.update(hypers[j])
            feed = {k: v[idx] if k in batched else v for k, v in arrays.items()}
            losses[j] = model.train_step(optimizer, clip_grad_norm=clip_grad_norm,
                                         clip_grad_value=clip_grad_value, **feed)
            bad = not np.isfinite(losses[j])
            if j + 1 - c0 == chunk or j + 1 == steps or bad:
                if on_chunk is not None:
                    on_chunk(c0, j + 1, losses)
                c0 = j + 1
                if bad:
                    return losses, j + 1
        return losses, steps
    finally:
        optimizer.hyper.update(after)


def _compiled(model, optimizer, arrays, batched, batches, hypers, clip_grad_norm,
              clip_grad_value, chunk, on_chunk, losses) -> int:
    """run_epoch on the backend's epoch driver, one call per chunk; steps done."""
    steps = len(batches)
    prog = model.grad_program((), True)
    given = {k: v for k, v in arrays.items() if k in prog.inputs}
    bound: dict[str, tuple[int, str]] = {}
    feeds = bind_inputs(model.graph, prog, given, model.dtype, bound)
    ids = {prog.inputs[k] for k in batched if k in prog.inputs}
    sizes = [len(b) for b in batches]
    if min(sizes) < 1 or len(set(sizes[:-1])) > 1 or sizes[-1] > sizes[0]:
        raise InputError("train_epoch: every batch needs the same number of rows (at least "
                         f"1), except a smaller last one; got sizes {sorted(set(sizes))}")
    rows = {len(arrays[k]) for k in batched if k in arrays}
    big = max(sizes)
    model._fits((id(prog), "epoch", big), prog, lambda: {
        d: (big if n in rows else n) for d, (n, _) in bound.items()})
    order = np.concatenate([np.asarray(b, dtype=np.int64) for b in batches])
    if len(order) and (order.min() < 0 or order.max() >= min(rows, default=0)):
        raise InputError(f"train_epoch: batch indices must lie in [0, {min(rows)})")
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    hyper = np.array([[h[k] for k in optimizer.hyper] for h in hypers], dtype=np.float64)
    done = 0
    for c in range(0, steps, chunk):
        stop = min(c + chunk, steps)
        n, _ = model.backend.train_epoch(
            model, optimizer, feeds, ids, order[starts[c]:starts[stop]],
            starts[c:stop + 1] - starts[c], hyper[c:stop], losses[c:stop],
            clip_grad_norm, clip_grad_value)
        done += n
        model.step += n
        if on_chunk is not None:
            on_chunk(c, c + n, losses)
        if c + n < stop or not np.isfinite(losses[c + n - 1]):
            break
    return done
