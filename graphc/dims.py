"""Symbolic dimensions: a spec's names (`B`, `H`) and sizes derived from them.

A derived dim is canonical integer-expression text over the names, e.g. ``H - 2`` or
``(H - 3)//2 + 1``, so that equal sizes compare equal as strings; a shape rule builds one
with `add`, `mul` and `floordiv` (a convolution's output size over a symbolic `H`).
Backends evaluate one from the names' sizes (`evaluate`) or render it in their own
variables (`render`); only the names must come from inputs.
"""

from __future__ import annotations

import ast
from functools import lru_cache

Dim = int | str
# a sum of monomials: (atoms, ...) -> coefficient; an atom is a name or "(...)//k" text
_Poly = dict[tuple[str, ...], int]


def is_name(d: Dim) -> bool:
    return isinstance(d, str) and d.isidentifier()


def _const(c: int) -> _Poly:
    return {(): c} if c else {}


def _plus(a: _Poly, b: _Poly, sign: int = 1) -> _Poly:
    out = dict(a)
    for m, c in b.items():
        out[m] = out.get(m, 0) + sign * c
    return {m: c for m, c in out.items() if c}


def _times(a: _Poly, b: _Poly) -> _Poly:
    out: _Poly = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = tuple(sorted(ma + mb))
            out[m] = out.get(m, 0) + ca * cb
    return {m: c for m, c in out.items() if c}


def _floordiv(a: _Poly, k: int) -> _Poly:
    if k == 1:
        return a
    if all(c % k == 0 for c in a.values()):
        return {m: c // k for m, c in a.items()}
    if set(a) <= {()}:
        return _const(a.get((), 0) // k)
    return {(f"({_text(a)})//{k}",): 1}


@lru_cache(maxsize=4096)
def _parse(d: Dim) -> tuple:
    if isinstance(d, int):
        return tuple(_const(d).items())
    return tuple(_from_ast(ast.parse(d, mode="eval").body, d).items())


def _poly(d: Dim) -> _Poly:
    return dict(_parse(d))


def _from_ast(node: ast.expr, text: str) -> _Poly:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return _const(node.value)
    if isinstance(node, ast.Name):
        return {(node.id,): 1}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _times(_const(-1), _from_ast(node.operand, text))
    if isinstance(node, ast.BinOp):
        a, b = _from_ast(node.left, text), _from_ast(node.right, text)
        if isinstance(node.op, ast.Add):
            return _plus(a, b)
        if isinstance(node.op, ast.Sub):
            return _plus(a, b, -1)
        if isinstance(node.op, ast.Mult):
            return _times(a, b)
        if isinstance(node.op, ast.FloorDiv) and set(b) <= {()} and b.get((), 0) > 0:
            return _floordiv(a, b[()])
    raise ValueError(f"not a dimension: {text!r} (use names, integers, +, -, * and // by "
                     "a positive integer)")


def _text(p: _Poly) -> str:
    terms = sorted(((m, c) for m, c in p.items() if m), key=lambda mc: (-len(mc[0]), mc[0]))
    out = ""
    for m, c in [*terms, *([((), p[()])] if p.get(()) else [])]:
        body = "*".join(([str(abs(c))] if abs(c) != 1 or not m else []) + list(m))
        if not out:
            out = ("-" if c < 0 else "") + body
        else:
            out += (" - " if c < 0 else " + ") + body
    return out or "0"


def _dim(p: _Poly) -> Dim:
    if set(p) <= {()}:
        return p.get((), 0)
    if len(p) == 1 and next(iter(p.values())) == 1 and len(next(iter(p))) == 1:
        return next(iter(p))[0]  # a bare name (or a bare `(...)//k`)
    return _text(p)


def canonical(d: Dim) -> Dim:
    """`d` in its canonical form: an int when it is a number, else expression text."""
    return d if isinstance(d, int) else _dim(_poly(d))


def add(*ds: Dim) -> Dim:
    out: _Poly = {}
    for d in ds:
        out = _plus(out, _poly(d))
    return _dim(out)


def sub(a: Dim, b: Dim) -> Dim:
    return _dim(_plus(_poly(a), _poly(b), -1))


def mul(*ds: Dim) -> Dim:
    out = _const(1)
    for d in ds:
        out = _times(out, _poly(d))
    return _dim(out)


def floordiv(a: Dim, k: int) -> Dim:
    if not isinstance(k, int) or k <= 0:
        raise ValueError(f"a dimension can only be divided by a positive integer, not {k!r}")
    return _dim(_floordiv(_poly(a), k))


def names(d: Dim) -> list[str]:
    """The spec names a dim depends on, in order of first appearance."""
    if isinstance(d, int):
        return []
    if d.isidentifier():
        return [d]
    found = [n.id for n in ast.walk(ast.parse(d, mode="eval")) if isinstance(n, ast.Name)]
    return list(dict.fromkeys(found))


def evaluate(d: Dim, sizes: dict[str, int]) -> int:
    """The size of `d` when each name has the size in `sizes`."""
    if isinstance(d, int):
        return d
    if d in sizes:
        return sizes[d]
    return int(eval(compile(ast.parse(d, mode="eval"), "<dim>", "eval"),
                    {"__builtins__": {}}, dict(sizes)))


def render(d: Dim, variables: dict[str, str]) -> str:
    """`d` as source text in which each name is replaced by a variable of the caller."""
    if isinstance(d, int):
        return str(d)
    if d in variables:
        return variables[d]

    class Sub(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.expr:
            return ast.Name(variables[node.id], ast.Load())

    return "(" + ast.unparse(Sub().visit(ast.parse(d, mode="eval"))) + ")"
