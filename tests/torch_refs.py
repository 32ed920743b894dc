"""PyTorch's definition of every public op but the layers dense and conv (whose params
need torch.nn.Linear and torch.nn.Conv2d):
the independent reference of tests/test_ops_torch.py and tests/test_oracles_cpu.py.

`COVERED` names the ops without importing torch, so that a test that needs no torch can
check that a new op gets a reference."""

from __future__ import annotations

COVERED = frozenset({
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "neg", "exp", "log", "sqrt",
    "square", "abs", "reciprocal", "sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu",
    "silu", "gelu", "mish", "softplus", "swish", "matmul", "transpose", "reshape", "concat",
    "sum", "mean", "max", "softmax", "log_softmax", "mse", "sse", "l1_loss", "huber",
    "cross_entropy", "binary_cross_entropy", "bce_with_logits", "l1_penalty", "l2_penalty",
    "flatten", "dropout", "batch_norm", "conv2d", "max_pool2d", "avg_pool2d"})


def references(torch) -> dict:
    """Op name -> a function of torch tensors (inputs in order, attrs as keywords)."""
    tF = torch.nn.functional

    def _ce(x, t, label_smoothing=0.0, reduction="mean"):
        return tF.cross_entropy(x, t if t.dtype == torch.int64 else t,
                                label_smoothing=label_smoothing, reduction=reduction)

    def _gelu(x, approximate="none"):
        if approximate == "sigmoid":
            return x * torch.sigmoid(1.702 * x)
        return tF.gelu(x, approximate=approximate)

    def _reduce(fn):
        def run(x, axis=None, keepdims=False):
            if axis is None:
                axis = tuple(range(x.ndim))
            return fn(x, dim=axis, keepdim=keepdims)
        return run

    def _max(x, axis=None, keepdims=False):
        axes = tuple(range(x.ndim)) if axis is None else axis
        return torch.amax(x, dim=axes, keepdim=keepdims)


    def _batch_norm(x, gamma=None, beta=None, momentum=0.1, eps=1e-5):
        # evaluation mode, as traces run: the running statistics at their initial values
        c = x.shape[1]
        ones = torch.ones(c, dtype=x.dtype)
        return tF.batch_norm(x, torch.zeros(c, dtype=x.dtype), ones,
                             ones if gamma is None else gamma,
                             torch.zeros(c, dtype=x.dtype) if beta is None else beta,
                             training=False, momentum=momentum, eps=eps)

    def _pool(fn):
        def run(x, kernel_size, stride=None, **kw):
            return fn(x, kernel_size, stride=kernel_size if stride is None else stride, **kw)
        return run

    return {
        "conv2d": lambda x, w, b=None, **kw: tF.conv2d(x, w, b, **kw),
        "max_pool2d": _pool(tF.max_pool2d), "avg_pool2d": _pool(tF.avg_pool2d),
        "flatten": lambda x, start_axis=1: torch.flatten(x, start_axis),
        "dropout": lambda x, p=0.5: tF.dropout(x, p, training=False),
        "batch_norm": _batch_norm,
        "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
        "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum,
        "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt,
        "square": torch.square, "abs": torch.abs, "reciprocal": torch.reciprocal,
        "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
        "leaky_relu": lambda x, alpha=0.01: tF.leaky_relu(x, alpha),
        "prelu": lambda x, a: torch.where(x > 0, x, a * x),
        "elu": lambda x, alpha=1.0: tF.elu(x, alpha), "silu": tF.silu, "gelu": _gelu,
        "mish": tF.mish, "softplus": tF.softplus,
        "swish": lambda x, b=None, beta=1.0: x * torch.sigmoid((beta if b is None else b) * x),
        "matmul": torch.matmul,
        "transpose": lambda x, axes=None: x.permute(
            *(reversed(range(x.ndim)) if axes is None else axes)),
        "reshape": lambda x, shape: x.reshape(shape),
        "concat": lambda *xs, axis=0: torch.cat(xs, dim=axis),
        "sum": _reduce(torch.sum), "mean": _reduce(torch.mean), "max": _max,
        "softmax": lambda x, axis=-1: torch.softmax(x, axis),
        "log_softmax": lambda x, axis=-1: torch.log_softmax(x, axis),
        "mse": lambda a, b, reduction="mean": tF.mse_loss(*torch.broadcast_tensors(a, b),
                                                          reduction=reduction),
        "sse": lambda a, b, reduction="sum": 0.5 * tF.mse_loss(
            *torch.broadcast_tensors(a, b), reduction=reduction),
        "l1_loss": lambda a, b, reduction="mean": tF.l1_loss(a, b, reduction=reduction),
        "huber": lambda a, b, delta=1.0, reduction="mean": tF.huber_loss(
            a, b, delta=delta, reduction=reduction),
        "cross_entropy": _ce,
        "binary_cross_entropy": lambda p, t, reduction="mean": tF.binary_cross_entropy(
            *torch.broadcast_tensors(p, t), reduction=reduction),
        "bce_with_logits": lambda x, t, reduction="mean": tF.binary_cross_entropy_with_logits(
            *torch.broadcast_tensors(x, t), reduction=reduction),
        "l1_penalty": lambda *ws, scale=1.0: scale * sum(w.abs().sum() for w in ws),
        "l2_penalty": lambda *ws, scale=1.0: scale * sum((w * w).sum() for w in ws),
    }

