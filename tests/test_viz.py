"""The visual inspector: diagrams checked structurally (nodes, edges, label rows parsed
from the DOT text), the lectures' numbers on the right edges, step-through frames,
escaping of hostile names, renderers and the `graphc viz` command."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import graphviz
import numpy as np
import pytest
from click.testing import CliRunner

import graphc
from graphc.cli import main
from graphc.teach import scene_for
from graphc.viz import make_options
from graphc.viz.dot import Mask, draw
from graphc.viz.html import script_json, stepper_page
from graphc.viz.render import RenderError, render, render_svgs
from graphc.viz.step import frames
from graphc.viz.style import THEMES, fmt, fmt_array, fmt_grad

GREEN, RED = THEMES["default"].value, THEMES["default"].grad


# ---- a small DOT reader: enough for graphviz.Digraph's one-statement-per-line output --

ATTR = re.compile(r'(\w+)=(<(?:[^<>]|<(?:[^<>]|<[^<>]*>)*>)*>|"(?:[^"\\]|\\.)*"|[^\s\]]+)')


class Dot:
    def __init__(self, source: str):
        self.nodes: dict[str, dict] = {}
        self.edges: list[tuple[str, str, dict]] = []
        self.clusters: list[str] = []
        for line in source.splitlines():
            line = line.strip()
            if line.startswith("subgraph "):
                self.clusters.append(line.split()[1])
                continue
            m = re.match(r"^(\S+) -> (\S+)(?: \[(.*)\])?$", line)
            if m:
                self.edges.append((m[1].split(":")[0], m[2].split(":")[0], _attrs(m[3] or "")))
                continue
            m = re.match(r"^(\w+) \[(.*)\]$", line)
            if m and m[1] not in ("node", "edge", "graph"):
                self.nodes[m[1]] = _attrs(m[2])

    def rows(self, key: str) -> list[list[tuple[str, str | None]]]:
        """A node's HTML label as rows of (text, colour) runs; the edge line is ('|', None)."""
        return label_rows(self.nodes[key]["label"])

    def text(self, key: str) -> list[str]:
        return [" ".join(t for t, _ in r) for r in self.rows(key)]

    def succ(self, key: str) -> list[str]:
        return [b for a, b, _ in self.edges if a == key]

    def pred(self, key: str) -> list[str]:
        return [a for a, b, _ in self.edges if b == key]

    def by_text(self, text: str, prefix: str = "") -> list[str]:
        return [k for k in self.nodes if k.startswith(prefix) and "label" in self.nodes[k]
                and text in self.text(k)]


def _attrs(text: str) -> dict:
    return {k: v[1:-1].replace('\\"', '"') if v.startswith('"') else v
            for k, v in ATTR.findall(text)}


def label_rows(label: str) -> list[list[tuple[str, str | None]]]:
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", label):
        if 'port="m"' in row:
            out.append([("|", None)])
            continue
        runs = re.findall(r'<font color="([^"]+)"[^>]*>(.*?)</font>', row)
        out.append([(html.unescape(re.sub(r"<[^>]+>", "", t)), c) for c, t in runs])
    return out


def edge_label(d: Dot, source_name: str) -> list[str]:
    """Rows of the value label on the edge leaving the source box called `source_name`."""
    (box,) = [k for k in d.nodes if k.startswith("n_") and d.text(k)[:1] == [source_name]]
    (val,) = d.succ(box)
    return d.text(val)


@pytest.fixture(scope="module")
def neuron(request):
    return Dot(graphc.viz(request.config.rootpath / "examples" / "neuron.json").source)


# ---- the lectures' figures ----------------------------------------------------------

def test_neuron_carries_the_lecture_numbers_value_above_gradient_below(neuron):
    expected = {"w0": ("2.00", "-0.20"), "x0": ("-1.00", "0.39"), "w1": ("-3.00", "-0.39"),
                "x1": ("-2.00", "-0.59"), "w2": ("-3.00", "0.20")}
    for name, (value, grad) in expected.items():
        assert edge_label(neuron, name) == [value, "|", grad], name
    (out,) = neuron.by_text("f", "val_")  # the output's label: name, 0.73 above, 1.00 below
    assert neuron.text(out) == ["f", "0.73", "|", "1.00"]
    rows = neuron.rows(out)
    assert rows[1] == [("0.73", GREEN)] and rows[3] == [("1.00", RED)]


