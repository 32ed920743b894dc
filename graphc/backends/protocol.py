"""The one protocol through which runtime.Model drives a backend (numpy, cpu, cuda).

A backend compiles a Program into a function of feeds; params and state stay Model's
arrays, handed over as feeds by node id (or, for a fused train step, read and updated
in place through the `StepModel` view of the model). Nothing here imports a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from graphc.ir import Program

# feeds: arrays by node id (inputs, params, state, step) -> the arrays of `results`, in order
Compiled = Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]


@runtime_checkable
class Backend(Protocol):
    """What every backend offers: a name and `compile`."""

    name: str

    def compile(self, program: Program, dtype: np.dtype, results: Sequence[str]) -> Compiled:
        """A function from feeds to the values of `results`; compiled once, called often."""
        ...


class StepModel(Protocol):
    """What a fused train step reads from the model it trains (runtime.Model is one)."""

    dtype: np.dtype
    params: Any  # name -> array, updated in place by the step (a ParamDict)

    def grad_program(self, wrt: Iterable[str] = (), training: bool = True) -> Program: ...

    def feeds(self, program: Program, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]: ...


@runtime_checkable
class FusedTraining(Protocol):
    """Optional: forward, backward, clipping and the optimizer's update as one call.

    Backends without it are trained by Model from `compile`d gradients and the
    optimizer's own `step`; the result is the same either way (tests check it).
    """

    def train_step(self, model: StepModel, optimizer: Any, inputs: Mapping[str, Any],
                   clip_grad_norm: float | None = None,
                   clip_grad_value: float | None = None) -> float:
        """The loss before the update; `model.params` and `optimizer`'s state change."""
        ...


def fused_step(backend: Backend) -> Callable[..., float] | None:
    """The backend's fused train step, when it has one. (Not `isinstance(backend,
    FusedTraining)`: a runtime-checkable protocol takes about 4 us to check, a tenth of a
    small model's whole step.)"""
    return getattr(backend, "train_step", None)


__all__ = ["Backend", "Compiled", "FusedTraining", "StepModel", "fused_step"]
