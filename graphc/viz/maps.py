"""Feature maps drawn (`graphc viz --maps`): a 4-D value as a strip of small heatmaps,
one per channel of the batch's first image, or a conv layer's filters [F, C, KH, KW] as
one heatmap per filter (its first input channel), all of a strip on one colour scale.

Heatmaps are PNGs written with NumPy and zlib (no imaging dependency). Graphviz's <IMG>
needs files, so they go to a per-process temporary directory; `inline` turns those paths
into data URIs in the SVG, so that a diagram or a stepper page stands alone.
"""

from __future__ import annotations

import atexit
import base64
import hashlib
import html
import re
import shutil
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CAP = 8  # heatmaps per strip; the rest are counted ("+8 more")
SIZE = 36  # pixels of a heatmap's longer side, about (small maps are scaled up)
MAX_SIDE = 48  # larger maps are subsampled down to this
CONV_OPS = ("conv2d", "max_pool2d", "avg_pool2d")
# diverging (signed data, centred at 0): blue - white - red; sequential: viridis' ends
NEGATIVE, ZERO, POSITIVE = (33, 102, 172), (247, 247, 247), (178, 24, 43)
LOW, MID, HIGH = (68, 1, 84), (33, 145, 140), (253, 231, 37)


@dataclass(frozen=True)
class Strip:
    """The heatmaps of one value, with the colour scale they share."""

    images: tuple[bytes, ...]  # PNG files, one per channel (filter) shown
    vmin: float
    vmax: float
    diverging: bool
    channels: int  # all of them, shown or not
    width: int  # pixels of each image
    height: int

    @property
    def more(self) -> int:
        return self.channels - len(self.images)


def planes(a: np.ndarray, weight: bool = False) -> np.ndarray:
    """[C, H, W]: the first image's channels, or each filter's first input channel."""
    a = np.asarray(a, dtype=np.float64)
    return a[:, 0] if weight else a[0]


def scale(x: np.ndarray) -> tuple[float, float, bool]:
    """(vmin, vmax, diverging): symmetric about 0 when the data has both signs."""
    lo, hi = (float(x.min()), float(x.max())) if x.size else (0.0, 0.0)
    if lo < 0 < hi:
        m = max(-lo, hi)
        return -m, m, True
    return lo, hi, False


def colors(x: np.ndarray, vmin: float, vmax: float, diverging: bool) -> np.ndarray:
    """uint8 RGB [H, W, 3] of `x` on the scale vmin..vmax."""
    t = (x - vmin) / (vmax - vmin) if vmax > vmin else np.full(x.shape, 0.5)
    stops = np.array([NEGATIVE, ZERO, POSITIVE] if diverging else [LOW, MID, HIGH], float)
    t = np.clip(np.nan_to_num(t, nan=0.5), 0, 1) * 2
    k = np.minimum(t.astype(int), 1)
    f = (t - k)[..., None]
    return np.round(stops[k] * (1 - f) + stops[k + 1] * f).astype(np.uint8)


def png(rgb: np.ndarray) -> bytes:
    """A PNG file of uint8 RGB [H, W, 3]."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[i].tobytes() for i in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def resize(rgb: np.ndarray) -> np.ndarray:
    """Nearest-neighbour: small maps scaled up to about SIZE, large ones subsampled."""
    side = max(rgb.shape[:2])
    if side > MAX_SIDE:
        step = -(-side // MAX_SIDE)
        return rgb[::step, ::step]
    k = max(1, SIZE // side)
    return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def make_strip(a: np.ndarray, weight: bool = False, cap: int = CAP) -> Strip:
    """The strip of a 4-D value (`weight`: a conv layer's filters)."""
    p = planes(a, weight)
    shown = p[:cap]
    vmin, vmax, diverging = scale(shown)
    images = [resize(colors(x, vmin, vmax, diverging)) for x in shown]
    h, w = images[0].shape[:2] if images else (0, 0)
    return Strip(tuple(png(im) for im in images), vmin, vmax, diverging, len(p), w, h)


_cache: dict[int, tuple[np.ndarray, bool, Strip]] = {}  # id(array): frames redraw often


def strip_of(a: np.ndarray, weight: bool = False) -> Strip:
    hit = _cache.get(id(a))
    if hit is None or hit[0] is not a or hit[1] != weight:
        if len(_cache) > 512:  # it holds its arrays: bounded
            _cache.clear()
        hit = _cache[id(a)] = (a, weight, make_strip(a, weight))
    return hit[2]


_dir: Path | None = None
_keys: dict[str, str] = {}  # file-name token -> what the image shows ("v:ID", "g:KEY")


def image_path(data: bytes, key: str = "") -> str:
    """The file of a PNG in this process's directory of heatmaps; `key` (a stepper's
    Mask key) travels in the name and comes back as the image's data-k in `inline`."""
    global _dir
    if _dir is None:
        _dir = Path(tempfile.mkdtemp(prefix="graphc-maps-"))
        atexit.register(shutil.rmtree, _dir, True)
    token = hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
    _keys[token] = key
    path = _dir / f"{hashlib.sha1(data).hexdigest()[:16]}_{token}.png"
    if not path.exists():
        path.write_bytes(data)
    return str(path)


def inline(svg: str) -> str:
    """The SVG with this process's heatmap files as data URIs (a file that stands alone),
    each image tagged data-k with what it shows, so that a stepper can reveal it."""
    if _dir is None or str(_dir) not in svg:
        return svg

    def uri(m: re.Match) -> str:
        data = base64.b64encode(Path(m.group(1)).read_bytes()).decode()
        key = html.escape(_keys.get(m.group(2), ""), quote=True)
        return (f'data-k="{key}" ' if key else "") + f'xlink:href="data:image/png;base64,{data}"'

    return re.sub(r'xlink:href="(' + re.escape(str(_dir)) + r'/[0-9a-f]+_([0-9a-f]+)\.png)"',
                  uri, svg)


def shape_tooltip(op: str, attrs: dict, x_shape: tuple, w_shape: tuple | None) -> str:
    """The lectures' output-size arithmetic of a conv or pool node, with its numbers."""
    from graphc.ops.conv import conv_attrs, pair

    if op == "conv2d":
        kernel = tuple(w_shape[2:]) if w_shape else (1, 1)
        stride, dil, pads = conv_attrs({"stride": 1, "padding": 0, "dilation": 1, **attrs},
                                       kernel)
    else:
        kernel = pair(attrs["kernel_size"], "kernel_size")
        stride = kernel if attrs.get("stride") is None else pair(attrs["stride"], "stride")
        dil, p = pair(attrs.get("dilation", 1), "dilation"), pair(attrs.get("padding", 0), "p")
        pads = (p[0], p[0], p[1], p[1])
    lines = [f"{op}: out = (H + 2p - d(k-1) - 1)/s + 1, rounded down"]
    for axis, size, k, s, d, pad in zip("HW", x_shape[2:], kernel, stride, dil,
                                        (pads[0] + pads[1], pads[2] + pads[3])):
        if isinstance(size, int):
            out = (size + pad - d * (k - 1) - 1) // s + 1
            lines.append(f"{axis}: ({size} + {pad} - {d}·{k - 1} - 1)/{s} + 1 = {out}")
    return "\n".join(lines)


__all__ = ["CAP", "CONV_OPS", "Strip", "image_path", "inline", "make_strip", "shape_tooltip",
           "strip_of"]
