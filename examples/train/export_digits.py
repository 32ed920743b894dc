"""Export sklearn's bundled 8x8 digits (1,797 images, no download) to train/val/test .npz
files whose arrays are named after digits_mlp.json's inputs: x (pixels / 16, float32)
and y (labels, int64). The split is stratified and seeded, so it is the same everywhere.

    python examples/train/export_digits.py            # writes examples/train/data/
    graphc train examples/train/digits_mlp.json --data examples/train/data/digits_train.npz \
        --val examples/train/data/digits_val.npz --test examples/train/data/digits_test.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def split_digits(seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """70% train, 10% validation, 20% test, stratified by label."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x, y = (d.data / 16.0).astype(np.float32), d.target.astype(np.int64)
    x_tv, x_te, y_tv, y_te = train_test_split(x, y, test_size=0.2, random_state=seed,
                                              stratify=y)
    x_tr, x_va, y_tr, y_va = train_test_split(x_tv, y_tv, test_size=0.125, random_state=seed,
                                              stratify=y_tv)
    return {"train": (x_tr, y_tr), "val": (x_va, y_va), "test": (x_te, y_te)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for part, (x, y) in split_digits(args.seed).items():
        path = args.out / f"digits_{part}.npz"
        np.savez_compressed(path, x=x, y=y)
        print(f"wrote {path}: {len(y)} images")


if __name__ == "__main__":
    main()
