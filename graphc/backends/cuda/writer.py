"""The CUDA writer: renders a CUDA schedule (graphc.passes.schedule) as Numba CUDA source,
one `@cuda.jit` kernel per kernel record, and the host functions of one entry point:
`<e>_dims` (sizes from the inputs), `<e>_buffers` (device arrays, allocated once per
sizes), `<e>_checks` (input checks, on the host) and `<e>_launch` (the launches in order)."""

from __future__ import annotations

import ast
import re

from graphc.backends.cuda import templates as T
from graphc.backends.cuda import window
from graphc.errors import CompileError
from graphc.ir import Program, format_shape
from graphc.ops import REGISTRY
from graphc.passes.loops import (
    LoopBody,
    describe,
    elementwise_expr,
    reduce_fields,
    reduced_axes,
    substitute,
)
from graphc.passes.plan import Step
from graphc.passes.schedule import ATOMICS, CUDA, schedule

_NAME = re.compile(r"\b([vr]\d+)\b(\s*\[)?")
_DIM = re.compile(r"\bd\d+\b")


def _indent(lines: list[str], n: int = 4) -> list[str]:
    return [" " * n + line if line else "" for line in lines]


class EntryWriter:
    """The kernels and host functions of one entry (`name`): `results` of `program`;
    with `train`, the optimizer's update kernel runs last (see `update`)."""

    def __init__(self, name: str, program: Program, results: list[str], dtype: str,
                 block: int, train=None):
        self.name, self.prog, self.dtype, self.block = name, program, dtype, block
        self.sched = schedule(program, list(results), CUDA, update=train is not None)
        self.plan = plan = self.sched.plan
        self.train = train
        self.slots = plan.workspace()
        self.kernels: list[str] = []  # source of each @cuda.jit kernel
        self.signatures: dict[str, str] = {}  # kernel -> its Numba signature (for PTX)
        self.launch: list[str] = []  # host statements, in order
        self.checks: list[str] = []  # host statements of the input checks
        self.views: dict[str, str] = {}  # extra device views: name -> expression
        self.setup: list[str] = []  # launches run once, when the buffers are made
        used = {a for n in program for a in n.args} | set(results)
        self.args = [i for i in [*program.fed(), *program.params.values()] if i in used]
        self.scalars = {n.id for n in program if n.shape == ()}

    # ---- helpers ---------------------------------------------------------------------
    def dim(self, d) -> str:
        return self.plan.dim(d)

    def shape(self, shape) -> str:
        dims = [self.dim(d) for d in shape]
        return "(1,)" if not dims else f"({dims[0]},)" if len(dims) == 1 \
            else f"({', '.join(dims)})"

    def size(self, shape) -> str:
        return " * ".join(self.dim(d) for d in shape) or "1"

    def kernel(self, name: str, source: str, doc: list[str]) -> str:
        """Add a kernel: its source gets the dims it uses as its first arguments, the
        arrays it indexes, and scalar values (1-element arrays `s_<id>`) loaded first;
        returns the arguments a launch passes."""
        lines = source.split("\n")
        args = [a for a in re.search(r"\((.*)\):", lines[1]).group(1).split(", ") if a]
        scalars: list[str] = []
        for m in _NAME.finditer("\n".join(lines[2:])):
            n = m.group(1)
            if m.group(2):
                if n not in args:
                    args.append(n)
            elif n in self.scalars and n not in scalars:
                scalars.append(n)
        dims = sorted(set(_DIM.findall(source)), key=lambda d: int(d[1:]))
        lines[1] = f"def {name}({', '.join([*dims, *args, *[f's_{v}' for v in scalars]])}):"
        lines[3:3] = _indent([f"{v} = s_{v}[0]" for v in scalars])
        self.kernels.append("\n".join([*("# " + d.lstrip("# ") for d in doc), *lines]))
        types = [self.type_of(a) for a in [*dims, *args, *[f"s_{v}" for v in scalars]]]
        self.signatures[name] = f"void({', '.join(types)})"
        return ", ".join([*dims, *[self.ref(a) for a in args], *[self.ref(v) for v in scalars]])

    def type_of(self, arg: str) -> str:
        """The Numba type a kernel argument has at launch (C-contiguous arrays)."""
        if _DIM.fullmatch(arg):
            return "int64"
        node = self.prog[arg[2:]] if arg[:2] in ("s_", "o_") else self.prog[
            self.plan.results[int(arg[1:])] if arg[0] == "r" else arg]
        dt = self.dtype if node.dtype == "float" else node.dtype
        ndim = 1 if arg[:2] in ("s_", "o_") else max(len(node.shape), 1)
        return f"{dt}[{', '.join([':'] * (ndim - 1) + ['::1'])}]"

    def ref(self, name: str) -> str:
        return f"a[{name!r}]"

    def arrays_in(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        for line in lines:
            for m in _NAME.finditer(line):
                if m.group(2) and m.group(1) not in out:
                    out.append(m.group(1))
        return out

    # ---- the entry -------------------------------------------------------------------
    def write(self) -> None:
        steps = [k.step for k in self.sched.kernels if k.step is not None]
        self.atomic = {id(k.step) for k in self.sched.kernels if k.strategy == ATOMICS}
        k = 0
        while k < len(steps):
            s = steps[k]
            if s.kind == "scalar":  # a run of scalar steps: one single-thread kernel
                run = []
                while k < len(steps) and steps[k].kind in ("scalar", "check"):
                    if steps[k].kind == "check":
                        self.check(steps[k])
                    else:
                        run.append(steps[k])
                    k += 1
                self.scalar_kernel(run)
                continue
            getattr(self, f"step_{s.kind}")(s, k)
            k += 1

    def scalar_kernel(self, run: list[Step]) -> None:
        plan, lines = self.plan, []
        for s in run:
            n = s.nodes[0]
            node = self.prog[n]
            if plan.kinds[n] == "source" and node.op != "const":
                continue  # an input's scalar: its array is there already
            reader = LoopBody(plan, Step("loop", [], ()))
            if node.op == "const":
                expr = substitute(repr(float(node.attrs["value"])), {}, "F")
            elif plan.kinds[n] == "count":
                src = self.prog[node.args[0]].shape
                axes = REGISTRY[node.op].kernel["count"](node.attrs, len(src))
                axes = [axes] if isinstance(axes, int) else axes
                expr = f"F({' * '.join(self.dim(src[a]) for a in axes) or '1'})"
            elif plan.kinds[n] == "ew":
                expr = elementwise_expr(node, self.prog, reader.read, [], "F")
            elif "value" in REGISTRY[node.op].kernel:  # a softmax of a scalar
                x = reader.read(node.args[0], [])
                expr = substitute(REGISTRY[node.op].kernel["value"], {"x": x, "m": x, "s": 1.0},
                                  "F")
            else:  # a view or reshape of a scalar, or of a one-element array
                expr = reader.read(node.args[0], ["0"] * len(self.prog[node.args[0]].shape))
            lines += reader.lines + [describe(node), f"{n} = {expr}", f"s_{n}[0] = {n}"]
        if not lines:
            return
        name = f"{self.name}_k{len(self.kernels)}"
        computed = {line.split(" = ")[0] for line in lines if line.startswith("v")}
        src = [T.JIT, f"def {name}():", '    """scalars: one thread."""',
               "    if cuda.grid(1) == 0:", *_indent(lines, 8)]
        args = self.kernel(name, "\n".join(src), [])
        # values computed here are stores, not loads: drop their load lines
        text = self.kernels[-1].split("\n")
        self.kernels[-1] = "\n".join(t for t in text
                                     if not any(t.strip() == f"{c} = s_{c}[0]"
                                                for c in computed))
        static = {"const", "size"}  # values of the sizes alone: computed once per sizes
        if all(self.prog[st.nodes[0]].op in static for st in run):
            self.setup.append(f"{name}[1, 1]({args})  # depends on the sizes only")
        else:
            self.launch.append(f"{name}[1, 1]({args})")

    def step_loop(self, step: Step, k: int) -> None:
        plan = self.plan
        reducing = [n for n in step.nodes if plan.kinds[n] in ("reduce", "matmul")]
        name = f"{self.name}_k{len(self.kernels)}"
        dims = [self.dim(d) for d in step.shape]
        body = LoopBody(plan, step)
        if not reducing:
            lines = body.render()
            assert not body.pre and not body.post, "a CUDA loop with checks or accumulators"
            src = T.elementwise(name, self.arrays_in(lines), dims, lines,
                                doc=f"loop over {format_shape(step.shape)}")
            args = self.kernel(name, src, [])
            self.launch.append(f"{name}[grid({self.size(step.shape)}), BLOCK]({args})")
            return
        (n,) = reducing  # the CUDA target gives a reduction a kernel of its own
        node = self.prog[n]
        value = body.reduce_value(node)
        f = reduce_fields(plan, node)
        red = [len(step.shape) - 1] if plan.kinds[n] == "matmul" else \
            sorted(reduced_axes(node, self.prog[node.args[0]].shape))
        out = f"o_{n}"
        self.views[out] = f"{self.ref(n)}.reshape({self.size(node.shape)})"
        reads = self.arrays_in([*body.lines, value])
        if id(step) in self.atomic:  # see schedule.ATOMICS: zeroed, then every block adds
            scale = "F(1.0)" if f["final"] == "acc" else f"F(1.0) / F({self.size(step.shape)})"
            src = T.sum_atomic(name, [*reads, out], dims, body.lines, value, out, scale,
                               block=self.block, doc=f"{node.op} over {format_shape(step.shape)}")
            args = self.kernel(name, src, [describe(node)])
            self.launch += [f"zero_first[1, 1]({self.ref(out)})",
                            f"{name}[grid({self.size(step.shape)}), RBLOCK]({args})"]
            return
        src = T.reduce(name, [*reads, out], dims, red, body.lines, value, f["init"],
                       f["step"], f["final"], out, block=self.block,
                       doc=f"{node.op} over {format_shape(step.shape)}")
        args = self.kernel(name, src, [describe(node)])
        kept = self.size([d for a, d in enumerate(step.shape) if a not in red])
        self.launch.append(f"{name}[rgrid({kept}), RBLOCK]({args})")

    def step_matmul(self, step: Step, k: int) -> None:
        node = self.prog[step.nodes[0]]
        args = []
        for a in node.args:
            base = self.plan.transposed_base(a)
            args += [self.ref(base), "True"] if base else [self.ref(a), "False"]
        self.launch += [describe(node), f"matmul({', '.join(args)}, {self.ref(node.id)})"]

    def step_alias(self, step: Step, k: int) -> None:
        node = self.prog[step.nodes[0]]
        self.views[node.id] = f"{self.ref(node.args[0])}.reshape({self.shape(node.shape)})"

    def step_check(self, step: Step, k: int) -> None:
        self.check(step)

    def check(self, step: Step) -> None:
        """An input's values checked on the host before the copy in (a kernel never
        raises): its condition as NumPy, `and` / `or` / `not` as `&` / `|` / `~`."""
        node = self.prog[step.nodes[0]]
        op = REGISTRY[node.op]
        arg = node.args[0]
        if self.plan.kinds[arg] != "source":
            raise CompileError(f"node {node.id} ({node.op}): the cuda backend checks "
                               "input values on the host, but this one is computed; feed "
                               "the value as an input")
        names = {op.inputs[0]: f"x[{arg!r}]", **{k: v for k, v in node.attrs.items()
                                                 if isinstance(v, (int, float))}}
        cond = ast.unparse(_Vectorize().visit(ast.parse(substitute(op.kernel["check"], names),
                                                        mode="eval")))
        shown = substitute(op.kernel["check"], {k: v for k, v in names.items()
                                                if k != op.inputs[0]})
        who = repr(node.name) if node.name else node.id
        self.checks += [f"if not np.all({cond}):",
                        f"    return {f'{who}: invalid input values; {node.op} needs {shown}'!r}"]

    def step_opaque(self, step: Step, k: int) -> None:
        node = self.prog[step.nodes[0]]
        if node.op in ("softmax", "log_softmax"):
            return self.softmax(node)
        if node.op == "concat":
            return self.concat(node)
        shapes = [self.prog[a].shape for a in node.args]
        code = REGISTRY[node.op].opaque.code.get("cuda")
        if code is not None:  # an op file's own CUDA kernel: its launch statements
            self.launch += [describe(node), *code.call([self.ref(a) for a in node.args],
                                                       self.ref(node.id), node.attrs, shapes)]
            return None
        line = window.launch(node.op, [self.ref(a) for a in node.args], self.ref(node.id),
                             node.attrs, shapes)
        if line is not None:
            self.launch += [describe(node), line]
            return None
        raise CompileError(f"op {node.op!r} (node {node.id}) has no kernel for the cuda "
                           "target yet; use backend='cpu' for models with it")

    def softmax(self, node) -> None:
        shape = self.prog[node.args[0]].shape
        axis = node.attrs["axis"] % len(shape)
        outer, n, inner = (self.size(shape[:axis]), self.dim(shape[axis]),
                           self.size(shape[axis + 1:]))
        x, y = f"{node.args[0]}_3d", f"{node.id}_3d"
        self.views[x] = f"{self.ref(node.args[0])}.reshape(({outer}, {n}, {inner}))"
        self.views[y] = f"{self.ref(node.id)}.reshape(({outer}, {n}, {inner}))"
        if shape[axis + 1:]:
            fn = f"{node.op}_axis"
            self.launch += [describe(node), f"{fn}[grid({outer} * {inner}), BLOCK]"
                                            f"({self.ref(x)}, {self.ref(y)})"]
        else:  # along the last axis: a block per row, trees for the max and the sum
            x2, y2 = f"{node.args[0]}_rows", f"{node.id}_rows"
            self.views[x2] = f"{self.ref(node.args[0])}.reshape(({outer}, {n}))"
            self.views[y2] = f"{self.ref(node.id)}.reshape(({outer}, {n}))"
            self.launch += [describe(node), f"{node.op}_rows[rgrid({outer}), RBLOCK]"
                                            f"({self.ref(x2)}, {self.ref(y2)})"]

    def concat(self, node) -> None:
        out_shape = node.shape
        axis = node.attrs["axis"] % len(out_shape)
        start = "0"
        self.launch.append(describe(node))
        for x in node.args:
            shape = self.prog[x].shape
            name = f"{self.name}_k{len(self.kernels)}"
            idx = [f"i{k}" for k in range(len(shape))]
            at = list(idx)
            at[axis] = f"{idx[axis]} + {start}"
            src = T.elementwise(name, [x, node.id], [self.dim(d) for d in shape],
                                [f"{node.id}[{', '.join(at)}] = {x}[{', '.join(idx)}]"],
                                doc="concat: one input's slice")
            args = self.kernel(name, src, [])
            self.launch.append(f"{name}[grid({self.size(shape)}), BLOCK]({args})")
            start = f"{start} + {self.dim(shape[axis])}" if start != "0" \
                else self.dim(shape[axis])

    # ---- host functions ----------------------------------------------------------------
    def host(self) -> str:
        plan, prog, e = self.plan, self.prog, self.name
        dims = [plan.dim(d) for d in plan.dims]
        lines = [f"def {e}_dims(x):", '    """The sizes of the symbolic dims, from the '
                 'inputs (host arrays by node id)."""']
        for sym, (node_id, axis) in plan.dims.items():
            lines.append(f"    {plan.dim(sym)} = x[{node_id!r}].shape[{axis}]  # {sym!r}")
        lines.append(f"    return ({''.join(d + ', ' for d in dims)})")
        lines += ["", "", f"def {e}_checks(x):",
                  '    """None, or what is wrong with the input values."""',
                  *_indent(self.checks), "    return None"]
        lines += ["", "", f"def {e}_buffers(a, {''.join(d + ', ' for d in dims)}):",
                  '    """Every device array of one call, allocated once per set of sizes '
                  '(those in `a` are given)."""']
        body = []
        for i in self.args:
            body.append(f"a.setdefault({i!r}, cuda.device_array({self.shape(prog[i].shape)}, "
                        f"{_dt(prog[i].dtype)}))  # {prog[i].op} {prog[i].name!r}")
        for slot, shape in enumerate(plan.slot_shapes):
            body.append(f"w{slot} = cuda.device_array({self.shape(shape)}, FT)"
                        f"  # workspace {slot}")
        for n, slot in sorted(self.slots.items(), key=lambda kv: int(kv[0][1:])):
            body.append(f"a[{n!r}] = w{slot}")
        for out, r in zip(plan.outputs, plan.results):
            body.append(f"a.setdefault({out!r}, cuda.device_array("
                        f"{self.shape(prog[r].shape)}, {_dt(prog[r].dtype)}))")
        for n in prog:
            if n.shape == () and plan.modes[n.id] == "scalar" and n.id not in self.args \
                    and n.id not in plan.outputs:
                body.append(f"a[{n.id!r}] = cuda.device_array(1, {_dt(n.dtype)})")
        for n in prog:  # stored values that are neither workspace nor results
            if plan.modes[n.id] == "store" and n.id not in self.slots and \
                    n.id not in plan.outputs:
                body.append(f"a.setdefault({n.id!r}, cuda.device_array("
                            f"{self.shape(n.shape)}, {_dt(n.dtype)}))")
        for name, expr in self.views.items():
            body.append(f"a[{name!r}] = {expr}")
        lines += _indent(body + self.setup) + ["    return a"]
        lines += ["", "", f"def {e}_launch(a, {''.join(d + ', ' for d in dims)}matmul"
                  f"{', clip_norm=False' if self.train else ''}):",
                  f'    """The kernels of {e}, in order (a: its device arrays by name)."""']
        lines += _indent(self.launch or ["pass"])
        if self.train:
            lines += _indent(["if clip_norm:", "    grad_sq_sum[rgrid(a['G'].size), RBLOCK]"
                              "(a['G'], a['C'])",
                              f"{e}_update[grid(a['P'].size), BLOCK](a['P'], a['G'], a['S'], "
                              "a['H'], a['C'])"])
        return "\n".join(lines)

    def constants(self) -> str:
        plan, prog, e = self.plan, self.prog, self.name.upper()
        outs = tuple((o, prog[r].shape == ()) for o, r in zip(plan.outputs, plan.results))
        names = {k: v for k, v in prog.inputs.items() if v in self.args}
        params = {k: v for k, v in prog.params.items() if v in self.args}
        return "\n".join([f"{e}_ARGS = {tuple(self.args)!r}  # copied in, by node id",
                          f"{e}_OUT = {outs!r}  # copied out: (name, is a scalar)",
                          f"{e}_INPUTS = {names!r}  # spec name -> node id",
                          f"{e}_PARAMS = {params!r}"])

    def update_kernel(self) -> str:
        t = self.train
        return T.update(f"{self.name}_update", t.lines, tuple(t.slots), list(t.hyper),
                        t.optimizer)


class _Vectorize(ast.NodeTransformer):
    """`a and b` -> `(a) & (b)`, `not a` -> `~(a)`: a scalar condition over arrays."""

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        self.generic_visit(node)
        op = ast.BitAnd() if isinstance(node.op, ast.And) else ast.BitOr()
        out = node.values[0]
        for v in node.values[1:]:
            out = ast.BinOp(out, op, v)
        return out

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        self.generic_visit(node)
        return ast.UnaryOp(ast.Invert(), node.operand) if isinstance(node.op, ast.Not) \
            else node


def _dt(kind: str) -> str:
    return "FT" if kind == "float" else f"np.{kind}"
