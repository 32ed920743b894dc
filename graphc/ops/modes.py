"""The building blocks of ops that train and evaluate differently: `select` (one value
in training, another in evaluation) and `random` (uniform numbers from a counter-based
generator). Layers reach them, the mode and state buffers through `Layer` (passes/emit).

The generator is a hash, not a stream: element `i0, i1, ...` of a draw at training step
`t` is ``uniform(mix(...mix(mix(key, t), i0)..., i_last))``, where `key` hashes the spec's
seed with the drawing node's name and `mix` is splitmix64's finalizer. Nothing is carried
between draws, so every backend, thread and process computes the same numbers from the
same source text (`RNG_SOURCE`, run by NumPy here and pasted into generated modules).
"""

from __future__ import annotations

import hashlib

import numpy as np

from graphc.ops.registry import EXPR_FUNCTIONS, Attr, Op, elementwise, register

MAX_NDIM = 8  # the most axes a draw has (its expression names i0 ... i7)

# Valid NumPy (on uint64 arrays) and Numba (on scalars) alike: every value is uint64.
RNG_SOURCE = '''
def rng_mix(h, i):
    """splitmix64's finalizer of h xor the golden-ratio multiple of counter i."""
    z = np.uint64(h) ^ (np.uint64(i) * np.uint64(0x9E3779B97F4A7C15))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def rng_uniform(h):
    """A number in [0, 1) from the top 24 bits of h: exact in float32 and float64."""
    return np.float64(h >> np.uint64(40)) * 5.9604644775390625e-08
'''
RNG_NAMES = ("rng_mix", "rng_uniform")

_rng: dict = {"np": np}
exec(RNG_SOURCE, _rng)
EXPR_FUNCTIONS.update({name: _rng[name] for name in RNG_NAMES})


def rng_key(seed: int, node: str) -> int:
    """The key of the draws of node `node` (a spec name) under the spec's seed: 63 bits,
    the same in every process (no Python `hash`, which is salted per process)."""
    digest = hashlib.blake2b(f"{int(seed)}\0{node}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _random_expr(a: dict) -> str:
    h = "rng_mix(key, step)"
    for k in range(a["ndim"]):
        h = f"rng_mix({h}, i{k})"
    return f"rng_uniform({h})"


def _random_ref(step, like, key, ndim):
    with np.errstate(over="ignore"):
        h = _rng["rng_mix"](np.uint64(key), np.asarray(step).astype(np.uint64))
        for i in np.indices(np.shape(like), sparse=True):
            h = _rng["rng_mix"](h, i.astype(np.uint64))
        return np.array(np.broadcast_to(_rng["rng_uniform"](h), np.shape(like)))


def _random_shape(shapes, a):
    if len(shapes[1]) != a["ndim"] or a["ndim"] > MAX_NDIM:
        raise ValueError(f"random: ndim={a['ndim']} but `like` has {len(shapes[1])} axes "
                         f"(at most {MAX_NDIM})")
    if shapes[0] != ():
        raise ValueError("random: the step is a scalar")
    return shapes[1]


register(Op(name="random", family="internal", internal=True, inputs=("step", "like"),
            kind="elementwise", symbol="U[0,1)", shape=_random_shape, ref=_random_ref,
            expr=_random_expr, int_inputs=(0, 1),
            formula="y = uniform in [0, 1): a hash of (seed, node, step, element index)",
            gradient="none: a draw is not differentiable",
            grad=lambda g, xs, y, a: [None, None],
            kernel={"axis_names": {f"i{k}": k for k in range(MAX_NDIM)}},
            attrs={"key": Attr("int", doc="rng_key(seed, node name)"),
                   "ndim": Attr("int", doc="axes of the draw")}))


def _select_grad(g, xs, y, a):
    c = xs[0]
    return [None, g.emitter.emit("select", [c, g, 0.0]), g.emitter.emit("select", [c, 0.0, g])]


elementwise("select", ("c", "a", "b"), "where(c != 0, a, b)", family="internal",
            symbol="select", formula="y = a where c ≠ 0, else b (c: usually the mode)",
            gradient="∂a = select(c, g, 0), ∂b = select(c, 0, g)", grad=_select_grad,
            internal=True)
