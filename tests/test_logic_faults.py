"""Faults in a logic circuit (gnet.logic.faults): exact counts per sample, seeded, independent of batch size, and
equal to a plain numpy evaluation of the faulty circuit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnet.logic import FAULT_TARGETS, LogicCircuit, convert, difflogic_net, hard_gate
from hdc.faults import fault_count, fault_key, row_fault_mask
from hdc.packed import unpack_bits

THERMO = {"kind": "thermometer", "k": 3, "method": "uniform", "value_range": None}


@pytest.fixture(scope="module")
def circuit():
    net = difflogic_net(24, 5, 300, 3, tau=3.0, seed=11, connections="random", encoder=THERMO)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 3)
    return convert(net.eval())


def _x(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 24), dtype=np.float32)


def _constant(n_inputs: int, width: int, gate: int, n_classes: int = 1) -> LogicCircuit:
    """One layer of ``width`` copies of ``gate``; gate ``j`` reads input bit ``j % n_inputs`` twice. Inputs are
    ``x > 0.5`` of ``n_inputs`` raw features."""
    index = np.arange(width, dtype=np.int32) % n_inputs
    return LogicCircuit(
        [np.full(width, gate, np.uint8)],
        [index],
        [index],
        n_classes,
        1.0,
        np.arange(n_inputs),
        np.full(n_inputs, 0.5, np.float32),
        n_inputs,
    )


def _reference_counts(c: LogicCircuit, x: np.ndarray, gate_hits=None, input_hits=None) -> np.ndarray:
    """The circuit evaluated gate by gate on unpacked bools, with hit masks (B, bits) bool flipped in."""
    bits = x.reshape(len(x), -1)[:, c.input_source] > c.input_threshold
    if input_hits is not None:
        bits = bits ^ input_hits
    start = 0
    for ids, a, b in zip(c.ids, c.index_a, c.index_b, strict=True):
        bits = hard_gate(ids, bits[:, a], bits[:, b]).astype(bool)
        if gate_hits is not None:
            bits = bits ^ gate_hits[:, start : start + len(ids)]
        start += len(ids)
    return bits.reshape(len(x), c.n_classes, -1).sum(axis=2)


def test_p0_equals_clean(circuit):
    x = _x(130)
    clean = circuit.counts(x)
    for target in circuit.fault_targets():
        faulty = circuit.with_faults(0.0, target, seed=5)
        np.testing.assert_array_equal(faulty.counts(x), clean)
    assert circuit.fault_targets() == FAULT_TARGETS == ("gate_outputs", "inputs", "gate_ids")


@pytest.mark.parametrize("target", ["gate_outputs", "inputs"])
def test_runtime_faults_equal_the_reference(circuit, target):
    """The engine's faulty counts equal a plain evaluation with the documented masks: row_fault_mask keyed by
    fault_key(seed, (target index,)) and the sample's position."""
    x = _x(150, 1)
    n_bits = circuit.n_gates if target == "gate_outputs" else circuit.n_input_bits
    k = fault_count(0.05, n_bits)
    key = fault_key(9, (FAULT_TARGETS.index(target),))
    hits = unpack_bits(row_fault_mask(np.arange(len(x)), n_bits, k, key), n_bits)
    want = _reference_counts(circuit, x, **{"gate_hits" if target == "gate_outputs" else "input_hits": hits})
    faulty = circuit.with_faults(0.05, target, seed=9)
    np.testing.assert_array_equal(faulty.counts(x), want)
    assert not np.array_equal(want, circuit.counts(x))  # the faults do change something
    np.testing.assert_array_equal(circuit.counts(x), _reference_counts(circuit, x))  # the caller's is unchanged


@pytest.mark.parametrize("target", ["gate_outputs", "inputs"])
def test_runtime_faults_are_seeded_and_batch_size_independent(circuit, target):
    x = _x(300, 2)
    faulty = circuit.with_faults(0.1, target, seed=3)
    want = faulty.predict(x, batch_size=256)
    for batch_size in (1, 100, 64, None):
        np.testing.assert_array_equal(faulty.predict(x, batch_size=batch_size), want)
    np.testing.assert_array_equal(circuit.with_faults(0.1, target, seed=3).predict(x), want)
    assert not np.array_equal(circuit.with_faults(0.1, target, seed=4).counts(x), faulty.counts(x))
    # a sample's faults depend on its position only: the first 37 samples alone get the same counts
    np.testing.assert_array_equal(faulty.counts(x[:37]), faulty.counts(x)[:37])


