"""`graphc viz --maps`: 4-D values, gradients and conv filters as strips of heatmaps on
one colour scale, the shape arithmetic on conv and pool edges, and what --maps says
about a model without images. (The stepper's images in a browser: test_viz_browser.py.)"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from graphc.cli import main
from graphc.teach import scene_for
from graphc.viz import make_options
from graphc.viz.dot import Mask, draw
from graphc.viz.maps import CAP, NEGATIVE, POSITIVE, ZERO, colors, make_strip, png, scale
from graphc.viz.render import svg_text

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_png_decodes_to_the_same_pixels():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pixels(png(rgb)), rgb)


def test_a_strip_shares_one_scale_centred_at_zero():
    a = np.zeros((2, 3, 4, 4))
    a[0, 0, 0, 0], a[0, 1, 0, 0], a[0, 2, 0, 0] = 4.0, -1.0, 0.5  # ranges differ by channel
    a[1] = 100.0  # the second image of the batch is not drawn
    s = make_strip(a)
    assert (s.vmin, s.vmax, s.diverging) == (-4.0, 4.0, True)
    assert len(s.images) == s.channels == 3 and s.more == 0
    maps = [pixels(im) for im in s.images]
    k = maps[0].shape[0] // 4  # nearest-neighbour scale factor
    assert maps[0].shape == (s.height, s.width, 3) and k > 1
    assert tuple(maps[0][0, 0]) == POSITIVE  # 4 is the top of the shared scale
    assert tuple(maps[1][0, 0]) != NEGATIVE  # -1 is not the bottom: the scale is shared
    assert tuple(maps[1][-1, -1]) == ZERO  # and 0 is white in every channel


def test_non_negative_data_uses_a_sequential_scale():
    assert scale(np.array([0.0, 2.0])) == (0.0, 2.0, False)
    c = colors(np.array([[0.0, 1.0, 2.0]]), 0.0, 2.0, False)
    assert len({tuple(x) for x in c[0]}) == 3 and ZERO not in {tuple(x) for x in c[0]}


def test_filters_are_one_image_each_and_strips_are_capped():
    w = np.random.default_rng(1).standard_normal((12, 3, 5, 5))
    s = make_strip(w, weight=True)
    assert len(s.images) == CAP and s.channels == 12 and s.more == 4
    assert pixels(s.images[0]).shape[:2] == (s.height, s.width)
    shown = w[:CAP, 0]  # each filter's first input channel, on their common scale
    assert s.vmax == pytest.approx(np.abs(shown).max()) and s.vmin == -s.vmax


@pytest.fixture(scope="module")
def conv_svg(tmp_path_factory):
    spec = EXAMPLES / "conv_maps.json"
    out = tmp_path_factory.mktemp("maps") / "conv.svg"
    r = CliRunner().invoke(main, ["viz", str(spec), "--maps", "-o", str(out)])
    assert r.exit_code == 0, r.output
    return out.read_text(encoding="utf-8")


def test_the_svg_has_one_image_per_channel_shown(conv_svg):
    # x [1,1,8,8]; conv1.W [4,1,3,3]; conv1.conv2d, conv1, pool [1,4,*,*]: a strip of the
    # value and one of the gradient each
    assert len(re.findall(r"<image\b", conv_svg)) == 2 * (1 + 4 + 4 + 4 + 4)
    assert len(re.findall(r'<image data-k="v:', conv_svg)) == 1 + 4 * 4
    assert len(re.findall(r'<image data-k="g:', conv_svg)) == 1 + 4 * 4
    assert "4 of 4 filters · scale" in conv_svg and "4 of 4 channels · scale" in conv_svg


def test_the_svg_stands_alone(conv_svg):
    hrefs = re.findall(r'<image [^>]*xlink:href="([^"]*)"', conv_svg)
    assert hrefs and all(h.startswith("data:image/png;base64,") for h in hrefs)
    assert "graphc-maps-" not in conv_svg


def test_conv_and_pool_edges_show_the_shape_arithmetic(conv_svg):
    assert "[1,1,8,8] → [1,4,8,8]" in conv_svg  # conv 4@3x3, padding 1
    assert "[1,4,8,8] → [1,4,4,4]" in conv_svg  # max pool 2
    titles = [t.replace("&#45;", "-").replace("&#10;", "\n")
              for t in re.findall(r'xlink:title="([^"]*)"', conv_svg)]
    conv = next(t for t in titles if t.startswith("conv2d"))
    assert "(H + 2p - d(k-1) - 1)/s + 1" in conv and "H: (8 + 2 - 1·2 - 1)/1 + 1 = 8" in conv


def test_the_lectures_conv_edge(tmp_path):
    spec = EXAMPLES / "conv_shapes.json"
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((2, 3, 32, 32)))
    sc = scene_for(spec, inputs={"x": np.load(tmp_path / "x.npy")}, collapse=False)
    svg = svg_text(draw(sc, make_options(maps=True)).source)
    assert "[2,3,32,32] → [2,6,28,28]" in svg
    assert len(re.findall(r"<image\b", svg)) == 3 + 6 + 6  # x, the filters, the maps


def test_hidden_maps_keep_their_place_in_a_frame(examples):
    sc = scene_for(examples / "conv_maps.json")
    opts = make_options(maps=True)
    none = draw(sc, opts, Mask(values={sc.forward[0]}, grads=set())).source
    full = draw(sc, opts).source
    assert none.count("<img ") == 1 < full.count("<img ") == 34
    assert none.count('fixedsize="true" width=') == full.count('fixedsize="true" width=')


def test_maps_on_a_model_without_images_says_so_and_draws(examples, tmp_path):
    out = tmp_path / "neuron.svg"
    r = CliRunner().invoke(main, ["viz", str(examples / "neuron.json"), "--maps", "-o", str(out)])
    assert r.exit_code == 0 and out.exists()
    notes = [line for line in r.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: --maps: sigmoid neuron (decomposed) has no 4-D values (images "
                     "[N, C, H, W] or conv filters); drawing it without feature maps"]


def test_maps_need_an_image_format(examples, tmp_path):
    r = CliRunner().invoke(main, ["viz", str(examples / "conv_maps.json"), "--maps", "-o",
                                  str(tmp_path / "a.dot")])
    assert r.exit_code == 2 and "--maps embeds images" in r.output


def test_the_backward_view_draws_every_4d_node_and_gradient():
    from graphc.viz import draw_view

    sc = scene_for(EXAMPLES / "conv_maps.json", view="backward")
    svg = svg_text(draw_view(sc, make_options(view="backward", maps=True), "backward").source)
    # forward: x 1, conv1.W 4 filters, conv2d / relu / pool 4 each; backward: dL/d of the
    # pool, its input, the relu's input and its local derivative 4 each, dL/dx 1, dL/dW 4
    assert len(re.findall(r"<image\b", svg)) == (1 + 4 + 3 * 4) + (4 * 4 + 1 + 4)
    assert svg.count("4 of 4 filters · scale") == 2  # conv1.W and its gradient
