"""The bit-parallel engine (gnet.logic.convert + hdc._kernels.logic) equals the torch eval model exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnet.logic import DiffLogicNet, convert, difflogic_net, difflogic_spec
from gnet.logic.convert import LogicCircuit

THERMO = {"kind": "thermometer", "k": 3, "method": "uniform", "value_range": None}


def _random_gates(model: DiffLogicNet, seed: int) -> None:
    """Logits with wide spread so all 16 gates occur; a few exact ties test first-max tie-breaking."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 3)
            layer.weight[::7, 5] = layer.weight[::7].max(dim=1).values  # tie: argmax keeps the lower id


def _check(model: DiffLogicNet, x: torch.Tensor) -> LogicCircuit:
    model.eval()
    circuit = convert(model)
    scores = model(x)
    counts = circuit.counts(x)
    np.testing.assert_array_equal(counts, (scores * model.group_sum.tau).round().numpy().astype(np.int32))
    np.testing.assert_array_equal(circuit.predict(x), scores.argmax(dim=1).numpy())
    return circuit


@pytest.fixture(scope="module")
def model():
    net = difflogic_net(24, 5, 300, 4, tau=3.0, seed=7, connections="random", encoder=THERMO)
    _random_gates(net, 1)
    return net


@pytest.mark.parametrize("batch", [1, 63, 64, 65, 1000])
def test_engine_equals_torch_eval(model, batch):
    x = torch.rand(batch, 24, generator=torch.Generator().manual_seed(batch))
    circuit = _check(model, x)
    assert set(np.concatenate(circuit.ids).tolist()) == set(range(16))


def test_engine_with_crop_quantile_and_unique_wiring():
    spec = difflogic_spec(
        "difflogic-mnist-small",
        width=400,
        depth=3,
        tau=5.0,
        seed=3,
        encoder={"kind": "thermometer", "k": 2, "method": "quantile", "value_range": None},
    )
    net = DiffLogicNet(spec)
    x = torch.rand(130, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    net.fit_encoder(x)
    _random_gates(net, 2)
    _check(net, x)


def test_engine_without_encoder_rounds_inputs():
    net = difflogic_net(16, 2, 64, 2, tau=1.0, seed=0)
    _random_gates(net, 3)
    x = torch.rand(77, 16, generator=torch.Generator().manual_seed(1))
    x[0, :] = 0.5  # x > 0.5 is False on both sides
    _check(net, x)


def test_plan_prunes_dead_gates_and_inputs(model):
    circuit = convert(model.eval())
    plan = circuit.plan()
    assert plan.n_gates < circuit.n_gates and len(plan.input_bits) <= len(circuit.input_source)
    assert plan.offsets[-1] - plan.offsets[-2] == len(circuit.ids[-1])  # every output gate is counted
    assert circuit.nbytes == 9 * circuit.n_gates + circuit.input_source.nbytes + circuit.input_threshold.nbytes


def test_engine_input_errors(model):
    circuit = convert(model.eval())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        circuit.predict(np.full((3, 24), 2.0))
    nan = np.full((3, 24), 0.5)
    nan[1, :] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        circuit.predict(nan)
    with pytest.raises(ValueError, match="expected 24 input features"):
        circuit.predict(np.zeros((3, 25)))
    with pytest.raises(TypeError, match="DiffLogicNet"):
        convert(torch.nn.Linear(3, 3))
    words, _ = circuit.pack_inputs(np.zeros((3, 24)))
    with pytest.raises(ValueError, match="exceeds"):
        circuit.counts_packed(words, 64 * words.shape[1] + 1)


@pytest.mark.parametrize("block", [1, 3, 16])
def test_groupsum_counts_large_groups_and_blocks(block):
    """Groups of 1,000 rows (10 carry-save levels), 1-word to 16-word blocks, a partial last block."""
    net = difflogic_net(3000, 2, 2000, 1, tau=7.0, seed=5, connections="random")
    with torch.no_grad():
        net.layers[0].weight.zero_()
        net.layers[0].weight[:, 3] = 1.0  # every gate passes its input a through
    circuit = convert(net.eval())
    x = torch.randint(0, 2, (1000, 3000), generator=torch.Generator().manual_seed(block)).float()
    words, n = circuit.pack_inputs(x)
    counts = circuit.counts_packed(words, n, block=block)
    a = net.layers[0].index_a.numpy()
    want = x.numpy()[:, a].reshape(1000, 2, 1000).sum(axis=2)
    np.testing.assert_array_equal(counts, want)
    np.testing.assert_array_equal(circuit.predict(x), net(x).argmax(dim=1).numpy())


def test_circuit_arrays_round_trip_and_validation(model):
    circuit = convert(model.eval())
    arrays = circuit.to_arrays()
    again = LogicCircuit.from_arrays(arrays)
    x = torch.rand(70, 24, generator=torch.Generator().manual_seed(9))
    np.testing.assert_array_equal(again.counts(x), circuit.counts(x))
    bad = dict(arrays, index_a=arrays["index_a"].copy())
    bad["index_a"][-1] = 10**6
    with pytest.raises(ValueError, match="out of range"):
        LogicCircuit.from_arrays(bad)
    with pytest.raises(ValueError, match="gate ids"):
        LogicCircuit.from_arrays(dict(arrays, ids=arrays["ids"].astype(np.int64) + 16))
    with pytest.raises(ValueError, match="missing arrays"):
        LogicCircuit.from_arrays({"weight": np.zeros(3)})
