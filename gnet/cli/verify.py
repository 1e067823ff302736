"""``gnet verify``: measure the theory on synthetic vectors or on a trained G-Net, and write a report.

gnet verify --synthetic --out results/verify/synthetic
gnet verify --model runs/digits/best.pt --out results/verify/digits --dim 256,1024,4096
gnet verify --model runs/digits-bnn/best.pt --out results/verify/digits-bnn     # a BNN: Anderson & Berg
gnet verify --dim-required --t 0.05 --delta 0.01 --units 512 --patches 196
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from hdc.theory import KINDS, required_n

if TYPE_CHECKING:
    from hdc.theory.report import Report


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"expected a comma list of integers, got {text!r}") from None
    if not values:
        raise ValueError(f"expected a comma list of integers, got {text!r}")
    return values


def _deprecated(args: argparse.Namespace, old: str, new: str) -> None:
    """Copy a deprecated flag's value onto its new name, with a warning line on stderr."""
    value = getattr(args, f"deprecated_{old.lstrip('-').replace('-', '_')}")
    if value is not None:
        print(f"gnet verify: warning: {old} is deprecated, use {new}", file=sys.stderr)
        setattr(args, new.lstrip("-").replace("-", "_"), value)


def _summary(rep: Report) -> int:
    bad = [v for v in rep.verdicts if v.ok is False]
    checked = [v for v in rep.verdicts if v.ok is not None]
    print(
        f"wrote {rep.out_dir / 'report.md'}, report.json and {len(list(rep.out_dir.glob('*.png')))} plots: "
        f"{len(checked) - len(bad)}/{len(checked)} checked claims agree, "
        f"{len(rep.verdicts) - len(checked)} reported"
    )
    for v in bad:
        print(f"  DISAGREES: {v.claim}: measured {v.measured}; theory {v.theory}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    _deprecated(args, "--n", "--dim")
    _deprecated(args, "--n-required", "--dim-required")
    if args.dim_required:
        dim = required_n(args.t, args.delta, args.units, args.patches)
        print(
            f"N >= pi^2/(2 t^2) log(2 m P / delta) = {dim} "
            f"(t={args.t:g}, delta={args.delta:g}, m={args.units}, P={args.patches})"
        )
        return 0
    if (args.model is None) == (not args.synthetic):
        raise ValueError("give exactly one of --synthetic or --model CHECKPOINT (or --dim-required)")
    if args.out is None:
        raise ValueError("--out DIR is required")
    if (Path(args.out) / "report.json").exists() and not args.overwrite:  # before any work
        raise ValueError(f"{args.out} already holds a report; pass --overwrite to replace it, or choose another --out")
    if args.synthetic:
        from hdc.theory.synthetic import run_synthetic

        return _summary(run_synthetic(args.out, seed=args.seed, quick=args.quick, progress=not args.quiet))

    from gnet.checkpoint import config_family
    from gnet.cli.train import load_model_and_data
    from gnet.verify import run_model_report

    model, config, data = load_model_and_data(args)
    config = {**config, "dataset": config.get("dataset") or data.name}  # a compare checkpoint names none: --dataset
    x, y = data.test.tensors
    family = config_family(config)
    if family == "bnn":
        from gnet.verify.bnn_report import run_bnn_report

        return _summary(
            run_bnn_report(
                model,  # type: ignore[arg-type]  # a bnn checkpoint rebuilds a gnet.bnn.BNN
                config,
                x,
                args.out,
                title=f"Anderson & Berg geometry: {data.name} BNN ({config.get('method')}, {Path(args.model).name})",
                n_items=args.items,
                seed=args.seed,
                quick=args.quick,
            )
        )
    if family != "gnet":
        raise ValueError(
            f"gnet verify --model measures G-Nets (the EHD theory) and BNNs (Anderson & Berg); {args.model} is a "
            f"{family} checkpoint"
        )
    rep = run_model_report(
        model,
        config,
        x,
        y,
        args.out,
        title=f"Theory verification: {data.name} G-Net ({Path(args.model).name})",
        dims=_ints(args.dim),
        seeds=range(args.seed, args.seed + args.seeds),
        embedding=args.embedding,
        t=args.t,
        delta=args.delta,
        n_draws=args.draws,
        max_units=args.max_units,
        max_patches=args.max_patches,
        layer_items=args.layer_items,
        n_items=args.items,
        seed=args.seed,
        quick=args.quick,
        progress=not args.quiet,
    )
    return _summary(rep)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify",
        help="measure Grothendieck / concentration / binarisation theory; write a report with plots",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = p.add_argument_group("what to verify")
    what.add_argument("--synthetic", action="store_true", help="synthetic vectors only (about a minute)")
    what.add_argument(
        "--model",
        metavar="CHECKPOINT",
        help="a checkpoint from gnet train: a float G-Net (the EHD theory) or a BNN (Anderson & Berg's geometry)",
    )
    what.add_argument(
        "--dim-required",
        action="store_true",
        help="print the code length N that makes m*P estimates within t with probability 1 - delta",
    )
    what.add_argument(
        "--n-required",
        dest="deprecated_n_required",
        action="store_const",
        const=True,
        default=None,
        help=argparse.SUPPRESS,
    )
    p.add_argument("--out", metavar="DIR", help="output directory for report.md, report.json and PNGs")
    p.add_argument("--dataset", help="dataset of the test inputs (default: the checkpoint's)")
    p.add_argument("--data-dir", default=None, help="directory holding the dataset files (e.g. MNIST IDX)")
    p.add_argument(
        "--items",
        type=int,
        default=200,
        help="test items for the network-level check, or a BNN's geometry (default 200)",
    )
    p.add_argument("--layer-items", type=int, default=16, help="items whose patches feed the per-layer EHD check")
    p.add_argument(
        "--dim", default="256,1024,4096", help="comma list of code lengths N for the EHD sweep (default 256,1024,4096)"
    )
    p.add_argument("--n", dest="deprecated_n", default=None, help=argparse.SUPPRESS)
    p.add_argument("--seeds", type=int, default=2, help="draws of G (conversion seeds) per N (default 2)")
    p.add_argument("--embedding", default="gaussian", choices=KINDS)
    p.add_argument("--t", type=float, default=0.15, help="error threshold t on z = arcsin(rho), radians")
    p.add_argument("--delta", type=float, default=0.05, help="failure probability for the N-required calculator")
    p.add_argument("--units", type=int, default=1, help="units m for --dim-required")
    p.add_argument("--patches", type=int, default=1, help="patches P per unit for --dim-required")
    p.add_argument("--draws", type=int, default=50, help="draws of G in the per-layer concentration check")
    p.add_argument("--max-units", type=int, default=64, help="units sampled per layer for the concentration check")
    p.add_argument("--max-patches", type=int, default=128, help="real patches sampled per layer for it")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--overwrite", action="store_true", help="replace the report already in --out")
    p.set_defaults(func=cmd_verify)
