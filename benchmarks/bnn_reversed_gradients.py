"""Where a BNN's weight pseudo-gradient points the wrong way: per binary layer, the share of latent weights whose
weight quantizer has ``B'(w) < 0`` at the checkpoint's annealing progress, and what a sign-forward / ``SS_b'``
-backward network would see at the end of training.

The BNN+ / BNN++ backward ``SS_b'`` is negative beyond ``|b w| = 2.40``. With a sign forward the deployed weight does
not depend on ``|w|``, so for such weights the pseudo-gradient reverses the direction the loss asks for, and Adam
scales these small values into full steps. This reads trained checkpoints (no training) and reports, per layer,
mean |w| and the share of weights in that region; docs/bnn.md quotes it.

With ``--dataset``, the same for the binary activations: per binary layer with an input quantizer, the share of its
real inputs (on the first ``--images`` test images, eval mode) where the input quantizer's ``B'(x) < 0`` (reversed)
or ``= 0`` (no gradient), and the reversed pseudo-gradient's total against the forward one's.

    PYTHONPATH=. python3 benchmarks/bnn_reversed_gradients.py --out results/compare/mnist-bnn++-schedules/tails.json \
        CHECKPOINT [CHECKPOINT ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from gnet.bnn import BinaryActivation, BinaryConv1d, BinaryConv2d, BinaryLinear
from gnet.checkpoint import load_model
from gnet.data import load_test_split
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


def activation_tails(model: torch.nn.Module, x: torch.Tensor) -> list[dict[str, Any]]:
    """Per activation quantizer (a ``BinaryActivation`` or a binary layer's input quantizer): share of its inputs on
    ``x`` with ``B'(input) < 0`` and ``= 0``."""
    captured: dict[str, torch.Tensor] = {}
    quantizers, hooks = {}, []
    for name, module in model.named_modules():
        if not isinstance(module, (BinaryActivation, *BINARY_LAYERS)):
            continue
        quantizer = module.quantizer if isinstance(module, BinaryActivation) else module.input_quantizer
        if quantizer is not None:
            quantizers[name] = quantizer
            hooks.append(module.register_forward_pre_hook(lambda m, args, n=name: captured.__setitem__(n, args[0])))
    model.eval()
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    rows = []
    for name, quantizer in quantizers.items():
        if name in captured:
            g = quantizer.pseudo_grad(captured[name].double())
            rows.append({"layer": name, "quantizer": quantizer.to_config(),
                         "share_reversed": float((g < 0).double().mean()),
                         "share_zero": float((g == 0).double().mean()),
                         "reversed_mass": float((-g).clamp(min=0).sum() / g.clamp(min=0).sum())})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="BNN checkpoints (best.pt / last.pt of gnet train or compare)")
    parser.add_argument("--out", required=True, help="JSON file to write (refused if it exists)")
    parser.add_argument("--dataset", help="also measure the binary activations on this dataset's test split")
    parser.add_argument("--data-dir", help="where the dataset lives (see gnet train --data-dir)")
    parser.add_argument("--images", type=int, default=1000, help="test images for --dataset (default 1000)")
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        raise SystemExit(f"{out} exists; remove it or choose another --out")
    report = []
    x = load_test_split({}, args.dataset, args.data_dir, limit=args.images)[1] if args.dataset else None
    for path in args.checkpoints:
        model, _ = load_model(path)
        at_save = float(getattr(model, "anneal_progress", torch.tensor(1.0)))
        entry = {"checkpoint": path, "progress_at_save": at_save, "at_save": layer_tails(model, at_save),
                 "at_end": layer_tails(model, 1.0)}  # fmt: skip
        if x is not None:
            entry["activations"] = activation_tails(model, x)
            for row in entry["activations"]:
                print(f"{path}  {row['layer']:>4} inputs  B'<0: {100 * row['share_reversed']:.1f} %  "
                      f"B'=0: {100 * row['share_zero']:.1f} %  "
                      f"sum|B'<0| / sum B'>0: {row['reversed_mass']:.3f}")  # fmt: skip
        report.append(entry)
        for row in entry["at_save"]:
            print(f"{path}  {row['layer']:>4} {str(row['shape']):>18}  mean|w| {row['mean_abs_weight']:.4f}  "
                  f"b {row['beta_now']}  B'<0: {100 * row['share_reversed']:.1f} %")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