@pytest.mark.parametrize("p", [0.013, 0.25, 0.5, 0.9])
def test_gate_output_flips_hit_exactly_round_p_gates_per_sample(p):
    # 700 "false" gates in one group: the count is the number of hit gates, for every sample
    c = _constant(10, 700, gate=0)
    counts = c.with_faults(p, "gate_outputs", seed=1).counts(_x(130)[:, :10], batch_size=100)
    assert (counts[:, 0] == fault_count(p, 700)).all()
    stuck1 = c.with_faults(p, "gate_outputs", seed=1, kind="stuck1").counts(_x(70)[:, :10])
    assert (stuck1[:, 0] == fault_count(p, 700)).all()
    true = _constant(10, 700, gate=15)  # stuck at 0 on "true" gates removes exactly the hits
    assert (true.with_faults(p, "gate_outputs", 1, "stuck0").counts(_x(70)[:, :10])[:, 0] == 700 - round(p * 700)).all()


@pytest.mark.parametrize("p", [0.01, 0.3, 0.77])
def test_input_flips_hit_exactly_round_p_bits_per_sample(p):
    # pass-through gates reading each of 300 input bits once; inputs all 0: the count is the number of flipped bits
    c = _constant(300, 300, gate=3)
    counts = c.with_faults(p, "inputs", seed=2).counts(np.zeros((165, 300), np.float32), batch_size=64)
    assert (counts[:, 0] == fault_count(p, 300)).all()


@pytest.mark.parametrize("kind", ["flip", "stuck0", "stuck1"])
def test_gate_id_faults_replace_exactly_round_p_ids(circuit, kind):
    faulty = circuit.with_faults(0.2, "gate_ids", seed=6, kind=kind)
    before, after = np.concatenate(circuit.ids), np.concatenate(faulty.ids)
    k = fault_count(0.2, circuit.n_gates)
    # the documented draw: k distinct positions from SeedSequence(seed, spawn_key=(2,)) (2 = "gate_ids")
    hit = np.zeros(len(before), bool)
    hit[np.random.default_rng(np.random.SeedSequence(6, spawn_key=(2,))).choice(len(before), k, replace=False)] = True
    np.testing.assert_array_equal(after[~hit], before[~hit])
    if kind == "flip":
        assert (after[hit] != before[hit]).all()  # every hit gate gets a different id
    else:
        assert (after[hit] == (0 if kind == "stuck0" else 15)).all()
    assert faulty.ids is not circuit.ids and np.array_equal(np.concatenate(circuit.ids), before)
    again = circuit.with_faults(0.2, "gate_ids", seed=6, kind=kind)
    np.testing.assert_array_equal(np.concatenate(again.ids), after)
    x = _x(90, 4)
    # a replaced-id circuit is an ordinary circuit: the engine still equals the plain evaluation
    np.testing.assert_array_equal(faulty.counts(x), _reference_counts(faulty, x))


def test_flip_ids_are_uniform_over_the_other_15(circuit):
    faulty = _constant(10, 30000, gate=6).with_faults(1.0, "gate_ids", seed=0)
    freq = np.bincount(faulty.ids[0], minlength=16) / 30000
    # each of the 15 other ids: mean 1/15, binomial sd sqrt((1/15)(14/15)/30000) = 0.0014; 5 sd = 0.0072
    assert freq[6] == 0 and np.abs(freq[np.arange(16) != 6] - 1 / 15).max() < 0.0072


def test_fault_arguments(circuit):
    with pytest.raises(ValueError, match="unknown fault target 'weights'"):
        circuit.with_faults(0.1, "weights", seed=0)
    with pytest.raises(ValueError, match="p must be"):
        circuit.with_faults(1.5, "inputs", seed=0)
    with pytest.raises(ValueError, match="unknown kind"):
        circuit.with_faults(0.1, "inputs", seed=0, kind="melt")
    once = circuit.with_faults(0.1, "inputs", seed=0)
    with pytest.raises(ValueError, match="already has 'inputs' faults"):
        once.with_faults(0.1, "inputs", seed=1)
    both = once.with_faults(0.1, "gate_outputs", seed=1).with_faults(0.1, "gate_ids", seed=2)
    assert [f.target for f in both.runtime_faults] == ["inputs", "gate_outputs"]
    with pytest.raises(ValueError, match="cannot be saved"):
        once.save("never.logic")


@pytest.mark.parametrize("n_samples", [1, 63, 130])
def test_slice_row_bits_equals_a_plain_transpose(n_samples):
    from hdc._kernels.logic import DEBRUIJN_INDEX, slice_row_bits
    from hdc.packed import pack_bits

    rng = np.random.default_rng(n_samples)
    bits = rng.random((n_samples, 200)) < 0.3
    bits[0, [0, 63, 64, 199]] = True  # word edges
    row_of = rng.permutation(200)
    row_of[row_of >= 150] = -1  # 50 bits dropped
    out = np.empty((150, -(-n_samples // 64)), np.uint64)
    slice_row_bits(pack_bits(bits), row_of, DEBRUIJN_INDEX, out)
    want = np.zeros((150, n_samples), bool)
    kept = row_of >= 0
    want[row_of[kept]] = bits[:, kept].T
    np.testing.assert_array_equal(out, pack_bits(want))
