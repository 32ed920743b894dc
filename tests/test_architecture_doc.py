"""docs/architecture.md shows real dumps: each `# after PASS` block is what `graphc compile
--dump-after PASS` prints for examples/logistic_regression.json (a line "vA ... vB as
above" stands for those nodes of the earlier block), and the plan block is the real plan."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from graphc.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
SPEC = str(ROOT / "examples" / "logistic_regression.json")


def dumps(after: str, tmp_path: Path) -> list[list[str]]:
    """Each graph printed after the pass (prune prints the forward, then the backward)."""
    r = CliRunner().invoke(cli, ["compile", SPEC, "-o", str(tmp_path), "--dump-after", after])
    assert r.exit_code == 0, r.output
    out: list[list[str]] = []
    for line in r.output.splitlines():
        if line.startswith("# after ") or line.startswith(f"{after}: "):
            out.append([line])
        elif out and re.match(r"v\d+: ", line):
            out[-1].append(line)
    return out


def test_every_dump_on_the_page_is_real(tmp_path):
    shown = re.findall(r"```text\n(# after (\w+):.*?)```", PAGE, re.S)
    assert {name for _, name in shown} == {"lower", "differentiate", "prune"}
    for block, name in shown:
        lines = block.strip().splitlines()
        real = next(d for d in dumps(name, tmp_path) if d[0] == lines[0])
        at = 1
        for line in lines[1:]:
            elided = re.fullmatch(r"(v\d+) \.\.\. (v\d+) as above", line)
            if elided:
                start = next(k for k, r in enumerate(real) if r.startswith(elided[1] + ":"))
                end = next(k for k, r in enumerate(real) if r.startswith(elided[2] + ":"))
                assert start == at, (line, real[at])
                at = end + 1
            else:
                assert real[at] == line, (name, line, real[at])
                at += 1
        assert at == len(real), f"{name}: the page leaves out {real[at:]}"


def test_the_plan_on_the_page_is_real(tmp_path):
    shown = re.search(r"```text\n(loss_and_grad: .*?)```", PAGE, re.S)[1].strip().splitlines()
    r = CliRunner().invoke(cli, ["compile", SPEC, "-o", str(tmp_path), "--dump-after", "plan"])
    real = [line for line in r.output.splitlines() if line.startswith("loss_and_grad: ")]
    assert shown == real