def test_op_nodes_are_small_and_show_the_op_symbol(neuron):
    ops = sorted(neuron.text(k)[0] for k, a in neuron.nodes.items()
                 if k.startswith("n_") and a.get("shape") == "circle")
    assert ops == sorted(["×", "×", "+", "+", "−x", "exp", "+", "1/x"])
    assert all(neuron.nodes[k]["fixedsize"] == "true" for k in neuron.nodes
               if neuron.nodes[k].get("shape") == "circle")
    styles = {neuron.text(k)[1]: neuron.nodes[k]["fillcolor"] for k in neuron.nodes
              if k.startswith(("n_", "out")) and len(neuron.text(k)) == 2}
    assert len({styles["input"], styles["param"], styles["output · loss"]}) == 3


def test_sigmoid_node_gives_the_same_gradients(examples):
    d = Dot(graphc.viz(examples / "neuron_sigmoid.json").source)
    assert any(d.text(k) == ["σ"] for k in d.nodes)
    assert edge_label(d, "w0")[-1] == "-0.20" and edge_label(d, "x1")[-1] == "-0.59"
    (z,) = d.by_text("z", "val_")
    assert d.text(z) == ["z", "1.00", "|", "0.20"]  # σ'(z) = 0.73 * 0.27 = 0.20


def test_fork_shows_each_contribution_and_their_sum(examples):
    d = Dot(graphc.viz(examples / "fork.json").source)
    (fork,) = [k for k in d.nodes if k.startswith("fork_")]
    assert d.text(fork) == ["Σ"]
    (val,) = d.pred(fork)
    assert d.text(val) == ["1.00", "|", "5.00"]
    branches = d.succ(fork)
    assert sorted(d.text(b)[-1] for b in branches) == ["2.00", "3.00"]
    assert all(d.text(d.succ(b)[0]) == ["×"] for b in branches)


def test_forward_view_has_no_gradients_and_backward_view_has_the_derived_graph(examples):
    fwd = graphc.viz(examples / "fork.json", view="forward").source
    assert RED not in fwd and "fork_" not in fwd and "5.00" in fwd
    back = Dot(graphc.viz(examples / "fork.json", view="backward").source)
    texts = {k: back.text(k) for k in back.nodes}
    (acc,) = [k for k, t in texts.items() if t[:2] == ["Σ", "∂L/∂a"]]
    assert texts[acc][-1] == "5.00" and len(back.pred(acc)) == 2
    rng = np.random.default_rng(0)
    mlp = Dot(graphc.viz(examples / "mnist_mlp.json", view="backward",
                         inputs={"x": rng.normal(size=(2, 784)), "y": [3, 4]}).source)
    texts = [mlp.text(k) for k in mlp.nodes]
    assert ["Σ→shape", "∂loss/∂hidden.b", "[256]"] in [t[:3] for t in texts]


def test_options_turn_values_and_gradients_off(examples):
    d = Dot(graphc.viz(examples / "neuron.json", values=False).source)
    assert edge_label(d, "w0") == ["|", "-0.20"]
    d = Dot(graphc.viz(examples / "neuron.json", grads=False).source)
    assert edge_label(d, "w0") == ["2.00", "|"]
    d = Dot(graphc.viz(examples / "mnist_mlp.json").source)  # no input values: structure
    (val,) = d.by_text("hidden [B,256]", "val_")
    assert d.text(val) == ["hidden [B,256]", "|"]


def test_layers_collapse_to_boxes_with_shapes_and_param_counts(examples):
    d = Dot(graphc.viz(examples / "mnist_mlp.json", collapse=True).source)
    (hidden,) = d.by_text("hidden", "grp")
    assert "200,960 params" in d.text(hidden) and "[B,784] → [B,256]" in d.text(hidden)
    assert not any("hidden.W" in " ".join(d.text(k)) for k in d.nodes if "label" in d.nodes[k])
    e = Dot(graphc.viz(examples / "mnist_mlp.json", collapse=False).source)
    assert len(e.clusters) == 3 and e.by_text("hidden.W")


