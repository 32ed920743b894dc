"""Numba source for a plan: kernel functions, and the module around them.

A generated module is plain Python that imports only numpy and numba: a header of scalar
helpers and the matmul routine, one `@njit(cache=True)` kernel per entry point (a whole
forward, gradient or train step as one call), and small Python functions that check
inputs, keep a reusable workspace per thread and call the kernels.
"""

from __future__ import annotations

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
from graphc.backends.numba_templates import (
    INPUT_CHECKS,
    JIT,
    TRAIN_STATE,
    docstring,
    header,
    versions,
)
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
    def write(self) -> str:
        e, plan = self.entry, self.plan
        out = [JIT, f"def {e.name}_kernel({', '.join(self.signature())}):"]
        body: list[str] = []
        for sym, (node_id, axis) in plan.dims.items():
            body.append(f"# {plan.dim(sym)}: dimension {sym!r} (axis {axis} of {node_id})")
        body += self.declarations()
        for step in plan.steps:
            body += self.step(step)
        scalars = [name for name, r in zip(plan.outputs, plan.results)
                   if self.prog[r].shape == ()]
        if self.train:
            body += self.update()
            body.append(f"return {scalars[0]}")
        else:
            body.append(f"return ({''.join(o + ', ' for o in scalars)})")
        out += ["    " + line if line else "" for line in body]
        return "\n".join(out)

    def declarations(self) -> list[str]:
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
        args = []
        for a in node.args:
            base = self.plan.transposed_base(a)
            args += [base, "True"] if base else [a, "False"]
        return [describe(node), f"matmul2d({', '.join(args)}, {node.id})"]

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
    def update(self) -> list[str]:
        plan, lines = self.plan, []
        for p, name, r in zip(self.params, plan.outputs[1:], plan.results[1:]):
            if self.prog[r].shape == ():  # a scalar param's gradient is a local
                lines.append(f"G[{self.param_offsets[p]}] = {name}")
        hyper = ", ".join(f"h_{h}" for h in self.train.hyper)
        lines += ["clip_gradients(G, max_norm, max_value)",
                  f"update(P, G, S, {hyper}{', ' if hyper else ''}t)"]
        return lines


def update_function(train: Training) -> str:
    """The optimizer's statements, pasted into one loop over every parameter element."""
    slots = list(train.slots)
    hyper = list(train.hyper)
    args = ", ".join(["P", "G", "S", *hyper, "t"])
    body = ["for i in range(P.size):", "    p = P[i]", "    g = G[i]"]
    body += [f"    {s} = S[{k}, i]" for k, s in enumerate(slots)]
    body += [f"    {line}" for line in train.lines]
    body += ["    P[i] = p"] + [f"    S[{k}, i] = {s}" for k, s in enumerate(slots)]
    return "\n".join([JIT, f"def update({args}):",
                      f'    """{train.optimizer}: optimizer.update_lines(), per element."""']
                     + ["    " + b for b in body])


def arrays_function(w: KernelWriter) -> str:
    """`<entry>_arrays(...)`: the kernel's array arguments in, its results out; the
    workspace comes from a per-thread cache, so a steady state allocates only results."""
    e, plan, prog = w.entry, w.plan, w.prog
    if w.train:
        lines = [f"def {e.name}_arrays(params, state, arrays, hyper, t, max_norm, max_value):",
                 "    state.bind(params)"]
        if w.inputs:
            lines.append(f"    {''.join(n + ', ' for n in w.inputs)}= arrays")
    else:
        lines = [f"def {e.name}_arrays({', '.join(w.inputs + w.params)}):"]
    for sym, (node_id, axis) in plan.dims.items():
        lines.append(f"    {plan.dim(sym)} = {node_id}.shape[{axis}]")
    dims = "".join(d + ", " for d in w.dims())
    shapes = "".join(s + ", " for s in w.group_shapes())
    lines.append(f"    w = _workspace({e.name!r}, ({dims}), ({shapes}))")
    args = [*w.dims()] + [f"{n}.reshape(1)" if prog[n].shape == () else n for n in w.inputs]
    if w.train:
        args += ["*state.args"]
    else:
        args += [f"{n}.reshape(1)" if prog[n].shape == () else n for n in w.params]
        for name, r in w.outputs:
            dtype = "F" if prog[r].is_float else f"np.{prog[r].dtype}"
            lines.append(f"    {name} = np.empty({w.shape_expr(prog[r].shape)}, {dtype})")
            args.append(name)
    args.append("*w")
    if w.train:
        args += ["*hyper", "t", "max_norm", "max_value"]
        lines.append(f"    return {e.name}_kernel({', '.join(args)})")
        return "\n".join(lines)
    lines.append(f"    s = {e.name}_kernel({', '.join(args)})")
    arrays = {name for name, _ in w.outputs}
    out, k = [], 0
    for name in plan.outputs:
        if name in arrays:
            out.append(name)
        else:
            out.append(f"s[{k}]")
            k += 1
    lines.append(f"    return ({''.join(o + ', ' for o in out)})")
    return "\n".join(lines)


