"""BNN quantizers: each forward and backward against its formula, gradcheck of the smooth parts, registry, annealing."""

from __future__ import annotations

import math

import pytest
import torch

from gnet.bnn import quantizers as qz

GRID = torch.linspace(-3.0, 3.0, 601, dtype=torch.float64)


def _ref_sign(x):
    return torch.where(x >= 0, 1.0, -1.0).double()


def _ss(x, b):
    s = torch.sigmoid(b * x)
    return 2 * s * (1 + b * x * (1 - s)) - 1


def _ss_grad(x, b):
    return b * (2 - b * x * torch.tanh(b * x / 2)) / (1 + torch.cosh(b * x))


def _fda_grad(x, n, omega, clip):
    g = sum(torch.cos((2 * i + 1) * omega * x) for i in range(n)) * 4 * omega / math.pi
    return g * (x.abs() <= clip).double() if clip is not None else g


def _forward_backward(q, x):
    x = x.clone().requires_grad_(True)
    y = q(x)
    y.backward(torch.ones_like(y))
    return y.detach(), x.grad


# (quantizer, expected training forward, expected pseudo-gradient)
CASES = [
    (qz.get("ste"), _ref_sign, lambda x: torch.ones_like(x)),
    (qz.get("ste", clip_value=0.5), _ref_sign, lambda x: (x.abs() <= 0.5).double()),
    (qz.get("htanh"), _ref_sign, lambda x: (x.abs() <= 1).double()),
    (qz.get("approx_sign"), _ref_sign, lambda x: (2 - 2 * x.abs()).clamp(min=0)),
    (qz.get("swish_sign", beta=5.0), _ref_sign, lambda x: _ss_grad(x, 5.0)),
    (qz.get("swish_sign", beta=3.0, smooth_forward=True), lambda x: _ss(x, 3.0), lambda x: _ss_grad(x, 3.0)),
    (
        qz.get("fda", n_terms=4, n_terms_end=None, omega=math.pi / 2, clip_value=None),
        _ref_sign,
        lambda x: _fda_grad(x, 4, math.pi / 2, None),
    ),
    (qz.get("fda"), _ref_sign, lambda x: _fda_grad(x, 10, 0.1, 1.0)),
    (qz.get("pc++", prox="sign", backward="htanh", mu_end=None), _ref_sign, lambda x: (x.abs() <= 1).double()),
    (qz.get("pc++", prox="sign", backward="swish", beta=2.0, mu_end=None), _ref_sign, lambda x: _ss_grad(x, 2.0)),
]


