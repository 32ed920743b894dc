"""Optimizers with PyTorch's definitions, argument names and defaults.

An optimizer's update is a few scalar statements per parameter element (`update_lines`),
written in the same expression language as elementwise ops. The NumPy path runs them
vectorized; compiled backends paste them into the fused train step's loop. Hyper-parameters
(`hyper`) are runtime scalars, so schedules change `lr` without recompiling.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from graphc.errors import SpecError, did_you_mean
from graphc.ops.registry import EXPR_FUNCTIONS


def clip_gradients(grads: dict[str, np.ndarray], max_norm: float | None = None,
                   max_value: float | None = None) -> float:
    """Clip in place as torch.nn.utils does (value first, then global norm); returns the
    global norm before norm clipping."""
    if max_value is not None:
        for k in grads:
            grads[k] = np.clip(grads[k], -max_value, max_value)
    norm = math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))
    if max_norm is not None:
        coef = max_norm / (norm + 1e-6)
        if coef < 1.0:
            for k in grads:
                grads[k] = grads[k] * np.asarray(coef, dtype=grads[k].dtype)
    return norm


class Optimizer:
    """Base class. Subclasses set `slots` (per-param state arrays), `hyper` (runtime
    scalars) and `update_lines()`.

    Statements (`name = expr`) read `p` (param), `g` (gradient), the slots, the hyper names
    and `t` (the step number, starting at 1) and assign `p` and the slots; any other name
    they assign is a temporary. Choices made by constructor flags (nesterov, amsgrad,
    centered, a zero momentum or weight decay) are resolved in Python when the lines are
    generated.
    State arrays are created by `init_state`: zeros, or `slot_init[slot]` where given.
    """

    slots: tuple[str, ...] = ()
    slot_init: dict[str, float] = {}
    # hyper-parameters that were 0 at construction and whose statements and slots are
    # therefore left out (a momentum buffer costs memory); they must stay 0. Statements of
    # other hyper-parameters that are 0 (weight decay) are left out too, unless `full`:
    # in-process backends recompile when that changes, a standalone module (full=True)
    # keeps them so that they can change there without recompiling.
    fixed_zero: tuple[str, ...] = ()
    name = ""  # the spec's name for it, e.g. "adam"

    def __init__(self, **hyper: float):
        self.hyper: dict[str, float] = {k: float(v) for k, v in hyper.items()}
        self.state: dict[str, dict[str, np.ndarray]] = {}  # param name -> slot -> array
        self.t = 0  # steps taken
        self.initial_lr: float | None = None  # set by the first schedule, as torch does
        self._code: dict[tuple[str, ...], Any] = {}
        self._lines: dict[Any, tuple[str, ...]] = {}

    def __init_subclass__(cls, **kwargs: Any):
        # update_lines() depends only on the flags and on which hyper-parameters are zero;
        # backends ask for it every step, so each distinct answer is made once
        super().__init_subclass__(**kwargs)
        make = cls.__dict__.get("update_lines")
        if make is None:
            return

        def update_lines(self: Optimizer, full: bool = False) -> list[str]:
            for k in self.fixed_zero:
                if self.hyper[k] != 0.0:
                    raise ValueError(f"{k} was 0 when this {type(self).__name__} was built, so "
                                     f"its update keeps no {k} buffer; build a new optimizer "
                                     f"with {k}={self.hyper[k]:g} (or compile again)")
            # tuples of lists, not of generators: a generator's tuple is resized, which
            # keeps the interpreter's tuple free lists churning (tracemalloc sees growth)
            key = (make, tuple([v for v in vars(self).values() if isinstance(v, bool)]),
                   self.fixed_zero, full or tuple([v == 0.0 for v in self.hyper.values()]))
            lines = self._lines.get(key)
            if lines is None:
                lines = self._lines[key] = tuple(make(self, full))
            return list(lines)

        update_lines.__doc__ = make.__doc__
        cls.update_lines = update_lines

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"

    @property
    def lr(self) -> float:
        return self.hyper["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        self.hyper["lr"] = float(value)

    def options(self) -> dict[str, Any]:
        """The constructor's arguments as they are now (lr included), by PyTorch's names."""
        return {k: self.hyper[k] for k in self.hyper}

    def to_spec(self) -> dict[str, Any]:
        """The spec's `train.optimizer` object that builds this optimizer again."""
        return {"name": self.name, **self.options()}

    def update_lines(self, full: bool = False) -> list[str]:
        raise NotImplementedError  # every concrete optimizer defines its statements

    def init_state(self, params: Mapping[str, np.ndarray]) -> None:
        for name, p in params.items():
            if name not in self.state:
                self.state[name] = {s: np.full_like(p, self.slot_init.get(s, 0.0))
                                    for s in self.slots}

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """Update `params` in place with NumPy (the reference of the fused update)."""
        self.init_state(params)
        self.t += 1
        lines = tuple(self.update_lines())
        if lines not in self._code:
            self._code[lines] = compile("\n".join(lines), f"<{type(self).__name__}>", "exec")
        code = self._code[lines]
        for name, p in params.items():
            env = {**EXPR_FUNCTIONS, **self.hyper, "t": float(self.t), "p": p,
                   "g": np.asarray(grads[name], dtype=p.dtype), **self.state[name]}
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                exec(code, env)
            p[...] = env["p"]
            for s in self.slots:
                self.state[name][s][...] = env[s]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Arrays by key: `<param>/<slot>`, `t`, and `hyper/<name>` (savable with np.savez)."""
        out = {f"{name}/{slot}": arr for name, slots in self.state.items()
               for slot, arr in slots.items()}
        out["t"] = np.asarray(self.t)
        out.update({f"hyper/{k}": np.asarray(v) for k, v in self.hyper.items()})
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned (copies the arrays)."""
        self.t = int(state["t"])
        for key, value in state.items():
            head, _, tail = key.rpartition("/")
            if head == "hyper":
                self.hyper[tail] = float(value)
            elif head and tail in self.slots:
                self.state.setdefault(head, {})[tail] = np.array(value)