def test_each_collapsed_layer_box_shows_each_of_its_params_own_gradient(examples):
    rng = np.random.default_rng(0)
    inputs = {"x": rng.normal(size=(4, 784)), "y": np.array([1, 7, 3, 0])}
    m = graphc.compile(examples / "mnist_mlp.json", backend="numpy", dtype="float64")
    trace = m.trace(**inputs)
    d = Dot(graphc.viz(m, trace, collapse=True, digits=6).source)
    boxes = [k for k in d.nodes if k.startswith("grp")]
    seen = 0
    for key in boxes:
        rows = d.text(key)
        layer = rows[0]
        for row in rows:
            m_ = re.match(r"^(\w+) \[[\d,]+\] ‖g‖ ([\d.e-]+)$", row)
            if not m_:
                continue
            g = trace.grads[f"{layer}.{m_[1]}"]
            assert float(m_[2]) == pytest.approx(np.linalg.norm(g), rel=1e-5), (layer, row)
            seen += 1
    assert seen == 4  # hidden.W, hidden.b, out.W, out.b: each its own norm
    norms = {round(float(np.linalg.norm(trace.grads[k])), 6) for k in trace.grads
             if k.endswith((".W", ".b"))}
    assert len(norms) == 4  # distinct, so that showing the wrong one would be caught


def test_a_20_layer_network_collapses_by_default(examples):
    nodes, prev = [], "x"
    for i in range(20):
        nodes.append({"id": f"fc{i}", "op": "dense", "inputs": [prev],
                      "attrs": {"units": 8, "activation": "tanh"}})
        prev = f"fc{i}"
    spec = {"graphc": 1, "name": "deep", "nodes": nodes, "outputs": [prev],
            "inputs": {"x": {"shape": [2, 8], "value": [[0.5] * 8] * 2}}}
    source = graphc.viz(spec).source
    d = Dot(source)
    boxes = [k for k in d.nodes if k.startswith("grp")]
    assert len(boxes) == 20 and "72 params" in d.text(boxes[0])
    assert "rankdir=TB" in source  # a long chain reads top to bottom: value left, gradient right
    (val,) = [k for k in d.nodes if k.startswith("val_") and "fc3" in d.nodes[k]["label"]]
    label = d.nodes[val]["label"]
    assert 'sides="L"' in label and label.index(GREEN) < label.index('port="m"')
    assert ("rankdir=LR" in graphc.viz(spec, rankdir="LR").source
            and "rankdir=LR" in graphc.viz(examples / "neuron.json").source)


def test_a_model_is_drawn_with_its_own_params_and_a_given_trace(examples):
    m = graphc.compile(examples / "neuron.json", backend="numpy", dtype="float64")
    m.params["w0"][...] = 1.0
    d = Dot(graphc.viz(m).source)
    assert edge_label(d, "w0")[0] == "1.00"
    t = m.trace(x0=3.0)
    assert edge_label(Dot(graphc.viz(m, trace=t).source), "x0")[0] == "3.00"
    svg = graphc.load(examples / "neuron.json")._repr_svg_()  # what Jupyter shows
    assert "<svg" in svg and "0.73" in svg


def test_themes_and_number_formats(examples):
    cb = graphc.viz(examples / "neuron.json", theme="colorblind").source
    assert "#0072b2" in cb and "#d55e00" in cb and GREEN not in cb
    with pytest.raises(ValueError, match="colorblind"):
        graphc.viz(examples / "neuron.json", theme="neon")
    assert [fmt(x) for x in (0.731, -0.196, 6, -0.0, 0.0001, -12345.6, 2e6)] == \
        ["0.73", "-0.20", "6.00", "0.00", "1.0e-4", "-12345.60", "2.0e6"]
    assert fmt_array(np.array([0.5, -1.0])) == "[0.50, -1.00]"
    assert fmt_array(np.arange(12.0)) == "min 0.00 · mean 5.50 · max 11.00"
    assert fmt_grad(np.full(16, 0.25)) == "‖g‖ 1.00"


# ---- step-through ---------------------------------------------------------------------

def test_frames_follow_the_documented_order_with_the_arithmetic(examples):
    sc = scene_for(examples / "neuron.json")
    fs = frames(sc)
    phases = [f.phase for f in fs]
    assert phases == ["forward"] * 13 + ["backward"] * 9
    assert fs[0].caption == ["x0 is an input: x0 = -1.00"]
    assert fs[5].caption == ["t0 = w0 × x0 = 2.00 × (-1.00) = -2.00"]
    assert fs[12].caption == ["f = 1/d = 1/1.37 = 0.73"]
    assert fs[13].node.startswith("out") and "∂f/∂f = 1" in fs[13].caption[0]
    last = fs[-1].caption
    assert "∂f/∂w0 = ∂f/∂t0 × ∂t0/∂w0 = 0.20 × (-1.00) = -0.20" in last
    assert "∂f/∂x0 = ∂f/∂t0 × ∂t0/∂x0 = 0.20 × 2.00 = 0.39" in last
    assert len({f.node for f in fs}) > 10  # the highlight moves


