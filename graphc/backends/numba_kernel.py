"""Numba source of one kernel: the `@njit` function that runs an entry's whole plan (a
forward, a gradient, or a train step: the gradient's plan, or a call of the module's
gradient kernel, and then the update).

Comments above each statement name the values as the code below them names them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

import numpy as np

from graphc.backends.codegen import (
    LoopBody,
    Plan,
    Poly,
    Step,
    describe,
    elementwise_expr,
    reduce_fields,
    substitute,
)
from graphc.backends.numba_templates import JIT
from graphc.errors import CompileError
from graphc.ir import Program, Shape, format_shape
from graphc.ops import REGISTRY


@dataclass
class Training:
    """What the fused train step pastes in: the optimizer's update statements."""

    optimizer: str  # its class name, for comments
    lines: list[str]
    slots: tuple[str, ...]
    hyper: dict[str, float]  # names in the order the kernel takes them, with defaults
    slot_init: dict[str, float] = field(default_factory=dict)
    fixed_zero: tuple[str, ...] = ()  # hyper-parameters compiled out: they must stay 0


@dataclass
class Entry:
    """One kernel: `results` of `program`; a train entry returns the loss and updates."""

    name: str
    program: Program
    results: list[str]
    train: Training | None = None


_VALUE = re.compile(r"\b[vt]\d+\b")  # a value as the code names it: array v7, local t7
_ANY = re.compile(r"\bv\d+\b")
_CALL = re.compile(r"^(.*? = [^(]*\()(.*)(\)\s*)$")  # "# v7 = op(" operands ")"
_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")  # a repr()'d spec name


def _idx(names: list[str]) -> str:
    return ", ".join(names)


