"""The op catalogue as Markdown, generated from the registry (docs/ops.md).

    python -m graphc.opdoc                     # print it
    python -m graphc.opdoc -o docs/ops.md      # write it
    python -m graphc.opdoc --check docs/ops.md # exit 1 when the file is out of date

Everything comes from the op declarations, so a new op appears here without edits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from graphc.ops import public_ops
from graphc.ops.registry import REQUIRED, Attr, Op

REGENERATE = "python -m graphc.opdoc -o docs/ops.md"
# families in reading order; a family missing here is appended alphabetically
FAMILY_ORDER = ("elementwise", "activations", "linalg", "reductions", "conv", "losses",
                "penalties", "composite")
FAMILY_TITLES = {
    "elementwise": "Elementwise arithmetic (NumPy broadcasting)",
    "activations": "Activations",
    "linalg": "Linear algebra and shapes",
    "reductions": "Reductions and softmax",
    "conv": "Convolution and pooling",
    "losses": "Losses (each returns a scalar)",
    "penalties": "Penalties",
    "composite": "Layers (composite ops)",
}
KINDS = {
    "elementwise": "elementwise (one scalar expression, fusable)",
    "reduce": "reduction",
    "matmul": "matrix product",
    "softmax": "softmax kernel",
    "shape": "shape (moves data, no arithmetic)",
    "custom": "custom kernel",
    "window": "a kernel of its own over sliding windows (declared in its op file)",
    "composite": "composite: expands into primitive ops at lowering",
}
ATTR_KINDS = {"axis": "int (an axis)", "size": "int > 0", "axes": "int, list of ints, or null",
              "shape": "list of ints", "json": "any JSON value"}


def families() -> dict[str, list[Op]]:
    """Public ops grouped by family, families in reading order, ops in registry order."""
    grouped: dict[str, list[Op]] = {}
    for op in public_ops():
        grouped.setdefault(op.family, []).append(op)
    order = [f for f in FAMILY_ORDER if f in grouped]
    order += sorted(f for f in grouped if f not in FAMILY_ORDER)
    return {f: grouped[f] for f in order}


def code(text: str) -> str:
    """An inline code span that survives backticks inside `text`."""
    if "`" not in text:
        return f"`{text}`"
    return f"`` {text} ``"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def signature(op: Op) -> str:
    """`add(a, b)`, `concat(x...)`, `swish(x, [beta])`."""
    lo, _ = op.arity
    names = []
    for i, name in enumerate(op.inputs):
        if name.endswith("*"):
            names.append(name[:-1] + "...")
        elif i >= lo:
            names.append(f"[{name}]")
        else:
            names.append(name)
    return f"{op.name}({', '.join(names)})"


def default_text(a: Attr) -> str:
    return "required" if a.default is REQUIRED else code(json.dumps(a.default))


def attr_rows(op: Op) -> list[str]:
    if not op.attrs:
        return ["Attributes: none."]
    rows = ["| attribute | type | default | meaning |", "|---|---|---|---|"]
    for key, a in op.attrs.items():
        kind = " \\| ".join(code(json.dumps(c)) for c in a.choices) if a.choices \
            else ATTR_KINDS.get(a.kind, a.kind)
        rows.append(f"| `{key}` | {kind} | {default_text(a)} | {cell(a.doc)} |")
    return rows


def expressions(op: Op) -> list[tuple[str, str]]:
    """(condition, scalar expression) pairs of an elementwise op, one per choice of a
    string attribute when the expression depends on it."""
    if op.kind != "elementwise" or op.expr is None:
        return []
    if not callable(op.expr):
        return [("", op.expr)]
    base = op.bind({})
    for key, a in op.attrs.items():
        if a.choices:
            return [(f"{key}={json.dumps(c)}", op.expression({**base, key: c}))
                    for c in a.choices]
    return [("", op.expression(base))]


def op_section(op: Op) -> list[str]:
    lo, hi = op.arity
    arity = (f"{lo} or more inputs" if hi is None else
             f"{lo} input{'s' if lo != 1 else ''}" if lo == hi else f"{lo} to {hi} inputs")
    lines = [f"### {op.name}", "",
             f"{code(signature(op))}: {arity}; family `{op.family}`; "
             f"diagram symbol {code(op.symbol)}; kernel: {KINDS.get(op.kind, op.kind)}.", "",
             f"- formula: {code(op.formula)}",
             f"- gradient: {code(op.gradient or '(none: not differentiable)')}"]
    for cond, expr in expressions(op):
        lines.append(f"- scalar expression{' with ' + code(cond) if cond else ''}: {code(expr)}")
    if op.int_inputs:
        names = ", ".join(f"`{op.inputs[i]}`" for i in op.int_inputs)
        lines.append(f"- integer tensors accepted for {names}")
    return [*lines, "", *attr_rows(op), ""]


def generate() -> str:
    """The full docs/ops.md text."""
    groups = families()
    n = sum(len(v) for v in groups.values())
    out = [f"<!-- Generated from the op registry by graphc/opdoc.py; do not edit. "
           f"Regenerate with: {REGENERATE} -->", "",
           "# Op catalogue", "",
           f"Format 1 has {n} ops that a spec may name, in {len(groups)} families. Each "
           "entry gives the op's inputs, attributes with their defaults, its formula, its "
           "gradient rule (written with graph ops, so the backward pass is itself a graph), "
           "the symbol diagrams draw, and the kind of kernel backends generate. "
           "`graphc ops` prints the same catalogue in the terminal, `graphc ops NAME` one op.",
           "",
           "In the gradient rules `g` is the gradient arriving at the op's output `y`, and "
           "`da`, `dx`, ... are the contributions sent to each input. Gradients of "
           "broadcast operands are summed back to the operand's shape, and a value used by "
           "several nodes receives the sum of their contributions (an `accumulate` node).",
           "", "| family | ops |", "|---|---|"]
    for family, ops in groups.items():
        links = ", ".join(f"[{op.name}](#{op.name})" for op in ops)
        out.append(f"| {FAMILY_TITLES.get(family, family)} | {links} |")
    out.append("")
    for family, ops in groups.items():
        out += [f"## {FAMILY_TITLES.get(family, family)}", ""]
        for op in ops:
            out += op_section(op)
    return "\n".join(out).rstrip("\n") + "\n"


def check(path: str | Path) -> bool:
    """True when the file at `path` is exactly what `generate()` gives now."""
    p = Path(path)
    return p.exists() and p.read_text(encoding="utf-8") == generate()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphc.opdoc",
                                     description="Write the op catalogue as Markdown.")
    parser.add_argument("-o", "--out", help="write here instead of printing")
    parser.add_argument("--check", metavar="FILE",
                        help="exit 1 when FILE differs from what would be generated")
    args = parser.parse_args(argv)
    if args.check:
        if check(args.check):
            return 0
        print(f"error: {args.check} is out of date (regenerate with: {REGENERATE})",
              file=sys.stderr)
        return 1
    text = generate()
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
