"""Mutation fuzz of the front end and the runtime: every example spec, mutated at random
(keys dropped, values swapped for other types, references broken, nodes duplicated or
reordered; now and then an input array swapped for another value), goes through
graphc.load, compile(backend="numpy"), forward, grad, train_step and (for specs with a
`train` object) one epoch of fit. Only graphc's own errors may come out; anything else is
a "foreign" exception, a bug to fix where the bad value enters.

    python benchmarks/fuzz.py --cases 20000            # the long run; seed 0
    python benchmarks/fuzz.py --cases 2000 --seed 7    # another slice

tests/test_fuzz.py runs a fixed slice of the same cases in CI.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import random
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import graphc  # noqa: E402
from graphc import runtime  # noqa: E402
from graphc.errors import GraphcError  # noqa: E402

MEMORY = 64 * 2**20  # the memory graphc is told it has while fuzzing: huge sizes are refused

# values that replace a value of another type
OTHERS: list[Any] = [None, True, False, 0, 1, -1, -5, 2, 3, 7, 0.5, 1.0, -2.5, math.nan,
                     math.inf, "", "x", "B", "relu", "zeros", "h1", "nodes", [], [1], [1, 2],
                     [[1.0, 2.0]], ["B", 3], [None], [{}], {}, {"name": 3}, {"name": "normal"},
                     {"shape": [2]}, 10**6, 10**12, 1e300, "v1", "fc1.W"]


def examples() -> list[tuple[str, dict]]:
    """Every JSON spec under examples/, by file name."""
    out = []
    for path in sorted((ROOT / "examples").rglob("*.json")):
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "nodes" in data:
            out.append((str(path.relative_to(ROOT)), data))
    return out


def _slots(tree: Any, path: tuple = ()) -> list[tuple]:
    """Paths of every value under the spec (not the spec itself)."""
    out = []
    items = tree.items() if isinstance(tree, dict) else \
        enumerate(tree) if isinstance(tree, list) else ()
    for k, v in items:
        out.append(path + (k,))
        if not (isinstance(v, list) and len(v) > 16):  # long value lists: slot only the list
            out.extend(_slots(v, path + (k,)))
    return out


def _names(spec: dict) -> list[str]:
    names = []
    for key in ("inputs", "params"):
        if isinstance(spec.get(key), dict):
            names += list(spec[key])
    nodes = spec.get("nodes")
    for n in nodes if isinstance(nodes, list) else []:
        if isinstance(n, dict) and isinstance(n.get("id"), str):
            names.append(n["id"])
    return names or ["x"]


def mutate(spec: dict, rng: random.Random) -> dict:
    """One to three random mutations of a copy of `spec`."""
    spec = copy.deepcopy(spec)
    for _ in range(rng.choice((1, 1, 2, 3))):
        slots = _slots(spec)
        if not slots:
            break
        path = rng.choice(slots)
        parent = spec
        for k in path[:-1]:
            parent = parent[k]
        key, old = path[-1], parent[path[-1]]
        kinds = ["drop", "retype", "retype"]
        kinds += ["reference"] * 3 if isinstance(old, str) else []
        kinds += ["number"] * 2 if isinstance(old, (int, float)) and old is not True \
            and old is not False else []
        kinds += ["duplicate", "reorder"] if isinstance(parent, list) else []
        kinds += ["new key"] if isinstance(old, dict) else []
        kind = rng.choice(kinds)
        if kind == "drop":
            del parent[key]
        elif kind == "retype":
            parent[key] = copy.deepcopy(rng.choice([v for v in OTHERS if type(v) is not type(old)]))
        elif kind == "reference":
            parent[key] = rng.choice([old + "9", old.upper(), old.capitalize(), old[:-1],
                                      rng.choice(_names(spec))])
        elif kind == "number":
            parent[key] = rng.choice([-old, old * 1000, old + 1, 0, old / 3, float(old)])
        elif kind == "duplicate":
            parent.insert(key, copy.deepcopy(old))
        elif kind == "reorder":
            rng.shuffle(parent)
        else:
            old[rng.choice(["extra", "attrs", "value", "dtype", "init", "units", "shape"])] = \
                copy.deepcopy(rng.choice(OTHERS))
    return spec


def _inputs(model: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Arrays for the inputs that have no default value (symbolic dims are 3)."""
    out = {}
    prog = model.program
    for name, node_id in prog.inputs.items():
        if "value" in model.graph.inputs.get(name, {}):
            continue
        node = prog[node_id]
        shape = tuple(d if isinstance(d, int) else 3 for d in node.shape)
        if math.prod(shape) > 10**6:
            continue  # leave it out: graphc says it is missing
        out[name] = rng.integers(0, 2, shape) if node.dtype.startswith("int") else \
            rng.normal(size=shape)
    return out


