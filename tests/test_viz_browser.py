"""The HTML stepper in a real headless browser (Debian's chromium driven by Playwright,
offline: never `playwright install`). One browser for the module; each test ~1 s.

CI installs `chromium` (apt) and `playwright` (pip); like torch, they are optional for
users, so this module is skipped only where they are absent.
"""

from __future__ import annotations

import io
import os
import shutil

import pytest

import graphc
from graphc.teach import scene_for
from graphc.viz import make_options
from graphc.viz.html import stepper_page
from graphc.viz.style import THEMES

sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = os.environ.get("GRAPHC_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip("no chromium (apt-get install chromium)", allow_module_level=True)

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def open_stepper(browser, tmp_path):
    pages = []

    def go(spec, **options):
        path = tmp_path / "stepper.html"
        page_html, _ = stepper_page(scene_for(spec), make_options(**options), interval_ms=250)
        path.write_text(page_html, encoding="utf-8")
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.errors, page.dialogs, page.requests = [], [], []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.on("request", lambda r: page.requests.append(r.url)
                if not r.url.startswith("file:") else None)
        page.on("dialog", lambda d: (page.dialogs.append(d.message), d.dismiss()))
        page.route("**/*", lambda route: route.abort()
                   if not route.request.url.startswith("file:") else route.continue_())
        page.goto(path.as_uri())
        pages.append(page)
        return page

    yield go
    for p in pages:
        p.close()


def state(page) -> tuple[str, str, str | None]:
    return (page.locator("#gc-counter").text_content(), page.locator("#gc-lines").inner_text(),
            page.locator("#gc-stage .gc-current").get_attribute("id"))


def test_buttons_and_keys_step_through_the_neuron(open_stepper, examples):
    page = open_stepper(examples / "neuron.json")
    counter, caption, node = state(page)
    assert counter == "1 / 22" and "x0 = -1.00" in caption and node == "n_v0"
    assert page.locator("#gc-prev").is_disabled()
    for _ in range(5):
        page.click("#gc-next")
    counter, caption, node = state(page)
    assert counter == "6 / 22" and "t0 = w0 × x0 = 2.00 × (-1.00) = -2.00" in caption
    assert node == "n_v5"
    page.click("#gc-prev")
    assert state(page)[2] == "n_v4"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert state(page)[2] == "n_v6"
    page.keyboard.press("ArrowLeft")
    assert state(page)[2] == "n_v5"
    page.keyboard.press("End")
    counter, caption, node = state(page)
    assert counter == "22 / 22" and node == "n_v5"
    assert "∂f/∂x0 = ∂f/∂t0 × ∂t0/∂x0 = 0.20 × 2.00 = 0.39" in caption
    assert page.locator("#gc-phase").text_content() == "backward pass"
    assert page.locator("#gc-next").is_disabled()
    shot = page.screenshot()
    assert not page.errors
    from PIL import Image

    img = Image.open(io.BytesIO(shot)).convert("RGB")
    colours = img.getcolors(maxcolors=1 << 20)
    assert len(colours) > 50  # text, lines and fills, not a blank page
    dark = sum(n for n, (r, g, b) in colours if r + g + b < 300)
    assert dark > 2000
    assert any(r > 200 and g < 90 and b < 90 for _, (r, g, b) in colours)  # red gradients


def test_slider_and_play_pause(open_stepper, examples):
    page = open_stepper(examples / "fork.json")
    page.locator("#gc-slider").fill("7")
    assert state(page)[0] == "8 / 9"
    page.click("#gc-play")
    page.wait_for_function("document.getElementById('gc-counter').textContent === '9 / 9'",
                           timeout=5000)
    counter, caption, node = state(page)
    assert node == "fork_v0" and "= 2.00 + 3.00 = 5.00" in caption
    assert page.locator("#gc-play").get_attribute("aria-pressed") == "false"  # stops at end
    page.keyboard.press("Home")
    assert state(page)[0] == "1 / 9" and not page.errors


def test_hostile_names_are_shown_as_text_and_never_run(open_stepper):
    from test_viz import HOSTILE, hostile_spec

    page = open_stepper(hostile_spec())
    assert page.title().startswith(HOSTILE[0])
    assert page.locator("#gc-title").inner_text() == f"{HOSTILE[0]} = 2.00"
    page.keyboard.press("ArrowRight")
    assert page.locator("#gc-lines").inner_text() == 'a"b is an input: a"b = 3.00'
    page.keyboard.press("End")
    stage = page.locator("#gc-stage").inner_text()
    assert HOSTILE[0] in stage and "back\\slash\\N" in stage
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert not page.dialogs and not page.errors
    assert page.requests == []  # the stepper asks the network for nothing


# ---- each edge's gradient appears at the frame that derives it (issue 13 item 7) -----

VISIBLE_GRADS = """() => Array.from(document.querySelectorAll('#gc-stage g.node'))
  .filter(g => /^(val_|br_|grp)/.test(g.id))
  .filter(g => Array.from(g.querySelectorAll('text'))
    .some(t => (t.getAttribute('fill') || '').toLowerCase() === '{}'
      && getComputedStyle(t).visibility !== 'hidden'))
  .map(g => g.id).sort()""".format(THEMES["default"].grad)

VISIBLE_VALUES = VISIBLE_GRADS.replace(THEMES["default"].grad, THEMES["default"].value)

# by hand, from the lecture: which edges carry a gradient after each backward frame
NEURON_BACKWARD = [
    ("∂f/∂f = 1", ["f"]),
    ("∂f/∂f flows back through 1/x", ["d"]),
    ("∂f/∂d flows back through +", ["e"]),
    ("∂f/∂e flows back through exp", ["nt"]),
    ("∂f/∂nt flows back through −x", ["t012"]),
    ("∂f/∂t012 flows back through +", ["t01", "w2"]),
    ("∂f/∂t01 flows back through +", ["t0", "t1"]),
    ("∂f/∂t1 flows back through ×", ["w1", "x1"]),
    ("∂f/∂t0 flows back through ×", ["w0", "x0"]),
]
FORK_BACKWARD = [  # a feeds b (×2) and c (×3): each branch, then the Σ
    ("∂L/∂L = 1", ["val:L"]),
    ("∂L/∂L flows back through +", ["val:b", "val:c"]),
    ("∂L/∂c flows back through ×", ["br:a:1"]),
    ("∂L/∂b flows back through ×", ["br:a:0"]),
    ("Σ at the fork of a", ["val:a"]),
]


def _ids(spec, names):
    prog = scene_for(spec).program
    by_name = {n.name: n.id for n in prog if n.name is not None}
    out = []
    for k in names:
        kind, _, rest = k.partition(":") if ":" in k else ("val", "", k)
        if kind == "br":
            name, j = rest.split(":")
            out.append(f"br_{by_name[name]}_{j}")
        else:
            out.append(f"val_{by_name[rest]}")
    return out


@pytest.mark.parametrize("example, backward", [("neuron", NEURON_BACKWARD),
                                               ("fork", FORK_BACKWARD)])
def test_each_gradient_appears_at_the_frame_that_derives_it(open_stepper, examples, example,
                                                            backward):
    spec = examples / f"{example}.json"
    page = open_stepper(spec)
    total = int(page.locator("#gc-counter").text_content().split("/")[1])
    n_forward = total - len(backward)
    expected: set[str] = set()
    for k in range(total):
        if k >= n_forward:
            title, new = backward[k - n_forward]
            assert page.locator("#gc-title").text_content() == title
            expected |= set(_ids(spec, new))
        else:
            assert page.locator("#gc-phase").text_content() == "forward pass"
        assert page.evaluate(VISIBLE_GRADS) == sorted(expected), f"frame {k + 1}"
        if k == 0:  # only the first source's value is computed yet (on each fork branch too)
            first = ["val_v0"] if example == "neuron" else ["br_v0_0", "br_v0_1", "val_v0"]
            assert page.evaluate(VISIBLE_VALUES) == first
        page.keyboard.press("ArrowRight")
    assert not page.errors and page.requests == []


VISIBLE_MAPS = """() => Array.from(document.querySelectorAll('#gc-stage image'))
  .filter(e => e.style.visibility !== 'hidden')
  .map(e => e.getAttribute('data-k')).sort()"""


def test_the_stepper_reveals_feature_maps_with_their_numbers(open_stepper, examples):
    page = open_stepper(examples / "conv_maps.json", maps=True)
    assert page.locator("#gc-stage image").count() == 34  # as in the --maps diagram
    assert page.evaluate(VISIBLE_MAPS) == ["v:v0"]  # the image itself, first
    for _ in range(6):  # the other sources, then the convolution
        if page.locator("#gc-title").text_content().startswith("conv1.conv2d"):
            break
        page.keyboard.press("ArrowRight")
    assert page.locator("#gc-title").text_content().startswith("conv1.conv2d =")
    shown = page.evaluate(VISIBLE_MAPS)
    assert shown.count("v:v2") == 4 and not any(k.startswith("g:") for k in shown)
    first = page.locator('#gc-stage image[data-k="v:v2"]').first
    assert first.get_attribute("xlink:href").startswith("data:image/png;base64,")
    assert first.bounding_box()["width"] > 10  # laid out on the page, not collapsed
    page.keyboard.press("End")
    shown = page.evaluate(VISIBLE_MAPS)
    assert len(shown) == 34 and sum(k.startswith("g:") for k in shown) == 17
    assert not page.errors and page.requests == []


# ---- the quiz stepper ------------------------------------------------------------------

@pytest.fixture
def open_quiz(browser, tmp_path):
    from dataclasses import replace

    from graphc.viz.quiz import quiz_page
    from graphc.viz.teaching import quiz_blanks

    pages = []

    def go(spec):
        sc = scene_for(spec)
        blank = quiz_blanks(sc, "backward") - {f"g:{sc.program.loss}"}
        page_html, n = quiz_page(sc, replace(make_options(), blank=blank))
        path = tmp_path / "quiz.html"
        path.write_text(page_html, encoding="utf-8")
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        page.route("**/*", lambda route: route.abort()
                   if not route.request.url.startswith("file:") else route.continue_())
        page.goto(path.as_uri())
        pages.append(page)
        return page, n

    yield go
    for p in pages:
        p.close()


def quiz_state(page):
    fb = page.locator("#gc-feedback")
    return (page.locator("#gc-progress").text_content(), page.locator("#gc-prompt").text_content(),
            fb.get_attribute("data-state"), fb.text_content())


def test_quiz_marks_wrong_and_right_answers_with_the_keyboard(open_quiz, examples):
    page, n = open_quiz(examples / "neuron.json")
    assert n == 12
    progress, prompt, state, _ = quiz_state(page)
    assert progress == "question 1 / 12" and prompt == "∂f/∂d" and not state
    assert page.evaluate("document.activeElement.id") == "gc-answer"  # type at once
    assert page.locator("#gc-stage .gc-current").get_attribute("id") == "val_v12"
    page.keyboard.type("0.53")  # the sign is wrong
    page.keyboard.press("Enter")
    _, _, state, text = quiz_state(page)
    assert state == "wrong" and "not 0.53" in text
    page.fill("#gc-answer", "")
    page.keyboard.type("−0.53")  # a typographic minus counts
    page.keyboard.press("Enter")
    _, _, state, text = quiz_state(page)
    assert state == "right" and text == "✓ right: ∂f/∂d = -0.53"
    assert page.locator("#gc-score").text_content() == "1 of 12 right"
    page.keyboard.press("Enter")  # after a right answer, Enter goes on
    progress, prompt, state, _ = quiz_state(page)
    assert progress == "question 2 / 12" and prompt == "∂f/∂e" and not state
    page.keyboard.type("abc")
    page.keyboard.press("Enter")
    assert quiz_state(page)[2] == "wrong" and "type a number" in quiz_state(page)[3]
    page.keyboard.press("PageDown")
    page.keyboard.press("PageDown")
    assert quiz_state(page)[1] == "∂f/∂t012"
    page.keyboard.type("0.2")  # 0.20 to the key's two decimals
    page.keyboard.press("Enter")
    assert quiz_state(page)[2] == "right"
    page.keyboard.press("PageUp")
    assert quiz_state(page)[0] == "question 3 / 12"
    page.click("#gc-next")
    assert quiz_state(page)[2] == "right"  # a right answer stays right
    assert not page.errors


def test_a_training_steps_update_comes_as_the_last_frames(browser, tmp_path, examples):
    from graphc.teach import reference, teaching

    model = reference(graphc.load(examples / "neuron.json"))
    sc = scene_for(model)
    opts, extra = teaching(sc, make_options(), model, step_diff=True, optimizer="sgd:lr=1")
    page_html, n = stepper_page(sc, opts, extra=extra)
    assert n == 25  # 22 frames of the pass, then one per param
    path = tmp_path / "s.html"
    path.write_text(page_html, encoding="utf-8")
    page = browser.new_page()
    page.goto(path.as_uri())
    visible = "() => document.querySelector('#gc-stage').textContent"
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")  # frame 22: the backward pass is done, no update yet
    assert "2.00 → 2.20" not in page.evaluate(visible)
    page.keyboard.press("ArrowRight")
    assert page.locator("#gc-phase").text_content() == "training step"
    assert "w0: 2.00 → 2.20 (Δ +0.20)" in page.locator("#gc-lines").inner_text()
    assert "step: 2.00 → 2.20" in page.evaluate(visible)
    assert page.locator("#gc-stage .gc-current").get_attribute("id") == "n_v2"
    page.close()
