"""The lectures' L1-versus-L2 example: one regression sample x = [3, 2, 1], y = 10.

Every w with 3 w1 + 2 w2 + w3 = 10 fits it exactly; the penalty chooses among them.
L2 (C sum w^2) spreads the weights: it lands near 10 x / |x|^2 = (2.14, 1.43, 0.71).
L1 (C sum |w|) selects a feature: it lands near the sparse (10/3, 0, 0).

    python examples/train/l1_vs_l2.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import graphc

HERE = Path(__file__).parent
EXPECTED = {"l2": (2.14, 1.43, 0.71), "l1": (3.33, 0.0, 0.0)}


def train(penalty: str, backend: str = "numpy") -> np.ndarray:
    """Train the linear model with the given penalty ("l1" or "l2"); returns w."""
    model = graphc.compile(HERE / f"{penalty}_regression.json", backend=backend,
                           dtype="float64")
    model.fit({})  # the spec's inputs carry the sample; its train object gives the rest
    return model.params["w"]


def main() -> None:
    print(f"{'penalty':<8} {'w1':>7} {'w2':>7} {'w3':>7}   {'lectures':>20}")
    for penalty in ("l2", "l1"):
        w = train(penalty)
        print(f"{penalty:<8} {w[0]:>7.3f} {w[1]:>7.3f} {w[2]:>7.3f}   "
              f"{str(EXPECTED[penalty]):>20}")


if __name__ == "__main__":
    main()
