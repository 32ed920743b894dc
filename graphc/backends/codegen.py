"""The shared emitter: a scheduled Program becomes a plan of kernels, then Python source.

`Plan` is backend-neutral. It decides, node by node, what is computed inline inside its
consumer's loop (a single-use elementwise value), what is stored, which neighbouring loops
share one pass over the data, which values are views (transpose, broadcast, slice: index
maps, never copied), and which workspace region holds each stored value (a region is
reused once its value is dead). Loop bodies (`LoopBody`) are scalar expressions made of
the ops' own `expr` strings, so a CUDA backend reuses the plan and the bodies and writes
only its own loops. `KernelWriter` renders a plan as the body of one Numba function.

Op kernel fields (`Op.kernel`), by kind:
  elementwise: `expr` (also for ops of other kinds that compute elementwise, e.g. zeros);
  `index` (fn(idx, src_shape, dst_shape, attrs) -> the index of input 0 that output index
  `idx` reads; without `expr` the op is a view); `axis_names` ({name: axis}: output
  indices the expression reads); `check` (a condition on input 0, else ValueError);
  reduce: `init`, `step` (of `acc` and `x`), `final` (of `acc` and `n`), `axes`
  (fn(attrs, ndim) -> the reduced axes); `value` (of `x`, the row maximum `m` and `s` =
  the row's sum of exp(x - m)): a softmax of a scalar; shape: `reshape`, `count`.
An op with an `opaque` kernel (registry.OpaqueKernel: concat, softmax, conv2d, pooling)
is a step of its own that reads whole arrays and writes its node's; writers render the
statements its code for their target gives.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from functools import cache

from graphc.dims import names as dim_names
from graphc.dims import render as render_dim
from graphc.errors import CompileError
from graphc.ir import SOURCE_OPS, Node, Program, Shape
from graphc.ops import REGISTRY
from graphc.ops.registry import numeric_attrs

ARRAY_MODES = ("array", "store", "alias")


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


# ---- the plan -------------------------------------------------------------------------

@dataclass
class Step:
    """One kernel: a loop nest over `shape` (`loop`: elementwise stores and reductions)
    or one node's `matmul`, `opaque` (the op's own kernel), `scalar`, `alias` (a reshaped
    view)
    or `check` (of an input's values). `copies`: (node, array) written in the loop too."""

    kind: str
    nodes: list[str]
    shape: Shape = ()
    copies: list[tuple[str, str]] = field(default_factory=list)


class Plan:
    """Modes, steps and storage for computing `results` of `program`.

    Modes: `array` (a kernel argument), `scalar` (a local number), `view` (an index map of
    another value), `inline` (computed inside its one consumer's loop), `store` (written to
    an array), `alias` (a reshaped view of an array). Each result gets an array name
    (`outputs`): its node's own array, or `r<k>` for a copy.
    """

    def __init__(self, program: Program, results: list[str], cast: str | None = None):
        self.program = program
        self.cast = cast  # see `substitute`
        self.results = list(results)
        self.kinds = {n.id: kind_of(n) for n in program}
        self.users: dict[str, set[str]] = {i: set() for i in program.nodes}
        for n in program:
            for a in reads(n):
                self.users[a].add(n.id)
        self.dims = self._dims()
        self.modes = self._modes()
        self.outputs = self._outputs()
        self.steps = self._merge(self._steps())

    # dims ---------------------------------------------------------------------------
    def _dims(self) -> dict[str, tuple[str, int]]:
        """Each symbolic dim -> (input id, axis) where its size is read."""
        dims: dict[str, tuple[str, int]] = {}
        for node_id in self.program.inputs.values():
            for ax, d in enumerate(self.program[node_id].shape):
                if isinstance(d, str) and d not in dims:
                    dims[d] = (node_id, ax)
        for n in self.program:  # a derived dim (`H - 2`) is computed from its names
            for d in n.shape:
                for name in dim_names(d):
                    if name not in dims:
                        raise CompileError(f"dimension {name!r} of node {n.id} comes from "
                                           "no input")
        return dims

    def dim(self, d: int | str) -> str:
        if isinstance(d, int):
            return str(d)
        if d in self.dims:
            return f"d{list(self.dims).index(d)}"
        return render_dim(d, {name: self.dim(name) for name in dim_names(d)})

    def size(self, shape: Shape) -> Poly:
        return Poly.of([self.dim(d) for d in shape])

    # modes --------------------------------------------------------------------------
    def _modes(self) -> dict[str, str]:
        prog, modes = self.program, {}
        for n in prog:
            kind = self.kinds[n.id]
            if kind == "source":
                modes[n.id] = "scalar" if n.shape == () else "array"
            elif n.shape == ():
                modes[n.id] = "scalar"
            elif kind == "view":
                modes[n.id] = "view"
            elif kind == "reshape":
                modes[n.id] = "alias" if prog[n.args[0]].shape != () else "store"
            elif kind == "ew" and self._inlinable(n):
                modes[n.id] = "inline"
            else:
                modes[n.id] = "store"
        for n in prog:  # BLAS, opaque kernels and reshape need whole arrays
            if self.kinds[n.id] == "opaque":
                for a in reads(n):
                    if modes[a] not in ARRAY_MODES:
                        modes[a] = "store"
            if self.kinds[n.id] == "matmul" and self.blas(n):
                for a in n.args:
                    if modes[a] not in ARRAY_MODES and self.transposed_base(a, modes) is None:
                        modes[a] = "store"
            if modes[n.id] == "alias" and modes[n.args[0]] not in ARRAY_MODES:
                modes[n.args[0]] = "store"
        for r in self.results:
            if modes[r] in ("inline", "view"):
                modes[r] = "store"
        return modes

    def _inlinable(self, n: Node) -> bool:
        if n.id in self.results or len(self.users[n.id]) != 1:
            return False
        user = self.program[next(iter(self.users[n.id]))]
        kind = self.kinds[user.id]
        if kind == "reduce":
            return True
        return kind == "ew" and user.shape == n.shape and "index" not in REGISTRY[user.op].kernel

    def blas(self, n: Node) -> bool:
        """A 2-D @ 2-D product goes to BLAS (with transposed operands as they are)."""
        return all(len(self.program[a].shape) == 2 for a in n.args)

    def transposed_base(self, node_id: str, modes: dict[str, str] | None = None) -> str | None:
        """For the 2-D transpose of an array: that array's id (BLAS reads it transposed)."""
        modes = modes or self.modes
        n = self.program[node_id]
        if modes.get(node_id) != "view" or n.op != "transpose" or len(n.shape) != 2:
            return None
        return n.args[0] if modes[n.args[0]] in ARRAY_MODES else None

    # results ------------------------------------------------------------------------
    def _outputs(self) -> list[str]:
        """The array (or scalar local) name of each result."""
        out, owned = [], set()
        for k, r in enumerate(self.results):
            own = self.modes[r] == "store" or self.modes[r] == "scalar" and \
                self.kinds[r] != "source"
            if self.program[r].shape == ():
                out.append(r)
            elif own and r not in owned:
                out.append(r)
                owned.add(r)
            else:
                out.append(f"r{k}")
        return out

    # steps --------------------------------------------------------------------------
    def _steps(self) -> list[Step]:
        prog, modes, steps, prologue = self.program, self.modes, [], []
        copies: dict[str, list[str]] = {}
        for name, r in zip(self.outputs, self.results):
            if name != r:
                copies.setdefault(r, []).append(name)
        for n in prog:
            kind, mode = self.kinds[n.id], modes[n.id]
            if kind == "source" and not self.users[n.id] and n.id not in self.results:
                continue  # an argument nothing reads
            if kind != "source" and "check" in REGISTRY[n.op].kernel and (
                    mode not in ("inline", "store") or attached_check(self, n) is None):
                steps.append(Step("check", [n.id], prog[n.args[0]].shape))
            if kind == "reduce" or (kind == "matmul" and (mode == "scalar" or not self.blas(n))):
                shape = prog[n.args[0]].shape if kind == "reduce" else \
                    (*n.shape, prog[n.args[0]].shape[-1])
                steps.append(Step("loop", [n.id], shape))
            elif kind == "matmul":
                steps.append(Step("matmul", [n.id]))
            elif kind == "opaque":
                steps.append(Step("opaque", [n.id]))
            elif mode == "scalar" and kind in ("source", "count"):
                prologue.append(Step(mode, [n.id]))  # needs no other value: done first
            elif mode in ("scalar", "alias"):
                steps.append(Step(mode, [n.id]))
            elif mode == "store":
                steps.append(Step("loop", [n.id], n.shape))
            if n.id in copies:
                steps.append(Step("loop", [], n.shape, [(n.id, t) for t in copies[n.id]]))
        return prologue + steps

    def _merge(self, steps: list[Step]) -> list[Step]:
        """Adjacent loops over one shape share a pass when the later one reads what the
        earlier one stores only at the same index, and none of its reductions."""
        out: list[Step] = []
        for s in steps:
            prev = out[-1] if out else None
            if (prev is not None and s.kind == prev.kind == "loop" and s.shape == prev.shape
                    and self._mergeable(prev, s)):
                prev.nodes += s.nodes
                prev.copies += s.copies
            else:
                out.append(s)
        return out

    def _mergeable(self, first: Step, second: Step) -> bool:
        reduced = {n for n in first.nodes if self.kinds[n] in ("reduce", "matmul")}
        stored = set(first.nodes) - reduced
        idx = [f"i{k}" for k in range(len(second.shape))]
        for node_id, at in self.loop_reads(second):
            if node_id in reduced or (node_id in stored and at != idx):
                return False
        return True

    def loop_reads(self, step: Step) -> list[tuple[str, list[str]]]:
        """(node with storage, index) pairs that a loop step reads."""
        body = LoopBody(self, step)
        body.render()
        return body.reads

    # storage ------------------------------------------------------------------------
    def storage_root(self, node_id: str) -> str:
        while self.modes[node_id] in ("alias", "view"):
            node_id = self.program[node_id].args[0]
        return node_id

    def step_reads(self, step: Step) -> set[str]:
        """The stored values a step reads (through views and aliases)."""
        if step.kind == "loop":
            nodes = {n for n, _ in self.loop_reads(step)}
        elif step.kind == "check":
            nodes = {self.program[step.nodes[0]].args[0]}
        else:
            nodes = set(reads(self.program[step.nodes[0]]))
        return {self.storage_root(n) for n in nodes if self.modes[n] != "inline"}

    def workspace(self) -> dict[str, int]:
        """The workspace slot of each stored value that is not a result. A slot is reused
        by a later value of the same shape once the value in it is dead."""
        last: dict[str, int] = {}
        for k, s in enumerate(self.steps):
            for r in self.step_reads(s):
                last[r] = k
        results = set(self.results)
        slot_of: dict[str, int] = {}
        shapes: list[Shape] = []
        free: dict[Shape, list[int]] = {}
        dying: dict[int, list[str]] = {}
        for k, s in enumerate(self.steps):
            for n in s.nodes if s.kind != "check" else []:
                shape = self.program[n].shape
                if self.modes[n] != "store" or n in results:
                    continue
                if free.get(shape):
                    slot_of[n] = free[shape].pop()
                else:
                    slot_of[n] = len(shapes)
                    shapes.append(shape)
                dying.setdefault(max(last.get(n, k), k), []).append(n)
            for n in dying.pop(k, []):
                free.setdefault(self.program[n].shape, []).append(slot_of[n])
        self.slot_shapes = shapes
        return slot_of


    def costs(self) -> tuple[Poly, Poly, int]:
        """(floating-point operations, array elements read and written, how many ops share
        a loop with another) of one call: an estimate for `graphc compile` to print."""
        flops, moved, fused = Poly(), Poly(), 0
        prog = self.program
        for step in self.steps:
            node = prog[step.nodes[0]] if step.nodes else None
            if step.kind == "matmul":
                a = prog[node.args[0]]
                flops = flops.plus(Poly.of([self.dim(d) for d in (*node.shape, a.shape[-1])])
                                   .times(2))
                for x in (*node.args, node.id):
                    moved = moved.plus(self.size(prog[x].shape))
            elif step.kind == "loop":
                body = LoopBody(self, step)
                body.render()
                ops = len(body.locals) + sum(
                    self.kinds[n] in ("reduce", "matmul") for n in step.nodes)
                fused += max(ops - 1, 0)
                flops = flops.plus(self.size(step.shape).times(max(ops, 1)))
                for r in {r for r, _ in body.reads} | set(step.nodes):
                    moved = moved.plus(self.size(prog[r].shape))
            elif step.kind == "opaque":
                shapes = [prog[a].shape for a in node.args]
                over, k = REGISTRY[node.op].opaque.flops(shapes, node.shape, node.attrs)
                flops = flops.plus(self.size(over).times(k))
                for x in (*reads(node), node.id):
                    moved = moved.plus(self.size(prog[x].shape))
        return flops, moved, fused


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
    if "check" not in op.kernel or "index" not in op.kernel:
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
