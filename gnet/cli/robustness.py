"""``gnet robustness MODEL``: accuracy under bit faults over a grid of rates and seeds, JSON + PNG curves.

An ``.ehd`` model runs the EHD sweep (:func:`gnet.robustness.robustness_sweep`: targets model / data / both, layers,
scope, sampling). Any other deployed model (``.bnn``, ``.logic``) runs the generic sweep over its own fault targets
(:func:`gnet.robustness_generic.deployed_sweep`; ``--target`` one of ``model.fault_targets()`` or ``all``, the
default). With ``--compare OTHER`` both models are swept with the same settings and drawn on one plot (e.g. RASU vs
TASU, or a BNN vs a logic circuit).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gnet.cli.ehd import check_limit, check_out_dir, make_out_dir
from gnet.data import load_test_split
from gnet.deployed import DeployedModel, load_deployed
from gnet.ehd import EHDModel
from gnet.ehd.io import FORMAT as EHD_FORMAT
from gnet.plots import plot_robustness
from gnet.robustness import TARGETS, p_grid, robustness_sweep
from gnet.robustness_generic import check_targets, deployed_sweep, plot_deployed_robustness
from hdc._validate import check_choice, check_int
from hdc.faults import FAULT_KINDS, SAMPLINGS, SCOPES
from hdc.io import atomic_write_text, peek_format


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
    if peek_format(args.model)[0] != EHD_FORMAT:
        return _cmd_deployed(args, ps, list(range(first_seed, first_seed + n_seeds)), limit, out)
    args.target = check_choice("model" if args.target is None else args.target, TARGETS, "--target")
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


def _deployed(path: str) -> DeployedModel:
    model = load_deployed(path)
    if isinstance(model, EHDModel):
        raise ValueError(f"{path} is an EHD model: the EHD sweep compares EHD models only; sweep it on its own")
    if not callable(getattr(model, "with_faults", None)):
        raise ValueError(f"{path}: a {type(model).__name__} does not offer with_faults (gnet.deployed.DeployedModel)")
    return model


def _cmd_deployed(args: argparse.Namespace, ps: list[float], seeds: list[int], limit: int | None, out: Path) -> int:
    """The generic sweep of non-EHD deployed models (see the module docstring)."""
    ehd_only = {"--layers": args.layers != "all", "--scope": args.scope != "row"}
    ehd_only["--sampling"] = args.sampling != "without_replacement"
    for flag in [f for f, given in ehd_only.items() if given]:
        raise ValueError(f"{flag} applies to EHD models only; {args.model} is a {peek_format(args.model)[0]} file")
    paths = [args.model] + ([args.compare] if args.compare else [])
    models = [_deployed(p) for p in paths]
    metas = [getattr(m, "meta", None) or {} for m in models]
    name, x, y = load_test_split(metas[0], args.dataset, args.data_dir, limit)
    for path, meta in zip(paths[1:], metas[1:], strict=False):
        other = meta.get("dataset")
        if args.dataset is None and other is not None and other != name:
            raise ValueError(f"{path} was converted for dataset {other!r}, not {name!r}; pass --dataset to override")
    targets = [check_targets(m, args.target) for m in models]  # every model must offer the target asked for
    labels = [_label(m) for m in models]
    if len(set(labels)) < len(labels):
        labels = [f"{label} ({Path(p).stem})" for label, p in zip(labels, paths, strict=True)]
    entries: list[dict[str, Any]] = []
    for path, model, label, chosen in zip(paths, models, labels, targets, strict=True):
        sweep = deployed_sweep(
            model, x, y, ps, seeds, targets=chosen, kind=args.kind, batch_size=args.batch_size, progress=not args.quiet
        )
        entries.append({"label": label, "path": str(path), **sweep})
        if not args.quiet:
            for target, rows in sweep["targets"].items():
                for row in rows:
                    print(
                        f"{label} {target} p={row['p']:.3f}: {100 * row['accuracy_mean']:6.2f} +- "
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
    plot_deployed_robustness(result, out / "robustness.png")
    print(f"wrote {out / 'robustness.json'} and {out / 'robustness.png'}")
    return 0


def _label(model: DeployedModel) -> str:
    """ "BNN bnn++", "LOGIC", ...: the family and, where the model keeps one, its training method."""
    method = (getattr(model, "meta", None) or {}).get("method")
    return model.family.upper() + (f" {method}" if method else "")


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "robustness", help="accuracy of deployed models (.ehd, .bnn, .logic) under bit faults; robustness.json/.png"
    )
    r.add_argument("model", help="a deployed model: .ehd, .bnn or .logic")
    r.add_argument("--compare", default=None, metavar="OTHER", help="a second model drawn on the same plot")
    r.add_argument("--dataset", default=None, help="dataset name (default: the one stored in the model)")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--p", default="0:0.5:0.05", help="rates: 'start:stop:step' (stop included) or '0,0.1,0.35'")
    r.add_argument(
        "--target",
        default=None,
        help="EHD: model = weight codes (default), data = activation codes at inference, both; other families: one "
        "of the model's fault targets (.bnn: weights, activations; .logic: gate_outputs, inputs, gate_ids) or all "
        "(default)",
    )
    r.add_argument("--layers", default="all", help="EHD only: 'all' or layer indices like 0,1,-1 (-1 = classifier)")
    r.add_argument("--kind", default="flip", choices=FAULT_KINDS)
    r.add_argument(
        "--scope",
        default="row",
        choices=SCOPES,
        help="EHD only: row: exactly round(p*N) bits of every code; array: round(p*bits) over a layer's codes",
    )
    r.add_argument(
        "--sampling",
        default="without_replacement",
        choices=SAMPLINGS,
        help="EHD only: with_replacement reproduces the paper's protocol (fewer distinct bits than p)",
    )
    r.add_argument("--seeds", type=int, default=5, help="number of fault seeds per rate")
    r.add_argument("--seed", type=int, default=0, help="first seed")
    r.add_argument("--limit", type=int, default=None, help="use only the first LIMIT test items")
    r.add_argument("--batch-size", type=int, default=256)
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_robustness)
