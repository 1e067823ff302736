"""Fused CPU kernels of the G-layers' autograd Functions (:mod:`gnet.layers._autograd`).

One pass over memory where the torch version makes about eight (each torch op is a pass of its own). No 'afn'
(approximate functions) flag, so sqrt and division stay exact and float64 gradcheck holds; 'reassoc' lets the
reductions vectorise.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from hdc._kernels.runtime import jit

__all__ = [
    "arcsin_backward_kernel",
    "arcsin_product_inplace_kernel",
    "asin32",
    "clamped_product_kernel",
    "scaled_relu_backward_kernel",
]

_FASTMATH = {"reassoc", "contract", "nsz"}


@jit(fastmath=_FASTMATH, error_model="numpy")
def asin32(x):  # pragma: no cover - compiled
    """float32 arcsine, Cephes ``asinf`` (relative error below 2.5e-7), branch-free so that loops vectorise.

    torch's float32 ``asin`` costs as much as five products per element; this one, inlined into the fused loop,
    costs about one. float64 keeps torch's ``asin``.
    """
    ax = abs(x)
    big = ax > np.float32(0.5)
    z = np.float32(0.5) * (np.float32(1.0) - ax) if big else ax * ax
    t = math.sqrt(z) if big else ax
    poly = (
        (
            ((np.float32(4.2163199048e-2) * z + np.float32(2.4181311049e-2)) * z + np.float32(4.5470025998e-2)) * z
            + np.float32(7.4953002686e-2)
        )
        * z
        + np.float32(1.6666752422e-1)
    ) * z * t + t
    r = np.float32(math.pi / 2) - (poly + poly) if big else poly
    return r if x >= 0 else -r


@jit(fastmath=_FASTMATH, error_model="numpy")
def clamped_product_kernel(a, shift, s, limit, rho, with_asin):  # pragma: no cover - compiled
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
                    a[b, o, p] = asin32(v)


@jit(parallel=True, fastmath=_FASTMATH, error_model="numpy")
def arcsin_product_inplace_kernel(a, shift, s, limit):  # pragma: no cover - compiled
    """Inference: a = arcsin(clamp((a + shift) * s, -limit, limit)) in place, float32 (B, O, P) a, (O, P) shift,
    (B, P) s. Nothing is kept for a backward pass, and the (b, o) rows are shared out over the threads (each element
    is computed alone, so the result does not depend on the thread count)."""
    n_b, n_o, n_p = a.shape
    for row in prange(n_b * n_o):
        b = row // n_o
        o = row - b * n_o
        for p in range(n_p):
            v = (a[b, o, p] + shift[o, p]) * s[b, p]
            a[b, o, p] = asin32(min(max(v, -limit), limit))


@jit(fastmath=_FASTMATH, error_model="numpy")
def arcsin_backward_kernel(grad, rho, s, limit, grad_a, grad_s, grad_shift):  # pragma: no cover - compiled
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


@jit(fastmath=_FASTMATH, error_model="numpy")
def scaled_relu_backward_kernel(grad, y, alpha, grad_z):  # pragma: no cover - compiled
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
