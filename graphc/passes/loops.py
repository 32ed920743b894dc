"""Expressions and loop bodies of the kernel plan: the scalar expression language
(`substitute`), sizes as polynomials in the dims (`Poly`), how the planner sees a node
(`kind_of`, `reads`), and `LoopBody`, the statements inside one loop step."""

from __future__ import annotations

import ast
from collections import Counter
from functools import cache
from typing import TYPE_CHECKING

from graphc.errors import CompileError
from graphc.ir import SOURCE_OPS, Node, Program, Shape
from graphc.ops import REGISTRY
from graphc.ops.registry import numeric_attrs

if TYPE_CHECKING:
    from graphc.passes.plan import Plan, Step

# ---- sizes: polynomials in the symbolic dims ------------------------------------------

class Poly(Counter):
    """A sum of monomials in the dim variables, e.g. {("d0",): 256, (): 10}."""

    @classmethod
    def of(cls, dims: list[str]) -> Poly:
        n, syms = 1, []
        for d in dims:
            if d.isdigit():
                n *= int(d)
            else:
                syms.append(d)
        return cls({tuple(sorted(syms)): n}) if n else cls()

    def plus(self, other: Poly) -> Poly:
        out = Poly(self)
        out.update(other)
        return Poly({k: v for k, v in out.items() if v})

    def __str__(self) -> str:
        terms = [" * ".join(([str(c)] if c != 1 or not m else []) + list(m))
                 for m, c in sorted(self.items(), key=lambda kv: (-len(kv[0]), kv[0])) if c]
        return " + ".join(terms) or "0"

    def times(self, c: int) -> Poly:
        return Poly({k: v * c for k, v in self.items() if v * c})

    def value(self, dims: dict[str, int]) -> int:
        total = 0
        for m, c in self.items():
            for s in m:
                c *= dims[s]
            total += c
        return total


# ---- expressions --------------------------------------------------------------------

