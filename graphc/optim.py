"""Optimizers with PyTorch's definitions, argument names and defaults.

An optimizer's update is a few scalar statements per parameter element (`update_lines`),
written in the same expression language as elementwise ops. The NumPy path runs them
vectorized; compiled backends paste them into the fused train step's loop. Hyper-parameters
(`hyper`) are runtime scalars, so schedules change `lr` without recompiling.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from graphc.ops.registry import EXPR_FUNCTIONS


def clip_gradients(grads: dict[str, np.ndarray], max_norm: float | None = None,
                   max_value: float | None = None) -> float:
    """Clip in place as torch.nn.utils does (value first, then global norm); returns the
    global norm before norm clipping."""
    if max_value is not None:
        for k in grads:
            grads[k] = np.clip(grads[k], -max_value, max_value)
    norm = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64)))
                             for g in grads.values())))
    if max_norm is not None:
        coef = max_norm / (norm + 1e-6)
        if coef < 1.0:
            for k in grads:
                grads[k] = grads[k] * np.asarray(coef, dtype=grads[k].dtype)
    return norm


class Optimizer:
    """Base class. Subclasses set `slots` (per-param state arrays, zero-initialized),
    `hyper` (runtime scalars) and `update_lines()`.

    Statements read `p` (param), `g` (gradient), the slots, the hyper names and `t`
    (the step number, starting at 1) and assign `p` and the slots.
    """

    slots: tuple[str, ...] = ()

    def __init__(self, **hyper: float):
        self.hyper: dict[str, float] = {k: float(v) for k, v in hyper.items()}
        self.state: dict[str, dict[str, np.ndarray]] = {}  # param name -> slot -> array
        self.t = 0  # steps taken

    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyper["lr"] = float(value)

    def update_lines(self) -> list[str]:
        raise NotImplementedError  # every concrete optimizer defines its statements

    def init_state(self, params: Mapping[str, np.ndarray]) -> None:
        for name, p in params.items():
            if name not in self.state:
                self.state[name] = {s: np.zeros_like(p) for s in self.slots}

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update `params` in place with NumPy (the reference of the fused update)."""
        self.init_state(params)
        self.t += 1
        code = compile("\n".join(self.update_lines()), f"<{type(self).__name__}>", "exec")
        for name, p in params.items():
            env = {**EXPR_FUNCTIONS, **self.hyper, "t": float(self.t), "p": p,
                   "g": np.asarray(grads[name], dtype=p.dtype), **self.state[name]}
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                exec(code, env)
            p[...] = env["p"]
            for s in self.slots:
                self.state[name][s][...] = env[s]

    def state_dict(self) -> dict[str, np.ndarray]:
        out = {f"{name}/{slot}": arr for name, slots in self.state.items()
               for slot, arr in slots.items()}
        out["t"] = np.asarray(self.t)
        return out


class SGD(Optimizer):
    """torch.optim.SGD: with momentum, the buffer starts at the first gradient."""

    slots = ("momentum_buffer",)

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError("lr, momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay)
        self.nesterov = nesterov
        if momentum == 0:
            self.slots = ()

    def update_lines(self) -> list[str]:
        h = self.hyper
        lines = ["g = g + weight_decay * p"] if h["weight_decay"] else []
        if h["momentum"]:
            lines.append("momentum_buffer = where(t == 1.0, g, "
                         "momentum * momentum_buffer + (1.0 - dampening) * g)")
            lines.append("g = g + momentum * momentum_buffer" if self.nesterov
                         else "g = momentum_buffer")
        lines.append("p = p - lr * g")
        return lines
