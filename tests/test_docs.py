"""The docs stay true: docs/ops.md is what the registry generates, every op and CLI
command is documented, the docs' code runs, their specs load and their links resolve."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import graphc
from graphc import opdoc
from graphc.cli import main as cli
from graphc.ops import REGISTRY, Op, public_ops
from graphc.spec import DTYPES, TOP_KEYS, schema

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
CORE_COMMANDS = ("check", "run", "gradcheck", "ops", "schema")  # documented in docs/cli.md


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def all_docs() -> str:
    return "\n".join(read(p) for p in PAGES)


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


# ---- the op catalogue -------------------------------------------------------------------

def test_ops_md_is_generated_from_the_registry():
    assert read(DOCS / "ops.md") == opdoc.generate(), \
        f"docs/ops.md is out of date: run {opdoc.REGENERATE}"
    assert read(DOCS / "ops.md").startswith("<!-- Generated") and opdoc.REGENERATE in \
        read(DOCS / "ops.md").splitlines()[0]


def test_every_public_op_is_in_ops_md():
    text = read(DOCS / "ops.md")
    for op in public_ops():
        section = text.split(f"\n### {op.name}\n", 1)
        assert len(section) == 2, f"no section for op {op.name!r}"
        body = section[1].split("\n### ", 1)[0]
        assert op.formula in body and op.gradient in body and op.symbol in body, op.name
        for attr in op.attrs:
            assert f"| `{attr}` |" in body, (op.name, attr)
    assert not any(f"\n### {op.name}\n" in text for op in REGISTRY.values() if op.internal)


def test_a_new_op_makes_ops_md_stale(monkeypatch, tmp_path):
    monkeypatch.setitem(REGISTRY, "cube", Op(
        name="cube", family="elementwise", inputs=("x",), formula="y = x³", symbol="x³",
        kind="elementwise", expr="x * x * x", gradient="dx = g * 3x²"))
    text = opdoc.generate()
    assert "### cube" in text and "`y = x³`" in text and "`dx = g * 3x²`" in text
    assert text != read(DOCS / "ops.md")
    stale = tmp_path / "ops.md"
    stale.write_text(read(DOCS / "ops.md"), encoding="utf-8")
    assert not opdoc.check(stale)
    assert opdoc.main(["--check", str(stale)]) == 1


def test_opdoc_command_line(tmp_path):
    out = tmp_path / "ops.md"
    run = [sys.executable, "-m", "graphc.opdoc"]
    subprocess.run([*run, "-o", str(out)], check=True, cwd=ROOT, timeout=120)
    assert read(out) == opdoc.generate()
    assert subprocess.run([*run, "--check", str(out)], cwd=ROOT, timeout=120).returncode == 0
    out.write_text("stale\n", encoding="utf-8")
    r = subprocess.run([*run, "--check", str(out)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 1 and "out of date" in r.stderr


# ---- the command line -------------------------------------------------------------------

def listed_commands() -> list[str]:
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    section = r.output.split("Commands:", 1)[1]
    return re.findall(r"^\s{2}(\S+)", section, re.M)


def test_every_cli_command_is_documented():
    commands = listed_commands()
    assert set(CORE_COMMANDS) <= set(commands)
    text = all_docs()
    for name in commands:
        assert f"graphc {name}" in text, f"`graphc {name}` is not mentioned in docs/"
    cli_md = read(DOCS / "cli.md")
    for name in commands:
        assert f"graphc {name}" in cli_md, f"docs/cli.md does not mention `graphc {name}`"


@pytest.mark.parametrize("name", CORE_COMMANDS)
def test_core_command_options_are_in_cli_md(name):
    cli_md = read(DOCS / "cli.md")
    assert f"\n## graphc {name}\n" in cli_md
    section = cli_md.split(f"\n## graphc {name}\n", 1)[1].split("\n## ", 1)[0]
    command = cli.get_command(click.Context(cli), name)
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--"):
                assert opt in section, f"option {opt} of `graphc {name}` is not in docs/cli.md"


# ---- the Python API and the spec format ------------------------------------------------

def test_public_python_names_are_in_python_api_md():
    text = read(DOCS / "python-api.md")
    for name in graphc.__all__:
        if name != "__version__":
            assert name in text, name
    for member in ("params", "forward", "grad", "trace", "train_step", "fit", "save", "load",
                   "to_json", "Builder", "gradcheck"):
        assert re.search(rf"\b{member}\b", text), member


def test_spec_md_covers_every_key():
    text = read(DOCS / "spec.md")
    for key in TOP_KEYS:
        assert f"| `{key}` |" in text, key
    defs = schema()["$defs"]
    for kind in ("input", "param", "node"):
        for key in defs[kind]["properties"]:
            assert f"| `{key}` |" in text, (kind, key)
    for dtype in DTYPES:
        assert f"`{dtype}`" in text, dtype
    from graphc.init import NAMES

    for init in NAMES:
        assert f'"{init}"' in text, init
    assert "graphc schema" in text


@pytest.mark.parametrize("page", ["index.md", "python-api.md", "onnx.md"])
def test_python_blocks_run(page, tmp_path, monkeypatch, capsys):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    code = blocks(read(DOCS / page), "python")
    assert code
    for i, block in enumerate(code):
        exec(compile(block, f"{page} block {i + 1}", "exec"), {})  # noqa: S102


def parse_fragment(block: str):
    """A JSON block as the docs show it: a whole document, `"key": value` members of an
    object, or objects one per line (a list's items, with or without commas)."""
    try:
        return json.loads(block)
    except json.JSONDecodeError:
        pass
    try:
        return json.loads("{" + block + "}")
    except json.JSONDecodeError:
        pass
    items, text, decoder = [], block.strip(), json.JSONDecoder()
    while text:
        item, end = decoder.raw_decode(text)  # raises: the block is not JSON at all
        items.append(item)
        text = text[end:].lstrip().removeprefix(",").lstrip()
    return items


def check_fragment(data) -> str:
    """Load what a block shows, as the part of a spec it is; returns what it was."""
    from graphc import optim, schedules
    from graphc.ops import REGISTRY

    if isinstance(data, dict) and "op" in data:
        data = [data]
    if isinstance(data, list):  # nodes
        for node in data:
            assert node["op"] in REGISTRY, node
        return "nodes"
    if "graphc" in data:
        graphc.load(data)
        return "spec"
    if "train" in data:
        opt = optim.from_spec(data["train"]["optimizer"])
        if "schedule" in data["train"]:
            schedules.from_spec(data["train"]["schedule"], opt, epochs=5, steps_per_epoch=3)
        return "train"
    if "schedule" in data:
        schedules.from_spec(data["schedule"], optim.SGD(lr=0.1), epochs=50)
        return "schedule"
    if "inputs" in data or "params" in data:
        inputs = data.get("inputs", {"x": {"shape": []}})
        first = next(k for k, v in inputs.items() if v.get("dtype", "float") == "float32"
                     or "dtype" not in v)
        graphc.load({"graphc": 1, "name": "fragment", "inputs": inputs,
                     "params": data.get("params", {}),
                     "nodes": [{"id": "o", "op": "neg", "inputs": [first]}],
                     "outputs": ["o"]})
        return "inputs/params"
    raise AssertionError(f"a JSON block the docs test does not know how to check: {data}")


def test_json_blocks_in_docs_parse_and_load():
    """Every JSON block, whole specs and fragments alike: none is skipped."""
    kinds = []
    for page in [*PAGES, ROOT / "examples" / "README.md"]:
        for i, block in enumerate(blocks(read(page), "json")):
            try:
                kinds.append(check_fragment(parse_fragment(block)))
            except Exception as e:
                raise AssertionError(f"{page.name}, JSON block {i + 1}: {e}") from e
    assert kinds.count("spec") >= 4
    assert {"nodes", "train", "schedule", "inputs/params"} <= set(kinds)


# ---- links --------------------------------------------------------------------------------

def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(h) for h in re.findall(r"^#+ (.*)$", read(path), re.M)}


