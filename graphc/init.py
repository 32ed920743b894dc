"""Parameter initializers, seeded per parameter name so that adding a parameter
does not change the others' initial values.

Fans follow graphc's layout: a dense weight is [in, out] (used as x @ W), so
fan_in = shape[0]; for more than two axes PyTorch's [out, in, *kernel] is assumed.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np

from graphc.errors import did_you_mean
from graphc.ir import Shape

NAMES = ("zeros", "ones", "normal", "uniform", "xavier_uniform", "xavier_normal",
         "he_uniform", "he_normal", "orthogonal")
OPTIONS = {"normal": {"mean": 0.0, "std": 1.0}, "uniform": {"low": 0.0, "high": 1.0},
           "xavier_uniform": {"gain": 1.0}, "xavier_normal": {"gain": 1.0},
           "he_uniform": {"gain": math.sqrt(2.0)}, "he_normal": {"gain": math.sqrt(2.0)},
           "orthogonal": {"gain": 1.0}, "zeros": {}, "ones": {}}


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def check(init: Any, shape: Shape) -> None:
    """Raise ValueError saying what is wrong with an init for a param of this shape."""
    if not all(isinstance(d, int) for d in shape):
        raise ValueError(f"parameter shapes must be integers, got {list(shape)}")
    if isinstance(init, (int, float, list)) and not isinstance(init, bool):
        try:
            values = np.asarray(init, dtype=float)
        except (ValueError, TypeError, OverflowError):
            raise ValueError("init values are not a regular nested list of numbers") from None
        if isinstance(init, list) and values.shape != tuple(shape):
            raise ValueError(f"init values have shape {list(values.shape)}, the param "
                             f"{list(shape)}")
        return
    name, opts = _split(init)
    if name not in OPTIONS:
        hint = did_you_mean(name, NAMES)
        raise ValueError(f"unknown initializer {name!r} ({hint or 'known: ' + ', '.join(NAMES)})")
    unknown = set(opts) - set(OPTIONS[name])
    if unknown:
        raise ValueError(f"initializer {name!r} takes {sorted(OPTIONS[name]) or 'no options'}, "
                         f"not {sorted(unknown)}")
    for key, v in opts.items():  # rng.normal and friends raise TypeError on a string
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"option {key!r} of initializer {name!r} must be a finite number, "
                             f"not {v!r}")
    if opts.get("std", 0) < 0:
        raise ValueError(f"option 'std' of initializer {name!r} must not be negative")
    if name == "orthogonal" and len(shape) < 2:
        raise ValueError("orthogonal init needs at least two dimensions")


def _split(init: Any) -> tuple[str, dict]:
    if isinstance(init, str):
        return init, {}
    if isinstance(init, dict) and isinstance(init.get("name"), str):
        return init["name"], {k: v for k, v in init.items() if k != "name"}
    raise ValueError(f"init must be a number, a nested list, an initializer name or "
                     f"{{\"name\": ...}}, not {init!r}")


def initialize(init: Any, shape: tuple[int, ...], seed: int, name: str,
               dtype: np.dtype) -> np.ndarray:
    """A fresh array for one parameter."""
    if isinstance(init, (int, float, list)) and not isinstance(init, bool):
        return np.broadcast_to(np.asarray(init, dtype=dtype), shape).copy()
    kind, opts = _split(init)
    o = {**OPTIONS[kind], **opts}
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    fan_in, fan_out = fans(shape)
    if kind == "zeros":
        out = np.zeros(shape)
    elif kind == "ones":
        out = np.ones(shape)
    elif kind == "normal":
        out = rng.normal(o["mean"], o["std"], shape)
    elif kind == "uniform":
        out = rng.uniform(o["low"], o["high"], shape)
    elif kind in ("xavier_uniform", "xavier_normal"):
        std = o["gain"] * math.sqrt(2.0 / (fan_in + fan_out))
        out = (rng.uniform(-std * math.sqrt(3), std * math.sqrt(3), shape)
               if kind == "xavier_uniform" else rng.normal(0, std, shape))
    elif kind in ("he_uniform", "he_normal"):
        std = o["gain"] / math.sqrt(fan_in)
        out = (rng.uniform(-std * math.sqrt(3), std * math.sqrt(3), shape)
               if kind == "he_uniform" else rng.normal(0, std, shape))
    else:  # orthogonal, as torch.nn.init.orthogonal_ (QR of a Gaussian matrix)
        rows, cols = shape[0], math.prod(shape[1:])
        a = rng.normal(0, 1, (max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        out = o["gain"] * (q if rows >= cols else q.T).reshape(shape)
    return np.asarray(out, dtype=dtype)
