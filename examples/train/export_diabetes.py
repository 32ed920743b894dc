"""Export sklearn's bundled diabetes table (442 patients, no download) to CSV files for
diabetes_mlp.json: one column per standardized measurement and a `progression` column
(standardized too; the script prints the scale to turn errors back into the original units).

    python examples/train/export_diabetes.py          # writes examples/train/data/
    graphc train examples/train/diabetes_mlp.json --data examples/train/data/diabetes_train.csv \
        --val examples/train/data/diabetes_val.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.model_selection import train_test_split

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    d = load_diabetes(scaled=False)
    x_tr, x_va, y_tr, y_va = train_test_split(d.data, d.target, test_size=0.2,
                                              random_state=args.seed)
    mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)  # statistics of the training part only
    y_mean, y_std = y_tr.mean(), y_tr.std()
    args.out.mkdir(parents=True, exist_ok=True)
    for part, x, y in (("train", x_tr, y_tr), ("val", x_va, y_va)):
        table = np.column_stack([(x - mean) / std, (y - y_mean) / y_std])
        path = args.out / f"diabetes_{part}.csv"
        np.savetxt(path, table, delimiter=",", fmt="%.6f", comments="",
                   header=",".join([*d.feature_names, "progression"]))
        print(f"wrote {path}: {len(y)} rows")
    print(f"progression = {y_mean:.2f} + {y_std:.2f} x (standardized value); an RMSE of r "
          f"is {y_std:.1f} r in the original units")


if __name__ == "__main__":
    main()
