"""``gnet quickstart``: the main job end to end on the embedded digits set, in about a minute on 2 CPU cores.

Trains the small digits G-Net conv net (RASU), reports its float test accuracy, converts it to an EHD G-Net
(dim-bit Gaussian sign codes, Hamming-distance layers) and reports the EHD test accuracy beside it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gnet.checkpoint import load_model
from gnet.cli._args import add_dim_argument, dim_value
from gnet.cli._timing import steady_state
from gnet.data import load_dataset
from gnet.ehd import convert
from gnet.models import architecture, build_model, check_input_shape
from gnet.train import TrainConfig, evaluate, train
from gnet.train_guard import check_run_dir, clear_run

# The recipe tests/conftest.py uses for its digits fixtures (>= 97 % test accuracy in 15 epochs).
EPOCHS, BATCH_SIZE, LR, VAL_FRACTION = 15, 64, 3e-3, 0.1


def cmd_quickstart(args: argparse.Namespace) -> int:
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    dim = int(dim_value(args))
    if dim < 1:
        raise ValueError(f"--dim must be >= 1, got {dim}")
    if args.out is not None:  # before any work: a finished run in --out is never replaced without --overwrite
        check_run_dir(args.out, overwrite=args.overwrite)
        if (Path(args.out) / "model.ehd").exists() and not args.overwrite:
            raise ValueError(f"{Path(args.out) / 'model.ehd'} exists; add --overwrite to replace it")
        if args.overwrite:
            clear_run(args.out)
    say = (lambda *a: None) if args.quiet else print
    data = load_dataset("digits", val_fraction=VAL_FRACTION, seed=args.seed)
    specs = architecture("digits", n_classes=data.n_classes, activation=args.activation)
    model = build_model(specs, seed=args.seed)
    check_input_shape(model, data.input_shape, data.n_classes)
    config = TrainConfig(epochs=args.epochs, batch_size=BATCH_SIZE, lr=LR, seed=args.seed)
    provenance = {"dataset": data.name, "val_fraction": VAL_FRACTION, "data_seed": args.seed}
    say(
        f"training the digits G-Net ({args.activation.upper()}, {args.epochs} epochs, "
        f"{len(data.train)} train / {len(data.val)} val images) ..."
    )

    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(args.out) if args.out is not None else Path(scratch)
        t0 = time.perf_counter()
        model_config = {
            "architecture": specs,
            "input_shape": list(data.input_shape),
            "n_classes": data.n_classes,
            **provenance,
        }
        train(
            model, data.train.tensors, data.val.tensors, config, model_config, out_dir=run_dir, progress=not args.quiet
        )
        train_seconds = time.perf_counter() - t0
        best, _ = load_model(run_dir / "best.pt")  # the best-validation epoch, as `gnet train` reports

    x_te, y_te = data.test.tensors
    (_, float_acc), float_time = steady_state(lambda k: evaluate(best, x_te[:k], y_te[:k]), len(x_te))
    ehd = convert(
        best,
        dim=dim,
        embedding=args.embedding,
        seed=args.seed,
        precision=args.precision,
        meta=provenance,
        input_shape=data.input_shape,
    )
    r, ehd_time = steady_state(lambda k: ehd.evaluate(x_te[:k], y_te[:k], batch_size=256), len(x_te))

    label = f"EHD G-Net (dim={dim}, {args.embedding})"
    width = max(len(label), len("float G-Net"))
    print(f"digits test set, {len(x_te)} images (trained {train_seconds:.0f}s):")
    print(f"  {'model':<{width}}  accuracy  img/s (steady state)")
    print(f"  {'float G-Net':<{width}}  {float_acc:8.4f}  {float_time.images_per_second:9.0f}")
    print(f"  {label:<{width}}  {r.accuracy:8.4f}  {ehd_time.images_per_second:9.0f}")
    print(
        f"  one-off warm-up before timing (JIT compilation, first calls): float {float_time.warmup_seconds:.1f}s, "
        f"EHD {ehd_time.warmup_seconds:.1f}s; EHD precision {ehd.meta['precision']}"
    )
    if args.out is not None:
        path = ehd.save(Path(args.out) / "model.ehd")
        print(f"wrote {Path(args.out) / 'best.pt'} and {path}; try: gnet eval {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("quickstart", help="train a digits G-Net, convert it to EHD, compare accuracies (~1 min)")
    q.add_argument("--epochs", type=int, default=EPOCHS)
    q.add_argument("--activation", default="rasu", choices=("rasu", "tasu"))
    add_dim_argument(q, 4096, "code length dim of every EHD layer", type=int)
    q.add_argument("--embedding", default="gaussian", choices=("gaussian", "rademacher", "orthogonal", "hadamard"))
    q.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "float32", "bfloat16", "int8"),
        help="arithmetic of the EHD projections; auto: the fastest on this CPU (int8 needs --embedding rademacher)",
    )
    q.add_argument("--seed", type=int, default=0, help="seed for the split, weights, shuffling and the projections")
    q.add_argument("--out", default=None, help="directory to keep best.pt, last.pt, history.json and model.ehd")
    q.add_argument("--overwrite", action="store_true", help="replace a run (and model.ehd) already in --out")
    q.add_argument("--quiet", action="store_true", help="no progress output (results are still printed)")
    q.set_defaults(func=cmd_quickstart)
