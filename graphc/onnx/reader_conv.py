"""ONNX's Conv, MaxPool, AveragePool and the global pools, read as graphc's conv2d,
max_pool2d, avg_pool2d and mean / max (NCHW; a 1-D window as a 2-D one of height 1). What
graphc cannot express (uneven padding, ceil_mode, pooling indices, 3-D windows) is refused
by name."""

from __future__ import annotations

from typing import Any

from graphc.onnx.reader_core import Value, handles, out_float
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
                      hint="graphc's convolutions and pools are 2-D, NCHW (1-D ones are read "
                      "as 2-D)")
    if int(at.get("ceil_mode", 0)):
        raise r.error(f"{node.op_type} with ceil_mode", hint="graphc rounds output sizes down")
    stride = [int(s) for s in at.get("strides", [1, 1])]
    dil = [int(d) for d in at.get("dilations", [1, 1])]
    return stride, dil, _padding(r, node, at, x.shape, kernel, stride, dil)


def _view(r, v, shape: tuple, out: str | None = None):
    """v reshaped (a view in compiled code); at most one dim may be symbolic."""
    target = [d if isinstance(d, int) else -1 for d in shape]
    if target.count(-1) > 1:
        raise r.error(f"a 1-D window over a value of shape {list(shape)} with two symbolic "
                      "dims", hint="give the length a fixed size (graphc reads 1-D windows as "
                      "2-D, through a reshape that can leave one dim symbolic)")
    return out_float(r, shape, r.emit("reshape", [r.tensor(v)], out=out, shape=target))


def _one_d(fn):
    """A 1-D window over [N, C, L] read as the 2-D one over [N, C, 1, L], then reshaped
    back: graphc's convolutions and pools are 2-D."""
    def handler(r, node, args, at):
        x = args[0]
        if len(x.shape) != 3:
            return fn(r, node, args, at, node.output[0])
        at = dict(at)
        for key in ("kernel_shape", "strides", "dilations"):
            if key in at:
                at[key] = [1, *at[key]]
        if "pads" in at:
            begin, end = at["pads"]
            at["pads"] = [0, begin, 0, end]
        args = [_view(r, x, (x.shape[0], x.shape[1], 1, x.shape[2])), *args[1:]]
        if node.op_type == "Conv":  # the weight [O, I, k] as [O, I, 1, k]
            w = args[1]
            o, i, k = w.shape
            args[1] = Value((o, i, 1, k), w.dtype, name=r.param(w, w.const.reshape(o, i, 1, k))) \
                if r.single_use(w) else _view(r, w, (o, i, 1, k))
        y = fn(r, node, args, at, f"{node.output[0]}/2d")
        return _view(r, y, (y.shape[0], y.shape[1], y.shape[3]), out=node.output[0])
    return handler


@handles("Conv")
@_one_d
def conv(r, node, args, at, out):
    x, w = args[0], args[1]
    b = args[2] if len(args) > 2 else None
    kernel = [int(k) for k in at.get("kernel_shape", list(w.shape[2:]))]
    stride, dil, padding = _common(r, node, at, x, kernel)
    attrs = {"stride": stride, "padding": padding, "dilation": dil,
             "groups": int(at.get("group", 1))}
    ins = [x, w] + ([b] if b is not None else [])
    shape = _shape(r, "conv2d", [v.shape for v in ins], attrs)
    name = r.emit("conv2d", [r.tensor(v) for v in ins], out=out, **attrs)
    return out_float(r, shape, name)


@handles("MaxPool", "AveragePool")
@_one_d
def pool(r, node, args, at, out):
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
    return out_float(r, shape, r.emit(op, [r.tensor(x)], out=out, **attrs))


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
