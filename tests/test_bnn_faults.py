"""Bit faults on a packed BNN: exact counts per row, seeded, independent of the batch size; the caller's model kept."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_bnn_io import SHAPES, inputs, packed_model

from gnet.bnn._stages import ChannelBits
from gnet.bnn.deploy import ActivationFaults, _row_bits
from gnet.deployed import DeployedModel, load_deployed
from hdc.faults import BitFaults, fault_count


@pytest.fixture(scope="module")
def digits():
    return packed_model("digits", "bnn")[1]


@pytest.mark.parametrize("arch", ["digits", "mlp"])
def test_p_zero_equals_the_clean_model(arch):
    _, packed = packed_model(arch, "bnn")
    assert isinstance(packed, DeployedModel) and packed.fault_targets() == ("weights", "activations")
    x = inputs(SHAPES[arch], 120, seed=2)
    clean = packed.logits(x)
    for target in packed.fault_targets():
        assert torch.equal(packed.with_faults(0.0, target, seed=4).logits(x), clean)


@pytest.mark.parametrize("p", [0.01, 0.1, 0.35, 0.5, 0.9])
def test_weight_faults_hit_exactly_round_p_fan_in_bits_per_row(digits, p):
    before = [(layer.words.copy(), _row_bits(layer)) for layer in digits.layers]
    faulty = digits.with_faults(p, "weights", seed=7)
    for (words, bits), layer, new in zip(before, digits.layers, faulty.layers, strict=True):
        assert np.array_equal(layer.words, words)  # the caller's model is not changed
        changed = (_row_bits(new) != bits).sum(axis=1)
        assert (changed == fault_count(p, layer.fan_in)).all(), (layer.kind, layer.fan_in)
        # the +-1 weights of the real-input path follow the faulty bits
        assert torch.equal(
            new.weight_pm1.reshape(len(changed), -1).ne(layer.weight_pm1.reshape(len(changed), -1)).sum(1),
            torch.from_numpy(changed),
        )
    again = digits.with_faults(p, "weights", seed=7)
    other = digits.with_faults(p, "weights", seed=8)
    assert all(np.array_equal(a.words, b.words) for a, b in zip(faulty.layers, again.layers, strict=True))
    assert any(not np.array_equal(a.words, b.words) for a, b in zip(faulty.layers, other.layers, strict=True))
    assert faulty.meta["faults"] == [{"target": "weights", "p": p, "kind": "flip", "seed": 7}]


def test_stuck_faults_only_set_or_clear(digits):
    layer = digits.layers[1]
    bits = _row_bits(layer)
    for kind, moved in (("stuck0", bits), ("stuck1", ~bits)):
        new = _row_bits(digits.with_faults(0.3, "weights", seed=1, kind=kind).layers[1])
        changed = new != bits
        assert changed.any() and (changed <= moved).all()  # stuck0 only clears ones, stuck1 only sets zeros


@pytest.mark.parametrize("shape", [(37, 150), (5, 4, 3, 70)])  # linear bits; conv (B, *spatial, C) positions
def test_activation_faults_flip_exactly_round_p_bits_per_item(shape):
    g = np.random.default_rng(0)
    bits = g.random(shape) < 0.5
    hook = ActivationFaults(BitFaults(0.2), seed=3, index=1)
    if len(shape) == 2:
        out = hook(bits, start=100)
        whole = hook(np.concatenate([np.zeros((100, shape[1]), bool), bits]), start=0)[100:]
    else:
        state = ChannelBits.from_bool(np.moveaxis(bits, -1, 1))
        out = np.moveaxis(hook(state, start=100).to_bool(), 1, -1)
        pad = ChannelBits.from_bool(np.zeros((100, shape[-1], *shape[1:-1]), bool))
        whole = np.moveaxis(hook(ChannelBits(np.concatenate([pad.words, state.words]), shape[-1]), 0).to_bool(), 1, -1)
        whole = whole[100:]
    n_bits = int(np.prod(shape[1:]))
    changed = (out != bits).reshape(len(bits), -1).sum(axis=1)
    assert (changed == fault_count(0.2, n_bits)).all()
    assert np.array_equal(out, whole)  # keyed by the item's index, not by its batch


def test_activation_faults_are_seeded_and_independent_of_batch_size(digits):
    x = inputs((1, 8, 8), 300, seed=9)
    clean = digits.predict(x)
    faulty = digits.with_faults(0.2, "activations", seed=5)
    a = faulty.logits(x, batch_size=256)
    assert torch.equal(faulty.logits(x, batch_size=7), a)
    assert torch.equal(digits.with_faults(0.2, "activations", seed=5).logits(x, batch_size=300), a)
    assert not torch.equal(digits.with_faults(0.2, "activations", seed=6).logits(x), a)
    changed = (a.argmax(1).numpy() != clean).mean()
    assert 0.0 < changed < 1.0
    assert digits.predict(x).tolist() == clean.tolist()  # the caller's model has no faults


def test_bad_fault_arguments_are_refused(digits):
    with pytest.raises(ValueError, match="target must be one of weights, activations, got 'data'"):
        digits.with_faults(0.1, "data", seed=0)
    with pytest.raises(ValueError, match="p"):
        digits.with_faults(1.5, "weights", seed=0)
    with pytest.raises(ValueError, match="kind"):
        digits.with_faults(0.1, "weights", seed=0, kind="melt")
    with pytest.raises(ValueError, match="seed"):
        digits.with_faults(0.1, "weights", seed=-1)
    with pytest.raises(ValueError, match="do not stack"):
        digits.with_faults(0.1, "activations", seed=0).with_faults(0.1, "activations", seed=1)
    _, connect = packed_model("mlp", "binaryconnect")
    assert connect.fault_targets() == ("weights",)
    with pytest.raises(ValueError, match=r"target must be one of weights, got 'activations' \(this model has no bin"):
        connect.with_faults(0.1, "activations", seed=0)


def test_cli_robustness_of_a_bnn(tmp_path, capsys):
    import json

    from test_bnn_io import bnn_checkpoint

    from gnet.cli import main
    from gnet.robustness_generic import deployed_sweep

    ckpt, _, data = bnn_checkpoint(tmp_path)
    assert main(["convert", str(ckpt), "--out", str(tmp_path / "m.bnn")]) == 0
    out = tmp_path / "rob"
    common = [str(tmp_path / "m.bnn"), "--p", "0,0.2", "--seeds", "2", "--limit", "150", "--out", str(out)]
    assert main(["robustness", *common, "--quiet"]) == 0
    result = json.loads((out / "robustness.json").read_text())
    (entry,) = result["models"]
    assert entry["label"] == "BNN bnn" and entry["family"] == "bnn" and (out / "robustness.png").stat().st_size
    assert set(entry["targets"]) == {"weights", "activations"}
    for rows in entry["targets"].values():
        assert [r["p"] for r in rows] == [0.0, 0.2]
        assert rows[0]["accuracies"] == [entry["clean_accuracy"]] * 2 and len(rows[1]["accuracies"]) == 2
    packed = load_deployed(tmp_path / "m.bnn")
    x, y = data.test.tensors
    again = deployed_sweep(packed, x[:150], y[:150], [0.2], [0, 1], targets="weights", progress=False)
    assert again["targets"]["weights"][0]["accuracies"] == entry["targets"]["weights"][1]["accuracies"]
    assert entry["cost"]["model_bits"] == packed.cost().model_bits
    # --target is checked against the model's own targets; EHD-only flags are refused
    assert main(["robustness", *common, "--target", "data"]) == 2
    assert "target 'data' is not a fault target of this bnn model; valid: weights, act" in capsys.readouterr().err
    assert main(["robustness", *common, "--target", "activations", "--quiet"]) == 0
    assert set(json.loads((out / "robustness.json").read_text())["models"][0]["targets"]) == {"activations"}
    assert main(["robustness", *common, "--scope", "array"]) == 2
    assert "--scope applies to EHD models only" in capsys.readouterr().err
