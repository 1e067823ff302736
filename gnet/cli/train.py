"""``gnet train`` and ``gnet eval`` for every family: float G-Nets, binary networks (gnet.bnn), DiffLogic."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gnet.checkpoint import config_family, load_checkpoint, load_model
from gnet.data import DataSplits, load_dataset, load_for_model
from gnet.distributed import barrier, init_distributed, is_active, is_main, launched_by_torchrun, shutdown, world_size
from gnet.models import (
    ARCHITECTURES,
    DEFAULT_DIFFLOGIC,
    METHODS,
    build_for_method,
    check_input_shape,
    family_of,
    input_scaling,
)
from gnet.train import TrainConfig, evaluate, predict, train
from gnet.train_guard import TrainingInterrupted, check_resume_settings, check_run_dir, clear_run, continues_run
from hdc._validate import check_int
from hdc.io import atomic_write_text

# Optimiser defaults per family where a flag is not given. gnet: the G-Net recipe of this CLI. bnn: the recipe of
# docs/bnn.md (Adam lr 0.01, batch 64, ReduceLROnPlateau patience 2 factor 0.3). difflogic: the official recipe
# (gnet.logic.TRAIN_DEFAULTS: lr 0.01, batch 100, no weight decay, no schedule: patience beyond any run).
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
    "gnet": {"lr": 2e-3, "batch_size": 128, "weight_decay": 1e-5, "plateau_factor": 0.1, "plateau_patience": 10,
             "lr_schedule": "plateau"},
    "bnn": {"lr": 0.01, "batch_size": 64, "weight_decay": 1e-5, "plateau_factor": 0.3, "plateau_patience": 2,
            "lr_schedule": "plateau"},
    "difflogic": {"lr": 0.01, "batch_size": 100, "weight_decay": 0.0, "plateau_factor": 0.1, "plateau_patience": None,
                  "lr_schedule": "plateau"},
    "cnn": {"lr": 1e-3, "batch_size": 128, "weight_decay": 1e-5, "plateau_factor": 0.1, "plateau_patience": 10,
            "lr_schedule": "plateau"},
}  # fmt: skip


def _train_config(args: argparse.Namespace, family: str, recorded: dict[str, Any] | None = None) -> TrainConfig:
    """The flags, with the family's defaults (:data:`FAMILY_DEFAULTS`) for those not given; ``recorded``: the
    ``train`` settings of the checkpoint being resumed."""
    values = {}
    for key, default in FAMILY_DEFAULTS[family].items():
        given = getattr(args, key)
        values[key] = given if given is not None else default
    if values["plateau_patience"] is None:  # no schedule: the plateau never outlasts the run
        # (on a resume, the run's own: a patience beyond the first run's length is no schedule either)
        values["plateau_patience"] = (recorded or {}).get("plateau_patience", args.epochs)
    return TrainConfig(
        epochs=args.epochs,
        early_stopping=args.early_stopping,
        seed=args.seed,
        anneal_epochs=args.anneal_epochs,
        **values,
    )


def _start(args: argparse.Namespace) -> torch.device:
    """Join the process group when asked (``--distributed``) or launched by torchrun with several processes; returns
    the device to run on."""
    device = getattr(args, "device", "cpu")
    if args.distributed or (launched_by_torchrun() and int(os.environ["WORLD_SIZE"]) > 1):
        return init_distributed(device)
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    return torch.device(device)


def cmd_train(args: argparse.Namespace) -> int:
    # Before any data is loaded or anything built: a run already in --out is continued or replaced only when asked,
    # and a resume must use the settings its checkpoint records.
    out = check_run_dir(args.out, args.resume, args.overwrite)
    _check_resume(args)
    device = _start(args)
    finished = False
    try:
        code = _train(args, device)
        finished = True
        return code
    except KeyboardInterrupt as err:  # TrainingInterrupted after a clean stop; a second Ctrl-C anywhere
        last = err.checkpoint if isinstance(err, TrainingInterrupted) else None
        if last is None and (out / "last.pt").is_file() and (args.resume is None or continues_run(out, args.resume)):
            last = out / "last.pt"
        if is_main():
            hint = f"resume with --resume {last}" if last is not None else f"no epoch was saved in {out}"
            print(f"gnet train: interrupted; {hint}", file=sys.stderr)
        return 130
    finally:
        shutdown(wait_for_ranks=finished)


def _check_resume(args: argparse.Namespace) -> None:
    """Refuse a ``--resume`` whose checkpoint records other settings than the flags (see
    :func:`gnet.train_guard.setting_changes`), before the data is loaded; the full config is compared again by
    :func:`gnet.train.train`."""
    if args.resume is None:
        _train_config(args, family_of(args.method))  # the flags are checked all the same
        return
    family = family_of(args.method)
    recorded = load_checkpoint(args.resume)["config"]
    config = _train_config(args, family, recorded.get("train"))
    new = {
        "method": args.method,
        "val_fraction": args.val_fraction,
        "data_seed": args.seed,
        "train": dataclasses.asdict(config),
    }
    check_resume_settings(args.resume, recorded, new, family == "bnn", args.allow_changed_settings)


def _train(args: argparse.Namespace, device: torch.device) -> int:
    family = family_of(args.method)
    scaling = input_scaling(args.method)
    if not is_main():
        barrier()  # rank 0 fetches the data set first, so that the ranks do not download it at once
    data = load_dataset(args.dataset, args.data_dir, val_fraction=args.val_fraction, seed=args.seed, scaling=scaling)
    if is_main():
        barrier()
    model, model_config = build_for_method(args.method, data, args.arch, args.activation, seed=args.seed)
    fit_encoder = getattr(model, "fit_encoder", None)
    if callable(fit_encoder):  # DiffLogic quantile thresholds come from the training inputs (saved as a buffer)
        fit_encoder(data.train.tensors[0])
    check_input_shape(model, data.input_shape, data.n_classes)
    recorded = load_checkpoint(args.resume)["config"].get("train") if args.resume is not None else None
    config = _train_config(args, family, recorded)
    model_config.update(
        {
            "input_shape": list(data.input_shape),
            "n_classes": data.n_classes,
            "dataset": data.name,
            "val_fraction": args.val_fraction,
            "data_seed": args.seed,
            "scaling": scaling,
        }
    )
    out = Path(args.out)
    if is_active() and is_main():
        print(f"data-parallel training on {world_size()} ranks: global batch {config.batch_size}")
    if args.overwrite and not continues_run(out, args.resume) and is_main():
        clear_run(out)  # nothing of the replaced run may outlive it
    model.to(device)
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
        allow_changed_settings=args.allow_changed_settings,
    )
    seconds = time.perf_counter() - t0
    model.cpu()
    best, _ = load_model(out / "best.pt")
    x_te, y_te = data.test.tensors
    _, final_acc = evaluate(model, x_te, y_te)  # split over the ranks under a process group
    _, best_acc = evaluate(best, x_te, y_te)
    if not is_main():
        return 0
    summary = {
        "dataset": data.name,
        "method": args.method,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch + 1,
        "best_val_accuracy": result.best_val_accuracy,
        "test_accuracy_best": best_acc,
        "test_accuracy_last": final_acc,
        "train_seconds": seconds,
    }
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1))
    print(
        f"{args.method}: test accuracy (best val checkpoint): {best_acc:.4f}   last epoch: {final_acc:.4f}   "
        f"[{summary['epochs_run']} epochs, {seconds:.0f}s] -> {out / 'best.pt'}"
    )
    return 0


def load_model_and_data(args: argparse.Namespace) -> tuple[nn.Module, dict[str, Any], DataSplits]:
    """(model, config, splits) for ``args.model`` and ``args.dataset`` (default: the checkpoint's dataset, with
    the split it was trained on); the flags of ``gnet eval`` and ``gnet verify``."""
    model, config = load_model(args.model)
    return model, config, load_for_model(config, args.dataset, args.data_dir)


def cmd_eval(args: argparse.Namespace) -> int:
    from gnet.cli.ehd import cmd_eval_ehd, is_deployed_file  # deployed models (.ehd, .bnn, .logic) have their own

    if is_deployed_file(args.model):
        return cmd_eval_ehd(args)
    _start(args)
    try:
        code = _eval(args)
    except BaseException:
        shutdown(wait_for_ranks=False)
        raise
    shutdown()
    return code


def _eval(args: argparse.Namespace) -> int:
    """``gnet eval`` of a checkpoint; under a process group the test items are split over the ranks (the accuracy
    is reduced with all_reduce) and rank 0 prints."""
    model, config, data = load_model_and_data(args)
    check_input_shape(model, data.input_shape, data.n_classes)
    x, y = data.test.tensors
    if args.limit is not None:
        x, y = x[: check_int(args.limit, "--limit", minimum=1)], y[: args.limit]
    t0 = time.perf_counter()
    loss, acc = evaluate(model, x, y)
    dt = time.perf_counter() - t0
    if not is_main():
        return 0
    print(f"{data.name} test accuracy {acc:.4f}  loss {loss:.4f}  ({len(x) / dt:.0f} img/s)")
    family = config_family(config)
    if family in ("bnn", "difflogic"):  # the families with a deployed (binary) form
        _eval_deployed(model, family, x, y)
    return 0


def _eval_deployed(model: nn.Module, family: str, x: torch.Tensor, y: torch.Tensor) -> None:
    """Print the accuracy of the deployed form (packed BNN, hard logic circuit) and its agreement with the torch
    model's eval-mode predictions, which must be total."""
    if family == "bnn":
        from gnet.bnn import convert as convert_bnn

        deployed: Any = convert_bnn(model)
        name = "packed BNN"
    else:
        from gnet.logic import convert as convert_logic

        deployed = convert_logic(model)  # type: ignore[arg-type]  # a difflogic checkpoint builds a DiffLogicNet
        name = "logic circuit"
    t0 = time.perf_counter()
    packed = np.asarray(deployed.predict(x))
    dt = time.perf_counter() - t0
    torch_pred = predict(model, x).numpy()
    agree = int((packed == torch_pred).sum())
    acc = float((packed == y.numpy()).mean())
    print(
        f"{name} test accuracy {acc:.4f}  ({len(x) / dt:.0f} img/s)  agreement with torch predictions {agree}/{len(x)}"
    )
    if agree != len(x):
        raise ValueError(f"the {name} disagrees with the torch model on {len(x) - agree} of {len(x)} items")


