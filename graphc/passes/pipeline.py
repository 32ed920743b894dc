"""The pass pipeline, by name, so that `--dump-after NAME` can show any stage."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from graphc.ir import Program
from graphc.passes.autodiff import differentiate
from graphc.passes.broadcast_check import warn_squared_broadcasts
from graphc.passes.lower import lower
from graphc.passes.prune import prune
from graphc.passes.simplify import simplify
from graphc.passes.specialize import specialize
from graphc.spec import Graph

PASSES = ("lower", "specialize", "differentiate", "simplify", "prune")


def forward_program(graph: Graph, dump: Callable[[str, Program], None] | None = None,
                    training: bool | None = None) -> Program:
    """Lowered forward graph computing the outputs, the loss and the state updates; with
    `training` True or False, specialized to that mode (None: the mode stays a node)."""
    prog = lower(graph)
    if dump:
        dump("lower", prog)
    if training is not None:
        prog = specialize(prog, training)
        if dump:
            dump("specialize", prog)
    keep = [*prog.outputs.values(), *([prog.loss] if prog.loss else [])]
    prog = prune(prog, keep)
    if dump:
        dump("prune", prog)
    return warn_squared_broadcasts(prog, graph.source)


def grad_program(forward: Program, wrt: Iterable[str] = (), *, keep_outputs: bool = True,
                 keep_all: bool = False,
                 dump: Callable[[str, Program], None] | None = None) -> Program:
    """Forward plus backward: the loss, the gradients of params and `wrt`, and (with
    keep_outputs) the outputs; with keep_all, every forward value and gradient (for traces)."""
    prog = differentiate(forward, wrt)
    if dump:
        dump("differentiate", prog)
    prog = simplify(prog)
    if dump:
        dump("simplify", prog)
    if keep_all:  # every forward value, every gradient and every fork contribution
        keep = [*forward.nodes, *prog.grad_map.values(), *prog.grads.values(),
                *(c for parts in prog.contributions.values() for _, c in parts)]
    else:
        keep = [prog.loss, *prog.grads.values()]
        if keep_outputs:
            keep += list(prog.outputs.values())
    prog = prune(prog, keep)
    if dump:
        dump("prune", prog)
    return prog
