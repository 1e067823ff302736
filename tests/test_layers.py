"""G-Net layers against the formula z = arcsin(<w~, x+b> / (||w~|| ||x+b||)), computed independently in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gnet.layers import RASU, TASU, GConv1d, GConv2d, GLinear, NormalizedClassifier


def _reference_conv2d(layer: GConv2d, x: torch.Tensor) -> torch.Tensor:
    """Per-patch loop: shift by b, zero-pad, take each receptive field and apply the formula."""
    w = layer.effective_weight().double()
    b = layer.bias.item()
    xs = torch.nn.functional.pad(x.double() + b, (layer.padding[1],) * 2 + (layer.padding[0],) * 2)
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    oh, ow = layer.output_length(tuple(x.shape[2:]))
    out = torch.empty(x.shape[0], w.shape[0], oh, ow, dtype=torch.float64)
    for i in range(oh):
        for j in range(ow):
            patch = xs[:, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw]
            p = patch.reshape(x.shape[0], -1)
            w2 = w.reshape(w.shape[0], -1)
            rho = (p @ w2.T) / (p.norm(dim=1, keepdim=True) * w2.norm(dim=1))
            out[:, :, i, j] = torch.asin(rho)
    return out


@pytest.mark.parametrize("stride,padding,dilation", [(1, 0, 1), (2, 1, 1), (1, 2, 2), ((2, 1), (1, 0), (1, 2))])
def test_conv2d_matches_formula_per_patch(stride, padding, dilation):
    gen = torch.Generator().manual_seed(0)
    layer = GConv2d(3, 5, (3, 2), stride=stride, padding=padding, dilation=dilation, bias_init=0.3, generator=gen)
    x = torch.randn(2, 3, 9, 8, generator=gen, dtype=torch.float64)
    got = layer.double()(x)
    ref = _reference_conv2d(layer, x)
    assert got.shape == ref.shape
    torch.testing.assert_close(got, ref, atol=1e-9, rtol=0)


def test_conv1d_matches_formula():
    gen = torch.Generator().manual_seed(1)
    layer = GConv1d(2, 4, 5, stride=2, padding=3, dilation=2, bias_init=-0.2, generator=gen).double()
    x = torch.randn(3, 2, 17, generator=gen, dtype=torch.float64)
    # A 1-D conv is a 2-D conv over a height-1 image; reuse the 2-D per-patch reference.
    layer2 = GConv2d(2, 4, (1, 5), stride=(1, 2), padding=(0, 3), dilation=(1, 2), bias_init=-0.2).double()
    with torch.no_grad():
        layer2.weight.copy_(layer.weight.unsqueeze(2))
    ref = _reference_conv2d(layer2, x.unsqueeze(2))[:, :, 0]
    torch.testing.assert_close(layer(x), ref, atol=1e-9, rtol=0)


def test_linear_and_classifier_match_formula():
    gen = torch.Generator().manual_seed(2)
    lin = GLinear(7, 3, bias_init=0.5, generator=gen).double()
    x = torch.randn(4, 7, generator=gen, dtype=torch.float64)
    xs = x + 0.5
    w = lin.weight.detach()
    ref = torch.asin((xs @ w.T) / (xs.norm(dim=1, keepdim=True) * w.norm(dim=1)))
    torch.testing.assert_close(lin(x), ref, atol=1e-9, rtol=0)

    clf = NormalizedClassifier(7, 3, bias_init=0.1, generator=gen).double()
    hs = x + 0.1
    W = clf.weight.detach()
    cos = (hs @ W) / (hs.norm(dim=1, keepdim=True) * W.norm(dim=0))  # class COLUMNS
    torch.testing.assert_close(clf(x), cos, atol=1e-8, rtol=0)  # eps 1e-12 inside the norms


def test_batchnorm_folds_into_effective_weight():
    gen = torch.Generator().manual_seed(3)
    layer = GConv2d(2, 4, 3, padding=1, batch_norm=True, generator=gen).double()
    with torch.no_grad():
        layer.bn.weight.copy_(torch.tensor([1.5, -0.7, 0.2, -2.0]))
        layer.bn.running_var.copy_(torch.tensor([0.5, 2.0, 1.0, 3.0]))
    layer.eval()
    x = torch.randn(2, 2, 5, 5, generator=gen, dtype=torch.float64)
    plain = GConv2d(2, 4, 3, padding=1, bias_init=layer.bias.item()).double()
    with torch.no_grad():
        plain.weight.copy_(layer.effective_weight())
    torch.testing.assert_close(layer(x), plain(x), atol=1e-9, rtol=0)
    assert (layer.effective_weight()[1] * layer.weight[1] <= 0).all()  # negative gamma flips the unit


@pytest.mark.parametrize(
    "make",
    [
        lambda g: GLinear(5, 3, bias_init=0.2, generator=g),
        lambda g: GConv1d(2, 3, 3, padding=1, stride=2, bias_init=0.2, generator=g),
        lambda g: GConv2d(2, 3, 3, padding=1, dilation=2, bias_init=0.2, generator=g),
        lambda g: NormalizedClassifier(5, 3, bias_init=0.2, generator=g),
    ],
)
def test_gradcheck_float64(make):
    gen = torch.Generator().manual_seed(4)
    layer = make(gen).double()
    shape = {GLinear: (2, 5), NormalizedClassifier: (2, 5), GConv1d: (2, 2, 6), GConv2d: (2, 2, 6, 6)}[type(layer)]
    x = torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: layer(inp), (x,), eps=1e-6, atol=1e-5)
    # and with respect to the parameters (weight and the bias-trick scalar)
    params = [p for p in layer.parameters() if p.requires_grad]

    def f(*ps):
        saved = [p.data for p in params]
        for p, v in zip(params, ps, strict=False):
            p.data = v
        out = layer(x.detach())
        for p, v in zip(params, saved, strict=False):
            p.data = v
        return out

    # functional_call keeps autograd connected to the parameter tensors
    from torch.func import functional_call

    names = [n for n, p in layer.named_parameters() if p.requires_grad]
    inputs = tuple(p.detach().clone().requires_grad_(True) for p in params)
    assert torch.autograd.gradcheck(
        lambda *ps: functional_call(layer, dict(zip(names, ps, strict=True)), (x.detach(),)),
        inputs,
        eps=1e-6,
        atol=1e-5,
    )


@pytest.mark.parametrize(
    "layer",
    [
        GLinear(4, 3, bias_init=0.0),
        GConv2d(1, 2, 3, padding=1, bias_init=0.0),
        GConv1d(1, 2, 3, padding=1, bias_init=0.0),
        NormalizedClassifier(4, 3, bias_init=0.0),
    ],
)
def test_no_nan_at_zero_input(layer):
    shape = {GLinear: (2, 4), NormalizedClassifier: (2, 4), GConv2d: (2, 1, 5, 5), GConv1d: (2, 1, 5)}[type(layer)]
    x = torch.zeros(*shape, requires_grad=True)
    out = layer(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


def test_no_nan_gradient_when_rho_is_one():
    layer = GLinear(3, 1, bias_init=0.0)
    x = layer.weight.detach().clone().requires_grad_(True)  # x parallel to w: rho = 1
    out = layer(x)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and out.item() == pytest.approx(math.pi / 2, abs=1e-2)


def test_activations():
    z = torch.linspace(-1, 1, 11)
    r, t = RASU(alpha_init=5.0), TASU(alpha_init=10.0)
    torch.testing.assert_close(r(z), torch.relu(5 * z))
    torch.testing.assert_close(t(z), torch.tanh(10 * z))
    assert r.alpha.requires_grad and t.alpha.requires_grad


def test_wrong_input_shape_is_named():
    with pytest.raises(ValueError, match="GConv2d expects"):
        GConv2d(3, 4, 3)(torch.zeros(1, 2, 5, 5))
    with pytest.raises(ValueError, match="GLinear expects"):
        GLinear(3, 4)(torch.zeros(1, 5))


def test_rasu_gradcheck_float64():
    r = RASU(alpha_init=2.5).double()
    gen = torch.Generator().manual_seed(5)
    z = torch.randn(40, 3, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    alpha = r.alpha.detach().clone().requires_grad_(True)
    from torch.func import functional_call

    assert torch.autograd.gradcheck(lambda zz, a: functional_call(r, {"alpha": a}, (zz,)), (z, alpha))


def test_float32_arcsine_kernel_is_within_float32_rounding():
    import hdc._kernels.arcsin as K

    grid = np.linspace(-1.0, 1.0, 20_001, dtype=np.float32)
    got = np.array([K.asin32(v) for v in grid], dtype=np.float64)
    # Cephes asinf's documented peak relative error is 2.5e-7; |asin| <= pi/2 bounds the absolute error by 4e-7.
    assert np.abs(got - np.arcsin(grid.astype(np.float64))).max() < 4e-7


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "make,shape,input_grad",
    [
        (lambda g: GConv2d(1, 4, 3, padding=1, bias_init=0.3, generator=g), (3, 1, 6, 6), False),  # shift path
        (lambda g: GConv2d(2, 4, 3, padding=1, bias_init=0.3, generator=g), (3, 2, 6, 6), True),
        (lambda g: GLinear(6, 5, bias_init=0.2, generator=g), (4, 6), True),
    ],
)
def test_fused_kernels_match_torch_path(monkeypatch, dtype, make, shape, input_grad):
    """The numba kernels (arcsine forward/backward, RASU backward) against the torch-only fallback."""
    import gnet.layers._autograd as L

    gen = torch.Generator().manual_seed(6)
    layer, act = make(gen).to(dtype), RASU(alpha_init=3.0).to(dtype)
    x = torch.randn(*shape, generator=gen, dtype=dtype)
    weights = torch.randn(layer(x).shape, generator=gen, dtype=dtype)

    def run():
        xi = x.clone().requires_grad_(input_grad)
        for p in (*layer.parameters(), *act.parameters()):
            p.grad = None
        out = act(layer(xi))
        (out * weights).sum().backward()
        grads = [p.grad.clone() for p in (*layer.parameters(), *act.parameters())]
        return out.detach(), grads + ([xi.grad] if input_grad else [])

    fused = run()
    monkeypatch.setattr(L, "USE_FUSED_KERNELS", False)
    plain = run()
    tol = dict(atol=1e-5, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(fused[0], plain[0], **tol)
    for a, b in zip(fused[1], plain[1], strict=False):
        torch.testing.assert_close(a, b, **tol)


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda g: GConv2d(3, 5, 3, padding=1, generator=g), (4, 3, 9, 9)),
        (lambda g: GConv1d(2, 4, 5, stride=2, generator=g), (3, 2, 21)),
        (lambda g: GLinear(7, 6, generator=g), (5, 7)),
    ],
)
def test_inference_pass_equals_the_training_pass(make, shape):
    """Without autograd (eval, EHD conversion) the G-layer and RASU run the threaded in-place kernels; they give the
    training pass's values to float32 rounding (both use the same arcsine; FMA contraction may differ by an ulp)."""
    g = torch.Generator().manual_seed(3)
    layer, act = make(g).eval(), RASU()
    x = torch.randn(*shape, generator=g)
    with_graph = act(layer(x.requires_grad_(True)))
    with torch.no_grad():
        x_copy = x.detach().clone()
        without = act(layer(x_copy))
    torch.testing.assert_close(without, with_graph.detach(), rtol=2e-6, atol=2e-6)
    assert torch.equal(x_copy, x.detach())  # the caller's input is never written
    with torch.no_grad():  # a second call gives the same bits (no thread-count dependence)
        assert torch.equal(act(layer(x_copy)), without)
