"""Binary layers and packed inference: XNOR-popcount equals the torch layers, PackedBNN equals the model exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnet.bnn import BinaryConv1d, BinaryConv2d, BinaryLinear, build_bnn, convert
from gnet.bnn.models import METHODS
from gnet.bnn.packed import _make_layer, float_thresholds
from gnet.models import architecture, build_model

ARCHS = {
    "digits": ({}, (1, 8, 8)),
    "timeseries": ({"in_channels": 2, "length": 40}, (2, 40)),
    "mlp": ({"in_features": 20, "hidden": (33, 16)}, (20,)),
}


def _randomize_bn(model, seed):
    """Give every BatchNorm non-trivial statistics (negative learned scales included), as after training; a fixed
    scale (``bn_scale="fixed"``, not trained) stays 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 5 + 0.1)
                if m.weight.requires_grad:
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))


def _inputs(shape, n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-384, 384, (n, *shape), generator=g).float() / 128  # 1/128 steps: exact float64 sums


@pytest.mark.parametrize("order", ["pool_first", "gnet_order"])
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_packed_predictions_equal_model_exactly(method, arch, order):
    kwargs, shape = ARCHS[arch]
    layout = {"pool_first": True, "bn_scale": "fixed"} if order == "pool_first" else {"pool_first": False}
    model = build_bnn(architecture(arch, **kwargs), method, seed=3, **({"bn_scale": "learned"} | layout))
    _randomize_bn(model, seed=4)
    model.eval()
    x = _inputs(shape, 200, seed=5)
    with torch.no_grad():
        logits = model(x)
    packed = convert(model)
    assert torch.equal(packed.logits(x, batch_size=37), logits)  # different batching, same bits
    assert np.array_equal(packed.predict(x), logits.argmax(1).numpy())
    assert packed.n_classes == logits.shape[1] and packed.method == method


@pytest.mark.parametrize("arch", ["digits", "timeseries"])
def test_packed_equals_model_on_gaussian_inputs(arch):
    kwargs, shape = ARCHS[arch]
    model = build_bnn(architecture(arch, **kwargs), "bnn", seed=7)
    _randomize_bn(model, seed=8)
    model.eval()
    x = torch.randn(300, *shape, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        logits = model(x)
    assert torch.equal(convert(model).logits(x, batch_size=128), logits)


def test_mnist_shape_with_dropout_kept_packs_exactly():
    model = build_bnn(architecture("mnist"), "bnn", seed=0, keep_dropout=True)
    assert any(isinstance(m, torch.nn.Dropout) for m in model)
    _randomize_bn(model, seed=1)
    model.eval()
    x = _inputs((1, 28, 28), 20, seed=2)
    with torch.no_grad():
        logits = model(x)
    assert torch.equal(convert(model).logits(x), logits)


def test_thresholds_at_exact_ties():
    """BN means on values the sums really take: BN(y) is exactly 0 there, where sign gives +1; the folded
    thresholds must agree, for the real first layer (float threshold) and a binary one (integer threshold)."""
    model = build_bnn(architecture("mlp", in_features=12, hidden=(40, 30)), "bnn", seed=0)
    with torch.no_grad():
        for bn, means in ((model[2], (torch.arange(40) % 5 - 2) / 4), (model[5], 2 * (torch.arange(30) % 7 - 3))):
            bn.running_mean.copy_(means)
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.copy_(torch.where(torch.arange(len(means)) % 2 == 0, 1.0, -1.0))
            bn.bias.zero_()
    model.eval()
    x = _inputs((12,), 2000, seed=1)
    packed = convert(model)
    state = x
    for n_modules, n_stages in ((4, 2), (7, 3)):
        with torch.no_grad():
            assert (model[: n_modules - 1](x) == 0).any()  # ties really occur
            expected = model[:n_modules](x) > 0
        state = x
        for stage in packed.stages[:n_stages]:
            state = stage(state)
        assert np.array_equal(state, expected.numpy())
    assert np.array_equal(packed.predict(x), model(x).argmax(1).numpy())


def test_conv_thresholds_at_exact_ties_with_padding():
    """Integer BN means on a binary conv with zero padding (border patches have fewer terms): exact ties."""
    model = build_bnn(architecture("digits"), "bnn", seed=0, pool_first=False, bn_scale="learned")  # negative scales
    with torch.no_grad():
        bn = model[4]
        bn.running_mean.copy_(torch.arange(32) % 13 - 6.0)
        bn.running_var.fill_(1.0 - bn.eps)
        bn.weight.copy_(torch.where(torch.arange(32) % 3 == 0, -1.0, 1.0))
        bn.bias.zero_()
    model.eval()
    x = _inputs((1, 8, 8), 300, seed=3)
    with torch.no_grad():
        assert (model[:5](x) == 0).any()
        expected = (model[:6](x) > 0).numpy()
    packed = convert(model)
    state = x
    for stage in packed.stages[:2]:
        state = stage(state)
    assert np.array_equal(state.to_bool(), expected)
    assert np.array_equal(packed.predict(x), model(x).argmax(1).numpy())


def test_float_thresholds_edge_cases():
    t = float_thresholds(lambda y: y >= torch.tensor([0.5, -3.0, 7.25]), 3)
    assert t.tolist() == [0.5, -3.0, 7.25]
    assert float_thresholds(lambda y: torch.ones_like(y, dtype=torch.bool), 2).tolist() == [-np.inf, -np.inf]
    assert float_thresholds(lambda y: torch.zeros_like(y, dtype=torch.bool), 1).tolist() == [np.inf]


LAYERS = [
    (BinaryLinear, {"in_features": 150, "out_features": 70}, (150,)),
    (BinaryConv2d, {"in_channels": 5, "out_channels": 9, "kernel_size": 3, "padding": 1}, (5, 9, 7)),
    (
        BinaryConv2d,
        {"in_channels": 3, "out_channels": 4, "kernel_size": (3, 2), "stride": 2, "padding": (2, 1), "dilation": 2},
        (3, 11, 10),
    ),
    (BinaryConv1d, {"in_channels": 4, "out_channels": 6, "kernel_size": 5, "padding": 2, "stride": 2}, (4, 23)),
]


@pytest.mark.parametrize("cls, kwargs, shape", LAYERS, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(LAYERS)])
@pytest.mark.parametrize("scale", ["none", "channel"])
def test_layer_forward_equals_xnor_popcount(cls, kwargs, shape, scale):
    layer = cls(**kwargs, scale=scale, generator=torch.Generator().manual_seed(1)).eval()
    g = torch.Generator().manual_seed(2)
    x = torch.where(torch.rand(40, *shape, generator=g) < 0.5, -1.0, 1.0)
    with torch.no_grad():
        y = layer(x)  # float64, exact: sums of +-1 products
    assert y.dtype == torch.float64
    packed = _make_layer(layer, None, sign=False, binary_in=True)
    dots = packed._binary_dots((x > 0).numpy())
    assert dots.dtype == torch.int64
    if cls is not BinaryLinear:
        dots = dots.movedim(-1, 1)  # conv dots come channel-last
    alpha = layer.alpha().double().view(1, -1, *([1] * (y.ndim - 2)))
    assert torch.equal(dots.double() * alpha, y)
    assert torch.equal(packed((x > 0).numpy()), y)


