"""The `graphc` command line (click). Commands that need heavy imports (Numba, Graphviz)
live in their own modules and are loaded only when called."""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import click
import numpy as np

from graphc.errors import GraphcError, InputError, ShapeWarning

# command name -> "module:attribute", imported on first use
LAZY_COMMANDS = {
    "compile": "graphc.cli_compile:compile_cmd",
    "viz": "graphc.cli_viz:viz_cmd",
    "train": "graphc.cli_train:train_cmd",
    "lr-find": "graphc.cli_train:lr_find_cmd",
    "doctor": "graphc.cli_doctor:doctor_cmd",
    "convert": "graphc.cli_convert:convert_cmd",
}


class LazyGroup(click.Group):
    def main(self, *args, **kwargs):
        # output still buffered when a command returns is written at exit: flush it here,
        # so that a reader that went away (`graphc ops | head -2`) is handled as below
        try:
            return super().main(*args, **kwargs)
        finally:
            try:
                sys.stdout.flush()
            except BrokenPipeError:
                broken_pipe()

    def list_commands(self, ctx):
        lazy = [n for n, target in LAZY_COMMANDS.items() if _module_exists(target)]
        return sorted([*super().list_commands(ctx), *lazy])

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS and _module_exists(LAZY_COMMANDS[name]):
            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


def _module_exists(target: str) -> bool:
    return importlib.util.find_spec(target.split(":")[0]) is not None


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def broken_pipe() -> None:
    """The reader of stdout went away (`graphc check spec.json | head -2`): stop quietly,
    as the Python docs advise (point stdout at devnull so that the exit's flush cannot fail
    again), with the status a shell gives a program that SIGPIPE ended (128 + 13)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. under CliRunner)
        pass
    sys.exit(141)


def _show_warning(python_way, message, category, filename, lineno, file=None,
                  line=None) -> None:
    """graphc's own warnings as one `warning:` line on stderr; others as Python shows them."""
    if issubclass(category, ShapeWarning):
        click.echo(f"warning: {message}", err=True)
    else:
        python_way(message, category, filename, lineno, file, line)


def friendly(fn):
    """Turn graphc's own errors (and file errors) into one `error:` line and exit 1, and
    its warnings into `warning:` lines."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = functools.partial(_show_warning, warnings.showwarning)
                return fn(*args, **kwargs)
        except GraphcError as e:
            fail(str(e))
        except BrokenPipeError:
            broken_pipe()
        except OSError as e:
            fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "))
        except KeyboardInterrupt:
            fail("interrupted")

    return wrapper


def load_spec(path: str):
    """A Graph from a .json spec or an .onnx model. A `<stem>.params.npz` beside a JSON
    spec (as `graphc convert` writes) gives its params' values."""
    import graphc

    p = Path(path)
    graph = graphc.load(p)  # an .onnx path is read by graphc.onnx
    beside = p.with_name(p.stem + ".params.npz")
    if p.suffix.lower() == ".json" and beside.exists() and graph.params:
        from graphc.runtime import read_params

        like = {k: np.zeros(v["shape"]) for k, v in graph.params.items()}
        for name, value in read_params(beside, like).items():
            graph.params[name]["init"] = value.tolist()
        graph._program = None
        graph = graphc.load(graph.to_json() | {"graphc": 1})
        graph.source = str(p)
        click.echo(f"params from {beside}", err=True)
    return graph


def parse_sets(items: tuple[str, ...]) -> dict[str, Any]:
    """`--set NAME=VALUE`: VALUE is a JSON number or nested list, or @file.npy."""
    out: dict[str, Any] = {}
    for item in items:
        name, eq, text = item.partition("=")
        if not eq or not name:
            raise InputError(f"--set {item!r}: expected NAME=VALUE, e.g. --set x=[1,2] "
                             "or --set x=@x.npy")
        if text.startswith("@"):
            try:
                out[name] = value = np.load(text[1:], allow_pickle=False)
            except (OSError, ValueError) as e:
                raise InputError(f"--set {name}: cannot read {text[1:]!r} as a .npy file "
                                 f"({e})") from None
        else:
            try:  # json.loads takes NaN and Infinity: refused below, with nan and inf
                value = json.loads(text)
            except json.JSONDecodeError as e:
                if text.strip().lower().lstrip("+-") not in ("nan", "inf", "infinity"):
                    raise InputError(f"--set {name}: {text!r} is not a JSON number or list "
                                     f"({e.msg} at column {e.colno})") from None
                value = float(text)  # nan, inf: the same answer as NaN, below
            if isinstance(value, bool) or not isinstance(value, (int, float, list)):
                raise InputError(f"--set {name}: expected a number or a nested list, "
                                 f"got {text!r}")
            out[name] = value
        try:
            numbers = np.asarray(value, dtype=float)
        except (ValueError, TypeError, OverflowError):
            raise InputError(f"--set {name}: {text!r} is not a regular array of numbers") from None
        if not np.isfinite(numbers).all():
            bad = numbers.flat[int(np.argmin(np.isfinite(numbers).ravel()))]
            word = "NaN" if bad != bad else ("Infinity" if bad > 0 else "-Infinity")
            raise InputError(f"--set {name}: {word} is not a finite number; pass finite values")
    return out


