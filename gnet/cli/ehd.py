"""``gnet convert`` (a G-Net to ``.ehd``, a BNN to ``.bnn``), ``gnet eval`` of a deployed model (``.ehd``, ``.bnn``,
``.logic``: any file :func:`gnet.deployed.load_deployed` reads), and ``gnet sweep`` over dim."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from gnet.checkpoint import config_family, load_model
from gnet.cli._args import add_dim_argument, dim_value
from gnet.cli._timing import steady_state
from gnet.data import load_test_split
from gnet.deployed import DEPLOYED_EXTENSIONS, DeployedModel, load_deployed
from gnet.distributed import distributed_session, evaluate_sharded, is_main, main_first, sweep_sharded, world_size
from gnet.ehd import EHDModel, convert, parse_dim, sweep
from gnet.plots import plot_sweep
from gnet.train import evaluate
from hdc._validate import check_int
from hdc.io import ContainerError, atomic_write_text, peek_format

EMBEDDING_HELP = (
    "gaussian | rademacher | orthogonal | hadamard (structured, fast), or a comma list with one per G-layer "
    "(default: the --dim preset's, else gaussian)"
)
PRECISION_HELP = (
    "auto (fastest on this CPU) | float32 | bfloat16 | int8 (rademacher only), or a comma list, one per G-layer"
)
PROVENANCE = ("dataset", "val_fraction", "data_seed")  # checkpoint config entries an EHD model keeps in its meta
BNN_PROVENANCE = (*PROVENANCE, "scaling")  # a packed BNN keeps the input scaling too (it differs by method)


def check_limit(limit: int | None, flag: str = "--limit") -> int | None:
    """``--limit``: None (every item) or an int >= 1."""
    return None if limit is None else check_int(limit, flag, minimum=1)


def _writable_ancestor(path: Path, flag: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable directory (else ValueError naming ``flag``)."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"{flag} {path}: {parent} is not a directory")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ValueError(f"{flag} {path}: {parent} is not writable")
            return


def check_out_dir(text: str, flag: str = "--out") -> Path:
    """An output directory: an existing directory, or one that can be created (checked before any work)."""
    path = Path(text)
    if path.exists():
        if not path.is_dir():
            raise ValueError(f"{flag} {path} exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ValueError(f"{flag} {path} is not writable")
    else:
        _writable_ancestor(path, flag)
    return path


def check_out_file(text: str, flag: str = "--out") -> Path:
    """An output file: not an existing directory, under a directory that exists or can be created."""
    path = Path(text)
    if path.is_dir():
        raise ValueError(f"{flag} {path} is a directory; give a file path such as {path / 'model.ehd'}")
    _writable_ancestor(path, flag)
    return path


def make_out_dir(path: Path, flag: str = "--out") -> Path:
    """Create the output directory (and its parents); an OS refusal becomes a ValueError naming ``flag``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{flag} {path}: cannot create the directory ({err.strerror or err})") from None
    return path


def parse_per_layer(text: str) -> str | list[str]:
    """'hadamard' -> 'hadamard' (every layer); 'gaussian,hadamard,hadamard' -> one per layer."""
    parts = [t.strip() for t in text.split(",")]
    return parts[0] if len(parts) == 1 else parts


