"""Matrix product and shape ops."""

import numpy as np

from graphc.ir import broadcast_shapes, format_shape, numel
from graphc.ops.registry import Attr, KernelCode, Op, OpaqueKernel, register
from graphc.sugar import F


def _swap(t):
    n = t.ndim
    return F.transpose(t, axes=[*range(n - 2), n - 1, n - 2])


def _matmul_shape(shapes, a):
    sa, sb = shapes
    if not sa or not sb:
        raise ValueError("matmul needs operands of at least one dimension, got "
                         f"{format_shape(sa)} and {format_shape(sb)}")
    ka, kb = sa[-1], (sb[0] if len(sb) == 1 else sb[-2])
    if ka != kb:
        raise ValueError(f"inner dimensions differ: {format_shape(sa)} @ {format_shape(sb)} "
                         f"({ka} vs {kb})")
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    rows = sa[-2:-1] if len(sa) >= 2 else ()
    cols = sb[-1:] if len(sb) >= 2 else ()
    return (*batch, *rows, *cols)


def _matmul_grad(g, xs, y, at):
    a, b = xs
    if a.ndim == 1 and b.ndim == 1:
        return [g * b, g * a]
    if a.ndim == 1:  # (k) @ (..., k, m)
        return [F.sum(F.matmul(b, F.expand_dims(g, axes=-1)), axis=-1),
                F.matmul(F.expand_dims(a, axes=-1), F.expand_dims(g, axes=-2))]
    if b.ndim == 1:  # (..., n, k) @ (k)
        return [F.matmul(F.expand_dims(g, axes=-1), F.expand_dims(b, axes=0)),
                F.sum(F.matmul(_swap(a), F.expand_dims(g, axes=-1)), axis=-1)]
    return [F.matmul(g, _swap(b)), F.matmul(_swap(a), g)]


register(Op(name="matmul", family="linalg", inputs=("a", "b"), symbol="@", kind="matmul",
            formula="y = a @ b (NumPy matmul: batched, 1-D operands promoted)",
            gradient="da = g @ bᵀ, db = aᵀ @ g (summed over broadcast batch axes)",
            shape=_matmul_shape, ref=np.matmul, grad=_matmul_grad))


def _perm(axes, ndim):
    perm = tuple(reversed(range(ndim))) if axes is None else tuple(a % ndim for a in axes)
    if sorted(perm) != list(range(ndim)):
        raise ValueError(f"axes {list(axes)} are not a permutation of {ndim} axes")
    return perm


register(Op(name="transpose", family="linalg", inputs=("x",), symbol="ᵀ", kind="shape",
            formula="y = x with axes permuted (reversed when axes is null)",
            gradient="dx = transpose(g, inverse permutation)",
            attrs={"axes": Attr("axes", None, doc="a permutation of the axes")},
            shape=lambda s, a: tuple(s[0][i] for i in _perm(a["axes"], len(s[0]))),
            ref=lambda x, axes: np.transpose(x, _perm(axes, x.ndim)),
            kernel={"index": lambda idx, src, dst, a: [
                idx[list(_perm(a["axes"], len(src))).index(j)] for j in range(len(src))]},
            grad=lambda g, xs, y, at: [F.transpose(
                g, axes=list(np.argsort(_perm(at["axes"], xs[0].ndim)).tolist()))]))


def _reshape_shape(shapes, a):
    (s,) = shapes
    target = list(a["shape"])
    if target.count(-1) > 1 or any(d < -1 for d in target):
        raise ValueError(f"shape {target} may hold one -1 and otherwise sizes >= 0")
    symbols = [d for d in s if not isinstance(d, int)]
    known_in = numel(tuple(d for d in s if isinstance(d, int)))
    known_out = numel(tuple(d for d in target if d != -1))
    if -1 not in target:
        if symbols or known_in != known_out:
            raise ValueError(f"cannot reshape {format_shape(s)} to {format_shape(tuple(target))}"
                             + (" (use -1 for a symbolic dimension)" if symbols else ""))
        return tuple(target)
    if known_out == 0 or known_in % known_out:
        raise ValueError(f"cannot reshape {format_shape(s)} to {format_shape(tuple(target))}")
    ratio = known_in // known_out
    if symbols and (len(symbols) > 1 or ratio != 1):
        raise ValueError(f"cannot infer -1 when reshaping {format_shape(s)} to "
                         f"{format_shape(tuple(target))}")
    target[target.index(-1)] = symbols[0] if symbols else ratio
    return tuple(target)


