"""im2col straight into patch rows: (B, C, H, W) -> (B * OH * OW, C * KH * KW), one threaded pass.

``F.unfold`` writes (B, C*KH*KW, P) and the rows the projections need are its transpose, which costs a second
copy; on the EHD MNIST net's second conv (800 values per patch) the two passes took about 10 % of the batch time.
Columns are ordered (channel, kernel row, kernel column), as ``F.unfold`` orders them; padded positions are 0.
"""

from __future__ import annotations

from numba import prange

from hdc._kernels.runtime import jit

__all__ = ["im2col_rows_kernel"]


@jit(parallel=True)
def im2col_rows_kernel(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out):  # pragma: no cover - compiled
    """x (B, C, H, W) -> out (B * oh * ow, C * kh * kw), patch rows in (b, i, j) order."""
    n_b, n_c, h, w = x.shape
    per_item = oh * ow
    for r in prange(n_b * per_item):
        b = r // per_item
        p = r - b * per_item
        i = p // ow
        j = p - i * ow
        col = 0
        for c in range(n_c):
            for u in range(kh):
                y = i * sh - ph + u * dh
                inside_y = 0 <= y < h
                for v in range(kw):
                    xx = j * sw - pw + v * dw
                    if inside_y and 0 <= xx < w:
                        out[r, col] = x[b, c, y, xx]
                    else:
                        out[r, col] = 0.0
                    col += 1
