"""A few DOT snapshots (the architecture allows few: they are brittle): what `graphc viz`
writes for three diagrams, byte for byte. They pin the look that no other test checks
(font sizes, widths, captions under feature maps), which the mutation run found unpinned.

A deliberate change of the look: regenerate with `GRAPHC_UPDATE_SNAPSHOTS=1 pytest
tests/test_viz_snapshots.py`, look at the diff, and commit it."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from graphc.cli import main

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
CASES = {
    "neuron": ["examples/neuron.json"],
    "mnist_mlp_collapsed": ["examples/mnist_mlp.json", "--collapse"],
    "conv_maps_collapsed": None,  # --maps writes images: drawn through the API
    "conv_maps_expanded": None,
}


def dot_text(name: str, tmp_path: Path) -> str:
    if CASES[name] is not None:
        out = tmp_path / f"{name}.dot"
        r = CliRunner().invoke(main, ["viz", *CASES[name], "-o", str(out)])
        assert r.exit_code == 0, r.output
        return out.read_text(encoding="utf-8")
    from graphc.teach import scene_for
    from graphc.viz import make_options
    from graphc.viz.dot import draw

    sc = scene_for("examples/conv_maps.json", collapse=name.endswith("collapsed"))
    source = draw(sc, make_options(maps=True)).source
    return re.sub(r'((?i:src)=")[^"]*/([^"/]+")', r"\1\2", source)  # the images' own names


@pytest.mark.parametrize("name", list(CASES))
def test_dot_text_is_the_snapshot(name, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    got = dot_text(name, tmp_path)
    path = SNAPSHOTS / f"{name}.dot"
    if os.environ.get("GRAPHC_UPDATE_SNAPSHOTS"):
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with GRAPHC_UPDATE_SNAPSHOTS=1"
    assert got == path.read_text(encoding="utf-8"), (
        f"{name}: the diagram changed; if that is meant, regenerate with "
        "GRAPHC_UPDATE_SNAPSHOTS=1 and commit the diff")
