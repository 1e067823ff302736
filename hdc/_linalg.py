"""Chunking and exact int8 products shared by the projections, the Hamming kernels and the bundling ops (private).

torch is imported inside the int8 helpers only, so importing this module (as :mod:`hdc.hamming` does) keeps
``import hdc`` free of torch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["chunks", "int8_matmul", "int_mm_available", "quantize_rows_int8"]


def chunks(total: int, size: int) -> Iterator[tuple[int, int]]:
    """Half-open ranges ``(start, stop)`` covering ``[0, total)`` in steps of ``size`` (the last may be shorter).

    Example:
        >>> list(chunks(10, 4))
        [(0, 4), (4, 8), (8, 10)]
    """
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    for start in range(0, total, size):
        yield start, min(total, start + size)


def quantize_rows_int8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-row int8 quantisation: x ~= q * scale.

    Args:
        x: real tensor (B, K).

    Returns:
        ``(q, scale)``: q int8 (B, K) in [-127, 127], scale float32 (B, 1) > 0. A row's scale depends on that row
        alone, so results do not depend on the batch a row arrives in.
    """
    import torch

    amax = x.abs().amax(dim=1, keepdim=True).to(torch.float32)
    scale = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    q = torch.round(x.to(torch.float32) / scale).clamp_(-127, 127).to(torch.int8)
    return q, scale


_INT_MM: dict[str, bool] = {}


def int_mm_available() -> bool:
    """Whether ``torch._int_mm`` exists and runs on CPU in this build (probed once per process)."""
    if "cpu" not in _INT_MM:
        import torch

        ok = hasattr(torch, "_int_mm")
        if ok:
            try:
                probe = torch._int_mm(torch.ones((17, 64), dtype=torch.int8), torch.ones((64, 8), dtype=torch.int8))
                ok = int(probe[0, 0]) == 64
            except Exception:  # a build without the CPU kernel raises; the int32 fallback is used then
                ok = False
        _INT_MM["cpu"] = ok
    return _INT_MM["cpu"]


def int8_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Exact int8 x int8 -> int32 matrix product.

    Args:
        a: int8 (M, K).
        b: int8 (K, N) (a transposed view is fine).

    Returns:
        int32 (M, N), exact (int32 accumulation).

    ``torch._int_mm`` is the fast path (VNNI/AMX on CPU). It wants M > 16 and K, N multiples of 8, so inputs are
    zero-padded to that shape, which leaves the product unchanged; a caller that multiplies one ``b`` by many
    ``a`` can pad ``b`` once itself (then no copy is made here). Without ``_int_mm`` the product is an int32 matmul.
    """
    import torch

    m, k = a.shape
    n = b.shape[1]
    if not int_mm_available():
        return a.to(torch.int32) @ b.to(torch.int32)
    pm, pk, pn = max(0, 17 - m), (-k) % 8, (-n) % 8
    if pm or pk:
        a = torch.nn.functional.pad(a, (0, pk, 0, pm))
    if pk or pn:
        b = torch.nn.functional.pad(b, (0, pn, 0, pk))
    return torch._int_mm(a, b)[:m, :n]
