"""simplify: remove arithmetic that does nothing, so backward graphs read like the
lectures' (the seed gradient 1 times a local derivative is just the local derivative).

Before: any Program. After: no `mul` by the constant 1 and no `neg` of a `neg` whose
result has its operand's shape; every reference (args, outputs, grads, grad_map,
contributions) points at the kept value. Removed nodes are left for `prune`.
"""

from __future__ import annotations

from dataclasses import replace

from graphc.ir import Program


def simplify(program: Program) -> Program:
    prog = program.copy()
    alias: dict[str, str] = {}
    forward = {n.id for n in prog if n.name is not None or n.op in ("input", "param")}

    def resolve(i: str) -> str:
        while i in alias:
            i = alias[i]
        return i

    for node in list(prog):
        args = tuple(resolve(a) for a in node.args)
        if args != node.args:
            node = prog.nodes[node.id] = replace(node, args=args)
        keep = _identity_of(prog, node)
        if keep is not None and node.name is None:
            alias[node.id] = keep
            if node.grad_of and prog[keep].grad_of is None and keep not in forward:
                prog.nodes[keep] = replace(prog[keep], grad_of=node.grad_of)
    if not alias:
        return prog
    prog.outputs = {k: resolve(v) for k, v in prog.outputs.items()}
    prog.grads = {k: resolve(v) for k, v in prog.grads.items()}
    prog.grad_map = {k: resolve(v) for k, v in prog.grad_map.items()}
    prog.contributions = {k: [(c, resolve(g)) for c, g in v]
                          for k, v in prog.contributions.items()}
    return prog


def _identity_of(prog: Program, node) -> str | None:
    """The operand this node merely passes on, or None."""
    if node.op == "mul":
        for a, b in (node.args, node.args[::-1]):
            const = prog[a]
            if const.op == "const" and const.attrs["value"] == 1.0 and \
                    prog[b].shape == node.shape:
                return b
    if node.op == "neg" and prog[node.args[0]].op == "neg":
        inner = prog[node.args[0]].args[0]
        if prog[inner].shape == node.shape:
            return inner
    return None