def _input_spec(w: KernelWriter) -> str:
    prog = w.prog
    items = [(prog[i].name, prog[i].dtype, tuple(prog[i].shape)) for i in w.inputs]
    return repr(tuple(items))


def constants(w: KernelWriter) -> list[str]:
    """Module constants describing the params and the optimizer (for TrainState)."""
    prog = w.prog
    params = tuple((prog[p].name, tuple(prog[p].shape), int(w.param_offsets[p].value({})))
                   for p in w.params)
    lines = [f"PARAMS = {params!r}  # (name, shape, offset in the packed array)",
             f"NP = {w.n_params}  # numbers in all params"]
    if w.train:
        t = w.train
        lines += [f"SLOTS = {t.slots!r}  # {t.optimizer}'s per-parameter state",
                  f"SLOT_INIT = {t.slot_init!r}",
                  f"HYPER = {t.hyper!r}  # defaults; the kernel takes them in this order",
                  f"FIXED_ZERO = {tuple(t.fixed_zero)!r}  # compiled out: they must stay 0"]
    return lines


def module_source(title: str, dtype: np.dtype, entries: list[Entry], *,
                  doc: str = "", params_file: str | None = None,
                  helper_module: str | None = None) -> str:
    """The whole module. With `params_file`, it is standalone: it checks inputs by name,
    has `init_params`, and dict-level `forward`, `loss_and_grad` and `train_step`."""
    writers = [KernelWriter(e, dtype) for e in entries]
    text = (f"Generated by graphc from the spec {title!r} ({dtype.name}); do not edit.\n"
            f"Built with {versions()}.\n{doc}")
    used = {n.op for w in writers for n in w.prog}
    parts = [docstring(text), header(dtype, helper_module, used)]
    all_inputs = {}
    for w in writers:
        for i in w.prog.inputs.values():
            all_inputs.setdefault(w.prog[i].name, None)
    parts.append("\n".join(constants(writers[0]) + [
        f"INPUT_NAMES = {tuple(all_inputs)!r}",
        f"PARAMS_FILE = {params_file!r}"]))
    for w in writers:
        parts.append(w.write())
        if w.train:
            parts.append(update_function(w.train))
            parts.append("\n".join(constants(w)[2:]))
        parts.append(arrays_function(w))
        parts.append(f"{w.entry.name.upper()}_INPUTS = {_input_spec(w)}")
        if w.train:
            parts.append(TRAIN_STATE.strip("\n"))
    parts.append(INPUT_CHECKS.strip("\n"))
    if params_file is not None:
        parts += dict_api(writers)
    return "\n\n\n".join(parts) + "\n"


def dict_api(writers: list[KernelWriter]) -> list[str]:
    out = []
    for w in writers:
        e, prog = w.entry, w.prog
        if e.train:
            continue
        params = tuple((prog[p].name, tuple(prog[p].shape)) for p in w.params)
        call = (f"{e.name}_arrays(*_inputs({e.name.upper()}_INPUTS, inputs), "
                f"*_params(params, {params!r}))")
        if e.name == "forward":
            names = tuple(prog[r].name for r in e.results)
            out.append("\n".join([
                "def forward(params, /, **inputs):",
                '    """The outputs by name, for params (a dict) and inputs by name."""',
                f"    out = {call}",
                f"    return {{k: np.asarray(v, F) for k, v in zip({names!r}, out)}}"]))
        else:
            names = tuple(prog[p].name for p in w.params)
            out.append("\n".join([
                "def loss_and_grad(params, /, **inputs):",
                '    """The loss and the gradient of every param, by name."""',
                f"    loss, *grads = {call}",
                f"    return float(loss), {{k: np.asarray(v, F) for k, v in zip({names!r}, "
                "grads)}"]))
    return out
