"""DiffLogic building blocks: gates, layers, GroupSum, model specs, thermometer encoder, input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnet.logic import (
    COEFFICIENTS,
    GATE_NAMES,
    DiffLogicNet,
    GroupSum,
    LogicLayer,
    convert,
    difflogic_net,
    difflogic_spec,
    gate_id,
    generic_difflogic_spec,
    hard_gate,
    packed_gate,
    relaxed_gate,
)
from gnet.logic.gates import mixture_coefficients, relaxed_mixture, truth_table
from gnet.logic.layers import unique_connections
from hdc.encoders.thermometer import ThermometerEncoder
from hdc.packed import pack_bits

# The paper's relaxations, written out independently of the coefficient table.
PAPER_FORMS = {
    "false": lambda a, b: 0 * a,
    "and": lambda a, b: a * b,
    "a_and_not_b": lambda a, b: a - a * b,
    "a": lambda a, b: a,
    "not_a_and_b": lambda a, b: b - a * b,
    "b": lambda a, b: b,
    "xor": lambda a, b: a + b - 2 * a * b,
    "or": lambda a, b: a + b - a * b,
    "nor": lambda a, b: 1 - (a + b - a * b),
    "xnor": lambda a, b: 1 - (a + b - 2 * a * b),
    "not_b": lambda a, b: 1 - b,
    "b_implies_a": lambda a, b: 1 - b + a * b,
    "not_a": lambda a, b: 1 - a,
    "a_implies_b": lambda a, b: 1 - a + a * b,
    "nand": lambda a, b: 1 - a * b,
    "true": lambda a, b: 1 + 0 * a,
}
BOOL = {
    "false": lambda a, b: False,
    "and": lambda a, b: a and b,
    "a_and_not_b": lambda a, b: a and not b,
    "a": lambda a, b: a,
    "not_a_and_b": lambda a, b: (not a) and b,
    "b": lambda a, b: b,
    "xor": lambda a, b: a != b,
    "or": lambda a, b: a or b,
    "nor": lambda a, b: not (a or b),
    "xnor": lambda a, b: a == b,
    "not_b": lambda a, b: not b,
    "b_implies_a": lambda a, b: a or not b,
    "not_a": lambda a, b: not a,
    "a_implies_b": lambda a, b: (not a) or b,
    "nand": lambda a, b: not (a and b),
    "true": lambda a, b: True,
}


@pytest.mark.parametrize("name", GATE_NAMES)
def test_relaxed_gate_equals_truth_table(name):
    a = torch.tensor([0.0, 0.0, 1.0, 1.0])
    b = torch.tensor([0.0, 1.0, 0.0, 1.0])
    want = torch.tensor([float(BOOL[name](bool(x), bool(y))) for x, y in zip(a, b, strict=True)])
    assert torch.equal(relaxed_gate(name, a, b), want)
    assert np.array_equal(truth_table(gate_id(name)).ravel(), want.numpy().astype(np.uint8))
    assert np.array_equal(hard_gate(gate_id(name), a.numpy(), b.numpy()), want.numpy().astype(np.uint8))
    # the relaxation is the paper's formula on all of [0, 1]^2, not only on the corners
    ra, rb = torch.rand(100, dtype=torch.float64), torch.rand(100, dtype=torch.float64)
    torch.testing.assert_close(relaxed_gate(name, ra, rb), PAPER_FORMS[name](ra, rb))


@pytest.mark.parametrize("gate", range(16))
def test_packed_gate_equals_hard_gate(gate):
    rng = np.random.default_rng(gate)
    a, b = rng.integers(0, 2, (2, 128)).astype(bool)
    got = packed_gate(gate, pack_bits(a), pack_bits(b))
    assert np.array_equal(got, pack_bits(hard_gate(gate, a, b).astype(bool)))


def test_mixture_is_the_expected_gate():
    logits = torch.randn(5, 16, dtype=torch.float64)
    p = torch.softmax(logits, dim=1)
    a, b = torch.rand(7, 5, dtype=torch.float64), torch.rand(7, 5, dtype=torch.float64)
    want = sum(p[:, i] * relaxed_gate(i, a, b) for i in range(16))
    torch.testing.assert_close(relaxed_mixture(a, b, mixture_coefficients(p)), want)


def test_unknown_gate_names_and_ids():
    with pytest.raises(ValueError, match="unknown gate 'nxor'"):
        gate_id("nxor")
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        gate_id(16)
    with pytest.raises(ValueError):
        relaxed_gate("maybe", torch.zeros(1), torch.zeros(1))
    with pytest.raises(ValueError):
        hard_gate([3], np.array([2]), np.array([0]))


def test_coefficients_are_small_integers():
    assert COEFFICIENTS.shape == (16, 4)
    assert np.array_equal(COEFFICIENTS, np.round(COEFFICIENTS)) and np.abs(COEFFICIENTS).max() == 2


def test_one_hot_network_train_equals_eval():
    model = difflogic_net(12, 3, 30, 3, tau=2.0, seed=4)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in model.layers:
            ids = torch.randint(0, 16, (layer.out_features,), generator=gen)
            layer.weight.copy_(1e3 * torch.nn.functional.one_hot(ids, 16))  # softmax is exactly one-hot
    x = torch.randint(0, 2, (50, 12), generator=gen).float()
    model.train()
    soft = model(x)
    model.eval()
    assert torch.equal(soft, model(x))


def test_group_sum():
    x = torch.arange(24.0).reshape(2, 12)
    torch.testing.assert_close(GroupSum(3, tau=4.0)(x), x.reshape(2, 3, 4).sum(2) / 4.0)
    with pytest.raises(ValueError, match="multiple of k"):
        GroupSum(5)(x)


def test_wiring_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    one, two = LogicLayer(40, 100, seed=3), LogicLayer(40, 100, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(one.index_a, two.index_a) and torch.equal(one.weight, two.weight)
    assert not torch.equal(one.index_a, LogicLayer(40, 100, seed=4).index_a)
    uses = torch.bincount(torch.cat([one.index_a, one.index_b]), minlength=40)
    assert uses.min() == 5 and uses.max() == 5  # randperm(2 out) mod in: every input used 2 out / in times


def test_unique_connections():
    pairs = unique_connections(10, 30, torch.Generator().manual_seed(0))
    assert len({tuple(p) for p in pairs.T.tolist()}) == 30
    assert set(pairs.flatten().tolist()) == set(range(10))
    with pytest.raises(ValueError, match="2 \\* out_features >= in_features"):
        LogicLayer(10, 4, connections="unique")
    with pytest.raises(ValueError, match="distinct pairs"):
        LogicLayer(4, 7, connections="unique")


def test_layer_argument_errors():
    with pytest.raises(ValueError, match="unknown connections 'ring'"):
        LogicLayer(8, 8, connections="ring")
    with pytest.raises(ValueError, match="unknown init"):
        LogicLayer(8, 8, init="zeros")
    with pytest.raises(ValueError, match=r"expects \(B, 8\)"):
        LogicLayer(8, 8)(torch.zeros(2, 9))


def test_residual_init_favours_pass_through():
    layer = LogicLayer(16, 200, init="residual", seed=0)
    assert (layer.gate_ids() == gate_id("a")).float().mean() > 0.9


def test_fused_backward_equals_autograd():
    layer = LogicLayer(30, 50, seed=2)
    gen = torch.Generator().manual_seed(1)
    x0, up = torch.rand(8, 30, generator=gen), torch.randn(8, 50, generator=gen)
    grads = []
    for fused in (True, False):
        layer.weight.grad = None
        x = x0.clone().requires_grad_(True)
        out = layer(x) if fused else relaxed_mixture(x[:, layer.index_a], x[:, layer.index_b], layer.coefficients())
        (out * up).sum().backward()
        grads.append((out.detach(), x.grad, layer.weight.grad.clone()))
    for got, want in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(got, want)


def test_grad_factor_scales_input_gradient():
    grads, x0 = [], torch.rand(4, 6, generator=torch.Generator().manual_seed(0))
    for factor in (1.0, 2.0):
        layer = LogicLayer(6, 10, seed=1, grad_factor=factor)
        x = x0.clone().requires_grad_(True)
        layer(x).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[1], 2 * grads[0])


def test_presets_and_spec_errors():
    assert difflogic_spec("difflogic-mnist-small")["width"] == 8000
    assert difflogic_spec("difflogic-mnist-large")["width"] == 64000
    with pytest.raises(ValueError, match="unknown difflogic preset"):
        difflogic_spec("difflogic-imagenet")
    with pytest.raises(ValueError, match="multiple of n_classes"):
        difflogic_net(8, 3, 10, 2, tau=1.0)
    with pytest.raises(ValueError, match="missing keys"):
        DiffLogicNet({"architecture": "difflogic", "in_features": 8})
    with pytest.raises(ValueError, match="not a difflogic spec"):
        DiffLogicNet({"architecture": [{"type": "linear"}]})
    with pytest.raises(ValueError, match="unknown difflogic options"):
        difflogic_net(8, 2, 10, 2, tau=1.0, widht=3)
    model = DiffLogicNet(difflogic_spec("difflogic-mnist-small", width=200, depth=2))
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)  # 20x20 crop of 28x28 -> 400 inputs


def test_generic_spec_for_data_without_a_preset():
    """A UCR-like series (3 channels x 50 steps, 3 classes, values of any range): quantile thresholds fitted on the
    training inputs, equal groups per class, and a circuit that agrees with the trained net."""
    spec = generic_difflogic_spec([3, 50], n_classes=3, size="large", seed=2)
    assert (spec["in_features"], spec["width"] % 3, spec["encoder"]["method"]) == (150, 0, "quantile")
    assert spec["width"] >= 4000 and generic_difflogic_spec([3, 50], 3)["width"] < spec["width"]
    model = DiffLogicNet(spec)
    x = torch.randn(40, 3, 50, generator=torch.Generator().manual_seed(0)) * 7.0  # far outside [0, 1]
    with pytest.raises(ValueError, match="not fitted"):
        convert(model)
    model.fit_encoder(x).eval()
    assert torch.isfinite(model.encoder.thresholds).all()
    want = model(x).argmax(1).numpy()
    assert (convert(model).predict(x.numpy()) == want).all()
    wide = generic_difflogic_spec([6, 100], n_classes=4)  # 2,400 input bits: the first layer must read them all
    assert wide["width"] == 1200
    DiffLogicNet(wide)
    with pytest.raises(ValueError, match="n_classes"):
        generic_difflogic_spec([10], n_classes=1)
    with pytest.raises(ValueError, match="size"):
        generic_difflogic_spec([10], n_classes=2, size="huge")


def test_inputs_outside_unit_interval_raise():
    plain = difflogic_net(8, 2, 10, 2, tau=1.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plain(torch.full((2, 8), 1.5))
    therm = difflogic_net(
        8, 2, 10, 2, tau=1.0, encoder={"kind": "thermometer", "k": 2, "method": "uniform", "value_range": None}
    )
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        therm(torch.full((2, 8), -0.1))
    ranged = difflogic_net(
        8, 2, 10, 2, tau=1.0, encoder={"kind": "thermometer", "k": 2, "method": "uniform", "value_range": [-5, 5]}
    )
    assert ranged(torch.full((2, 8), -4.0)).shape == (2, 2)


def test_thermometer_encoder():
    enc = ThermometerEncoder(3)
    np.testing.assert_array_equal(enc.thresholds, [[0.25, 0.5, 0.75]])
    x = np.array([[0.0, 0.3], [0.8, 1.0]], dtype=np.float32)
    want = np.array([[0, 0, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=bool)
    np.testing.assert_array_equal(enc.bits(x), want)
    assert torch.equal(enc.encode(x), torch.from_numpy(want.astype(np.float32)))
    np.testing.assert_array_equal(enc.encode_packed(x), pack_bits(want))
    np.testing.assert_array_equal(enc.encode_packed(x, layout="samples"), pack_bits(want.T.copy()))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        enc.bits(np.array([[1.2, 0.0]]))
    wide = ThermometerEncoder(1, value_range=(-1, 3))
    np.testing.assert_array_equal(wide.bits(np.array([[0.9, 1.1, 7.0]])), [[False, True, True]])


def test_thermometer_quantile():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(999, 2)) * [1.0, 10.0]
    enc = ThermometerEncoder(3, method="quantile")
    with pytest.raises(ValueError, match="not fitted"):
        enc.bits(x)
    enc.fit(x)
    assert enc.thresholds.shape == (2, 3) and enc.out_features == 6
    assert abs(enc.bits(x).mean() - 0.5) < 0.01  # quartile cuts: 3/4 + 1/2 + 1/4 over 3 bits
    with pytest.raises(ValueError, match="expected 2 features"):
        enc.bits(x[:, :1])
    with pytest.raises(ValueError, match="unknown threshold method"):
        ThermometerEncoder(3, method="random")
