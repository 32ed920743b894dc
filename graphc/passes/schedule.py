"""The schedule pass: a Program becomes the kernel IR, one record per kernel (its domain,
parallel and reduction axes, the nodes it computes, what it reads and writes, where each
value lives), for a `Target` (CPU or CUDA). Writers only render it; `dump` prints it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from graphc.ir import Program, format_shape
from graphc.ops import REGISTRY
from graphc.passes.loops import LoopBody, reduced_axes
from graphc.passes.plan import CPU, CUDA, Plan, Step, Target

__all__ = ["CPU", "CUDA", "Kernel", "Schedule", "Target", "schedule"]

REDUCING = ("reduce", "matmul")
_BARE = re.compile(r"\b(v\d+)\b(?!\s*\[)")  # a value read as a number, not indexed


@dataclass
class Kernel:
    """One kernel. `kind`: loop | gemm | opaque | scalar | alias | check | update.
    `domain`: the shape iterated (a loop's), `parallel` / `reduced`: its axes (a loop's
    reduced axes are those of its reductions; `strategy` says how they are combined).
    `storage`: node -> argument | workspace k | result k | local | inline | view | alias."""

    kind: str
    nodes: list[str]
    domain: tuple = ()
    parallel: tuple[int, ...] = ()
    reduced: tuple[int, ...] = ()
    strategy: str = ""
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    storage: dict[str, str] = field(default_factory=dict)
    step: Step | None = None  # the plan's step this record was made from


@dataclass
class Schedule:
    """The kernels of one entry point, in launch order, and the plan they come from."""

    program: Program
    target: Target
    kernels: list[Kernel]
    plan: Plan

    def dump(self, title: str = "") -> str:
        """One block per kernel, e.g. `kernel 3: loop over [B,10] parallel (0, 1)`."""
        prog, out = self.program, []
        head = f"# schedule for {self.target.name}" + (f": {title}" if title else "")
        out.append(f"{head} ({len(self.kernels)} kernels)")
        for k, kern in enumerate(self.kernels):
            line = f"kernel {k}: {kern.kind}"
            if kern.kind == "loop":
                line += f" over {format_shape(kern.domain)}"
                line += f"  parallel {kern.parallel}"
                if kern.reduced:
                    line += f"  reduced {kern.reduced} ({kern.strategy})"
            elif kern.nodes:
                node = prog[kern.nodes[0]]
                line += f" {node.op}"
            out.append(line)
            for n in kern.nodes:
                node = prog[n]
                what = f"{node.op}({', '.join(node.args)})" if node.args else node.op
                name = f"  # {node.name!r}" if node.name else ""
                where = kern.storage.get(n, "its input checked on the host"
                                         if kern.kind == "check" else "")
                out.append(f"    {n}: {node.dtype}{format_shape(node.shape)} = {what}"
                           f"  [{where}]{name}")
            inline = [n for n, s in kern.storage.items() if s == "inline"]
            if inline:
                out.append(f"    inline: {', '.join(inline)}")
            if kern.reads:
                out.append(f"    reads: {', '.join(kern.reads)}")
            if kern.writes:
                out.append(f"    writes: {', '.join(kern.writes)}")
        return "\n".join(out)


def schedule(program: Program, results: list[str], target: Target = CPU,
             cast: str | None = None, update: bool = False) -> Schedule:
    """The kernel IR of `results` of `program` for `target`. Before: a Program whose
    nodes all have kernels. After: kernels in launch order, each reading only values
    that earlier kernels (or the arguments) wrote; on CUDA no reduction shares a kernel
    with another node. With `update`, a last kernel applies the optimizer's update to
    every param (results 1.. being their gradients)."""
    plan = Plan(program, list(results), cast, target)
    slots = plan.workspace()
    place = _storage(plan, slots)
    kernels = [_record(plan, s, place) for s in plan.steps]
    if update:
        params = list(program.params.values())
        kernels.append(Kernel("update", [], strategy="one thread per param element",
                              reads=[*params, *plan.outputs[1:]], writes=params,
                              storage={p: "argument" for p in params}))
    return Schedule(program, target, kernels, plan)


def _storage(plan: Plan, slots: dict[str, int]) -> dict[str, str]:
    """Where each node's value lives."""
    prog, out = plan.program, {}
    results = {r: k for k, r in enumerate(plan.results)}
    for n in prog:
        mode = plan.modes[n.id]
        if n.id in results and mode in ("store", "scalar") and plan.kinds[n.id] != "source":
            out[n.id] = f"result {results[n.id]}"
        elif n.op == "const":
            out[n.id] = "constant"
        elif mode == "array" or plan.kinds[n.id] == "source":
            out[n.id] = "argument"
        elif n.id in slots:
            out[n.id] = f"workspace {slots[n.id]}"
        elif mode == "scalar":
            out[n.id] = "local" if plan.target.name == "cpu" else "device scalar"
        elif mode == "alias":
            out[n.id] = f"alias of {plan.storage_root(n.id)}"
        else:
            out[n.id] = mode  # inline, view
    return out


