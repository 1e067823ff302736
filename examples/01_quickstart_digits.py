"""Quick start: train a float G-Net on the 8x8 digits, convert it to an EHD G-Net, save it, load it, compare.

    PYTHONPATH=. python3 examples/01_quickstart_digits.py            # about 30 s on 2 CPU cores
    PYTHONPATH=. python3 examples/01_quickstart_digits.py --smoke    # a few seconds (what the tests run)

The float G-Net is a small conv net whose layers compute arcsin(cos(w, x + b)); the EHD G-Net replaces every
weight vector by a dim-bit code sign(G w) and every input patch by sign(G (x + b)), and estimates the same
arcsin(cos) from their Hamming distance. G is regenerated from a seed, so the .ehd file holds only packed bits.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnet.data import load_dataset  # noqa: E402
from gnet.ehd import EHDModel, convert  # noqa: E402
from gnet.models import architecture, build_model  # noqa: E402
from gnet.train import TrainConfig, evaluate, train  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny settings for a fast check")
    ap.add_argument("--dim", type=int, default=None, help="code length dim of every EHD layer")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    epochs, dim = (2, 1024) if args.smoke else (15, 4096)
    dim = args.dim or dim

    # 1. Data: the digits set shipped with scikit-learn, scaled to [-1, 1], 10 % of train held out.
    data = load_dataset("digits", val_fraction=0.1, seed=args.seed)
    x_test, y_test = data.test.tensors

    # 2. Train the float G-Net (Adam; the best-validation weights are what we keep).
    specs = architecture("digits", activation="rasu")
    model = build_model(specs, seed=args.seed)
    config = TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=args.seed)
    t0 = time.perf_counter()
    train(model, data.train.tensors, data.val.tensors, config, {"architecture": specs}, progress=False)
    _, float_acc = evaluate(model, x_test, y_test)
    print(f"float G-Net: test accuracy {float_acc:.4f} ({epochs} epochs, {time.perf_counter() - t0:.1f}s)")

    # 3. Convert: dim-bit codes per layer, Gaussian G drawn from `seed`.
    ehd = convert(
        model, dim=dim, embedding="gaussian", seed=args.seed, input_shape=data.input_shape, meta={"dataset": "digits"}
    )
    result = ehd.evaluate(x_test, y_test)
    print(f"EHD G-Net (dim={dim}): test accuracy {result.accuracy:.4f}, {result.images_per_second:.0f} img/s")

    # 4. Save and reload: the file holds the packed codes and the seed, never G itself.
    with tempfile.TemporaryDirectory() as tmp:
        path = ehd.save(Path(tmp) / "digits.ehd")
        size = path.stat().st_size
        again = EHDModel.load(path)
        same = bool(torch.equal(again.predict(x_test), ehd.predict(x_test)))
    print(f"saved {size / 1024:.0f} KiB; reloaded model gives identical predictions: {same}")
    return {
        "float_accuracy": float_acc,
        "ehd_accuracy": result.accuracy,
        "dim": dim,
        "file_bytes": size,
        "reload_identical": same,
        "n_test": len(x_test),
        "n_classes": data.n_classes,
    }


if __name__ == "__main__":
    main()
