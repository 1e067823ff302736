"""Binarization quantizers: a forward function and a backward pseudo-gradient per registered name.

Notation: ``r`` is a latent weight or a pre-activation, ``F(r)`` the training forward and ``B'(r)`` the
pseudo-gradient the backward pass uses in place of ``F'`` (``g_r = B'(r) * g_F``). ``B`` itself is the *surrogate*:
the function whose true derivative is ``B'``; :meth:`Quantizer.surrogate` evaluates it so tests can check ``B'``
by autograd and gradcheck. In eval mode every quantizer is the hard sign, so a trained network is binary.

``sign(0) = +1`` everywhere (larq's convention, BinaryConnect's deterministic rule, and :func:`hdc.pack_sign`'s
``x >= 0`` bit), so a binary value is always one bit; ``torch.sign`` (which gives 0) is never used.

Registered names (see :data:`QUANTIZERS`):

- ``ste``: sign forward, identity backward (BinaryConnect; ``clip_value`` turns it into ``htanh``).
- ``htanh``: sign forward, ``1{|r| <= clip_value}`` backward (BNN: the derivative of ``clip(r, -1, 1)``).
- ``approx_sign``: sign forward, ``(2 - 2|r|) 1{|r| <= 1}`` backward (Bi-Real's piecewise quadratic).
- ``swish_sign``: backward ``SS_b'(r) = b (2 - b r tanh(b r / 2)) / (1 + cosh(b r))`` with the sign-Swish
  ``SS_b(r) = 2 s(b r) [1 + b r (1 - s(b r))] - 1``; forward sign (BNN+) or, with ``smooth_forward=True``, ``SS_b``
  itself (the BNN++ forward); ``b`` can be annealed geometrically from ``beta`` to ``beta_end``, and the forward
  can switch to the sign (its limit) from a given progress ``hard_from``.
- ``pc++``: a ProxConnect++ forward-backward pair ``F = P_mu o B``, backward ``B'``; ``B`` is ``identity``,
  ``htanh`` (clip) or ``swish``; ``P_mu`` is ``sign`` or ``toward_pm1`` (the proximal map of
  ``mu * dist(r, {-1, +1})``: every ``r`` moves by ``mu`` toward its nearest of -1, +1 without crossing it); ``mu``
  is annealed linearly from ``mu`` to ``mu_end``; at ``mu >= 1`` and ``|r| <= 1`` the forward is the sign.
- ``fda``: sign forward, backward the derivative of the first ``n_terms`` terms of the square wave's Fourier
  series ``(4 omega / pi) sum_{i<N} cos((2i + 1) omega r)``, zeroed outside ``|r| <= clip_value``; ``N`` grows
  linearly from ``n_terms`` to ``n_terms_end`` with the progress; the noise-adaptation module
  (:class:`NoiseAdaptation`, built by the layer) is added with weight ``noise_scale`` = ``alpha (1 + cos(pi t)) / 2``.

Annealing: a trainer calls :meth:`Quantizer.set_progress` with ``t`` in [0, 1] (0 before the first epoch, 1 in
the last); :meth:`Quantizer.state_dict` / :meth:`Quantizer.to_config` make the quantizer serialisable.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from hdc._validate import check_choice, check_int, check_number

__all__ = ["QUANTIZERS", "NoiseAdaptation", "Quantizer", "get", "hard_sign", "register", "swish_sign_function"]

_REGISTRY: dict[str, type[Quantizer]] = {}


def hard_sign(x: torch.Tensor) -> torch.Tensor:
    """+1 where ``x >= 0`` (so ``sign(0) = sign(-0.0) = +1``), else -1; same dtype as ``x``."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def swish_sign_function(x: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    """The sign-Swish ``SS_b(x) = 2 s(b x) [1 + b x (1 - s(b x))] - 1`` (smooth, overshoots to +-1.1997)."""
    bx = beta * x
    s = torch.sigmoid(bx)
    return 2.0 * s * (1.0 + bx * (1.0 - s)) - 1.0


def _swish_sign_grad(x: torch.Tensor, beta: float | torch.Tensor) -> torch.Tensor:
    bx = beta * x
    # 1 + cosh overflows to inf for |bx| > ~710 in float64, where the true value is ~0: inf in the denominator
    # gives exactly that 0 (the numerator grows only linearly).
    return beta * (2.0 - bx * torch.tanh(bx / 2.0)) / (1.0 + torch.cosh(bx))


class _Quantize(torch.autograd.Function):
    """y = quantizer.forward_values(x); dL/dx = quantizer.pseudo_grad(x) * dL/dy."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, quantizer: Quantizer) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.quantizer = quantizer
        return quantizer.forward_values(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * ctx.quantizer.pseudo_grad(x), None


class Quantizer:
    """One forward/backward pair. Subclasses set ``name`` and implement :meth:`forward_values`,
    :meth:`pseudo_grad` and :meth:`surrogate`; parameters are plain floats/ints given to ``__init__``."""

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.progress = 0.0

    # -- the pair -------------------------------------------------------------------------------------------------
    def forward_values(self, x: torch.Tensor) -> torch.Tensor:
        """Training forward ``F(x)`` (no autograd); default: the hard sign."""
        return hard_sign(x)

    def pseudo_grad(self, x: torch.Tensor) -> torch.Tensor:
        """``B'(x)``, same shape and dtype as ``x``."""
        raise NotImplementedError

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        """``B(x)`` as a differentiable torch expression whose autograd derivative is :meth:`pseudo_grad`."""
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, training: bool = True) -> torch.Tensor:
        """``F(x)`` with the pseudo-gradient backward when ``training``, else the hard sign."""
        if not training:
            return hard_sign(x)
        return _Quantize.apply(x, self)

    # -- annealing and serialisation ------------------------------------------------------------------------------
    @property
    def noise_scale(self) -> float:
        """Weight of a noise-adaptation module in the training forward (0 unless the quantizer uses one)."""
        return 0.0

    def set_progress(self, t: float) -> None:
        """Annealing position ``t`` in [0, 1] (fraction of training done); schedules read :attr:`progress`."""
        self.progress = check_number(t, "progress", 0.0, 1.0)

    def params(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable)."""
        return {}

    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., **params}``; :func:`get` rebuilds an equal quantizer from it."""
        return {"name": self.name, **self.params()}

    def state_dict(self) -> dict[str, float]:
        return {"progress": self.progress}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.set_progress(state["progress"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantizer) and self.to_config() == other.to_config()

    __hash__ = None  # type: ignore[assignment]


def register(cls: type[Quantizer]) -> type[Quantizer]:
    """Class decorator: make ``cls`` available to :func:`get` under ``cls.name``."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"quantizer name {cls.name!r} is empty or already registered")
    _REGISTRY[cls.name] = cls
    return cls


def _check_clip(clip_value: float | None) -> float | None:
    return None if clip_value is None else check_number(clip_value, "clip_value", 0.0, strict=True)


@register
class STE(Quantizer):
    """BinaryConnect: sign forward, identity backward (or ``1{|x| <= clip_value}`` when a clip is given)."""

    name = "ste"

    def __init__(self, clip_value: float | None = None) -> None:
        super().__init__()
        self.clip_value = _check_clip(clip_value)

    def pseudo_grad(self, x: torch.Tensor) -> torch.Tensor:
        if self.clip_value is None:
            return torch.ones_like(x)
        return (x.abs() <= self.clip_value).to(x.dtype)

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.clip_value is None else torch.clamp(x, -self.clip_value, self.clip_value)

    def params(self) -> dict[str, Any]:
        return {"clip_value": self.clip_value}


@register
class HTanh(STE):
    """BNN: sign forward, ``1{|x| <= clip_value}`` backward (the derivative of Htanh = clip(x, -1, 1))."""

    name = "htanh"

    def __init__(self, clip_value: float = 1.0) -> None:
        super().__init__(check_number(clip_value, "clip_value", 0.0, strict=True))


@register
class ApproxSign(Quantizer):
    """Bi-Real: sign forward, ``(2 - 2|x|) 1{|x| <= 1}`` backward, the derivative of the piecewise quadratic
    ``B(x) = 2x - x|x|`` on ``|x| <= 1`` (``sign(x)`` outside)."""

    name = "approx_sign"

    def pseudo_grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(2.0 - 2.0 * x.abs(), min=0.0)

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        c = torch.clamp(x, -1.0, 1.0)
        return 2.0 * c - c * c.abs()


@register
class SwishSign(Quantizer):
    """BNN+ (``smooth_forward=False``: sign forward) or the BNN++ forward (``smooth_forward=True``: ``SS_b``
    forward); backward ``SS_b'``. ``b`` goes geometrically from ``beta`` (progress 0) to ``beta_end`` (progress 1);
    ``beta_end=None`` keeps it fixed. From progress ``hard_from`` on, the smooth forward is replaced by its limit
    ``b -> inf``, the sign, so the last epochs train (and collect BatchNorm statistics) with the binary weights the
    deployed network uses; ``None``: never.

    With ``relative=True``, ``b`` is in units of ``1 / mean |r|`` of each slice along axis 0 (each output channel of
    a weight; the mean is detached): ``SS_{b / m}(r)``. Trained latent weights differ in scale by 60x between the
    layers of one network (the committed MNIST BNN: mean |w| 0.17 in the first convolution, 0.0027 in the 3136-wide
    linear layer; ``benchmarks/bnn_reversed_gradients.py --out F results/models/mnist_bnn.pt``), so one absolute
    ``b`` leaves the wide layers' ``SS_b`` linear until the switch to the sign; in relative units the same schedule
    brings every layer equally close to the sign."""

    name = "swish_sign"

    def __init__(
        self,
        beta: float = 5.0,
        beta_end: float | None = None,
        smooth_forward: bool = False,
        hard_from: float | None = None,
        relative: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(relative, bool):
            raise ValueError(f"relative must be a bool, got {relative!r}")
        self.relative = relative
        self.hard_from = None if hard_from is None else check_number(hard_from, "hard_from", 0.0, 1.0)
        self.beta0 = check_number(beta, "beta", 0.0, strict=True)
        self.beta_end = None if beta_end is None else check_number(beta_end, "beta_end", 0.0, strict=True)
        if not isinstance(smooth_forward, bool):
            raise ValueError(f"smooth_forward must be a bool, got {smooth_forward!r}")
        self.smooth_forward = smooth_forward

    @property
    def beta(self) -> float:
        if self.beta_end is None:
            return self.beta0
        return self.beta0 * (self.beta_end / self.beta0) ** self.progress

    @property
    def hard(self) -> bool:
        """Whether the training forward is the sign now."""
        return not self.smooth_forward or (self.hard_from is not None and self.progress >= self.hard_from)

    def beta_for(self, x: torch.Tensor) -> float | torch.Tensor:
        """The ``b`` applied to ``x``: :attr:`beta`, or with ``relative`` ``beta / mean |x|`` per slice along axis
        0, shaped to broadcast against ``x`` (a slice of zeros gets ``beta / tiny``: its values are 0 either way)."""
        if not self.relative:
            return self.beta
        mean_abs = x.detach().abs().reshape(x.shape[:1] + (-1,)).mean(dim=-1)  # (O,), or () for a 0-d x
        return self.beta / mean_abs.clamp_min(torch.finfo(x.dtype).tiny).reshape(x.shape[:1] + (1,) * (x.ndim - 1))

    def forward_values(self, x: torch.Tensor) -> torch.Tensor:
        return hard_sign(x) if self.hard else swish_sign_function(x, self.beta_for(x))

    def pseudo_grad(self, x: torch.Tensor) -> torch.Tensor:
        return _swish_sign_grad(x, self.beta_for(x))

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        return swish_sign_function(x, self.beta_for(x))

    def params(self) -> dict[str, Any]:
        params = {
            "beta": self.beta0,
            "beta_end": self.beta_end,
            "smooth_forward": self.smooth_forward,
            "hard_from": self.hard_from,
        }
        # Only when on: the saved configs (and so the checkpoint-cache keys) of every earlier network stay as they were.
        return {**params, "relative": True} if self.relative else params


PROX_MAPS = ("sign", "toward_pm1")
PC_BACKWARDS = ("identity", "htanh", "swish")


@register
class ProxConnectPP(Quantizer):
    """ProxConnect++ pair: forward ``F = P_mu(B(x))``, backward ``B'(x)``.

    Args:
        prox: ``"sign"`` or ``"toward_pm1"`` (prox of ``mu * min(|x - 1|, |x + 1|)``:
            ``sign(x) min(|x| + mu, 1)`` for ``|x| <= 1``, ``sign(x) max(|x| - mu, 1)`` beyond).
        backward: ``"identity"`` (BC / PC), ``"htanh"`` (BNN's clip) or ``"swish"`` (``SS_beta``, BNN+).
        mu, mu_end: proximal strength at progress 0 and 1 (linear in between); ``mu_end=None`` keeps ``mu``.
        beta: sign-Swish slope for ``backward="swish"``.
    """

    name = "pc++"

    def __init__(
        self,
        prox: str = "toward_pm1",
        backward: str = "identity",
        mu: float = 0.0,
        mu_end: float | None = 1.0,
        beta: float = 5.0,
    ) -> None:
        super().__init__()
        self.prox = check_choice(prox, PROX_MAPS, "prox map")
        self.backward = check_choice(backward, PC_BACKWARDS, "pc++ backward")
        self.mu0 = check_number(mu, "mu", 0.0)
        self.mu_end = None if mu_end is None else check_number(mu_end, "mu_end", 0.0)
        self.beta = check_number(beta, "beta", 0.0, strict=True)

    @property
    def mu(self) -> float:
        return self.mu0 if self.mu_end is None else self.mu0 + (self.mu_end - self.mu0) * self.progress

    def _inner(self, x: torch.Tensor) -> torch.Tensor:
        if self.backward == "identity":
            return x
        if self.backward == "htanh":
            return torch.clamp(x, -1.0, 1.0)
        return swish_sign_function(x, self.beta)

    def prox_map(self, v: torch.Tensor) -> torch.Tensor:
        """``P_mu(v)`` elementwise (no autograd needed: the backward never differentiates it)."""
        if self.prox == "sign":
            return hard_sign(v)
        s, a, mu = hard_sign(v), v.abs(), self.mu
        return s * torch.where(a <= 1.0, torch.clamp(a + mu, max=1.0), torch.clamp(a - mu, min=1.0))

    def forward_values(self, x: torch.Tensor) -> torch.Tensor:
        return self.prox_map(self._inner(x))

    def pseudo_grad(self, x: torch.Tensor) -> torch.Tensor:
        if self.backward == "identity":
            return torch.ones_like(x)
        if self.backward == "htanh":
            return (x.abs() <= 1.0).to(x.dtype)
        return _swish_sign_grad(x, self.beta)

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        return self._inner(x)

    def params(self) -> dict[str, Any]:
        return {"prox": self.prox, "backward": self.backward, "mu": self.mu0, "mu_end": self.mu_end, "beta": self.beta}


@register
class FDA(Quantizer):
    """FDA: sign forward; backward ``(4 omega / pi) sum_{i<N} cos((2i + 1) omega x) 1{|x| <= clip_value}``.

    Args:
        n_terms, n_terms_end: Fourier terms N at progress 0 and 1 (``N = n_terms + floor((n_terms_end - n_terms)
            t)``); ``n_terms_end=None`` keeps N fixed.
        omega: angular frequency of the square wave (period ``2 pi / omega``).
        clip_value: window of the backward (``None``: no window; the series is periodic, so keep ``omega *
            clip_value < pi``).
        alpha: initial weight of the noise-adaptation module, decayed as ``alpha (1 + cos(pi t)) / 2``
            (0 in the last epoch); 0 disables the module.
    """

    name = "fda"

    def __init__(
        self,
        n_terms: int = 10,
        n_terms_end: int | None = 18,
        omega: float = 0.1,
        clip_value: float | None = 1.0,
        alpha: float = 0.1,
    ) -> None:
        super().__init__()
        self.n0 = check_int(n_terms, "n_terms", 1, 10_000)
        self.n_end = None if n_terms_end is None else check_int(n_terms_end, "n_terms_end", self.n0, 10_000)
        self.omega = check_number(omega, "omega", 0.0, strict=True)
        self.clip_value = _check_clip(clip_value)
        self.alpha = check_number(alpha, "alpha", 0.0)

    @property
    def n_terms(self) -> int:
        if self.n_end is None:
            return self.n0
        return self.n0 + math.floor((self.n_end - self.n0) * self.progress + 1e-9)

    @property
    def noise_scale(self) -> float:
        return self.alpha * (1.0 + math.cos(math.pi * self.progress)) / 2.0

    def _odd(self, x: torch.Tensor) -> torch.Tensor:
        """(2i + 1) for i < N, shaped to broadcast against ``x[..., None]``."""
        return torch.arange(1, 2 * self.n_terms, 2, dtype=x.dtype, device=x.device)

    def pseudo_grad(self, x: torch.Tensor) -> torch.Tensor:
        # Closed form of the cosine sum (a Dirichlet kernel): (2 omega / pi) sin(2 N omega x) / sin(omega x), so the
        # memory is O(x) rather than O(N x). Where sin(omega x) ~ 0 the ratio is replaced by its L'Hopital limit
        # 2 N cos(2 N omega x) / cos(omega x), within 3e-6 relative of the sum there for N <= 18.
        n, wx = self.n_terms, x * self.omega
        den = torch.sin(wx)
        near = den.abs() < 1e-4
        ratio = torch.where(
            near,
            2.0 * n * torch.cos(2.0 * n * wx) / torch.cos(wx),
            torch.sin(2.0 * n * wx) / torch.where(near, 1.0, den),
        )
        g = ratio * (2.0 * self.omega / math.pi)
        if self.clip_value is not None:
            g = g * (x.abs() <= self.clip_value).to(x.dtype)
        return g

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        c = x if self.clip_value is None else torch.clamp(x, -self.clip_value, self.clip_value)
        k = self._odd(x)
        return (torch.sin(c.unsqueeze(-1) * (k * self.omega)) / k).sum(-1) * (4.0 / math.pi)

    def params(self) -> dict[str, Any]:
        return {
            "n_terms": self.n0,
            "n_terms_end": self.n_end,
            "omega": self.omega,
            "clip_value": self.clip_value,
            "alpha": self.alpha,
        }


QUANTIZERS: tuple[str, ...] = tuple(_REGISTRY)


def get(spec: str | dict[str, Any] | Quantizer, **params: Any) -> Quantizer:
    """A quantizer from its name (``get("htanh", clip_value=1.0)``), its :meth:`~Quantizer.to_config` dict, or a
    quantizer (returned as is). An unknown name raises ``ValueError`` listing the registered names."""
    if isinstance(spec, Quantizer):
        if params:
            raise ValueError("parameters cannot be given together with a Quantizer instance")
        return spec
    if isinstance(spec, dict):
        if "name" not in spec:
            raise ValueError(f"a quantizer config needs a 'name' key, got {spec!r}")
        params = {**{k: v for k, v in spec.items() if k != "name"}, **params}
        spec = spec["name"]
    name = check_choice(spec, tuple(_REGISTRY), "quantizer")
    try:
        return _REGISTRY[name](**params)
    except TypeError as err:  # unexpected keyword: name the quantizer and its parameters
        raise ValueError(f"quantizer {name!r}: {err}") from err


class NoiseAdaptation(nn.Module):
    """FDA's noise-adaptation module on vectors of length ``dim`` (last axis):
    ``Linear(dim -> h, no bias) -> ReLU -> Linear(h -> dim, no bias) + 0.1 sin(x)``, ``h = max(1, dim // ratio)``.

    Weights are drawn from ``generator`` (uniform, +-1/sqrt(fan_in)); the global RNG is not touched.
    """

    def __init__(self, dim: int, ratio: int = 64, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.dim = check_int(dim, "dim", 1)
        hidden = max(1, self.dim // check_int(ratio, "ratio", 1))
        self.down = nn.Parameter(self._uniform((hidden, self.dim), generator))
        self.up = nn.Parameter(self._uniform((self.dim, hidden), generator))

    @staticmethod
    def _uniform(shape: tuple[int, int], generator: torch.Generator | None) -> torch.Tensor:
        bound = 1.0 / math.sqrt(shape[1])
        return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., dim) -> (..., dim)."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"NoiseAdaptation expects (..., {self.dim}), got {tuple(x.shape)}")
        return torch.relu(x @ self.down.T) @ self.up.T + 0.1 * torch.sin(x)
