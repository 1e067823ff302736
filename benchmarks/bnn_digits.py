"""Every binary method on sklearn digits, several seeds: test accuracy of the last epoch, packed agreement, time.

    PYTHONPATH=. python3 benchmarks/bnn_digits.py --seeds 3 --out results/bnn/digits.json

The ``digits`` architecture built by ``gnet.models.build_for_method`` for each method, trained with the
``gnet train`` defaults of the binary family (Adam, lr ``--lr``, batch 64, ReduceLROnPlateau patience 2 factor
0.3, ``--epochs`` epochs; BatchNorm recalibrated after every epoch by the trainer), one torch thread. Reported per
method and seed: the last epoch's test accuracy (float64 eval network), the packed network's accuracy and its
agreement with it (``gnet.bnn.convert``), and the training seconds. Writes lscpu flags, ``hdc.cpu``
capabilities, the load average and the command beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from gnet.bnn import convert  # noqa: E402
from gnet.data import load_dataset  # noqa: E402
from gnet.models import FAMILIES, build_for_method  # noqa: E402
from gnet.train import TrainConfig, evaluate, predict, train  # noqa: E402
from hdc import cpu  # noqa: E402
from hdc.io import atomic_write_text  # noqa: E402


def run(method: str, seed: int, data, args: argparse.Namespace) -> dict:
    model, config = build_for_method(method, data, seed=seed)
    settings = TrainConfig(
        epochs=args.epochs, batch_size=64, lr=args.lr, plateau_patience=2, plateau_factor=0.3, seed=seed
    )
    model_config = {**config, "input_shape": list(data.input_shape), "n_classes": data.n_classes}
    t0 = time.perf_counter()
    train(model, data.train.tensors, data.val.tensors, settings, model_config, progress=False)
    seconds = time.perf_counter() - t0
    x, y = data.test.tensors
    _, accuracy = evaluate(model, x, y)
    packed = np.asarray(convert(model, input_shape=data.input_shape).predict(x))
    torch_pred = predict(model, x).numpy()
    return {
        "seed": seed,
        "test_accuracy": accuracy,
        "packed_accuracy": float((packed == y.numpy()).mean()),
        "packed_agrees": int((packed == torch_pred).sum()),
        "n_test": len(y),
        "train_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=",".join(FAMILIES["bnn"]))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="results/bnn/digits.json")
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    if any(m not in FAMILIES["bnn"] for m in methods) or args.seeds < 1 or args.epochs < 1:
        raise SystemExit(f"--methods must be among {FAMILIES['bnn']}; --seeds and --epochs >= 1")
    torch.set_num_threads(args.threads)
    data = load_dataset("digits", val_fraction=0.1, seed=0)
    record = {
        "command": "PYTHONPATH=. python3 benchmarks/bnn_digits.py " + shlex.join(argv or sys.argv[1:]),
        "lscpu_flags": cpu.lscpu_flags(),
        "capabilities": cpu.as_dict(),
        "load_average_before": os.getloadavg(),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "methods": {},
    }
    for method in methods:
        runs = [run(method, seed, data, args) for seed in range(args.seeds)]
        accs = [r["test_accuracy"] for r in runs]
        record["methods"][method] = {
            "runs": runs,
            "mean": statistics.mean(accs),
            "sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
        }
        print(f"{method:14s} " + " ".join(f"{a:.4f}" for a in accs), flush=True)
    record["load_average_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(record, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