def _check(**values: float) -> None:
    for k, v in values.items():
        if not v >= 0.0:  # also catches NaN
            raise ValueError(f"{k} must be >= 0, got {v}")


def _check_betas(betas: Any) -> tuple[float, float]:
    try:
        b1, b2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise ValueError(f"betas must be two numbers such as (0.9, 0.999), got {betas!r}") \
            from None
    for i, b in enumerate((b1, b2)):
        if not 0.0 <= b < 1.0:
            raise ValueError(f"betas[{i}] must lie in [0, 1), got {b}")
    return b1, b2


def _maximize(flag: bool) -> list[str]:
    return ["g = -g"] if flag else []


class SGD(Optimizer):
    """torch.optim.SGD: with momentum, the buffer starts at the first gradient. The
    lectures' moving average `V = beta V + (1 - beta) g` is momentum=beta, dampening=beta."""

    slots = ("momentum_buffer",)
    name = "sgd"

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0, maximize: bool = False):
        _check(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay)
        self.nesterov, self.maximize = bool(nesterov), bool(maximize)
        if momentum == 0:
            self.slots, self.fixed_zero = (), ("momentum",)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "nesterov": self.nesterov, "maximize": self.maximize}

    def update_lines(self, full: bool = False) -> list[str]:
        lines = _maximize(self.maximize)
        if full or self.hyper["weight_decay"]:
            lines.append("g = g + weight_decay * p")
        if not self.fixed_zero and (full or self.hyper["momentum"]):
            lines.append("momentum_buffer = where(t == 1.0, g, "
                         "momentum * momentum_buffer + (1.0 - dampening) * g)")
            # full: momentum may be set to 0 later, when torch uses g itself
            lines.append("g = g + momentum * momentum_buffer" if self.nesterov
                         else "g = where(momentum == 0.0, g, momentum_buffer)" if full
                         else "g = momentum_buffer")
        lines.append("p = p - lr * g")
        return lines


class Adagrad(Optimizer):
    """torch.optim.Adagrad: per-element rates lr / sqrt(sum of squared gradients)."""

    slots = ("state_sum",)
    name = "adagrad"

    def __init__(self, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10,
                 maximize: bool = False):
        _check(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
               initial_accumulator_value=initial_accumulator_value)
        super().__init__(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps)
        self.maximize = bool(maximize)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.slot_init = {"state_sum": self.initial_accumulator_value}

    def options(self) -> dict[str, Any]:
        return {**super().options(), "initial_accumulator_value":
                self.initial_accumulator_value, "maximize": self.maximize}

    def update_lines(self, full: bool = False) -> list[str]:
        lines = _maximize(self.maximize)
        if full or self.hyper["weight_decay"]:
            lines.append("g = g + weight_decay * p")
        return lines + ["state_sum = state_sum + g * g",
                        "clr = lr / (1.0 + (t - 1.0) * lr_decay)",
                        "p = p - clr * g / (sqrt(state_sum) + eps)"]


class RMSprop(Optimizer):
    """torch.optim.RMSprop: divide by a moving RMS of the gradient (centered: by its
    moving standard deviation); with momentum, a buffer of those steps."""

    name = "rmsprop"

    def __init__(self, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 maximize: bool = False):
        _check(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum)
        super().__init__(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                         momentum=momentum)
        self.centered, self.maximize = bool(centered), bool(maximize)
        self.slots = ("square_avg", *(("momentum_buffer",) if momentum else ()),
                      *(("grad_avg",) if centered else ()))
        self.fixed_zero = () if momentum else ("momentum",)

    def options(self) -> dict[str, Any]:
        return {**super().options(), "centered": self.centered, "maximize": self.maximize}

    def update_lines(self, full: bool = False) -> list[str]:
        lines = _maximize(self.maximize)
        if full or self.hyper["weight_decay"]:
            lines.append("g = g + weight_decay * p")
        lines.append("square_avg = alpha * square_avg + (1.0 - alpha) * g * g")
        if self.centered:
            lines += ["grad_avg = grad_avg + (1.0 - alpha) * (g - grad_avg)",
                      "avg = sqrt(square_avg - grad_avg * grad_avg) + eps"]
        else:
            lines.append("avg = sqrt(square_avg) + eps")
        if not self.fixed_zero and (full or self.hyper["momentum"]):
            lines += ["momentum_buffer = momentum * momentum_buffer + g / avg",
                      "p = p - lr * momentum_buffer"]
        else:
            lines.append("p = p - lr * g / avg")
        return lines


