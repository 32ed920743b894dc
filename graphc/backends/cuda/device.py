"""Training state that lives on the device: allocated once, touched by kernels only.

Params are slices of one flat buffer `P` (gradients of `G`, optimizer slots rows of
`S`), so the optimizer's update is one kernel over all of them and cuBLAS writes a
weight's gradient straight into its slice. A step copies the batch into preallocated
input buffers and the loss out; `read` and `write` are the only other copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


class DeviceState:
    """Params, gradients, slots, hyper-parameters and clipping scalars on the device.

    `layout`: (name, shape) per param; `H` holds `hyper` (in order) then `t`; `C` holds
    (max_norm, max_value, sum of squared gradients), as the update kernel reads them.
    """

    def __init__(self, cuda: Any, layout: Sequence[tuple[str, tuple[int, ...]]],
                 dtype: str = "float32", slots: Sequence[str] = (),
                 hyper: Sequence[str] = (), slot_init: Mapping[str, float] | None = None):
        self.cuda, self.dtype = cuda, np.dtype(dtype)
        self.layout = [(name, tuple(shape)) for name, shape in layout]
        self.offsets: dict[str, tuple[int, int]] = {}
        n = 0
        for name, shape in self.layout:
            size = int(np.prod(shape, dtype=np.int64))
            self.offsets[name] = (n, n + size)
            n += size
        self.size, self.slots, self.hyper = n, tuple(slots), tuple(hyper)
        self.slot_init = dict(slot_init or {})
        self.P = cuda.device_array(max(n, 1), self.dtype)
        self.G = cuda.to_device(np.zeros(max(n, 1), self.dtype))
        init = np.zeros((max(len(self.slots), 1), max(n, 1)), self.dtype)
        for k, s in enumerate(self.slots):
            init[k] = self.slot_init.get(s, 0.0)
        self.S = cuda.to_device(init)
        self.H = cuda.to_device(np.zeros(len(self.hyper) + 1, self.dtype))
        self.C = cuda.to_device(np.array([np.inf, np.inf, 0.0], self.dtype))
        self._host_h = np.zeros(len(self.hyper) + 1, self.dtype)
        self.inputs: dict[str, Any] = {}  # staging buffers by input name

    # views the kernels take --------------------------------------------------------
    def param(self, name: str) -> Any:
        """The device view of one param, shaped (a 1-element view for a scalar)."""
        return self._view(self.P, name)

    def grad(self, name: str) -> Any:
        return self._view(self.G, name)

    def slot(self, name: str, slot: str) -> Any:
        start, stop = self.offsets[name]
        row = self.S[self.slots.index(slot)]
        return _shaped(row[start:stop], self._shape(name))

    def _view(self, buf: Any, name: str) -> Any:
        start, stop = self.offsets[name]
        return _shaped(buf[start:stop], self._shape(name))

    def _shape(self, name: str) -> tuple[int, ...]:
        return dict(self.layout)[name]

    # host <-> device -----------------------------------------------------------------
    def write(self, params: Mapping[str, np.ndarray]) -> None:
        """Copy params in (one transfer of the packed buffer)."""
        host = self.P.copy_to_host()
        for name, shape in self.layout:
            start, stop = self.offsets[name]
            value = np.asarray(params[name], self.dtype)
            if value.shape != shape:
                raise ValueError(f"param {name!r} has shape {list(value.shape)}, "
                                 f"expected {list(shape)}")
            host[start:stop] = value.reshape(-1)
        self.P.copy_to_device(host)

    def read(self) -> dict[str, np.ndarray]:
        """Every param, copied to the host (one transfer)."""
        host = self.P.copy_to_host()
        return {name: host[a:b].reshape(shape).copy()
                for (name, shape), (a, b) in zip(self.layout, self.offsets.values())}

    def read_slots(self) -> dict[str, dict[str, np.ndarray]]:
        host = self.S.copy_to_host()
        return {name: {s: host[k, a:b].reshape(shape).copy() for k, s in enumerate(self.slots)}
                for (name, shape), (a, b) in zip(self.layout, self.offsets.values())}

    def set_hyper(self, values: Mapping[str, float], t: float,
                  max_norm: float | None = None, max_value: float | None = None,
                  stream: Any = 0) -> None:
        """The update's scalars for the next step: one small copy each."""
        h = self._host_h
        for k, name in enumerate(self.hyper):
            h[k] = values[name]
        h[-1] = t
        self.H.copy_to_device(h, stream=stream)
        c = np.array([np.inf if max_norm is None else max_norm,
                      np.inf if max_value is None else max_value, 0.0], self.dtype)
        self.C.copy_to_device(c, stream=stream)

    def stage(self, name: str, array: np.ndarray, stream: Any = 0) -> Any:
        """Copy one input batch into its device buffer, reallocated only when its shape
        or dtype changes (a last, smaller batch); returns the device array."""
        buf = self.inputs.get(name)
        if buf is None or buf.shape != array.shape or buf.dtype != array.dtype:
            buf = self.inputs[name] = self.cuda.device_array(array.shape, array.dtype)
        buf.copy_to_device(np.ascontiguousarray(array), stream=stream)
        return buf


def _shaped(view: Any, shape: tuple[int, ...]) -> Any:
    return view.reshape(shape) if shape else view


def launch_1d(n: int, block: int = 256, max_blocks: int = 1024) -> tuple[int, int]:
    """A grid for a grid-stride kernel over `n` elements: enough blocks, capped."""
    return max(1, min(max_blocks, (n + block - 1) // block)), block
