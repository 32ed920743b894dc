"""The lectures' sigmoid neuron written in Python: the same graph as neuron.json.

    python examples/neuron.py               # prints the JSON spec
    python examples/neuron.py -o out.json   # writes it
    python examples/neuron.py --run         # forward and backward, node by node

Operators record `mul`, `add` and `neg` nodes; `F.<op>` records any other op;
`Builder.name` gives a node the id the lectures' figure uses.
"""

from __future__ import annotations

import argparse
import sys

import graphc
from graphc import F

DOC = "f(w, x) = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))), the backprop figure of the lectures"


def build() -> graphc.Graph:
    """f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))), one node per step of the figure."""
    b = graphc.Builder("sigmoid neuron (decomposed)", doc=DOC)
    x0 = b.input("x0", [], value=-1.0)
    x1 = b.input("x1", [], value=-2.0)
    w0 = b.param("w0", [], init=2.0)
    w1 = b.param("w1", [], init=-3.0)
    w2 = b.param("w2", [], init=-3.0)
    t0 = b.name("t0", w0 * x0)
    t1 = b.name("t1", w1 * x1)
    t01 = b.name("t01", t0 + t1)
    t012 = b.name("t012", t01 + w2)
    nt = b.name("nt", -t012)
    e = b.name("e", F.exp(nt))
    d = b.name("d", 1 + e)
    f = b.name("f", F.reciprocal(d))  # 1 / d would record div(1, d)
    return b.build(outputs=[f], loss=f)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", help="write the JSON spec here instead of printing it")
    parser.add_argument("--run", action="store_true",
                        help="print every value and gradient instead of the spec")
    args = parser.parse_args(argv)
    graph = build()
    if args.run:
        trace = graphc.compile(graph, backend="numpy", dtype="float64").trace()
        for name, value in trace.values.items():
            grad = float(trace.grads[name])
            print(f"{name:>5} = {float(value):6.2f}   df/d{name} = {grad:6.2f}")
    elif args.out:
        with open(args.out, "w", encoding="utf-8") as out:
            out.write(graph.to_json_text())
    else:
        sys.stdout.write(graph.to_json_text())


if __name__ == "__main__":
    main()
