"""``gnet train`` and ``gnet eval`` for float G-Nets."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from torch import nn

from gnet.checkpoint import load_model
from gnet.data import DataSplits, load_dataset, load_for_model
from gnet.models import ARCHITECTURES, architecture_for, build_model, check_input_shape
from gnet.train import TrainConfig, evaluate, train
from hdc._validate import check_int
from hdc.io import atomic_write_text


def cmd_train(args: argparse.Namespace) -> int:
    data = load_dataset(args.dataset, args.data_dir, val_fraction=args.val_fraction, seed=args.seed)
    specs = architecture_for(data, args.arch, args.activation)
    model = build_model(specs, seed=args.seed)
    check_input_shape(model, data.input_shape, data.n_classes)
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        plateau_factor=args.plateau_factor,
        plateau_patience=args.plateau_patience,
        early_stopping=args.early_stopping,
        seed=args.seed,
    )
    model_config = {
        "architecture": specs,
        "input_shape": list(data.input_shape),
        "n_classes": data.n_classes,
        "dataset": data.name,
        "val_fraction": args.val_fraction,
        "data_seed": args.seed,
    }
    out = Path(args.out)
    t0 = time.perf_counter()
    result = train(
        model,
        data.train.tensors,
        data.val.tensors,
        config,
        model_config,
        out_dir=out,
        resume=args.resume,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - t0
    best, _ = load_model(out / "best.pt")
    x_te, y_te = data.test.tensors
    _, final_acc = evaluate(model, x_te, y_te)
    _, best_acc = evaluate(best, x_te, y_te)
    summary = {
        "dataset": data.name,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch + 1,
        "best_val_accuracy": result.best_val_accuracy,
        "test_accuracy_best": best_acc,
        "test_accuracy_last": final_acc,
        "train_seconds": seconds,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    print(
        f"test accuracy (best val checkpoint): {best_acc:.4f}   last epoch: {final_acc:.4f}   "
        f"[{summary['epochs_run']} epochs, {seconds:.0f}s] -> {out / 'best.pt'}"
    )
    return 0


def load_model_and_data(args: argparse.Namespace) -> tuple[nn.Sequential, dict[str, Any], DataSplits]:
    """(model, config, splits) for ``args.model`` and ``args.dataset`` (default: the checkpoint's dataset, with
    the split it was trained on); the flags of ``gnet eval`` and ``gnet verify``."""
    model, config = load_model(args.model)
    return model, config, load_for_model(config, args.dataset, args.data_dir)


def cmd_eval(args: argparse.Namespace) -> int:
    if str(args.model).endswith(".ehd"):
        from gnet.cli.ehd import cmd_eval_ehd  # EHD models have their own evaluator

        return cmd_eval_ehd(args)
    model, _, data = load_model_and_data(args)
    check_input_shape(model, data.input_shape, data.n_classes)
    x, y = data.test.tensors
    if args.limit is not None:
        x, y = x[: check_int(args.limit, "--limit", minimum=1)], y[: args.limit]
    t0 = time.perf_counter()
    loss, acc = evaluate(model, x, y)
    dt = time.perf_counter() - t0
    print(f"{data.name} test accuracy {acc:.4f}  loss {loss:.4f}  ({len(x) / dt:.0f} img/s)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a float G-Net")
    p.add_argument("--dataset", default="digits", help="digits | mnist | fashion-mnist | ucr:NAME | iris | ...")
    p.add_argument("--arch", default=None, help=f"{' | '.join(sorted(ARCHITECTURES))} or a JSON file of layers")
    p.add_argument("--activation", default="rasu", choices=("rasu", "tasu"))
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=1e-5)
    p.add_argument("--plateau-factor", type=float, default=0.1)
    p.add_argument("--plateau-patience", type=int, default=10)
    p.add_argument("--early-stopping", type=int, default=None, help="stop after this many epochs without gain")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", required=True, help="directory for best.pt, last.pt, history.json, summary.json")
    p.add_argument("--resume", default=None, help="a last.pt to continue from")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="evaluate a float checkpoint (.pt) or an EHD model (.ehd)")
    e.add_argument("model")
    e.add_argument("--dataset", default=None)
    e.add_argument("--data-dir", default=None)
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--limit", type=int, default=None, help="evaluate only the first LIMIT test items")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_eval)