def test_layer_training_forward_quantizes_and_clips():
    layer = BinaryLinear(
        6,
        3,
        weight_quantizer="htanh",
        input_quantizer="htanh",
        clip_value=0.5,
        generator=torch.Generator().manual_seed(0),
    )
    with torch.no_grad():
        layer.weight.mul_(10)
    x = torch.randn(4, 6)
    y = layer(x)
    expected = torch.where(x >= 0, 1.0, -1.0) @ torch.where(layer.weight >= 0, 1.0, -1.0).T
    torch.testing.assert_close(y, expected)
    layer.clip_latent_()
    assert float(layer.weight.detach().abs().max()) == 0.5


def test_fda_layer_adds_the_annealed_noise_adaptation_term():
    layer = BinaryConv2d(
        3,
        5,
        3,
        weight_quantizer="fda",
        input_quantizer="fda",
        scale="channel",
        generator=torch.Generator().manual_seed(0),
    )
    assert layer.weight_noise.dim == 27 and layer.input_noise.dim == 3
    x = torch.randn(2, 3, 6, 6)
    w = layer.weight
    q = layer.weight_quantizer
    with torch.no_grad():
        w_train = torch.where(w >= 0, 1.0, -1.0) + q.noise_scale * layer.weight_noise(w.reshape(5, -1)).view_as(w)
        w_train = w_train * layer.alpha().view(-1, 1, 1, 1)
        x_noise = layer.input_noise(x.movedim(1, -1)).movedim(-1, 1)
        x_train = torch.where(x >= 0, 1.0, -1.0) + layer.input_quantizer.noise_scale * x_noise
        torch.testing.assert_close(layer(x), torch.nn.functional.conv2d(x_train, w_train))
    for quantizer in (q, layer.input_quantizer):
        quantizer.set_progress(1.0)  # alpha decayed to 0: the training forward is the binary one
    with torch.no_grad():
        expected = torch.nn.functional.conv2d(torch.where(x >= 0, 1.0, -1.0), torch.where(w >= 0, 1.0, -1.0))
        torch.testing.assert_close(layer(x), expected * layer.alpha().view(1, -1, 1, 1))


