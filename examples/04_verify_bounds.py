"""Verify the theory behind EHD G-Nets by measurement: Grothendieck's identity, the per-unit Hoeffding bound,
and the union bound on a layer of a trained G-Net.

    PYTHONPATH=. python3 examples/04_verify_bounds.py            # about a minute on 2 CPU cores
    PYTHONPATH=. python3 examples/04_verify_bounds.py --smoke    # a few seconds (what the tests run)

1. For Gaussian G, E[sign(g.u) sign(g.v)] = (2/pi) arcsin(<u, v>), so the Hamming similarity of two N-bit codes
   estimates arcsin(cos) without bias.
2. Each unit's estimate z_hat is a mean of N terms of range pi/N: P(|z_hat - z| >= t) <= 2 exp(-2 N t^2 / pi^2).
3. For a layer of m units seen by P input patches, a union bound gives the N for which every estimate is within
   t with probability 1 - delta: N >= pi^2 / (2 t^2) log(2 m P / delta). Checked here on the classifier of a
   trained digits G-Net, over many draws of G.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gnet.data import load_dataset  # noqa: E402
from gnet.models import architecture, build_model  # noqa: E402
from gnet.train import TrainConfig, train  # noqa: E402
from hdc import theory  # noqa: E402


def trained_classifier(epochs: int, n_inputs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(class weight vectors (10, 128), shifted penultimate features (n_inputs, 128)) of a digits G-Net."""
    data = load_dataset("digits", val_fraction=0.1, seed=seed)
    specs = architecture("digits", activation="rasu")
    model = build_model(specs, seed=seed)
    train(
        model,
        data.train.tensors,
        data.val.tensors,
        TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, seed=seed),
        {"architecture": specs},
        progress=False,
    )
    model.eval()
    classifier = model[-1]
    with torch.no_grad():
        features = model[:-1](data.test.tensors[0][:n_inputs]) + classifier.bias  # what the classifier compares
    return classifier.weight.detach().T.numpy().astype(np.float64), features.numpy().astype(np.float64)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny settings for a fast check")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    smoke = args.smoke

    # 1. Grothendieck's identity, with the project's seeded RandomProjection and packed Hamming distances.
    g = theory.check_grothendieck(
        rhos=(-0.5, 0.0, 0.5, 0.9),
        dims=(256, 1024) if smoke else (256, 1024, 4096),
        n_draws=4 if smoke else 16,
        seed=args.seed,
    )
    print(f"1. Grothendieck: mean of (1/N) <sign(Gu), sign(Gv)> at N={g.dims[-1]} over {g.n_draws} draws of G")
    print(f"   {'rho':>6} {'(2/pi) arcsin rho':>18} {'measured':>9} {'std err':>8}")
    within = []
    for i, rho in enumerate(g.rhos):
        se = g.std[i][-1] / np.sqrt(g.n_draws)
        within.append(abs(g.bias[i]) <= 4 * max(se, g.mc_se[i][-1]))
        print(f"   {rho:>6.2f} {g.theory_mean[i]:>18.4f} {g.mean[i][-1]:>9.4f} {se:>8.4f}")
    print(f"   packed Hamming path gives the same sums: {g.packed_agrees}")

    # 2. One unit: failure frequency of |z_hat - z| >= t against Hoeffding (and the exact binomial tail).
    u = theory.check_unit_concentration(
        rho=0.5, dims=(32, 128, 512), ts=(0.2, 0.4), n_draws=500 if smoke else 4000, seed=args.seed
    )
    print(f"2. one unit, rho=0.5, {u.n_draws} draws of G: P(|z_hat - z| >= t) measured / exact / Hoeffding bound")
    for i, dim in enumerate(u.dims):
        cells = "   ".join(
            f"t={t}: {u.failure[i][j]:.4f} / {u.exact[i][j]:.4f} / {u.hoeffding[i][j]:.4f}" for j, t in enumerate(u.ts)
        )
        print(f"   N={dim:>4}  {cells}")

    # 3. A whole layer: the classifier of a trained digits G-Net, every class against every input.
    weights, inputs = trained_classifier(2 if smoke else 15, 16 if smoke else 64, args.seed)
    layer = theory.check_layer_concentration(
        weights, inputs, t=0.15, delta=0.05, n_draws=10 if smoke else 60, seed=args.seed, name="digits classifier"
    )
    print(
        f"3. digits classifier ({layer.units} classes x {layer.patches} inputs, {layer.in_features} features), "
        f"t={layer.t}, delta={layer.delta}: union bound asks N >= {layer.dim_required}"
    )
    print(f"   {'N':>6} {'P(any error >= t)':>18} {'union bound':>12} {'rms error':>10} {'theory rms':>11}")
    for i, dim in enumerate(layer.dims):
        print(
            f"   {dim:>6} {layer.failure_any[i]:>18.3f} {layer.union[i]:>12.3f} {layer.error_rms[i]:>10.4f} "
            f"{layer.theory_rms[i]:>11.4f}"
        )
    return {"grothendieck": g, "grothendieck_within_4se": within, "unit": u, "layer": layer}


if __name__ == "__main__":
    main()
