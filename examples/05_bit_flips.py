"""Bit-flip robustness: flip a fraction p of the bits of every weight code of an EHD G-Net and measure accuracy.

    PYTHONPATH=. python3 examples/05_bit_flips.py            # about a minute on 2 CPU cores
    PYTHONPATH=. python3 examples/05_bit_flips.py --smoke    # a few seconds (what the tests run)

A weight code phi(w) = sign(G w) spreads the information of w over dim bits, so flipping p dim of them only shrinks
every estimated arcsin(cos) by the factor (1 - 2p) (and adds a little noise): the argmax of the classifier, and
with RASU the whole network, degrades gracefully up to large p. At p = 0.5 the codes carry no information.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnet.data import load_dataset  # noqa: E402
from gnet.ehd import convert  # noqa: E402
from gnet.models import architecture, build_model  # noqa: E402
from gnet.robustness import robustness_sweep  # noqa: E402
from gnet.train import TrainConfig, evaluate, train  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny settings for a fast check")
    ap.add_argument(
        "--target",
        default="model",
        choices=("model", "data", "both"),
        help="flip bits of the weight codes, of the data codes computed at inference, or both",
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    epochs, dim, seeds = (2, 1024, 2) if args.smoke else (15, 4096, 2)
    ps = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5] if not args.smoke else [0.0, 0.2, 0.5]

    data = load_dataset("digits", val_fraction=0.1, seed=args.seed)
    specs = architecture("digits", activation="rasu")
    model = build_model(specs, seed=args.seed)
    train(
        model,
        data.train.tensors,
        data.val.tensors,
        TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=args.seed),
        {"architecture": specs},
        progress=False,
    )
    x, y = data.test.tensors
    _, float_acc = evaluate(model, x, y)
    ehd = convert(model, dim=dim, seed=args.seed, input_shape=data.input_shape)

    # Exactly round(p * dim) distinct bits of every code flipped, independently per layer and per seed.
    sweep = robustness_sweep(ehd, x, y, ps, seeds=range(seeds), target=args.target, progress=False)
    print(f"digits, RASU, dim={dim}: float {float_acc:.4f}, EHD without faults {sweep['clean_accuracy']:.4f}")
    print(f"{'p':>5}  {'flipped bits per code':>22}  {'accuracy (mean +- std over ' + str(seeds) + ' seeds)'}")
    for row in sweep["rows"]:
        print(f"{row['p']:>5.2f}  {row['hits'][0]:>22d}  {row['accuracy_mean']:.4f} +- {row['accuracy_std']:.4f}")
    return {"float_accuracy": float_acc, "dim": dim, "sweep": sweep}


if __name__ == "__main__":
    main()
