"""The spec's `train` object, checked: its keys, the defaults, and the options `fit`,
`lr_find` and `graphc train` run with (a module of its own so both import it downward)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphc.errors import SpecError, did_you_mean

TRAIN_KEYS = ("optimizer", "schedule", "epochs", "batch_size", "clip_grad_norm",
              "clip_grad_value", "accumulate", "shuffle", "seed", "early_stopping", "drop_last")
DEFAULTS = {"optimizer": {"name": "adam", "lr": 1e-3}, "schedule": None, "epochs": 10,
            "batch_size": 32, "clip_grad_norm": None, "clip_grad_value": None, "accumulate": 1,
            "shuffle": True, "seed": 0, "early_stopping": None, "drop_last": False}


def train_options(graph: Any, **given: Any) -> dict[str, Any]:
    """The spec's `train` object, checked, under the options given here (None = unset)."""
    spec = graph.train or {}
    if not isinstance(spec, Mapping):
        raise SpecError("expected an object such as {\"epochs\": 10}", "train", source=graph.source)
    for key in spec:
        if key not in TRAIN_KEYS:
            raise SpecError(f"unknown training option {key!r}", f"train.{key}",
                            did_you_mean(key, TRAIN_KEYS) or f"options: {', '.join(TRAIN_KEYS)}",
                            source=graph.source)
    out = {**DEFAULTS, **spec, **{k: v for k, v in given.items() if v is not None}}
    _positive_int(out, "epochs", graph)
    _positive_int(out, "batch_size", graph)
    _positive_int(out, "accumulate", graph)
    for key in ("clip_grad_norm", "clip_grad_value"):
        v = out[key]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or not v > 0):
            raise SpecError(f"{key} must be a positive number, got {v!r}", f"train.{key}",
                            source=graph.source)
    if out["accumulate"] > out["batch_size"]:
        raise SpecError(f"accumulate ({out['accumulate']}) splits each batch into micro-batches, "
                        f"so it cannot exceed batch_size ({out['batch_size']})", "train.accumulate",
                        source=graph.source)
    return out


def _positive_int(opts: dict, key: str, graph: Any) -> None:
    v = opts[key]
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise SpecError(f"{key} must be a positive integer, got {v!r}", f"train.{key}",
                        source=graph.source)
    opts[key] = int(v)


# ---- fit -------------------------------------------------------------------------------
