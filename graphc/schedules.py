"""Learning-rate schedules with torch.optim.lr_scheduler's definitions and names.

A schedule changes `optimizer.lr` (a runtime scalar of the compiled train step) between
steps; nothing is rebuilt. As in PyTorch, building a schedule sets the first rate, the
chainable rules multiply the current rate (so ChainedScheduler composes them), and
`step()` is called after the optimizer's step: once per epoch, or once per batch for the
schedules whose `interval` is "batch" (OneCycleLR, CyclicLR). `graphc.train.fit` does that.
"""

from __future__ import annotations

import inspect
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from graphc.errors import SpecError, did_you_mean
from graphc.optim import Optimizer


class Schedule:
    """Base class (torch's LRScheduler): `get_lr()` gives the next rate from the current
    one, `closed_form()` (where defined) from the step number alone."""

    interval = "epoch"

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        if optimizer.initial_lr is None:
            optimizer.initial_lr = optimizer.lr
        self.base_lr = optimizer.initial_lr
        self.last_epoch = -1
        self._is_initial = False
        self._initial_step()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} lr={self.optimizer.lr:.4g} step={self.last_epoch}>"

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def step(self) -> None:
        """Advance one epoch (or one batch, for per-batch schedules)."""
        self._step_count += 1
        self._update_lr(None)

    def _update_lr(self, epoch: int | None) -> None:
        if epoch is None:
            self.last_epoch += 1
            lr = self.get_lr()
        else:
            self.last_epoch = epoch
            closed = getattr(self, "closed_form", None)
            lr = closed() if closed is not None else self.get_lr()
        self.optimizer.lr = lr

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    def get_lr(self) -> float:
        raise NotImplementedError  # each schedule defines its rule

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)


class StepLR(Schedule):
    """lr x gamma every `step_size` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        if int(step_size) < 1:
            raise ValueError(f"step_size must be a positive integer, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma

    def closed_form(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class MultiStepLR(Schedule):
    """lr x gamma at each milestone epoch."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1):
        self.milestones, self.gamma = Counter(int(m) for m in milestones), float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        if self.last_epoch not in self.milestones:
            return self.optimizer.lr
        return self.optimizer.lr * self.gamma ** self.milestones[self.last_epoch]

    def closed_form(self) -> float:
        return self.base_lr * self.gamma ** bisect_right(sorted(self.milestones.elements()),
                                                         self.last_epoch)


class ConstantLR(Schedule):
    """lr x factor for the first `total_iters` epochs, then lr."""

    def __init__(self, optimizer: Optimizer, factor: float = 1.0 / 3, total_iters: int = 5):
        if not 0 <= factor <= 1:
            raise ValueError(f"factor must lie in [0, 1], got {factor}")
        self.factor, self.total_iters = float(factor), int(total_iters)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        if self.last_epoch == 0:
            return self.optimizer.lr * self.factor
        if self.last_epoch != self.total_iters:
            return self.optimizer.lr
        return self.optimizer.lr * (1.0 / self.factor)

    def closed_form(self) -> float:
        return self.base_lr * (self.factor + (self.last_epoch >= self.total_iters)
                               * (1 - self.factor))


class LinearLR(Schedule):
    """Linear warm-up (or decay): the factor goes from start_factor to end_factor over
    `total_iters` epochs. Compose it with SequentialLR or ChainedScheduler."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3,
                 end_factor: float = 1.0, total_iters: int = 5):
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must lie in (0, 1], got {start_factor}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"end_factor must lie in [0, 1], got {end_factor}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        lr = self.optimizer.lr
        if self.last_epoch == 0:
            return lr * self.start_factor
        if self._is_initial or self.last_epoch > self.total_iters:
            return lr
        span = self.end_factor - self.start_factor
        return lr * (1.0 + span / (self.total_iters * self.start_factor
                                   + (self.last_epoch - 1) * span))

    def closed_form(self) -> float:
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                               * min(self.total_iters, self.last_epoch) / self.total_iters)


class ExponentialLR(Schedule):
    """lr x gamma every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float):
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        return self.optimizer.lr if self._is_initial else self.optimizer.lr * self.gamma

    def closed_form(self) -> float:
        return self.base_lr * self.gamma ** self.last_epoch