def test_a_fork_frame_sums_the_contributions(examples):
    fs = frames(scene_for(examples / "fork.json"))
    (fork,) = [f for f in fs if f.node.startswith("fork_")]
    assert fork is fs[-1] and fork.caption[-1] == "= 2.00 + 3.00 = 5.00"


def test_a_frame_shows_only_what_is_computed_and_highlights_its_node(examples):
    sc = scene_for(examples / "neuron.json")
    opts = make_options()
    first = Dot(draw(sc, opts, frames(sc)[0].mask).source)
    (cur,) = [k for k, a in first.nodes.items() if a.get("class") == "gc-current"]
    assert first.text(cur)[0] == "x0"
    rows = first.rows(first.succ("n_v2")[0])  # w0's value: not yet computed in frame 0
    assert rows[0][0][1] == "transparent" and rows[-1][0][1] == "transparent"
    full = Mask(current="n_v5")
    d = Dot(draw(sc, opts, full).source)
    assert d.nodes["n_v5"]["class"] == "gc-current"
    assert not any(a.get("class") == "gc-current" for k, a in d.nodes.items() if k != "n_v5")


# ---- names are data -------------------------------------------------------------------

HOSTILE = ['</script><script>alert(1)</script>', 'a"b', "back\\slash\\N", "{brace} [x]",
           "ünï ∂σ 名前", "&amp; <b>bold</b>"]


def hostile_spec() -> dict:
    x, w, y, z, p, q = HOSTILE
    return {"graphc": 1, "name": x, "doc": q,
            "inputs": {x: {"shape": [], "value": 2.0}, w: {"shape": [], "value": 3.0}},
            "nodes": [{"id": y, "op": "mul", "inputs": [x, w]},
                      {"id": z, "op": "add", "inputs": [y, x]},
                      {"id": p, "op": "tanh", "inputs": [z]},
                      {"id": q, "op": "mul", "inputs": [p, 2]}],
            "outputs": [q], "loss": q}


def test_names_with_any_characters_render_as_text_in_dot_and_svg():
    d = graphc.viz(hostile_spec())
    parsed = Dot(d.source)
    texts = {t for k in parsed.nodes if "label" in parsed.nodes[k] for t in parsed.text(k)}
    assert set(HOSTILE[:2]) <= texts and HOSTILE[5] in texts
    assert all(re.fullmatch(r"[\w]+", k) for k in parsed.nodes)  # DOT names are ids only
    root = ET.fromstring(render(d.source, "svg"))  # well-formed, names come back as text
    svg_text = {"".join(e.itertext()) for e in root.iter() if e.tag.endswith("text")}
    for name in HOSTILE:
        assert name in svg_text, name
    assert not list(root.iter("{http://www.w3.org/2000/svg}script"))


def test_the_stepper_page_cannot_be_broken_out_of():
    sc = scene_for(hostile_spec())
    page, n = stepper_page(sc, make_options())
    assert "<script>alert" not in page and page.count("</script>") == 2
    blob = page.split('type="application/json">')[1].split("</script>")[0]
    data = json.loads(blob)
    assert len(data["frames"]) == n
    assert any(HOSTILE[0] in line for f in data["frames"] for line in f["caption"])
    assert script_json({"s": "</script>&\u2028"}) == '{"s":"\\u003c/script\\u003e\\u0026\\u2028"}'


# ---- rendering and the command line -----------------------------------------------------

