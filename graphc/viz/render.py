"""Turning DOT text into SVG, PNG or PDF without stranding anyone.

A system Graphviz (`dot`) is used when present; otherwise the `graphviz-pure` command
from the PyPI package of that name (SVG and PNG); otherwise a RenderError whose one-line
message is the command that fixes it. DOT text itself never needs a renderer.
`GRAPHC_RENDERER=dot|graphviz-pure` picks one explicitly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from graphc.errors import GraphcError

FORMATS = ("svg", "png", "pdf")
PIP_FIX = "pip install graphviz-pure"
SYSTEM_FIX = "apt-get install graphviz"  # brew / conda install graphviz elsewhere


class RenderError(GraphcError, RuntimeError):
    """No renderer for a format, or the renderer failed."""


@dataclass(frozen=True)
class Renderer:
    name: str  # "dot" or "graphviz-pure"
    path: str
    formats: tuple[str, ...]


def _which(command: str) -> str | None:
    found = shutil.which(command)
    if found:
        return found
    # a virtual environment's scripts work even when it is not activated
    beside = Path(sys.executable).parent / command
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def renderers() -> list[Renderer]:
    """The renderers available here, best first (honouring GRAPHC_RENDERER)."""
    found = []
    dot = _which("dot")
    if dot:
        found.append(Renderer("dot", dot, FORMATS))
    pure = _which("graphviz-pure")
    if pure:
        found.append(Renderer("graphviz-pure", pure, ("svg", "png")))
    wanted = os.environ.get("GRAPHC_RENDERER")
    if wanted:
        if wanted not in ("dot", "graphviz-pure", "none"):
            raise RenderError(f"GRAPHC_RENDERER={wanted!r}: use dot, graphviz-pure or none")
        found = [r for r in found if r.name == wanted]
    return found


def find_renderer(fmt: str) -> Renderer:
    """The best renderer for `fmt`, or a RenderError that says how to get one."""
    if fmt not in FORMATS:
        raise RenderError(f"cannot render {fmt!r}: choose one of {', '.join(FORMATS)}, or dot")
    available = renderers()
    for r in available:
        if fmt in r.formats:
            return r
    if available:  # graphviz-pure alone: no PDF
        raise RenderError(f"{available[0].name} cannot write .{fmt}; install Graphviz: "
                        f"{SYSTEM_FIX} / brew install graphviz (or write .svg or .png)")
    raise RenderError(f"no Graphviz renderer found to write .{fmt}; run: {PIP_FIX} "
                    f"(or {SYSTEM_FIX}); .dot output needs no renderer")


def render(source: str, fmt: str = "svg", dpi: int | None = None) -> bytes:
    """DOT text rendered to `fmt` bytes."""
    r = find_renderer(fmt)
    args = [r.path, f"-T{fmt}"] + ([f"-Gdpi={dpi}"] if dpi else [])
    try:
        done = subprocess.run(args, input=source.encode("utf-8"), capture_output=True,
                              timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise RenderError(f"{r.name} failed to run: {e}") from None
    if done.returncode != 0 or not done.stdout:
        err = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RenderError(f"{r.name} failed (exit {done.returncode}): "
                          + (err[-1] if err else "no output"))
    if fmt == "svg" and b"graphc-maps-" in done.stdout:  # heatmap files: made self-contained
        from graphc.viz.maps import inline

        return inline(done.stdout.decode("utf-8")).encode("utf-8")
    return done.stdout


def render_svgs(sources: list[str]) -> list[str]:
    """Several graphs rendered to SVG in one renderer process (frames of a stepper)."""
    if not sources:
        return []
    out = render("\n".join(sources), "svg").decode("utf-8")
    parts = [p for p in out.split("<?xml") if p.strip()]
    svgs = [p[p.index("<svg"):] for p in parts]
    if len(svgs) != len(sources):  # a renderer that stops after one graph
        svgs = [_strip(render(s, "svg").decode("utf-8")) for s in sources]
    return svgs


def _strip(svg: str) -> str:
    """An SVG document without its XML prolog and doctype, ready to inline in HTML."""
    return svg[svg.index("<svg"):]


def svg_text(source: str) -> str:
    return _strip(render(source, "svg").decode("utf-8"))
