"""How long `graphc check` takes on large specs (issue 2: a 10,000-node chain, well under
a second). Prints median seconds in-process and for the whole command in a new process,
beside the time Python needs just to start and import graphc (the baseline)."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import graphc
from graphc.passes import forward_program


def chain(n: int) -> dict:
    nodes = [{"id": f"n{i}", "op": "tanh", "inputs": [f"n{i - 1}" if i else "x"]}
             for i in range(n)]
    return {"graphc": 1, "name": "chain", "inputs": {"x": {"shape": ["B", 4]}},
            "nodes": nodes, "outputs": [f"n{n - 1}"]}


def mlp(layers: int) -> dict:
    nodes, prev = [], "x"
    for i in range(layers):
        nodes.append({"id": f"fc{i}", "op": "dense", "inputs": [prev],
                      "attrs": {"units": 64, "activation": "relu"}})
        prev = f"fc{i}"
    nodes.append({"id": "loss", "op": "cross_entropy", "inputs": [prev, "y"]})
    return {"graphc": 1, "name": "deep", "inputs": {"x": {"shape": ["B", 64]},
                                                   "y": {"shape": ["B"], "dtype": "int64"}},
            "nodes": nodes, "outputs": [prev], "loss": "loss"}


def median_time(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    print(f"{'spec':<28} {'nodes':>7} {'in-process s':>13} {'command s':>10} {'baseline s':>11}")
    baseline = median_time(lambda: subprocess.run(
        [sys.executable, "-c", "import graphc.cli"], check=True), 3)
    for label, spec in (("tanh chain", chain(10_000)), ("dense-relu x 1000 (grad)", mlp(1000))):
        path = tmp / "spec.json"
        path.write_text(json.dumps(spec))
        n = len(spec["nodes"])

        def in_process(spec=spec):
            prog = forward_program(graphc.load(spec))
            if prog.loss is not None:
                from graphc.passes import grad_program
                grad_program(prog)

        t_in = median_time(in_process)
        t_cmd = median_time(lambda path=path: subprocess.run(
            [sys.executable, "-m", "graphc.cli", "check", str(path)], check=True,
            capture_output=True), 3)
        print(f"{label:<28} {n:>7} {t_in:>13.3f} {t_cmd:>10.3f} {baseline:>11.3f}")


if __name__ == "__main__":
    main()
