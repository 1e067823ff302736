"""Gather finished ``gnet train`` runs into one committed result: per run its command, test accuracy, the deployed
(packed or circuit) model's accuracy and agreement, training time; mean and sd per group.

    PYTHONPATH=. python3 benchmarks/gather_runs.py --runs runs/dl-mnist-s0 runs/dl-mnist-s1 runs/dl-mnist-s2 \\
        --command "gnet train --dataset mnist --method difflogic --epochs 15 --seed {seed} \\
        --out runs/dl-mnist-s{seed}" --out results/logic/mnist_small.json

Each run directory holds ``best.pt`` and ``history.json`` as ``gnet train`` writes them (and ``summary.json`` once
the run finished; a run stopped early is recorded with ``finished: false``). The best checkpoint is evaluated again
on the full test split of its dataset (``gnet.data.load_test_split``), and its deployed form (``gnet.logic.convert``
/ ``gnet.bnn.convert``) on the same items. Also recorded: lscpu flags, ``hdc.cpu`` capabilities, and the load
average when gathering.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from gnet.checkpoint import config_family, load_model  # noqa: E402
from gnet.data import load_for_model  # noqa: E402
from gnet.train import evaluate, predict  # noqa: E402
from hdc import cpu  # noqa: E402
from hdc.io import atomic_write_text  # noqa: E402


def deployed_predictions(model, config, x) -> np.ndarray | None:
    family = config_family(config)
    if family == "difflogic":
        from gnet.logic import convert

        return np.asarray(convert(model).predict(x))
    if family == "bnn":
        from gnet.bnn import convert as convert_bnn

        return np.asarray(convert_bnn(model, input_shape=tuple(x.shape[1:])).predict(x))
    return None


def gather(run: Path) -> dict:
    history = json.loads((run / "history.json").read_text())
    finished = (run / "summary.json").is_file()
    summary = (
        json.loads((run / "summary.json").read_text())
        if finished
        else {
            "epochs_run": len(history["history"]),
            "best_epoch": history["best_epoch"] + 1,
            "best_val_accuracy": history["best_val_accuracy"],
            "train_seconds": sum(h["seconds"] for h in history["history"]),
        }
    )
    model, config = load_model(run / "best.pt")
    x, y = load_for_model(config).test.tensors
    _, accuracy = evaluate(model, x, y)
    row = {
        "run": run.name,
        "finished": finished,  # False: stopped before its planned epochs; best.pt is the best epoch so far
        "seed": config.get("train", {}).get("seed"),
        "dataset": config.get("dataset"),
        "method": config.get("method"),
        "epochs_run": summary.get("epochs_run"),
        "best_epoch": summary.get("best_epoch"),
        "best_val_accuracy": summary.get("best_val_accuracy"),
        "test_accuracy": accuracy,
        "n_test": len(y),
        "train_seconds": summary.get("train_seconds"),
        "val_accuracy_per_epoch": [h["val_accuracy"] for h in history["history"]],
    }
    packed = deployed_predictions(model, config, x)
    if packed is not None:
        row["deployed_accuracy"] = float((packed == y.numpy()).mean())
        row["deployed_agrees"] = int((packed == predict(model, x).numpy()).sum())
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", nargs="+", required=True, help="gnet train output directories")
    ap.add_argument("--command", required=True, help="the gnet train command of the runs ({seed} for the seed)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    missing = [r for r in args.runs if not (Path(r) / "best.pt").is_file()]
    if missing:
        raise SystemExit(f"runs without a best.pt: {', '.join(missing)}")
    rows = [gather(Path(r)) for r in args.runs]
    accs = [r["test_accuracy"] for r in rows]
    record = {
        "command": "PYTHONPATH=. python3 benchmarks/gather_runs.py " + " ".join(argv or sys.argv[1:]),
        "train_command": args.command,
        "lscpu_flags": cpu.lscpu_flags(),
        "capabilities": cpu.as_dict(measure=False),
        "load_average": os.getloadavg(),
        "runs": rows,
        "test_accuracy_mean": statistics.mean(accs),
        "test_accuracy_sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(record, indent=1))
    for r in rows:
        print(f"{r['run']}: test {r['test_accuracy']:.4f}, deployed {r.get('deployed_accuracy', float('nan')):.4f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
