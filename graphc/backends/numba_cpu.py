"""The Numba CPU backend: generated modules, loaded through the cache, behind `Model`.

`compile` turns a Program into a module with one kernel that computes the requested
results in one call; `train_step` builds (once per optimizer kind) a module whose kernel
runs forward, backward, clipping and the optimizer's update as one call, with params and
optimizer state packed into flat arrays that it updates in place.
"""

from __future__ import annotations

import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from graphc.backends import cache
from graphc.backends.numba_source import (
    Entry,
    KernelWriter,
    Training,
    module_source,
)
from graphc.backends.numba_templates import helpers_module
from graphc.backends.numpy_interp import evaluate
from graphc.errors import InputError
from graphc.ir import FLOAT, Program


def _cache_error(e: BaseException) -> bool:
    """Did Numba fail to read its own cache files (a corrupted cache entry)?"""
    return any("numba" in f.filename and "caching" in f.filename
               for f in traceback.extract_tb(e.__traceback__))


class Kernel:
    """A module's entry point, callable with arrays; rebuilds a corrupted Numba cache."""

    def __init__(self, module: ModuleType, name: str):
        self.module, self.name = module, name
        self.fn = getattr(module, f"{name}_arrays")
        self.fresh = True

    def __call__(self, *args: Any) -> Any:
        if not self.fresh:
            return self.fn(*args)
        try:
            out = self.fn(*args)
        except Exception as e:
            if not _cache_error(e):
                raise
            self.module = cache.forget(self.module)
            self.fn = getattr(self.module, f"{self.name}_arrays")
            out = self.fn(*args)
        self.fresh = False
        return out


def _array(a: Any, dtype: np.dtype) -> np.ndarray:
    """`a` as the kernel takes it: C-ordered, writable, of `dtype` (copied only if not)."""
    if (type(a) is not np.ndarray or a.dtype != dtype or not a.flags.c_contiguous
            or not a.flags.writeable):
        a = np.array(a, dtype=dtype, order="C")
    return a


def _dtype_of(kind: str, dtype: np.dtype) -> np.dtype:
    return dtype if kind == FLOAT else np.dtype(kind)


class CpuBackend:
    name = "cpu"

    def __init__(self, cache_dir: str | None = None):
        self.cache_dir = cache_dir
        self._trainers: dict[Any, Trainer] = {}

    def load(self, title: str, dtype: np.dtype, entries: list[Entry]) -> ModuleType:
        """The module for `entries`, from the cache; its helpers come from a shared
        module of their own, so they compile once for every model."""
        helpers = cache.load(helpers_module(dtype), f"helpers_{dtype.name}", self.cache_dir)
        source = module_source(title, dtype, entries, helper_module=helpers.__name__)
        return cache.load(source, title, self.cache_dir)

    def compile(self, program: Program, dtype: np.dtype, results: Sequence[str]
                ) -> Callable[[Mapping[str, np.ndarray]], list[np.ndarray]]:
        """A function from feeds (arrays by node id) to the arrays of `results`."""
        dtype = np.dtype(dtype)
        entry = Entry("run", program, list(results))
        writer = KernelWriter(entry, dtype)
        kernel = Kernel(self.load(program.name, dtype, [entry]), "run")
        args = [(i, _dtype_of(program[i].dtype, dtype), tuple(program[i].shape))
                for i in writer.inputs + writer.params]
        params = set(program.params.values())

        def run(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            arrays = []
            for i, dt, shape in args:
                a = _array(feeds[i], dt)
                if i in params and a.shape != shape:
                    raise InputError(f"param {program[i].name!r} has shape {list(a.shape)}, "
                                     f"the model wants {list(shape)}")
                arrays.append(a)
            try:
                out = kernel(*arrays)
            except ValueError:  # a kernel's input check: the reference says what is wrong
                evaluate(program, feeds, dtype)
                raise
            return [o if isinstance(o, np.ndarray) else np.asarray(o, dtype) for o in out]

        run.kernel = kernel  # type: ignore[attr-defined]  (for tests and the curious)
        return run

    def train_step(self, model: Any, optimizer: Any, inputs: Mapping[str, Any],
                   clip_grad_norm: float | None = None,
                   clip_grad_value: float | None = None) -> float:
        """Forward, backward, clipping and `optimizer`'s update in one compiled call."""
        lines = tuple(optimizer.update_lines())
        key = (id(optimizer), lines, tuple(optimizer.slots))
        trainer = self._trainers.get(key)
        if trainer is None or trainer.optimizer is not optimizer:
            trainer = self._trainers[key] = Trainer(self, model, optimizer, lines)
            while len(self._trainers) > 4:  # e.g. a learning-rate finder's many optimizers
                self._trainers.pop(next(iter(self._trainers)))
        return trainer.step(model, optimizer, inputs, clip_grad_norm, clip_grad_value)


class Trainer:
    """The fused train step of one model for one optimizer (and its update lines)."""

    def __init__(self, backend: CpuBackend, model: Any, optimizer: Any, lines: tuple):
        self.optimizer = optimizer
        prog = self.program = model.grad_program(())
        results = [prog.loss, *(prog.grads[name] for name in prog.params)]
        training = Training(type(optimizer).__name__, list(lines), tuple(optimizer.slots),
                            dict.fromkeys(optimizer.hyper, 0.0), dict(optimizer.slot_init))
        entry = Entry("train_step", prog, results, training)
        writer = KernelWriter(entry, model.dtype)
        self.module = backend.load(prog.name, model.dtype, [entry])
        self.kernel = Kernel(self.module, "train_step")
        self.hyper = list(training.hyper)
        self.inputs = [(prog[i].name, i, _dtype_of(prog[i].dtype, model.dtype),
                        tuple(prog[i].shape)) for i in writer.inputs]
        self.state = self.module.TrainState(None, slots=optimizer.state)

    def arrays(self, model: Any, inputs: Mapping[str, Any]) -> list[np.ndarray]:
        """The inputs as the kernel takes them; the quick check, else graphc's own."""
        if len(inputs) == len(self.inputs):
            dims: dict[str, int] = {}
            out = []
            for name, _, dt, shape in self.inputs:
                a = inputs.get(name)
                if (type(a) is not np.ndarray or a.dtype != dt or a.ndim != len(shape)
                        or not a.flags.c_contiguous or not a.flags.writeable):
                    break
                for d, n in zip(shape, a.shape):
                    if (d != n) if type(d) is int else (dims.setdefault(d, n) != n):
                        break
                else:
                    out.append(a)
                    continue
                break
            else:
                return out
        feeds = model.feeds(self.program, inputs)
        return [_array(feeds[i], dt) for _, i, dt, _ in self.inputs]

    def step(self, model: Any, optimizer: Any, inputs: Mapping[str, Any],
             clip_grad_norm: float | None, clip_grad_value: float | None) -> float:
        arrays = self.arrays(model, inputs)
        if self.state.slots is not optimizer.state:
            self.state.slots = optimizer.state
        h = optimizer.hyper
        norm = math.inf if clip_grad_norm is None else float(clip_grad_norm)
        value = math.inf if clip_grad_value is None else float(clip_grad_value)
        t = optimizer.t + 1
        try:
            loss = self.kernel(model.params, self.state, arrays,
                               tuple([h[k] for k in self.hyper]), float(t), norm, value)
        except ValueError:
            evaluate(self.program, model.feeds(self.program, inputs), model.dtype)
            raise
        optimizer.t = t
        return float(loss)
