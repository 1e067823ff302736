"""``gnet train`` and ``gnet eval`` for float G-Nets."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gnet.checkpoint import load_model
from gnet.data import load_dataset
from gnet.models import ARCHITECTURES, architecture, build_model, check_input_shape, load_architecture
from gnet.train import TrainConfig, evaluate, train

DEFAULT_ARCH = {"digits": "digits", "mnist": "mnist", "fashion-mnist": "fashion-mnist"}


def _resolve_architecture(arch: str | None, dataset, activation: str) -> list[dict]:
    """Layer specs from a named architecture or a JSON file, sized to the dataset where the name allows it."""
    if arch is not None and arch.endswith(".json"):
        return load_architecture(arch)
    name = arch or DEFAULT_ARCH.get(dataset.name) or ("timeseries" if dataset.kind == "timeseries" else "mlp")
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; valid: {', '.join(sorted(ARCHITECTURES))} or a .json file")
    shape, k = dataset.input_shape, dataset.n_classes
    if name == "timeseries":
        return architecture(name, in_channels=shape[0], length=shape[-1], n_classes=k, activation=activation)
    if name == "mlp":
        size = 1
        for s in shape:
            size *= s
        return architecture(name, in_features=size, n_classes=k, activation=activation)
    return architecture(name, n_classes=k, activation=activation)


def cmd_train(args: argparse.Namespace) -> int:
    data = load_dataset(args.dataset, args.data_dir, val_fraction=args.val_fraction, seed=args.seed)
    specs = _resolve_architecture(args.arch, data, args.activation)
    model = build_model(specs, seed=args.seed)
    check_input_shape(model, data.input_shape, data.n_classes)
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        plateau_factor=args.plateau_factor, plateau_patience=args.plateau_patience,
        early_stopping=args.early_stopping, seed=args.seed,
    )
    model_config = {
        "architecture": specs, "input_shape": list(data.input_shape), "n_classes": data.n_classes,
        "dataset": data.name, "val_fraction": args.val_fraction, "data_seed": args.seed,
    }
    out = Path(args.out)
    t0 = time.perf_counter()
    result = train(
        model, data.train.tensors, data.val.tensors, config, model_config, out_dir=out,
        resume=args.resume, progress=not args.quiet,
    )
    seconds = time.perf_counter() - t0
    best, _ = load_model(out / "best.pt")
    x_te, y_te = data.test.tensors
    _, final_acc = evaluate(model, x_te, y_te)
    _, best_acc = evaluate(best, x_te, y_te)
    summary = {
        "dataset": data.name, "epochs_run": len(result.history), "best_epoch": result.best_epoch + 1,
        "best_val_accuracy": result.best_val_accuracy, "test_accuracy_best": best_acc,
        "test_accuracy_last": final_acc, "train_seconds": seconds,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"test accuracy (best val checkpoint): {best_acc:.4f}   last epoch: {final_acc:.4f}   "
          f"[{summary['epochs_run']} epochs, {seconds:.0f}s] -> {out / 'best.pt'}")
    return 0


def load_model_and_data(args: argparse.Namespace):
    """(model, config, DataSplits) for ``args.model`` and ``args.dataset`` (default: the checkpoint's dataset, with
    the split it was trained on)."""
    model, config = load_model(args.model)
    name = args.dataset or config.get("dataset")
    if name is None:
        raise ValueError("the checkpoint names no dataset; pass --dataset")
    data = load_dataset(name, args.data_dir, val_fraction=config.get("val_fraction", 0.1),
                        seed=config.get("data_seed", 0))
    return model, config, data


def cmd_eval(args: argparse.Namespace) -> int:
    if str(args.model).endswith(".ehd"):
        from gnet.cli.ehd import cmd_eval_ehd  # EHD models have their own evaluator

        return cmd_eval_ehd(args)
    model, config, data = load_model_and_data(args)
    check_input_shape(model, data.input_shape, data.n_classes)
    x, y = data.test.tensors
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
