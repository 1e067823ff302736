"""gnet.verify and ``gnet verify``: model-level checks on the digits G-Net (the session fixture in conftest.py).

Statistical tolerances are derived next to each assertion; 5 standard errors throughout.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gnet.checkpoint import save_checkpoint
from gnet.cli import main as gnet_main
from gnet.ehd import convert_layer
from gnet.models import architecture, build_model
from gnet.verify import (
    check_ehd,
    collect_layer_data,
    g_layers,
    layer_angles,
    layer_concentration,
)
from gnet.verify.report import QUICK
from hdc import theory as T

Z = 5.0


@pytest.fixture(scope="module")
def digits_layers(digits_rasu):
    model, _, data = digits_rasu
    x, y = data.test.tensors
    return model, x[:40], y[:40], collect_layer_data(model, x[:40])


def test_collected_inputs_reproduce_the_float_layers(digits_layers):
    model, _, _, layers = digits_layers
    assert [d.name.split()[1] for d in layers] == ["conv2d", "conv2d", "linear", "classifier"]
    assert layers[0].positions == 64 and layers[2].positions == 1
    for d in layers:
        rows = d.patches(n_items=2)
        assert rows.shape == (2 * d.positions, d.in_features)
        # arcsin(cos(w~_o, (x + b)_p)) from the extracted patches and folded weights must be the float layer's z
        # (item-major patches; z is (B, m, *spatial)); float32 layer arithmetic vs float64 here.
        want = d.z[:2].reshape(2, d.units, -1).permute(0, 2, 1).reshape(-1, d.units).numpy()
        np.testing.assert_allclose(T.unit_z(d.weights, rows).T, want, atol=2e-4)
    assert len(g_layers(model)) == 4


def test_real_ehd_layers_are_unbiased_with_exact_variance_on_real_inputs(digits_layers):
    _, _, _, layers = digits_layers
    # The classifier and the linear layer, converted alone for S seeds (independent G): per cell, z_hat has mean
    # arcsin(rho) and sd (pi/2) sqrt((1 - mu^2)/N) exactly (Gaussian G), so the mean over S seeds is within
    # 5 sd / sqrt(S) of z, and the sample variance within 5 sqrt(2/(S-1)) relative of the exact one (near-normal
    # at N = 512). 1e-4 covers the float32 arithmetic of the float layer.
    dim, seeds = 512, 60
    for k in (2, 3):
        d = layers[k]
        z = d.z[:2].to(torch.float64).reshape(-1).numpy()[:12]  # 12 cells of the first item(s)
        draws = []
        for s in range(seeds):
            ehd_layer = convert_layer(d.layer, dim, seed=s, index=k)
            draws.append(ehd_layer.z_hat(d.inputs[:2]).to(torch.float64).reshape(-1).numpy()[:12])
        draws = np.array(draws)
        sd = (math.pi / 2) * np.sqrt((1 - (2 * z / math.pi) ** 2) / dim)
        assert np.all(np.abs(draws.mean(axis=0) - z) <= Z * sd / math.sqrt(seeds) + 1e-4)
        ratio = draws.var(axis=0, ddof=1) / sd**2
        assert np.all(np.abs(ratio - 1) <= Z * math.sqrt(2 / (seeds - 1)))


def test_layer_concentration_on_real_inputs_respects_the_bounds(digits_layers):
    _, _, _, layers = digits_layers
    d, draws = 30, 30
    for data in layers[1:3]:
        chk = layer_concentration(data, t=0.2, delta=0.1, n_draws=draws, max_units=16, max_patches=d, seed=1)
        fa, union = np.array(chk.failure_any), np.array(chk.union)
        # frequency of an event of probability <= b over D draws: sd <= sqrt(b (1 - b) / D)
        assert np.all(fa <= union + Z * np.sqrt(union * (1 - union) / draws))
        fu, hoeff = np.array(chk.failure_unit_mean), np.array(chk.hoeffding)
        assert np.all(fu <= hoeff + Z * np.sqrt(hoeff * (1 - hoeff) / draws))
        assert chk.units == 16 and chk.patches == d and chk.in_features == data.in_features


def test_check_ehd_matches_direct_evaluation(digits_layers):
    from gnet.ehd import convert

    model, x, y, layers = digits_layers
    per_layer, net = check_ehd(model, layers, x, y, dims=(256, 2048), seeds=(3,), t=0.2, layer_items=4)
    direct = convert(model, 2048, seed=3).evaluate(x, y).accuracy
    assert net.accuracy[1][0] == pytest.approx(direct)
    assert net.float_accuracy >= 0.9
    assert net.logit_rms[1][0] < net.logit_rms[0][0]  # 8x more bits: the deviation shrinks (by ~sqrt(8))
    assert net.classifier_rms[1] == pytest.approx(net.classifier_rms[0] / math.sqrt(8))
    for le in per_layer:
        assert le.n_items == 4 and len(le.rms) == 2
        # the failure fraction is a mean of indicators of probability <= b: its sd is at most sqrt(b(1-b)) even
        # when all cells are correlated (one draw of G here)
        b = np.array(le.hoeffding)
        assert np.all(np.array(le.frac_fail)[:, 0] <= b + Z * np.sqrt(b * (1 - b)))


def test_layer_angles_on_an_untrained_model_match_the_gaussian_formula():
    # Freshly initialised G-layers have i.i.d. Gaussian weights, so the angle to sign(w) is Anderson & Berg's
    # Gaussian case at d = fan-in: mean pred_mean, sd pred_sd per unit; over m units se = sd / sqrt(m).
    model = build_model(architecture("digits"), seed=4)
    x = torch.randn(20, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    layers = collect_layer_data(model, x)
    for d in layers[1:3]:
        a = layer_angles(d, seed=0)
        mean, sd = T.angle_delta_method(T.distribution_moments("gaussian"), d.in_features)
        assert abs(a.mean_deg - math.degrees(mean)) <= Z * math.degrees(sd) / math.sqrt(d.units)
        assert abs(a.excess_kurtosis) < 0.5
        assert 0 < a.dot.r <= 1 and a.dot.r_rotated is not None


def test_layer_angles_on_the_trained_model(digits_layers):
    _, _, _, layers = digits_layers
    a = layer_angles(layers[2], seed=0)
    assert a.units == 128 and a.in_features == 512
    # reported, not asserted against a formula: trained weights stay near Gaussian here (37 deg), and the real
    # activations align with the weights above the permutation control (Anderson & Berg's observation)
    assert 30 < a.mean_deg < 45
    assert a.dot.r > a.dot.r_permuted


def test_cli_dim_required(capsys):
    # ceil(pi^2 / (2 t^2) log(2 m P / delta)) at t = 0.05, delta = 0.01, m = 512, P = 1: 1973.92 * 11.537 -> 22773,
    # an independent number (not the library's own output) so a broken calculator or CLI cannot pass.
    assert gnet_main(["verify", "--dim-required", "--t", "0.05", "--delta", "0.01", "--units", "512"]) == 0
    captured = capsys.readouterr()
    assert "= 22773 " in captured.out and "m=512, P=1" in captured.out
    assert captured.err == ""
    argv = ["verify", "--dim-required", "--t", "0.1", "--delta", "0.05", "--units", "4", "--patches", "8"]
    assert gnet_main(argv) == 0
    assert f"= {math.ceil(math.pi**2 / (2 * 0.1**2) * math.log(2 * 4 * 8 / 0.05))} " in capsys.readouterr().out


def test_cli_deprecated_flags_still_work_with_a_warning(capsys):
    assert gnet_main(["verify", "--n-required", "--t", "0.05", "--delta", "0.01", "--units", "512"]) == 0
    captured = capsys.readouterr()
    assert "= 22773 " in captured.out
    assert "--n-required is deprecated, use --dim-required" in captured.err


def test_cli_errors_name_the_problem(capsys, tmp_path):
    assert gnet_main(["verify", "--out", str(tmp_path)]) == 2
    assert "--synthetic or --model" in capsys.readouterr().err
    assert gnet_main(["verify", "--synthetic"]) == 2
    assert "--out" in capsys.readouterr().err
    assert gnet_main(["verify", "--model", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


def test_cli_model_report(digits_rasu, tmp_path, capsys):
    model, config, _ = digits_rasu
    ckpt = save_checkpoint(tmp_path / "digits.pt", model, config)
    out = tmp_path / "report"
    code = gnet_main(
        [
            "verify",
            "--model",
            str(ckpt),
            "--out",
            str(out),
            "--quick",
            "--items",
            "30",
            "--layer-items",
            "2",
            "--max-units",
            "8",
            "--max-patches",
            "16",
            "--quiet",
            "--n",
            "128,512",
        ]
    )  # --n is deprecated (and --quick replaces the sweep anyway)
    assert code == 0
    captured = capsys.readouterr()
    assert "--n is deprecated, use --dim" in captured.err
    report = json.loads((out / "report.json").read_text())
    checked = [v for v in report["verdicts"] if v["ok"] is not None]
    assert checked and all(v["ok"] for v in checked), [v for v in checked if not v["ok"]]
    assert f"{len(checked)}/{len(checked)} checked claims agree" in captured.out
    meta = report["meta"]
    assert meta["dims"] == list(QUICK.dims) and meta["seeds"] == [0] and meta["n_items"] == 30
    net = report["sections"]["network"]["data"]
    assert net["dims"] == list(QUICK.dims) and net["n_items"] == 30
    layers = report["sections"]["layers"]["data"]
    assert [d["in_features"] for d in layers] == [9, 144, 512, 128]
    assert all(d["dim_required"] == T.required_n(0.15, 0.05, d["units"], d["positions"]) for d in layers)
    for key in ("layers", "ehd_layers", "network", "binarization"):
        assert key in report["sections"]
    md = (out / "report.md").read_text()
    for sec in report["sections"].values():
        for fig in sec["figures"]:
            assert (out / fig).stat().st_size > 1000 and f"]({fig})" in md


def test_cli_synthetic_end_to_end(tmp_path, capsys):
    """``gnet verify --synthetic --quick``: the report files exist and the claims in report.json agree."""
    out = tmp_path / "synthetic"
    assert gnet_main(["verify", "--synthetic", "--quick", "--quiet", "--seed", "1", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    md = (out / "report.md").read_text()
    verdicts = report["verdicts"]
    assert len(verdicts) == 22 and all(v["ok"] is True for v in verdicts), [v for v in verdicts if not v["ok"]]
    assert "22/22 checked claims agree, 0 reported" in stdout
    assert md.count("| yes |") + md.count("| yes (") == 22 and "**no**" not in md
    assert report["meta"] == {"seed": 1, "quick": True, "sizes": report["meta"]["sizes"]}
    pngs = sorted(p.name for p in out.glob("*.png"))
    figures = sorted(f for sec in report["sections"].values() for f in sec["figures"])
    assert pngs == figures and len(pngs) == 8
    for name in pngs:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"]({name})" in md
    sections = report["sections"]
    assert sections["grothendieck_gaussian"]["data"]["packed_agrees"] is True
    layer = sections["concentration_layer"]["data"]
    # quick sizes: 16 units x 32 patches; the calculator's N against an independent evaluation of the formula
    assert (layer["units"], layer["patches"]) == (16, 32)
    assert layer["dim_required"] == math.ceil(math.pi**2 / (2 * 0.15**2) * math.log(2 * 16 * 32 / 0.05))
    assert f"= {layer['dim_required']}." in md


def test_cli_refuses_to_replace_a_report_unless_asked(tmp_path, capsys):
    out = tmp_path / "synthetic"
    out.mkdir()
    (out / "report.json").write_text("{}")  # an earlier report
    assert gnet_main(["verify", "--synthetic", "--quick", "--quiet", "--out", str(out)]) == 2
    assert "already holds a report" in capsys.readouterr().err and (out / "report.json").read_text() == "{}"
    assert gnet_main(["verify", "--synthetic", "--quick", "--quiet", "--overwrite", "--out", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["verdicts"]
