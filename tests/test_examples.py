"""Smoke tests: every script in examples/ runs end to end in its --smoke mode and produces sane results.

Each example's ``main(argv)`` returns its measurements, so the checks below look at real outputs, not just at the
absence of an exception. The examples are imported from their files (their names start with digits).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

from hdc import datasets

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_script(path: Path, module_name: str):
    """Import a script by path. It is registered in sys.modules first, as a normal import would do: dataclasses
    with string annotations look their module up there while the class body is processed."""
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def run_example(name: str, *argv: str) -> dict:
    return load_script(EXAMPLES / f"{name}.py", f"example_{name}").main(["--smoke", *argv])


def test_every_example_has_a_smoke_test():
    tested = {"01_quickstart_digits", "02_convert_mnist", "03_hdc_classification", "04_verify_bounds", "05_bit_flips"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


def test_quickstart_digits():
    r = run_example("01_quickstart_digits")
    # 10 balanced classes: chance is 0.1. Measured with --smoke over seeds 0-3: float 0.961-0.972 and EHD at
    # dim = 1024 0.850-0.911 (seed 0, the one tested: 0.972 / 0.850). On 540 test images the binomial std is about
    # 0.008 at 0.96 and 0.015 at 0.85; the seed-to-seed spread of the EHD accuracy (training and G draws) is about
    # 0.026. The floors sit about 2 such std below the worst seed seen: 0.93 for float (0.961 - 4 x 0.008) and
    # 0.80 for EHD (0.850 - 2 x 0.026), so another BLAS build passes and a pipeline that loses accuracy does not.
    assert r["n_test"] == 540
    assert r["float_accuracy"] > 0.93
    assert r["ehd_accuracy"] > 0.80
    assert r["reload_identical"]
    # 4 code-carrying layers with 1024-bit codes: 16 + 32 + 128 + 10 codes of 16 words (8 bytes each).
    assert r["file_bytes"] >= (16 + 32 + 128 + 10) * 16 * 8


def test_convert_mnist():
    try:
        datasets.load("mnist", download=False)
    except datasets.DatasetNotFoundError as err:
        pytest.skip(f"MNIST IDX files not available offline: {str(err).splitlines()[0]}")
    r = run_example("02_convert_mnist")
    assert r["dim_per_layer"] == [1024] * 4
    assert r["n_test"] == 64
    assert r["reload_identical"]
    # One epoch on 2048 images, first 64 test images, --smoke over seeds 0-2: float 0.906 / 0.859 / 0.859, EHD
    # at dim = 1024 0.813 / 0.797 / 0.703 (seed 0 is the one tested). On 64 images the binomial std is about
    # 0.045 at 0.85 and 0.057 at 0.70, so the floors are about 2 std below the worst seed seen: float 0.75
    # (0.859 - 2 x 0.045) and EHD 0.60 (0.703 - 2 x 0.057); chance is 0.1.
    assert r["float_accuracy"] > 0.75
    assert r["ehd_accuracy"] > 0.60


def test_hdc_classification():
    r = run_example("03_hdc_classification")
    assert r["dim"] == 512
    digits = r["results"]["digits"]
    # Kernel-encoded digits at D = 512 on the 540 test images, seed 0 (what the example runs): CentroidHD 0.894,
    # AdaptHD 0.822, OnlineHD 0.922; chance is 0.1. Over seeds 0-5 the lowest were 0.856, 0.822 and 0.922 (the
    # codebook draw moves AdaptHD most at this small D), and a binomial std on 540 images is about 0.013, so each
    # floor sits at or below the lowest seed: a working model clears it, one that lost a few points fails.
    floors = {"CentroidHD": 0.85, "AdaptHD": 0.8, "OnlineHD": 0.9}
    for name, floor in floors.items():
        assert digits[name] > floor, (name, digits[name])
    # Retraining corrects centroid mistakes: OnlineHD beat plain bundling by 0.035-0.063 on every seed 0-5.
    assert digits["OnlineHD"] > digits["CentroidHD"]
    # Packed prototypes: 10 classes x ceil(512 / 64) uint64 words.
    assert digits["prototype_bytes"] == 10 * 8 * 8


def test_verify_bounds():
    r = run_example("04_verify_bounds")
    g = r["grothendieck"]
    assert g.packed_agrees
    assert all(r["grothendieck_within_4se"])
    u = r["unit"]
    # The Hoeffding bound holds for the true probability; the measured frequency over n_draws draws has standard
    # error sqrt(b (1 - b) / n_draws) at most, so allow 4 of those above the bound.
    for i in range(len(u.dims)):
        for j in range(len(u.ts)):
            b = u.hoeffding[i][j]
            assert u.failure[i][j] <= b + 4 * math.sqrt(max(b * (1 - b), 1e-12) / u.n_draws) + 1e-12
    layer = r["layer"]
    assert layer.dim_required in layer.dims
    for i, n in enumerate(layer.dims):
        b = layer.union[i]
        assert layer.failure_any[i] <= b + 4 * math.sqrt(max(b * (1 - b), 1 / layer.n_draws) / layer.n_draws)
        # The rms error over units, inputs and draws matches the exact (pi/2) sqrt((1 - mu^2) / N): 160 cells x
        # 10 draws give a relative standard error of a few percent (cells share G, so not 1/sqrt(3200)); 15 %.
        assert abs(layer.error_rms[i] / layer.theory_rms[i] - 1) < 0.15, n


def test_bit_flips():
    r = run_example("05_bit_flips")
    rows = {row["p"]: row for row in r["sweep"]["rows"]}
    assert set(rows) == {0.0, 0.2, 0.5}
    clean = r["sweep"]["clean_accuracy"]
    assert rows[0.0]["accuracies"] == [clean, clean]
    assert rows[0.5]["hits"][0] == 512  # exactly half of the 1024 bits of every code
    # At p = 0.5 the flipped codes are uncorrelated with the originals, so accuracy falls to about chance (0.1,
    # binomial std 0.013 on 540 items; an argmax collapsed onto one class also gives ~0.1).
    assert rows[0.5]["accuracy_mean"] < 0.2
    assert rows[0.5]["accuracy_mean"] < rows[0.2]["accuracy_mean"] < clean
    # --smoke over seeds 0-2: float 0.961-0.972, clean EHD (dim = 1024) 0.850-0.911, p = 0.2 0.561-0.621 (each a
    # mean of 2 fault seeds on 540 images: binomial std about 0.015, seed spread about 0.025). Floors about 2 of
    # those below the worst seed: float 0.93, clean 0.80, p = 0.2 0.50. At p = 0.2 every estimate shrinks by
    # 1 - 2p = 0.6 and gains noise, so it must stay well above chance while clearly below clean.
    assert r["float_accuracy"] > 0.93
    assert clean > 0.80
    assert rows[0.2]["accuracy_mean"] > 0.50


def test_reproduce_script_is_bounded_and_resumable(tmp_path):
    reproduce = load_script(EXAMPLES.parent / "benchmarks" / "reproduce.py", "reproduce_under_test")
    out, runs = tmp_path / "out", tmp_path / "runs"
    argv = [
        "--dataset",
        "digits",
        "--out",
        str(out),
        "--runs-dir",
        str(runs),
        "--activations",
        "rasu",
        "--embeddings",
        "gaussian",
        "--epochs",
        "2",
        "--n-grid",
        "256",
        "512",
        "--seeds",
        "2",
        "--baselines",
        "centroid",
        "--baseline-seeds",
        "1",
        "--quiet",
    ]
    import json

    # A zero budget: training still runs one epoch per call (the only way to make progress), sweeps add nothing.
    reproduce.main(argv + ["--stage-budget-s", "0", "--stages", "train,sweep"])
    first = json.loads((out / "train_rasu.json").read_text())
    assert first["cut_short"] and first["epochs_run"] == 1
    sweep = json.loads((out / "sweep_rasu_gaussian.json").read_text())
    assert sweep["cut_short"] and sweep["points"] == []

    # The same command with time to spare continues training at epoch 2 and measures every (N, seed) point.
    reproduce.main(argv)
    train = json.loads((out / "train_rasu.json").read_text())
    assert train["complete"] and train["epochs_run"] == 2
    sweep = json.loads((out / "sweep_rasu_gaussian.json").read_text())
    assert sweep["complete"] and len(sweep["points"]) == 4
    assert [r["n_per_layer"] for r in sweep["rows"]] == [[256] * 4, [512] * 4]
    assert all(0.0 <= p["accuracy"] <= 1.0 for p in sweep["points"])
    assert (out / "accuracy_vs_n.png").stat().st_size > 0
    assert json.loads((out / "baselines.json").read_text())["dims"] == [256, 512]

    # A third run finds every stage complete and rewrites none of their files.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json") if p.name != "summary.json"}
    reproduce.main(argv)
    assert stamps == {p.name: p.stat().st_mtime_ns for p in out.glob("*.json") if p.name != "summary.json"}