class _Subst(ast.NodeTransformer):
    def __init__(self, names: dict[str, ast.expr]):
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.expr:
        return self.names.get(node.id, node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        """`where(c, a, b)` becomes `(a if c else b)`: no call for Numba to resolve."""
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "where" and len(node.args) == 3:
            return ast.IfExp(test=node.args[0], body=node.args[1], orelse=node.args[2])
        return node


def substitute(source: str, values: dict[str, str | float | int],
               cast: str | None = None) -> str:
    """`source` (the scalar expression language) with variables replaced by expressions
    (strings) or numbers, as Python source; with `cast`, float constants are wrapped in
    it (`F(0.5)`), so that float32 arithmetic is not promoted to float64 by a literal."""
    names = {k: (ast.parse(v, mode="eval").body if isinstance(v, str) else ast.Constant(v))
             for k, v in values.items()}
    tree = _Subst(names).visit(ast.parse(source, mode="eval").body)
    if cast is not None:
        tree = _Cast(cast).visit(tree)
    return ast.unparse(tree)


class _Cast(ast.NodeTransformer):
    def __init__(self, cast: str):
        self.cast = cast

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        if isinstance(node.value, float):
            return ast.Call(ast.Name(self.cast), [node], [])
        return node


def broadcast_index(idx: list[str], src: Shape, dst: Shape) -> list[str]:
    """Index into an operand of shape `src` for output index `idx` of shape `dst`."""
    lead = len(dst) - len(src)
    return ["0" if d == 1 and dst[lead + k] != 1 else idx[lead + k] for k, d in enumerate(src)]


def kind_of(node: Node) -> str:
    """The kernel kind the planner treats a node as."""
    if node.op in SOURCE_OPS:
        return "source"
    op = REGISTRY[node.op]
    k = op.kernel
    if op.opaque is not None:
        return "opaque"
    if op.kind == "elementwise" or "expr" in k:
        return "ew"
    if "index" in k:
        return "view"
    if op.kind in ("reduce", "matmul"):
        return op.kind
    for key in ("reshape", "count"):
        if key in k:
            return key
    raise CompileError(f"op {node.op!r} (kind {op.kind!r}) has no kernel for compiled "
                       "backends; give it an `expr` or kernel fields in its op file")


def reads(node: Node) -> list[str]:
    """The args whose values a node reads (not those that only give a shape)."""
    kind = kind_of(node)
    if kind in ("source", "count"):
        return []
    if kind == "matmul":
        return list(node.args)
    if kind == "opaque":
        at = REGISTRY[node.op].opaque.reads
        return list(node.args) if at is None else [node.args[i] for i in at
                                                     if i < len(node.args)]
    if kind != "ew":
        return [node.args[0]]
    op = REGISTRY[node.op]
    names = [f"x{i}" for i in range(len(node.args))] if op.variadic else list(op.inputs)
    used = _names(op.kernel.get("expr") or op.expression(node.attrs))
    return [a for name, a in zip(names, node.args) if name in used]


@cache
def _names(source: str) -> frozenset[str]:
    return frozenset(n.id for n in ast.walk(ast.parse(source, mode="eval"))
                     if isinstance(n, ast.Name))


def describe(node: Node) -> str:
    """The comment above a node's code: its spec name (escaped) and what it computes."""
    what = f"{node.op}({', '.join(node.args)})" if node.args else node.op
    if node.name is not None:
        return f"# {node.name!r} = {what}"
    if node.grad_of is not None:
        return f"# {node.id}: gradient of {node.grad_of} = {what}"
    return f"# {node.id} = {what}"


# ---- loop bodies ----------------------------------------------------------------------

class LoopBody:
    """The statements inside one loop step, for output index `i0, i1, ...`: each node's
    value computed once as a local (inline producers first), stores, accumulations."""

    def __init__(self, plan: Plan, step: Step):
        self.plan, self.step, self.prog = plan, step, plan.program
        self.idx = [f"i{k}" for k in range(len(step.shape))]
        self.locals: dict[str, str] = {}
        self.lines: list[str] = []
        self.reads: list[tuple[str, list[str]]] = []
        # lines before / after the loop over axis d (0: before / after the whole nest)
        self.pre: dict[int, list[str]] = {}
        self.post: dict[int, list[str]] = {}
        self.array_reductions: list[str] = []  # accumulate in memory: initialize first

    def render(self) -> list[str]:
        for n in self.step.nodes:
            node = self.prog[n]
            if self.plan.kinds[n] in ("reduce", "matmul"):
                self.reduction(node)
            else:
                value = self.value(n, self.idx)
                self.lines.append(f"{n}[{', '.join(self.idx)}] = {value}")
        for n, t in self.step.copies:
            self.lines.append(f"{t}[{', '.join(self.idx)}] = {self.read(n, self.idx)}")
        return self.lines

    def reduction(self, node: Node) -> None:
        """Accumulate: in a local when the reduced axes are the innermost loops (its
        initial value set before them, the result stored after), else in the array."""
        f = reduce_fields(self.plan, node)
        value = self.reduce_value(node)
        n, depth = node.id, self.local_depth(node)
        if self.plan.modes[n] == "scalar":
            acc = n
            self.pre.setdefault(0, []).append(f"{acc} = {f['init']}")
            if f["final"] != "acc":
                self.post.setdefault(0, []).append(
                    f"{acc} = {substitute(f['final'], {'acc': acc, 'n': self.count(node)})}")
        elif depth is not None:
            acc = "a" + n[1:]
            self.pre.setdefault(depth, []).append(f"{acc} = {f['init']}")
            final = substitute(f["final"], {"acc": acc, "n": self.count(node)})
            self.post.setdefault(depth, []).insert(
                0, f"{n}[{', '.join(self.out_index(node))}] = {final}")
        else:
            acc = f"{n}[{', '.join(self.out_index(node))}]"
            self.array_reductions.append(n)
        self.lines.append(describe(node))
        self.lines.append(f"{acc} = {substitute(f['step'], {'acc': acc, 'x': value})}")

    def local_depth(self, node: Node) -> int | None:
        """The loop depth where a local accumulator can start, if the reduced axes are
        the innermost ones."""
        if self.plan.kinds[node.id] == "matmul":
            return len(self.idx) - 1
        axes = reduced_axes(node, self.prog[node.args[0]].shape)
        first = len(self.idx) - len(axes)
        return first if axes == set(range(first, len(self.idx))) else None

    def count(self, node: Node) -> str:
        """How many values a reduction combines (the `n` of mean's final step)."""
        if self.plan.kinds[node.id] == "matmul":
            return "1"
        src = self.prog[node.args[0]].shape
        return " * ".join(self.plan.dim(src[a]) for a in sorted(reduced_axes(node, src))) or "1"

    def out_index(self, node: Node) -> list[str]:
        """The index a reduction accumulates into, for the current input index."""
        if self.plan.kinds[node.id] == "matmul":
            return self.idx[:-1]
        src = self.prog[node.args[0]].shape
        axes = reduced_axes(node, src)
        kept = ["0" if k in axes else i for k, i in enumerate(self.idx)]
        if len(node.shape) == len(src):
            return kept
        drop = len(src) - len(node.shape)
        if drop == len(axes):
            return [i for k, i in enumerate(self.idx) if k not in axes]
        return kept[drop:]  # leading axes summed away, the others kept as length 1

    def reduce_value(self, node: Node) -> str:
        if self.plan.kinds[node.id] != "matmul":
            return self.read(node.args[0], self.idx)
        a, b = (self.prog[x] for x in node.args)
        out, kk = self.idx[:-1], self.idx[-1]
        nb = len(node.shape) - (len(a.shape) >= 2) - (len(b.shape) >= 2)
        batch = node.shape[:nb]
        ai = [kk] if len(a.shape) == 1 else [
            *broadcast_index(out[:nb], a.shape[:-2], batch), out[nb], kk]
        bi = [kk] if len(b.shape) == 1 else [
            *broadcast_index(out[:nb], b.shape[:-2], batch), kk, out[-1]]
        return f"{self.read(a.id, ai)} * {self.read(b.id, bi)}"

    def read(self, node_id: str, idx: list[str]) -> str:
        """An expression for `node_id`'s value at index `idx`."""
        mode = self.plan.modes[node_id]
        if node_id in self.locals and idx == self.idx:
            return self.locals[node_id]
        if mode == "scalar":
            return node_id
        if mode == "view":
            return self.value(node_id, idx)
        if mode == "inline":
            assert idx == self.idx, f"inline value {node_id} read at another index"
            return self.value(node_id, idx)
        self.reads.append((node_id, list(idx)))
        return f"{node_id}[{', '.join(idx)}]"

    def value(self, node_id: str, idx: list[str]) -> str:
        """Compute a node here: a view reads through; anything else becomes a local."""
        node = self.prog[node_id]
        kind = self.plan.kinds[node_id]
        if kind == "view":
            src = self.prog[node.args[0]].shape
            at = REGISTRY[node.op].kernel["index"](list(idx), src, node.shape, node.attrs)
            return self.read(node.args[0], at)
        if kind == "reshape":  # of a scalar
            return self.read(node.args[0], [])
        expr = elementwise_expr(node, self.prog, self.read, idx, self.plan.cast)
        local = "t" + node_id[1:]
        check = attached_check(self.plan, node)
        if check is not None:
            depth, cond, message = check
            arg = self.read(node.args[0], idx[:depth])
            self.pre.setdefault(depth, []).extend(
                [f"if not ({substitute(cond, {'x': arg})}):", f"    raise ValueError({message!r})"])
        self.lines.append(describe(node))
        self.lines.append(f"{local} = {expr}")
        self.locals[node_id] = local
        return local


def attached_check(plan: Plan, node: Node) -> tuple[int, str, str] | None:
    """For an op with a `check` on input 0 that its loop reads at the leading loop
    indices: (loop depth, condition of `x`, message), to test it once per value there."""
    op = REGISTRY[node.op]
    if "check" not in op.kernel or "index" not in op.kernel or \
            not plan.target.kernel_exceptions:
        return None
    src = plan.program[node.args[0]].shape
    idx = [f"i{k}" for k in range(len(node.shape))]
    if op.kernel["index"](list(idx), src, node.shape, node.attrs) != idx[:len(src)]:
        return None
    values = {op.inputs[0]: "x", **{k: v for k, v in numeric_attrs(op, node.attrs).items()}}
    cond = substitute(op.kernel["check"], values)
    shown = substitute(op.kernel["check"], {k: v for k, v in values.items() if v != "x"})
    who = repr(node.name) if node.name else node.id
    return len(src), cond, f"{who}: invalid input values; {node.op} needs {shown}"


def reduced_axes(node: Node, src: Shape) -> set[int]:
    return set(REGISTRY[node.op].kernel["axes"](node.attrs, len(src)))


def reduce_fields(plan: Plan, node: Node) -> dict:
    if plan.kinds[node.id] == "matmul":
        return {"init": "0.0", "step": "acc + x", "final": "acc"}
    return REGISTRY[node.op].kernel


def elementwise_expr(node: Node, prog: Program, read, idx: list[str],
                     cast: str | None = None) -> str:
    """The node's scalar expression, its inputs read at the matching indices."""
    op = REGISTRY[node.op]
    k = op.kernel
    source = k.get("expr") or op.expression(node.attrs)
    names = [f"x{i}" for i in range(len(node.args))] if op.variadic else list(op.inputs)
    values: dict[str, str | float | int] = dict(numeric_attrs(op, node.attrs))
    for name, a in zip(names, node.args):
        src = prog[a].shape
        at = k["index"](list(idx), src, node.shape, node.attrs) if "index" in k \
            else broadcast_index(idx, src, node.shape)
        values[name] = read(a, at)
    for name, axis in k.get("axis_names", {}).items():
        if axis < len(idx):
            values[name] = idx[axis]
    return substitute(source, values, cast)