def _record(plan: Plan, step: Step, place: dict[str, str]) -> Kernel:
    prog = plan.program
    kind = {"matmul": "gemm"}.get(step.kind, step.kind)
    reads = sorted(plan.step_reads(step), key=_order)
    writes = [n for n in step.nodes if step.kind != "check"] + [t for _, t in step.copies]
    storage = {n: place[n] for n in step.nodes}
    rec = Kernel(kind, list(step.nodes), reads=reads, writes=writes, storage=storage,
                 step=step)
    if step.kind == "check":
        rec.writes, rec.storage = [], {}
        rec.strategy = "before the kernels" if not plan.target.kernel_exceptions else ""
    if step.kind != "loop":
        if kind == "gemm":
            rec.strategy = "library GEMM (cuBLAS)" if plan.target.name == "cuda" else "BLAS"
        return rec
    body = LoopBody(plan, step)
    body.render()
    for n in body.locals:
        if n not in storage:
            storage[n] = "inline"
    scalars = {m.group(1) for line in body.lines for m in _BARE.finditer(line)
               if plan.modes.get(m.group(1)) == "scalar" and m.group(1) not in step.nodes}
    rec.reads = sorted(set(rec.reads) | scalars, key=_order)
    reduced: set[int] = set()
    for n in step.nodes:
        if plan.kinds[n] == "matmul":
            reduced.add(len(step.shape) - 1)
        elif plan.kinds[n] == "reduce":
            reduced |= reduced_axes(prog[n], prog[prog[n].args[0]].shape)
    rec.domain = tuple(step.shape)
    rec.reduced = tuple(sorted(reduced))
    rec.parallel = tuple(a for a in range(len(step.shape)) if a not in reduced)
    if reduced:
        rec.strategy = ("a block per kept element, a shared-memory tree over the reduced"
                        if plan.target.reduction == "tree" else "sequential loops")
        if _atomic(plan, step):
            rec.strategy = ATOMICS
    return rec


ATOMICS = "atomics: grid-stride partial sums, a tree per block, one atomic add per block"


def _atomic(plan: Plan, step: Step) -> bool:
    """A sum (or mean) of a whole array of a known, large size: every block can help."""
    limit = plan.target.atomics_from
    if limit is None or len(step.nodes) != 1 or plan.kinds[step.nodes[0]] != "reduce":
        return False
    node = plan.program[step.nodes[0]]
    f = node_fields(node)
    size = 1
    for d in step.shape:
        if not isinstance(d, int):
            return False
        size *= d
    return (all(d == 1 for d in node.shape) and f.get("step") == "acc + x"
            and f.get("init") == "0.0" and f.get("final") in ("acc", "acc / n")
            and size >= limit)


def node_fields(node) -> dict:
    return REGISTRY[node.op].kernel


def _order(node_id: str) -> tuple:
    return (len(node_id), node_id)


def races(kern: Kernel, plan: Plan) -> list[str]:
    """The nodes a loop kernel stores over all of its domain beside a reduction: on a
    GPU, with threads over the reduced axes too, these would race (or repeat)."""
    if kern.kind != "loop" or not kern.reduced:
        return []
    return [n for n in kern.nodes if plan.kinds[n] not in REDUCING] + \
        [t for _, t in (kern.step.copies if kern.step else [])]
