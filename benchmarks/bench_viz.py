"""How long diagrams take (issue 4: a 784-256-10 MLP and a 20-layer network must render in
a few seconds). For each graph and layout: building the Digraph (trace included), then
rendering SVG with each renderer found; and the HTML stepper of the neuron and the MLP.
Median seconds of a few runs; the baseline is rendering the 8-node neuron the same way.

Then the scaling targets (issue 8 item 17): the backward view of 60 and 200 dense layers
(<= 10 s at 200) and their steppers (<= 25 MB and <= 60 s at 200), and each teaching view
of the 784-256-10 MLP at batch 64 (issue 13: each under 2 s), built and rendered to SVG.

    python benchmarks/bench_viz.py            # everything
    python benchmarks/bench_viz.py --targets  # the scaling and teaching-view targets only
    python benchmarks/bench_viz.py --maps     # the digits CNN with feature maps only
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np

import graphc
from graphc.teach import scene_for
from graphc.viz import make_options
from graphc.viz.html import stepper_page
from graphc.viz.render import render, renderers

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def deep(layers: int, width: int = 64) -> dict:
    nodes, prev = [], "x"
    for i in range(layers):
        nodes.append({"id": f"fc{i}", "op": "dense", "inputs": [prev],
                      "attrs": {"units": width, "activation": "relu", "init": "he_normal"}})
        prev = f"fc{i}"
    nodes.append({"id": "loss", "op": "cross_entropy", "inputs": [prev, "y"]})
    return {"graphc": 1, "name": f"{layers}-layer network",
            "inputs": {"x": {"shape": ["B", width]}, "y": {"shape": ["B"], "dtype": "int64"}},
            "nodes": nodes, "outputs": [prev], "loss": "loss"}


def dot_nodes(source: str) -> int:
    """Node statements in DOT text (edges and defaults excluded)."""
    return sum(1 for line in source.splitlines() if "[" in line and "->" not in line
               and not line.strip().startswith(("graph", "node", "edge", "label")))


def median_time(fn, *args, repeat: int = 3, **kwargs) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn(*args, **kwargs)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def stepper(spec, inputs) -> tuple[str, int]:
    return stepper_page(scene_for(spec, inputs=inputs), make_options())


def main() -> None:
    rng = np.random.default_rng(0)
    mnist = {"x": rng.normal(size=(64, 784)), "y": rng.integers(0, 10, 64)}
    deep_in = {"x": rng.normal(size=(64, 64)), "y": rng.integers(0, 64, 64)}
    cases = [
        ("neuron (baseline)", EXAMPLES / "neuron.json", None, None),
        ("784-256-10 collapsed", EXAMPLES / "mnist_mlp.json", None, True),
        ("784-256-10 collapsed B=64", EXAMPLES / "mnist_mlp.json", mnist, True),
        ("784-256-10 expanded B=64", EXAMPLES / "mnist_mlp.json", mnist, False),
        ("20 layers collapsed", graphc.load(deep(20)), None, True),
        ("20 layers collapsed B=64", graphc.load(deep(20)), deep_in, True),
        ("20 layers expanded B=64", graphc.load(deep(20)), deep_in, False),
        ("20 layers backward graph", graphc.load(deep(20)), deep_in, "backward"),
    ]
    found = renderers()
    names = [r.name for r in found]
    print(f"renderers: {', '.join(names) or 'none'}")
    head = f"{'graph':<26} {'DOT nodes':>9} {'build s':>8}"
    head += "".join(f" {n + ' svg s':>18}" for n in names)
    print(head)
    for label, spec, inputs, collapse in cases:
        opts = {"view": "backward"} if collapse == "backward" else {"collapse": collapse}
        build, dot = median_time(graphc.viz, spec, inputs=inputs, **opts)
        row = f"{label:<26} {dot_nodes(dot.source):>9} {build:>8.3f}"
        for r in names:
            os.environ["GRAPHC_RENDERER"] = r
            t, _ = median_time(render, dot.source, "svg")
            row += f" {t:>18.3f}"
        os.environ.pop("GRAPHC_RENDERER", None)
        print(row)
    print()
    for label, spec, inputs in [("neuron stepper", EXAMPLES / "neuron.json", None),
                                ("784-256-10 stepper B=64", EXAMPLES / "mnist_mlp.json", mnist),
                                ("20-layer stepper B=64", graphc.load(deep(20)), deep_in)]:
        t, (page, n) = median_time(stepper, spec, inputs)
        print(f"{label:<26} {n:>4} frames {t:>8.3f} s   {len(page) / 1e6:.2f} MB")


def once(fn, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def backward_svg(spec, inputs) -> int:
    from graphc.viz import draw_view

    sc = scene_for(spec, view="backward", inputs=inputs)
    return len(render(draw_view(sc, make_options(view="backward"), "backward").source, "svg"))


def teaching_view(spec, inputs, **views) -> int:
    from dataclasses import replace

    from graphc.teach import reference, teaching
    from graphc.viz import draw_view

    quiz = views.pop("quiz", False)
    model = reference(graphc.load(spec)) if views.get("step_diff") or views.get("show_state") \
        else None
    sc = scene_for(model or spec, inputs=inputs)
    opts = teaching(sc, make_options(), model, inputs=inputs, **views)[0]
    if quiz:
        opts = teaching(sc, opts, quiz=True)[0]
    return len(render(draw_view(sc, replace(opts), "values").source, "svg"))


def targets() -> None:
    rng = np.random.default_rng(0)
    print(f"{'scaling (issue 8 item 17)':<34} {'seconds':>8} {'MB':>7}  target")
    for layers in (60, 200):
        spec = graphc.load(deep(layers))
        inputs = {"x": rng.normal(size=(8, 64)), "y": rng.integers(0, 64, 8)}
        t, size = once(backward_svg, spec, inputs)
        print(f"{f'{layers} layers backward view':<34} {t:>8.2f} {size / 1e6:>7.2f}"
              + ("  <= 10 s" if layers == 200 else ""))
        t, (page, n) = once(stepper, spec, inputs)
        print(f"{f'{layers} layers stepper ({n} frames)':<34} {t:>8.2f} {len(page) / 1e6:>7.2f}"
              + ("  <= 60 s, <= 25 MB" if layers == 200 else ""))
    mnist = {"x": rng.normal(size=(64, 784)), "y": rng.integers(0, 10, 64)}
    spec = EXAMPLES / "mnist_mlp.json"
    print(f"\n{'784-256-10 B=64 view (issue 13)':<34} {'seconds':>8}  target < 2 s")
    base, _ = once(teaching_view, spec, mnist)
    print(f"{'values (baseline)':<34} {base:>8.2f}")
    for label, views in [("--quiz", {"quiz": True}), ("--check-grads", {"check_grads": True}),
                         ("--step-diff sgd", {"step_diff": True}),
                         ("--show-state adam --steps 3", {"show_state": True, "steps": 3,
                                                          "optimizer": "adam:lr=1e-3"}),
                         ("--memory", {"memory": True})]:
        t, _ = once(teaching_view, spec, mnist, **views)
        print(f"{label:<34} {t:>8.2f}  ({t / base:.1f}x the plain view)")
    maps_targets()


def maps_svg(spec, inputs, collapse) -> int:
    from graphc.viz import draw_view

    sc = scene_for(spec, inputs=inputs, collapse=collapse)
    return len(render(draw_view(sc, make_options(maps=True), "values").source, "svg"))


def maps_targets() -> None:
    """The digits CNN (conv 16 - pool - batch norm - conv 32 - pool - dense) with --maps
    (issue 10 item 4: < 2 s), on 8 real digits."""
    data = np.load(EXAMPLES / "train" / "data" / "digits_train.npz")
    inputs = {"x": data["x"][:8], "y": data["y"][:8]}
    spec = EXAMPLES / "train" / "digits_cnn.json"
    print(f"\n{'digits CNN B=8, --maps (issue 10)':<34} {'seconds':>8} {'MB':>7}  target < 2 s")
    for label, collapse in (("collapsed", True), ("expanded", False)):
        t, size = median_time(maps_svg, spec, inputs, collapse)
        print(f"{label:<34} {t:>8.2f} {size / 1e6:>7.2f}")


if __name__ == "__main__":
    import sys

    if "--maps" in sys.argv:
        maps_targets()
    else:
        if "--targets" not in sys.argv:
            main()
            print()
        targets()