class KernelWriter:
    """The source of one `@njit` kernel for an entry. Every array it touches comes in as
    an argument (inputs, params, results, workspace), which Numba compiles fastest."""

    def __init__(self, entry: Entry, dtype: np.dtype):
        self.entry = entry
        prog = self.prog = entry.program
        cast = "F" if np.dtype(dtype) == np.float32 else None
        self.plan = plan = Plan(prog, entry.results, cast)
        self.train = entry.train
        used = {a for n in prog for a in n.args} | set(entry.results)
        self.inputs = [i for i in prog.fed() if i in used]  # inputs, state, step
        self.params = list(prog.params.values())
        self.param_offsets: dict[str, Poly] = {}
        off = Poly()
        for p in self.params:
            self.param_offsets[p] = off
            off = off.plus(plan.size(prog[p].shape))
        self.n_params = off
        # workspace: slots grouped by their shape after the first axis, stacked on it
        self.slots = plan.workspace()
        self.groups: list[tuple] = []  # trailing shape per group
        self.group_rows: list[Poly] = []
        self.slot_at: dict[int, tuple[int, Poly, Poly]] = {}  # slot -> group, start, stop
        for slot, shape in enumerate(plan.slot_shapes):
            self.slot_at[slot] = self._rows(shape)
        # scratch of opaque kernels (OpaqueKernel.scratch): more workspace rows, each
        # shape's arrays shared by every step (a scratch array lives within one call)
        self.scratch: dict[str, list[tuple[str, int, Shape]]] = {}  # node -> name, slot
        self.scratch_at: list[tuple[int, Poly, Poly]] = []  # scratch slot -> g, rows
        pool: dict[Shape, list[int]] = {}
        for step in plan.steps:
            node = prog[step.nodes[0]] if step.kind == "opaque" else None
            kernel = REGISTRY[node.op].opaque if node is not None else None
            if kernel is None or kernel.scratch is None:
                continue
            used: dict[Shape, int] = {}
            mine = self.scratch[node.id] = []
            for k, shape in enumerate(kernel.scratch([prog[a].shape for a in node.args],
                                                     node.shape, node.attrs)):
                shape = tuple(shape)
                have = pool.setdefault(shape, [])
                if used.get(shape, 0) == len(have):
                    have.append(len(self.scratch_at))
                    self.scratch_at.append(self._rows(shape))
                slot = have[used.get(shape, 0)]
                used[shape] = used.get(shape, 0) + 1
                mine.append((f"{node.id}_s{k}", slot, shape))
        self.outputs = [(name, r) for name, r in zip(plan.outputs, plan.results)
                        if prog[r].shape != ()]
        self.positions = [k for k, r in enumerate(plan.results) if prog[r].shape != ()]

    def _rows(self, shape: Shape) -> tuple[int, Poly, Poly]:
        """Rows for one array of `shape` in the workspace group of its trailing shape:
        (group, first row, end row)."""
        key = tuple(shape[1:])
        if key not in self.groups:
            self.groups.append(key)
            self.group_rows.append(Poly())
        g = self.groups.index(key)
        start = self.group_rows[g]
        self.group_rows[g] = start.plus(self.plan.size(shape[:1]))
        return g, start, self.group_rows[g]

    def dims(self) -> list[str]:
        return [self.plan.dim(d) for d in self.plan.dims]

    def arg_name(self, node_id: str) -> str:
        return f"{node_id}_a" if self.prog[node_id].shape == () else node_id

    def array_args(self) -> list[str]:
        """Inputs and params, as the kernel names them."""
        return [self.arg_name(i) for i in self.inputs + self.params]

    def signature(self) -> list[str]:
        args = [*self.dims(), *self.array_args()]
        if self.train:
            args += ["P", "S", "G"]
        args += [name for name, _ in self.outputs]
        args += [f"w{g}" for g in range(len(self.groups))]
        if self.train:
            args += [f"h_{h}" for h in self.train.hyper] + ["t", "max_norm", "max_value"]
        return args

    def shape_expr(self, shape: Shape) -> str:
        dims = [self.plan.dim(d) for d in shape]
        return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"

    def group_shapes(self) -> list[str]:
        """The shape of each workspace group, as a Python expression of the dims."""
        return [self.shape_expr((0, *key)).replace("(0", f"({rows}", 1)
                for key, rows in zip(self.groups, self.group_rows)]

    # the function ------------------------------------------------------------------
    def write(self, body_kernel: str | None = None) -> str:
        """The kernel's source. A train entry's kernel runs the plan and then the update;
        given `body_kernel` (the module's gradient kernel of the same program and results)
        it calls that instead of writing the plan a second time."""
        e, plan = self.entry, self.plan
        signature = f"def {e.name}_kernel({', '.join(self.signature())}):"
        body: list[str] = []
        for sym, (node_id, axis) in plan.dims.items():
            body.append(f"# {plan.dim(sym)}: dimension {sym!r} (axis {axis} of {node_id})")
        scalars = [name for name, r in zip(plan.outputs, plan.results)
                   if self.prog[r].shape == ()]
        if body_kernel is not None:
            body += self.declarations(workspace=False)
            body += [f"# forward and backward: {body_kernel}, the gradients into views of G",
                     f"s = {body_kernel}({', '.join(self.body_args())})"]
            body += self.update({name: f"s[{k}]" for k, name in enumerate(scalars)})
            body.append("return s[0]")
        else:
            body += self.declarations()
            for step in plan.steps:
                body += self.step(step)
            if self.train:
                body += self.update({name: name for name in scalars})
                body.append(f"return {scalars[0]}")
            else:
                body.append(f"return ({''.join(o + ', ' for o in scalars)})")
        body = self.named_as_in_code(body, signature)
        return "\n".join([JIT, signature] + ["    " + line if line else "" for line in body])

    def body_args(self) -> list[str]:
        """The arguments of the gradient kernel, as a train kernel passes them on."""
        return [*self.dims(), *self.array_args(), *(name for name, _ in self.outputs),
                *(f"w{g}" for g in range(len(self.groups)))]

    def named_as_in_code(self, lines: list[str], signature: str) -> list[str]:
        """Comments with each value named as the code names it: `v7` where the code reads
        the array v7, `t7` where a loop keeps it in a local, else its spec name (a value
        the plan never materializes, such as a size it reads from a dim)."""
        def tokens(line: str) -> set[str]:
            return set(_VALUE.findall(line.split("  #")[0]))

        code = [None if line.lstrip().startswith("#") else tokens(line) for line in lines]
        everywhere = tokens(signature).union(*(c for c in code if c is not None))
        out = []
        for k, line in enumerate(lines):
            if code[k] is not None or not _VALUE.search(line):
                out.append(line)
                continue
            below: set[str] = set()  # the statements under the comment, up to the next
            indent = len(line) - len(line.lstrip())  # comment or the end of its block
            for c, text in zip(code[k + 1:], lines[k + 1:]):
                if c is None or len(text) - len(text.lstrip()) < indent:
                    break
                below |= c

            out.append(self._renamed(line, below, everywhere))
        return out

    def _renamed(self, comment: str, below: set[str], everywhere: set[str]) -> str:
        """One comment renamed; an operand the statements below do not read (relu' reads
        only x, expand only its operand's shape) shows as its spec name, else as `_`."""
        quoted: list[str] = []  # spec names, repr()'d: kept as written

        def hide(m: re.Match) -> str:
            quoted.append(m.group(0))
            return f"\0{len(quoted) - 1}\0"

        text = _QUOTED.sub(hide, comment)
        call = _CALL.match(text)
        head, args, tail = call.groups() if call else (text, "", "")
        head = _ANY.sub(lambda m: self._code_name(m.group(0), below, everywhere), head)
        args = _ANY.sub(lambda m: self._code_name(m.group(0), below, set(), "_"), args)
        return re.sub("\0(\\d+)\0", lambda m: quoted[int(m.group(1))], head + args + tail)

    def _code_name(self, v: str, below: set[str], everywhere: set[str],
                   missing: str | None = None) -> str:
        t = "t" + v[1:]
        for have in (below, everywhere):
            for candidate in (v, t):
                if candidate in have:
                    return candidate
        node = self.prog.nodes.get(v)
        if node is None:
            return v
        if node.name is not None:
            return repr(node.name)
        return missing if missing is not None else f"<{node.op}>"

    def declarations(self, workspace: bool = True) -> list[str]:
        """What each argument holds and, with `workspace`, the views of the workspace."""
        prog, lines = self.prog, []
        for i in self.inputs:
            node = prog[i]
            lines.append(f"# input {node.name!r}: {node.dtype}{format_shape(node.shape)} "
                         f"is {self.arg_name(i)}")
        if self.params:
            lines.append("# params: " + ", ".join(
                f"{prog[p].name!r} is {self.arg_name(p)}" for p in self.params))
        for (name, _), k in zip(self.outputs, self.positions):
            what = f"gradient of {prog[self.params[k - 1]].name!r}" if self.train \
                else f"result {k}"
            lines.append(f"# {name}: {what}")
        if not workspace:
            return lines
        for node_id, slot in sorted(self.slots.items(), key=lambda kv: int(kv[0][1:])):
            g, start, stop = self.slot_at[slot]
            shape = format_shape(prog[node_id].shape)
            lines.append(f"{node_id} = w{g}[{start}:{stop}]  # workspace {slot}: {shape}")
        for node_id, arrays in self.scratch.items():
            for name, slot, shape in arrays:
                g, start, stop = self.scratch_at[slot]
                lines.append(f"{name} = w{g}[{start}:{stop}]  # scratch {slot} of "
                             f"{node_id}: {format_shape(shape)}")
        return lines

    # steps ---------------------------------------------------------------------------
    def step(self, step: Step) -> list[str]:
        return getattr(self, f"step_{step.kind}")(step)

    def loops(self, shape: Shape, body: list[str], var: str = "i",
              pre: dict[int, list[str]] | None = None,
              post: dict[int, list[str]] | None = None) -> list[str]:
        """A loop nest over `shape`; `pre[d]` / `post[d]` go before / after loop d."""
        pre, post, lines = pre or {}, post or {}, []
        for d in range(len(shape) + 1):
            lines += ["    " * d + line for line in pre.get(d, [])]
            if d < len(shape):
                lines.append("    " * d + f"for {var}{d} in range({self.plan.dim(shape[d])}):")
        lines += ["    " * len(shape) + line for line in body]
        for d in reversed(range(len(shape) + 1)):
            lines += ["    " * d + line for line in post.get(d, [])]
        return lines

    def step_loop(self, step: Step) -> list[str]:
        plan, prog = self.plan, self.prog
        body = LoopBody(plan, step)
        lines = body.render()
        before, after = [], []
        for n in body.array_reductions:
            node = prog[n]
            f = reduce_fields(plan, node)
            j = [f"j{k}" for k in range(len(node.shape))]
            before += self.loops(node.shape, [f"{n}[{_idx(j)}] = {f['init']}"], "j")
            if f["final"] != "acc":
                acc = f"{n}[{_idx(j)}]"
                final = substitute(f["final"], {"acc": acc, "n": body.count(node)})
                after += self.loops(node.shape, [f"{acc} = {final}"], "j")
        return before + self.loops(step.shape, lines, pre=body.pre, post=body.post) + after

    def step_scalar(self, step: Step) -> list[str]:
        n = step.nodes[0]
        node, plan = self.prog[n], self.plan
        kind = plan.kinds[n]
        reader = LoopBody(plan, Step("loop", [], ()))
        if node.op == "const":
            expr = substitute(repr(float(node.attrs["value"])), {}, plan.cast)
        elif kind == "source":
            expr = f"{self.arg_name(n)}[0]"
        elif kind == "count":
            src = self.prog[node.args[0]].shape
            axes = REGISTRY[node.op].kernel["count"](node.attrs, len(src))
            axes = [axes] if isinstance(axes, int) else axes
            expr = f"float({' * '.join(plan.dim(src[a]) for a in axes) or '1'})"
        elif kind == "ew":
            expr = elementwise_expr(node, self.prog, reader.read, [], plan.cast)
        elif "value" in REGISTRY[node.op].kernel:  # a softmax of a scalar
            x = reader.read(node.args[0], [])
            expr = substitute(REGISTRY[node.op].kernel["value"], {"x": x, "m": x, "s": 1.0})
        else:  # a view or reshape of a scalar, or of a one-element array
            src = self.prog[node.args[0]].shape
            expr = reader.read(node.args[0], ["0"] * len(src))
        return reader.lines + [describe(node), f"{n} = {expr}"]

    def step_alias(self, step: Step) -> list[str]:
        node = self.prog[step.nodes[0]]
        return [describe(node),
                f"{node.id} = {node.args[0]}.reshape({self.shape_expr(node.shape)})"]

    def step_matmul(self, step: Step) -> list[str]:
        node = self.prog[step.nodes[0]]
        args, shown = [], []
        for a in node.args:
            base = self.plan.transposed_base(a)
            args += [base, "True"] if base else [a, "False"]
            shown.append(f"{base}.T" if base else a)  # the operands the call reads
        comment = describe(dataclasses.replace(node, args=tuple(shown)))
        return [comment, f"matmul2d({', '.join(args)}, {node.id})"]

    def step_opaque(self, step: Step) -> list[str]:
        """The op's own kernel: the statements its CPU code writes for this node."""
        node = self.prog[step.nodes[0]]
        code = REGISTRY[node.op].opaque.code.get("cpu")
        if code is None:
            raise CompileError(f"op {node.op!r} has no kernel for the cpu target; give its "
                               "OpaqueKernel a 'cpu' entry in its op file")
        shapes = [self.prog[a].shape for a in node.args]
        extra = [[name for name, _, _ in self.scratch[node.id]]] \
            if node.id in self.scratch else []
        return [describe(node), *code.call(list(node.args), node.id, node.attrs, shapes,
                                           *extra)]

    def step_check(self, step: Step) -> list[str]:
        node = self.prog[step.nodes[0]]
        op = REGISTRY[node.op]
        arg = node.args[0]
        idx = [f"i{k}" for k in range(len(step.shape))]
        value = f"{arg}[{_idx(idx)}]" if idx else f"{self.arg_name(arg)}[0]"
        names = {op.inputs[0]: value, **{k: v for k, v in node.attrs.items()
                                          if isinstance(v, (int, float))}}
        cond = substitute(op.kernel["check"], names)
        shown = substitute(op.kernel["check"], {k: v for k, v in names.items()
                                                if k != op.inputs[0]})
        who = repr(node.name) if node.name else node.id
        message = f"{who}: invalid input values; {node.op} needs {shown}"
        return [f"# check the values {node.op} reads"] + self.loops(
            step.shape, [f"if not ({cond}):", f"    raise ValueError({message!r})"])

    # the optimizer ---------------------------------------------------------------------
    def update(self, scalars: dict[str, str]) -> list[str]:
        """Scalar params' gradients into G (`scalars`: result name -> the value holding
        it), then clipping and the optimizer's update of every param element."""
        plan, lines = self.plan, []
        for p, name, r in zip(self.params, plan.outputs[1:], plan.results[1:]):
            if self.prog[r].shape == ():  # a scalar param's gradient is a local
                lines.append(f"G[{self.param_offsets[p]}] = {scalars[name]}")
        hyper = ", ".join(f"h_{h}" for h in self.train.hyper)
        lines += ["clip_gradients(G, max_norm, max_value)",
                  f"update(P, G, S, {hyper}{', ' if hyper else ''}t)"]
        return lines
