"""The shared emitter's names, where the writers import them from: the kernel plan itself
lives in the schedule pass (graphc/passes/plan.py and loops.py), so that passes never
import a backend. The op kernel fields (`Op.kernel`) are documented in plan.py."""

from graphc.passes.loops import (  # noqa: F401
    LoopBody,
    Poly,
    attached_check,
    broadcast_index,
    describe,
    elementwise_expr,
    kind_of,
    reads,
    reduce_fields,
    reduced_axes,
    substitute,
)
from graphc.passes.plan import ARRAY_MODES, Plan, Step  # noqa: F401
