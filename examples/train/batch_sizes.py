"""SGD (batch 1) against mini-batches and full-batch gradient descent, as the lectures
compare them: the digits MLP trained with the same plain SGD rate and different batch
sizes, in one plot (loss per epoch, and loss per second of training).

    python examples/train/batch_sizes.py [-o batch_sizes.png] [--epochs 20] [--backend cpu]

Small batches make many noisy updates per epoch and get further per epoch; the full batch
makes one exact update per epoch. Per second, the cost of a step decides.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import graphc
from graphc.errors import CompileError
from graphc.plots import plot_compare

HERE = Path(__file__).parent


def load(part: str) -> dict[str, np.ndarray]:
    with np.load(HERE / "data" / f"digits_{part}.npz") as f:
        return {"x": f["x"], "y": f["y"]}


def run(batch_size: int, epochs: int, lr: float, backend: str):
    try:
        model = graphc.compile(HERE / "digits_mlp.json", backend=backend)
    except CompileError:
        model = graphc.compile(HERE / "digits_mlp.json", backend="numpy")
    return model.fit(load("train"), epochs=epochs, batch_size=batch_size, validation=load("val"),
                     optimizer={"name": "sgd", "lr": lr}, schedule=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("batch_sizes.png"))
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--backend", default="cpu", choices=["cpu", "numpy"])
    args = parser.parse_args()
    n = len(load("train")["y"])
    runs = {}
    for label, b in (("SGD (batch 1)", 1), ("batch 8", 8), ("batch 32", 32), ("batch 128", 128),
                     (f"full batch GD ({n})", n)):
        h = run(b, args.epochs, args.lr, args.backend)
        runs[label] = h
        print(f"{label:<22} {-(-n // b):>5} steps/epoch  final loss {h['loss'][-1]:.4f}  "
              f"val accuracy {100 * h['val_accuracy'][-1]:.1f}%  "
              f"{sum(h['time']):.1f} s of training")
    plot_compare(runs, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
