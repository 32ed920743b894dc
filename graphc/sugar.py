"""Operator overloading shared by the Python spec builder and the gradient rules.

A `Ref` is a value inside something that records ops (an `Emitter`): `a * b + 1`
records `mul` and `add` nodes. `F.<op>(...)` records any registered op by name.
"""

from __future__ import annotations

from typing import Any, Protocol

from graphc.ir import Shape


class Emitter(Protocol):
    def emit(self, op: str, args: list[Any], attrs: dict[str, Any] | None = None) -> Ref: ...
    def shape_of(self, ref: Ref) -> Shape: ...
    def dtype_of(self, ref: Ref) -> str: ...


class Ref:
    __slots__ = ("emitter", "id")

    def __init__(self, emitter: Emitter, id: str):
        self.emitter, self.id = emitter, id

    def __repr__(self) -> str:
        return f"Ref({self.id!r})"

    @property
    def shape(self) -> Shape:
        return self.emitter.shape_of(self)

    @property
    def dtype(self) -> str:
        return self.emitter.dtype_of(self)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def _op(self, op: str, *args: Any, **attrs: Any) -> Ref:
        return self.emitter.emit(op, list(args), attrs)

    def __add__(self, o): return self._op("add", self, o)
    def __radd__(self, o): return self._op("add", o, self)
    def __sub__(self, o): return self._op("sub", self, o)
    def __rsub__(self, o): return self._op("sub", o, self)
    def __mul__(self, o): return self._op("mul", self, o)
    def __rmul__(self, o): return self._op("mul", o, self)
    def __truediv__(self, o): return self._op("div", self, o)
    def __rtruediv__(self, o): return self._op("div", o, self)
    def __pow__(self, o): return self._op("pow", self, o)
    def __rpow__(self, o): return self._op("pow", o, self)
    def __matmul__(self, o): return self._op("matmul", self, o)
    def __rmatmul__(self, o): return self._op("matmul", o, self)
    def __neg__(self): return self._op("neg", self)
    def __abs__(self): return self._op("abs", self)

    __hash__ = object.__hash__  # comparison operators are left alone on purpose


class _OpCalls:
    """`F.relu(x)`, `F.sum(x, axis=1)`: any registered op, recorded by the args' emitter."""

    def __getattr__(self, op: str):
        def call(*args: Any, **attrs: Any) -> Ref:
            refs = [a for a in args if isinstance(a, Ref)]
            if not refs:
                raise TypeError(f"F.{op} needs at least one recorded value")
            return refs[0].emitter.emit(op, list(args), attrs)
        call.__name__ = op
        return call


F = _OpCalls()
