"""The NumPy reference backend: interprets a Program node by node with each op's
NumPy definition. It is the definition every compiled backend is tested against,
and it records every value, which is what traces and diagrams show."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from graphc.errors import InputError
from graphc.ir import FED_OPS, FLOAT, Program
from graphc.ops import REGISTRY


def evaluate(program: Program, feeds: Mapping[str, np.ndarray], dtype: np.dtype,
             on_node: Callable[[str, np.ndarray], None] | None = None) -> dict[str, np.ndarray]:
    """Every node's value, by id. `feeds` holds the inputs' and params' arrays by id."""
    values: dict[str, np.ndarray] = {}
    for node in program:
        if node.op in FED_OPS:
            if node.id not in feeds:  # an input nothing here reads (labels, for forward)
                continue
            v = feeds[node.id]
        elif node.op == "const":
            v = np.asarray(node.attrs["value"], dtype=dtype)
        else:
            args = [values[a] for a in node.args]
            try:
                v = np.asarray(REGISTRY[node.op].ref(*args, **node.attrs))
            except InputError as e:
                where = f"node {node.name!r}" if node.name else f"op {node.op!r}"
                raise InputError(f"{where}: {e}") from None
            if node.dtype == FLOAT and v.dtype != dtype:
                v = v.astype(dtype)
        values[node.id] = v
        if on_node is not None:
            on_node(node.id, v)
    return values


class NumpyBackend:
    name = "numpy"

    def compile(self, program: Program, dtype: np.dtype, results: Sequence[str]):
        """A function from feeds (by id) to the arrays of `results`, in order."""

        def run(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            values = evaluate(program, feeds, dtype)
            return [values[r] for r in results]

        return run