def run_case(spec: dict, rng: np.random.Generator) -> str:
    """'accepted' or 'rejected'; anything else raises (a foreign exception)."""
    try:
        g = graphc.load(spec)
        m = graphc.compile(g, backend="numpy", dtype="float64")
        feeds = _inputs(m, rng)
        if feeds and rng.random() < 0.15:  # a run-time value of the wrong kind or shape
            name = sorted(feeds)[int(rng.integers(len(feeds)))]
            feeds[name] = copy.deepcopy(OTHERS[int(rng.integers(len(OTHERS)))])
        m.forward(**feeds)
        if m.program.loss is not None:
            names = [*m.program.inputs, *m.program.params, "x", "h1"]
            m.grad(wrt=[names[int(rng.integers(len(names)))]], **feeds)
            m.train_step(graphc.optim.SGD(lr=0.01), **feeds)
            if g.train is not None:
                data = {k: np.concatenate([v] * 2) for k, v in feeds.items()
                        if np.ndim(v) and isinstance(v, np.ndarray)}
                if data and len(data) == len(feeds):
                    m.fit(data, epochs=1)
    except GraphcError:
        return "rejected"
    return "accepted"


@contextlib.contextmanager
def small_memory():
    """Mutated sizes (units: 256000) are refused by graphc's memory check, not allocated."""
    saved, runtime.available_memory = runtime.available_memory, lambda: MEMORY
    try:
        yield
    finally:
        runtime.available_memory = saved


def fuzz(cases: int, seed: int = 0, report=None) -> dict[str, Any]:
    """Run `cases` mutated specs; counts, and the first traceback of each foreign kind."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    bases = examples()
    counts = {"cases": 0, "accepted": 0, "rejected": 0, "foreign": 0}
    foreign: dict[str, str] = {}
    with small_memory(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(cases):
            name, base = bases[i % len(bases)]
            spec = mutate(base, rng)
            counts["cases"] += 1
            try:
                counts[run_case(spec, nrng)] += 1
            except Exception as e:  # noqa: BLE001  (counting them is the point)
                counts["foreign"] += 1
                tb = traceback.extract_tb(e.__traceback__)[-1]
                kind = f"{type(e).__name__} at {Path(tb.filename).name}:{tb.lineno}"
                if kind not in foreign:
                    foreign[kind] = (f"{name}, case {i}: {json.dumps(spec)[:600]}\n"
                                     + "".join(traceback.format_exception(e))[-2500:])
                    if report:
                        report(kind, foreign[kind])
    return {**counts, "kinds": foreign}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tracebacks", type=int, default=5, help="how many kinds to print in full")
    a = ap.parse_args()
    t0 = time.perf_counter()
    out = fuzz(a.cases, a.seed)
    dt = time.perf_counter() - t0
    print(f"cases {out['cases']}  accepted {out['accepted']}  rejected {out['rejected']} "
          f"(graphc errors)  foreign {out['foreign']}  in {dt:.1f} s "
          f"({1000 * dt / max(out['cases'], 1):.1f} ms a case), seed {a.seed}")
    for kind, text in list(out["kinds"].items())[:a.tracebacks]:
        print(f"\n--- {kind}\n{text}")
    if len(out["kinds"]) > a.tracebacks:
        print("\nother kinds: " + ", ".join(list(out["kinds"])[a.tracebacks:]))
    sys.exit(1 if out["foreign"] else 0)


if __name__ == "__main__":
    main()
