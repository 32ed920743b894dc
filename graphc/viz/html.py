"""The step-through stepper as one self-contained HTML file, and frames for slides.

The page inlines its CSS, its script and every frame's SVG: it opens from a USB stick
in a lecture hall with no network. Names reach the page only as escaped HTML text or
inside JSON whose <, > and & are \\u-escaped, so no name can close a tag or a script.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from graphc.viz.dot import Mask, Options, draw
from graphc.viz.render import render, render_svgs, svg_text
from graphc.viz.scene import Scene
from graphc.viz.step import Frame, frames

INTERVAL_MS = 1500  # play speed: one frame every 1.5 s


def _asset(name: str) -> str:
    return resources.files("graphc.viz").joinpath(name).read_text(encoding="utf-8")


def frame_sources(sc: Scene, opts: Options, slides: bool = False,
                  extra: Sequence[Frame] = ()) -> tuple[list[Frame], list[str]]:
    """The frames (the pass's, then `extra`: a training step's) and their DOT sources; on
    slides the caption is drawn under the title. Notes appear only on frames that ask."""
    fs = frames(sc, opts.digits) + list(extra)
    # a training step's notes (inside param boxes) wait for its frames; marks and memory
    # notes sit beside numbers, and are hidden with them until they are computed
    passive = {k: v for k, v in opts.notes.items() if not k.startswith("u:")}
    sources = []
    for f in fs:
        o = Options(**{**opts.__dict__, "title": slides,
                       "caption": (f.title, *f.caption) if slides else (),
                       "notes": opts.notes if f.notes else passive})
        sources.append(draw(sc, o, f.mask).source)
    return fs, sources


def script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no character of it can end the element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def stepper_html(sc: Scene, opts: Options, interval_ms: int = INTERVAL_MS) -> str:
    """One HTML page stepping through the forward and backward pass of a traced Scene."""
    return stepper_page(sc, opts, interval_ms)[0]


def stepper_page(sc: Scene, opts: Options, interval_ms: int = INTERVAL_MS,
                 progress: Callable[[str], None] | None = None,
                 extra: Sequence[Frame] = ()) -> tuple[str, int]:
    """The stepper page and its number of frames; `interval_ms` is the play speed.

    The diagram is rendered once, every number on it tagged with what it shows; each frame
    is only its caption, its highlights and, once for all frames, when each number appears
    (so a 400-frame stepper of a 200-layer network weighs about one diagram, not 400).
    """
    fs = frames(sc, opts.digits) + list(extra)
    if progress and len(fs) > 100:
        progress(f"{len(fs)} frames; rendering the diagram once")
    dot = draw(sc, Options(**{**opts.__dict__, "title": False, "notes": {}}), Mask())
    svgs = [tag_numbers(svg_text(dot.source), sc, opts)]
    if any(f.notes for f in fs):  # a training step's frames: the diagram with its notes
        noted = draw(sc, Options(**{**opts.__dict__, "title": False}), Mask())
        svgs.append(tag_numbers(svg_text(noted.source), sc, opts))
    reveal: dict[str, int] = {}
    steps = []
    for k, f in enumerate(fs):
        for i in f.mask.values if f.mask.values is not None else sc.forward:
            reveal.setdefault(f"v:{i}", k)
        for key in f.mask.grads if f.mask.grads is not None else ():
            reveal.setdefault(f"g:{key}", k)
        lit = f.mask.hot | {f.node}
        hot = sorted(f.mask.hot - {f.node}) + [e for e, a, b in dot.edge_ends if {a, b} <= lit]
        steps.append({"phase": f.phase, "title": f.title, "caption": f.caption,
                      "node": f.node, "hot": hot, "svg": 1 if f.notes else 0})
    data = {"interval": int(interval_ms), "svgs": svgs, "reveal": reveal, "frames": steps}
    t = opts.theme
    name = html.escape(sc.graph.name)
    doc = f"<p>{html.escape(sc.graph.doc)}</p>" if sc.graph.doc else ""
    return _STEPPER.format(name=name, doc=doc, css=_asset("stepper.css"), value=t.value,
                           grad=t.grad, hl=t.highlight, data=script_json(data),
                           js=_asset("stepper.js")), len(fs)


_NODE = re.compile(r'(<g id="((?:val|br|grp)[^"]*)" class="node">)(.*?)(</g>)', re.S)
_TEXT = re.compile(r'<text\b([^>]*?)\bfill="([^"]*)"')


def tag_numbers(svg: str, sc: Scene, opts: Options) -> str:
    """Each value (green) and gradient (red) text of a rendered diagram gets
    data-k="v:ID" or data-k="g:KEY" (a Mask key), so that the page can reveal it."""
    value, grad = opts.theme.value.lower(), opts.theme.grad.lower()

    def node(m: re.Match) -> str:
        key = m[2]
        if key.startswith("grp"):
            params = [p for p in sc.params_of(sc.units[key]) if sc.grad(p) is not None]
            v_key, g_keys = None, [f"g:{p}" for p in params]
        elif key.startswith("br_"):
            v, j = key[3:].rsplit("_", 1)
            v_key, g_keys = f"v:{v}", [f"g:{v}#{j}"]
        else:
            v_key, g_keys = f"v:{key[4:]}", [f"g:{key[4:]}"]
        queue = list(g_keys)

        def text(t: re.Match) -> str:
            fill = t[2].lower()
            k = v_key if fill == value and v_key else (queue.pop(0) if fill == grad and queue
                                                       else None)
            return t[0] if k is None else f'<text data-k="{k}"{t[1]}fill="{t[2]}"'

        return m[1] + _TEXT.sub(text, m[3]) + m[4]

    return _NODE.sub(node, svg)


_STEPPER = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="graphc">
<title>{name} · graphc stepper</title>
<style>
{css}
:root {{ --value: {value}; --grad: {grad}; --hl: {hl}; }}
</style>
</head>
<body data-phase="forward">
<header><h1>{name}</h1>{doc}</header>
<section id="gc-caption" aria-live="polite">
<div id="gc-phase"></div><div id="gc-title"></div><div id="gc-lines"></div>
</section>
<main id="gc-stage"></main>
<nav aria-label="frames">
<button id="gc-prev" type="button" title="previous step (←)">◀ prev</button>
<button id="gc-play" type="button" title="play / pause (space)" aria-pressed="false">▶ play</button>
<button id="gc-next" type="button" title="next step (→)">next ▶</button>
<input id="gc-slider" type="range" min="0" max="0" value="0" step="1" aria-label="step">
<span id="gc-counter"></span>
</nav>
<div class="gc-help">← → step · space play/pause · Home/End first/last ·
values above each edge, gradients below; the highlighted node is the current step</div>
<script id="gc-frames" type="application/json">{data}</script>
<script>
{js}
</script>
</body>
</html>
"""