def set_option(fn):
    return click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                        help="An input value: a JSON number or nested list, or @file.npy.")(fn)


def fmt_array(a: np.ndarray, precision: int = 4) -> str:
    a = np.asarray(a)
    if a.ndim == 0:
        return f"{float(a):.{precision}g}"
    return np.array2string(a, precision=precision, threshold=20, edgeitems=3,
                           max_line_width=88, suppress_small=True)


def to_jsonable(a: np.ndarray) -> Any:
    a = np.asarray(a)
    return a.item() if a.ndim == 0 else a.tolist()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="graphc")
def main() -> None:
    """graphc: compile neural-network specs into fast kernels and annotated diagrams."""


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--memory", is_flag=True, help="Also print what the backward pass keeps from "
              "the forward pass, node by node, in bytes, with the total and the peak.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True,
              help="Batch size for --memory (symbolic dimensions).")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True, help="Float type for --memory.")
@click.option("--nodes", "list_nodes", is_flag=True,
              help="Also list every node (the primitives inside layers too) with its shape.")
@friendly
def check(spec: str, memory: bool = False, batch: int = 1, dtype: str = "float32",
          list_nodes: bool = False) -> None:
    """Validate SPEC; print its shapes and parameter counts."""
    from graphc.ir import SOURCE_OPS
    from graphc.passes import forward_program

    g = load_spec(spec)
    prog = forward_program(g)
    if g.train is not None:
        from graphc.train import check_train

        check_train(g)
    click.echo(f"{g.name}: ok" + (f"  ({g.doc})" if g.doc else ""))
    n_ops = sum(n.op not in ("input", "param", "const") for n in prog)
    click.echo(f"  {len(g.nodes)} spec nodes, {n_ops} primitive ops after expanding layers")
    click.echo("inputs")
    for name, i in prog.inputs.items():
        click.echo(f"  {name:<24} {_shape_text(prog[i])}")
    click.echo("params")
    total = 0
    for name, i in prog.params.items():
        n = int(np.prod(prog[i].shape))
        total += n
        click.echo(f"  {name:<24} {_shape_text(prog[i]):<20} {n:>12,}")
    click.echo(f"  {'total':<24} {'':<20} {total:>12,}")
    click.echo("outputs")
    for name, i in prog.outputs.items():
        click.echo(f"  {name:<24} {_shape_text(prog[i])}")
    if prog.loss is not None:
        click.echo(f"loss\n  {g.loss:<24} {_shape_text(prog[prog.loss])}")
    if list_nodes:
        click.echo("nodes")
        for node in prog:
            if node.op not in SOURCE_OPS:
                args = ", ".join(prog[a].name or a for a in node.args)
                click.echo(f"  {node.name or node.id:<24} {_shape_text(node):<20} "
                           f"{node.op}({args})")
    if memory:
        from graphc.teach_views import memory as memory_of
        from graphc.teach_views import memory_text

        if prog.loss is None:
            raise InputError("--memory: the spec has no loss, so there is no backward pass")
        click.echo(memory_text(memory_of(g, batch, dtype)), nl=False)


def _shape_text(node) -> str:
    return f"{node.dtype}[{', '.join(map(str, node.shape))}]"


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--wrt", multiple=True, metavar="INPUT",
              help="Also differentiate with respect to this input ('all': every float "
                   "input). Default: the inputs that have a default value in the spec.")
@click.option("--train/--eval", "training", default=None,
              help="Run everything in training mode (dropout masks, batch statistics; "
                   "prints the state the call leaves) or in evaluation mode. Default: "
                   "outputs evaluated, gradients trained, as Model.forward and Model.grad do.")
@click.option("--backend", type=click.Choice(["numpy", "cpu", "cuda"]), default="numpy",
              show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float64",
              show_default=True)
