"""The Numba CPU backend: generated modules, loaded through the cache, behind `Model`.

`compile` turns a Program into a module with one kernel that computes the requested
results in one call; `train_step` builds (once per optimizer kind) a module whose kernel
runs forward, backward, clipping and the optimizer's update as one call, with params and
optimizer state packed into flat arrays that it updates in place.
"""

from __future__ import annotations

import math
import operator
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
from graphc.inputs import ready_arrays
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
        self._last: tuple | None = None  # (optimizer, its signature, Trainer, model)
        self._built: dict[Any, tuple] = {}  # (model program, dtype, lines...) -> module

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

        wanted = [(program[i].name, _dtype_of(program[i].dtype, dtype), tuple(program[i].shape))
                  for i in writer.inputs]
        names = {i: n for n, i in program.params.items()}
        param_args = [(names[i], _dtype_of(program[i].dtype, dtype)) for i in writer.params]

        def quick(values: Mapping[str, np.ndarray], inputs: Mapping[str, Any]
                  ) -> list[np.ndarray] | None:
            """`run` for inputs that are already the kernel's arrays (None: they are not,
            or the kernel refused them: take the checked way)."""
            arrays = ready_arrays(wanted, inputs)
            if arrays is None:
                return None
            try:
                out = kernel(*arrays, *[_array(values[n], dt) for n, dt in param_args])
            except ValueError:
                return None
            return [o if isinstance(o, np.ndarray) else np.asarray(o, dtype) for o in out]

        run.kernel = kernel  # type: ignore[attr-defined]  (for tests and the curious)
        run.quick = quick  # type: ignore[attr-defined]
        return run

    def train_step(self, model: Any, optimizer: Any, inputs: Mapping[str, Any],
                   clip_grad_norm: float | None = None,
                   clip_grad_value: float | None = None) -> float:
        """Forward, backward, clipping and `optimizer`'s update in one compiled call."""
        return self.trainer(model, optimizer).step(model, optimizer, inputs, clip_grad_norm,
                                                   clip_grad_value)

    def trainer(self, model: Any, optimizer: Any) -> Trainer:
        """The Trainer of `model` for `optimizer` (built once per optimizer kind). The last
        one is reused without asking for the update lines again while the optimizer's
        hyper-parameters and flags are what they were (the lines depend on nothing else)."""
        sig = (tuple(optimizer.hyper.values()),
               tuple([v for v in vars(optimizer).values() if type(v) is bool]))
        last = self._last
        if last is not None and last[0] is optimizer and last[1] == sig and last[3] is model:
            return last[2]
        lines = tuple(optimizer.update_lines())
        key = (id(optimizer), lines, tuple(optimizer.slots))
        trainer = self._trainers.get(key)
        if trainer is None or trainer.optimizer is not optimizer:
            trainer = self._trainers[key] = Trainer(self, model, optimizer, lines)
            while len(self._trainers) > 4:  # e.g. a learning-rate finder's many optimizers
                self._trainers.pop(next(iter(self._trainers)))
        self._last = (optimizer, sig, trainer, model)
        return trainer

    def train_epoch(self, model: Any, optimizer: Any, feeds: Mapping[str, np.ndarray],
                    batched: set[str], order: np.ndarray, starts: np.ndarray,
                    hyper: np.ndarray, losses: np.ndarray, clip_grad_norm: float | None = None,
                    clip_grad_value: float | None = None) -> tuple[int, float]:
        """Steps j of one compiled call: the rows order[starts[j]:starts[j + 1]] of the
        arrays in `feeds` (by node id; the inputs in `batched` are gathered by rows),
        hyper-parameters hyper[j] (in optimizer.hyper's order). Stops after a non-finite
        loss; returns (steps done, the sum of loss * rows); losses[j] gets each loss."""
        from graphc.backends.epoch import EpochRunner, clip_args

        trainer = self.trainer(model, optimizer)
        flags = tuple(i in batched for _, i, _, _ in trainer.inputs)
        runner = trainer.epochs.get(flags)
        if runner is None:
            runner = trainer.epochs[flags] = EpochRunner(trainer, self.cache_dir, flags)
        arrays = [_array(feeds[i], dt) for _, i, dt, _ in trainer.inputs]
        arrays = [a.reshape(1) if a.ndim == 0 else a for a in arrays]
        if trainer.state.slots is not optimizer.state:
            trainer.state.slots = optimizer.state
        trainer.state.bind(model.params)
        norm, value = clip_args(clip_grad_norm, clip_grad_value)
        order = np.ascontiguousarray(order, dtype=np.int64)
        starts = np.ascontiguousarray(starts, dtype=np.int64)
        hyper = np.ascontiguousarray(hyper, dtype=np.float64)
        done, total = runner.run(arrays, order, starts, hyper, optimizer.t, norm, value,
                                 losses)
        optimizer.t += int(done)
        return int(done), float(total)


