"""``gnet convert``, EHD evaluation for ``gnet eval model.ehd``, and ``gnet sweep`` over N."""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from tqdm.auto import tqdm

from gnet.checkpoint import load_model
from gnet.data import load_dataset
from gnet.ehd import convert, load_ehd, save_ehd
from gnet.train import evaluate


def parse_n(text: str) -> int | float | list[int]:
    """'6000' -> 6000; '6000,15000' -> [6000, 15000]; '2.5x' -> 2.5 (a ratio of each layer's fan-in)."""
    text = text.strip()
    try:
        if text.endswith("x"):
            return float(text[:-1])
        if "," in text:
            return [int(v) for v in text.split(",")]
        return int(text)
    except ValueError:
        raise ValueError(f"--n must be an int, a comma list of ints or a ratio like '2.5x', got {text!r}") from None


def parse_per_layer(text: str) -> str | list[str]:
    """'hadamard' -> 'hadamard' (every layer); 'gaussian,hadamard,hadamard' -> one per layer."""
    parts = [t.strip() for t in text.split(",")]
    return parts[0] if len(parts) == 1 else parts


def _model_meta(config: dict) -> dict:
    return {k: config[k] for k in ("input_shape", "n_classes", "dataset", "val_fraction", "data_seed") if k in config}


def cmd_convert(args: argparse.Namespace) -> int:
    model, config = load_model(args.checkpoint)
    ehd = convert(model, n=parse_n(args.n), embedding=parse_per_layer(args.embedding),
                  conv_projection=args.conv_projection, seed=args.seed, precision=parse_per_layer(args.precision),
                  meta=_model_meta(config))
    path = save_ehd(ehd, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB; N per layer {ehd.n_per_layer}, {args.embedding})")
    return 0


def _test_split(name: str | None, meta: dict, data_dir: str | None, limit: int | None):
    name = name or meta.get("dataset")
    if name is None:
        raise ValueError("the model names no dataset; pass --dataset")
    data = load_dataset(name, data_dir, val_fraction=meta.get("val_fraction", 0.1), seed=meta.get("data_seed", 0))
    x, y = data.test.tensors
    if limit is not None:
        x, y = x[:limit], y[:limit]
    return name, x, y


def cmd_eval_ehd(args: argparse.Namespace) -> int:
    ehd = load_ehd(args.model)
    name, x, y = _test_split(args.dataset, ehd.meta, args.data_dir, args.limit)
    r = ehd.evaluate(x, y, batch_size=args.batch_size, progress=not args.quiet)
    print(f"{name} EHD test accuracy {r.accuracy:.4f} on {r.n_items} items, {r.images_per_second:.1f} img/s "
          f"(N per layer {ehd.n_per_layer}, {ehd.meta.get('embedding')})")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    model, config = load_model(args.checkpoint)
    name, x, y = _test_split(args.dataset, config, args.data_dir, args.limit)
    _, float_acc = evaluate(model, x, y)
    ns = [parse_n(v) for v in args.n]
    seeds = list(range(args.seed, args.seed + args.seeds))
    rows = []
    bar = tqdm(total=len(ns) * len(seeds), desc="sweep", disable=args.quiet)
    for n in ns:
        accs = []
        for seed in seeds:
            ehd = convert(model, n=n, embedding=parse_per_layer(args.embedding),
                          conv_projection=args.conv_projection, seed=seed,
                          precision=parse_per_layer(args.precision), meta=_model_meta(config))
            accs.append(ehd.evaluate(x, y, batch_size=args.batch_size).accuracy)
            bar.update()
        rows.append({"n": n, "n_per_layer": ehd.n_per_layer, "mean_n": statistics.mean(ehd.n_per_layer),
                     "accuracy_mean": statistics.mean(accs), "accuracy_std": statistics.pstdev(accs),
                     "accuracies": accs})
        bar.write(f"N={n}: {statistics.mean(accs):.4f} +- {statistics.pstdev(accs):.4f}")
    bar.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"dataset": name, "checkpoint": str(args.checkpoint), "embedding": args.embedding,
              "conv_projection": args.conv_projection, "precision": args.precision, "seeds": seeds,
              "n_test": len(x), "float_accuracy": float_acc, "rows": rows}
    (out / "sweep.json").write_text(json.dumps(result, indent=1))
    plot_sweep(result, out / "sweep.png")
    print(f"float accuracy {float_acc:.4f}; wrote {out / 'sweep.json'} and {out / 'sweep.png'}")
    return 0


def plot_sweep(result: dict, path: Path) -> None:
    """Accuracy (mean +- std over seeds) against mean N, with the float model as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    xs = [r["mean_n"] for r in rows]
    mean = [100 * r["accuracy_mean"] for r in rows]
    std = [100 * r["accuracy_std"] for r in rows]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.errorbar(xs, mean, yerr=std, marker="o", capsize=3, label=f"EHD G-Net ({result['embedding']})")
    ax.axhline(100 * result["float_accuracy"], ls="--", color="k", label="float G-Net")
    ax.set_xlabel("hyperdimension N (mean over layers)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"{result['dataset']}: accuracy vs N ({len(result['seeds'])} seeds, {result['n_test']} test items)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("convert", help="convert a float checkpoint to an EHD model (.ehd)")
    c.add_argument("checkpoint")
    c.add_argument("--n", default="10000", help="N: one int, a comma list per layer, or a fan-in ratio like 2x")
    c.add_argument("--embedding", default="gaussian", help="gaussian | rademacher | orthogonal | hadamard (structured, fast), or a comma list with one per G-layer")
    c.add_argument("--conv-projection", default="shared", choices=("shared", "per_channel"))
    c.add_argument("--precision", default="float32", help="float32 | bfloat16 | int8 (rademacher only), or a comma list with one per G-layer")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True)
    c.set_defaults(func=cmd_convert)

    s = sub.add_parser("sweep", help="EHD accuracy over N and seeds; writes sweep.json and sweep.png")
    s.add_argument("checkpoint")
    s.add_argument("--n", nargs="+", default=["1000", "2000", "4000", "8000"])
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--seed", type=int, default=0, help="first seed")
    s.add_argument("--embedding", default="gaussian", help="gaussian | rademacher | orthogonal | hadamard (structured, fast), or a comma list with one per G-layer")
    s.add_argument("--conv-projection", default="shared", choices=("shared", "per_channel"))
    s.add_argument("--precision", default="float32", help="float32 | bfloat16 | int8 (rademacher only), or a comma list with one per G-layer")
    s.add_argument("--dataset", default=None)
    s.add_argument("--data-dir", default=None)
    s.add_argument("--limit", type=int, default=None, help="use only the first LIMIT test items")
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--out", required=True)
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_sweep)
