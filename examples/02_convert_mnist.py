"""Convert an MNIST G-Net to an EHD G-Net at the paper's code lengths dim = (6000, 15000, 15000, 14000) (its N).

    PYTHONPATH=. python3 examples/02_convert_mnist.py --checkpoint results/models/mnist_rasu.pt   # a trained model
    PYTHONPATH=. python3 examples/02_convert_mnist.py            # the committed model (a quick one if it is missing)
    PYTHONPATH=. python3 examples/02_convert_mnist.py --smoke    # tiny (what the tests run)

Needs the MNIST IDX files (see hdc.datasets.search_places; e.g. ../shared/datasets/mnist or $GNET_MNIST_DIR).
Without --checkpoint (and without results/models/mnist_rasu.pt) it trains the paper's MNIST net for one epoch on a
subset, so the float accuracy is lower than a full run's 99.3 %. The EHD model is evaluated on the first
--limit test images (EHD inference at these dims runs at tens of images per second per core).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gnet.checkpoint import load_model  # noqa: E402
from gnet.data import load_dataset  # noqa: E402
from gnet.ehd import EHDModel, convert  # noqa: E402
from gnet.models import architecture, build_model  # noqa: E402
from gnet.train import TrainConfig, evaluate, train  # noqa: E402

PAPER_DIM = [6000, 15000, 15000, 14000]
DEFAULT_CHECKPOINT = REPO / "results" / "models" / "mnist_rasu.pt"  # committed: the 99.37 % float model


def quick_model(data, n_train: int, seed: int) -> torch.nn.Module:
    """The paper's MNIST net, trained for one epoch on the first n_train training images."""
    specs = architecture("mnist", activation="rasu")
    model = build_model(specs, seed=seed)
    x, y = data.train.tensors
    x_val, y_val = data.val.tensors
    config = TrainConfig(epochs=1, batch_size=64, lr=3e-3, seed=seed)
    train(
        model, (x[:n_train], y[:n_train]), (x_val[:500], y_val[:500]), config, {"architecture": specs}, progress=False
    )
    return model.eval()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--checkpoint", default=None, help="float MNIST checkpoint (.pt); default results/models/mnist_rasu.pt"
    )
    ap.add_argument(
        "--dim", default=None, help="comma list of dim per layer (default: the paper's 6000,15000,15000,14000)"
    )
    ap.add_argument("--embedding", default="rademacher", choices=("gaussian", "rademacher", "orthogonal", "hadamard"))
    ap.add_argument("--limit", type=int, default=None, help="test images to evaluate (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smoke", action="store_true", help="tiny settings for a fast check")
    args = ap.parse_args(argv)
    dim = [int(v) for v in args.dim.split(",")] if args.dim else ([1024] * 4 if args.smoke else PAPER_DIM)
    limit = args.limit or (64 if args.smoke else 300)

    data = load_dataset("mnist", val_fraction=2000 / 60000, seed=0)  # the paper's 58,000 / 2,000 / 10,000
    ckpt = Path(args.checkpoint) if args.checkpoint else (None if args.smoke else DEFAULT_CHECKPOINT)
    t0 = time.perf_counter()
    if ckpt is not None and ckpt.is_file():
        model, _ = load_model(ckpt)
        source = str(ckpt)
    elif args.checkpoint:
        raise FileNotFoundError(f"checkpoint not found: {ckpt}")
    else:
        n_train = 2048 if args.smoke else 12000
        model = quick_model(data, n_train, args.seed)
        source = f"trained 1 epoch on {n_train} images"
    print(f"float G-Net: {source} ({time.perf_counter() - t0:.1f}s)")

    x, y = data.test.tensors
    x, y = x[:limit], y[:limit]
    _, float_acc = evaluate(model, x, y)
    ehd = convert(
        model,
        dim=dim,
        embedding=args.embedding,
        seed=args.seed,
        input_shape=data.input_shape,
        meta={"dataset": "mnist"},
    )
    r = ehd.evaluate(x, y, batch_size=64)
    print(
        f"first {limit} test images: float {float_acc:.4f}, EHD {r.accuracy:.4f} "
        f"(dim per layer {ehd.dim_per_layer}, {args.embedding} G, {r.images_per_second:.1f} img/s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = ehd.save(Path(tmp) / "mnist.ehd")
        size = path.stat().st_size
        same = bool(torch.equal(EHDModel.load(path).predict(x[:8]), ehd.predict(x[:8])))
    float_bytes = sum(p.numel() * 4 for p in model.parameters())
    print(
        f".ehd file {size / 1e6:.2f} MB of packed weight codes (float32 weights: {float_bytes / 1e6:.2f} MB); "
        f"reload identical: {same}"
    )
    return {
        "float_accuracy": float_acc,
        "ehd_accuracy": r.accuracy,
        "dim_per_layer": ehd.dim_per_layer,
        "n_test": limit,
        "file_bytes": size,
        "reload_identical": same,
        "source": source,
    }


if __name__ == "__main__":
    main()
