"""gnet.robustness and ``gnet robustness``: faults on weight and data codes of EHD G-Nets (digits, N = 1024)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gnet.cli import main
from gnet.ehd import convert, save_ehd
from gnet.robustness import (
    DataFaultHook,
    evaluate_with_faults,
    faulty_model,
    p_grid,
    reset_data_faults,
    resolve_layers,
    robustness_sweep,
)
from hdc.faults import BitFaults, fault_count
from hdc.packed import popcount

N = 1024
N_TEST = 200


@pytest.fixture(scope="module")
def tasu(digits_tasu):
    """(EHD model, x, y): the TASU digits net at N = 1024 and the first N_TEST test items."""
    model, _, data = digits_tasu
    ehd = convert(model, dim=N, embedding="gaussian", seed=0, input_shape=data.input_shape)
    x, y = data.test.tensors
    return ehd, x[:N_TEST], y[:N_TEST]


def test_model_faults_flip_exact_bits_in_chosen_layers_of_a_copy(tasu):
    ehd, _, _ = tasu
    before = [layer.codes.copy() for layer in ehd.layers]
    faulty = faulty_model(ehd, "model", 0.2, seed=1, layers=[0, -1])
    k = fault_count(0.2, N)
    for i, (layer, orig) in enumerate(zip(faulty.layers, before, strict=False)):
        diff = popcount(layer.codes ^ orig)
        if i in (0, len(before) - 1):
            assert (diff == k).all()
        else:
            assert (diff == 0).all()
    # The caller's model is untouched: same codes, no hooks.
    for layer, orig in zip(ehd.layers, before, strict=False):
        assert np.array_equal(layer.codes, orig) and layer.data_fault is None


def test_data_faults_flip_exact_bits_of_every_data_code(tasu):
    ehd, x, _ = tasu
    faulty = faulty_model(ehd, "data", 0.3, seed=2)
    seen = []
    for layer in faulty.layers:
        hook = layer.data_fault

        def spy(words, n, hook=hook):
            out = hook(words, n)
            seen.append((popcount(out ^ words), n))
            return out

        layer.data_fault = spy
    faulty.predict(x[:9], batch_size=4)
    assert len(seen) >= len(faulty.layers)
    for diff, n in seen:
        assert (diff == fault_count(0.3, n)).all()
    assert all(layer.data_fault is None for layer in ehd.layers)


@pytest.mark.parametrize("target", ["model", "data", "both"])
def test_p_zero_gives_identical_predictions(tasu, target):
    ehd, x, y = tasu
    x, y = x[:100], y[:100]
    clean = ehd.predict(x)
    _, pred = evaluate_with_faults(ehd, x, y, target, 0.0, seed=5)
    assert torch.equal(pred, clean)


def test_stuck_at_zero_p_zero_also_identical(tasu):
    ehd, x, y = tasu
    _, pred = evaluate_with_faults(ehd, x[:50], y[:50], "both", BitFaults(0.0, kind="stuck0"), seed=0)
    assert torch.equal(pred, ehd.predict(x[:50]))


@pytest.mark.parametrize("target", ["model", "data"])
def test_half_of_every_code_flipped_gives_chance_accuracy(tasu, target):
    ehd, x, y = tasu
    seeds = range(8)
    accs = [evaluate_with_faults(ehd, x, y, target, 0.5, seed=s)[0] for s in seeds]
    clean = (ehd.predict(x) == y).double().mean().item()
    n_classes = 10
    freq = np.bincount(y.numpy(), minlength=n_classes) / len(y)
    # With half of every code flipped, the faulty net carries no class information, so each seed's accuracy has
    # mean sum_c P(y=c) P(pred=c), within max_c |P(y=c) - 1/C| of 1/C. Its spread across seeds is at most that
    # of a net mapping each of the C class clusters to a random label: std sqrt((1/C)(1 - 1/C) / C) = 0.095, so
    # the mean over 8 seeds has std <= 0.034. Allow 3 std plus the class-frequency offset.
    cluster_sd = math.sqrt((1 / n_classes) * (1 - 1 / n_classes) / n_classes)
    tol = np.abs(freq - 1 / n_classes).max() + 3 * cluster_sd / math.sqrt(len(seeds))
    assert abs(np.mean(accs) - 1 / n_classes) <= tol
    assert clean > 1 / n_classes + 3 * tol  # the clean model is far above that band, so the test can fail


@pytest.mark.parametrize("target", ["model", "data", "both"])
def test_same_seed_same_predictions_other_seed_differs(tasu, target):
    ehd, x, y = tasu
    x, y = x[:80], y[:80]
    _, a = evaluate_with_faults(ehd, x, y, target, 0.3, seed=7)
    _, b = evaluate_with_faults(ehd, x, y, target, 0.3, seed=7)
    _, c = evaluate_with_faults(ehd, x, y, target, 0.3, seed=8)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_data_faults_do_not_depend_on_batch_size_and_replay_after_reset(tasu):
    ehd, x, _ = tasu
    faulty = faulty_model(ehd, "data", 0.25, seed=3)
    a = faulty.forward(x[:30])
    reset_data_faults(faulty)
    b = torch.cat([faulty.forward(x[i : min(i + 7, 30)]) for i in range(0, 30, 7)])
    assert torch.equal(a, b)
    # Without a reset the next pass continues the row numbering: new faults.
    assert not torch.equal(faulty.forward(x[:30]), a)


def test_per_channel_data_faults_do_not_depend_on_batch_size(digits_tasu):
    model, _, data = digits_tasu
    ehd = convert(model, dim=256, conv_projection="per_channel", seed=0, input_shape=data.input_shape)
    x = data.test.tensors[0][:12]
    faulty = faulty_model(ehd, "data", 0.25, seed=1, layers=[0, 1])
    assert len(faulty.layers[0].data_fault.keys) == ehd.layers[0].geometry.out_units
    a = faulty.forward(x)
    reset_data_faults(faulty)
    b = torch.cat([faulty.forward(x[i : min(i + 5, 12)]) for i in range(0, 12, 5)])
    assert torch.equal(a, b)


def test_both_equals_model_then_data(tasu):
    ehd, x, _ = tasu
    both = faulty_model(ehd, "both", 0.2, seed=4, layers=[1, 2])
    composed = faulty_model(faulty_model(ehd, "model", 0.2, seed=4, layers=[1, 2]), "data", 0.2, seed=4, layers=[1, 2])
    assert torch.equal(both.forward(x[:40]), composed.forward(x[:40]))
    with pytest.raises(ValueError, match="do not stack"):
        faulty_model(both, "data", 0.1, seed=0, layers=[1])


def test_sweep_reports_means_and_reuses_the_clean_model_at_p_zero(tasu):
    ehd, x, y = tasu
    res = robustness_sweep(ehd, x[:60], y[:60], [0.0, 0.3], [0, 1, 2], target="model", progress=False)
    clean = (ehd.predict(x[:60]) == y[:60]).double().mean().item()
    assert res["clean_accuracy"] == clean
    p0, p3 = res["rows"]
    assert p0["accuracies"] == [clean] * 3 and p0["accuracy_std"] == 0.0 and p0["hits"] == [0] * 4
    assert p3["hits"] == [fault_count(0.3, N)] * 4
    singles = [evaluate_with_faults(ehd, x[:60], y[:60], "model", 0.3, seed=s)[0] for s in range(3)]
    assert p3["accuracies"] == singles
    assert p3["accuracy_mean"] == pytest.approx(np.mean(singles))
    assert p3["accuracy_std"] == pytest.approx(np.std(singles))
    json.dumps(res)  # JSON-serialisable


def test_array_scope_on_model_codes(tasu):
    ehd, _, _ = tasu
    faulty = faulty_model(ehd, "model", BitFaults(0.1, scope="array"), seed=0, layers=[2])
    layer, orig = faulty.layers[2], ehd.layers[2]
    assert popcount(layer.codes ^ orig.codes).sum() == fault_count(0.1, orig.codes.shape[0] * N)


def test_bad_arguments(tasu):
    ehd, x, y = tasu
    with pytest.raises(ValueError, match="target"):
        faulty_model(ehd, "weights", 0.1, 0)
    with pytest.raises(ValueError, match="out of range"):
        resolve_layers(ehd, [4])
    with pytest.raises(ValueError, match="integers"):
        resolve_layers(ehd, ["0"])
    with pytest.raises(ValueError, match="scope='row'"):
        faulty_model(ehd, "data", BitFaults(0.1, scope="array"), 0)
    with pytest.raises(ValueError, match="seed"):
        faulty_model(ehd, "model", 0.1, -3)
    with pytest.raises(ValueError, match="p must be"):
        faulty_model(ehd, "model", 1.2, 0)
    with pytest.raises(ValueError, match="packed"):
        faulty_model(ehd, "data", 0.1, 0).forward(x[:2], backend="dense")
    with pytest.raises(ValueError, match="packed"):
        evaluate_with_faults(ehd, x, y, "data", 0.1, 0, backend="dense")
    with pytest.raises(ValueError, match="items"):
        evaluate_with_faults(ehd, x, y[:3], "model", 0.1, 0)
    with pytest.raises(ValueError, match="scope"):
        DataFaultHook(BitFaults(0.1, scope="array"), 0, 0)


def test_p_grid():
    assert p_grid("0:0.5:0.05") == [round(0.05 * i, 10) for i in range(11)]
    assert p_grid("0,0.1,0.35") == [0.0, 0.1, 0.35]
    assert p_grid("0.2:0.2:0.1") == [0.2]
    for bad in ("0:0.5", "a,b", "0:1:0", "0.5:0:0.1", "0,2"):
        with pytest.raises(ValueError, match="--p"):
            p_grid(bad)


def test_cli_writes_json_and_png_for_two_models(tasu, tmp_path, capsys):
    ehd, _, _ = tasu
    model = faulty_model(ehd, "model", 0.0, 0)  # an equal copy whose meta we may edit
    model.meta["dataset"] = "digits"
    a = save_ehd(model, tmp_path / "tasu.ehd")
    b = save_ehd(model, tmp_path / "copy.ehd")
    out = tmp_path / "out"
    rc = main(
        [
            "robustness",
            str(a),
            "--compare",
            str(b),
            "--p",
            "0:0.4:0.4",
            "--seeds",
            "2",
            "--limit",
            "40",
            "--layers",
            "0,-1",
            "--target",
            "both",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    res = json.loads((out / "robustness.json").read_text())
    assert (out / "robustness.png").stat().st_size > 1000
    assert res["dataset"] == "digits" and len(res["models"]) == 2
    labels = [m["label"] for m in res["models"]]
    assert labels == ["TASU (tasu)", "TASU (copy)"]
    for m in res["models"]:
        assert [r["p"] for r in m["rows"]] == [0.0, 0.4] and m["layers"] == [0, 3] and m["n_test"] == 40
    # Identical models and settings give identical curves.
    assert res["models"][0]["rows"] == [
        {**r, "seconds": res["models"][0]["rows"][i]["seconds"]} for i, r in enumerate(res["models"][1]["rows"])
    ]
    assert main(["robustness", str(a), "--p", "0:2:1", "--out", str(out)]) == 2
    assert "--p" in capsys.readouterr().err
