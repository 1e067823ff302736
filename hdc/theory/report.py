"""Reports for :mod:`hdc.theory` measurements: verdicts (claim / measured / theory / agrees) and the writer of
``report.md`` + ``report.json``.

Figures come from :mod:`hdc.theory.plots`; the synthetic suite that fills a report is
:func:`hdc.theory.synthetic.run_synthetic`. The model-level report (:mod:`gnet.verify`) reuses this module.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from hdc.theory.angles import AngleCheck, DotProductCheck, RotationCheck
from hdc.theory.concentration import LayerConcentrationCheck, UnitConcentrationCheck
from hdc.theory.formulas import angle_delta_method, distribution_moments, required_n
from hdc.theory.grothendieck import GrothendieckCheck

__all__ = [
    "Z_TOL",
    "Report",
    "Verdict",
    "angle_verdict",
    "dot_product_verdict",
    "fmt",
    "grothendieck_verdict",
    "layer_verdict",
    "required_n_table",
    "rotation_verdict",
    "timed",
    "to_jsonable",
    "unit_verdict",
]

Z_TOL = 4.0  # report verdicts: a measurement "agrees" when within 4 Monte Carlo standard errors

_T = TypeVar("_T")


# ============================================================================================ report container
@dataclasses.dataclass
class Verdict:
    """One row of a report's summary table. ``ok`` is None for a measurement that is reported beside its formula
    without a pass/fail tolerance (where no tolerance can be derived, e.g. trained weights are not i.i.d.)."""

    claim: str
    measured: str
    theory: str
    ok: bool | None
    note: str = ""


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, numpy scalars/arrays and non-finite floats -> strict-JSON values (NaN/inf become None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj


class Report:
    """Collects sections (markdown, figures, verdicts, raw data) and writes ``report.md`` + ``report.json``."""

    def __init__(self, out_dir: str | Path, title: str, intro: str = "") -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.title = title
        self.intro = intro
        self.sections: list[dict[str, Any]] = []
        self.verdicts: list[Verdict] = []
        self.meta: dict[str, Any] = {}

    def figure_path(self, name: str) -> Path:
        """Where the PNG of figure ``name`` goes (inside the report's directory)."""
        return self.out_dir / f"{name}.png"

    def add(
        self,
        key: str,
        heading: str,
        text: str,
        figures: Sequence[Path] = (),
        data: Any = None,
        verdicts: Sequence[Verdict] = (),
        seconds: float | None = None,
    ) -> None:
        """Append a section: markdown ``text``, figure files, raw ``data`` (dataclasses become JSON) and verdicts."""
        self.sections.append(
            {
                "key": key,
                "heading": heading,
                "text": text,
                "figures": [Path(f).name for f in figures],
                "data": data,
                "seconds": seconds,
            }
        )
        self.verdicts.extend(verdicts)

    def write(self) -> tuple[Path, Path]:
        """Write ``report.md`` (summary table of verdicts, then the sections) and strict ``report.json``."""
        lines = [f"# {self.title}", ""]
        if self.intro:
            lines += [self.intro, ""]
        if self.verdicts:
            lines += ["| claim | measured | theory | agrees |", "|---|---|---|---|"]
            for v in self.verdicts:
                mark = "reported" if v.ok is None else ("yes" if v.ok else "**no**")
                note = f" ({v.note})" if v.note else ""
                lines.append(f"| {v.claim} | {v.measured} | {v.theory} | {mark}{note} |")
            lines.append("")
        for sec in self.sections:
            lines += [f"## {sec['heading']}", "", sec["text"].strip(), ""]
            for fig in sec["figures"]:
                lines += [f"![{sec['key']}]({fig})", ""]
            if sec["seconds"] is not None:
                lines += [f"_Measured in {sec['seconds']:.1f} s._", ""]
        md = self.out_dir / "report.md"
        md.write_text("\n".join(lines))
        payload = {
            "title": self.title,
            "meta": self.meta,
            "verdicts": [dataclasses.asdict(v) for v in self.verdicts],
            "sections": {
                s["key"]: {"figures": s["figures"], "seconds": s["seconds"], "data": s["data"]} for s in self.sections
            },
        }
        js = self.out_dir / "report.json"
        js.write_text(json.dumps(to_jsonable(payload), indent=1, allow_nan=False))
        return md, js


def fmt(x: float | None, digits: int = 3) -> str:
    """A compact number for report tables ("n/a" for None or non-finite)."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.2e}"
    return f"{x:.{digits}g}"


def timed(fn: Callable[[], _T]) -> tuple[_T, float]:
    """``(fn(), seconds it took)``: the measuring time each report section states."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


# ============================================================================================ 1. Grothendieck
def grothendieck_verdict(check: GrothendieckCheck) -> list[Verdict]:
    """Mean (vs identity, or vs the exact Rademacher expectation) and spread (vs exact variance)."""
    mean_n = np.array(check.mean)[:, -1]
    se = np.array(check.theory_std)[:, -1] / math.sqrt(check.n_draws)
    label = f"{check.kind} G, {check.layout} vectors"
    out = []
    if check.exact_mean is not None:
        z = np.abs(mean_n - np.array(check.exact_mean)) / np.maximum(se, 1e-12)
        out.append(
            Verdict(
                f"Rademacher, sparse: mean = exact enumerated value ({label})",
                f"max |meas - exact| = {fmt(np.max(np.abs(mean_n - check.exact_mean)))}",
                f"within {Z_TOL:g} se",
                bool(z.max() <= Z_TOL),
                f"bias vs (2/pi) arcsin rho up to {fmt(np.max(np.abs(check.bias)))}",
            )
        )
    else:
        allowance = 0.0 if check.kind == "gaussian" else np.array(check.delocalisation)
        ok = np.abs(check.bias) <= Z_TOL * se + allowance
        out.append(
            Verdict(
                f"E sign(gu)sign(gv) = (2/pi) arcsin rho ({label})",
                f"max |bias| = {fmt(np.max(np.abs(check.bias)))} at N={check.dims[-1]}",
                f"0 (± {Z_TOL:g} se = {fmt(Z_TOL * se.max())})"
                + ("" if check.kind == "gaussian" else " + sum u_i^4 allowance"),
                bool(ok.all()),
            )
        )
    ratio = np.array(check.std) / np.array(check.theory_std)
    tol = Z_TOL * math.sqrt(1.0 / (2 * (check.n_draws - 1)))  # sd of a sample-sd ratio ~ 1/sqrt(2(D-1))
    valid = np.array(check.theory_std) > 0
    out.append(
        Verdict(
            f"Var = (1 - mu^2)/N ({label})",
            f"std ratio meas/theory in [{fmt(ratio[valid].min())}, {fmt(ratio[valid].max())}]",
            f"1 ± {fmt(tol)}",
            bool((np.abs(ratio[valid] - 1) <= tol).all()),
            "" if check.exact_mean is None else "sparse Rademacher: terms are not Grothendieck's",
        )
    )
    return out


# ============================================================================================ 2. concentration
def _bound_summary(
    measured: NDArray[np.float64], bound: NDArray[np.float64], se: NDArray[np.float64]
) -> tuple[bool, str]:
    """Whether every measured frequency is at most its bound (+3 se), and a one-line summary."""
    above = measured > bound + 3 * se
    informative = (bound < 1) & (measured > 0)
    ratio = float(np.min(bound[informative] / measured[informative])) if informative.any() else float("nan")
    return bool(not above.any()), f"{int(above.sum())} of {above.size} cells above; tightest bound/meas = {fmt(ratio)}"


def unit_verdict(check: UnitConcentrationCheck) -> list[Verdict]:
    """Per-unit failure frequencies under Hoeffding (+3 se) and, for Gaussian G, equal to the exact tail."""
    fail, se = np.array(check.failure), np.array(check.failure_se)
    ok, summary = _bound_summary(fail, np.array(check.hoeffding), se)
    out = [
        Verdict(f"per-unit Hoeffding bound ({check.kind} G, rho={check.rho:g})", summary, "2 exp(-2 N t^2 / pi^2)", ok)
    ]
    if check.exact is not None:
        z = np.abs(fail - np.array(check.exact)) / np.maximum(se, 1.0 / check.n_draws)
        out.append(
            Verdict(
                "failure frequency = exact Binomial tail (Gaussian G)",
                f"max |z| = {fmt(float(z.max()))}",
                f"<= {Z_TOL:g}",
                bool(z.max() <= Z_TOL),
            )
        )
    return out


def layer_verdict(check: LayerConcentrationCheck) -> list[Verdict]:
    """Union bound, per-unit bound inside the layer, the N-required calculator, and rms error vs exact std."""
    fa, union = np.array(check.failure_any), np.array(check.union)
    se = np.sqrt(fa * (1 - fa) / check.n_draws)
    ok_union, union_summary = _bound_summary(fa, union, se)
    fu, hoeff = np.array(check.failure_unit_mean), np.array(check.hoeffding)
    # The mean over cells averages m P correlated frequencies; its se is at most that of a single cell.
    ok_unit, unit_summary = _bound_summary(fu, hoeff, np.sqrt(fu * (1 - fu) / check.n_draws))
    at_req = [f for dim, f in zip(check.dims, check.failure_any, strict=False) if dim >= check.dim_required]
    rms_ratio = np.array(check.error_rms) / np.array(check.theory_rms)
    # Cells of one draw share G; the draw's mean squared error is still no noisier than one cell's, whose relative
    # sd is ~sqrt(2) (near-normal error). Over D draws: relative sd <= sqrt(2/D), halved by the square root.
    rms_tol = Z_TOL * math.sqrt(2.0 / check.n_draws) / 2.0
    return [
        Verdict(f"layer union bound ({check.name})", union_summary, "2 m P exp(-2 N t^2 / pi^2)", ok_union),
        Verdict(
            f"per-unit bound inside the layer ({check.name})",
            unit_summary,
            "2 exp(-2 N t^2 / pi^2)",
            ok_unit,
            "mean over cells; G shared across units leaves each marginal unchanged",
        ),
        Verdict(
            f"N-required calculator ({check.name}: t={check.t:g}, delta={check.delta:g}, "
            f"mP={check.units * check.patches})",
            f"failure at N>={check.dim_required}: {fmt(at_req[0]) if at_req else 'not run'}",
            f"<= delta = {check.delta:g}",
            bool(at_req) and at_req[0] <= check.delta + 3 * math.sqrt(check.delta * (1 - check.delta) / check.n_draws),
        ),
        Verdict(
            f"rms error = exact std ({check.name})",
            f"ratio in [{fmt(rms_ratio.min())}, {fmt(rms_ratio.max())}]",
            f"1 ± {fmt(rms_tol)}",
            bool((np.abs(rms_ratio - 1) <= rms_tol).all()),
            "worst case: all cells of a draw correlated",
        ),
    ]


def required_n_table(ts: Sequence[float], deltas: Sequence[float], mps: Sequence[int]) -> str:
    """Markdown table of :func:`hdc.theory.required_n` for every (t, delta) and m P."""
    head = "| t | delta | " + " | ".join(f"mP={mp:,}" for mp in mps) + " |"
    lines = [head, "|---|---|" + "---|" * len(mps)]
    for t in ts:
        for d in deltas:
            lines.append(f"| {t:g} | {d:g} | " + " | ".join(f"{required_n(t, d, mp):,}" for mp in mps) + " |")
    return "\n".join(lines)


# ============================================================================================ 3. Anderson & Berg
def angle_verdict(check: AngleCheck, min_in_features_mean: int = 100, min_in_features_sd: int = 1000) -> list[Verdict]:
    """Mean vs the 2nd-order delta method for d >= ``min_in_features_mean``; sd vs the 1st-order one for
    d >= ``min_in_features_sd`` (d: the vector length).

    The sd needs larger d: the delta method's relative error is O(1/d) with a constant that grows with the
    tails (measured about 0.92 of the prediction for Laplace at d = 100).
    """
    sizes = np.array(check.in_features)  # the vector lengths d
    sel = sizes >= min(min_in_features_mean, sizes[-1])
    mean, pred = np.array(check.mean)[sel], np.array(check.pred_mean)[sel]
    se = np.array(check.sd)[sel] / math.sqrt(check.n_draws)
    z = np.abs(mean - pred) / se
    sel_sd = sizes >= min(min_in_features_sd, sizes[-1])
    ratio = np.array(check.sd)[sel_sd] / np.array(check.pred_sd)[sel_sd]
    # sample-sd noise ~ 1/sqrt(2(D-1)) for near-normal angles, plus the O(1/d) delta-method error (10/d covers
    # the deviations measured for all three distributions at d >= 300)
    tol = Z_TOL / math.sqrt(2 * (check.n_draws - 1)) + 10.0 / int(sizes[sel_sd][0])
    d_last = int(sizes[-1])
    return [
        Verdict(
            f"angle(w, sign w), {check.distribution}",
            f"{math.degrees(check.mean[-1]):.2f} deg at d={d_last}",
            f"{math.degrees(check.limit):.2f} deg (finite-d {math.degrees(check.pred_mean[-1]):.2f})",
            bool(z.max() <= Z_TOL),
            f"d >= {int(sizes[sel][0])}: max |z| = {z.max():.2f}",
        ),
        Verdict(
            f"angle sd, {check.distribution}",
            f"sd*sqrt(d) = {check.sd_constant[-1]:.4f} rad at d={d_last}",
            f"{check.pred_sd_constant:.4f} rad (delta method)",
            bool((np.abs(ratio - 1) <= tol).all()),
            f"d >= {int(sizes[sel_sd][0])}: ratio in [{ratio.min():.3f}, {ratio.max():.3f}], tol {tol:.3f}",
        ),
    ]


def rotation_verdict(check: RotationCheck) -> list[Verdict]:
    """Rotated mean angle vs the Gaussian-weight angle at d (exact when averaged over Haar R).

    Samples sharing one R are dependent, but the mean of a group has variance at most that of one sample, so
    se <= sd(one angle) / sqrt(n_rotations), with sd(one angle) from the delta method.
    """
    _, sd_one = angle_delta_method(distribution_moments("gaussian"), np.array(check.in_features, dtype=float))
    se = sd_one / math.sqrt(check.n_rotations)
    z = np.abs(np.array(check.rotated_mean) - np.array(check.rotated_pred)) / se
    return [
        Verdict(
            "random rotation before sign restores the isotropic angle",
            f"rotated {math.degrees(check.rotated_mean[-1]):.1f} deg vs plain "
            f"{math.degrees(check.plain_mean[-1]):.1f} deg at d={check.in_features[-1]}",
            f"{math.degrees(check.rotated_pred[-1]):.1f} deg",
            bool(z.max() <= Z_TOL),
            f"{check.n_rotations} Haar R per d; max |z| = {z.max():.2f}",
        )
    ]


def _r_tol(d: DotProductCheck) -> float:
    # sd of a sample correlation ~ (1 - r^2)/sqrt(S); the mean over m units has it / sqrt(m).
    return Z_TOL * (1.0 - d.isotropic**2) / math.sqrt(d.n_samples * d.units)


def dot_product_verdict(check: DotProductCheck) -> Verdict:
    """Per-unit corr(a.w, a.sign w) against cos angle(w, sign w), exact for isotropic activations a."""
    tol = _r_tol(check)
    return Verdict(
        f"corr(a.w, a.sign w) = cos angle, isotropic a, {check.name} w",
        f"{check.r_unit_mean:.4f}",
        f"{check.isotropic:.4f}",
        abs(check.r_unit_mean - check.isotropic) <= tol,
        f"tolerance {tol:.4f}",
    )