def static_html(svg: str, name: str) -> str:
    """A diagram as a page of its own (the SVG inline, nothing fetched)."""
    title = html.escape(name)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{title} · graphc</title>\n<style>body{{margin:16px;font-family:"
            "system-ui,sans-serif}svg{max-width:100%;height:auto}</style>\n</head>\n<body>\n"
            f"{svg}\n</body>\n</html>\n")


CHUNK = 25  # frames rendered per renderer process (and per progress line)


def write_frames(sc: Scene, opts: Options, directory: str | Path, fmt: str = "svg",
                 progress: Callable[[str], None] | None = None,
                 extra: Sequence[Frame] = ()) -> list[Path]:
    """Numbered frames for slides (frame_001.svg, ...), each captioned with its step;
    `progress` hears how far a long render has come."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    fs, sources = frame_sources(sc, opts, slides=True, extra=extra)
    width = max(3, len(str(len(fs))))
    paths = []
    for start in range(0, len(sources), CHUNK):
        part = sources[start:start + CHUNK]
        if fmt == "svg":
            blobs = [s.encode("utf-8") for s in render_svgs(part)]
        else:
            blobs = [render(s, fmt, dpi=150 if fmt == "png" else None) for s in part]
        for k, blob in enumerate(blobs, start + 1):
            p = out / f"frame_{k:0{width}d}.{fmt}"
            p.write_bytes(blob)
            paths.append(p)
        if progress and len(sources) > CHUNK:
            progress(f"frames: {len(paths)} of {len(sources)} rendered")
    captions = out / "captions.txt"
    captions.write_text("".join(f"{k:0{width}d} [{f.phase}] {f.title}\n"
                                + "".join(f"    {line}\n" for line in f.caption)
                                for k, f in enumerate(fs, 1)), encoding="utf-8")
    return paths