def _add_schedule_flags(p: argparse.ArgumentParser) -> None:
    """The epochs, optimiser and rate-schedule flags of ``gnet train`` (family defaults in FAMILY_DEFAULTS)."""
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=None, help="default: 128 gnet, 64 binary, 100 difflogic")
    p.add_argument("--lr", type=float, default=None, help="default: 0.002 gnet, 0.01 binary and difflogic")
    p.add_argument("--weight-decay", type=float, default=None, help="default: 1e-5, 0 for difflogic")
    p.add_argument("--plateau-factor", type=float, default=None, help="default: 0.1, 0.3 for binary methods")
    p.add_argument(
        "--plateau-patience", type=int, default=None, help="default: 10 gnet, 2 binary, no schedule for difflogic"
    )
    p.add_argument(
        "--lr-schedule",
        choices=("plateau", "cosine"),
        default=None,
        help="plateau: cut the rate when the validation loss stalls (default); cosine: decay it to 0 over the run",
    )
    p.add_argument(
        "--anneal-epochs",
        type=int,
        default=None,
        help="annealing horizon of the binary methods (default: --epochs); to stop a planned run early and resume "
        "it later with --epochs N, pass --anneal-epochs N",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a G-Net, a binary network or a logic gate network")
    p.add_argument("--dataset", default="digits", help="digits | mnist | fashion-mnist | ucr:NAME | iris | ...")
    p.add_argument(
        "--method",
        default="gnet",
        choices=METHODS,
        help="gnet (float G-Net, default); binaryconnect | bnn | bnn++ | pc++ | fda (binary networks on the same "
        "architectures, gnet.bnn); difflogic (logic gate network, gnet.logic); cnn (a plain float CNN of the "
        "same shape, the reference line, gnet.cnn)",
    )
    difflogic_defaults = ", ".join(f"{k} -> {v}" for k, v in DEFAULT_DIFFLOGIC.items())
    p.add_argument(
        "--arch",
        default=None,
        help=f"{' | '.join(sorted(ARCHITECTURES))} or a JSON file of layers; for difflogic a gnet.logic preset "
        f"(default per dataset: {difflogic_defaults})",
    )
    p.add_argument("--activation", default="rasu", choices=("rasu", "tasu"))
    _add_schedule_flags(p)
    p.add_argument("--early-stopping", type=int, default=None, help="stop after this many epochs without gain")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", required=True, help="directory for best.pt, last.pt, history.json, summary.json")
    p.add_argument(
        "--resume",
        default=None,
        help="a last.pt to continue from, with the settings it records (--epochs may grow); with --out its directory",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace the run --out already holds (else training refuses)"
    )
    p.add_argument(
        "--allow-changed-settings",
        action="store_true",
        help="resume with other settings than the checkpoint records; the changes are recorded in it",
    )
    p.add_argument("--quiet", action="store_true")
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel training under torchrun (DistributedDataParallel; --batch-size is the global batch, "
        "split over the ranks); on by itself when torchrun starts more than one process; see docs/distributed.md",
    )
    p.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda"),
        help="train on the CPU or a CUDA GPU (under torchrun: GPU LOCAL_RANK of each machine, nccl)",
    )
    p.set_defaults(func=cmd_train)

    e = sub.add_parser(
        "eval",
        help="evaluate a checkpoint (.pt; binary and logic networks also in their packed form) or an EHD model (.ehd)",
    )
    e.add_argument("model")
    e.add_argument("--dataset", default=None)
    e.add_argument("--data-dir", default=None)
    e.add_argument("--batch-size", type=int, default=256)
    e.add_argument("--limit", type=int, default=None, help="evaluate only the first LIMIT test items")
    e.add_argument("--quiet", action="store_true")
    e.add_argument(
        "--distributed",
        action="store_true",
        help="under torchrun: split the test items of a .pt checkpoint or an .ehd model over the ranks (on by itself "
        "when torchrun starts more than one process)",
    )
    e.set_defaults(func=cmd_eval)
