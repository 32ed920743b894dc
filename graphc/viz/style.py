"""How diagrams look: colour themes and the formatting of numbers, tensors and names.

Everything user-supplied (spec names, docs) goes through `esc` before it reaches a DOT
HTML-like label, so a name can hold any characters and still renders as text.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Theme:
    """Colours of one theme. `value` and `grad` are the lecture's green and red."""

    name: str
    value: str  # forward values, written above an edge
    grad: str  # gradients, written below an edge
    input: str  # fill of input boxes
    param: str  # fill of param boxes
    output: str  # fill of output boxes
    loss: str  # fill of the loss box
    op: str  # fill of op nodes
    group: str  # fill of a collapsed layer / background of an expanded one
    line: str  # edges and outlines
    muted: str  # names, shapes, notes
    highlight: str  # the current node in a step-through frame
    backward: str  # outline of backward nodes in the derived backward graph
    font: str = "Helvetica,Arial,sans-serif"


THEMES: dict[str, Theme] = {
    # the lectures' convention: values in green, gradients in red
    "default": Theme("default", value="#1a7f37", grad="#cf222e", input="#dbeafe",
                     param="#fef3c7", output="#dcfce7", loss="#fee2e2", op="#ffffff",
                     group="#f3f4f6", line="#374151", muted="#6b7280", highlight="#f59e0b",
                     backward="#cf222e"),
    # Okabe-Ito colours: blue values and vermilion gradients stay distinct for the
    # common forms of colour blindness, and in greyscale (dark vs. medium)
    "colorblind": Theme("colorblind", value="#0072b2", grad="#d55e00", input="#cfe8f7",
                        param="#fbe8b4", output="#d6efe6", loss="#f9dccb", op="#ffffff",
                        group="#f0f0f0", line="#222222", muted="#666666",
                        highlight="#cc79a7", backward="#d55e00"),
    # black on white for printing; gradients in italics are told apart by position
    "print": Theme("print", value="#000000", grad="#444444", input="#ffffff",
                   param="#eeeeee", output="#ffffff", loss="#dddddd", op="#ffffff",
                   group="#f7f7f7", line="#000000", muted="#555555", highlight="#000000",
                   backward="#000000"),
}


ROLES = ("up", "down", "ok", "bad", "note")  # teaching views' notes: what each colour says


def role_color(t: Theme, role: str) -> str:
    """A note's colour: a param growing (up) or shrinking (down), a check passed or failed."""
    if role == "up":
        return t.value
    if role in ("down", "bad"):
        return t.grad
    if role == "ok":
        return t.value
    return t.muted


def get_theme(name: str | Theme) -> Theme:
    """The theme called `name` (ValueError listing the choices otherwise)."""
    if isinstance(name, Theme):
        return name
    try:
        return THEMES[name]
    except KeyError:
        raise ValueError(f"unknown theme {name!r}; choose one of: {', '.join(THEMES)}") from None


def esc(text: object) -> str:
    """Text for a Graphviz HTML-like label: escaped, control characters made visible."""
    s = str(text)
    if any(ord(c) < 32 or ord(c) == 127 for c in s):
        s = "".join(c if 32 <= ord(c) != 127 else repr(c)[1:-1] for c in s)
    # Graphviz expands escapes such as \N (the node's name) even inside HTML labels,
    # and even when written as &#92;N; a doubled backslash is one literal backslash
    return html.escape(s.replace("\\", "\\\\"), quote=True)


# ---- numbers ------------------------------------------------------------------------

def fmt(x: float, digits: int = 2) -> str:
    """A number for a diagram: `digits` decimals in the readable range (0.73, -0.20, 6.00),
    scientific notation for tiny or huge magnitudes, and never "-0.00"."""
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a == 0:
        return f"{0:.{digits}f}"
    if a < 0.5 * 10 ** -digits or a >= 1e5:
        return f"{x:.{max(digits - 1, 1)}e}".replace("e-0", "e-").replace("e+0", "e")
    out = f"{x:.{digits}f}"
    if set(out.lstrip("-")) <= {"0", "."}:  # rounds to zero: keep the sign off
        out = out.lstrip("-")
    return out


def fmt_int(x: int) -> str:
    return f"{x:,}"


SMALL = 6  # tensors with at most this many elements are shown in full


def is_small(a: np.ndarray) -> bool:
    return np.asarray(a).size <= SMALL


def fmt_array(a: np.ndarray, digits: int = 2) -> str:
    """Small tensors in full ([0.12, -0.50]); larger ones as min / mean / max."""
    a = np.asarray(a)
    if a.ndim == 0:
        return fmt(a, digits) if a.dtype.kind == "f" else str(a.item())
    if a.size <= SMALL:
        return _nested(a, digits)
    if a.dtype.kind in "iub":
        return f"min {a.min()} · max {a.max()}"
    return f"min {fmt(a.min(), digits)} · mean {fmt(a.mean(), digits)} · max {fmt(a.max(), digits)}"


def _nested(a: np.ndarray, digits: int) -> str:
    if a.ndim == 0:
        return fmt(a, digits) if a.dtype.kind == "f" else str(a.item())
    return "[" + ", ".join(_nested(x, digits) for x in a) + "]"


def fmt_grad(g: np.ndarray, digits: int = 2) -> str:
    """A gradient: in full when small, otherwise its norm ‖g‖."""
    g = np.asarray(g)
    if g.size <= SMALL:
        return fmt_array(g, digits)
    return f"‖g‖ {fmt(float(np.linalg.norm(g.astype(np.float64).ravel())), digits)}"


def fmt_shape(shape: tuple) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def fmt_bytes(n: int) -> str:
    """Bytes for people: 512 B, 3.1 KiB, 1.0 MiB."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
