"""Architectures as data: named builders, JSON specs, shape checks, and the fused activation/arcsine gradients."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch.func import functional_call

from gnet.layers import RASU, TASU, GConv2d, GLinear
from gnet.models import ARCHITECTURES, architecture, build_model, check_input_shape, load_architecture

# (builder kwargs, per-sample input shape, classes) for every named architecture.
NAMED = {
    "mnist": ({}, (1, 28, 28), 10),
    "fashion-mnist": ({}, (1, 28, 28), 10),
    "cifar10": ({}, (3, 32, 32), 10),
    "timeseries": ({"in_channels": 3, "length": 150, "n_classes": 4}, (3, 150), 4),
    "mlp": ({"in_features": 13, "hidden": (16, 8), "n_classes": 3}, (13,), 3),
    "digits": ({}, (1, 8, 8), 10),
}


def test_every_named_architecture_is_covered():
    assert set(NAMED) == set(ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(NAMED))
@pytest.mark.parametrize("activation", ["rasu", "tasu"])
def test_named_architecture_maps_its_input_to_class_scores(name, activation):
    kwargs, shape, classes = NAMED[name]
    model = build_model(architecture(name, activation=activation, **kwargs), seed=0)
    check_input_shape(model, shape, classes)
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, classes) and torch.isfinite(out).all()
    # The classifier outputs scale * cosine, so |logit| <= scale.
    assert out.abs().max() <= model[-1].scale.item() * (1 + 1e-6)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown architecture 'resnet'; valid: .*cifar10.*digits.*mnist"):
        architecture("resnet")
    with pytest.raises(ValueError, match=r"unknown activation 'gelu'; valid: rasu, tasu"):
        architecture("mnist", activation="gelu")
    with pytest.raises(ValueError, match=r"layer 1: unknown type 'conv3d'; valid: .*conv2d.*linear"):
        build_model([{"type": "flatten"}, {"type": "conv3d"}, {"type": "classifier", "in": 4, "classes": 2}])


def test_malformed_specs_are_named():
    with pytest.raises(ValueError, match="lacks required key 'out'"):
        build_model([{"type": "linear", "in": 4}, {"type": "classifier", "in": 4, "classes": 2}])
    with pytest.raises(ValueError, match="last layer of a G-Net must be a 'classifier'"):
        build_model([{"type": "flatten"}, {"type": "linear", "in": 4, "out": 2}])
    with pytest.raises(ValueError, match="at least one layer"):
        build_model([])


def test_shape_mismatch_is_caught_before_training():
    model = build_model(architecture("mnist"))
    with pytest.raises(ValueError, match=r"does not accept inputs of shape \(1, 8, 8\)"):
        check_input_shape(model, (1, 8, 8), 10)
    with pytest.raises(ValueError, match="outputs 10 classes but the dataset has 3"):
        check_input_shape(build_model(architecture("digits")), (1, 8, 8), 3)
    assert model.training  # the check restores the mode it found


def test_build_is_seeded_and_leaves_global_rng_alone():
    specs = architecture("digits")
    before = torch.get_rng_state()
    a, b, c = build_model(specs, seed=3), build_model(specs, seed=3), build_model(specs, seed=4)
    assert torch.equal(torch.get_rng_state(), before)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=False):
        assert torch.equal(va, vb), k
    assert not torch.equal(a[0].weight, c[0].weight)


def test_architecture_json_round_trip(tmp_path):
    specs = architecture("timeseries", in_channels=2, length=64, n_classes=5, activation="tasu")
    path = tmp_path / "arch.json"
    path.write_text(json.dumps(specs))
    assert load_architecture(path) == specs
    model = build_model(load_architecture(path))
    check_input_shape(model, (2, 64), 5)
    path.write_text(json.dumps({"type": "flatten"}))
    with pytest.raises(ValueError, match="JSON list of layer objects"):
        load_architecture(path)


# --- the hand-written backward passes in gnet.layers (RASU, arcsine of a product) --------------------------------


@pytest.mark.parametrize("act, alpha", [(RASU, 5.0), (RASU, -1.5), (TASU, 10.0), (TASU, 0.7)])
def test_activation_gradients_float64(act, alpha):
    layer = act(alpha_init=alpha).double()
    z = torch.randn(3, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    a = torch.tensor(alpha, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda z, a: functional_call(layer, {"alpha": a}, (z,)), (z, a))


def test_rasu_with_zero_alpha_has_zero_gradients():
    layer = RASU(alpha_init=0.0)
    z = torch.randn(4, 6, requires_grad=True)
    layer(z).sum().backward()
    assert torch.equal(z.grad, torch.zeros_like(z)) and layer.alpha.grad.item() == 0.0


def test_saturated_cosine_gets_no_gradient_like_clamp():
    # x parallel to w (rho = 1, clipped) in row 0 and a generic x in row 1: the clipped row passes no gradient to
    # the weight (like torch.clamp), the other row's gradient equals the formula's autograd gradient.
    layer = GLinear(3, 1, bias_init=0.0).double()
    x = torch.stack([layer.weight.detach()[0] * 2.0, torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64)])
    layer(x[:1]).sum().backward()
    assert torch.equal(layer.weight.grad, torch.zeros_like(layer.weight))
    layer.weight.grad = None
    layer(x[1:]).sum().backward()
    w = layer.weight.detach().clone().requires_grad_(True)
    ref = torch.asin((x[1:] @ w.T) / (x[1:].norm() * w.norm()))
    ref.sum().backward()
    # The layer adds eps = 1e-12 to both squared norms: a relative change of about 1e-12 here (norms ~1).
    torch.testing.assert_close(layer.weight.grad, w.grad, atol=1e-10, rtol=0)


def test_first_layer_shortcut_matches_the_shifted_convolution():
    # Without input gradient a conv layer computes conv(x) + b conv(1) instead of conv(x + b); both must agree,
    # including zero padding after the shift (border patches see fewer shifted pixels).
    gen = torch.Generator().manual_seed(5)
    layer = GConv2d(2, 3, 3, padding=1, bias_init=0.4, generator=gen).double()
    x = torch.randn(2, 2, 6, 6, dtype=torch.float64, generator=gen)
    no_grad_input = layer(x)
    with_grad_input = layer(x.clone().requires_grad_(True))
    torch.testing.assert_close(no_grad_input, with_grad_input, atol=1e-12, rtol=0)
    assert math.isfinite(no_grad_input.sum().item())
