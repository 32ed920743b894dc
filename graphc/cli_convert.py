"""`graphc convert`: an ONNX model to a graphc spec (params beside it in an .npz, which
every command that reads the spec picks up), or a spec to an ONNX model."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from graphc.cli import friendly, load_spec
from graphc.errors import InputError
from graphc.spec import dumps


@click.command("convert")
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path())
@click.option("--output", "outputs", multiple=True, metavar="NAME",
              help="Keep only this model output (repeat for several); ONNX input only.")
@click.option("--inline", is_flag=True,
              help="Write the params' values into the JSON instead of DST.params.npz.")
@click.option("--params", "params_path", type=click.Path(), default=None,
              help="Params .npz for the exported weights (as `graphc train --save` writes).")
@click.option("--opset", type=int, default=None, help="ONNX opset to write (default 20).")
@friendly
def convert_cmd(src: str, dst: str, outputs: tuple[str, ...], inline: bool,
                params_path: str | None, opset: int | None) -> None:
    """Convert SRC to DST: model.onnx -> spec.json, or spec.json -> model.onnx."""
    s, d = Path(src).suffix.lower(), Path(dst).suffix.lower()
    if not Path(dst).parent.is_dir():
        raise InputError(f"{dst}: directory {str(Path(dst).parent)!r} does not exist")
    if s == ".onnx" and d == ".json":
        _onnx_to_json(src, dst, list(outputs) or None, inline)
    elif s == ".json" and d == ".onnx":
        if outputs:
            raise InputError("--output selects outputs of an ONNX model; "
                             "for a spec, edit its \"outputs\"")
        _json_to_onnx(src, dst, params_path, opset)
    else:
        raise InputError(f"cannot convert {s or 'a file without suffix'} to "
                         f"{d or 'a file without suffix'}: graphc converts model.onnx to "
                         "spec.json and spec.json to model.onnx")


def _onnx_to_json(src: str, dst: str, outputs: list[str] | None, inline: bool) -> None:
    from graphc import onnx

    model = onnx.read(src)[0]
    spec = onnx.to_spec(model, outputs=outputs)
    onnx.load(model, outputs=outputs)  # the spec is valid and its shapes check
    values = {}
    if not inline:
        for name, p in spec.get("params", {}).items():
            values[name] = np.asarray(p["init"], dtype=np.float32).reshape(p["shape"])
            p["init"] = "zeros"
    Path(dst).write_text(dumps(spec))
    n = sum(v.size for v in values.values())
    if values:
        beside = Path(dst).with_name(Path(dst).stem + ".params.npz")
        np.savez(beside, **values)
        click.echo(f"wrote {dst} ({len(spec['nodes'])} nodes) and {beside} "
                   f"({len(values)} params, {n:,} numbers)")
    else:
        click.echo(f"wrote {dst} ({len(spec['nodes'])} nodes)")


def _json_to_onnx(src: str, dst: str, params_path: str | None, opset: int | None) -> None:
    import graphc
    from graphc import onnx

    graph = load_spec(src)
    model = graph
    if params_path is not None:
        model = graphc.compile(graph, backend="numpy")
        model.load(params_path)
    proto = onnx.export(model, dst, opset=opset)
    click.echo(f"wrote {dst} (opset {proto.opset_import[0].version}, "
               f"{len(proto.graph.node)} nodes)")