def _convert_bnn(args: argparse.Namespace, out: Path, model: Any, config: dict[str, Any]) -> int:
    """``gnet convert BNN.pt --out MODEL.bnn``: the packed BNN (:func:`gnet.bnn.convert`)."""
    from gnet.bnn import convert as convert_bnn

    if out.suffix != ".bnn":
        raise ValueError(
            f"{args.checkpoint} is a BNN checkpoint (method {config.get('method')!r}): it converts to a packed BNN, "
            f"not an EHD model; give --out NAME.bnn (the EHD flags --dim, --embedding, ... do not apply)"
        )
    packed = convert_bnn(
        model, input_shape=config.get("input_shape"), meta={k: config[k] for k in BNN_PROVENANCE if k in config}
    )
    try:
        path = packed.save(out)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write the model ({err.strerror or err})") from None
    cost = packed.cost() if packed.input_shape is not None else None
    size = f"{cost.model_bits / 8e3:.1f} kB of weights and thresholds; " if cost else ""
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB; {size}packed {packed.method}, "
        f"{len(packed.layers)} binary layers)"
    )
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    out = check_out_file(args.out)
    model, config = load_model(args.checkpoint)
    family = config_family(config)
    if family == "bnn":
        return _convert_bnn(args, out, model, config)
    if family not in ("gnet", "bnn"):
        raise ValueError(
            f"{args.checkpoint} is a {family} checkpoint: gnet convert turns G-Nets into .ehd and BNNs into .bnn"
            + (" (a DiffLogic network: gnet.logic.io.convert_checkpoint)" if family == "difflogic" else "")
        )
    if family == "gnet" and out.suffix == ".bnn":
        raise ValueError(
            f"{args.checkpoint} is a float G-Net checkpoint: it converts to an EHD model (--out NAME.ehd); "
            f"a .bnn file holds a packed BNN (train one with gnet train --method bnn)"
        )
    ehd = convert(  # other families are refused by gnet.ehd.convert, which names their converter
        model,
        dim=parse_dim(dim_value(args)),
        embedding=None if args.embedding is None else parse_per_layer(args.embedding),
        conv_projection=args.conv_projection,
        seed=args.seed,
        precision=parse_per_layer(args.precision),
        meta={k: config[k] for k in PROVENANCE if k in config},
        input_shape=config.get("input_shape"),
    )
    try:
        path = ehd.save(out)
    except OSError as err:
        raise ValueError(f"--out {out}: cannot write the model ({err.strerror or err})") from None
    size_mb = path.stat().st_size / 1e6
    print(f"wrote {path} ({size_mb:.2f} MB; dim per layer {ehd.dim_per_layer}, {ehd.meta['embedding']})")
    return 0


