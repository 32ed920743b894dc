"""differentiate: append the backward graph to a forward Program, once, ahead of time.

Before: a forward Program with a scalar loss. After: the same nodes followed by backward
nodes built from the ops' gradient rules; `grads` maps each param (and each requested
input) to its gradient node. Where a value feeds several consumers, its gradient is an
explicit `accumulate` (Σ) node; where a contribution was broadcast, an explicit `sum_to`
brings it back to the operand's shape. Nothing is built that the requested gradients do
not need (prune removes what rules built but nobody reads).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from graphc.errors import SpecError, did_you_mean
from graphc.ir import FLOAT, Program
from graphc.ops import REGISTRY
from graphc.passes.emit import IREmitter
from graphc.sugar import Ref


def differentiate(program: Program, wrt: Iterable[str] = ()) -> Program:
    prog = program.copy()
    if prog.loss is None:
        raise SpecError("the spec has no loss, so there is nothing to differentiate",
                        place="loss", hint='add "loss": "<name of a scalar node>"')
    targets = dict(prog.params)
    for name in wrt:
        if name in prog.params:
            continue
        node_id = prog.inputs.get(name)
        if node_id is None:
            raise SpecError(f"cannot differentiate with respect to {name!r}: not an input "
                            "or param", hint=did_you_mean(name, [*prog.inputs, *prog.params]))
        if prog[node_id].dtype != FLOAT:
            raise SpecError(f"cannot differentiate with respect to integer input {name!r}")
        targets[name] = node_id

    relevant = _between(prog, set(targets.values()), prog.loss)
    em = IREmitter(prog)
    em.backward = True
    parts: dict[str, list[Ref]] = {prog.loss: [em.const(1.0)]}
    final = prog.grad_map
    for node in reversed(list(program)):  # reverse schedule order of the forward nodes
        if node.id not in relevant or node.id not in parts:
            continue
        em.group = node.group
        g = _accumulate(em, parts[node.id])
        final[node.id] = g.id
        if prog[g.id].grad_of is None and prog[g.id].op != "const":
            _mark(prog, g.id, node.id)
        if node.op in ("input", "param", "const"):
            continue
        op = REGISTRY[node.op]
        xs = [Ref(em, a) for a in node.args]
        contributions = op.grad(g, xs, Ref(em, node.id), dict(node.attrs))
        for arg, c in zip(node.args, contributions):
            if c is None or arg not in relevant or prog[arg].dtype != FLOAT:
                continue
            c = _sum_to(em, c, prog[arg].shape)
            parts.setdefault(arg, []).append(c)
            prog.contributions.setdefault(arg, []).append((node.id, c.id))

    prog.grads = {}
    for name, node_id in targets.items():
        if node_id in final:
            prog.grads[name] = final[node_id]
        else:  # not connected to the loss: its gradient is zero
            prog.grads[name] = em.emit("zeros_like", [Ref(em, node_id)]).id
            _mark(prog, prog.grads[name], node_id)
    return prog


def _accumulate(em: IREmitter, refs: list[Ref]) -> Ref:
    """The sum at a fork: one explicit Σ node over every consumer's contribution."""
    return refs[0] if len(refs) == 1 else em.emit("accumulate", refs)


def _mark(prog: Program, grad_id: str, fwd_id: str) -> None:
    prog.nodes[grad_id] = replace(prog[grad_id], grad_of=fwd_id)


def _sum_to(em: IREmitter, c: Ref, shape: tuple) -> Ref:
    """A contribution of a broadcast shape, summed back to the operand's shape."""
    got = em.shape_of(c)
    if got == shape:
        return c
    lead = len(got) - len(shape)
    axes = [i for i, d in enumerate(shape) if d == 1 and got[lead + i] != 1]
    return em.emit("sum_to", [c], {"lead": lead, "axes": axes})


def _between(prog: Program, sources: set[str], sink: str) -> set[str]:
    """Nodes on some path from a source to the sink (the ones gradients flow through)."""
    down = set(sources)
    for node in prog:
        if any(a in down for a in node.args):
            down.add(node.id)
    up, stack = set(), [sink]
    while stack:
        n = stack.pop()
        if n in up or n not in down:
            continue
        up.add(n)
        stack.extend(prog[n].args)
    return up
