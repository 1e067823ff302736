"""Anderson & Berg on BNNs: the delta-method prediction, kept dot-product samples, and gnet verify --model BNN.pt."""

from __future__ import annotations

import json
import math

import pytest
import torch
from test_bnn_io import bnn_checkpoint

from gnet.bnn import build_bnn, measure_geometry
from gnet.bnn.geometry import GAUSSIAN_ANGLE_DEG, GAUSSIAN_SD_DEG, angles_to_sign, delta_method_angle
from gnet.models import architecture


def test_delta_method_from_the_layers_moments_is_the_gaussian_one_for_gaussian_weights():
    """200 x 1000 Gaussian entries: the moments are within ~1 % (2e5 draws), so the prediction is within a few
    hundredths of a degree of 37.07 - (small second-order bias) and the sd within ~1 % of 20.18 / sqrt(d)."""
    d = 1000
    w = torch.randn(200, d, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mean, sd = delta_method_angle(w)
    assert mean == pytest.approx(GAUSSIAN_ANGLE_DEG, abs=0.1)
    assert sd == pytest.approx(GAUSSIAN_SD_DEG / math.sqrt(d), rel=0.03)
    # and the measured spread over the 200 rows agrees with it (sd of a sample sd ~ 1/sqrt(2 * 199) = 5 %)
    assert float(angles_to_sign(w).std()) == pytest.approx(sd, rel=4 * 0.05)
    uniform = torch.rand(200, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2 - 1
    assert delta_method_angle(uniform)[0] == pytest.approx(30.0, abs=0.2)
    assert delta_method_angle(torch.ones(3, 8)) is None  # every |w| alike: no spread to predict


def test_kept_samples_change_no_measurement():
    model = build_bnn(architecture("digits"), "bnn", seed=0).eval()
    x = torch.randn(60, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    plain = measure_geometry(model, x, max_rows=500, seed=3)
    kept = measure_geometry(model, x, max_rows=500, seed=3, keep_samples=300)
    assert plain.to_dict() == kept.to_dict() and not plain.samples
    assert sorted(kept.samples) == [g.index for g in kept.layers]
    first, hidden = kept.samples[kept.layers[0].index], kept.samples[kept.layers[1].index]
    assert set(first) == {"real"} and set(hidden) == {"real", "binary"}
    assert hidden["binary"].shape == (2, 300)
    pairs = torch.from_numpy(hidden["binary"])
    r = float(torch.corrcoef(pairs)[0, 1])
    assert r == pytest.approx(kept.layers[1].corr_binary, abs=0.1)  # a 300-pair subset of the pooled pairs
    assert all(g.angle_delta_mean_deg is not None and g.angle_delta_sd_deg > 0 for g in kept.layers)
    with pytest.raises(ValueError, match="keep_samples"):
        measure_geometry(model, x, keep_samples=-1)


def test_cli_verify_a_bnn_checkpoint(tmp_path, capsys):
    from gnet.cli import main

    ckpt, model, data = bnn_checkpoint(tmp_path)
    out = tmp_path / "verify"
    assert main(["verify", "--model", str(ckpt), "--out", str(out), "--items", "120", "--quiet"]) == 0
    assert "8 reported" in capsys.readouterr().out  # two rows per binary layer
    for name in ("report.md", "report.json", "bnn_angles.png", "bnn_dots_real.png", "bnn_dots_binary.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    layers = report["sections"]["angles"]["data"]["layers"]
    expected = measure_geometry(model, data.test.tensors[0][:120], max_rows=4096, seed=0)
    assert [g["angle_mean_deg"] for g in layers] == pytest.approx([g.angle_mean_deg for g in expected.layers])
    assert [g["corr_binary"] for g in layers] == [g.corr_binary for g in expected.layers]
    assert report["meta"] == {"dataset": "digits", "method": "bnn", "n_items": 120, "max_rows": 4096}
    md = (out / "report.md").read_text()
    assert "| 0 BinaryConv2d | 9 | 16 |" in md and "r, permuted A" in md and "37.07 ± 6.73" in md
    assert "![dot_products](bnn_dots_binary.png)" in md
