"""`graphc compile`: write a spec's standalone module (numpy and numba only) and its
initial params, and say what was built: kernels, fused ops, params, FLOPs and bytes."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from graphc.cli import friendly, load_spec
from graphc.errors import InputError


def _dump(after: str | None):
    """A pass pipeline callback printing the graph after the pass named `after`."""
    if after is None:
        return None

    def dump(name: str, program) -> None:
        if name == after:
            click.echo(f"# after {name}: {program.name!r}, {len(program)} nodes")
            click.echo(program.dump())

    return dump


def _poly(p, dims: dict[str, str]) -> str:
    """A polynomial in the dims, with the spec's dim names: `4,096 + 1,568·'B'`."""
    terms = []
    for mono, c in sorted(p.items(), key=lambda kv: len(kv[0])):
        factors = [f"{dims.get(d, d)!s}" for d in mono]
        terms.append("·".join([f"{c:,}"] + factors))
    return " + ".join(terms) or "0"


def _dump_schedules(graph, backend: str, dtype: str) -> None:
    """The kernel IR of the forward pass and of the train step, for the backend's target."""
    from graphc.passes import forward_program, grad_program, prune
    from graphc.passes.schedule import CPU, CUDA, schedule

    target = CUDA if backend == "cuda" else CPU
    cast = "F" if dtype == "float32" else None
    fwd = forward_program(graph)
    outputs = prune(fwd, fwd.outputs.values())
    click.echo(schedule(outputs, list(fwd.outputs.values()), target, cast).dump("forward"))
    if fwd.loss is not None:
        prog = grad_program(fwd, (), keep_outputs=False)
        results = [prog.loss, *(prog.grads[p] for p in prog.params)]
        click.echo(schedule(prog, results, target, cast, update=bool(prog.params))
                   .dump("train_step"))


@click.command("compile")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", required=True, type=click.Path(file_okay=False),
              help="Directory for <module>.py and <module>_params.npz (created if needed).")
@click.option("--backend", type=click.Choice(["cpu", "cuda"]), default="cpu",
              show_default=True, help="What the module runs on.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True, help="The float type of params and arithmetic.")
@click.option("--dump-after", metavar="PASS",
              type=click.Choice(["lower", "differentiate", "simplify", "prune", "plan",
                                 "schedule"]),
              help="Print the graph after this pass (prune runs for forward and backward), "
                   "the kernel plan, or the kernel IR for the backend's target (schedule).")
@friendly
def compile_cmd(spec: str, out: str, backend: str, dtype: str, dump_after: str | None) -> None:
    """Write SPEC as a standalone module: forward, loss_and_grad and a fused train_step."""
    graph = load_spec(spec)
    if Path(out).suffix.lower() == ".py":
        from graphc.backends.cache import safe_name

        name, parent = safe_name(graph.name), str(Path(out).parent)
        raise InputError(f"-o {out}: expected a directory, not a .py file: graphc compile "
                         f"writes {name}.py and {name}_params.npz into it (try -o {parent})")
    if dump_after == "schedule":
        _dump_schedules(graph, backend, dtype)
    if backend == "cuda":
        from graphc.standalone import standalone_cuda as standalone
    else:
        from graphc.standalone import standalone

    built = standalone(graph, dtype, dump=_dump(dump_after))
    if dump_after == "plan":
        for e in built["entries"]:
            click.echo("\n".join(e["plan"]))
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    module = folder / f"{built['name']}.py"
    module.write_text(built["source"])
    params_file = folder / f"{built['name']}_params.npz"
    np.savez(params_file, **built["params"])
    n = sum(p.size for p in built["params"].values())
    click.echo(f"wrote {module} ({built['source'].count(chr(10))} lines) and {params_file}")
    click.echo(f"  {graph.name!r} in {built['dtype'].name}: {n:,} parameters in "
               f"{len(built['params'])} arrays")
    for e in built["entries"]:
        what = f"{e['kernels']} kernels ({e['loops']} loops, {e['matmuls']} BLAS matmuls)"
        ops = "op" if e["fused"] == 1 else "ops"
        click.echo(f"  {e['entry']}: {what}, {e['fused']} {ops} fused into shared loops")
    last = built["entries"][-1]
    if last["entry"] == "train_step":
        click.echo(f"  train_step: the update of {built['optimizer']!r} runs in the same call")
    dims = {k: repr(v) for k, v in last["dims"].items()}
    click.echo(f"  per {last['entry']} call: {_poly(last['flops'], dims)} FLOPs, "
               f"{_poly(last['bytes'], dims)} bytes of arrays read and written (estimates)")

