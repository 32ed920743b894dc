"""Passes: small named functions from one Program (or spec Graph) to the next."""

from graphc.passes.autodiff import differentiate
from graphc.passes.lower import lower
from graphc.passes.pipeline import PASSES, forward_program, grad_program
from graphc.passes.prune import prune
from graphc.passes.simplify import simplify
from graphc.passes.specialize import specialize
from graphc.passes.validate import validate

__all__ = ["PASSES", "differentiate", "forward_program", "grad_program", "lower", "prune",
           "simplify", "specialize", "validate"]