class PolynomialLR(Schedule):
    """lr x (1 - epoch / total_iters) ** power, then 0."""

    def __init__(self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0):
        self.total_iters, self.power = int(total_iters), float(power)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        if self._is_initial or self.last_epoch > self.total_iters:
            return self.optimizer.lr
        n, k = self.total_iters, self.last_epoch
        return self.optimizer.lr * ((1.0 - k / n) / (1.0 - (k - 1) / n)) ** self.power

    def closed_form(self) -> float:
        return self.base_lr * (1.0 - min(self.total_iters, self.last_epoch)
                               / self.total_iters) ** self.power


class CosineAnnealingLR(Schedule):
    """eta_min + (base - eta_min)(1 + cos(pi epoch / T_max)) / 2, by PyTorch's recursion."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):  # noqa: N803
        if int(T_max) < 1:
            raise ValueError(f"T_max must be a positive integer, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def get_lr(self) -> float:
        lr, e, T, lo = self.optimizer.lr, self.last_epoch, self.T_max, self.eta_min  # noqa: N806
        if self._is_initial:
            return lr
        if self._step_count == 1 and e > 0:
            return lo + (self.base_lr - lo) * (1 + math.cos(e * math.pi / T)) / 2
        if (e - 1 - T) % (2 * T) == 0:
            return lr + (self.base_lr - lo) * (1 - math.cos(math.pi / T)) / 2
        return ((1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T))
                * (lr - lo) + lo)

    def closed_form(self) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (
            1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2


class LambdaLR(Schedule):
    """base lr x lr_lambda(epoch), for a schedule written as a Python function (so it is
    not in SCHEDULES: a JSON spec cannot hold a function)."""

    def __init__(self, optimizer: Optimizer, lr_lambda: Callable[[int], float]):
        if not callable(lr_lambda):
            raise TypeError(f"lr_lambda must be a function of the epoch, got {lr_lambda!r}")
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def get_lr(self) -> float:
        return self.base_lr * self.lr_lambda(self.last_epoch)

    closed_form = get_lr

    def state_dict(self) -> dict[str, Any]:
        # as in torch, a plain function is not saved; the caller builds it again
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambda"}


class MultiplicativeLR(LambdaLR):
    """lr x lr_lambda(epoch) every epoch after the first (torch's MultiplicativeLR)."""

    def get_lr(self) -> float:
        if self._is_initial or self.last_epoch <= 0:
            return self.optimizer.lr
        return self.optimizer.lr * self.lr_lambda(self.last_epoch)

    closed_form = None


class SequentialLR(Schedule):
    """Run `schedules[i]` between milestones[i-1] and milestones[i] (warm-up, then ...)."""

    def __init__(self, optimizer: Optimizer, schedulers: Sequence[Schedule],
                 milestones: Sequence[int]):
        _check_children(optimizer, schedulers, "SequentialLR")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR needs one milestone fewer than schedulers: got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        self.optimizer, self.schedules = optimizer, list(schedulers)
        self.milestones = [int(m) for m in milestones]
        self.interval = _common_interval(schedulers)
        self.base_lr = optimizer.initial_lr
        self.last_epoch = 0
        optimizer.lr = optimizer.initial_lr
        _undo(self)
        self.schedules[bisect_right(self.milestones, 0)]._initial_step()

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self.milestones, self.last_epoch)
        schedule = self.schedules[idx]
        if idx > 0 and self.milestones[idx - 1] == self.last_epoch:
            schedule._update_lr(0)
        else:
            schedule.step()