class Adam(Optimizer):
    """torch.optim.Adam: bias-corrected moving averages of g and g²; weight_decay is an
    L2 term added to the gradient (AdamW decouples it)."""

    name = "adam"
    decoupled = False

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        _check(lr=lr, eps=eps, weight_decay=weight_decay)
        beta1, beta2 = _check_betas(betas)
        super().__init__(lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay)
        self.amsgrad, self.maximize = bool(amsgrad), bool(maximize)
        self.decoupled = bool(decoupled_weight_decay) or type(self).decoupled
        self.slots = ("exp_avg", "exp_avg_sq", *(("max_exp_avg_sq",) if amsgrad else ()))

    @property
    def betas(self) -> tuple[float, float]:
        return self.hyper["beta1"], self.hyper["beta2"]

    def options(self) -> dict[str, Any]:
        h = self.hyper
        out = {"lr": h["lr"], "betas": [h["beta1"], h["beta2"]], "eps": h["eps"],
               "weight_decay": h["weight_decay"], "amsgrad": self.amsgrad,
               "maximize": self.maximize}
        if self.decoupled and not type(self).decoupled:
            out["decoupled_weight_decay"] = True
        return out

    def update_lines(self, full: bool = False) -> list[str]:
        lines = _maximize(self.maximize)
        if full or self.hyper["weight_decay"]:
            lines.append("p = p * (1.0 - lr * weight_decay)" if self.decoupled
                         else "g = g + weight_decay * p")
        lines += ["exp_avg = exp_avg + (1.0 - beta1) * (g - exp_avg)",
                  "exp_avg_sq = beta2 * exp_avg_sq + (1.0 - beta2) * g * g",
                  "bias_correction1 = 1.0 - beta1 ** t",
                  "bias_correction2 = 1.0 - beta2 ** t"]
        if self.amsgrad:
            lines += ["max_exp_avg_sq = maximum(max_exp_avg_sq, exp_avg_sq)",
                      "denom = sqrt(max_exp_avg_sq) / sqrt(bias_correction2) + eps"]
        else:
            lines.append("denom = sqrt(exp_avg_sq) / sqrt(bias_correction2) + eps")
        lines.append("p = p - lr / bias_correction1 * exp_avg / denom")
        return lines


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay, p <- p (1 - lr wd) first."""

    name = "adamw"
    decoupled = True

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 maximize: bool = False):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    c.name: c for c in (SGD, Adagrad, RMSprop, Adam, AdamW)}


def from_spec(spec: Any, place: str = "train.optimizer", **overrides: Any) -> Optimizer:
    """An optimizer from the spec's `train.optimizer` object ({"name": "adam", "lr": 1e-3}),
    or from a bare name ("adam"); `overrides` (e.g. lr from the command line) win.

    Bad names and arguments raise SpecError naming `place`, with a did-you-mean.
    """
    if isinstance(spec, Optimizer):
        for k, v in overrides.items():
            spec.hyper[k] = float(v)
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise SpecError(f"expected an object such as {{\"name\": \"adam\", \"lr\": 0.001}}, "
                        f"got {spec!r}", place)
    options = {**spec, **{k: v for k, v in overrides.items() if v is not None}}
    name = options.pop("name", None)
    if not isinstance(name, str):
        raise SpecError("needs a \"name\"", place,
                        f"one of: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS.get(name.lower())
    if cls is None:
        raise SpecError(f"unknown optimizer {name!r}", f"{place}.name",
                        did_you_mean(name.lower(), OPTIMIZERS)
                        or f"choose one of: {', '.join(OPTIMIZERS)}")
    accepted = inspect.signature(cls.__init__).parameters
    for key, value in options.items():
        if key not in accepted or key == "self":
            names = [k for k in accepted if k != "self"]
            raise SpecError(f"{cls.__name__} has no argument {key!r}", f"{place}.{key}",
                            did_you_mean(key, names) or f"arguments: {', '.join(names)}")
        default = accepted[key].default
        if isinstance(default, bool) and not isinstance(value, bool):
            raise SpecError(f"expected true or false, got {value!r}", f"{place}.{key}")
        if isinstance(default, float) and (isinstance(value, bool)
                                           or not isinstance(value, (int, float))):
            raise SpecError(f"expected a number, got {value!r}", f"{place}.{key}")
        if key == "lr" and not (value > 0 and math.isfinite(value)):
            raise SpecError(f"the learning rate must be a positive number, got {value!r}",
                            f"{place}.lr", "e.g. 0.001")
    try:
        return cls(**options)
    except ValueError as e:
        key = str(e).split(" ", 1)[0].split("[")[0]  # messages start with the argument
        raise SpecError(str(e), f"{place}.{key}" if key in options else place) from None
