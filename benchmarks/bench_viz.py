"""How long diagrams take (issue 4: a 784-256-10 MLP and a 20-layer network must render in
a few seconds). For each graph and layout: building the Digraph (trace included), then
rendering SVG with each renderer found; and the HTML stepper of the neuron and the MLP.
Median seconds of a few runs; the baseline is rendering the 8-node neuron the same way.

    python benchmarks/bench_viz.py
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


if __name__ == "__main__":
    main()