def test_layers_reject_wrong_shapes_and_do_not_touch_global_rng():
    state = torch.get_rng_state()
    conv = BinaryConv2d(3, 4, 3, generator=torch.Generator().manual_seed(0))
    lin = BinaryLinear(10, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.get_rng_state(), state)
    with pytest.raises(ValueError, match=r"BinaryConv2d expects \(batch, C, H, W\) with C=3, got \(2, 2, 5, 5\)"):
        conv(torch.zeros(2, 2, 5, 5))
    with pytest.raises(ValueError, match=r"BinaryLinear expects \(batch, 10\), got \(2, 11\)"):
        lin(torch.zeros(2, 11))
    with pytest.raises(ValueError, match="unknown scale"):
        BinaryLinear(3, 2, scale="layer")
    with pytest.raises(ValueError, match="unknown quantizer"):
        BinaryLinear(3, 2, weight_quantizer="sign")


def test_convert_rejects_g_nets_and_foreign_modules():
    with pytest.raises(ValueError, match="expects a BNN.*gnet.ehd.convert"):
        convert(build_model(architecture("digits"), seed=0))
    model = build_bnn(architecture("digits"), "bnn", seed=0)
    model.insert(1, torch.nn.GELU())
    with pytest.raises(ValueError, match=r"module 1 \(GELU\) has no packed implementation"):
        convert(model)
    packed = convert(build_bnn(architecture("digits"), "bnn", seed=0))
    with pytest.raises(ValueError, match="float array"):
        packed.predict(np.zeros((3, 1, 8, 8), dtype=np.int64))
    # conv weights: one word per kernel position (C_in <= 64 channel bits); linear: fan_in bits in words
    assert packed.weight_bytes() == 8 * (16 * 9 + 32 * 9 + 128 * 8 + 10 * 2)


@pytest.mark.parametrize(
    "pool, shape",
    [
        (torch.nn.MaxPool2d(2), (3, 4, 9, 7)),
        (torch.nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 8, 9)),
        (torch.nn.MaxPool1d(3), (2, 5, 17)),
        (torch.nn.MaxPool2d((2, 3)), (1, 2, 6, 9)),
    ],
)
def test_or_pool_equals_max_pool_of_signs(pool, shape):
    from gnet.bnn.packed import ChannelBits, _or_pool

    bits = torch.rand(shape, generator=torch.Generator().manual_seed(0)) < 0.3
    expected = pool(bits.float() * 2 - 1) > 0
    pooled = _or_pool(ChannelBits.from_bool(bits.numpy()), pool)
    assert pooled.channels == shape[1] and np.array_equal(pooled.to_bool(), expected.numpy())


# The fused kernels (hdc._kernels.binconv) against the unfused path they replace, bit for bit: strides 1 only,
# (channels, padding, dilation) chosen so that patch bits straddle words (5, 33, 70 channels), positions hold two
# words (70, 130 channels), the kernel spans the whole input, and 1-D layers.
FUSED = [
    (BinaryConv2d, {"in_channels": 33, "out_channels": 70, "kernel_size": 3, "padding": 1}, (33, 9, 7)),
    (BinaryConv2d, {"in_channels": 70, "out_channels": 5, "kernel_size": (2, 3), "padding": (2, 0)}, (70, 5, 6)),
    (BinaryConv2d, {"in_channels": 5, "out_channels": 9, "kernel_size": 3, "padding": 2, "dilation": 2}, (5, 6, 8)),
    (BinaryConv2d, {"in_channels": 130, "out_channels": 3, "kernel_size": 4}, (130, 4, 4)),
    (BinaryConv1d, {"in_channels": 7, "out_channels": 66, "kernel_size": 5, "padding": 2}, (7, 23)),
    (BinaryConv1d, {"in_channels": 64, "out_channels": 4, "kernel_size": 3, "dilation": 3, "padding": 1}, (64, 12)),
]


def _sign_layer(cls, kwargs, binary_in, seed):
    from gnet.bnn.layers import BatchNorm1d, BatchNorm2d

    layer = cls(**kwargs, generator=torch.Generator().manual_seed(seed)).eval()
    bn = (BatchNorm2d if cls is BinaryConv2d else BatchNorm1d)(kwargs["out_channels"])
    g = torch.Generator().manual_seed(seed + 1)
    fan_in = layer.weight[0].numel()
    with torch.no_grad():  # thresholds spread over the reachable sums, both signs of the scale
        bn.running_mean.copy_((torch.rand(bn.num_features, generator=g) - 0.5) * fan_in**0.5 * 2)
        bn.weight.copy_(torch.randn(bn.num_features, generator=g))
    return _make_layer(layer, bn.eval(), sign=True, binary_in=binary_in)


