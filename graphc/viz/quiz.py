"""The quiz stepper: one self-contained HTML page with the quiz diagram (blank boxes) that
asks for each gradient in turn, in backward order, and checks the typed answer.

The answers travel in the page (it runs offline, with no server), so it is for practice,
not for marking.
"""

from __future__ import annotations

import html

from graphc.viz.dot import Mask, Options, draw
from graphc.viz.html import _asset, script_json
from graphc.viz.render import svg_text
from graphc.viz.scene import Scene
from graphc.viz.teaching import questions


def quiz_page(sc: Scene, opts: Options) -> tuple[str, int]:
    """The page and its number of questions (`opts.blank` says what is blank)."""
    qs = questions(sc, opts.blank, opts.digits)
    if not qs:
        raise ValueError("the quiz stepper asks for scalar gradients, and this quiz has none "
                         "blank: use --quiz on a graph with scalar values, or --quiz-nodes")
    svg = svg_text(draw(sc, Options(**{**opts.__dict__, "title": False}), Mask()).source)
    data = {"svg": svg, "questions": [{k: q[k] for k in ("prompt", "answer", "value", "tol",
                                                         "node")} for q in qs]}
    name = html.escape(sc.graph.name)
    t = opts.theme
    return _PAGE.format(name=name, css=_asset("stepper.css"), hl=t.highlight, value=t.value,
                        grad=t.grad, data=script_json(data), js=_asset("quiz.js")), len(qs)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="graphc">
<title>{name} · graphc quiz</title>
<style>
{css}
:root {{ --value: {value}; --grad: {grad}; --hl: {hl}; }}
#gc-quiz {{ padding: 10px 24px; border-bottom: 1px solid #e5e7eb; }}
#gc-prompt {{ font: 24px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; }}
#gc-answer {{ font: inherit; font-size: 22px; width: 8em; padding: 4px 8px; }}
#gc-feedback[data-state="right"] {{ color: var(--value); font-weight: 600; }}
#gc-feedback[data-state="wrong"] {{ color: var(--grad); font-weight: 600; }}
</style>
</head>
<body data-phase="backward">
<header><h1>{name}: fill in the gradients</h1></header>
<section id="gc-quiz" aria-live="polite">
<div id="gc-progress"></div>
<label id="gc-prompt" for="gc-answer"></label> =
<input id="gc-answer" type="text" inputmode="decimal" autocomplete="off" spellcheck="false">
<button id="gc-check" type="button">check (Enter)</button>
<div id="gc-feedback" role="status"></div>
</section>
<main id="gc-stage"></main>
<nav aria-label="questions">
<button id="gc-prev" type="button" title="previous question (PageUp)">◀ prev</button>
<button id="gc-next" type="button" title="next question (PageDown)">next ▶</button>
<span id="gc-score"></span>
</nav>
<div class="gc-help">type a number and press Enter · Enter again after a right answer goes on ·
PageUp/PageDown move between questions · answers as rounded on the key are accepted</div>
<script id="gc-frames" type="application/json">{data}</script>
<script>
{js}
</script>
</body>
</html>
"""
