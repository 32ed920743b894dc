"""A check, not a transformation: elementwise broadcasts that put one symbolic dimension
on two axes of their result (`y [B]` times `score [B, 1]` is `[B, B]`), which is legal
NumPy but almost always a bug that leaves the loss quietly wrong. Warns; changes nothing."""

from __future__ import annotations

import warnings

from graphc.errors import ShapeWarning
from graphc.ir import Program, broadcast_shapes
from graphc.ops import REGISTRY


def _shape(shape) -> str:
    return "[" + ", ".join(map(str, shape)) + "]"


def _holds(shape, axes: list[int], ndim: int, dim: str) -> bool:
    """Whether `shape` (right-aligned to `ndim` axes) has `dim` on every one of `axes`."""
    offset = ndim - len(shape)
    return all(k >= offset and shape[k - offset] == dim for k in axes)


def squared_broadcasts(prog: Program, source: str | None = None) -> list[str]:
    """One message per elementwise node whose result repeats a symbolic dimension on axes
    that no single operand had it on together."""
    out = []
    for node in prog:
        op = REGISTRY.get(node.op)
        if op is None or op.kind != "elementwise" or len(node.args) < 2:
            continue
        shapes = [prog[a].shape for a in node.args]
        try:
            if broadcast_shapes(*shapes) != tuple(node.shape):
                continue
        except ValueError:
            continue
        for dim in dict.fromkeys(d for d in node.shape if isinstance(d, str)):
            axes = [k for k, d in enumerate(node.shape) if d == dim]
            if len(axes) < 2 or any(_holds(s, axes, len(node.shape), dim) for s in shapes):
                continue
            operands = " and ".join(f"{prog[a].name or a} {_shape(prog[a].shape)}"
                                    for a in node.args)
            where = f"{source}: " if source else ""
            out.append(f"{where}node {node.name or node.id!r} ({node.op}): {operands} "
                       f"broadcast to {_shape(node.shape)}, so dimension {dim} stands on "
                       f"axes {' and '.join(map(str, axes))}; give the operands the same "
                       f"shape unless a {_shape(node.shape)} result is meant")
    return out


def warn_squared_broadcasts(prog: Program, source: str | None = None) -> Program:
    """Issue a ShapeWarning for each of `squared_broadcasts`; returns `prog` unchanged."""
    for message in squared_broadcasts(prog, source):
        warnings.warn(message, ShapeWarning, stacklevel=3)
    return prog
