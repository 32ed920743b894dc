"""Learning-rate schedules with torch.optim.lr_scheduler's definitions and names.

A schedule changes `optimizer.lr` (a runtime scalar of the compiled train step) between
steps; nothing is rebuilt. As in PyTorch, building a schedule sets the first rate, the
chainable rules multiply the current rate (so ChainedScheduler composes them), and
`step()` is called after the optimizer's step: once per epoch, or once per batch for the
schedules whose `interval` is "batch" (OneCycleLR, CyclicLR). `graphc.train.fit` does that.
The rules live in schedules_decay and schedules_cyclic; this module names them and reads
a spec's `train.schedule`.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from graphc.errors import SpecError, did_you_mean
from graphc.optim import Optimizer
from graphc.schedules_cyclic import (
    ChainedScheduler,
    CyclicLR,
    OneCycleLR,
    SequentialLR,
)
from graphc.schedules_decay import (
    ConstantLR,
    CosineAnnealingLR,
    ExponentialLR,
    LambdaLR,
    LinearLR,
    MultiplicativeLR,
    MultiStepLR,
    NewBob,
    PolynomialLR,
    ReduceLROnPlateau,
    Schedule,
    StepLR,
)

SCHEDULES: dict[str, Any] = {
    "step": StepLR, "multistep": MultiStepLR, "constant": ConstantLR, "linear": LinearLR,
    "exponential": ExponentialLR, "polynomial": PolynomialLR, "cosine": CosineAnnealingLR,
    "onecycle": OneCycleLR, "cyclic": CyclicLR, "plateau": ReduceLROnPlateau,
    "newbob": NewBob, "sequential": SequentialLR, "chain": ChainedScheduler}
ALIASES = {"warmup": "linear", "cosineannealing": "cosine", "reduceonplateau": "plateau",
           "reducelronplateau": "plateau", "chained": "chain", "chainedscheduler": "chain"}


def from_spec(spec: Any, optimizer: Optimizer, *, epochs: int | None = None,
              steps_per_epoch: int | None = None, place: str = "train.schedule") -> Any:
    """A schedule from the spec's `train.schedule` object, e.g. {"name": "step",
    "step_size": 10, "gamma": 0.5}; names are the short ones above or torch's class names.

    `epochs` and `steps_per_epoch` fill in what a schedule would otherwise need
    (cosine's T_max, onecycle's total_steps). "sequential" and "chain" take
    {"schedulers": [...]}; "interval": "batch" | "epoch" overrides when step() is called.
    """
    if spec is None or isinstance(spec, (Schedule, ReduceLROnPlateau)):
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise SpecError('expected an object with a "name", such as {"name": "step", '
                        '"step_size": 10}', place)
    options = dict(spec)
    raw = options.pop("name")
    interval = options.pop("interval", None)
    key = raw.lower().replace("_", "").replace("-", "")
    key = ALIASES.get(key, key)
    if key not in SCHEDULES and key.endswith("lr"):
        key = ALIASES.get(key[:-2], key[:-2])
    if key in ("lambda", "multiplicative"):
        raise SpecError(f"{raw!r} takes a Python function, which a spec cannot hold",
                        f"{place}.name", "build it in Python and pass it to fit, e.g. "
                        "schedule=graphc.schedules.LambdaLR(opt, lambda e: 0.95 ** e)")
    if key not in SCHEDULES:
        raise SpecError(f"unknown schedule {raw!r}", f"{place}.name",
                        did_you_mean(key, SCHEDULES) or f"choose one of: {', '.join(SCHEDULES)}")
    cls = SCHEDULES[key]
    per_batch = (interval or getattr(cls, "interval", "epoch")) == "batch"
    if key in ("sequential", "chain"):
        children = options.pop("schedulers", None)
        if not isinstance(children, list) or not children:
            raise SpecError('needs "schedulers": a list of schedule objects', place)
        options["schedulers"] = [
            from_spec(c, optimizer, epochs=epochs, steps_per_epoch=steps_per_epoch,
                      place=f"{place}.schedulers[{i}]") for i, c in enumerate(children)]
        for child in options["schedulers"]:
            child.interval = interval or child.interval
    total = epochs * steps_per_epoch if epochs and steps_per_epoch else None
    if key == "cosine" and "T_max" not in options and epochs:
        options["T_max"] = total if per_batch and total else epochs
    if key == "onecycle" and "total_steps" not in options:
        if "epochs" in options:
            options.setdefault("steps_per_epoch", steps_per_epoch)
        else:
            options["total_steps"] = total
    params = dict(inspect.signature(cls).parameters)
    if key == "newbob":
        params = {**inspect.signature(ReduceLROnPlateau).parameters, **params}
    params = {k: p for k, p in params.items() if k not in ("optimizer", "kwargs")}
    accepted = list(params)
    for k, v in options.items():
        if k not in accepted:
            raise SpecError(f"{raw} has no argument {k!r}", f"{place}.{k}",
                            did_you_mean(k, accepted) or f"arguments: {', '.join(accepted)}")
        _check_arg(k, v, params[k].annotation, f"{place}.{k}")
    missing = [k for k, p in params.items() if p.default is p.empty and k not in options]
    if missing:
        them = "it" if len(missing) == 1 else "them"
        example = f'{{"name": "{raw}", {_example(missing[0])}}}'
        raise SpecError(f"{raw} needs {' and '.join(map(repr, missing))}", place,
                        f"add {them}, e.g. {example}")
    try:
        if key == "chain":
            sched = cls(options.pop("schedulers"), optimizer, **options)
        else:
            sched = cls(optimizer, **options)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{raw}: {str(e).split('() ', 1)[-1]}", place) from None
    if interval is not None:
        if interval not in ("epoch", "batch"):
            raise SpecError(f"interval must be \"epoch\" or \"batch\", got {interval!r}",
                            f"{place}.interval")
        sched.interval = interval
    return sched


EXAMPLES = {"step_size": 10, "milestones": [30, 60], "gamma": 0.5, "T_max": 50, "max_lr": 0.1,
            "base_lr": 0.001}


def _example(arg: str) -> str:
    return f'"{arg}": {EXAMPLES.get(arg, 1)!r}'


def _check_arg(key: str, value: Any, annotation: Any, place: str) -> None:
    """A schedule argument of the type its signature names, worded for the spec."""
    kind = str(annotation).replace(" | None", "")
    if value is None and "None" in str(annotation):
        return
    if kind == "bool":
        if not isinstance(value, bool):
            raise SpecError(f"expected true or false, got {value!r}", place)
    elif kind == "str":
        if not isinstance(value, str):
            raise SpecError(f"expected a string, got {value!r}", place)
    elif kind in ("int", "float"):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (kind == "int" and float(value) != int(value)):
            what = "an integer" if kind == "int" else "a number"
            raise SpecError(f"expected {what}, got {value!r}", place)
    elif kind.startswith(("Iterable[int]", "Sequence[int]")):
        if not isinstance(value, list) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise SpecError(f"expected a list of integers, got {value!r}", place)


__all__ = ["ChainedScheduler", "ConstantLR", "CosineAnnealingLR", "CyclicLR", "ExponentialLR",
           "LambdaLR", "LinearLR", "MultiStepLR", "MultiplicativeLR", "NewBob", "OneCycleLR",
           "PolynomialLR", "ReduceLROnPlateau", "SCHEDULES", "Schedule", "SequentialLR",
           "StepLR", "from_spec"]
