"""``python3 -m hdc.datasets NAME ...``: one markdown row per dataset (kind, shape, classes, split sizes, raw range,
load time); the sklearn sets when no name is given."""

from __future__ import annotations

import sys
import time

from hdc.datasets import SKLEARN_NAMES, load


def summary(names: list[str]) -> None:
    """Print one markdown row per dataset: kind, shape, classes, train/test sizes, raw range, load time."""
    print("| name | kind | shape | classes | train | test | raw x range | load s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        t0 = time.perf_counter()
        ds = load(name, download=False)
        seconds = time.perf_counter() - t0
        lo, hi = float(ds.x_train.min()), float(ds.x_train.max())
        print(
            f"| {ds.name} | {ds.kind} | {ds.shape} | {ds.n_classes} | {len(ds.y_train)} | {len(ds.y_test)} "
            f"| {lo:.3g} .. {hi:.3g} | {seconds:.2f} |"
        )


if __name__ == "__main__":
    summary(sys.argv[1:] or list(SKLEARN_NAMES))
