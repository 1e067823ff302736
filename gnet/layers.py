"""G-Net layers: each output is the arcsine of a cosine, z = arcsin(<w~, x + b> / (||w~|| ||x + b||)).

Because z = pi/2 - angle(w~, x + b), a G-Net layer is a function of directions only, which is what a random sign
embedding preserves (Grothendieck's identity); :mod:`gnet.ehd` turns these layers into Hamming-distance layers.

Shapes: ``GLinear`` (B, in) -> (B, out); ``GConv1d`` (B, C, L) -> (B, out, L'); ``GConv2d`` (B, C, H, W) ->
(B, out, H', W'). All dtypes follow the input (float32 or float64).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from numba import njit
from torch import nn

__all__ = [
    "GLayer",
    "GLinear",
    "GConv1d",
    "GConv2d",
    "RASU",
    "TASU",
    "NormalizedClassifier",
    "safe_arcsin_cosine",
]

# Keeps |rho| < 1 so arcsin's derivative 1/sqrt(1 - rho^2) stays finite; and keeps 0/0 at x + b = 0 finite.
_RHO_LIMIT = 1.0 - 1e-6
_NORM_EPS = 1e-12


def safe_arcsin_cosine(dot: torch.Tensor, w_norm_sq: torch.Tensor, x_norm_sq: torch.Tensor) -> torch.Tensor:
    """arcsin(dot / (||w|| ||x||)) with no NaN value or gradient at ||x|| = 0 or |rho| -> 1."""
    rho = dot * torch.rsqrt((w_norm_sq + _NORM_EPS) * (x_norm_sq + _NORM_EPS))
    return torch.asin(rho.clamp(-_RHO_LIMIT, _RHO_LIMIT))


# Batch slices of about this many elements (512 KiB in float32) keep an element-wise chain's temporaries in a core's
# L2 cache: a chain of passes over one slice costs little more than one pass over main memory.
_CHUNK_ELEMENTS = 1 << 17


def _batch_slices(t: torch.Tensor) -> list[slice]:
    """Slices along dim 0 of ``t`` with about ``_CHUNK_ELEMENTS`` elements each (at least one batch item)."""
    if t.ndim == 0:
        return [slice(None)]
    per_item = max(1, math.prod(t.shape[1:]))
    step = max(1, _CHUNK_ELEMENTS // per_item)
    return [slice(i, i + step) for i in range(0, t.shape[0], step)]


# Fused CPU kernels for the backward passes: one pass over memory where the torch version makes about eight
# (each torch op is a pass of its own). No 'afn' (approximate functions) flag, so sqrt and division stay exact and
# float64 gradcheck holds; 'reassoc' lets the reductions vectorise.
_FASTMATH = {"reassoc", "contract", "nsz"}


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _asin32(x):  # pragma: no cover - compiled
    """float32 arcsine, Cephes ``asinf`` (relative error below 2.5e-7), branch-free so that loops vectorise.

    torch's float32 ``asin`` costs as much as five products per element; this one, inlined into the fused loop,
    costs about one. float64 keeps torch's ``asin``.
    """
    ax = abs(x)
    big = ax > np.float32(0.5)
    z = np.float32(0.5) * (np.float32(1.0) - ax) if big else ax * ax
    t = math.sqrt(z) if big else ax
    poly = ((((np.float32(4.2163199048e-2) * z + np.float32(2.4181311049e-2)) * z + np.float32(4.5470025998e-2)) * z
             + np.float32(7.4953002686e-2)) * z + np.float32(1.6666752422e-1)) * z * t + t
    r = np.float32(math.pi / 2) - (poly + poly) if big else poly
    return r if x >= 0 else -r


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _clamped_product_kernel(a, shift, s, limit, rho, with_asin):  # pragma: no cover - compiled
    """rho = clamp((a + shift) * s, -limit, limit) for (B, O, P) a, (O, P) shift, (B, P) s; if ``with_asin``
    (float32 only), also a = arcsin(rho) in place."""
    n_b, n_o, n_p = a.shape
    for b in range(n_b):
        for o in range(n_o):
            for p in range(n_p):
                v = (a[b, o, p] + shift[o, p]) * s[b, p]
                v = min(max(v, -limit), limit)
                rho[b, o, p] = v
                if with_asin:
                    a[b, o, p] = _asin32(v)


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _arcsin_backward_kernel(grad, rho, s, limit, grad_a, grad_s, grad_shift):  # pragma: no cover - compiled
    """(B, O, P) grad, rho; (B, P) s -> grad_a (B, O, P), grad_s (B, P), grad_shift += (O, P)."""
    n_b, n_o, n_p = rho.shape
    for b in range(n_b):
        acc = np.zeros(n_p, dtype=rho.dtype)
        for o in range(n_o):
            for p in range(n_p):
                r = rho[b, o, p]
                g = grad[b, o, p] / math.sqrt(1.0 - r * r)
                if abs(r) >= limit:  # clamped in the forward pass: no gradient, as with torch.clamp
                    g = 0.0
                g_a = g * s[b, p]
                grad_a[b, o, p] = g_a
                grad_shift[o, p] += g_a
                acc[p] += g * r
        for p in range(n_p):
            grad_s[b, p] = acc[p] / s[b, p]


@njit(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")
def _scaled_relu_backward_kernel(grad, y, alpha, grad_z):  # pragma: no cover - compiled
    """Flat grad, y -> grad_z = grad * alpha where y > 0 else 0; returns sum(grad * y) in float64."""
    acc = 0.0
    for i in range(y.shape[0]):
        yi = y[i]
        gi = grad[i]
        if yi > 0:
            grad_z[i] = gi * alpha
            acc += np.float64(gi * yi)
        else:
            grad_z[i] = 0.0
    return acc


def _fused_ok(*tensors: torch.Tensor) -> bool:
    """Whether the numba kernels apply: CPU tensors of float32 or float64, and the kernels not switched off."""
    return _USE_FUSED_KERNELS and all(t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)
                                      for t in tensors)


_USE_FUSED_KERNELS = True  # tests switch it off to check the kernels against the torch-only path


def _as_array(t: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """A C-contiguous numpy view (or copy, if ``t`` is strided) of ``t`` in ``shape``."""
    return t.detach().contiguous().reshape(shape).numpy()


class _ArcsinOfProduct(torch.autograd.Function):
    """z = arcsin(clamp((a + shift) * s, -limit, limit)), a (B, out, *), s > 0 (B, 1, *), written into ``a``.

    The same value and gradient as autograd through ``torch.asin((a * s).clamp(...))``, with fewer output-sized
    tensors, which is what G-Net training time goes into (autograd through the composed expression made about 20
    full-size passes per layer and a G-Net train step 2x slower than a plain CNN's):

    * ``a`` must be a temporary of the caller's (a fresh dot product): the arcsine overwrites it, as ``relu_`` does,
      so the forward pass allocates one output-sized tensor (rho, kept for the backward pass), not two;
    * both passes walk the batch in slices small enough to stay in cache, so their chains of element-wise ops
      (product, clamp check, arcsine; 1 - rho^2, rsqrt, products, channel sum) read main memory about once;
    * an optional ``shift`` (1, out, *) is added to ``a`` first, inside the same slices (a first layer's b conv(1));
    * the backward pass uses d arcsin(rho) / d rho = 1 / sqrt(1 - rho^2) (rsqrt is far cheaper than cos or asin)
      and sum_c g_c a_c = (sum_c g_c rho_c) / s, so ``a`` itself is not needed.
    """

    @staticmethod
    def forward(ctx, a: torch.Tensor, s: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
        if s.ndim != a.ndim or s.shape[0] != a.shape[0] or s.shape[1] != 1:
            raise ValueError(f"norm factors of shape {tuple(s.shape)} do not fit dot products {tuple(a.shape)}")
        if shift is not None and (shift.ndim != a.ndim or shift.shape[0] != 1 or shift.shape[1:] != a.shape[1:]):
            raise ValueError(f"shift of shape {tuple(shift.shape)} does not fit dot products {tuple(a.shape)}")
        if _fused_ok(a, s):
            n_b, n_o = a.shape[:2]
            n_p = a[0, 0].numel() if a.numel() else 0
            rho = torch.empty(a.shape, dtype=a.dtype)
            shift_arr = np.zeros((n_o, n_p), dtype=rho.numpy().dtype) if shift is None else _as_array(shift, (n_o, n_p))
            with_asin = a.dtype == torch.float32 and a.is_contiguous()  # then the kernel writes into a's memory
            _clamped_product_kernel(
                _as_array(a, (n_b, n_o, n_p)), shift_arr, _as_array(s, (n_b, n_p)),
                np.array(_RHO_LIMIT, dtype=rho.numpy().dtype)[()], rho.numpy().reshape(n_b, n_o, n_p), with_asin,
            )
            if not with_asin:
                torch.asin(rho, out=a)
            ctx.mark_dirty(a)
            ctx.save_for_backward(rho, s, None)
            return a
        rho = torch.empty_like(a)
        clipped = None
        for sl in _batch_slices(a):
            a_part = a[sl] if shift is None else a[sl].add_(shift)
            r = torch.mul(a_part, s[sl], out=rho[sl])
            lo, hi = torch.aminmax(r)
            if hi > _RHO_LIMIT or lo < -_RHO_LIMIT:  # rare: only then pay for a mask (clamp passes no gradient there)
                if clipped is None:
                    clipped = torch.zeros(a.shape, dtype=torch.bool, device=a.device)
                torch.gt(r.abs(), _RHO_LIMIT, out=clipped[sl])
                r.clamp_(-_RHO_LIMIT, _RHO_LIMIT)
            torch.asin(r, out=a[sl])
        ctx.mark_dirty(a)
        ctx.save_for_backward(rho, s, clipped)
        return a

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        rho, s, clipped = ctx.saved_tensors
        need_a, need_s, need_shift = ctx.needs_input_grad
        if _fused_ok(rho, grad):
            n_b, n_o = rho.shape[:2]
            n_p = rho[0, 0].numel()
            grad_a = torch.empty_like(rho, memory_format=torch.contiguous_format)
            grad_s = torch.empty_like(s, memory_format=torch.contiguous_format)
            grad_shift = torch.zeros((1, *rho.shape[1:]), dtype=rho.dtype)
            _arcsin_backward_kernel(
                _as_array(grad.to(rho.dtype), (n_b, n_o, n_p)), _as_array(rho, (n_b, n_o, n_p)),
                _as_array(s, (n_b, n_p)), np.array(_RHO_LIMIT, dtype=rho.numpy().dtype)[()],
                grad_a.numpy().reshape(n_b, n_o, n_p),
                grad_s.numpy().reshape(n_b, n_p), grad_shift.numpy().reshape(n_o, n_p),
            )
            return grad_a if need_a else None, grad_s if need_s else None, grad_shift if need_shift else None
        grad_a = torch.empty_like(rho) if need_a else None
        grad_s = torch.empty_like(s) if need_s else None
        grad_shift = torch.zeros_like(rho[:1]) if need_shift else None
        one = torch.ones((), dtype=rho.dtype, device=rho.device)
        for sl in _batch_slices(rho):
            r = rho[sl]
            g = torch.addcmul(one, r, r, value=-1.0).rsqrt_().mul_(grad[sl])  # grad / sqrt(1 - rho^2)
            if clipped is not None:
                g.masked_fill_(clipped[sl], 0.0)
            if need_a or need_shift:
                g_a = torch.mul(g, s[sl], out=grad_a[sl]) if need_a else g * s[sl]
                if need_shift:
                    grad_shift.add_(g_a.sum(dim=0, keepdim=True))
            if need_s:
                torch.sum(g.mul_(r), dim=1, keepdim=True, out=grad_s[sl])
        if need_s:
            grad_s.div_(s)
        return grad_a, grad_s, grad_shift


class _ScaledReLU(torch.autograd.Function):
    """relu(alpha * z), keeping only the output: one output-sized temporary in the backward instead of three.

    d/d alpha = sum(g * z over y > 0) = sum(g * y) / alpha, because y = alpha * z wherever y > 0 (and all of
    y is 0 when alpha = 0, where the derivative is 0 too).
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        y = torch.empty_like(z)
        for sl in _batch_slices(z):  # product and clamp in cache
            torch.mul(z[sl], alpha, out=y[sl]).clamp_min_(0.0)
        ctx.save_for_backward(alpha, y)
        return y

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        alpha, y = ctx.saved_tensors
        need_z, need_alpha = ctx.needs_input_grad
        if _fused_ok(y, grad):
            grad_z = torch.empty_like(y, memory_format=torch.contiguous_format)
            a = float(alpha)
            g_dot_y = _scaled_relu_backward_kernel(
                _as_array(grad.to(y.dtype), (-1,)), _as_array(y, (-1,)), a, grad_z.numpy().reshape(-1)
            )
            grad_alpha = None
            if need_alpha:
                grad_alpha = torch.tensor(g_dot_y / a if a != 0 else 0.0, dtype=alpha.dtype)
            return grad_z if need_z else None, grad_alpha
        grad_z = torch.empty_like(y)  # grad where y > 0, else 0 (what ReLU's backward does), times alpha
        g_dot_y = torch.zeros((), dtype=torch.float64, device=y.device)
        for sl in _batch_slices(y):
            g = torch.ops.aten.threshold_backward.grad_input(grad[sl], y[sl], 0.0, grad_input=grad_z[sl])
            if need_alpha:
                g_dot_y += torch.dot(g.reshape(-1), y[sl].reshape(-1))
            if need_z:
                g.mul_(alpha)
        grad_alpha = None
        if need_alpha:
            grad_alpha = torch.where(alpha != 0, g_dot_y.to(alpha.dtype) / alpha, 0.0)
        return grad_z if need_z else None, grad_alpha


def _arcsin_cosine_normed(
    dot_over_w: torch.Tensor, x_norm_sq: torch.Tensor, shift: torch.Tensor | None = None
) -> torch.Tensor:
    """arcsin(<w, x> / (||w|| ||x||)) from <w, x> / ||w|| (B, out, *) (plus ``shift`` (1, out, *) if given) and
    ||x||^2 (B, 1, *).

    ``dot_over_w`` must be a temporary the caller no longer needs (not a leaf, not a view): it is overwritten.
    """
    return _ArcsinOfProduct.apply(dot_over_w, torch.rsqrt(x_norm_sq + _NORM_EPS), shift)


class _InverseNorms(torch.autograd.Function):
    """1 / sqrt(||w_o||^2 + eps) per output unit: (out, *) -> (out,).

    The backward pass, -w_o / (||w_o||^2 + eps)^(3/2) times the incoming gradient, is one weight-sized product;
    autograd through ``(w * w).sum()`` made three (two products and their sum) on the largest weight.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(weight.reshape(weight.shape[0], -1), dim=1)
        inv = torch.rsqrt(norm * norm + _NORM_EPS)
        ctx.save_for_backward(weight, inv)
        return inv

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        weight, inv = ctx.saved_tensors
        factor = -grad * inv * inv * inv
        return weight * factor.view(-1, *([1] * (weight.ndim - 1)))


def _inverse_norms(weight: torch.Tensor) -> torch.Tensor:
    """1 / ||w_o|| per output unit (out,), eps-guarded like the input norms."""
    return _InverseNorms.apply(weight)


class _ChannelSumOfSquares(torch.autograd.Function):
    """sum_c x_c^2, kept: (B, C, *) -> (B, 1, *); the backward pass is the single product 2 x g.

    (``vector_norm`` over dim 1 is 50x slower on CPU, and autograd through ``x * x`` makes three input-sized
    tensors in the backward pass.)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return (x * x).sum(dim=1, keepdim=True)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return x * (grad + grad)


def _channel_sum_of_squares(x: torch.Tensor) -> torch.Tensor:
    """sum_c x_c^2, kept: (B, C, *) -> (B, 1, *)."""
    return _ChannelSumOfSquares.apply(x)


class GLayer(nn.Module):
    """Shared parts: the weight, the scalar bias trick b, and an optional folded BatchNorm scale.

    With ``batch_norm=True`` a per-unit scale s_o = gamma_o / sqrt(var_o + eps) multiplies w_o (batch statistics in
    training, running statistics in eval). After normalisation only sign(s_o) survives, but it is kept so that
    models trained with BatchNorm convert exactly; :meth:`effective_weight` returns the folded w~.
    """

    weight: nn.Parameter

    def __init__(self, out_units: int, bias_init: float, batch_norm: bool) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))
        self.bn = nn.BatchNorm1d(out_units, affine=True) if batch_norm else None
        if self.bn is not None:
            self.bn.bias.requires_grad_(False)  # a shift cannot pass through a normalised dot product

    @property
    def fan_in(self) -> int:
        return self.weight[0].numel()

    @property
    def out_units(self) -> int:
        return self.weight.shape[0]

    def _bn_scale(self, raw: torch.Tensor | None) -> torch.Tensor | None:
        """Per-unit BN scale; ``raw`` is the pre-normalisation output (B, out, *positions) in training."""
        bn = self.bn
        if bn is None:
            return None
        if self.training and raw is not None:
            flat = raw.detach().transpose(0, 1).reshape(raw.shape[1], -1)
            var = flat.var(dim=1, unbiased=False)
            with torch.no_grad():
                n = flat.shape[1]
                bn.running_var.mul_(1 - bn.momentum).add_(bn.momentum * var * n / max(n - 1, 1))
                bn.running_mean.mul_(1 - bn.momentum).add_(bn.momentum * flat.mean(dim=1))
                bn.num_batches_tracked += 1
        else:
            var = bn.running_var
        return bn.weight * torch.rsqrt(var + bn.eps)

    def effective_weight(self) -> torch.Tensor:
        """w~ = s * w with the BatchNorm scale folded in (eval statistics); same shape as ``weight``."""
        scale = self._bn_scale(None) if self.bn is not None else None
        if scale is None:
            return self.weight.detach()
        return (self.weight * scale.view(-1, *([1] * (self.weight.ndim - 1)))).detach()

    def _unit_sign(self, raw: torch.Tensor) -> torch.Tensor | None:
        """sign(s_o) broadcast over (B, out, *positions), or None without BatchNorm."""
        scale = self._bn_scale(raw)
        if scale is None:
            return None
        sign = torch.where(scale >= 0, 1.0, -1.0).to(raw.dtype)
        return sign.view(1, -1, *([1] * (raw.ndim - 2)))