def _slot_arrays(slots: Mapping[str, Mapping[str, np.ndarray]]) -> Any:
    return (a for per_param in slots.values() for a in per_param.values())


class Trainer:
    """The fused train step of one model for one optimizer (and its update lines)."""

    def __init__(self, backend: CpuBackend, model: Any, optimizer: Any, lines: tuple):
        self.optimizer = optimizer
        prog = self.program = model.grad_program(())
        results = [prog.loss, *(prog.grads[name] for name in prog.params)]
        training = Training(type(optimizer).__name__, list(lines), tuple(optimizer.slots),
                            dict.fromkeys(optimizer.hyper, 0.0), dict(optimizer.slot_init))
        key = (id(prog), model.dtype, lines, training.slots, tuple(training.hyper))
        built = backend._built.get(key)
        if built is None or built[0] is not prog:  # a new optimizer of a kind seen before
            entry = Entry("train_step", prog, results, training)  # reuses the module
            writer = KernelWriter(entry, model.dtype)
            built = backend._built[key] = (prog, writer, backend.load(prog.name, model.dtype,
                                                                      [entry]))
            while len(backend._built) > 8:
                backend._built.pop(next(iter(backend._built)))
        _, writer, self.module = built
        self.writer = writer
        self.cache_dir = backend.cache_dir
        self.epochs: dict[tuple[bool, ...], Any] = {}  # epoch drivers by batched inputs
        self.kernel = Kernel(self.module, "train_step")
        self.hyper = list(training.hyper)
        self.inputs = [(prog[i].name, i, _dtype_of(prog[i].dtype, model.dtype),
                        tuple(prog[i].shape)) for i in writer.inputs]
        self.ready = [(name, dt, shape) for name, _, dt, shape in self.inputs]  # ready_arrays
        self.state = self.module.TrainState(None, slots=optimizer.state)
        # for the direct call: where each dim is read (input, axis), 0-d inputs as 1-d
        self.dim_at = [(writer.inputs.index(i), axis) for i, axis in writer.plan.dims.values()]
        self.scalar = [k for k, i in enumerate(writer.inputs) if prog[i].shape == ()]
        self._ws: dict[tuple, tuple] = {}
        self._bound: Any = None  # the params dict last bound, its arrays, the slot arrays
        self._views: list[np.ndarray] = []
        self._slots: list[np.ndarray] = []

    def arrays(self, model: Any, inputs: Mapping[str, Any]) -> list[np.ndarray]:
        """The inputs as the kernel takes them: as given when they already are (about a
        microsecond), else checked and converted by graphc's own checks."""
        out = ready_arrays(self.ready, inputs)
        if out is not None:
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
            if self.kernel.fresh:  # the first call goes through the module (cache checks)
                loss = self.kernel(model.params, self.state, arrays,
                                   tuple([h[k] for k in self.hyper]), float(t), norm, value)
            else:
                loss = self.call(model, arrays, [h[k] for k in self.hyper], t, norm, value)
        except ValueError:
            evaluate(self.program, model.feeds(self.program, inputs), model.dtype)
            raise
        optimizer.t = t
        return float(loss)

    def workspace(self, arrays: list[np.ndarray]) -> tuple:
        """The kernel's workspace for inputs of these shapes (kept for a few shapes)."""
        key = tuple([a.shape for a in arrays])
        ws = self._ws.get(key)
        if ws is None:
            if len(self._ws) > 8:
                self._ws.pop(next(iter(self._ws)))
            ws = self._ws[key] = self.epoch_module().workspaces(*arrays)
        return ws

    def epoch_module(self) -> ModuleType:
        from graphc.backends.epoch import EpochRunner

        flags = (True,) * len(self.inputs)
        if flags not in self.epochs:
            self.epochs[flags] = EpochRunner(self, self.cache_dir, flags)
        return self.epochs[flags].module

    def call(self, model: Any, arrays: list[np.ndarray], hyper: list[float], t: int,
             norm: float, value: float) -> float:
        """The kernel called directly: what train_step_arrays does, with the workspace
        and the dims' places looked up once per shape."""
        for k in self.scalar:
            arrays[k] = arrays[k].reshape(1)
        p, state = model.params, self.state
        if (p is not self._bound or not all(map(operator.is_, p.values(), self._views))
                or (self._slots and not all(map(operator.is_, _slot_arrays(state.slots),
                                                self._slots)))):
            state.bind(p)  # a param or slot array was replaced: copy it in, rebind
            self._bound, self._views = p, list(p.values())
            self._slots = list(_slot_arrays(state.slots))
        return self.module.train_step_kernel(
            *[arrays[k].shape[axis] for k, axis in self.dim_at], *arrays, *self.state.args,
            *self.workspace(arrays), *hyper, float(t), norm, value)
