"""Learning-rate schedules, part 2: schedules made of schedules (SequentialLR,
ChainedScheduler) and the per-batch cycles that also cycle momentum (OneCycleLR, CyclicLR)."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from graphc.optim import Optimizer
from graphc.schedules_decay import ReduceLROnPlateau, Schedule


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