@pytest.mark.parametrize("cls, kwargs, shape", FUSED, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(FUSED)])
def test_fused_binary_conv_sign_equals_hamming_path(cls, kwargs, shape):
    from gnet.bnn.packed import ChannelBits
    from hdc.packed import pack_bits

    packed = _sign_layer(cls, kwargs, binary_in=True, seed=11)
    assert packed._fusable()
    bits = torch.rand(40, *shape, generator=torch.Generator().manual_seed(12)) < 0.5
    state = ChannelBits.from_bool(bits.numpy())
    h, in_shape, out_shape = packed._hamming(state)
    expected = pack_bits((h <= packed._max_hamming(in_shape)).reshape(len(h), *out_shape, -1))
    got = packed(state)
    assert isinstance(got, ChannelBits) and got.channels == kwargs["out_channels"]
    assert np.array_equal(got.words, expected)
    assert 0 < got.to_bool().mean() < 1  # the thresholds really split the sums


@pytest.mark.parametrize("cls, kwargs, shape", FUSED, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(FUSED)])
def test_fused_real_conv_sign_equals_float64_conv(cls, kwargs, shape):
    from hdc.packed import pack_bits

    packed = _sign_layer(cls, kwargs, binary_in=False, seed=13)
    x = _inputs(shape, 30, seed=14)
    y = packed._real_sums(x).movedim(1, -1)  # the unfused path: float64 convolution, then the thresholds
    expected = pack_bits((y >= packed.threshold).numpy())
    got = packed._fused_real_sign(x)
    assert got is not None and np.array_equal(got.words, expected)
    assert np.array_equal(packed(x.double()).words, expected)  # float64 inputs take the kernel too


def test_exact_sum_guard_and_fallback():
    """The fused real kernel sums in its own order; it runs only where every float64 sum is exact, otherwise the
    layer takes the model's own float64 convolution (and the packed net still equals the model)."""
    from gnet.bnn._packed_layer import exact_sums

    mnist = ((torch.arange(256.0) / 255 - 0.1307) / 0.3081).numpy().astype(np.float32)  # every 8-bit value
    assert exact_sums(mnist, 9)  # |x| < 2^2, lowest bits >= 2^-31 (float32 >= 2^-8): 2^4 * 2^2 <= 2^52 * 2^-31
    assert exact_sums(np.zeros(5, np.float32), 9) and exact_sums(np.zeros(0), 9)
    wide = np.array([1e6, 3e-10], dtype=np.float32)  # 3e-10 < 2^-31, its lowest bit <= 2^-32: 2^1 2^20 > 2^20
    assert not exact_sums(wide, 2) and not exact_sums(-wide, 2)
    assert not exact_sums(np.array([1.0, np.nan], np.float32), 2)
    assert not exact_sums(np.array([1.0, -np.inf]), 2)
    assert exact_sums(np.array([2.0**49, -1.0]), 4)  # |x| < 2^50: 4 * 2^50 <= 2^52 * 1
    assert not exact_sums(np.array([2.0**49, 1.0]), 5)
    assert not exact_sums(np.array([1.0, 0.1]), 4)  # 0.1's lowest bit is 2^-56
    assert exact_sums(np.array([2.0**-149, 1e-40], np.float32), 9)  # float32 subnormals: exact in float64
    assert not exact_sums(np.array([3 * 2.0**-1074, 2.0**-1020]), 9)  # float64 lowest bit 2^-1074, |x| ~ 2^-1020
    assert exact_sums(np.arange(-128, 128) / 128.0, 9)  # float64 inputs with short mantissas take the kernel too

    model = build_bnn(architecture("digits"), "bnn", seed=5)
    _randomize_bn(model, seed=6)
    model.eval()
    x = _inputs((1, 8, 8), 64, seed=7)
    x[::3, 0, 2, 3] = 1e-12  # a few items make the batch's sums inexact in float64: the fallback path
    packed = convert(model)
    assert packed.stages[0]._fused_real_sign(x[:10]) is None and packed.stages[0]._fused_real_sign(x[1:3]) is not None
    with torch.no_grad():
        logits = model(x)
    assert torch.equal(packed.logits(x, batch_size=10), logits)


def test_mnist_net_on_8_bit_images_equals_model_exactly():
    """The benchmark's net and inputs: arch "mnist", normalised 8-bit images, through both fused kernels."""
    model = build_bnn(architecture("mnist"), "bnn", seed=2)
    _randomize_bn(model, seed=3)
    model.eval()
    g = torch.Generator().manual_seed(4)
    x = (torch.randint(0, 256, (48, 1, 28, 28), generator=g).float() / 255 - 0.1307) / 0.3081
    packed = convert(model)
    assert packed.stages[0]._fusable() and packed.stages[2]._fusable()
    with torch.no_grad():
        logits = model(x)
    assert torch.equal(packed.logits(x, batch_size=20), logits)
