"""The ``hdc`` command line.

    hdc classify --dataset digits --model onlinehd --dim 10000

fits a Hamming classifier (:mod:`hdc.classifiers`) on a dataset's fixed train split
(:func:`hdc.datasets.load`) and prints its test accuracy and the fit and predict times.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main"]

# hdc.classifiers.MODELS and ENCODERS, spelled out so that --help does not import scikit-learn.
MODEL_NAMES = ("centroid", "adapthd", "onlinehd")
ENCODER_NAMES = ("kernel", "projection", "level")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hdc", description="Hyperdimensional computing on packed binary codes.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "classify",
        help="fit a Hamming classifier on a dataset and report accuracy and timings",
        description="Fit a Hamming-distance classifier on a dataset's train split and evaluate it on the test split.",
    )
    p.add_argument(
        "--dataset", required=True, help="digits, iris, wine, breast_cancer, mnist, fashion-mnist or ucr:NAME"
    )
    p.add_argument("--model", default="onlinehd", choices=MODEL_NAMES)
    p.add_argument("--dim", type=int, default=10000, help="hypervector dimension D (default 10000)")
    p.add_argument("--encoder", default="kernel", choices=ENCODER_NAMES)
    p.add_argument(
        "--scaling",
        default=None,
        choices=("feature", "global", "none"),
        help="input scaling; default 'global' for images, 'feature' otherwise",
    )
    p.add_argument("--epochs", type=int, default=10, help="retraining passes (adapthd, onlinehd)")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (adapthd, onlinehd)")
    p.add_argument("--batch-size", type=int, default=64, help="samples per update (adapthd, onlinehd)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-size", type=int, default=None, help="use only the first TRAIN_SIZE training samples")
    p.add_argument("--test-size", type=int, default=None, help="use only the first TEST_SIZE test samples")
    p.add_argument("--root", default=None, help="directory holding the dataset files")
    p.add_argument("--no-download", action="store_true", help="never fetch a missing dataset")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _print_table(r: dict[str, Any]) -> None:
    rows = [
        (
            "dataset",
            f"{r['dataset']} ({r['n_train']} train / {r['n_test']} test, {r['in_features']} features, "
            f"{r['n_classes']} classes)",
        ),
        (
            "model",
            f"{r['model']} (dim={r['dim']}, encoder={r['encoder']}, scaling={r['scaling']}, seed={r['seed']}"
            + (f", epochs run={r['epochs']}" if r["epochs"] is not None else "")
            + ")",
        ),
        ("load", f"{r['load_s']:.2f} s"),
        ("fit", f"{r['fit_s']:.2f} s (encode + train)"),
        (
            "predict",
            f"{r['predict_s']:.2f} s ({r['test_samples_per_s']:.0f} samples/s)"
            if r["test_samples_per_s"]
            else f"{r['predict_s']:.2f} s",
        ),
        ("accuracy", f"{100 * r['accuracy']:.2f} %"),
    ]
    for key, value in rows:
        print(f"{key:<10}{value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``hdc`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "classify":
            from hdc.classifiers import evaluate_on_dataset

            result = evaluate_on_dataset(
                args.dataset,
                args.model,
                dim=args.dim,
                encoder=args.encoder,
                scaling=args.scaling,
                epochs=args.epochs,
                lr=args.lr,
                batch_size=args.batch_size,
                seed=args.seed,
                train_size=args.train_size,
                test_size=args.test_size,
                root=args.root,
                download=not args.no_download,
                verbose=not args.quiet,
            ).as_dict()
            if args.json:
                print(json.dumps(result))
            else:
                _print_table(result)
    except ValueError as exc:  # bad input: a clear message, no traceback
        print(f"hdc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