def _undo(s: Any) -> None:
    for child in getattr(s, "schedules", ()):
        if hasattr(child, "schedules"):
            _undo(child)
        else:
            child.last_epoch -= 1


class ChainedScheduler(Schedule):
    """Step every schedule in turn, so their factors multiply (e.g. warm-up x decay)."""

    def __init__(self, schedulers: Sequence[Schedule], optimizer: Optimizer | None = None):
        optimizer = optimizer or (schedulers[0].optimizer if schedulers else None)
        _check_children(optimizer, schedulers, "ChainedScheduler")
        self.optimizer, self.schedules = optimizer, list(schedulers)
        self.interval = _common_interval(schedulers)
        self.base_lr, self.last_epoch = optimizer.initial_lr, 0

    def step(self) -> None:
        self.last_epoch += 1
        for s in self.schedules:
            s.step()


def _check_children(optimizer, schedules, who: str) -> None:
    if not schedules:
        raise ValueError(f"{who} needs at least one schedule")
    for i, s in enumerate(schedules):
        if isinstance(s, ReduceLROnPlateau):
            raise ValueError(f"{who} cannot hold ReduceLROnPlateau (schedule {i}): it needs "
                             "the monitored value at each step")
        if s.optimizer is not optimizer:
            raise ValueError(f"{who}: schedule {i} belongs to another optimizer")


def _common_interval(schedules: Sequence[Schedule]) -> str:
    kinds = {s.interval for s in schedules}
    if len(kinds) > 1:
        raise ValueError("schedules stepping once per epoch and once per batch cannot be "
                         "combined; give them the same \"interval\"")
    return kinds.pop()


class _Cycling(Schedule):
    """Shared by OneCycleLR and CyclicLR: they also cycle momentum (SGD, RMSprop) or beta1
    (Adam, AdamW) inversely to the rate."""

    interval = "batch"

    def _momentum_key(self, cycle_momentum: bool) -> str | None:
        if not cycle_momentum:
            return None
        h = self.optimizer.hyper
        if "beta1" in h:
            return "beta1"
        if "momentum" in h and h["momentum"] > 0:
            return "momentum"
        what = ("was built with momentum=0, so its update has no momentum term"
                if "momentum" in h else "has no momentum or beta1")
        raise ValueError(f"cycle_momentum=True, but {type(self.optimizer).__name__} {what}: "
                         "give it momentum (e.g. 0.9) or pass cycle_momentum=False")

    def _set_momentum(self, value: float) -> None:
        if self.momentum_key is not None:
            self.optimizer.hyper[self.momentum_key] = float(value)


class OneCycleLR(_Cycling):
    """1cycle: the rate rises from max_lr/div_factor to max_lr over pct_start of the
    steps, then anneals far below the start; momentum does the opposite."""

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None,
                 pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False):
        if total_steps is None:
            if not epochs or not steps_per_epoch:
                raise ValueError("OneCycleLR needs total_steps, or epochs and steps_per_epoch")
            total_steps = int(epochs) * int(steps_per_epoch)
        if int(total_steps) < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps}")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"pct_start must lie in [0, 1], got {pct_start}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.optimizer, self.total_steps = optimizer, int(total_steps)
        self.anneal_strategy = anneal_strategy
        n = self.total_steps
        self.levels = {"initial": max_lr / div_factor, "max": float(max_lr),
                       "min": max_lr / div_factor / final_div_factor,
                       "m_max": float(max_momentum), "m_base": float(base_momentum)}
        if three_phase:
            self.phases = [(float(pct_start * n) - 1, "initial", "max", "m_max", "m_base"),
                           (float(2 * pct_start * n) - 2, "max", "initial", "m_base", "m_max"),
                           (n - 1, "initial", "min", "m_max", "m_max")]
        else:
            self.phases = [(float(pct_start * n) - 1, "initial", "max", "m_max", "m_base"),
                           (n - 1, "max", "min", "m_base", "m_max")]
        optimizer.initial_lr = self.levels["initial"]
        self.momentum_key = self._momentum_key(cycle_momentum)
        self._set_momentum(max_momentum)
        super().__init__(optimizer)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> float:
        k = self.last_epoch
        if k > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {k} times, but total_steps is "
                             f"{self.total_steps}")
        start = 0.0
        for i, (end, lr0, lr1, m0, m1) in enumerate(self.phases):
            if k <= end or i == len(self.phases) - 1:
                pct = (k - start) / (end - start)
                self._set_momentum(self._anneal(self.levels[m0], self.levels[m1], pct))
                return self._anneal(self.levels[lr0], self.levels[lr1], pct)
            start = end
        raise AssertionError("unreachable: the last phase always matches")