@pytest.mark.parametrize("page", [*PAGES, ROOT / "examples" / "README.md"],
                         ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_resolve(page):
    text = re.sub(r"```.*?```", "", read(page), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue  # an external address
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        assert path.exists(), f"{page.name}: link to missing {file}"
        if anchor and path.suffix == ".md":
            assert anchor in anchors(path), f"{page.name}: no heading #{anchor} in {path.name}"


def test_examples_readme_lists_every_example():
    text = read(ROOT / "examples" / "README.md")
    for path in sorted((ROOT / "examples").glob("*")):
        if path.suffix in (".json", ".py"):
            assert f"]({path.name})" in text, f"add a row for {path.name} to examples/README.md"


def test_generated_module_md_summary_is_what_graphc_compile_prints(tmp_path, monkeypatch):
    """The sample summary in docs/generated-module.md is the real output ('...' stands
    for what the page leaves out)."""
    page = read(DOCS / "generated-module.md")
    shown = next(b for b in blocks(page, "") if b.startswith("wrote build/mnist_mlp.py"))
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["compile", str(ROOT / "examples" / "mnist_mlp.json"),
                                 "-o", "build/"])
    assert r.exit_code == 0, r.output
    real = r.output.splitlines()
    assert len(real) == len(shown.splitlines())
    for doc_line, line in zip(shown.splitlines(), real):
        pattern = ".*".join(re.escape(part) for part in doc_line.split("..."))
        assert re.fullmatch(pattern, line), (doc_line, line)
