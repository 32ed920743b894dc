"""The op catalogue. Importing this package registers every op."""

from graphc.ops import (  # noqa: F401  (registration happens on import)
    activations,
    composite,
    conv,
    elementwise,
    internal,
    linalg,
    losses,
    modes,
    pool,
    reductions,
    regularization,
)
from graphc.ops.registry import REGISTRY, Attr, Op, get, public_ops

__all__ = ["REGISTRY", "Attr", "Op", "get", "public_ops"]
