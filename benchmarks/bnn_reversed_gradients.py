"""Where a BNN's weight pseudo-gradient points the wrong way: per binary layer, the share of latent weights whose
weight quantizer has ``B'(w) < 0`` at the checkpoint's annealing progress, and what a sign-forward / ``SS_b'``
-backward network would see at the end of training.

The BNN+ / BNN++ backward ``SS_b'`` is negative beyond ``|b w| = 2.40``. With a sign forward the deployed weight does
not depend on ``|w|``, so for such weights the pseudo-gradient reverses the direction the loss asks for, and Adam
scales these small values into full steps. This reads trained checkpoints (no training) and reports, per layer,
mean |w| and the share of weights in that region; docs/bnn.md quotes it.

    PYTHONPATH=. python3 benchmarks/bnn_reversed_gradients.py --out results/compare/mnist-bnn++-schedules/tails.json \
        CHECKPOINT [CHECKPOINT ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from gnet.bnn import BinaryConv1d, BinaryConv2d, BinaryLinear
from gnet.checkpoint import load_model
from hdc.io import atomic_write_text

BINARY_LAYERS = (BinaryConv1d, BinaryConv2d, BinaryLinear)


def layer_tails(model: torch.nn.Module, progress: float) -> list[dict[str, Any]]:
    """Per binary layer at annealing ``progress``: shape, mean |w|, b of the weight quantizer, share of B'(w) < 0."""
    rows = []
    for name, module in model.named_modules():
        if not isinstance(module, BINARY_LAYERS):
            continue
        quantizer = module.weight_quantizer
        quantizer.set_progress(progress)
        w = module.weight.detach().double()
        negative = quantizer.pseudo_grad(w) < 0
        rows.append(
            {
                "layer": name,
                "shape": list(w.shape),
                "quantizer": quantizer.to_config(),
                "beta_now": getattr(quantizer, "beta", None),
                "mean_abs_weight": float(w.abs().mean()),
                "share_reversed": float(negative.double().mean()),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="BNN checkpoints (best.pt / last.pt of gnet train or compare)")
    parser.add_argument("--out", required=True, help="JSON file to write (refused if it exists)")
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists; remove it or choose another --out")
    report = []
    for path in args.checkpoints:
        model, _ = load_model(path)
        at_save = float(getattr(model, "anneal_progress", torch.tensor(1.0)))
        entry = {"checkpoint": path, "progress_at_save": at_save, "at_save": layer_tails(model, at_save),
                 "at_end": layer_tails(model, 1.0)}  # fmt: skip
        report.append(entry)
        for row in entry["at_save"]:
            print(f"{path}  {row['layer']:>4} {str(row['shape']):>18}  mean|w| {row['mean_abs_weight']:.4f}  "
                  f"b {row['beta_now']}  B'<0: {100 * row['share_reversed']:.1f} %")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