def is_deployed_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a deployed model (by its extension, so that a damaged one gets its loader's error)
    or is a container file of any format, rather than a torch checkpoint."""
    if Path(path).suffix in DEPLOYED_EXTENSIONS:
        return True
    try:
        peek_format(path)
    except (ContainerError, OSError):
        return False
    return True


def cmd_eval_ehd(args: argparse.Namespace) -> int:
    """``gnet eval MODEL`` of a deployed model of any family (:func:`gnet.deployed.load_deployed`: ``.ehd``,
    ``.bnn``, ``.logic``); under torchrun with several processes (or ``--distributed``) the test items are split
    over the ranks (:func:`gnet.distributed.evaluate_sharded`) and rank 0 prints."""
    limit = check_limit(args.limit)
    check_int(args.batch_size, "--batch-size", minimum=1)
    with distributed_session(getattr(args, "distributed", False)) as sharded:
        model = load_deployed(args.model)
        with main_first():  # rank 0 fetches the data set first, so that the ranks do not download it at once
            name, x, y = load_test_split(getattr(model, "meta", None) or {}, args.dataset, args.data_dir, limit)
        label, about = _describe(model)
        if sharded:
            r = evaluate_sharded(lambda xs: model.predict(xs, batch_size=args.batch_size), x, y)
            if is_main():
                print(
                    f"{name} {label} test accuracy {r.accuracy:.4f} on {r.n_items} items, {r.n_items / r.seconds:.1f} "
                    f"img/s on {world_size()} ranks, warm-up included ({about})"
                )
            return 0
        if isinstance(model, EHDModel):
            e, timing = steady_state(lambda k: model.evaluate(x[:k], y[:k], args.batch_size, not args.quiet), len(x))
            accuracy, n_items = e.accuracy, e.n_items
        else:
            pred, timing = steady_state(lambda k: model.predict(x[:k], batch_size=args.batch_size), len(x))
            accuracy, n_items = float((np.asarray(pred) == y.numpy()).mean()), len(x)
        print(
            f"{name} {label} test accuracy {accuracy:.4f} on {n_items} items, {timing.images_per_second:.1f} img/s "
            f"steady state ({about}); one-off warm-up {timing.warmup_seconds:.1f}s not timed"
        )
    return 0


def _describe(model: DeployedModel) -> tuple[str, str]:
    """(label, settings) printed by ``gnet eval``."""
    if isinstance(model, EHDModel):
        return "EHD", (
            f"dim per layer {model.dim_per_layer}, {model.meta.get('embedding')}, "
            f"precision {model.meta.get('precision', 'float32')}"
        )
    meta = getattr(model, "meta", None) or {}
    about = f"method {meta['method']}" if "method" in meta else model.family
    try:
        cost = model.cost()
    except ValueError:  # a model whose shapes are unknown still evaluates
        return model.family.upper(), about
    return model.family.upper(), (
        f"{about}; {cost.model_bits / 8e3:.1f} kB model, {cost.bit_ops_per_image / 1e6:.2f} M bit ops and "
        f"{cost.float_macs_per_image / 1e6:.3f} M float MACs per image"
    )


def cmd_sweep(args: argparse.Namespace) -> int:
    """``gnet sweep``; under torchrun with several processes (or ``--distributed``) the (dim, seed) points are dealt
    to the ranks (:func:`gnet.distributed.sweep_sharded`); rank 0 prints and writes the same files as one process."""
    seeds = check_int(args.seeds, "--seeds", minimum=1)
    limit = check_limit(args.limit)
    check_int(args.batch_size, "--batch-size", minimum=1)
    first = check_int(args.seed, "--seed", minimum=0)
    out = check_out_dir(args.out)
    with distributed_session(args.distributed) as sharded:
        model, config = load_model(args.checkpoint)
        with main_first():  # rank 0 fetches the data set first, so that the ranks do not download it at once
            name, x, y = load_test_split(config, args.dataset, args.data_dir, limit)
        dims = [parse_dim(v) for v in dim_value(args)]
        _, float_acc = evaluate(model, x, y)  # every rank: the items are split under a process group
        result = (sweep_sharded if sharded else sweep)(  # one process: one progress bar over every point
            model,
            x,
            y,
            dims,
            range(first, first + seeds),
            embedding=parse_per_layer(args.embedding),
            conv_projection=args.conv_projection,
            precision=parse_per_layer(args.precision),
            batch_size=args.batch_size,
            float_accuracy=float_acc,
            progress=not args.quiet,
        )
        if not is_main():
            return 0
        for row in result.rows:
            print(f"dim={row.dim}: {row.accuracy_mean:.4f} +- {row.accuracy_std:.4f}")
        make_out_dir(out)
        record = {"dataset": name, "checkpoint": str(args.checkpoint), **result.to_dict()}
        atomic_write_text(out / "sweep.json", json.dumps(record, indent=1))
        plot_sweep(record, out / "sweep.png")
        print(f"float accuracy {float_acc:.4f}; wrote {out / 'sweep.json'} and {out / 'sweep.png'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "convert",
        help="convert a float G-Net checkpoint to an EHD model (.ehd), or a BNN checkpoint to a packed BNN (.bnn)",
    )
    c.add_argument("checkpoint")
    add_dim_argument(
        c,
        "10000",
        "code length dim: one int, a comma list per layer, a fan-in ratio like 2x, or a preset (mnist-paper, "
        "mnist-fast: gnet.ehd.DIM_PRESETS)",
    )
    c.add_argument("--embedding", default=None, help=EMBEDDING_HELP)
    c.add_argument("--conv-projection", default="shared", choices=("shared", "per_channel"))
    c.add_argument("--precision", default="auto", help=PRECISION_HELP)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", required=True)
    c.set_defaults(func=cmd_convert)

    s = sub.add_parser("sweep", help="EHD accuracy over dim and seeds; writes sweep.json and sweep.png")
    s.add_argument("checkpoint")
    add_dim_argument(s, ["1000", "2000", "4000", "8000"], "dim settings to sweep (each as for convert)", nargs="+")
    s.add_argument("--seeds", type=int, default=3)
    s.add_argument("--seed", type=int, default=0, help="first seed")
    s.add_argument("--embedding", default="gaussian", help=EMBEDDING_HELP)
    s.add_argument("--conv-projection", default="shared", choices=("shared", "per_channel"))
    s.add_argument("--precision", default="auto", help=PRECISION_HELP)
    s.add_argument("--dataset", default=None)
    s.add_argument("--data-dir", default=None)
    s.add_argument("--limit", type=int, default=None, help="use only the first LIMIT test items")
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--out", required=True)
    s.add_argument("--quiet", action="store_true")
    s.add_argument(
        "--distributed",
        action="store_true",
        help="under torchrun: deal the (dim, seed) points to the ranks (on by itself when torchrun starts more than "
        "one process); rank 0 writes the files; see docs/distributed.md",
    )
    s.set_defaults(func=cmd_sweep)
