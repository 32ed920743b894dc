"""ONNX's Conv, MaxPool, AveragePool and the global pools, read as graphc's conv2d,
max_pool2d, avg_pool2d and mean / max (2-D, NCHW). What graphc cannot express (uneven
padding, ceil_mode, pooling indices, 1-D or 3-D windows) is refused by name."""

from __future__ import annotations

from typing import Any

from graphc.onnx.reader_core import handles, out_float
from graphc.ops import REGISTRY


def _text(v: Any) -> Any:
    return v.decode() if isinstance(v, bytes) else v


def _shape(r, op: str, shapes: list, attrs: dict) -> tuple:
    """graphc's shape rule for op (its message, as an ONNX error, when it refuses)."""
    try:
        return tuple(REGISTRY[op].shape([tuple(s) for s in shapes], REGISTRY[op].bind(attrs)))
    except (ValueError, KeyError) as e:
        raise r.error(str(e.args[0] if e.args else e)) from None


def _padding(r, node, at, x_shape, kernel, stride, dil) -> Any:
    """graphc's padding for ONNX's `pads` / `auto_pad`: [ph, pw], or "same" for a conv
    that pads like PyTorch (stride 1, the odd pixel last)."""
    auto = _text(at.get("auto_pad", "NOTSET"))
    span = [d * (k - 1) + 1 for d, k in zip(dil, kernel)]
    if auto == "VALID":
        return [0, 0]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        sizes = x_shape[2:]
        if not all(isinstance(s, int) for s in sizes):
            raise r.error(f"{node.op_type} with auto_pad {auto} over symbolic sizes")
        totals = [max((-(-n // s) - 1) * s + e - n, 0) for n, s, e in zip(sizes, stride, span)]
        if all(t % 2 == 0 for t in totals):
            return [t // 2 for t in totals]
        if node.op_type == "Conv" and auto == "SAME_UPPER" and list(stride) == [1, 1]:
            return "same"
        raise r.error(f"{node.op_type} with auto_pad {auto} pads unevenly here",
                      hint="graphc pads both sides alike (or as PyTorch's 'same')")
    pads = [int(p) for p in at.get("pads", [0, 0, 0, 0])]
    top, left, bottom, right = pads
    if top == bottom and left == right:
        return [top, left]
    totals = [e - 1 for e in span]
    if node.op_type == "Conv" and list(stride) == [1, 1] and [top + bottom, left + right] \
            == totals and [top, left] == [t // 2 for t in totals]:
        return "same"
    raise r.error(f"{node.op_type} with uneven pads {pads}",
                  hint="graphc pads both sides alike (or as PyTorch's 'same')")


def _common(r, node, at, x, kernel):
    if len(x.shape) != 4:
        raise r.error(f"{node.op_type} over {len(x.shape) - 2} spatial axes",
                      hint="graphc's convolutions and pools are 2-D, NCHW")
    if int(at.get("ceil_mode", 0)):
        raise r.error(f"{node.op_type} with ceil_mode", hint="graphc rounds output sizes down")
    stride = [int(s) for s in at.get("strides", [1, 1])]
    dil = [int(d) for d in at.get("dilations", [1, 1])]
    return stride, dil, _padding(r, node, at, x.shape, kernel, stride, dil)


@handles("Conv")
def conv(r, node, args, at):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    kernel = [int(k) for k in at.get("kernel_shape", list(w.shape[2:]))]
    stride, dil, padding = _common(r, node, at, x, kernel)
    attrs = {"stride": stride, "padding": padding, "dilation": dil,
             "groups": int(at.get("group", 1))}
    ins = [x, w] + ([b] if b is not None else [])
    shape = _shape(r, "conv2d", [v.shape for v in ins], attrs)
    name = r.emit("conv2d", [r.tensor(v) for v in ins], out=node.output[0], **attrs)
    return out_float(r, shape, name)


@handles("MaxPool", "AveragePool")
def pool(r, node, args, at):
    x = args[0]
    if len(node.output) > 1 and node.output[1]:
        raise r.error("MaxPool's Indices output", hint="graphc's max_pool2d gives the values")
    kernel = [int(k) for k in at["kernel_shape"]]
    stride, dil, padding = _common(r, node, at, x, kernel)
    attrs = {"kernel_size": kernel, "stride": stride, "padding": padding}
    if node.op_type == "MaxPool":
        op, attrs["dilation"] = "max_pool2d", dil
    else:
        if dil != [1, 1]:
            raise r.error("AveragePool with dilations")
        op = "avg_pool2d"
        attrs["count_include_pad"] = bool(int(at.get("count_include_pad", 0)))
    shape = _shape(r, op, [x.shape], attrs)
    return out_float(r, shape, r.emit(op, [r.tensor(x)], out=node.output[0], **attrs))


@handles("GlobalAveragePool", "GlobalMaxPool")
def global_pool(r, node, args, at):
    x = args[0]
    op = "mean" if node.op_type == "GlobalAveragePool" else "max"
    axes = list(range(2, len(x.shape)))
    shape = (*x.shape[:2], *[1] * len(axes))
    name = r.emit(op, [r.tensor(x)], out=node.output[0], axis=axes, keepdims=True)
    return out_float(r, shape, name)


@handles("ConvTranspose", "LRN")
def no_op_yet(r, node, args, at):
    raise r.error(f"graphc has no {node.op_type} op yet",
                  hint="graphc reads Conv, MaxPool and AveragePool (docs/onnx.md)")