@pytest.mark.parametrize("q, forward, backward", CASES, ids=[repr(c[0]) for c in CASES])
def test_forward_and_backward_match_formula(q, forward, backward):
    y, g = _forward_backward(q, GRID)
    torch.testing.assert_close(y, forward(GRID), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(g, backward(GRID), rtol=1e-9, atol=1e-9)
    # eval mode is always the hard sign, with sign(0) = +1
    assert torch.equal(q(GRID, training=False), _ref_sign(GRID))


def test_sign_of_zero_is_plus_one():
    x = torch.tensor([0.0, -0.0, 1e-30, -1e-30])
    assert qz.hard_sign(x).tolist() == [1.0, 1.0, 1.0, -1.0]
    for name in qz.QUANTIZERS:
        assert qz.get(name)(x, training=False).tolist() == [1.0, 1.0, 1.0, -1.0]


class _Surrogate(torch.autograd.Function):
    """forward B(x), backward the quantizer's closed-form B'(x): gradcheck compares B' with B's finite differences."""

    @staticmethod
    def forward(ctx, x, q):
        ctx.save_for_backward(x)
        ctx.q = q
        return q.surrogate(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ctx.q.pseudo_grad(x), None


SMOOTH_POINTS = torch.tensor([-2.3, -0.97, -0.6, -0.21, -0.05, 0.07, 0.33, 0.8, 0.95, 1.7], dtype=torch.float64)


@pytest.mark.parametrize("q", [c[0] for c in CASES] + [qz.get("pc++")], ids=lambda q: repr(q))
def test_pseudo_gradient_is_derivative_of_surrogate(q):
    x = SMOOTH_POINTS.clone().requires_grad_(True)  # no point within 1e-6 of a kink (0, +-0.5, +-1)
    assert torch.autograd.gradcheck(lambda t: _Surrogate.apply(t, q), (x,), eps=1e-6, atol=1e-6)
    # and autograd through the surrogate's own torch expression gives the same B'
    (g,) = torch.autograd.grad(q.surrogate(x).sum(), x)
    torch.testing.assert_close(g, q.pseudo_grad(x.detach()), rtol=1e-9, atol=1e-9)


def test_swish_sign_landmarks():
    b = 5.0
    x = torch.linspace(-2, 2, 400001, dtype=torch.float64)
    ss = qz.swish_sign_function(x, b)
    assert float(ss.max()) == pytest.approx(1.1997, abs=1e-4)
    assert float(x[ss.argmax()]) * b == pytest.approx(2.40, abs=1e-2)
    assert float(_ss_grad(torch.tensor(0.0, dtype=torch.float64), b)) == pytest.approx(b)
    nz = x != 0
    assert torch.equal(_ref_sign(ss[nz]), _ref_sign(x[nz]))  # sign o SS_b = sign
    # huge arguments: the pseudo-gradient is 0, not NaN
    assert torch.equal(qz.get("swish_sign").pseudo_grad(torch.tensor([1e6, -1e6])), torch.zeros(2))


def test_swish_sign_relative_beta_is_per_output_channel():
    # Rows 1000x apart in scale: in relative units each row gets b / mean|row|, so the forward is the same function
    # of w / mean|w| in every row, and scaling a row leaves its forward unchanged.
    gen = torch.Generator().manual_seed(0)
    scales = torch.tensor([1e-3, 1e-2, 1e-1, 1.0], dtype=torch.float64)[:, None]
    w = torch.randn(4, 3, 5, generator=gen, dtype=torch.float64) * scales[..., None]
    q = qz.get("swish_sign", beta=3.0, smooth_forward=True, relative=True)
    b = 3.0 / w.abs().mean(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(q.forward_values(w), _ss(w, b), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.forward_values(w * 7.0), q.forward_values(w), rtol=1e-12, atol=1e-12)
    y, g = _forward_backward(q, w)
    torch.testing.assert_close(g, _ss_grad(w, b), rtol=1e-12, atol=1e-12)  # the mean is held fixed: detached
    x = w.clone().requires_grad_(True)
    (g_surrogate,) = torch.autograd.grad(q.surrogate(x).sum(), x)
    torch.testing.assert_close(g_surrogate, q.pseudo_grad(w), rtol=1e-12, atol=1e-12)
    assert qz.get(q.to_config()) == q and q.to_config()["relative"] is True
    assert torch.equal(q.forward_values(torch.zeros(2, 3)), torch.zeros(2, 3))  # an all-zero row: 0, not NaN
    absolute = qz.get("swish_sign", beta=3.0, smooth_forward=True)  # control: an absolute b sees the scale
    assert not torch.allclose(absolute.forward_values(w * 7.0), absolute.forward_values(w))
    with pytest.raises(ValueError, match="relative must be a bool"):
        qz.get("swish_sign", relative=1)


def test_fda_closed_form_landmarks_and_series():
    omega, n = 0.1, 18
    q = qz.get("fda", n_terms=n, n_terms_end=None, omega=omega, clip_value=None)
    assert float(q.pseudo_grad(torch.zeros(1, dtype=torch.float64))) == pytest.approx(4 * omega * n / math.pi)
    first_zero = math.pi / (2 * n * omega)
    assert float(q.pseudo_grad(torch.tensor([first_zero], dtype=torch.float64))) == pytest.approx(0, abs=1e-12)
    assert float(q.pseudo_grad(torch.tensor([0.95], dtype=torch.float64))) < 0  # side lobe inside |x| <= 1
    # the closed form equals the cosine sum, also next to the zeros of sin(omega x), where it switches branch
    period = 2 * math.pi / omega
    x = torch.cat([GRID * 20, torch.tensor([period / 2 + 1e-7, period - 1e-6, period, -period / 2])])
    torch.testing.assert_close(q.pseudo_grad(x), _fda_grad(x, n, omega, None), rtol=1e-5, atol=1e-5)
    # the surrogate is the truncated square-wave series: close to sign(x) away from 0 for many terms
    many = qz.get("fda", n_terms=400, n_terms_end=None, omega=0.1, clip_value=None)
    xs = torch.tensor([-20.0, -5.0, 3.0, 15.0], dtype=torch.float64)
    torch.testing.assert_close(many.surrogate(xs), _ref_sign(xs), atol=0.02, rtol=0)


def test_pc_plus_plus_prox_map_is_a_proximal_operator():
    q = qz.get("pc++", mu=0.3, mu_end=None)
    z = torch.linspace(-3, 3, 600001, dtype=torch.float64)
    reg = torch.minimum((z - 1).abs(), (z + 1).abs())
    for v in (-2.0, -1.1, -0.8, -0.1, 0.25, 0.9, 1.2, 2.5):
        objective = 0.5 * (z - v) ** 2 + 0.3 * reg
        best = float(z[objective.argmin()])
        assert float(q.prox_map(torch.tensor([v], dtype=torch.float64))) == pytest.approx(best, abs=2e-5)


def test_pc_plus_plus_decomposition_and_annealing():
    q = qz.get("pc++", prox="toward_pm1", backward="swish", mu=0.0, mu_end=1.0, beta=4.0)
    x = GRID[GRID != 0]
    torch.testing.assert_close(q.forward_values(x), q.prox_map(q.surrogate(x)))  # F = P o B
    assert torch.equal(_ref_sign(q.forward_values(x)), _ref_sign(x))  # sign o F = sign
    q0 = qz.get("pc++")  # identity backward, mu 0 -> 1
    inside = x[x.abs() <= 1]
    q0.set_progress(0.0)
    torch.testing.assert_close(q0.forward_values(inside), inside)  # mu = 0: full precision
    q0.set_progress(1.0)
    assert torch.equal(q0.forward_values(inside), _ref_sign(inside))  # mu = 1: binary


def test_annealing_schedules_and_state():
    s = qz.get("swish_sign", beta=2.0, beta_end=32.0, smooth_forward=True)
    s.set_progress(0.0)
    assert s.beta == pytest.approx(2.0)
    s.set_progress(0.5)
    assert s.beta == pytest.approx(8.0)
    s.set_progress(1.0)
    assert s.beta == pytest.approx(32.0)
    f = qz.get("fda")
    assert (f.n_terms, f.noise_scale) == (10, pytest.approx(0.1))
    f.set_progress(1.0)
    assert (f.n_terms, f.noise_scale) == (18, pytest.approx(0.0, abs=1e-15))
    g = qz.get(f.to_config())
    assert g == f and g.progress == 0.0
    g.load_state_dict(f.state_dict())
    assert g.n_terms == 18
    with pytest.raises(ValueError, match="progress"):
        f.set_progress(1.5)


def test_registry_errors_name_the_choices():
    assert set(qz.QUANTIZERS) == {"ste", "htanh", "approx_sign", "swish_sign", "pc++", "fda"}
    with pytest.raises(ValueError, match=r"unknown quantizer 'sgn'; valid: ste, htanh, approx_sign"):
        qz.get("sgn")
    with pytest.raises(ValueError, match="quantizer 'htanh'.*unexpected keyword"):
        qz.get("htanh", beta=3)
    with pytest.raises(ValueError, match="beta must be > 0"):
        qz.get("swish_sign", beta=0)
    with pytest.raises(ValueError, match="unknown prox map"):
        qz.get("pc++", prox="l2")
    with pytest.raises(ValueError, match="name"):
        qz.get({"beta": 1.0})
    for name in qz.QUANTIZERS:
        q = qz.get(name)
        assert qz.get(q.to_config()) == q


def test_noise_adaptation_is_seeded_and_leaves_global_rng_alone():
    state = torch.get_rng_state()
    a = qz.NoiseAdaptation(130, generator=torch.Generator().manual_seed(3))
    b = qz.NoiseAdaptation(130, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert a.down.shape == (2, 130) and torch.equal(a.up, b.up)
    x = torch.randn(4, 7, 130)
    assert a(x).shape == x.shape
    with pytest.raises(ValueError, match=r"\(\.\.\., 130\)"):
        a(torch.zeros(3, 5))