def test_renderers_and_the_message_when_there_is_none(examples, monkeypatch):
    src = graphc.viz(examples / "neuron.json").source
    monkeypatch.setenv("GRAPHC_RENDERER", "graphviz-pure")
    assert render(src, "png")[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(render_svgs([src, src, src])) == 3
    with pytest.raises(RenderError, match="apt-get install graphviz"):
        render(src, "pdf")
    monkeypatch.setenv("GRAPHC_RENDERER", "none")
    with pytest.raises(RenderError, match="pip install graphviz-pure"):
        render(src, "svg")
    monkeypatch.setenv("GRAPHC_RENDERER", "dot")
    assert render(src, "pdf")[:5] == b"%PDF-"


def test_inline_in_jupyter_without_dot(examples, tmp_path, monkeypatch):
    """`dot` hidden from PATH, so that the graphviz library itself cannot find it: only
    graphc's renderer choice (graphviz-pure beside the interpreter) can draw inline."""
    import shutil

    from graphc.viz.render import _which

    if _which("graphviz-pure") is None:
        pytest.skip("graphviz-pure is not installed (pip install graphviz-pure)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    beside = Path(sys.executable).parent / "graphviz-pure"
    if not beside.is_file():  # on PATH only: put it (and nothing else) on the new PATH
        (bin_dir / "graphviz-pure").symlink_to(shutil.which("graphviz-pure"))
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("GRAPHC_RENDERER", raising=False)
    assert shutil.which("dot") is None
    d = graphc.viz(examples / "fork.json")
    with pytest.raises(graphviz.ExecutableNotFound):  # what a plain Digraph would do
        graphviz.Digraph(body=d.body).pipe(format="svg")
    bundle = d._repr_mimebundle_()
    svg = bundle["image/svg+xml"]
    assert svg.lstrip().startswith(("<?xml", "<svg")) and "5.00" in svg
    assert "<svg" in graphc.load(examples / "neuron.json")._repr_svg_()


def viz_cli(*args, env=None):
    return CliRunner().invoke(main, ["viz", *map(str, args)], env=env)


NEURON_NUMBERS = {"0.73", "-0.20", "0.39", "-0.39", "-0.59", "0.20"}


def pdf_texts(data: bytes) -> list[str]:
    """The text runs of a cairo PDF (Graphviz's): each TJ array's strings, joined."""
    import zlib

    out = []
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        try:
            body = zlib.decompress(stream)
        except zlib.error:
            continue
        for arr in re.findall(rb"\[(.*?)\]\s*TJ", body, re.S):
            parts = re.findall(rb"\(((?:[^\\)]|\\.)*)\)", arr)
            out.append(b"".join(parts).replace(b"\\(", b"(").replace(b"\\)", b")")
                       .decode("latin-1"))
    return out


def svg_size(svg: bytes) -> tuple[float, float]:
    m = re.search(rb'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    return float(m[1]), float(m[2])


@pytest.mark.parametrize("ext,magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"),
                                       (".pdf", b"%PDF"), (".dot", b"digraph"),
                                       (".html", b"<!DOCTYPE")])
def test_cli_writes_each_format(examples, tmp_path, ext, magic):
    out = tmp_path / f"n{ext}"
    r = viz_cli(examples / "neuron.json", "-o", out)
    assert r.exit_code == 0, r.output
    assert r.output == f"wrote {out}\n"
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 1000
    width, height = svg_size(render(graphc.viz(examples / "neuron.json").source, "svg"))
    if ext == ".png":  # the same layout at 150 dpi, with the lecture's green and red in it
        from PIL import Image

        img = Image.open(out).convert("RGB")
        assert abs(img.width - width * 150 / 72) < 8 and abs(img.height - height * 150 / 72) < 8
        colours = {c for _, c in img.getcolors(maxcolors=1 << 20)}
        near = [lambda c, h=h: all(abs(a - b) < 40 for a, b in zip(c, bytes.fromhex(h[1:])))
                for h in (GREEN, RED)]
        assert all(any(f(c) for c in colours) for f in near)
    elif ext == ".pdf":  # the diagram's text, page size = layout + Graphviz's 36 pt margins
        texts = pdf_texts(data)
        assert NEURON_NUMBERS <= set(texts) and {"x0", "t012", "1/x"} <= set(texts)
        box = [float(v) for v in re.search(rb"/MediaBox \[([^\]]*)\]", data)[1].split()]
        assert abs(box[2] - 72 - width) < 3 and abs(box[3] - 72 - height) < 3
    elif ext == ".dot":
        d = Dot(data.decode("utf-8"))
        assert {"n_v5", "val_v13", "out0"} <= set(d.nodes)
    else:
        text = data.decode("utf-8")
        assert NEURON_NUMBERS <= {html.unescape(t) for t in re.findall(r">([^<>]+)</text>", text)}


def test_cli_stepper_frames_sets_and_views(examples, tmp_path):
    r = viz_cli(examples / "fork.json", "--step", "-o", tmp_path / "f.html",
                "--frames", tmp_path / "frames", "--set", "a=2", "--theme", "colorblind")
    assert r.exit_code == 0, r.output
    assert "(9 steps)" in r.output and "10.00" in (tmp_path / "f.html").read_text()
    assert len(list((tmp_path / "frames").glob("frame_*.svg"))) == 9
    assert "Σ at the fork of a" in (tmp_path / "frames" / "captions.txt").read_text()
    last = {"".join(e.itertext()) for e in ET.parse(tmp_path / "frames" / "frame_009.svg").iter()}
    assert {"2.00", "4.00", "6.00", "10.00", "5.00", "Σ at the fork of a"} <= last  # a = 2

    def drawn(*extra):
        r = viz_cli(examples / "mnist_mlp.json", "-o", tmp_path / "m.dot", *extra)
        assert r.exit_code == 0, r.output
        return Dot((tmp_path / "m.dot").read_text(encoding="utf-8"))

    back = drawn("--view", "backward")  # every compiler node: backward ones named ∂L/∂...
    notes = [" ".join(back.text(k)) for k in back.nodes if k.startswith("b_")]
    assert any("∂loss/∂hidden.W" in t for t in notes) and any("∂loss/∂logits.b" in t for t in notes)
    assert len(notes) > 20 and not back.clusters
    boxes = drawn("--collapse")
    assert sorted(" ".join(boxes.text(k)).split()[0] for k in boxes.nodes
                  if k.startswith("grp")) == ["hidden", "logits", "loss"]
    assert not boxes.clusters
    expanded = drawn("--expand", "--no-grads")
    assert len(expanded.clusters) == 3 and not any(k.startswith("grp") for k in expanded.nodes)
    assert "gradient below" not in " ".join(" ".join(expanded.text(k)) for k in expanded.nodes
                                           if "label" in expanded.nodes[k])


@pytest.mark.parametrize("args,code,text", [
    (["-o", "x.jpg"], 1, "unknown output type '.jpg'"),
    (["-o", "x.svg", "--set", "x0=oops"], 1, "--set x0"),
    (["-o", "x.svg", "--set", "nope=1"], 1, "unknown input 'nope'"),
    (["--step", "-o", "x.svg"], 2, "--step writes an HTML stepper"),
    ([], 2, "missing option '-o'"),
    (["-o", "x.svg", "--view", "sideways"], 2, "sideways"),
])
def test_cli_errors(examples, tmp_path, args, code, text):
    args = [a.replace("x.", str(tmp_path / "x.")) for a in args]
    r = viz_cli(examples / "neuron.json", *args)
    assert r.exit_code == code, r.output
    assert text in r.output
    if code == 1:
        assert r.output.startswith("error: ") and r.output.count("\n") == 1


def test_cli_missing_file_and_missing_renderer(examples, tmp_path):
    r = viz_cli(tmp_path / "nope.json", "-o", tmp_path / "x.svg")
    assert r.exit_code == 1 and r.output.startswith("error: ") and "no such file" in r.output
    r = viz_cli(examples / "neuron.json", "-o", tmp_path / "x.svg",
                env={"GRAPHC_RENDERER": "none"})
    assert r.exit_code == 1 and r.output == (
        "error: no Graphviz renderer found to write .svg; run: pip install graphviz-pure "
        "(or apt-get install graphviz); .dot output needs no renderer\n")
    r = viz_cli(examples / "neuron.json", "-o", tmp_path / "x.dot",
                env={"GRAPHC_RENDERER": "none"})
    assert r.exit_code == 0  # DOT text needs no renderer


def test_cli_in_a_real_process(examples, tmp_path):
    out = tmp_path / "n.svg"
    done = subprocess.run([sys.executable, "-m", "graphc.cli", "viz",
                           str(examples / "neuron.json"), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    texts = {"".join(e.itertext()) for e in ET.parse(out).getroot().iter()}
    assert {"0.73", "-0.59", "-0.20", "0.39", "-0.39", "0.20"} <= texts


def test_the_gallery_images_exist_and_show_the_lecture_numbers(examples):
    docs = examples.parent / "docs"
    text = (docs / "gallery.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\((img/[^)]+\.svg)\)", text)
    assert len(images) >= 10
    for name in images:
        ET.parse(docs / name)  # each one a well-formed SVG
    texts = {"".join(e.itertext()) for e in ET.parse(docs / "img" / "neuron.svg").iter()}
    assert {"0.73", "-0.20", "0.39", "-0.39", "-0.59", "0.20"} <= texts
    page = (docs / "neuron-stepper.html").read_text(encoding="utf-8")
    blob = page.split('type="application/json">')[1].split("</script>")[0]
    assert len(json.loads(blob)["frames"]) == 22
