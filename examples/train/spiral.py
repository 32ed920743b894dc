"""Two interleaved spirals, or two circles, in the spirit of the TensorFlow Playground:
generate the points, train spiral.json, report accuracy, and draw the decision regions.

    python examples/train/spiral.py [--shape circles] [--plot spiral.png] [--backend cpu]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import graphc
from graphc.errors import CompileError

HERE = Path(__file__).parent


def spirals(n: int = 400, noise: float = 0.15, seed: int = 0,
            radius: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """n points on two spirals, 1.75 turns each, out to `radius`, with Gaussian noise;
    labels 0 and 1. (Coordinates of a few units suit tanh units: squeezed into [-1, 1],
    the 2-16-16-2 net underfits.)"""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.sqrt(rng.uniform(0.02, 1.0, n)) * 3.5 * np.pi
    x = np.column_stack([t * np.cos(t + np.pi * y), t * np.sin(t + np.pi * y)])
    x = x * radius / (3.5 * np.pi) + noise * rng.normal(size=x.shape)
    return x.astype(np.float32), y.astype(np.int64)


def circles(n: int = 400, noise: float = 0.3, seed: int = 0,
            radius: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """An inner disc (label 1) inside a ring (label 0)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    r = radius * np.where(y == 1, rng.uniform(0, 0.45, n), rng.uniform(0.65, 1.0, n))
    a = rng.uniform(0, 2 * np.pi, n)
    x = np.column_stack([r * np.cos(a), r * np.sin(a)]) + noise * rng.normal(size=(n, 2))
    return x.astype(np.float32), y.astype(np.int64)


def compile_model(backend: str) -> graphc.runtime.Model:
    try:
        return graphc.compile(HERE / "spiral.json", backend=backend)
    except CompileError:
        return graphc.compile(HERE / "spiral.json", backend="numpy")


def plot_regions(model, x: np.ndarray, y: np.ndarray, path: Path, title: str) -> None:
    from matplotlib.figure import Figure

    lim = 1.15 * float(np.abs(x).max())
    g = np.linspace(-lim, lim, 200, dtype=np.float32)
    gx, gy = np.meshgrid(g, g)
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    # forward also needs the labels today (the loss is in the forward program)
    p = model.forward(x=grid, y=np.zeros(len(grid), np.int64))["probs"][:, 1].reshape(gx.shape)
    fig = Figure(figsize=(5, 5), layout="constrained")
    ax = fig.add_subplot()
    ax.contourf(gx, gy, p, levels=20, cmap="RdBu_r", alpha=0.6)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=14)
    ax.set(title=title, aspect="equal", xticks=[], yticks=[])
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["spiral", "circles"], default="spiral")
    parser.add_argument("--plot", type=Path, help="PNG of the decision regions")
    parser.add_argument("--backend", default="cpu", choices=["cpu", "numpy"])
    args = parser.parse_args()
    make = spirals if args.shape == "spiral" else circles
    x, y = make(seed=0)
    xv, yv = make(n=200, seed=1)
    model = compile_model(args.backend)
    history = model.fit({"x": x, "y": y}, validation={"x": xv, "y": yv}, verbose=True)
    acc = history["val_accuracy"][-1]
    print(f"{args.shape}: validation accuracy {100 * acc:.1f}% after {len(history)} epochs "
          f"({model.backend_name} backend)")
    if args.plot:
        plot_regions(model, xv, yv, args.plot, f"{args.shape}: {100 * acc:.1f}% accuracy")
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
