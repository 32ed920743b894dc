"""Input coercion, in one place: user values -> checked arrays of a Program's inputs.

Model.feeds and data.prepare both call `bind_inputs`; it sits below both (and below the
backends) so that every caller checks inputs with the same messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graphc.errors import InputError, did_you_mean
from graphc.ir import FLOAT, Program, Shape


def bind_inputs(graph: Any, program: Program, inputs: Mapping[str, Any],
                dtype: np.dtype, bound: dict[str, tuple[int, str]] | None = None
                ) -> dict[str, np.ndarray]:
    """Check and convert input arrays, binding symbolic dims consistently (`bound`, when
    given, receives each dim's size and the input it was read from); inputs not given
    take the spec's default "value" from `graph.inputs`."""
    for name in inputs:
        if name not in program.inputs:
            hint = did_you_mean(name, program.inputs)
            raise InputError(f"unknown input {name!r}"
                             + (f" ({hint})" if hint else f"; inputs: {', '.join(program.inputs)}"))
    used = _used(program)
    dims: dict[str, tuple[int, str]] = {} if bound is None else bound
    out = {}
    for name, node_id in program.inputs.items():
        if node_id not in used and name not in inputs and node_id != program.loss \
                and node_id not in program.outputs.values():  # an output "x" is fed too
            continue
        if name in inputs:
            value = inputs[name]
        elif "value" in graph.inputs[name]:
            value = graph.inputs[name]["value"]
        else:
            raise InputError(f"missing input {name!r} (pass {name}=... or give the input a "
                             f"default \"value\" in the spec)")
        node = program[node_id]
        out[node_id] = coerce(name, value, node.dtype, node.shape, dtype, dims)
    return out


_USED: dict[int, tuple[Program, set[str]]] = {}


def _used(program: Program) -> set[str]:
    """The ids the program's nodes read, computed once per program (not once per call)."""
    hit = _USED.get(id(program))
    if hit is None or hit[0] is not program:
        if len(_USED) > 256:
            _USED.clear()
        hit = _USED[id(program)] = (program, {a for n in program for a in n.args})
    return hit[1]


def coerce(name: str, value: Any, kind: str, shape: Shape, dtype: np.dtype,
           dims: dict[str, tuple[int, str]]) -> np.ndarray:
    """`value` as an array for input `name` (`kind` FLOAT or an int dtype) of `shape`,
    binding its symbolic dims in `dims` (size, the input that set it); one InputError
    naming the input and the axis for anything that does not fit."""
    try:
        raw = np.asarray(value)
    except (ValueError, TypeError):
        raise InputError(f"input {name!r}: not a number or a regular array") from None
    if raw.dtype.kind not in "biuf":
        raise InputError(f"input {name!r}: expected numbers, got {raw.dtype}")
    if kind == FLOAT:
        arr = raw.astype(dtype, copy=False)
    else:
        if raw.dtype.kind == "f" and not np.all(np.mod(raw, 1) == 0):
            raise InputError(f"input {name!r} holds integer labels; got non-integers")
        arr = raw.astype(kind, copy=False)
    want = "[" + ", ".join(map(str, shape)) + "]"  # as the generated module says it
    if arr.ndim != len(shape):
        axes = "axis" if arr.ndim == 1 else "axes"
        raise InputError(f"input {name!r}: expected shape {want} ({len(shape)} axes), "
                         f"got {list(arr.shape)} ({arr.ndim} {axes})")
    for axis, (d, got) in enumerate(zip(shape, arr.shape)):
        if isinstance(d, int):
            if d != got:
                raise InputError(f"input {name!r}: expected shape {want}, got "
                                 f"{list(arr.shape)}: axis {axis} is {got}, the model wants {d}")
        elif d in dims and dims[d][0] != got:
            raise InputError(f"input {name!r}: expected shape {want}, got {list(arr.shape)}: "
                             f"axis {axis} ({d}) is {got}, but {d} is {dims[d][0]} in input "
                             f"{dims[d][1]!r}")
        else:
            dims[d] = (got, name)
    return arr


def ready_arrays(wanted: Sequence[tuple[str, np.dtype, Shape]],
                 inputs: Mapping[str, Any]) -> list[np.ndarray] | None:
    """The inputs as they are, when every one already is what a kernel takes (an ndarray
    of the dtype, C-ordered, writable, of the shape with symbolic dims consistent), in
    the order of `wanted` (name, dtype, shape); else None: then `bind_inputs` checks and
    converts them. The fast path of a train step, about a microsecond."""
    if len(inputs) != len(wanted):
        return None
    dims: dict[str, int] = {}
    out = []
    for name, dt, shape in wanted:
        a = inputs.get(name)
        if (type(a) is not np.ndarray or a.dtype != dt or a.ndim != len(shape)
                or not a.flags.c_contiguous or not a.flags.writeable):
            return None
        for d, n in zip(shape, a.shape):
            if (d != n) if type(d) is int else (dims.setdefault(d, n) != n):
                return None
        out.append(a)
    return out
