"""`graphc train` and `graphc lr-find`: training from the command line, with the spec's
`train` object as defaults. Output paths are checked before training starts, and the
params file is written only when training ended with finite params."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from graphc.cli import fail, friendly, load_spec
from graphc.errors import InputError

BACKENDS = ["cpu", "numpy"]


def _check_out(path: str | None, suffixes: tuple[str, ...], what: str) -> None:
    if path is None:
        return
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise InputError(f"{path}: {what} ends in {' or '.join(suffixes)}")
    if not p.parent.is_dir():
        raise InputError(f"{path}: directory {str(p.parent)!r} does not exist")


def _need_matplotlib(path: str | None) -> None:
    if path is None:
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("--plot needs matplotlib: pip install 'graphc[train]'") from None


def _optimizer(model, name: str | None, lr: float | None):
    spec = (model.graph.train or {}).get("optimizer", {"name": "adam", "lr": 1e-3})
    if isinstance(spec, str):
        spec = {"name": spec}
    if name is not None and (not isinstance(spec, dict) or
                             str(spec.get("name", "")).lower() != name.lower()):
        spec = {"name": name}  # another optimizer: the spec's arguments were for its own
    if lr is not None:
        spec = {**spec, "lr": lr}
    return spec


def _schedule(text: str | None):
    if text is None or not text.lstrip().startswith("{"):
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"--schedule: not a JSON object ({e.msg} at column {e.colno})") from None


def _need_no_data(model) -> None:
    used = {a for node in model.program for a in node.args}
    missing = [k for k, i in model.program.inputs.items()
               if i in used and "value" not in model.graph.inputs[k]]
    if missing:
        raise InputError(f"pass --data FILE: input{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(map(repr, missing))} have no default value in the spec")


def _pct_or_num(key: str, v: float | None) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.2f}%" if key.endswith("accuracy") else f"{v:.4g}"


@click.command("train")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--data", metavar="FILE",
              help=".npz with arrays named after the inputs, or .csv with a header row "
              "(optional when every input has a default value in the spec).")
@click.option("--val", metavar="FILE", help="Validation data, evaluated after every epoch.")
@click.option("--test", metavar="FILE", help="Test data, evaluated once at the end.")
@click.option("--target", metavar="COLUMN", help="CSV: the column holding the target.")
@click.option("--epochs", type=int, help="Default: the spec's train.epochs, else 10.")
@click.option("--batch-size", type=int, help="Default: the spec's train.batch_size, else 32.")
@click.option("--lr", type=float, help="Learning rate, overriding the spec's optimizer's.")
@click.option("--optimizer", metavar="NAME", help="sgd, adagrad, rmsprop, adam or adamw.")
@click.option("--schedule", metavar="NAME|JSON", help='A schedule name, a JSON object such '
              'as \'{"name": "step", "step_size": 10}\', or none.')
@click.option("--accumulate", type=int, help="Micro-batches per step (gradient accumulation).")
@click.option("--clip-grad-norm", type=float, help="Clip gradients to this global norm.")
@click.option("--patience", type=int, help="Stop when the validation loss has not improved "
              "for this many epochs (restores the best params).")
@click.option("--seed", type=int, help="Seed of the shuffling.")
@click.option("--init", "init_params", metavar="FILE", help="Start from these params.")
@click.option("-o", "--output", metavar="FILE", help="Write the trained params (.npz).")
@click.option("--history", metavar="FILE", help="Write the history (.json or .csv); with -o "
              "it defaults to the params file's name with .history.json.")
@click.option("--plot", metavar="FILE", help="Plot loss and metric curves (.png, .svg, .pdf).")
@click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32",
              show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--workers", type=int, help="Train data-parallel on this many Ray workers "
              "(pip install 'graphc[ray]'; see docs/scale-out.md).")
@click.option("--address", metavar="ADDR", help="With --workers: a running Ray cluster "
              "(auto, ray://HOST:10001); default: a local one.")
@friendly
def train_cmd(spec, data, val, test, target, epochs, batch_size, lr, optimizer, schedule,
              accumulate,
              clip_grad_norm, patience, seed, init_params, output, history, plot, backend,
              dtype, quiet, workers=None, address=None) -> None:
    """Train SPEC on --data; write the params (-o), the history and a plot."""
    import graphc
    from graphc.data import evaluate, find_head, prepare
    from graphc.train import TrainingError, fit, save_if_finite

    _check_out(output, (".npz",), "a params file")
    if history is None and output is not None:
        history = str(Path(output).with_suffix(".history.json"))
    _check_out(history, (".json", ".csv"), "a history file")
    _check_out(plot, (".png", ".svg", ".pdf"), "a plot")
    _need_matplotlib(plot)
    model = graphc.compile(load_spec(spec), backend=backend, dtype=dtype)
    if not quiet:
        from graphc.doctor import blas_warning

        if warning := blas_warning():
            click.echo(warning, err=True)
    if init_params:
        model.load(init_params)
    if data is None:
        _need_no_data(model)
    test_set = prepare(model, test, "test", target=target) if test else None
    t0 = time.perf_counter()
    try:
        hist = fit(model, data if data is not None else {}, epochs=epochs,
                   batch_size=batch_size, validation=val,
                   optimizer=_optimizer(model, optimizer, lr), schedule=_schedule(schedule),
                   accumulate=accumulate,
                   clip_grad_norm=clip_grad_norm, seed=seed, verbose=not quiet,
                   early_stopping=patience, target=target, workers=workers, address=address)
    except TrainingError as e:
        if history and e.history is not None and len(e.history):
            e.history.save(history)
        raise
    seconds = time.perf_counter() - t0
    restored = hist.stopped_early and hist.best_epoch
    last = hist.rows[hist.best_epoch - 1] if restored else hist.rows[-1]
    parts = [f"{k} {_pct_or_num(k, v)}" for k, v in last.items()
             if k in ("loss", "val_loss") or k.startswith("val_")]
    stop = (f", stopped early; params of the best epoch ({hist.best_epoch})" if restored
            else "")
    on = f" on {workers} Ray workers" if workers else ""
    click.echo(f"trained {len(hist)} epochs{on} in {seconds:.1f} s{stop}: {', '.join(parts)}")
    if test_set is not None:
        head = find_head(model)
        loss, metric = evaluate(model, test_set, head)
        extra = f", {head.metric} {_pct_or_num(head.metric, metric)}" if head else ""
        click.echo(f"test ({test}): loss {loss:.4g}{extra}")
    if not output:
        click.echo("the params were not saved (pass -o FILE.npz to keep them)")
    else:
        if not save_if_finite(model, output):
            fail(f"the trained params hold NaN or inf; {output} was not written")
        click.echo(f"wrote {output}")
    if history:
        hist.save(history)
        click.echo(f"wrote {history}")
    if plot:
        hist.plot(plot)
        click.echo(f"wrote {plot}")


@click.command("lr-find")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--data", required=True, metavar="FILE", help=".npz or .csv training data.")
@click.option("--target", metavar="COLUMN", help="CSV: the column holding the target.")
@click.option("-o", "--output", metavar="FILE", help="Plot loss against rate (.png, .svg, .pdf).")
@click.option("--batch-size", type=int, help="Default: the spec's train.batch_size, else 32.")
@click.option("--optimizer", metavar="NAME", help="Default: the spec's optimizer.")
@click.option("--start-lr", type=float, default=1e-7, show_default=True)
@click.option("--end-lr", type=float, default=10.0, show_default=True)
@click.option("--steps", type=int, default=100, show_default=True,
              help="Rates tried, one mini-batch each.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print rates and losses as JSON.")
@click.option("--backend", type=click.Choice(BACKENDS), default="cpu", show_default=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@friendly
def lr_find_cmd(spec, data, target, output, batch_size, optimizer, start_lr, end_lr, steps,
                seed, as_json, backend, quiet) -> None:
    """Sweep the learning rate exponentially, one mini-batch each; plot loss against it."""
    import graphc
    from graphc.train import lr_find

    _check_out(output, (".png", ".svg", ".pdf"), "a plot")
    _need_matplotlib(output)
    model = graphc.compile(load_spec(spec), backend=backend)
    result = lr_find(model, data, batch_size=batch_size,
                     optimizer=_optimizer(model, optimizer, None), start_lr=start_lr,
                     end_lr=end_lr, num_steps=steps, seed=seed, target=target,
                     verbose=not quiet and not as_json)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(f"{'rate':>10} {'loss':>10} {'smoothed':>10}")
        every = max(1, len(result.rates) // 12)
        for i in range(0, len(result.rates), every):
            click.echo(f"{result.rates[i]:>10.2e} {result.losses[i]:>10.4g} "
                       f"{result.smoothed[i]:>10.4g}")
        if result.suggestion:
            click.echo(f"suggested learning rate: {result.suggestion:.2g} (a tenth of the rate "
                       "where the smoothed loss was lowest)")
        else:
            click.echo("no suggestion: the loss was not finite at the first rate")
    if output:
        result.plot(output)
        if not as_json:
            click.echo(f"wrote {output}")
