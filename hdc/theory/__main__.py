"""``python -m hdc.theory --out DIR [--quick]``: the synthetic suite of :mod:`hdc.theory` without gnet."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, run :func:`hdc.theory.synthetic.run_synthetic` and print which claims disagree."""
    from hdc.theory.synthetic import run_synthetic

    ap = argparse.ArgumentParser(prog="python -m hdc.theory", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output directory for report.md, report.json and PNGs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small Monte Carlo sizes (seconds)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    rep = run_synthetic(args.out, seed=args.seed, quick=args.quick, progress=not args.no_progress)
    bad = [v for v in rep.verdicts if v.ok is False]
    print(f"wrote {rep.out_dir / 'report.md'}: {len(rep.verdicts) - len(bad)}/{len(rep.verdicts)} claims agree")
    for v in bad:
        print(f"  DISAGREES: {v.claim}: measured {v.measured}, theory {v.theory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