class GLinear(GLayer):
    """z_o = arcsin(<w~_o, x + b> / (||w~_o|| ||x + b||)); (B, in_features) -> (B, out_features)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias_init: float = 5e-5,
        batch_norm: bool = False,
        weight_std: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(out_features, bias_init, batch_norm)
        self.in_features, self.out_features = int(in_features), int(out_features)
        std = weight_std if weight_std is not None else 1.0 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.randn(out_features, in_features, generator=generator) * std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"GLinear expects (batch, {self.in_features}), got {tuple(x.shape)}")
        shifted = x + self.bias
        inv_w = _inverse_norms(self.weight)
        dot = shifted @ self.weight.T
        # 1/||w|| scales the (batch, out) result, not the (out, in) weight, which is usually far larger.
        scale = inv_w if self.bn is None else self._unit_sign(dot).view(-1) * inv_w
        return _arcsin_cosine_normed(dot * scale, _channel_sum_of_squares(shifted))

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias_trick={self.bias.item():.3g}"


class _GConvNd(GLayer):
    """Shared convolution logic; per receptive-field patch p, z_o(p) = arcsin(cos(w~_o, (x + b)_p)).

    The shift by b happens before zero padding, as in the paper: padded border positions stay 0.
    """

    _dims: int

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, ...],
        stride: int | tuple[int, ...] = 1,
        padding: int | tuple[int, ...] = 0,
        dilation: int | tuple[int, ...] = 1,
        bias_init: float = 1e-3,
        batch_norm: bool = False,
        weight_std: float | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(out_channels, bias_init, batch_norm)
        tup = lambda v: tuple(int(i) for i in v) if isinstance(v, (tuple, list)) else (int(v),) * self._dims
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = tup(kernel_size), tup(stride)
        self.padding, self.dilation = tup(padding), tup(dilation)
        fan_in = in_channels * math.prod(self.kernel_size)
        std = weight_std if weight_std is not None else 1.0 / math.sqrt(fan_in)
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = nn.Parameter(torch.randn(*shape, generator=generator) * std)

    def _conv(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        conv = F.conv2d if self._dims == 2 else F.conv1d
        return conv(x, w, stride=self.stride, padding=self.padding, dilation=self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != self._dims + 2 or x.shape[1] != self.in_channels:
            expected = "(batch, C, L)" if self._dims == 1 else "(batch, C, H, W)"
            raise ValueError(
                f"{type(self).__name__} expects {expected} with C={self.in_channels}, got {tuple(x.shape)}"
            )
        shifted = x + self.bias
        inv_w = _inverse_norms(self.weight).view(-1, *([1] * (self._dims + 1)))
        # 1/||w|| folded into the small weight; with BatchNorm the statistics are those of the raw dot products.
        weight = self.weight * inv_w if self.bn is None else self.weight
        shift = None
        if x.requires_grad:
            dot = self._conv(shifted, weight)
        else:
            # An input without gradient (a first layer): conv(x + b) = conv(x) + b conv(1) with zero padding, which
            # spares the backward pass a full input-gradient convolution that would only serve the scalar b.
            ones = torch.ones((1, *x.shape[1:]), dtype=x.dtype, device=x.device)
            dot, shift = self._conv(x, weight), self.bias * self._conv(ones, weight)
        if self.bn is not None:
            if shift is not None:
                dot, shift = dot + shift, None
            dot = dot * (self._unit_sign(dot) * inv_w.view(1, -1, *([1] * self._dims)))
        x_sq = self._patch_sum(_channel_sum_of_squares(shifted))
        return _arcsin_cosine_normed(dot, x_sq, shift)

    def _patch_sum(self, sq: torch.Tensor) -> torch.Tensor:
        """Sum of ``sq`` (B, 1, *spatial) over every receptive field: (B, 1, *output spatial).

        A separable box sum over shifted slices (any stride, padding, dilation): on one channel it is several
        times cheaper, forward and backward, than a convolution with an all-ones filter or a sum-pool.
        """
        pad = [v for p in reversed(self.padding) for v in (p, p)]  # F.pad lists the last axis first
        x = F.pad(sq, pad) if any(pad) else sq
        for axis, (k, d, st) in enumerate(zip(self.kernel_size, self.dilation, self.stride)):
            dim = 2 + axis
            n = x.shape[dim] - d * (k - 1)  # stride-1 output length along this axis
            acc = x.narrow(dim, 0, n)
            for j in range(1, k):
                acc = acc + x.narrow(dim, j * d, n)
            x = acc if st == 1 else acc[(slice(None),) * dim + (slice(None, None, st),)]
        return x

    def output_length(self, size: tuple[int, ...]) -> tuple[int, ...]:
        """Spatial output size for an input of spatial ``size``."""
        return tuple(
            (s + 2 * p - d * (k - 1) - 1) // st + 1
            for s, p, d, k, st in zip(size, self.padding, self.dilation, self.kernel_size, self.stride)
        )

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, dilation={self.dilation}, bias_trick={self.bias.item():.3g}"
        )


class GConv1d(_GConvNd):
    """G-Net 1-D convolution: (B, C_in, L) -> (B, C_out, L')."""

    _dims = 1


class GConv2d(_GConvNd):
    """G-Net 2-D convolution: (B, C_in, H, W) -> (B, C_out, H', W')."""

    _dims = 2


class _ScaledActivation(nn.Module):
    def __init__(self, alpha_init: float) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))

    def extra_repr(self) -> str:
        return f"alpha={self.alpha.item():.4g}"