@friendly
def run(spec: str, sets: tuple[str, ...], as_json: bool, wrt: tuple[str, ...],
        training: bool | None, backend: str, dtype: str) -> None:
    """Run SPEC forward and backward; print outputs, loss and gradients."""
    import graphc
    from graphc.ir import FLOAT

    model = graphc.compile(load_spec(spec), backend=backend, dtype=dtype)
    inputs = parse_sets(sets)
    state, step = dict(model.state), model.step
    outputs = model.forward(training=bool(training), **inputs)
    prog = model.program
    if training and prog.loss is not None:  # the gradients: the same draws and start state
        model.state, model.step = state, step
    floats = [n for n, i in prog.inputs.items() if prog[i].dtype == FLOAT]
    if "all" in wrt:
        wrt = tuple(floats)
    elif not wrt:
        wrt = tuple(n for n in floats if "value" in model.graph.inputs[n])
    loss, grads = (model.grad(wrt=wrt, training=training is not False, **inputs)
                   if prog.loss is not None else (None, {}))
    shown_state = model.state if training else {}
    if as_json:
        click.echo(json.dumps({"outputs": {k: to_jsonable(v) for k, v in outputs.items()},
                               "loss": loss,
                               "grads": {k: to_jsonable(v) for k, v in grads.items()},
                               **({"state": {k: to_jsonable(v) for k, v in
                                             shown_state.items()}} if training else {})}))
        return
    click.echo("outputs")
    for k, v in outputs.items():
        click.echo(f"  {k} = {_indent(fmt_array(v), len(k) + 5)}")
    if loss is not None:
        click.echo(f"loss = {loss:.6g}")
        click.echo("gradients")
        for k, v in grads.items():
            head = f"  d{g_name(model)}/d{k} = "
            click.echo(head + _indent(fmt_array(v), len(head)))
    if shown_state:
        click.echo("state after the training call")
        for k, v in shown_state.items():
            click.echo(f"  {k} = {_indent(fmt_array(v), len(k) + 5)}")


def g_name(model) -> str:
    return model.graph.loss or "loss"


def _indent(text: str, n: int) -> str:
    return text.replace("\n", "\n" + " " * n)


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@set_option
@click.option("--eps", default=1e-6, show_default=True, help="Finite-difference step.")
@click.option("--tol", default=1e-5, show_default=True, help="Largest relative error accepted.")
@click.option("--max-elements", default=20, show_default=True,
              help="Elements checked per tensor (chosen at random when there are more).")
@friendly
def gradcheck(spec: str, sets: tuple[str, ...], eps: float, tol: float, max_elements: int) -> None:
    """Compare analytic gradients with finite differences (float64); exit 1 on a mismatch."""
    from graphc.gradcheck import gradcheck as run_check
    from graphc.gradcheck import sample_inputs

    g = load_spec(spec)
    if g.loss is None:
        raise InputError("the spec has no loss, so there are no gradients to check "
                         '(add "loss": "<name of a scalar node>")')
    inputs, sampled = sample_inputs(g, parse_sets(sets))
    if sampled:
        click.echo(f"no values given for {', '.join(sampled)}: checking at seeded random "
                   "ones (--set NAME=VALUE to choose)")
    rows = run_check(g, inputs, eps=eps, tol=tol, max_elements=max_elements)
    counts = [f"{r.checked}/{r.size}" for r in rows]
    width = max([9, *map(len, counts)])
    click.echo(f"{'value':<24} {'checked':<{width}} {'max abs err':>12} {'max rel err':>12}")
    for r, count in zip(rows, counts):
        mark = "ok" if r.ok else "MISMATCH"
        click.echo(f"{r.name:<24} {count:<{width}} {r.max_abs:>12.2e} "
                   f"{r.max_rel:>12.2e}  {mark}")
    bad = [r.name for r in rows if not r.ok]
    if bad:
        fail(f"gradients of {', '.join(bad)} differ from finite differences by more than {tol:g}")
    click.echo(f"all {len(rows)} gradients agree within {tol:g}")


@main.command()
@click.argument("name", required=False)
@friendly
def ops(name: str | None) -> None:
    """The op catalogue with formulas (or one op, by NAME)."""
    from graphc.errors import did_you_mean
    from graphc.spec import ops_by_family

    families = ops_by_family()
    if name is not None:
        found = [op for ops_ in families.values() for op in ops_ if op.name == name]
        if not found:
            hint = did_you_mean(name, [o.name for v in families.values() for o in v])
            fail(f"unknown op {name!r}" + (f" ({hint})" if hint else "; see `graphc ops`"))
        families = {found[0].family: found}
    for family, members in families.items():
        click.echo(click.style(family, bold=True))
        for op in members:
            attrs = ", ".join(f"{k}={_default(a)}" for k, a in op.attrs.items())
            sig = f"{op.name}({', '.join(op.inputs)}{'; ' + attrs if attrs else ''})"
            click.echo(f"  {sig}")
            click.echo(f"      {op.formula}")
            if op.gradient:
                click.echo(f"      gradient: {op.gradient}")


def _default(a) -> str:
    from graphc.ops.registry import REQUIRED

    return "required" if a.default is REQUIRED else json.dumps(a.default)


@main.command()
@friendly
def schema() -> None:
    """The JSON Schema of the spec format."""
    from graphc.spec import schema as spec_schema

    click.echo(json.dumps(spec_schema(), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
