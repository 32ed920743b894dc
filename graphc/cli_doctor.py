"""`graphc doctor`: what this machine gives graphc, and what to fix (graphc/doctor.py)."""

from __future__ import annotations

import json

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def doctor_cmd(as_json: bool) -> None:
    """Versions, the BLAS and its core type, the renderer, CUDA and the module cache."""
    from graphc.doctor import report

    rows = report()
    if as_json:
        click.echo(json.dumps({k: v for k, v in rows if k != "blas"}
                              | {"blas": [v for k, v in rows if k == "blas"]}, indent=1))
        return
    width = max(len(k) for k, _ in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")
