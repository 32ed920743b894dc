"""Device-resident training for the CUDA backend: a model's params, gradients and
optimizer slots live in a DeviceState between steps; `m.params` and `optimizer.state`
copy back only when read, and what the host changed goes in before the next step."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from graphc.backends.cuda.device import DeviceState
from graphc.backends.numpy_interp import evaluate
from graphc.errors import InputError
from graphc.ir import FLOAT


class _Synced(dict):
    """A dict whose values are host copies of device data: every read first copies
    the device's newer values in (`pull`), and marks the host as possibly changed, so
    the next step copies it back (`push`). Writes copy into the arrays in place."""

    def _bind(self, pull, push) -> _Synced:
        self._pull, self._push = pull, push
        self.device_newer = self.host_touched = False
        return self

    def _sync(self) -> None:
        if getattr(self, "device_newer", False):
            self.device_newer = False
            self._pull(self)
        self.host_touched = True

    def __getitem__(self, key):
        self._sync()
        return dict.__getitem__(self, key)

    def __setitem__(self, key, value) -> None:
        self._sync()
        super().__setitem__(key, value)  # ParamDict copies into the array in place

    def __iter__(self):
        self._sync()
        return dict.__iter__(self)

    def get(self, key, default=None):
        self._sync()
        return dict.get(self, key, default)

    def items(self):
        self._sync()
        return dict.items(self)

    def values(self):
        self._sync()
        return dict.values(self)

    def __repr__(self) -> str:
        self._sync()
        return dict.__repr__(self)

    def __eq__(self, other) -> bool:
        self._sync()
        return dict.__eq__(self, other)

    __hash__ = None  # type: ignore[assignment]

    def copy(self):
        self._sync()
        return dict(dict.items(self))

    def __reduce__(self):
        self._sync()
        return dict, (dict(dict.items(self)),)


def synced_params(params: dict) -> Any:
    """The model's ParamDict as a _Synced one (ParamDict's checks kept); one that another
    trainer holds is brought up to date from its device first."""
    if isinstance(params, _Synced):
        params._sync()
    base = next(c for c in type(params).__mro__ if not issubclass(c, _Synced))
    return type("DeviceParams", (_Synced, base), {})(dict.items(params))


class Trainer:
    """The train step of one model for one optimizer, on the device."""

    def __init__(self, backend: Any, model: Any, optimizer: Any, lines: tuple):
        from numba import cuda

        from graphc.backends.numba_source import Training

        self.optimizer = optimizer
        prog = self.program = model.grad_program(())
        dtype = self.dtype = model.dtype
        results = [prog.loss, *(prog.grads[name] for name in prog.params)]
        training = Training(type(optimizer).__name__, list(lines), tuple(optimizer.slots),
                            dict.fromkeys(optimizer.hyper, 0.0), dict(optimizer.slot_init))
        module = self.module = backend.load(prog.name, dtype,
                                            [("train_step", prog, results, training)])
        self.matmul = backend.matmul(module, dtype)
        layout = [(name, tuple(prog[i].shape)) for name, i in prog.params.items()]
        st = self.state = DeviceState(cuda, layout, dtype.name, optimizer.slots,
                                      list(optimizer.hyper), optimizer.slot_init)
        self.given: dict[str, Any] = {"P": st.P, "G": st.G, "S": st.S, "H": st.H, "C": st.C}
        outputs = module.TRAIN_STEP_OUT
        for (name, i), (out, _) in zip(prog.params.items(), outputs[1:]):
            self.given[i] = st.param(name)
            self.given[out] = st.grad(name)
        self.inputs = [(prog[i].name, i, dtype if prog[i].dtype == FLOAT
                        else np.dtype(prog[i].dtype)) for i in module.TRAIN_STEP_ARGS
                       if i not in prog.params.values()]
        self.buffers: dict = {}
        self.params: Any = None
        self.slots: Any = None

    def _pull_params(self, host: dict) -> None:
        for name, value in self.state.read().items():
            dict.__getitem__(host, name)[...] = value

    def _push_params(self, host: dict) -> None:
        self.state.write(dict(dict.items(host)))

    def _pull_slots(self, host: dict) -> None:
        for name, slots in self.state.read_slots().items():
            for s, value in slots.items():
                dict.__getitem__(host, name).setdefault(s, value)[...] = value

    def _push_slots(self, host: dict) -> None:
        st = self.state
        data = st.S.copy_to_host()
        for name, (start, stop) in st.offsets.items():
            for k, s in enumerate(st.slots):
                have = dict.get(host, name, {}).get(s)
                if have is not None:
                    data[k, start:stop] = np.asarray(have, st.dtype).reshape(-1)
        st.S.copy_to_device(data)

    def _bind(self, model: Any, optimizer: Any) -> None:
        """Make the device hold the host's params and slots (first step, or after the
        model's params or the optimizer's state were replaced)."""
        if model._params is not self.params:
            self.params = synced_params(model._params)._bind(self._pull_params,
                                                             self._push_params)
            self._push_params(self.params)
            model._params = self.params
        elif self.params.host_touched:
            self._push_params(self.params)
        self.params.host_touched = False
        if optimizer.state is not self.slots:
            if isinstance(optimizer.state, _Synced):
                optimizer.state._sync()
            host = {name: dict(dict.get(optimizer.state, name, {}))
                    for name, _ in self.state.layout}
            self._push_slots(host)
            self.slots = _Synced(host)._bind(self._pull_slots, self._push_slots)
            optimizer.state = self.slots
        elif self.slots.host_touched:
            self._push_slots(self.slots)
        self.slots.host_touched = False

    def step(self, model: Any, optimizer: Any, inputs: Mapping[str, Any], norm: float,
             value: float) -> float:
        prog = self.program
        x = {}
        for name, i, dt in self.inputs:
            a = inputs.get(name)
            if type(a) is not np.ndarray or a.dtype != dt:
                x = None
                break
            x[i] = a
        if x is None or len(inputs) != len(self.inputs):
            feeds = model.feeds(prog, inputs)
            x = {i: np.asarray(feeds[i], dt) for _, i, dt in self.inputs}
        self._bind(model, optimizer)
        t = optimizer.t + 1
        self.state.set_hyper(optimizer.hyper, t, norm, value)
        try:
            (loss,) = self.module.call("train_step", x, self.matmul, self.buffers,
                                       self.given, n_out=1, clip_norm=norm < np.inf)
        except ValueError as e:
            evaluate(prog, model.feeds(prog, inputs), model.dtype)
            raise InputError(str(e)) from None
        self.params.device_newer = self.slots.device_newer = True
        optimizer.t = t
        return float(loss)