register(Op(name="reshape", family="linalg", inputs=("x",), symbol="reshape", kind="shape",
            formula="y = x reshaped (one -1 infers a size, NumPy style)",
            gradient="dx = g reshaped to x's shape",
            attrs={"shape": Attr("shape", doc="the new shape; one entry may be -1")},
            shape=_reshape_shape,
            ref=lambda x, shape: x.reshape(shape), kernel={"reshape": True},
            grad=lambda g, xs, y, at: [F.reshape_like(g, xs[0])]))


def _concat_shape(shapes, a):
    nd = len(shapes[0])
    if nd == 0:
        raise ValueError("cannot concatenate scalars")
    ax = a["axis"] % nd
    for s in shapes:
        rest = [d for i, d in enumerate(s) if i != ax] if len(s) == nd else None
        if rest != [d for i, d in enumerate(shapes[0]) if i != ax]:
            raise ValueError("shapes differ outside axis "
                             f"{a['axis']}: " + ", ".join(map(format_shape, shapes)))
        if not isinstance(s[ax], int):
            raise ValueError(f"cannot concatenate along symbolic dimension {s[ax]!r}")
    return tuple(sum(s[ax] for s in shapes) if i == ax else d for i, d in enumerate(shapes[0]))


def _concat_grad(g, xs, y, at):
    ax = at["axis"] % y.ndim
    out, start = [], 0
    for x in xs:
        out.append(F.slice(g, axis=ax, start=start, stop=start + x.shape[ax]))
        start += x.shape[ax]
    return out


def _concat_call(args, out, a, shapes):
    """One slice assignment per input: `out[:, 3:5] = x1`."""
    axis, start, lines = a["axis"] % len(shapes[0]), 0, []
    for name, shape in zip(args, shapes):
        at = [":"] * axis + [f"{start}:{start + shape[axis]}"]
        lines.append(f"{out}[{', '.join(at)}] = {name}")
        start += shape[axis]
    return lines


register(Op(name="concat", family="linalg", inputs=("x*",), symbol="concat", kind="shape",
            formula="y = the inputs joined along `axis`",
            gradient="dx_i = the slice of g that x_i filled",
            attrs={"axis": Attr("axis", 0)}, shape=_concat_shape,
            opaque=OpaqueKernel(reads=None, flops=lambda shapes, out, a: (out, 0),
                                code={"cpu": KernelCode("", _concat_call)}),
            ref=lambda *xs, axis: np.concatenate(xs, axis=axis), grad=_concat_grad))


def _flatten(xs, at, layer):
    (x,) = xs
    start = at["start_axis"]
    if not -x.ndim <= start < max(x.ndim, 1):
        raise ValueError(f"flatten's start_axis {start} is out of range for "
                         f"{format_shape(x.shape)}")
    start %= x.ndim
    head, rest = list(x.shape[:start]), x.shape[start:]
    if not all(isinstance(d, int) for d in rest):
        raise ValueError(f"flatten needs known sizes from axis {start} on, got "
                         f"{format_shape(x.shape)}")
    size = numel(tuple(rest))
    if all(isinstance(d, int) for d in head):
        return F.reshape(x, shape=[*head, size])
    symbolic = [i for i, d in enumerate(head) if not isinstance(d, int)]
    if len(symbolic) > 1:
        raise ValueError(f"flatten keeps one symbolic dimension before axis {start}, got "
                         f"{format_shape(x.shape)}")
    head[symbolic[0]] = -1  # reshape infers it back
    return F.reshape(x, shape=[*head, size])


register(Op(name="flatten", family="linalg", inputs=("x",), symbol="flatten",
            kind="composite", expand=_flatten,
            formula="y = x with the axes from start_axis on merged: [N, C, H, W] -> "
                    "[N, C*H*W]",
            gradient="dx = g reshaped to x's shape",
            attrs={"start_axis": Attr("int", 1, doc="the first axis merged")}))
