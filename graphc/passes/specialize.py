"""specialize: fix the train/evaluation mode of a Program.

Before: a forward Program (differentiate after specializing); ops that behave differently
when training read its `mode` node through `select(mode, training value, evaluation
value)`. After: no `mode` node (it is
the constant 1.0 or 0.0), every `select` of a constant is replaced by the side it
chooses (a named one keeps its name, as that side plus 0), and in evaluation there are
no state updates. `prune` then drops the side not taken (an evaluation draws nothing).
"""

from __future__ import annotations

from dataclasses import replace

from graphc.ir import FLOAT, Node, Program


def specialize(program: Program, training: bool) -> Program:
    if program.mode is None and (training or not program.updates):
        return program
    prog = program.copy()
    if not training:
        prog.updates = {}
    mode = prog.mode
    if mode is None:
        return prog
    value = 1.0 if training else 0.0
    prog.nodes[mode] = Node(mode, "const", (), {"value": value}, (), FLOAT)
    prog.mode = None
    alias: dict[str, str] = {}
    results = {*prog.outputs.values(), *prog.updates.values(), prog.loss}
    for node in list(prog):
        args = tuple(alias.get(a, a) for a in node.args)
        if args != node.args:
            node = prog.nodes[node.id] = replace(node, args=args)
        if node.op != "select" or prog[node.args[0]].op != "const":
            continue
        cond = prog[node.args[0]]
        if cond.shape != ():
            continue
        chosen = node.args[1] if cond.attrs["value"] != 0 else node.args[2]
        if prog[chosen].shape != node.shape:
            continue  # a broadcast side: leave the select
        if node.name is None and node.id not in results:
            alias[node.id] = chosen
        else:  # keep the name: `chosen + 0` (the mode node is now that 0, or 1: `* 1`)
            op = "mul" if value else "add"
            prog.nodes[node.id] = replace(node, op=op, args=(chosen, mode), attrs={})
    if alias:
        prog.outputs = {k: alias.get(v, v) for k, v in prog.outputs.items()}
        prog.updates = {k: alias.get(v, v) for k, v in prog.updates.items()}
        prog.loss = alias.get(prog.loss, prog.loss) if prog.loss else None
    return prog

