"""Elementwise arithmetic with NumPy broadcasting."""

from graphc.ops.registry import elementwise

AB = ("a", "b")
X = ("x",)


def _ew(name, inputs, expr, symbol, formula, gradient, **kw):
    return elementwise(name, inputs, expr, family="elementwise", symbol=symbol,
                       formula=formula, gradient=gradient, **kw)


_ew("add", AB, "a + b", "+", "y = a + b", "da = g, db = g",
    grad=lambda g, xs, y, at: [g, g])
_ew("sub", AB, "a - b", "−", "y = a - b", "da = g, db = -g",
    grad=lambda g, xs, y, at: [g, -g])
_ew("mul", AB, "a * b", "×", "y = a * b", "da = g * b, db = g * a",
    grad=lambda g, xs, y, at: [g * xs[1], g * xs[0]])
_ew("div", AB, "a / b", "÷", "y = a / b", "da = g / b, db = -g * y / b",
    grad=lambda g, xs, y, at: [g / xs[1], -(g * y / xs[1])], domain=("real", "nonzero"))
_ew("pow", AB, "a ** b", "^", "y = a ** b", "da = g * b * a^(b-1), db = g * y * log(a)",
    deriv=("b * a ** (b - 1.0)", "y * log(a)"), domain=("positive", "real"))
_ew("maximum", AB, "maximum(a, b)", "max", "y = max(a, b)",
    "da = g * [a >= b], db = g * [a < b]",
    deriv=("where(a >= b, 1.0, 0.0)", "where(a >= b, 0.0, 1.0)"), domain=("distinct", "distinct"))
_ew("minimum", AB, "minimum(a, b)", "min", "y = min(a, b)",
    "da = g * [a <= b], db = g * [a > b]",
    deriv=("where(a <= b, 1.0, 0.0)", "where(a <= b, 0.0, 1.0)"), domain=("distinct", "distinct"))
_ew("neg", X, "-x", "−x", "y = -x", "dx = -g", grad=lambda g, xs, y, at: [-g])
_ew("exp", X, "exp(x)", "exp", "y = e^x", "dx = g * y", grad=lambda g, xs, y, at: [g * y])
_ew("log", X, "log(x)", "log", "y = ln x", "dx = g / x",
    grad=lambda g, xs, y, at: [g / xs[0]], domain=("positive",))
_ew("sqrt", X, "sqrt(x)", "√", "y = √x", "dx = g * 0.5 / y",
    grad=lambda g, xs, y, at: [g * 0.5 / y], domain=("positive",))
_ew("square", X, "x * x", "x²", "y = x²", "dx = g * 2x",
    grad=lambda g, xs, y, at: [g * (2.0 * xs[0])])
_ew("abs", X, "abs(x)", "|x|", "y = |x|", "dx = g * sign(x)",
    deriv=("where(x > 0.0, 1.0, where(x < 0.0, -1.0, 0.0))",), domain=("nonzero",))
_ew("reciprocal", X, "1.0 / x", "1/x", "y = 1 / x", "dx = -g * y²",
    grad=lambda g, xs, y, at: [-(g * (y * y))], domain=("nonzero",))
