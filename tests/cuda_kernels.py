"""Every CUDA kernel template, instantiated small, with the signature it is launched with:
the simulator tests run them, the PTX tests compile them for sm_90."""

from graphc.backends.cuda import templates as T

A1, A2 = "float32[::1]", "float32[:, ::1]"
BLOCK, TILE = 32, 4  # small: the simulator runs every thread in Python


def catalogue(block: int = BLOCK, tile: int = TILE) -> list[tuple[str, str, str]]:
    """(name, source, signature) of each kernel."""
    dims = ["x.shape[0]", "x.shape[1]"]
    out = [
        ("bias_relu", T.elementwise("bias_relu", ["x", "b", "y"], dims, [
            "t1 = x[i0, i1] + b[i1]", "y[i0, i1] = (t1 if t1 > F(0.0) else F(0.0))"]),
         f"void({A2}, {A1}, {A2})"),
        ("tanh_sigmoid", T.elementwise("tanh_sigmoid", ["x", "y"], dims, [
            "t1 = tanh(x[i0, i1]) * F(0.5) + sigmoid(x[i0, i1]) - softplus(x[i0, i1])",
            "y[i0, i1] = maximum(t1, minimum(exp(x[i0, i1]), F(2.0)))"]),
         f"void({A2}, {A2})"),
        ("mean0", T.reduce("mean0", ["x", "out"], dims, [0], [], "x[i0, i1]", "0.0",
                           "acc + x", "acc / n", "out", block=block), f"void({A2}, {A1})"),
        ("max1", T.reduce("max1", ["x", "out"], dims, [1], [], "x[i0, i1]", "-inf",
                          "maximum(acc, x)", "acc", "out", block=block), f"void({A2}, {A1})"),
        ("sumsq", T.sum_atomic("sumsq", ["x", "out"], dims, ["v = x[i0, i1]"], "v * v", "out",
                               scale="F(0.5)", block=block), f"void({A2}, {A1})"),
        ("softmax", T.softmax_rows("softmax", "exp(x - m) / s", block=block),
         f"void({A2}, {A2})"),
        ("log_softmax", T.softmax_rows("log_softmax", "x - m - log(s)", block=block),
         f"void({A2}, {A2})"),
        ("cross_entropy", T.cross_entropy_rows("cross_entropy", block=block),
         f"void({A2}, int64[::1], {A1}, {A2})"),
        ("grad_sq_sum", T.grad_sq_sum(block=block), f"void({A1}, {A1})"),
    ]
    for ta in (False, True):
        for tb in (False, True):
            name = f"gemm_{'t' if ta else 'n'}{'t' if tb else 'n'}"
            out.append((name, T.gemm(name, ta, tb, tile), f"void({A2}, {A2}, {A2})"))
    out.append(("gemm_acc", T.gemm("gemm_acc", False, True, tile, accumulate=True),
                f"void({A2}, {A2}, {A2})"))
    for name, opt in optimizers().items():
        out.append((f"update_{name}", T.update(f"update_{name}", opt.update_lines(),
                                               tuple(opt.slots), list(opt.hyper),
                                               type(opt).__name__),
                    f"void({A1}, {A1}, {A2}, {A1}, {A1})"))
    return out


def optimizers() -> dict:
    from graphc import optim

    return {"sgd": optim.SGD(lr=0.1),
            "momentum": optim.SGD(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01),
            "nesterov": optim.SGD(lr=0.1, momentum=0.9, nesterov=True),
            "adam": optim.Adam(lr=0.01),
            "adamw": optim.AdamW(lr=0.01, weight_decay=0.1),
            "rmsprop": optim.RMSprop(lr=0.01, momentum=0.5),
            "adagrad": optim.Adagrad(lr=0.1)}


def source(block: int = BLOCK, tile: int = TILE) -> str:
    return T.module([src for _, src, _ in catalogue(block, tile)],
                    doc="graphc's CUDA kernel templates, for tests")
