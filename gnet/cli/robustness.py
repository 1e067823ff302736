"""``gnet robustness MODEL.ehd``: accuracy under bit faults over a grid of rates and seeds, JSON + PNG curves.

With ``--compare OTHER.ehd`` both models are swept with the same settings and drawn on one plot (e.g. RASU vs
TASU).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gnet.cli.ehd import check_limit, check_out_dir, make_out_dir
from gnet.data import load_test_split
from gnet.ehd import EHDModel
from gnet.plots import plot_robustness
from gnet.robustness import TARGETS, p_grid, robustness_sweep
from hdc._validate import check_int
from hdc.faults import FAULT_KINDS, SAMPLINGS, SCOPES
from hdc.io import atomic_write_text


def parse_layers(text: str) -> list[int] | None:
    """'all' -> None; '0,1,-1' -> [0, 1, -1] (indices into the model's code-carrying layers)."""
    text = text.strip()
    if text == "all":
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--layers must be 'all' or a comma list of layer indices like 0,1,-1, got {text!r}") from None
    return values


def model_label(model: EHDModel, path: str | Path) -> str:
    """ "RASU" or "TASU" when every hidden layer uses that activation, else the file name."""
    acts = {layer.activation for layer in model.layers[:-1]}
    only = next(iter(acts)) if len(acts) == 1 else None
    return only.upper() if only in ("rasu", "tasu") and only is not None else Path(path).stem


def cmd_robustness(args: argparse.Namespace) -> int:
    ps = p_grid(args.p)
    n_seeds = check_int(args.seeds, "--seeds", minimum=1)
    first_seed = check_int(args.seed, "--seed", minimum=0)
    limit = check_limit(args.limit)
    check_int(args.batch_size, "--batch-size", minimum=1)
    out = check_out_dir(args.out)
    layers = parse_layers(args.layers)
    paths = [args.model] + ([args.compare] if args.compare else [])
    models = [EHDModel.load(p) for p in paths]
    name, x, y = load_test_split(models[0].meta, args.dataset, args.data_dir, limit)
    for path, model in zip(paths[1:], models[1:], strict=False):
        other = model.meta.get("dataset")
        if args.dataset is None and other is not None and other != name:
            raise ValueError(f"{path} was converted for dataset {other!r}, not {name!r}; pass --dataset to override")
    seeds = list(range(first_seed, first_seed + n_seeds))
    labels = [model_label(m, p) for m, p in zip(models, paths, strict=False)]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({Path(p).stem})" for label, p in zip(labels, paths, strict=False)]
    entries = []
    for path, model, label in zip(paths, models, labels, strict=False):
        sweep = robustness_sweep(
            model,
            x,
            y,
            ps,
            seeds,
            target=args.target,
            layers=layers,
            kind=args.kind,
            scope=args.scope,
            sampling=args.sampling,
            batch_size=args.batch_size,
            progress=not args.quiet,
        )
        entries.append({"label": label, "path": str(path), **sweep})
        if not args.quiet:
            for row in sweep["rows"]:
                print(
                    f"{label:>6} p={row['p']:.3f}: {100 * row['accuracy_mean']:6.2f} +- "
                    f"{100 * row['accuracy_std']:.2f} %"
                )
    result = {
        "dataset": name,
        "n_classes": models[0].n_classes,
        "args": {k: v for k, v in vars(args).items() if k != "func"},
        "models": entries,
    }
    make_out_dir(out)
    atomic_write_text(out / "robustness.json", json.dumps(result, indent=1))
    plot_robustness(result, out / "robustness.png")
    print(f"wrote {out / 'robustness.json'} and {out / 'robustness.png'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("robustness", help="accuracy of EHD models under bit faults; writes robustness.json/.png")
    r.add_argument("model", help="an .ehd model")
    r.add_argument("--compare", default=None, metavar="OTHER.ehd", help="a second model drawn on the same plot")
    r.add_argument("--dataset", default=None, help="dataset name (default: the one stored in the model)")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--p", default="0:0.5:0.05", help="rates: 'start:stop:step' (stop included) or '0,0.1,0.35'")
    r.add_argument(
        "--target",
        default="model",
        choices=TARGETS,
        help="model = weight codes, data = activation codes at inference, both",
    )
    r.add_argument("--layers", default="all", help="'all' or layer indices like 0,1,-1 (-1 = classifier)")
    r.add_argument("--kind", default="flip", choices=FAULT_KINDS)
    r.add_argument(
        "--scope",
        default="row",
        choices=SCOPES,
        help="row: exactly round(p*N) bits of every code; array: round(p*bits) over a layer's codes",
    )
    r.add_argument(
        "--sampling",
        default="without_replacement",
        choices=SAMPLINGS,
        help="with_replacement reproduces the paper's protocol (fewer distinct bits than p)",
    )
    r.add_argument("--seeds", type=int, default=5, help="number of fault seeds per rate")
    r.add_argument("--seed", type=int, default=0, help="first seed")
    r.add_argument("--limit", type=int, default=None, help="use only the first LIMIT test items")
    r.add_argument("--batch-size", type=int, default=256)
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_robustness)
