"""Autograd Functions behind the G-layers: hand-written backward passes with fewer output-sized temporaries.

On CPU (float32/float64) the element-wise chains run in the fused numba kernels of :mod:`hdc._kernels.arcsin`;
elsewhere, or with ``USE_FUSED_KERNELS`` off, in torch over cache-sized batch slices. Both give the same values
and gradients as autograd through the composed torch expression.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hdc._kernels.arcsin import (
    arcsin_backward_kernel,
    arcsin_product_inplace_kernel,
    clamped_product_kernel,
    scaled_relu_backward_kernel,
)

__all__ = [
    "NORM_EPS",
    "RHO_LIMIT",
    "USE_FUSED_KERNELS",
    "arcsin_cosine_normed",
    "channel_sum_of_squares",
    "inverse_norms",
    "scaled_relu",
]

# Keeps |rho| < 1 so arcsin's derivative 1/sqrt(1 - rho^2) stays finite; and keeps 0/0 at x + b = 0 finite.
RHO_LIMIT = 1.0 - 1e-6
NORM_EPS = 1e-12

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


def _fused_ok(*tensors: torch.Tensor) -> bool:
    """Whether the numba kernels apply: CPU tensors of float32 or float64, and the kernels not switched off."""
    return USE_FUSED_KERNELS and all(
        t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) for t in tensors
    )


USE_FUSED_KERNELS = True  # tests switch it off to check the kernels against the torch-only path


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
            clamped_product_kernel(
                _as_array(a, (n_b, n_o, n_p)),
                shift_arr,
                _as_array(s, (n_b, n_p)),
                np.array(RHO_LIMIT, dtype=rho.numpy().dtype)[()],
                rho.numpy().reshape(n_b, n_o, n_p),
                with_asin,
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
            if hi > RHO_LIMIT or lo < -RHO_LIMIT:  # rare: only then pay for a mask (clamp passes no gradient there)
                if clipped is None:
                    clipped = torch.zeros(a.shape, dtype=torch.bool, device=a.device)
                torch.gt(r.abs(), RHO_LIMIT, out=clipped[sl])
                r.clamp_(-RHO_LIMIT, RHO_LIMIT)
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
            fused_a = torch.empty_like(rho, memory_format=torch.contiguous_format)
            fused_s = torch.empty_like(s, memory_format=torch.contiguous_format)
            fused_shift = torch.zeros((1, *rho.shape[1:]), dtype=rho.dtype)
            arcsin_backward_kernel(
                _as_array(grad.to(rho.dtype), (n_b, n_o, n_p)),
                _as_array(rho, (n_b, n_o, n_p)),
                _as_array(s, (n_b, n_p)),
                np.array(RHO_LIMIT, dtype=rho.numpy().dtype)[()],
                fused_a.numpy().reshape(n_b, n_o, n_p),
                fused_s.numpy().reshape(n_b, n_p),
                fused_shift.numpy().reshape(n_o, n_p),
            )
            return fused_a if need_a else None, fused_s if need_s else None, fused_shift if need_shift else None
        grad_a = torch.empty_like(rho) if need_a else None
        grad_s = torch.empty_like(s) if need_s else None
        grad_shift = torch.zeros_like(rho[:1]) if need_shift else None
        one = torch.ones((), dtype=rho.dtype, device=rho.device)
        for sl in _batch_slices(rho):
            r = rho[sl]
            g = torch.addcmul(one, r, r, value=-1.0).rsqrt_().mul_(grad[sl])  # grad / sqrt(1 - rho^2)
            if clipped is not None:
                g.masked_fill_(clipped[sl], 0.0)
            if grad_a is not None or grad_shift is not None:  # each is set exactly when its input needs it
                g_a = torch.mul(g, s[sl], out=grad_a[sl]) if grad_a is not None else g * s[sl]
                if grad_shift is not None:
                    grad_shift.add_(g_a.sum(dim=0, keepdim=True))
            if grad_s is not None:
                torch.sum(g.mul_(r), dim=1, keepdim=True, out=grad_s[sl])
        if grad_s is not None:
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
            g_dot_y = scaled_relu_backward_kernel(
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


def arcsin_cosine_normed(
    dot_over_w: torch.Tensor, x_norm_sq: torch.Tensor, shift: torch.Tensor | None = None
) -> torch.Tensor:
    """arcsin(<w, x> / (||w|| ||x||)) from <w, x> / ||w|| (B, out, *) (plus ``shift`` (1, out, *) if given) and
    ||x||^2 (B, 1, *).

    ``dot_over_w`` must be a temporary the caller no longer needs (not a leaf, not a view): it is overwritten.
    """
    s = torch.rsqrt(x_norm_sq + NORM_EPS)
    if _inference_ok(dot_over_w, s, shift) and dot_over_w.is_contiguous():
        # Inference (eval, EHD conversion, prediction): one threaded pass in place, no rho kept for a backward pass.
        n_b, n_o = dot_over_w.shape[:2]
        n_p = dot_over_w[0, 0].numel() if dot_over_w.numel() else 0
        shift_arr = np.zeros((n_o, n_p), np.float32) if shift is None else _as_array(shift, (n_o, n_p))
        limit = np.float32(RHO_LIMIT)
        arcsin_product_inplace_kernel(
            dot_over_w.numpy().reshape(n_b, n_o, n_p), shift_arr, _as_array(s, (n_b, n_p)), limit
        )
        return dot_over_w
    return _ArcsinOfProduct.apply(dot_over_w, s, shift)


def _inference_ok(*tensors: torch.Tensor | None) -> bool:
    """Whether the threaded float32 inference kernels apply: no autograd graph to build, fused kernels on, and
    every tensor a float32 CPU tensor (float64 keeps the torch path, whose arcsine is exact to float64)."""
    present = [t for t in tensors if t is not None]
    if torch.is_grad_enabled() and any(t.requires_grad for t in present):
        return False
    return _fused_ok(*present) and all(t.dtype == torch.float32 for t in present)


class _InverseNorms(torch.autograd.Function):
    """1 / sqrt(||w_o||^2 + eps) per output unit: (out, *) -> (out,).

    The backward pass, -w_o / (||w_o||^2 + eps)^(3/2) times the incoming gradient, is one weight-sized product;
    autograd through ``(w * w).sum()`` made three (two products and their sum) on the largest weight.
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(weight.reshape(weight.shape[0], -1), dim=1)
        inv = torch.rsqrt(norm * norm + NORM_EPS)
        ctx.save_for_backward(weight, inv)
        return inv

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        weight, inv = ctx.saved_tensors
        factor = -grad * inv * inv * inv
        return weight * factor.view(-1, *([1] * (weight.ndim - 1)))


def inverse_norms(weight: torch.Tensor) -> torch.Tensor:
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


def channel_sum_of_squares(x: torch.Tensor) -> torch.Tensor:
    """sum_c x_c^2, kept: (B, C, *) -> (B, 1, *)."""
    return _ChannelSumOfSquares.apply(x)


def scaled_relu(z: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """relu(alpha * z) with the lean backward pass of :class:`_ScaledReLU`; same shape as ``z``."""
    if _inference_ok(z, alpha):  # no graph: torch's own two passes into a new tensor (z may be the caller's own)
        # (benchmarks/bench_infer.py's idle profile, MNIST, batch 256: RASU / the CNN's ReLU 2.7x with a one-pass
        # numba kernel, results/bench_infer.json at 8892415; 1.16x with these, the current file; see docs/ehd.md)
        return torch.mul(z, alpha).clamp_min_(0.0)  # NaN stays NaN
    return _ScaledReLU.apply(z, alpha)
