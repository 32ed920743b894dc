"""`graphc viz`: a spec's diagram (.svg .png .pdf .dot .html) or its step-through stepper.

Values come from `--set` and the spec's default input "value"s, computed by the NumPy
reference in float64. Every failure is one `error:` line and exit status 1; impossible
option combinations are usage errors (exit 2), as click reports them.
"""

from __future__ import annotations

from pathlib import Path

import click

from graphc.cli import friendly, load_spec, parse_sets, set_option
from graphc.errors import InputError
from graphc.teach import reference, scene_for, teaching
from graphc.viz import THEMES, VIEWS, draw_view, make_options

EXTENSIONS = (".svg", ".png", ".pdf", ".dot", ".gv", ".html")


@click.command("viz")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False),
              help="Output file; its extension picks the format: .svg .png .pdf .dot .html")
@set_option
@click.option("--values/--no-values", default=True, show_default=True,
              help="Write forward values above the edges.")
@click.option("--grads/--no-grads", default=True, show_default=True,
              help="Write gradients below the edges.")
@click.option("--step", is_flag=True,
              help="Step through the forward and backward pass (-o NAME.html).")
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False),
              help="Also write numbered step-through frames for slides into this directory.")
@click.option("--frames-format", type=click.Choice(["svg", "png"]), default="svg",
              show_default=True)
@click.option("--collapse/--expand", default=None,
              help="Draw layers as one box, or as a cluster of their ops "
                   "[default: collapse graphs with more than 40 ops]")
@click.option("--view", type=click.Choice(VIEWS), default="values", show_default=True,
              help="forward: values only; values: values and gradients; "
                   "backward: the derived backward graph.")
@click.option("--theme", type=click.Choice(list(THEMES)), default="default", show_default=True,
              help="colorblind: Okabe-Ito blue/vermilion; print: black on white.")
@click.option("--digits", type=click.IntRange(0, 8), default=2, show_default=True,
              help="Decimals of the numbers shown.")
@click.option("--rankdir", type=click.Choice(["auto", "LR", "TB"]), default="auto",
              show_default=True, help="Left to right, top to bottom, or auto: top to bottom "
              "for long chains (more than 14 nodes deep).")
@click.option("--backend", type=click.Choice(["numpy"]), default="numpy", show_default=True,
              help="What computes the values: the NumPy reference, in float64.")
@click.option("--quiz", is_flag=True, help="Numbers left blank to fill in; writes the answer "
              "key beside OUT (STEM.key.EXT); with --step, a quiz stepper that checks answers.")
@click.option("--quiz-part", type=click.Choice(["all", "backward"]), default="all",
              show_default=True, help="Blank every computed number, or the gradients only.")
@click.option("--quiz-nodes", help="Blank only these nodes' numbers (comma-separated names).")
@click.option("--check-grads", is_flag=True, help="Mark each gradient ✓/✗ against central "
              "differences (float64); the relative error on hover.")
@click.option("--optimizer", help="With --step-diff/--show-state: NAME[:k=v,...], e.g. "
              "sgd:lr=0.1,momentum=0.9 [default: sgd:lr=0.1]")
@click.option("--step-diff", is_flag=True,
              help="Each param before and after the training step(s), and the change.")
@click.option("--steps", "n_steps", type=click.IntRange(1, 10000), default=1,
              show_default=True, help="Training steps for --step-diff/--show-state.")
@click.option("--show-state", is_flag=True,
              help="The optimizer's state beside each param, with the effective step size.")
@click.option("--memory", is_flag=True, help="What the backward pass keeps, node by node, "
              "in bytes, with the total and the peak.")
@click.option("--batch", type=click.IntRange(1), help="Batch size for --memory "
              "[default: the traced inputs', else 1].")
@click.option("--maps", is_flag=True, help="Each 4-D value and gradient (the first image's "
              "channels) and each conv layer's filters as a strip of heatmaps on one scale.")
