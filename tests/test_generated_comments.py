"""Generated code is written to be read: over every example spec, each value a comment of a
standalone module names (`v7`, `t7`) is in its kernel's code, each operand of a
`# x = op(a, b)` comment is read by the statements under it, and the train step reuses the
gradient kernel instead of repeating its body."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import graphc
from graphc.standalone import standalone

EXAMPLES = sorted((Path(__file__).parent.parent / "examples").glob("*.json"))
VALUE = re.compile(r"\b[vt]\d+\b")
QUOTED = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")  # spec names: not values
CALL = re.compile(r"^#.*? = [^(]*\((.*)\)\s*$")


def functions(source: str) -> dict[str, list[str]]:
    """The lines of each top-level function, by name."""
    out: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in source.split("\n"):
        if line.startswith("def "):
            current = out.setdefault(line[4:line.index("(")], [line])
        elif current is not None and (line.startswith(" ") or not line.strip()):
            current.append(line)
        else:
            current = None
    return out


def unnamed(lines: list[str]) -> list[str]:
    """What is wrong with the comments of one function's lines."""
    def values(text: str) -> set[str]:
        return set(VALUE.findall(QUOTED.sub("", text)))

    code = [None if ln.strip().startswith("#") else ln.split("  #")[0] for ln in lines]
    everywhere = values("\n".join(c for c in code if c is not None))
    bad = []
    for k, line in enumerate(lines):
        text = line.strip()
        if not text.startswith("#"):
            continue
        bad += [f"{text!r}: {v} is not in the code" for v in sorted(values(text) - everywhere)]
        call = CALL.match(QUOTED.sub("''", text))
        if call is None:
            continue
        indent, below = len(line) - len(line.lstrip()), []
        for c, raw in zip(code[k + 1:], lines[k + 1:]):
            if c is None or (raw.strip() and len(raw) - len(raw.lstrip()) < indent):
                break
            below.append(c)
        missing = values(call.group(1)) - values("\n".join(below))
        bad += [f"{text!r}: {v} is not read by the statements below" for v in sorted(missing)]
    return bad


@pytest.fixture(scope="module")
def modules() -> dict[str, str]:
    return {p.stem: standalone(graphc.load(p), "float32")["source"] for p in EXAMPLES}


@pytest.mark.parametrize("name", [p.stem for p in EXAMPLES])
def test_comments_name_values_the_code_names(modules, name):
    fns = functions(modules[name])
    assert any(n.endswith("_kernel") for n in fns)
    bad = [f"{fn}: {b}" for fn, lines in fns.items() if fn.endswith("_kernel")
           for b in unnamed(lines)]
    assert not bad, "\n".join(bad[:20])


def test_the_check_finds_a_stale_comment():
    lines = ["def k(v1, v2, v3):", "    # v3 = matmul(v1, v9)", "    matmul2d(v1, False, v2,"
             " True, v3)", "    # t4 = relu'(v1, v2)", "    t4 = v3[0]"]
    assert unnamed(lines) == ["'# v3 = matmul(v1, v9)': v9 is not in the code",
                              "'# v3 = matmul(v1, v9)': v9 is not read by the statements below",
                              "\"# t4 = relu'(v1, v2)\": v1 is not read by the statements below",
                              "\"# t4 = relu'(v1, v2)\": v2 is not read by the statements below",
                              ]


def test_matmul_comments_name_the_operands_the_call_reads(modules):
    src = modules["mnist_mlp"]
    for comment, call in re.findall(r"# (.* = matmul\(.*\))\n\s*(matmul2d\(.*\))", src):
        args = call[len("matmul2d("):-1].split(", ")
        shown = [f"{a}.T" if t == "True" else a for a, t in zip(args[0:4:2], args[1:4:2])]
        assert comment.endswith(f"matmul({', '.join(shown)})"), (comment, call)
    assert "matmul(v31, v7.T)" in src or ".T)" in src


@pytest.mark.parametrize("name", ["mnist_mlp", "lenet5"])
def test_the_train_step_calls_the_gradient_kernel(modules, name):
    fns = functions(modules[name])
    grad, step = fns["loss_and_grad_kernel"], fns["train_step_kernel"]
    assert sum("loss_and_grad_kernel(" in line for line in step) == 1
    assert len(step) < 25 < len(grad)  # a call and the update, not a copy of the body
    assert not any(line.lstrip().startswith("for ") for line in step)
