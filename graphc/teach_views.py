"""What the teaching views show, computed: one or more training steps with an optimizer,
its state, gradient checks against central differences at every node, and the memory the
backward pass keeps. graphc.viz draws the records; `graphc check --memory` prints them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.errors import InputError
from graphc.ir import FLOAT, Program
from graphc.spec import Graph


def parse_optimizer(text: str) -> Any:
    """`sgd:lr=0.1,momentum=0.9` (the command line's form) -> an Optimizer."""
    from graphc import optim

    name, _, rest = text.partition(":")
    spec: dict[str, Any] = {"name": name.strip()}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        if not eq:
            raise InputError(f"--optimizer {text}: write NAME:key=value,... "
                             f"(e.g. sgd:lr=0.1,momentum=0.9), not {part!r}")
        low = value.strip().lower()
        if low in ("true", "false"):
            spec[key.strip()] = low == "true"
            continue
        try:
            spec[key.strip()] = float(value)
        except ValueError:
            raise InputError(f"--optimizer {text}: {key.strip()}={value!r} is not a number"
                             ) from None
    return optim.from_spec(spec, place="--optimizer")


@dataclass
class Steps:
    """Params before and after `steps` training steps, the optimizer's state after them and
    the last update's effective step size (|Δp| / |g| per param)."""

    trace: Any  # the trace before the first step (what the diagram's edges show)
    before: dict[str, np.ndarray]
    after: dict[str, np.ndarray]
    state: dict[str, dict[str, np.ndarray]]
    effective: dict[str, np.ndarray]
    steps: int


def train_steps(model: Any, optimizer: Any, inputs: Mapping[str, Any] | None = None,
                steps: int = 1) -> Steps:
    """Run `steps` steps of `optimizer` on the (float64 NumPy) `model`, recording them."""
    if steps < 1:
        raise InputError(f"--steps must be at least 1, not {steps}")
    inputs = dict(inputs or {})
    before = {k: v.copy() for k, v in model.params.items()}
    first = None
    effective: dict[str, np.ndarray] = {}
    for _ in range(steps):
        trace = model.trace(**inputs)
        first = first or trace
        grads = {k: trace.grads[k] for k in model.params}
        old = {k: v.copy() for k, v in model.params.items()}
        optimizer.step(model.params, grads)
        for k, p in model.params.items():
            g = np.linalg.norm(np.ravel(grads[k]))
            effective[k] = np.asarray(np.linalg.norm(np.ravel(p - old[k])) / g if g else 0.0)
    after = {k: v.copy() for k, v in model.params.items()}
    for k, v in before.items():  # the diagram shows the values the first step started from
        model.params[k][...] = v
    state = {k: {s: np.copy(a) for s, a in slots.items()} for k, slots in optimizer.state.items()}
    return Steps(first, before, after, state, effective, steps)


# ---- gradient checks at every node ----------------------------------------------------

def _downstream_eval(prog: Program, order: list[str], values: dict[str, np.ndarray], v: str,
                     x: np.ndarray) -> float:
    from graphc.ops import REGISTRY

    env = dict(values)
    env[v] = x
    dirty = {v}
    for i in order:
        n = prog[i]
        if i == v or not dirty.intersection(n.args):
            continue
        env[i] = np.asarray(REGISTRY[n.op].ref(*[env[a] for a in n.args], **n.attrs))
        dirty.add(i)
    return float(np.sum(env[prog.loss]))


def grad_checks(trace: Any, forward: list[str], eps: float = 1e-6, tol: float = 1e-5,
                directions: int = 3, seed: int = 0) -> dict[str, tuple[bool, float, str]]:
    """{value id: (agrees, relative error, why not)} for every float forward value with a
    gradient: ∂L/∂v against central differences of L with v perturbed (float64). A value
    of at most 4 elements is perturbed element by element; a larger one along `directions`
    random directions d (comparing ⟨∂L/∂v, d⟩), so a view of a big model stays quick.
    Where the one-sided differences disagree the function has a kink there (ReLU or abs
    at 0, max with ties): ✗, and it says so."""
    prog, values = trace.program, trace.by_id
    rng = np.random.default_rng(seed)
    base = float(np.sum(values[prog.loss]))
    out: dict[str, tuple[bool, float, str]] = {}
    for v in forward:
        g_id = prog.grad_map.get(v)
        if g_id is None or g_id not in values or prog[v].dtype != FLOAT or prog[v].op == "const":
            continue
        x0 = np.asarray(values[v], dtype=np.float64)
        g = np.broadcast_to(np.asarray(values[g_id], dtype=np.float64), x0.shape)
        if x0.size <= 4:
            dirs = [np.eye(x0.size)[k].reshape(x0.shape) for k in range(x0.size)]
        else:
            dirs = [rng.normal(size=x0.shape) for _ in range(directions)]
        worst, why = 0.0, ""
        for d in dirs:
            fp = _downstream_eval(prog, forward, values, v, x0 + eps * d)
            fm = _downstream_eval(prog, forward, values, v, x0 - eps * d)
            num = (fp - fm) / (2 * eps)
            right, left = (fp - base) / eps, (base - fm) / eps
            a = float(np.sum(g * d))
            rel = abs(a - num) / max(abs(a), abs(num), 1.0)
            if abs(right - left) > 1e-3 * max(1.0, abs(right), abs(left)):
                why = (f"not differentiable here (a kink, e.g. ReLU or abs at 0 or a max "
                       f"with ties): one-sided slopes {left:.3g} and {right:.3g}")
                rel = max(rel, abs(right - left) / max(abs(right), abs(left), 1.0))
            worst = max(worst, rel)
        out[v] = (worst <= tol and not why, worst, why)
    return out


# ---- memory ---------------------------------------------------------------------------

@dataclass
class Memory:
    kept: dict[str, int]  # forward value id -> bytes the backward pass keeps for it
    names: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    total: int
    peak: int  # most bytes alive at once in one forward + backward (params excluded)
    batch: int


def _bytes(n: Any, batch: int, dtype: str) -> tuple[int, tuple[int, ...]]:
    shape = tuple(d if isinstance(d, int) else batch for d in n.shape)
    size = int(np.prod(shape)) if shape else 1
    item = np.dtype(dtype if n.dtype == FLOAT else n.dtype).itemsize
    return size * item, shape


def memory(graph: Graph, batch: int = 1, dtype: str = "float32") -> Memory:
    """What the backward pass keeps from the forward pass, node by node, in bytes (symbolic
    dimensions at `batch`), computed statically from the backward graph."""
    from graphc.passes import forward_program, grad_program

    if batch < 1:
        raise InputError(f"--batch must be at least 1, not {batch}")
    fwd = forward_program(graph)
    prog = grad_program(fwd)
    fwd_ids = set(fwd.nodes)
    skip = ("param", "const")
    kept: dict[str, int] = {}
    shapes: dict[str, tuple[int, ...]] = {}
    for n in prog:
        if n.id in fwd_ids:
            continue
        for a in n.args:
            if a in fwd_ids and prog[a].op not in skip and a not in kept:
                kept[a], shapes[a] = _bytes(prog[a], batch, dtype)
    position = {i: k for k, i in enumerate(fwd.nodes)}
    kept = dict(sorted(kept.items(), key=lambda kv: position[kv[0]]))
    order = [n.id for n in prog]
    last = {}
    for k, n in enumerate(prog):
        for a in n.args:
            last[a] = k
    keep_to_end = {prog.loss, *prog.grads.values(), *prog.outputs.values()}
    live, peak, alive = 0, 0, {}
    for k, i in enumerate(order):
        n = prog[i]
        if n.op not in skip:
            alive[i] = _bytes(n, batch, dtype)[0]
            live += alive[i]
        peak = max(peak, live)
        for a in set(n.args):
            if last.get(a) == k and a in alive and a not in keep_to_end:
                live -= alive.pop(a)
    names = {i: prog[i].name or i for i in kept}
    return Memory(kept, names, shapes, sum(kept.values()), peak, batch)


def memory_text(m: Memory) -> str:
    """The table `graphc check --memory` prints."""
    from graphc.viz.style import fmt_bytes

    rows = [f"{'kept for the backward pass':<32} {'shape':>16} {'bytes':>12}"]
    for i, b in m.kept.items():
        shape = "[" + ",".join(map(str, m.shapes[i])) + "]"
        rows.append(f"{m.names[i]:<32} {shape:>16} {b:>12,}")
    rows.append(f"{'total kept':<32} {'':>16} {m.total:>12,}  ({fmt_bytes(m.total)})")
    rows.append(f"{'peak of one step (no params)':<32} {'':>16} {m.peak:>12,}  "
                f"({fmt_bytes(m.peak)})")
    rows.append(f"batch size {m.batch}")
    return "\n".join(rows) + "\n"


__all__ = ["Memory", "Steps", "grad_checks", "memory", "memory_text", "parse_optimizer",
           "train_steps"]
