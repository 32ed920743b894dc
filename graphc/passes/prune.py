"""prune: drop every node that the wanted results do not read.

Before: any Program. After: only nodes on which some id in `keep` depends, in the same
order; a gradient rule's unused by-products and unrequested outputs are gone. Inputs,
params, state buffers and the values of state updates always stay.
"""

from __future__ import annotations

from collections.abc import Iterable

from graphc.ir import Program


def prune(program: Program, keep: Iterable[str]) -> Program:
    live: set[str] = set()
    stack = [*keep, *program.updates.values()]  # what training writes into state stays
    while stack:
        n = stack.pop()
        if n not in live:
            live.add(n)
            stack.extend(program[n].args)
    # inputs, params and state stay: they are the Program's interface even when unused
    live.update(program.inputs.values(), program.params.values(), program.state.values())
    out = program.copy([n for n in program if n.id in live])
    out.mode = out.mode if out.mode in live else None
    out.step = out.step if out.step in live else None
    out.grad_map = {k: v for k, v in out.grad_map.items() if k in live and v in live}
    out.contributions = {k: [(c, g) for c, g in v if g in live]
                         for k, v in out.contributions.items() if k in live}
    return out
