"""The kernel plan (the schedule pass's core): a Program becomes modes, steps and storage,
for a `Target` that says what the hardware allows.

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

from dataclasses import dataclass, field

from graphc.dims import names as dim_names
from graphc.dims import render as render_dim
from graphc.errors import CompileError
from graphc.ir import Node, Program, Shape
from graphc.ops import REGISTRY
from graphc.passes.loops import (
    LoopBody,
    Poly,
    attached_check,
    kind_of,
    reads,
)

ARRAY_MODES = ("array", "store", "alias")


@dataclass(frozen=True)
class Target:
    """What a target's kernels may do. `merge_reductions`: a reduction shares a loop with
    stores over its parallel axes (a sequential loop; on a GPU those threads would race on
    the accumulator). `kernel_exceptions`: a kernel may raise (else input checks are steps
    of their own, run before the kernels). `library_gemm`: 2-D products go to BLAS/cuBLAS.
    `reduction`: how a reduction's kernel combines its values (`sequential`, `tree`)."""

    name: str
    merge_reductions: bool
    kernel_exceptions: bool
    library_gemm: bool
    reduction: str
    cast: str | None = None  # float literals wrapped in it always (else by the dtype)
    atomics_from: int | None = None  # a whole-array sum of this many elements or more
    # uses every block (partial sums, one atomic add each) instead of one block's tree


CPU = Target("cpu", merge_reductions=True, kernel_exceptions=True, library_gemm=True,
             reduction="sequential")
CUDA = Target("cuda", merge_reductions=False, kernel_exceptions=False, library_gemm=True,
              reduction="tree", cast="F", atomics_from=65536)


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

    def __init__(self, program: Program, results: list[str], cast: str | None = None,
                 target: Target = CPU):
        self.program = program
        self.target = target
        self.cast = target.cast or cast  # see `substitute`
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
        return self.target.library_gemm and all(len(self.program[a].shape) == 2 for a in n.args)

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
                check = Step("check", [n.id], prog[n.args[0]].shape)
                early = not self.target.kernel_exceptions and self.kinds[n.args[0]] == "source"
                (prologue if early else steps).append(check)  # an input's: before any kernel
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
        if not self.target.merge_reductions and (reduced or any(
                self.kinds[n] in ("reduce", "matmul") for n in second.nodes)):
            return False  # a reduction is a kernel of its own: no race with the stores
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