class RASU(_ScaledActivation):
    """ReLU-ArcSin unit: ReLU(alpha * z), alpha learnable (the paper initialises it to 5)."""

    def __init__(self, alpha_init: float = 5.0) -> None:
        super().__init__(alpha_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return _ScaledReLU.apply(z, self.alpha)


class TASU(_ScaledActivation):
    """Tanh-ArcSin unit: tanh(alpha * z), alpha learnable (init 10); the EHD network replaces it by sign."""

    def __init__(self, alpha_init: float = 10.0) -> None:
        super().__init__(alpha_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh_(self.alpha * z)  # in place: the product is not needed by its own backward


class NormalizedClassifier(nn.Module):
    """logits_c = scale * cos(h + b, W[:, c]): the cosine with each class **column** of W (in_features, classes).

    The column cosine is the rule the binary classifier estimates (Hamming similarity of sign(G(h + b)) with
    sign(G W[:, c])), so float and EHD predictions are the argmax of the same function. ``scale`` only sharpens the
    softmax during training; it does not change the argmax.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        bias_init: float = 5e-5,
        scale: float = 1.0,
        weight_std: float = 0.6,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.n_classes = int(in_features), int(n_classes)
        self.weight = nn.Parameter(torch.randn(in_features, n_classes, generator=generator) * weight_std)
        self.bias = nn.Parameter(torch.tensor(float(bias_init)))
        self.register_buffer("scale", torch.tensor(float(scale)))

    def cosine(self, h: torch.Tensor) -> torch.Tensor:
        """cos(h + b, W[:, c]) for every class: (B, in_features) -> (B, n_classes)."""
        if h.ndim != 2 or h.shape[1] != self.in_features:
            raise ValueError(f"NormalizedClassifier expects (batch, {self.in_features}), got {tuple(h.shape)}")
        shifted = h + self.bias
        dot = shifted @ self.weight
        rho = dot * torch.rsqrt(
            ((shifted**2).sum(dim=1, keepdim=True) + _NORM_EPS) * ((self.weight**2).sum(dim=0) + _NORM_EPS)
        )
        return rho

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.scale * self.cosine(h)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.n_classes}, bias_trick={self.bias.item():.3g}, scale={self.scale.item():g}"