class CyclicLR(_Cycling):
    """Triangular cycles between base_lr and max_lr (modes triangular, triangular2,
    exp_range); momentum cycles between max_momentum and base_momentum."""

    def __init__(self, optimizer: Optimizer, base_lr: float, max_lr: float,
                 step_size_up: int = 2000, step_size_down: int | None = None,
                 mode: str = "triangular", gamma: float = 1.0, cycle_momentum: bool = True,
                 base_momentum: float = 0.8, max_momentum: float = 0.9):
        if mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(f"mode must be triangular, triangular2 or exp_range, got {mode!r}")
        self.optimizer = optimizer
        optimizer.lr = base_lr
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size, self.step_ratio = up + down, up / (up + down)
        self.mode, self.gamma, self.max_lr = mode, float(gamma), float(max_lr)
        self.base_momentum, self.max_momentum = float(base_momentum), float(max_momentum)
        self.momentum_key = self._momentum_key(cycle_momentum)
        self._set_momentum(max_momentum)
        super().__init__(optimizer)
        self.base_lr = float(base_lr)

    def _scale(self, cycle: int) -> float:
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (cycle - 1))
        return self.gamma ** self.last_epoch

    def get_lr(self) -> float:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        factor = x / self.step_ratio if x <= self.step_ratio else (x - 1) / (self.step_ratio - 1)
        scale = self._scale(cycle)
        self._set_momentum(self.max_momentum
                           - (self.max_momentum - self.base_momentum) * factor * scale)
        return self.base_lr + (self.max_lr - self.base_lr) * factor * scale


class ReduceLROnPlateau:
    """Multiply the rate by `factor` when the monitored value (validation loss by default)
    has not improved for more than `patience` epochs. "New bob" is factor 0.5."""

    interval = "epoch"

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8):
        if factor >= 1.0:
            raise ValueError(f"factor must be < 1, got {factor}")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer, self.mode, self.factor = optimizer, mode, float(factor)
        self.patience, self.threshold, self.threshold_mode = int(patience), threshold, \
            threshold_mode
        self.cooldown, self.min_lr, self.eps = int(cooldown), float(min_lr), float(eps)
        self.last_epoch, self.best = 0, math.inf if mode == "min" else -math.inf
        self.cooldown_counter = self.num_bad_epochs = 0

    def _is_better(self, a: float) -> bool:
        sign = 1.0 if self.mode == "min" else -1.0
        if self.threshold_mode == "rel":
            return sign * a < sign * self.best * (1.0 - sign * self.threshold)
        return sign * a < sign * self.best - self.threshold

    def step(self, metrics: float) -> None:
        current = float(metrics)
        self.last_epoch += 1
        if self._is_better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            old = self.optimizer.lr
            new = max(old * self.factor, self.min_lr)
            if old - new > self.eps:
                self.optimizer.lr = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.__dict__.update(state)


def NewBob(optimizer: Optimizer, factor: float = 0.5, patience: int = 0,  # noqa: N802
           **kwargs: Any) -> ReduceLROnPlateau:
    """The lectures' "new bob": halve the rate when the validation loss stops improving."""
    return ReduceLROnPlateau(optimizer, factor=factor, patience=patience, **kwargs)


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