@friendly
def viz_cmd(spec: str, out: str | None, sets: tuple[str, ...], values: bool, grads: bool,
            step: bool, frames_dir: str | None, frames_format: str, collapse: bool | None,
            view: str, theme: str, digits: int, rankdir: str, backend: str, quiz: bool,
            quiz_part: str, quiz_nodes: str | None, check_grads: bool, optimizer: str | None,
            step_diff: bool, n_steps: int, show_state: bool, memory: bool,
            batch: int | None, maps: bool) -> None:
    """Draw SPEC with its values and gradients, or step through one backward pass."""
    if out is None and frames_dir is None:
        raise click.UsageError("missing option '-o' / '--output' (e.g. -o model.svg)")
    ext = Path(out).suffix.lower() if out else None
    if out is not None and ext not in EXTENSIONS:
        raise InputError(f"{out}: unknown output type {ext or '(no extension)'!r}; "
                         "use .svg, .png, .pdf, .dot or .html")
    if step and ext not in (None, ".html"):
        raise click.UsageError(f"--step writes an HTML stepper: use -o NAME.html, or "
                               f"--frames DIR for numbered frames (got {out})")
    if (step or frames_dir) and view == "backward":
        raise click.UsageError("--step and --frames walk the forward diagram; "
                               "drop --view backward")
    if optimizer and not (step_diff or show_state):
        raise click.UsageError("--optimizer goes with --step-diff or --show-state")
    if quiz and view == "backward":
        raise click.UsageError("--quiz blanks the forward diagram; drop --view backward")
    if maps and ext in (".dot", ".gv"):
        raise click.UsageError("--maps embeds images: write .svg, .png, .pdf or .html")
    graph = load_spec(spec)
    if maps and not _has_maps(graph):
        click.echo(f"note: --maps: {graph.name} has no 4-D values (images [N, C, H, W] or "
                   "conv filters); drawing it without feature maps", err=True)
    inputs = parse_sets(sets) or None
    model = reference(graph) if step_diff or show_state else None
    sc = scene_for(model or graph, view=view, collapse=collapse, inputs=inputs,
                   compute=values or grads or step or frames_dir is not None)
    opts = make_options(view=view, values=values, grads=grads, theme=theme, digits=digits,
                        rankdir=rankdir, maps=maps)
    if sc.values is None and (values or grads or step or frames_dir) and graph.inputs:
        missing = [n for n, spec_ in graph.inputs.items()
                   if "value" not in spec_ and n not in (inputs or {})]
        sets = " ".join(f"--set {n}=..." for n in missing)
        if step or frames_dir:
            raise InputError(f"stepping through needs values: pass {sets} (inputs without "
                             "a default \"value\" in the spec)")
        click.echo(f"note: no values to show without {sets}; drawing the structure only",
                   err=True)
    if step and (check_grads or memory):
        raise click.UsageError("--check-grads and --memory mark a diagram: drop --step "
                               "(or use --frames DIR for slides)")
    key_opts, extra = teaching(sc, opts, model, check_grads=check_grads, optimizer=optimizer,
                               step_diff=step_diff, steps=n_steps, show_state=show_state,
                               memory=memory, batch=batch, inputs=inputs)
    if quiz:
        nodes = [n.strip() for n in quiz_nodes.split(",") if n.strip()] if quiz_nodes else None
        opts = teaching(sc, key_opts, quiz=True, quiz_part=quiz_part, quiz_nodes=nodes)[0]
    else:
        opts = key_opts
    if quiz and step:
        from graphc.viz.quiz import quiz_page

        try:
            text, count = quiz_page(sc, opts)
        except ValueError as e:
            raise InputError(str(e)) from None
        _write(out, text.encode("utf-8"))
        click.echo(f"wrote {out} ({count} questions)")
        return
    if frames_dir is not None:
        from graphc.viz.html import write_frames

        paths = write_frames(sc, opts, frames_dir, frames_format, progress=_progress,
                             extra=extra)
        click.echo(f"wrote {len(paths)} frames to {frames_dir}")
    if out is None:
        return
    if step:
        from graphc.viz.html import stepper_page

        text, count = stepper_page(sc, opts, progress=_progress, extra=extra)
        _write(out, text.encode("utf-8"))
        click.echo(f"wrote {out} ({count} steps)")
        return
    dot = draw_view(sc, opts, view, collapse)
    _write(out, _encode(dot.source, ext, sc.graph.name))
    click.echo(f"wrote {out}")
    if quiz:
        key = Path(out).with_name(Path(out).stem + ".key" + Path(out).suffix)
        from dataclasses import replace

        key_dot = draw_view(sc, replace(key_opts, caption=key_opts.caption + ("answer key",)),
                            view, collapse)
        _write(str(key), _encode(key_dot.source, ext, sc.graph.name))
        click.echo(f"wrote {key} (the answer key)")


def _has_maps(graph) -> bool:
    from graphc.passes.pipeline import forward_program

    return any(len(n.shape) == 4 for n in forward_program(graph))


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _encode(source: str, ext: str, name: str) -> bytes:
    from graphc.viz.render import render, svg_text

    if ext in (".dot", ".gv"):
        return source.encode("utf-8")
    if ext == ".html":
        from graphc.viz.html import static_html

        return static_html(svg_text(source), name).encode("utf-8")
    fmt = ext[1:]
    return render(source, fmt, dpi=150 if fmt == "png" else None)


def _write(path: str, data: bytes) -> None:
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise InputError(f"{path}: the directory {str(p.parent)!r} does not exist")
    p.write_bytes(data)
