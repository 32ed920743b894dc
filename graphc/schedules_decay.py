"""Learning-rate schedules, part 1: the base class, torch's rules that follow from the step
number or the current rate (step, exponential, cosine, ...), and ReduceLROnPlateau."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

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
