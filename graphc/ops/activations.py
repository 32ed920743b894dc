"""Activation functions, elementwise; stable for large |x|."""

from graphc.ops.registry import Attr, elementwise

X = ("x",)

_GELU = {
    "none": "0.5 * x * (1.0 + erf(x * 0.7071067811865476))",
    "tanh": "0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))",
    "sigmoid": "x * sigmoid(1.702 * x)",
}
_GELU_DERIV = {
    "none": "0.5 * (1.0 + erf(x * 0.7071067811865476)) "
            "+ x * exp(-0.5 * x * x) * 0.3989422804014327",
    "tanh": "0.5 * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))) "
            "+ 0.5 * x * (1.0 - tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)) ** 2)"
            " * 0.7978845608028654 * (1.0 + 0.134145 * x * x)",
    "sigmoid": "sigmoid(1.702 * x) * (1.0 + 1.702 * x * (1.0 - sigmoid(1.702 * x)))",
}


def _act(name, expr, symbol, formula, gradient, inputs=X, **kw):
    return elementwise(name, inputs, expr, family="activations", symbol=symbol,
                       formula=formula, gradient=gradient, **kw)


_act("sigmoid", "sigmoid(x)", "σ", "y = 1 / (1 + e^-x)", "dx = g * y * (1 - y)",
     grad=lambda g, xs, y, at: [g * (y * (1.0 - y))])
_act("tanh", "tanh(x)", "tanh", "y = tanh x", "dx = g * (1 - y²)",
     grad=lambda g, xs, y, at: [g * (1.0 - y * y)])
_act("relu", "where(x > 0.0, x, 0.0)", "ReLU", "y = max(x, 0)", "dx = g * [x > 0]",
     deriv=("where(x > 0.0, 1.0, 0.0)",), domain=("nonzero",))
_act("leaky_relu", "where(x > 0.0, x, alpha * x)", "LReLU", "y = x if x > 0 else alpha * x",
     "dx = g * (1 if x > 0 else alpha)", deriv=("where(x > 0.0, 1.0, alpha)",),
     attrs={"alpha": Attr("float", 0.01, doc="slope for x < 0")}, domain=("nonzero",))
_act("prelu", "where(x > 0.0, x, alpha * x)", "PReLU",
     "y = x if x > 0 else alpha * x (alpha learnable)",
     "dx = g * (1 if x > 0 else alpha), dalpha = g * (0 if x > 0 else x)",
     inputs=("x", "alpha"), deriv=("where(x > 0.0, 1.0, alpha)", "where(x > 0.0, 0.0, x)"),
     domain=("nonzero", "real"))
_act("elu", "where(x > 0.0, x, alpha * expm1(minimum(x, 0.0)))", "ELU",
     "y = x if x > 0 else alpha * (e^x - 1)", "dx = g * (1 if x > 0 else y + alpha)",
     deriv=("where(x > 0.0, 1.0, y + alpha)",),
     attrs={"alpha": Attr("float", 1.0)}, domain=("nonzero",))
_act("silu", "x * sigmoid(x)", "SiLU", "y = x * σ(x)", "dx = g * σ(x) * (1 + x (1 - σ(x)))",
     deriv=("sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x)))",))
_act("gelu", lambda a: _GELU[a["approximate"]], "GELU",
     "y = x Φ(x); approximate='tanh': 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))); "
     "approximate='sigmoid': x σ(1.702x)", "dx = g * GELU'(x)",
     deriv=(lambda a: _GELU_DERIV[a["approximate"]],),
     attrs={"approximate": Attr("str", "none", choices=("none", "tanh", "sigmoid"))})
_act("mish", "x * tanh(softplus(x))", "Mish", "y = x * tanh(softplus(x))",
     "dx = g * (t + x (1 - t²) σ(x)), t = tanh(softplus(x))",
     deriv=("tanh(softplus(x)) + x * (1.0 - tanh(softplus(x)) ** 2) * sigmoid(x)",))
_act("softplus", "softplus(x)", "softplus", "y = ln(1 + e^x)", "dx = g * σ(x)",
     deriv=("sigmoid(x)",))
